"""Post-recovery: the incident summary from the records of an incident's notebooks, and the
stakeholder notification (runbook: Post-Recovery Actions, "Document incident", "Notify stakeholders")."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from .escalation import Facts
from .records import read_notebook


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


@dataclass
class IncidentSummary:
    """What failed, when it was detected, what was done, how long it took, what data was lost."""

    incident_id: str | None = None
    scenario: str | None = None
    what_failed: list[str] = field(default_factory=list)
    detected_at: str | None = None
    recovered_at: str | None = None
    time_to_recovery_s: float | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)
    data_loss_window_s: float | None = None
    backup_used: str | None = None
    restored_ok: bool | None = None
    verified_ok: bool | None = None
    notebooks: list[str] = field(default_factory=list)
    escalations: list[dict[str, Any]] = field(default_factory=list)  # what each procedure notebook escalated to

    def facts(self) -> Facts:
        """Escalation facts implied by the summary."""
        return Facts(
            restore_failed=self.restored_ok is False,
            no_backup=self.backup_used is None and self.restored_ok is not None,
            data_loss_s=self.data_loss_window_s,
            systems_affected=len(self.what_failed),
            complete_failure=self.scenario == "Complete System Failure",
        )


def summarize(paths: list[str | Path]) -> IncidentSummary:
    """Read each executed notebook's records and put the incident together."""
    summary = IncidentSummary()
    starts, ends = [], []
    for path in paths:
        notebook = read_notebook(path)
        summary.notebooks.append(Path(path).name)
        run = notebook.get("run", {})
        summary.incident_id = summary.incident_id or run.get("incident_id")
        if run.get("started_at"):
            starts.append(run["started_at"])
        triage = notebook.get("triage")
        if triage:
            summary.scenario = triage.get("scenario_name")
            summary.what_failed = triage.get("failed_checks", [])
            summary.detected_at = triage.get("detected_at")
        if notebook.get("backup_selection"):
            summary.backup_used = notebook["backup_selection"].get("backup_id")
            restore_point = notebook["backup_selection"].get("created_at")
            fault_at = (notebook.get("drill") or {}).get("fault_at") or run.get("started_at")
            if restore_point and fault_at and summary.data_loss_window_s is None:
                # What a restore gives up: everything between the restore point and the failure.
                summary.data_loss_window_s = round((_time(fault_at) - _time(restore_point)).total_seconds(), 1)
        if notebook.get("data_loss_window") and not (notebook.get("drill") or {}).get("fault_at"):
            summary.data_loss_window_s = notebook["data_loss_window"].get("seconds")
        if notebook.get("restore_result"):
            summary.restored_ok = bool(notebook["restore_result"].get("ok"))
        if notebook.get("verification"):
            summary.verified_ok = bool(notebook["verification"].get("ok"))
            summary.recovered_at = notebook.get("outcome", {}).get("finished_at") or summary.recovered_at
        if notebook.get("escalation"):
            summary.escalations.append(notebook["escalation"])
        if notebook.get("outcome", {}).get("finished_at"):
            ends.append(notebook["outcome"]["finished_at"])
        summary.steps += [
            {"notebook": Path(path).name, "step": s.name, "status": s.status, "duration_s": s.duration_s}
            for s in notebook.steps
        ]
    began = _time(summary.detected_at) or (_time(min(starts)) if starts else None)
    finished = _time(summary.recovered_at) or (_time(max(ends)) if ends else None)
    if began and finished:
        summary.time_to_recovery_s = round((finished - began).total_seconds(), 1)
    return summary


def notification(summary: IncidentSummary, escalation_line: str) -> str:
    """The stakeholder message: system restored or not, impact, data-loss window, next steps."""
    state = "restored and verified" if summary.verified_ok else "NOT yet verified as restored"
    if summary.data_loss_window_s is None:
        loss = "no restore was needed, no data was lost" if summary.backup_used is None else "data-loss window unknown"
    else:
        loss = f"up to {duration_text(summary.data_loss_window_s)} of data before the failure may be lost"
    ttr = (
        f"{duration_text(summary.time_to_recovery_s)} from detection to verified recovery"
        if summary.time_to_recovery_s is not None
        else "time to recovery unknown"
    )
    restored = f"restored from backup {summary.backup_used}" if summary.backup_used else "no restore"
    return "\n".join(
        [
            f"Subject: [{summary.incident_id or 'incident'}] {summary.scenario or 'Incident'}: system {state}",
            "",
            f"What failed: {', '.join(summary.what_failed) or 'not recorded'} (detected {summary.detected_at or '?'}).",
            f"Recovery: {restored}; {ttr}.",
            f"Impact: {loss}.",
            f"Escalation: {escalation_line}",
            "Next steps: monitor hourly for 24 h, reconcile with external systems, schedule the post-mortem.",
        ]
    )


def duration_text(seconds: float) -> str:
    """``42 s``, ``12.5 min`` or ``3.2 h``: a unit a stakeholder reads without arithmetic."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
