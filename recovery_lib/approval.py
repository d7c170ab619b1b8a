"""The approval gate: nothing destructive happens until a person (or a drill parameter) approves.

Interactive (JupyterLab): ``gate.request(action, summary)`` returns Approve / Abort buttons to show;
``gate.require(action)`` in the destructive cell raises :class:`ApprovalRequired` until Approve was
clicked, with a message saying what to click, so "Run All" changes nothing unapproved.
Headless (papermill): approvals come from the notebook's ``approve`` parameter. Either way every
decision (who, what, when, how) is kept for the record.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .errors import RecoveryError
from .rendering import LiveWidget


class ApprovalRequired(RecoveryError):
    """A destructive step was reached without approval: nothing was changed."""


@dataclass
class Decision:
    """One approval decision, as it goes into the record."""

    action: str
    approved: bool
    by: str
    at: str
    via: str  # "widget" | "parameter"
    summary: str


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class ApprovalGate:
    """Approvals for one notebook run."""

    def __init__(self, interactive: bool, approvals: list[str], operator: str) -> None:
        self.interactive = interactive
        self.approvals = set(approvals)
        self.operator = operator
        self.decisions: dict[str, Decision] = {}
        self.requested: dict[str, str] = {}

    def request(self, action: str, summary: str, step: str = "") -> Any:
        """Ask for approval of ``action``; returns something to display (widgets or text)."""
        self.requested[action] = summary
        self.decisions.pop(action, None)
        if not self.interactive:
            approved = action in self.approvals
            self.decisions[action] = Decision(action, approved, self.operator, _now(), "parameter", summary)
            verdict = "approved" if approved else f"NOT approved (add {action!r} to the approve parameter)"
            return _Text(f"Approval for {action}: {verdict} by parameter, operator {self.operator}.")
        import ipywidgets as widgets

        status = widgets.HTML(f"<b>Waiting for approval</b> of <code>{html.escape(action)}</code>.")
        approve = widgets.Button(description="Approve", button_style="danger", icon="check")
        abort = widgets.Button(description="Abort", icon="times")

        def decide(approved: bool) -> None:
            self.decisions[action] = Decision(action, approved, self.operator, _now(), "widget", summary)
            word = "APPROVED" if approved else "ABORTED"
            status.value = f"<b>{word}</b> by {html.escape(self.operator)} at {self.decisions[action].at}. " + (
                f"Now run the {html.escape(step or action)} cell." if approved else "Nothing will be changed."
            )
            approve.disabled = abort.disabled = True

        preview = widgets.HTML(f"<pre>{html.escape(summary)}</pre>")
        buttons = widgets.VBox([preview, widgets.HBox([approve, abort]), status])
        shown = LiveWidget(buttons, lambda: self.verdict(action))
        approve.on_click(lambda _: (decide(True), shown.refresh()))
        abort.on_click(lambda _: (decide(False), shown.refresh()))
        return shown

    def verdict(self, action: str) -> str:
        """The decision on ``action`` in one line: what an archived record shows where the buttons were."""
        decision = self.decisions.get(action)
        if decision is None:
            return f"Approval for {action}: not given (Approve / Abort were not clicked); nothing was changed."
        word = "APPROVED" if decision.approved else "ABORTED"
        return f"Approval for {action}: {word} by {decision.by} at {decision.at} ({decision.via})."

    def require(self, action: str) -> Decision:
        """Return the approval of ``action`` or raise :class:`ApprovalRequired` (fail closed)."""
        if action not in self.requested:
            raise ApprovalRequired(f"{action} was never proposed: run the cell that shows its plan first.")
        decision = self.decisions.get(action)
        if decision is None:
            raise ApprovalRequired(
                f"{action} is not approved yet, nothing was changed. Review what it will do (shown above) and "
                f"click 'Approve' (or 'Abort'), then run this cell again."
            )
        if not decision.approved:
            how = "it was aborted" if decision.via == "widget" else f"{action!r} is not in the approve parameter"
            raise ApprovalRequired(f"{action} was not approved ({how}); nothing was changed.")
        return decision

    def confirm(self, action: str, summary: str) -> Decision:
        """Approval for a step that writes (stop, start, backup): granted, or fail closed.

        Interactive: the first run shows Approve / Abort and raises; after Approve, running the cell
        again proceeds. Headless: ``action`` must be in the approve parameter.
        """
        decision = self.decisions.get(action)
        if decision is not None and decision.approved and self.requested.get(action) == summary:
            return decision
        shown = self.request(action, summary)
        if self.interactive:
            from IPython.display import display

            display(shown)
        return self.require(action)

    def log(self) -> list[Decision]:
        """Every decision so far, for the record."""
        return list(self.decisions.values())


class _Text:
    """Plain text that renders the same in JupyterLab and in nbconvert's HTML."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text

    def _repr_html_(self) -> str:
        return f"<p>{html.escape(self.text)}</p>"
