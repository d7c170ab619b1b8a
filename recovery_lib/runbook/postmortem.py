"""Post-recovery: the incident summary from the records of an incident's notebooks, and the
stakeholder notification (runbook: Post-Recovery Actions, "Document incident", "Notify stakeholders").

The summary claims no more than the records show: the incident counts as recovered only when every
procedure notebook's outcome was success (each of its success criteria passed) and the verification
notebook passed; anything unknown is said to be unknown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recovery_lib.catalog import COMPLETE_FAILURE, POST_RECOVERY, PROCEDURES, RECOVERY_PROCEDURES
from recovery_lib.clock import human_duration, seconds_between
from recovery_lib.runbook.escalation import Facts
from recovery_lib.runbook.journal import IncidentJournal
from recovery_lib.runbook.records import (
    NotebookRecords,
    Step,
    aborted_of,
    backup_selection_of,
    drill_of,
    escalation_of,
    found_no_backup,
    halted_of,
    outcome_of,
    read_notebook,
    remedy_of,
    restore_result_of,
    resume_of,
    run_of,
    trades_of,
    triage_of,
    verification_of,
)

PROCEDURE_LETTERS = RECOVERY_PROCEDURES


@dataclass
class IncidentSummary:
    """What failed, when it was detected, what was done, how long it took, what data was lost."""

    incident_id: str | None = None
    scenario: str | None = None
    scenario_number: int | None = None  # the runbook's scenario (1-4) triage detected: what decisions read
    what_failed: list[str] = field(default_factory=list)
    detected_at: str | None = None
    recovered_at: str | None = None
    time_to_recovery_s: float | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)
    data_loss_window_s: float | None = None
    backup_used: str | None = None  # the backup a restore was applied from (None: no restore was applied)
    restored_ok: bool | None = None
    remedy: str | None = None  # "repair" or "restore", when a data remedy was applied
    verified_ok: bool | None = None  # the verification notebook's verdict
    verification_stale: bool = False  # a verification ran, but a procedure ran after it: run V again
    verification_failed: list[str] = field(default_factory=list)  # its checks that failed
    procedures: list[dict[str, Any]] = field(default_factory=list)  # each procedure notebook's outcome
    trades_lost: int | None = None
    trades_recovered: int | None = None
    trades_missing: int | None = None
    notebooks: list[str] = field(default_factory=list)
    gate_failing: str | None = None  # the site fails the trading gate now (set by the post-recovery notebook)
    trading_now: bool | None = None  # whether the trading process runs now (idem)
    escalations: list[dict[str, Any]] = field(default_factory=list)  # what each procedure notebook escalated to

    @property
    def current(self) -> list[dict[str, Any]]:
        """The latest run of each procedure: a run a later one replaced (a kernel restart, a second
        attempt) stays in ``procedures`` as history but does not decide the verdict."""
        return [p for p in self.procedures if not p.get("superseded")]

    @property
    def aborted(self) -> list[str]:
        """Every abort of the incident, as "B: aborted by alice at ...: restore was not approved"."""
        return [f"{p['procedure']}: {p['halted']}" for p in self.procedures if p.get("aborted")]

    @property
    def failed_criteria(self) -> list[str]:
        """Every failed success criterion, as ``"B: Data reconciled with external systems"`` (``V:`` for
        the verification notebook's checks)."""
        failed = [f"{p['procedure']}: {c}" for p in self.current for c in p.get("failed_criteria", [])]
        failed += [f"{p['procedure']}: did not reach its outcome" for p in self.current if p.get("success") is None]
        failed += [f"V: {c}" for c in self.verification_failed]
        if self.gate_failing:
            failed.append(f"P: the site fails the trading gate now ({self.gate_failing})")
        return failed

    @property
    def recovered(self) -> bool | None:
        """True only when every procedure succeeded and verification passed; None when the records do not say."""
        if self.gate_failing:
            return False
        if not self.procedures and self.verified_ok is None:
            return None
        if any(p.get("success") is not True for p in self.current) or self.verified_ok is False:
            return False
        if not self.procedures or self.verified_ok is None:
            return None  # half the story: a procedure without verification, or the reverse
        return True

    def facts(self) -> Facts:
        """Escalation facts implied by the summary."""
        return Facts(
            restore_failed=self.restored_ok is False,
            criteria_failed=self.failed_criteria,
            trades_missing=self.trades_missing or 0,
            no_backup=any(p.get("no_backup") for p in self.current),
            aborted="; ".join(p["halted"] for p in self.current if p.get("aborted")) or None,
            data_loss_s=self.data_loss_window_s,
            systems_affected=len(self.what_failed),
            complete_failure=self.scenario_number == COMPLETE_FAILURE,
        )


def _add(total: int | None, value: Any) -> int | None:
    return (total or 0) + int(value) if isinstance(value, int | float) else total


PROCEDURE_NAMES = {p.key: p.label for p in PROCEDURES}  # how a journal run is named: "00 triage"


def journal_records(journal: IncidentJournal, exclude: set[str] | None = None) -> list[NotebookRecords]:
    """Each notebook run in an incident journal, as the records an executed notebook would carry; the
    post-recovery runs and ``exclude`` (run ids) are left out. Its steps are the records, in order."""
    found = []
    for run in journal.runs():
        if run.procedure == POST_RECOVERY or run.run in (exclude or set()):
            continue
        found.append(
            NotebookRecords(
                path=journal.path,
                records=run.records,
                steps=[Step(name, "recorded", None, at, None) for name, at in run.order],
                parameters={},
                record_times=run.record_times,
                source=f"{PROCEDURE_NAMES.get(run.procedure, run.procedure)} (journal)",
            )
        )
    return sorted(found, key=lambda n: run_of(n).get("started_at") or "")


def summarize(sources: list[str | Path | NotebookRecords]) -> IncidentSummary:
    """Put the incident together from executed notebooks (paths) or journal runs (:func:`journal_records`)."""
    summary = IncidentSummary()
    starts, ends = [], []
    fault_at = None
    rolled_back = False  # a restore from a backup ran: the window is from its restore point
    # Whether each procedure's restore or repair verified: a later run of it (a resumed run, a second
    # attempt) replaces an earlier one's result, as it replaces its verdict.
    restored: dict[str, bool] = {}
    for source in sources:
        notebook = source if isinstance(source, NotebookRecords) else read_notebook(source)
        summary.notebooks.append(notebook.label)
        run = run_of(notebook)
        summary.incident_id = summary.incident_id or run.get("incident_id")
        fault_at = fault_at or drill_of(notebook).get("fault_at")
        if run.get("started_at"):
            starts.append(run["started_at"])
        triage = triage_of(notebook)
        if triage:
            summary.scenario = triage.get("scenario_name")
            number = triage.get("scenario")
            summary.scenario_number = number if isinstance(number, int) and not isinstance(number, bool) else None
            summary.what_failed = triage.get("failed_checks", [])
            summary.detected_at = triage.get("detected_at")
        restore = restore_result_of(notebook)
        if restore:
            rolled_back = True
            restored[str(run.get("procedure") or notebook.label)] = bool(restore.get("ok"))
            if restore.get("backup_id"):
                summary.backup_used = restore["backup_id"]
            point = restore.get("backup_created_at")
            if point and summary.data_loss_window_s is None:
                # What a restore gives up: everything between the restore point and the failure.
                summary.data_loss_window_s = seconds_between(fault_at or run.get("started_at"), point)
        remedy = remedy_of(notebook)
        if remedy:
            summary.remedy = remedy.get("action")
            if remedy.get("action") == "repair":
                restored[str(run.get("procedure") or notebook.label)] = bool(remedy.get("ok"))
        trades = trades_of(notebook)
        if trades:
            summary.trades_lost = _add(summary.trades_lost, trades.get("lost"))
            summary.trades_recovered = _add(summary.trades_recovered, trades.get("recovered"))
            summary.trades_missing = _add(summary.trades_missing, trades.get("still_missing"))
        if run.get("procedure") in PROCEDURE_LETTERS:
            if summary.verified_ok is not None:  # it verified the site as it was before this procedure
                summary.verified_ok, summary.verification_failed, summary.recovered_at = None, [], None
                summary.verification_stale = True
            outcome, resumed = outcome_of(notebook), resume_of(notebook)
            summary.procedures.append(
                {
                    "procedure": run["procedure"],
                    "run_id": run.get("run_id"),
                    "resumed_from": run.get("resumed_from"),  # the failed run this one went on from
                    "resumed_at": resumed.get("failed_step"),  # where that run had stopped
                    "replayed": list(resumed.get("replay") or []),
                    "notebook": notebook.label,
                    "success": outcome.get("success"),  # None: the notebook never reached its verdict
                    "failed_criteria": outcome.get("failed_criteria", []),
                    "halted": halted_of(notebook).get("reason"),
                    "aborted": aborted_of(notebook),  # who clicked Abort on what, when
                    "trading_running": outcome.get("trading_running"),
                    "no_backup": found_no_backup(backup_selection_of(notebook)),
                }
            )
        verification, finished = verification_of(notebook), outcome_of(notebook).get("finished_at")
        if verification:
            summary.verification_stale = False
            summary.verified_ok = bool(verification.get("ok"))
            summary.verification_failed = list(outcome_of(notebook).get("failed_criteria", []))
            summary.recovered_at = finished or summary.recovered_at
        if escalation := escalation_of(notebook):
            summary.escalations.append(escalation)
        if finished:
            ends.append(finished)
        summary.steps += [
            {"notebook": notebook.label, "step": s.name, "status": s.status, "duration_s": s.duration_s}
            for s in notebook.steps
        ]
    summary.restored_ok = all(restored.values()) if restored else None
    for number, entry in enumerate(summary.procedures):
        later = summary.procedures[number + 1 :]
        entry["superseded"] = any(other["procedure"] == entry["procedure"] for other in later)
        entry["resumed_by"] = next((o["run_id"] for o in later if o.get("resumed_from") == entry.get("run_id")), None)
    if not rolled_back and summary.procedures:
        # Nothing was rolled back to a restore point (nothing to do, or the ledger repaired in place):
        # no window, as the drill history counts it.
        summary.data_loss_window_s = 0.0 if summary.recovered else None
    began = summary.detected_at or (min(starts) if starts else None)
    finished = summary.recovered_at if summary.recovered else None
    summary.time_to_recovery_s = seconds_between(finished, began)
    return summary


def notification(summary: IncidentSummary, escalation_line: str) -> str:
    """The stakeholder message: recovered or not (and why), impact, trades, data-loss window, next steps."""
    recovered = summary.recovered
    if recovered:
        state = "restored and verified"
    elif recovered is False:
        state = "NOT recovered"
    else:
        state = (
            "recovery NOT confirmed (a procedure ran after the last verification: run V again)"
            if summary.verification_stale
            else "recovery NOT confirmed (the records are incomplete)"
        )
    failed = summary.failed_criteria
    if summary.remedy == "repair" and summary.backup_used:
        done = f"restored from backup {summary.backup_used}, then the ledger repaired in place"
    elif summary.remedy == "repair":
        done = "data repaired in place"
    elif summary.backup_used:
        done = f"restored from backup {summary.backup_used}"
    elif summary.procedures:
        done = "no restore was applied"
    else:
        done = "no procedure was recorded for this incident"
    if summary.trades_lost is None:
        trades = "trades lost: not recorded"
    else:
        trades = (
            f"trades lost {summary.trades_lost}, recovered from the exchange {summary.trades_recovered or 0}, "
            f"still missing {summary.trades_missing or 0}"
        )
    window = (
        f"data-loss window {human_duration(summary.data_loss_window_s)}"
        if summary.data_loss_window_s is not None
        else "data-loss window unknown"
    )
    ttr = (
        f"{human_duration(summary.time_to_recovery_s)} from detection to verified recovery"
        if summary.time_to_recovery_s is not None
        else "not recovered"
        if recovered is False
        else "time to recovery unknown"
    )
    lines = [
        f"Subject: [{summary.incident_id or 'incident'}] {summary.scenario or 'Incident'}: system {state}",
        "",
        f"What failed: {', '.join(summary.what_failed) or 'not recorded'} (detected {summary.detected_at or '?'}).",
        f"Recovery: {done}; {ttr}.",
    ]
    if failed:
        lines.append(f"Failed success criteria: {'; '.join(failed)}.")
    if summary.aborted:
        lines.append(f"Aborted: {'; '.join(summary.aborted)}.")
    running = [p["trading_running"] for p in summary.procedures if p.get("trading_running") is not None]
    trading = summary.trading_now if summary.trading_now is not None else (running[-1] if running else None)
    if trading is not None:
        lines.append(f"Trading: {'running' if trading else 'STOPPED'} now.")
    lines += [
        f"Impact: {trades}; {window}.",
        f"Escalation: {escalation_line}",
        "Next steps: "
        + (
            "monitor hourly for 24 h, reconcile with external systems, schedule the post-mortem."
            if recovered
            else "follow the escalation; trading resumes only when config, data and reconciliation pass."
        ),
    ]
    return "\n".join(lines)
