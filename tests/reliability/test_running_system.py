"""Restores while the real trading process runs: refused, with how to stop it, and nothing changed.

The sandbox's trading process (``recovery_lib.sandbox.live_ops``) is started and stopped exactly as a
procedure does it, with the ``[process] start`` / ``stop`` commands of the site's ``recovery.toml``
(:func:`start_system` / :func:`stop_system`). While it runs it appends trades every 0.2 s, so to prove
"nothing changed" the test holds the site's ``[process] write_lock`` (as a long reader would): the
process keeps running (it is alive and in the pidfile) but cannot write, and any change seen is the
restore's. Every test stops the process in teardown and fails if any process of the site is left.

Promises checked: restoring config, state, data or all is refused through ``restore_backup`` and
``recovery restore ... --yes`` (``--site`` and ``$RECOVERY_SITE``), the message says how to stop the
system (the configured stop command), the CLI exits non-zero, and the site, the backups (no
pre-recovery backup) and the site root (no journal, no staging) are exactly as before; a system that
starts after planning or during staging is caught before the swap with the site unchanged; once the
system is stopped the same restore succeeds exactly.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from site_state import backups_bytes, category_tree, leftovers
from snapshots import tree

from recovery_lib.fsops.flock import flock_within
from recovery_lib.manager import PRE_RECOVERY_TAG, RecoveryManager
from recovery_lib.restore.journal import JOURNAL_NAME, RestoreError
from recovery_lib.sandbox.live_ops import PIDFILE
from recovery_lib.site.config import load_site
from recovery_lib.site.process import process_status, start_system, stop_system

FLAGS = {
    "config": (True, False, False),
    "state": (False, True, False),
    "data": (False, False, True),
    "all": (True, True, True),
}
CATEGORIES = ("config", "state", "data")
CLI_TIMEOUT_S = 60
SYSTEM_TIMEOUT_S = 15


# --- the trading process ------------------------------------------------------------------------


def alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[-1][:1]
    except OSError:
        return False
    return state != "Z"


def site_processes(root: Path) -> dict[int, str]:
    """Every live process working in the site directory (the trading process and any shell around it)."""
    found = {}
    target = str(root.resolve())
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.readlink(entry / "cwd") != target:
                continue
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # gone meanwhile, or not ours to look at
        if alive(int(entry.name)):
            found[int(entry.name)] = cmdline
    return found


class Trading:
    """The site's trading process, driven through recovery.toml's start/stop commands."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.site = load_site(root)
        self._writes_fd: int | None = None

    @property
    def stop_command(self) -> str:
        assert self.site.process.stop, "the sandbox's recovery.toml must say how to stop the trading system"
        return self.site.process.stop

    def start(self) -> int:
        """Start it with the configured command; return its pid (from the pidfile)."""
        started = start_system(self.site, timeout_s=SYSTEM_TIMEOUT_S)
        assert started.ok and started.running_after is True, started.message
        status = process_status(self.site)
        assert status.running is True and status.pid is not None and alive(status.pid), status
        assert "recovery_lib.sandbox.live_ops" in Path(f"/proc/{status.pid}/cmdline").read_text(errors="replace")
        return status.pid

    def wait_for_trades(self, more_than: int) -> None:
        """Wait until it has appended trades: it really is trading, not merely alive."""
        deadline = time.monotonic() + SYSTEM_TIMEOUT_S
        while trade_count(self.root) <= more_than:
            assert time.monotonic() < deadline, "the trading process made no trade"
            time.sleep(0.02)

    def hold_writes(self) -> None:
        """Take its write lock exclusively: it keeps running but cannot change the site."""
        if self._writes_fd is not None:
            return
        fd = os.open(self.site.path(self.site.process.write_lock or ""), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        if not flock_within(fd, fcntl.LOCK_EX, SYSTEM_TIMEOUT_S, poll_s=0.005):
            os.close(fd)
            raise AssertionError("the trading process never released its write lock")
        self._writes_fd = fd

    def allow_writes(self) -> None:
        if self._writes_fd is not None:
            fd, self._writes_fd = self._writes_fd, None
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    @contextlib.contextmanager
    def writes_held(self) -> Iterator[None]:
        self.hold_writes()
        try:
            yield
        finally:
            self.allow_writes()

    def stop(self) -> None:
        """Stop it with the configured command; it must be gone, pidfile removed."""
        self.allow_writes()
        pid = process_status(self.site).pid
        stopped = stop_system(self.site, timeout_s=SYSTEM_TIMEOUT_S)
        assert stopped.ok and stopped.running_after is False, stopped.message
        deadline = time.monotonic() + SYSTEM_TIMEOUT_S
        while pid is not None and alive(pid):
            assert time.monotonic() < deadline, f"trading pid {pid} still alive after stop"
            time.sleep(0.02)
        assert not (self.root / PIDFILE).exists()


@pytest.fixture
def trading(sandbox: Path) -> Iterator[Trading]:
    """The sandbox's trading process (not started yet); stopped at teardown, and no process may be left."""
    system = Trading(sandbox)
    try:
        yield system
    finally:
        system.allow_writes()
        stop_system(system.site, timeout_s=SYSTEM_TIMEOUT_S)
        left = site_processes(sandbox)
        for pid in left:  # last resort, then fail: a test must never leave a trading process behind
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        assert left == {}, f"processes left running in the site: {left}"


# --- helpers ------------------------------------------------------------------------------------


def trade_count(root: Path) -> int:
    with (root / "data" / "trades.csv").open() as handle:
        return sum(1 for _ in handle) - 1


def damage(root: Path) -> None:
    """Change every category (keeping trades.csv readable: the trading process loads it)."""
    (root / "config/config.toml").write_text('[trading\nstrategy = "unterminated\n')
    (root / "state/strategy_state.json").write_text('{"damaged": true}\n')
    reports = sorted((root / "data/reports").rglob("*.csv"))
    reports[0].unlink()
    (root / "data/reports/stray.csv").write_text("not in the backup\n")


def site_tree(root: Path) -> dict[str, tuple]:
    """Everything in the site except its backups."""
    return tree(root, exclude=("backups",))


def restore_leftovers(root: Path) -> list[str]:
    """Journal, staging and old trees of a restore in the site root."""
    found = {p.name for p in root.iterdir() if p.name.startswith((".recovery-", "..recovery-"))}
    return sorted((found - {".recovery-sandbox.json"}) | set(leftovers(root)))


def files_of(entries: dict[str, tuple]) -> dict[str, bytes]:
    return {path: entry[1] for path, entry in entries.items() if entry[0] == "file"}


def assert_restored(root: Path, backup_id: str, what: str) -> None:
    """The chosen categories hold exactly the backup's files (and nothing else)."""
    stored = root / "backups" / backup_id
    for category in CATEGORIES if what == "all" else (what,):
        assert files_of(category_tree(root, category)) == files_of(category_tree(stored, category)), category


def pre_recovery_ids(root: Path) -> list[str]:
    return [m.backup_id for m in RecoveryManager(site=root).list_backups(tags=[PRE_RECOVERY_TAG])]


def assert_refusal_names_the_stop(message: str, trading: Trading, pid: int) -> None:
    """The refusal says the system runs (which pid) and how to stop it: the command from recovery.toml."""
    assert "running" in message and f"pid {pid}" in message, message
    assert trading.stop_command in message, message
    assert f"cd {trading.root}" in message, message


class Unchanged:
    """Everything a refused restore must leave alone: site tree, backups, no restore debris."""

    def __init__(self, root: Path, ignore_run: bool = False) -> None:
        self.root = root
        self.ignore_run = ignore_run
        self.site = self.current()
        self.backups = backups_bytes(root / "backups")

    def current(self) -> dict[str, tuple]:
        """The site now, as compared (``run/`` left out when asked)."""
        found = site_tree(self.root)
        if self.ignore_run:  # the trading process writes its pidfile and lock file there when it starts
            found = {k: v for k, v in found.items() if k != "run" and not k.startswith("run/")}
        return found

    def check(self) -> None:
        assert self.current() == self.site, "the site changed"
        assert backups_bytes(self.root / "backups") == self.backups, "the backups changed"
        assert pre_recovery_ids(self.root) == []
        assert restore_leftovers(self.root) == []


def recovery_cli(*args: str, env_site: Path | None = None, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the installed ``recovery`` console script, never on a terminal."""
    env = dict(os.environ)
    env.pop("RECOVERY_SITE", None)
    if env_site is not None:
        env["RECOVERY_SITE"] = str(env_site)
    return subprocess.run(
        [str(Path(sys.executable).parent / "recovery"), *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=CLI_TIMEOUT_S,
    )


def site_files_outside(root: Path, what: str) -> dict[str, bytes]:
    """Files of the site outside the restored categories (and outside backups)."""
    restored = CATEGORIES if what == "all" else (what,)
    return {
        path: data
        for path, data in files_of(site_tree(root)).items()
        if not any(path == c or path.startswith(c + "/") for c in restored)
    }


@pytest.fixture
def known_good(sandbox: Path) -> str:
    """A full backup of the pristine sandbox, taken before the site is damaged."""
    return RecoveryManager(site=sandbox).create_backup(description="known good")


# --- refused while it runs ----------------------------------------------------------------------


@pytest.mark.parametrize("what", list(FLAGS))
def test_restore_api_is_refused_while_trading_runs_and_succeeds_once_stopped(
    sandbox: Path, known_good: str, trading: Trading, what: str
) -> None:
    """``restore_backup`` (and plan + apply) of each category is refused while the trading process runs,
    naming its pid and the stop command, with nothing changed; after stopping, the same call restores."""
    damage(sandbox)
    trades = trade_count(sandbox)
    pid = trading.start()
    trading.wait_for_trades(trades)
    manager = RecoveryManager(site=sandbox)

    with trading.writes_held():
        unchanged = Unchanged(sandbox)
        assert manager.restore_backup(known_good, *FLAGS[what]) is False
        assert "restore refused, nothing was changed" in manager.last_error
        assert_refusal_names_the_stop(manager.last_error, trading, pid)
        plan = manager.plan_restore(known_good, *FLAGS[what])
        assert len(plan.blockers) == 1 and "BLOCKED" in plan.summary()
        assert_refusal_names_the_stop(plan.blockers[0], trading, pid)
        with pytest.raises(RestoreError) as refused:
            manager.apply_restore(plan)
        assert_refusal_names_the_stop(str(refused.value), trading, pid)
        unchanged.check()
        assert alive(pid)  # refusing never touches the trading process either

    trading.stop()
    before = site_files_outside(sandbox, what)
    assert manager.restore_backup(known_good, *FLAGS[what]) is True, getattr(manager, "last_error", "")
    assert_restored(sandbox, known_good, what)
    assert site_files_outside(sandbox, what) == before  # categories not asked for are untouched
    [pre] = pre_recovery_ids(sandbox)
    assert manager.last_result is not None and manager.last_result.pre_recovery_backup_id == pre
    assert restore_leftovers(sandbox) == []


@pytest.mark.parametrize("what", list(FLAGS))
def test_cli_restore_is_refused_while_trading_runs_and_succeeds_once_stopped(
    sandbox: Path, known_good: str, trading: Trading, what: str, tmp_path: Path
) -> None:
    """``recovery restore ID --<what> --yes`` (with --site, and 'latest' with $RECOVERY_SITE) exits non-zero
    while the trading process runs, says how to stop it and changes nothing; once stopped it exits 0."""
    damage(sandbox)
    pid = trading.start()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    with trading.writes_held():
        unchanged = Unchanged(sandbox)
        by_flag = recovery_cli("restore", known_good, f"--{what}", "--yes", "--site", str(sandbox), cwd=elsewhere)
        by_env = recovery_cli("restore", "latest", f"--{what}", "--yes", env_site=sandbox, cwd=elsewhere)
        for done in (by_flag, by_env):
            assert done.returncode != 0, done.stdout
            assert done.returncode == 2  # a refusal, not a crash (3) nor "unhealthy" (1)
            assert "restore refused" in done.stderr
            assert_refusal_names_the_stop(done.stderr, trading, pid)
            assert "Traceback" not in done.stderr
            assert "BLOCKED" in done.stdout and known_good in done.stdout  # the plan it would have applied
            assert "Restored" not in done.stdout
        unchanged.check()
        assert alive(pid)

    trading.stop()
    done = recovery_cli("restore", known_good, f"--{what}", "--yes", "--site", str(sandbox), cwd=elsewhere)
    assert done.returncode == 0, done.stderr
    assert f"Restored {', '.join(CATEGORIES if what == 'all' else (what,))} from {known_good}" in done.stdout
    assert_restored(sandbox, known_good, what)
    assert len(pre_recovery_ids(sandbox)) == 1
    assert restore_leftovers(sandbox) == []


# --- started while a restore is under way -------------------------------------------------------


def test_a_trading_process_started_after_planning_is_caught_before_anything_changes(
    sandbox: Path, known_good: str, trading: Trading
) -> None:
    """A plan made while the system was stopped is not applied once it runs: refused before the
    pre-recovery backup, nothing changed; the same restore succeeds after stopping it."""
    damage(sandbox)
    manager = RecoveryManager(site=sandbox)
    plan = manager.plan_restore(known_good, *FLAGS["all"])
    assert plan.blockers == () and plan.changes
    unchanged = Unchanged(sandbox, ignore_run=True)

    with trading.writes_held():  # it starts but cannot trade, so any change would be the restore's
        pid = trading.start()
        with pytest.raises(RestoreError) as refused:
            manager.apply_restore(plan)
        assert "restore refused, nothing was changed" in str(refused.value)
        assert_refusal_names_the_stop(str(refused.value), trading, pid)
        unchanged.check()
        assert {p.name for p in (sandbox / "run").iterdir()} <= {"live_ops.pid", "trading.lock"}

    trading.stop()
    assert manager.restore_backup(known_good, *FLAGS["all"]) is True, getattr(manager, "last_error", "")
    assert_restored(sandbox, known_good, "all")
    assert restore_leftovers(sandbox) == []


def test_the_real_trading_process_started_during_staging_is_caught_before_the_swap(
    sandbox: Path, known_good: str, trading: Trading
) -> None:
    """Started (by its start command) while the restore stages: detected before the swap, the staging
    is removed and the site is unchanged (the pre-recovery backup holds that same state); after
    stopping it the restore succeeds."""
    damage(sandbox)
    before = Unchanged(sandbox, ignore_run=True)
    started: list[int] = []

    def start_while_staging(done: int, total: int) -> None:
        if not started and (sandbox / JOURNAL_NAME).exists():
            assert any(p.name.startswith(".recovery-staging-") for p in sandbox.iterdir())
            trading.hold_writes()  # no trade: any change in the site would be the restore's
            started.append(trading.start())

    manager = RecoveryManager(site=sandbox, progress=start_while_staging)
    assert manager.restore_backup(known_good, *FLAGS["all"]) is False
    assert started, "the hook never ran during staging: the test proved nothing"
    assert "before the swap, nothing was changed" in manager.last_error
    assert_refusal_names_the_stop(manager.last_error, trading, started[0])
    assert before.current() == before.site
    assert restore_leftovers(sandbox) == []
    # Caught before the pre-recovery backup (taken only once staging has checked every byte): nothing to undo.
    assert pre_recovery_ids(sandbox) == []
    assert alive(started[0])

    trading.stop()
    manager = RecoveryManager(site=sandbox)
    assert manager.restore_backup(known_good, *FLAGS["all"]) is True, getattr(manager, "last_error", "")
    assert_restored(sandbox, known_good, "all")
    assert restore_leftovers(sandbox) == []
