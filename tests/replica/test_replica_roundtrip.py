"""Push, verify, pull and restore through each kind of replica against its real server.

file:// is a second directory, sftp:// Debian's OpenSSH, s3:// moto's server. s3 and sftp are
encrypted with age (as recovery.toml requires); file:// runs both plain and encrypted.
"""

from __future__ import annotations

import filecmp
import subprocess
from pathlib import Path
from typing import Any

import pytest
from pyrage import x25519
from servers import spec_for

from recovery_lib.errors import IdentityRequired
from recovery_lib.manager import RecoveryManager
from recovery_lib.replica.check import verify_remote
from recovery_lib.replica.layout import OBJECTS_PREFIX
from recovery_lib.replica.open import open_transport
from recovery_lib.replica.pull import pull_backup
from recovery_lib.replica.push import push_backups
from recovery_lib.replica.remote import Replica
from recovery_lib.site.replicas import ReplicaSpec

KINDS = ["file-plain", "file-age", "sftp", "s3"]


@pytest.fixture
def identity(tmp_path: Path) -> tuple[Any, Path]:
    """An age key pair; the private key in a file off the site."""
    key = x25519.Identity.generate()
    path = tmp_path / "keys" / "key.txt"
    path.parent.mkdir()
    path.write_text(f"# test key\n{key}\n")
    return key, path


@pytest.fixture
def make_spec(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, identity: tuple[Any, Path]):
    """A spec of the requested kind, encrypted to ``identity`` unless it is ``file-plain``."""

    def make(kind: str) -> ReplicaSpec:
        recipients = () if kind == "file-plain" else (str(identity[0].to_public()),)
        if kind.startswith("file"):
            directory = tmp_path_factory.mktemp("backupdisk") / "peak-trade"
            return spec_for("file", directory=directory, age_recipients=recipients)
        if kind == "sftp":
            return spec_for("sftp", sftp=request.getfixturevalue("sftp_server"), age_recipients=recipients)
        server = request.getfixturevalue("s3_server")
        return spec_for("s3", s3=server, bucket=server.create_bucket(), age_recipients=recipients)

    return make


def _replica(spec: ReplicaSpec) -> Replica:
    return Replica(spec, open_transport(spec))


def _stored_bytes(replica: Replica) -> list[bytes]:
    """Every object and document as the store holds it (what a thief of the bucket gets)."""
    out = []
    for prefix in ("objects/", "backups/", "config.json"):
        for item in replica.transport.list(prefix):
            out.append(replica.transport.get_bytes(item.key, max_size=10**9))
    return out


@pytest.mark.parametrize("kind", KINDS)
def test_push_verify_pull_round_trip(kind: str, make_spec, sandbox: Path, tmp_path: Path, identity) -> None:
    spec = make_spec(kind)
    manager = RecoveryManager(site=sandbox)
    first = manager.create_backup(description="nightly")
    (sandbox / "config" / "config.toml").write_text((sandbox / "config" / "config.toml").read_text() + "\n# x\n")
    second = manager.create_backup(description="after a config change")

    replica = _replica(spec)
    report = push_backups(replica, manager.backup_dir, [first, second])
    assert report.ok and report.pushed == [first, second]
    files = manager.get_backup(first).files_count
    assert report.objects_uploaded == files + 1  # the second backup adds only the changed config
    replica.close()

    # A push of what is there uploads nothing (and says so).
    replica = _replica(spec)
    again = push_backups(replica, manager.backup_dir, [first, second])
    assert again.ok and again.already == [first, second] and again.objects_uploaded == 0

    objects = {o.key: o for o in replica.transport.list(OBJECTS_PREFIX)}
    opener = replica.opener(str(identity[1]))
    for backup_id in (first, second):
        full = verify_remote(replica, backup_id, True, opener, objects)
        assert full.ok and full.plaintext, full.summary()
        sealed = verify_remote(replica, backup_id, True, None, objects)
        assert sealed.ok and sealed.plaintext == (kind == "file-plain"), sealed.summary()

    elsewhere = tmp_path / "new-host-backups"
    pulled = pull_backup(replica, elsewhere, second, opener)
    assert not pulled.already_local and pulled.files == manager.get_backup(second).files_count
    replica.close()
    # Byte for byte the backup that was pushed: coreutils agrees, and so do the documents.
    subprocess.run(["sha256sum", "-c", "--quiet", "SHA256SUMS"], cwd=elsewhere / second, check=True)
    for name in ("metadata.json", "manifest.json", "SHA256SUMS", "config/config.toml", "data/trades.csv"):
        assert filecmp.cmp(manager.backup_dir / second / name, elsewhere / second / name, shallow=False)


@pytest.mark.parametrize("kind", ["file-age", "sftp", "s3"])
def test_an_encrypted_replica_holds_no_plaintext_and_needs_the_key(
    kind: str, make_spec, sandbox: Path, tmp_path: Path
) -> None:
    spec = make_spec(kind)
    manager = RecoveryManager(site=sandbox)
    backup_id = manager.create_backup()
    replica = _replica(spec)
    assert push_backups(replica, manager.backup_dir, [backup_id]).ok
    stored = _stored_bytes(replica)
    # Distinctive plaintexts of the site: none appears in any stored object or document.
    secrets = [
        (sandbox / "config" / "config.toml").read_bytes()[:200],
        (sandbox / "data" / "positions.csv").read_bytes()[:120],
        b"config/config.toml",  # not even the file names
        manager.get_backup(backup_id).backup_id.encode() + b'", "status"',
    ]
    for secret in secrets:
        assert not any(secret in blob for blob in stored), secret[:40]
    # Nor the files' sha256 (the object names are salted per replica).
    shas = {line.split()[0] for line in (manager.backup_dir / backup_id / "SHA256SUMS").read_text().splitlines()}
    names = {item.key.rsplit("/", 1)[-1] for item in replica.transport.list(OBJECTS_PREFIX)}
    assert names and not (shas & names)

    # Reading it back without the identity is refused before anything is downloaded.
    with pytest.raises(IdentityRequired, match="--identity"):
        pull_backup(replica, tmp_path / "elsewhere", backup_id, replica.opener(None))
    assert not (tmp_path / "elsewhere").exists()
    # And with the wrong identity it is refused by name, nothing left behind.
    wrong = tmp_path / "wrong.txt"
    wrong.write_text(f"{x25519.Identity.generate()}\n")
    with pytest.raises(Exception, match="does not decrypt") as caught:
        pull_backup(replica, tmp_path / "elsewhere", backup_id, replica.opener(str(wrong)))
    assert type(caught.value).__name__ == "ReplicaDamaged"
    assert not list((tmp_path / "elsewhere").glob("*")) if (tmp_path / "elsewhere").exists() else True
    replica.close()


def test_unchanged_incremental_push_uploads_nothing_new(make_spec, sandbox: Path, no_racy_window: None) -> None:
    spec = make_spec("file-plain")
    manager = RecoveryManager(site=sandbox)
    first = manager.create_backup()
    replica = _replica(spec)
    first_push = push_backups(replica, manager.backup_dir, [first])
    second = manager.create_backup()  # nothing changed
    second_push = push_backups(_replica(spec), manager.backup_dir, [second])
    assert second_push.ok and second_push.objects_uploaded == 0
    assert second_push.objects_reused == first_push.objects_uploaded
    assert second_push.bytes_uploaded == 0 < first_push.bytes_uploaded
