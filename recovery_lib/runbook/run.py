"""The run of a procedure notebook: who runs it, on which site, what was approved and recorded.

:class:`Run` is what every step takes. :class:`NotRun` is what a step variable holds before its step
ran, :func:`ran` refuses it with the step to run first, and :class:`InvalidRun` is what ``run``
becomes when a rerun of the validation cell fails (the cells below refuse instead of going on).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recovery_lib.clock import now_iso
from recovery_lib.errors import ParameterError, StepNotRun
from recovery_lib.manager import RecoveryManager
from recovery_lib.runbook.approval import ApprovalGate
from recovery_lib.runbook.escalation import Facts
from recovery_lib.runbook.journal import IncidentJournal
from recovery_lib.runbook.record_types import AbortedRecord, HaltedRecord
from recovery_lib.runbook.records import Recorder, to_plain
from recovery_lib.runbook.resume import Resume
from recovery_lib.site.config import Site


@dataclass
class Run:
    """One execution of a procedure notebook: who, where, what was approved and recorded."""

    procedure: str
    parameters: dict[str, Any]
    site: Site
    operator: str
    incident_id: str
    kind: str
    started_at: str
    recorder: Recorder
    gate: ApprovalGate
    manager: RecoveryManager
    facts: Facts = field(default_factory=Facts)  # what escalation needs to know
    halted: str | None = None  # why the procedure stopped early, if it did
    summary: Any = None  # the incident summary (post-recovery notebook)
    criteria: Any = None  # the success criteria checklist, once judged
    remedy_action: str | None = None  # the remedy put up for approval (Procedure B)
    nothing_to_do: str | None = None  # the assessment found no fault: writing steps leave the site alone
    known_trade_ids: set[int] = field(default_factory=set)  # trade ids known before a data remedy changed the ledger
    run_id: str = ""  # this run in the incident journal
    journal: IncidentJournal | None = None
    incident_source: str = "new"  # parameter | records | journal (the open incident) | new
    done: dict[str, Any] = field(default_factory=dict)  # steps that happened, by key: a rerun says so
    namespace_names: set[str] = field(default_factory=set)  # the kernel's names at the first validation
    reruns: int = 0  # times the validation cell ran again with the same parameters
    aborted: AbortedRecord | None = None  # who clicked Abort on what, and when
    also_open: str | None = None  # triage started a new incident while this one was still open
    resume: Resume | None = None  # the failed run this one resumes, and what it replays of it

    def __repr__(self) -> str:
        mode = "interactive: approve in the widgets" if self.gate.interactive else "headless: approvals by parameter"
        joined = {
            "journal": " (joined the open incident of this site)",
            "new": " (a new incident)",
        }.get(self.incident_source, "")
        again = (
            f". Validation rerun {self.reruns}x with the same parameters: the same run goes on, approvals stand"
            if self.reruns
            else ""
        )
        journal = f"; journal {self.relative(self.journal.path)}" if self.journal else ""
        if self.also_open:
            journal += (
                f". NOTE: incident {self.also_open} is still open (P has not closed it); this triage starts a new "
                f"one. To go on with {self.also_open} instead, set incident_id to it and rerun this cell"
            )
        return (
            f"Run of procedure {self.procedure} in incident {self.incident_id}{joined} ({self.kind}) by "
            f"{self.operator} on site {self.site.name}, {mode}{journal}{again}"
        )

    def halt(self, reason: str) -> str:
        """Stop the procedure here (the first reason wins); recorded as ``halted``. Returns the reason."""
        reason = to_plain(reason, self.site.root)  # messages name files by their site path, never the host's
        if not self.halted:
            self.halted = reason
            self.record("halted", HaltedRecord(reason=reason, at=now_iso()))
        return self.halted

    def record(self, name: str, value: Any) -> Any:
        """Record a structured result into the notebook."""
        return self.recorder.record(name, value)

    def relative(self, path: Path | str) -> str:
        """A path as the record shows it: relative to the site when inside it."""
        return self.site.relative(Path(path))


class NotRun:
    """What a step variable holds before its step has run (a cell run out of order says so)."""

    ok = False

    def __init__(self, variable: str, step: str) -> None:
        self.variable = variable
        self.step = step

    def summary(self) -> str:
        """One line for a person."""
        return f"not run: the step '{self.step}' (which sets `{self.variable}`) has not run in this kernel"

    def __repr__(self) -> str:
        return f"⏭ {self.summary()}"


def ran(value: Any) -> Any:
    """``value``, or :class:`StepNotRun` naming the step to run first when it is a :class:`NotRun`."""
    if isinstance(value, NotRun):
        raise StepNotRun(
            f"this cell needs `{value.variable}`, which the step '{value.step}' sets, and that step has not run "
            "in this kernel. Nothing was done: run the cells above it first, in order."
        )
    return value


class InvalidRun:
    """What ``run`` becomes when the validation cell is rerun with parameters that fail: the cells below
    refuse (with the reason) instead of going on with the old parameters."""

    def __init__(self, problem: str) -> None:
        self._problem = problem

    def __getattr__(self, name: str) -> Any:
        raise ParameterError(f"the parameters failed validation, so no step runs: {self._problem}")

    def __repr__(self) -> str:
        return f"⛔ No run: the parameters failed validation ({self._problem})"
