"""The replica transports' contract, against real stores: a directory, OpenSSH's SFTP, moto's S3 server.

The same tests run on every kind (``s3-versioned`` is an Object Lock bucket: versioned, so every read
goes through the oldest-version path). Failure paths check that the failure is reported with the right
type and that nothing was lost or half-written.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from servers import S3Server, SftpServer, free_port, spec_for

from recovery_lib.clock import now
from recovery_lib.errors import ReplicaDamaged, ReplicaLocked, ReplicaUnreachable
from recovery_lib.replica.fs import FileTransport
from recovery_lib.replica.open import open_transport
from recovery_lib.replica.s3 import S3Transport
from recovery_lib.replica.sftp import SftpTransport
from recovery_lib.replica.transport import Transport

KINDS = ["file", "sftp", "s3", "s3-versioned"]
MB = 1 << 20


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def store(kind: str, request: pytest.FixtureRequest) -> Iterator[tuple[Transport, Path | None]]:
    """(the transport, the local directory behind it when there is one: file and sftp) for ``kind``."""
    if kind == "file":
        directory = request.getfixturevalue("file_replica_dir")
        spec, local = spec_for("file", directory=directory), directory
    elif kind == "sftp":
        sftp: SftpServer = request.getfixturevalue("sftp_server")
        spec, local = spec_for("sftp", sftp=sftp), sftp.root
    else:
        s3: S3Server = request.getfixturevalue("s3_server")
        bucket = s3.create_bucket(object_lock=kind == "s3-versioned")
        spec, local = spec_for("s3", s3=s3, bucket=bucket), None
    transport = open_transport(spec)
    try:
        yield transport, local
    finally:
        transport.close()


def random_file(path: Path, size: int, seed: int = 1) -> Path:
    path.write_bytes(hashlib.shake_256(str(seed).encode()).digest(size) if size < 4 * MB else os.urandom(size))
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_open_transport_picks_the_transport_by_scheme(store: tuple[Transport, Path | None], kind: str) -> None:
    expected = {"file": FileTransport, "sftp": SftpTransport, "s3": S3Transport, "s3-versioned": S3Transport}[kind]
    assert isinstance(store[0], expected)
    assert "offsite" in store[0].description


def test_round_trip_put_stat_list_get(store: tuple[Transport, Path | None], kind: str, tmp_path: Path) -> None:
    transport, local = store
    big = random_file(tmp_path / "big.bin", 5 * MB)
    transport.put_file("objects/ab/ab12", big)
    transport.put_bytes("backups/b1/metadata.json", b'{"id": "b1"}')
    transport.put_bytes("backups/b10/metadata.json", b"{}")

    stored = transport.stat("objects/ab/ab12")
    assert stored is not None and stored.size == 5 * MB and stored.key == "objects/ab/ab12"
    if kind.startswith("s3"):
        assert stored.sha256 == sha256(big), "a single PUT keeps the whole object's SHA-256"
    assert transport.stat("objects/ab/nothing") is None
    assert transport.stat("backups/b1") is None, "a directory is not an object"

    everything = {o.key: o.size for o in transport.list("")}
    assert everything == {"objects/ab/ab12": 5 * MB, "backups/b1/metadata.json": 12, "backups/b10/metadata.json": 2}
    assert {o.key for o in transport.list("backups/b1/")} == {"backups/b1/metadata.json"}
    assert {o.key for o in transport.list("backups/b1")} == {"backups/b1/metadata.json", "backups/b10/metadata.json"}
    assert {o.key for o in transport.list("objects/a")} == {"objects/ab/ab12"}
    assert list(transport.list("nothing/")) == []

    target = tmp_path / "back.bin"
    assert transport.get_file("objects/ab/ab12", target, max_size=5 * MB) == 5 * MB
    assert sha256(target) == sha256(big)
    assert transport.get_bytes("backups/b1/metadata.json", max_size=100) == b'{"id": "b1"}'

    if local is not None:  # file and sftp: objects are read-only, no temp files are left
        mode = (local / "objects/ab/ab12").stat().st_mode
        assert stat.S_IMODE(mode) == 0o444
        assert not [p for p in local.rglob(".*")], "temp files were left behind"


def test_put_replaces_except_on_a_versioned_bucket_where_readers_keep_the_first(
    store: tuple[Transport, Path | None], kind: str
) -> None:
    transport, _ = store
    transport.put_bytes("config.json", b"first")
    transport.put_bytes("config.json", b"second, longer")
    expected = b"first" if kind == "s3-versioned" else b"second, longer"
    assert transport.get_bytes("config.json", max_size=100) == expected
    assert transport.stat("config.json").size == len(expected)
    assert [o.size for o in transport.list("config")] == [len(expected)]


class FailingRead(io.BufferedReader):
    """A local file whose reads fail with EIO after ``fail_after`` bytes (a dying disk under the upload)."""

    def __init__(self, path: Path, fail_after: int) -> None:
        super().__init__(io.FileIO(path, "rb"))
        self.fail_after, self.done = fail_after, 0

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0 or self.done >= self.fail_after:
            raise OSError(errno.EIO, "Input/output error (injected)")
        data = super().read(min(size, self.fail_after - self.done))
        self.done += len(data)
        return data


def test_a_put_that_fails_mid_read_leaves_nothing_and_keeps_the_old_object(
    store: tuple[Transport, Path | None], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    transport, local = store
    source = random_file(tmp_path / "src.bin", 3 * MB)
    transport.put_bytes("kept/old", b"old content")

    def failing_open(path: Path) -> tuple[io.BufferedReader, int]:
        return FailingRead(path, fail_after=2 * MB + 5), path.stat().st_size

    monkeypatch.setattr(sys.modules[type(transport).__module__], "open_source", failing_open)
    for key in ("fresh/obj", "kept/old"):
        with pytest.raises(OSError, match="injected"):
            transport.put_file(key, source)
    assert transport.stat("fresh/obj") is None
    assert transport.get_bytes("kept/old", max_size=100) == b"old content"
    assert {o.key for o in transport.list("")} == {"kept/old"}
    if local is not None:
        assert not [p for p in local.rglob(".*")], "the temp file of the failed put was left behind"


@pytest.mark.parametrize("key", ["../x", "/abs", "a//b", "a/../../b", "", "a/./b", "a/"])
def test_hostile_keys_are_refused_and_nothing_is_written(
    store: tuple[Transport, Path | None], key: str, tmp_path: Path
) -> None:
    transport, local = store
    transport.put_bytes("inside", b"x")
    source = random_file(tmp_path / "src.bin", 10)
    outside_before = sorted(p.name for p in local.parent.iterdir()) if local else None
    for attempt in (
        lambda: transport.put_bytes(key, b"evil"),
        lambda: transport.put_file(key, source),
        lambda: transport.stat(key),
        lambda: transport.get_bytes(key, max_size=10),
        lambda: transport.get_file(key, tmp_path / "out", max_size=10),
        lambda: transport.delete(key),
        lambda: transport.extend_retention(key, now()),
    ):
        with pytest.raises(ReplicaDamaged, match="not a key this tool writes"):
            attempt()
    assert not (tmp_path / "out").exists()
    assert {o.key for o in transport.list("")} == {"inside"}
    if local is not None:
        assert sorted(p.name for p in local.parent.iterdir()) == outside_before


def test_missing_and_oversize_objects_are_damage_and_leave_no_file(
    store: tuple[Transport, Path | None], tmp_path: Path
) -> None:
    transport, _ = store
    target = tmp_path / "out.bin"
    with pytest.raises(ReplicaDamaged, match="missing"):
        transport.get_file("objects/none", target, max_size=100)
    with pytest.raises(ReplicaDamaged, match="missing"):
        transport.get_bytes("objects/none", max_size=100)
    assert not target.exists()

    transport.put_bytes("objects/big", b"x" * 1000)
    with pytest.raises(ReplicaDamaged, match="is 1000 bytes, more than the 999 expected"):
        transport.get_file("objects/big", target, max_size=999)
    with pytest.raises(ReplicaDamaged, match="is 1000 bytes, more than the 999 expected"):
        transport.get_bytes("objects/big", max_size=999)
    assert not target.exists()
    assert transport.get_bytes("objects/big", max_size=1000) == b"x" * 1000, "nothing was lost"


def test_delete_removes_and_absent_is_fine(store: tuple[Transport, Path | None], kind: str, s3_raw: Any) -> None:
    transport, local = store
    transport.put_bytes("backups/b1/metadata.json", b"m")
    transport.put_bytes("backups/b1/SHA256SUMS", b"s")
    transport.put_bytes("backups/b1/metadata.json", b"m2")  # a second version on a versioned bucket
    transport.delete("backups/b1/metadata.json")
    transport.delete("backups/b1/metadata.json")
    transport.delete("never/there")
    assert transport.stat("backups/b1/metadata.json") is None
    assert {o.key for o in transport.list("")} == {"backups/b1/SHA256SUMS"}
    if kind == "s3-versioned":  # every version went, so the space is really freed
        client, bucket = s3_raw(transport)
        answer = client.list_object_versions(Bucket=bucket, Prefix="prod/backups/b1/metadata.json")
        assert answer.get("Versions", []) == [] and answer.get("DeleteMarkers", []) == []
    if local is not None:
        transport.delete("backups/b1/SHA256SUMS")
        assert not (local / "backups").exists(), "empty directories are removed"


@pytest.fixture
def s3_raw() -> Any:
    """A raw boto3 client with the transport's own bucket: the "attacker" holding the write credentials."""

    def raw(transport: S3Transport) -> tuple[Any, str]:
        return transport.client, transport.bucket

    return raw


@pytest.mark.parametrize("kind", ["file", "sftp"])
def test_symlinks_and_special_files_in_a_replica_are_refused(
    store: tuple[Transport, Path | None], kind: str, tmp_path: Path
) -> None:
    transport, local = store
    assert local is not None
    secret = tmp_path / "secret"
    secret.write_text("outside the replica")
    transport.put_bytes("objects/real", b"real")
    (local / "objects/link").symlink_to(secret)
    (local / "linkdir").symlink_to(tmp_path)
    os.mkfifo(local / "objects/fifo")
    for key in ("objects/link", "objects/fifo"):
        with pytest.raises(ReplicaDamaged, match=key):
            transport.get_bytes(key, max_size=100)
        with pytest.raises(ReplicaDamaged, match=key):
            transport.get_file(key, tmp_path / "out", max_size=100)
        with pytest.raises(ReplicaDamaged, match=key):
            transport.stat(key)
    assert not (tmp_path / "out").exists()
    if kind == "file":  # a symlinked directory could lead a write outside the replica
        with pytest.raises(ReplicaDamaged, match="symlink"):
            transport.put_bytes("linkdir/secret", b"overwritten")
        assert secret.read_text() == "outside the replica"
    assert transport.get_bytes("objects/real", max_size=100) == b"real"


# --- unreachable stores ---------------------------------------------------------------------------


def test_file_replica_on_an_unmounted_disk_is_unreachable_and_nothing_is_created(tmp_path: Path) -> None:
    location = tmp_path / "mnt" / "backupdisk" / "peak-trade"
    transport = open_transport(spec_for("file", directory=location))
    with pytest.raises(ReplicaUnreachable, match=r"backupdisk does not exist: is the disk mounted\?"):
        transport.put_bytes("objects/a", b"a")
    with pytest.raises(ReplicaUnreachable, match="is the disk mounted"):
        transport.stat("objects/a")
    with pytest.raises(ReplicaUnreachable, match="is the disk mounted"):
        list(transport.list(""))
    assert not (tmp_path / "mnt").exists()


def test_file_replica_is_created_when_its_parent_exists(file_replica_dir: Path) -> None:
    transport = open_transport(spec_for("file", directory=file_replica_dir))
    assert transport.stat("objects/a") is None and list(transport.list("")) == []
    assert not file_replica_dir.exists(), "reading never creates the location"
    transport.put_bytes("objects/a", b"a")
    assert (file_replica_dir / "objects/a").read_bytes() == b"a"


def test_sftp_closed_port_is_unreachable(sftp_server: SftpServer) -> None:
    port = free_port()
    transport = open_transport(spec_for("sftp", sftp=sftp_server, port=port))
    with pytest.raises(ReplicaUnreachable, match=rf"{sftp_server.user}@127.0.0.1:{port}/.*peak-trade"):
        transport.stat("x")


def test_sftp_unknown_host_key_is_refused_with_how_to_trust_it(sftp_server: SftpServer, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    transport = open_transport(spec_for("sftp", sftp=sftp_server, known_hosts=str(empty)))
    with pytest.raises(ReplicaUnreachable, match=rf"ssh-keyscan -p {sftp_server.port} 127.0.0.1 >> {empty}") as err:
        transport.put_bytes("x", b"x")
    assert "SHA256:" in str(err.value), "the message shows the fingerprint to compare"
    assert empty.read_text() == "", "the key was not added"
    assert not sftp_server.root.exists(), "nothing was written"


def test_sftp_changed_host_key_is_refused(sftp_server: SftpServer, tmp_path: Path) -> None:
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    wrong = tmp_path / "known_hosts"
    key_type, data = other.with_suffix(".pub").read_text().split()[:2]
    wrong.write_text(f"[127.0.0.1]:{sftp_server.port} {key_type} {data}\n")
    transport = open_transport(spec_for("sftp", sftp=sftp_server, known_hosts=str(wrong)))
    with pytest.raises(ReplicaUnreachable, match="host key CHANGED"):
        transport.put_bytes("x", b"x")
    assert not sftp_server.root.exists()


def test_sftp_key_not_authorized_is_unreachable(sftp_server: SftpServer, tmp_path: Path) -> None:
    stranger = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True)
    transport = open_transport(spec_for("sftp", sftp=sftp_server, identity_file=str(stranger)))
    with pytest.raises(ReplicaUnreachable, match="refused the key"):
        transport.stat("x")


def test_sftp_missing_identity_file_is_named(sftp_server: SftpServer, tmp_path: Path) -> None:
    transport = open_transport(spec_for("sftp", sftp=sftp_server, identity_file=str(tmp_path / "no-key")))
    with pytest.raises(ReplicaUnreachable, match="the identity_file .*no-key does not exist"):
        transport.stat("x")


@pytest.mark.parametrize(("module", "kind"), [("boto3", "s3"), ("paramiko", "sftp")])
def test_without_the_optional_extra_the_message_says_what_to_install(module: str, kind: str, tmp_path: Path) -> None:
    script = (
        f"import sys; sys.modules[{module!r}] = None\n"  # `import boto3` now raises ImportError
        "from recovery_lib.errors import ReplicaError\n"
        "from recovery_lib.replica.open import open_transport\n"
        "from recovery_lib.site.replicas import ReplicaSpec\n"
        f"spec = ReplicaSpec(name='offsite', url='x', scheme={kind!r}, host='h', location='/srv/x')\n"
        "try:\n    open_transport(spec)\nexcept ReplicaError as exc:\n    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert f"needs {module}: pip install 'recovery_lib[{kind}]'" in done.stdout


def test_sftp_location_whose_parent_is_missing_is_not_created(sftp_server: SftpServer) -> None:
    deep = sftp_server.root.parent / "not-mounted" / "peak-trade"
    transport = open_transport(spec_for("sftp", sftp=sftp_server, location=str(deep)))
    with pytest.raises(ReplicaUnreachable, match="not-mounted does not exist"):
        transport.put_bytes("objects/a", b"a")
    assert not deep.parent.exists()


def test_s3_missing_bucket_closed_port_and_no_credentials_are_unreachable(
    s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    transport = open_transport(spec_for("s3", s3=s3_server, bucket="no-such-bucket-here"))
    with pytest.raises(ReplicaUnreachable, match="bucket 'no-such-bucket-here' does not exist"):
        transport.stat("x")
    closed = open_transport(spec_for("s3", s3=s3_server, bucket="b", endpoint_url=f"http://127.0.0.1:{free_port()}"))
    with pytest.raises(ReplicaUnreachable, match="check that http://127.0.0.1:.* is up"):
        closed.put_bytes("x", b"x")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    bucket = s3_server.create_bucket()
    anonymous = open_transport(spec_for("s3", s3=s3_server, bucket=bucket))
    with pytest.raises(ReplicaUnreachable, match="set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE"):
        anonymous.put_bytes("x", b"x")
    assert s3_server.client().list_objects_v2(Bucket=bucket).get("KeyCount") == 0


# --- S3: multipart, Object Lock, ransomware -------------------------------------------------------


def test_s3_large_file_goes_multipart_under_object_lock(s3_server: S3Server, tmp_path: Path) -> None:
    bucket = s3_server.create_locked_bucket()
    transport = open_transport(spec_for("s3", s3=s3_server, bucket=bucket))
    big = random_file(tmp_path / "big.bin", 70 * MB)
    until = now() + timedelta(days=1)
    transport.put_file("objects/big", big, retain_until=until)
    stored = transport.stat("objects/big")
    assert stored is not None and stored.size == 70 * MB
    assert stored.retain_until is not None and abs((stored.retain_until - until).total_seconds()) < 1
    assert stored.sha256 is None, "a multipart object has no whole-object SHA-256; verify re-hashes it"
    target = tmp_path / "back.bin"
    assert transport.get_file("objects/big", target, max_size=70 * MB) == 70 * MB
    assert sha256(target) == sha256(big)
    head = s3_server.client().head_object(Bucket=bucket, Key="prod/objects/big")
    assert head["ObjectLockMode"] == "COMPLIANCE"
    with pytest.raises(ReplicaLocked, match="objects/big is under Object Lock retention until"):
        transport.delete("objects/big")
    assert transport.stat("objects/big").size == 70 * MB


def test_s3_object_lock_survives_an_attacker_with_write_credentials(s3_server: S3Server) -> None:
    bucket = s3_server.create_locked_bucket()
    transport = open_transport(spec_for("s3", s3=s3_server, bucket=bucket))
    until = now() + timedelta(days=30)
    transport.put_bytes("backups/b1/metadata.json", b"original", retain_until=until)
    assert transport.stat("backups/b1/metadata.json").retain_until is not None

    with pytest.raises(ReplicaLocked, match=r"backups/b1/metadata.json is under Object Lock retention until 20"):
        transport.delete("backups/b1/metadata.json")
    assert transport.get_bytes("backups/b1/metadata.json", max_size=100) == b"original"

    attacker = s3_server.client()
    key = "prod/backups/b1/metadata.json"
    attacker.put_object(Bucket=bucket, Key=key, Body=b"ENCRYPTED BY RANSOMWARE, pay up")
    attacker.delete_object(Bucket=bucket, Key=key)  # a delete marker on top
    versions = attacker.list_object_versions(Bucket=bucket, Prefix=key)
    original = [v for v in versions["Versions"] if v["Size"] == len(b"original")]
    assert len(original) == 1 and len(versions["DeleteMarkers"]) == 1

    # The store's own answer: a COMPLIANCE-locked version cannot be deleted, even by its writer.
    with pytest.raises(ClientError) as refused:
        attacker.delete_object(Bucket=bucket, Key=key, VersionId=original[0]["VersionId"])
    assert refused.value.response["Error"]["Code"] == "AccessDenied", (
        f"moto did not enforce COMPLIANCE retention: it answered {refused.value.response['Error']}"
    )

    for reader in (transport, open_transport(spec_for("s3", s3=s3_server, bucket=bucket))):  # cached and fresh
        assert [(o.key, o.size) for o in reader.list("backups/")] == [("backups/b1/metadata.json", 8)]
        assert reader.get_bytes("backups/b1/metadata.json", max_size=100) == b"original"
        stored = reader.stat("backups/b1/metadata.json")
        assert stored is not None and stored.size == 8
        assert stored.sha256 == hashlib.sha256(b"original").hexdigest()

    with pytest.raises(ReplicaLocked):  # our delete refuses before touching any version
        transport.delete("backups/b1/metadata.json")
    after = attacker.list_object_versions(Bucket=bucket, Prefix=key)
    assert len(after["Versions"]) == 2 and len(after["DeleteMarkers"]) == 1


def test_s3_extend_retention_only_ever_extends_the_original_version(s3_server: S3Server) -> None:
    bucket = s3_server.create_locked_bucket()
    transport = open_transport(spec_for("s3", s3=s3_server, bucket=bucket))
    first = now() + timedelta(days=1)
    transport.put_bytes("objects/o1", b"original", retain_until=first)
    attacker = s3_server.client()
    attacker.put_object(Bucket=bucket, Key="prod/objects/o1", Body=b"newer version")

    later = now() + timedelta(days=10)
    transport.extend_retention("objects/o1", later)
    assert abs((transport.stat("objects/o1").retain_until - later).total_seconds()) < 1
    transport.extend_retention("objects/o1", first)  # never shortened (COMPLIANCE could not be anyway)
    assert abs((transport.stat("objects/o1").retain_until - later).total_seconds()) < 1
    newest = attacker.head_object(Bucket=bucket, Key="prod/objects/o1")
    assert newest.get("ObjectLockRetainUntilDate") is None, "the attacker's version was not the one extended"
    with pytest.raises(ReplicaDamaged, match="missing"):
        transport.extend_retention("objects/none", later)


@pytest.mark.parametrize("kind", ["file", "sftp"])
def test_extend_retention_is_a_no_op_where_nothing_locks(store: tuple[Transport, Path | None]) -> None:
    transport, _ = store
    transport.put_bytes("objects/o1", b"x")
    transport.extend_retention("objects/o1", now() + timedelta(days=3))
    transport.delete("objects/o1")
    assert transport.stat("objects/o1") is None
