"""Restore: plan, then apply, with exact results; and what a restore leaves behind it.

Every test works on a private copy of the sandbox site (``sandbox`` fixture) with real files; a
failure path always checks both that the failure is reported and that nothing was lost.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from restore_helpers import (
    CATEGORIES,
    backup_path,
    corrupt_config,
    files_under,
    leftovers,
    pre_recovery_ids,
    site_state,
    snapshot,
)

import recovery_lib.restore.apply as restore_module
from recovery_lib import health_check
from recovery_lib.backup import BackupStatus
from recovery_lib.backup.model import read_metadata
from recovery_lib.manager import PRE_RECOVERY_TAG, RecoveryManager
from recovery_lib.restore.journal import RestoreError
from recovery_lib.restore.plan import Action

# --- plan, then apply ----------------------------------------------------------------------------


def damage_every_category(site: Path) -> None:
    """config: one file replaced and one added; state: one file deleted; data: one added, one edited."""
    corrupt_config(site)
    (site / "config/local_override.toml").write_text("[live]\nenabled = false\n")
    (site / "state/session.json").unlink()
    (site / "data/reports/stray_report.csv").write_text("fill_id\n1\n")
    with open(site / "data/positions.csv", "a") as handle:
        handle.write("DOGE/USD,1.0\n")


def expected_actions(site: Path, backup: Path) -> dict[str, tuple[Action, int]]:
    """What a restore of every category must do, computed independently from the files."""
    expected: dict[str, tuple[Action, int]] = {}
    for category in CATEGORIES:
        in_backup, in_site = files_under(backup, category), files_under(site, category)
        for path, data in in_backup.items():
            if path not in in_site:
                expected[path] = (Action.CREATE, len(data))
            elif in_site[path] == data:
                expected[path] = (Action.UNCHANGED, len(data))
            else:
                expected[path] = (Action.REPLACE, len(data))
        for path, data in in_site.items():
            if path not in in_backup:
                expected[path] = (Action.DELETE, len(data))
    return expected


def test_plan_reports_every_file_and_touches_nothing(sandbox: Path, backed_up) -> None:
    manager, backup_id = backed_up
    damage_every_category(sandbox)
    whole_site = snapshot(sandbox, dir_mtimes=True)  # backups/ included
    backups_listing = sorted(p.name for p in (sandbox / "backups").iterdir())

    plan = RecoveryManager(site=sandbox).plan_restore(
        backup_id, restore_config=True, restore_state=True, restore_data=True
    )

    assert snapshot(sandbox, dir_mtimes=True) == whole_site
    assert sorted(p.name for p in (sandbox / "backups").iterdir()) == backups_listing
    actual = {a.path: (a.action, a.size) for a in plan.actions}
    assert actual == expected_actions(sandbox, backup_path(manager, backup_id))
    assert {a.path: a.action for a in plan.changes} == {
        "config/config.toml": Action.REPLACE,
        "config/local_override.toml": Action.DELETE,
        "state/session.json": Action.CREATE,
        "data/reports/stray_report.csv": Action.DELETE,
        "data/positions.csv": Action.REPLACE,
    }
    assert {a.path: a.category for a in plan.actions} == {a.path: a.path.split("/")[0] for a in plan.actions}
    assert plan.bytes_to_write == sum(
        size for action, size in actual.values() if action in (Action.CREATE, Action.REPLACE)
    )
    assert plan.blockers == ()
    summary = plan.summary()
    assert "create 1, replace 2, delete 2" in summary and "config/local_override.toml" in summary


def test_dry_run_changes_nothing_and_reports_the_same_plan(sandbox: Path, backed_up) -> None:
    _, backup_id = backed_up
    damage_every_category(sandbox)
    whole_site = snapshot(sandbox, dir_mtimes=True)
    manager = RecoveryManager(site=sandbox)

    assert manager.restore_backup(backup_id, restore_config=True, restore_state=True, restore_data=True, dry_run=True)

    assert snapshot(sandbox, dir_mtimes=True) == whole_site
    assert pre_recovery_ids(sandbox) == []
    dry_plan = manager.last_plan
    assert dry_plan is not None
    assert dry_plan == RecoveryManager(site=sandbox).plan_restore(backup_id, True, True, True)
    assert len(dry_plan.changes) == 5


def test_apply_does_exactly_the_plan(sandbox: Path, backed_up) -> None:
    _, backup_id = backed_up
    damage_every_category(sandbox)
    manager = RecoveryManager(site=sandbox)
    plan = manager.plan_restore(backup_id, restore_config=True, restore_state=True, restore_data=True)
    before = {c: files_under(sandbox, c) for c in CATEGORIES}

    result = manager.apply_restore(plan)

    after = {c: files_under(sandbox, c) for c in CATEGORIES}
    old = {p: d for files in before.values() for p, d in files.items()}
    new = {p: d for files in after.values() for p, d in files.items()}
    by_action = {action: {a.path for a in plan.actions if a.action is action} for action in Action}
    assert set(new) - set(old) == by_action[Action.CREATE]
    assert set(old) - set(new) == by_action[Action.DELETE]
    assert {p for p in set(old) & set(new) if old[p] != new[p]} == by_action[Action.REPLACE]
    assert {p for p in set(old) & set(new) if old[p] == new[p]} == by_action[Action.UNCHANGED]
    assert result.ok and result.problems == []
    assert result.plan is plan
    assert result.files_written == len(by_action[Action.CREATE]) + len(by_action[Action.REPLACE])
    assert result.bytes_written == plan.bytes_to_write
    assert manager.last_result is result


@pytest.mark.parametrize("edit", ["modify", "add", "delete"])
def test_apply_refuses_a_plan_when_the_site_changed_since(sandbox: Path, backed_up, edit: str) -> None:
    _, backup_id = backed_up
    corrupt_config(sandbox)
    manager = RecoveryManager(site=sandbox)
    plan = manager.plan_restore(backup_id, restore_config=True, restore_data=True)
    if edit == "modify":
        with open(sandbox / "data/trades.csv", "a") as handle:
            handle.write("T999999,2026-11-20T12:00:00Z,BTC/USD,buy,0.0001,43000.0\n")
    elif edit == "add":
        (sandbox / "data/reports/late_report.csv").write_text("fill_id\n")
    else:
        (sandbox / "config/config.toml").unlink()
    whole_site = snapshot(sandbox, dir_mtimes=True)

    with pytest.raises(RestoreError, match="(?i)changed since.*plan again"):
        manager.apply_restore(plan)

    assert snapshot(sandbox, dir_mtimes=True) == whole_site  # not even a pre-recovery backup
    assert leftovers(sandbox) == []


def test_apply_detects_an_edit_that_kept_size_and_mtime(sandbox: Path, backed_up) -> None:
    """An in-place edit whose size and mtime are put back is still a change (ctime tells)."""
    manager, backup_id = backed_up
    corrupt_config(sandbox)
    plan = manager.plan_restore(backup_id, restore_config=True, restore_data=True)
    assert {a.path: a.action for a in plan.actions}["data/positions.csv"] is Action.UNCHANGED
    positions = sandbox / "data/positions.csv"
    info = positions.stat()
    data = bytearray(positions.read_bytes())
    data[-2] ^= 0x01
    with open(positions, "r+b") as handle:  # in place: same inode, same size
        handle.write(bytes(data))
    os.utime(positions, ns=(info.st_atime_ns, info.st_mtime_ns))
    edited = snapshot(sandbox, dir_mtimes=True)

    with pytest.raises(RestoreError, match="(?i)changed since.*plan again"):
        manager.apply_restore(plan)

    assert snapshot(sandbox, dir_mtimes=True) == edited
    # Planned again, the edited file is to be replaced, and the restore puts the backup's bytes back.
    plan = manager.plan_restore(backup_id, restore_config=True, restore_data=True)
    assert {a.path: a.action for a in plan.actions}["data/positions.csv"] is Action.REPLACE
    assert manager.apply_restore(plan).ok
    assert positions.read_bytes() == (backup_path(manager, backup_id) / "data/positions.csv").read_bytes()


# --- after a restore -----------------------------------------------------------------------------


def test_restore_replaces_chosen_categories_exactly_and_keeps_everything_else(sandbox: Path, backed_up) -> None:
    _, backup_id = backed_up
    damage_every_category(sandbox)
    (sandbox / "data/reports/nested").mkdir()
    (sandbox / "data/reports/nested/extra.csv").write_bytes(b"only in the site\n")
    before = site_state(sandbox)
    removed = {
        path: data
        for c in ("config", "data")
        for path, data in files_under(sandbox, c).items()
        if path not in files_under(backup_path(RecoveryManager(site=sandbox), backup_id), c)
    }
    assert set(removed) == {
        "config/local_override.toml",
        "data/reports/stray_report.csv",
        "data/reports/nested/extra.csv",
    }
    manager = RecoveryManager(site=sandbox)

    assert manager.restore_backup(backup_id, restore_config=True, restore_state=False, restore_data=True) is True

    good = backup_path(manager, backup_id)
    for category in ("config", "data"):
        assert files_under(sandbox, category) == files_under(good, category), category
    assert not (sandbox / "data/reports/nested").exists()
    after = site_state(sandbox)
    for path, entry in before.items():  # state and non-category paths byte-identical (mode, mtime too)
        if path.split("/")[0] not in ("config", "data"):
            assert after.get(path) == entry, path
    assert {p for p in after if p.split("/")[0] not in ("config", "data")} == {
        p for p in before if p.split("/")[0] not in ("config", "data")
    }
    # Files the restore removed are kept in the pre-recovery backup, byte for byte.
    result = manager.last_result
    assert result is not None and result.ok
    assert pre_recovery_ids(sandbox) == [result.pre_recovery_backup_id]
    snapshot_dir = backup_path(manager, result.pre_recovery_backup_id)
    for path, data in removed.items():
        assert (snapshot_dir / path).read_bytes() == data, path
    assert (snapshot_dir / "config/config.toml").read_bytes() == before["config/config.toml"][1]
    pre = read_metadata(snapshot_dir)
    assert pre.status is BackupStatus.SUCCESS and PRE_RECOVERY_TAG in pre.tags
    assert RecoveryManager(site=sandbox).verify_backup(result.pre_recovery_backup_id).ok
    # "latest" is still the recovery point, never the snapshot of the broken state.
    assert RecoveryManager(site=sandbox).get_backup("latest").backup_id == backup_id
    assert leftovers(sandbox) == []


def test_restore_into_an_empty_site_needs_no_pre_recovery_backup(sandbox: Path, backed_up) -> None:
    manager, backup_id = backed_up
    for category in CATEGORIES:
        shutil.rmtree(sandbox / category)

    result = manager.apply_restore(manager.plan_restore(backup_id, True, True, True))

    assert result.ok and result.pre_recovery_backup_id is None
    good = backup_path(manager, backup_id)
    for category in CATEGORIES:
        assert files_under(sandbox, category) == files_under(good, category)
    assert health_check.run_all(sandbox)["data"].healthy


def test_restore_returns_false_when_the_result_does_not_verify(
    sandbox: Path, backed_up, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, backup_id = backed_up
    corrupt_config(sandbox)
    broken_config = (sandbox / "config/config.toml").read_bytes()
    real_swap_in = restore_module.swap_in

    def swap_then_lose_a_file(site_root: Path, journal) -> None:  # noqa: ANN001
        real_swap_in(site_root, journal)
        (site_root / "data/positions.csv").unlink()  # e.g. something deleted it right after the swap

    monkeypatch.setattr(restore_module, "swap_in", swap_then_lose_a_file)
    manager = RecoveryManager(site=sandbox)

    assert manager.restore_backup(backup_id, restore_config=True, restore_data=True) is False

    assert manager.last_result is not None and not manager.last_result.ok
    assert any("data/positions.csv" in p and "missing" in p for p in manager.last_result.problems)
    # Nothing was lost: the state before the restore is in the pre-recovery backup.
    pre_dir = backup_path(manager, manager.last_result.pre_recovery_backup_id)
    assert (pre_dir / "config/config.toml").read_bytes() == broken_config
    assert (pre_dir / "data/positions.csv").is_file()


def test_a_category_missing_from_the_backup_is_refused(sandbox: Path) -> None:
    manager = RecoveryManager(site=sandbox)
    config_only = manager.create_backup(include_config=True, include_state=False, include_data=False)
    corrupt_config(sandbox)
    (sandbox / "data/trades.csv").write_text("trade_id\n")
    before = snapshot(sandbox, dir_mtimes=True)

    assert manager.restore_backup(config_only, restore_config=True, restore_data=True) is False
    assert "data" in manager.last_error and config_only in manager.last_error
    with pytest.raises(RestoreError, match=r"holds config, settings, not data"):
        manager.plan_restore(config_only, restore_config=False, restore_data=True)
    # All or nothing: the config it does hold was not restored either.
    assert snapshot(sandbox, dir_mtimes=True) == before
    assert manager.restore_backup(config_only, restore_config=True) is True
    assert files_under(sandbox, "config") == files_under(backup_path(manager, config_only), "config")
