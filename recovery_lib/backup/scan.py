"""Scanning a site: every file a backup captures, with its lstat, and what it must leave out.

One ``lstat`` per file and nothing else per path: directories are listed with ``scandir``, whose
entries say file, directory or symlink without a system call, and what to skip is decided on
site-relative strings (a ``Path`` per file cost more than the system calls at 20,000 files).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from operator import attrgetter
from pathlib import Path

from recovery_lib.errors import NothingToBackUp
from recovery_lib.site.config import Site

SITE_ARTIFACTS = (".recovery-",)  # restore staging and journals never go into a backup
# Verify and restore walk trees with os.walk and shutil.rmtree, which recurse (Python 3.11): a folder
# nested deeper would make a SUCCESS backup that cannot be verified or restored, so it is left out loudly.
MAX_DEPTH = 256


@dataclass
class Scan:
    """What a scan found: files with their lstat, directories, declared paths that are absent, and
    what cannot be backed up (each a sentence naming the path)."""

    files: list[tuple[str, os.stat_result]] = field(default_factory=list)
    dirs: list[str] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def nothing_to_back_up(site: Site, categories: list[str]) -> NothingToBackUp:
    """The error for a site none of whose declared paths exist (usually the wrong --site)."""
    declared = ", ".join(top for c in categories for top in site.categories[c])
    return NothingToBackUp(
        f"site {site.root} has nothing to back up: {declared} are all missing. "
        "Check --site / RECOVERY_SITE and [paths] in recovery.toml."
    )


def _inside(site_root: Path, excluded: list[Path]) -> tuple[str, ...]:
    """The excluded paths that lie inside the site, as site-relative POSIX strings."""
    root = site_root.resolve()
    inside = []
    for path in excluded:
        resolved = path.resolve()
        if resolved != root and root in resolved.parents:
            inside.append(resolved.relative_to(root).as_posix())
    return tuple(inside)


def scan_site(site: Site, categories: list[str], excluded: list[Path]) -> Scan:
    """Every regular file and directory under the categories' paths, in sorted order, leaving out
    ``excluded`` (the backup directory), restore leftovers in the site root, symlinks and special files."""
    scan = Scan()
    skipped = _inside(site.root, excluded)
    for category in categories:
        for top in site.categories[category]:
            top = top.rstrip("/")
            root = site.path(top)
            try:
                info = os.lstat(root)
            except FileNotFoundError:
                scan.absent.append(top)  # e.g. the data directory after a data-loss incident
                continue
            if stat.S_ISLNK(info.st_mode):
                scan.problems.append(f"{top}: is a symlink; symlinks are not backed up")
            elif stat.S_ISREG(info.st_mode):
                scan.files.append((top, info))
            elif stat.S_ISDIR(info.st_mode):
                scan.dirs.append(top)
                _walk(str(root), top, scan, skipped)
            else:
                scan.problems.append(f"{top}: not a regular file or directory")
    return scan


def _skip(relative: str, skipped: tuple[str, ...]) -> bool:
    # Restore leftovers (journal, staging) only ever live in the site root: a user's own
    # ".recovery-notes" deeper down is data like any other and must be backed up.
    if "/" not in relative and relative.startswith(SITE_ARTIFACTS):
        return True
    return any(relative == ex or relative.startswith(ex + "/") for ex in skipped)


def _utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _walk(folder: str, relative_folder: str, scan: Scan, skipped: tuple[str, ...]) -> None:
    # Depth first, files of a folder before its subfolders, names sorted: the order os.walk gave.
    # A stack, not recursion: a site may nest deeper than Python's recursion limit.
    pending = [(folder, relative_folder)]
    while pending:
        folder, relative_folder = pending.pop()
        subfolders = _list(folder, relative_folder, scan, skipped)
        pending.extend(reversed(subfolders))


def _list(folder: str, relative_folder: str, scan: Scan, skipped: tuple[str, ...]) -> list[tuple[str, str]]:
    """Record one folder's files (with their lstat) and subfolders; returns the subfolders to list."""
    try:
        with os.scandir(folder) as listing:
            entries = sorted(listing, key=attrgetter("name"))
    except OSError as exc:
        scan.problems.append(f"{relative_folder}: cannot be listed ({exc.strerror})")
        return []
    subfolders = []
    for entry in entries:
        name = entry.name
        relative = f"{relative_folder}/{name}"
        if skipped and _skip(relative, skipped):
            continue
        if not name.isascii() and not _utf8(name):  # the manifest and SHA256SUMS are UTF-8 documents
            scan.problems.append(f"{relative_folder}/{name!r}: name is not valid UTF-8; rename it to back it up")
            continue
        try:
            if entry.is_dir(follow_symlinks=False):
                if relative.count("/") >= MAX_DEPTH:
                    scan.problems.append(
                        f"{relative}: nested more than {MAX_DEPTH} folders deep; move it up to back it up"
                    )
                    continue
                scan.dirs.append(relative)
                subfolders.append((entry.path, relative))
                continue
            if entry.is_symlink():
                scan.problems.append(f"{relative}: is a symlink; symlinks are not backed up")
                continue
            info = entry.stat(follow_symlinks=False)  # the one system call per file
        except FileNotFoundError:
            continue  # deleted while we listed: it is simply not part of this backup
        if stat.S_ISREG(info.st_mode):
            scan.files.append((relative, info))
        elif stat.S_ISLNK(info.st_mode):
            scan.problems.append(f"{relative}: is a symlink; symlinks are not backed up")
        else:
            scan.problems.append(f"{relative}: not a regular file")
    return subfolders
