"""Verification: every kind of corruption is reported by file and kind; bad ids and bad metadata are refused.

Backups are made for real in a sandbox site and then damaged on disk the way disks and people
damage them (backup files are read-only, so each mutation first gives itself write permission).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from snapshots import files

import recovery_lib.backup.create as create_module
from recovery_lib.backup import BackupError, BackupStatus, Problem, suggest_backup_ids
from recovery_lib.fsops.fileio import copy_and_hash
from recovery_lib.manager import BackupIncomplete, RecoveryManager

TRADES = "data/trades.csv"
POSITIONS = "data/positions.csv"
REPORT = "data/reports/2026/11/fills_2026-11-18_0001.csv"
SESSION = "state/session.json"


# --- helpers ----------------------------------------------------------------------------------


def site_snapshot(root: Path) -> dict[str, bytes]:
    """Every file of the site outside its backup directory, with its bytes."""
    return files(root, exclude=("backups",))


def make_writable(path: Path) -> None:
    """Give the owner write permission on ``path`` and its directory (backups are read-only)."""
    for target in (path.parent, path):
        if target.exists() and not target.is_symlink():
            target.chmod(stat.S_IMODE(target.stat().st_mode) | stat.S_IWUSR)


def flip_byte(path: Path, offset: int = 100) -> None:
    make_writable(path)
    with path.open("r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 0x01]))


def truncate(path: Path) -> None:
    make_writable(path)
    with path.open("r+b") as handle:
        handle.truncate(10)


def delete(path: Path) -> None:
    make_writable(path)
    path.unlink()


def add_extra_file(path: Path) -> None:
    make_writable(path)  # path does not exist yet: this opens its directory
    path.write_text("not part of the backup\n")


def add_extra_dir(path: Path) -> None:
    make_writable(path)
    path.mkdir()


def replace_with_symlink(path: Path) -> None:
    """The symlink points at a file with exactly the right bytes: still not the backup's own file."""
    copy = path.parent.parent / ".outside-copy"
    make_writable(path)
    make_writable(copy)
    shutil.copyfile(path, copy)
    path.unlink()
    path.symlink_to(copy)


def edit_json(path: Path, change: Callable[[dict], None]) -> None:
    make_writable(path)
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document, indent=2))


def edit_text(path: Path, old: str, new: str) -> None:
    make_writable(path)
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def kinds(problems: list[Problem]) -> set[tuple[str, str]]:
    return {(p.path, p.kind) for p in problems}


def fresh_verify(sandbox: Path, backup_id: str, read_data: bool):  # noqa: ANN201
    return RecoveryManager(site=sandbox).verify_backup(backup_id, read_data=read_data)


def sha256sum_check(backup: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=backup, capture_output=True, text=True, check=False)


# --- a sound backup ---------------------------------------------------------------------------


def test_sound_backup_verifies(sandbox: Path) -> None:
    manager = RecoveryManager(site=sandbox)
    backup_id = manager.create_backup()
    meta = manager.get_backup(backup_id)
    quick = fresh_verify(sandbox, backup_id, read_data=False)
    assert quick.ok and quick.problems == []
    assert quick.read_data is False
    assert quick.bytes_read == 0
    assert quick.files_checked == 9  # 8 site files and recovery.toml
    full = fresh_verify(sandbox, backup_id, read_data=True)
    assert full.ok, full.summary()
    assert full.bytes_read == meta.size_bytes
    assert full.files_checked == meta.files_count == 9
    assert full.metadata is not None and full.metadata.backup_id == backup_id
    assert "OK" in full.summary() and "contents hashed" in full.summary()


# --- each corruption, by name and kind --------------------------------------------------------

# (mutation, path it is applied to, expected (path, kind), caught without reading the data)
CORRUPTIONS: dict[str, tuple[Callable[[Path], None], str, tuple[str, str], bool]] = {
    "flipped byte": (flip_byte, TRADES, (TRADES, "hash"), False),
    "truncated": (truncate, POSITIONS, (POSITIONS, "size"), True),
    "deleted": (delete, REPORT, (REPORT, "missing"), True),
    "extra file": (add_extra_file, "data/reports/extra.csv", ("data/reports/extra.csv", "extra"), True),
    "extra directory": (add_extra_dir, "data/stray", ("data/stray/", "extra"), True),
    "symlink": (replace_with_symlink, SESSION, (SESSION, "symlink"), True),
    "manifest edited": (
        lambda p: edit_text(p, '"size": ', '"size":  '),
        "manifest.json",
        ("manifest.json", "manifest"),
        True,
    ),
    "manifest deleted": (delete, "manifest.json", ("manifest.json", "missing"), True),
    "SHA256SUMS edited": (
        lambda p: edit_text(p, "  data/trades.csv", "  data/trades.csv.bak"),
        "SHA256SUMS",
        ("SHA256SUMS", "sums"),
        True,
    ),
    "SHA256SUMS deleted": (delete, "SHA256SUMS", ("SHA256SUMS", "missing"), True),
    "description edited": (
        lambda p: edit_json(p, lambda d: d.update(description="edited later")),
        "metadata.json",
        ("metadata.json", "metadata"),
        True,
    ),
    "files_count edited": (
        lambda p: edit_json(p, lambda d: d.update(files_count=10)),
        "metadata.json",
        ("metadata.json", "metadata"),
        True,
    ),
    "status flipped": (
        lambda p: edit_json(p, lambda d: d.update(status="partial")),
        "metadata.json",
        ("metadata.json", "metadata"),
        True,
    ),
}


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_corruption_is_reported_by_file_and_kind(sandbox: Path, name: str) -> None:
    mutate, relative, expected, quick_catches = CORRUPTIONS[name]
    manager = RecoveryManager(site=sandbox)
    backup_id = manager.create_backup()
    assert manager.verify_backup(backup_id).ok
    before = site_snapshot(sandbox)

    mutate(manager._get_backup_dir(backup_id) / relative)

    full = fresh_verify(sandbox, backup_id, read_data=True)
    assert not full.ok
    assert expected in kinds(full.problems), full.problems
    assert expected[0] in full.summary()
    quick = fresh_verify(sandbox, backup_id, read_data=False)
    if quick_catches:
        assert expected in kinds(quick.problems), quick.problems
    else:
        assert quick.ok, quick.problems  # a same-size byte flip needs the contents read
    assert site_snapshot(sandbox) == before


@pytest.mark.parametrize("name", ["flipped byte", "truncated", "deleted"])
def test_coreutils_agrees_on_damaged_files(sandbox: Path, name: str) -> None:
    mutate, relative, _, _ = CORRUPTIONS[name]
    manager = RecoveryManager(site=sandbox)
    backup = manager._get_backup_dir(manager.create_backup())
    mutate(backup / relative)
    checked = sha256sum_check(backup)
    assert checked.returncode != 0
    assert f"{relative}: FAILED" in checked.stdout


def test_forged_manifest_and_sums_are_still_caught(sandbox: Path) -> None:
    """A file changed and manifest.json + SHA256SUMS rewritten to match it: metadata still knows."""
    manager = RecoveryManager(site=sandbox)
    backup_id = manager.create_backup()
    backup = manager._get_backup_dir(backup_id)
    target = backup / POSITIONS
    make_writable(target)
    target.write_bytes(b"symbol,qty\nBTC/USD,1000\n")
    new_sha = hashlib.sha256(target.read_bytes()).hexdigest()

    def forge(document: dict) -> None:
        for entry in document["files"]:
            if entry["path"] == POSITIONS:
                entry["size"], entry["sha256"] = target.stat().st_size, new_sha

    edit_json(backup / "manifest.json", forge)
    manifest_sha = hashlib.sha256((backup / "manifest.json").read_bytes()).hexdigest()
    lines = []
    for line in (backup / "SHA256SUMS").read_text().splitlines():
        digest, path = line.split("  ", 1)
        lines.append(f"{new_sha if path == POSITIONS else manifest_sha if path == 'manifest.json' else digest}  {path}")
    make_writable(backup / "SHA256SUMS")
    (backup / "SHA256SUMS").write_text("\n".join(lines) + "\n")
    assert sha256sum_check(backup).returncode == 0  # coreutils alone is fooled

    report = fresh_verify(sandbox, backup_id, read_data=True)
    assert ("manifest.json", "manifest") in kinds(report.problems)
    assert ("SHA256SUMS", "sums") in kinds(report.problems)
    assert not fresh_verify(sandbox, backup_id, read_data=False).ok


def test_several_problems_are_all_named(sandbox: Path) -> None:
    manager = RecoveryManager(site=sandbox)
    backup_id = manager.create_backup()
    backup = manager._get_backup_dir(backup_id)
    flip_byte(backup / TRADES)
    delete(backup / REPORT)
    add_extra_file(backup / "config/extra.toml")
    report = fresh_verify(sandbox, backup_id, read_data=True)
    assert {(TRADES, "hash"), (REPORT, "missing"), ("config/extra.toml", "extra")} <= kinds(report.problems)
    assert "3 problem(s)" in report.summary()


# --- "latest" and the notes -------------------------------------------------------------------


def test_latest_skips_a_corrupted_newest_backup(sandbox: Path) -> None:
    manager = RecoveryManager(site=sandbox)
    older = manager.create_backup()
    newest = manager.create_backup()
    # Damage the newest backup's own copy (replace, so a hard link shared with `older` is not touched).
    damaged = manager._get_backup_dir(newest) / TRADES
    data = bytearray(damaged.read_bytes())
    data[200] ^= 0x01
    make_writable(damaged)
    damaged.unlink()
    damaged.write_bytes(bytes(data))

    fresh = RecoveryManager(site=sandbox)
    assert [b.backup_id for b in fresh.list_backups()] == [newest, older]
    assert fresh.get_backup("latest").backup_id == older
    assert any(newest in note and "skipped" in note and TRADES in note for note in fresh.notes), fresh.notes
    assert fresh.verify_backup("latest").ok


def test_latest_skips_edited_metadata_and_a_forged_success(sandbox: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    manager = RecoveryManager(site=sandbox)
    good = manager.create_backup()

    def denied(source: Path, target: Path, mode: int):  # noqa: ANN202
        if Path(source).name == "positions.csv":
            raise PermissionError(errno.EACCES, "Permission denied", str(source))
        return copy_and_hash(source, target, mode)

    monkeypatch.setattr(create_module, "copy_and_hash", denied)
    with pytest.raises(BackupIncomplete) as caught:
        manager.create_backup()
    monkeypatch.undo()
    partial = caught.value.metadata.backup_id
    edit_json(manager._get_backup_dir(partial) / "metadata.json", lambda d: d.update(status="success", problems=[]))

    fresh = RecoveryManager(site=sandbox)
    assert fresh.get_backup(partial).status is BackupStatus.SUCCESS  # what the edited file claims
    assert ("metadata.json", "metadata") in kinds(fresh.verify_backup(partial).problems)
    assert fresh.get_backup("latest").backup_id == good
    assert any(partial in note for note in fresh.notes)


def test_latest_with_every_backup_corrupted_is_a_clear_error(sandbox: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Hard-linked backups share a file: damaging it in place damages both, and neither is used."""
    monkeypatch.setattr(create_module, "RACY_WINDOW_NS", 0)
    manager = RecoveryManager(site=sandbox)
    first = manager.create_backup()
    second = manager.create_backup()
    assert manager.get_backup(second).files_linked == 9
    flip_byte(manager._get_backup_dir(second) / TRADES)
    fresh = RecoveryManager(site=sandbox)
    for backup_id in (first, second):
        assert (TRADES, "hash") in kinds(fresh.verify_backup(backup_id).problems)
    with pytest.raises(BackupError, match="no SUCCESS backup .* verifies") as caught:
        fresh.get_backup("latest")
    assert str(fresh.backup_dir) in str(caught.value)
    assert sum(1 for note in fresh.notes if "skipped" in note) == 2


def test_verify_again_after_damage_sees_the_damage(sandbox: Path) -> None:
    manager = RecoveryManager(site=sandbox)
    backup_id = manager.create_backup()
    assert manager.verify_backup(backup_id, read_data=True).ok
    flip_byte(manager._get_backup_dir(backup_id) / TRADES)
    assert not RecoveryManager(site=sandbox).verify_backup(backup_id, read_data=True).ok  # a new manager sees it
    assert not manager.verify_backup(backup_id, read_data=True).ok


# --- bad ids and bad directories --------------------------------------------------------------


def test_unknown_backup_id_names_the_id_and_the_directory(sandbox: Path) -> None:
    manager = RecoveryManager(site=sandbox)
    known = manager.create_backup()
    with pytest.raises(BackupError) as caught:
        manager.get_backup("nope")
    message = str(caught.value)
    assert "'nope'" in message
    assert str(manager.backup_dir) in message
    assert known in message  # it helps by naming what exists
    with pytest.raises(BackupError, match="nope"):
        manager.verify_backup("nope")
    assert "did you mean" not in message  # nothing close to 'nope'


def test_a_mistyped_backup_id_gets_suggestions(sandbox: Path) -> None:
    manager = RecoveryManager(site=sandbox)
    known = manager.create_backup()
    typo = known[:-2] + ("00" if not known.endswith("00") else "11")  # the last two hex digits wrong
    before = sorted(p.name for p in manager.backup_dir.iterdir())

    assert suggest_backup_ids(manager.backup_dir, typo) == [known]
    with pytest.raises(BackupError) as caught:
        manager.get_backup(typo)
    assert str(caught.value).startswith(f"no backup {typo!r} in {manager.backup_dir}; did you mean: {known}?")
    assert "`recovery backup list` shows them all" in str(caught.value)
    with pytest.raises(BackupError, match="did you mean"):
        manager.verify_backup(typo)
    assert sorted(p.name for p in manager.backup_dir.iterdir()) == before  # suggesting reads only


def test_suggestions_are_read_only_and_never_name_hidden_directories(sandbox: Path, tmp_path: Path) -> None:
    manager = RecoveryManager(site=sandbox)
    known = manager.create_backup()
    manager.quarantine_backup(known, "test")
    assert suggest_backup_ids(manager.backup_dir, known) == []  # .quarantine-<id> is not a backup
    assert suggest_backup_ids(tmp_path / "no-such-dir", known) == []
    assert not (tmp_path / "no-such-dir").exists()
    newer = [manager.create_backup() for _ in range(4)]
    assert len(suggest_backup_ids(manager.backup_dir, newer[0][:-1])) == 3  # n=3 by default, best first
    assert suggest_backup_ids(manager.backup_dir, newer[0][:-1])[0] == newer[0]
    assert len(suggest_backup_ids(manager.backup_dir, newer[0][:-1], n=1)) == 1


@pytest.mark.parametrize("bad", ["../x", "..", ".", "", "a/b", "/etc", ".tmp-20261125T000000Z-full-abc", ".lock"])
def test_ids_that_leave_the_backup_directory_are_refused(sandbox: Path, bad: str) -> None:
    manager = RecoveryManager(site=sandbox)
    manager.create_backup()
    with pytest.raises(BackupError, match="not a backup id"):
        manager._get_backup_dir(bad)
    with pytest.raises(BackupError):
        manager.get_backup(bad)
    with pytest.raises(BackupError):
        manager.verify_backup(bad)


def test_symlinked_backup_directory_is_not_listed_and_refused(sandbox: Path, tmp_path: Path) -> None:
    manager = RecoveryManager(site=sandbox)
    real = manager.create_backup()
    outside = tmp_path / "outside"
    outside.mkdir()
    planted = outside / "20991231T235959Z-full-feed01"
    shutil.copytree(manager._get_backup_dir(real), planted, symlinks=True)
    link_out = manager.backup_dir / planted.name
    link_out.symlink_to(planted, target_is_directory=True)
    link_in = manager.backup_dir / "20991231T235958Z-full-feed02"
    link_in.symlink_to(manager._get_backup_dir(real), target_is_directory=True)

    fresh = RecoveryManager(site=sandbox)
    assert [b.backup_id for b in fresh.list_backups()] == [real]
    for name in (link_out.name, link_in.name):
        with pytest.raises(BackupError, match="symlink"):
            fresh._get_backup_dir(name)
        with pytest.raises(BackupError, match="symlink"):
            fresh.get_backup(name)
        with pytest.raises(BackupError, match="symlink"):
            fresh.verify_backup(name)
    assert fresh.get_backup("latest").backup_id == real


@pytest.mark.parametrize(
    ("content", "said"),
    [
        ("{not json", "unreadable"),
        ("[1, 2, 3]", "not a JSON object"),
        ('{"backup_id": "x"}', "malformed"),
        ("", "unreadable"),
    ],
)
def test_malformed_metadata_is_listed_as_unreadable(sandbox: Path, content: str, said: str) -> None:
    manager = RecoveryManager(site=sandbox)
    good = manager.create_backup()
    broken = manager.create_backup()
    metadata = manager._get_backup_dir(broken) / "metadata.json"
    make_writable(metadata)
    metadata.write_text(content)

    fresh = RecoveryManager(site=sandbox)
    assert [b.backup_id for b in fresh.list_backups()] == [good]
    [unreadable] = fresh.unreadable
    assert unreadable.backup_id == broken and said in unreadable.problem
    assert f"backup {broken} is unreadable" in str(unreadable) and "Procedure D" in str(unreadable)
    with pytest.raises(BackupError, match=broken):
        fresh.get_backup(broken)
    assert kinds(fresh.verify_backup(broken).problems) == {("metadata.json", "metadata")}
    assert fresh.get_backup("latest").backup_id == good


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (lambda d: d.update(status="excellent"), "malformed"),
        (lambda d: d.update(backup_type="weekly"), "malformed"),
        (lambda d: d.update(created_at="yesterday"), "malformed"),
        (lambda d: d.update(owner="mallory"), "unknown field"),
        (lambda d: d.pop("created_at"), "malformed"),
    ],
)
def test_metadata_with_bad_fields_is_unreadable(sandbox: Path, change: Callable[[dict], object], said: str) -> None:
    manager = RecoveryManager(site=sandbox)
    broken = manager.create_backup()
    edit_json(manager._get_backup_dir(broken) / "metadata.json", change)
    fresh = RecoveryManager(site=sandbox)
    assert fresh.list_backups() == []
    assert [(entry.backup_id, said in entry.problem) for entry in fresh.unreadable] == [(broken, True)]


def test_missing_backup_directory_is_a_clear_error(sandbox: Path) -> None:
    manager = RecoveryManager(backup_dir="no/such/dir", site=sandbox)
    assert manager.list_backups() == []
    with pytest.raises(BackupError) as caught:
        manager.get_backup("latest")
    assert str(sandbox.resolve() / "no/such/dir") in str(caught.value)
    with pytest.raises(BackupError, match="'20261125T000000Z-full-abcdef'"):
        manager.get_backup("20261125T000000Z-full-abcdef")
    assert not (sandbox / "no").exists()  # reading never creates it


def test_stray_files_in_the_backup_directory_are_ignored(sandbox: Path) -> None:
    manager = RecoveryManager(site=sandbox)
    good = manager.create_backup()
    (manager.backup_dir / "README.txt").write_text("backups live here\n")
    (manager.backup_dir / ".hidden-dir").mkdir()
    fresh = RecoveryManager(site=sandbox)
    assert [b.backup_id for b in fresh.list_backups()] == [good]
    assert fresh.unreadable == []
    assert fresh.verify_backup(good).ok


def test_verify_never_changes_the_backup(sandbox: Path) -> None:
    manager = RecoveryManager(site=sandbox)
    backup_id = manager.create_backup()
    backup = manager._get_backup_dir(backup_id)
    flip_byte(backup / TRADES)
    delete(backup / REPORT)

    def state() -> dict[str, tuple[int, int, bytes]]:
        return {
            p.relative_to(backup).as_posix(): (p.lstat().st_mode, p.lstat().st_mtime_ns, p.read_bytes())
            for p in sorted(backup.rglob("*"))
            if p.is_file()
        }

    before = state()
    for read_data in (False, True):
        assert not fresh_verify(sandbox, backup_id, read_data=read_data).ok
    assert state() == before
    # .replicas: the push after the backup, recorded (the sandbox has a replica)
    assert sorted(os.listdir(manager.backup_dir)) == sorted([".lock", ".replicas", backup_id])
