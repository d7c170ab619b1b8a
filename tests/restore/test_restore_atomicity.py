"""Restore atomicity: a failure while staging leaves the site as it was (modes included); and the
warnings a plan gives when the backup holds a broken config or broken data.

Every test works on a private copy of the sandbox site (``sandbox`` fixture) with real files; a
failure path always checks both that the failure is reported and that nothing was lost.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import stat
import threading
from pathlib import Path

import pytest
from restore_helpers import corrupt_config, leftovers, site_state

import recovery_lib.restore.apply as restore_module
from recovery_lib.manager import RecoveryManager
from recovery_lib.restore.journal import JOURNAL_NAME, RestoreError

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
