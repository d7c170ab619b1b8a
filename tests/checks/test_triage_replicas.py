"""Triage with replicas (a lost disk or host points at the replica to recover from) and with a declared
path replaced by something of another kind (a state directory that is now a file is lost, not "fine")."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from replica_site import add_replica, backup, drop_replicas, lose_host, push, writable
from snapshots import files

from recovery_lib import RecoveryManager, health_check
from recovery_lib.checks.triage import NOTHING, RESEED, RESTORE, Triage, triage
from recovery_lib.site.config import load_site


@pytest.fixture
def sandbox(sandbox: Path) -> Path:
    """The test sandbox without its default replica (the session template's directory, shared)."""
    return drop_replicas(sandbox)


@pytest.fixture
def disk(tmp_path: Path) -> Path:
    (tmp_path / "backupdisk").mkdir()
    return tmp_path / "backupdisk" / "peak-trade"


@pytest.fixture
def pushed(sandbox: Path, disk: Path) -> str:
    """A site with a fresh backup, here and on the replica ``offsite``; returns its id."""
    add_replica(sandbox, "offsite", disk)
    backup_id = backup(sandbox)
    assert push(sandbox) == [backup_id]
    return backup_id


def run_triage(site: Path) -> Triage:
    """Triage, proving that it wrote nothing."""
    before = files(site)
    found = triage(load_site(site))
    assert files(site) == before
    return found


# --- local backups gone or damaged: re-seed from the replica (scenario 4) --------------------------


def test_local_backups_lost_points_procedure_d_at_the_replica(sandbox: Path, pushed: str) -> None:
    shutil.rmtree(sandbox / "backups")
    found = run_triage(sandbox)
    assert (found.scenario, found.procedure, found.procedures) == (4, "D", ["D"])
    assert (found.replica, found.replica_action) == ("offsite", RESEED)
    assert found.evidence["local_backup"] is None and found.evidence["host_lost"] is False
    (note,) = found.notes
    assert note.startswith(f"No local backup can serve: re-seed from replica offsite (its newest backup {pushed} is ")
    assert "`recovery replica pull latest --replica offsite`" in note and "--identity" not in note
    assert note in found.summary()


def test_every_local_backup_damaged_points_procedure_d_at_the_replica(sandbox: Path, pushed: str) -> None:
    trades = sandbox / "backups" / pushed / "data" / "trades.csv"
    writable(trades)
    trades.write_bytes(trades.read_bytes().replace(b",", b";", 1))
    assert health_check.run("backups", sandbox).details["damaged"] == [pushed]
    found = run_triage(sandbox)
    assert (found.scenario, found.procedure) == (4, "D")
    assert (found.replica, found.replica_action) == ("offsite", RESEED)
    assert found.evidence["local_backup"] is None


def test_a_stale_replica_is_still_named_and_the_note_says_what_is_lost(sandbox: Path, disk: Path) -> None:
    add_replica(sandbox, "offsite", disk)
    old = backup(sandbox, hours_ago=30)
    push(sandbox)
    shutil.rmtree(sandbox / "backups")
    found = run_triage(sandbox)
    assert (found.scenario, found.replica, found.replica_action) == (4, "offsite", RESEED)
    assert (
        f"(its newest backup {old} is 30.0 h old, older than the 24 h allowed: what changed since is lost)"
        in (found.notes[0])
    )


def test_the_fresh_replica_is_preferred(sandbox: Path, disk: Path) -> None:
    add_replica(sandbox, "old-disk", disk.with_name("old-disk"))
    add_replica(sandbox, "offsite", disk)
    backup(sandbox, hours_ago=30)
    push(sandbox, "old-disk")
    backup(sandbox)
    push(sandbox, "offsite")
    shutil.rmtree(sandbox / "backups")
    assert run_triage(sandbox).replica == "offsite"


def test_of_two_fresh_replicas_the_younger_is_preferred(sandbox: Path, disk: Path) -> None:
    add_replica(sandbox, "five-hours", disk.with_name("five-hours"))
    add_replica(sandbox, "offsite", disk)
    backup(sandbox, hours_ago=5)
    push(sandbox, "five-hours")
    newest = backup(sandbox)
    push(sandbox, "offsite")
    shutil.rmtree(sandbox / "backups")
    found = run_triage(sandbox)
    assert found.replica == "offsite"
    assert f"(its newest backup {newest} is 0.0 h old)" in found.notes[0]


def test_no_replica_configured_leaves_procedure_d_as_it_was(sandbox: Path) -> None:
    backup(sandbox)
    shutil.rmtree(sandbox / "backups")
    found = run_triage(sandbox)
    assert (found.scenario, found.procedure) == (4, "D")
    assert found.replica is None and found.replica_action is None and found.notes == []


def test_local_backups_that_serve_are_used_whatever_the_replicas_say(sandbox: Path, pushed: str) -> None:
    (sandbox / "data" / "positions.csv").unlink()
    found = run_triage(sandbox)
    assert (found.scenario, found.procedures) == (2, ["B"])
    assert found.evidence["local_backup"] == pushed
    assert found.replica is None and found.notes == []


def test_a_failing_replica_alone_is_not_a_disaster(sandbox: Path, pushed: str, disk: Path) -> None:
    shutil.rmtree(disk)
    found = run_triage(sandbox)
    assert not health_check.run("replicas", sandbox).healthy
    assert found.scenario is None and found.name == NOTHING and "replicas" in found.failed_checks


def test_data_lost_with_the_local_backups_restores_the_data_from_the_replica(sandbox: Path, pushed: str) -> None:
    shutil.rmtree(sandbox / "backups")
    (sandbox / "data" / "trades.csv").unlink()
    found = run_triage(sandbox)
    assert (found.scenario, found.procedures) == (2, ["B", "D"])
    assert (found.replica, found.replica_action) == ("offsite", RESTORE)
    assert "`recovery restore latest --from-replica offsite --data`" in found.notes[0]


# --- the host is lost: Procedure C from the replica (scenario 3) ----------------------------------


def test_a_lost_host_is_recovered_from_the_replica_as_triage_says(sandbox: Path, pushed: str) -> None:
    lose_host(sandbox)
    assert sorted(p.name for p in sandbox.iterdir()) == [".recovery-sandbox.json", "exchange", "recovery.toml", "run"]
    found = run_triage(sandbox)
    assert (found.scenario, found.procedure, found.procedures) == (3, "C", ["C", "D"])
    assert (found.replica, found.replica_action) == ("offsite", RESTORE)
    assert found.evidence["host_lost"] is True and found.evidence["local_backup"] is None
    assert "`recovery restore latest --from-replica offsite --all`" in found.notes[0]
    # What the note says to do brings the site back: nothing detected afterwards.
    manager = RecoveryManager(site=sandbox)
    assert manager.restore_from_replica("offsite"), manager.last_error
    after = run_triage(sandbox)
    assert after.scenario is None, after.summary()
    assert after.evidence["local_backup"] == pushed and after.notes == []


def test_a_lost_host_with_nothing_on_the_replica_says_to_escalate(sandbox: Path, disk: Path) -> None:
    add_replica(sandbox, "offsite", disk)
    backup(sandbox)
    lose_host(sandbox)
    found = run_triage(sandbox)
    assert (found.scenario, found.procedure) == (3, "C")
    assert found.replica is None and found.replica_action is None
    assert found.notes[0].startswith("No local backup can serve and no replica holds a backup")


def test_a_lost_host_with_an_unreachable_replica_names_no_replica(sandbox: Path, pushed: str, disk: Path) -> None:
    lose_host(sandbox)
    disk.parent.rename(disk.parent.with_name("unmounted"))
    found = run_triage(sandbox)
    assert found.scenario == 3 and found.replica is None
    assert "no replica holds a backup" in found.notes[0]


# --- a declared path replaced by another kind of thing -------------------------------------------


def test_a_state_directory_replaced_by_a_file_is_lost(sandbox: Path) -> None:
    backup_id = backup(sandbox)
    shutil.rmtree(sandbox / "state")
    (sandbox / "state").write_text("{}\n")
    found = run_triage(sandbox)
    assert (found.scenario, found.procedure) == (2, "B")
    assert found.missing_paths == ["state/"]
    assert found.evidence["replaced"] == [{"path": "state", "category": "state", "expected": "dir", "found": "file"}]
    assert found.evidence["local_backup"] == backup_id


def test_a_declared_file_replaced_by_a_directory_is_lost(sandbox: Path) -> None:
    toml = sandbox / "recovery.toml"
    toml.write_text(toml.read_text() + '\n[paths]\nstate = ["state", "strategy.json"]\n')
    (sandbox / "strategy.json").write_text('{"mode": "live"}\n')
    backup(sandbox)
    (sandbox / "strategy.json").unlink()
    (sandbox / "strategy.json").mkdir()
    (sandbox / "strategy.json" / "mode").write_text("live\n")
    found = run_triage(sandbox)
    assert found.scenario == 2 and found.missing_paths == ["strategy.json"]
    assert found.evidence["replaced"] == [
        {"path": "strategy.json", "category": "state", "expected": "file", "found": "dir"}
    ]


def test_the_config_directory_replaced_by_a_file_with_the_state_is_a_complete_failure(sandbox: Path) -> None:
    backup(sandbox)
    for name in ("config", "state"):
        shutil.rmtree(sandbox / name)
        (sandbox / name).write_text("x\n")
    found = run_triage(sandbox)
    assert (found.scenario, found.procedure) == (3, "C")
    assert set(found.missing_paths) == {"config/", "state/"}


def test_paths_of_the_right_kind_are_not_reported(sandbox: Path) -> None:
    backup(sandbox)
    found = run_triage(sandbox)
    assert found.missing_paths == [] and "replaced" not in found.evidence
    assert found.scenario is None and found.failed_checks == ["process"]  # the sandbox's process is not running
