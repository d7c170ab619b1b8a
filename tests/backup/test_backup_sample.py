"""check_backups_sampled: every backup's structure each run, contents within a byte budget, read-only.

Real backups of a sandbox site, damaged on disk the way disks and people damage them. Unchanged
files are hard-linked between backups (RACY_WINDOW_NS = 0), so one damaged inode is shared.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import snapshots

import recovery_lib.backup.create as create_module
from recovery_lib.backup import BackupsCheck, check_backups_sampled
from recovery_lib.backup.model import RESERVED
from recovery_lib.manager import RecoveryManager

TRADES = "data/trades.csv"
SESSION = "state/session.json"
HUGE = 1 << 40  # larger than any test site: every file is hashed


@pytest.fixture(autouse=True)
def _link_unchanged_files(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(create_module, "RACY_WINDOW_NS", 0)  # files copied a moment ago are still linked


def writable(path: Path) -> None:
    for target in (path.parent, path):
        target.chmod(stat.S_IMODE(target.stat().st_mode) | stat.S_IWUSR)


def flip_in_place(path: Path, offset: int = 100) -> None:
    """Bit rot: the inode itself changes, so every backup that links it is damaged."""
    writable(path)
    with path.open("r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 0x01]))


def flip_own_copy(path: Path, offset: int = 100) -> None:
    """Damage only this backup's copy: a new inode with one byte changed, same size."""
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    writable(path)
    path.unlink()
    path.write_bytes(bytes(data))


def three_backups(sandbox: Path) -> tuple[RecoveryManager, list[str]]:
    """Oldest first. Each later backup changes trades.csv and session.json; the rest stays linked."""
    manager = RecoveryManager(site=sandbox)
    ids = []
    for round_ in range(3):
        with (sandbox / TRADES).open("a") as handle:
            handle.write(f"{90000 + round_},2026-11-20T12:00:00Z,BTC/USD,buy,1,100\n")
        (sandbox / SESSION).write_text(f'{{"round": {round_}}}\n')
        ids.append(manager.create_backup())
    return manager, ids


def distinct_inodes(backup_dir: Path) -> dict[tuple[int, int], int]:
    """Every distinct backup file (by inode) and its size: what a full check must hash once each."""
    found = {}
    for backup in backup_dir.iterdir():
        if backup.name.startswith("."):
            continue
        for folder, _, files in os.walk(backup):
            for name in files:
                if Path(folder) == backup and name in ("metadata.json", "manifest.json", "SHA256SUMS"):
                    continue
                info = os.lstat(os.path.join(folder, name))
                found[(info.st_dev, info.st_ino)] = info.st_size
    return found


def tree(root: Path) -> dict[str, tuple]:
    """Every entry with its bytes, mode and mtime: the check must change none of them."""
    return snapshots.tree(root, mtimes=snapshots.KINDS)


def by_id(checked: BackupsCheck) -> dict[str, object]:
    return {check.backup_id: check for check in checked.backups}


# --- everything within a large budget ---------------------------------------------------------


def test_a_budget_larger_than_all_data_hashes_every_distinct_file_once(sandbox: Path) -> None:
    manager, ids = three_backups(sandbox)
    inodes = distinct_inodes(manager.backup_dir)

    checked = check_backups_sampled(manager.backup_dir, HUGE)

    assert [c.backup_id for c in checked.backups] == ids[::-1]  # newest first
    assert all(c.ok and c.contents == "hashed" and c.problems == [] for c in checked.backups)
    assert checked.files_hashed == len(inodes)  # shared files were read once, not once per backup
    assert checked.bytes_hashed == sum(inodes.values())
    assert checked.damaged == [] and checked.budget_bytes == HUGE
    assert "3 backup(s) OK" in checked.summary()


def test_a_byte_flipped_in_a_shared_file_is_found_in_every_backup_that_lists_it(sandbox: Path) -> None:
    manager, ids = three_backups(sandbox)
    shared = manager.backup_dir / ids[2] / "config/config.toml"
    assert shared.stat().st_nlink == 3  # one inode, three backups
    flip_in_place(shared, offset=5)

    checked = check_backups_sampled(manager.backup_dir, HUGE)

    assert [c.backup_id for c in checked.damaged] == ids[::-1]
    for check in checked.damaged:
        assert check.problems == ["config/config.toml: hash: contents differ from the manifest (corrupted)"]
        assert check.contents == "hashed" and not check.unreadable
    assert checked.files_hashed == len(distinct_inodes(manager.backup_dir))
    assert f"backup {ids[2]}: config/config.toml: hash:" in checked.summary()


def test_damage_to_one_backups_own_copy_stays_in_that_backup(sandbox: Path) -> None:
    manager, ids = three_backups(sandbox)
    flip_own_copy(manager.backup_dir / ids[1] / TRADES)

    checked = check_backups_sampled(manager.backup_dir, HUGE)

    assert [c.backup_id for c in checked.damaged] == [ids[1]]
    assert by_id(checked)[ids[1]].problems == [f"{TRADES}: hash: contents differ from the manifest (corrupted)"]
    assert by_id(checked)[ids[1]].status == "success" and by_id(checked)[ids[1]].tags == []


def test_an_unreadable_backup_is_listed_as_damaged(sandbox: Path) -> None:
    manager, ids = three_backups(sandbox)
    (manager.backup_dir / ids[1]).chmod(0o755)
    (manager.backup_dir / ids[1] / "metadata.json").unlink()

    checked = check_backups_sampled(manager.backup_dir, HUGE)

    assert [c.backup_id for c in checked.backups] == [ids[2], ids[0], ids[1]]  # unreadable ones last
    [unreadable] = checked.damaged
    assert unreadable.backup_id == ids[1] and unreadable.unreadable and unreadable.status == "unreadable"
    assert unreadable.problems == [f"{ids[1]}/metadata.json is missing; the backup is incomplete and cannot be used"]
    assert f"backup {ids[1]}: unreadable: {ids[1]}/metadata.json is missing" in checked.summary()


# --- the budget ---------------------------------------------------------------------------------


def test_a_zero_budget_still_checks_every_structure(sandbox: Path) -> None:
    manager, ids = three_backups(sandbox)
    flip_own_copy(manager.backup_dir / ids[2] / TRADES)  # content damage: needs hashing to be seen
    missing = manager.backup_dir / ids[0] / SESSION
    writable(missing)
    missing.unlink()  # structure damage: seen without reading a byte

    checked = check_backups_sampled(manager.backup_dir, 0)

    assert checked.bytes_hashed == 0 and checked.files_hashed == 0
    assert {c.backup_id: c.contents for c in checked.backups} == dict.fromkeys(ids, "structure only")
    assert [c.backup_id for c in checked.damaged] == [ids[0]]
    assert by_id(checked)[ids[0]].problems == [f"{SESSION}: missing: listed in the manifest, absent from the backup"]


def test_the_newest_backups_files_come_first(sandbox: Path) -> None:
    manager, ids = three_backups(sandbox)
    newest_files = {
        (os.lstat(p).st_dev, os.lstat(p).st_ino): p.stat().st_size
        for p in (manager.backup_dir / ids[2]).rglob("*")
        if p.is_file() and p.name not in RESERVED  # the files, recovery.toml included; not the format's own
    }
    budget = 2 * sum(newest_files.values())  # the newest may claim half the budget first

    for seed in range(5):
        checked = check_backups_sampled(manager.backup_dir, budget, seed=seed)
        assert by_id(checked)[ids[2]].contents == "hashed", seed
        assert checked.bytes_hashed <= budget


def test_successive_runs_cover_every_backup_within_the_budget(sandbox: Path) -> None:
    """Damage in the oldest backup's own trades.csv is outside most small runs, but found over several."""
    manager, ids = three_backups(sandbox)
    flip_own_copy(manager.backup_dir / ids[0] / TRADES)
    newest = sum(p.stat().st_size for p in (manager.backup_dir / ids[2]).rglob("*.*") if p.parent.name != ids[2])
    budget = newest + (manager.backup_dir / ids[0] / TRADES).stat().st_size  # about one backup and a half

    runs = [check_backups_sampled(manager.backup_dir, budget, seed=seed) for seed in range(40)]

    assert all(run.bytes_hashed <= budget for run in runs)
    assert any(run.damaged for run in runs) and not all(run.damaged for run in runs)
    for run in runs:  # when found, always named the same way and only in the damaged backup
        assert [c.backup_id for c in run.damaged] in ([], [ids[0]])
    assert any(by_id(run)[ids[0]].contents == "sampled" for run in runs)


def test_the_same_seed_gives_the_same_run(sandbox: Path) -> None:
    manager, _ = three_backups(sandbox)
    budget = 5000
    first = check_backups_sampled(manager.backup_dir, budget, seed=7)
    again = check_backups_sampled(manager.backup_dir, budget, seed=7)
    assert first == again and first.bytes_hashed <= budget


def test_a_file_larger_than_the_whole_budget_is_counted_not_hidden(sandbox: Path) -> None:
    manager, ids = three_backups(sandbox)
    size = (manager.backup_dir / ids[2] / TRADES).stat().st_size
    checked = check_backups_sampled(manager.backup_dir, size - 1, seed=1)
    assert checked.files_over_budget == 1  # the newest trades.csv: the older ones are a few rows shorter
    assert "larger than the budget" in checked.summary()
    assert by_id(checked)[ids[2]].contents == "sampled"


def test_a_negative_budget_is_refused(sandbox: Path) -> None:
    manager, _ = three_backups(sandbox)
    with pytest.raises(ValueError, match="budget_bytes must be >= 0"):
        check_backups_sampled(manager.backup_dir, -1)


# --- what is a backup, and what the check leaves alone -----------------------------------------


def test_dot_directories_are_not_backups(sandbox: Path) -> None:
    manager, ids = three_backups(sandbox)
    (manager.backup_dir / ".tmp-20261125T000000Z-full-dead01" / "data").mkdir(parents=True)
    manager.quarantine_backup(ids[1], "test")

    checked = check_backups_sampled(manager.backup_dir, HUGE)

    assert [c.backup_id for c in checked.backups] == [ids[2], ids[0]] and checked.damaged == []


def test_the_check_changes_nothing_and_takes_no_lock(sandbox: Path) -> None:
    manager, ids = three_backups(sandbox)
    flip_own_copy(manager.backup_dir / ids[0] / TRADES)
    (manager.backup_dir / ".tmp-20261125T000000Z-full-dead01").mkdir()  # a crash's leftover: not cleaned up here
    before = tree(sandbox)

    checked = check_backups_sampled(manager.backup_dir, HUGE)

    assert checked.damaged and tree(sandbox) == before


def test_check_all_uses_the_sites_budget(sandbox: Path) -> None:
    manager, _ = three_backups(sandbox)
    text = (sandbox / "recovery.toml").read_text().replace("[backups]\n", "[backups]\nhealth_read_mib = 0.5\n", 1)
    (sandbox / "recovery.toml").write_text(text)

    checked = RecoveryManager(site=sandbox).check_all()

    assert checked.budget_bytes == 512 * 1024
    assert RecoveryManager(site=sandbox).check_all(budget_bytes=0).bytes_hashed == 0
    assert manager.check_all().budget_bytes == 256 * 1024 * 1024  # loaded before the edit: the default
