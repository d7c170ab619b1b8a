"""Backup creation: the runbook's API and the on-disk format.

Every test works on real files in a private sandbox site and checks the result on disk (often with
coreutils ``sha256sum -c``), not only what the API returns.
"""

from __future__ import annotations

import hashlib
import json
import stat
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from backup_helpers import (
    BACKED_UP,
    CATEGORY_TOPS,
    SETTINGS_FILE,
    assert_backup_sound,
    backup_tree,
    category_files,
    sha256sum_check,
    site_snapshot,
    tmp_leftovers,
)

from recovery_lib.backup import BackupError, BackupMetadata, BackupStatus, BackupType
from recovery_lib.manager import RecoveryManager

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
    assert paths == set(BACKED_UP)
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
    kept = (*categories, SETTINGS_FILE)  # recovery.toml is in every backup, whatever categories were chosen
    wanted = {path: data for path, data in category_files(sandbox).items() if path.split("/")[0] in kept}
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
    began = time.monotonic()
    backup_id = manager.create_backup()
    wall = time.monotonic() - began
    metadata = manager.get_backup(backup_id)
    files = category_files(sandbox)
    assert set(files) == set(BACKED_UP)
    assert metadata.files_count == len(files) == 9  # 8 site files and recovery.toml
    assert metadata.size_bytes == sum(len(data) for data in files.values())
    assert metadata.bytes_new == metadata.size_bytes  # the first backup stores every byte
    assert metadata.files_linked == 0
    assert metadata.parent_id is None
    assert metadata.site_name == "peak-trade-sandbox"
    assert metadata.problems == []
    assert isinstance(metadata.duration_s, float)
    assert 0 < metadata.duration_s <= wall + 0.0005  # measured inside the call; stored rounded to ms


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
    assert sorted(paths) == sorted(BACKED_UP)
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
    assert ok_lines == sorted(f"{path}: OK" for path in [*BACKED_UP, "manifest.json"])

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
    (sandbox / SETTINGS_FILE).chmod(0o444)
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
    # No exchange/, run/, sandbox marker or staging leftovers; the user's file is data; recovery.toml is in
    # every backup (docs/backup-format.md).
    assert paths == {*BACKED_UP, "data/.recovery-notes"}
