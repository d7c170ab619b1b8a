"""A data-loss incident handled end to end in JupyterLab in Chromium, with no parameter typed anywhere.

The site: trading runs, the daily backup is taken, trading goes on (trades a restore from that backup
alone would lose, which the exchange knows), then the ledger and the positions are deleted while the
trading process keeps running (it starts a new ledger without a header). The engineer opens
``00_detect_and_triage`` and runs all (it names Procedure B and opens the incident), then runs
``B_data_recovery`` cell by cell, clicking Approve whenever a cell waits for it (stop, pre-recovery
backup, the remedy, start), then ``V_verification`` (Run All) and ``P_post_recovery`` (Run All, Approve
for its verification backup, Run All) in the same JupyterLab. Every notebook joins the incident triage
opened, through the incident journal; P summarises the incident from that journal.

The tests assert on what was rendered, on the site (data check, reconciliation, trading, backups),
on the journal file and on P's summary.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nbformat
import pytest
from lab import (
    APPROVAL_STOPPED,
    APPROVAL_WAITING,
    CellRun,
    NotebookPage,
    Transcript,
    only_journal,
    open_notebook,
    records,
    verify_and_summarise,
)

from recovery_lib.checks.default import health_check
from recovery_lib.site.config import load_site
from recovery_lib.site.process import consistent_view
from recovery_lib.trading.ledger import read_ledger

if TYPE_CHECKING:
    from browser_sites import DataLossSite
    from conftest import OfflineContext, Screenshots
    from lab_server import LabServer

pytestmark = pytest.mark.browser

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


@dataclass
class Incident:
    """Everything the engineer did and saw, and what the site, the journal and P's summary say after."""

    site: DataLossSite
    transcript: Transcript
    incident_id: str = ""
    entries: list[dict[str, Any]] = field(default_factory=list)
    journals: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    blocked: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def last(self, notebook: str, tag: str) -> CellRun:
        return self.transcript.last(notebook, tag)

    def summary(self) -> dict[str, str]:
        """P's "Document incident" table as {row: value}."""
        return self.last("P", "step:incident_summary").pairs()


@pytest.fixture(scope="module")
def incident(
    data_loss_sites: Callable[..., DataLossSite],
    lab_servers: Callable[[Path], LabServer],
    offline_contexts: Callable[[], OfflineContext],
    screenshot_dirs: Callable[[str], Screenshots],
) -> Iterator[Incident]:
    site = data_loss_sites("procedure-b")
    assert site.trading_pid() is not None, "the trading process runs when the engineer arrives"
    server = lab_servers(site.root)
    offline = offline_contexts()
    page = offline.new_page()
    shots = screenshot_dirs("test_procedure_b_data_loss")
    record = Incident(site=site, transcript=Transcript())
    began = time.monotonic()

    triage = NotebookPage(page, server, "00_detect_and_triage.ipynb", shots, "00", record.transcript)
    triage.open()
    triage.run_all()
    procedure = open_notebook(page, server, shots, record.transcript, "B_data_recovery.ipynb", "B")
    procedure.run_through(procedure.code_tags)
    verify_and_summarise(page, server, shots, record.transcript)

    record.seconds = time.monotonic() - began
    record.blocked = list(offline.blocked)
    record.journals, record.incident_id, record.entries = only_journal(site.root)
    record.transcript.write(shots.directory / "rendered-outputs.txt")
    yield record


# --- what the engineer saw ----------------------------------------------------------------------------


def test_triage_names_procedure_b_and_opens_the_incident(incident: Incident) -> None:
    detect = incident.last("00", "step:detect")
    assert "Scenario 2: Data Loss -> Procedure B (B_data_recovery.ipynb)" in detect.text, detect.text
    assert f"Incident id: {incident.incident_id}" in detect.text, detect.text
    assert "(a new incident)" in incident.last("00", "validate").text


def test_every_notebook_joined_the_incident_without_a_parameter(incident: Incident) -> None:
    for notebook in ("B", "V", "P"):
        validate = incident.last(notebook, "validate").text
        assert f"in incident {incident.incident_id} (joined the open incident of this site)" in validate, validate
    runs = records(incident.entries, name="run")
    assert [entry["procedure"] for entry in runs] == ["triage", "B", "V", "P"], runs
    assert [entry["value"]["incident_source"] for entry in runs] == ["new", "journal", "journal", "journal"]
    # Nobody typed anything: every parameter is the notebook's default.
    assert all(not entry["value"]["parameters"]["incident_id"] for entry in runs)


def test_each_gate_failed_closed_then_asked_once_and_was_approved_by_a_click(incident: Incident) -> None:
    transcript = incident.transcript
    assert transcript.approved("B") == ["stop_system", "backup", "restore", "start_system"], transcript.clicks
    for tag in ("step:stop_system", "step:pre_recovery_backup", "step:restore", "step:restart"):
        first, *again = transcript.of("B", tag)
        assert first.waits_for_approval, f"{tag} did not wait for approval:\n{first.text}"
        assert [error.strip() for error in first.errors] == [APPROVAL_STOPPED], first.errors
        assert len(again) == 1 and not again[0].errors and APPROVAL_WAITING not in again[0].text, again
    for click in transcript.clicks:
        if click.notebook == "B":
            assert f"✅ Approval for {click.action}: APPROVED by " in click.waiting_text, click.waiting_text
            assert "Run this cell again to go on." in click.waiting_text
    remedy = next(click for click in transcript.clicks if click.action == "restore")
    assert remedy.tag == "step:restore" and "APPROVED restore by " in remedy.widget_text, remedy.widget_text
    assert "Now run the cell 6b. Apply the approved remedy" in remedy.widget_text, remedy.widget_text


def test_every_approval_status_names_a_cell_of_the_notebook(incident: Incident) -> None:
    """After Approve, the widget says what to run next: "Now run the cell X" with X the title of one of
    B's cells (a person scrolls to it), or "Run this cell again to go on" when the button is in that cell."""
    notebook = nbformat.read(NOTEBOOKS / "B_data_recovery.ipynb", as_version=4)
    titles = {
        cell.source.splitlines()[0].removeprefix("## ").strip()
        for cell in notebook.cells
        if cell.cell_type == "markdown" and cell.source.startswith("## ")
    }
    named = {}
    for click in incident.transcript.clicks:
        if click.notebook == "B":
            status = next((line for line in click.widget_text.splitlines() if "APPROVED" in line), "")
            found = re.search(r"(?:Now run the cell (.+?)|Run (this cell again) to go on)\.?$", status.strip())
            named[click.action] = (found.group(1) or found.group(2)) if found else status
    assert named.get("restore") == "6b. Apply the approved remedy", named
    wrong = {action: cell for action, cell in named.items() if cell not in titles and cell != "this cell again"}
    assert not wrong, f"the status names no cell of the notebook: {wrong} (titles: {sorted(titles)})"


def test_the_plan_weighed_repair_against_restore(incident: Incident) -> None:
    plan = incident.last("B", "step:dry_run").text
    repair = re.search(r"Repair the ledger in place:.*LOSES (\d+) trade\(s\)", plan)
    restore = re.search(r"→ recommended: Restore the data from backup (\S+):.*LOSES (\d+) trade\(s\)", plan)
    assert repair and restore, plan
    assert int(repair.group(1)) >= 500, "a repair in place keeps only the trades made after the fault"
    assert restore.group(1) == incident.site.backup_id + "" and restore.group(2) == "0", plan


def test_the_restore_reused_the_one_pre_recovery_backup(incident: Incident) -> None:
    (taken,) = [backup.backup_id for backup in incident.site.backups_tagged("pre-recovery")]
    assert incident.last("B", "step:pre_recovery_backup").text.strip().endswith(taken)
    restored = incident.last("B", "step:restore").text
    assert f"✅ Restored data from {incident.site.backup_id}" in restored, restored
    assert f"Previous state already saved in backup {taken} (taken earlier in this incident)" in restored, restored
    (result,) = records(incident.entries, "B", "restore_result")
    assert result["value"]["pre_recovery_backup_id"] == taken and result["value"]["pre_recovery_reused"] is True


def test_the_exchange_gave_back_every_trade_and_the_outcome_is_success(incident: Incident) -> None:
    replay = incident.last("B", "step:replay")
    found = re.search(r"lost by the fault or the restore\s+(\d+)\s+recovered from the exchange\s+(\d+)", replay.text)
    assert found and found.group(1) == found.group(2), replay.text
    assert int(found.group(1)) >= incident.site.trades_after_backup, replay.text
    assert re.search(r"still missing\s+0\b", replay.text), replay.text
    criteria = incident.last("B", "step:success_criteria")
    marks = [row[""] for row in criteria.table()]
    assert marks == ["✅ pass"] * 5, criteria.text
    assert "Level 1 (Self-Service)" in incident.last("B", "step:escalation").text
    outcome = incident.last("B", "step:outcome")
    assert "✅ Procedure B RECOVERED the system" in outcome.text and not outcome.errors, outcome.text
    assert "✅ Procedure V RECOVERED the system" in incident.last("V", "step:outcome").text


def test_no_cell_ended_in_a_traceback_or_a_parameter_error(incident: Incident) -> None:
    bad = [
        f"{run.notebook} {run.tag}#{run.attempt}"
        for run in incident.transcript.runs
        if run.traceback or "ParameterError" in run.text or "unknown parameter" in run.text
    ]
    assert not bad, bad
    assert incident.blocked == []


# --- the site, the journal and P's summary -------------------------------------------------------------


def test_the_site_is_recovered_and_trading(incident: Incident) -> None:
    root = incident.site.root
    assert incident.site.trading_pid() is not None, "trading should run again after B"
    for check in ("data", "reconciliation", "config"):
        result = health_check.run(check, root)
        assert result.healthy, f"{check}: {result.message}"
    site = load_site(root)
    with consistent_view(site):  # the running process writes the exchange and the ledger under this lock
        fills = read_ledger(site.path("exchange/my_trades.csv"), "exchange").ids
        ledger = read_ledger(site.path(site.trades_file), site.trades_file)
    assert fills <= ledger.ids, f"trades the exchange has and the ledger lacks: {sorted(fills - ledger.ids)[:10]}"
    assert set(range(1, 501)) <= ledger.ids, "the trades from before the exchange's history are lost"
    assert len(incident.site.backups_tagged("pre-recovery")) == 1


def test_the_journal_holds_the_whole_incident(incident: Incident) -> None:
    assert list(incident.journals) == [incident.incident_id], incident.journals.keys()
    entries = incident.entries
    assert entries[0]["kind"] == "opened" and entries[0]["procedure"] == "triage"
    assert entries[-1]["kind"] == "closed" and entries[-1]["procedure"] == "P"
    assert entries[-1]["value"]["recovered"] is True
    named = {(entry["procedure"], entry["name"]) for entry in records(entries)}
    for expected in (
        ("triage", "triage"),
        ("B", "stop_system"),
        ("B", "pre_recovery_backup"),
        ("B", "remedy_plan"),
        ("B", "restore_result"),
        ("B", "trades"),
        ("B", "restart_system"),
        ("B", "outcome"),
        ("V", "verification"),
        ("V", "outcome"),
        ("P", "incident_summary"),
        ("P", "notification"),
    ):
        assert expected in named, f"{expected} not in the journal"
    decisions = [
        (e["procedure"], e["name"], e["value"]["approved"], e["value"]["via"])
        for e in entries
        if e["kind"] == "decision"
    ]
    for action in ("stop_system", "backup", "restore", "start_system"):
        assert ("B", action, True, "widget") in decisions, decisions
    (outcome,) = records(entries, "B", "outcome")
    assert outcome["value"]["success"] is True and outcome["value"]["trading_running"] is True


def test_post_recovery_summarises_the_incident_from_the_journal(incident: Incident) -> None:
    summary = incident.summary()
    assert summary["Recovered"].startswith("✅ yes"), summary
    assert summary["Scenario"] == "Data Loss", summary
    assert summary["Procedures"] == "B succeeded", summary
    read_from = summary["Read from"]
    assert f"the incident journal incidents/{incident.incident_id}.jsonl" in read_from, read_from
    assert "B (journal)" in read_from and "V verification (journal)" in read_from, read_from
    assert summary["Remedy"] == "restore" and summary["Backup restored from"] == incident.site.backup_id, summary
    replay = re.search(r"lost by the fault or the restore\s+(\d+)", incident.last("B", "step:replay").text)
    assert replay, incident.last("B", "step:replay").text
    lost = replay.group(1)
    assert summary["Trades"] == f"{lost} lost, {lost} recovered from the exchange, 0 still missing", summary
    assert summary["Verified"] == "✅ yes", summary
    notification = incident.last("P", "step:notification").text
    assert f"Incident {incident.incident_id} is closed" in notification, notification
    assert "Level 1" in incident.last("P", "step:escalation").text
    (verified,) = [b.backup_id for b in incident.site.backups_tagged("verified")]
    assert verified in incident.last("P", "step:verification_backup").text
