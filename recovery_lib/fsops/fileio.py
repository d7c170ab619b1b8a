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
import threading
from dataclasses import dataclass
from pathlib import Path

from recovery_lib.errors import FileChangedError

log = logging.getLogger(__name__)

CHUNK = 1 << 20  # 1 MiB: large enough for hashlib to release the GIL and for few syscalls


@dataclass(frozen=True)
class Copied:
    """A file copied and hashed: its digest, size, the source's stat before reading, and the inode of
    the copy."""

    sha256: str
    size: int
    source_stat: os.stat_result
    target_ino: int = 0


_buffers = threading.local()


def _buffer() -> tuple[bytearray, memoryview]:
    """This thread's 1 MiB read buffer: allocated once, not once per file (at 20,000 small files,
    zeroing a fresh megabyte per file cost more than reading them)."""
    pair = getattr(_buffers, "pair", None)
    if pair is None:
        buffer = bytearray(CHUNK)
        pair = _buffers.pair = (buffer, memoryview(buffer))
    return pair


def _same_version(before: os.stat_result, after: os.stat_result) -> bool:
    return (before.st_size, before.st_mtime_ns, before.st_ctime_ns, before.st_ino) == (
        after.st_size,
        after.st_mtime_ns,
        after.st_ctime_ns,
        after.st_ino,
    )


def _retarget(call, path: Path | str, *args: object) -> None:  # noqa: ANN001
    """Run an os call on the target, making sure an error names the target file."""
    try:
        call(*args)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(path)) from exc


def _write_all(fd: int, data: memoryview, path: Path | str) -> None:
    written = 0
    while written < len(data):
        try:
            written += os.write(fd, data[written:])
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, str(path)) from exc


def copy_and_hash(source: Path | str, target: Path | str, mode: int) -> Copied:
    """Copy ``source`` to the new file ``target`` (created with ``mode``), hashing on the way.

    Raises :class:`FileChangedError` if the source changed during the copy, ``OSError`` otherwise.
    """
    digest = hashlib.sha256()
    buffer, view = _buffer()
    size = 0
    source_fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        before = os.fstat(source_fd)
        if not stat.S_ISREG(before.st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(source))
        target_fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            # Read until the size fstat gave, not until an empty read: one system call fewer per small
            # file. A file that grew meanwhile has another size or mtime below and is copied again.
            while size < before.st_size:
                try:
                    count = os.readv(source_fd, [buffer])
                except OSError as exc:
                    raise OSError(exc.errno, exc.strerror, str(source)) from exc
                if not count:
                    break  # truncated while read: the check below reports it
                chunk = view[:count]
                digest.update(chunk)
                _write_all(target_fd, chunk, target)
                size += count
            _retarget(os.fchmod, target, target_fd, mode)
            target_ino = os.fstat(target_fd).st_ino
        finally:
            os.close(target_fd)
        after = os.fstat(source_fd)
    finally:
        os.close(source_fd)
    if not _same_version(before, after) or size != before.st_size:
        raise FileChangedError(f"{source} changed while it was being copied")
    return Copied(digest.hexdigest(), size, before, target_ino)


def hash_file(path: Path | str) -> tuple[str, int]:
    """sha256 and size of a file, read once, never following a symlink."""
    fd = open_for_reading(path)
    try:
        return hash_fd(fd, os.fstat(fd).st_size)
    finally:
        os.close(fd)


def open_for_reading(path: Path | str) -> int:
    """A descriptor to read ``path``: never through a symlink (``ELOOP``), and never blocking on a FIFO
    or device planted where a file should be (the caller checks the fstat before reading)."""
    return os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)


def hash_fd(fd: int, expected_size: int) -> tuple[str, int]:
    """sha256 and size of what ``fd`` holds from its offset to the end."""
    digest = hashlib.sha256()
    buffer, view = _buffer()
    size = 0
    while True:
        count = os.readv(fd, [buffer])
        if not count:
            break
        digest.update(view[:count])
        size += count
        if count < CHUNK and size >= expected_size:
            break  # a short read at the expected size is the end: no extra empty read per small file
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
