"""A resumed run whose replayed facts no longer hold (issue 17): the site changed since the failed run, so
resume says which step is stale and executes from there; a resumed run that fails in turn is resumed
again; and the refusals (a run that recovered, another procedure's run, other decisions) write nothing.

The disk filling is injected at a real call (OSError(ENOSPC) once, see test_resume_matrix_ab.py), not mocked.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from test_resume_matrix_ab import (
    DISK_FULL,
    DiskFull,
    Executed,
    assert_once,
    backup_ids,
    case_site,
    execute,
    fail_then_resume,
    running,
    site_files,
    tagged,
    tags_have,
    template,
    writes,
)

import recovery_lib.backup.store as backup_store
import recovery_lib.restore.apply as restore_apply
import recovery_lib.runbook.steps.system as system_steps
from recovery_lib.drills.injectors import inject
from recovery_lib.errors import ParameterError
from recovery_lib.manager import PRE_RECOVERY_TAG, RecoveryManager
from recovery_lib.site.config import load_site
from recovery_lib.site.process import process_status, start_system, stop_system


@pytest.fixture(scope="module")
def template_stale(sandbox_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return template(sandbox_template, tmp_path_factory.mktemp("template-stale") / "site")


@pytest.fixture
def config_broken(template_stale: Path, tmp_path: Path) -> Iterator[Path]:
    site = case_site(template_stale, tmp_path)
    with running(site):
        inject(load_site(site), "config", variant="unparseable", seed=1)
        yield site


@pytest.fixture
def data_lost(template_stale: Path, tmp_path: Path) -> Iterator[Path]:
    site = case_site(template_stale, tmp_path)
    with running(site):
        inject(load_site(site), "data", variant="files_deleted", seed=4)
        yield site


def stale_step(executed: Executed) -> str:
    return (executed.run.resume.stale or "").split(":", 1)[0]


def test_trading_started_between_the_runs_is_stopped_again(
    config_broken: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Someone started trading after the failed run (on the broken config): the stop is stale, the resumed
    run stops it again and everything after, and recovers."""
    fault = DiskFull(backup_store, "build_backup", tags_have(PRE_RECOVERY_TAG))
    first, second = fail_then_resume(
        "A", config_broken, fault, monkeypatch, between=lambda _: start_system(load_site(config_broken), 15)
    )

    assert not first.recovered and DISK_FULL in first.records["halted"]["reason"]
    assert stale_step(second) == "stop" and "the trading process runs again" in second.run.resume.stale
    assert second.run.resume.replayed == [] and second.recovered, second.run.resume.summary()
    assert second.records["resume"]["stale"] == second.run.resume.stale  # the record says which and why
    assert_once(writes(config_broken, second), stops=2, starts=1, pre_recovery_backups=1, restores=1)
    assert process_status(load_site(config_broken)).running


def test_site_changed_between_the_runs_is_assessed_and_saved_again(
    data_lost: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A data file changed after the failed restore: the first step that depends on the site's files is
    stale and reruns with all after it; the new state is saved in a new pre-recovery backup, and the run
    recovers."""
    report = sorted((data_lost / "data" / "reports").rglob("*.csv"))[0]
    edited: dict[str, bytes] = {}

    def edit(first: Executed) -> None:
        with report.open("ab") as handle:
            handle.write(b"edited by hand after the failed run\n")
        edited.update(site_files(data_lost))

    fault = DiskFull(restore_apply, "_stage")
    first, second = fail_then_resume("B", data_lost, fault, monkeypatch, between=edit)

    assert not first.recovered and DISK_FULL in first.records["halted"]["reason"]
    assert stale_step(second) == "assess_data_loss" and "the site's files changed" in second.run.resume.stale
    assert second.run.resume.replayed == [] and second.recovered, second.run.resume.summary()
    saved_then = first.records["pre_recovery_backup"]["backup_id"]
    saved_now = second.records["pre_recovery_backup"]["backup_id"]
    assert saved_now != saved_then and sorted(tagged(data_lost, PRE_RECOVERY_TAG)) == sorted([saved_then, saved_now])
    # The new pre-recovery backup holds the edited state, byte for byte: nothing of it was lost.
    relative = report.relative_to(data_lost).as_posix()
    held = RecoveryManager(site=data_lost).backup_dir / saved_now / relative
    assert held.read_bytes() == edited[relative]
    assert second.records["restore_result"]["pre_recovery_backup_id"] == saved_now
    assert_once(writes(data_lost, second), starts=1, restores=1, trade_write_backs=1)


def test_a_resumed_run_that_fails_in_turn_is_resumed_again(data_lost: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run 1 fails at the pre-recovery backup; run 2 resumes it and fails at the restore; run 3 resumes
    run 2 and recovers, replaying run 1's stop and run 2's backup; every write happened once."""
    first_fault = DiskFull(backup_store, "build_backup", tags_have(PRE_RECOVERY_TAG))
    first_fault.arm(monkeypatch, data_lost)
    first = execute("B", data_lost)
    monkeypatch.undo()
    assert first_fault.fired == 1 and not first.recovered

    second_fault = DiskFull(restore_apply, "_stage")
    second_fault.arm(monkeypatch, data_lost)
    second = execute("B", data_lost, resume_from=first.run.run_id)
    monkeypatch.undo()
    assert second_fault.fired == 1 and not second.recovered
    assert DISK_FULL in second.records["halted"]["reason"]
    assert second.run.resume.failed_step == "pre_recovery_backup"

    third = execute("B", data_lost, resume_from=second.run.run_id)

    assert third.recovered, third.records.get("outcome")
    resume = third.run.resume
    assert resume.from_run == second.run.run_id and resume.stale is None
    assert resume.failed_step == "restore"  # the restore apply_remedy applies
    assert resume.replayed == [
        "assess_data_loss",
        "choose_backup",
        "data_loss_window",
        "stop",
        "pre_recovery_backup",
    ]
    assert resume.replay[("stop", "")].run == first.run.run_id  # replayed in run 2 from run 1, and again
    assert resume.replay[("pre_recovery_backup", "")].run == second.run.run_id
    assert_once(writes(data_lost, third), stops=1, starts=1, pre_recovery_backups=1, restores=1, trade_write_backs=1)


# --- refusals -------------------------------------------------------------------------------------------


def journal_bytes(site: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in load_site(site).records_dir.glob("*.jsonl")}


def refused(site: Path, procedure: str, **parameters: object) -> ParameterError:
    """Run ``procedure`` with these parameters: its validation cell refuses, and nothing is written."""
    before = (journal_bytes(site), site_files(site), backup_ids(site), process_status(load_site(site)).running)
    executed = execute(procedure, site, **parameters)
    assert executed.raised_at == "validate" and isinstance(executed.error, ParameterError), executed.error
    after = (journal_bytes(site), site_files(site), backup_ids(site), process_status(load_site(site)).running)
    for name, then, now in zip(("journal", "files", "backups", "running"), before, after, strict=True):
        assert now == then, f"a refused resume changed the {name}"
    return executed.error


def test_resume_refuses_a_recovered_run_another_procedure_and_other_decisions(
    config_broken: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fault = DiskFull(system_steps, "start_system")
    fault.arm(monkeypatch, config_broken)
    failed = execute("A", config_broken)
    monkeypatch.undo()
    assert not failed.recovered and failed.raised_at == "step:restart"
    failed_id = failed.run.run_id

    other = refused(config_broken, "B", resume_from=failed_id)
    assert "parameter 'resume_from'" in str(other) and "is procedure A, not B" in str(other)

    nightly = backup_ids(config_broken)[0]
    changed = refused(config_broken, "A", resume_from=failed_id, backup_id=nightly)
    assert "parameter 'resume_from'" in str(changed) and f"backup_id={nightly!r}" in str(changed)

    resumed = execute("A", config_broken, resume_from=failed_id)
    assert resumed.recovered
    stop_system(load_site(config_broken), 15)  # the recovered trading would change the site under the check
    done = refused(config_broken, "A", resume_from=resumed.run.run_id)
    assert "parameter 'resume_from'" in str(done) and "recovered" in str(done)
