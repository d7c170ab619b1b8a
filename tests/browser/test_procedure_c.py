"""A complete system failure handled end to end in JupyterLab in Chromium, with no parameter typed anywhere.

The site: trading runs, the daily backup is taken, trading goes on, then everything breaks at once
(``inject(site, "full", "everything")``: the trading process killed, the config corrupted, data/ and
state/ deleted). The engineer runs ``00_detect_and_triage`` (Run All: it names Procedure C and opens
the incident), ``C_full_system_recovery`` cell by cell clicking Approve whenever a cell waits for it
(the restore, the post-recovery backup, the start), then ``V_verification`` and ``P_post_recovery``
(Run All, Approve, Run All) in the same JupyterLab.

The tests assert on what was rendered, on the site (checks, trading, the verified post-recovery
backup), on the journal file and on P's summary.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from lab import (
    APPROVAL_STOPPED,
    CellRun,
    NotebookPage,
    Transcript,
    only_journal,
    open_notebook,
    records,
    verify_and_summarise,
)

from recovery_lib.checks.default import health_check
from recovery_lib.manager import RecoveryManager
from recovery_lib.site.config import load_site

if TYPE_CHECKING:
    from browser_sites import FailedSite
    from conftest import OfflineContext, Screenshots
    from lab_server import LabServer

pytestmark = pytest.mark.browser


@dataclass
class Incident:
    site: FailedSite
    transcript: Transcript
    incident_id: str = ""
    entries: list[dict[str, Any]] = field(default_factory=list)
    journals: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    blocked: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def last(self, notebook: str, tag: str) -> CellRun:
        return self.transcript.last(notebook, tag)


@pytest.fixture(scope="module")
def incident(
    failed_sites: Callable[[str], FailedSite],
    lab_servers: Callable[[Path], LabServer],
    offline_contexts: Callable[[], OfflineContext],
    screenshot_dirs: Callable[[str], Screenshots],
) -> Iterator[Incident]:
    site = failed_sites("procedure-c")
    assert site.trading_pid() is None, "the failure killed the trading process"
    server = lab_servers(site.root)
    offline = offline_contexts()
    page = offline.new_page()
    shots = screenshot_dirs("test_procedure_c_complete_failure")
    record = Incident(site=site, transcript=Transcript())
    began = time.monotonic()
    triage = NotebookPage(page, server, "00_detect_and_triage.ipynb", shots, "00", record.transcript)
    triage.open()
    triage.run_all()
    procedure = open_notebook(page, server, shots, record.transcript, "C_full_system_recovery.ipynb", "C")
    procedure.run_through(procedure.code_tags)
    verify_and_summarise(page, server, shots, record.transcript)
    record.seconds = time.monotonic() - began
    record.blocked = list(offline.blocked)
    record.journals, record.incident_id, record.entries = only_journal(site.root)
    record.transcript.write(shots.directory / "rendered-outputs.txt")
    yield record


def test_triage_names_procedure_c(incident: Incident) -> None:
    detect = incident.last("00", "step:detect").text
    assert "Scenario 3: Complete System Failure -> Procedure C (C_full_system_recovery.ipynb)" in detect, detect
    for notebook in ("C", "V", "P"):
        validate = incident.last(notebook, "validate").text
        assert f"in incident {incident.incident_id} (joined the open incident of this site)" in validate, validate


def test_restore_post_backup_and_start_each_needed_one_click(incident: Incident) -> None:
    transcript = incident.transcript
    assert transcript.approved("C") == ["restore", "backup", "start_system"], transcript.clicks
    for tag in ("step:restore", "step:post_recovery_backup", "step:restart"):
        first, *again = transcript.of("C", tag)
        assert first.waits_for_approval and [e.strip() for e in first.errors] == [APPROVAL_STOPPED], first.text
        assert len(again) == 1 and not again[0].errors, again
    restore = next(click for click in transcript.clicks if click.action == "restore")
    assert "Now run the cell 5b. Perform complete restore" in restore.widget_text, restore.widget_text
    stop = incident.last("C", "step:stop_system").text
    assert "system stopped" in stop or "not running" in stop, stop  # nothing to stop: no approval asked


def test_everything_was_restored_and_the_exchange_gave_the_trades_back(incident: Incident) -> None:
    restored = incident.last("C", "step:restore").text
    assert f"✅ Restored config, state, data from {incident.site.backup_id}" in restored, restored
    replay = incident.last("C", "step:replay").text
    found = re.search(r"lost by the fault or the restore\s+(\d+)\s+recovered from the exchange\s+(\d+)", replay)
    assert found and found.group(1) == found.group(2) and int(found.group(1)) >= 3, replay
    criteria = incident.last("C", "step:success_criteria")
    assert [row[""] for row in criteria.table()] == ["✅ pass"] * 5, criteria.text
    outcome = incident.last("C", "step:outcome")
    assert "✅ Procedure C RECOVERED the system" in outcome.text and not outcome.errors, outcome.text
    bad = [f"{r.notebook} {r.tag}" for r in incident.transcript.runs if r.traceback or "ParameterError" in r.text]
    assert not bad, bad
    assert incident.blocked == []


def test_the_verified_post_recovery_backup_exists_and_trading_runs(incident: Incident) -> None:
    site = incident.site
    shown = incident.last("C", "step:post_recovery_backup").text
    verified = {backup.backup_id: backup for backup in site.backups_tagged("verified")}
    post = [backup_id for backup_id in verified if backup_id in shown]
    assert len(post) == 1, (shown, list(verified))
    assert {"recovery", "post-incident", "verified"} <= set(verified[post[0]].tags)
    assert RecoveryManager(site=load_site(site.root)).verify_backup(post[0]).ok
    (record,) = records(incident.entries, "C", "post_recovery_backup")
    assert record["value"]["ok"] is True and record["value"]["backup_id"] == post[0]
    assert site.trading_pid() is not None, "trading should run after C"
    for check in ("config", "data", "reconciliation", "process"):
        result = health_check.run(check, site.root)
        assert result.healthy, f"{check}: {result.message}"
    assert len(site.backups_tagged("pre-recovery")) == 1


def test_post_recovery_summary_and_the_closed_journal(incident: Incident) -> None:
    summary = incident.last("P", "step:incident_summary").pairs()
    assert summary["Recovered"].startswith("✅ yes"), summary
    assert summary["Scenario"] == "Complete System Failure", summary
    assert summary["Procedures"] == "C succeeded", summary
    assert "C (journal)" in summary["Read from"] and f"incidents/{incident.incident_id}.jsonl" in summary["Read from"]
    assert summary["Backup restored from"] == incident.site.backup_id, summary
    assert re.fullmatch(r"(\d+) lost, \1 recovered from the exchange, 0 still missing", summary["Trades"]), summary
    entries = incident.entries
    assert list(incident.journals) == [incident.incident_id]
    assert {e["procedure"] for e in records(entries, name="run")} == {"triage", "C", "V", "P"}
    assert entries[0]["kind"] == "opened" and entries[-1]["kind"] == "closed", (entries[0], entries[-1])
    (outcome,) = records(entries, "C", "outcome")
    assert outcome["value"]["success"] is True
