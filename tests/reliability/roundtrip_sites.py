"""Round trips (issue item 5): random trees -> backup -> random damage -> restore -> exact equality.

This module holds the generated sites, how they are observed and the mutations; the properties are
in ``test_roundtrip_*.py``.

Every hypothesis example builds its own site in a fresh ``tempfile.TemporaryDirectory()``
(function-scoped fixtures are not reset between examples). A site has no ``recovery.toml``, so its
categories are the top directories ``config/``, ``state/`` and ``data/`` and its backups go to
``site/backups``. Besides the categories the site holds a few files no restore may touch.

What "exactly" means, from ``docs/backup-format.md``:

- files: the same bytes and the permission bits recorded in the manifest (``mode``);
- directories: the same set, empty ones included (``dirs``: "every directory, so empty ones are
  restored too"). Directory permission bits are not recorded by format 1, so a restored
  category's directories are compared by existence only; untouched categories are compared
  with their directory modes too;
- a category that was absent when the backup was taken is absent after restoring it
  (``absent``: "restoring a category whose path is absent removes that path from the site").
"""

from __future__ import annotations

import os
import random
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from hypothesis import event, note
from hypothesis import strategies as st
from site_state import CATEGORIES, RESERVED, leftovers
from snapshots import tree

from recovery_lib.fsops.fileio import CHUNK
from recovery_lib.manager import RecoveryManager

Entries = dict[str, tuple]


# The format refuses backslash, NUL and newline/CR in paths (docs/backup-format.md, manifest
# `files`), so a file so named makes a PARTIAL backup by design; everything else is fair game:
# emoji, combining marks, right-to-left text, tabs and other control characters, spaces.
_NAME_CHARS = st.characters(codec="utf-8", exclude_characters="/\0\\\n\r")


# Names the test harness or the library itself reserves for artifacts: '.restore*' / '*.tmp' (the
# leftovers check) and '.recovery-*' (restore staging, old trees and journal). A user file named
# '.recovery-*' inside a category is the subject of its own test below.
_RESERVED_PREFIXES = (".restore", ".tmp", ".recovery-")


def _good_name(name: str) -> bool:
    return (
        name not in (".", "..")
        and not name.startswith(_RESERVED_PREFIXES)
        and not name.endswith(".tmp")
        and len(name.encode("utf-8")) <= 60
    )


NAMES = st.one_of(
    st.text(_NAME_CHARS, min_size=1, max_size=15),
    st.text("abcxyz._- 0123456789", min_size=1, max_size=8),  # plain names collide more often
).filter(_good_name)


FILE_MODES = st.sampled_from([0o644, 0o600, 0o755, 0o400, 0o640, 0o444, 0o700, 0o604])


# Owner rwx always: the test and a non-root backup must be able to list and change them.
DIR_MODES = st.sampled_from([0o755, 0o700, 0o750, 0o711, 0o775])


# Around the 1 MiB copy/hash chunk, up to ~2 MiB.
LARGE_SIZES = [CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK - 1, 2 * CHUNK, 2 * CHUNK + 5]


def _random_bytes(size_and_seed: tuple[int, int]) -> bytes:
    size, seed = size_and_seed
    return random.Random(seed).randbytes(size)


SMALL = st.binary(max_size=300)
LARGE = st.tuples(st.sampled_from(LARGE_SIZES), st.integers(0, 2**32 - 1)).map(_random_bytes)


def _weighted(rare: st.SearchStrategy, common: st.SearchStrategy, one_in: int) -> st.SearchStrategy:
    """``rare`` about once in ``one_in`` draws. (A ``one_of`` with the rare branch first or last would
    be drawn far more often: hypothesis favours the ends of an integer range.)"""
    return st.integers(0, one_in - 1).flatmap(lambda i: rare if i == one_in // 2 else common)


# About one file in 25 is large (tests of a few examples with one or two of them), one in 8 empty.
CONTENTS = _weighted(LARGE, _weighted(st.just(b""), SMALL, 8), 25)


@dataclass(frozen=True)
class FileSpec:
    data: bytes
    mode: int

    def __repr__(self) -> str:  # keeps hypothesis' falsifying examples readable with 2 MiB files
        shown = self.data if len(self.data) <= 40 else f"<{len(self.data)} bytes>"
        return f"FileSpec({shown!r}, {oct(self.mode)})"


@dataclass(frozen=True)
class DirSpec:
    mode: int


Layout = dict[str, FileSpec | DirSpec]  # site-relative path -> node, parents before children


FILES = st.builds(FileSpec, CONTENTS, FILE_MODES)
NODES = st.one_of(FILES, FILES, FILES, st.builds(DirSpec, DIR_MODES))


# Mostly shallow paths, some deep ones (up to 10 levels below the category directory).
PATHS = st.one_of(st.lists(NAMES, min_size=1, max_size=3), st.lists(NAMES, min_size=4, max_size=10))


# One category in 8 is absent when the backup is taken (None).
CATEGORY = _weighted(st.none(), st.tuples(DIR_MODES, st.lists(st.tuples(PATHS, NODES), max_size=8)), 8)


def _layout(spec: dict[str, tuple[int, list[tuple[list[str], FileSpec | DirSpec]]] | None]) -> Layout:
    """Turn drawn paths into a consistent tree: an entry below a file or on an existing path is dropped."""
    layout: Layout = {}
    for category, drawn in spec.items():
        if drawn is None:
            continue
        mode, entries = drawn
        layout[category] = DirSpec(mode)
        for parts, node in entries:
            prefixes = ["/".join([category, *parts[:i]]) for i in range(1, len(parts))]
            path = "/".join([category, *parts])
            if path in layout or any(isinstance(layout.get(p), FileSpec) for p in prefixes):
                continue
            for prefix in prefixes:
                layout.setdefault(prefix, DirSpec(0o755))
            layout[path] = node
    return layout


SITES = st.fixed_dictionaries({c: CATEGORY for c in CATEGORIES}).map(_layout)


def describe(layout: Layout) -> None:
    """Hypothesis events, to see with --hypothesis-show-statistics that the interesting cases occur."""
    files = [n for n in layout.values() if isinstance(n, FileSpec)]
    if any(len(f.data) >= CHUNK for f in files):
        event("a file of 1 MiB or more")
    if any(not f.data for f in files):
        event("an empty file")
    if any(p.count("/") >= 4 for p in layout):
        event("nesting 4+ levels deep")
    if any(not p.isascii() for p in layout):
        event("a non-ASCII name")
    if any(p.count("/") == 1 and isinstance(n, FileSpec) for p, n in layout.items()):
        event("a file directly in a category directory")
    if any(isinstance(n, DirSpec) and not any(q.startswith(p + "/") for q in layout) for p, n in layout.items()):
        event("an empty directory")
    if any(c not in layout for c in CATEGORIES):
        event("a category absent at backup time")


OUTSIDE = {"notes.txt": b"not a category: never backed up, never restored\n", "run/app.pid": b"4242\n"}


def write_site(site: Path, layout: Layout) -> None:
    """Create the site: the layout, and files outside every category."""
    site.mkdir()
    for relative, data in OUTSIDE.items():
        (site / relative).parent.mkdir(parents=True, exist_ok=True)
        (site / relative).write_bytes(data)
    for relative, node in layout.items():
        path = site / relative
        if isinstance(node, DirSpec):
            path.mkdir(exist_ok=True)
        else:
            path.write_bytes(node.data)
        os.chmod(path, node.mode)


@contextmanager
def site_dir() -> Iterator[Path]:
    """A fresh site path per hypothesis example; read-only backup trees are made removable after."""
    with tempfile.TemporaryDirectory(prefix="roundtrip-") as tmp:
        try:
            yield Path(tmp) / "site"
        finally:
            for folder, _dirs, _files in os.walk(tmp):
                os.chmod(folder, stat.S_IMODE(os.lstat(folder).st_mode) | stat.S_IRWXU)


def categories_now(site: Path) -> dict[str, Entries]:
    """``category_tree(site, c)`` for every category, from one walk that leaves ``backups/`` out."""
    everything = tree(site, exclude=("backups",))
    return {c: {k: v for k, v in everything.items() if k == c or k.startswith(c + "/")} for c in CATEGORIES}


def outside_now(site: Path) -> Entries:
    """Everything in the site that is neither a category nor the backup directory."""
    return tree(site, exclude=(*CATEGORIES, "backups"))


def no_dir_modes(entries: Entries) -> Entries:
    """Directory modes are not part of backup format 1: compare directories by existence."""
    return {k: (v[0], v[1], None) if v[0] == "dir" else v for k, v in entries.items()}


def backup_path(manager: RecoveryManager, backup_id: str) -> Path:
    return manager.backup_dir / backup_id


def assert_backup_holds(manager: RecoveryManager, backup_id: str, expected: dict[str, Entries]) -> None:
    """The backup stores exactly ``expected`` (per category): bytes, directories, manifest modes,
    read-only copies, and an ``absent`` entry for each missing category."""
    report = manager.verify_backup(backup_id, read_data=True)
    assert report.ok, report.summary()
    manifest = report.manifest
    assert manifest is not None
    modes = {e.path: e.mode for e in manifest.files}
    stored = {k: v for k, v in tree(backup_path(manager, backup_id)).items() if k not in RESERVED}
    for category in manifest.categories:
        want = expected[category]
        got = {k: v for k, v in stored.items() if k == category or k.startswith(category + "/")}
        assert {k: v[:2] for k, v in got.items()} == {k: v[:2] for k, v in want.items()}, category
        for path, (kind, _data, mode) in want.items():
            if kind == "file":
                assert modes[path] == mode, f"{path}: manifest mode {oct(modes[path])}, site had {oct(mode)}"
                assert got[path][2] == mode & ~0o222, f"{path}: the backup's copy must be read-only"
        assert (category in manifest.absent) == (not want), category


def assert_clean_site_root(site: Path, expected_categories: set[str]) -> None:
    """No staging, old tree, journal or temp file left in the site root or the backup directory."""
    assert leftovers(site) == []
    names = {p.name for p in site.iterdir()}
    assert names == {"backups", "notes.txt", "run"} | expected_categories, sorted(names)


def _writable(path: Path) -> None:
    os.chmod(path, stat.S_IMODE(os.lstat(path).st_mode) | stat.S_IWUSR)


def _keep_mode(path: Path, change: Callable[[], None]) -> None:
    """Run ``change`` on a file that may be read-only (non-root runs), then put its mode back."""
    mode = stat.S_IMODE(os.lstat(path).st_mode)
    _writable(path)
    change()
    os.chmod(path, mode)


def _new_name(data: st.DataObject, folder: Path) -> Path | None:
    name = data.draw(NAMES, label="new name")
    target = folder / name
    return None if os.path.lexists(target) else target


MUTATIONS = (
    "rewrite",
    "same_size",
    "truncate",
    "delete_file",
    "delete_category",
    "delete_dir",
    "add_file",
    "add_nested",
    "chmod_file",
    "chmod_dir",
    "file_to_dir",
    "dir_to_file",
    "create_category",
)


def mutate(site: Path, data: st.DataObject, kinds: tuple[str, ...] = MUTATIONS) -> str:
    """Apply one random change to the categories of the site; returns what it did (for ``note``)."""
    entries = {k: v for c in categories_now(site).values() for k, v in c.items()}
    files = sorted(k for k, v in entries.items() if v[0] == "file")
    dirs = sorted(k for k, v in entries.items() if v[0] == "dir")
    inner_dirs = [d for d in dirs if "/" in d]
    kind = data.draw(st.sampled_from(kinds), label="mutation")
    needs = {"dir_to_file": inner_dirs, "delete_dir": inner_dirs, "delete_category": dirs, "chmod_dir": dirs}
    if kind in ("add_file", "add_nested"):
        needs[kind] = dirs
    elif kind in ("rewrite", "same_size", "truncate", "delete_file", "chmod_file", "file_to_dir"):
        needs[kind] = files
    if kind in needs and not needs[kind]:
        kind = "create_category"
    event(f"mutation {kind}")
    if kind == "create_category":
        missing = [c for c in CATEGORIES if not os.path.lexists(site / c)]
        if not missing:
            return "nothing to do"
        category = data.draw(st.sampled_from(missing), label="category")
        (site / category).mkdir()
        spec = data.draw(FILES, label="file")
        target = site / category / data.draw(NAMES, label="name")
        target.write_bytes(spec.data)
        os.chmod(target, spec.mode)
        return f"create {category} with {target.relative_to(site)} {spec!r}"
    if kind in ("add_file", "add_nested"):
        folder = site / data.draw(st.sampled_from(dirs), label="folder")
        target = _new_name(data, folder)
        if target is None:
            return "name taken"
        done = f"{kind} {target.relative_to(site)}"
        if kind == "add_nested":
            target.mkdir()
            for name in data.draw(st.lists(NAMES, max_size=3, unique=True), label="deeper"):
                target = target / name
                target.mkdir()
            if data.draw(st.booleans(), label="empty"):
                return done + f" (empty, down to {target.relative_to(site)})"
            target = target / data.draw(NAMES, label="name")
        spec = data.draw(FILES, label="file")
        target.write_bytes(spec.data)
        os.chmod(target, spec.mode)
        return done + f" -> {target.relative_to(site)} {spec!r}"
    if kind in ("delete_category", "chmod_dir", "delete_dir", "dir_to_file"):
        choices = inner_dirs if kind in ("delete_dir", "dir_to_file") else dirs
        if kind == "delete_category":
            choices = [c for c in CATEGORIES if c in dirs]
        relative = data.draw(st.sampled_from(choices), label="directory")
        path = site / relative
        if kind == "chmod_dir":
            mode = data.draw(DIR_MODES, label="mode")
            os.chmod(path, mode)
            return f"chmod {oct(mode)} {relative}/"
        shutil.rmtree(path)
        if kind == "dir_to_file":
            spec = data.draw(FILES, label="file")
            path.write_bytes(spec.data)
            os.chmod(path, spec.mode)
            return f"replace directory {relative}/ by file {spec!r}"
        return f"delete {relative}/"
    relative = data.draw(st.sampled_from(files), label="file")
    path = site / relative
    old = path.read_bytes()
    if kind == "rewrite":
        new = data.draw(CONTENTS, label="contents")
        new = new if new != old else old + b"!"
        _keep_mode(path, lambda: path.write_bytes(new))
        return f"rewrite {relative} ({len(old)} -> {len(new)} bytes)"
    if kind == "same_size":
        if not old:
            _keep_mode(path, lambda: path.write_bytes(b"x"))
            return f"write 1 byte into empty {relative}"
        offset = data.draw(st.integers(0, len(old) - 1), label="offset")
        keep_mtime = data.draw(st.booleans(), label="keep mtime")
        before = os.lstat(path)

        def flip() -> None:
            with open(path, "r+b") as handle:
                handle.seek(offset)
                handle.write(bytes([old[offset] ^ 0xFF]))

        _keep_mode(path, flip)
        if keep_mtime:  # the sneaky edit: same size, same mtime (only ctime tells)
            os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
        return f"flip byte {offset} of {relative} ({len(old)} bytes), mtime kept={keep_mtime}"
    if kind == "truncate":
        size = data.draw(st.integers(0, max(len(old) - 1, 0)), label="size") if old else 0
        if old:
            _keep_mode(path, lambda: os.truncate(path, size))
            return f"truncate {relative} {len(old)} -> {size}"
        _keep_mode(path, lambda: path.write_bytes(b"grown"))
        return f"grow empty {relative}"
    if kind == "delete_file":
        path.unlink()
        return f"delete {relative}"
    if kind == "chmod_file":
        mode = data.draw(FILE_MODES, label="mode")
        os.chmod(path, mode)
        return f"chmod {oct(mode)} {relative}"
    assert kind == "file_to_dir", kind
    path.unlink()
    path.mkdir()
    if data.draw(st.booleans(), label="with a file inside"):
        (path / "inside").write_bytes(b"was a file\n")
    return f"replace file {relative} by a directory"


def mutate_randomly(site: Path, data: st.DataObject, kinds: tuple[str, ...] = MUTATIONS) -> None:
    for step in range(data.draw(st.integers(0, 6), label="mutations")):
        note(f"mutation {step}: {mutate(site, data, kinds)}")


def flags(categories: list[str]) -> dict[str, bool]:
    return {f"restore_{c}": c in categories for c in CATEGORIES}
