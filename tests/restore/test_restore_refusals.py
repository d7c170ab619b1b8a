"""Restore refusals leave the site untouched: a running trading process, a corrupted, unknown or
partial backup, a busy backup directory.

Every test works on a private copy of the sandbox site (``sandbox`` fixture) with real files; a
failure path always checks both that the failure is reported and that nothing was lost.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from restore_helpers import backup_path, corrupt_config, leftovers, pre_recovery_ids, site_state, snapshot

import recovery_lib.restore.apply as restore_module
from recovery_lib import health_check
from recovery_lib.backup import BackupStatus, LockedError
from recovery_lib.backup.lock import BackupLock
from recovery_lib.manager import BackupIncomplete, RecoveryManager
from recovery_lib.restore.journal import JOURNAL_NAME, RestoreError


def flip_byte(path: Path, offset: int = 100) -> None:
    """Change one byte of a backup file in place (same size), after making it writable."""
    os.chmod(path.parent, stat.S_IMODE(path.parent.stat().st_mode) | stat.S_IWUSR)
    os.chmod(path, stat.S_IMODE(path.stat().st_mode) | stat.S_IWUSR)
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


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
