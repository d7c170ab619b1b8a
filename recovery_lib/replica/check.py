"""Verify backups on a replica: every object present at its stored size, and with ``read_data`` every
byte downloaded and hashed.

With the identity, a backup's documents are decrypted and checked against each other, and with
``read_data`` each object is decrypted and hashed against the manifest: the real proof that a restore
would work. Without it (the trading host holds only public keys) the documents stay sealed: objects are
checked against the stored sizes and SHA-256s the push recorded, and the store's own checksums.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from recovery_lib.errors import ReplicaDamaged, ReplicaError
from recovery_lib.fsops.fileio import hash_file
from recovery_lib.rendering import name_all
from recovery_lib.replica.crypto import Opener
from recovery_lib.replica.layout import object_key
from recovery_lib.replica.remote import Replica
from recovery_lib.replica.transport import StoredObject

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]


@dataclass
class RemoteVerifyReport:
    """What verifying one backup on a replica found. ``plaintext`` says whether contents were checked
    against the manifest (needs the identity) or only as stored."""

    replica: str
    backup_id: str
    read_data: bool
    plaintext: bool
    problems: list[str] = field(default_factory=list)
    objects_checked: int = 0
    bytes_read: int = 0

    @property
    def ok(self) -> bool:
        """True when nothing is wrong."""
        return not self.problems

    def summary(self) -> str:
        """One line for a person."""
        depth = "structure" if not self.read_data else ("contents vs manifest" if self.plaintext else "stored bytes")
        if self.ok:
            return f"{self.replica}: {self.backup_id}: OK ({self.objects_checked} objects, {depth})"
        return f"{self.replica}: {self.backup_id}: {len(self.problems)} problem(s): {name_all(self.problems)}"


def verify_remote(
    replica: Replica,
    backup_id: str,
    read_data: bool,
    opener: Opener | None,
    objects: dict[str, StoredObject],
    progress: Progress | None = None,
) -> RemoteVerifyReport:
    """Check one committed backup. ``opener`` with an identity checks plaintext; ``objects`` is one
    listing of ``objects/`` shared by every backup verified in the same run."""
    if opener is None and not replica.encrypted_docs():
        opener = replica.opener()  # a plain replica is read as it is: no key needed to check it fully
    plaintext = opener is not None and (not opener.encrypted or bool(opener.identities))
    report = RemoteVerifyReport(replica.name, backup_id, read_data, plaintext)
    try:
        index = replica.index(backup_id)
        remote = replica.read_backup(backup_id, opener) if plaintext and opener else None
    except ReplicaDamaged as exc:
        report.problems.append(str(exc))
        return report
    expected: dict[str, tuple[str, int]] = {}  # object name -> (plaintext sha256, size)
    if remote is not None:
        config = replica.require_config()
        expected = {config.object_name(e.sha256): (e.sha256, e.size) for e in remote.manifest.files}
    total = sum(entry.size for entry in index.objects.values())
    done = 0
    with tempfile.TemporaryDirectory(prefix="recovery-verify-") as spool:
        for name, entry in sorted(index.objects.items()):
            key = object_key(name)
            found = objects.get(key)
            report.objects_checked += 1
            if found is None:
                report.problems.append(f"{key}: missing")
            elif found.size != entry.size:
                report.problems.append(f"{key}: size {found.size}, the push stored {entry.size} (truncated?)")
            elif found.sha256 and entry.sha256 and found.sha256 != entry.sha256:
                report.problems.append(f"{key}: the store's SHA-256 differs from what the push stored")
            elif read_data:
                problem = _read(replica, key, entry.sha256, entry.size, expected.get(name), opener, Path(spool))
                report.bytes_read += entry.size
                if problem:
                    report.problems.append(problem)
            done += entry.size
            if progress:
                progress(done, total)
    log.info("%s", report.summary())
    return report


def _read(
    replica: Replica,
    key: str,
    stored_sha: str | None,
    size: int,
    plain: tuple[str, int] | None,
    opener: Opener | None,
    spool: Path,
) -> str | None:
    """Download one object and hash it: the plaintext against the manifest when it can, else as stored."""
    download = spool / "object"
    try:
        replica.transport.get_file(key, download, max_size=size)
        if plain is not None and opener is not None:
            digest, got = opener.open_file(download, spool / "plain", key)
            if (digest, got) != plain:
                return f"{key}: content differs from the manifest ({got} bytes, sha256 {digest[:12]}…)"
        elif stored_sha is not None:
            digest, _ = hash_file(download)
            if digest != stored_sha:
                return f"{key}: stored bytes differ from what the push wrote (sha256 {digest[:12]}…)"
    except ReplicaDamaged as exc:
        return str(exc)
    except ReplicaError:
        raise
    finally:
        download.unlink(missing_ok=True)
        (spool / "plain").unlink(missing_ok=True)
    return None
