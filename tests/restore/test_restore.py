"""Restore: plan then apply, exact results, refusals that change nothing, containment, atomicity.

Every test works on a private copy of the sandbox site (``sandbox`` fixture) with real files; a
failure path always checks both that the failure is reported and that nothing was lost.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import shutil
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import recovery_lib.restore.plan as restore_module
from recovery_lib import health_check
from recovery_lib.backup import BackupStatus, FileEntry, LockedError, Manifest
from recovery_lib.backup.lock import BackupLock
from recovery_lib.backup.model import read_metadata, render_sums
from recovery_lib.manager import PRE_RECOVERY_TAG, BackupIncomplete, RecoveryManager
from recovery_lib.restore.journal import JOURNAL_NAME, RestoreError
from recovery_lib.restore.plan import Action

CATEGORIES = ("config", "state", "data")
NON_CATEGORY = ("exchange", "run", "recovery.toml", ".recovery-sandbox.json")


# --- helpers ------------------------------------------------------------------------------------


def snapshot(root: Path, exclude: tuple[str, ...] = (), dir_mtimes: bool = False) -> dict[str, tuple]:
    """Every entry under ``root`` (symlinks never followed): files with bytes, mode and mtime.

    The backup directory's lock file is only noted as present: taking the lock rewrites it.
    """
    found: dict[str, tuple] = {}
    if dir_mtimes:
        found["."] = ("dir", os.lstat(root).st_mtime_ns)
    for folder, dirs, files in os.walk(root):
        base = Path(folder)
        relative = base.relative_to(root)
        if relative == Path("."):
            dirs[:] = [d for d in dirs if d not in exclude]
            files = [f for f in files if f not in exclude]
        for name in sorted(dirs + files):
            path = base / name
            key = (relative / name).as_posix()
            info = os.lstat(path)
            if key == "backups/.lock":
                found[key] = ("lock",)  # rewritten by every operation that takes the lock; never data
            elif stat.S_ISLNK(info.st_mode):
                found[key] = ("link", os.readlink(path))
            elif stat.S_ISDIR(info.st_mode):
                found[key] = ("dir", stat.S_IMODE(info.st_mode), info.st_mtime_ns if dir_mtimes else None)
            else:
                found[key] = ("file", path.read_bytes(), stat.S_IMODE(info.st_mode), info.st_mtime_ns)
    return found


def site_state(site: Path) -> dict[str, tuple]:
    """The site without its backup directory (a restore adds a pre-recovery backup there)."""
    return snapshot(site, exclude=("backups",))


def files_under(root: Path, top: str) -> dict[str, bytes]:
    """``{site-relative path: bytes}`` of the regular files below ``root/top``."""
    base = root / top
    if not base.is_dir():
        return {}
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(base.rglob("*")) if p.is_file()}


def leftovers(site: Path) -> list[str]:
    """Restore artifacts left in the site root: staging/old trees, the journal (or its temp file)."""
    return sorted(
        p.name
        for p in site.iterdir()
        if p.name.startswith((".recovery-", "..recovery-")) and p.name != ".recovery-sandbox.json"
    )


def backup_path(manager: RecoveryManager, backup_id: str) -> Path:
    return manager._get_backup_dir(backup_id)


def corrupt_config(site: Path) -> None:
    (site / "config/config.toml").write_text('[trading\nstrategy = "unterminated\n')


def flip_byte(path: Path, offset: int = 100) -> None:
    """Change one byte of a backup file in place (same size), after making it writable."""
    os.chmod(path.parent, stat.S_IMODE(path.parent.stat().st_mode) | stat.S_IWUSR)
    os.chmod(path, stat.S_IMODE(path.stat().st_mode) | stat.S_IWUSR)
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def make_writable(backup_dir: Path) -> None:
    """chmod u+w on a backup directory and everything in it (backups are read-only)."""
    for folder, _dirs, files in os.walk(backup_dir):
        os.chmod(folder, stat.S_IMODE(os.stat(folder).st_mode) | stat.S_IWUSR)
        for name in files:
            path = os.path.join(folder, name)
            os.chmod(path, stat.S_IMODE(os.stat(path).st_mode) | stat.S_IWUSR)


def pre_recovery_ids(site: Path) -> list[str]:
    return [m.backup_id for m in RecoveryManager(site=site).list_backups(tags=[PRE_RECOVERY_TAG])]


@pytest.fixture
def backed_up(sandbox: Path) -> tuple[RecoveryManager, str]:
    """A full SUCCESS backup of the pristine sandbox."""
    manager = RecoveryManager(site=sandbox)
    return manager, manager.create_backup(description="known good")


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory next to the site that a restore must never write into."""
    watched = tmp_path / "outside"
    watched.mkdir()
    (watched / "keep.txt").write_text("not part of the site\n")
    return watched


# --- the runbook's procedures, nearly verbatim ---------------------------------------------------

IMPORTS = "from recovery_lib import RecoveryManager, BackupType, BackupStatus\n"

PROCEDURE_A_2 = (
    IMPORTS
    + """
recovery = RecoveryManager(backup_dir="backups")
backups = recovery.list_backups()

print(f"Available backups: {len(backups)}")
for backup in backups[:5]:
    print(f"  - {backup.backup_id[:30]}... ({backup.created_at})")
"""
)
PROCEDURE_A_3 = """
# Use most recent successful backup
backup_to_restore = backups[0]
print(f"Selected backup: {backup_to_restore.backup_id}")
print(f"Description: {backup_to_restore.description}")
"""
PROCEDURE_A_4 = """
success = recovery.restore_backup(
    backup_to_restore.backup_id,
    restore_config=True,
    dry_run=True
)

if success:
    print("✅ Dry-run successful, proceeding with actual restore")
else:
    print("❌ Dry-run failed, investigate before proceeding")
    # STOP HERE and escalate
"""
PROCEDURE_A_5 = """
success = recovery.restore_backup(
    backup_to_restore.backup_id,
    restore_config=True,
    restore_state=False,
    restore_data=False
)

if success:
    print("✅ Config restored successfully")
else:
    print("❌ Restore failed")
    # Escalate immediately
"""

PROCEDURE_B_2 = (
    IMPORTS
    + """
recovery = RecoveryManager()

# Find backups with data
data_backups = [
    b for b in recovery.list_backups()
    if b.backup_type in [BackupType.FULL, BackupType.DATA]
    and b.status == BackupStatus.SUCCESS
]

if not data_backups:
    print("🚨 No data backups available!")
    # Escalate immediately

backup_to_restore = data_backups[0]
print(f"Selected backup: {backup_to_restore.backup_id}")
print(f"Files: {backup_to_restore.files_count}")
print(f"Size: {backup_to_restore.size_bytes} bytes")
"""
)
PROCEDURE_B_3 = """
from datetime import datetime

backup_time = datetime.fromisoformat(
    backup_to_restore.created_at.replace('Z', '+00:00')
)
current_time = datetime.now(backup_time.tzinfo)
data_loss_window = current_time - backup_time

print(f"⚠️  Data loss window: {data_loss_window.total_seconds()/3600:.1f} hours")
print("   (All data from this period will be lost)")
"""
PROCEDURE_B_5 = """
# Create backup of current state before restore
current_backup = recovery.create_backup(
    include_data=True,
    description="Pre-recovery current state",
    tags=["pre-recovery", "emergency"]
)
print(f"Current state backed up: {current_backup}")
"""
PROCEDURE_B_6 = """
success = recovery.restore_backup(
    backup_to_restore.backup_id,
    restore_config=False,
    restore_state=False,
    restore_data=True
)

if success:
    print("✅ Data restored successfully")
else:
    print("❌ Data restore failed")
    # Escalate immediately
"""
PROCEDURE_B_7 = """
import pandas as pd

# Check positions file
positions = pd.read_csv("data/positions.csv")
print(f"✅ Positions restored: {len(positions)} rows")

# Check trades file
trades = pd.read_csv("data/trades.csv")
print(f"✅ Trades restored: {len(trades)} rows")

# Verify data makes sense
if len(positions) > 0:
    print(f"   Latest position: {positions.iloc[-1]['symbol']}")
"""

PROCEDURE_C_2 = (
    "from recovery_lib import health_check\n"
    + IMPORTS
    + """
# Run all health checks
results = health_check.run_all()
failed_checks = [name for name, r in results.items() if not r.healthy]

print(f"Failed checks: {', '.join(failed_checks)}")

# Check backup availability
recovery = RecoveryManager()
backups = recovery.list_backups()
print(f"Available backups: {len(backups)}")
"""
)
PROCEDURE_C_3 = """
# Find most recent FULL backup
full_backups = [
    b for b in backups
    if b.backup_type == BackupType.FULL
    and b.status == BackupStatus.SUCCESS
]

if not full_backups:
    print("🚨 No full backups available!")
    # May need to perform partial recovery
    # Escalate to senior engineer

recovery_backup = full_backups[0]
print(f"Recovery point: {recovery_backup.created_at}")
print(f"Description: {recovery_backup.description}")
"""
PROCEDURE_C_5 = """
print("🔧 Initiating full system restore...")

success = recovery.restore_backup(
    recovery_backup.backup_id,
    restore_config=True,
    restore_state=True,
    restore_data=True,
    dry_run=False
)

if not success:
    print("❌ CRITICAL: Full restore failed")
    # Stop here and escalate to senior engineer immediately
    raise Exception("Full restore failed")

print("✅ Full restore completed")
"""


@pytest.fixture
def runbook(sandbox: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture):
    """Run runbook snippets in one namespace with the sandbox as the current directory."""
    monkeypatch.chdir(sandbox)
    namespace: dict[str, object] = {"__name__": "__runbook__"}

    def execute(*snippets: str) -> str:
        capsys.readouterr()
        for snippet in snippets:
            exec(snippet, namespace)
        return capsys.readouterr().out

    return execute


def test_procedure_a_restores_a_corrupted_config(sandbox: Path, backed_up, runbook) -> None:
    manager, backup_id = backed_up
    good_backup = backup_path(manager, backup_id)
    corrupt_config(sandbox)
    assert not health_check.run_all(sandbox)["config"].healthy
    untouched = {top: snapshot(sandbox / top) for top in ("state", "data", "exchange", "run")}
    recovery_toml = (sandbox / "recovery.toml").read_bytes()

    out = runbook(PROCEDURE_A_2, PROCEDURE_A_3, PROCEDURE_A_4, PROCEDURE_A_5)

    assert "Available backups: 1" in out
    assert f"Selected backup: {backup_id}" in out
    assert "Description: known good" in out
    assert "✅ Dry-run successful, proceeding with actual restore" in out
    assert "✅ Config restored successfully" in out
    assert "❌" not in out
    results = health_check.run_all()
    assert results["config"].healthy, results["config"].message
    assert results["data"].healthy, results["data"].message
    assert files_under(sandbox, "config") == files_under(good_backup, "config")
    assert {top: snapshot(sandbox / top) for top in untouched} == untouched
    assert (sandbox / "recovery.toml").read_bytes() == recovery_toml


def test_procedure_b_restores_deleted_data(sandbox: Path, backed_up, runbook) -> None:
    manager, backup_id = backed_up
    good_backup = backup_path(manager, backup_id)
    shutil.rmtree(sandbox / "data")
    assert not health_check.run_all(sandbox)["data"].healthy

    out = runbook(PROCEDURE_B_2, PROCEDURE_B_3, PROCEDURE_B_5, PROCEDURE_B_6, PROCEDURE_B_7)

    assert f"Selected backup: {backup_id}" in out
    assert "Data loss window: 0.0 hours" in out
    assert "Current state backed up: " in out
    assert "✅ Data restored successfully" in out
    assert "✅ Positions restored: 8 rows" in out
    assert "✅ Trades restored: 500 rows" in out
    assert health_check.run_all()["data"].healthy
    assert files_under(sandbox, "data") == files_under(good_backup, "data")
    # The backup of the broken state recorded the missing data directory as absent, not as an error.
    snapshot_id = out.split("Current state backed up: ")[1].split()[0]
    assert read_metadata(backup_path(manager, snapshot_id)).status is BackupStatus.SUCCESS
    assert RecoveryManager(site=sandbox).get_backup("latest").backup_id == backup_id


def test_procedure_c_full_restore_after_config_and_data_loss(sandbox: Path, backed_up, runbook) -> None:
    manager, backup_id = backed_up
    good_backup = backup_path(manager, backup_id)
    corrupt_config(sandbox)
    shutil.rmtree(sandbox / "data")
    (sandbox / "state/strategy_state.json").write_text("{not json")
    non_category = {name: snapshot(sandbox / name) if (sandbox / name).is_dir() else None for name in NON_CATEGORY}
    top_files = {name: (sandbox / name).read_bytes() for name in NON_CATEGORY if (sandbox / name).is_file()}

    out = runbook(PROCEDURE_C_2, PROCEDURE_C_3, PROCEDURE_C_5)

    assert "Failed checks: config, data" in out
    assert f"Recovery point: {read_metadata(good_backup).created_at}" in out
    assert "✅ Full restore completed" in out
    results = health_check.run_all()
    assert results["config"].healthy and results["data"].healthy
    for category in CATEGORIES:
        assert files_under(sandbox, category) == files_under(good_backup, category), category
    assert {n: snapshot(sandbox / n) if (sandbox / n).is_dir() else None for n in NON_CATEGORY} == non_category
    assert {name: (sandbox / name).read_bytes() for name in top_files} == top_files


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
    with pytest.raises(RestoreError, match=r"holds config, not data"):
        manager.plan_restore(config_only, restore_config=False, restore_data=True)
    # All or nothing: the config it does hold was not restored either.
    assert snapshot(sandbox, dir_mtimes=True) == before
    assert manager.restore_backup(config_only, restore_config=True) is True
    assert files_under(sandbox, "config") == files_under(backup_path(manager, config_only), "config")


# --- refusals leave the site untouched -----------------------------------------------------------


@pytest.fixture
def live_ops(sandbox: Path) -> Iterator[subprocess.Popen]:
    """A process whose command line says live_ops (not yet in the pidfile); the site says how to stop it."""
    recovery_toml = sandbox / "recovery.toml"
    lines = [line for line in recovery_toml.read_text().splitlines() if not line.startswith(("stop =", "start ="))]
    recovery_toml.write_text(
        "\n".join(lines).replace('match = "live_ops"', 'match = "live_ops"\nstop = "pkill -f live_ops"')
    )
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "live_ops"])
    try:
        yield process
    finally:
        process.kill()
        process.wait()


@pytest.fixture
def trading_process(sandbox: Path, live_ops: subprocess.Popen) -> subprocess.Popen:
    """The trading system running: its pid is in the site's pidfile."""
    (sandbox / "run/live_ops.pid").write_text(f"{live_ops.pid}\n")
    return live_ops


def test_restore_is_refused_while_the_trading_system_runs(sandbox: Path, backed_up, trading_process) -> None:
    _, backup_id = backed_up
    corrupt_config(sandbox)
    before = snapshot(sandbox, dir_mtimes=True)
    manager = RecoveryManager(site=sandbox)

    assert manager.restore_backup(backup_id, restore_config=True) is False
    assert "running" in manager.last_error
    assert manager.restore_backup(backup_id, restore_config=True, dry_run=True) is False
    assert manager.last_plan is not None and len(manager.last_plan.blockers) == 1
    assert f"pid {trading_process.pid}" in manager.last_plan.blockers[0]
    assert "BLOCKED" in manager.last_plan.summary()
    with pytest.raises(RestoreError, match=r"running.*stop it with: cd .* && pkill -f live_ops"):
        manager.apply_restore(manager.plan_restore(backup_id, restore_config=True))

    assert snapshot(sandbox, dir_mtimes=True) == before  # not even a pre-recovery backup
    # Once it is stopped (stale pidfile), the same restore goes through.
    trading_process.kill()
    trading_process.wait()
    assert manager.restore_backup(backup_id, restore_config=True) is True
    assert health_check.run_all(sandbox)["config"].healthy


def test_a_trading_system_started_during_staging_stops_the_restore_before_the_swap(
    sandbox: Path, backed_up, live_ops: subprocess.Popen, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, backup_id = backed_up
    corrupt_config(sandbox)
    shutil.rmtree(sandbox / "data")
    real_copy = restore_module.copy_and_hash

    def copy_while_trading_starts(source: Path, target: Path, mode: int):  # noqa: ANN202
        (sandbox / "run/live_ops.pid").write_text(f"{live_ops.pid}\n")
        return real_copy(source, target, mode)

    monkeypatch.setattr(restore_module, "copy_and_hash", copy_while_trading_starts)
    manager = RecoveryManager(site=sandbox)
    plan = manager.plan_restore(backup_id, restore_config=True, restore_data=True)
    assert plan.blockers == ()  # not running when planned
    before = site_state(sandbox)

    with pytest.raises(RestoreError, match=r"before the swap.*running.*pkill -f live_ops"):
        manager.apply_restore(plan)

    after = site_state(sandbox)
    assert after.pop("run/live_ops.pid")[1] == f"{live_ops.pid}\n".encode()
    assert after == before
    assert leftovers(sandbox) == []
    assert pre_recovery_ids(sandbox) == []  # caught before the pre-recovery backup: nothing was written


def test_a_corrupted_backup_is_refused_and_names_the_file(sandbox: Path, backed_up) -> None:
    manager, backup_id = backed_up
    flip_byte(backup_path(manager, backup_id) / "data/trades.csv")
    (sandbox / "data/trades.csv").write_text("trade_id,timestamp,symbol,side,quantity,price\n")  # must be restored
    corrupt_config(sandbox)
    before = site_state(sandbox)
    fresh = RecoveryManager(site=sandbox)

    report = fresh.verify_backup(backup_id, read_data=True)
    assert [(p.path, p.kind) for p in report.problems] == [("data/trades.csv", "hash")]

    assert RecoveryManager(site=sandbox).restore_backup(backup_id, True, True, True) is False
    manager = RecoveryManager(site=sandbox)
    with pytest.raises(RestoreError, match=r"data/trades\.csv.*corrupted"):  # the plan hashes every byte too
        manager.plan_restore(backup_id, True, True, True)
    assert manager.restore_backup(backup_id, True, True, True, dry_run=True) is False
    assert pre_recovery_ids(sandbox) == []  # refused before the pre-recovery backup: nothing to clean up

    assert site_state(sandbox) == before  # config was not restored either: all or nothing
    assert leftovers(sandbox) == []
    assert not (sandbox / JOURNAL_NAME).exists()
    # And "latest" never resolves to it.
    assert RecoveryManager(site=sandbox).restore_backup("latest", restore_config=True) is False
    assert site_state(sandbox) == before


def test_a_corrupted_backup_is_refused_even_when_the_site_copy_is_intact(sandbox: Path, backed_up) -> None:
    """The corrupted file is 'unchanged' in the site, so nothing needs copying: still refused."""
    manager, backup_id = backed_up
    flip_byte(backup_path(manager, backup_id) / "data/trades.csv")
    assert not RecoveryManager(site=sandbox).verify_backup(backup_id).ok
    (sandbox / "data/positions.csv").write_text("symbol,quantity\n")  # something to restore
    before = site_state(sandbox)
    manager = RecoveryManager(site=sandbox)

    assert manager.restore_backup(backup_id, restore_config=False, restore_data=True) is False

    assert "data/trades.csv" in manager.last_error and "corrupted" in manager.last_error
    assert site_state(sandbox) == before
    assert leftovers(sandbox) == []


def test_the_plan_refuses_a_damaged_backup_with_the_message_the_apply_gives(sandbox: Path, backed_up) -> None:
    """Dry run = real run: a plan for a damaged backup is refused as its apply would be, in the same words."""
    manager, backup_id = backed_up
    corrupt_config(sandbox)
    stale_plan = manager.plan_restore(backup_id, restore_config=True)  # made while the backup was sound
    flip_byte(backup_path(manager, backup_id) / "data/trades.csv")  # outside the restored category
    before = site_state(sandbox)

    with pytest.raises(RestoreError) as applied:
        manager.apply_restore(stale_plan)
    with pytest.raises(RestoreError) as planned:
        RecoveryManager(site=sandbox).plan_restore(backup_id, restore_config=True)
    fresh = RecoveryManager(site=sandbox)
    assert fresh.restore_backup(backup_id, restore_config=True, dry_run=True) is False

    assert str(planned.value) == str(applied.value) == fresh.last_error
    assert "data/trades.csv: hash" in str(planned.value)
    assert site_state(sandbox) == before and pre_recovery_ids(sandbox) == [] and leftovers(sandbox) == []


def test_a_backup_corrupted_after_it_verified_is_caught_while_staging(
    sandbox: Path, backed_up, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bytes are hashed again as they are staged: damage between the check and the copy is caught."""
    manager, backup_id = backed_up
    (sandbox / "data/trades.csv").write_text("trade_id\n")  # must be copied from the backup
    before = site_state(sandbox)
    real_stage = restore_module._stage

    def corrupt_then_stage(site_root: Path, backup: Path, *args: object) -> tuple[int, int]:
        flip_byte(backup / "data/trades.csv")
        return real_stage(site_root, backup, *args)

    monkeypatch.setattr(restore_module, "_stage", corrupt_then_stage)
    manager = RecoveryManager(site=sandbox)
    plan = manager.plan_restore(backup_id, restore_config=False, restore_data=True)
    with pytest.raises(RestoreError, match=r"data/trades\.csv is corrupted"):
        manager.apply_restore(plan)
    assert site_state(sandbox) == before
    assert leftovers(sandbox) == []


def test_an_unknown_backup_id_is_refused(sandbox: Path, backed_up) -> None:
    corrupt_config(sandbox)
    before = snapshot(sandbox, dir_mtimes=True)
    for bad_id in ("20990101T000000Z-full-000000", "../backups", ".lock", ""):
        manager = RecoveryManager(site=sandbox)
        assert manager.restore_backup(bad_id, restore_config=True) is False, bad_id
        assert repr(bad_id) in manager.last_error
        assert manager.restore_backup(bad_id, restore_config=True, dry_run=True) is False
    assert snapshot(sandbox, dir_mtimes=True) == before


def test_a_partial_backup_is_never_restored_from(sandbox: Path, backed_up) -> None:
    _, good_id = backed_up
    (sandbox / "data/link.csv").symlink_to("trades.csv")  # symlinks are not backed up: PARTIAL
    with pytest.raises(BackupIncomplete) as caught:
        RecoveryManager(site=sandbox).create_backup()
    partial_id = caught.value.metadata.backup_id
    (sandbox / "data/link.csv").unlink()
    corrupt_config(sandbox)
    (sandbox / "data/positions.csv").write_text("symbol,quantity\n")
    before = snapshot(sandbox, dir_mtimes=True)
    manager = RecoveryManager(site=sandbox)
    assert manager.get_backup(partial_id).status is BackupStatus.PARTIAL

    assert manager.restore_backup(partial_id, True, True, True) is False
    assert "PARTIAL" in manager.last_error
    assert manager.restore_backup(partial_id, True, True, True, dry_run=True) is False
    with pytest.raises(RestoreError, match="PARTIAL, not SUCCESS"):
        manager.plan_restore(partial_id, True, True, True)

    assert snapshot(sandbox, dir_mtimes=True) == before
    assert manager.get_backup("latest").backup_id == good_id  # newer, but PARTIAL


def test_a_busy_backup_directory_refuses_the_restore(sandbox: Path, backed_up) -> None:
    _, backup_id = backed_up
    corrupt_config(sandbox)
    before = site_state(sandbox)
    holder = BackupLock(sandbox / "backups", "backup-by-another-process")
    assert holder.acquire()
    try:
        manager = RecoveryManager(site=sandbox, lock_timeout_s=0.2)
        try:
            outcome: object = manager.restore_backup(backup_id, restore_config=True)
            message = manager.last_error
        except LockedError as exc:
            outcome, message = "raised", str(exc)
        assert outcome in (False, "raised")
        assert "busy" in message and "backup-by-another-process" in message
    finally:
        holder.release()
    assert site_state(sandbox) == before
    assert RecoveryManager(site=sandbox).restore_backup(backup_id, restore_config=True) is True


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
    categories = {"config": ["config"], "state": ["state"], "data": ["exchange"]}
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


# --- atomicity -----------------------------------------------------------------------------------


@pytest.mark.parametrize("fail_after", [0, 2, 5])
def test_a_failure_while_staging_leaves_the_site_as_it_was(
    sandbox: Path, backed_up, monkeypatch: pytest.MonkeyPatch, fail_after: int
) -> None:
    _, backup_id = backed_up
    shutil.rmtree(sandbox / "data")  # 5 files to create
    corrupt_config(sandbox)  # 1 to replace
    (sandbox / "state/session.json").write_text("{}")  # 1 to replace
    before = site_state(sandbox)
    real_copy = restore_module.copy_and_hash
    lock = threading.Lock()
    copied: list[Path] = []
    phases: list[str] = []

    def copy_until_disk_full(source: Path, target: Path, mode: int):  # noqa: ANN202
        with lock:
            phases.append(json.loads((sandbox / JOURNAL_NAME).read_text())["phase"])
            if len(copied) >= fail_after:
                raise OSError(errno.ENOSPC, "No space left on device", str(target))
            copied.append(target)
        return real_copy(source, target, mode)

    monkeypatch.setattr(restore_module, "copy_and_hash", copy_until_disk_full)
    manager = RecoveryManager(site=sandbox)

    try:
        outcome: object = manager.restore_backup(backup_id, True, True, True)
    except (RestoreError, OSError) as exc:
        outcome = exc
    assert outcome is False or isinstance(outcome, OSError | RestoreError)
    if isinstance(outcome, OSError):
        assert outcome.errno == errno.ENOSPC

    assert len(copied) == fail_after and set(phases) == {"staging"}
    assert all(".recovery-staging-" in str(target) for target in copied)  # staged, never written in place
    assert site_state(sandbox) == before
    assert leftovers(sandbox) == []
    assert not (sandbox / JOURNAL_NAME).exists()
    # The site can still be restored afterwards.
    monkeypatch.undo()
    assert RecoveryManager(site=sandbox).restore_backup(backup_id, True, True, True) is True


def test_a_failed_restore_does_not_change_file_modes_in_the_site(
    sandbox: Path, backed_up, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, backup_id = backed_up
    os.chmod(sandbox / "data/positions.csv", 0o600)  # same content as the backup, other mode
    (sandbox / "data/trades.csv").write_text("trade_id\n")  # must be copied: the copy fails

    def disk_full(source: Path, target: Path, mode: int):  # noqa: ANN202
        raise OSError(errno.ENOSPC, "No space left on device", str(target))

    monkeypatch.setattr(restore_module, "copy_and_hash", disk_full)
    before = site_state(sandbox)

    manager = RecoveryManager(site=sandbox)
    plan = manager.plan_restore(backup_id, restore_config=False, restore_data=True)
    with pytest.raises(RestoreError, match="No space left on device"):
        manager.apply_restore(plan)

    assert site_state(sandbox) == before
    assert stat.S_IMODE((sandbox / "data/positions.csv").stat().st_mode) == 0o600
    # A restore that succeeds gives the file the backup's mode back.
    monkeypatch.undo()
    assert RecoveryManager(site=sandbox).restore_backup(backup_id, restore_config=False, restore_data=True)
    assert stat.S_IMODE((sandbox / "data/positions.csv").stat().st_mode) == 0o644


def test_a_plan_from_a_backup_of_a_broken_config_warns(sandbox: Path) -> None:
    """Found by a new user: a backup taken after the config broke was restored silently, fixing nothing."""
    corrupt_config(sandbox)
    manager = RecoveryManager(site=sandbox)
    backup_id = manager.create_backup()
    plan = manager.plan_restore(backup_id, restore_config=True)
    assert plan.warnings and "fails the config check" in plan.warnings[0] and "another backup" in plan.warnings[0]
    assert f"WARNING: backup {backup_id} holds a config that fails the config check" in plan.summary()
    assert manager.plan_restore(backup_id, restore_config=False, restore_data=True).warnings == ()


def hand_edit_first_position(site: Path) -> str:
    """Add 1 to the first position's quantity (no trade explains it); returns its symbol."""
    positions = site / "data" / "positions.csv"
    lines = positions.read_text().splitlines()
    symbol, quantity, avg = lines[1].split(",")
    lines[1] = f"{symbol},{float(quantity) + 1:.4f},{avg}"
    positions.write_text("\n".join(lines) + "\n")
    return symbol


def test_a_plan_from_a_backup_of_broken_data_warns(sandbox: Path) -> None:
    """Found on a fresh-eyed walk-through: the same warning was missing for data (a dry run of a backup whose
    positions disagree with its trades said nothing)."""
    symbol = hand_edit_first_position(sandbox)
    manager = RecoveryManager(site=sandbox)
    backup_id = manager.create_backup()
    plan = manager.plan_restore(backup_id, restore_config=False, restore_data=True)
    assert plan.warnings and "fails the data check" in plan.warnings[0] and symbol in plan.warnings[0]
    assert "WARNING:" in plan.summary()


def test_restore_backup_of_broken_data_restores_and_says_it_will_not_fix_the_fault(
    sandbox: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The runbook's one-call restore applies without a review, so its warnings (worked out while the
    files are copied) are logged after it and kept on ``last_plan`` and ``last_result``."""
    symbol = hand_edit_first_position(sandbox)
    manager = RecoveryManager(site=sandbox)
    backup_id = manager.create_backup()
    (sandbox / "data" / "trades.csv").unlink()

    with caplog.at_level(logging.WARNING, logger="recovery_lib"):
        assert manager.restore_backup(backup_id, restore_config=False, restore_data=True)
    assert (sandbox / "data" / "trades.csv").is_file()  # restored: the call does what it was asked
    said = [r.getMessage() for r in caplog.records if "fails the data check" in r.getMessage()]
    assert said and backup_id in said[0] and "will not fix the fault" in said[0]
    assert manager.last_plan is not None and manager.last_result is not None
    assert manager.last_plan.warnings == manager.last_result.plan.warnings
    assert symbol in manager.last_plan.warnings[0]
