"""A restore leaves a trail in the library's log: planned, pre-recovery backup taken (or reused),
applied; and every refusal is a warning. Read from the real records a real restore writes on a
sandbox, through the ``recovery_lib`` logger an unattended run would configure."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from recovery_lib.backup.retention import RetentionPolicy
from recovery_lib.errors import RestoreError
from recovery_lib.manager import RecoveryManager
from recovery_lib.restore.preflight import chosen_categories, refuse_if_changed


def said(caplog: pytest.LogCaptureFixture, level: int, words: str) -> list[logging.LogRecord]:
    """The records at ``level`` whose message holds ``words``, all from the library's loggers."""
    return [
        r
        for r in caplog.records
        if r.levelno == level and words in r.getMessage() and r.name.startswith("recovery_lib.")
    ]


def test_a_restore_logs_its_plan_its_pre_recovery_backup_and_its_outcome(
    backed_up: tuple[RecoveryManager, str], caplog: pytest.LogCaptureFixture
) -> None:
    manager, backup_id = backed_up
    (manager.site.root / "config" / "config.toml").write_text("broken = [")
    with caplog.at_level(logging.INFO, logger="recovery_lib"):
        assert manager.restore_backup(backup_id, restore_config=True), manager.last_error
    result = manager.last_result
    assert result is not None and result.pre_recovery_backup_id is not None

    planned = said(caplog, logging.INFO, f"restore planned from backup {backup_id}")
    assert planned and "replace 1" in planned[0].getMessage()
    assert planned[0].name == "recovery_lib.restore.plan"
    assert said(caplog, logging.INFO, f"pre-recovery backup {result.pre_recovery_backup_id} taken")
    applied = said(caplog, logging.INFO, "restore applied")
    assert applied and backup_id in applied[0].getMessage()
    # The order a reader of the log needs: plan, then the saved state, then the outcome.
    order = [r.getMessage() for r in caplog.records]
    assert order.index(planned[0].getMessage()) < order.index(applied[0].getMessage())


def test_a_reused_pre_recovery_backup_is_logged_as_reused(
    backed_up: tuple[RecoveryManager, str], caplog: pytest.LogCaptureFixture
) -> None:
    manager, backup_id = backed_up
    (manager.site.root / "config" / "config.toml").write_text("broken = [")
    saved, fingerprint = manager.create_pre_recovery_backup("before the fix", [])
    assert fingerprint is not None
    with caplog.at_level(logging.INFO, logger="recovery_lib"):
        assert manager.restore_backup(backup_id, restore_config=True), manager.last_error
    assert manager.last_result is not None and manager.last_result.pre_recovery_reused
    assert said(caplog, logging.INFO, f"pre-recovery backup {saved} reused")
    assert not said(caplog, logging.INFO, "taken before restoring")


def test_refusals_are_warnings_and_change_nothing(
    backed_up: tuple[RecoveryManager, str], caplog: pytest.LogCaptureFixture
) -> None:
    manager, backup_id = backed_up
    plan = manager.plan_restore(backup_id, restore_config=True)
    (manager.site.root / "config" / "config.toml").write_text("changed after the plan\n")
    before = (manager.site.root / "config" / "config.toml").read_bytes()
    with caplog.at_level(logging.INFO, logger="recovery_lib"), pytest.raises(RestoreError, match="site changed"):
        manager.apply_restore(plan)
    assert (manager.site.root / "config" / "config.toml").read_bytes() == before
    assert said(caplog, logging.WARNING, "the site changed since this restore was planned")

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="recovery_lib"), pytest.raises(RestoreError, match="nothing to restore"):
        chosen_categories(False, False, False)
    assert said(caplog, logging.WARNING, "nothing to restore")


def test_the_changed_site_refusal_follows_the_fingerprint_not_the_clock(
    backed_up: tuple[RecoveryManager, str],
) -> None:
    """The refusal decides on the site's fingerprint: an untouched site passes, a touched one does not."""
    manager, backup_id = backed_up
    plan = manager.plan_restore(backup_id, restore_config=True)
    refuse_if_changed(plan, manager.site.root)  # nothing changed: no refusal
    (manager.site.root / "config" / "extra.toml").write_text("[x]\n")
    with pytest.raises(RestoreError, match="Plan again"):
        refuse_if_changed(plan, manager.site.root)


def test_quarantine_and_prune_are_logged(sandbox: Path, caplog: pytest.LogCaptureFixture) -> None:
    manager = RecoveryManager(site=sandbox)
    first = manager.create_backup(description="one")
    manager.create_backup(description="two")
    with caplog.at_level(logging.INFO, logger="recovery_lib"):
        name = manager.quarantine_backup(first, "a test sets it aside")
        manager.prune(RetentionPolicy(keep_last=1), dry_run=True)
    assert said(caplog, logging.WARNING, f"quarantined backup {first} as {name}")
    pruned = said(caplog, logging.INFO, "prune (dry run)")
    assert pruned and "keep 1, remove 0" in pruned[0].getMessage()
