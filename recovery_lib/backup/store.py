"""The backup directory as a store of backups by id: where one lives, and taking one out of use.

An id never leads out of the backup directory (``..``, ``/``, hidden names and symlinks are
refused). A backup leaves use whole or not at all: quarantine is one rename in the same directory,
delete renames to a ``.tmp-`` name first, so a crash mid-delete leaves a directory the next command
removes (:func:`remove_leftovers`), never half a backup. The caller holds the backup directory's lock
for everything that writes.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from recovery_lib.backup.create import TMP_PREFIX, build_backup
from recovery_lib.backup.listing import QUARANTINE_PREFIX, suggest_backup_ids
from recovery_lib.backup.model import BackupMetadata, BackupStatus, Manifest
from recovery_lib.errors import BackupError, BackupIncomplete
from recovery_lib.fsops.atomic import fsync_dir
from recovery_lib.fsops.fileio import make_writable_tree
from recovery_lib.rendering import name_all
from recovery_lib.site.config import Site

log = logging.getLogger(__name__)


def backup_dir_of(site: Site, given: str | os.PathLike[str] | None) -> Path:
    """The backup directory: ``given`` (relative to the site root), else the site's."""
    if given is None:
        return site.backup_dir
    path = Path(given)
    return path if path.is_absolute() else site.root / path


def backup_path(backup_dir: Path, backup_id: str) -> Path:
    """The directory of ``backup_id`` (it need not exist), refusing ids that would leave ``backup_dir``."""
    if not backup_id or "/" in backup_id or backup_id.startswith(".") or "\0" in backup_id:
        raise BackupError(f"{backup_id!r} is not a backup id; `recovery backup list` shows the available ones")
    path = backup_dir / backup_id
    if path.is_symlink() or (path.exists() and path.resolve().parent != backup_dir.resolve()):
        raise BackupError(f"backup {backup_id} is a symlink out of {backup_dir}; refusing to use it")
    return path


def no_such_backup(backup_dir: Path, backup_id: str, newest: list[str]) -> BackupError:
    """Unknown id: name the directory, suggest close ids (a typo), show the ``newest`` ids, point at the
    listing."""
    close = suggest_backup_ids(backup_dir, backup_id)
    hint = f"; did you mean: {', '.join(close)}?" if close else ""
    known = ", ".join(newest) or "none"
    return BackupError(
        f"no backup {backup_id!r} in {backup_dir}{hint} (newest: {known}); `recovery backup list` shows them all"
    )


def has_leftovers(backup_dir: Path) -> bool:
    """Whether an interrupted backup or delete left a ``.tmp-`` directory behind."""
    return backup_dir.is_dir() and any(backup_dir.glob(f"{TMP_PREFIX}*"))


def remove_leftovers(backup_dir: Path) -> list[str]:
    """Remove what interrupted backups and deletes left behind; returns a note for each."""
    notes: list[str] = []
    if not backup_dir.is_dir():
        return notes
    for leftover in backup_dir.glob(f"{TMP_PREFIX}*"):
        if leftover.is_symlink() or not leftover.is_dir():
            continue  # not ours: we only ever leave directories behind
        make_writable_tree(leftover)
        shutil.rmtree(leftover)
        notes.append(f"removed {leftover.name}, left by an interrupted backup")
        log.info("%s: %s", backup_dir, notes[-1])
    return notes


def store_backup(
    site: Site,
    backup_dir: Path,
    categories: list[str],
    description: str,
    tags: list[str],
    parent: tuple[BackupMetadata, Manifest] | None,
    progress: Callable[[int, int], None] | None,
) -> BackupMetadata:
    """Build and store a new backup (unchanged files linked from ``parent``); the caller holds the lock.

    Raises :class:`BackupError` when nothing could be stored, and :class:`BackupIncomplete` when the
    backup was stored as PARTIAL (kept for evidence, never restored from).
    """
    try:
        metadata = build_backup(site, backup_dir, categories, description, tags, parent, progress)
    except OSError as exc:
        where = exc.filename or backup_dir
        raise BackupError(
            f"backup failed: {where}: {exc.strerror or exc}. Nothing was stored; existing backups are untouched."
        ) from exc
    if metadata.status is not BackupStatus.SUCCESS:
        raise BackupIncomplete(metadata, name_all(metadata.problems))
    return metadata


def quarantine(backup_dir: Path, backup_id: str, path: Path) -> tuple[str, list[str]]:
    """Rename the backup at ``path`` to ``.quarantine-<id>`` (``-2``, ``-3``... when quarantined before:
    both are kept, never replaced). Returns the new name and notes on what could not be made durable."""
    target = backup_dir / f"{QUARANTINE_PREFIX}{backup_id}"
    copies = 1
    while target.exists() or target.is_symlink():  # quarantined once before: keep both, never replace
        copies += 1
        target = backup_dir / f"{QUARANTINE_PREFIX}{backup_id}-{copies}"
    try:
        os.rename(path, target)
    except OSError as exc:
        log.warning("cannot quarantine backup %s: %s", backup_id, exc.strerror or exc)
        raise BackupError(
            f"cannot quarantine backup {backup_id}: {exc.filename or path}: {exc.strerror or exc}. "
            "It is unchanged; fix the cause (permissions on the backup directory) and retry."
        ) from exc
    notes: list[str] = []
    try:
        fsync_dir(backup_dir)
    except OSError as exc:  # the rename is done and visible; only its durability is in doubt
        notes.append(f"{backup_dir} could not be synced after quarantining {backup_id}: {exc.strerror}")
        log.warning("%s", notes[-1])
    return target.name, notes


def remove_backup(backup_dir: Path, path: Path) -> None:
    """Delete the backup at ``path``: renamed to a ``.tmp-`` name first, then its files removed."""
    # Rename first so a crash mid-delete leaves a .tmp- directory (cleaned up), never half a backup.
    doomed = backup_dir / f"{TMP_PREFIX}deleting-{path.name}"
    try:
        os.rename(path, doomed)
    except OSError as exc:
        log.warning("cannot delete backup %s: %s", path.name, exc.strerror or exc)
        raise BackupError(
            f"cannot delete backup {path.name}: {exc.filename or path}: {exc.strerror or exc}. "
            "It is unchanged; fix the cause (permissions on the backup directory) and retry."
        ) from exc
    log.info("deleted backup %s from %s", path.name, backup_dir)
    try:
        make_writable_tree(doomed)
        shutil.rmtree(doomed)
    except OSError as exc:
        log.warning("backup %s is deleted, but removing its files failed: %s", path.name, exc.strerror or exc)
        raise BackupError(
            f"backup {path.name} is deleted, but removing its files failed: {exc.filename or doomed}: "
            f"{exc.strerror or exc}. The next backup command removes the rest."
        ) from exc
