"""A restore onto an emptied site (total loss) takes no pre-recovery backup because there is nothing to
keep: a decision on the error's type (``NothingToBackUp``), whatever its message says."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from restore_helpers import pre_recovery_ids

import recovery_lib.backup.create as create_module
from recovery_lib.backup import BackupMetadata
from recovery_lib.errors import BackupError, NothingToBackUp, RestoreError
from recovery_lib.manager import RecoveryManager
from recovery_lib.restore.prerecovery import PreRecovery

TOPS = ("config", "state", "data")


def test_an_emptied_site_is_restored_without_a_pre_recovery_backup_whatever_the_words(
    sandbox: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = RecoveryManager(site=sandbox).create_backup(description="nightly")
    expected = {top: sorted(p.relative_to(sandbox) for p in (sandbox / top).rglob("*")) for top in TOPS}
    for top in TOPS:
        shutil.rmtree(sandbox / top)
    # The same error type in other words: the decision must not change.
    monkeypatch.setattr(create_module, "nothing_to_back_up", lambda site, categories: NothingToBackUp("bare site"))
    manager = RecoveryManager(site=sandbox)
    assert manager.restore_backup(good, restore_config=True, restore_state=True, restore_data=True), manager.last_error
    assert pre_recovery_ids(sandbox) == []
    assert {top: sorted(p.relative_to(sandbox) for p in (sandbox / top).rglob("*")) for top in TOPS} == expected


def test_a_backup_error_that_only_says_nothing_to_back_up_refuses_the_restore(sandbox: Path) -> None:
    """The pre-recovery step decides on the error's type: another BackupError in NothingToBackUp's words
    refuses the restore; NothingToBackUp in any words goes on without a pre-recovery backup."""
    manager = RecoveryManager(site=sandbox)
    good = manager.create_backup(description="nightly")
    assert manager.restore_backup(good, restore_config=True, dry_run=True), manager.last_error
    plan = manager.last_plan
    assert plan is not None

    def failing(error: BackupError) -> Callable[[list[str], str, list[str]], BackupMetadata]:
        def create(categories: list[str], description: str, tags: list[str]) -> BackupMetadata:
            raise error

        return create

    worded = BackupError(f"site {sandbox} has nothing to back up: config, state, data are all missing.")
    with pytest.raises(RestoreError, match="pre-recovery backup failed"):
        PreRecovery(manager.site, manager.backup_dir, failing(worded), []).save(plan, None)
    notes: list[str] = []
    empty = PreRecovery(manager.site, manager.backup_dir, failing(NothingToBackUp("bare")), notes)
    assert empty.save(plan, None) is None
    assert notes == []  # no backup claimed
