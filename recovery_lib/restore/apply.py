"""Applying a restore plan atomically: stage, verify, swap in through the journal, verify again.

:func:`execute_plan` applies exactly a :class:`~recovery_lib.restore.plan.RestorePlan`: it stages
every restored top-level path on the site's filesystem, verifying hashes as it copies, and then
swaps each one in through the journal of :mod:`recovery_lib.restore.journal`, so that a crash at any
point leaves a journal the next recovery command finishes or rolls back.
"""

from __future__ import annotations

import functools
import logging
import os
import secrets
import stat
import time
from collections.abc import Callable
from pathlib import Path

from recovery_lib.backup.model import Manifest
from recovery_lib.backup.store import backup_path
from recovery_lib.errors import RestoreError
from recovery_lib.fsops.batches import map_in_batches
from recovery_lib.fsops.fileio import copy_and_hash, hash_file, sync_filesystem
from recovery_lib.fsops.paths import is_within, within
from recovery_lib.restore.journal import JOURNAL_NAME, Journal, cleanup, swap_in
from recovery_lib.restore.plan import Action, FileAction, RestorePlan, RestoreResult, site_tree
from recovery_lib.restore.preflight import refuse_if_changed, refuse_if_running, running_blockers, verify_for_apply
from recovery_lib.restore.prerecovery import PreRecovery
from recovery_lib.site.config import Site

log = logging.getLogger(__name__)

WORKERS = 2  # threads that stage files (a test sets 1 to crash at a known file)


def apply_plan(
    site: Site,
    plan: RestorePlan,
    backup_dir: Path,
    pre_recovery: PreRecovery,
    progress: Callable[[int, int], None] | None = None,
    began: float | None = None,
) -> RestoreResult:
    """Apply exactly ``plan`` from its backup in ``backup_dir``: refuse if the system runs or the site
    changed since the plan; check every byte of the backup; save the current state (a new pre-recovery
    backup, or the one ``pre_recovery`` remembers of exactly this state); stage and verify; swap each
    category in; verify again.

    The caller holds the backup directory's lock and the site's restore lock, and has finished or
    rolled back interrupted work. ``began`` (``time.monotonic()``) is when the restore was asked for.
    """
    began = time.monotonic() if began is None else began
    refuse_if_running(site)
    refuse_if_changed(plan, site.root)
    source = backup_path(backup_dir, plan.backup_id)
    manifest = verify_for_apply(source, plan, progress)
    # Decided before staging: staging hard-links unchanged files, which changes their ctime.
    reused = pre_recovery.reusable()
    saved: list[str | None] = []
    files, written, problems, tidy_notes = execute_plan(
        site,
        plan,
        source,
        manifest,
        progress,
        blockers=functools.partial(running_blockers, site),
        before_swap=lambda: saved.append(pre_recovery.save(plan, reused)),
    )
    result = RestoreResult(
        plan=plan,
        ok=not problems,
        problems=problems,
        pre_recovery_backup_id=saved[0] if saved else None,
        pre_recovery_reused=bool(saved) and saved[0] is not None and saved[0] == reused,
        files_written=files,
        bytes_written=written,
        duration_s=round(time.monotonic() - began, 3),
        notes=tidy_notes,
    )
    if result.ok:
        log.info("restore applied: %s", result.summary())
    else:
        log.warning("restore applied but did not verify: %s", result.summary())
    return result


def _stage(
    site_root: Path,
    backup_path: Path,
    plan: RestorePlan,
    manifest: Manifest,
    staging: Path,
    progress: Callable[[int, int], None] | None,
) -> tuple[int, int]:
    """Build the new trees in ``staging``; unchanged files are hard-linked from the site, the rest
    copied from the backup with their hashes checked. Raises RestoreError on any mismatch."""
    entries = manifest.by_path()
    tops = [top for paths in plan.tops.values() for top in paths]
    for directory in manifest.dirs:
        if is_within(directory, tops):
            (staging / directory).mkdir(parents=True, exist_ok=True)
    work = [a for a in plan.actions if a.action is not Action.DELETE]
    made = {"", *manifest.dirs}
    for folder in {a.path.rpartition("/")[0] for a in work} - made:  # parents the manifest did not list
        (staging / folder).mkdir(parents=True, exist_ok=True)
    total = sum(a.size for a in work if a.action is not Action.UNCHANGED)
    site, backup, staged = f"{site_root}/", f"{backup_path}/", f"{staging}/"  # strings: a Path per file costs

    def corrupted(path: str) -> RestoreError:
        return RestoreError(
            f"backup {plan.backup_id}: {path} is corrupted (sha256 differs from the manifest); "
            "restore refused and the site was not changed. Verify the backup and choose another."
        )

    def place(action: FileAction) -> int:
        """Every backup file is read exactly once: copied and hashed, or (unchanged) only hashed."""
        entry = entries[action.path]
        target = staged + action.path
        if action.action is Action.UNCHANGED:
            source = site + action.path
            # Linking shares the inode with the live file, so only when no chmod is needed.
            if stat.S_IMODE(os.lstat(source).st_mode) == entry.mode:
                if hash_file(backup + action.path)[0] != entry.sha256:
                    raise corrupted(action.path)
                try:
                    os.link(source, target, follow_symlinks=False)
                    return 0
                except OSError:
                    pass  # another filesystem or link limit: copy it like the rest
        copied = copy_and_hash(backup + action.path, target, entry.mode)
        if copied.sha256 != entry.sha256 or copied.size != entry.size:
            raise corrupted(action.path)
        os.utime(target, ns=(entry.mtime_ns, entry.mtime_ns))
        return copied.size

    written = 0
    for _, size in map_in_batches(place, work, lambda action: action.size, workers=WORKERS):
        written += size
        if progress:
            progress(written, total)
    return sum(1 for a in work if a.action is not Action.UNCHANGED), written


def _verify_result(site_root: Path, plan: RestorePlan, manifest: Manifest) -> list[str]:
    """After the swap: the restored trees hold exactly the backup's files, at the right sizes."""
    problems = []
    for category, tops in plan.tops.items():
        inside = within(tops)
        expected = {e.path: e for e in manifest.files if inside(e.path)}
        present: dict[str, os.stat_result] = {}
        for top in tops:
            present.update(site_tree(site_root, top))
        for path, entry in expected.items():
            info = present.get(path)
            if info is None:
                problems.append(f"{path}: missing after restore ({category})")
            elif not stat.S_ISREG(info.st_mode) or info.st_size != entry.size:
                problems.append(f"{path}: wrong size or type after restore ({category})")
        problems.extend(
            f"{path}: unexpected file after restore ({category})" for path in present if path not in expected
        )
    return problems


def execute_plan(
    site: Site,
    plan: RestorePlan,
    backup_path: Path,
    manifest: Manifest,
    progress: Callable[[int, int], None] | None = None,
    blockers: Callable[[], list[str]] = list,
    before_swap: Callable[[], object] = lambda: None,
) -> tuple[int, int, list[str], list[str]]:
    """Stage, verify, swap in, verify again. The caller holds the lock and has checked the blockers;
    ``before_swap()`` runs once staging has checked every restored byte (the caller's pre-recovery
    backup); ``blockers()`` is asked again just before the swap (the trading system may have been started).

    Returns (files written, bytes written, problems found after the swap, notes for the person).
    """
    if (site.root / JOURNAL_NAME).exists():
        log.warning("restore refused: %s exists, an earlier restore is unfinished", site.root / JOURNAL_NAME)
        raise RestoreError(
            f"{site.root / JOURNAL_NAME} exists: an earlier restore is unfinished; "
            "run any recovery command to complete it first."
        )
    tops = [top for paths in plan.tops.values() for top in paths]
    staged = sorted({top for top in tops if (backup_path / top).exists()})
    journal = Journal(
        restore_id=secrets.token_hex(4), backup_id=plan.backup_id, phase="staging", tops=sorted(tops), staged=staged
    )
    staging = journal.staging_dir(site.root)
    log.info(
        "restore %s of backup %s: staging %s in site %s", journal.restore_id, plan.backup_id, ", ".join(tops), site.root
    )
    try:
        journal.save(site.root)  # first, so that a crash at any later point is found and undone
        staging.mkdir()
    except OSError as exc:
        left = _cleanup_after_failure(site.root, journal)
        log.warning("restore %s cannot stage: %s: %s", journal.restore_id, _where(exc, site.root), exc.strerror)
        raise RestoreError(
            f"cannot stage the restore in site {site.root}: {_where(exc, site.root)}: {exc.strerror}. "
            f"Nothing was changed; make the site writable and check the disk has space, then try again.{left}"
        ) from exc
    try:
        files, written = _stage(site.root, backup_path, plan, manifest, staging, progress)
        sync_filesystem(staging)  # staged bytes durable before the journal says "swap"
        _refuse_if(blockers())  # the system may have been started while staging
        before_swap()  # the pre-recovery backup: only once every restored byte has been checked
        _refuse_if(blockers())  # and again right before the swap
        journal.phase = "swapping"
        journal.save(site.root)
    except OSError as exc:
        left = _cleanup_after_failure(site.root, journal)  # nothing in the site was touched yet
        log.warning("restore %s failed while staging: %s: %s", journal.restore_id, _where(exc, site.root), exc.strerror)
        raise RestoreError(
            f"restore failed while staging: {_where(exc, site.root)}: {exc.strerror}. Nothing in the site "
            f"was changed; fix the cause (disk space, permissions) and restore again.{left}"
        ) from exc
    except BaseException:
        _cleanup_after_failure(site.root, journal)
        raise
    _swap(site.root, journal)
    log.info(
        "restore %s of backup %s swapped in: %d file(s), %d bytes written",
        journal.restore_id,
        plan.backup_id,
        files,
        written,
    )
    notes = _finish(site.root, journal)
    problems = _verify_result(site.root, plan, manifest)
    for problem in problems:
        log.warning("restore %s of backup %s: %s", journal.restore_id, plan.backup_id, problem)
    return files, written, problems, notes


def _refuse_if(late: list[str]) -> None:
    if late:
        log.warning("restore stopped before the swap: %s", late[0])
        raise RestoreError(f"restore stopped before the swap, nothing was changed: {late[0]}")


def _where(exc: OSError, site_root: Path) -> str:
    """The file an OSError is about, or the site when the call had only a descriptor."""
    return str(exc.filename) if exc.filename else f"a file in {site_root}"


def _cleanup_after_failure(site_root: Path, journal: Journal) -> str:
    """Remove staging after a failure before the swap; if even that fails, the journal (still in
    phase "staging") makes the next recovery command roll it back. Returns a note for the message."""
    log.warning("restore %s rolled back before the swap: the site was not changed", journal.restore_id)
    try:
        cleanup(site_root, journal)
    except OSError as exc:
        log.warning("restore %s: removing staging failed too: %s", journal.restore_id, exc.strerror)
        return (
            f" Removing the staging area also failed ({_where(exc, site_root)}: {exc.strerror}); "
            "the next recovery command removes it."
        )
    return ""


def _swap(site_root: Path, journal: Journal) -> None:
    """Swap the staged trees in. ``swap_in`` is idempotent, so one failed rename is retried at once;
    if it fails again the journal (phase "swapping") lets the next recovery command finish it."""
    try:
        swap_in(site_root, journal)
    except OSError:
        try:
            swap_in(site_root, journal)
        except OSError as exc:
            log.warning("restore %s interrupted while swapping in: %s", journal.restore_id, exc.strerror)
            raise RestoreError(
                f"restore interrupted while swapping in the restored files: {_where(exc, site_root)}: "
                f"{exc.strerror}. The journal {site_root / JOURNAL_NAME} records where it stopped: fix the "
                "cause and run any recovery command (e.g. `recovery backup list`) to complete the restore."
            ) from exc


def _finish(site_root: Path, journal: Journal) -> list[str]:
    """Mark the swap done and remove staging and the old trees. The restore has happened by now, so a
    failure here is a note, not an error: the journal makes the next recovery command tidy up."""
    try:
        journal.phase = "swapped"
        journal.save(site_root)
        cleanup(site_root, journal)
    except OSError as exc:
        log.warning("restore %s done, but tidying up failed: %s", journal.restore_id, exc.strerror)
        return [
            f"restored, but tidying up failed ({_where(exc, site_root)}: {exc.strerror}); "
            "the next recovery command removes what is left"
        ]
    return []
