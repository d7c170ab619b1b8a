"""Creating a backup: scan, link what is unchanged, copy-and-hash the rest, sync, metadata last.

The backup is assembled in ``<backup_dir>/.tmp-<id>``; only after every file is on disk are
``manifest.json``, ``SHA256SUMS`` and finally ``metadata.json`` written, and the directory is
renamed into place. A crash at any moment leaves at most a ``.tmp-*`` directory, which the next
operation removes; it can never leave a listed backup that fails verification.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import secrets
import shutil
import socket
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from recovery_lib import clock
from recovery_lib.backup.model import (
    CATEGORIES,
    MANIFEST,
    METADATA,
    RESERVED,
    SUMS,
    BackupError,
    BackupMetadata,
    BackupStatus,
    BackupType,
    FileEntry,
    Manifest,
    render_sums,
)
from recovery_lib.backup.scan import nothing_to_back_up, scan_site
from recovery_lib.backup.sitefile import manifest_categories, settings_file
from recovery_lib.fsops.atomic import fsync_dir
from recovery_lib.fsops.batches import map_in_batches
from recovery_lib.fsops.fileio import (
    Copied,
    FileChangedError,
    copy_and_hash,
    make_writable_tree,
    sync_filesystem,
    write_file,
)
from recovery_lib.fsops.paths import UnsafePathError, safe_relative
from recovery_lib.site.config import Site
from recovery_lib.site.process import consistent_view

log = logging.getLogger(__name__)

TMP_PREFIX = ".tmp-"
RACY_WINDOW_NS = 3_000_000_000  # a file modified this close to the backup start is re-hashed
COPY_RETRIES = 3  # a file that keeps changing while read (a live log) is given up after this
# The parent's copy cannot be reached (a folder of it chmodded 000, replaced by a file or a symlink
# loop): the parent is only a source of links, so the file is copied from the site instead. Errors of
# the new backup's own files are not among these in practice, and would fail the copy that follows.
_PARENT_DAMAGED = (errno.EACCES, errno.ENOTDIR, errno.ELOOP)

Progress = Callable[[int, int], None]


def new_backup_id(backup_type: BackupType, now: datetime) -> str:
    """``20261125T223600Z-full-3fa2c1``: sorts by time, says what it holds, unique."""
    return f"{now:%Y%m%dT%H%M%S}Z-{backup_type.value}-{secrets.token_hex(3)}"


def _unchanged(entry: FileEntry | None, info: os.stat_result, started_ns: int) -> bool:
    """Same size, mtime, ctime and inode as in the parent, and not modified near the backup start."""
    return (
        entry is not None
        and (entry.size, entry.mtime_ns, entry.ctime_ns, entry.ino, entry.dev)
        == (info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino, info.st_dev)
        and started_ns - info.st_mtime_ns > RACY_WINDOW_NS
        and started_ns - info.st_ctime_ns > RACY_WINDOW_NS
    )


def _entry(path: str, copied: Copied) -> FileEntry:
    info = copied.source_stat
    return FileEntry(
        path=path,
        size=copied.size,
        sha256=copied.sha256,
        mode=stat.S_IMODE(info.st_mode),
        mtime_ns=info.st_mtime_ns,
        ctime_ns=info.st_ctime_ns,
        ino=info.st_ino,
        dev=info.st_dev,
        bino=copied.target_ino,
    )


def _capture(
    site_root: str,
    relative: str,
    info: os.stat_result,
    target: str,
    parent_dir: str | None,
    parent: FileEntry | None,
    started_ns: int,
) -> FileEntry:
    """Link the file from the parent backup if unchanged, else copy and hash it from the site."""
    if parent_dir is not None and parent is not None and _unchanged(parent, info, started_ns):
        stored_path = parent_dir + relative
        try:
            stored = os.lstat(stored_path)
            replaced = parent.bino and (stored.st_ino != parent.bino or stored.st_mtime_ns != parent.mtime_ns)
            # A chmod of the shared inode (e.g. 000) would make the new backup unreadable too.
            rechmodded = stat.S_IMODE(stored.st_mode) != parent.mode & ~0o222
            if stored.st_size != parent.size or replaced or rechmodded:
                # The parent's copy was truncated, replaced or re-chmodded since it was made: never share it.
                raise FileNotFoundError(errno.ENOENT, "parent copy changed", stored_path)
            os.link(stored_path, target, follow_symlinks=False)
            return parent
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.EMLINK, errno.ENOENT, errno.EPERM) + _PARENT_DAMAGED:
                raise
            # Different filesystem, too many links, or the parent lost the file: copy instead.
            log.debug("%s: cannot link to %s (%s), copying", relative, stored_path, exc.strerror or exc)
    for attempt in range(COPY_RETRIES):
        try:
            # The copy keeps the source's mtime (as cp -a would): a later replacement of it shows.
            copied = copy_and_hash(site_root + relative, target, stat.S_IMODE(info.st_mode) & ~0o222)
            os.utime(target, ns=(copied.source_stat.st_atime_ns, copied.source_stat.st_mtime_ns))
            return _entry(relative, copied)
        except FileChangedError:
            os.unlink(target)
            log.debug("%s: changed while copied (attempt %d of %d)", relative, attempt + 1, COPY_RETRIES)
            if attempt == COPY_RETRIES - 1:
                raise
    raise AssertionError("unreachable")


Item = tuple[str, os.stat_result]
Outcome = FileEntry | str | None  # the entry; a problem to record; None when deleted after the scan


@dataclass
class _Capturer:
    """Captures files into the backup under construction."""

    site_root: str
    tmp: str
    parent_dir: str | None
    parent_index: dict[str, FileEntry]
    started_ns: int

    def one(self, item: Item) -> Outcome:
        """Capture one file: its entry, or a sentence saying why it was left out."""
        relative, info = item
        try:
            parent = self.parent_index.get(relative)
            return _capture(
                self.site_root,
                relative,
                info,
                self.tmp + relative,
                self.parent_dir,
                parent,
                self.started_ns,
            )
        except FileChangedError:
            return f"{relative}: kept changing while it was read ({COPY_RETRIES} attempts)"
        except OSError as exc:
            if exc.filename and str(exc.filename).startswith(self.tmp):
                raise  # a failure writing the backup (full disk, EIO) is fatal, not a skipped site file
            if isinstance(exc, FileNotFoundError):
                return None  # deleted after the scan: simply not part of this backup
            return f"{relative}: cannot be read ({exc.strerror})"


def build_backup(
    site: Site,
    backup_dir: Path,
    categories: list[str],
    description: str,
    tags: list[str],
    parent: tuple[BackupMetadata, Manifest] | None,
    progress: Progress | None = None,
) -> BackupMetadata:
    """Create one backup (the caller holds the lock). Returns its metadata; status PARTIAL if any
    file could not be captured (listed in ``problems``).

    The running system's write lock is held shared throughout, so the scan and the copies see one
    consistent state of the site (never trades without their positions, never a temp file that
    is renamed away half-way).
    """
    with consistent_view(site):
        return _build(site, backup_dir, categories, description, tags, parent, progress)


def _build(  # the body of build_backup, with the site's write lock held
    site: Site,
    backup_dir: Path,
    categories: list[str],
    description: str,
    tags: list[str],
    parent: tuple[BackupMetadata, Manifest] | None,
    progress: Progress | None = None,
) -> BackupMetadata:
    began = time.monotonic()
    now = clock.now()
    started_ns = time.time_ns()
    backup_type = BackupType.for_categories(categories)
    backup_id = new_backup_id(backup_type, now)
    scan = scan_site(site, categories, excluded=[backup_dir])
    if not scan.files and not scan.dirs:
        log.info("backup refused: nothing to back up in %s (%s)", site.root, ", ".join(categories))
        raise nothing_to_back_up(site, categories)
    scan.files.extend(settings_file(site, categories))  # recovery.toml, in every backup (backup/sitefile.py)
    log.info("backup %s: %d files found in %s (%s)", backup_id, len(scan.files), site.root, ", ".join(categories))
    # Paths left out are collected where refused: a problem's text (a name may hold ": ") is never parsed back.
    unsafe: set[str] = set()
    for relative, _ in scan.files:
        try:
            safe_relative(relative)
        except UnsafePathError as exc:
            unsafe.add(relative)
            scan.problems.append(f"{relative!r}: {exc}")
        if relative in RESERVED:
            unsafe.add(relative)
            scan.problems.append(f"{relative}: name is reserved by the backup format")
    files = [(rel, info) for rel, info in scan.files if rel not in unsafe]

    tmp = backup_dir / f"{TMP_PREFIX}{backup_id}"
    tmp.mkdir(parents=True)
    try:
        for directory in scan.dirs:
            (tmp / directory).mkdir(parents=True, exist_ok=True)
        # Files the walk did not reach (declared file paths, recovery.toml) may need a parent of their own.
        for folder in {relative.rpartition("/")[0] for relative, _ in files} - {"", *scan.dirs}:
            (tmp / folder).mkdir(parents=True, exist_ok=True)
        log.info("backup %s: unchanged files are linked to %s", backup_id, parent[0].backup_id if parent else "none")
        linked = bytes_new = 0
        capture = _Capturer(
            site_root=f"{site.root}/",
            tmp=f"{tmp}/",
            parent_dir=f"{backup_dir / parent[0].backup_id}/" if parent else None,
            parent_index=parent[1].by_path() if parent else {},
            started_ns=started_ns,
        )
        total = sum(info.st_size for _, info in files)
        done = 0
        entries: list[FileEntry] = []
        for (_, info), outcome in map_in_batches(capture.one, files, lambda item: item[1].st_size):
            if isinstance(outcome, str):
                scan.problems.append(outcome)
            elif outcome is not None:
                entries.append(outcome)
                # A linked file's entry is its parent's own object; anything else was copied.
                if outcome is capture.parent_index.get(outcome.path):
                    linked += 1
                else:
                    bytes_new += outcome.size
            done += info.st_size
            if progress:
                progress(done, total)

        sync_filesystem(tmp)  # every file durable before anything claims the backup is complete
        manifest = Manifest(
            categories=manifest_categories(site, categories, entries),
            files=entries,
            dirs=scan.dirs,
            absent=scan.absent,
        )
        manifest_bytes = manifest.to_json()
        manifest_sha = hashlib.sha256(manifest_bytes).hexdigest()
        sums = render_sums(manifest, manifest_sha)
        write_file(tmp / MANIFEST, manifest_bytes)
        write_file(tmp / SUMS, sums)
        metadata = BackupMetadata(
            backup_id=backup_id,
            backup_type=backup_type,
            created_at=clock.iso(now),
            status=BackupStatus.PARTIAL if scan.problems else BackupStatus.SUCCESS,
            files_count=len(entries),
            size_bytes=sum(entry.size for entry in entries),
            description=description,
            tags=list(tags),
            categories=list(categories),
            parent_id=parent[0].backup_id if parent else None,
            host=socket.gethostname(),
            site_name=site.name,
            manifest_sha256=manifest_sha,
            sums_sha256=hashlib.sha256(sums).hexdigest(),
            bytes_new=bytes_new,
            files_linked=linked,
            duration_s=round(time.monotonic() - began, 3),
            problems=scan.problems,
        )
        write_file(tmp / METADATA, metadata.to_json())  # last: its presence means "complete"
        for directory in sorted(scan.dirs, key=len, reverse=True):
            os.chmod(tmp / directory, 0o555)
        os.chmod(tmp, 0o555)  # renaming within backup_dir needs write permission on backup_dir only
        fsync_dir(tmp)
        os.rename(tmp, backup_dir / backup_id)
    except BaseException:
        log.warning("backup %s: failed, its temporary directory %s is removed", backup_id, tmp)
        make_writable_tree(tmp)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        fsync_dir(backup_dir)
    except OSError as exc:
        raise BackupError(
            f"backup {backup_id} was stored, but syncing {backup_dir} failed ({exc.strerror}): after a power "
            "loss it might be missing. Check the disk, then verify it with `recovery backup verify`."
        ) from exc
    for problem in scan.problems:
        log.warning("backup %s: left out %s", backup_id, problem)
    log.info("backup %s: stored in %s as %s", backup_id, backup_dir, metadata.status.value)
    return metadata


def categories_from_flags(include_config: bool, include_state: bool, include_data: bool) -> list[str]:
    """The categories a create_backup call asks for, in canonical order."""
    chosen = [c for c, wanted in zip(CATEGORIES, (include_config, include_state, include_data), strict=True) if wanted]
    if not chosen:
        raise BackupError("nothing to back up: include at least one of config, state, data")
    return chosen
