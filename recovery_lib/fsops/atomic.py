"""The one atomic write pattern: temp file, fsync, rename, fsync the directory.

Everything that writes a file that must never be seen half-written goes through here, so a
crash leaves either the old file or the new one, never a torn mix.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

log = logging.getLogger(__name__)


def fsync_dir(path: Path) -> None:
    """Flush a directory entry (a rename or create in it) to disk."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_writer(path: Path, *, readonly: bool = False, mode: int = 0o644) -> Iterator[BinaryIO]:
    """Yield a binary file that replaces ``path`` atomically when the block exits cleanly.

    On an exception the temp file is removed and ``path`` is untouched.
    ``readonly`` drops the write bits after the rename (backup files are never edited in place).
    """
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode & ~0o222 if readonly else mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)
    log.debug("wrote %s (atomic replace)", path)


def atomic_write_bytes(path: Path, data: bytes, *, readonly: bool = False, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` with :func:`atomic_writer`."""
    with atomic_writer(path, readonly=readonly, mode=mode) as handle:
        handle.write(data)


def atomic_write_text(path: Path, text: str, *, readonly: bool = False, mode: int = 0o644) -> None:
    """Write UTF-8 ``text`` to ``path`` with :func:`atomic_writer`."""
    atomic_write_bytes(path, text.encode("utf-8"), readonly=readonly, mode=mode)
