"""Push local backups to a replica: the objects it lacks, then the backup's documents, metadata last.

A push killed at any point leaves the replica consistent: objects are put atomically under names
fixed by their content, and a backup becomes visible only when its ``metadata.json`` is written, after
everything it needs. The next push finds the objects already there and uploads only the rest.
Only SUCCESS backups whose structure verifies are pushed, and every file is hashed as it is read:
a local backup damaged on disk is never copied off the host as if it were good.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from recovery_lib import clock
from recovery_lib.backup.model import MANIFEST, METADATA, SUMS, BackupStatus, FileEntry
from recovery_lib.backup.verify import verify_backup_dir
from recovery_lib.errors import BackupError, ReplicaError
from recovery_lib.fsops.fileio import hash_file
from recovery_lib.fsops.paths import safe_relative
from recovery_lib.replica.crypto import Sealer
from recovery_lib.replica.layout import (
    INDEX,
    OBJECTS_LIST,
    OBJECTS_PREFIX,
    BackupIndex,
    ReplicaConfig,
    StoredEntry,
    backup_key,
    object_key,
    render_objects,
)
from recovery_lib.replica.remote import Replica
from recovery_lib.replica.transport import StoredObject, Transport

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]


@dataclass
class PushReport:
    """What one push did. ``ok`` only when every backup asked for is complete on the replica."""

    replica: str
    pushed: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # backup id -> why it was not pushed
    objects_uploaded: int = 0
    bytes_uploaded: int = 0
    objects_reused: int = 0
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        """True when nothing failed."""
        return not self.failed

    def summary(self) -> str:
        """One line for a person."""
        done = f"{len(self.pushed)} pushed, {len(self.already)} already there"
        moved = f"{self.objects_uploaded} object(s), {self.bytes_uploaded:,} bytes up, {self.objects_reused} reused"
        failed = "".join(f"; FAILED {bid}: {why}" for bid, why in self.failed.items())
        return f"replica {self.replica}: {done} ({moved}) in {clock.human_duration(self.duration_s)}{failed}"


class _Pusher:
    """One push session. An object the newest backup on the replica already needs is known to be there;
    only for the others is ``objects/`` listed (once), so an unchanged push makes a handful of requests."""

    def __init__(self, replica: Replica, backup_dir: Path, spool: Path, report: PushReport) -> None:
        self.replica = replica
        self.backup_dir = backup_dir
        self.spool = spool
        self.report = report
        self.config: ReplicaConfig = replica.config(create=True)  # type: ignore[assignment]
        replica.check_recipients()
        self.sealer: Sealer = replica.sealer()
        self._listing: dict[str, StoredObject] | None = None  # objects/, listed when first needed
        self._lock = threading.Lock()  # objects are handled by several threads
        self.known: dict[str, StoredEntry] = self._known_entries()

    def _present(self, key: str, name: str) -> StoredObject | None:
        """The object at ``key`` if it is on the replica: known from an index, else from the listing."""
        with self._lock:
            entry = self.known.get(name)
            if entry is not None:
                return StoredObject(key, entry.size, None, entry.sha256)
            if self._listing is None:
                self._listing = {o.key: o for o in self.replica.transport.list(OBJECTS_PREFIX)}
            return self._listing.get(key)

    def _known_entries(self) -> dict[str, StoredEntry]:
        """Objects as the newest backup's index recorded them (stored SHA-256, lock date): reused objects
        keep them without a request each."""
        committed = self.replica.committed_ids()
        if not committed:
            return {}
        try:
            return dict(self.replica.index(committed[0]).objects)
        except ReplicaError as exc:  # an unreadable index only costs the shortcut
            log.warning("replica %s: %s; reused objects are looked up one by one", self.replica.name, exc)
            return {}

    def damage(self, backup_id: str) -> str | None:
        """Why a backup already on the replica is not whole (an unreadable index, objects missing or of
        another size), or None. Such a backup cannot be repaired in place: its documents are final."""
        try:
            index = self.replica.index(backup_id)
        except ReplicaError as exc:
            return str(exc)
        with self._lock:
            if self._listing is None:
                self._listing = {o.key: o for o in self.replica.transport.list(OBJECTS_PREFIX)}
            listing = self._listing
        bad = [
            n for n, e in index.objects.items() if (found := listing.get(object_key(n))) is None or found.size != e.size
        ]
        if not bad:
            return None
        return (
            f"already on the replica but damaged: {len(bad)} object(s) missing or of another size (first: "
            f"{object_key(bad[0])}). It cannot be repaired in place: `recovery replica prune` it, or push to a "
            "new location; `recovery replica verify` names every problem"
        )

    def push(self, backup_id: str, progress: Progress | None) -> None:
        path = self.backup_dir / backup_id
        structure = verify_backup_dir(path, read_data=False)
        if not structure.ok or structure.metadata is None or structure.manifest is None:
            raise BackupError(f"local backup {backup_id} does not verify ({structure.summary()}); not pushed")
        metadata, manifest = structure.metadata, structure.manifest
        if metadata.status is not BackupStatus.SUCCESS:
            raise BackupError(f"local backup {backup_id} is {metadata.status.value}; only success backups are pushed")
        locked_until = self.replica.retain_until()
        index = BackupIndex.for_backup(
            metadata, self.config.encryption, clock.iso(locked_until) if locked_until else None
        )
        total = sum(e.size for e in manifest.files)
        done = 0
        pairs: list[tuple[str, str]] = []
        first: dict[str, FileEntry] = {}  # object name -> the first file with that content
        for entry in manifest.files:
            name = self.config.object_name(entry.sha256)
            pairs.append((name, entry.path))
            first.setdefault(name, entry)

        def handle(entry: FileEntry) -> StoredEntry:
            return self._object(path, entry.path, entry.sha256, entry.size, locked_until)

        # Objects the newest backup already needs are handled here (no transfer: at most a lock to
        # extend); only the others go to the pool, so an unchanged push costs no thread hand-offs.
        new = [(name, entry) for name, entry in first.items() if name not in self.known]
        with ThreadPoolExecutor(max_workers=self.replica.transport.parallel) as pool:
            transfers = pool.map(handle, [entry for _, entry in new])
            done_here = [((name, entry), handle(entry)) for name, entry in first.items() if name in self.known]
            for (name, entry), stored in [*done_here, *zip(new, transfers, strict=True)]:
                index.objects[name] = stored
                with self._lock:
                    self.known[name] = stored
                done += entry.size
                if progress:
                    progress(done, total)
        transport = self.replica.transport
        encrypted = self.sealer.encrypted
        documents = {
            MANIFEST: (path / MANIFEST).read_bytes(),
            SUMS: (path / SUMS).read_bytes(),
            OBJECTS_LIST: render_objects(pairs),
            METADATA: (path / METADATA).read_bytes(),
        }
        transport.put_bytes(backup_key(backup_id, INDEX), index.to_json(), retain_until=locked_until)
        for name, content in documents.items():  # dict order: metadata.json last, the commit marker
            key = backup_key(backup_id, name, encrypted)
            transport.put_bytes(key, self.sealer.seal_bytes(content), retain_until=locked_until)
        log.info("replica %s: backup %s pushed (%d files)", self.replica.name, backup_id, len(manifest.files))

    def _object(self, path: Path, relative: str, sha256: str, size: int, until: datetime | None) -> StoredEntry:
        """Make sure the object for one file is on the replica (and locked long enough); its index entry."""
        name = self.config.object_name(sha256)
        key = object_key(name)
        transport = self.replica.transport
        present = self._present(key, name)
        if present is not None:
            with self._lock:
                self.report.objects_reused += 1
            with self._lock:
                known_entry = self.known.get(name)
            retain = known_entry.retain_until if known_entry else None
            if until is not None:
                known = clock.parse(retain) if retain else transport_retention(transport, key)
                if known is None or known < until:  # a newer backup needs it locked at least as long
                    extended = self.replica.retain_until(1.5)
                    assert extended is not None
                    transport.extend_retention(key, extended)
                    retain = clock.iso(extended)
            sha = present.sha256 or (known_entry.sha256 if known_entry else None)
            return StoredEntry(present.size, sha, retain)
        source = path.joinpath(*safe_relative(relative).split("/"))
        # New objects are locked half as long again as the backup: later backups reuse them without
        # extending their lock on every push.
        retain = self.replica.retain_until(1.5)
        if self.sealer.encrypted:
            upload = self.spool / name
            digest, read, stored_sha = self.sealer.seal_file(source, upload)
        else:  # a plain replica gets the backup's own file: hashed first, never sent unchecked
            upload = source
            digest, read = hash_file(source)
            stored_sha = digest
        try:
            if digest != sha256 or read != size:
                raise BackupError(
                    f"local backup {path.name}: {relative} does not match its manifest (read {read} bytes, "
                    f"sha256 {digest[:12]}…): the backup is damaged on disk; not pushed. Run "
                    f"`recovery backup verify {path.name} --read-data`"
                )
            transport.put_file(key, upload, retain_until=retain)
            stored = upload.stat().st_size
        finally:
            if upload != source:
                upload.unlink(missing_ok=True)
        with self._lock:
            self.report.objects_uploaded += 1
            self.report.bytes_uploaded += stored
        return StoredEntry(stored, stored_sha, clock.iso(retain) if retain else None)


def transport_retention(transport: Transport, key: str) -> datetime | None:
    """The lock date the store reports for ``key`` (None when it has none)."""
    found = transport.stat(key)
    return found.retain_until if found else None


def push_backups(
    replica: Replica, backup_dir: Path, backup_ids: list[str], progress: Progress | None = None
) -> PushReport:
    """Push ``backup_ids`` (oldest first is best: later ones reuse their objects) to ``replica``.

    Never raises for one backup's failure: it is recorded in ``failed`` and the next one is tried.
    Raises ReplicaError only when the replica cannot be used at all (unreachable, wrong encryption).
    """
    began = time.monotonic()
    report = PushReport(replica.name)
    with tempfile.TemporaryDirectory(prefix="recovery-push-") as spool:
        pusher = _Pusher(replica, backup_dir, Path(spool), report)
        committed = set(replica.committed_ids())
        for backup_id in backup_ids:
            if backup_id in committed:
                damage = pusher.damage(backup_id)
                if damage is None:
                    report.already.append(backup_id)
                else:
                    report.failed[backup_id] = damage
                    log.error("replica %s: backup %s %s", replica.name, backup_id, damage)
                continue
            try:
                pusher.push(backup_id, progress)
            except (BackupError, OSError) as exc:
                why = (
                    str(exc)
                    if isinstance(exc, BackupError)
                    else f"{exc.filename or replica.transport.description}: {exc.strerror or exc} (is the "
                    "replica's disk full? `recovery replica prune` frees space; nothing it holds was changed)"
                )
                report.failed[backup_id] = why
                log.error("replica %s: backup %s not pushed: %s", replica.name, backup_id, why)
                continue
            report.pushed.append(backup_id)
    replica.refresh()
    report.duration_s = round(time.monotonic() - began, 3)
    log.info("%s", report.summary())
    return report
