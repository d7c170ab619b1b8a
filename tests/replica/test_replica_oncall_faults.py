"""Faults a fresh on-call engineer tried that nobody had scripted: each is refused or reported, never
turned into a success claim, and nothing on the replica is lost by the tool itself."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from pyrage import x25519
from servers import spec_for

from recovery_lib.backup.retention import RetentionPolicy
from recovery_lib.checks.default import health_check
from recovery_lib.errors import ReplicaDamaged, ReplicaError
from recovery_lib.manager import RecoveryManager
from recovery_lib.replica import service
from recovery_lib.replica.layout import OBJECTS_PREFIX
from recovery_lib.replica.open import open_transport
from recovery_lib.replica.prune import prune_remote
from recovery_lib.replica.push import push_backups
from recovery_lib.replica.remote import Replica


def _key(tmp_path: Path, name: str) -> tuple[str, Path]:
    identity = x25519.Identity.generate()
    path = tmp_path / f"{name}.txt"
    path.write_text(f"{identity}\n")
    return str(identity.to_public()), path


def _objects(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in (root / "objects").rglob("*") if p.is_file()}


def _use_replica(site: Path, root: Path, extra: str = "") -> None:
    """Point the sandbox's replica "offsite" at ``root`` (plus extra keys)."""
    config = site / "recovery.toml"
    text = config.read_text()
    start = text.index("[[replicas]]")
    config.write_text(text[:start] + f'[[replicas]]\nname = "offsite"\nurl = "file://{root}"\n{extra}')


def test_changing_the_recipients_refuses_the_push_instead_of_reusing_unreadable_objects(
    sandbox: Path, tmp_path: Path
) -> None:
    old, _ = _key(tmp_path, "old")
    new, _ = _key(tmp_path, "new")
    root = tmp_path / "disk" / "r"
    root.parent.mkdir()
    _use_replica(sandbox, root, f'age_recipients = ["{old}"]\n')
    manager = RecoveryManager(site=sandbox)
    first = manager.create_backup()
    assert manager.last_push[0].ok
    _use_replica(sandbox, root, f'age_recipients = ["{new}"]\n')
    manager = RecoveryManager(site=sandbox)
    second = manager.create_backup()  # the backup itself succeeds; the push is refused and recorded
    record = manager.last_push[0]
    assert not record.ok and "other age recipients" in record.error
    replica = Replica(manager.site.replicas[0], open_transport(manager.site.replicas[0]))
    assert replica.committed_ids() == [first] and second not in replica.incomplete_ids()
    assert not health_check.run("replicas", sandbox).healthy


def test_a_lost_config_json_is_damage_not_an_empty_replica(sandbox: Path, tmp_path: Path) -> None:
    root = tmp_path / "disk" / "r"
    root.parent.mkdir()
    _use_replica(sandbox, root)
    manager = RecoveryManager(site=sandbox)
    backup_id = manager.create_backup()
    (root / "config.json").chmod(0o644)
    (root / "config.json").unlink()
    before = _objects(root)
    spec = manager.site.replicas[0]
    with pytest.raises(ReplicaDamaged, match="config.json is missing"):
        Replica(spec, open_transport(spec)).config()
    with pytest.raises(ReplicaDamaged, match="salt is lost"):
        service.push(spec, manager.backup_dir, "all")
    assert not (root / "config.json").exists() and _objects(root) == before  # no new salt over old backups
    assert (root / "backups" / backup_id).is_dir()


def test_an_unmounted_disk_is_not_recreated_on_the_host(sandbox: Path, tmp_path: Path) -> None:
    mount_point = tmp_path / "mnt-usb"
    mount_point.mkdir()
    root = mount_point / "peak-trade"
    _use_replica(sandbox, root)
    manager = RecoveryManager(site=sandbox)
    manager.create_backup()
    assert manager.last_push[0].ok and root.is_dir()
    shutil.move(root, tmp_path / "the-disk-elsewhere")  # unmounted: the mount point is an empty directory
    manager = RecoveryManager(site=sandbox)
    manager.create_backup()
    assert not root.exists()  # not created again on the host's own disk
    assert not manager.last_push[0].ok and "is the disk mounted" in manager.last_push[0].error
    health = health_check.run("replicas", sandbox)
    assert not health.healthy and "is the disk mounted" in health.message


def test_prune_removes_no_object_while_a_kept_backup_is_damaged(sandbox: Path, tmp_path: Path) -> None:
    root = tmp_path / "disk" / "r"
    root.parent.mkdir()
    spec = spec_for("file", directory=root)
    manager = RecoveryManager(site=sandbox)
    older = manager.create_backup(push=False)
    (sandbox / "config" / "config.toml").write_text((sandbox / "config" / "config.toml").read_text() + "# v2\n")
    newer = manager.create_backup(push=False)
    replica = Replica(spec, open_transport(spec))
    assert push_backups(replica, manager.backup_dir, [older, newer]).ok
    index = root / "backups" / newer / "index.json"
    data = json.loads(index.read_text())
    data["objects"] = {}  # an edited index would otherwise make prune delete what the kept backup needs
    index.chmod(0o644)
    index.write_text(json.dumps(data))
    before = _objects(root)
    plan = prune_remote(Replica(spec, open_transport(spec)), RetentionPolicy(keep_last=1), dry_run=False)
    assert plan.objects_removed == 0 and _objects(root) == before
    assert any(newer in problem for problem in plan.unreadable)


def test_pushing_a_backup_that_is_there_but_damaged_is_a_failure(sandbox: Path, tmp_path: Path) -> None:
    root = tmp_path / "disk" / "r"
    root.parent.mkdir()
    spec = spec_for("file", directory=root)
    manager = RecoveryManager(site=sandbox)
    backup_id = manager.create_backup(push=False)
    assert push_backups(Replica(spec, open_transport(spec)), manager.backup_dir, [backup_id]).ok
    victim = next(p for p in (root / "objects").rglob("*") if p.is_file())
    victim.unlink()
    again = push_backups(Replica(spec, open_transport(spec)), manager.backup_dir, [backup_id])
    assert not again.ok and "damaged" in again.failed[backup_id] and again.already == []


def test_health_sees_a_newest_backup_that_never_reached_the_replica(sandbox: Path) -> None:
    manager = RecoveryManager(site=sandbox)
    manager.create_backup()
    assert health_check.run("replicas", sandbox).healthy
    newest = manager.create_backup(push=False)  # as if its push had been killed
    result = health_check.run("replicas", sandbox)
    assert not result.healthy and newest in result.message and "no push was tried" in result.message


def test_a_damaged_local_copy_is_set_aside_and_pulled_again(sandbox: Path, tmp_path: Path) -> None:
    manager = RecoveryManager(site=sandbox)
    backup_id = manager.create_backup()
    victim = manager.backup_dir / backup_id / "data" / "positions.csv"
    victim.chmod(0o644)
    victim.write_text("symbol,quantity,avg_price\nBTC,1000,1\n")
    report = manager.pull_from_replica(backup_id=backup_id)
    assert not report.already_local and "set aside" in report.summary()
    assert manager.verify_backup(backup_id).ok
    assert manager.list_quarantined() == [f".quarantine-{backup_id}"]


def test_a_missing_object_names_the_file_it_held(sandbox: Path, tmp_path: Path) -> None:
    manager = RecoveryManager(site=sandbox)
    backup_id = manager.create_backup()
    spec = manager.site.replicas[0]
    root = Path(spec.location)
    replica = Replica(spec, open_transport(spec))
    listing = {o.key for o in replica.transport.list(OBJECTS_PREFIX)}
    manifest = manager._manifest(backup_id).by_path()
    config = replica.require_config()
    key = next(k for k in listing if k.endswith(config.object_name(manifest["data/trades.csv"].sha256)))
    (root / key).unlink()
    shutil.rmtree(manager.backup_dir)
    with pytest.raises(ReplicaError, match=r"data/trades\.csv"):
        RecoveryManager(site=sandbox).pull_from_replica(backup_id=backup_id)
    assert not (sandbox / "backups" / backup_id).exists()  # nothing half-pulled is left looking like a backup


def test_health_does_not_count_a_newest_backup_whose_object_is_truncated(sandbox: Path) -> None:
    manager = RecoveryManager(site=sandbox)
    older = manager.create_backup()
    with (sandbox / "data" / "trades.csv").open("a") as trades:
        trades.write("9999,2026-12-03T00:00:00Z,BTC/USD,buy,1,1\n")
    newer = manager.create_backup()
    spec = manager.site.replicas[0]
    config = Replica(spec, open_transport(spec)).require_config()
    sha = manager._manifest(newer).by_path()["data/trades.csv"].sha256
    victim = Path(spec.location) / "objects" / config.object_name(sha)[:2] / config.object_name(sha)
    victim.chmod(0o644)
    victim.write_bytes(victim.read_bytes()[:100])
    result = health_check.run("replicas", sandbox)
    assert not result.healthy and newer in result.message and "lack objects" in result.message
    facts = result.details["replicas"][0]
    assert facts["damaged"] == [newer] and facts["newest"] == older  # the whole older one still counts
