"""Helpers of the backup-creation tests: what the site and a backup hold, and soundness checks."""

from __future__ import annotations

import subprocess
from pathlib import Path

from snapshots import files

from recovery_lib.manager import RecoveryManager

CATEGORY_TOPS = ("config", "state", "data")
SITE_FILES = (
    "config/config.toml",
    "state/session.json",
    "state/strategy_state.json",
    "data/positions.csv",
    "data/trades.csv",
    "data/reports/2026/11/fills_2026-11-17_0000.csv",
    "data/reports/2026/11/fills_2026-11-18_0001.csv",
    "data/reports/2026/11/fills_2026-11-19_0002.csv",
)
SETTINGS_FILE = "recovery.toml"  # every backup holds the site's recovery.toml too (backup/sitefile.py)
BACKED_UP = (*SITE_FILES, SETTINGS_FILE)  # what a full backup of the sandbox holds


def site_snapshot(root: Path) -> dict[str, bytes]:
    """Every file of the site outside its backup directory, with its bytes."""
    return files(root, exclude=("backups",))


def category_files(root: Path) -> dict[str, bytes]:
    """The files a FULL backup must hold: everything under config/, state/ and data/, and recovery.toml."""
    tops = (*CATEGORY_TOPS, SETTINGS_FILE)
    return {path: data for path, data in site_snapshot(root).items() if path.split("/")[0] in tops}


def backup_tree(backup: Path) -> dict[str, bytes]:
    """The site files stored in a backup directory (its own three format files left out)."""
    return files(backup, exclude=("metadata.json", "manifest.json", "SHA256SUMS"))


def sha256sum_check(backup: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=backup, capture_output=True, text=True, check=False)


def assert_backup_sound(manager: RecoveryManager, backup_id: str) -> None:
    """The backup verifies with contents hashed, by our verifier and by coreutils."""
    report = RecoveryManager(backup_dir=manager.backup_dir, site=manager.site).verify_backup(backup_id, read_data=True)
    assert report.ok, report.summary()
    checked = sha256sum_check(manager._get_backup_dir(backup_id))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def tmp_leftovers(manager: RecoveryManager) -> list[str]:
    return sorted(p.name for p in manager.backup_dir.glob(".tmp-*"))
