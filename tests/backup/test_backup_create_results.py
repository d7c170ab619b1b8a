"""Backup creation: honest results (partial, absent, empty, failed), never a false SUCCESS.

Every test works on real files in a private sandbox site and checks the result on disk (often with
coreutils ``sha256sum -c``), not only what the API returns.
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest
from backup_helpers import CATEGORY_TOPS, assert_backup_sound, site_snapshot, tmp_leftovers

import recovery_lib.backup.create as create_module
import recovery_lib.fsops.fileio as fileio_module
from recovery_lib.backup import BackupError, BackupStatus, BackupType
from recovery_lib.fsops.fileio import FileChangedError, copy_and_hash
from recovery_lib.manager import BackupIncomplete, RecoveryManager

# --- honest results ---------------------------------------------------------------------------


def test_unreadable_file_makes_the_backup_partial(sandbox: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    manager = RecoveryManager(site=sandbox)
    good = manager.create_backup()
    before = site_snapshot(sandbox)

    def denied(source: Path, target: Path, mode: int):  # noqa: ANN202
        if Path(source).name == "positions.csv":
            raise PermissionError(errno.EACCES, "Permission denied", str(source))
        return copy_and_hash(source, target, mode)

    monkeypatch.setattr(create_module, "copy_and_hash", denied)
    with pytest.raises(BackupIncomplete) as caught:
        manager.create_backup()
    monkeypatch.undo()
    partial = caught.value.metadata
    assert "data/positions.csv" in str(caught.value)
    assert "PARTIAL" in str(caught.value)

    listed = {b.backup_id: b for b in RecoveryManager(site=sandbox).list_backups()}
    assert listed[partial.backup_id].status is BackupStatus.PARTIAL
    assert any("data/positions.csv" in p and "Permission denied" in p for p in listed[partial.backup_id].problems)
    assert "data/positions.csv" not in manager._manifest(partial.backup_id).by_path()
    # Never the restore point, even though it is the newest.
    assert RecoveryManager(site=sandbox).get_backup("latest").backup_id == good
    assert_backup_sound(manager, good)
    assert site_snapshot(sandbox) == before
    assert tmp_leftovers(manager) == []


def test_partial_only_backup_is_never_latest(sandbox: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def denied(source: Path, target: Path, mode: int):  # noqa: ANN202
        raise PermissionError(errno.EACCES, "Permission denied", str(source))

    monkeypatch.setattr(create_module, "copy_and_hash", denied)
    manager = RecoveryManager(site=sandbox)
    with pytest.raises(BackupIncomplete):
        manager.create_backup()
    [only] = manager.list_backups()
    assert only.status is BackupStatus.PARTIAL
    assert len(only.problems) == 9  # 8 site files and recovery.toml
    with pytest.raises(BackupError, match="no SUCCESS backup"):
        manager.get_backup("latest")


def test_file_that_keeps_changing_makes_the_backup_partial(sandbox: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A live writer appends to trades.csv while every copy attempt reads it."""
    manager = RecoveryManager(site=sandbox)
    good = manager.create_backup()
    trades = sandbox / "data" / "trades.csv"
    real_write = fileio_module._write_all
    appended: list[int] = []

    def write_while_site_changes(fd: int, data: memoryview, path: Path) -> None:
        if Path(path).name == "trades.csv" and os.lseek(fd, 0, os.SEEK_CUR) == 0:  # once per attempt
            with trades.open("ab") as handle:
                handle.write(b"2026-11-20T12:00:02Z,ETH/USD,sell,1,3000\n")
            appended.append(1)
        real_write(fd, data, path)

    monkeypatch.setattr(fileio_module, "_write_all", write_while_site_changes)
    with pytest.raises(BackupIncomplete) as caught:
        manager.create_backup()
    monkeypatch.undo()
    assert len(appended) == create_module.COPY_RETRIES
    partial = caught.value.metadata
    assert partial.status is BackupStatus.PARTIAL
    assert any(p.startswith("data/trades.csv: kept changing") for p in partial.problems), partial.problems
    listed = {b.backup_id: b.status for b in manager.list_backups()}
    assert listed == {good: BackupStatus.SUCCESS, partial.backup_id: BackupStatus.PARTIAL}
    assert RecoveryManager(site=sandbox).get_backup("latest").backup_id == good
    assert_backup_sound(manager, good)


def test_file_that_changes_once_is_retried_and_captured(sandbox: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    manager = RecoveryManager(site=sandbox)
    trades = sandbox / "data" / "trades.csv"
    real_write = fileio_module._write_all
    appended: list[int] = []

    def change_once(fd: int, data: memoryview, path: Path) -> None:
        if Path(path).name == "trades.csv" and not appended:
            with trades.open("ab") as handle:
                handle.write(b"2026-11-20T12:00:03Z,ETH/USD,buy,2,3001\n")
            appended.append(1)
        real_write(fd, data, path)

    monkeypatch.setattr(fileio_module, "_write_all", change_once)
    backup_id = manager.create_backup()
    monkeypatch.undo()
    assert (manager._get_backup_dir(backup_id) / "data/trades.csv").read_bytes() == trades.read_bytes()
    assert manager.get_backup(backup_id).status is BackupStatus.SUCCESS
    assert_backup_sound(manager, backup_id)


def test_file_changed_error_from_the_copy_is_partial(sandbox: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    manager = RecoveryManager(site=sandbox)

    def changing(source: Path, target: Path, mode: int):  # noqa: ANN202
        copied = copy_and_hash(source, target, mode)
        if Path(source).name == "session.json":
            raise FileChangedError(f"{source} changed while it was being copied")
        return copied

    monkeypatch.setattr(create_module, "copy_and_hash", changing)
    with pytest.raises(BackupIncomplete, match="state/session.json"):
        manager.create_backup()
    [listed] = manager.list_backups()
    assert listed.status is BackupStatus.PARTIAL
    assert listed.files_count == 8  # 9 less the one that kept changing
    report = manager.verify_backup(listed.backup_id)
    assert report.ok, report.summary()  # PARTIAL is consistent on disk, just incomplete
    assert not (manager._get_backup_dir(listed.backup_id) / "state/session.json").exists()


def test_missing_declared_path_is_recorded_as_absent(sandbox: Path) -> None:
    """Procedure B takes its pre-recovery backup right after data loss: data/ is gone."""
    manager = RecoveryManager(site=sandbox)
    before_loss = manager.create_backup()
    for path in sorted((sandbox / "data").rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    (sandbox / "data").rmdir()
    before = site_snapshot(sandbox)

    backup_id = manager.create_backup(include_data=True, description="Pre-recovery current state", tags=["emergency"])
    meta = manager.get_backup(backup_id)
    assert meta.status is BackupStatus.SUCCESS
    assert meta.backup_type is BackupType.FULL
    manifest = manager._manifest(backup_id)
    assert manifest.absent == ["data"]
    remaining = {"config/config.toml", "state/session.json", "state/strategy_state.json", "recovery.toml"}
    assert {entry.path for entry in manifest.files} == remaining
    assert json.loads((manager._get_backup_dir(backup_id) / "manifest.json").read_text())["absent"] == ["data"]
    assert not (manager._get_backup_dir(backup_id) / "data").exists()
    assert_backup_sound(manager, backup_id)
    assert_backup_sound(manager, before_loss)
    assert site_snapshot(sandbox) == before


def test_empty_site_is_an_error_and_leaves_nothing(sandbox: Path) -> None:
    manager = RecoveryManager(site=sandbox)
    for top in CATEGORY_TOPS:
        for path in sorted((sandbox / top).rglob("*"), reverse=True):
            path.rmdir() if path.is_dir() else path.unlink()
        (sandbox / top).rmdir()
    before = site_snapshot(sandbox)
    with pytest.raises(BackupError) as caught:
        manager.create_backup()
    message = str(caught.value)
    assert "nothing to back up" in message
    for top in CATEGORY_TOPS:
        assert top in message
    assert str(sandbox.resolve()) in message
    assert [p.name for p in manager.backup_dir.iterdir() if p.name != ".lock"] == []
    assert manager.list_backups() == []
    assert site_snapshot(sandbox) == before


def test_empty_single_category_is_an_error(sandbox: Path) -> None:
    manager = RecoveryManager(site=sandbox)
    for path in sorted((sandbox / "state").rglob("*"), reverse=True):
        path.unlink()
    (sandbox / "state").rmdir()
    with pytest.raises(BackupError, match="nothing to back up: state"):
        manager.create_backup(include_config=False, include_state=True, include_data=False)
    assert manager.list_backups() == []


@pytest.mark.parametrize("where", ["copy", "manifest"])
def test_failure_writing_the_backup_is_a_clear_error(
    sandbox: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    manager = RecoveryManager(site=sandbox)
    earlier = manager.create_backup()
    before = site_snapshot(sandbox)

    if where == "copy":

        def full_disk(source: Path, target: Path, mode: int):  # noqa: ANN202
            if Path(source).name == "trades.csv":
                Path(target).write_bytes(b"half")
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(target))
            return copy_and_hash(source, target, mode)

        monkeypatch.setattr(create_module, "copy_and_hash", full_disk)
        named = "data/trades.csv"
    else:
        real_write_file = create_module.write_file

        def full_disk_meta(path: Path, data: bytes, mode: int = 0o444) -> None:
            if Path(path).name == "manifest.json":
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
            real_write_file(path, data, mode)

        monkeypatch.setattr(create_module, "write_file", full_disk_meta)
        named = "manifest.json"

    with pytest.raises(BackupError) as caught:
        manager.create_backup()
    monkeypatch.undo()
    message = str(caught.value)
    assert not isinstance(caught.value, BackupIncomplete)
    assert named in message
    assert "No space left on device" in message
    assert tmp_leftovers(manager) == []
    assert [b.backup_id for b in RecoveryManager(site=sandbox).list_backups()] == [earlier]
    assert_backup_sound(manager, earlier)
    assert site_snapshot(sandbox) == before
    # The failure leaves nothing that blocks the next backup.
    assert_backup_sound(manager, manager.create_backup())
