"""The replicas health check and triage against a real S3 store (moto in server mode): an encrypted
replica is checked without its private key, a dead endpoint is reported in bounded time, and a lost
backup directory points Procedure D at the bucket."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from pyrage import x25519
from servers import S3Server, free_port

from recovery_lib import RecoveryManager, health_check
from recovery_lib.checks.triage import RESEED, triage
from recovery_lib.replica.crypto import IDENTITY_ENV
from recovery_lib.site.config import load_site


def s3_replica(name: str, bucket: str, endpoint_url: str, recipient: str) -> str:
    """A ``[[replicas]]`` table for an encrypted S3 replica."""
    return (
        f'\n[[replicas]]\nname = "{name}"\nurl = "s3://{bucket}/prod"\nendpoint_url = "{endpoint_url}"\n'
        f'region = "us-east-1"\nage_recipients = ["{recipient}"]\n'
    )


@pytest.fixture
def site(sandbox: Path, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The sandbox with only an encrypted S3 replica ``bucket``; no private key anywhere in reach."""
    monkeypatch.delenv(IDENTITY_ENV, raising=False)
    toml = sandbox / "recovery.toml"
    text = toml.read_text()
    text = text[: text.index("[[replicas]]")] if "[[replicas]]" in text else text  # the shared default replica
    recipient = str(x25519.Identity.generate().to_public())
    toml.write_text(text + s3_replica("bucket", s3_server.create_bucket(), s3_server.endpoint_url, recipient))
    return sandbox


def test_an_encrypted_s3_replica_is_checked_without_the_private_key(site: Path) -> None:
    manager = RecoveryManager(site=site)
    backup_id = manager.create_backup(push=False)  # the test pushes where it means to
    assert manager.push_to_replica("bucket").pushed == [backup_id]
    result = health_check.run("replicas", site)
    assert result.healthy, result.message
    (bucket,) = result.details["replicas"]
    assert bucket["encrypted"] and bucket["reachable"] and bucket["fresh"]
    assert bucket["newest"] == backup_id and bucket["backups"] == 1 and bucket["last_push"]["ok"]
    assert result.message.startswith(f"replica bucket: newest backup {backup_id} is 0.0 h old; last push ok")


def test_a_dead_endpoint_is_unreachable_in_bounded_time_and_the_bucket_still_counts(
    site: Path, s3_server: S3Server
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nobody listens there
    recipient = str(x25519.Identity.generate().to_public())
    toml = site / "recovery.toml"
    toml.write_text(toml.read_text() + s3_replica("dead", "gone", dead, recipient))
    manager = RecoveryManager(site=site)
    backup_id = manager.create_backup(push=False)  # the test pushes where it means to
    manager.push_to_replica("bucket")
    started = time.monotonic()
    result = health_check.run("replicas", site)
    assert time.monotonic() - started < 30  # the transports' timeouts bound it
    assert not result.healthy
    bucket, gone = result.details["replicas"]
    assert bucket["ok"] and bucket["newest"] == backup_id
    assert not gone["reachable"] and gone["error_kind"] == "unreachable" and gone["newest"] is None
    assert dead in gone["error"]
    assert result.details["failing"] == ["dead"] and result.details["fresh"] == ["bucket"]
    assert result.message.startswith("replica dead: unreachable: replica 'dead' (s3://gone/prod at ")


def test_lost_local_backups_point_procedure_d_at_the_bucket_and_say_the_key_is_needed(site: Path) -> None:
    manager = RecoveryManager(site=site)
    backup_id = manager.create_backup(push=False)  # the test pushes where it means to
    manager.push_to_replica("bucket")
    shutil.rmtree(site / "backups")
    found = triage(load_site(site))
    assert (found.scenario, found.procedure) == (4, "D")
    assert (found.replica, found.replica_action) == ("bucket", RESEED)
    assert backup_id in found.notes[0]
    assert "`recovery replica pull latest --replica bucket --identity FILE`" in found.notes[0]
