"""Backups: the on-disk format, creation (scan, capture, store), verification, sampling, retention, locks.

``recovery_lib.manager.RecoveryManager`` is the API that puts them together."""

from recovery_lib.backup.fitness import fitness_problems
from recovery_lib.backup.listing import UnreadableBackup, list_quarantined, read_backups, suggest_backup_ids
from recovery_lib.backup.lock import LockedError
from recovery_lib.backup.model import (
    PRE_RECOVERY_TAG,
    BackupError,
    BackupMetadata,
    BackupStatus,
    BackupType,
    FileEntry,
    Manifest,
)
from recovery_lib.backup.retention import PrunePlan, RetentionPolicy
from recovery_lib.backup.sample import BackupCheck, BackupsCheck, check_backups_sampled
from recovery_lib.backup.verify import Problem, VerifyReport

__all__ = [
    "PRE_RECOVERY_TAG",
    "BackupCheck",
    "BackupError",
    "BackupMetadata",
    "BackupStatus",
    "BackupType",
    "BackupsCheck",
    "FileEntry",
    "LockedError",
    "Manifest",
    "Problem",
    "PrunePlan",
    "RetentionPolicy",
    "UnreadableBackup",
    "VerifyReport",
    "check_backups_sampled",
    "fitness_problems",
    "list_quarantined",
    "read_backups",
    "suggest_backup_ids",
]
