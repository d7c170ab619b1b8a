"""Sandbox sites for the browser tests, in the state the on-call engineer finds them.

All are built with SMALL_SPEC, in about a second: a broken config (Procedure A), lost data
(Procedure B), a complete failure (Procedure C).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from recovery_lib.backup import BackupMetadata
from recovery_lib.drills.injectors import Fault, inject
from recovery_lib.manager import RecoveryManager
from recovery_lib.sandbox import SandboxSpec, create_sandbox
from recovery_lib.site.config import load_site
from recovery_lib.site.process import process_status, start_system, stop_system

# Small, like tests/conftest.py's SANDBOX_SPEC, so a site is built in well under a second.
SMALL_SPEC = SandboxSpec(trades=500, reports=3, report_rows=20, seed=11)


@dataclass
class BrokenSite:
    """A sandbox with its trading process running, one good backup, then the config corrupted."""

    root: Path
    backup_id: str
    good_config: bytes
    fault: Fault

    @property
    def config(self) -> Path:
        return self.root / "config" / "config.toml"

    def backup_copy(self, relative: str) -> bytes:
        """The bytes the good backup holds for a site file."""
        return (self.root / "backups" / self.backup_id / relative).read_bytes()

    def trading_pid(self) -> int | None:
        """The running trading process's pid, or None."""
        return trading_pid(self.root)


def trading_pid(root: Path) -> int | None:
    """The running trading process's pid of the site at ``root``, or None."""
    status = process_status(load_site(root))
    return status.pid if status.running else None


def highest_trade_id(path: Path) -> int:
    """The highest trade id in a trades file (0 when it is missing or has no row)."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return 0
    ids = [int(line.split(",", 1)[0]) for line in lines if line[:1].isdigit()]
    return max(ids, default=0)


def wait_for_trades(root: Path, above: int, count: int, timeout_s: float = 30.0) -> int:
    """Wait until the running trading process has made ``count`` trades with ids above ``above`` (it
    logs every fill on the exchange first); returns the highest id the exchange knows."""
    fills = root / "exchange" / "my_trades.csv"
    deadline = time.monotonic() + timeout_s
    while (highest := highest_trade_id(fills)) < above + count:
        assert time.monotonic() < deadline, f"the trading process made no {count} trades in {timeout_s:g} s"
        assert trading_pid(root) is not None, "the trading process died"
        time.sleep(0.05)
    return highest


def make_broken_site(parent: Path) -> BrokenSite:
    """Build the site the on-call engineer finds (see :class:`BrokenSite`)."""
    root = parent / "site"
    create_sandbox(root, SMALL_SPEC)
    site = load_site(root)
    started = start_system(site, timeout_s=15)
    assert started.ok, f"the sandbox's trading process did not start: {started.message}"
    good_config = site.path(site.config_file).read_bytes()
    backup_id = RecoveryManager(site=site).create_backup(description="Scheduled daily backup", tags=["daily"])
    fault = inject(site, "config", variant="unparseable", seed=3)
    assert site.path(site.config_file).read_bytes() != good_config
    return BrokenSite(root=root, backup_id=backup_id, good_config=good_config, fault=fault)


@dataclass
class DataLossSite:
    """A sandbox whose trading process ran, was backed up, kept trading, and then lost data.

    ``trades_after_backup``: trades the process made after the backup and before the fault: a restore
    from the backup alone would lose them; the exchange knows them and gives them back."""

    root: Path
    backup_id: str
    backup_highest_id: int
    trades_after_backup: int
    fault: Fault
    config: bytes

    def trading_pid(self) -> int | None:
        return trading_pid(self.root)

    def backups(self) -> list[BackupMetadata]:
        """Every backup of the site, newest first."""
        return RecoveryManager(site=load_site(self.root)).list_backups()

    def backups_tagged(self, tag: str) -> list[BackupMetadata]:
        return [metadata for metadata in self.backups() if tag in metadata.tags]


def make_data_loss_site(parent: Path, variant: str = "files_deleted", trades_after_backup: int = 5) -> DataLossSite:
    """Trading runs, the daily backup is taken, trading goes on for ``trades_after_backup`` trades, then
    ``inject(site, "data", variant)``: with ``files_deleted`` the ledger and positions are gone (the
    still-running process starts a new ledger without a header), so a repair in place would lose
    every trade before the fault and only a restore plus the exchange's fills loses none."""
    root = parent / "site"
    create_sandbox(root, SMALL_SPEC)
    site = load_site(root)
    started = start_system(site, timeout_s=15)
    assert started.ok, f"the sandbox's trading process did not start: {started.message}"
    backup_id = RecoveryManager(site=site).create_backup(description="Scheduled daily backup", tags=["daily"])
    backup_highest = highest_trade_id(site.backup_dir / backup_id / site.trades_file)
    wait_for_trades(root, backup_highest, trades_after_backup)
    fault = inject(site, "data", variant=variant, seed=5)
    return DataLossSite(
        root=root,
        backup_id=backup_id,
        backup_highest_id=backup_highest,
        trades_after_backup=trades_after_backup,
        fault=fault,
        config=site.path(site.config_file).read_bytes(),
    )


@dataclass
class FailedSite:
    """A sandbox after a complete system failure: trading killed, config, data and state destroyed."""

    root: Path
    backup_id: str
    fault: Fault

    def trading_pid(self) -> int | None:
        return trading_pid(self.root)

    def backups_tagged(self, tag: str) -> list[BackupMetadata]:
        return [m for m in RecoveryManager(site=load_site(self.root)).list_backups() if tag in m.tags]


def make_failed_site(parent: Path, trades_after_backup: int = 3) -> FailedSite:
    """Trading runs, the daily backup is taken, trading goes on, then ``inject(site, "full", "everything")``."""
    root = parent / "site"
    create_sandbox(root, SMALL_SPEC)
    site = load_site(root)
    started = start_system(site, timeout_s=15)
    assert started.ok, f"the sandbox's trading process did not start: {started.message}"
    backup_id = RecoveryManager(site=site).create_backup(description="Scheduled daily backup", tags=["daily"])
    wait_for_trades(root, highest_trade_id(site.backup_dir / backup_id / site.trades_file), trades_after_backup)
    fault = inject(site, "full", variant="everything", seed=7)
    assert trading_pid(root) is None
    return FailedSite(root=root, backup_id=backup_id, fault=fault)


def stop_trading(roots: list[Path]) -> list[str]:
    """Stop the trading process of every site; returns the ones that would not stop (killed)."""
    left = []
    for root in roots:
        pid = trading_pid(root)
        action = stop_system(load_site(root), timeout_s=15)
        if pid is not None and psutil.pid_exists(pid):
            try:
                psutil.Process(pid).wait(timeout=5)
            except psutil.TimeoutExpired:
                psutil.Process(pid).kill()
                left.append(f"{root}: pid {pid} ({action.message})")
            except psutil.NoSuchProcess:
                pass
    return left
