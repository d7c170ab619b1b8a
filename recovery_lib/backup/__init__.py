"""Backups: the on-disk format, creation, verification, retention, and the RecoveryManager."""

from .fitness import fitness_problems
from .listing import UnreadableBackup, list_quarantined, read_backups, suggest_backup_ids
from .lock import LockedError
from .manager import PRE_RECOVERY_TAG, BackupIncomplete, RecoveryManager
from .model import BackupError, BackupMetadata, BackupStatus, BackupType, FileEntry, Manifest
from .retention import PrunePlan, RetentionPolicy
from .sample import BackupCheck, BackupsCheck, check_backups_sampled
from .verify import Problem, VerifyReport

__all__ = [
    "PRE_RECOVERY_TAG",
    "BackupCheck",
    "BackupError",
    "BackupIncomplete",
    "BackupMetadata",
    "BackupStatus",
    "BackupType",
    "BackupsCheck",
    "FileEntry",
    "LockedError",
    "Manifest",
    "Problem",
    "PrunePlan",
    "RecoveryManager",
    "RetentionPolicy",
    "UnreadableBackup",
    "VerifyReport",
    "check_backups_sampled",
    "fitness_problems",
    "list_quarantined",
    "read_backups",
    "suggest_backup_ids",
]
