"""Issue 17's "Done when" for Procedures C and D: the disk fills at each step that writes, the run is resumed
from the failed one, it ends recovered, and every write happened exactly once across both runs.

The helpers and the fault injection (a real call raising OSError(ENOSPC) once, not a mock) are in
test_resume_matrix_ab.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from test_resume_matrix_ab import (
    DISK_FULL,
    DiskFull,
    Executed,
    assert_failed_and_lost_nothing,
    assert_once,
    assert_resumed,
    case_site,
    fail_then_resume,
    running,
    tags_have,
    template,
    writes,
)

import recovery_lib.backup.store as backup_store
import recovery_lib.runbook.steps.data as data_steps
import recovery_lib.runbook.steps.system as system_steps
from recovery_lib.drills.injectors import inject
from recovery_lib.manager import PRE_RECOVERY_TAG, RecoveryManager
from recovery_lib.replica.service import opened
from recovery_lib.site.config import load_site
from recovery_lib.site.process import process_status

# --- Procedure C: everything lost but the local backups ---------------------------------------------


@pytest.fixture(scope="module")
def template_c(sandbox_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return template(sandbox_template, tmp_path_factory.mktemp("template-c") / "site")


@pytest.fixture
def site_c(template_c: Path, tmp_path: Path) -> Iterator[Path]:
    site = case_site(template_c, tmp_path)
    with running(site, start=False):  # the fault kills trading itself
        inject(load_site(site), "full", variant="everything", seed=2)
        yield site


C_PREPARED = ["declare_incident", "stop", "seed_from_replica", "choose_backup", "site_listing"]
C_RESTORED = [*C_PREPARED, "plan", "approval", "restore"]
C_CASES = {
    "stop": (lambda: DiskFull(system_steps, "stop_system"), ["declare_incident"]),
    "seed_from_replica": (None, []),
    "restore": (lambda: DiskFull(backup_store, "build_backup", tags_have(PRE_RECOVERY_TAG)), C_PREPARED),
    "replay_trades": (lambda: DiskFull(data_steps, "replay_fills"), C_RESTORED),
    "post_recovery_backup": (
        lambda: DiskFull(backup_store, "build_backup", tags_have("post-incident")),
        [*C_RESTORED, "replay_trades"],
    ),
    "restart": (lambda: DiskFull(system_steps, "start_system"), [*C_RESTORED, "replay_trades", "verified_backup"]),
}


@pytest.mark.parametrize("failing", list(C_CASES))
def test_c_fails_at_each_write_and_resumes_to_recovered(
    failing: str, site_c: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_fault, replayed = C_CASES[failing]
    if make_fault is None:
        pytest.skip(
            "the full-system fault leaves the local backups usable: C's seed_from_replica pulls nothing "
            "(records needed: false), so there is no pull for the disk to fail in"
        )
    fault = make_fault()
    first, second = fail_then_resume("C", site_c, fault, monkeypatch)

    assert_failed_and_lost_nothing(first, fault)
    if failing == "stop":
        assert first.raised_at == "step:stop_system" and isinstance(first.error, OSError)
    assert_resumed(second, first, replayed)
    assert_once(
        writes(site_c, second),
        stops=1,
        starts=1,
        pre_recovery_backups=1,
        restores=1,
        trade_write_backs=1,
        post_recovery_backups=1,
        pulls=0,
    )
    assert process_status(load_site(site_c)).running


# --- Procedure D: the backups --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def template_d(sandbox_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two nightly backups, both pushed to the template's replica: corrupting the newer one leaves one good."""
    site = template(sandbox_template, tmp_path_factory.mktemp("template-d") / "site", trades_after=2)
    RecoveryManager(site=site).create_backup(description="nightly", tags=["daily"])
    return site


def d_site(template_d: Path, tmp_path: Path, variant: str) -> Iterator[Path]:
    site = case_site(template_d, tmp_path, with_replica=True)
    with running(site, start=False):  # D never stops or starts trading
        inject(load_site(site), "backup", variant=variant, seed=3)
        yield site


@pytest.fixture
def site_d(template_d: Path, tmp_path: Path) -> Iterator[Path]:
    yield from d_site(template_d, tmp_path, "newest_corrupted")


@pytest.fixture
def site_d_lost(template_d: Path, tmp_path: Path) -> Iterator[Path]:
    yield from d_site(template_d, tmp_path, "disk_lost")


def replica_ids(site: Path) -> list[str]:
    with opened(load_site(site).replicas[0]) as replica:
        return replica.committed_ids()


D_CASES = {
    # Verification and quarantine always run again: D's verdict is about the backups as they are now.
    "quarantine_damaged": (lambda: DiskFull(RecoveryManager, "quarantine_backup"), []),
    "create_backup": (
        lambda: DiskFull(backup_store, "build_backup", tags_have("manual")),  # the emergency backup
        ["seed_from_replica"],
    ),
    "push_to_replicas": (lambda: DiskFull(RecoveryManager, "push_to_replica"), ["seed_from_replica", "create_backup"]),
}


@pytest.mark.parametrize("failing", list(D_CASES))
def test_d_fails_at_each_write_and_resumes_to_recovered(
    failing: str, site_d: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_fault, replayed = D_CASES[failing]
    fault = make_fault()
    first, second = fail_then_resume("D", site_d, fault, monkeypatch)

    assert_failed_and_lost_nothing(first, fault)
    if failing == "quarantine_damaged":
        assert first.raised_at == "step:quarantine" and isinstance(first.error, OSError)
    assert_resumed(second, first, replayed)
    assert_once(writes(site_d, second), quarantines=1, emergency_backups=1, pushes=1, pulls=0)
    emergency = second.records.get("emergency_backup") or first.records["emergency_backup"]
    assert emergency["backup_id"] in replica_ids(site_d)


def reseed_fails_then_resume(site: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Executed, Executed]:
    """D on a lost backup disk: the pull from the replica fails (the disk filled); D takes its emergency
    backup after that halt all the same (on purpose: the site is protected again); then it is resumed."""
    fault = DiskFull(RecoveryManager, "pull_from_replica")
    first, second = fail_then_resume("D", site, fault, monkeypatch)
    assert_failed_and_lost_nothing(first, fault)
    assert first.records["replica_seed"]["ok"] is False and DISK_FULL in first.records["replica_seed"]["tried"][0]
    assert first.records["emergency_backup"]["ok"] is True
    return first, second


def test_d_fails_to_reseed_from_the_replica_and_resumes_to_recovered(
    site_d_lost: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Decided (issue 17): the emergency backup D took after the failed pull is a write that stands on its
    own, so the resumed run replays it instead of taking a second one. It is a verified backup of the
    healthy site, so the re-seeding finds a local backup that can fix the fault and pulls nothing."""
    first, second = reseed_fails_then_resume(site_d_lost, monkeypatch)
    # The failed run's own emergency backup (taken after its halt) is no change since: nothing is stale.
    assert_resumed(second, first, ["create_backup"])
    assert_once(writes(site_d_lost, second), quarantines=0, emergency_backups=1, pulls=0)
    assert second.records["replica_seed"]["local_backup"] == first.records["emergency_backup"]["backup_id"]
    assert first.records["emergency_backup"]["backup_id"] in replica_ids(site_d_lost)
