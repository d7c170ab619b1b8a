"""Shared helpers of the reliability suite: what a site and its backups hold, and a tiny site to break.

Kept deliberately small and exact: a snapshot is every entry with its type, bytes and mode, so
"nothing changed" and "restored exactly" are plain dictionary comparisons.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from snapshots import tree

from recovery_lib.backup import BackupStatus
from recovery_lib.manager import RecoveryManager
from recovery_lib.site.config import SANDBOX_MARKER

LONG_ENV = "RECOVERY_TESTS_LONG"  # set by tests/conftest.py from `pytest --long` (`make soak`)


def is_long() -> bool:
    """True under ``pytest --long``."""
    return bool(os.environ.get(LONG_ENV))


def scaled(default: int, long: int | None = None) -> int:
    """A loop or example count: ``default`` in `make test`, ``long`` (20x by default) under --long."""
    return (long if long is not None else default * 20) if is_long() else default


# What the suite tried (failure points, kills, hostile cases): printed at the end of the run.
TALLY: Counter[str] = Counter()

CATEGORIES = ("config", "state", "data")
RESERVED = {"metadata.json", "manifest.json", "SHA256SUMS"}

# A small site in the runbook's default layout (no recovery.toml): fast to back up thousands of times,
# and whole (its config and data pass their checks), so "latest" may restore from its backups.
TINY_SITE = {
    "config/config.toml": b'[trading]\nsymbols = ["BTC/USD"]\n[risk]\nmax_position = 10\n[live]\nenabled = false\n',
    "state/session.json": b'{"session": 7, "open": true}\n',
    "state/strategy_state.json": b'{"signal": 0.25}\n',
    "data/positions.csv": b"symbol,quantity,avg_price\nBTC/USD,2.0000,41000.000000\nETH/USD,-1.0000,0.000000\n",
    "data/trades.csv": b"trade_id,timestamp,symbol,side,quantity,price\n"
    b"1,2026-11-24T10:00:00Z,BTC/USD,buy,2.0000,41000.0000\n2,2026-11-25T10:00:00Z,ETH/USD,sell,1.0000,2500.5000\n",
    "data/reports/fills_2026-11-24.csv": b"id,qty\n1,2\n",
    "data/reports/fills_2026-11-25.csv": b"id,qty\n2,1\n",
}


def make_tiny_site(root: Path) -> Path:
    """Write :data:`TINY_SITE` under ``root`` (created) and return ``root``."""
    for relative, data in TINY_SITE.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def category_tree(site: Path, category: str) -> dict[str, tuple]:
    """The entries of one category (default layout: the top directory of the same name)."""
    return {k: v for k, v in tree(site).items() if k == category or k.startswith(category + "/")}


def site_files(site: Path) -> dict[str, bytes]:
    """Regular files of the site outside ``backups/``, with their bytes."""
    return {k: v[1] for k, v in tree(site, exclude=("backups",)).items() if v[0] == "file"}


def backup_files(backup: Path) -> dict[str, bytes]:
    """The site files stored in one backup directory (its three format files left out)."""
    return {k: v[1] for k, v in tree(backup).items() if v[0] == "file" and k not in RESERVED}


def backups_bytes(backup_dir: Path) -> dict[str, dict[str, tuple]]:
    """Every finished backup directory with all its entries: to prove earlier backups never change."""
    if not backup_dir.is_dir():
        return {}
    return {p.name: tree(p) for p in sorted(backup_dir.iterdir()) if p.is_dir() and not p.name.startswith(".")}


def leftovers(site: Path, backup_dir: Path | None = None) -> list[str]:
    """Temp, staging, journal and half-deleted entries an interrupted operation could leave
    (``.recovery-journal.json``, ``.recovery-staging-*``, ``.recovery-old-*``, ``*.tmp``, ``backups/.tmp-*``)."""
    backup_dir = backup_dir or site / "backups"
    found = [
        p.name
        for p in site.iterdir()
        if (p.name.startswith(".recovery-") and p.name != SANDBOX_MARKER) or p.name.endswith(".tmp")
    ]
    if backup_dir.is_dir():
        found += [p.name for p in backup_dir.iterdir() if p.name.startswith(".tmp")]
    return sorted(found)


def assert_success_backups_verify(site: Path) -> list[str]:
    """Every SUCCESS backup of ``site`` verifies with its contents hashed; returns their ids."""
    manager = RecoveryManager(site=site)
    ids = []
    for metadata in manager.list_backups():
        if metadata.status is BackupStatus.SUCCESS:
            report = manager.verify_backup(metadata.backup_id, read_data=True)
            assert report.ok, f"{metadata.backup_id}: {report.summary()}"
            ids.append(metadata.backup_id)
    return ids


class SiblingWatch:
    """Watch the directory next to a site: nothing a restore or backup does may write there."""

    def __init__(self, sibling: Path) -> None:
        self.sibling = sibling
        sibling.mkdir(parents=True, exist_ok=True)
        (sibling / "canary.txt").write_text("must never change\n")
        self.before = self._state()

    def _state(self) -> tuple[dict[str, tuple], int]:
        return tree(self.sibling), os.lstat(self.sibling).st_mtime_ns

    def assert_untouched(self) -> None:
        assert self._state() == self.before, f"something was written in {self.sibling}"


# --- sites for the failure-point and kill -9 loops ------------------------------------------------

RESTORED = ("config", "data")  # what those loops restore; state is left out and must stay as it is


def force_remove(function: Callable[..., object], path: str, _: object) -> None:
    """``shutil.rmtree``'s error hook: backups are read-only, so make the parent writable and retry."""
    os.chmod(os.path.dirname(path), 0o755)
    if os.path.isdir(path) and not os.path.islink(path):
        os.chmod(path, 0o755)
    function(path)


def fresh_site(root: Path) -> Path:
    """:data:`TINY_SITE` at ``root``, replacing whatever an earlier round left there."""
    if root.exists():
        shutil.rmtree(root, onerror=force_remove)
    return make_tiny_site(root)


def damaged_site(root: Path) -> tuple[Path, str]:
    """A fresh site backed up, then damaged in every category; returns the site and the backup id."""
    site = fresh_site(root)
    backup_id = RecoveryManager(site=site).create_backup()
    (site / "config" / "config.toml").write_text("[exchange\nbroken = \n")
    (site / "data" / "trades.csv").unlink()
    (site / "data" / "stray.csv").write_text("not in the backup\n")
    (site / "state" / "session.json").write_text('{"session": 8}\n')
    return site, backup_id


def site_with_backups(root: Path, count: int = 4) -> tuple[Path, list[str]]:
    """A fresh site with ``count`` backups (oldest first), the state changing between them."""
    site = fresh_site(root)
    manager = RecoveryManager(site=site)
    ids = []
    for tick in range(count):
        (site / "state" / "session.json").write_text(f'{{"tick": {tick}}}\n')
        ids.append(manager.create_backup())
    return site, ids


def restore_config_and_data(site: Path, backup_id: str) -> object:
    """Plan and apply a restore of :data:`RESTORED` from ``backup_id``; returns the result."""
    manager = RecoveryManager(site=site)
    plan = manager.plan_restore(backup_id, restore_config=True, restore_state=False, restore_data=True)
    return manager.apply_restore(plan)


def assert_backups_unchanged(site: Path, before: dict[str, dict[str, tuple]], where: str) -> None:
    """Every backup in ``before`` (from :func:`backups_bytes`) is still there, byte for byte."""
    after = backups_bytes(site / "backups")
    for backup_id, entries in before.items():
        assert after.get(backup_id) == entries, f"{where}: earlier backup {backup_id} changed"


def assert_each_category_old_or_restored(
    site: Path, before: dict[str, dict], wanted: dict[str, dict], where: str
) -> None:
    """Each category in ``wanted`` is wholly as ``before`` or wholly as ``wanted``; the others as before."""
    for category in CATEGORIES:
        now = category_tree(site, category)
        if category in wanted:
            assert now in (before[category], wanted[category]), f"{where}: {category} is neither old nor restored"
        else:
            assert now == before[category], f"{where}: {category} changed though it was not restored"
