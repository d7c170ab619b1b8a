"""The shared snapshot helpers notice what each parameter says they compare, and nothing else."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from snapshots import KINDS, files, tree


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A small tree: a file, an empty directory, a nested file, a symlink, a lock file, a backups dir."""
    site = tmp_path / "site"
    (site / "config").mkdir(parents=True)
    (site / "config/config.toml").write_bytes(b"[trading]\n")
    (site / "empty").mkdir()
    (site / "link").symlink_to("config/config.toml")
    (site / "backups").mkdir()
    (site / "backups/.lock").write_bytes(b"pid 1\n")
    return site


def touch_later(path: Path) -> None:
    info = os.lstat(path)
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + 1_000_000_000), follow_symlinks=False)


def test_tree_sees_bytes_modes_dirs_and_link_targets(root: Path) -> None:
    before = tree(root)
    mode = os.lstat(root / "config/config.toml").st_mode & 0o7777
    assert before["config/config.toml"] == ("file", b"[trading]\n", mode)
    assert before["empty"][0] == "dir" and before["link"] == ("link", "config/config.toml", 0)
    (root / "config/config.toml").chmod(0o600)
    assert tree(root) != before  # a mode change
    (root / "config/config.toml").chmod(before["config/config.toml"][2])
    assert tree(root) == before
    (root / "empty").rmdir()
    assert tree(root) != before  # an empty directory gone
    (root / "empty").mkdir()
    (root / "link").unlink()
    (root / "link").symlink_to("elsewhere")
    assert tree(root) != before  # a link retargeted


def test_mtimes_only_for_the_kinds_asked(root: Path) -> None:
    plain, dirs = tree(root), tree(root, mtimes=("dir",))
    touch_later(root / "config/config.toml")
    assert tree(root) == plain and tree(root, mtimes=("dir",)) == dirs  # file mtimes not compared
    before = tree(root, mtimes=KINDS, root_entry=True)
    touch_later(root / "config")
    assert tree(root, mtimes=KINDS, root_entry=True) != before
    before = tree(root, mtimes=KINDS, root_entry=True)
    touch_later(root)
    assert tree(root, mtimes=KINDS, root_entry=True) != before  # the root itself, as "."
    assert tree(root, mtimes=KINDS) == {k: v for k, v in before.items() if k != "."}


def test_file_mtime_is_compared_when_asked(root: Path) -> None:
    before = tree(root, mtimes=("file",))
    touch_later(root / "config/config.toml")
    assert tree(root, mtimes=("file",)) != before


def test_exclude_volatile_and_keep(root: Path) -> None:
    assert not [key for key in tree(root, ("backups",)) if key.startswith("backups")]
    before = tree(root, volatile=("backups/.lock",))
    assert before["backups/.lock"] == ("present",)
    (root / "backups/.lock").write_bytes(b"pid 2\n")
    assert tree(root, volatile=("backups/.lock",)) == before
    assert tree(root) != tree(root, volatile=("backups/.lock",))
    kept = tree(root, keep=lambda key: not key.startswith("config"))
    assert "config" not in kept and "config/config.toml" not in kept and "empty" in kept


def test_unknown_mtime_kind_is_refused(root: Path) -> None:
    with pytest.raises(ValueError, match="unknown kinds \\['files'\\]"):
        tree(root, mtimes=("files",))


def test_a_missing_root_is_empty(tmp_path: Path) -> None:
    assert tree(tmp_path / "missing") == {} and tree(tmp_path / "missing", root_entry=True) == {}


def test_files_is_regular_files_with_bytes(root: Path) -> None:
    found = files(root, exclude=("backups",))
    assert found == {"config/config.toml": b"[trading]\n", "link": b"[trading]\n"}  # a link counts as its target
    (root / "config/config.toml").chmod(0o600)
    assert files(root, exclude=("backups",)) == found  # contents only
    (root / "config/config.toml").write_bytes(b"[other]\n")
    assert files(root, exclude=("backups",)) != found
