"""What a hostile review of resume found (issue 17), as tests: a resumed D judges the backups as they are
now, a run that was resumed or redone since is never resumed again, a replayed step re-checks its facts
when its cell runs (not only when the resume was planned), and a step that raised is named.

Faults are injected at real boundaries: ``DiskFull`` makes one library call raise OSError(ENOSPC) once;
a backup file is corrupted on disk; the trading process is started for real between cells.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_resume_matrix_ab import (
    APPROVE_ALL,
    DiskFull,
    Executed,
    case_site,
    cells,
    execute,
    fail_then_resume,
    running,
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
from recovery_lib.runbook.failed_runs import failed_runs
from recovery_lib.site.config import load_site
from recovery_lib.site.process import process_status, start_system


@pytest.fixture(scope="module")
def template_review(sandbox_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two nightly backups (D needs a good one left when the newest is corrupted)."""
    site = template(sandbox_template, tmp_path_factory.mktemp("template-review") / "site", trades_after=2)
    RecoveryManager(site=site).create_backup(description="nightly", tags=["daily"])
    return site


@pytest.fixture
def config_broken(template_review: Path, tmp_path: Path) -> Iterator[Path]:
    site = case_site(template_review, tmp_path)
    with running(site):
        inject(load_site(site), "config", variant="unparseable", seed=1)
        yield site


def corrupt_oldest_backup(site: Path) -> str:
    """One byte of a CSV in the oldest backup changed, its size and mtime kept (only a hash sees it)."""
    manager = RecoveryManager(site=site)
    oldest = min(manager.list_backups(), key=lambda b: b.created_at).backup_id
    flip_a_byte(next(p for p in sorted((load_site(site).backup_dir / oldest).rglob("*.csv")) if p.is_file()))
    return oldest


def flip_a_byte(path: Path) -> None:
    """One digit near the end of ``path`` changed, its size, mtime and mode kept: only a hash sees it."""
    info = path.stat()
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[-2] = ord("8") if data[-2] == ord("9") else ord("9")
    path.write_bytes(bytes(data))
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))
    os.chmod(path, info.st_mode)


def test_resumed_d_verifies_the_backups_again_and_never_certifies_a_corrupted_one(
    template_review: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = case_site(template_review, tmp_path, with_replica=True)
    with running(site, start=False):
        inject(load_site(site), "backup", variant="newest_corrupted", seed=3)
        corrupted: list[str] = []
        fault = DiskFull(backup_store, "build_backup", tags_have("manual"))  # the emergency backup
        first, second = fail_then_resume(
            "D", site, fault, monkeypatch, between=lambda _: corrupted.append(corrupt_oldest_backup(site))
        )
    assert "verify_all_backups" not in second.run.resume.replayed  # judged again, on the backups now
    assert corrupted[0] in second.records["backup_verification"]["ids"]
    manager = RecoveryManager(site=site)
    in_use = [b.backup_id for b in manager.list_backups()]
    assert corrupted[0] not in in_use  # quarantined, not certified
    assert all(manager.verify_backup(backup_id, read_data=True).ok for backup_id in in_use)


def test_a_run_resumed_since_or_redone_since_is_not_resumed_again(
    config_broken: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = fail_then_resume("A", config_broken, DiskFull(system_steps, "start_system"), monkeypatch)
    assert second.recovered and process_status(load_site(config_broken)).running
    stops = writes(config_broken, second)["stops"]
    again = execute("A", config_broken, resume_from=first.run.run_id)
    assert again.raised_at == "validate" and isinstance(again.error, ParameterError)
    assert f"run {second.run.run_id} resumed it since" in str(again.error)
    assert writes(config_broken, second)["stops"] == stops and process_status(load_site(config_broken)).running
    assert first.run.run_id not in [f.run_id for f in failed_runs(load_site(config_broken), "A")]


def test_a_run_redone_from_the_top_is_no_longer_offered_or_resumed(
    config_broken: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fault = DiskFull(system_steps, "start_system")
    fault.arm(monkeypatch, config_broken)
    first = execute("A", config_broken)
    monkeypatch.undo()
    assert not first.recovered
    redone = execute("A", config_broken, incident_id=first.run.incident_id)
    assert redone.recovered
    assert failed_runs(load_site(config_broken), "A") == []
    again = execute("A", config_broken, resume_from=first.run.run_id)
    assert isinstance(again.error, ParameterError) and "started after it" in str(again.error)


def execute_then(procedure: str, site: Path, after: str, action: object, **parameters: object) -> Executed:
    """Like ``execute``, with ``action()`` run right after the cell tagged ``after`` (a person's pause)."""
    namespace: dict[str, object] = {}
    for tag, source in cells(procedure):
        try:
            exec(compile(source, tag, "exec", dont_inherit=True), namespace)
        except Exception as exc:  # noqa: BLE001 - the test reads which cell stopped the run, and why
            return Executed(namespace, tag, exc)
        if tag == "parameters":
            namespace.update(
                site=str(site), interactive=False, approve=APPROVE_ALL, operator="drill-bot", kind="drill", **parameters
            )
        if tag == after:
            action()  # type: ignore[operator]
    return Executed(namespace)


def test_a_replayed_stop_is_checked_again_when_its_cell_runs(
    config_broken: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fails at its pre-recovery backup; the resume is planned (trading stopped), then trading starts
    before the stop cell runs: the stop is not replayed but done again, and the run recovers."""
    fault = DiskFull(backup_store, "build_backup", tags_have(PRE_RECOVERY_TAG))
    fault.arm(monkeypatch, config_broken)
    first = execute("A", config_broken)
    monkeypatch.undo()
    assert not first.recovered and not process_status(load_site(config_broken)).running
    site = load_site(config_broken)
    second = execute_then(
        "A", config_broken, "validate", lambda: start_system(site, timeout_s=15), resume_from=first.run.run_id
    )
    assert second.recovered, second.records.get("outcome")
    assert (second.run.resume.stale or "").startswith("stop: the trading process runs again")
    assert "stop" not in second.run.resume.replayed
    assert second.records["stop_system"]["ok"] is True  # stopped again by this run
    assert second.records["resume"]["stale"] == second.run.resume.stale  # the record says why


def test_a_step_that_raised_is_named_with_its_error(config_broken: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = fail_then_resume("A", config_broken, DiskFull(system_steps, "start_system"), monkeypatch)
    assert first.raised_at is not None or not first.recovered
    assert second.run.resume.failed_step == "restart"
    assert "No space left on device" in second.run.resume.failed_error
    assert "it failed at restart (OSError" in second.records["resume"]["summary"]


@pytest.fixture
def data_cut(template_review: Path, tmp_path: Path) -> Iterator[Path]:
    """The ledger cut to its first rows, with trading running; two backups, the newer one is chosen."""
    site = case_site(template_review, tmp_path)
    with running(site):
        inject(load_site(site), "data", variant="files_deleted", seed=4)
        yield site


def newest_backup(site: Path) -> str:
    return max(RecoveryManager(site=site).list_backups(), key=lambda b: b.created_at).backup_id


def test_a_chosen_backup_damaged_since_is_chosen_again_and_the_resume_loses_no_trade(
    data_cut: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """B halts at its restore (the disk filled while staging); then one byte of the chosen backup's ledger
    flips. The resume must not replay that choice: it chooses the older good backup and restores from it."""
    fault = DiskFull(restore_apply, "_stage")
    fault.arm(monkeypatch, data_cut)
    first = execute("B", data_cut)
    monkeypatch.undo()
    assert not first.recovered
    chosen = first.records["backup_selection"]["backup_id"]
    flip_a_byte(load_site(data_cut).backup_dir / chosen / "data" / "trades.csv")
    second = execute("B", data_cut, resume_from=first.run.run_id)
    assert (second.run.resume.stale or "").startswith(f"choose_backup: backup {chosen}, chosen then, is damaged")
    assert second.recovered, second.records.get("outcome")
    assert second.records["backup_selection"]["backup_id"] != chosen
    assert second.records["trades"]["still_missing"] == 0


def test_the_chosen_backup_removed_after_the_restore_does_not_block_the_resume(
    data_cut: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """B restores, then fails to start trading (the disk filled); the backup it restored from is removed
    before the resume. The restore stands (the site is as the run left it): nothing is restored again."""
    fault = DiskFull(system_steps, "start_system")
    fault.arm(monkeypatch, data_cut)
    first = execute("B", data_cut, backup_id=newest_backup(data_cut))
    monkeypatch.undo()
    assert not first.recovered and first.records["restore_result"]["ok"] is True
    RecoveryManager(site=data_cut).delete_backup(first.records["backup_selection"]["backup_id"])
    second = execute("B", data_cut, backup_id=first.run.parameters["backup_id"], resume_from=first.run.run_id)
    assert second.recovered, (second.raised_at, second.error, second.records.get("outcome"))
    assert {"choose_backup", "apply_remedy", "replay_trades"} <= set(second.run.resume.replayed)
    assert writes(data_cut, second)["restores"] == 1
