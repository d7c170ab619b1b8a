"""What a step returns besides its result: a skip after a halt (:class:`Halted`), a result that already
happened (:class:`Again`: earlier in this run, another kernel's run, or replayed from a failed run), and a
step with nothing to do (:class:`NothingToDo`); ``once``/``did`` remember what happened in a run."""

from __future__ import annotations

from typing import Any

from recovery_lib.clock import now_iso
from recovery_lib.runbook.run import Run


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
        self.where = where  # "in this run", "earlier in this incident" (another kernel's run), "from run <id>"

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
        when = f"{self.at.replace('T', ' ')[:19]}Z"
        if self.where.startswith("from run"):  # a resumed run replays what the failed run did
            return f"{self.where[0].upper()}{self.where[1:]}, not repeated: {self.what} at {when}.{shown}"
        return f"Already done {self.where}: {self.what} at {when}; not repeated.{shown}"

    def __repr__(self) -> str:
        return f"↩ {self.summary()}"

    def _repr_html_(self) -> str | None:
        """A replay shows the mark, then the result as the failed run's cell showed it (a table, a plan)."""
        if not self.where.startswith("from run"):
            return None  # a repeat in this run: the line says where it was shown
        import html

        head = f"<p><b>↩ {html.escape(self.where[0].upper() + self.where[1:])}, not repeated</b>: "
        head += f"{html.escape(self.what)} at {html.escape(self.at.replace('T', ' ')[:19])}Z.</p>"
        shown = getattr(self.value, "_repr_html_", None)
        body = shown() if callable(shown) else f"<pre>{html.escape(repr(self.value))}</pre>"
        return head + (body or "")


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


class NothingToDo:
    """What a writing step returns when the assessment found no fault: nothing is stopped or changed."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def summary(self) -> str:
        """One line for a person."""
        return f"Nothing to do: {self.reason}. Nothing was stopped or changed."

    def __repr__(self) -> str:
        return "✅ " + self.summary()
