"""Backup creation: the runbook's API, the on-disk format, incrementals, honest results, crash safety.

Every test works on real files in a private sandbox site and checks the result on disk (often with
coreutils ``sha256sum -c``), not only what the API returns.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import random
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import recovery_lib.backup.create as create_module
import recovery_lib.fsops.fileio as fileio_module
from recovery_lib.backup import BackupError, BackupMetadata, BackupStatus, BackupType
from recovery_lib.fsops.fileio import FileChangedError, copy_and_hash
from recovery_lib.manager import BackupIncomplete, RecoveryManager

CATEGORY_TOPS = ("config", "state", "data")
SITE_FILES = (
    "config/config.toml",
    "state/session.json",
    "state/strategy_state.json",
    "data/positions.csv",
    "data/trades.csv",
    "data/reports/fills_2026-11-17_0000.csv",
    "data/reports/fills_2026-11-18_0001.csv",
    "data/reports/fills_2026-11-19_0002.csv",
)


# --- helpers ----------------------------------------------------------------------------------


def site_snapshot(root: Path) -> dict[str, bytes]:
    """Every file of the site outside its backup directory, with its bytes."""
    backups = root / "backups"
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and backups not in p.parents
    }


def category_files(root: Path) -> dict[str, bytes]:
    """The files a FULL backup must hold: everything under config/, state/ and data/."""
    return {path: data for path, data in site_snapshot(root).items() if path.split("/")[0] in CATEGORY_TOPS}


def backup_tree(backup: Path) -> dict[str, bytes]:
    """The site files stored in a backup directory (its own three format files left out)."""
    reserved = {"metadata.json", "manifest.json", "SHA256SUMS"}
    return {
        p.relative_to(backup).as_posix(): p.read_bytes()
        for p in sorted(backup.rglob("*"))
        if p.is_file() and p.relative_to(backup).as_posix() not in reserved
    }


def sha256sum_check(backup: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=backup, capture_output=True, text=True, check=False)


def assert_backup_sound(manager: RecoveryManager, backup_id: str) -> None:
    """The backup verifies with contents hashed, by our verifier and by coreutils."""
    report = RecoveryManager(backup_dir=manager.backup_dir, site=manager.site).verify_backup(backup_id, read_data=True)
    assert report.ok, report.summary()
    checked = sha256sum_check(manager._get_backup_dir(backup_id))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def tmp_leftovers(manager: RecoveryManager) -> list[str]:
    return sorted(p.name for p in manager.backup_dir.glob(".tmp-*"))


def rewrite_same_size(path: Path) -> None:
    """Change the content of ``path`` without changing its size."""
    data = bytearray(path.read_bytes())
    data[0] = ord("#") if data[0] != ord("#") else ord("!")
    path.write_bytes(bytes(data))


@pytest.fixture
def no_racy_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let files touched moments ago count as unchanged (the sandbox copy is only milliseconds old)."""
    monkeypatch.setattr(create_module, "RACY_WINDOW_NS", 0)


# --- API shape --------------------------------------------------------------------------------


def test_runbook_imports_and_defaults(sandbox: Path) -> None:
    manager = RecoveryManager(site=sandbox)
    assert manager.site.root == sandbox.resolve()
    assert manager.backup_dir == sandbox.resolve() / "backups"
    backup_id = manager.create_backup(description="first")
    assert isinstance(backup_id, str)
    [listed] = manager.list_backups()
    assert isinstance(listed, BackupMetadata)
    assert listed.backup_id == backup_id
    assert listed.backup_type is BackupType.FULL
    assert listed.status is BackupStatus.SUCCESS
    assert listed.description == "first"
    assert listed.tags == []
    assert (manager.backup_dir / backup_id).is_dir()


def test_top_level_import_promised_by_the_issue() -> None:
    import recovery_lib

    assert recovery_lib.RecoveryManager is RecoveryManager
    assert recovery_lib.BackupType is BackupType
    assert recovery_lib.BackupStatus is BackupStatus
    assert recovery_lib.BackupMetadata is BackupMetadata


def test_site_from_current_directory(sandbox: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(sandbox)
    manager = RecoveryManager()
    assert manager.site.root == sandbox.resolve()
    backup_id = manager.create_backup()
    assert (sandbox / "backups" / backup_id / "metadata.json").is_file()


def test_site_from_environment(sandbox: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("RECOVERY_SITE", str(sandbox))
    manager = RecoveryManager()
    assert manager.site.root == sandbox.resolve()
    backup_id = manager.create_backup()
    assert (sandbox / "backups" / backup_id).is_dir()
    assert list(elsewhere.iterdir()) == []


def test_relative_backup_dir_is_relative_to_the_site(
    sandbox: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    manager = RecoveryManager(backup_dir="vault/nightly", site=sandbox)
    assert manager.backup_dir == sandbox.resolve() / "vault" / "nightly"
    backup_id = manager.create_backup()
    assert (sandbox / "vault" / "nightly" / backup_id / "metadata.json").is_file()
    assert not (elsewhere / "vault").exists()
    assert list((sandbox / "backups").iterdir()) == []


def test_backup_dir_inside_a_category_is_not_backed_up_into_itself(sandbox: Path) -> None:
    manager = RecoveryManager(backup_dir="data/backups", site=sandbox)
    first = manager.create_backup()
    second = manager.create_backup()
    paths = {entry.path for entry in manager._manifest(second).files}
    assert not any(path.startswith("data/backups") for path in paths), paths
    assert paths == set(SITE_FILES)
    assert_backup_sound(manager, first)
    assert_backup_sound(manager, second)


@pytest.mark.parametrize(
    ("flags", "expected", "categories"),
    [
        ((True, True, True), BackupType.FULL, ["config", "state", "data"]),
        ((True, False, False), BackupType.CONFIG, ["config"]),
        ((False, True, False), BackupType.STATE, ["state"]),
        ((False, False, True), BackupType.DATA, ["data"]),
        ((True, False, True), BackupType.MIXED, ["config", "data"]),
    ],
)
def test_backup_type_follows_the_include_flags(
    sandbox: Path, flags: tuple[bool, bool, bool], expected: BackupType, categories: list[str]
) -> None:
    manager = RecoveryManager(site=sandbox)
    include_config, include_state, include_data = flags
    backup_id = manager.create_backup(
        include_config=include_config, include_state=include_state, include_data=include_data
    )
    metadata = manager.get_backup(backup_id)
    assert metadata.backup_type is expected
    assert f"-{expected.value}-" in backup_id
    assert metadata.categories == categories
    stored = backup_tree(manager._get_backup_dir(backup_id))
    wanted = {path: data for path, data in category_files(sandbox).items() if path.split("/")[0] in categories}
    assert stored == wanted
    assert_backup_sound(manager, backup_id)


def test_nothing_included_is_refused(sandbox: Path) -> None:
    manager = RecoveryManager(site=sandbox)
    with pytest.raises(BackupError, match="include at least one of config, state, data"):
        manager.create_backup(include_config=False, include_state=False, include_data=False)
    assert manager.list_backups() == []


def test_list_backups_newest_first_with_tag_and_type_filters(sandbox: Path) -> None:
    manager = RecoveryManager(site=sandbox)
    full_a = manager.create_backup(tags=["nightly"])
    config_b = manager.create_backup(include_state=False, include_data=False, tags=["manual", "pre-change"])
    full_c = manager.create_backup(tags=["nightly", "manual"])
    data_d = manager.create_backup(include_config=False, include_state=False)

    assert [b.backup_id for b in manager.list_backups()] == [data_d, full_c, config_b, full_a]
    assert [b.backup_id for b in manager.list_backups(tags=["nightly"])] == [full_c, full_a]
    assert [b.backup_id for b in manager.list_backups(tags=["pre-change", "nightly"])] == [full_c, config_b, full_a]
    assert manager.list_backups(tags=["nonexistent"]) == []
    assert [b.backup_id for b in manager.list_backups(backup_type=BackupType.FULL)] == [full_c, full_a]
    assert [b.backup_id for b in manager.list_backups(backup_type="config")] == [config_b]
    assert [b.backup_id for b in manager.list_backups(tags=["manual"], backup_type=BackupType.FULL)] == [full_c]
    times = [b.created for b in manager.list_backups()]
    assert times == sorted(times, reverse=True)


def test_created_at_is_utc_with_z_as_the_runbook_parses_it(sandbox: Path) -> None:
    manager = RecoveryManager(site=sandbox)
    before = datetime.now(UTC)
    backup_id = manager.create_backup()
    after = datetime.now(UTC)
    [metadata] = manager.list_backups()
    assert metadata.backup_id == backup_id
    assert metadata.created_at.endswith("Z")
    # Procedure B's parse, and Scenario 4's naive variant.
    parsed = datetime.fromisoformat(metadata.created_at.replace("Z", "+00:00"))
    assert parsed.utcoffset() == timedelta(0)
    assert before - timedelta(seconds=1) <= parsed <= after
    naive = datetime.fromisoformat(metadata.created_at.replace("Z", ""))
    assert naive.tzinfo is None
    assert naive == parsed.replace(tzinfo=None)
    on_disk = json.loads((manager._get_backup_dir(backup_id) / "metadata.json").read_text())
    assert on_disk["created_at"] == metadata.created_at
    assert backup_id.startswith(parsed.strftime("%Y%m%dT%H%M%SZ"))


def test_counts_and_sizes_match_the_site(sandbox: Path) -> None:
    manager = RecoveryManager(site=sandbox)
    backup_id = manager.create_backup()
    metadata = manager.get_backup(backup_id)
    files = category_files(sandbox)
    assert set(files) == set(SITE_FILES)
    assert metadata.files_count == len(files) == 8
    assert metadata.size_bytes == sum(len(data) for data in files.values())
    assert metadata.bytes_new == metadata.size_bytes  # the first backup stores every byte
    assert metadata.files_linked == 0
    assert metadata.parent_id is None
    assert metadata.site_name == "peak-trade-sandbox"
    assert metadata.problems == []
    assert metadata.duration_s >= 0


# --- on-disk format ---------------------------------------------------------------------------


def test_on_disk_format(sandbox: Path) -> None:
    before = site_snapshot(sandbox)
    manager = RecoveryManager(site=sandbox)
    backup_id = manager.create_backup(description="format", tags=["t1"])
    backup = sandbox / "backups" / backup_id

    metadata = json.loads((backup / "metadata.json").read_text())
    assert metadata["backup_id"] == backup_id
    assert metadata["backup_type"] == "full"
    assert metadata["status"] == "success"
    assert metadata["description"] == "format"
    assert metadata["tags"] == ["t1"]
    for key in ("created_at", "files_count", "size_bytes", "parent_id", "host", "manifest_sha256", "bytes_new"):
        assert key in metadata, key

    manifest_bytes = (backup / "manifest.json").read_bytes()
    manifest = json.loads(manifest_bytes)
    assert manifest["version"] == 1
    assert metadata["manifest_sha256"] == hashlib.sha256(manifest_bytes).hexdigest()
    paths = [entry["path"] for entry in manifest["files"]]
    assert sorted(paths) == sorted(SITE_FILES)
    for entry in manifest["files"]:
        assert {"path", "size", "sha256", "mode", "mtime_ns"} <= set(entry)
        assert not entry["path"].startswith("/") and "\\" not in entry["path"] and ".." not in entry["path"]
        source = sandbox / entry["path"]
        data = source.read_bytes()
        assert entry["size"] == len(data)
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert entry["mode"] == stat.S_IMODE(source.stat().st_mode)
        assert entry["mtime_ns"] == source.stat().st_mtime_ns
    assert metadata["files_count"] == len(manifest["files"])

    # The files themselves, at their site-relative paths, byte for byte.
    assert backup_tree(backup) == category_files(sandbox)

    # coreutils can check the backup without this tool, manifest included.
    checked = sha256sum_check(backup)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    ok_lines = sorted(line for line in checked.stdout.splitlines() if line.endswith(": OK"))
    assert ok_lines == sorted(f"{path}: OK" for path in [*SITE_FILES, "manifest.json"])

    assert site_snapshot(sandbox) == before
    assert tmp_leftovers(manager) == []


def test_backup_is_read_only(sandbox: Path) -> None:
    manager = RecoveryManager(site=sandbox)
    backup = manager._get_backup_dir(manager.create_backup())
    for path in [backup, *backup.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        assert not path.is_symlink(), path
        assert mode & 0o222 == 0, f"{path} is writable: {oct(mode)}"


def test_read_only_site_is_backed_up_and_left_alone(sandbox: Path) -> None:
    for top in CATEGORY_TOPS:
        for path in sorted((sandbox / top).rglob("*"), reverse=True):
            path.chmod(0o555 if path.is_dir() else 0o444)
        (sandbox / top).chmod(0o555)
    before = site_snapshot(sandbox)
    manager = RecoveryManager(site=sandbox)
    backup_id = manager.create_backup()
    assert {entry.mode for entry in manager._manifest(backup_id).files} == {0o444}
    assert_backup_sound(manager, backup_id)
    assert site_snapshot(sandbox) == before


def test_site_artifacts_and_files_outside_the_categories_are_not_backed_up(sandbox: Path) -> None:
    (sandbox / ".recovery-staging-x" / "data").mkdir(parents=True)  # restore leftovers live in the site root
    (sandbox / ".recovery-staging-x" / "data" / "half.csv").write_text("staged\n")
    (sandbox / "data" / ".recovery-notes").write_text("a user's file that merely looks like one\n")
    manager = RecoveryManager(site=sandbox)
    backup_id = manager.create_backup()
    paths = {entry.path for entry in manager._manifest(backup_id).files}
    # No recovery.toml, exchange/, run/, sandbox marker or staging leftovers; the user's file is data.
    assert paths == {*SITE_FILES, "data/.recovery-notes"}


# --- incrementals -----------------------------------------------------------------------------


@pytest.mark.usefixtures("no_racy_window")
def test_unchanged_site_is_hard_linked_to_the_parent(sandbox: Path) -> None:
    manager = RecoveryManager(site=sandbox)
    first = manager.create_backup()
    second = manager.create_backup()
    meta = manager.get_backup(second)
    assert meta.parent_id == first
    assert meta.files_linked == 8
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
    assert meta.files_linked == 7
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
    assert manager.get_backup(third).files_linked == 8
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
    assert meta.files_linked == 7
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
    assert manager.get_backup(second).files_linked == 7
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
    assert len(attempts) == 8  # it did try to link every unchanged file
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
    (sandbox / "data" / "reports" / "fills_2026-11-17_0000.csv").unlink()
    (sandbox / "state" / "strategy_state.json").write_text("{}")
    backup()
    backup()

    ids = list(taken)
    assert [b.backup_id for b in manager.list_backups()] == ids[::-1]
    assert manager.get_backup(ids[-1]).bytes_new == 0
    for backup_id, files in taken.items():
        assert backup_tree(manager._get_backup_dir(backup_id)) == files, backup_id
        assert_backup_sound(manager, backup_id)


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
    assert len(only.problems) == 8
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
    assert listed.files_count == 7
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
    remaining = {"config/config.toml", "state/session.json", "state/strategy_state.json"}
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


# --- crash safety -----------------------------------------------------------------------------


def test_interrupted_backup_leftovers_are_cleaned_and_noted(sandbox: Path) -> None:
    manager = RecoveryManager(site=sandbox)
    earlier = manager.create_backup()
    backups = manager.backup_dir
    crashed = backups / ".tmp-20261125T000000Z-full-dead01"
    (crashed / "data" / "reports").mkdir(parents=True)
    (crashed / "data" / "trades.csv").write_bytes(b"half a file")
    (crashed / "manifest.json").write_text("{}")
    (crashed / "data" / "reports").chmod(0o555)
    (crashed / "data").chmod(0o555)
    bare = backups / ".tmp-20261125T000001Z-config-dead02"
    bare.mkdir()

    fresh = RecoveryManager(site=sandbox)
    assert [b.backup_id for b in fresh.list_backups()] == [earlier]
    assert tmp_leftovers(fresh) == []
    assert any(crashed.name in note and "interrupted" in note for note in fresh.notes), fresh.notes
    assert any(bare.name in note for note in fresh.notes), fresh.notes

    (backups / ".tmp-20261125T000002Z-data-dead03" / "data").mkdir(parents=True)
    other = RecoveryManager(site=sandbox)
    new = other.create_backup()
    assert tmp_leftovers(other) == []
    assert any(".tmp-20261125T000002Z-data-dead03" in note for note in other.notes)
    assert_backup_sound(other, earlier)
    assert_backup_sound(other, new)


def test_backup_directory_without_metadata_is_never_success(sandbox: Path) -> None:
    manager = RecoveryManager(site=sandbox)
    good = manager.create_backup()
    fake = manager.backup_dir / "20991231T235959Z-full-abcdef"  # would sort newest
    (fake / "data").mkdir(parents=True)
    (fake / "data" / "trades.csv").write_bytes((sandbox / "data" / "trades.csv").read_bytes())
    fresh = RecoveryManager(site=sandbox)
    assert [b.backup_id for b in fresh.list_backups()] == [good]
    assert [u.backup_id for u in fresh.unreadable] == [fake.name]
    assert "metadata.json is missing" in fresh.unreadable[0].problem
    assert fresh.get_backup("latest").backup_id == good
    with pytest.raises(BackupError, match="metadata.json is missing"):
        fresh.get_backup(fake.name)
    report = fresh.verify_backup(fake.name)
    assert not report.ok
    assert [(p.path, p.kind) for p in report.problems] == [("metadata.json", "metadata")]


CRASH_LOOP = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from recovery_lib.manager import RecoveryManager
    from recovery_lib.backup import BackupError

    site = Path(sys.argv[1])
    manager = RecoveryManager(site=site)
    print("ready", flush=True)
    i = 0
    while True:
        i += 1
        with open(site / "data" / "trades.csv", "ab") as handle:
            handle.write(b"2026-11-20T12:00:00Z,BTC/USD,buy,0.01,%d\\n" % i)
        (site / "state" / "session.json").write_text('{"tick": %d}' % i)
        try:
            manager.create_backup(description=f"loop {i}")
        except BackupError:
            pass
        if i % 4 == 0:
            manager.cleanup_old_backups(3)
    """
)


def test_sigkill_at_random_moments_never_leaves_a_bad_success(sandbox: Path) -> None:
    rng = random.Random(20261125)
    seen: set[str] = set()
    cleaned_leftovers = 0
    began = time.monotonic()
    for _ in range(10):
        process = subprocess.Popen(
            [sys.executable, "-c", CRASH_LOOP, str(sandbox)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 0.35))
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        assert process.returncode == -signal.SIGKILL, process.stderr.read() if process.stderr else ""
        process.stdout.close()
        if process.stderr:
            process.stderr.close()

        had_leftovers = bool(list((sandbox / "backups").glob(".tmp-*")))
        manager = RecoveryManager(site=sandbox)
        listed = manager.list_backups()
        if had_leftovers:
            cleaned_leftovers += 1
            assert any("interrupted" in note for note in manager.notes), manager.notes
        assert manager.unreadable == []
        for metadata in listed:
            seen.add(metadata.backup_id)
            assert metadata.status is BackupStatus.SUCCESS
            report = manager.verify_backup(metadata.backup_id, read_data=True)
            assert report.ok, report.summary()
    assert time.monotonic() - began < 15
    assert len(seen) >= 5  # the loop really did make (and prune) backups between the kills

    manager = RecoveryManager(site=sandbox)
    last = manager.create_backup()
    assert tmp_leftovers(manager) == []
    for metadata in manager.list_backups():
        checked = sha256sum_check(manager._get_backup_dir(metadata.backup_id))
        assert checked.returncode == 0, checked.stdout
    assert_backup_sound(manager, last)
    assert backup_tree(manager._get_backup_dir(last)) == category_files(sandbox)


class _FaultPlan:
    """Counts calls of the filesystem operations the backup makes and fails the k-th one."""

    def __init__(self, fail_at: int | None) -> None:
        self.fail_at = fail_at
        self.calls = 0
        self.failed: str | None = None
        self._mutex = threading.Lock()

    def wrap(self, name: str, real: Callable[..., object]) -> Callable[..., object]:
        def call(*args: object, **kwargs: object) -> object:
            with self._mutex:
                self.calls += 1
                fail = self.calls == self.fail_at
            if fail:
                self.failed = name
                raise OSError(errno.EIO, "Input/output error (injected)", str(args[0]) if args else None)
            return real(*args, **kwargs)

        return call


class _FaultyOS:
    WRAPPED = ("link", "rename", "chmod")

    def __init__(self, plan: _FaultPlan) -> None:
        self._plan = plan

    def __getattr__(self, name: str) -> object:
        attr = getattr(os, name)
        return self._plan.wrap(name, attr) if name in self.WRAPPED else attr


def _install_faults(monkeypatch: pytest.MonkeyPatch, plan: _FaultPlan) -> None:
    monkeypatch.setattr(create_module, "os", _FaultyOS(plan))
    for name in ("copy_and_hash", "write_file", "fsync_dir", "sync_filesystem"):
        monkeypatch.setattr(create_module, name, plan.wrap(name, getattr(create_module, name)))


@pytest.mark.usefixtures("no_racy_window")
def test_failing_the_kth_filesystem_call_for_every_k(sandbox: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """DESIGN promise 1: make the k-th filesystem call fail, for every k; never a bad SUCCESS backup."""
    manager = RecoveryManager(site=sandbox)
    first = manager.create_backup()
    counting = _FaultPlan(fail_at=None)
    with monkeypatch.context() as patch:
        _install_faults(patch, counting)
        (sandbox / "state" / "session.json").write_text('{"tick": 0}')
        manager.create_backup()
    total = counting.calls
    assert total >= 15  # links, a copy, chmods, the rename, three format files, syncs

    outcomes: dict[str, int] = {}
    for k in range(1, total + 1):
        (sandbox / "state" / "session.json").write_text(f'{{"tick": {k}}}')
        before = site_snapshot(sandbox)
        known = {b.backup_id for b in RecoveryManager(site=sandbox).list_backups()}
        plan = _FaultPlan(fail_at=k)
        with monkeypatch.context() as patch:
            _install_faults(patch, plan)
            try:
                created: str | None = manager.create_backup()
            except BackupIncomplete as exc:
                created = None
                assert "injected" in str(exc)
                outcome = "partial"
            except BackupError as exc:
                created = None
                assert "injected" in str(exc), str(exc)
                outcome = "error"
            else:
                outcome = "success"
        assert plan.failed is not None, f"call {k} was never made"
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        assert tmp_leftovers(manager) == [], (k, plan.failed)
        assert site_snapshot(sandbox) == before
        fresh = RecoveryManager(site=sandbox)
        listed = fresh.list_backups()
        assert known <= {b.backup_id for b in listed}, "an earlier backup was lost"
        for metadata in listed:
            if metadata.status is BackupStatus.SUCCESS:
                report = fresh.verify_backup(metadata.backup_id, read_data=True)
                assert report.ok, (k, plan.failed, report.summary())
        if created is not None:
            assert fresh.get_backup(created).status is BackupStatus.SUCCESS
    assert outcomes.get("error", 0) > 0
    assert_backup_sound(manager, first)
    assert_backup_sound(manager, manager.create_backup())


def test_error_after_rename_does_not_claim_nothing_was_stored(sandbox: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    manager = RecoveryManager(site=sandbox)
    real_fsync_dir = create_module.fsync_dir

    def failing_fsync_dir(path: Path) -> None:
        if Path(path) == manager.backup_dir:
            raise OSError(errno.EIO, "Input/output error", str(path))
        real_fsync_dir(path)

    monkeypatch.setattr(create_module, "fsync_dir", failing_fsync_dir)
    with pytest.raises(BackupError) as caught:
        manager.create_backup()
    monkeypatch.undo()
    stored = RecoveryManager(site=sandbox).list_backups()
    # Either nothing is stored (as the message says) or the message must not say so.
    assert stored == [] or "Nothing was stored" not in str(caught.value)


@pytest.mark.usefixtures("no_racy_window")
def test_damaged_parent_is_not_propagated_into_a_new_success_backup(sandbox: Path) -> None:
    manager = RecoveryManager(site=sandbox)
    manager.create_backup()
    (sandbox / "data" / "positions.csv").write_text("symbol,qty\nBTC/USD,3\n")
    parent = manager.create_backup()  # holds its own copy of positions.csv
    damaged = manager._get_backup_dir(parent) / "data" / "positions.csv"
    damaged.chmod(0o644)
    with damaged.open("r+b") as handle:
        handle.truncate(3)
    child = manager.create_backup()  # the site is intact
    fresh = RecoveryManager(site=sandbox)
    status = fresh.get_backup(child).status
    report = fresh.verify_backup(child, read_data=False)
    assert status is not BackupStatus.SUCCESS or report.ok, report.summary()


def test_stray_tmp_named_file_does_not_block_backups(sandbox: Path) -> None:
    (sandbox / "backups" / ".tmp-notes").write_text("someone's scratch file\n")
    manager = RecoveryManager(site=sandbox)
    assert manager.list_backups() == []
    assert_backup_sound(manager, manager.create_backup())


def test_file_deleted_between_scan_and_copy_is_simply_not_in_the_backup(
    sandbox: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer's temp file renamed away mid-backup must not make the backup PARTIAL."""
    import recovery_lib.backup.create as create

    transient = sandbox / "state" / ".session.json.abc123.tmp"
    transient.write_text("{}")
    real = create.copy_and_hash

    def vanish_first(source: Path, target: Path, mode: int):  # noqa: ANN202
        if source.name == transient.name:
            source.unlink()
        return real(source, target, mode)

    monkeypatch.setattr(create, "copy_and_hash", vanish_first)
    manager = RecoveryManager(site=sandbox)
    backup_id = manager.create_backup()
    metadata = manager.get_backup(backup_id)
    assert metadata.status is BackupStatus.SUCCESS and metadata.problems == []
    report = manager.verify_backup(backup_id)
    assert report.ok
    assert "state/.session.json.abc123.tmp" not in {entry.path for entry in report.manifest.files}
