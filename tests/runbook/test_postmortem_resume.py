"""The post-recovery summary tells a failed run and the run that resumed it as one incident (issue 17):
the resumed run's results decide, nothing is counted twice, and the procedure line says where the
failed run stopped, what was replayed and which run went on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from recovery_lib.runbook.journal import IncidentJournal
from recovery_lib.runbook.postmortem import journal_records, summarize
from recovery_lib.runbook.steps.post import _procedure_line


def _journal(tmp_path: Path, runs: list[tuple[str, str, dict[str, Any]]]) -> IncidentJournal:
    journal = IncidentJournal(tmp_path / "incidents", "inc")
    for run_id, procedure, records in runs:
        run = {"procedure": procedure, "incident_id": "inc", "run_id": run_id, **records.pop("run", {})}
        journal.append("record", run_id, procedure, "run", run)
        for name, value in records.items():
            journal.append("record", run_id, procedure, name, value)
    return journal


FAILED_RESTORE = {
    "restore_result": {"ok": False, "error": "No space left on device"},
    "halted": {"reason": "restore failed: No space left on device"},
    "outcome": {"success": False, "failed_criteria": ["Data files restored"]},
}
RESUMED = {
    "run": {"resumed_from": "B-1"},
    "resume": {"resumed_from": "B-1", "failed_step": "restore", "replay": ["stop", "pre_recovery_backup"]},
    "restore_result": {"ok": True, "backup_id": "nightly", "backup_created_at": "2026-12-03T01:00:00Z"},
    "trades": {"ok": True, "lost": 3, "recovered": 3, "still_missing": 0},
    "outcome": {"success": True, "failed_criteria": []},
}
VERIFIED = {"verification": {"ok": True}, "outcome": {"success": True, "failed_criteria": []}}


def test_the_resumed_run_decides_and_the_failed_one_is_told_as_where_it_stopped(tmp_path: Path) -> None:
    journal = _journal(
        tmp_path, [("B-1", "B", dict(FAILED_RESTORE)), ("B-2", "B", dict(RESUMED)), ("V-1", "V", VERIFIED)]
    )
    summary = summarize(journal_records(journal))
    assert summary.recovered is True and summary.failed_criteria == []
    assert summary.restored_ok is True  # the failed restore was replaced by the resumed run's, not ANDed with it
    assert (summary.trades_lost, summary.trades_recovered) == (3, 3)
    failed, resumed = summary.procedures
    assert failed["resumed_by"] == "B-2" and failed["superseded"] is True
    assert resumed["resumed_from"] == "B-1" and resumed["replayed"] == ["stop", "pre_recovery_backup"]
    assert _procedure_line(failed) == "B FAILED (Data files restored) (resumed by run B-2)"
    assert _procedure_line(resumed) == (
        "B succeeded (resumed run B-1 from its step restore; replayed: stop, pre_recovery_backup)"
    )


def test_a_resumed_run_that_failed_again_leaves_the_incident_not_recovered(tmp_path: Path) -> None:
    again = {**RESUMED, "outcome": {"success": False, "failed_criteria": ["Trading can safely resume"]}}
    journal = _journal(tmp_path, [("B-1", "B", dict(FAILED_RESTORE)), ("B-2", "B", again), ("V-1", "V", VERIFIED)])
    summary = summarize(journal_records(journal))
    assert summary.recovered is False
    assert summary.failed_criteria == ["B: Trading can safely resume"]
