"""The procedure notebooks (issue 4), executed for real with papermill and nbclient.

Every run uses its own copy of the sandbox site with the fault of its scenario written by hand
after a first good backup. Headless runs (``interactive=False``) approve by parameter and must end
with the site healthy, the records readable with ``read_notebook`` and every step timed. Runs that
must not change anything (interactive without clicks, bad parameters, triage, verification) are
checked against a snapshot of every file, mode and symlink in the site, backups included.

Papermill runs cost a few seconds each: the four incident drills (triage, procedure, then the
verification and post-recovery notebooks for A) are executed once per module and shared. The
conventions of the committed notebooks, checked without a kernel: test_notebook_conventions.py.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbclient
import nbformat
import papermill
import pytest
from site_copies import copy_site as copy_to
from site_copies import unmonitor_process as drop_process_table

from recovery_lib import health_check
from recovery_lib.checks.registry import HealthResult
from recovery_lib.manager import RecoveryManager
from recovery_lib.runbook.records import NotebookRecords, read_notebook
from recovery_lib.sandbox.destination import replica_dir

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = ROOT / "notebooks"
PROCEDURES = {
    "A": "A_config_recovery.ipynb",
    "B": "B_data_recovery.ipynb",
    "C": "C_full_system_recovery.ipynb",
    "D": "D_backup_system_recovery.ipynb",
}
SCENARIOS = {1: "A", 2: "B", 3: "C", 4: "D"}
SCENARIO_NAMES = {
    1: "Configuration Corruption",
    2: "Data Loss",
    3: "Complete System Failure",
    4: "Backup System Failure",
}
APPROVE_ALL = ["restore", "backup", "stop_system", "start_system"]
OPERATOR = "drill-bot"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
PROTECTED = ("config", "state", "data")  # the sandbox's backed-up directories
BROKEN_TOML = '[trading\nstrategy = "unterminated\n'

# The first cell of each procedure that would write: with interactive=True and no click it must fail closed.
GATED_STEP = {"A": "restore", "B": "pre_recovery_backup", "C": "restore", "D": "assess_backups"}


# --- helpers ------------------------------------------------------------------------------------


def copy_site(template: Path, parent: Path) -> Path:
    """A private copy of the session's sandbox template (as conftest's ``sandbox`` fixture makes)."""
    return copy_to(template, parent / "site")


def unmonitor_process(site: Path) -> None:
    """Drop the [process] table (tests/site_copies.py), and check the process is then healthy."""
    drop_process_table(site)
    assert health_check.run("process", site).healthy


def snapshot(root: Path, journal: bool = False) -> dict[str, tuple[Any, ...]]:
    """Every entry under ``root`` (symlinks never followed): kind, permission bits and contents.

    Without ``journal``, the incident journals (``incidents/``) are left out: every notebook writes
    its records there as it runs, and "changed nothing" means nothing else."""
    found: dict[str, tuple[Any, ...]] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder, name)
            info = path.lstat()
            key = path.relative_to(root).as_posix()
            if not journal and (key == "incidents" or key.startswith("incidents/")):
                continue
            mode = stat.S_IMODE(info.st_mode)
            if stat.S_ISLNK(info.st_mode):
                found[key] = ("symlink", os.readlink(path))
            elif stat.S_ISDIR(info.st_mode):
                found[key] = ("dir", mode)
            elif stat.S_ISREG(info.st_mode):
                found[key] = ("file", mode, path.read_bytes())
            else:
                found[key] = ("other", mode)
    return found


def changed(before: dict[str, tuple[Any, ...]], after: dict[str, tuple[Any, ...]]) -> list[str]:
    """Paths added, removed or different between two snapshots."""
    return sorted(path for path in before.keys() | after.keys() if before.get(path) != after.get(path))


def protected_files(site: Path) -> dict[str, bytes]:
    """``{site-relative path: bytes}`` of every file in config/, state/ and data/."""
    return {
        path.relative_to(site).as_posix(): path.read_bytes()
        for top in PROTECTED
        for path in sorted((site / top).rglob("*"))
        if path.is_file()
    }


def backup_copy(site: Path, backup_id: str, relative: str) -> bytes:
    """The bytes a backup holds for a site file."""
    return (site / "backups" / backup_id / relative).read_bytes()


def remove_tree(path: Path) -> None:
    """Delete a directory even if it holds read-only backups (chmod u+w first)."""
    for folder, _dirs, _files in os.walk(path):
        os.chmod(folder, stat.S_IMODE(os.stat(folder).st_mode) | stat.S_IWUSR)
    shutil.rmtree(path)


def corrupt_config(site: Path) -> None:
    (site / "config" / "config.toml").write_text(BROKEN_TOML)


def lose_data(site: Path) -> None:
    (site / "data" / "trades.csv").unlink()
    shutil.rmtree(site / "data" / "reports")


def fail_completely(site: Path) -> None:
    corrupt_config(site)
    shutil.rmtree(site / "data")
    shutil.rmtree(site / "state")


def lose_backups(site: Path) -> None:
    remove_tree(site / "backups")


FAULTS: dict[str, Callable[[Path], None]] = {
    "A": corrupt_config,
    "B": lose_data,
    "C": fail_completely,
    "D": lose_backups,
}


def headless(site: Path, **overrides: Any) -> dict[str, Any]:
    """Parameters of a papermill drill run that approves everything it needs."""
    return {
        "site": str(site),
        "interactive": False,
        "kind": "drill",
        "approve": list(APPROVE_ALL),
        "operator": OPERATOR,
        **overrides,
    }


def execute(notebook: str, output: Path, parameters: dict[str, Any]) -> float:
    """Run a notebook headless with papermill (kernel cwd: the output's folder); returns wall seconds."""
    started = time.perf_counter()
    papermill.execute_notebook(
        str(NOTEBOOK_DIR / notebook),
        str(output),
        parameters=parameters,
        kernel_name="python3",
        cwd=str(output.parent),
        progress_bar=False,
    )
    wall = time.perf_counter() - started
    log.info("headless run of %s: %.2f s", notebook, wall)
    return wall


def step_tags(notebook: nbformat.NotebookNode) -> list[str]:
    return [
        tag.split(":", 1)[1]
        for cell in notebook.cells
        for tag in cell.metadata.get("tags", [])
        if tag.startswith("step:")
    ]


def source_steps(name: str) -> list[str]:
    """The step names of a committed notebook, in order."""
    return step_tags(nbformat.read(NOTEBOOK_DIR / name, as_version=4))


def code_cell(notebook: nbformat.NotebookNode, tag: str) -> nbformat.NotebookNode:
    return next(c for c in notebook.cells if c.cell_type == "code" and tag in c.metadata.get("tags", []))


def first_error_cell(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    return next(c for c in notebook.cells if c.cell_type == "code" and any(o.output_type == "error" for o in c.outputs))


def mime_types(cell: nbformat.NotebookNode) -> set[str]:
    return {mime for output in cell.outputs for mime in output.get("data", {})}


def html_text(cell: nbformat.NotebookNode) -> str:
    return "\n".join(output.get("data", {}).get("text/html", "") for output in cell.outputs)


def assert_all_steps_timed(records: NotebookRecords, notebook: str, failing: str | None = None) -> None:
    """Every step ran and was timed; ``failing`` is the one step expected to fail (the outcome cell of a
    procedure that did not recover)."""
    assert [step.name for step in records.steps] == source_steps(notebook)
    expected = {step.name: "failed" if step.name == failing else "completed" for step in records.steps}
    not_done = [(step.name, step.status) for step in records.steps if step.status != expected[step.name]]
    assert not not_done, f"steps not as expected in {notebook}: {not_done}"
    untimed = [step.name for step in records.steps if step.duration_s is None or step.duration_s < 0]
    assert not untimed, f"steps without a duration in {notebook}: {untimed}"
    assert all(step.start_time and step.end_time for step in records.steps)


def unhealthy(results: dict[str, HealthResult], names: tuple[str, ...]) -> dict[str, str]:
    return {name: results[name].message for name in names if not results[name].healthy}


# --- the four incidents, each executed once per module ------------------------------------------


@dataclass
class Incident:
    """One drill: a good backup, the fault, triage, the procedure, and what the site looked like after."""

    letter: str
    site: Path
    workdir: Path
    incident_id: str
    good_backup: str
    originals: dict[str, bytes]  # config/, state/, data/ before the fault
    triage: NotebookRecords
    triage_changed: list[str]  # what the triage notebook changed in the site (only its journal)
    procedure: NotebookRecords
    health_after: dict[str, HealthResult]
    files_after: dict[str, bytes]


def run_incident(letter: str, template: Path, workdir: Path) -> Incident:
    site = copy_site(template, workdir)
    unmonitor_process(site)
    good = RecoveryManager(site=site).create_backup(description="good")
    originals = protected_files(site)
    FAULTS[letter](site)
    incident_id = f"DRILL-{letter}-0001"
    before = snapshot(site, journal=True)
    triage_out = workdir / "00_detect_and_triage.ipynb"
    execute("00_detect_and_triage.ipynb", triage_out, headless(site, incident_id=incident_id))
    triage_changed = changed(before, snapshot(site, journal=True))
    procedure_out = workdir / PROCEDURES[letter]
    execute(PROCEDURES[letter], procedure_out, headless(site, incident_id=incident_id))
    return Incident(
        letter=letter,
        site=site,
        workdir=workdir,
        incident_id=incident_id,
        good_backup=good,
        originals=originals,
        triage=read_notebook(triage_out),
        triage_changed=triage_changed,
        procedure=read_notebook(procedure_out),
        health_after=health_check.run_all(site),
        files_after=protected_files(site),
    )


@pytest.fixture(scope="module")
def incidents(sandbox_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Incident]:
    """``incidents("A")``: the executed drill of a procedure, run on first use and then shared."""
    cache: dict[str, Incident] = {}

    def get(letter: str) -> Incident:
        if letter not in cache:
            cache[letter] = run_incident(letter, sandbox_template, tmp_path_factory.mktemp(f"incident-{letter}"))
        return cache[letter]

    return get


@dataclass
class PostRecovery:
    incident: Incident
    verification: NotebookRecords
    post: NotebookRecords
    inputs: list[Path]


@pytest.fixture(scope="module")
def post_recovery(incidents: Callable[[str], Incident]) -> PostRecovery:
    """Incident A carried on: verification, then the post-recovery notebook over all three notebooks."""
    incident = incidents("A")
    verification_out = incident.workdir / "V_verification.ipynb"
    execute("V_verification.ipynb", verification_out, headless(incident.site, incident_id=incident.incident_id))
    inputs = [incident.workdir / "00_detect_and_triage.ipynb", incident.workdir / PROCEDURES["A"], verification_out]
    post_out = incident.workdir / "P_post_recovery.ipynb"
    execute(
        "P_post_recovery.ipynb",
        post_out,
        headless(incident.site, incident_id=incident.incident_id, records=[str(p) for p in inputs]),
    )
    return PostRecovery(incident, read_notebook(verification_out), read_notebook(post_out), inputs)


# --- 1. each procedure repairs its fault --------------------------------------------------------

HEALTH_CONCERNED = {
    "A": ("config",),
    "B": ("config", "data"),
    "C": ("config", "data", "backups", "exchange"),
    "D": ("backups",),
}


@pytest.mark.parametrize("letter", "ABCD")
def test_procedure_leaves_the_site_healthy(incidents: Callable[[str], Incident], letter: str) -> None:
    incident = incidents(letter)
    assert not unhealthy(incident.health_after, HEALTH_CONCERNED[letter])
    # The fault was there: the triage run before the procedure saw the concerned checks failing.
    failing_before = {name for name, r in incident.triage["health_triage"].items() if not r["healthy"]}
    assert failing_before & set(HEALTH_CONCERNED[letter])
    assert incident.procedure.failed_step is None


def _check_restore(incident: Incident, categories: list[str], restored: list[str]) -> None:
    records = incident.procedure
    assert records["backup_selection"]["backup_id"] == incident.good_backup
    assert records["backup_selection"]["skipped"] == []
    plan = records["restore_plan"]
    assert plan["backup_id"] == incident.good_backup
    assert plan["categories"] == categories
    assert plan["blockers"] == []
    approval = records["approval_restore"]
    assert approval["action"] == "restore" and approval["approved"] is True
    assert approval["by"] == OPERATOR and approval["via"] == "parameter" and approval["at"]
    result = records["restore_result"]
    assert result["ok"] is True and result["problems"] == []
    assert result["backup_id"] == plan["backup_id"]
    # The real restore applied exactly the plan the dry run showed.
    assert result["files_restored"] == [change["path"] for change in plan["changes"]]
    assert sorted(result["files_restored"]) == sorted(restored)
    assert result["pre_recovery_backup_id"]
    pre = RecoveryManager(site=incident.site).get_backup(result["pre_recovery_backup_id"])
    assert "pre-recovery" in pre.tags


def _check_a(incident: Incident) -> None:
    records = incident.procedure
    _check_restore(incident, ["config"], ["config/config.toml"])
    assert [c["action"] for c in records["restore_plan"]["changes"]] == ["replace"]
    assert records["config_check"]["ok"] is True and records["config_check"]["problems"] == []
    assert records["escalation"]["level"] == 1


def _check_b(incident: Incident) -> None:
    records = incident.procedure
    assert records["data_loss_extent"]["missing"] == ["data/trades.csv", "data/reports/"]
    window = records["data_loss_window"]
    assert window["backup_id"] == incident.good_backup and window["seconds"] > 0
    pre = records["pre_recovery_backup"]
    assert pre["ok"] is True and pre["backup_id"]
    assert "pre-recovery" in RecoveryManager(site=incident.site).get_backup(pre["backup_id"]).tags
    reports = sorted(p for p in incident.originals if p.startswith("data/reports/"))
    _check_restore(incident, ["data"], ["data/trades.csv", *reports])
    assert records["data_check"]["ok"] is True
    reconciliation = records["reconciliation"]
    assert reconciliation["ok"] is True and reconciliation["discrepancies"] == [] and reconciliation["markets"] > 0
    assert records["escalation"]["level"] == 1
    assert [a["action"] for a in records["outcome"]["approvals"]] == ["backup", "restore"]


def _check_c(incident: Incident) -> None:
    records = incident.procedure
    listing = records["pre_recovery_listing"]
    assert [e["path"] for e in listing["config"]] == ["config/config.toml"]
    assert listing["config"][0]["size"] == len(BROKEN_TOML.encode())
    assert listing["data"] == [{"path": "data", "missing": True}]
    assert listing["state"] == [{"path": "state", "missing": True}]
    assert records["incident"]["incident_id"] == incident.incident_id
    _check_restore(incident, ["config", "state", "data"], list(incident.originals))
    post = records["post_recovery_backup"]
    assert post["ok"] is True and "post-incident" in post["tags"]
    assert RecoveryManager(site=incident.site).verify_backup(post["backup_id"]).ok
    escalation = records["escalation"]
    assert escalation["level"] >= 3 and "complete system failure" in escalation["reasons"]


def _check_d(incident: Incident) -> None:
    records = incident.procedure
    directory = records["backup_dir"]
    assert directory["created"] is True and directory["writable"] is True and directory["backup_dir"] == "backups"
    assert records["backup_verification"] == {"rows": [], "damaged": 0, "ids": []}
    assert records["quarantine"] == {"ok": True, "quarantined": [], "failed": []}
    emergency = records["emergency_backup"]
    assert emergency["ok"] is True and "emergency" in emergency["tags"]
    assert RecoveryManager(site=incident.site).verify_backup(emergency["backup_id"]).ok
    schedule = records["backup_schedule"]  # really installed (the sandbox's units beside it), not only declared
    assert schedule["configured"] is True and schedule["entries"] == ["*-*-* 02:00", "Sun *-*-* 03:00"]
    assert schedule["installed"] is True and schedule["scheduler"] == "systemd" and schedule["problems"] == []
    assert schedule["active"] is None and "../site-units" in schedule["where"]  # a directory systemd does not read
    assert "restore_result" not in records.records  # D restores nothing


RECORD_CHECKS: dict[str, Callable[[Incident], None]] = {"A": _check_a, "B": _check_b, "C": _check_c, "D": _check_d}


@pytest.mark.parametrize("letter", "ABCD")
def test_procedure_records_read_back(incidents: Callable[[str], Incident], letter: str) -> None:
    incident = incidents(letter)
    records = incident.procedure
    run = records["run"]
    assert run["procedure"] == letter and run["kind"] == "drill" and run["interactive"] is False
    assert run["incident_id"] == incident.incident_id and run["operator"] == OPERATOR
    assert "site" not in run["parameters"]
    criteria = records["success_criteria"]
    assert criteria["all_passed"] is True, criteria
    assert not [row for row in criteria["rows"] if row["passed"] is False]
    outcome = records["outcome"]
    assert outcome["success"] is True and outcome["halted"] is None and outcome["finished_at"]
    assert "halted" not in records.records
    assert records["escalation"]["contact"]
    assert records.parameters["kind"] == "drill" and records.parameters["interactive"] is False
    RECORD_CHECKS[letter](incident)


@pytest.mark.parametrize("letter", "ABCD")
def test_every_step_has_a_duration(incidents: Callable[[str], Incident], letter: str) -> None:
    incident = incidents(letter)
    assert_all_steps_timed(incident.procedure, PROCEDURES[letter])
    assert_all_steps_timed(incident.triage, "00_detect_and_triage.ipynb")


@pytest.mark.parametrize("letter", "ABCD")
def test_records_show_site_paths_relative(incidents: Callable[[str], Incident], letter: str) -> None:
    incident = incidents(letter)
    # The one host path a record may hold is the sandbox's replica: it lies outside the site, beside it.
    replica = replica_dir(incident.site).as_uri()
    for records in (incident.triage, incident.procedure):
        text = json.dumps(records.records).replace(replica, "<replica>")
        assert str(incident.site) not in text and str(incident.workdir) not in text


@pytest.mark.parametrize("letter", "ABC")
def test_restored_files_equal_the_good_backup(incidents: Callable[[str], Incident], letter: str) -> None:
    incident = incidents(letter)
    restored = incident.procedure["restore_result"]["files_restored"]
    for relative in restored:
        assert incident.files_after[relative] == backup_copy(incident.site, incident.good_backup, relative), relative
    # Everything the fault broke is back as it was, and nothing else was touched.
    assert incident.files_after == incident.originals


def test_backup_recovery_keeps_the_site_and_backs_it_up(incidents: Callable[[str], Incident]) -> None:
    incident = incidents("D")
    # The local copy was lost; D re-seeded it from the replica the backup was pushed to.
    assert incident.procedure["replica_seed"]["backup_id"] == incident.good_backup
    assert RecoveryManager(site=incident.site).verify_backup(incident.good_backup).ok
    assert incident.files_after == incident.originals  # D restores nothing
    emergency = incident.procedure["emergency_backup"]["backup_id"]
    for relative, data in incident.originals.items():
        assert backup_copy(incident.site, emergency, relative) == data, relative


# --- 2. triage and verification -----------------------------------------------------------------


@pytest.mark.parametrize(("scenario", "letter"), sorted(SCENARIOS.items()))
def test_triage_names_the_procedure(incidents: Callable[[str], Incident], scenario: int, letter: str) -> None:
    incident = incidents(letter)
    triage = incident.triage["triage"]
    assert triage["scenario"] == scenario
    assert triage["scenario_name"] == SCENARIO_NAMES[scenario]
    assert triage["procedure"] == letter
    assert triage["notebook"] == PROCEDURES[letter]
    assert triage["detected_at"]
    assert incident.triage["run"]["procedure"] == "triage"
    # triage only looks: the one thing it writes is the incident's journal, outside every category
    assert incident.triage_changed == ["incidents", f"incidents/{incident.incident_id}.jsonl"]


def test_triage_on_a_healthy_site_names_no_procedure(sandbox: Path, tmp_path: Path) -> None:
    unmonitor_process(sandbox)
    RecoveryManager(site=sandbox).create_backup(description="good")
    assert health_check.is_system_healthy(sandbox)
    before = snapshot(sandbox)
    out = tmp_path / "triage.ipynb"
    execute("00_detect_and_triage.ipynb", out, headless(sandbox))
    triage = read_notebook(out)["triage"]
    assert triage["scenario"] is None and triage["procedure"] is None and triage["notebook"] is None
    assert triage["scenario_name"] == "No disaster detected"
    assert triage["failed_checks"] == [] and triage["missing_paths"] == []
    assert changed(before, snapshot(sandbox)) == []


def test_verification_passes_on_the_recovered_site(post_recovery: PostRecovery) -> None:
    records = post_recovery.verification
    assert records["verification"] == {
        "ok": True,
        "health_ok": True,
        "failing": [],
        "data_ok": True,
        "reconciled": True,
        "config_ok": True,
        "exchange_ok": True,
    }
    assert records["outcome"]["success"] is True
    assert_all_steps_timed(records, "V_verification.ipynb")


def test_verification_fails_on_a_broken_config(sandbox: Path, tmp_path: Path) -> None:
    unmonitor_process(sandbox)
    RecoveryManager(site=sandbox).create_backup(description="good")
    corrupt_config(sandbox)
    before = snapshot(sandbox)
    out = tmp_path / "verification.ipynb"
    with pytest.raises(papermill.PapermillExecutionError) as raised:  # a failed verification fails the run
        execute("V_verification.ipynb", out, headless(sandbox))
    assert raised.value.ename == "ProcedureFailed" and "Configuration validity" in raised.value.evalue
    records = read_notebook(out)
    verification = records["verification"]
    assert verification["ok"] is False and verification["config_ok"] is False
    assert "config" in verification["failing"]
    assert verification["data_ok"] is True and verification["exchange_ok"] is True
    assert records["config_check"]["ok"] is False and records["config_check"]["problems"]
    assert records["outcome"]["success"] is False
    assert_all_steps_timed(records, "V_verification.ipynb", failing="outcome")
    assert changed(before, snapshot(sandbox)) == []  # verification only looks


# --- 3. post-recovery ---------------------------------------------------------------------------


def test_post_recovery_summarises_the_incident(post_recovery: PostRecovery) -> None:
    incident = post_recovery.incident
    records = post_recovery.post
    summary = records["incident_summary"]
    assert summary["incident_id"] == incident.incident_id
    assert summary["what_failed"] == ["config"]
    assert summary["scenario"] == SCENARIO_NAMES[1]
    assert summary["detected_at"] == incident.triage["triage"]["detected_at"]
    assert summary["backup_used"] == incident.good_backup
    assert summary["time_to_recovery_s"] is not None and summary["time_to_recovery_s"] >= 0
    assert summary["restored_ok"] is True and summary["verified_ok"] is True
    assert summary["notebooks"] == [p.name for p in post_recovery.inputs]
    assert {s["notebook"] for s in summary["steps"]} == {p.name for p in post_recovery.inputs}
    text = records["notification"]["text"]
    assert incident.incident_id in text and incident.good_backup in text
    escalation = records["escalation"]
    assert escalation["level"] == 1 and escalation["contact"]
    assert f"Level {escalation['level']}" in text
    backup = records["verification_backup"]
    assert backup["ok"] is True and RecoveryManager(site=incident.site).verify_backup(backup["backup_id"]).ok
    assert_all_steps_timed(records, "P_post_recovery.ipynb")


# --- 4. interactive, nobody clicks --------------------------------------------------------------


@pytest.mark.parametrize("letter", "ABCD")
def test_interactive_run_all_without_clicks_changes_nothing(sandbox: Path, tmp_path: Path, letter: str) -> None:
    good = RecoveryManager(site=sandbox).create_backup(description="good")
    FAULTS[letter](sandbox)
    before = snapshot(sandbox)
    prepared = tmp_path / f"{letter}-interactive.ipynb"
    # approve is ignored when interactive: only a click approves.
    parameters = {"site": str(sandbox), "interactive": True, "kind": "drill", "approve": list(APPROVE_ALL)}
    notebook = papermill.execute_notebook(
        str(NOTEBOOK_DIR / PROCEDURES[letter]),
        str(prepared),
        parameters=parameters,
        prepare_only=True,
        kernel_name="python3",
        progress_bar=False,
    )
    client = nbclient.NotebookClient(
        notebook, kernel_name="python3", allow_errors=False, resources={"metadata": {"path": str(tmp_path)}}
    )
    with pytest.raises(nbclient.exceptions.CellExecutionError) as raised:
        client.execute()
    nbformat.write(notebook, prepared)

    assert raised.value.ename == "ApprovalRequired"
    assert "Approve" in raised.value.evalue and "nothing was changed" in raised.value.evalue
    failing = first_error_cell(notebook)
    assert failing.metadata["tags"] == [f"step:{GATED_STEP[letter]}"]
    later = notebook.cells[notebook.cells.index(failing) + 1 :]
    assert all(not c.get("outputs") for c in later if c.cell_type == "code")
    assert changed(before, snapshot(sandbox)) == []

    # The gate put its Approve / Abort widgets on screen before failing closed.
    gate_cell = failing if letter in "BD" else code_cell(notebook, "step:dry_run")
    assert WIDGET_VIEW in mime_types(gate_cell)
    if letter in "AC":
        plan_html = html_text(code_cell(notebook, "step:dry_run"))
        assert "Restore plan" in plan_html and good in plan_html
        picker = code_cell(notebook, "step:select_backup")
        assert WIDGET_VIEW in mime_types(picker)
        records = read_notebook(prepared)
        assert records["restore_plan"]["backup_id"] == good
        assert records["backup_selection"]["backup_id"] == good
        assert "approval_restore" not in records.records and "restore_result" not in records.records


@pytest.mark.parametrize("letter", "ABCD")
def test_interactive_cells_run_past_the_gate_still_change_nothing(sandbox: Path, tmp_path: Path, letter: str) -> None:
    """An engineer who keeps running the cells below an unanswered gate: every writing cell fails closed."""
    RecoveryManager(site=sandbox).create_backup(description="good")
    FAULTS[letter](sandbox)
    before = snapshot(sandbox)
    notebook = papermill.execute_notebook(
        str(NOTEBOOK_DIR / PROCEDURES[letter]),
        str(tmp_path / "prepared.ipynb"),
        parameters={"site": str(sandbox), "interactive": True, "kind": "drill"},
        prepare_only=True,
        kernel_name="python3",
        progress_bar=False,
    )
    nbclient.NotebookClient(
        notebook, kernel_name="python3", allow_errors=True, resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    errors = {
        cell.metadata["tags"][0]: output.ename
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if output.output_type == "error"
    }
    assert errors[f"step:{GATED_STEP[letter]}"] == "ApprovalRequired"
    # Later cells fail on the gate again, or on a value the refused cell never produced; the outcome
    # cell then says the procedure did not recover. Nothing else.
    assert set(errors.values()) <= {"ApprovalRequired", "NameError", "ProcedureFailed"}, errors
    assert errors["step:outcome"] == "ProcedureFailed"
    assert changed(before, snapshot(sandbox)) == []


# --- 5. bad parameters --------------------------------------------------------------------------

BAD_PARAMETERS = {
    "unknown": ({"bakup_id": "x"}, ["unknown parameter 'bakup_id'"]),
    "wrong-type": ({"interactive": "yes"}, ["parameter 'interactive' must be bool", "'yes'"]),
    "bad-kind": ({"kind": "party"}, ["parameter 'kind'", "'party'"]),
    "missing-site": ({"site": None}, ["required parameter 'site' is missing"]),
    "no-such-site": ({"site": "{tmp}/no-such-site"}, ["site", "no-such-site", "does not exist"]),
}


@pytest.mark.parametrize("case", list(BAD_PARAMETERS))
def test_bad_parameters_fail_in_the_validation_cell(sandbox: Path, tmp_path: Path, case: str) -> None:
    RecoveryManager(site=sandbox).create_backup(description="good")
    corrupt_config(sandbox)  # a run that got past validation would restore it
    before = snapshot(sandbox)
    overrides, expected = BAD_PARAMETERS[case]
    overrides = {k: v.format(tmp=tmp_path) if isinstance(v, str) else v for k, v in overrides.items()}
    out = tmp_path / "bad.ipynb"
    with pytest.raises(papermill.PapermillExecutionError) as raised:
        execute(PROCEDURES["A"], out, {**headless(sandbox), **overrides})
    assert raised.value.ename in ("ParameterError", "SiteError")
    for fragment in expected:
        assert fragment in raised.value.evalue
    executed = nbformat.read(out, as_version=4)
    assert first_error_cell(executed).metadata["tags"] == ["validate"]
    records = read_notebook(out)
    assert records.records == {}
    assert all(step.status not in ("completed", "failed") for step in records.steps)
    assert changed(before, snapshot(sandbox)) == []
    assert not (tmp_path / "no-such-site").exists()


# --- 6. a corrupted newest backup ---------------------------------------------------------------


def corrupt_in_place(path: Path) -> None:
    """Flip one byte of a backup file, same size. The file is replaced, not written through, so a
    hard-linked copy of it in an older backup stays intact."""
    data = bytearray(path.read_bytes())
    data[10] ^= 0x01
    mode = stat.S_IMODE(path.stat().st_mode)
    os.chmod(path.parent, stat.S_IMODE(path.parent.stat().st_mode) | stat.S_IWUSR)
    os.chmod(path, mode | stat.S_IWUSR)
    path.unlink()
    path.write_bytes(bytes(data))
    os.chmod(path, mode)
    os.chmod(path.parent, stat.S_IMODE(path.parent.stat().st_mode) & ~stat.S_IWUSR)


def test_corrupted_newest_backup_is_skipped_and_named(sandbox: Path, tmp_path: Path) -> None:
    unmonitor_process(sandbox)
    manager = RecoveryManager(site=sandbox)
    older = manager.create_backup(description="good 1")
    newer = manager.create_backup(description="good 2")
    assert [m.backup_id for m in manager.list_backups()] == [newer, older]
    damaged = sandbox / "backups" / newer / "config" / "config.toml"
    size = damaged.stat().st_size
    corrupt_in_place(damaged)
    assert damaged.stat().st_size == size
    assert not manager.verify_backup(newer).ok and manager.verify_backup(older).ok
    corrupt_config(sandbox)

    out = tmp_path / "A.ipynb"
    execute(PROCEDURES["A"], out, headless(sandbox))
    records = read_notebook(out)
    selection = records["backup_selection"]
    assert selection["backup_id"] == older
    assert len(selection["skipped"]) == 1 and newer in selection["skipped"][0]
    assert "config/config.toml" in selection["skipped"][0]
    assert records["restore_result"]["ok"] is True and records["restore_result"]["backup_id"] == older
    assert (sandbox / "config" / "config.toml").read_bytes() == backup_copy(sandbox, older, "config/config.toml")
    assert records["outcome"]["success"] is True
    # ... and says so where the engineer looks.
    shown = html_text(code_cell(nbformat.read(out, as_version=4), "step:select_backup"))
    assert "Passed over" in shown and newer in shown and older in shown


# --- 7. no backups at all -----------------------------------------------------------------------


def test_no_backups_escalates_instead_of_crashing(sandbox: Path, tmp_path: Path) -> None:
    (sandbox / "backups").mkdir(exist_ok=True)
    assert list((sandbox / "backups").iterdir()) == []
    corrupt_config(sandbox)
    before = snapshot(sandbox)

    out = tmp_path / "A.ipynb"
    with pytest.raises(papermill.PapermillExecutionError) as raised:  # every step runs; the outcome cell fails
        execute(PROCEDURES["A"], out, headless(sandbox))
    assert raised.value.ename == "ProcedureFailed" and "no usable backup" in raised.value.evalue
    records = read_notebook(out)
    assert "no usable backup" in records["halted"]["reason"]
    assert records["backup_selection"]["backup_id"] is None
    outcome = records["outcome"]
    assert outcome["success"] is False and "no usable backup" in outcome["halted"]
    criteria = records["success_criteria"]
    assert criteria["all_passed"] is False
    assert {row["criterion"]: row["passed"] for row in criteria["rows"]}["Config file restored"] is False
    escalation = records["escalation"]
    assert escalation["level"] >= 2
    assert any("no usable backup" in reason for reason in escalation["reasons"])
    assert "approval_restore" not in records.records and "restore_result" not in records.records
    assert_all_steps_timed(records, PROCEDURES["A"], failing="outcome")
    assert (sandbox / "config" / "config.toml").read_text() == BROKEN_TOML
    assert changed(before, snapshot(sandbox)) == []
