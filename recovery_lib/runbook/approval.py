"""The approval gate: nothing destructive happens until a person (or a drill parameter) approves.

Interactive (JupyterLab): ``gate.request(action, summary)`` returns Approve / Abort buttons to show;
``gate.require(action)`` in the destructive cell raises :class:`ApprovalRequired` until Approve was
clicked, with a message saying what to click, so "Run All" changes nothing unapproved.
Headless (papermill): approvals come from the notebook's ``approve`` parameter. Either way every
decision (who, what, when, how) is kept for the record, and handed to ``on_decision`` the moment it
is made (the incident journal writes it there and then: a reload or a kernel restart loses nothing).

Safe to run again: a plan cell rerun with the same plan (same ``key``) keeps its decision instead of
asking again, and an approval given before a kernel restart (:meth:`ApprovalGate.remember`) stands
for exactly the same plan. While a cell waits for approval, its message is a live display that the
click turns into "approved: run this cell again", so no stale "not approved" is left under it.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from recovery_lib.clock import now_iso
from recovery_lib.errors import ApprovalRequired
from recovery_lib.rendering import LiveWidget, human_time


@dataclass
class Decision:
    """One approval decision, as it goes into the record."""

    action: str
    approved: bool
    by: str
    at: str
    via: str  # "widget" | "parameter"
    summary: str
    key: str = ""  # what exactly was approved (the plan's digest): a changed plan needs a new decision
    note: str = ""  # e.g. "given before the kernel restart"


def _ignore(name: str, value: Any) -> None:
    """The default record hook: a gate used outside a notebook run records nothing."""


def _no_hook(decision: Decision) -> None:
    """The default decision hook: nothing to tell."""


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
        on_decision: Callable[[Decision], None] = _no_hook,
    ) -> None:
        self.interactive = interactive
        self.approvals = set(approvals)
        self.operator = operator
        self.decisions: dict[str, Decision] = {}
        self.requested: dict[str, str] = {}
        self.keys: dict[str, str] = {}
        self.groups: dict[str, tuple[str, ...]] = {}  # action -> the options asked for together with it
        self.remembered: dict[str, Decision] = {}
        self._record = record
        self._on_decision = on_decision
        self._waiting: dict[str, list[Any]] = {}  # action -> live "not approved yet" displays to turn green

    def remember(self, decisions: list[Decision]) -> None:
        """Approvals given in an earlier kernel of the same procedure and incident: each stands again
        for exactly the same plan (same summary and key), never for a changed one. Aborts are not
        carried over: an aborted run ended, and a new kernel is a new attempt."""
        for decision in decisions:
            # Only approvals bound to what they approved (a plan's digest, a process id) carry over:
            # "create a backup" approved then is not an approval of a backup of the state now.
            if decision.approved and decision.via == "widget" and decision.key:
                self.remembered[decision.action] = decision

    def _decide(self, decision: Decision) -> None:
        self.decisions[decision.action] = decision
        self._on_decision(decision)
        for handle in self._waiting.pop(decision.action, []):
            handle.update(_waiting_bundle(decision, self.verdict(decision.action)), raw=True)

    def _kept(self, action: str, summary: str, key: str) -> Decision | None:
        """The decision that still stands for this exact plan: this kernel's, or one remembered."""
        same = self.requested.get(action) == summary and self.keys.get(action, "") == key
        current = self.decisions.get(action)
        if current is not None and same and current.via == "widget":
            return current
        remembered = self.remembered.get(action)
        if remembered is not None and remembered.summary == summary and remembered.key == key:
            return Decision(
                action,
                True,
                remembered.by,
                remembered.at,
                remembered.via,
                summary,
                key,
                "given before the kernel restart",
            )
        return None

    def request(self, action: str, summary: str, step: str = "", key: str = "") -> Any:
        """Ask for approval of ``action``; returns something to display (widgets or text).

        ``step``: the title of the cell that applies it (named in "now run ..."). ``key``: a digest of
        exactly what is approved; asked again with the same summary and key, the decision stands.
        """
        kept = self._kept(action, summary, key) if self.interactive else None
        self.requested[action] = summary
        self.keys[action] = key
        self.groups[action] = (action,)
        self.decisions.pop(action, None)
        if not self.interactive:
            approved = action in self.approvals
            self._decide(Decision(action, approved, self.operator, now_iso(), "parameter", summary, key))
            return _Text(self.verdict(action) + (f" What: {summary}" if approved else ""))
        import ipywidgets as widgets

        status = widgets.HTML(f"<b>Waiting for approval</b> of <code>{html.escape(action)}</code>.")
        approve = widgets.Button(description="Approve", button_style="danger", icon="check")
        abort = widgets.Button(description="Abort", icon="times")

        def show(decision: Decision, kept: bool = False) -> None:
            word = "APPROVED" if decision.approved else "ABORTED"
            why = f" ({decision.note})" if decision.note else " (kept: the plan has not changed)" if kept else ""
            status.value = f"<b>{word}</b> by {html.escape(decision.by)} at {human_time(decision.at)}{why}. " + (
                (f"Now run the cell <b>{html.escape(step)}</b>." if step else "Run this cell again to go on.")
                if decision.approved
                else _ABORTED
            )
            approve.disabled = abort.disabled = True

        def decide(approved: bool) -> None:
            self._decide(Decision(action, approved, self.operator, now_iso(), "widget", summary, key))
            show(self.decisions[action])

        preview = widgets.HTML(f"<pre>{html.escape(summary)}</pre>")
        buttons = widgets.VBox([preview, widgets.HBox([approve, abort]), status])
        shown = LiveWidget(buttons, lambda: self.verdict(action))
        if kept is not None:
            self.decisions[action] = kept
            if kept.note:
                self._on_decision(kept)  # the journal says the earlier approval was used again
            show(kept, kept=True)
        approve.on_click(lambda _: (decide(True), shown.refresh()))
        abort.on_click(lambda _: (decide(False), shown.refresh()))
        return shown

    def request_choice(self, options: dict[str, str], default: str, step: str = "", key: str = "") -> Any:
        """Ask for one of ``options`` (action -> what it does) to be chosen and approved.

        Headless: ``default`` (the parameter's or the recommended choice) is requested like any action.
        Interactive: the options are offered as radio buttons above Approve / Abort; approving one
        records the others as not chosen, so :meth:`chosen` names exactly one.
        """
        if not self.interactive or len(options) == 1:
            return self.request(default, options[default], step, key)
        import ipywidgets as widgets

        kept = {action: self._kept(action, summary, key) for action, summary in options.items()}
        for action, summary in options.items():
            self.requested[action] = summary
            self.keys[action] = key
            self.groups[action] = tuple(options)
            self.decisions.pop(action, None)
        radio = widgets.RadioButtons(
            options=[(summary, action) for action, summary in options.items()],
            value=default,
            layout=widgets.Layout(width="95%"),
        )
        status = widgets.HTML("<b>Waiting for approval</b>: choose one option, then Approve (or Abort).")
        approve = widgets.Button(description="Approve", button_style="danger", icon="check")
        abort = widgets.Button(description="Abort", icon="times")

        def show(picked: str | None, by: str, at: str, note: str = "") -> None:
            word = f"APPROVED {html.escape(picked)}" if picked else "ABORTED"
            why = f" ({note})" if note else ""
            status.value = f"<b>{word}</b> by {html.escape(by)} at {human_time(at)}{why}. " + (
                f"Now run the cell <b>{html.escape(step or 'below')}</b>." if picked else _ABORTED
            )
            approve.disabled = abort.disabled = radio.disabled = True

        def decide(approved: bool) -> None:
            at = now_iso()
            # The choice first, the rest after: the hook halts the run on an abort of the last one.
            ordered = sorted(options, key=lambda a: a != radio.value)
            for action in ordered:
                picked = approved and action == radio.value
                self._decide(Decision(action, picked, self.operator, at, "widget", options[action], key))
            show(radio.value if approved else None, self.operator, at)

        buttons = widgets.VBox([radio, widgets.HBox([approve, abort]), status])
        standing = next((d for d in kept.values() if d is not None and d.approved), None)
        if standing is not None:  # the same options again: the approval stands
            radio.value = standing.action
            for action, summary in options.items():
                picked = action == standing.action
                self.decisions[action] = Decision(action, picked, standing.by, standing.at, "widget", summary, key)
            show(standing.action, standing.by, standing.at, standing.note or "kept: the options have not changed")

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
        note = f", {decision.note}" if decision.note else ""
        return f"Approval for {action}: {word} by {decision.by} at {human_time(decision.at)} (by {decision.via}{note})."

    def require(self, action: str) -> Decision:
        """Return the approval of ``action`` or raise :class:`ApprovalRequired` (fail closed)."""
        if action not in self.requested:
            raise ApprovalRequired(f"{action} was never proposed: run the cell that shows its plan first.")
        decision = self.decisions.get(action)
        if decision is None:
            error = ApprovalRequired(
                f"{action} is not approved yet, nothing was changed. Review what it will do (shown above) and "
                f"click 'Approve' (or 'Abort'), then run this cell again."
            )
            if self.interactive:
                error.shown = self._show_waiting(action, str(error))
            raise error
        self._record(f"approval_{action}", decision)
        if not decision.approved:
            how = "it was aborted" if decision.via == "widget" else f"{action!r} is not in the approve parameter"
            raise ApprovalRequired(f"{action} was not approved ({how}); nothing was changed.")
        return decision

    def confirm(self, action: str, summary: str, key: str = "") -> Decision:
        """Approval for a step that writes (stop, start, backup): granted, or fail closed.

        Interactive: the first run shows Approve / Abort and raises; after Approve, running the cell
        again proceeds. Headless: ``action`` must be in the approve parameter.
        """
        decision = self.decisions.get(action)
        if decision is not None and decision.approved and self.requested.get(action) == summary:
            return decision
        shown = self.request(action, summary, key=key)
        try:
            from IPython.display import display
        except ImportError:  # plain Python: the record hook keeps the decision
            pass
        else:
            display(shown)  # headless too: the archived record shows who approved what, and when
        return self.require(action)

    def _show_waiting(self, action: str, message: str) -> bool:
        """Show ``message`` as a live display the Approve / Abort click updates; False outside IPython."""
        try:
            from IPython import get_ipython
            from IPython.display import display
        except ImportError:
            return False
        if get_ipython() is None:
            return False
        bundle = {
            "text/plain": f"⛔ {message}",
            "text/html": f"<p style='color:#b71c1c'><b>⛔ Not approved yet.</b> {html.escape(message)}</p>",
        }
        self._waiting.setdefault(action, []).append(display(bundle, raw=True, display_id=True))
        return True

    def log(self) -> list[Decision]:
        """Every decision so far, for the record."""
        return list(self.decisions.values())


_ABORTED = "Nothing was changed by this step; the procedure stops here (the cells below say so)."


def _waiting_bundle(decision: Decision, verdict: str) -> dict[str, str]:
    """What a "not approved yet" message turns into once Approve or Abort is clicked."""
    if decision.approved:
        text = f"✅ {verdict} Run this cell again to go on."
        color = "#2e7d32"
    else:
        text = f"⛔ {verdict} Nothing was changed; the procedure stops here."
        color = "#b71c1c"
    return {"text/plain": text, "text/html": f"<p style='color:{color}'><b>{html.escape(text)}</b></p>"}


class _Text:
    """Plain text that renders the same in JupyterLab and in nbconvert's HTML."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text

    def _repr_html_(self) -> str:
        return f"<p>{html.escape(self.text)}</p>"
