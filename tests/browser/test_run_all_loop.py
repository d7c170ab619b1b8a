"""Run All / Approve / Run All: Procedure B driven the way a hurried engineer drives it.

On a data-loss site (as in test_procedure_b) the engineer opens ``B_data_recovery`` and clicks
Run > Run All Cells. It stops at the first cell that waits for approval; they click Approve and Run
All again, from the top, and so on until the notebook runs to its end (at most 8 passes). Then
``V_verification`` and ``P_post_recovery`` the same way.

Every pass reruns the validation cell in the same kernel (it must return the same run: no
"unknown parameter" for the variables later cells set), every plan cell (an approved plan that has
not changed keeps its approval: nothing is asked twice), and every writing step (the stop, the
pre-recovery backup and the restore happen once: a rerun says it was already done).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from lab import RAW_REPR, CellRun, NotebookPage, Transcript, only_journal, records, verify_and_summarise

from recovery_lib.checks.default import health_check

if TYPE_CHECKING:
    from browser_sites import DataLossSite
    from conftest import OfflineContext, Screenshots
    from lab_server import LabServer

pytestmark = pytest.mark.browser

PASSES = 8


@dataclass
class Loop:
    site: DataLossSite
    transcript: Transcript
    passes: list[list[CellRun]] = field(default_factory=list)
    entries: list[dict[str, Any]] = field(default_factory=list)
    journals: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    seconds: float = 0.0


@pytest.fixture(scope="module")
def loop(
    data_loss_sites: Callable[..., DataLossSite],
    lab_servers: Callable[[Path], LabServer],
    offline_contexts: Callable[[], OfflineContext],
    screenshot_dirs: Callable[[str], Screenshots],
) -> Iterator[Loop]:
    site = data_loss_sites("run-all-loop")
    server = lab_servers(site.root)
    page = offline_contexts().new_page()
    shots = screenshot_dirs("test_run_all_approve_run_all")
    record = Loop(site=site, transcript=Transcript())
    began = time.monotonic()
    procedure = NotebookPage(page, server, "B_data_recovery.ipynb", shots, "B", record.transcript)
    procedure.open()
    record.passes = procedure.run_all_approving(PASSES)
    verify_and_summarise(page, server, shots, record.transcript)
    record.seconds = time.monotonic() - began
    record.journals, _, record.entries = only_journal(site.root)
    record.transcript.write(shots.directory / "rendered-outputs.txt")
    yield record


def test_no_pass_failed_on_its_parameters(loop: Loop) -> None:
    bad = [
        f"{run.notebook} {run.tag}#{run.attempt}: {run.text[:300]}"
        for run in loop.transcript.runs
        if "ParameterError" in run.text or "unknown parameter" in run.text or run.traceback
    ]
    assert not bad, bad
    for number, ran in enumerate(loop.passes[1:], start=2):
        validate = next(run for run in ran if run.tag == "validate")
        assert "Validation rerun" in validate.text and "the same run goes on, approvals stand" in validate.text, (
            number,
            validate.text,
        )
    (run_records,) = [records(loop.entries, "B", "run")]
    assert len(run_records) == 1, "a rerun of the validation cell started a new run"


def test_the_notebook_finished_and_each_approval_was_asked_once(loop: Loop) -> None:
    last = loop.passes[-1]
    assert last[-1].tag == "step:outcome", f"Run All did not reach the end in {PASSES} passes: {last[-1].tag}"
    assert "✅ Procedure B RECOVERED the system" in last[-1].text, last[-1].text
    approved = loop.transcript.approved("B")
    assert approved == ["stop_system", "backup", "restore", "start_system"], approved
    assert len(loop.passes) == len(approved) + 1, [[r.tag for r in ran][-1] for ran in loop.passes]
    asked = Counter(run.tag for ran in loop.passes for run in ran if run.waits_for_approval)
    assert all(count == 1 for count in asked.values()), asked
    decisions = Counter(e["name"] for e in loop.entries if e["kind"] == "decision" and e["procedure"] == "B")
    assert decisions["stop_system"] == decisions["backup"] == decisions["start_system"] == 1, decisions


def test_the_approved_plan_was_kept_on_the_next_pass(loop: Loop) -> None:
    """The pass after the remedy was approved reran the plan cell: the same plan, so the approval stands."""
    approved_in = next(n for n, ran in enumerate(loop.passes) if ran[-1].tag == "step:restore")
    again = next(run for run in loop.passes[approved_in + 1] if run.tag == "step:dry_run")
    assert "APPROVED restore by " in again.text and "kept: the options have not changed" in again.text, again.text
    assert again.buttons == [] or "Approve" not in again.buttons or "Waiting for approval" not in again.text
    restore = next(run for run in loop.passes[approved_in + 1] if run.tag == "step:restore")
    assert f"✅ Restored data from {loop.site.backup_id}" in restore.text, restore.text


def test_one_stop_one_pre_recovery_backup_one_restore(loop: Loop) -> None:
    (backup,) = loop.site.backups_tagged("pre-recovery")
    results = records(loop.entries, "B", "restore_result")
    assert len(results) == 1 and results[0]["value"]["pre_recovery_backup_id"] == backup.backup_id, results
    pre = records(loop.entries, "B", "pre_recovery_backup")
    assert {entry["value"]["backup_id"] for entry in pre} <= {backup.backup_id, None}, pre
    later = [run for ran in loop.passes[2:] for run in ran if run.tag == "step:pre_recovery_backup"]
    assert later and all(
        "Already done" in run.text or "Nothing to do" in run.text or backup.backup_id in run.text for run in later
    ), [run.text for run in later]


def test_the_last_pass_says_what_this_run_already_did(loop: Loop) -> None:
    """The last pass reran every cell after the restore had happened in this run: the stop, the backup
    and the restore must say they were already done, not that there was nothing to do, and the record's
    criteria must still credit the restore."""
    last = {run.tag: run for run in loop.passes[-1]}
    for tag in ("step:stop_system", "step:pre_recovery_backup", "step:restore"):
        assert "Nothing was stopped or changed" not in last[tag].text, (
            f"{tag} denies what this run did:\n{last[tag].text}"
        )
    assert "Already done" in last["step:restore"].text, last["step:restore"].text
    criteria = {row["criterion"]: row for row in last["step:success_criteria"].table()}
    assert criteria["Data files restored"][""] == "✅ pass", criteria["Data files restored"]
    final = records(loop.entries, "B", "success_criteria")[-1]["value"]["rows"]
    assert next(row for row in final if row["criterion"] == "Data files restored")["passed"] is True, final


def test_no_raw_python_reprs(loop: Loop) -> None:
    raw = {
        f"{run.notebook} {run.tag}#{run.attempt}": RAW_REPR.search(run.text).group()
        for run in loop.transcript.runs
        if RAW_REPR.search(run.text)
    }
    assert not raw, f"raw reprs a person has to decode: {raw}"


def test_trading_runs_and_post_recovery_closes_the_incident(loop: Loop) -> None:
    assert loop.site.trading_pid() is not None
    for check in ("data", "reconciliation"):
        result = health_check.run(check, loop.site.root)
        assert result.healthy, f"{check}: {result.message}"
    summary = loop.transcript.last("P", "step:incident_summary").pairs()
    assert summary["Recovered"].startswith("✅ yes"), summary
    assert summary["Procedures"] == "B succeeded", summary
    assert loop.entries[-1]["kind"] == "closed", loop.entries[-1]
    (outcome,) = records(loop.entries, "B", "outcome")
    assert outcome["value"]["success"] is True and outcome["value"]["trading_running"] is True
