"""``recovery resume``: a procedure that stopped halfway goes on from the step that failed (issue 17).

A real sandbox loses data; procedure B runs headless with papermill in a kernel of its own, as a
drill runs it, without the "restore" and "repair" approvals, so it halts at the remedy. Then
``recovery resume RECORD --approve ...`` (the installed console script, in a subprocess) replays what
that run did (the stop, the pre-recovery backup) without doing it again and recovers. Refusals exit 2
and run nothing; ``--list`` names the failed runs before the resume and none after.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import papermill
import pytest
from cli_capture import run
from site_copies import copy_site
from snapshots import tree

from recovery_lib.drills.injectors import inject
from recovery_lib.drills.kernels import execute_in, quiet_kernels, start_kernel
from recovery_lib.drills.runner import NOTEBOOK_DIR
from recovery_lib.manager import PRE_RECOVERY_TAG, RecoveryManager
from recovery_lib.runbook.records import read_notebook
from recovery_lib.site.config import Site, load_site
from recovery_lib.site.process import process_status, start_system, stop_system

RECOVERY = Path(sys.executable).with_name("recovery")
NOT_THE_REMEDY = ["backup", "stop_system", "start_system"]  # neither restore nor repair: it halts at the remedy


@pytest.fixture
def data_loss(sandbox: Path) -> Any:
    """The sandbox trading, with a nightly backup, then its data files deleted."""
    site = load_site(sandbox)
    assert start_system(site, timeout_s=15).ok
    RecoveryManager(site=site).create_backup(description="nightly", tags=["daily"])
    inject(site, "data", variant="files_deleted", seed=4)
    yield site
    stop_system(site, timeout_s=15)


def failed_b_run(site: Site, records: Path) -> Path:
    """Procedure B headless as a drill runs it (papermill, a kernel of its own in the site), without
    the remedy's approvals: it halts there and its outcome cell fails. Returns its record."""
    records.mkdir(exist_ok=True)
    record = records / "02_B_data_recovery.ipynb"
    parameters = {"site": str(site.root), "interactive": False, "approve": NOT_THE_REMEDY, "operator": "alice"}
    kernel = start_kernel(site.root)
    with quiet_kernels(), pytest.raises(papermill.PapermillExecutionError):
        try:
            execute_in(kernel, NOTEBOOK_DIR / "B_data_recovery.ipynb", record, parameters)
        finally:
            kernel.stop()
    assert (read_notebook(record).get("outcome") or {}).get("success") is False
    return record


def resume_cli(*argv: str) -> subprocess.CompletedProcess[str]:
    """The installed ``recovery`` script, as a person at a terminal runs it."""
    return subprocess.run([str(RECOVERY), "resume", *argv], capture_output=True, text=True, check=False, timeout=120)


def journal_lines(site: Site) -> list[dict[str, Any]]:
    return [json.loads(line) for path in site.records_dir.glob("*.jsonl") for line in path.read_text().splitlines()]


def pre_recovery_backups(site: Site) -> list[str]:
    return [m.backup_id for m in RecoveryManager(site=site).list_backups() if PRE_RECOVERY_TAG in m.tags]


def assert_refused(capsys: pytest.CaptureFixture[str], where: Path, argv: list[str], *words: str) -> None:
    """Exit 2, a message naming ``words``, and nothing under ``where`` changed (nothing was run)."""
    before = tree(where)
    code, out, err = run(capsys, "resume", *argv)
    assert code == 2, (code, out, err)
    assert "Traceback" not in err and "Running" not in out, (out, err)
    for word in words:
        assert word in err, (word, err)
    assert tree(where) == before, "a refused resume changed something"


def test_resume_replays_the_stop_and_backup_and_recovers(
    data_loss: Site, tmp_path: Path, sandbox_template: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = data_loss
    code, out, _ = run(capsys, "resume", "--list", "--site", str(site.root))
    assert (code, out.startswith("No failed run")) == (0, True), out
    record = failed_b_run(site, tmp_path / "records")
    failed = read_notebook(record)["run"]
    assert not process_status(site).running, "the failed run stopped trading before it halted"

    code, out, _ = run(capsys, "resume", "--list", "--procedure", "B", "--site", str(site.root))
    assert code == 0 and failed["run_id"] in out and "failed at restore" in out, out

    # Refused, nothing run: an unknown approval, a file that is no record, a record of another site.
    assert_refused(capsys, tmp_path, [str(record), "--approve", "restor"], str(record), "'restor'", "restore")
    (tmp_path / "notes.txt").write_text("not a notebook\n")
    assert_refused(capsys, tmp_path, [str(tmp_path / "notes.txt")], "notes.txt", ".ipynb")
    other = copy_site(sandbox_template, tmp_path / "other")
    assert_refused(capsys, tmp_path, [str(record), "--site", str(other)], str(record), failed["run_id"], "--site")

    done = resume_cli(str(record), "--approve", "restore", "--approve", "repair", "--approve", "start_system")
    assert done.returncode == 0, done.stdout + done.stderr
    plan_at, running_at = done.stdout.index("Resume plan for"), done.stdout.index("Running B_data_recovery.ipynb")
    assert plan_at < running_at < done.stdout.index("RECOVERED"), done.stdout  # the plan before anything runs
    assert "replayed (not repeated): " in done.stdout and "stop, pre_recovery_backup" in done.stdout
    resumed = sorted((tmp_path / "records").glob("02_B_data_recovery-resumed-*.ipynb"))
    assert len(resumed) == 1 and resumed[0].with_suffix(".html").is_file(), resumed
    assert str(resumed[0]) in done.stdout
    new = read_notebook(resumed[0])
    assert new["run"]["resumed_from"] == failed["run_id"]
    assert new["run"]["incident_id"] == failed["incident_id"]
    assert {"stop", "pre_recovery_backup"} <= set(new["resume"]["replay"]), new["resume"]
    assert new["outcome"]["success"] is True

    # One of each across both runs: the resumed run did not stop trading or back the site up again.
    assert len(pre_recovery_backups(site)) == 1, pre_recovery_backups(site)
    stops = [e for e in journal_lines(site) if e["kind"] == "record" and e["name"] == "stop_system"]
    assert [e["run"] for e in stops if e["value"].get("ok")] == [failed["run_id"]]
    assert process_status(site).running, "the resumed run restarted trading"

    code, out, _ = run(capsys, "resume", "--list", "--site", str(site.root))
    assert (code, out.startswith("No failed run")) == (0, True), out

    # A run that recovered, or a run resumed since, is refused (trading stopped: nothing else writes).
    assert stop_system(site, timeout_s=15).ok
    assert_refused(capsys, tmp_path, [str(resumed[0])], str(resumed[0]), "recovered")
    assert_refused(capsys, tmp_path, [str(record), "--approve", "restore"], str(record), "resumed it since")


def test_a_resume_that_does_not_recover_exits_1_and_says_what_next(
    data_loss: Site, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Resumed without the approval it halted for: it halts there again, exit 1, naming the new record,
    the step and the --approve that goes on; a second resume (of that record) recovers."""
    record = failed_b_run(data_loss, tmp_path / "records")
    output = tmp_path / "records" / "again.ipynb"
    code, out, err = run(capsys, "resume", str(record), "--output", str(output))
    assert code == 1, (out, err)
    assert f"Record: {output}" in out and "stopped at restore" in out, out
    assert f"recovery resume {output} --approve restore" in out, out
    assert read_notebook(output)["run"]["resumed_from"] == read_notebook(record)["run"]["run_id"]
    assert not process_status(data_loss).running, "trading stays stopped"
    code, out, err = run(capsys, "resume", str(output), "--approve", "restore", "--approve", "start_system")
    assert code == 0, (out, err)
    assert len(pre_recovery_backups(data_loss)) == 1
