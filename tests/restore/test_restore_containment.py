"""Restore containment: a hostile backup (absolute or ``..`` paths, symlinks, other top-level
names) never writes outside the site or outside the categories asked for.

Every test works on a private copy of the sandbox site (``sandbox`` fixture) with real files; a
failure path always checks both that the failure is reported and that nothing was lost.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
from pathlib import Path

import pytest
from restore_helpers import backup_path, corrupt_config, files_under, pre_recovery_ids, site_state, snapshot

from recovery_lib.backup import FileEntry, Manifest
from recovery_lib.backup.model import read_metadata, render_sums
from recovery_lib.manager import RecoveryManager
from recovery_lib.restore.journal import RestoreError


def make_writable(backup_dir: Path) -> None:
    """chmod u+w on a backup directory and everything in it (backups are read-only)."""
    for folder, _dirs, files in os.walk(backup_dir):
        os.chmod(folder, stat.S_IMODE(os.stat(folder).st_mode) | stat.S_IWUSR)
        for name in files:
            path = os.path.join(folder, name)
            os.chmod(path, stat.S_IMODE(os.stat(path).st_mode) | stat.S_IWUSR)


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory next to the site that a restore must never write into."""
    watched = tmp_path / "outside"
    watched.mkdir()
    (watched / "keep.txt").write_text("not part of the site\n")
    return watched


# --- containment ---------------------------------------------------------------------------------


def test_a_symlink_where_a_restored_directory_goes_is_refused(sandbox: Path, backed_up, outside: Path) -> None:
    manager, backup_id = backed_up
    shutil.move(sandbox / "data", outside / "data")
    (outside / "data/trades.csv").write_text("trade_id\n")  # a restore would want to replace this
    (sandbox / "data").symlink_to(outside / "data", target_is_directory=True)
    before = site_state(sandbox)
    watched = snapshot(outside, dir_mtimes=True)

    assert manager.restore_backup(backup_id, restore_config=True, restore_data=True) is False
    assert "symlink" in manager.last_error and str(sandbox / "data") in manager.last_error
    with pytest.raises(RestoreError, match="symlink"):
        manager.plan_restore(backup_id, restore_data=True)

    assert snapshot(outside, dir_mtimes=True) == watched
    assert site_state(sandbox) == before
    assert pre_recovery_ids(sandbox) == []


def test_a_plan_made_before_a_symlink_was_planted_is_refused(sandbox: Path, backed_up, outside: Path) -> None:
    manager, backup_id = backed_up
    (sandbox / "data/trades.csv").write_text("trade_id\n")
    plan = manager.plan_restore(backup_id, restore_data=True)
    shutil.move(sandbox / "data", outside / "data")
    (sandbox / "data").symlink_to(outside / "data", target_is_directory=True)
    watched = snapshot(outside, dir_mtimes=True)

    with pytest.raises(RestoreError, match="(?i)plan again"):
        manager.apply_restore(plan)

    assert snapshot(outside, dir_mtimes=True) == watched
    assert (sandbox / "data").is_symlink()


def test_a_symlinked_parent_of_a_category_path_is_refused(sandbox: Path, outside: Path) -> None:
    recovery_toml = sandbox / "recovery.toml"
    recovery_toml.write_text(recovery_toml.read_text() + '\n[paths]\ndata = ["var/data"]\n')
    (sandbox / "var").mkdir()
    shutil.move(sandbox / "data", sandbox / "var/data")
    manager = RecoveryManager(site=sandbox)
    backup_id = manager.create_backup()
    assert "var/data/trades.csv" in files_under(backup_path(manager, backup_id), "var")
    shutil.move(sandbox / "var", outside / "var")
    (sandbox / "var").symlink_to(outside / "var", target_is_directory=True)
    (outside / "var/data/trades.csv").unlink()
    watched = snapshot(outside, dir_mtimes=True)
    before = site_state(sandbox)

    manager = RecoveryManager(site=sandbox)
    assert manager.restore_backup(backup_id, restore_config=False, restore_data=True) is False
    assert "symlink" in manager.last_error and str(sandbox / "var") in manager.last_error

    assert snapshot(outside, dir_mtimes=True) == watched
    assert site_state(sandbox) == before


HOSTILE_ENTRIES = {
    "absolute": ("{outside}/evil.csv", "is absolute"),
    "dotdot": ("data/../../outside/evil.csv", "'..' component"),
    "backslash": ("data\\evil.csv", "backslash"),
    "nul": ("data/evil\0.csv", "NUL"),
    "duplicate": ("data/trades.csv", "duplicated"),
}


@pytest.mark.parametrize("kind", sorted(HOSTILE_ENTRIES))
def test_a_hostile_manifest_entry_is_reported_and_refused(sandbox: Path, backed_up, outside: Path, kind: str) -> None:
    manager, backup_id = backed_up
    backup = backup_path(manager, backup_id)
    os.chmod(backup, 0o755)
    os.chmod(backup / "manifest.json", 0o644)
    document = json.loads((backup / "manifest.json").read_text())
    hostile_path, complaint = HOSTILE_ENTRIES[kind]
    template = next(f for f in document["files"] if f["path"] == "data/trades.csv")
    document["files"].append({**template, "path": hostile_path.format(outside=outside)})
    (backup / "manifest.json").write_text(json.dumps(document))
    shutil.rmtree(sandbox / "data")
    corrupt_config(sandbox)
    before = site_state(sandbox)
    watched = snapshot(outside, dir_mtimes=True)

    report = RecoveryManager(site=sandbox).verify_backup(backup_id, read_data=True)
    assert not report.ok
    details = [str(p) for p in report.problems if p.path == "manifest.json"]
    assert any("edited" in d for d in details), details  # recomputed nothing: the hash shows the edit
    assert any(complaint in d for d in details), details

    manager = RecoveryManager(site=sandbox)
    assert manager.restore_backup(backup_id, True, True, True) is False
    assert "fails verification" in manager.last_error
    assert site_state(sandbox) == before
    assert snapshot(outside, dir_mtimes=True) == watched
    assert pre_recovery_ids(sandbox) == []


def rewrite_consistently(
    backup: Path, categories: dict[str, list[str]], files: list[FileEntry], dirs: list[str]
) -> None:
    """Replace a backup's manifest and make metadata and SHA256SUMS agree with it, as an attacker would."""
    make_writable(backup)
    manifest = Manifest(categories=categories, files=files, dirs=dirs, absent=[])
    manifest_bytes = manifest.to_json()
    manifest_sha = hashlib.sha256(manifest_bytes).hexdigest()
    sums = render_sums(manifest, manifest_sha)
    metadata = read_metadata(backup)
    metadata.manifest_sha256 = manifest_sha
    metadata.sums_sha256 = hashlib.sha256(sums).hexdigest()
    metadata.files_count = len(files)
    metadata.size_bytes = sum(entry.size for entry in files)
    for name, data in (("manifest.json", manifest_bytes), ("SHA256SUMS", sums), ("metadata.json", metadata.to_json())):
        (backup / name).write_bytes(data)


def original_entries(backup: Path) -> list[FileEntry]:
    return [FileEntry(**item) for item in json.loads((backup / "manifest.json").read_text())["files"]]


@pytest.mark.parametrize("shape", ["extra-file", "category"])
def test_a_consistent_backup_that_escapes_the_site_is_refused(
    sandbox: Path, backed_up, outside: Path, shape: str
) -> None:
    manager, backup_id = backed_up
    backup = backup_path(manager, backup_id)
    entries = original_entries(backup)
    evil = next(e for e in entries if e.path == "data/positions.csv")
    if shape == "extra-file":
        categories = {"config": ["config"], "state": ["state"], "data": ["data", "../outside"]}
        files = [*entries, FileEntry(**{**evil.to_dict(), "path": "../outside/evil.csv"})]
        dirs = ["config", "state", "data", "data/reports"]
    else:
        categories = {"data": ["../outside"]}
        files = [
            FileEntry(**{**e.to_dict(), "path": "../outside/" + e.path[len("data/") :]})
            for e in entries
            if e.path.startswith("data/")
        ]
        dirs = ["../outside", "../outside/reports"]
    rewrite_consistently(backup, categories, files, dirs)
    shutil.rmtree(sandbox / "data")
    before = site_state(sandbox)
    watched = snapshot(outside, dir_mtimes=True)

    report = RecoveryManager(site=sandbox).verify_backup(backup_id, read_data=True)
    assert not report.ok
    assert not any("edited" in str(p) for p in report.problems), report.summary()  # it is self-consistent
    assert any(p.path == "manifest.json" and "'..'" in p.detail for p in report.problems), report.summary()

    manager = RecoveryManager(site=sandbox)
    assert manager.restore_backup(backup_id, restore_config=False, restore_data=True) is False
    assert manager.restore_backup(backup_id, restore_config=False, restore_data=True, dry_run=True) is False
    assert snapshot(outside, dir_mtimes=True) == watched
    assert not (outside / "evil.csv").exists()
    assert site_state(sandbox) == before


def test_a_backup_cannot_redirect_a_category_onto_another_site_path(sandbox: Path, backed_up) -> None:
    manager, backup_id = backed_up
    backup = backup_path(manager, backup_id)
    entries = original_entries(backup)
    make_writable(backup)
    os.rename(backup / "data", backup / "exchange")
    files = [
        FileEntry(**{**e.to_dict(), "path": "exchange/" + e.path[len("data/") :]}) if e.path.startswith("data/") else e
        for e in entries
    ]
    categories = {"config": ["config"], "state": ["state"], "data": ["exchange"], "settings": ["recovery.toml"]}
    rewrite_consistently(backup, categories, files, ["config", "state", "exchange", "exchange/reports"])
    assert RecoveryManager(site=sandbox).verify_backup(backup_id).ok  # consistent, so it verifies
    shutil.rmtree(sandbox / "data")
    before = site_state(sandbox)
    assert "exchange/account.json" in before
    manager = RecoveryManager(site=sandbox)

    assert manager.restore_backup(backup_id, restore_config=False, restore_data=True) is False
    assert "maps data to exchange" in manager.last_error
    with pytest.raises(RestoreError, match="outside this site's data paths"):
        manager.plan_restore(backup_id, restore_config=False, restore_data=True)

    assert site_state(sandbox) == before
    assert pre_recovery_ids(sandbox) == []
