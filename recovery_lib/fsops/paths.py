"""Containment: a path from a manifest or a config may only name something inside its root.

Every path that comes from a backup is treated as hostile until it passes :func:`safe_relative`,
and nothing is written through a symlink (:func:`assert_no_symlink_parents`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path, PurePosixPath

from recovery_lib.errors import UnsafePathError

log = logging.getLogger(__name__)

MAX_PATH_BYTES = 4000  # below PATH_MAX (4096) with room for the root
MAX_NAME_BYTES = 255


def safe_relative(path: str, *, what: str = "path") -> str:
    """Return ``path`` normalised if it is a plain relative POSIX path inside its root, else raise.

    Refused: empty, absolute, ``..`` or ``.`` components, backslashes, NUL or newline characters,
    names that are not valid UTF-8, over-long names.
    """
    if not isinstance(path, str) or not path:
        raise UnsafePathError(f"{what} {path!r} is empty or not a string")
    if "\0" in path or "\\" in path or "\n" in path or "\r" in path:
        raise UnsafePathError(f"{what} {path!r} contains a NUL, newline or backslash")
    if path.startswith("/"):
        raise UnsafePathError(f"{what} {path!r} is absolute")
    parts = path.split("/")
    if "" in parts or "." in parts or ".." in parts:
        raise UnsafePathError(f"{what} {path!r} has an empty, '.' or '..' component")
    try:
        encoded = path.encode("utf-8")  # strict: SHA256SUMS and the manifest are UTF-8 documents
    except UnicodeEncodeError:
        raise UnsafePathError(f"{what} {path!r} is not valid UTF-8") from None
    # A path of at most MAX_NAME_BYTES cannot hold a longer name: only long paths are split and measured.
    too_long = len(encoded) > MAX_PATH_BYTES or (
        len(encoded) > MAX_NAME_BYTES and any(len(p.encode("utf-8")) > MAX_NAME_BYTES for p in parts)
    )
    if too_long:
        raise UnsafePathError(f"{what} {path[:60]!r}... is too long")
    return path  # with no empty, "." or ".." component and not absolute, it is already normal


def is_within(relative: str, tops: tuple[str, ...] | list[str]) -> bool:
    """True when ``relative`` is one of ``tops`` or lies below one of them."""
    return any(relative == top or relative.startswith(top.rstrip("/") + "/") for top in tops)


def within(tops: Iterable[str]) -> Callable[[str], bool]:
    """:func:`is_within` for many paths against the same ``tops``: the test made once, applied per path."""
    exact = frozenset(tops)
    below = tuple(top.rstrip("/") + "/" for top in exact)
    return lambda relative: relative in exact or relative.startswith(below)


def assert_no_symlink_parents(root: Path, relative: str) -> None:
    """Refuse when any directory between ``root`` and ``relative`` is a symlink (writes would escape)."""
    current = root
    for part in PurePosixPath(relative).parts[:-1]:
        current = current / part
        if current.is_symlink():
            log.info("refused to write through the symlink %s", current)
            raise UnsafePathError(f"{current} is a symlink; refusing to write through it (nothing was changed)")
        if current.exists() and not current.is_dir():
            raise UnsafePathError(f"{current} is not a directory; cannot restore {relative} below it")
