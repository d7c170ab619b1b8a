"""The ransomware drill: credentials able to write to the bucket cannot destroy backups under S3 Object
Lock (COMPLIANCE), and the site is restored from them afterwards, byte for byte.

The attacker holds what the trading host holds (the bucket's write credentials and the public key)
and tries everything a write credential allows: deleting every version, overwriting every key,
hiding every key behind a delete marker, shortening the retention. Then the on-call engineer
lists, verifies and restores with the private key kept off the host.
"""

from __future__ import annotations

import filecmp
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from pyrage import x25519
from servers import spec_for

from recovery_lib.backup.retention import RetentionPolicy
from recovery_lib.manager import RecoveryManager
from recovery_lib.replica.check import verify_remote
from recovery_lib.replica.layout import OBJECTS_PREFIX, object_key
from recovery_lib.replica.open import open_transport
from recovery_lib.replica.prune import prune_remote
from recovery_lib.replica.pull import pull_backup
from recovery_lib.replica.push import push_backups
from recovery_lib.replica.remote import Replica


def _lock_of(client: Any, bucket: str, key: str, version: str) -> tuple[str | None, datetime | None]:
    """(mode, retain-until) of one version. HEAD, not GetObjectRetention: moto's server answers that
    call with a 500."""
    head = client.head_object(Bucket=bucket, Key=key, VersionId=version)
    return head.get("ObjectLockMode"), head.get("ObjectLockRetainUntilDate")


def _versions(client: Any, bucket: str) -> list[dict[str, Any]]:
    pages = client.get_paginator("list_object_versions").paginate(Bucket=bucket)
    return [v for page in pages for v in page.get("Versions", [])]


@pytest.fixture
def locked(s3_server, sandbox: Path, tmp_path: Path):
    """Two backups pushed, encrypted, to a bucket with Object Lock (1 day)."""
    key = x25519.Identity.generate()
    key_file = tmp_path / "offhost" / "key.txt"
    key_file.parent.mkdir()
    key_file.write_text(f"{key}\n")
    bucket = s3_server.create_locked_bucket()
    spec = spec_for("s3", s3=s3_server, bucket=bucket, age_recipients=(str(key.to_public()),), object_lock_days=1)
    manager = RecoveryManager(site=sandbox)
    older = manager.create_backup(description="older")
    (sandbox / "config" / "config.toml").write_text((sandbox / "config" / "config.toml").read_text() + "\n# z\n")
    newer = manager.create_backup(description="newer")
    replica = Replica(spec, open_transport(spec))
    assert push_backups(replica, manager.backup_dir, [older, newer]).ok
    replica.close()
    return spec, bucket, manager, (older, newer), key_file


def test_every_object_is_written_under_compliance_retention(locked, s3_server) -> None:
    spec, bucket, manager, (older, newer), _ = locked
    client = s3_server.client()
    soon = datetime.now(UTC) + timedelta(hours=23)
    versions = _versions(client, bucket)
    assert versions
    for version in versions:
        mode, until = _lock_of(client, bucket, version["Key"], version["VersionId"])
        assert mode == "COMPLIANCE" and until is not None and until > soon, version["Key"]


def test_ransomware_with_write_credentials_cannot_destroy_locked_backups(
    locked, s3_server, sandbox: Path, tmp_path: Path
) -> None:
    spec, bucket, manager, (older, newer), key_file = locked
    attacker = s3_server.client()
    originals = _versions(attacker, bucket)

    refused = 0
    for version in originals:  # 1. delete every version outright
        with pytest.raises(ClientError) as caught:
            attacker.delete_object(Bucket=bucket, Key=version["Key"], VersionId=version["VersionId"])
        assert caught.value.response["Error"]["Code"] == "AccessDenied"
        refused += 1
    # Shortening the retention is refused by S3 for COMPLIANCE; moto's server does not enforce that
    # one rule, so this drill does not try it (it would prove nothing about a real store).
    for version in originals:  # 2. overwrite every key with a ransom note, then hide it
        attacker.put_object(Bucket=bucket, Key=version["Key"], Body=b"pay 10 BTC to get your backups back")
        attacker.delete_object(Bucket=bucket, Key=version["Key"])
    assert "Contents" not in attacker.list_objects_v2(Bucket=bucket)  # a plain listing sees nothing left
    survivors = {(v["Key"], v["VersionId"]) for v in _versions(attacker, bucket)}
    assert {(v["Key"], v["VersionId"]) for v in originals} <= survivors  # every original version is still there

    # The on-call engineer: the replica still lists both backups, verifies them, and restores a new host.
    replica = Replica(spec, open_transport(spec))
    assert set(replica.committed_ids()) == {newer, older}
    objects = {o.key: o for o in replica.transport.list(OBJECTS_PREFIX)}
    for backup_id in (older, newer):
        report = verify_remote(replica, backup_id, True, replica.opener(str(key_file)), objects)
        assert report.ok and report.plaintext, report.summary()
    new_host = tmp_path / "new-host" / "backups"
    pull_backup(replica, new_host, newer, replica.opener(str(key_file)))
    for name in ("data/trades.csv", "config/config.toml", "metadata.json"):
        assert filecmp.cmp(manager.backup_dir / newer / name, new_host / newer / name, shallow=False)
    assert refused == len(originals)
    replica.close()


def test_prune_keeps_locked_backups_and_says_until_when(locked) -> None:
    spec, bucket, manager, (older, newer), _ = locked
    replica = Replica(spec, open_transport(spec))
    plan = prune_remote(replica, RetentionPolicy(keep_last=1), dry_run=False)
    assert [d.backup.backup_id for d in plan.plan.remove] == [older]
    assert plan.removed == [] and plan.objects_removed == 0
    assert "Object Lock until" in plan.locked[older]
    assert "LOCKED" in plan.summary(dry_run=False) and older in plan.summary(dry_run=False)
    replica.refresh()
    assert set(replica.committed_ids()) == {newer, older}
    replica.close()


def test_a_later_backup_extends_the_lock_of_the_objects_it_reuses(locked, s3_server, sandbox: Path) -> None:
    spec, bucket, manager, (older, newer), _ = locked
    longer = type(spec)(**{**spec.__dict__, "object_lock_days": 3})
    third = manager.create_backup(description="third")
    replica = Replica(longer, open_transport(longer))
    report = push_backups(replica, manager.backup_dir, [third])
    assert report.ok and report.objects_reused > 0
    index = replica.index(third)
    backup_lock = datetime.fromisoformat(index.retain_until.replace("Z", "+00:00"))
    config = replica.require_config()
    client = s3_server.client()
    for entry in manager._manifest(third).files:
        key = "prod/" + object_key(config.object_name(entry.sha256))
        oldest = min((v for v in _versions(client, bucket) if v["Key"] == key), key=lambda v: v["LastModified"])
        _, until = _lock_of(client, bucket, key, oldest["VersionId"])
        assert until is not None and until >= backup_lock, entry.path
    replica.close()
