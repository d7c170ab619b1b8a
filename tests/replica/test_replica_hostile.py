"""A replica holding a wrong object, a truncated object, an edited document or a hostile manifest is
reported by name and refused; nothing is written outside the backup directory, the site is untouched.

The "attacker" here holds what a thief of the bucket credentials holds: write access and the public
key, so a forged backup can be well-formed, encrypted and internally consistent.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from pyrage import x25519
from servers import spec_for
from snapshots import tree as tree_snapshot

from recovery_lib.backup.model import BackupMetadata, render_sums
from recovery_lib.errors import ReplicaDamaged
from recovery_lib.manager import RecoveryManager
from recovery_lib.replica.check import verify_remote
from recovery_lib.replica.layout import OBJECTS_PREFIX, BackupIndex, StoredEntry, backup_key, object_key
from recovery_lib.replica.open import open_transport
from recovery_lib.replica.pull import pull_backup
from recovery_lib.replica.push import push_backups
from recovery_lib.replica.remote import Replica
from recovery_lib.replica.service import pull as pull_latest


@pytest.fixture
def pushed(sandbox: Path, tmp_path: Path):
    """A site with two backups pushed to an encrypted file:// replica: (manager, replica, ids, key file)."""
    key = x25519.Identity.generate()
    key_file = tmp_path / "key.txt"
    key_file.write_text(f"{key}\n")
    spec = spec_for("file", directory=tmp_path / "disk" / "r", age_recipients=(str(key.to_public()),))
    (tmp_path / "disk").mkdir()
    manager = RecoveryManager(site=sandbox)
    older = manager.create_backup(description="older")
    (sandbox / "config" / "config.toml").write_text((sandbox / "config" / "config.toml").read_text() + "\n# y\n")
    newer = manager.create_backup(description="newer")
    replica = Replica(spec, open_transport(spec))
    assert push_backups(replica, manager.backup_dir, [older, newer]).ok
    return manager, replica, (older, newer), key_file


def _object_of(manager: RecoveryManager, replica: Replica, backup_id: str, path: str) -> str:
    config = replica.require_config()
    entry = manager._manifest(backup_id).by_path()[path]
    return object_key(config.object_name(entry.sha256))


def _replace(replica: Replica, key: str, data: bytes) -> None:
    target = Path(replica.spec.location) / key
    target.chmod(0o644)
    target.write_bytes(data)


def _assert_nothing_pulled(target: Path) -> None:
    assert not target.exists() or [p.name for p in target.iterdir()] == []


def test_a_wrong_object_is_named_and_refused(pushed, tmp_path: Path) -> None:
    manager, replica, (older, newer), key_file = pushed
    victim = _object_of(manager, replica, newer, "data/trades.csv")
    other = _object_of(manager, replica, newer, "data/positions.csv")
    _replace(replica, victim, replica.transport.get_bytes(other, max_size=10**8))  # a valid object, wrong content
    target = tmp_path / "new-host" / "backups"
    with pytest.raises(ReplicaDamaged, match=r"data/trades\.csv") as caught:
        pull_backup(replica, target, newer, replica.opener(str(key_file)))
    assert victim in str(caught.value) and "try an older backup" in str(caught.value)
    _assert_nothing_pulled(target)
    objects = {o.key: o for o in replica.transport.list(OBJECTS_PREFIX)}
    report = verify_remote(replica, newer, True, replica.opener(str(key_file)), objects)
    assert not report.ok and any(victim in p for p in report.problems)
    # Without the key the host still sees that the stored bytes are not what it pushed.
    sealed = verify_remote(replica, newer, True, None, objects)
    assert not sealed.ok and any(victim in p for p in sealed.problems)


def test_a_truncated_object_is_named_and_refused(pushed, tmp_path: Path) -> None:
    manager, replica, (older, newer), key_file = pushed
    victim = _object_of(manager, replica, newer, "data/trades.csv")
    whole = replica.transport.get_bytes(victim, max_size=10**8)
    _replace(replica, victim, whole[: len(whole) // 2])
    target = tmp_path / "new-host" / "backups"
    with pytest.raises(ReplicaDamaged, match=r"data/trades\.csv"):
        pull_backup(replica, target, newer, replica.opener(str(key_file)))
    _assert_nothing_pulled(target)
    objects = {o.key: o for o in replica.transport.list(OBJECTS_PREFIX)}
    structure = verify_remote(replica, newer, False, None, objects)  # no download needed to see it
    assert not structure.ok and any(victim in p and "truncated" in p for p in structure.problems)


def test_latest_passes_over_a_damaged_backup_with_a_note(pushed, tmp_path: Path) -> None:
    manager, replica, (older, newer), key_file = pushed
    victim = _object_of(manager, replica, newer, "config/config.toml")  # only the newer backup has it
    _replace(replica, victim, b"ransom note")
    notes: list[str] = []
    report = pull_latest(replica, tmp_path / "b", "latest", replica.opener(str(key_file)), notes)
    assert report.backup_id == older
    assert len(notes) == 1 and newer in notes[0] and "config/config.toml" in notes[0]


def test_an_edited_metadata_is_refused(pushed, tmp_path: Path) -> None:
    manager, replica, (older, newer), key_file = pushed
    sealer = replica.sealer()
    data = json.loads((manager.backup_dir / newer / "metadata.json").read_text())
    data["description"] = "trust me"  # checksum left as it was
    key = backup_key(newer, "metadata.json", encrypted=True)
    _replace(replica, key, sealer.seal_bytes(json.dumps(data).encode()))
    with pytest.raises(ReplicaDamaged, match="metadata.json was edited"):
        pull_backup(replica, tmp_path / "b", newer, replica.opener(str(key_file)))


@pytest.mark.parametrize(
    "hostile_path",
    ["../../../outside.txt", "/tmp/absolute.txt", "config/../../escape.txt", "elsewhere/evil.txt", "config/a\nb"],
)
def test_a_forged_backup_with_a_hostile_manifest_is_refused(pushed, tmp_path: Path, hostile_path: str) -> None:
    """Forged with write access and the public key: consistent checksums, encrypted, committed."""
    manager, replica, (older, newer), key_file = pushed
    config = replica.require_config()
    sealer = replica.sealer()
    content = b"pwned\n"
    sha = hashlib.sha256(content).hexdigest()
    name = config.object_name(sha)
    sealed = sealer.seal_bytes(content)
    replica.transport.put_bytes(object_key(name), sealed)
    forged_id = "20991231T235959Z-full-abcdef"  # sorts newest
    manifest = json.loads((manager.backup_dir / newer / "manifest.json").read_text())
    manifest["files"] = [
        {"path": hostile_path, "size": len(content), "sha256": sha, "mode": 0o644, "mtime_ns": 0},
    ]
    manifest_bytes = json.dumps(manifest).encode()
    manifest_sha = hashlib.sha256(manifest_bytes).hexdigest()

    class _M:  # render_sums only reads .files[*].sha256/.path
        files = [type("E", (), {"sha256": sha, "path": hostile_path})()]

    sums = render_sums(_M(), manifest_sha)  # type: ignore[arg-type]
    metadata = BackupMetadata.from_dict(
        json.loads((manager.backup_dir / newer / "metadata.json").read_text()), "forged"
    )
    metadata.backup_id = forged_id
    metadata.manifest_sha256 = manifest_sha
    metadata.sums_sha256 = hashlib.sha256(sums).hexdigest()
    metadata.files_count = 1
    index = BackupIndex.for_backup(metadata, "age", None)
    index.objects[name] = StoredEntry(len(sealed), hashlib.sha256(sealed).hexdigest())
    transport = replica.transport
    transport.put_bytes(backup_key(forged_id, "index.json"), index.to_json())
    transport.put_bytes(backup_key(forged_id, "manifest.json", True), sealer.seal_bytes(manifest_bytes))
    transport.put_bytes(backup_key(forged_id, "SHA256SUMS", True), sealer.seal_bytes(sums))
    transport.put_bytes(backup_key(forged_id, "OBJECTS", True), sealer.seal_bytes(b""))
    transport.put_bytes(backup_key(forged_id, "metadata.json", True), sealer.seal_bytes(metadata.to_json()))
    replica.refresh()

    outside = tmp_path / "host"
    outside.mkdir()
    before = tree_snapshot(tmp_path)
    with pytest.raises(ReplicaDamaged):
        pull_backup(replica, outside / "site" / "backups", forged_id, replica.opener(str(key_file)))
    assert tree_snapshot(tmp_path) == before  # nothing written anywhere, in or out of the backup dir
    assert not Path("/tmp/absolute.txt").exists()
    # "latest" passes over the forged one and takes the real newest backup.
    notes: list[str] = []
    report = pull_latest(replica, outside / "b", "latest", replica.opener(str(key_file)), notes)
    assert report.backup_id == newer and forged_id in notes[0]


def test_pull_refuses_an_object_larger_than_the_index_says(pushed, tmp_path: Path) -> None:
    manager, replica, (older, newer), key_file = pushed
    victim = _object_of(manager, replica, newer, "data/positions.csv")
    whole = replica.transport.get_bytes(victim, max_size=10**8)
    _replace(replica, victim, whole + b"\0" * 4096)
    with pytest.raises(ReplicaDamaged, match=victim.rsplit("/", 1)[-1][:12]):
        pull_backup(replica, tmp_path / "b", newer, replica.opener(str(key_file)))
