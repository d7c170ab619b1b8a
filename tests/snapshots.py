"""Snapshots of a directory tree, for the before/after comparisons the tests make.

``tree`` is every entry, symlinks never followed; its parameters say what a test compares (mtimes,
the root itself, entries left out or only noted as present), so each test states exactly what must
not change. ``files`` is the regular files with their bytes, for tests that compare contents only.

Importable from every test folder: the root ``tests/conftest.py`` puts ``tests/`` on ``sys.path``
(pytest's prepend import mode, no ``__init__.py`` files).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Collection
from pathlib import Path

Entry = tuple[object, ...]
KINDS = ("file", "dir", "link")


def tree(
    root: Path,
    exclude: Collection[str] = (),
    *,
    mtimes: Collection[str] = (),
    root_entry: bool = False,
    volatile: Collection[str] = (),
    keep: Callable[[str], bool] | None = None,
) -> dict[str, Entry]:
    """Every entry under ``root`` by its ``/``-separated relative path, symlinks never followed.

    Entries are ``("file", bytes, mode)``, ``("dir", b"", mode)`` and ``("link", target, 0)``, with
    ``st_mtime_ns`` appended for the kinds named in ``mtimes`` (``"file"``, ``"dir"``, ``"link"``).
    ``exclude``: top-level names left out, with everything below them. ``root_entry``: ``root`` itself
    as ``"."`` (a dir entry). ``volatile``: paths only noted as present, as ``("present",)`` (a file
    rewritten by design, such as a lock file). ``keep``: a predicate on the path; entries it refuses
    are left out (their children are still walked). A missing ``root`` is empty.
    """
    unknown = set(mtimes) - set(KINDS)
    if unknown:
        raise ValueError(f"tree(mtimes=...): unknown kinds {sorted(unknown)}; use some of {KINDS}")
    found: dict[str, Entry] = {}
    if not os.path.lexists(root):
        return found
    if root_entry:
        found["."] = _entry(Path(root), mtimes)
    for folder, dirs, names in os.walk(root):
        base = Path(folder)
        if base == Path(root):
            dirs[:] = [d for d in dirs if d not in exclude]
            names = [n for n in names if n not in exclude]
        for name in dirs + names:
            path = base / name
            key = path.relative_to(root).as_posix()
            if keep is not None and not keep(key):
                continue
            found[key] = ("present",) if key in volatile else _entry(path, mtimes)
    return found


def _entry(path: Path, mtimes: Collection[str]) -> Entry:
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode):
        kind, entry = "link", ("link", os.readlink(path), 0)
    elif stat.S_ISDIR(info.st_mode):
        kind, entry = "dir", ("dir", b"", stat.S_IMODE(info.st_mode))
    else:
        kind, entry = "file", ("file", path.read_bytes(), stat.S_IMODE(info.st_mode))
    return (*entry, info.st_mtime_ns) if kind in mtimes else entry


def files(root: Path, exclude: Collection[str] = ()) -> dict[str, bytes]:
    """The regular files under ``root`` with their bytes (a symlink to a file counts with its target's
    bytes; symlinked directories are not entered), without the top-level names in ``exclude``."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.relative_to(root).parts[0] not in exclude
    }
