"""Whole procedure paths through the steps, without a kernel: Procedure A on a config fault from stop to a
recovered outcome with trading running again, and Procedure B's choice between repair and restore.

Runs are started with :func:`recovery_lib.runbook.notebook.begin` on a real sandbox site, its trading
process really started and stopped; the steps are called in the order the notebooks' cells call them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from recovery_lib.drills.injectors import inject
from recovery_lib.manager import PRE_RECOVERY_TAG, RecoveryManager
from recovery_lib.restore.plan import RestorePlan
from recovery_lib.runbook import procedures as steps
from recovery_lib.runbook.notebook import APPROVAL_ACTIONS, Run, begin
from recovery_lib.runbook.steps.data import Repaired
from recovery_lib.site.config import Site, load_site
from recovery_lib.site.process import process_status, start_system, stop_system
from recovery_lib.trading.ledger import read_ledger

CONFIG = "config/config.toml"


def open_run(site: Path, procedure: str, approve: list[str], **parameters: Any) -> Run:
    """A headless run of ``procedure``, set up exactly as the notebook's validation cell sets it up."""
    return begin(
        procedure, site=str(site), interactive=False, approve=approve, operator="steps-test", kind="drill", **parameters
    )


@pytest.fixture
def trading(sandbox: Path) -> Iterator[Site]:
    """The sandbox trading, its nightly backup taken (the drills' set-up); stopped again afterwards."""
    site = load_site(sandbox)
    assert start_system(site, timeout_s=15).ok
    RecoveryManager(site=site).create_backup(description="nightly", tags=["daily"])
    yield site
    stop_system(site, timeout_s=15)


def test_procedure_a_recovers_a_config_fault_and_restarts_trading(trading: Site) -> None:
    inject(trading, "config", variant="unparseable", seed=3)
    nightly = RecoveryManager(site=trading).list_backups()[0].backup_id
    run = open_run(trading.root, "A", list(APPROVAL_ACTIONS))

    stopped = steps.stop(run)
    assert stopped.ok and not process_status(trading).running
    overview = steps.backups_overview(run)
    assert list(overview["backup"]) == [nightly]
    choice = steps.choose_backup(run, "latest", needs=("config",))
    assert choice.backup_id == nightly and not choice.unfit()
    plan = steps.plan(run, choice, config=True)
    assert isinstance(plan, RestorePlan) and [c.path for c in plan.changes] == [CONFIG]
    assert "APPROVED" in repr(steps.approval(run, plan, then="5. Perform actual restore"))
    result = steps.restore(run, plan)
    assert result.ok and result.pre_recovery_backup_id
    config_check = steps.verify_config(run)
    assert config_check["ok"] is True
    health = steps.check_health(run, "after")
    assert health["config"].healthy
    restart_action = steps.restart(run, before=steps.criteria_a(run, result, config_check))
    assert restart_action.ok and process_status(trading).running
    steps.finish(run, steps.criteria_a(run, result, config_check, restart_action))
    assert run.criteria.all_passed, run.criteria.rows
    assert steps.escalation(run).level == 1
    outcome = steps.conclude(run)
    assert repr(outcome).startswith("✅ Procedure A RECOVERED the system")

    records = run.recorder.values
    assert records["outcome"]["success"] is True and records["outcome"]["trading_running"] is True
    assert records["backup_selection"]["backup_id"] == nightly
    assert records["restore_result"]["files_restored"] == [CONFIG]
    assert "halted" not in records
    pre = [m for m in RecoveryManager(site=trading).list_backups() if PRE_RECOVERY_TAG in m.tags]
    assert [m.backup_id for m in pre] == [result.pre_recovery_backup_id]  # the broken state, kept as evidence


@pytest.fixture
def duplicated_rows(sandbox: Path) -> Site:
    """Procedure B's corruption fault, trading not running: a nightly backup, then duplicated trade rows."""
    site = load_site(sandbox)
    RecoveryManager(site=site).create_backup(description="nightly", tags=["daily"])
    inject(site, "data", variant="duplicated_rows", seed=2)
    return site


def remedy_run(site: Site, approve: list[str], remedy: str = "least_loss") -> tuple[Run, Any]:
    """Procedure B up to its dry run of repair and restore: (the run, the options)."""
    run = open_run(site.root, "B", approve, remedy=remedy)
    steps.assess_data_loss(run)
    assert not run.nothing_to_do
    choice = steps.choose_backup(run, "latest", needs=("data",), required=False)
    steps.data_loss_window(run, choice)
    steps.stop(run)
    steps.pre_recovery_backup(run)
    return run, steps.plan_remedies(run, choice)


def test_b_takes_the_repair_that_loses_least(duplicated_rows: Site) -> None:
    """Duplicated rows: repairing in place loses no trade and changes less than a restore, so least_loss
    recommends it, the gate approves it, and the ledger is repaired (no row of a real trade dropped)."""
    trades = read_ledger(duplicated_rows.path(duplicated_rows.trades_file), duplicated_rows.trades_file)
    run, remedies = remedy_run(duplicated_rows, list(APPROVAL_ACTIONS))
    assert remedies.recommended.action == "repair"
    steps.remedy_approval(run, remedies, "least_loss", then="6b. Apply the approved remedy")
    assert run.remedy_action == "repair" and "remedy_choice" not in run.recorder.values
    result = steps.apply_remedy(run, remedies)
    assert isinstance(result, Repaired) and result.dropped > 0
    repaired = read_ledger(duplicated_rows.path(duplicated_rows.trades_file), duplicated_rows.trades_file)
    assert not repaired.duplicates() and repaired.ids == trades.ids
    assert run.recorder.values["remedy"]["action"] == "repair" and "restore_result" not in run.recorder.values
    steps.replay_trades(run)
    assert steps.verify_data(run) is not None and run.recorder.values["data_check"]["ok"] is True


def test_b_restores_when_only_the_restore_is_approved_and_says_why(duplicated_rows: Site) -> None:
    """Headless, ``approve`` allows a restore but not a repair: least_loss takes the least loss among the
    approved options, and the record says the recommended one was not approved."""
    run, remedies = remedy_run(duplicated_rows, ["restore", "backup", "stop_system"])
    steps.remedy_approval(run, remedies, "least_loss")
    assert run.recorder.values["remedy_choice"] == {
        "recommended": "repair",
        "chosen": "restore",
        "why": "the recommended one is not approved",
    }
    result = steps.apply_remedy(run, remedies)
    assert result.ok and run.recorder.values["remedy"]["action"] == "restore"
    assert run.recorder.values["restore_result"]["categories"] == ["data"]
    steps.replay_trades(run)
    assert run.recorder.values["trades"]["still_missing"] == 0


def test_b_insisting_on_an_option_the_approvals_refuse_halts(duplicated_rows: Site) -> None:
    """``remedy="repair"`` without "repair" approved: the choice is put up, the apply is refused, the run halts."""
    run, remedies = remedy_run(duplicated_rows, ["backup", "stop_system"], remedy="repair")
    before = duplicated_rows.path(duplicated_rows.trades_file).read_bytes()
    steps.remedy_approval(run, remedies, "repair")
    result = steps.apply_remedy(run, remedies)
    assert isinstance(result, steps.Halted) and run.halted and run.halted.startswith("not approved: repair")
    assert duplicated_rows.path(duplicated_rows.trades_file).read_bytes() == before
