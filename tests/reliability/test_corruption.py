"""Corruption matrix: every file kind of a backup x every way a disk or a person damages it.

For each (file, corruption) pair the damage must be named by ``verify_backup``; a restore from the
damaged backup must refuse, say why, and leave the site, the other backups and the backup directory
as they were; ``latest()`` must skip the damaged newest backup and say so; and a restore plan made
while the backup was still sound must be refused once the backup is damaged.

Damaging ``metadata.json`` can make a backup *unreadable* (it is then not listed at all but named
in ``RecoveryManager.unreadable``) instead of listed-but-failing: both are accepted, as long as the
user sees it, it is never restored from and ``latest()`` passes over it.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from site_state import backups_bytes, leftovers, make_tiny_site
from snapshots import tree

from recovery_lib.errors import RecoveryError
from recovery_lib.manager import PRE_RECOVERY_TAG, RecoveryManager

# The file kinds of a backup: one file of each category, and the three format files.
FILES: dict[str, str] = {
    "data": "data/trades.csv",
    "config": "config/config.toml",
    "state": "state/session.json",
    "manifest": "manifest.json",
    "metadata": "metadata.json",
    "sums": "SHA256SUMS",
}


# --- the corruptions ------------------------------------------------------------------------------
# Each takes (backup dir, file relative to it, a directory outside the site) and returns the backup-
# relative path the report must name. Files are replaced (new inode), never edited in place, so a copy
# hard-linked from an older backup is not damaged with it.


def _writable(path: Path) -> None:
    """chmod u+w on ``path``'s directory and on ``path`` itself (backups are read-only)."""
    for target in (path.parent, path):
        if target.exists() and not target.is_symlink():
            target.chmod(stat.S_IMODE(target.stat().st_mode) | stat.S_IWUSR)


def _replace_bytes(path: Path, data: bytes) -> None:
    mode = stat.S_IMODE(path.stat().st_mode)
    _writable(path)
    path.unlink()
    path.write_bytes(data)
    path.chmod(mode)


def flip_byte(backup: Path, relative: str, elsewhere: Path) -> str:
    path = backup / relative
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    _replace_bytes(path, bytes(data))
    return relative


def truncate(backup: Path, relative: str, elsewhere: Path) -> str:
    path = backup / relative
    _replace_bytes(path, path.read_bytes()[: path.stat().st_size // 2])
    return relative


def delete(backup: Path, relative: str, elsewhere: Path) -> str:
    path = backup / relative
    _writable(path)
    path.unlink()
    return relative


def add_extra_file(backup: Path, relative: str, elsewhere: Path) -> str:
    extra = f"{relative}.extra"
    _writable(backup / extra)  # opens the directory the extra file goes into
    (backup / extra).write_text("not part of the backup\n")
    return extra


def symlink_to_identical_copy(backup: Path, relative: str, elsewhere: Path) -> str:
    """The symlink points at a file with exactly the right bytes: still not the backup's own file."""
    path = backup / relative
    copy = elsewhere / relative.replace("/", "_")
    shutil.copyfile(path, copy)
    _writable(path)
    path.unlink()
    path.symlink_to(copy)
    return relative


def symlink_outside(backup: Path, relative: str, elsewhere: Path) -> str:
    """The symlink points at an unrelated file outside the site."""
    target = elsewhere / "secret.txt"
    target.write_text("a file outside the site that no backup holds\n")
    path = backup / relative
    _writable(path)
    path.unlink()
    path.symlink_to(target)
    return relative


CORRUPTIONS: dict[str, Callable[[Path, str, Path], str]] = {
    "flip-byte": flip_byte,
    "truncate": truncate,
    "delete": delete,
    "extra-file": add_extra_file,
    "symlink-identical": symlink_to_identical_copy,
    "symlink-outside": symlink_outside,
}

MATRIX = [(kind, corruption) for kind in FILES for corruption in CORRUPTIONS]
MATRIX_IDS = [pytest.param(kind, corruption, id=f"{kind}-{corruption}") for kind, corruption in MATRIX]

# --- helpers ------------------------------------------------------------------------------------


def site_outside_backups(site: Path) -> dict[str, tuple]:
    return tree(site, exclude=("backups",))


def damage_site(site: Path) -> None:
    """Give every category something to restore, so a restore that went ahead would show."""
    (site / "config/config.toml").write_text("[exchange\nbroken = \n")
    (site / "state/session.json").unlink()
    (site / "data/trades.csv").write_text("id,symbol\n")
    (site / "data/stray.csv").write_text("not in any backup\n")


def pre_recovery_ids(site: Path) -> list[str]:
    return [m.backup_id for m in RecoveryManager(site=site).list_backups(tags=[PRE_RECOVERY_TAG])]


def listed_ids(manager: RecoveryManager) -> list[str]:
    return [m.backup_id for m in manager.list_backups()]


def named_in(report_problems: list, summary: str, named: str) -> bool:
    return any(p.path == named for p in report_problems) and named in summary


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """A tiny site with two sound full backups, made once per module: (site, older id, newest id)."""
    site = make_tiny_site(tmp_path_factory.mktemp("corruption-template") / "site")
    manager = RecoveryManager(site=site)
    older = manager.create_backup(description="older")
    newest = manager.create_backup(description="newest")
    assert manager.verify_backup(older, read_data=True).ok and manager.verify_backup(newest, read_data=True).ok
    return site, older, newest


def two_backups(template: tuple[Path, str, str], tmp_path: Path) -> tuple[Path, Path, str, str]:
    """A private copy of the template; returns (site, a directory outside it, older id, newest id)."""
    site_template, older, newest = template
    site = tmp_path / "site"
    shutil.copytree(site_template, site, symlinks=True)  # hard links become copies: no shared inodes
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    return site, elsewhere, older, newest


def corrupt(site: Path, backup_id: str, kind: str, corruption: str, elsewhere: Path) -> str:
    backup = RecoveryManager(site=site)._get_backup_dir(backup_id)
    return CORRUPTIONS[corruption](backup, FILES[kind], elsewhere)


# --- verify ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "corruption"), MATRIX_IDS)
def test_verify_names_the_damaged_file(
    template: tuple[Path, str, str], tmp_path: Path, kind: str, corruption: str
) -> None:
    """Promise: every corruption of every file kind is reported by verify, naming the file."""
    site, elsewhere, older, newest = two_backups(template, tmp_path)
    named = corrupt(site, newest, kind, corruption, elsewhere)

    manager = RecoveryManager(site=site)
    report = manager.verify_backup(newest, read_data=True)
    assert not report.ok, f"{kind}/{corruption} not reported"
    assert named_in(report.problems, report.summary(), named), report.summary()
    assert manager.verify_backup(older, read_data=True).ok  # the damage stayed in the damaged backup
    if newest not in listed_ids(manager):  # a damaged metadata.json may make it unreadable: still named
        assert [entry.backup_id for entry in manager.unreadable] == [newest], manager.unreadable


# --- restore --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "corruption"), MATRIX_IDS)
def test_restore_from_a_damaged_backup_is_refused_and_changes_nothing(
    template: tuple[Path, str, str], tmp_path: Path, kind: str, corruption: str
) -> None:
    """Promise: a damaged backup is never restored from; the refusal says why; site and backups are kept."""
    site, elsewhere, older, newest = two_backups(template, tmp_path)
    named = corrupt(site, newest, kind, corruption, elsewhere)
    damage_site(site)
    before = site_outside_backups(site)
    backups_before = backups_bytes(site / "backups")

    manager = RecoveryManager(site=site)
    assert manager.restore_backup(newest, restore_config=True, restore_state=True, restore_data=True) is False
    assert newest in manager.last_error, manager.last_error
    assert named in manager.last_error or FILES[kind] in manager.last_error, manager.last_error

    assert site_outside_backups(site) == before
    assert leftovers(site) == []
    after = backups_bytes(site / "backups")
    assert {name: after.get(name) for name in backups_before} == backups_before  # no backup was changed
    assert manager.restore_backup(older, True, True, True) is True  # and the site can still be recovered


@pytest.mark.parametrize(
    ("kind", "corruption"),
    MATRIX_IDS,
)
def test_a_refused_restore_takes_no_pre_recovery_backup(
    template: tuple[Path, str, str], tmp_path: Path, kind: str, corruption: str
) -> None:
    """Promise: a refused restore adds nothing to the backup directory either (no pre-recovery snapshot)."""
    site, elsewhere, _older, newest = two_backups(template, tmp_path)
    corrupt(site, newest, kind, corruption, elsewhere)
    damage_site(site)
    listing = sorted(os.listdir(site / "backups"))

    manager = RecoveryManager(site=site)
    assert manager.restore_backup(newest, restore_config=True, restore_state=True, restore_data=True) is False
    assert pre_recovery_ids(site) == []
    assert sorted(os.listdir(site / "backups")) == listing


def test_a_backup_with_a_corrupted_data_file_is_not_used_for_a_config_restore(
    template: tuple[Path, str, str], tmp_path: Path
) -> None:
    """Promise (docs/backup-format.md): a backup that fails verification is never restored from."""
    site, elsewhere, _older, newest = two_backups(template, tmp_path)
    corrupt(site, newest, "data", "flip-byte", elsewhere)
    assert not RecoveryManager(site=site).verify_backup(newest, read_data=True).ok
    damage_site(site)
    before = site_outside_backups(site)

    manager = RecoveryManager(site=site)
    outcome = manager.restore_backup(newest, restore_config=True, restore_state=False, restore_data=False)

    assert outcome is False
    assert "data/trades.csv" in manager.last_error
    assert site_outside_backups(site) == before


# --- latest ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "corruption"), MATRIX_IDS)
def test_latest_skips_the_damaged_newest_backup_and_says_so(
    template: tuple[Path, str, str], tmp_path: Path, kind: str, corruption: str
) -> None:
    """Promise: latest() is the newest backup that verifies; the damaged one passed over is explained."""
    site, elsewhere, older, newest = two_backups(template, tmp_path)
    named = corrupt(site, newest, kind, corruption, elsewhere)

    manager = RecoveryManager(site=site)
    assert manager.latest().backup_id == older
    if newest in listed_ids(manager):
        notes = [note for note in manager.notes if newest in note]
        assert notes and "skipped" in notes[0] and named in notes[0], manager.notes
    else:  # unreadable metadata: not a candidate at all, and named as unreadable
        assert any(entry.backup_id == newest and "metadata.json" in entry.problem for entry in manager.unreadable), (
            manager.unreadable
        )
        assert any(newest in note and "unreadable" in note for note in manager.notes), manager.notes
    assert manager.get_backup("latest").backup_id == older
    assert RecoveryManager(site=site).verify_backup("latest", read_data=True).ok


# --- a plan made before the damage ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "corruption"),
    MATRIX_IDS,
)
def test_a_plan_made_before_the_damage_is_refused(
    template: tuple[Path, str, str], tmp_path: Path, kind: str, corruption: str
) -> None:
    """Promise: apply_restore re-checks the backup: damage after planning is refused and changes nothing."""
    site, elsewhere, _older, newest = two_backups(template, tmp_path)
    damage_site(site)
    manager = RecoveryManager(site=site)
    plan = manager.plan_restore(newest, restore_config=True, restore_state=True, restore_data=True)
    assert plan.changes  # the plan would have changed the site
    named = corrupt(site, newest, kind, corruption, elsewhere)
    before = site_outside_backups(site)
    backups_before = backups_bytes(site / "backups")

    with pytest.raises(RecoveryError) as caught:
        manager.apply_restore(plan)

    message = str(caught.value)
    assert named in message or FILES[kind] in message, message
    assert site_outside_backups(site) == before
    assert leftovers(site) == []
    assert backups_bytes(site / "backups") == backups_before  # nothing changed, nothing added
