"""Drills end to end: one drill per scenario, a drill whose procedure fails, and their records.

A whole drill runs four notebooks with papermill and costs several seconds, so the module runs few
of them and shares them: one drill per scenario into one outputs directory (``drills``) and one
drill whose procedure fails, run through the CLI (``failed_drill``).

Every drill is watched from the outside: the trading process it starts is looked up in /proc while
the drill runs, and after the drill no process may be left whose working directory or command line
lies in the drill's site, and the runner's temporary directory must be gone.
"""

from __future__ import annotations

import fcntl
import io
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import papermill
import pytest
from drill_helpers import (
    cmdline_of,
    copy_site,
    cwd_of,
    healthy,
    iso_z,
    kill_leftovers,
    our_trading_processes,
    pid_alive,
)

from recovery_lib.cli import main as cli
from recovery_lib.drills import runner as drill_runner
from recovery_lib.drills.history import COLUMNS, load_records
from recovery_lib.drills.injectors import PROCEDURE_OF, VARIANTS
from recovery_lib.drills.report import write_index
from recovery_lib.drills.runner import DrillResult, run_drill
from recovery_lib.manager import RecoveryManager
from recovery_lib.runbook.records import read_notebook
from recovery_lib.sandbox.live_ops import PIDFILE
from recovery_lib.site.config import load_site
from recovery_lib.site.integrity import check_config_file
from recovery_lib.site.process import process_status

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = ROOT / "notebooks"
PROCEDURE_NOTEBOOK = {
    "A": "A_config_recovery.ipynb",
    "B": "B_data_recovery.ipynb",
    "C": "C_full_system_recovery.ipynb",
    "D": "D_backup_system_recovery.ipynb",
}


def processes_in(path: Path) -> list[str]:
    """Live processes whose working directory or command line lies in ``path``."""
    top = str(path)
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        pid = int(entry.name)
        cmdline, cwd = cmdline_of(pid), cwd_of(pid)
        inside = cwd == top or cwd.startswith(top + "/") or top in cmdline
        if inside and pid_alive(pid):
            found.append(f"{pid}: {cmdline} (cwd {cwd})")
    return found


def corrupt_every_backup(backup_dir: Path) -> list[str]:
    """Flip a byte in every stored file of every backup (replacing, never editing, each file)."""
    damaged = []
    for folder in sorted(p for p in backup_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for path in sorted(folder.rglob("*")):
            if path.is_file() and path.parent != folder:  # stored files, not the backup's own metadata
                data = bytearray(path.read_bytes()) or bytearray(b"\0")
                data[0] ^= 0xFF
                os.chmod(path.parent, 0o755)
                path.unlink()
                path.write_bytes(bytes(data))
                damaged.append(f"{folder.name}/{path.relative_to(folder)}")
    return damaged


def flock_free(path: Path) -> bool:
    """True when nobody holds ``path`` flocked (it may exist: a lock file is allowed to stay)."""
    if not path.exists():
        return True
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def plain(row: pd.Series) -> dict[str, Any]:
    """A record row as a dict, with pandas' missing values (None or NaN, depending on the column) as None."""
    return {k: None if not isinstance(v, list) and pd.isna(v) else v for k, v in row.to_dict().items()}


@dataclass
class Watched:
    """A drill as seen from outside: its result, what it printed, and its processes."""

    result: DrillResult
    lines: list[str]
    site_root: Path
    trading_pids: list[int]  # the trading process(es) seen running while the drill ran
    left_running: list[str] = field(default_factory=list)  # anything alive in its site afterwards


class Watcher:
    """A ``say`` for the runner that notes the trading process the drill starts, and an optional hook."""

    def __init__(self, say: Callable[[str], Any] | None = None, hook: Callable[[str], None] | None = None) -> None:
        self.lines: list[str] = []
        self.seen: dict[int, str] = {}
        self.say = say
        self.hook = hook

    def __call__(self, line: str) -> None:
        self.lines.append(line)
        if self.say is not None:
            self.say(line)
        if "sandbox ready" in line:
            self.seen.update(our_trading_processes())
        if self.hook is not None:
            self.hook(line)

    def finish(self, result: DrillResult, site_root: Path | None = None) -> Watched:
        if site_root is None:
            site_root = Path(read_notebook(result.notebooks[0]).parameters["site"])
        mine = [pid for pid, cwd in self.seen.items() if cwd == str(site_root)]
        watched = Watched(result, self.lines, site_root, mine, processes_in(site_root))
        kill_leftovers(self.seen)
        return watched


def watched_drill(scenario: str, outputs: Path, **kwargs: Any) -> Watched:
    watcher = Watcher(hook=kwargs.pop("hook", None))
    result = run_drill(scenario, outputs, say=watcher, **kwargs)
    return watcher.finish(result, kwargs.get("site_dir"))


@pytest.fixture(scope="module")
def drills(outputs: Path) -> dict[str, Watched]:
    """One drill per scenario, each on a fresh sandbox made by the runner, into the shared outputs."""
    done = {}
    for scenario in VARIANTS:
        done[scenario] = watched_drill(scenario, outputs)
        print(f"drill {scenario}: {done[scenario].result.seconds:.1f} s ({done[scenario].result.fault.variant})")
    return done


@dataclass
class FailedDrill:
    watched: Watched
    exit_code: int
    stdout: str
    damaged: list[str]


@pytest.fixture(scope="module")
def failed_drill(
    outputs: Path, drills: dict[str, Watched], sandbox_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> FailedDrill:
    """``recovery drill run --scenario config --site SITE`` where, right after the fault, every backup
    (including the one the runner just took) is corrupted and there is no replica: Procedure A finds
    nothing to restore from. Runs after the four scenario drills, into the same outputs."""
    site_root = copy_site(sandbox_template, tmp_path_factory.mktemp("failing") / "site")
    damaged: list[str] = []
    watchers: list[Watcher] = []
    results: list[DrillResult] = []
    real_run_drill = drill_runner.run_drill

    def corrupting_run_drill(*args: Any, **kwargs: Any) -> DrillResult:
        def hook(line: str) -> None:
            if "injected" in line:
                damaged.extend(corrupt_every_backup(site_root / "backups"))

        watcher = Watcher(say=kwargs.pop("say"), hook=hook)
        watchers.append(watcher)
        results.append(real_run_drill(*args, say=watcher, **kwargs))
        return results[-1]

    out = io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(drill_runner, "run_drill", corrupting_run_drill)
        code = cli.main(
            ["drill", "run", "--scenario", "config", "--site", str(site_root), "--outputs", str(outputs)], out=out
        )
    assert len(results) == 1, out.getvalue()
    watched = watchers[0].finish(results[0], site_root)
    print(f"failing drill: {watched.result.seconds:.1f} s")
    return FailedDrill(watched, code, out.getvalue(), damaged)


# --- 2. one drill per scenario, end to end ----------------------------------------------------


@pytest.mark.parametrize("scenario", list(VARIANTS))
def test_drill_recovers_and_keeps_its_notebooks(drills: dict[str, Watched], outputs: Path, scenario: str) -> None:
    watched = drills[scenario]
    result = watched.result
    assert result.recovered, result.failure
    assert result.failure is None and result.outcome == "recovered"
    assert result.scenario == scenario and result.fault is not None and result.fault.scenario == scenario
    assert result.fault.variant in VARIANTS[scenario]
    assert result.run_dir == outputs.resolve() / result.run_id and scenario in result.run_id

    procedure = PROCEDURE_OF[scenario]
    assert result.triage_procedure == procedure and result.procedures[0] == procedure
    # Procedure D follows when the fault damaged a backup too (triage names it).
    assert result.procedures in ([procedure], [procedure, "D"])
    count = len(result.procedures)
    expected = [
        "01_00_detect_and_triage.ipynb",
        *(f"{n:02d}_{PROCEDURE_NOTEBOOK[p]}" for n, p in enumerate(result.procedures, start=2)),
        f"{count + 2:02d}_V_verification.ipynb",
        f"{count + 3:02d}_P_post_recovery.ipynb",
    ]
    assert [p.name for p in result.notebooks] == expected
    for name in expected:
        notebook = result.run_dir / name
        assert notebook.is_file() and notebook.with_suffix(".html").is_file()
        assert notebook.with_suffix(".html").stat().st_size > 1000
        # Written in the background while the next notebook ran, and complete when the drill returned.
        assert notebook.with_suffix(".html").read_text(encoding="utf-8").rstrip().endswith("</html>")
    triage = read_notebook(result.run_dir / expected[0])
    assert triage["triage"]["procedure"] == procedure
    assert triage.parameters["drill"]["variant"] == result.fault.variant
    assert triage.parameters["drill"]["fault_at"] == result.fault.fault_at
    assert read_notebook(result.run_dir / expected[-2])["verification"]["ok"] is True
    assert any(f"injected {scenario}/{result.fault.variant}" in line for line in watched.lines)


@pytest.mark.parametrize("scenario", list(VARIANTS))
def test_drill_leaves_no_process_and_no_sandbox_behind(drills: dict[str, Watched], scenario: str) -> None:
    watched = drills[scenario]
    assert watched.trading_pids, "the drill's trading process was never seen running"
    assert not [pid for pid in watched.trading_pids if pid_alive(pid)]
    assert watched.left_running == [], "processes left running in the drill's site"
    workdir = watched.site_root.parent
    assert workdir.name.startswith("drill-") and workdir.parent == Path(tempfile.gettempdir()).resolve()
    assert not workdir.exists(), f"the drill's sandbox {workdir} was not removed"


def test_drill_records(drills: dict[str, Watched], outputs: Path) -> None:
    records = load_records(outputs)
    assert list(records.columns) == COLUMNS
    for scenario, watched in drills.items():
        mine = records[records["run_id"] == watched.result.run_id]
        assert len(mine) == 1, f"one record per drill ({scenario})"
        row = mine.iloc[0]
        assert row["kind"] == "drill" and row["scenario"] == scenario
        assert row["procedure"] == "+".join(watched.result.procedures)
        assert row["procedure"].startswith(PROCEDURE_OF[scenario])
        assert row["outcome"] == "recovered" and pd.isna(row["failed_step"])
        assert row["fault_at"] == watched.result.fault.fault_at
        # Detection (triage) comes after the fault and within the drill's own run (timed before the fault).
        assert 0 < row["time_to_detect_s"] <= watched.result.seconds + 0.01  # seconds is rounded to 0.01
        assert row["time_to_recover_s"] > 0 and row["time_to_recover_s"] >= row["time_to_detect_s"]
        assert row["rto_met"] == True  # noqa: E712 (a numpy bool)
        assert row["time_to_recover_s"] <= row["rto_target_s"]
        assert iso_z(row["recovered_at"]) > iso_z(row["fault_at"])
        assert 1 <= row["escalation_level"] <= 4
        assert row["notebooks"] == [p.name for p in watched.result.notebooks]
        restored = scenario in ("config", "full") or row["remedy"] == "restore"
        if restored:
            assert row["data_loss_window_s"] > 0, scenario
            assert row["rpo_met"] == True  # noqa: E712
            assert isinstance(row["backup_id"], str) and row["backup_id"]
        elif scenario == "data":  # repaired in place: nothing was rolled back
            assert row["data_loss_window_s"] == 0 and pd.isna(row["backup_id"])
        # Trades made after the restore point are written back from the exchange: none is lost.
        assert row["trades_lost"] == 0, scenario
        if scenario in ("data", "full") and restored:
            assert row["trades_replayed"] > 0, scenario
        if scenario == "full":
            assert row["escalation_level"] >= 3
    by_scenario = {s: records[records["run_id"] == w.result.run_id].iloc[0] for s, w in drills.items()}
    assert by_scenario["config"]["escalation_level"] == 1


def test_drill_index_links_every_record(drills: dict[str, Watched], failed_drill: FailedDrill, outputs: Path) -> None:
    index = write_index(outputs, NOTEBOOK_DIR)
    assert index == outputs / "index.html"
    page = index.read_text()
    records = load_records(outputs)
    assert len(records) == len(drills) + 1
    assert set(records["run_id"]) == {w.result.run_id for w in drills.values()} | {failed_drill.watched.result.run_id}
    for _, row in records.iterrows():
        assert row["run_id"] in page
        for name in row["notebooks"]:
            link = f"{row['run_id']}/{Path(name).with_suffix('.html').name}"
            assert f'href="{link}"' in page, link
            assert (outputs / link).is_file(), link
    assert "✅ recovered" in page and "❌ not recovered" in page
    assert not (outputs / ".R_drill_report.ipynb").exists()


# --- 3. a drill whose procedure fails ---------------------------------------------------------


def test_failed_drill_ends_not_recovered_with_a_non_zero_exit(failed_drill: FailedDrill, outputs: Path) -> None:
    result = failed_drill.watched.result
    assert failed_drill.damaged, "no backup was corrupted"
    assert failed_drill.exit_code == 1, failed_drill.stdout
    assert not result.recovered and result.outcome == "not_recovered"
    assert result.failure and "config" in result.failure
    assert f"NOT RECOVERED: config ({result.run_id})" in failed_drill.stdout
    assert "Records: " in failed_drill.stdout and (outputs / "index.html").is_file()
    assert result.triage_procedure == "A"

    records = load_records(outputs)
    row = records[records["run_id"] == result.run_id].iloc[0]
    assert row["outcome"] == "not_recovered"
    assert row["procedure"].startswith("A")
    assert pd.isna(row["backup_id"]), "no backup should have been usable"
    assert pd.isna(row["recovered_at"]) and pd.isna(row["time_to_recover_s"])
    assert row["escalation_level"] >= 2, "runbook: recovery procedure failed / backup not available -> level 2"
    procedure = read_notebook(result.run_dir / "02_A_config_recovery.ipynb")
    assert procedure["backup_selection"]["backup_id"] is None
    assert procedure["backup_selection"]["skipped"], "the corrupted backups should be listed as skipped"
    assert procedure["outcome"]["success"] is False
    assert "no usable backup" in procedure["halted"]["reason"]
    assert not healthy(load_site(failed_drill.watched.site_root), "config"), "nothing could repair the config"


def test_failed_drill_leaves_no_process_and_no_lock(failed_drill: FailedDrill) -> None:
    watched = failed_drill.watched
    assert watched.trading_pids and not [pid for pid in watched.trading_pids if pid_alive(pid)]
    assert watched.left_running == []
    site = load_site(watched.site_root)
    assert process_status(site).running is False and not site.path(PIDFILE).exists()
    assert flock_free(site.path(site.process.write_lock))
    assert flock_free(site.backup_dir / ".lock")


def test_failed_drill_records_the_failing_step(failed_drill: FailedDrill, outputs: Path) -> None:
    result = failed_drill.watched.result
    row = load_records(outputs).set_index("run_id").loc[result.run_id]
    assert row["failed_step"] is not None and "A_config_recovery" in row["failed_step"]
    assert "criterion failed: Config file restored" in row["failed_step"]  # the criterion, then the halt says why
    procedure = read_notebook(result.run_dir / "02_A_config_recovery.ipynb")
    assert procedure.record_steps["halted"] == "select_backup"


def test_failed_drill_takes_no_verified_backup_of_a_broken_site(failed_drill: FailedDrill) -> None:
    """The procedure halted and the config is still broken, so the state never passed the trading gate:
    the site holds backups (the scheduled one at least), and not one of them is tagged "verified"."""
    site = load_site(failed_drill.watched.site_root)
    assert not check_config_file(site.path(site.config_file), site.required_sections).ok, "the config is broken"
    backups = RecoveryManager(site=site).list_backups()
    assert backups, "the drill took its scheduled backup, so there are backups to look at"
    verified = [metadata.backup_id for metadata in backups if "verified" in metadata.tags]
    assert verified == [], f"tagged verified although the site never passed the gate: {verified}"


def _backups_dir_is_a_file(site_root: Path) -> None:
    shutil.rmtree(site_root / "backups", ignore_errors=True)
    (site_root / "backups").write_text("not a directory\n")


def test_drill_failing_before_the_fault_stops_its_process(
    sandbox: Path, sandbox_template: Path, tmp_path: Path
) -> None:
    _backups_dir_is_a_file(sandbox)
    watcher = Watcher()
    result = run_drill("config", tmp_path / "out", site_dir=sandbox, say=watcher)
    assert not result.recovered and "drill setup failed" in (result.failure or "")
    assert watcher.seen, "the trading process was never started"
    assert not [pid for pid in watcher.seen if pid_alive(pid)]
    assert processes_in(sandbox) == []
    site = load_site(sandbox)
    assert process_status(site).running is False and flock_free(site.path(site.process.write_lock))
    template = load_site(sandbox_template)
    assert site.path(site.config_file).read_bytes() == template.path(template.config_file).read_bytes()
    assert healthy(site, "config"), "no fault may be injected when the drill could not take its backup"


def test_drill_failing_before_the_fault_is_recorded_as_not_recovered(sandbox: Path, tmp_path: Path) -> None:
    _backups_dir_is_a_file(sandbox)
    result = run_drill("config", tmp_path / "out", site_dir=sandbox, say=lambda line: None)
    assert not result.recovered
    assert result.failure and "backups" in result.failure


def test_cli_drill_failing_before_the_fault_exits_1(sandbox: Path, tmp_path: Path) -> None:
    _backups_dir_is_a_file(sandbox)
    out = io.StringIO()
    code = cli.main(
        ["drill", "run", "--scenario", "config", "--site", str(sandbox), "--outputs", str(tmp_path)], out=out
    )
    assert code == 1, out.getvalue()
    assert "NOT RECOVERED: config" in out.getvalue()


def test_interrupted_drill_stops_its_process_and_removes_its_sandbox(tmp_path: Path) -> None:
    def interrupt(line: str) -> None:
        if "injected" in line:
            raise KeyboardInterrupt

    watcher = Watcher(hook=interrupt)
    with pytest.raises(KeyboardInterrupt):
        run_drill("data", tmp_path / "out", say=watcher)
    assert len(watcher.seen) >= 1, "the trading process was never seen running"
    try:
        for pid, cwd in watcher.seen.items():
            assert not pid_alive(pid), f"trading process {pid} left running after Ctrl-C"
            workdir = Path(cwd).parent
            assert workdir.name.startswith("drill-") and not workdir.exists()
            assert processes_in(Path(cwd)) == []
    finally:
        kill_leftovers(watcher.seen)


# --- 4. records of archived notebooks, including a failed run ---------------------------------


def test_load_records_reads_archived_notebooks_of_a_failed_run(
    drills: dict[str, Watched], outputs: Path, sandbox: Path, tmp_path: Path
) -> None:
    archive = tmp_path / "archive"
    good = drills["config"].result
    shutil.copytree(good.run_dir, archive / good.run_id)

    site = load_site(sandbox)
    RecoveryManager(site=site).create_backup(description="good")
    site.path(site.config_file).write_text("[trading\n")
    failed_id = "20260101T000000Z-config-dead"
    failed_dir = archive / failed_id
    failed_dir.mkdir()
    shutil.copy(good.run_dir / "01_00_detect_and_triage.ipynb", failed_dir)
    fault_at = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    with pytest.raises(papermill.PapermillExecutionError) as raised:
        papermill.execute_notebook(
            str(NOTEBOOK_DIR / "A_config_recovery.ipynb"),
            str(failed_dir / "02_A_config_recovery.ipynb"),
            parameters={
                "site": str(sandbox),
                "interactive": True,  # nobody clicks: the restore gate fails closed
                "kind": "drill",
                "incident_id": failed_id,
                "drill": {"run_id": failed_id, "scenario": "config", "fault_at": fault_at},
            },
            kernel_name="python3",
            progress_bar=False,
        )
    assert raised.value.ename == "ApprovalRequired"

    records = load_records(archive)
    assert list(records["run_id"]) == [failed_id, good.run_id]  # oldest first
    failed = records.iloc[0]
    assert failed["outcome"] == "not_recovered"
    assert failed["failed_step"] == "02_A_config_recovery.ipynb: restore"
    assert failed["procedure"] == "A" and failed["scenario"] == "config" and failed["kind"] == "drill"
    assert failed["fault_at"] == fault_at
    assert pd.isna(failed["recovered_at"]) and pd.isna(failed["time_to_recover_s"])
    assert failed["notebooks"] == ["01_00_detect_and_triage.ipynb", "02_A_config_recovery.ipynb"]
    # The archived good run reads back exactly as it did in place.
    original = load_records(outputs).set_index("run_id").loc[good.run_id]
    assert plain(records.set_index("run_id").loc[good.run_id]) == plain(original)


def test_load_records_of_nothing(tmp_path: Path) -> None:
    (tmp_path / "sandbox-site").mkdir()
    (tmp_path / "empty-run").mkdir()
    (tmp_path / "notes.txt").write_text("not a drill\n")
    records = load_records(tmp_path)
    assert records.empty and list(records.columns) == COLUMNS
    assert load_records(tmp_path / "missing").empty
