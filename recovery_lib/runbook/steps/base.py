"""What every procedure step shares: halting a run, and reading health checks as evidence.

A step that cannot go on (no usable backup, a failed restore) *halts* the run: later steps return a
:class:`Halted` saying why, the success criteria fail, the escalation names who to call, and the
final outcome cell raises :class:`ProcedureFailed`, so papermill exits non-zero and no record of a
failed recovery reads like a successful one.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from typing import Any

from recovery_lib.checks.default import health_check
from recovery_lib.clock import now_iso
from recovery_lib.errors import RecoveryError
from recovery_lib.runbook.approval import ApprovalRequired
from recovery_lib.runbook.notebook import Run


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
    """What a step returns when an earlier step halted the run (``aborted``: a person clicked Abort)."""

    ok = False

    def __init__(self, reason: str, aborted: bool = False) -> None:
        self.reason = reason
        self.aborted = aborted

    def summary(self) -> str:
        """One line for a person."""
        if self.aborted:
            return f"Skipped because the procedure was aborted ({self.reason}). Nothing was done by this step."
        return f"Skipped: the run was halted ({self.reason}). See the escalation at the end."

    def __repr__(self) -> str:
        return f"⏭ {self.summary()}"

    def _repr_html_(self) -> str:
        import html

        head, _, rest = self.summary().partition(" (")
        return f"<p><b>⏭ {html.escape(head)}</b> ({html.escape(rest)}</p>"


class Again:
    """A step run again after it already happened in this run: the earlier result, not a second action."""

    def __init__(self, value: Any, what: str, at: str, where: str = "in this run") -> None:
        if isinstance(value, Again):  # an earlier result that was itself a repeat: say it once
            value, what, at, where = value.value, value.what, value.at, value.where
        self.value = value
        self.what = what
        self.at = at
        self.where = where  # "in this run", or "earlier in this incident" (another kernel's run)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.value, name)  # .ok, .backup_id ... of the earlier result

    def summary(self) -> str:
        """One line for a person."""
        earlier = getattr(self.value, "summary", None)
        if callable(earlier):
            shown = " " + earlier()
        elif isinstance(self.value, str):
            shown = " " + self.value
        else:  # a table or a plan: shown where the step first ran
            shown = " (what it showed then is in the record)"
        return f"Already done {self.where}: {self.what} at {self.at.replace('T', ' ')[:19]}Z; not repeated.{shown}"

    def __repr__(self) -> str:
        return f"↩ {self.summary()}"


def digest(plan: dict[str, Any], fingerprint: str) -> str:
    """What an approval is for: exactly this plan (its plain data) on exactly this site state."""
    text = json.dumps(plan, sort_keys=True, default=str) + fingerprint
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def once(run: Run, step: str, key: str = "") -> Again | None:
    """The earlier result when ``step`` already happened in this run for the same ``key``, else None."""
    done = run.done.get(step)
    if done is not None and done[0] == key:
        return Again(*done[1:])
    return None


def did(run: Run, step: str, value: Any, what: str, key: str = "") -> Any:
    """Remember that ``step`` happened (a rerun of its cell returns :class:`Again`); returns ``value``."""
    if isinstance(value, Again):  # remember the original, so a later repeat names it once
        run.done[step] = (key, value.value, value.what, value.at, value.where)
    else:
        run.done[step] = (key, value, what, now_iso(), "in this run")
    return value


# The steps that change the site: once one of them happened in a run, the steps that prepared it
# (assessment, backup choice, dry run, pre-recovery backup) are not repeated by a "Run All".
CHANGES = ("restore", "remedy")


def prepares(step: str, what: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a step that prepares a change: run again after the change happened in this run, it
    returns its earlier result (:class:`Again`) instead of working it out anew on the changed site,
    so a rerun of the whole notebook neither plans a second restore nor asks for a second approval."""

    def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def step_function(run: Run, *args: Any, **kwargs: Any) -> Any:
            done = run.done.get(step)
            if done is not None and any(change in run.done for change in CHANGES):
                return Again(*done[1:])
            value = function(run, *args, **kwargs)
            if not isinstance(value, Halted | NothingToDo):
                did(run, step, value, what)
            return value

        return step_function

    return decorate


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
    run.halt(reason)
    return Halted(run.halted or reason, aborted=run.aborted is not None)


def refused(run: Run, action: str, summary: str | None = None, key: str = "") -> Halted | None:
    """The approval of ``action`` (``summary``: what it does; None: the one already requested).

    Interactive, a missing approval raises :class:`ApprovalRequired`: the person clicks and reruns the
    cell. Headless, nobody can click: the run halts, so the record still ends with its criteria,
    escalation and outcome. Returns None when approved.
    """
    try:
        if summary is None:
            run.gate.require(action)
        else:
            run.gate.confirm(action, summary, key)
    except ApprovalRequired as exc:
        if run.gate.interactive:
            raise
        return halt(run, f"not approved: {exc}")
    return None


def halted(run: Run) -> Halted | None:
    """The :class:`Halted` to return when the run was halted earlier, else None."""
    return Halted(run.halted, aborted=run.aborted is not None) if run.halted else None


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
