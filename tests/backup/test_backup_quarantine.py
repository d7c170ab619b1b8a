"""Quarantine: a damaged backup is set aside by one rename, never deleted and never written into."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import snapshots

from recovery_lib.backup import BackupError, list_quarantined
from recovery_lib.manager import RecoveryManager

TRADES = "data/trades.csv"


def tree(root: Path) -> dict[str, tuple]:
    """Every entry under ``root``: bytes, mode and mtime (a quarantined backup keeps all three)."""
    return snapshots.tree(root, mtimes=snapshots.KINDS)


def flip_own_copy(path: Path, offset: int = 100) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.parent.chmod(stat.S_IMODE(path.parent.stat().st_mode) | stat.S_IWUSR)
    path.unlink()
    path.write_bytes(bytes(data))
    path.chmod(0o444)
    path.parent.chmod(0o555)


def test_a_damaged_backup_is_renamed_aside_unchanged(sandbox: Path) -> None:
    manager = RecoveryManager(site=sandbox)
    good, damaged = manager.create_backup(), manager.create_backup()
    flip_own_copy(manager.backup_dir / damaged / TRADES)
    assert stat.S_IMODE((manager.backup_dir / damaged).stat().st_mode) == 0o555  # read-only, as backups are
    contents = tree(manager.backup_dir / damaged)
    good_contents = tree(manager.backup_dir / good)

    name = manager.quarantine_backup(damaged, "data/trades.csv fails its hash")

    assert name == f".quarantine-{damaged}"
    assert not (manager.backup_dir / damaged).exists()
    assert tree(manager.backup_dir / name) == contents  # nothing was written into it, nothing lost
    assert tree(manager.backup_dir / good) == good_contents
    assert manager.list_quarantined() == [name] == list_quarantined(manager.backup_dir)
    assert any(damaged in note and "fails its hash" in note for note in manager.notes)
    fresh = RecoveryManager(site=sandbox)
    assert [b.backup_id for b in fresh.list_backups()] == [good] and fresh.unreadable == []
    assert fresh.latest().backup_id == good
    assert fresh.check_all().damaged == []


def test_a_backup_without_metadata_can_be_quarantined(sandbox: Path) -> None:
    manager = RecoveryManager(site=sandbox)
    broken = manager.create_backup()
    (manager.backup_dir / broken).chmod(0o755)
    (manager.backup_dir / broken / "metadata.json").unlink()
    contents = tree(manager.backup_dir / broken)
    fresh = RecoveryManager(site=sandbox)
    fresh.list_backups()
    assert [u.backup_id for u in fresh.unreadable] == [broken]

    name = fresh.quarantine_backup(broken, "metadata.json is missing")

    assert tree(manager.backup_dir / name) == contents
    fresh.list_backups()
    assert fresh.unreadable == [] and fresh.list_quarantined() == [name]


def test_quarantining_the_same_id_again_keeps_both_copies(sandbox: Path) -> None:
    manager = RecoveryManager(site=sandbox)
    backup_id = manager.create_backup()
    earlier = manager.backup_dir / f".quarantine-{backup_id}"
    earlier.mkdir()
    (earlier / "note.txt").write_text("an earlier quarantine of the same id\n")

    name = manager.quarantine_backup(backup_id, "again")

    assert name == f".quarantine-{backup_id}-2"
    assert (earlier / "note.txt").read_text() == "an earlier quarantine of the same id\n"
    assert manager.list_quarantined() == sorted([earlier.name, name])


@pytest.mark.parametrize("bad", ["../site", "..", ".lock", "", "a/b", ".quarantine-x", "20990101T000000Z-full-abcdef"])
def test_unknown_and_escaping_ids_are_refused_and_nothing_moves(sandbox: Path, bad: str) -> None:
    manager = RecoveryManager(site=sandbox)
    keep = manager.create_backup()
    before = tree(sandbox)

    with pytest.raises(BackupError) as caught:
        manager.quarantine_backup(bad, "test")

    assert repr(bad) in str(caught.value)
    assert tree(sandbox) == before
    assert manager.list_quarantined() == [] and RecoveryManager(site=sandbox).verify_backup(keep).ok


def test_a_symlinked_backup_is_refused(sandbox: Path, tmp_path: Path) -> None:
    manager = RecoveryManager(site=sandbox)
    real = manager.create_backup()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (manager.backup_dir / "20991231T000000Z-full-000001").symlink_to(elsewhere)
    before = tree(sandbox)

    with pytest.raises(BackupError, match="symlink"):
        manager.quarantine_backup("20991231T000000Z-full-000001", "test")

    assert tree(sandbox) == before and elsewhere.is_dir() and manager.list_quarantined() == []
    assert RecoveryManager(site=sandbox).verify_backup(real).ok
