"""The procedure steps as plain functions, without a kernel: one rule for a halted run, refusals that
halt, and a repeated step that says it already happened.

A run is started with :func:`recovery_lib.runbook.notebook.begin` (what the notebooks' ``start()``
sets up, from plain Python) on a real sandbox site; the steps are called as the notebook cells call
them, and the site is compared before and after (``incidents/``, the journal every step writes its
record to, left out: "changed nothing" means nothing else).
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest
from snapshots import tree

from recovery_lib.backup import BackupMetadata
from recovery_lib.drills.injectors import inject
from recovery_lib.errors import ApprovalRequired
from recovery_lib.manager import RecoveryManager
from recovery_lib.restore.plan import RestorePlan
from recovery_lib.runbook import procedures as steps
from recovery_lib.runbook.notebook import APPROVAL_ACTIONS, ParameterError, Run, begin
from recovery_lib.runbook.steps.base import GO_ON, SKIP, Again, Halted, NothingToDo
from recovery_lib.site.config import load_site
from recovery_lib.site.process import process_status

CONFIG = "config/config.toml"
JOURNAL = ("incidents",)  # the incident journals: every step writes its record there


def open_run(site: Path, procedure: str = "A", **parameters: Any) -> Run:
    """A headless run of ``procedure`` on ``site``, set up exactly as the validation cell sets it up."""
    parameters.setdefault("interactive", False)
    return begin(procedure, site=str(site), operator="steps-test", kind="drill", **parameters)


@pytest.fixture
def config_fault(sandbox: Path) -> Path:
    """Procedure A's scenario, trading not running: a good nightly backup, then a config that no longer parses."""
    RecoveryManager(site=sandbox).create_backup(description="nightly", tags=["daily"])
    inject(load_site(sandbox), "config", variant="unparseable", seed=1)
    return sandbox


def planned(run: Run) -> tuple[Any, RestorePlan]:
    """Procedure A up to its dry run, approval asked: (the backup choice, the restore plan)."""
    steps.stop(run)
    steps.backups_overview(run)
    choice = steps.choose_backup(run, "latest", needs=("config",))
    plan = steps.plan(run, choice, config=True)
    assert isinstance(plan, RestorePlan), plan
    steps.approval(run, plan, then="5. Perform actual restore")
    return choice, plan


# ---------------------------------------------------------------------------------------------- one rule


def step_functions() -> dict[str, Any]:
    """Every step the notebooks call: the callables of ``procedures`` that take the run first."""
    found = {}
    for name in steps.__all__:
        value = getattr(steps, name)
        if inspect.isfunction(value) and next(iter(inspect.signature(value).parameters), "") == "run":
            found[name] = value
    return found


# Halting is the mechanism itself, not a step.
NOT_STEPS = {"halt"}
# What each step returns after a halt when it does not return the Halted itself.
SAYS_INSTEAD = {"choose_backup": steps.BackupChoice, "restart": steps.RestartRefused, "verified_backup": steps.NotTaken}


def test_every_step_declares_how_it_meets_a_halted_run() -> None:
    found = step_functions()
    assert {"stop", "restore", "apply_remedy", "replay_trades", "conclude"} <= set(found)  # the walk sees steps
    undeclared = sorted(name for name in set(found) - NOT_STEPS if not hasattr(found[name], "rule"))
    assert not undeclared, f"steps without @step (how does each meet a halted run?): {undeclared}"
    for name, function in found.items():
        if name in NOT_STEPS:
            continue
        rule = function.rule
        assert rule.on_halt in (SKIP, GO_ON) or callable(rule.on_halt), (name, rule)
        assert (name in SAYS_INSTEAD) == callable(rule.on_halt), f"{name}: SAYS_INSTEAD is out of date"


def skipping_steps() -> set[str]:
    """The steps that do not run after a halt (they skip, or say something else instead)."""
    return {name for name, f in step_functions().items() if name not in NOT_STEPS and f.rule.on_halt != GO_ON}


def test_a_halted_run_skips_every_later_step_and_changes_nothing(config_fault: Path) -> None:
    """Every approval given, a real plan made; then the run halts. Each step that acts returns the run's
    Halted (or says why it did nothing) before its body runs: the site is byte for byte as it was, the
    config still broken, no backup taken, trading not started."""
    run = open_run(config_fault, approve=list(APPROVAL_ACTIONS))
    choice, plan = planned(run)
    steps.halt(run, "the on-call engineer stopped the procedure to call the vendor")
    before = tree(config_fault, exclude=JOURNAL)
    backups = [m.backup_id for m in RecoveryManager(site=config_fault).list_backups()]

    called: dict[str, Any] = {
        "stop": steps.stop(run),
        "seed_from_replica": steps.seed_from_replica(run, needs=("config",)),
        "choose_backup": steps.choose_backup(run, "latest", needs=("config",)),
        "plan": steps.plan(run, choice, config=True),
        "restore": steps.restore(run, plan),
        "pre_recovery_backup": steps.pre_recovery_backup(run),
        "plan_remedies": steps.plan_remedies(run, choice),
        "replay_trades": steps.replay_trades(run),
        "verified_backup": steps.verified_backup(run, "post_recovery_backup", "Post-recovery", ["recovery"]),
        "restart": steps.restart(run, before=steps.criteria_a(run, plan, {"ok": True})),
    }
    # A halted dry run given to the steps after it is passed on as it is.
    called["apply_remedy"] = steps.apply_remedy(run, called["plan_remedies"])
    assert set(called) | {"approval", "remedy_approval"} >= skipping_steps(), "a skipping step is not tried here"
    assert steps.approval(run, called["plan"]) is called["plan"]
    assert steps.remedy_approval(run, called["plan_remedies"]) is called["plan_remedies"]

    reason = "the on-call engineer stopped the procedure to call the vendor"
    for name, value in called.items():
        if name in SAYS_INSTEAD:
            assert isinstance(value, SAYS_INSTEAD[name]), (name, value)
        else:
            assert isinstance(value, Halted) and value.reason == reason, (name, value)
            assert repr(value).startswith("⏭ Skipped: the run was halted")
    assert called["choose_backup"].metadata is None and called["choose_backup"].skipped == [reason]
    assert "halted" in called["verified_backup"].reason
    assert "It stays STOPPED" in called["restart"].summary() and reason in called["restart"].summary()

    assert tree(config_fault, exclude=JOURNAL) == before, "a step acted on a halted run"
    assert [m.backup_id for m in RecoveryManager(site=config_fault).list_backups()] == backups
    assert not process_status(load_site(config_fault)).running
    records = run.recorder.values
    assert "restore_result" not in records and "remedy" not in records and "trades" not in records
    assert records["post_recovery_backup"]["skipped"] is True
    assert records["restart_system"]["refused"] is True
    steps.finish(run, steps.criteria_a(run, called["restore"], {"ok": True}, called["restart"]))
    with pytest.raises(steps.ProcedureFailed, match="The run halted: the on-call engineer"):
        steps.conclude(run)


def test_the_read_only_steps_still_report_after_a_halt(config_fault: Path) -> None:
    """The checks run after a halt: the record shows the site as the halt left it (the broken config)."""
    run = open_run(config_fault)
    steps.halt(run, "halted for the test")
    before = tree(config_fault, exclude=JOURNAL)
    steps.backups_overview(run)
    config = steps.verify_config(run)
    steps.reconcile(run)
    assert config["ok"] is False and run.recorder.values["config_check"]["ok"] is False
    assert run.recorder.values["backups"]["count"] == 1
    assert tree(config_fault, exclude=JOURNAL) == before


def test_no_usable_backup_halts_and_the_restore_is_skipped(sandbox: Path) -> None:
    """A halt from a step (no backup can fix the fault), not from the test: the later steps skip."""
    inject(load_site(sandbox), "config", variant="unparseable", seed=1)
    run = open_run(sandbox, approve=list(APPROVAL_ACTIONS))
    steps.stop(run)
    choice = steps.choose_backup(run, "latest", needs=("config",))
    assert choice.metadata is None and run.halted == "no usable backup (latest)"
    before = tree(sandbox, exclude=JOURNAL)
    plan = steps.plan(run, choice, config=True)
    assert isinstance(plan, Halted) and steps.restore(run, plan) is plan
    assert tree(sandbox, exclude=JOURNAL) == before
    assert run.recorder.values["halted"]["reason"] == "no usable backup (latest)"


# ------------------------------------------------------------------------------------------- approvals


def test_a_refused_approval_halts_headless_and_nothing_is_restored(config_fault: Path) -> None:
    """Headless, ``approve`` without "restore": the restore is refused, the run halts with the reason,
    and the broken config is left as it was (for the escalation, not silently "fixed" half-way)."""
    run = open_run(config_fault, approve=["backup"])
    _, plan = planned(run)
    broken = (config_fault / CONFIG).read_bytes()
    result = steps.restore(run, plan)
    assert isinstance(result, Halted)
    assert run.halted is not None and run.halted.startswith("not approved: restore")
    assert (config_fault / CONFIG).read_bytes() == broken
    assert run.recorder.values["halted"]["reason"] == run.halted
    decision = run.recorder.values["approval_restore"]
    assert decision["approved"] is False and decision["via"] == "parameter"
    # The later steps skip, and the restart says why trading stays stopped.
    refusal = steps.restart(run, before=steps.criteria_a(run, result, steps.verify_config(run)))
    assert isinstance(refusal, steps.RestartRefused) and "not approved: restore" in refusal.summary()


def test_interactively_a_missing_approval_stops_the_cell_but_does_not_halt(config_fault: Path) -> None:
    """In JupyterLab the person can still click: the restore cell fails closed, the run goes on."""
    run = open_run(config_fault, interactive=True)
    _, plan = planned(run)
    broken = (config_fault / CONFIG).read_bytes()
    with pytest.raises(ApprovalRequired, match="restore is not approved yet"):
        steps.restore(run, plan)
    assert run.halted is None and (config_fault / CONFIG).read_bytes() == broken


def test_begin_refuses_bad_parameters_before_anything_is_written(sandbox: Path) -> None:
    before = tree(sandbox)
    with pytest.raises(ParameterError, match="unknown action"):
        begin("A", site=str(sandbox), interactive=False, approve=["restor"])
    with pytest.raises(ParameterError, match="parameter 'interactive' must be bool"):
        begin("A", site=str(sandbox), interactive="no")
    with pytest.raises(ParameterError, match="unknown parameter"):
        begin("A", site=str(sandbox), sight="x")
    assert tree(sandbox) == before


# ----------------------------------------------------------------------------------------------- Again


def test_a_repeated_restore_says_it_already_happened_and_does_nothing(config_fault: Path) -> None:
    """The restore cell run twice: the second run returns the first result (Again); no second restore,
    no second pre-recovery backup. The steps that prepared it are not worked out anew either."""
    run = open_run(config_fault, approve=list(APPROVAL_ACTIONS))
    choice, plan = planned(run)
    result = steps.restore(run, plan)
    assert result.ok and steps.verify_config(run)["ok"] is True
    after = tree(config_fault, exclude=JOURNAL)
    backups = [m.backup_id for m in RecoveryManager(site=config_fault).list_backups()]

    again = steps.restore(run, plan)
    assert isinstance(again, Again) and again.value is result and again.ok
    assert repr(again).startswith("↩ Already done in this run: restored config from ")
    for repeated in (
        steps.stop(run),
        steps.choose_backup(run, "latest", needs=("config",)),
        steps.plan(run, choice, config=True),
    ):
        assert isinstance(repeated, Again), repeated
    assert steps.plan(run, choice, config=True).value is plan  # the plan the approval was for
    assert tree(config_fault, exclude=JOURNAL) == after
    assert [m.backup_id for m in RecoveryManager(site=config_fault).list_backups()] == backups


def test_an_idle_run_changes_nothing(sandbox: Path) -> None:
    """Procedure B on a whole site: the assessment finds no fault, and every writing step says so."""
    RecoveryManager(site=sandbox).create_backup(description="nightly", tags=["daily"])
    run = open_run(sandbox, "B", approve=list(APPROVAL_ACTIONS))
    steps.assess_data_loss(run)
    assert run.nothing_to_do
    before = tree(sandbox, exclude=JOURNAL)
    choice = steps.choose_backup(run, "latest", needs=("data",), required=False)
    for value in (steps.stop(run), steps.pre_recovery_backup(run), steps.plan_remedies(run, choice)):
        assert isinstance(value, NothingToDo) and repr(value).startswith("✅ Nothing to do:"), value
    remedies = steps.plan_remedies(run, choice)
    assert steps.apply_remedy(run, remedies) is remedies and isinstance(steps.replay_trades(run), NothingToDo)
    assert tree(sandbox, exclude=JOURNAL) == before
    assert isinstance(choice.metadata, BackupMetadata)
