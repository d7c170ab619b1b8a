"""The replicas health check against real ``file://`` replicas: freshness, the last push, unreachable
and damaged replicas, unfinished pushes; and that checking writes nothing, on the site or the replica."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from replica_site import add_replica, backup, drop_replicas, push, remount, unmount, writable
from snapshots import files, tree

from recovery_lib import RecoveryManager, health_check
from recovery_lib.checks.replicas import NO_REPLICA
from recovery_lib.cli.main import main
from recovery_lib.errors import ReplicaUnreachable


@pytest.fixture
def sandbox(sandbox: Path) -> Path:
    """The test sandbox without its default replica: each test declares its own."""
    return drop_replicas(sandbox)


@pytest.fixture
def disk(tmp_path: Path) -> Path:
    """The replica's directory on "another disk": its parent exists (mounted), it does not yet."""
    (tmp_path / "backupdisk").mkdir()
    return tmp_path / "backupdisk" / "peak-trade"


def facts(sandbox: Path, name: str = "offsite") -> dict[str, object]:
    """Run the check; return the named replica's facts (the fields triage and notebooks branch on)."""
    result = health_check.run("replicas", sandbox)
    (found,) = [r for r in result.details["replicas"] if r["name"] == name]
    return found


def test_a_site_without_replicas_is_healthy_and_says_the_backups_are_only_here(sandbox: Path) -> None:
    results = health_check.run_all(sandbox)
    assert list(results)[-1] == "replicas"
    result = results["replicas"]
    assert result.healthy
    assert result.message == NO_REPLICA
    assert result.details == {"configured": False, "replicas": [], "fresh": []}


def test_a_fresh_pushed_backup_is_healthy(sandbox: Path, disk: Path) -> None:
    add_replica(sandbox, "offsite", disk)
    backup_id = backup(sandbox)
    assert push(sandbox) == [backup_id]
    result = health_check.run("replicas", sandbox)
    assert result.healthy, result.message
    assert result.message.startswith(f"replica offsite: newest backup {backup_id} is 0.0 h old; last push ok")
    (offsite,) = result.details["replicas"]
    assert offsite["ok"] and offsite["reachable"] and offsite["fresh"]
    assert offsite["newest"] == offsite["stalest"] == backup_id
    assert offsite["url"] == f"file://{disk}" and offsite["backups"] == 1
    assert offsite["age_hours"] == pytest.approx(0, abs=0.05) and offsite["max_age_hours"] == 24
    assert offsite["last_push"]["ok"] and offsite["last_push"]["pushed"] == [backup_id]
    assert offsite["error"] is None and offsite["incomplete"] == [] and offsite["problems"] == []
    assert result.details["fresh"] == ["offsite"] and result.details["failing"] == []


def test_checking_writes_nothing_on_the_site_or_the_replica(sandbox: Path, disk: Path) -> None:
    add_replica(sandbox, "offsite", disk)
    backup(sandbox)
    push(sandbox)
    site_before, replica_before = files(sandbox), tree(disk)
    assert health_check.run("replicas", sandbox).healthy
    assert files(sandbox) == site_before
    assert tree(disk) == replica_before


def test_a_stale_replica_is_unhealthy_and_says_how_to_push(sandbox: Path, disk: Path) -> None:
    add_replica(sandbox, "offsite", disk)
    backup_id = backup(sandbox, hours_ago=30)
    push(sandbox)
    result = health_check.run("replicas", sandbox)
    assert not result.healthy
    assert result.message == (
        f"replica offsite: newest backup {backup_id} is 30.0 h old (max 24 h): "
        "push with `recovery replica push --replica offsite` (Procedure D)"
    )
    (offsite,) = result.details["replicas"]
    assert offsite["reachable"] and not offsite["fresh"] and not offsite["ok"]
    assert offsite["age_hours"] == pytest.approx(30, abs=0.05)
    assert offsite["last_push"]["ok"]  # the push worked: what it pushed is old
    assert result.details["failing"] == ["offsite"] and result.details["fresh"] == []


def test_a_replica_max_age_overrides_the_site_one_and_a_manual_replica_is_told_so(sandbox: Path, disk: Path) -> None:
    add_replica(sandbox, "offsite", disk, max_age_hours=48)
    add_replica(sandbox, "usb", disk.with_name("usb"), push="manual")
    backup(sandbox, hours_ago=30)
    push(sandbox, "offsite")
    push(sandbox, "usb")
    result = health_check.run("replicas", sandbox)
    offsite, usb = result.details["replicas"]
    assert offsite["ok"] and offsite["fresh"] and offsite["max_age_hours"] == 48
    assert not usb["ok"] and usb["max_age_hours"] == 24
    assert result.details["failing"] == ["usb"]
    assert "or set max_age_hours for it (push = 'manual')" in result.message
    assert result.message.index("replica usb:") < result.message.index("replica offsite:")  # faults first


def test_a_config_only_newest_backup_does_not_make_the_data_fresh(sandbox: Path, disk: Path) -> None:
    add_replica(sandbox, "offsite", disk)
    full = backup(sandbox, hours_ago=30)
    config_only = backup(sandbox, include_state=False, include_data=False)
    push(sandbox, target="all")
    offsite = facts(sandbox)
    assert offsite["newest"] == config_only and offsite["stalest"] == full
    assert offsite["stalest_category"] in ("state", "data") and not offsite["fresh"]
    assert f"newest backup (newest of {offsite['stalest_category']}) {full} is 30.0 h old" in offsite["problems"][0]


def test_an_empty_replica_and_a_never_pushed_one_are_unhealthy(sandbox: Path, disk: Path) -> None:
    add_replica(sandbox, "offsite", disk)
    backup(sandbox)
    result = health_check.run("replicas", sandbox)
    assert not result.healthy
    assert result.message == (
        "replica offsite: holds no backup: push one with `recovery replica push --replica offsite` (Procedure D)"
    )
    (offsite,) = result.details["replicas"]
    assert offsite["reachable"] and offsite["newest"] is None and offsite["last_push"] is None
    assert not disk.exists()  # checking did not create the replica


def test_pre_recovery_snapshots_on_the_replica_are_not_recovery_points(sandbox: Path, disk: Path) -> None:
    add_replica(sandbox, "offsite", disk)
    good = backup(sandbox, hours_ago=30)
    backup(sandbox, tags=["pre-recovery"])
    push(sandbox, target="all")
    offsite = facts(sandbox)
    assert offsite["backups"] == 2
    assert offsite["newest"] == good and not offsite["fresh"]


def test_an_unreachable_replica_is_unhealthy_with_the_reason_and_others_are_still_reported(
    sandbox: Path, disk: Path, tmp_path: Path
) -> None:
    add_replica(sandbox, "offsite", disk)
    add_replica(sandbox, "usb", tmp_path / "not-mounted" / "peak-trade")
    backup_id = backup(sandbox)
    push(sandbox, "offsite")
    result = health_check.run("replicas", sandbox)
    assert not result.healthy
    offsite, usb = result.details["replicas"]
    assert offsite["ok"] and offsite["newest"] == backup_id
    assert not usb["ok"] and not usb["reachable"] and usb["error_kind"] == "unreachable"
    assert "is the disk mounted?" in usb["error"]
    assert result.message.startswith(f"replica usb: unreachable: replica 'usb' ({tmp_path / 'not-mounted'}")
    assert result.details["failing"] == ["usb"] and result.details["fresh"] == ["offsite"]
    assert not (tmp_path / "not-mounted").exists()


def test_a_failed_last_push_is_unhealthy_even_with_a_fresh_backup_there(sandbox: Path, disk: Path) -> None:
    add_replica(sandbox, "offsite", disk)
    first = backup(sandbox)
    push(sandbox)
    second = backup(sandbox)
    away = unmount(disk)
    with pytest.raises(ReplicaUnreachable):
        RecoveryManager(site=sandbox).push_to_replica()
    remount(away, disk)
    result = health_check.run("replicas", sandbox)
    assert not result.healthy
    (offsite,) = result.details["replicas"]
    assert offsite["push_failed"] and offsite["fresh"] and offsite["newest"] == first
    assert "is the disk mounted?" in offsite["last_push"]["error"]
    assert result.message.startswith("replica offsite: last push ")
    assert ": FAILED: replica 'offsite'" in result.message and "is the disk mounted?" in result.message
    # The next push succeeds and the check is healthy again: nothing was lost.
    assert push(sandbox) == [second]
    after = health_check.run("replicas", sandbox)
    assert after.healthy, after.message
    assert after.details["replicas"][0]["newest"] == second


def test_an_unfinished_push_is_reported_in_the_details(sandbox: Path, disk: Path) -> None:
    add_replica(sandbox, "offsite", disk)
    first = backup(sandbox)
    second = backup(sandbox)
    push(sandbox, target="all")
    # What a push killed before its commit marker leaves: every document but metadata.json.
    writable(disk / "backups" / second)
    (disk / "backups" / second / "metadata.json").unlink()
    result = health_check.run("replicas", sandbox)
    assert result.healthy, result.message
    (offsite,) = result.details["replicas"]
    assert offsite["incomplete"] == [second] and offsite["newest"] == first and offsite["backups"] == 1
    assert result.message.endswith("; 1 unfinished push(es)")


def test_a_damaged_index_is_named_and_the_older_backup_still_counts(sandbox: Path, disk: Path) -> None:
    add_replica(sandbox, "offsite", disk)
    first = backup(sandbox)
    second = backup(sandbox)
    push(sandbox, target="all")
    index = disk / "backups" / second / "index.json"
    writable(index.parent)
    index.write_text('{"backup_id": "../../etc"}')
    result = health_check.run("replicas", sandbox)
    assert not result.healthy
    (offsite,) = result.details["replicas"]
    assert offsite["unreadable"] == [second] and offsite["newest"] == first and offsite["fresh"]
    assert f"1 backup(s) with a damaged index.json ({second})" in result.message
    assert "recovery replica verify all --replica offsite" in result.message


def test_a_replica_of_another_kind_of_encryption_is_unusable(sandbox: Path, disk: Path) -> None:
    """The url points at a replica written with encryption: a plain site must not push into it."""
    add_replica(sandbox, "offsite", disk)
    backup(sandbox)
    push(sandbox)
    config = disk / "config.json"
    writable(disk)
    config.write_text(config.read_text().replace('"encryption": "none"', '"encryption": "age"'))
    (offsite,) = health_check.run("replicas", sandbox).details["replicas"]
    assert not offsite["ok"] and offsite["error_kind"] == "error"
    assert "holds backups with encryption 'age' but recovery.toml says 'none'" in offsite["error"]


def test_the_health_command_shows_the_replicas(sandbox: Path, disk: Path) -> None:
    add_replica(sandbox, "offsite", disk)
    backup_id = backup(sandbox)
    push(sandbox)
    out = io.StringIO()
    assert main(["health", "--site", str(sandbox), "--check", "replicas"], out=out) == 0
    assert f"✅ REPLICAS  replica offsite: newest backup {backup_id}" in out.getvalue()
    out = io.StringIO()
    main(["health", "--site", str(sandbox), "--json"], out=out)
    payload = json.loads(out.getvalue())
    assert payload["checks"]["replicas"]["details"]["replicas"][0]["newest"] == backup_id
