"""The incident journal (issue 12): every record and decision is on disk when it is made, one incident
is found without typing its id, and the cells of a procedure are safe to run again.

Everything here calls the library as the notebook cells do, in this process (no kernel): a
namespace dict stands for the kernel's globals.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from notebook_globals import notebook_globals

from recovery_lib.drills.history import JOURNAL_COPY, drill_row
from recovery_lib.drills.injectors import inject
from recovery_lib.errors import SiteConfigError
from recovery_lib.manager import RecoveryManager
from recovery_lib.runbook import procedures as steps
from recovery_lib.runbook.approval import ApprovalGate, ApprovalRequired
from recovery_lib.runbook.journal import IncidentJournal, JournalError, ProcedureBusy, open_incident
from recovery_lib.runbook.notebook import InvalidRun, NotRun, ParameterError, StepNotRun, start
from recovery_lib.runbook.postmortem import journal_records, notification, summarize
from recovery_lib.runbook.records import MIME_TYPE
from recovery_lib.site.config import load_site
from recovery_lib.site.process import start_system, stop_system

APPROVE_ALL = ["restore", "repair", "backup", "stop_system", "start_system"]


def kernel(site: Path, **values: Any) -> dict[str, Any]:
    """A fresh kernel's globals after the parameters cell of a procedure notebook."""
    return notebook_globals(site, **{"approve": list(APPROVE_ALL), **values})


def journal_lines(site: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for path in sorted((site / "incidents").glob("*.jsonl")) for line in path.open()]


# --- the journal file -----------------------------------------------------------------------------


def test_entries_are_on_disk_when_append_returns_and_a_torn_line_is_skipped(tmp_path: Path) -> None:
    journal = IncidentJournal(tmp_path / "incidents", "20261203T000000Z-abc123")
    journal.append("record", "B-1", "B", "stop_system", {"ok": True})
    journal.append("decision", "B-1", "B", "restore", {"approved": True, "by": "alice"})
    with journal.path.open("a") as handle:  # a crash in the middle of the next write
        handle.write('{"at": "2026-12-03T00:00:00Z", "run": "B-1", "kind": "rec')
    assert [e["name"] for e in journal.entries()] == ["stop_system", "restore"]
    (run,) = journal.runs()
    assert run.procedure == "B" and run.records == {"stop_system": {"ok": True}}
    assert run.decisions == [{"approved": True, "by": "alice", "action": "restore"}]


def test_the_open_incident_is_the_newest_not_closed(tmp_path: Path) -> None:
    directory = tmp_path / "incidents"
    assert open_incident(directory) is None
    IncidentJournal(directory, "old").append("opened", "triage-1", "triage", "incident")
    IncidentJournal(directory, "new").append("opened", "triage-2", "triage", "incident")
    assert open_incident(directory) == "new"
    IncidentJournal(directory, "new").append("closed", "P-1", "P", "incident")
    assert open_incident(directory) == "old"


@pytest.mark.parametrize("bad", ["../escape", ".hidden", "a/b", "", "x" * 200])
def test_an_incident_id_that_cannot_name_a_file_is_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(JournalError, match="cannot name a journal file"):
        IncidentJournal(tmp_path, bad)


def test_an_unwritable_journal_stops_the_step_and_names_the_file(tmp_path: Path) -> None:
    blocked = tmp_path / "incidents"
    blocked.write_text("a file where the records directory should be")  # fails as root too
    with pytest.raises(
        JournalError, match=r"incidents/x\.jsonl: .*incidents is a file, not a directory.*\[records\] dir"
    ):
        IncidentJournal(blocked, "x").append("record", "A-1", "A", "run", {})
    assert blocked.read_text().startswith("a file")  # nothing was lost


def test_the_records_dir_may_not_be_inside_a_restored_category(sandbox: Path) -> None:
    assert load_site(sandbox).records_dir == sandbox / "incidents"
    config = sandbox / "recovery.toml"
    config.write_text(config.read_text() + '\n[records]\ndir = "data/incidents"\n')
    with pytest.raises(SiteConfigError, match=r"\[records\.dir\] 'data/incidents' is inside the restored path 'data'"):
        load_site(sandbox)


# --- one incident, found without typing its id ------------------------------------------------------


def test_procedures_join_the_open_incident_and_triage_starts_one(sandbox: Path) -> None:
    triage = start(kernel(sandbox), "triage")
    assert triage.incident_source == "new"
    procedure = start(kernel(sandbox), "B")
    assert procedure.incident_id == triage.incident_id and procedure.incident_source == "journal"
    named = start(kernel(sandbox, incident_id="INC-42"), "A")
    assert named.incident_id == "INC-42" and named.incident_source == "parameter"
    assert start(kernel(sandbox), "triage").incident_id != triage.incident_id  # a new triage, a new incident


def test_every_record_is_in_the_journal_before_the_step_returns(sandbox: Path) -> None:
    run = start(kernel(sandbox), "A")
    steps.backups_overview(run)
    names = [e["name"] for e in journal_lines(sandbox) if e["kind"] == "record" and e["run"] == run.run_id]
    assert names == ["run", "backups"]
    assert journal_lines(sandbox)[0]["kind"] == "opened"


# --- cells safe to run again ----------------------------------------------------------------------------


def test_rerunning_the_validation_cell_is_not_an_error_and_keeps_the_run(sandbox: Path) -> None:
    namespace = kernel(sandbox)
    first = start(namespace, "A")
    namespace["run"] = first
    assert isinstance(namespace["choice"], NotRun)
    # what later cells and the person define in the same kernel
    namespace.update(choice="picked", window_s=3.5, scratch=[1, 2])
    again = start(namespace, "A")
    assert again is first and again.reruns == 1
    assert namespace["choice"] == "picked"  # a step that ran keeps its result
    assert "same run goes on" in repr(again)


def test_changed_parameters_start_a_new_run_of_the_same_incident(sandbox: Path) -> None:
    namespace = kernel(sandbox)
    namespace["run"] = first = start(namespace, "A")
    namespace["choice"] = "picked"
    namespace["operator"] = "bob"
    second = start(namespace, "A")
    assert second is not first and second.incident_id == first.incident_id and second.operator == "bob"
    assert isinstance(namespace["choice"], NotRun), "a new run must not reuse the old run's results"


def test_bad_parameters_on_a_rerun_stop_the_cells_below(sandbox: Path) -> None:
    namespace = kernel(sandbox)
    namespace["run"] = start(namespace, "A")
    namespace["kind"] = "exercise"
    with pytest.raises(ParameterError, match="'kind'"):
        start(namespace, "A")
    assert isinstance(namespace["run"], InvalidRun)
    with pytest.raises(ParameterError, match="failed validation"):
        steps.stop(namespace["run"])


def test_a_cell_run_before_its_input_step_names_the_step(sandbox: Path) -> None:
    namespace = kernel(sandbox)
    run = start(namespace, "A")
    with pytest.raises(StepNotRun, match="'select the backup'"):
        steps.plan(run, namespace["choice"], config=True)
    criteria = steps.criteria_a(run, namespace["result"], {"ok": False})
    row = criteria.rows[0]
    assert row["passed"] is False and "has not run" in row["evidence"]


def test_one_pre_recovery_backup_per_incident_reused_by_the_restore(sandbox: Path) -> None:
    site = load_site(sandbox)
    manager = RecoveryManager(site=site)
    good = manager.create_backup(description="good", tags=["daily"])
    inject(site, "data", seed=1)
    namespace = kernel(sandbox)
    run = start(namespace, "C")
    first = steps.pre_recovery_backup(run)
    again = steps.pre_recovery_backup(run)  # Run All, a second time
    other_kernel = start(kernel(sandbox), "C")  # a kernel restart: a new run of the same incident
    third = steps.pre_recovery_backup(other_kernel)
    assert isinstance(first, str)
    assert again.value == first and third.value == first and "not repeated" in repr(third)
    choice = steps.choose_backup(other_kernel, good, needs=("config", "state", "data"))
    plan = steps.plan(other_kernel, choice, config=True, state=True, data=True)
    steps.approval(other_kernel, plan)
    result = steps.restore(other_kernel, plan)
    assert result.ok and result.pre_recovery_backup_id == first and result.pre_recovery_reused
    pre = [m.backup_id for m in manager.list_backups() if "pre-recovery" in m.tags]
    assert pre == [first], f"one pre-recovery backup for the incident, got {pre}"
    assert "already saved" in result.summary().lower() or first in result.summary()
    rerun = steps.restore(other_kernel, plan)  # the restore cell run again
    assert "not repeated" in repr(rerun) and rerun.ok


# --- approvals: journaled, kept for the same plan, an abort halts ------------------------------------------


def _interactive(sandbox: Path) -> Any:
    namespace = kernel(sandbox, interactive=True, approve=[])
    return start(namespace, "A")


def _click(shown: Any, button: str) -> None:
    buttons = shown.widget.children[1].children
    next(b for b in buttons if b.description == button).click()


def test_a_click_is_in_the_journal_at_once_and_survives_a_kernel_restart(sandbox: Path) -> None:
    run = _interactive(sandbox)
    shown = run.gate.request("restore", "Restore config from X", key="k1")
    _click(shown, "Approve")
    decisions = [e for e in journal_lines(sandbox) if e["kind"] == "decision"]
    assert decisions and decisions[-1]["name"] == "restore" and decisions[-1]["value"]["approved"] is True
    restarted = _interactive(sandbox)  # a new kernel: same incident, same procedure
    restarted.gate.request("restore", "Restore config from X", key="k1")
    kept = restarted.gate.require("restore")
    assert kept.approved and kept.note == "given before the kernel restart"
    changed = _interactive(sandbox)
    changed.gate.request("restore", "Restore config from X", key="k2")  # the plan changed
    with pytest.raises(ApprovalRequired):
        changed.gate.require("restore")


def test_rerunning_the_plan_cell_keeps_its_approval(sandbox: Path) -> None:
    run = _interactive(sandbox)
    _click(run.gate.request("restore", "plan text", key="same"), "Approve")
    shown = run.gate.request("restore", "plan text", key="same")
    assert run.gate.require("restore").approved
    assert "kept: the plan has not changed" in shown.widget.children[2].value
    run.gate.request("restore", "plan text", key="different")
    with pytest.raises(ApprovalRequired):
        run.gate.require("restore")


def test_abort_halts_the_run_and_later_steps_say_so(sandbox: Path) -> None:
    run = _interactive(sandbox)
    _click(run.gate.request("restore", "plan", key="k"), "Abort")
    assert run.halted and run.halted.startswith("aborted by alice")
    assert run.aborted is not None and run.aborted["action"] == "restore"
    later = steps.stop(run)
    assert "Skipped because the procedure was aborted (aborted by alice" in repr(later)
    restart = steps.restart(run)
    assert restart.ok is False and "aborted" in restart.summary()
    escalation = steps.escalation(run)
    assert escalation.level >= 2 and any("aborted" in reason for reason in escalation.reasons)
    names = [e["name"] for e in journal_lines(sandbox) if e["kind"] == "record"]
    assert "aborted" in names and "halted" in names


def test_a_gate_outside_a_run_records_nothing_and_still_fails_closed() -> None:
    gate = ApprovalGate(interactive=True, approvals=[], operator="x")
    gate.request("restore", "plan", key="k")
    with pytest.raises(ApprovalRequired, match="not approved yet"):
        gate.require("restore")


# --- the records page reads what a notebook did not save ----------------------------------------------


def _record_output(name: str, value: Any) -> Any:
    import nbformat

    return nbformat.v4.new_output(
        "display_data", data={MIME_TYPE: {"name": name, "value": value, "at": "2026-12-03T00:00:00.000000Z"}}
    )


def test_a_drill_notebook_cut_short_is_completed_from_the_journal(tmp_path: Path) -> None:
    import nbformat

    run_dir = tmp_path / "20261203T000000Z-config-abcd"
    run_dir.mkdir()
    run = {
        "incident_id": "inc",
        "run_id": "A-1",
        "procedure": "A",
        "kind": "drill",
        "started_at": "2026-12-03T00:00:00Z",
    }
    notebook = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("run = start(globals(), procedure='A')")
    cell.outputs = [_record_output("run", run)]  # the kernel was killed: nothing after the first cell was saved
    notebook.cells = [cell]
    nbformat.write(notebook, run_dir / "02_A_config_recovery.ipynb")
    journal = IncidentJournal(tmp_path / "site" / "incidents", "inc")
    journal.append("record", "A-1", "A", "run", run)
    journal.append("record", "A-1", "A", "halted", {"reason": "restore failed: disk full"})
    journal.append("record", "A-1", "A", "outcome", {"success": False, "failed_criteria": ["Config file restored"]})
    journal.append("record", "A-1", "A", "escalation", {"level": 2})
    (run_dir / JOURNAL_COPY).write_bytes(journal.path.read_bytes())
    row = drill_row(run_dir)
    assert row is not None and row["outcome"] == "not_recovered"
    assert row["failed_step"] == "02_A_config_recovery.ipynb: criterion failed: Config file restored"
    assert row["escalation_level"] == 2
    (run_dir / JOURNAL_COPY).unlink()  # without the journal, the same notebook says less
    assert drill_row(run_dir)["failed_step"] == "02_A_config_recovery.ipynb: did not reach its outcome"


# --- P summarises the incident from the journal, and claims nothing it did not read ---------------------


@pytest.fixture
def trading(sandbox: Path) -> Any:
    """The sandbox with its trading process running (stopped at teardown, whatever happened)."""
    site = load_site(sandbox)
    assert start_system(site, timeout_s=15).ok
    yield site
    stop_system(site, timeout_s=15)


def _p(sandbox: Path) -> Any:
    namespace = kernel(sandbox, records=[])
    namespace["__annotations__"]["records"] = list[str]
    return start(namespace, "P")


def test_p_refuses_to_start_an_incident_of_its_own(sandbox: Path) -> None:
    with pytest.raises(ParameterError, match="no open incident on site .* run 00 and the procedure first"):
        _p(sandbox)
    assert not (sandbox / "incidents").exists() or not list((sandbox / "incidents").glob("*.jsonl"))


def test_p_with_nothing_recorded_claims_nothing(sandbox: Path) -> None:
    start(kernel(sandbox), "triage")  # an incident is open, and nobody has recorded a procedure in it
    post = _p(sandbox)
    taken = steps.verification_backup(post, [])
    assert isinstance(taken, steps.NotTaken), "a verified backup needs records that show a recovery"
    table = dict(steps.incident_summary(post, []).values.tolist())
    assert table["Recovered"] == "❓ not recorded"
    assert table["Procedures"] == "none recorded" and table["Recovery steps taken"].startswith("1 recorded")
    assert table["Remedy"] == "not recorded" and table["Backup restored from"] == "not recorded"
    assert table["Trades"] == "not recorded" and table["Data loss window"] == "unknown"
    text = steps.notify_text(post, None, steps.escalation_from(post))
    assert "no data was lost" not in text and "stays OPEN" in text


def test_a_second_triage_says_which_incident_is_still_open(sandbox: Path) -> None:
    first = start(kernel(sandbox), "triage")
    second = start(kernel(sandbox), "triage")
    assert second.incident_id != first.incident_id and second.also_open == first.incident_id
    assert f"incident {first.incident_id} is still open" in repr(second)


def test_p_summarises_b_from_the_journal_and_closes_the_incident(trading: Any) -> None:
    sandbox = trading.root
    RecoveryManager(site=trading).create_backup(description="nightly", tags=["daily"])
    inject(trading, "data", variant="files_deleted", seed=2)
    triage = start(kernel(sandbox), "triage")
    steps.detect(triage, steps.check_health(triage, "triage"))
    b = start(kernel(sandbox), "B")
    steps.assess_data_loss(b)
    choice = steps.choose_backup(b, "latest", needs=("data",), required=False)
    steps.data_loss_window(b, choice)
    steps.stop(b)
    steps.pre_recovery_backup(b)
    remedies = steps.plan_remedies(b, choice)
    steps.remedy_approval(b, remedies, "least_loss")
    result = steps.apply_remedy(b, remedies)
    steps.replay_trades(b)
    reconciliation = steps.reconcile(b)
    restart_action = steps.restart(b, before=steps.criteria_b(b, result, reconciliation))
    steps.finish(b, steps.criteria_b(b, result, reconciliation, restart_action))
    steps.escalation(b)
    steps.conclude(b)
    v = start(kernel(sandbox), "V")
    health = steps.check_health(v, "verification")
    rec = steps.reconcile(v)
    steps.verdict(v, health, steps.verify_config(v), steps.check_exchange(v), rec)
    steps.conclude(v)
    post = _p(sandbox)
    assert post.incident_id == triage.incident_id == b.incident_id == v.incident_id
    steps.verification_backup(post, [])
    table = dict(steps.incident_summary(post, []).values.tolist())
    assert table["Recovered"].startswith("✅ yes"), table
    assert table["Procedures"] == "B succeeded"
    assert "incidents/" in table["Read from"] and "B (journal)" in table["Read from"]
    assert table["Scenario"] == "Data Loss"
    assert "lost" in table["Trades"] and table["Trades"] != "not recorded"
    text = steps.notify_text(post, None, steps.escalation_from(post))
    assert "restored and verified" in text and "is closed" in text
    assert open_incident(trading.records_dir) is None


def _journal_of(tmp_path: Path, runs: list[tuple[str, str, dict[str, Any]]]) -> IncidentJournal:
    journal = IncidentJournal(tmp_path / "incidents", "inc")
    for run_id, procedure, records in runs:
        journal.append(
            "record", run_id, procedure, "run", {"procedure": procedure, "incident_id": "inc", "run_id": run_id}
        )
        for name, value in records.items():
            journal.append("record", run_id, procedure, name, value)
    return journal


def test_a_run_replaced_by_a_later_one_does_not_decide_the_verdict(tmp_path: Path) -> None:
    journal = _journal_of(
        tmp_path,
        [
            ("B-1", "B", {"stop_system": {"ok": True}}),  # the first kernel: restarted before its outcome
            ("B-2", "B", {"outcome": {"success": True, "failed_criteria": []}}),
            ("V-1", "V", {"verification": {"ok": True}, "outcome": {"success": True, "failed_criteria": []}}),
        ],
    )
    summary = summarize(journal_records(journal))
    assert [p["superseded"] for p in summary.procedures] == [True, False]
    assert summary.recovered is True and summary.failed_criteria == []
    earlier_failed = _journal_of(
        tmp_path / "2",
        [
            ("B-1", "B", {"outcome": {"success": True, "failed_criteria": []}}),
            ("B-2", "B", {"outcome": {"success": False, "failed_criteria": ["Data integrity verified"]}}),
            ("V-1", "V", {"verification": {"ok": True}, "outcome": {"success": True, "failed_criteria": []}}),
        ],
    )
    later = summarize(journal_records(earlier_failed))
    assert later.recovered is False and later.failed_criteria == ["B: Data integrity verified"]  # the latest counts


def test_p_names_the_abort(tmp_path: Path) -> None:
    reason = "aborted by alice at 2026-12-03 07:21:10Z: repair or restore was not approved"
    journal = _journal_of(
        tmp_path,
        [
            (
                "B-1",
                "B",
                {
                    "aborted": {"action": "repair or restore", "by": "alice"},
                    "halted": {"reason": reason},
                    "outcome": {"success": False, "failed_criteria": ["Data files restored"], "halted": reason},
                },
            )
        ],
    )
    summary = summarize(journal_records(journal))
    assert summary.aborted == [f"B: {reason}"] and summary.recovered is False
    assert summary.facts().aborted == reason
    assert f"Aborted: B: {reason}." in notification(summary, "Level 2")


# --- what the on-call try found --------------------------------------------------------------------------


HOLD = """
import sys, time
from recovery_lib.runbook.notebook import start
namespace = {"__annotations__": {"site": str, "interactive": bool, "approve": list[str], "operator": str,
             "incident_id": str, "kind": str, "drill": dict, "backup_id": str, "remedy": str},
             "site": sys.argv[1], "interactive": False, "approve": [], "operator": "bob", "incident_id": "",
             "kind": "incident", "drill": {}, "backup_id": "latest", "remedy": "least_loss"}
start(namespace, "B")
print("holding", flush=True)
sys.stdin.readline()
"""


def test_a_second_kernel_cannot_run_a_procedure_while_one_runs(sandbox: Path) -> None:
    import subprocess
    import sys

    other = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(sandbox)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert other.stdout is not None
        while (line := other.stdout.readline()) and line.strip() != "holding":
            pass  # the run's records, printed as a kernel-less display does
        assert line.strip() == "holding"
        before = journal_lines(sandbox)
        with pytest.raises(ProcedureBusy, match=rf"procedure B, .*operator bob.*pid {other.pid}.*Nothing was"):
            start(kernel(sandbox), "A")
        assert journal_lines(sandbox) == before  # refused before anything was written
        start(kernel(sandbox), "V")  # verification only reads: it may run beside a procedure
    finally:
        other.communicate("\n", timeout=30)
    run = start(kernel(sandbox), "A")  # the other kernel is gone: its lock went with it
    assert run.procedure == "A"


def test_the_outcome_lets_another_kernel_run_a_procedure(sandbox: Path) -> None:
    import subprocess
    import sys

    run = start(kernel(sandbox), "A")
    probe = [sys.executable, "-c", HOLD.replace("sys.stdin.readline()", ""), str(sandbox)]
    assert subprocess.run(probe, capture_output=True, text=True, check=False).returncode != 0
    with pytest.raises(steps.ProcedureFailed):
        steps.conclude(run)  # not recovered, but it ended: the lock is released
    done = subprocess.run(probe, capture_output=True, text=True, check=False)
    assert done.returncode == 0 and "holding" in done.stdout, done.stderr


@pytest.mark.parametrize("setting", ["{root}/data/incidents", "incidents/../data/incidents", ".", "data"])
def test_a_records_dir_inside_a_restored_path_is_refused_however_written(sandbox: Path, setting: str) -> None:
    config = sandbox / "recovery.toml"
    config.write_text(config.read_text() + f'\n[records]\ndir = "{setting.format(root=sandbox)}"\n')
    with pytest.raises(SiteConfigError, match=r"\[records\.dir\].*(inside the restored path|the site itself)"):
        load_site(sandbox)


def test_a_records_dir_that_is_a_file_is_named(sandbox: Path) -> None:
    (sandbox / "incidents").write_text("not a directory")
    for procedure in ("triage", "A"):
        with pytest.raises(JournalError, match=r"incidents is a file, not a directory. Move it aside"):
            start(kernel(sandbox, incident_id="X1"), procedure)
    assert (sandbox / "incidents").read_text() == "not a directory"


def test_a_torn_first_line_does_not_hide_the_incident(sandbox: Path) -> None:
    triage = start(kernel(sandbox), "triage")
    path = sandbox / "incidents" / f"{triage.incident_id}.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text('{"at": "2026-12-03T0\n' + "".join(lines[1:]))
    assert start(kernel(sandbox), "A").incident_id == triage.incident_id


def test_an_approval_of_a_backup_does_not_carry_over_a_kernel_restart(sandbox: Path) -> None:
    run = _interactive(sandbox)
    _click(run.gate.request("backup", "Create a backup of the site: Pre-recovery current state"), "Approve")
    restarted = _interactive(sandbox)
    restarted.gate.request("backup", "Create a backup of the site: Pre-recovery current state")
    with pytest.raises(ApprovalRequired):  # the same words, but a backup of whatever the site is now
        restarted.gate.require("backup")


def test_a_verification_older_than_the_procedure_is_out_of_date(tmp_path: Path) -> None:
    journal = _journal_of(
        tmp_path,
        [
            ("V-1", "V", {"verification": {"ok": False}, "outcome": {"success": False, "failed_criteria": ["Data"]}}),
            ("B-1", "B", {"outcome": {"success": True, "failed_criteria": []}}),
        ],
    )
    summary = summarize(journal_records(journal))
    assert summary.verification_stale and summary.verified_ok is None and summary.recovered is None
    assert "run V again" in notification(summary, "Level 1")


def test_an_empty_directory_is_not_taken_for_a_site(tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="does not look like a site"):
        start(kernel(tmp_path), "triage")
    assert list(tmp_path.iterdir()) == []


def test_a_restore_then_a_repair_are_both_named() -> None:
    from recovery_lib.runbook.postmortem import IncidentSummary

    summary = IncidentSummary(remedy="repair", backup_used="20261203T000000Z-full-abcdef")
    text = notification(summary, "Level 1")
    assert "restored from backup 20261203T000000Z-full-abcdef, then the ledger repaired in place" in text
