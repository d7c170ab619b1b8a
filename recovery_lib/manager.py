"""RecoveryManager: the runbook's API over the backup directory and the site.

Every operation that writes takes the backup directory's lock and first finishes or rolls back
anything a crash interrupted (a half-built backup, a half-done restore), so it always starts from
a consistent state.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shlex
import shutil
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from recovery_lib.backup.create import (
    TMP_PREFIX,
    NothingToBackUp,
    build_backup,
    categories_from_flags,
    nothing_to_back_up,
)
from recovery_lib.backup.fitness import FitnessMemo, fitness_problems
from recovery_lib.backup.listing import (
    QUARANTINE_PREFIX,
    UnreadableBackup,
    list_quarantined,
    read_backups,
    suggest_backup_ids,
)
from recovery_lib.backup.lock import BackupLock, SiteRestoreLock
from recovery_lib.backup.model import (
    CATEGORIES,
    MANIFEST,
    PRE_RECOVERY_TAG,
    BackupError,
    BackupMetadata,
    BackupStatus,
    BackupType,
    Manifest,
    parse_manifest,
    read_metadata,
)
from recovery_lib.backup.retention import PrunePlan, RetentionPolicy, plan_prune
from recovery_lib.backup.sample import BackupsCheck, check_backups_sampled
from recovery_lib.backup.verify import VerifyReport, verify_backup_dir
from recovery_lib.errors import RecoveryError
from recovery_lib.fsops.atomic import fsync_dir
from recovery_lib.fsops.fileio import make_writable_tree
from recovery_lib.fsops.paths import is_within
from recovery_lib.rendering import name_all
from recovery_lib.restore.journal import JOURNAL_NAME, RestoreError, recover_interrupted_restore
from recovery_lib.restore.plan import RestorePlan, RestoreResult, execute_plan, make_plan, site_fingerprint
from recovery_lib.site.config import Site, load_site
from recovery_lib.site.process import process_status

log = logging.getLogger("recovery_lib")

Progress = Callable[[int, int], None]
DEFAULT_LOCK_TIMEOUT_S = 30.0
MIB = 1024 * 1024
SHOWN_REASONS = 3  # a "nothing qualifies" error lists this many reasons, then counts the rest


class BackupIncomplete(BackupError):
    """The backup was stored but is PARTIAL: some files could not be captured (listed)."""

    def __init__(self, metadata: BackupMetadata) -> None:
        self.metadata = metadata
        shown = name_all(metadata.problems)
        super().__init__(
            f"backup {metadata.backup_id} is PARTIAL, not SUCCESS: {len(metadata.problems)} file(s) could not be "
            f"captured: {shown}. It is kept for evidence but will never be restored from; "
            "fix the cause and back up again."
        )


def _refusal(backup_id: str, report: VerifyReport) -> RestoreError:
    """The one refusal for a backup that fails verification: a dry run and the real run say the same."""
    return RestoreError(
        f"backup {backup_id} fails verification, restore refused and the site was not changed: {report.summary()}"
    )


class RecoveryManager:
    """Backups of one site: create, list, verify, plan and apply restores, prune.

    ``backup_dir`` defaults to the site's (``[backups] dir`` in recovery.toml, else ``backups``); a
    relative one is relative to the site root. The site is the argument, ``$RECOVERY_SITE`` or the
    current directory.
    """

    def __init__(
        self,
        backup_dir: str | os.PathLike[str] | None = None,
        site: str | os.PathLike[str] | Site | None = None,
        *,
        lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S,
        progress: Progress | None = None,
    ) -> None:
        self.site = load_site(site)
        if backup_dir is None:
            self.backup_dir = self.site.backup_dir
        else:
            given = Path(backup_dir)
            self.backup_dir = given if given.is_absolute() else self.site.root / given
        self.progress = progress
        self.lock_timeout_s = lock_timeout_s
        self._lock = BackupLock(self.backup_dir, "recovery", timeout_s=lock_timeout_s)
        self._site_lock = SiteRestoreLock(self.site.root, timeout_s=lock_timeout_s)
        self.last_plan: RestorePlan | None = None
        self.last_result: RestoreResult | None = None
        # (backup id, site fingerprint): a pre-recovery backup that holds exactly the site as it is
        # while the fingerprint is unchanged, so a restore reuses it instead of taking another.
        self._pre_recovery: tuple[str, str] | None = None
        self._reused_pre_recovery: str | None = None
        self.notes: list[str] = []  # what crash recovery and "latest" resolution did, for the record
        self.unreadable: list[UnreadableBackup] = []  # filled by list_backups()
        self._fitness_memo: FitnessMemo = {}  # see fitness(): one data check per backup, not three
        self.last_error: str | None = None  # why the last restore_backup / delete_backup returned False

    # --- housekeeping -------------------------------------------------------------------------

    def _recover(self) -> None:
        """Finish or roll back interrupted work. Caller holds the lock."""
        try:
            self._recover_unguarded()
        except OSError as exc:
            raise BackupError(
                f"could not finish work an earlier run left interrupted: {exc.filename or self.site.root}: "
                f"{exc.strerror or exc}. Nothing else was done; fix the cause (disk space, permissions) and retry."
            ) from exc

    def _recover_unguarded(self) -> None:
        # A journal is only "interrupted" if no restore holds the site: one that another manager
        # (another backup directory) is running right now must be left alone.
        if self._restore_journal_present() and self._site_lock.acquire(blocking=False):
            try:
                done = recover_interrupted_restore(self.site.root)
            finally:
                self._site_lock.release()
            if done:
                self.notes.append(done)
                log.warning(done)
        if self.backup_dir.is_dir():
            for leftover in self.backup_dir.glob(f"{TMP_PREFIX}*"):
                if leftover.is_symlink() or not leftover.is_dir():
                    continue  # not ours: we only ever leave directories behind
                make_writable_tree(leftover)
                shutil.rmtree(leftover)
                self.notes.append(f"removed {leftover.name}, left by an interrupted backup")

    def _restore_journal_present(self) -> bool:
        return (self.site.root / JOURNAL_NAME).exists() or any(self.site.root.glob(f".{JOURNAL_NAME}.*.tmp"))

    def _locked(self, operation: str) -> BackupLock:
        self._lock.operation = operation
        return self._lock

    def _recover_if_needed(self) -> None:
        """Before a read: clean up if something was interrupted and nobody else is working."""
        interrupted = self._restore_journal_present() or (
            self.backup_dir.is_dir() and any(self.backup_dir.glob(f"{TMP_PREFIX}*"))
        )
        # Never from inside one of our own operations: mid-restore, the journal is live, not interrupted
        # (the pre-recovery backup lists backups while the restore's staging exists).
        if interrupted and not self._lock.held and self._lock.acquire(blocking=False):
            try:
                self._recover()
            finally:
                self._lock.release()

    # --- reading ------------------------------------------------------------------------------

    def _get_backup_dir(self, backup_id: str) -> Path:
        """The directory of ``backup_id``, refusing ids that would leave the backup directory."""
        if not backup_id or "/" in backup_id or backup_id.startswith(".") or "\0" in backup_id:
            raise BackupError(f"{backup_id!r} is not a backup id; `recovery backup list` shows the available ones")
        path = self.backup_dir / backup_id
        if path.is_symlink() or (path.exists() and path.resolve().parent != self.backup_dir.resolve()):
            raise BackupError(f"backup {backup_id} is a symlink out of {self.backup_dir}; refusing to use it")
        return path

    def _no_such_backup(self, backup_id: str) -> BackupError:
        """Unknown id: name the directory, suggest close ids (a typo), point at the listing."""
        close = suggest_backup_ids(self.backup_dir, backup_id)
        hint = f"; did you mean: {', '.join(close)}?" if close else ""
        known = ", ".join(m.backup_id for m in self.list_backups()[:5]) or "none"
        return BackupError(
            f"no backup {backup_id!r} in {self.backup_dir}{hint} (newest: {known}); "
            "`recovery backup list` shows them all"
        )

    def _existing_backup_dir(self, backup_id: str) -> Path:
        """The directory of an existing backup (readable or not); refuses unknown and escaping ids."""
        path = self._get_backup_dir(backup_id)
        if not path.is_dir():
            raise self._no_such_backup(backup_id)
        return path

    def list_backups(
        self, tags: list[str] | None = None, backup_type: BackupType | str | None = None
    ) -> list[BackupMetadata]:
        """Backups newest first, optionally only those with any of ``tags`` or of ``backup_type``.

        Unreadable backups are not listed: each is an :class:`UnreadableBackup` in ``self.unreadable``.
        """
        self._recover_if_needed()
        found, self.unreadable = read_backups(self.backup_dir)
        if tags:
            found = [m for m in found if set(tags) & set(m.tags)]
        if backup_type:
            found = [m for m in found if m.backup_type == BackupType(backup_type)]
        return found

    def get_backup(self, backup_id: str) -> BackupMetadata:
        """Metadata of one backup; ``"latest"`` is the newest SUCCESS backup that verifies
        (fully, contents hashed), not counting ``pre-recovery`` snapshots of a broken state."""
        self._recover_if_needed()
        if backup_id == "latest":
            return self.latest()
        path = self._get_backup_dir(backup_id)
        if not path.is_dir():
            raise self._no_such_backup(backup_id)
        return read_metadata(path)

    def latest(self, needs: tuple[str, ...] = ()) -> BackupMetadata:
        """The newest SUCCESS backup that holds ``needs``, is not a pre-recovery snapshot, verifies
        with every byte hashed and can fix the fault: its ``needs`` categories pass their checks
        (see :func:`fitness_problems`). Each backup passed over is explained in ``notes``."""
        return self._latest(needs)[0]

    def _latest(self, needs: tuple[str, ...]) -> tuple[BackupMetadata, VerifyReport]:
        """:meth:`latest` and the full verification it made (a restore plan need not hash twice)."""
        passed_over: list[str] = []
        for metadata in self.list_backups():  # also refreshes self.unreadable, named below
            if metadata.status is not BackupStatus.SUCCESS:
                continue
            if not all(metadata.includes(category) for category in needs):
                continue  # e.g. a config-only pre-deploy backup when data is to be restored
            if PRE_RECOVERY_TAG in metadata.tags:
                continue  # a snapshot of the broken state a restore replaced: evidence, not a recovery point
            report = self.verify_backup(metadata.backup_id, read_data=True)
            if not report.ok:
                passed_over.append(f"skipped backup {metadata.backup_id} for 'latest': {report.summary()}")
            elif unfit := self.fitness(metadata.backup_id, needs):
                passed_over.append(
                    f"skipped backup {metadata.backup_id} for 'latest': it verifies but cannot fix the fault: "
                    + "; ".join(unfit)
                )
            else:
                self._note_unreadable()
                return metadata, report
            self.notes.append(passed_over[-1])
            log.warning(passed_over[-1])
        reasons = passed_over + self._note_unreadable()
        holding = f" holding {', '.join(needs)}" if needs else ""
        checks = f" and passes the {', '.join(needs)} check(s)" if needs else ""
        shown = "".join(f" {reason}." for reason in reasons[:SHOWN_REASONS])
        more = f" (+{len(reasons) - SHOWN_REASONS} more in the notes)" if len(reasons) > SHOWN_REASONS else ""
        raise BackupError(
            f"no SUCCESS backup{holding} in {self.backup_dir} verifies{checks}; nothing to restore from "
            f"(Procedure D: escalate and create a new backup).{shown}{more}"
        )

    def _note_unreadable(self) -> list[str]:
        """Unreadable backups are never candidates for "latest": say so in the notes, never silently."""
        said = [f"skipped backup {item.backup_id} for 'latest': unreadable: {item.problem}" for item in self.unreadable]
        self.notes.extend(said)
        for note in said:
            log.warning(note)
        return said

    def verify_backup(self, backup_id: str, read_data: bool = True) -> VerifyReport:
        """Check a backup against its manifest; ``read_data`` hashes every file. Never cached:
        each call looks at the disk as it is now."""
        metadata_id = self.get_backup(backup_id).backup_id if backup_id == "latest" else backup_id
        path = self._get_backup_dir(metadata_id)
        if not path.is_dir():
            raise self._no_such_backup(metadata_id)
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
        path = self._get_backup_dir(backup_id) / MANIFEST
        return parse_manifest(path.read_bytes(), f"{backup_id}/{MANIFEST}")

    # --- writing ------------------------------------------------------------------------------

    def _parent(self) -> tuple[BackupMetadata, Manifest] | None:
        """The newest SUCCESS backup whose structure verifies: unchanged files are linked from it.

        A damaged backup is never a parent, so its damage is not shared into new backups.
        """
        for metadata in self.list_backups():
            if metadata.status is BackupStatus.SUCCESS:
                report = self.verify_backup(metadata.backup_id, read_data=False)
                if report.ok and report.manifest is not None:
                    return metadata, report.manifest
        return None

    def create_backup(
        self,
        include_config: bool = True,
        include_state: bool = True,
        include_data: bool = True,
        description: str = "",
        tags: list[str] | None = None,
    ) -> str:
        """Back up the chosen categories; returns the backup id.

        Raises :class:`BackupIncomplete` (the backup is kept, as PARTIAL) if a file could not be captured.
        """
        categories = categories_from_flags(include_config, include_state, include_data)
        tops = [self.site.path(top) for c in categories for top in self.site.categories[c]]
        if not any(top.exists() or top.is_symlink() for top in tops):
            raise nothing_to_back_up(self.site, categories)  # before the lock creates backups/ in a wrong place
        with self._locked("backup"):
            self._recover()
            metadata = self._create_locked(categories, description, list(tags or []))
        return metadata.backup_id

    def _create_locked(self, categories: list[str], description: str, tags: list[str]) -> BackupMetadata:
        try:
            metadata = build_backup(
                self.site, self.backup_dir, categories, description, tags, self._parent(), self.progress
            )
        except OSError as exc:
            where = exc.filename or self.backup_dir
            raise BackupError(
                f"backup failed: {where}: {exc.strerror or exc}. Nothing was stored; existing backups are untouched."
            ) from exc
        if metadata.status is not BackupStatus.SUCCESS:
            raise BackupIncomplete(metadata)
        return metadata

    def delete_backup(self, backup_id: str) -> bool:
        """Remove one backup directory (other backups that share its files by hard link keep them).

        The runbook's original API: True when deleted; False when it does not exist or could not be
        deleted, with the reason logged and kept in ``last_error`` (like :meth:`restore_backup`).
        """
        try:
            self._existing_backup_dir(backup_id)  # a bad id is refused before the lock file is touched
            with self._locked("delete"):
                self._recover()
                self._remove_dir(self._existing_backup_dir(backup_id))
        except (RecoveryError, OSError) as exc:  # the original API reports failure as False
            log.error("delete of backup %s failed: %s", backup_id, exc)
            self.last_error = str(exc)
            return False
        return True

    def quarantine_backup(self, backup_id: str, reason: str) -> str:
        """Set a damaged or unreadable backup aside, never deleting it: returns its new directory name.

        ``backups/<id>`` becomes ``backups/.quarantine-<id>`` by one rename in the same directory
        (atomic, and possible even though the backup itself is read-only); nothing is written into
        it. It is then never listed, linked from or restored from; a person may delete it after the
        post-mortem. ``reason`` goes to the log and ``notes``.
        """
        self._existing_backup_dir(backup_id)  # a bad id is refused before the lock file is touched
        with self._locked("quarantine"):
            self._recover()
            path = self._existing_backup_dir(backup_id)
            target = self.backup_dir / f"{QUARANTINE_PREFIX}{backup_id}"
            copies = 1
            while target.exists() or target.is_symlink():  # quarantined once before: keep both, never replace
                copies += 1
                target = self.backup_dir / f"{QUARANTINE_PREFIX}{backup_id}-{copies}"
            try:
                os.rename(path, target)
            except OSError as exc:
                raise BackupError(
                    f"cannot quarantine backup {backup_id}: {exc.filename or path}: {exc.strerror or exc}. "
                    "It is unchanged; fix the cause (permissions on the backup directory) and retry."
                ) from exc
            try:
                fsync_dir(self.backup_dir)
            except OSError as exc:  # the rename is done and visible; only its durability is in doubt
                unsynced = f"{self.backup_dir} could not be synced after quarantining {backup_id}: {exc.strerror}"
                self.notes.append(unsynced)
                log.warning(unsynced)
        note = f"quarantined backup {backup_id} as {target.name}: {reason}"
        self.notes.append(note)
        log.warning(note)
        return target.name

    def _remove_dir(self, path: Path) -> None:
        # Rename first so a crash mid-delete leaves a .tmp- directory (cleaned up), never half a backup.
        doomed = self.backup_dir / f"{TMP_PREFIX}deleting-{path.name}"
        try:
            os.rename(path, doomed)
        except OSError as exc:
            raise BackupError(
                f"cannot delete backup {path.name}: {exc.filename or path}: {exc.strerror or exc}. "
                "It is unchanged; fix the cause (permissions on the backup directory) and retry."
            ) from exc
        try:
            make_writable_tree(doomed)
            shutil.rmtree(doomed)
        except OSError as exc:
            raise BackupError(
                f"backup {path.name} is deleted, but removing its files failed: {exc.filename or doomed}: "
                f"{exc.strerror or exc}. The next backup command removes the rest."
            ) from exc

    def _newest_verified(self) -> str | None:
        """The newest recovery point (SUCCESS, verifies, not a pre-recovery snapshot): prune never removes it."""
        for metadata in self.list_backups():
            if metadata.status is not BackupStatus.SUCCESS or PRE_RECOVERY_TAG in metadata.tags:
                continue
            if self.verify_backup(metadata.backup_id, read_data=False).ok:
                return metadata.backup_id
        return None

    def prune(self, policy: RetentionPolicy, dry_run: bool = True) -> PrunePlan:
        """Apply a retention policy (restic's ``forget`` rules); with ``dry_run`` only the plan."""
        if policy.is_empty:
            plan_prune([], policy, None)  # refuses with its message before the lock creates anything
        if not self.backup_dir.is_dir():
            return plan_prune([], policy, None)  # nothing to prune; never create the directory to say so
        with self._locked("prune"):
            self._recover()
            plan = plan_prune(self.list_backups(), policy, self._newest_verified())
            if not dry_run:
                for decision in plan.remove:
                    self._remove_dir(self._get_backup_dir(decision.backup.backup_id))
        return plan

    def cleanup_old_backups(self, keep_count: int) -> int:
        """Keep the ``keep_count`` newest backups (and the newest verified one); remove the rest.

        Returns how many were deleted, as the runbook's original API does (``prune`` gives the reasons).
        """
        if keep_count < 1:
            raise ValueError(f"keep_count must be at least 1, got {keep_count}: keeping no backup is never a cleanup")
        plan = self.prune(RetentionPolicy(keep_last=keep_count), dry_run=False)
        return len(plan.remove)

    # --- restore ------------------------------------------------------------------------------

    def _blockers(self) -> list[str]:
        status = process_status(self.site)
        if status.running:
            how = (
                f"stop it with: cd {shlex.quote(str(self.site.root))} && {self.site.process.stop}"
                if self.site.process.stop
                else "stop it first"
            )
            return [f"the trading system is {status.detail}; {how}"]
        return []

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

    def _plan(self, backup_id: str, restore_config: bool, restore_state: bool, restore_data: bool) -> RestorePlan:
        """The plan without its warnings: the check behind them takes seconds at millions of trades,
        and a restore nobody reviews first (:meth:`restore_backup`) runs it while the files are copied."""
        categories = [
            c for c, wanted in zip(CATEGORIES, (restore_config, restore_state, restore_data), strict=True) if wanted
        ]
        if not categories:
            raise RestoreError("nothing to restore: choose at least one of config, state, data")
        self._recover_if_needed()
        if backup_id == "latest":
            metadata, report = self._latest(tuple(categories))  # it hashed every byte and checked fitness
        else:
            metadata = self.get_backup(backup_id)
            if metadata.status is not BackupStatus.SUCCESS:
                raise RestoreError(
                    f"backup {metadata.backup_id} is {metadata.status.value.upper()}, not SUCCESS; "
                    "it is never restored from. Choose another (recovery backup list)."
                )
            # Every byte, as the real run will: a dry run must refuse whatever the real run refuses.
            report = self.verify_backup(metadata.backup_id, read_data=True)
        if not report.ok or report.manifest is None:
            raise _refusal(metadata.backup_id, report)
        return make_plan(
            self.site, metadata, report.manifest, categories, self._blockers(), self._get_backup_dir(metadata.backup_id)
        )

    def fitness(self, backup_id: str, categories: Iterable[str]) -> list[str]:
        """Why restoring ``categories`` from the backup would not fix the site ([] if it would), see
        :func:`fitness_problems`; asked again about an unchanged backup, it answers from memory."""
        return fitness_problems(self.site, self._get_backup_dir(backup_id), categories, self._fitness_memo)

    def _content_warnings(self, plan: RestorePlan) -> list[str]:
        """A backup taken after the fault holds the fault (a broken config, data that fails the data
        check): restoring it fixes nothing. Same rule as "latest" (:meth:`fitness`)."""
        unfit = self.fitness(plan.backup_id, plan.categories)
        return [
            f"{problem}: restoring it will not fix the fault. Choose another backup (recovery backup list)."
            for problem in unfit
        ]

    def apply_restore(self, plan: RestorePlan) -> RestoreResult:
        """Apply exactly ``plan``: refuse if the system runs or the site changed since the plan;
        take a ``pre-recovery`` backup; stage and verify; swap each category in; verify again."""
        began = time.monotonic()
        if plan.site_root != self.site.root:
            raise RestoreError(f"this plan is for site {plan.site_root}, not {self.site.root}")
        with self._locked("restore"), self._site_lock:
            self._recover()
            blockers = self._blockers()
            if blockers:
                raise RestoreError(f"restore refused, nothing was changed: {blockers[0]}")
            tops = [top for paths in plan.tops.values() for top in paths]
            if site_fingerprint(self.site.root, tops) != plan.fingerprint:
                raise RestoreError(
                    "the site changed since this restore was planned; nothing was changed. "
                    "Plan again (dry-run) and review the new plan."
                )
            # Every byte of the backup is checked before the site is touched (the pre-recovery backup
            # included): a backup that fails is never restored from, not even the categories that verify.
            # Files outside the restored paths are hashed here; the restored ones while they are staged.
            restored = [top for tops in plan.tops.values() for top in tops]
            report = verify_backup_dir(
                self._get_backup_dir(plan.backup_id),
                read_data=True,
                progress=self.progress,
                hash_only=lambda path: not is_within(path, restored),
            )
            if not report.ok or report.manifest is None:
                raise _refusal(plan.backup_id, report)
            pre_id: list[str | None] = []
            # Decided before staging: staging hard-links unchanged files, which changes their ctime.
            self._reused_pre_recovery = self._reusable_pre_recovery()
            files, written, problems, notes = execute_plan(
                self.site,
                plan,
                self._get_backup_dir(plan.backup_id),
                report.manifest,
                self.progress,
                blockers=self._blockers,
                before_swap=lambda: pre_id.append(self._pre_recovery_backup(plan)),
            )
        result = RestoreResult(
            plan=plan,
            ok=not problems,
            problems=problems,
            pre_recovery_backup_id=pre_id[0] if pre_id else None,
            pre_recovery_reused=bool(pre_id) and pre_id[0] is not None and pre_id[0] == self._reused_pre_recovery,
            files_written=files,
            bytes_written=written,
            duration_s=round(time.monotonic() - began, 3),
            notes=notes,
        )
        self.last_result = result
        return result

    def _all_tops(self) -> list[str]:
        return [top for tops in self.site.categories.values() for top in tops]

    def create_pre_recovery_backup(self, description: str, tags: list[str]) -> tuple[str, str | None]:
        """Back up every category before a recovery changes anything: (backup id, site fingerprint).

        The fingerprint is given only when the site did not change while the backup was taken (then the
        backup holds exactly the site as it is while the fingerprint stays the same); a restore made
        while it does reuses this backup instead of taking another one.
        """
        tops = self._all_tops()
        before = site_fingerprint(self.site.root, tops)
        backup_id = self.create_backup(description=description, tags=list(dict.fromkeys([*tags, PRE_RECOVERY_TAG])))
        after = site_fingerprint(self.site.root, tops)
        if after != before:
            return backup_id, None
        self._pre_recovery = (backup_id, after)
        return backup_id, after

    def adopt_pre_recovery_backup(self, backup_id: str, fingerprint: str) -> bool:
        """Reuse a pre-recovery backup taken earlier in the incident (by another kernel): only if it is a
        SUCCESS backup still there and the site is exactly as it was when it was taken."""
        try:
            metadata = self.get_backup(backup_id)
        except BackupError:
            return False
        if (
            metadata.status is not BackupStatus.SUCCESS
            or site_fingerprint(self.site.root, self._all_tops()) != fingerprint
        ):
            return False
        self._pre_recovery = (backup_id, fingerprint)
        return True

    def _reusable_pre_recovery(self) -> str | None:
        if self._pre_recovery is None:
            return None
        backup_id, fingerprint = self._pre_recovery
        if not self._get_backup_dir(backup_id).is_dir():
            return None
        return backup_id if site_fingerprint(self.site.root, self._all_tops()) == fingerprint else None

    def _pre_recovery_backup(self, plan: RestorePlan) -> str | None:
        """Save the current state first, so a restore never loses anything. None if the site is empty.
        A pre-recovery backup of exactly this state, taken earlier in the incident, is reused."""
        reused = self._reused_pre_recovery
        if reused is not None:
            self.notes.append(f"pre-recovery backup {reused} reused: the site has not changed since it was taken")
            return reused
        try:
            metadata = self._create_locked(
                list(CATEGORIES), f"Pre-recovery state before restoring {plan.backup_id}", [PRE_RECOVERY_TAG]
            )
        except BackupIncomplete as exc:
            raise RestoreError(
                f"restore refused, nothing was changed: the pre-recovery backup of the current state "
                f"is incomplete ({exc}). Move the unreadable files aside and retry."
            ) from exc
        except NothingToBackUp:
            return None  # an empty site (total loss): there is no current state to keep
        except BackupError as exc:
            raise RestoreError(f"restore refused, nothing was changed: the pre-recovery backup failed: {exc}") from exc
        self.notes.append(f"pre-recovery backup {metadata.backup_id}")
        return metadata.backup_id

    def restore_backup(
        self,
        backup_id: str,
        restore_config: bool = True,
        restore_state: bool = False,
        restore_data: bool = False,
        dry_run: bool = False,
    ) -> bool:
        """The runbook's call: True only if everything asked for was restored and verified.

        ``dry_run`` makes the plan (``self.last_plan``), logs it and returns whether it could be
        applied. Errors are logged with their message and return False, as the runbook expects.
        """
        try:
            if dry_run:
                plan = self.plan_restore(backup_id, restore_config, restore_state, restore_data)
                log.info("%s", plan.summary())
                return not plan.blockers
            # Nobody reads this plan before it is applied (that is plan_restore, then apply_restore),
            # so its warnings are worked out while it is applied, and logged when they are known.
            plan = self._plan(backup_id, restore_config, restore_state, restore_data)
            self.last_plan = plan
            log.info("%s", plan.summary())
            with ThreadPoolExecutor(max_workers=1) as pool:
                warnings = pool.submit(self._content_warnings, plan)
                result = self.apply_restore(plan)
                found = self._warnings_after(plan.backup_id, warnings)
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

    @staticmethod
    def _warnings_after(backup_id: str, warnings: Future[list[str]]) -> list[str]:
        """The plan's warnings once the restore is done; a check that could not run is one of them
        (the restore itself verified every byte, so it stands)."""
        try:
            return warnings.result()
        except (RecoveryError, OSError) as exc:
            return [f"could not check whether backup {backup_id} can fix the fault: {exc}"]
