"""Verification of a backup directory: structure quickly, contents fully with ``read_data``.

Every problem names the file and what is wrong (missing, extra, size, hash, unreadable, symlink,
manifest / SHA256SUMS / metadata edited). A backup that does not verify is never restored from.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from recovery_lib.backup.model import (
    MANIFEST,
    METADATA,
    SUMS,
    BackupError,
    BackupMetadata,
    BackupStatus,
    FileEntry,
    Manifest,
    parse_manifest,
    read_metadata,
    render_sums,
)
from recovery_lib.fsops.batches import map_in_batches
from recovery_lib.fsops.fileio import hash_fd, open_for_reading
from recovery_lib.rendering import name_all

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one file of a backup."""

    path: str
    kind: str  # missing | extra | size | hash | unreadable | symlink | manifest | sums | metadata
    detail: str

    def __str__(self) -> str:
        return f"{self.path}: {self.kind}: {self.detail}"


@dataclass
class VerifyReport:
    """``ok`` when no problem was found; ``read_data`` says whether contents were hashed."""

    backup_id: str
    read_data: bool
    problems: list[Problem] = field(default_factory=list)
    files_checked: int = 0
    bytes_read: int = 0
    metadata: BackupMetadata | None = None
    manifest: Manifest | None = None

    @property
    def ok(self) -> bool:
        """True when the backup is intact."""
        return not self.problems

    @property
    def partial(self) -> bool:
        """The backup was stored PARTIAL (intact as stored, but never restored from)."""
        return self.metadata is not None and self.metadata.status is BackupStatus.PARTIAL

    def summary(self) -> str:
        """One line for a person."""
        depth = "contents hashed" if self.read_data else "structure only"
        if self.ok and self.partial:
            missing = len(self.metadata.problems) if self.metadata else 0
            return (
                f"{self.backup_id}: OK as stored, but PARTIAL: {missing} file(s) were never captured, so it is "
                f"never restored from ({self.files_checked} files, {depth})"
            )
        if self.ok:
            return f"{self.backup_id}: OK ({self.files_checked} files, {depth})"
        named = name_all([str(p) for p in self.problems], [f"{p.kind} problem(s)" for p in self.problems])
        return f"{self.backup_id}: {len(self.problems)} problem(s): {named}"


def _read_checked(path: Path, report: VerifyReport, kind: str) -> bytes | None:
    try:
        info = os.lstat(path)
        if stat.S_ISLNK(info.st_mode):
            report.problems.append(Problem(path.name, "symlink", "is a symlink, not the backup's own file"))
            return None
        return path.read_bytes()
    except FileNotFoundError:
        report.problems.append(Problem(path.name, "missing", f"{path.name} is missing"))
    except OSError as exc:
        report.problems.append(Problem(path.name, "unreadable", exc.strerror or str(exc)))
    return None


def verify_backup_dir(
    backup_path: Path,
    read_data: bool = True,
    progress: Callable[[int, int], None] | None = None,
    hash_only: Callable[[str], bool] | None = None,
    tree: bool = True,
) -> VerifyReport:
    """Check a backup directory against its own metadata, manifest and SHA256SUMS.

    ``hash_only`` limits the content hashing to the files it accepts (a restore hashes the files it
    restores while staging them, so it reads each backup file once). The structure (every file
    present, none extra, sizes) is checked unless ``tree`` is False: then only the three documents
    are, for a parent of a new backup, which checks each file it links as it links it.
    """
    report = VerifyReport(backup_id=backup_path.name, read_data=read_data)
    try:
        metadata = read_metadata(backup_path)
    except BackupError as exc:
        report.problems.append(Problem(METADATA, "metadata", str(exc)))
        return _logged(report)
    report.metadata = metadata
    if metadata.checksum != metadata.compute_checksum():
        report.problems.append(Problem(METADATA, "metadata", "edited after the backup was made (checksum mismatch)"))
    if metadata.backup_id != backup_path.name:
        report.problems.append(
            Problem(METADATA, "metadata", f"names backup {metadata.backup_id!r}, directory is {backup_path.name!r}")
        )
    manifest_bytes = _read_checked(backup_path / MANIFEST, report, "manifest")
    sums_bytes = _read_checked(backup_path / SUMS, report, "sums")
    if manifest_bytes is None:
        return _logged(report)
    manifest_sha = hashlib.sha256(manifest_bytes).hexdigest()
    if manifest_sha != metadata.manifest_sha256:
        report.problems.append(Problem(MANIFEST, "manifest", "edited after the backup was made (sha256 mismatch)"))
    try:
        manifest = parse_manifest(manifest_bytes, f"{backup_path.name}/{MANIFEST}")
    except BackupError as exc:
        report.problems.append(Problem(MANIFEST, "manifest", str(exc)))
        return _logged(report)
    report.manifest = manifest
    if sums_bytes is not None and (
        hashlib.sha256(sums_bytes).hexdigest() != metadata.sums_sha256
        or sums_bytes != render_sums(manifest, manifest_sha)
    ):
        report.problems.append(Problem(SUMS, "sums", "SHA256SUMS does not match the manifest (edited)"))
    if metadata.files_count != len(manifest.files):
        report.problems.append(
            Problem(METADATA, "metadata", f"says {metadata.files_count} files, manifest lists {len(manifest.files)}")
        )
    hashed = [e for e in manifest.files if hash_only is None or hash_only(e.path)] if read_data else []
    if tree:
        _check_listing(backup_path, manifest, report)
        # A file that is hashed has its type and size checked on its open descriptor; the rest by lstat.
        hashed_paths = {e.path for e in hashed} if len(hashed) < len(manifest.files) else None
        rest = [e for e in manifest.files if e.path not in hashed_paths] if hashed_paths is not None else []
        _check_entries(backup_path, rest, report)
    if read_data:
        _check_contents(backup_path, hashed, report, progress)
    report.files_checked = len(manifest.files)
    return _logged(report)


def verify_documents(backup_path: Path) -> VerifyReport:
    """metadata.json, manifest.json and SHA256SUMS of a backup, not its files: enough for the parent of a
    new backup, which checks each file it links as it links it (backup/create.py)."""
    return verify_backup_dir(backup_path, read_data=False, tree=False)


def _logged(report: VerifyReport) -> VerifyReport:
    if report.ok:
        log.info("verified %s (%s)", report.backup_id, "contents hashed" if report.read_data else "structure")
    else:
        log.warning("backup %s is damaged: %s", report.backup_id, "; ".join(map(str, report.problems[:3])))
    return report


def _check_listing(backup_path: Path, manifest: Manifest, report: VerifyReport) -> None:
    """Directories and files present in the backup but not in the manifest, and symlinked directories."""
    expected = {entry.path for entry in manifest.files}
    expected_dirs = set(manifest.dirs)
    for parent in {path.rpartition("/")[0] for path in expected} - {""}:  # a few hundred folders
        parts = parent.split("/")
        expected_dirs.update("/".join(parts[:i]) for i in range(1, len(parts) + 1))
    for folder, dirs, files in os.walk(backup_path):
        relative_folder = Path(folder).relative_to(backup_path).as_posix()
        prefix = "" if relative_folder == "." else relative_folder + "/"
        for name in list(dirs):
            relative = prefix + name
            if os.path.islink(os.path.join(folder, name)):
                report.problems.append(Problem(relative, "symlink", "a symlink inside the backup"))
                dirs.remove(name)
            elif relative not in expected_dirs:
                report.problems.append(Problem(relative + "/", "extra", "directory not in the manifest"))
        for name in files:
            relative = prefix + name
            if not prefix and name in (METADATA, MANIFEST, SUMS):
                continue
            if relative not in expected:
                report.problems.append(Problem(relative, "extra", "file not in the manifest"))


def _check_entries(backup_path: Path, entries: list[FileEntry], report: VerifyReport) -> None:
    """Each listed file present, a regular file (not a symlink) of the manifest's size: by lstat."""
    root = f"{backup_path}/"
    for entry in entries:
        try:
            info = os.lstat(root + entry.path)
        except FileNotFoundError:
            report.problems.append(Problem(entry.path, "missing", MISSING))
            continue
        except OSError as exc:
            report.problems.append(Problem(entry.path, "unreadable", exc.strerror or str(exc)))
            continue
        if problem := _wrong_kind_or_size(entry, info):
            report.problems.append(problem)


MISSING = "listed in the manifest, absent from the backup"


def _wrong_kind_or_size(entry: FileEntry, info: os.stat_result) -> Problem | None:
    if stat.S_ISLNK(info.st_mode):
        return Problem(entry.path, "symlink", "replaced by a symlink")
    if not stat.S_ISREG(info.st_mode):
        return Problem(entry.path, "missing", "not a regular file")
    if info.st_size != entry.size:
        return Problem(entry.path, "size", f"{info.st_size} bytes, manifest says {entry.size}")
    return None


def _digest(root: str, entry: FileEntry) -> tuple[str, int] | Problem:
    """The hash of one backup file, or what is wrong with it (checked on the open descriptor first)."""
    try:
        fd = open_for_reading(root + entry.path)
    except FileNotFoundError:
        return Problem(entry.path, "missing", MISSING)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # O_NOFOLLOW met a symlink
            return Problem(entry.path, "symlink", "replaced by a symlink")
        return Problem(entry.path, "unreadable", exc.strerror or str(exc))
    try:
        info = os.fstat(fd)
        if problem := _wrong_kind_or_size(entry, info):
            return problem
        return hash_fd(fd, info.st_size)
    except OSError as exc:
        return Problem(entry.path, "unreadable", exc.strerror or str(exc))
    finally:
        os.close(fd)


def _check_contents(
    backup_path: Path,
    entries: list[FileEntry],
    report: VerifyReport,
    progress: Callable[[int, int], None] | None,
) -> None:
    total = sum(entry.size for entry in entries)
    root = f"{backup_path}/"
    done = 0
    for entry, outcome in map_in_batches(partial(_digest, root), entries, lambda e: e.size):
        if isinstance(outcome, Problem):
            report.problems.append(outcome)
            continue
        sha, size = outcome
        report.bytes_read += size
        if sha != entry.sha256:
            report.problems.append(Problem(entry.path, "hash", "contents differ from the manifest (corrupted)"))
        done += entry.size
        if progress:
            progress(done, total)
