"""Backups: the on-disk format, creation, verification, retention, and the RecoveryManager."""

from .lock import LockedError
from .manager import PRE_RECOVERY_TAG, BackupIncomplete, RecoveryManager
from .model import BackupError, BackupMetadata, BackupStatus, BackupType, FileEntry, Manifest
from .retention import PrunePlan, RetentionPolicy
from .verify import Problem, VerifyReport

__all__ = [
    "PRE_RECOVERY_TAG",
    "BackupError",
    "BackupIncomplete",
    "BackupMetadata",
    "BackupStatus",
    "BackupType",
    "FileEntry",
    "LockedError",
    "Manifest",
    "Problem",
    "PrunePlan",
    "RecoveryManager",
    "RetentionPolicy",
    "VerifyReport",
]
