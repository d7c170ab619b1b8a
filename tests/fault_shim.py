"""A shim over the filesystem calls recovery_lib makes: count them, fail the k-th, or SIGKILL there.

Every operation recovery_lib uses to change the disk is wrapped, grouped as the issue names them:
open for writing, write, fsync (including ``syncfs``), link, rename/replace, unlink, rmtree, chmod,
and mkdir. ``shutil.rmtree`` counts once: calls made *inside* a wrapped call (rmtree's own unlinks,
``os.fdopen``'s open) are not counted again, so "the k-th rmtree" means what it says.

Used as a context manager around one library call::

    shim = FaultShim(fail=("rename", 3), errno_=errno.ENOSPC)
    with shim:
        manager.create_backup()
    shim.fired  # the call that failed, or None if the operation finished first

Patching the ``os``, ``shutil`` and ``io`` module attributes reaches every caller, because
recovery_lib (and pathlib, tempfile) call them as ``os.rename(...)``; nothing is patched outside
the ``with`` block.
"""

from __future__ import annotations

import builtins
import errno
import io
import os
import shutil
import signal
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from recovery_lib.fsops import fileio

# The filesystem operations, and the functions that perform each.
OPERATIONS: dict[str, tuple[tuple[Any, str], ...]] = {
    "open-write": ((os, "open"), (io, "open"), (builtins, "open")),
    "write": ((os, "write"), (os, "pwrite"), (os, "ftruncate")),  # file objects: _CountedFile
    "fsync": ((os, "fsync"), (os, "fdatasync"), (fileio, "_libc")),
    "link": ((os, "link"),),
    "rename": ((os, "rename"), (os, "replace")),
    "unlink": ((os, "unlink"), (os, "remove"), (os, "rmdir")),
    "rmtree": ((shutil, "rmtree"),),
    "chmod": ((os, "chmod"), (os, "fchmod")),
    "mkdir": ((os, "mkdir"),),
}
ERRNOS = (errno.EIO, errno.ENOSPC, errno.EACCES)
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def _writes(mode: object) -> bool:
    return isinstance(mode, str) and any(flag in mode for flag in "wax+")


@dataclass
class Fired:
    """The call that was failed or killed at: operation, its number, the function and the path."""

    operation: str
    k: int
    function: str
    path: str | None

    def __str__(self) -> str:
        return f"{self.operation} #{self.k} ({self.function} {self.path or ''})".rstrip()


class FaultShim:
    """Count filesystem calls by operation; fail (``OSError``) or SIGKILL at ``(operation, k)``.

    ``kill_after`` kills after the k-th call completed instead of before it, so a crash can land
    between a rename and the fsync that makes it durable.
    """

    def __init__(
        self,
        fail: tuple[str, int] | None = None,
        errno_: int = errno.EIO,
        kill: bool = False,
        kill_after: bool = False,
    ) -> None:
        if fail is not None and fail[0] not in OPERATIONS:
            raise ValueError(f"unknown operation {fail[0]!r}; one of {', '.join(OPERATIONS)}")
        self.fail = fail
        self.errno = errno_
        self.kill = kill
        self.kill_after = kill_after
        self.counts: Counter[str] = Counter()
        self.fired: Fired | None = None
        self._guard = threading.Lock()
        self._local = threading.local()
        self._saved: list[tuple[Any, str, Any]] = []

    # --- the decision, made once per counted call ------------------------------------------

    def _count(self, operation: str, function: str, path: object) -> Fired | None:
        with self._guard:
            self.counts[operation] += 1
            k = self.counts[operation]
            if self.fail == (operation, k) and self.fired is None:
                self.fired = Fired(operation, k, function, None if path is None else os.fsdecode(path))
                return self.fired
        return None

    def _act_before(self, fired: Fired) -> None:
        if self.kill and not self.kill_after:
            os.kill(os.getpid(), signal.SIGKILL)
        if not self.kill:
            raise OSError(self.errno, os.strerror(self.errno), fired.path)

    def _act_after(self) -> None:
        if self.kill and self.kill_after:
            os.kill(os.getpid(), signal.SIGKILL)

    def call(self, operation: str, function: str, real: Callable[..., Any], path: object, *args: Any, **kw: Any) -> Any:
        """Run ``real`` as one counted call of ``operation``; nested calls inside it are not counted."""
        if getattr(self._local, "depth", 0):
            return real(*args, **kw)
        fired = self._count(operation, function, path)
        if fired is not None:
            self._act_before(fired)
        self._local.depth = 1
        try:
            result = real(*args, **kw)
        finally:
            self._local.depth = 0
        if fired is not None:
            self._act_after()
        return result

    # --- wrappers ----------------------------------------------------------------------------

    def _wrap(self, operation: str, owner: Any, name: str, real: Any) -> Any:
        shim = self
        if owner is fileio:  # the libc handle: only its syncfs is a counted call
            return _CountedLibc(shim, real)
        if name == "open" and owner is os:

            def os_open(path: Any, flags: int, *args: Any, **kw: Any) -> Any:
                if flags & _WRITE_FLAGS:
                    return shim.call(operation, "os.open", real, path, path, flags, *args, **kw)
                return real(path, flags, *args, **kw)

            return os_open
        if name == "open":

            def io_open(file: Any, mode: str = "r", *args: Any, **kw: Any) -> Any:
                if not _writes(mode):
                    return real(file, mode, *args, **kw)
                path = file if not isinstance(file, int) else None
                handle = shim.call(operation, "open", real, path, file, mode, *args, **kw)
                return _CountedFile(shim, handle, path)

            return io_open

        def wrapper(*args: Any, **kw: Any) -> Any:
            path = args[0] if args and not isinstance(args[0], int) else kw.get("path")
            return shim.call(operation, f"{getattr(owner, '__name__', owner)}.{name}", real, path, *args, **kw)

        return wrapper

    def __enter__(self) -> FaultShim:
        for operation, targets in OPERATIONS.items():
            for owner, name in targets:
                real = getattr(owner, name, None)
                if real is None:
                    continue
                self._saved.append((owner, name, real))
                setattr(owner, name, self._wrap(operation, owner, name, real))
        return self

    def __exit__(self, *exc: object) -> None:
        for owner, name, real in reversed(self._saved):
            setattr(owner, name, real)
        self._saved.clear()


class _CountedFile:
    """A file object opened for writing whose ``write`` calls are counted."""

    def __init__(self, shim: FaultShim, handle: Any, path: object) -> None:
        self._shim, self._handle, self._path = shim, handle, path

    def write(self, data: Any) -> int:
        return self._shim.call("write", "file.write", self._handle.write, self._path, data)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __enter__(self) -> _CountedFile:
        self._handle.__enter__()
        return self

    def __exit__(self, *exc: object) -> Any:
        return self._handle.__exit__(*exc)

    def __iter__(self) -> Any:
        return iter(self._handle)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)


class _CountedLibc:
    """libc as recovery_lib's fileio sees it, with ``syncfs`` counted as an fsync."""

    def __init__(self, shim: FaultShim, libc: Any) -> None:
        self._shim, self._libc = shim, libc

    @property
    def syncfs(self) -> Callable[[int], int]:
        real = self._libc.syncfs
        shim = self._shim

        def syncfs(fd: int) -> int:
            return shim.call("fsync", "syncfs", real, None, fd)

        return syncfs

    def __getattr__(self, name: str) -> Any:
        return getattr(self._libc, name)
