"""A replica in a directory (``file:///mnt/backupdisk/peak-trade``): a second disk or an NFS mount.

Writes go through :func:`~recovery_lib.fsops.atomic.atomic_writer` (a hidden temp name, fsync, rename,
fsync the directory) and leave each object read-only. The location is created on the first write only
when its parent exists: a missing parent is an unmounted disk, and creating the path would silently
fill the root disk instead.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import stat as stat_mode
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from recovery_lib.errors import ReplicaDamaged, ReplicaError, ReplicaUnreachable
from recovery_lib.fsops.atomic import atomic_writer, fsync_dir
from recovery_lib.replica.transport import StoredObject, check_key
from recovery_lib.site.replicas import ReplicaSpec

log = logging.getLogger(__name__)

CHUNK = 1 << 20


def copy_limited(read: Callable[[int], bytes], out: BinaryIO, *, expected: int, max_size: int, where: str) -> int:
    """Copy from ``read`` to ``out`` until EOF; ReplicaDamaged when more than ``max_size`` or not ``expected`` bytes.

    Shared by the transports: a store that lies about a size, or grows an object while we read it,
    can never make us write more than ``max_size`` bytes.
    """
    copied = 0
    while chunk := read(CHUNK):
        copied += len(chunk)
        if copied > max_size:
            raise ReplicaDamaged(f"{where} is more than the {max_size} bytes expected; refusing it")
        out.write(chunk)
    if copied != expected:
        raise ReplicaDamaged(
            f"{where}: received {copied} bytes but the store said {expected}; the object is truncated or changing. "
            "Run `recovery replica verify` and push again."
        )
    return copied


def open_source(source: Path) -> tuple[BinaryIO, int]:
    """``source`` opened for an upload, and its size then; every transport reads local files through here."""
    reader = open(source, "rb")  # noqa: SIM115 - the caller closes it
    return reader, os.fstat(reader.fileno()).st_size


def send_all(reader: BinaryIO, write: Callable[[bytes], object], size: int, where: str) -> None:
    """Copy a local file opened by :func:`open_source` to ``write``; ReplicaError if it changed size meanwhile."""
    sent = 0
    while chunk := reader.read(CHUNK):
        write(chunk)
        sent += len(chunk)
    if sent != size:
        raise ReplicaError(
            f"{where}: the local file changed size while it was sent ({size} bytes, then {sent}); nothing was "
            "stored under that key. Backup files never change: check what else writes to the backup directory."
        )


def refuse_oversize(size: int, max_size: int, where: str) -> None:
    """ReplicaDamaged when an object of ``size`` bytes is larger than the caller expects."""
    if size > max_size:
        raise ReplicaDamaged(
            f"{where} is {size} bytes, more than the {max_size} expected; refusing to read it "
            "(a wrong or hostile object). Run `recovery replica verify` on this replica."
        )


def download(target: Path, get: Callable[[BinaryIO], int]) -> int:
    """Run ``get`` into the new file ``target``; on any failure the partial file is removed."""
    try:
        with open(target, "wb") as out:
            return get(out)
    except BaseException:
        remove_partial(target)
        raise


def read_all(get: Callable[[BinaryIO], int]) -> bytes:
    """What ``get`` writes, in memory (bounded by its own ``max_size``)."""
    out = io.BytesIO()
    get(out)
    return out.getvalue()


def remove_partial(target: Path) -> None:
    """Delete a half-written download so nobody mistakes it for a whole one."""
    with contextlib.suppress(FileNotFoundError):
        target.unlink()


class FileTransport:
    """A replica in the absolute directory ``spec.location``."""

    parallel = 4  # transfers at once (fsyncs overlap)

    def __init__(self, spec: ReplicaSpec) -> None:
        self.spec = spec
        self.root = Path(spec.location)
        self.description = f"replica {spec.name!r} ({self.root})"

    # --- paths ------------------------------------------------------------------------------------

    def _where(self, key: str) -> str:
        return f"{self.description}: {key}"

    def _reachable(self) -> bool:
        """Whether the location exists; ReplicaUnreachable when even its parent is missing (not mounted)."""
        if self.root.is_dir():
            return True
        if not self.root.parent.is_dir():
            raise ReplicaUnreachable(
                f"{self.description}: {self.root.parent} does not exist: is the disk mounted? "
                f"Mount it (or create {self.root.parent}), then run the command again; nothing was written."
            )
        if self.root.exists() or self.root.is_symlink():
            raise ReplicaUnreachable(f"{self.description}: {self.root} exists but is not a directory; fix the url.")
        return False

    def _path(self, key: str) -> Path:
        """The file for ``key``; ReplicaDamaged when a directory on the way is a symlink (it could lead outside)."""
        check_key(key, self.description)
        current = self.root
        for part in key.split("/")[:-1]:
            current = current / part
            if current.is_symlink() or (current.exists() and not current.is_dir()):
                raise ReplicaDamaged(
                    f"{self._where(key)}: {current} is a symlink or not a directory; this tool never makes one. "
                    "Someone changed the replica: inspect it, then remove that entry."
                )
        return self.root / key

    def _make_dirs(self, key: str) -> Path:
        """Create the location (when its parent exists) and the key's directories, each made durable."""
        if not self._reachable():
            with contextlib.suppress(FileExistsError):
                self.root.mkdir()
                fsync_dir(self.root.parent)
        path = self._path(key)
        current = self.root
        for part in key.split("/")[:-1]:
            parent, current = current, current / part
            if not current.is_dir():
                with contextlib.suppress(FileExistsError):
                    current.mkdir()
                    fsync_dir(parent)  # the new directory's entry survives a crash with the object under it
        return path

    def _regular(self, key: str) -> os.stat_result | None:
        """lstat of ``key``'s file; None when absent; ReplicaDamaged when it is a symlink or not a regular file."""
        path = self._path(key)
        try:
            info = path.lstat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        if stat_mode.S_ISDIR(info.st_mode):
            return None  # a directory holds objects; it is not one (as a prefix in S3)
        if not stat_mode.S_ISREG(info.st_mode):
            raise ReplicaDamaged(
                f"{self._where(key)} is a symlink or not a regular file; this tool never writes one. "
                "Someone changed the replica: inspect it and remove that entry."
            )
        return info

    # --- the Transport protocol -------------------------------------------------------------------

    def stat(self, key: str) -> StoredObject | None:
        """The object at ``key``, or None."""
        if not self._reachable():
            return None
        info = self._regular(key)
        return None if info is None else StoredObject(key=key, size=info.st_size)

    def list(self, prefix: str) -> Iterator[StoredObject]:
        """Every object whose key starts with ``prefix``; temp names (starting with ``.``) are skipped.

        Symlinks and other non-regular entries are listed too (with their own size), so that reading
        them reports the damage by name instead of hiding it.
        """
        if not self._reachable():
            return
        base = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        start = self.root / check_key(base, self.description) if base else self.root
        if start.is_symlink() or not start.is_dir():
            return
        for directory, dirs, files in os.walk(start):  # does not follow symlinked directories
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            relative = Path(directory).relative_to(self.root).as_posix()
            for name in files + [d for d in dirs if (Path(directory) / d).is_symlink()]:
                key = name if relative == "." else f"{relative}/{name}"
                if name.startswith(".") or not key.startswith(prefix):
                    continue
                try:
                    check_key(key, self.description)
                    info = (Path(directory) / name).lstat()
                except (ReplicaDamaged, FileNotFoundError):
                    continue  # not a name this tool writes, or deleted while we walked
                yield StoredObject(key=key, size=info.st_size)

    def put_file(self, key: str, source: Path, *, retain_until: datetime | None = None) -> None:
        """Copy ``source`` to ``key`` atomically and read-only. ``retain_until`` has no meaning on a directory."""
        path = self._make_dirs(key)
        reader, size = open_source(source)
        with reader, atomic_writer(path, readonly=True) as out:
            send_all(reader, out.write, size, self._where(key))
        log.debug("%s: stored %s", self.description, key)

    def put_bytes(self, key: str, data: bytes, *, retain_until: datetime | None = None) -> None:
        """Store ``data`` at ``key`` atomically and read-only."""
        path = self._make_dirs(key)
        with atomic_writer(path, readonly=True) as out:
            out.write(data)

    def _open(self, key: str) -> tuple[BinaryIO, int]:
        """``key`` opened without following a symlink, and its size; ReplicaDamaged when missing or not regular."""
        if not self._reachable():
            raise self._missing(key)
        try:
            fd = os.open(self._path(key), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)  # a FIFO must not block us
        except (FileNotFoundError, NotADirectoryError):
            raise self._missing(key) from None
        except OSError as exc:  # ELOOP: a symlink
            raise ReplicaDamaged(f"{self._where(key)} cannot be read as a regular file ({exc.strerror}).") from None
        reader = os.fdopen(fd, "rb")
        info = os.fstat(fd)
        if not stat_mode.S_ISREG(info.st_mode):
            reader.close()
            raise ReplicaDamaged(f"{self._where(key)} is not a regular file; this tool never writes one.")
        return reader, info.st_size

    def get_file(self, key: str, target: Path, *, max_size: int) -> int:
        """Copy ``key`` into ``target``; ReplicaDamaged when missing, not a regular file, or over ``max_size``."""
        reader, size = self._open(key)
        with reader:
            refuse_oversize(size, max_size, self._where(key))
            try:
                with open(target, "wb") as out:
                    return copy_limited(reader.read, out, expected=size, max_size=max_size, where=self._where(key))
            except BaseException:
                remove_partial(target)
                raise

    def get_bytes(self, key: str, *, max_size: int) -> bytes:
        """The content of ``key`` (same refusals as :meth:`get_file`)."""
        reader, size = self._open(key)
        with reader:
            refuse_oversize(size, max_size, self._where(key))
            out = io.BytesIO()
            copy_limited(reader.read, out, expected=size, max_size=max_size, where=self._where(key))
            return out.getvalue()

    def delete(self, key: str) -> None:
        """Remove ``key`` (absent is fine) and the directories it leaves empty."""
        if not self._reachable():
            return
        path = self._path(key)
        try:
            path.unlink()
        except FileNotFoundError:
            return
        fsync_dir(path.parent)
        parent = path.parent
        while parent != self.root:
            try:
                parent.rmdir()
            except OSError:  # not empty (or already gone): stop
                break
            parent = parent.parent

    def extend_retention(self, key: str, until: datetime) -> None:
        """Nothing to do: only S3 Object Lock keeps objects from being deleted."""
        check_key(key, self.description)

    def close(self) -> None:
        """Nothing to release."""

    def _missing(self, key: str) -> ReplicaDamaged:
        return ReplicaDamaged(
            f"{self._where(key)} is missing from the replica. Run `recovery replica verify`; "
            "`recovery replica push` uploads what a backup lacks."
        )
