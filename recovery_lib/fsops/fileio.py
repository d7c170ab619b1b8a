"""Copying and hashing files in one pass, and making them durable with one sync.

Hashing happens while the bytes pass through (never a second read), and durability comes from
one ``syncfs`` per backup or restore instead of an fsync per file; the caller writes its
"this is complete" marker (metadata, journal) only after that sync.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import hashlib
import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from recovery_lib.errors import FileChangedError

log = logging.getLogger(__name__)

CHUNK = 1 << 20  # 1 MiB: large enough for hashlib to release the GIL and for few syscalls


@dataclass(frozen=True)
class Copied:
    """A file copied and hashed: its digest, size and the source's stat before reading."""

    sha256: str
    size: int
    source_stat: os.stat_result


def _same_version(before: os.stat_result, after: os.stat_result) -> bool:
    return (before.st_size, before.st_mtime_ns, before.st_ctime_ns, before.st_ino) == (
        after.st_size,
        after.st_mtime_ns,
        after.st_ctime_ns,
        after.st_ino,
    )


def _retarget(call, path: Path, *args: object) -> None:  # noqa: ANN001
    """Run an os call on the target, making sure an error names the target file."""
    try:
        call(*args)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(path)) from exc


def _write_all(fd: int, data: memoryview, path: Path) -> None:
    written = 0
    while written < len(data):
        try:
            written += os.write(fd, data[written:])
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, str(path)) from exc


def copy_and_hash(source: Path, target: Path, mode: int) -> Copied:
    """Copy ``source`` to the new file ``target`` (created with ``mode``), hashing on the way.

    Raises :class:`FileChangedError` if the source changed during the copy, ``OSError`` otherwise.
    """
    digest = hashlib.sha256()
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    size = 0
    source_fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        before = os.fstat(source_fd)
        if not stat.S_ISREG(before.st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(source))
        target_fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            with open(source_fd, "rb", buffering=0, closefd=False) as reader:
                while True:
                    try:
                        count = reader.readinto(buffer)
                    except OSError as exc:
                        raise OSError(exc.errno, exc.strerror, str(source)) from exc
                    if not count:
                        break
                    chunk = view[:count]
                    digest.update(chunk)
                    _write_all(target_fd, chunk, target)
                    size += count
            _retarget(os.fchmod, target, target_fd, mode)
        finally:
            os.close(target_fd)
        after = os.fstat(source_fd)
    finally:
        os.close(source_fd)
    if not _same_version(before, after) or size != before.st_size:
        raise FileChangedError(f"{source} changed while it was being copied")
    return Copied(digest.hexdigest(), size, before)


def hash_file(path: Path) -> tuple[str, int]:
    """sha256 and size of a file, read once, never following a symlink."""
    digest = hashlib.sha256()
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    size = 0
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with open(fd, "rb", buffering=0) as reader:
        while True:
            count = reader.readinto(buffer)
            if not count:
                break
            digest.update(view[:count])
            size += count
    return digest.hexdigest(), size


_libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)


def sync_filesystem(path: Path) -> None:
    """Flush every dirty page of the filesystem holding ``path`` (syncfs; sync where unavailable)."""
    syncfs = getattr(_libc, "syncfs", None)
    if syncfs is None:
        os.sync()
        return
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if syncfs(fd) != 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code), str(path))
    finally:
        os.close(fd)


def write_file(path: Path, data: bytes, mode: int = 0o444) -> None:
    """Create ``path`` (which must not exist) with ``data``, fsynced, with ``mode``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        _write_all(fd, memoryview(data), path)
        _retarget(os.fsync, path, fd)
        _retarget(os.fchmod, path, fd, mode)
    finally:
        os.close(fd)


def make_writable_tree(root: Path) -> None:
    """Give the owner write permission on every directory below ``root`` so it can be removed."""
    if not root.exists() or root.is_symlink():
        return
    log.debug("making %s writable (to remove it)", root)
    for folder, dirs, _ in os.walk(root):
        os.chmod(folder, stat.S_IMODE(os.lstat(folder).st_mode) | stat.S_IWUSR | stat.S_IXUSR)
        for name in dirs:
            child = os.path.join(folder, name)
            if not os.path.islink(child):
                os.chmod(child, stat.S_IMODE(os.lstat(child).st_mode) | stat.S_IWUSR | stat.S_IXUSR)
