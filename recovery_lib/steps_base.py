"""What every procedure step shares: halting a run, and reading health checks as evidence.

A step that cannot go on (no usable backup, a failed restore) *halts* the run: later steps return a
:class:`Halted` saying why, the success criteria fail, the escalation names who to call, and the
final outcome cell raises :class:`ProcedureFailed`, so papermill exits non-zero and no record of a
failed recovery reads like a successful one.
"""

from __future__ import annotations

from typing import Any

from .approval import ApprovalRequired
from .clock import now_iso
from .errors import RecoveryError
from .health import health_check
from .notebook import Run
from .records import to_plain


class ProcedureFailed(RecoveryError):
    """A procedure ended without meeting every success criterion (the record says which and why)."""

    def __init__(self, procedure: str, failed: list[str], halted: str | None, trading: str) -> None:
        self.procedure = procedure
        self.failed = failed
        self.halted = halted
        why = ", ".join(failed) or "the success criteria were not evaluated"
        stopped = f" The run halted: {halted}." if halted else ""
        super().__init__(
            f"Procedure {procedure} did NOT recover the system: failed criteria: {why}.{stopped} {trading} "
            "Follow the escalation above."
        )


class Halted:
    """What a step returns when an earlier step halted the run."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __repr__(self) -> str:
        return f"⏭ Skipped: the run was halted ({self.reason}). See the escalation at the end."

    def _repr_html_(self) -> str:
        import html

        return (
            f"<p><b>⏭ Skipped</b>: the run was halted ({html.escape(self.reason)}). See the escalation at the end.</p>"
        )


class NothingToDo:
    """What a writing step returns when the assessment found no fault: nothing is stopped or changed."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def summary(self) -> str:
        """One line for a person."""
        return f"Nothing to do: {self.reason}. Nothing was stopped or changed."

    def __repr__(self) -> str:
        return "✅ " + self.summary()


def idle(run: Run) -> NothingToDo | None:
    """The :class:`NothingToDo` to return when the assessment found no fault, else None."""
    return NothingToDo(run.nothing_to_do) if run.nothing_to_do else None


def halt(run: Run, reason: str) -> Halted:
    """Stop the procedure here: record why; later steps skip."""
    reason = to_plain(reason, run.site.root)  # messages name files by their site path, never the host's
    if not run.halted:
        run.halted = reason
        run.record("halted", {"reason": reason, "at": now_iso()})
    return Halted(reason)


def refused(run: Run, action: str, summary: str | None = None) -> Halted | None:
    """The approval of ``action`` (``summary``: what it does; None: the one already requested).

    Interactive, a missing approval raises :class:`ApprovalRequired`: the person clicks and reruns the
    cell. Headless, nobody can click: the run halts, so the record still ends with its criteria,
    escalation and outcome. Returns None when approved.
    """
    try:
        if summary is None:
            run.gate.require(action)
        else:
            run.gate.confirm(action, summary)
    except ApprovalRequired as exc:
        if run.gate.interactive:
            raise
        return halt(run, f"not approved: {exc}")
    return None


def halted(run: Run) -> Halted | None:
    """The :class:`Halted` to return when the run was halted earlier, else None."""
    return Halted(run.halted) if run.halted else None


def succeeded(value: Any) -> bool:
    """True for a step result that says it succeeded (``.ok``), never for a skipped step."""
    return bool(getattr(value, "ok", False)) and not isinstance(value, Halted)


def health(run: Run, *names: str) -> tuple[bool, str]:
    """Run the health checks (``names``, or all) now: (all healthy, evidence naming each check)."""
    results = health_check.run_all(run.site)
    chosen = {n: r for n, r in results.items() if not names or n in names}
    failing = [n for n, r in chosen.items() if not r.healthy]
    checked = ", ".join(chosen)
    if failing:
        details = "; ".join(f"{n}: {chosen[n].message}" for n in failing)
        return False, f"failing: {details} (checked: {checked})"
    return True, f"healthy ({'every check' if not names else 'checked'}: {checked})"
