"""Decisions read types and fields, never message text: for each, the words change and the decision does
not, and the same words on a different field give the other decision."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from recovery_lib.backup.listing import QUARANTINE_PREFIX
from recovery_lib.checks.registry import HealthResult
from recovery_lib.drills.injectors import inject
from recovery_lib.manager import RecoveryManager
from recovery_lib.runbook import procedures as steps
from recovery_lib.runbook.notebook import Run, begin
from recovery_lib.runbook.postmortem import IncidentSummary, summarize
from recovery_lib.runbook.records import NotebookRecords
from recovery_lib.site.config import load_site


def _shown(result: HealthResult) -> str:
    return steps.health_table({"process": result}, restart_pending=True).iloc[0][""]


def test_a_process_stopped_for_the_recovery_is_told_by_its_details_not_its_message() -> None:
    # A monitored process that is down reads "stopped", whatever its message says ...
    assert _shown(HealthResult("process", False, "pid 4242 exited", {"configured": True, "pid": None})) == "⏸ stopped"
    # ... and a message that says "not running" does not make an unmonitored failure look planned.
    unmonitored = HealthResult("process", False, "trading process not running (no pidfile)", {"configured": False})
    assert _shown(unmonitored) == "❌ FAILING"
    assert _shown(HealthResult("process", True, "not running", {"configured": True})) == "✅ ok"


def _records(triage: dict[str, Any]) -> NotebookRecords:
    return NotebookRecords(
        path=Path("00_detect_and_triage.ipynb"),
        records={"run": {"procedure": "triage", "started_at": "2026-03-01T02:00:00.000000Z"}, "triage": triage},
        steps=[],
        parameters={},
    )


def test_a_complete_failure_is_told_by_the_scenario_number_not_its_name() -> None:
    renamed = summarize([_records({"scenario": 3, "scenario_name": "Totalausfall", "failed_checks": ["config"]})])
    assert renamed.scenario_number == 3
    assert renamed.facts().complete_failure is True
    misnamed = summarize([_records({"scenario": 1, "scenario_name": "Complete System Failure"})])
    assert misnamed.facts().complete_failure is False
    assert IncidentSummary(scenario="Complete System Failure").facts().complete_failure is False  # no number: unknown


def _run_d(site: Path) -> Run:
    return begin("D", site=str(site), operator="decisions-test", kind="drill", interactive=False, approve=["backup"])


def _backups_verified(checklist: Any) -> dict[str, Any]:
    return next(row for row in checklist.rows if row["criterion"] == "Existing backups verified")


def test_a_backup_quarantined_a_second_time_counts_as_out_of_use(sandbox: Path) -> None:
    """Quarantined once before (its evidence kept), damaged again: it goes to ``.quarantine-<id>-2``, a name
    that does not end with its id. Procedure D's criterion counts the backups that moved, not names."""
    manager = RecoveryManager(site=sandbox)
    backup_id = manager.create_backup(description="nightly", tags=["daily"])
    (manager.backup_dir / f"{QUARANTINE_PREFIX}{backup_id}").mkdir()  # the earlier quarantine's evidence
    inject(load_site(sandbox), "backup", variant="newest_corrupted", seed=3)
    run = _run_d(sandbox)
    verification = steps.verify_all_backups(run)
    assert verification.damaged == [backup_id]
    steps.quarantine_damaged(run, verification)
    assert verification.quarantined == [f"{QUARANTINE_PREFIX}{backup_id}-2"]
    assert verification.quarantined_ids == [backup_id]
    row = _backups_verified(steps.criteria_d(run, {"writable": True}, verification, "emergency-backup"))
    assert row["passed"] is True, row


def test_a_quarantine_name_alone_does_not_take_a_damaged_backup_out_of_use(sandbox: Path) -> None:
    """The same criterion with the name present but no backup moved (the quarantine failed): still in use."""
    run = _run_d(sandbox)
    verification = steps.verify_all_backups(run)
    verification.damaged = ["20260301T020000Z-full-abc123"]
    verification.quarantined = [f"{QUARANTINE_PREFIX}20260301T020000Z-full-abc123"]
    row = _backups_verified(steps.criteria_d(run, {"writable": True}, verification, "emergency-backup"))
    assert row["passed"] is False, row
    assert "still in use" in row["evidence"]
