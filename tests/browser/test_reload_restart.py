"""A page reload and a kernel restart in the middle of Procedure B lose nothing and repeat nothing.

On a data-loss site (as in test_procedure_b) the engineer runs B cell by cell up to and including the
stop (approved) and the pre-recovery backup (approved). Then the page is reloaded WITHOUT saving the
notebook (the browser's "leave page?" answered Leave): the notebook comes back from disk with no
outputs, but the incident journal already holds what was done and decided. Then Kernel > Restart
Kernel, and B is run from the top again: the new kernel joins the same incident through the journal,
reuses the pre-recovery backup instead of taking a second one, and finishes the recovery. V and P
follow (Run All); P's summary counts the records of both kernels.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from lab import NotebookPage, Transcript, journal, only_journal, records, verify_and_summarise

from recovery_lib.checks.default import health_check

if TYPE_CHECKING:
    from browser_sites import DataLossSite
    from conftest import OfflineContext, Screenshots
    from lab_server import LabServer

pytestmark = pytest.mark.browser

NOTEBOOK = "B_data_recovery.ipynb"
UP_TO_THE_BACKUP = (
    "parameters",
    "validate",
    "step:assess",
    "step:select_backup",
    "step:data_loss_window",
    "step:stop_system",
    "step:pre_recovery_backup",
)


def saved_outputs(path: Path) -> int:
    """How many outputs the notebook file on disk holds (0: it was never saved after a run)."""
    notebook = json.loads(path.read_text())
    return sum(len(cell.get("outputs", [])) for cell in notebook["cells"] if cell["cell_type"] == "code")


@dataclass
class Interrupted:
    site: DataLossSite
    transcript: Transcript
    before_reload: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    after_reload: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    outputs_after_reload: list[str] = field(default_factory=list)
    saved_after_reload: int = -1
    kernels: tuple[set[int], set[int], set[int]] = (set(), set(), set())  # before reload, after it, after restart
    entries: list[dict[str, Any]] = field(default_factory=list)
    journals: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    blocked: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def interrupted(
    data_loss_sites: Callable[..., DataLossSite],
    lab_servers: Callable[[Path], LabServer],
    offline_contexts: Callable[[], OfflineContext],
    screenshot_dirs: Callable[[str], Screenshots],
) -> Iterator[Interrupted]:
    site = data_loss_sites("reload-restart")
    server = lab_servers(site.root)
    offline = offline_contexts()
    page = offline.new_page()
    shots = screenshot_dirs("test_reload_and_kernel_restart")
    record = Interrupted(site=site, transcript=Transcript())
    procedure = NotebookPage(page, server, NOTEBOOK, shots, "B", record.transcript)
    procedure.open()
    procedure.run_through(UP_TO_THE_BACKUP)
    record.before_reload = journal(site.root)
    before = procedure.kernel_pids()

    procedure.reload()
    shots.take(page, "B-after-reload-without-saving")
    record.outputs_after_reload = [
        text
        for number in procedure.code_index
        if (text := procedure.cell_at(number).locator(".jp-OutputArea").inner_text().strip())
    ]
    record.saved_after_reload = saved_outputs(server.notebook_dir / NOTEBOOK)
    record.after_reload = journal(site.root)
    reloaded = procedure.kernel_pids()

    procedure.restart_kernel()
    shots.take(page, "B-after-kernel-restart")
    record.kernels = (before, reloaded, procedure.kernel_pids())
    procedure.run_through(procedure.code_tags)
    verify_and_summarise(page, server, shots, record.transcript)
    record.journals, _, record.entries = only_journal(site.root)
    record.blocked = list(offline.blocked)
    record.transcript.write(shots.directory / "rendered-outputs.txt")
    yield record


def b_runs(entries: list[dict[str, Any]]) -> list[str]:
    """The run ids of Procedure B in the journal, in the order they started."""
    return [entry["run"] for entry in records(entries, "B", "run")]


def test_the_reload_lost_the_outputs_but_not_the_journal(interrupted: Interrupted) -> None:
    assert interrupted.outputs_after_reload == [], "the page came back with outputs: was the notebook saved?"
    assert interrupted.saved_after_reload == 0, "the notebook was saved"
    before, reloaded, _ = interrupted.kernels
    assert before and before == reloaded, "a reload must not restart the kernel"
    assert interrupted.after_reload == interrupted.before_reload, "the reload changed the journal"
    (entries,) = interrupted.after_reload.values()
    named = [entry["name"] for entry in records(entries, "B")]
    assert "stop_system" in named and "pre_recovery_backup" in named, named
    decisions = {(e["name"], e["value"]["approved"], e["value"]["via"]) for e in entries if e["kind"] == "decision"}
    assert {("stop_system", True, "widget"), ("backup", True, "widget")} <= decisions, decisions
    (pre,) = records(entries, "B", "pre_recovery_backup")
    assert pre["value"]["ok"] and pre["value"]["backup_id"] and pre["value"]["fingerprint"], pre


def test_the_restarted_kernel_joined_the_same_incident(interrupted: Interrupted) -> None:
    _, reloaded, restarted = interrupted.kernels
    assert restarted and not (restarted & reloaded), "the kernel was not restarted"
    assert list(interrupted.journals) == list(interrupted.before_reload), "a second incident was opened"
    incident = next(iter(interrupted.journals))
    first, second = b_runs(interrupted.entries)
    run = records(interrupted.entries, "B", "run")[-1]["value"]
    assert run["incident_source"] == "journal" and run["incident_id"] == incident, run
    assert run["earlier_runs"] == [first] and run["run_id"] == second, run
    validate = interrupted.transcript.last("B", "validate").text
    assert f"in incident {incident} (joined the open incident of this site)" in validate, validate


def test_the_pre_recovery_backup_was_reused_not_repeated(interrupted: Interrupted) -> None:
    (backup,) = interrupted.site.backups_tagged("pre-recovery")
    again = interrupted.transcript.last("B", "step:pre_recovery_backup").text
    assert "Already done" in again and backup.backup_id in again and "not repeated" in again, again
    second = b_runs(interrupted.entries)[1]
    (reused,) = [e for e in records(interrupted.entries, "B", "pre_recovery_backup") if e["run"] == second]
    assert reused["value"]["reused"] is True and reused["value"]["backup_id"] == backup.backup_id, reused
    restored = interrupted.transcript.last("B", "step:restore").text
    assert f"Previous state already saved in backup {backup.backup_id}" in restored, restored
    (result,) = records(interrupted.entries, "B", "restore_result")
    assert (
        result["value"]["pre_recovery_reused"] is True and result["value"]["pre_recovery_backup_id"] == backup.backup_id
    )


def test_the_second_kernel_asked_only_what_the_first_had_not_approved(interrupted: Interrupted) -> None:
    clicks = interrupted.transcript.approved("B")
    # First kernel: stop and backup. Second: trading is already stopped and the backup reused, so only
    # the remedy and the start are asked.
    assert clicks == ["stop_system", "backup", "restore", "start_system"], clicks
    stop = interrupted.transcript.last("B", "step:stop_system").text
    assert "already stopped" in stop, stop


def test_b_finished_and_trading_runs(interrupted: Interrupted) -> None:
    outcome = interrupted.transcript.last("B", "step:outcome")
    assert "✅ Procedure B RECOVERED the system" in outcome.text and not outcome.errors, outcome.text
    assert interrupted.site.trading_pid() is not None
    for check in ("data", "reconciliation"):
        result = health_check.run(check, interrupted.site.root)
        assert result.healthy, f"{check}: {result.message}"
    bad = [f"{r.notebook} {r.tag}" for r in interrupted.transcript.runs if r.traceback or "ParameterError" in r.text]
    assert not bad, bad
    assert interrupted.blocked == []


def test_post_recovery_counts_the_records_of_both_kernels(interrupted: Interrupted) -> None:
    """Nothing recorded before the reload and the restart is lost: P counts every record of both runs."""
    summary = interrupted.transcript.last("P", "step:incident_summary").pairs()
    first, second = b_runs(interrupted.entries)
    of_b = [e for e in records(interrupted.entries, "B")]
    assert {e["run"] for e in of_b} == {first, second}
    assert (
        len([e for e in of_b if e["run"] == first]) >= len(UP_TO_THE_BACKUP) - 1
    )  # every step recorded (not the parameters)
    steps = summary["Recovery steps taken"]
    total = re.match(r"(\d+) recorded steps: ", steps)
    in_b = re.search(r"(\d+) in B \(journal\)", steps)
    assert total and in_b, steps
    assert int(in_b.group(1)) == len(of_b), (steps, len(of_b))
    assert int(total.group(1)) == len([e for e in records(interrupted.entries) if e["procedure"] != "P"]), steps
    assert summary["Read from"].count("B (journal)") == 2, summary["Read from"]
    assert summary["Backup restored from"] == interrupted.site.backup_id, summary
    lost = re.fullmatch(r"(\d+) lost, \1 recovered from the exchange, 0 still missing", summary["Trades"])
    assert lost and int(lost.group(1)) >= interrupted.site.trades_after_backup, summary["Trades"]


def test_post_recovery_says_recovered_and_closes_the_incident(interrupted: Interrupted) -> None:
    """The first kernel's run of B never reached its outcome; the second one did and succeeded. The
    incident is recovered: the interrupted run was superseded, not failed."""
    summary = interrupted.transcript.last("P", "step:incident_summary").pairs()
    assert summary["Recovered"].startswith("✅ yes"), summary
    assert interrupted.entries[-1]["kind"] == "closed", interrupted.entries[-1]
