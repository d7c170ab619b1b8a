"""Reading the backup directory: the backups in it, the ones that cannot be read, the quarantined ones.

Pure reading: no lock, no cleanup, nothing written, so health checks and notebook validation can
use it at any time.
"""

from __future__ import annotations

import difflib
import logging
from dataclasses import dataclass
from pathlib import Path

from recovery_lib.backup.model import BackupError, BackupMetadata, read_metadata

QUARANTINE_PREFIX = ".quarantine-"  # a damaged backup set aside: never listed, never restored from
log = logging.getLogger(__name__)

UNREADABLE_ADVICE = (
    "It is never listed or restored from. Procedure D: inspect it, quarantine it "
    "(RecoveryManager.quarantine_backup) and take a new backup."
)


@dataclass(frozen=True)
class UnreadableBackup:
    """A directory in the backup directory whose ``metadata.json`` cannot be read.

    ``backup_id`` is the directory name; ``problem`` says what is wrong with it.
    """

    backup_id: str
    problem: str

    def __str__(self) -> str:
        return f"backup {self.backup_id} is unreadable: {self.problem}. {UNREADABLE_ADVICE}"


def _candidates(backup_dir: Path) -> list[Path]:
    """Directories that are backups by name: dot-names are the lock, builds, deletions, quarantine."""
    if not backup_dir.is_dir():
        return []
    return [
        child
        for child in backup_dir.iterdir()
        if not child.name.startswith(".") and child.is_dir() and not child.is_symlink()
    ]


def read_backups(backup_dir: Path) -> tuple[list[BackupMetadata], list[UnreadableBackup]]:
    """Every readable backup in ``backup_dir``, newest first, and the unreadable ones by name."""
    found: list[BackupMetadata] = []
    unreadable: list[UnreadableBackup] = []
    for child in _candidates(backup_dir):
        try:
            found.append(read_metadata(child))
        except BackupError as exc:
            unreadable.append(UnreadableBackup(child.name, str(exc)))
    found.sort(key=lambda m: (m.created, m.backup_id), reverse=True)
    unreadable.sort(key=lambda u: u.backup_id, reverse=True)  # ids start with their UTC time: newest first
    log.debug("%s: %d backup(s), %d unreadable", backup_dir, len(found), len(unreadable))
    return found, unreadable


def suggest_backup_ids(backup_dir: Path, wanted: str, n: int = 3) -> list[str]:
    """Up to ``n`` backup directory names close to ``wanted`` (a typo's likely meaning), best first."""
    names = [child.name for child in _candidates(backup_dir)]
    return difflib.get_close_matches(wanted, names, n=n)


def list_quarantined(backup_dir: Path) -> list[str]:
    """Names of the quarantined backup directories (``.quarantine-<id>``), sorted."""
    if not backup_dir.is_dir():
        return []
    return sorted(
        child.name
        for child in backup_dir.iterdir()
        if child.name.startswith(QUARANTINE_PREFIX) and child.is_dir() and not child.is_symlink()
    )
