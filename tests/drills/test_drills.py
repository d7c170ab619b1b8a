"""Drills (issue 5): fault injectors, the drill runner end to end, the records and the schedule.

A whole drill runs four notebooks with papermill and costs several seconds, so the module runs few
of them and shares them: one drill per scenario into one outputs directory (``drills``) and one
drill whose procedure fails, run through the CLI (``failed_drill``). Everything else (injectors,
refusals, the schedule, the CLI's small commands) works on private sandbox copies in milliseconds.

Every drill is watched from the outside: the trading process it starts is looked up in /proc while
the drill runs, and after the drill no process may be left whose working directory or command line
lies in the drill's site, and the runner's temporary directory must be gone.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import re
import shutil
import signal
import stat
import tempfile
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import papermill
import pytest

from recovery_lib.backup import create as backup_create
from recovery_lib.checks.default import health_check
from recovery_lib.cli import main as cli
from recovery_lib.drills import runner as drill_runner
from recovery_lib.drills.history import COLUMNS, due_scenario, last_drilled, load_records, week_of_month
from recovery_lib.drills.injectors import PROCEDURE_OF, VARIANTS, Fault, inject
from recovery_lib.drills.report import write_index
from recovery_lib.drills.runner import DrillResult, run_drill
from recovery_lib.errors import SiteError
from recovery_lib.manager import RecoveryManager
from recovery_lib.runbook.records import read_notebook
from recovery_lib.sandbox.live_ops import PIDFILE
from recovery_lib.site.config import SANDBOX_MARKER, Site, load_site
from recovery_lib.site.integrity import check_config_file
from recovery_lib.site.process import process_status, start_system, stop_system

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = ROOT / "notebooks"
PROCEDURE_NOTEBOOK = {
    "A": "A_config_recovery.ipynb",
    "B": "B_data_recovery.ipynb",
    "C": "C_full_system_recovery.ipynb",
    "D": "D_backup_system_recovery.ipynb",
}
LIVE_OPS = "recovery_lib.sandbox.live_ops"
ALL_FAULTS = [(scenario, variant) for scenario, variants in VARIANTS.items() for variant in variants]
BACKUP_ID = re.compile(r"\d{8}T\d{6}Z-\w+-[0-9a-f]+")


# --- processes, seen from /proc ---------------------------------------------------------------


def _stat_fields(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[-1].split()
    except OSError:
        return None


def pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    fields = _stat_fields(pid)
    return fields is not None and fields[0] != "Z"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _cwd(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/cwd").removesuffix(" (deleted)")
    except OSError:
        return ""


def _descends_from_this_process(pid: int) -> bool:
    for _ in range(4):
        fields = _stat_fields(pid)
        if fields is None:
            return False
        pid = int(fields[1])
        if pid == os.getpid():
            return True
    return False


def our_trading_processes() -> dict[int, str]:
    """Live trading processes started from this test process: pid -> working directory (the site)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            pid = int(entry.name)
            if LIVE_OPS in _cmdline(pid) and pid_alive(pid) and _descends_from_this_process(pid):
                found[pid] = _cwd(pid)
    return found


def processes_in(path: Path) -> list[str]:
    """Live processes whose working directory or command line lies in ``path``."""
    top = str(path)
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        pid = int(entry.name)
        cmdline, cwd = _cmdline(pid), _cwd(pid)
        inside = cwd == top or cwd.startswith(top + "/") or top in cmdline
        if inside and pid_alive(pid):
            found.append(f"{pid}: {cmdline} (cwd {cwd})")
    return found


def kill_leftovers(seen: dict[int, str]) -> None:
    """SIGKILL trading processes this test started (pid -> site) that are still alive; a pid that now
    belongs to another program or another directory is left alone."""
    for pid, cwd in seen.items():
        if pid_alive(pid) and LIVE_OPS in _cmdline(pid) and _cwd(pid) == cwd:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def stop_trading_in(site: Site) -> None:
    """Cleanup for tests that start the trading process: the stop command, then force."""
    stop_system(site, timeout_s=10)
    kill_leftovers({pid: cwd for pid, cwd in our_trading_processes().items() if cwd == str(site.root)})


# --- sites ------------------------------------------------------------------------------------


def copy_site(template: Path, where: Path) -> Path:
    shutil.copytree(template, where, symlinks=True)
    return where


def snapshot(root: Path) -> dict[str, tuple[Any, ...]]:
    """Every path under ``root`` with its type, mode and contents (or link target)."""
    found: dict[str, tuple[Any, ...]] = {".": ("dir", stat.S_IMODE(os.lstat(root).st_mode))}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder, name)
            info = os.lstat(path)
            relative = path.relative_to(root).as_posix()
            if stat.S_ISLNK(info.st_mode):
                found[relative] = ("link", os.readlink(path))
            elif stat.S_ISDIR(info.st_mode):
                found[relative] = ("dir", stat.S_IMODE(info.st_mode))
            else:
                found[relative] = ("file", stat.S_IMODE(info.st_mode), path.read_bytes())
    return found


def healthy(site: Site, check: str) -> bool:
    return health_check.run(check, site).healthy


def backup_ids(site: Site) -> list[str]:
    """Newest first."""
    return [m.backup_id for m in RecoveryManager(site=site).list_backups()]


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


def iso_z(text: str) -> datetime:
    assert text.endswith("Z"), text
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# --- watched drills ---------------------------------------------------------------------------


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
def outputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("drill-outputs")


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


# --- 1. injectors -----------------------------------------------------------------------------


def _prepare(site: Site, scenario: str, variant: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """What an injection needs first: backups for the backup and full faults, a running process for full."""
    facts: dict[str, Any] = {}
    manager = RecoveryManager(site=site)
    if scenario == "backup" and variant == "newest_corrupted":
        # Unchanged files of the newer backup are hard links into the older one (no racy window in tests).
        monkeypatch.setattr(backup_create, "RACY_WINDOW_NS", 0)
        facts["older"] = manager.create_backup(description="older")
        facts["newer"] = manager.create_backup(description="newer")
        shared = [p for p in (site.backup_dir / facts["newer"]).rglob("*.csv") if p.stat().st_nlink > 1]
        assert shared, "the newer backup should share unchanged files with the older one"
    elif scenario in ("backup", "full"):
        facts["older"] = manager.create_backup(description="good")
    if scenario == "full":
        started = start_system(site, timeout_s=15)
        assert started.ok, started.message
        facts["pid"] = process_status(site).pid
    assert healthy(site, "config") and healthy(site, "data")
    if scenario == "backup":
        assert healthy(site, "backups")
    return facts


def _check_config_fault(site: Site, fault: Fault, original: bytes) -> None:
    path = site.path(site.config_file)
    text = path.read_bytes()
    assert text != original
    assert not healthy(site, "config")
    if fault.variant in ("unparseable", "broken_in_newest_backup", "newest_backup_damaged"):
        with pytest.raises(tomllib.TOMLDecodeError):
            tomllib.loads(text.decode())
        _check_newest_backup(site, fault, site.config_file)
    elif fault.variant == "section_renamed":
        section = fault.actions[0].split("[", 1)[1].split("]", 1)[0]
        parsed = tomllib.loads(text.decode())  # still valid TOML: only the config check can tell
        assert section not in parsed and f"{section}_old" in parsed
    elif fault.variant == "missing_section":
        section = fault.actions[0].split("[", 1)[1].split("]", 1)[0]
        assert section in site.required_sections
        parsed = tomllib.loads(text.decode())
        assert section not in parsed
        assert all(s in parsed for s in site.required_sections if s != section)
    else:
        cut = int(fault.actions[0].rsplit("truncated to ", 1)[1].split()[0])
        assert text == original[:cut] and 0 < cut < len(original)
    assert healthy(site, "data"), "a config fault must leave the data alone"


def _check_newest_backup(site: Site, fault: Fault, relative: str) -> None:
    """The backup-state variants: the newest backup holds the broken file, or is damaged."""
    if fault.variant not in ("broken_in_newest_backup", "newest_backup_damaged"):
        return
    newest = RecoveryManager(site=site).list_backups()[0]
    if fault.variant == "broken_in_newest_backup":
        assert (site.backup_dir / newest.backup_id / relative).read_bytes() == site.path(relative).read_bytes()
        assert RecoveryManager(site=site).verify_backup(newest.backup_id).ok
    elif fault.variant == "newest_backup_damaged":
        report = RecoveryManager(site=site).verify_backup(newest.backup_id)
        assert not report.ok and relative in report.summary()


def _check_data_fault(site: Site, fault: Fault, original_trades: bytes, original_positions: bytes) -> None:
    trades, positions = site.path(site.trades_file), site.path(site.positions_file)
    if fault.variant == "state_deleted":
        assert all(not site.path(top).exists() for top in site.state_paths)
        assert trades.read_bytes() == original_trades and healthy(site, "data")
        return
    if fault.variant == "phantom_trade":
        # The ledger and positions agree with each other, but not with the exchange.
        added = trades.read_bytes()[len(original_trades) :].splitlines()
        assert trades.read_bytes().startswith(original_trades) and len(added) == 1
        assert healthy(site, "data") and not healthy(site, "reconciliation")
        return
    assert not healthy(site, "data")
    if fault.variant in ("files_deleted", "newest_backup_damaged"):
        assert not trades.exists() and not positions.exists()
        assert site.path(site.reports_dir).is_dir()
        _check_newest_backup(site, fault, site.trades_file)
    elif fault.variant == "duplicated_rows":
        data = trades.read_bytes()
        assert data.startswith(original_trades)
        copies = data[len(original_trades) :].splitlines()
        assert len(copies) == 50 and set(copies) <= set(original_trades.splitlines()[1:])
    elif fault.variant in ("edited_position", "broken_in_newest_backup"):
        assert trades.read_bytes() == original_trades
        changed_lines = set(positions.read_bytes().splitlines()) ^ set(original_positions.splitlines())
        assert len(changed_lines) == 2, "exactly one position was edited"
        _check_newest_backup(site, fault, site.positions_file)
    elif fault.variant == "dir_deleted":
        assert all(not site.path(top).exists() for top in site.data_paths)
    else:
        data = trades.read_bytes()
        assert original_trades.startswith(data) and len(data) < len(original_trades)
        assert not data.endswith(b"\n"), "the file must end mid-row"
        assert positions.exists()
    assert healthy(site, "config"), "a data fault must leave the config alone"


def _check_full_fault(site: Site, facts: dict[str, Any]) -> None:
    assert not pid_alive(facts["pid"]), "the trading process must be killed"
    assert process_status(site).running is False
    assert not healthy(site, "config")
    with pytest.raises(tomllib.TOMLDecodeError):
        tomllib.loads(site.path(site.config_file).read_text())
    assert all(not site.path(top).exists() for top in site.data_paths)
    assert all(not site.path(top).exists() for top in site.state_paths)
    assert not healthy(site, "data") and not healthy(site, "process")
    # The backups are what Procedure C restores from: untouched.
    assert RecoveryManager(site=site).verify_backup(facts["older"]).ok


def _check_backup_fault(site: Site, fault: Fault, facts: dict[str, Any]) -> None:
    manager = RecoveryManager(site=site)
    if fault.variant == "dir_deleted":
        assert not site.backup_dir.exists()
        assert not healthy(site, "backups")
    elif fault.variant == "unwritable":
        assert stat.S_IMODE(site.backup_dir.stat().st_mode) & 0o222 == 0
        assert not healthy(site, "backups")
        assert manager.verify_backup(facts["older"]).ok, "existing backups stay readable"
    elif fault.variant == "dir_replaced_by_file":
        assert site.backup_dir.is_file()
        assert "is a file, not a directory" in health_check.run("backups", site).message
    elif fault.variant == "metadata_deleted":
        assert manager.list_backups() == []
        assert [u.backup_id for u in manager.unreadable] == [facts["older"]]
        assert not healthy(site, "backups")
    else:
        assert fault.actions and all(facts["newer"] in action for action in fault.actions)
        assert not manager.verify_backup(facts["newer"]).ok
        older = manager.verify_backup(facts["older"])
        assert older.ok, f"corrupting the newest backup damaged an older one through a shared link: {older.summary()}"
    assert healthy(site, "config") and healthy(site, "data"), "a backup fault must leave the site alone"


@pytest.mark.parametrize(("scenario", "variant"), ALL_FAULTS, ids=[f"{s}-{v}" for s, v in ALL_FAULTS])
def test_injector_does_what_it_says(
    sandbox: Path, monkeypatch: pytest.MonkeyPatch, scenario: str, variant: str
) -> None:
    site = load_site(sandbox)
    try:
        facts = _prepare(site, scenario, variant, monkeypatch)
        original_config = site.path(site.config_file).read_bytes()
        original_trades = site.path(site.trades_file).read_bytes()
        original_positions = site.path(site.positions_file).read_bytes()
        before = datetime.now(UTC)
        fault = inject(site, scenario, variant, seed=3)
        after = datetime.now(UTC)
    finally:
        stop_trading_in(site)

    assert (fault.scenario, fault.variant) == (scenario, variant)
    assert before <= iso_z(fault.fault_at) <= after
    assert fault.actions and all(isinstance(a, str) and a for a in fault.actions)
    assert fault.expected_procedure == PROCEDURE_OF[scenario]
    assert fault.scenario_number == list(VARIANTS).index(scenario) + 1
    if scenario == "config":
        _check_config_fault(site, fault, original_config)
    elif scenario == "data":
        _check_data_fault(site, fault, original_trades, original_positions)
    elif scenario == "full":
        _check_full_fault(site, facts)
        assert any("killed" in action for action in fault.actions)
    else:
        _check_backup_fault(site, fault, facts)


@pytest.mark.parametrize("scenario", ["config", "data", "full"])
def test_same_seed_same_fault(sandbox_template: Path, tmp_path: Path, scenario: str) -> None:
    variants = set()
    for seed in range(6):
        faults, states = [], []
        for copy in ("a", "b"):
            site = load_site(copy_site(sandbox_template, tmp_path / f"{seed}{copy}"))
            faults.append(inject(site, scenario, seed=seed))
            states.append({k: v for k, v in snapshot(site.root).items() if k.split("/")[0] in ("config", "data")})
        assert faults[0].variant == faults[1].variant
        assert [BACKUP_ID.sub("<id>", a) for a in faults[0].actions] == [
            BACKUP_ID.sub("<id>", a) for a in faults[1].actions
        ]  # the backups a variant takes have ids of their own
        assert states[0] == states[1], "the same seed must break the site the same way"
        variants.add(faults[0].variant)
    assert variants <= set(VARIANTS[scenario])
    if len(VARIANTS[scenario]) > 1:
        assert len(variants) > 1, "the seed should choose among the variants"


def test_same_seed_same_backup_fault(sandbox_template: Path, tmp_path: Path) -> None:
    chosen = []
    for copy in ("a", "b"):
        site = load_site(copy_site(sandbox_template, tmp_path / copy))
        RecoveryManager(site=site).create_backup(description="good")
        chosen.append(inject(site, "backup", seed=7).variant)
    assert chosen[0] == chosen[1] in VARIANTS["backup"]


def test_injection_refuses_a_site_that_is_not_a_sandbox(sandbox: Path) -> None:
    site = load_site(sandbox)
    RecoveryManager(site=site).create_backup(description="good")
    (sandbox / SANDBOX_MARKER).unlink()
    assert not site.is_sandbox and not (sandbox / ".recovery-sandbox.json").exists()
    before = snapshot(sandbox)
    for scenario, variant in ALL_FAULTS:
        with pytest.raises(SiteError, match="not a sandbox"):
            inject(site, scenario, variant)
        with pytest.raises(SiteError, match="not a sandbox"):
            inject(site, scenario, seed=1)
    assert snapshot(sandbox) == before


def test_refused_full_fault_does_not_kill_the_process(sandbox: Path) -> None:
    site = load_site(sandbox)
    (sandbox / SANDBOX_MARKER).unlink()
    config = site.path(site.config_file).read_bytes()
    try:
        assert start_system(site, timeout_s=15).ok
        pid = process_status(site).pid
        with pytest.raises(SiteError):
            inject(site, "full")
        assert pid is not None and pid_alive(pid) and process_status(site).running is True
        assert site.path(site.config_file).read_bytes() == config and healthy(site, "config")
        assert site.path(site.trades_file).exists() and (sandbox / "state").is_dir()
    finally:
        stop_trading_in(site)


@pytest.mark.parametrize(
    ("scenario", "variant", "message"),
    [
        ("meteor", None, "unknown scenario 'meteor'"),
        ("config", "melted", "unknown config fault 'melted'"),
        ("data", "unparseable", "unknown data fault 'unparseable'"),
        ("backup", "everything", "unknown backup fault 'everything'"),
    ],
)
def test_unknown_scenario_or_variant_is_refused_before_any_change(
    sandbox: Path, scenario: str, variant: str | None, message: str
) -> None:
    before = snapshot(sandbox)
    with pytest.raises(ValueError, match=message):
        inject(load_site(sandbox), scenario, variant)
    assert snapshot(sandbox) == before


def test_run_drill_refuses_an_unknown_scenario_before_creating_anything(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown scenario 'meteor'"):
        run_drill("meteor", tmp_path / "out")
    assert not (tmp_path / "out").exists()


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
        assert row["time_to_detect_s"] >= 0
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
    site = load_site(failed_drill.watched.site_root)
    for metadata in RecoveryManager(site=site).list_backups():
        if "verified" in metadata.tags:
            stored = site.backup_dir / metadata.backup_id / site.config_file
            report = check_config_file(stored, site.required_sections)
            assert report.ok, f"{metadata.backup_id} is tagged verified but holds a broken config: {report.summary()}"


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


# --- 5. the monthly schedule ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "week", "scenario"),
    [(1, 1, "config"), (7, 1, "config"), (8, 2, "data"), (14, 2, "data"), (15, 3, "full"), (21, 3, "full")]
    + [(22, 4, "backup"), (28, 4, "backup"), (29, 4, "backup"), (31, 4, "backup")],
)
def test_week_of_month_and_due_scenario(day: int, week: int, scenario: str) -> None:
    assert week_of_month(date(2026, 1, day)) == week
    assert due_scenario(date(2026, 1, day)) == scenario


def _record(scenario: str, fault_at: datetime, outcome: str) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(COLUMNS)
    row.update(
        run_id=f"{fault_at:%Y%m%dT%H%M%SZ}-{scenario}",
        scenario=scenario,
        fault_at=fault_at.isoformat().replace("+00:00", "Z"),
        outcome=outcome,
    )
    return row


def test_last_drilled_flags_never_and_stale_drills_as_overdue() -> None:
    now = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)
    records = pd.DataFrame(
        [
            _record("config", now - timedelta(days=40), "recovered"),
            _record("config", now - timedelta(days=3), "recovered"),
            _record("data", now - timedelta(days=32), "recovered"),
            _record("backup", now - timedelta(days=30), "not_recovered"),
        ],
        columns=COLUMNS,
    )
    table = last_drilled(records, now=now).set_index("scenario")
    assert list(table.index) == ["config", "data", "full", "backup"]
    assert list(table["week"]) == [1, 2, 3, 4]
    assert "OVERDUE" not in table.loc["config", "status"]
    assert table.loc["config", "last_drilled"].startswith((now - timedelta(days=3)).date().isoformat())
    assert table.loc["config", "last_outcome"] == "recovered"
    assert "OVERDUE" in table.loc["data", "status"]
    assert "OVERDUE" in table.loc["full", "status"]
    assert table.loc["full", "last_drilled"] == "never" and table.loc["full", "last_outcome"] == "-"
    assert "OVERDUE" not in table.loc["backup", "status"]
    assert table.loc["backup", "last_outcome"] == "not_recovered"


def test_last_drilled_with_no_records_says_every_drill_is_overdue(tmp_path: Path) -> None:
    table = last_drilled(load_records(tmp_path))
    assert list(table["scenario"]) == ["config", "data", "full", "backup"]
    assert (table["last_drilled"] == "never").all()
    assert table["status"].str.contains("OVERDUE").all()


# --- 6. the command line ----------------------------------------------------------------------


def run_cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return cli.main(list(argv), out=out), out.getvalue()


def test_cli_drill_due_names_this_weeks_drill() -> None:
    before = datetime.now(UTC).date()
    code, text = run_cli("drill", "due")
    after = datetime.now(UTC).date()
    assert code == 0
    assert any(
        f"Week {week_of_month(day)} of the month: the {due_scenario(day)} drill is due" in text
        for day in (before, after)
    ), text
    assert "recovery drill run --due" in text


def test_cli_schedule_prints_crontab_lines(sandbox: Path) -> None:
    code, text = run_cli("schedule", "--site", str(sandbox))
    assert code == 0
    assert "CRON_TZ=UTC" in text.splitlines()  # the runbook's times are UTC
    lines = [line for line in text.splitlines() if line and not line.startswith(("#", "CRON_TZ="))]
    assert len(lines) == 3, text
    daily, weekly, drill = (line.split() for line in lines)
    assert daily[:5] == ["0", "2", "*", "*", "*"] and daily[6:8] == ["backup", "create"]
    assert "daily" in daily and str(sandbox.resolve()) in lines[0]
    assert weekly[:5] == ["0", "3", "*", "*", "0"] and weekly[6:8] == ["backup", "create"]
    assert "weekly" in weekly and str(sandbox.resolve()) in lines[1]
    assert drill[2:4] == ["*", "*"] and drill[4] in {str(d) for d in range(7)}, "a weekly drill"
    assert drill[6:9] == ["drill", "run", "--due"]
    assert "--outputs" in drill
    for fields in (daily, weekly, drill):
        assert Path(fields[5]).name == "recovery", "cron must call the recovery command by full path"


def test_cli_drill_run_help_documents_its_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["drill", "run", "--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    for option in ("--scenario", "--due", "--outputs", "--site", "--seed"):
        assert option in text, option
    assert "{config,data,full,backup,all}" in text
    assert "Exits 0 only if every scenario recovered" in " ".join(text.split())


def test_cli_drill_run_rejects_an_unknown_scenario(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["drill", "run", "--scenario", "meteor", "--outputs", str(tmp_path / "out")])
    assert exited.value.code == 2
    assert "invalid choice: 'meteor'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
