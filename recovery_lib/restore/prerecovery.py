"""The pre-recovery backup: the site as it was before a restore changed it, saved once per state.

A restore saves the current state in a ``pre-recovery`` backup before it swaps anything in, so it
never loses anything. One taken earlier in the incident (by this manager, or by another kernel and
adopted) holds exactly that state for as long as the site's fingerprint is unchanged, so the restore
reuses it instead of taking another.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from recovery_lib.backup.model import CATEGORIES, PRE_RECOVERY_TAG, BackupMetadata, BackupStatus
from recovery_lib.backup.store import backup_path
from recovery_lib.errors import BackupError, BackupIncomplete, NothingToBackUp, RestoreError
from recovery_lib.restore.plan import RestorePlan, site_fingerprint
from recovery_lib.site.config import Site

log = logging.getLogger(__name__)

# Makes a backup of (categories, description, tags) under the caller's lock.
CreateBackup = Callable[[list[str], str, list[str]], BackupMetadata]


class PreRecovery:
    """The pre-recovery backups of one site: taken with ``create`` (under the caller's lock), and the one
    that holds the site as it is remembered while the site does not change. What was done is added
    to ``notes`` (the caller's list, for the record)."""

    def __init__(self, site: Site, backup_dir: Path, create: CreateBackup, notes: list[str]) -> None:
        self.site = site
        self.backup_dir = backup_dir
        self.create = create
        self.notes = notes
        # (backup id, site fingerprint): the backup holds exactly the site while the fingerprint is unchanged.
        self.remembered: tuple[str, str] | None = None

    def fingerprint(self) -> str:
        """The site's fingerprint over every category's paths, as they are now."""
        return site_fingerprint(self.site.root, [top for tops in self.site.categories.values() for top in tops])

    def taken(self, backup_id: str, before: str) -> str | None:
        """Remember ``backup_id``, just taken, if the site did not change while it was (``before`` is the
        fingerprint from just before); returns the fingerprint, or None when it cannot be reused."""
        after = self.fingerprint()
        if after != before:
            log.info("pre-recovery backup %s: the site changed while it was taken; it will not be reused", backup_id)
            return None
        self.remembered = (backup_id, after)
        log.info("pre-recovery backup %s taken; a restore reuses it while the site does not change", backup_id)
        return after

    def adopt(self, metadata: BackupMetadata, fingerprint: str) -> bool:
        """Reuse a pre-recovery backup taken earlier in the incident (by another kernel): only a SUCCESS
        backup, and only while the site is exactly as it was when it was taken."""
        if metadata.status is not BackupStatus.SUCCESS or self.fingerprint() != fingerprint:
            log.info("pre-recovery backup %s not adopted: not SUCCESS, or the site changed since", metadata.backup_id)
            return False
        self.remembered = (metadata.backup_id, fingerprint)
        log.info("pre-recovery backup %s adopted: the site has not changed since it was taken", metadata.backup_id)
        return True

    def reusable(self) -> str | None:
        """The remembered backup if it is still there and the site has not changed since it was taken."""
        if self.remembered is None:
            return None
        backup_id, fingerprint = self.remembered
        if not backup_path(self.backup_dir, backup_id).is_dir():
            return None
        return backup_id if self.fingerprint() == fingerprint else None

    def save(self, plan: RestorePlan, reused: str | None) -> str | None:
        """Save the current state before ``plan`` swaps anything in: the backup's id, or None if the site
        is empty. ``reused``, a pre-recovery backup of exactly this state, is used instead when given.

        Refuses (:class:`RestoreError`, nothing changed) when the state cannot be saved whole.
        """
        if reused is not None:
            self.notes.append(f"pre-recovery backup {reused} reused: the site has not changed since it was taken")
            log.info("%s", self.notes[-1])
            return reused
        try:
            metadata = self.create(
                list(CATEGORIES), f"Pre-recovery state before restoring {plan.backup_id}", [PRE_RECOVERY_TAG]
            )
        except BackupIncomplete as exc:
            log.warning("restore refused: the pre-recovery backup is incomplete: %s", exc)
            raise RestoreError(
                f"restore refused, nothing was changed: the pre-recovery backup of the current state "
                f"is incomplete ({exc}). Move the unreadable files aside and retry."
            ) from exc
        except NothingToBackUp:
            log.info("no pre-recovery backup: the site is empty, there is no current state to keep")
            return None  # an empty site (total loss): there is no current state to keep
        except BackupError as exc:
            log.warning("restore refused: the pre-recovery backup failed: %s", exc)
            raise RestoreError(f"restore refused, nothing was changed: the pre-recovery backup failed: {exc}") from exc
        self.notes.append(f"pre-recovery backup {metadata.backup_id}")
        log.info("pre-recovery backup %s taken before restoring %s", metadata.backup_id, plan.backup_id)
        return metadata.backup_id
