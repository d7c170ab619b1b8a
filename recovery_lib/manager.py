"""RecoveryManager: the runbook's API over the backup directory, the site and its replicas.

Every operation that writes takes the backup directory's lock and first finishes or rolls back what a
crash interrupted, so it starts from a consistent state. The work lives below (``backup/``,
``replica/``, ``restore/``); this module decides the order and holds the locks.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from recovery_lib.backup import store
from recovery_lib.backup.create import categories_from_flags, nothing_to_back_up
from recovery_lib.backup.fitness import FitnessMemo, fitness_problems
from recovery_lib.backup.listing import UnreadableBackup, list_quarantined, read_backups
from recovery_lib.backup.lock import BackupLock, SiteRestoreLock
from recovery_lib.backup.model import (
    PRE_RECOVERY_TAG,
    BackupMetadata,
    BackupType,
    Manifest,
    read_manifest,
    read_metadata,
)
from recovery_lib.backup.retention import PrunePlan, RetentionPolicy, plan_prune
from recovery_lib.backup.sample import BackupsCheck, check_backups_sampled
from recovery_lib.backup.selection import matching, newest_verified, pick_latest, pick_parent, replica_next_step
from recovery_lib.backup.verify import VerifyReport, verify_backup_dir, verify_documents
from recovery_lib.errors import BackupError, BackupIncomplete, InvalidArgumentError, RecoveryError
from recovery_lib.replica import service as replicas
from recovery_lib.replica.pull import PullReport
from recovery_lib.replica.push import PushReport
from recovery_lib.replica.status import PushRecord
from recovery_lib.restore import preflight
from recovery_lib.restore.apply import apply_plan
from recovery_lib.restore.journal import finish_interrupted_restore, journal_present
from recovery_lib.restore.plan import RestorePlan, RestoreResult, make_plan
from recovery_lib.restore.prerecovery import PreRecovery
from recovery_lib.site.config import Site, load_site

# Importable from here as they always were (the runbook's snippets and the tests use them).
__all__ = ["PRE_RECOVERY_TAG", "BackupIncomplete", "RecoveryManager", "read_backups"]

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
Needs = tuple[str, ...]
DEFAULT_LOCK_TIMEOUT_S = 30.0
MIB = 1024 * 1024


class RecoveryManager:
    """Backups of one site: create, list, verify, plan and apply restores, prune, replicate.
    ``backup_dir`` defaults to the site's (relative: to the site root); the site is the argument,
    ``$RECOVERY_SITE`` or the current directory."""

    def __init__(
        self,
        backup_dir: str | os.PathLike[str] | None = None,
        site: str | os.PathLike[str] | Site | None = None,
        *,
        lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S,
        progress: Progress | None = None,
    ) -> None:
        self.site = load_site(site)
        self.backup_dir = store.backup_dir_of(self.site, backup_dir)
        self.progress = progress
        self.lock_timeout_s = lock_timeout_s
        self._lock = BackupLock(self.backup_dir, "recovery", timeout_s=lock_timeout_s)
        self._site_lock = SiteRestoreLock(self.site.root, timeout_s=lock_timeout_s)
        self.last_plan: RestorePlan | None = None
        self.last_result: RestoreResult | None = None
        self.notes: list[str] = []  # what crash recovery and "latest" resolution did, for the record
        # The pre-recovery backup that holds exactly the site as it is, reused by a restore while it does.
        self._pre_recovery = PreRecovery(self.site, self.backup_dir, self._create_locked, self.notes)
        self.unreadable: list[UnreadableBackup] = []  # filled by list_backups()
        self._fitness_memo: FitnessMemo = {}  # see fitness(): one data check per backup, not three
        self.last_error: str | None = None  # why the last restore_backup / delete_backup returned False
        self.last_push: list[PushRecord | PushReport] = []  # the replicas' outcome after create_backup

    # --- housekeeping -------------------------------------------------------------------------

    def _recover(self) -> None:
        """Finish or roll back interrupted work: a restore first, then backups. Caller holds the lock."""
        try:
            if done := finish_interrupted_restore(self.site.root, self._site_lock):
                self._note(done)
            self.notes.extend(store.remove_leftovers(self.backup_dir))
        except OSError as exc:
            raise BackupError(
                f"could not finish work an earlier run left interrupted: {exc.filename or self.site.root}: "
                f"{exc.strerror or exc}. Nothing else was done; fix the cause (disk space, permissions) and retry."
            ) from exc

    def _locked(self, operation: str) -> BackupLock:
        self._lock.operation = operation
        return self._lock

    def _recover_if_needed(self) -> None:
        """Before a read: clean up if something was interrupted and nobody else is working."""
        interrupted = journal_present(self.site.root) or store.has_leftovers(self.backup_dir)
        # Never inside our own operation: mid-restore the journal is live (the pre-recovery backup lists).
        if interrupted and not self._lock.held and self._lock.acquire(blocking=False):
            try:
                self._recover()
            finally:
                self._lock.release()

    def _note(self, note: str) -> None:
        """Something a person must know happened (for the record), also logged as a warning."""
        self.notes.append(note)
        log.warning("%s", note)

    def _get_backup_dir(self, backup_id: str) -> Path:
        """The directory of ``backup_id``, refusing ids that would leave the backup directory."""
        return store.backup_path(self.backup_dir, backup_id)

    def _existing_backup_dir(self, backup_id: str) -> Path:
        """The directory of an existing backup (readable or not); refuses unknown and escaping ids."""
        path = self._get_backup_dir(backup_id)
        if not path.is_dir():
            newest = [m.backup_id for m in self.list_backups()[:5]]
            raise store.no_such_backup(self.backup_dir, backup_id, newest)
        return path

    def list_backups(
        self, tags: list[str] | None = None, backup_type: BackupType | str | None = None
    ) -> list[BackupMetadata]:
        """Backups newest first, optionally only those with any of ``tags`` or of ``backup_type``. Unreadable
        ones are not listed: each is an :class:`UnreadableBackup` in ``self.unreadable``."""
        self._recover_if_needed()
        found, self.unreadable = read_backups(self.backup_dir)
        return matching(found, tags, backup_type)

    def get_backup(self, backup_id: str) -> BackupMetadata:
        """Metadata of one backup; ``"latest"``: see :meth:`latest`."""
        self._recover_if_needed()
        if backup_id == "latest":
            return self.latest()
        return read_metadata(self._existing_backup_dir(backup_id))

    def latest(self, needs: tuple[str, ...] = ()) -> BackupMetadata:
        """The newest SUCCESS backup that holds ``needs``, is not a pre-recovery snapshot, verifies
        with every byte hashed and can fix the fault: its ``needs`` categories pass their checks
        (see :func:`fitness_problems`). Each backup passed over is explained in ``notes``."""
        return self._latest(needs)[0]

    def _latest(self, needs: tuple[str, ...]) -> tuple[BackupMetadata, VerifyReport]:
        """:meth:`latest` and the full verification it made (a restore plan need not hash twice)."""
        backups, step = self.list_backups(), replica_next_step(self.site, needs)  # listing refreshes unreadable
        return pick_latest(
            backups, lambda: self.unreadable, needs, self.verify_backup, self.fitness, self._note, self.backup_dir, step
        )

    def verify_backup(self, backup_id: str, read_data: bool = True) -> VerifyReport:
        """Check a backup against its manifest; ``read_data`` hashes every file. Never cached:
        each call looks at the disk as it is now."""
        metadata_id = self.get_backup(backup_id).backup_id if backup_id == "latest" else backup_id
        path = self._existing_backup_dir(metadata_id)
        return verify_backup_dir(path, read_data=read_data, progress=self.progress)

    def check_all(self, budget_bytes: int | None = None) -> BackupsCheck:
        """Every backup's structure, and file contents re-hashed within ``budget_bytes`` (default
        ``[backups] health_read_mib``). Read-only, like the health check that uses it."""
        budget = int(self.site.health_read_mib * MIB) if budget_bytes is None else budget_bytes
        return check_backups_sampled(self.backup_dir, budget)

    def list_quarantined(self) -> list[str]:
        """Names of the quarantined backup directories (``.quarantine-<id>``)."""
        return list_quarantined(self.backup_dir)

    def _manifest(self, backup_id: str) -> Manifest:
        return read_manifest(self._get_backup_dir(backup_id))

    def create_backup(
        self,
        include_config: bool = True,
        include_state: bool = True,
        include_data: bool = True,
        description: str = "",
        tags: list[str] | None = None,
        push: bool = True,
    ) -> str:
        """Back up the chosen categories; returns the backup id. Raises :class:`BackupIncomplete` (the
        backup is kept, as PARTIAL) if a file could not be captured. ``push``: then push to the replicas
        with ``push = "after-backup"``; their outcome (never an exception) is in ``last_push``."""
        categories = categories_from_flags(include_config, include_state, include_data)
        tops = [self.site.path(top) for c in categories for top in self.site.categories[c]]
        if not any(top.exists() or top.is_symlink() for top in tops):
            raise nothing_to_back_up(self.site, categories)  # before the lock creates backups/ in a wrong place
        with self._locked("backup"):
            self._recover()
            metadata = self._create_locked(categories, description, list(tags or []))
        self.last_push = replicas.push_after_backup(self.site, self.backup_dir) if push else []
        return metadata.backup_id

    def _create_locked(self, categories: list[str], description: str, tags: list[str]) -> BackupMetadata:
        # The parent's documents are verified here, each file it lends as it is linked (backup/create.py).
        parent = pick_parent(self.list_backups(), lambda bid, **_: verify_documents(self._existing_backup_dir(bid)))
        return store.store_backup(self.site, self.backup_dir, categories, description, tags, parent, self.progress)

    def delete_backup(self, backup_id: str) -> bool:
        """Remove one backup directory (hard-linked files stay in the backups sharing them). The runbook's
        API: True when deleted; False otherwise, with the reason logged and kept in ``last_error``."""
        try:
            self._existing_backup_dir(backup_id)  # a bad id is refused before the lock file is touched
            with self._locked("delete"):
                self._recover()
                store.remove_backup(self.backup_dir, self._existing_backup_dir(backup_id))
        except (RecoveryError, OSError) as exc:  # the original API reports failure as False
            log.error("delete of backup %s failed: %s", backup_id, exc)
            self.last_error = str(exc)
            return False
        return True

    def quarantine_backup(self, backup_id: str, reason: str) -> str:
        """Set a damaged or unreadable backup aside as ``.quarantine-<id>`` (one rename; nothing written
        into it, never deleted): returns the new name. ``reason`` goes to the log and ``notes``."""
        self._existing_backup_dir(backup_id)  # a bad id is refused before the lock file is touched
        with self._locked("quarantine"):
            self._recover()
            name, unsynced = store.quarantine(self.backup_dir, backup_id, self._existing_backup_dir(backup_id))
            self.notes.extend(unsynced)
        self._note(f"quarantined backup {backup_id} as {name}: {reason}")
        return name

    def prune(self, policy: RetentionPolicy, dry_run: bool = True) -> PrunePlan:
        """Apply a retention policy (restic's ``forget`` rules); with ``dry_run`` only the plan."""
        if policy.is_empty:
            plan_prune([], policy, None)  # refuses with its message before the lock creates anything
        if not self.backup_dir.is_dir():
            return plan_prune([], policy, None)  # nothing to prune; never create the directory to say so
        with self._locked("prune"):
            self._recover()
            plan = plan_prune(self.list_backups(), policy, newest_verified(self.list_backups(), self.verify_backup))
            log.info(
                "prune%s: keep %d, remove %d backup(s)",
                " (dry run)" if dry_run else "",
                len(plan.keep),
                len(plan.remove),
            )
            if not dry_run:
                for decision in plan.remove:
                    store.remove_backup(self.backup_dir, self._get_backup_dir(decision.backup.backup_id))
        return plan

    def cleanup_old_backups(self, keep_count: int) -> int:
        """Keep the ``keep_count`` newest backups (and the newest verified one); returns how many were
        deleted, as the runbook's original API does (``prune`` gives the reasons)."""
        if keep_count < 1:
            raise InvalidArgumentError(f"keep_count must be at least 1, got {keep_count}: keeping none is no cleanup")
        plan = self.prune(RetentionPolicy(keep_last=keep_count), dry_run=False)
        return len(plan.remove)

    def plan_restore(
        self,
        backup_id: str = "latest",
        restore_config: bool = True,
        restore_state: bool = False,
        restore_data: bool = False,
    ) -> RestorePlan:
        """What a restore would do, per file, without touching the disk."""
        plan = self._plan(backup_id, restore_config, restore_state, restore_data)
        plan = dataclasses.replace(plan, warnings=tuple(self._content_warnings(plan)))
        self.last_plan = plan
        return plan

    def _plan(
        self, backup_id: str, restore_config: bool, restore_state: bool, restore_data: bool, read_data: bool = True
    ) -> RestorePlan:
        """The plan without its warnings (:meth:`restore_backup` works them out while it copies). Without
        ``read_data`` when applied at once: the apply hashes every byte before touching the site."""
        categories = preflight.chosen_categories(restore_config, restore_state, restore_data)
        self._recover_if_needed()
        if backup_id == "latest":
            metadata, report = self._latest(tuple(categories))  # it hashed every byte and checked fitness
        else:
            metadata = self.get_backup(backup_id)
            preflight.refuse_unless_success(metadata)
            # Every byte, as the real run will: a dry run must refuse whatever the real run refuses.
            report = self.verify_backup(metadata.backup_id, read_data=read_data)
        manifest = preflight.verified_manifest(metadata.backup_id, report)
        blockers = preflight.running_blockers(self.site)
        return make_plan(self.site, metadata, manifest, categories, blockers, self._get_backup_dir(metadata.backup_id))

    def fitness(self, backup_id: str, categories: Iterable[str]) -> list[str]:
        """Why restoring ``categories`` from the backup would not fix the site ([] if it would), see
        :func:`fitness_problems`; asked again about an unchanged backup, it answers from memory."""
        return fitness_problems(self.site, self._get_backup_dir(backup_id), categories, self._fitness_memo)

    def _content_warnings(self, plan: RestorePlan) -> list[str]:
        """A backup taken after the fault holds it: restoring fixes nothing (same rule as "latest")."""
        return preflight.fitness_warnings(self.fitness(plan.backup_id, plan.categories))

    def apply_restore(self, plan: RestorePlan) -> RestoreResult:
        """Apply exactly ``plan``: refuse if the system runs or the site changed since the plan;
        take a ``pre-recovery`` backup; stage and verify; swap each category in; verify again."""
        began = time.monotonic()
        preflight.refuse_foreign_plan(plan, self.site.root)
        with self._locked("restore"), self._site_lock:
            self._recover()
            result = apply_plan(self.site, plan, self.backup_dir, self._pre_recovery, self.progress, began)
        self.last_result = result
        return result

    def create_pre_recovery_backup(self, description: str, tags: list[str]) -> tuple[str, str | None]:
        """Back up every category before a recovery changes anything: (backup id, site fingerprint). The
        fingerprint is given only if the site did not change meanwhile; a restore reuses the backup while
        the site still has it."""
        before = self._pre_recovery.fingerprint()
        tags = list(dict.fromkeys([*tags, PRE_RECOVERY_TAG]))
        backup_id = self.create_backup(description=description, tags=tags, push=False)  # no network mid-recovery
        return backup_id, self._pre_recovery.taken(backup_id, before)

    def adopt_pre_recovery_backup(self, backup_id: str, fingerprint: str) -> bool:
        """Reuse a pre-recovery backup taken earlier in the incident (by another kernel): only if it is a
        SUCCESS backup still there and the site is exactly as it was when it was taken."""
        try:
            metadata = self.get_backup(backup_id)
        except BackupError:
            return False
        return self._pre_recovery.adopt(metadata, fingerprint)

    def restore_backup(
        self,
        backup_id: str,
        restore_config: bool = True,
        restore_state: bool = False,
        restore_data: bool = False,
        dry_run: bool = False,
    ) -> bool:
        """The runbook's call: True only if everything asked for was restored and verified. ``dry_run``
        makes the plan (``last_plan``), logs it and returns whether it could be applied. Errors are
        logged and return False (reason in ``last_error``), as the runbook expects."""
        try:
            if dry_run:
                plan = self.plan_restore(backup_id, restore_config, restore_state, restore_data)
                log.info("%s", plan.summary())
                return not plan.blockers
            # Nobody reads this plan before it is applied (that is plan_restore, then apply_restore),
            # so its warnings are worked out while it is applied, and logged when they are known.
            plan = self._plan(backup_id, restore_config, restore_state, restore_data, read_data=False)
            self.last_plan = plan
            log.info("%s", plan.summary())
            result, found = preflight.apply_while_checking(plan, self.apply_restore, self._content_warnings)
        except (RecoveryError, OSError) as exc:  # the runbook's API reports failure as False
            log.error("restore of %s failed: %s", backup_id, exc)
            self.last_error = str(exc)
            return False
        self.last_plan = dataclasses.replace(plan, warnings=tuple(found))
        self.last_result = dataclasses.replace(result, plan=self.last_plan)
        for warning in found:
            log.warning("restore of %s: %s", backup_id, warning)
        for problem in result.problems:
            log.error("restore of %s: %s", backup_id, problem)
        return result.ok

    # --- replicas (copies off the host; docs/replica-format.md) ----------------------------------

    def push_to_replica(self, replica: str | None = None, target: str = "latest") -> PushReport:
        """Push ``target`` (an id, ``latest``: the newest and any newer than the replica's, or ``all``)."""
        return replicas.push(replicas.replica_spec(self.site, replica), self.backup_dir, target)

    def pull_from_replica(
        self, replica: str | None = None, backup_id: str = "latest", identity: str | None = None, needs: Needs = ()
    ) -> PullReport:
        """Bring a backup from a replica into the backup directory, every byte verified; ``latest``: the
        newest holding ``needs`` that does (others passed over are in ``notes``)."""
        spec = replicas.replica_spec(self.site, replica)
        with replicas.opened(spec) as remote, self._locked("pull"):
            self._recover()
            opener = remote.opener(identity)  # ``identity``: the age key file
            return replicas.pull(remote, self.backup_dir, backup_id, opener, self.notes, self.progress, needs)

    def restore_from_replica(
        self,
        replica: str | None = None,
        backup_id: str = "latest",
        restore_config: bool = True,
        restore_state: bool = True,
        restore_data: bool = True,
        identity: str | None = None,
        dry_run: bool = False,
    ) -> bool:
        """Recover a lost host: pull the backup (verified), then :meth:`restore_backup` from it. Works on a
        site directory that holds only recovery.toml. A dry run pulls too (the site is unchanged)."""
        try:
            needs = tuple(preflight.chosen_categories(restore_config, restore_state, restore_data))
            pulled = self.pull_from_replica(replica, backup_id, identity, needs)
        except RecoveryError as exc:
            log.error("restore from replica %s failed: %s", replica or "(the only one)", exc)
            self.last_error = str(exc)
            return False
        self.notes.append(pulled.summary())
        return self.restore_backup(pulled.backup_id, restore_config, restore_state, restore_data, dry_run)
