"""The approval gate: nothing destructive happens until a person (or a drill parameter) approves.

Interactive (JupyterLab): ``gate.request(action, summary)`` returns Approve / Abort buttons to show;
``gate.require(action)`` in the destructive cell raises :class:`ApprovalRequired` until Approve was
clicked, with a message saying what to click, so "Run All" changes nothing unapproved.
Headless (papermill): approvals come from the notebook's ``approve`` parameter. Either way every
decision (who, what, when, how) is kept for the record.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .clock import now_iso
from .errors import RecoveryError
from .rendering import LiveWidget, human_time


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


def _ignore(name: str, value: Any) -> None:
    """The default record hook: a gate used outside a notebook run records nothing."""


class ApprovalGate:
    """Approvals for one notebook run.

    ``record(name, value)`` is called with ``approval_<action>`` each time a decision is used or
    refused, so the record says who approved what, when and how, next to the step it allowed.
    """

    def __init__(
        self,
        interactive: bool,
        approvals: list[str],
        operator: str,
        record: Callable[[str, Any], Any] = _ignore,
    ) -> None:
        self.interactive = interactive
        self.approvals = set(approvals)
        self.operator = operator
        self.decisions: dict[str, Decision] = {}
        self.requested: dict[str, str] = {}
        self._record = record

    def request(self, action: str, summary: str, step: str = "") -> Any:
        """Ask for approval of ``action``; returns something to display (widgets or text)."""
        self.requested[action] = summary
        self.decisions.pop(action, None)
        if not self.interactive:
            approved = action in self.approvals
            self.decisions[action] = Decision(action, approved, self.operator, now_iso(), "parameter", summary)
            return _Text(self.verdict(action) + (f" What: {summary}" if approved else ""))
        import ipywidgets as widgets

        status = widgets.HTML(f"<b>Waiting for approval</b> of <code>{html.escape(action)}</code>.")
        approve = widgets.Button(description="Approve", button_style="danger", icon="check")
        abort = widgets.Button(description="Abort", icon="times")

        def decide(approved: bool) -> None:
            self.decisions[action] = Decision(action, approved, self.operator, now_iso(), "widget", summary)
            word = "APPROVED" if approved else "ABORTED"
            at = human_time(self.decisions[action].at)
            status.value = f"<b>{word}</b> by {html.escape(self.operator)} at {at}. " + (
                f"Now run the {html.escape(step or action)} cell." if approved else "Nothing will be changed."
            )
            approve.disabled = abort.disabled = True

        preview = widgets.HTML(f"<pre>{html.escape(summary)}</pre>")
        buttons = widgets.VBox([preview, widgets.HBox([approve, abort]), status])
        shown = LiveWidget(buttons, lambda: self.verdict(action))
        approve.on_click(lambda _: (decide(True), shown.refresh()))
        abort.on_click(lambda _: (decide(False), shown.refresh()))
        return shown

    def request_choice(self, options: dict[str, str], default: str, step: str = "") -> Any:
        """Ask for one of ``options`` (action -> what it does) to be chosen and approved.

        Headless: ``default`` (the parameter's or the recommended choice) is requested like any action.
        Interactive: the options are offered as radio buttons above Approve / Abort; approving one
        records the others as not chosen, so :meth:`chosen` names exactly one.
        """
        if not self.interactive or len(options) == 1:
            return self.request(default, options[default], step)
        import ipywidgets as widgets

        for action, summary in options.items():
            self.requested[action] = summary
            self.decisions.pop(action, None)
        radio = widgets.RadioButtons(
            options=[(summary, action) for action, summary in options.items()],
            value=default,
            layout=widgets.Layout(width="95%"),
        )
        status = widgets.HTML("<b>Waiting for approval</b>: choose one option, then Approve (or Abort).")
        approve = widgets.Button(description="Approve", button_style="danger", icon="check")
        abort = widgets.Button(description="Abort", icon="times")

        def decide(approved: bool) -> None:
            at = now_iso()
            for action, summary in options.items():
                picked = approved and action == radio.value
                self.decisions[action] = Decision(action, picked, self.operator, at, "widget", summary)
            word = f"APPROVED {html.escape(radio.value)}" if approved else "ABORTED"
            status.value = f"<b>{word}</b> by {html.escape(self.operator)} at {human_time(at)}. " + (
                f"Now run the {html.escape(step or 'next')} cell." if approved else "Nothing will be changed."
            )
            approve.disabled = abort.disabled = radio.disabled = True

        buttons = widgets.VBox([radio, widgets.HBox([approve, abort]), status])

        def summary() -> str:
            made = [self.verdict(a) for a in options if (d := self.decisions.get(a)) is not None and d.approved]
            return " ".join(made) or self.verdict(default)

        shown = LiveWidget(buttons, summary)
        approve.on_click(lambda _: (decide(True), shown.refresh()))
        abort.on_click(lambda _: (decide(False), shown.refresh()))
        return shown

    def chosen(self, actions: list[str], default: str) -> str:
        """The approved one of ``actions`` (after :meth:`request_choice`), else ``default``."""
        return next((a for a in actions if (d := self.decisions.get(a)) is not None and d.approved), default)

    def verdict(self, action: str) -> str:
        """The decision on ``action`` in one line: what an archived record shows where the buttons were."""
        decision = self.decisions.get(action)
        if decision is None:
            return f"Approval for {action}: not given (Approve / Abort were not clicked); nothing was changed."
        if decision.via == "parameter":
            word = "APPROVED" if decision.approved else f"NOT approved ({action!r} is not in the approve parameter)"
        else:
            word = "APPROVED" if decision.approved else "ABORTED"
        return f"Approval for {action}: {word} by {decision.by} at {human_time(decision.at)} (by {decision.via})."

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
        self._record(f"approval_{action}", decision)
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
        try:
            from IPython.display import display
        except ImportError:  # plain Python: the record hook keeps the decision
            pass
        else:
            display(shown)  # headless too: the archived record shows who approved what, and when
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
