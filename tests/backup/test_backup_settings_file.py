"""Issue 15 part 5: every backup holds the site's recovery.toml, whatever categories it was asked for.

It sits in the manifest under the category ``settings``, is hashed in SHA256SUMS like every file (so
`sha256sum -c` checks it), is hard-linked when unchanged, and changes nothing of what the backup is:
``metadata.json`` categories and the backup type still name only config, state and data. Backups
taken before (without it) stay readable and restorable.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from backup_helpers import assert_backup_sound

from recovery_lib.backup.model import SETTINGS, BackupType
from recovery_lib.manager import RecoveryManager


def _manifest(manager: RecoveryManager, backup_id: str) -> dict:
    return json.loads((manager.backup_dir / backup_id / "manifest.json").read_text())


@pytest.mark.parametrize(
    "flags, kind",
    [
        ((True, True, True), BackupType.FULL),
        ((True, False, False), BackupType.CONFIG),
        ((False, True, False), BackupType.STATE),
        ((False, False, True), BackupType.DATA),
        ((False, True, True), BackupType.MIXED),
    ],
)
def test_every_backup_holds_recovery_toml(sandbox: Path, flags: tuple[bool, bool, bool], kind: BackupType) -> None:
    manager = RecoveryManager(site=sandbox)
    backup_id = manager.create_backup(*flags, push=False)
    metadata = manager.get_backup(backup_id)
    chosen = [c for c, wanted in zip(("config", "state", "data"), flags, strict=True) if wanted]
    assert metadata.backup_type is kind and metadata.categories == chosen  # what the backup *is* is unchanged
    manifest = _manifest(manager, backup_id)
    assert manifest["categories"][SETTINGS] == ["recovery.toml"]
    assert list(manifest["categories"]) == [*chosen, SETTINGS]
    stored = manager.backup_dir / backup_id / "recovery.toml"
    assert stored.read_bytes() == (sandbox / "recovery.toml").read_bytes()
    assert "  recovery.toml\n" in (manager.backup_dir / backup_id / "SHA256SUMS").read_text()
    assert_backup_sound(manager, backup_id)  # our verifier and coreutils' sha256sum -c


def test_unchanged_recovery_toml_is_hard_linked(sandbox: Path, no_racy_window: None) -> None:
    manager = RecoveryManager(site=sandbox)
    first = manager.create_backup(push=False)
    second = manager.create_backup(include_state=False, include_data=False, push=False)
    inode = [os.stat(manager.backup_dir / b / "recovery.toml").st_ino for b in (first, second)]
    assert inode[0] == inode[1]
    (sandbox / "recovery.toml").write_text((sandbox / "recovery.toml").read_text() + "# edited\n")
    third = manager.create_backup(include_state=False, include_data=False, push=False)
    assert (manager.backup_dir / third / "recovery.toml").read_text().endswith("# edited\n")
    assert os.stat(manager.backup_dir / third / "recovery.toml").st_ino != inode[0]
    assert_backup_sound(manager, third)


def test_a_site_without_recovery_toml_makes_backups_as_before(sandbox: Path) -> None:
    (sandbox / "recovery.toml").unlink()
    manager = RecoveryManager(site=sandbox)
    backup_id = manager.create_backup(push=False)
    assert SETTINGS not in _manifest(manager, backup_id)["categories"]
    assert not (manager.backup_dir / backup_id / "recovery.toml").exists()
    assert_backup_sound(manager, backup_id)


def test_a_category_that_lists_recovery_toml_holds_it_once(sandbox: Path) -> None:
    toml = sandbox / "recovery.toml"
    toml.write_text('[paths]\nconfig = ["config", "recovery.toml"]\n' + toml.read_text())
    manager = RecoveryManager(site=sandbox)
    with_config = manager.create_backup(include_state=False, include_data=False, push=False)
    categories = _manifest(manager, with_config)["categories"]
    assert categories == {"config": ["config", "recovery.toml"]}  # in config, not twice
    paths = [entry["path"] for entry in _manifest(manager, with_config)["files"]]
    assert paths.count("recovery.toml") == 1
    # A backup without config still holds it, under settings.
    state_only = manager.create_backup(include_config=False, include_data=False, push=False)
    assert _manifest(manager, state_only)["categories"] == {"state": ["state"], SETTINGS: ["recovery.toml"]}
    for backup_id in (with_config, state_only):
        assert_backup_sound(manager, backup_id)


def test_a_symlinked_recovery_toml_is_not_followed(
    sandbox: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    real = tmp_path / "elsewhere.toml"
    real.write_bytes((sandbox / "recovery.toml").read_bytes())
    (sandbox / "recovery.toml").unlink()
    (sandbox / "recovery.toml").symlink_to(real)
    manager = RecoveryManager(site=sandbox)
    backup_id = manager.create_backup(push=False)
    assert manager.get_backup(backup_id).status.value == "success"  # the backup itself is not the worse for it
    assert SETTINGS not in _manifest(manager, backup_id)["categories"]
    assert "recovery.toml is not a regular file" in caplog.text
    assert_backup_sound(manager, backup_id)


def test_recovery_toml_alone_is_still_nothing_to_back_up(tmp_path: Path) -> None:
    """A lost host's site holds only recovery.toml: that is no backup of config, state or data."""
    from recovery_lib.errors import NothingToBackUp

    site = tmp_path / "site"
    site.mkdir()
    (site / "recovery.toml").write_text('[site]\nname = "lost"\n')
    with pytest.raises(NothingToBackUp):
        RecoveryManager(site=site).create_backup(push=False)
    assert not (site / "backups").exists() or not any((site / "backups").iterdir())
