"""Backup creation: incrementals hard-link unchanged files and detect every change.

Every test works on real files in a private sandbox site and checks the result on disk (often with
coreutils ``sha256sum -c``), not only what the API returns.
"""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path

import pytest
from backup_helpers import SITE_FILES, assert_backup_sound, backup_tree, category_files

import recovery_lib.backup.create as create_module
from recovery_lib.backup import BackupStatus
from recovery_lib.fsops.fileio import copy_and_hash
from recovery_lib.manager import RecoveryManager


def rewrite_same_size(path: Path) -> None:
    """Change the content of ``path`` without changing its size."""
    data = bytearray(path.read_bytes())
    data[0] = ord("#") if data[0] != ord("#") else ord("!")
    path.write_bytes(bytes(data))


# --- incrementals -----------------------------------------------------------------------------


@pytest.mark.usefixtures("no_racy_window")
def test_unchanged_site_is_hard_linked_to_the_parent(sandbox: Path) -> None:
    manager = RecoveryManager(site=sandbox)
    first = manager.create_backup()
    second = manager.create_backup()
    meta = manager.get_backup(second)
    assert meta.parent_id == first
    assert meta.files_linked == 9  # 8 site files and recovery.toml
    assert meta.bytes_new == 0
    assert meta.size_bytes == manager.get_backup(first).size_bytes
    first_dir, second_dir = manager._get_backup_dir(first), manager._get_backup_dir(second)
    for path in SITE_FILES:
        a, b = (first_dir / path).stat(), (second_dir / path).stat()
        assert (a.st_ino, a.st_dev) == (b.st_ino, b.st_dev), path
        assert a.st_nlink == 2
    assert_backup_sound(manager, first)
    assert_backup_sound(manager, second)


@pytest.mark.usefixtures("no_racy_window")
def test_unchanged_files_are_not_read_again(sandbox: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    manager = RecoveryManager(site=sandbox)
    manager.create_backup()
    (sandbox / "data" / "positions.csv").write_text("symbol,qty\nBTC/USD,1\n")
    copied: list[str] = []

    def spy(source: Path, target: Path, mode: int):  # noqa: ANN202
        copied.append(Path(source).relative_to(sandbox.resolve()).as_posix())
        return copy_and_hash(source, target, mode)

    monkeypatch.setattr(create_module, "copy_and_hash", spy)
    second = manager.create_backup()
    assert copied == ["data/positions.csv"]
    meta = manager.get_backup(second)
    assert meta.files_linked == 8
    assert meta.bytes_new == len("symbol,qty\nBTC/USD,1\n")
    assert_backup_sound(manager, second)


def test_files_modified_near_the_backup_start_are_rehashed(sandbox: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Identical stat to the parent is not enough when the file was touched within the racy window."""
    for path in SITE_FILES:
        os.utime(sandbox / path)  # modified just now
    manager = RecoveryManager(site=sandbox)
    monkeypatch.setattr(create_module, "RACY_WINDOW_NS", 0)
    first = manager.create_backup()
    monkeypatch.setattr(create_module, "RACY_WINDOW_NS", 60_000_000_000)  # everything is "recent"
    second = manager.create_backup()
    meta = manager.get_backup(second)
    assert meta.parent_id == first
    assert meta.files_linked == 0
    assert meta.bytes_new == meta.size_bytes
    for path in SITE_FILES:
        assert (manager._get_backup_dir(first) / path).stat().st_ino != (
            manager._get_backup_dir(second) / path
        ).stat().st_ino
    monkeypatch.setattr(create_module, "RACY_WINDOW_NS", 0)
    third = manager.create_backup()
    assert manager.get_backup(third).files_linked == 9
    for backup_id in (first, second, third):
        assert_backup_sound(manager, backup_id)


@pytest.mark.usefixtures("no_racy_window")
def test_same_size_edit_with_mtime_reset_is_detected(sandbox: Path) -> None:
    manager = RecoveryManager(site=sandbox)
    first = manager.create_backup()
    target = sandbox / "config" / "config.toml"
    old = target.read_bytes()
    info = target.stat()
    rewrite_same_size(target)
    os.utime(target, ns=(info.st_atime_ns, info.st_mtime_ns))
    after = target.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (info.st_size, info.st_mtime_ns, info.st_ino)
    new = target.read_bytes()
    assert new != old

    second = manager.create_backup()
    meta = manager.get_backup(second)
    assert meta.files_linked == 8
    assert meta.bytes_new == len(new)
    entry = manager._manifest(second).by_path()["config/config.toml"]
    assert entry.sha256 == hashlib.sha256(new).hexdigest()
    assert (manager._get_backup_dir(second) / "config/config.toml").read_bytes() == new
    # The earlier backup kept the old bytes: nothing was written into it.
    assert (manager._get_backup_dir(first) / "config/config.toml").read_bytes() == old
    assert_backup_sound(manager, first)
    assert_backup_sound(manager, second)


@pytest.mark.usefixtures("no_racy_window")
def test_replace_by_rename_is_detected(sandbox: Path) -> None:
    manager = RecoveryManager(site=sandbox)
    first = manager.create_backup()
    target = sandbox / "state" / "session.json"
    old = target.read_bytes()
    info = target.stat()
    replacement = sandbox / "state" / ".session.json.new"
    new = old.replace(b"{", b"[", 1) if old.startswith(b"{") else b"#" + old[1:]
    assert len(new) == len(old) and new != old
    replacement.write_bytes(new)
    os.utime(replacement, ns=(info.st_atime_ns, info.st_mtime_ns))
    os.rename(replacement, target)
    assert target.stat().st_ino != info.st_ino

    second = manager.create_backup()
    assert manager.get_backup(second).files_linked == 8
    assert (manager._get_backup_dir(second) / "state/session.json").read_bytes() == new
    assert (manager._get_backup_dir(first) / "state/session.json").read_bytes() == old
    assert manager._manifest(second).by_path()["state/session.json"].ino == target.stat().st_ino
    assert_backup_sound(manager, first)
    assert_backup_sound(manager, second)


@pytest.mark.usefixtures("no_racy_window")
@pytest.mark.parametrize("code", [errno.EXDEV, errno.EMLINK])
def test_link_failure_falls_back_to_copying(sandbox: Path, monkeypatch: pytest.MonkeyPatch, code: int) -> None:
    manager = RecoveryManager(site=sandbox)
    first = manager.create_backup()
    attempts: list[str] = []

    def refuse(src: object, dst: object, *args: object, **kwargs: object) -> None:
        attempts.append(str(dst))
        raise OSError(code, os.strerror(code), str(src))

    monkeypatch.setattr(create_module.os, "link", refuse)
    second = manager.create_backup()
    monkeypatch.undo()
    assert len(attempts) == 9  # it did try to link every unchanged file (recovery.toml too)
    meta = manager.get_backup(second)
    assert meta.status is BackupStatus.SUCCESS
    assert meta.files_linked == 0
    assert meta.bytes_new == meta.size_bytes
    for path in SITE_FILES:
        assert (manager._get_backup_dir(second) / path).stat().st_nlink == 1
    assert backup_tree(manager._get_backup_dir(second)) == category_files(sandbox)
    assert_backup_sound(manager, first)
    assert_backup_sound(manager, second)


@pytest.mark.usefixtures("no_racy_window")
def test_earlier_backups_never_change(sandbox: Path) -> None:
    """Several backups with edits, appends, deletions and additions between them: each backup
    still holds exactly the site as it was when it was taken."""
    manager = RecoveryManager(site=sandbox)
    taken: dict[str, dict[str, bytes]] = {}

    def backup() -> None:
        backup_id = manager.create_backup()
        taken[backup_id] = category_files(sandbox)

    backup()
    with (sandbox / "data" / "trades.csv").open("ab") as handle:
        handle.write(b"2026-11-20T12:00:01Z,BTC/USD,buy,0.1,50000\n")
    backup()
    rewrite_same_size(sandbox / "config" / "config.toml")
    (sandbox / "data" / "reports" / "fills_2026-11-20_0003.csv").write_text("ts,qty\n")
    backup()
    (sandbox / "data" / "reports" / "2026" / "11" / "fills_2026-11-17_0000.csv").unlink()
    (sandbox / "state" / "strategy_state.json").write_text("{}")
    backup()
    backup()

    ids = list(taken)
    assert [b.backup_id for b in manager.list_backups()] == ids[::-1]
    assert manager.get_backup(ids[-1]).bytes_new == 0
    for backup_id, files in taken.items():
        assert backup_tree(manager._get_backup_dir(backup_id)) == files, backup_id
        assert_backup_sound(manager, backup_id)
