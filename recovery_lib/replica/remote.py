"""One replica as readers and writers see it: its config, its committed backups, their checked documents.

A backup exists on a replica when its ``metadata.json`` (the commit marker) does; one with only some
of its documents is an interrupted push, invisible to readers. Everything read is checked against
everything else before it is believed: the metadata's own checksum, the manifest's and SHA256SUMS'
hashes recorded in it, safe paths, and an object in the index for every file.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from recovery_lib import clock
from recovery_lib.backup.model import (
    MANIFEST,
    METADATA,
    SUMS,
    BackupMetadata,
    BackupStatus,
    Manifest,
    parse_manifest,
    render_sums,
)
from recovery_lib.errors import BackupError, ReplicaDamaged, ReplicaError, ReplicaUnreachable
from recovery_lib.replica.crypto import Opener, Sealer, load_identities
from recovery_lib.replica.layout import (
    AGE_SUFFIX,
    BACKUPS_PREFIX,
    CONFIG_KEY,
    INDEX,
    MAX_DOC,
    MAX_SMALL,
    OBJECTS_PREFIX,
    BackupIndex,
    ReplicaConfig,
    backup_key,
    is_backup_id,
)
from recovery_lib.replica.transport import StoredObject, Transport
from recovery_lib.site.replicas import ReplicaSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RemoteBackup:
    """A backup on a replica, every document decrypted and checked against the others."""

    index: BackupIndex
    metadata: BackupMetadata
    manifest: Manifest
    metadata_bytes: bytes
    manifest_bytes: bytes
    sums_bytes: bytes


class Replica:
    """A configured replica and its store. Listings are cached for the object's life: make a new one
    to see the store as it is now."""

    def __init__(self, spec: ReplicaSpec, transport: Transport) -> None:
        self.spec = spec
        self.transport = transport
        self._config: ReplicaConfig | None = None
        self._listing: dict[str, StoredObject] | None = None

    @property
    def name(self) -> str:
        """The replica's name in recovery.toml."""
        return self.spec.name

    def close(self) -> None:
        """Release the store's connections."""
        self.transport.close()

    # --- the replica's own config ---------------------------------------------------------------

    def config(self, create: bool = False) -> ReplicaConfig | None:
        """``config.json`` (None when the replica was never pushed to); ``create`` writes a new one then."""
        if self._config is None:
            where = f"replica {self.name!r}: {CONFIG_KEY}"
            if self.transport.stat(CONFIG_KEY) is not None:
                self._config = ReplicaConfig.parse(self.transport.get_bytes(CONFIG_KEY, max_size=MAX_SMALL), where)
            elif self._holds_anything():
                # Never start afresh over old backups: a new salt would orphan every one of them.
                raise ReplicaDamaged(
                    f"{where} is missing, but the replica holds backups or objects: its salt is lost, so nothing "
                    "on it can be found. Put config.json back (from another copy of the replica), or point "
                    "this replica at a new, empty location; nothing was written"
                )
            elif create:
                self._config = ReplicaConfig.new(
                    "age" if self.spec.encrypted else "none", sorted(self.spec.age_recipients)
                )
                self.transport.put_bytes(CONFIG_KEY, self._config.to_json(), retain_until=self.retain_until())
                log.info("replica %s: initialised (encryption %s)", self.name, self._config.encryption)
            else:
                return None
        wanted = "age" if self.spec.encrypted else "none"
        if self._config.encryption != wanted:
            raise ReplicaError(
                f"replica {self.name!r} holds backups with encryption {self._config.encryption!r} but recovery.toml "
                f"says {wanted!r}: fix age_recipients / encryption for it, or point it at a new location"
            )
        return self._config

    def _holds_anything(self) -> bool:
        """Whether anything of ours is stored here (the first key under backups/ or objects/ is enough)."""
        return any(True for _ in self.transport.list(BACKUPS_PREFIX)) or any(
            True for _ in self.transport.list(OBJECTS_PREFIX)
        )

    def check_recipients(self) -> None:
        """Refuse to write when recovery.toml's recipients are not the ones the stored objects were encrypted
        to: reused objects would stay readable only by the old key, and nothing would notice."""
        config = self.config()
        if config is None or config.recipients is None:
            return
        if sorted(self.spec.age_recipients) != config.recipients:
            raise ReplicaError(
                f"replica {self.name!r} holds objects encrypted to other age recipients than recovery.toml lists "
                f"now ({len(config.recipients)} stored, {len(self.spec.age_recipients)} configured): new backups "
                "would reuse objects the new key cannot read. Keep the old recipients (you may add the new key "
                "next to them on a new replica), or point this replica at a new, empty location; nothing was written"
            )

    def require_config(self) -> ReplicaConfig:
        """The config, or an error saying the replica holds no backups yet."""
        config = self.config()
        if config is None and self.spec.scheme == "file" and not Path(self.spec.location).is_dir():
            raise ReplicaUnreachable(
                f"replica {self.name!r}: {self.spec.location} does not exist: is the disk mounted? Mount it "
                "and run the command again (or it holds no backups yet: `recovery replica push` creates it)"
            )
        if config is None:
            raise ReplicaError(
                f"replica {self.name!r} ({self.spec.url}) holds no backups yet (no {CONFIG_KEY}): "
                "push one with `recovery replica push`"
            )
        return config

    def retain_until(self, factor: float = 1.0) -> datetime | None:
        """When what is written now may be deleted (Object Lock), or None without a lock."""
        if not self.spec.object_lock_days:
            return None
        return clock.now() + timedelta(days=self.spec.object_lock_days * factor)

    def sealer(self) -> Sealer:
        """Encrypts what this replica stores (to its recipients), or passes through."""
        return Sealer(self.spec.age_recipients, self.name)

    def opener(self, identity: str | None = None) -> Opener:
        """Decrypts what this replica stores with ``identity`` (or $RECOVERY_AGE_IDENTITY)."""
        config = self.require_config()
        encrypted = config.encryption == "age"
        return Opener(encrypted, load_identities(identity) if encrypted else [], self.name)

    # --- backups ----------------------------------------------------------------------------------

    def listing(self) -> dict[str, StoredObject]:
        """Every key under ``backups/`` with its size (one listing, cached)."""
        if self._listing is None:
            self._listing = {o.key: o for o in self.transport.list(BACKUPS_PREFIX)}
        return self._listing

    def refresh(self) -> None:
        """Forget the cached listing (after this process wrote to the replica)."""
        self._listing = None

    def _ids(self) -> tuple[list[str], list[str]]:
        committed, seen = set(), set()
        for key in self.listing():
            parts = key.split("/")
            if len(parts) != 3 or not is_backup_id(parts[1]):
                continue
            seen.add(parts[1])
            if parts[2] in (METADATA, METADATA + AGE_SUFFIX):
                committed.add(parts[1])
        return sorted(committed, reverse=True), sorted(seen - committed, reverse=True)

    def committed_ids(self) -> list[str]:
        """Ids of the complete backups on the replica, newest first (ids start with their UTC time)."""
        return self._ids()[0]

    def incomplete_ids(self) -> list[str]:
        """Ids with some documents but no commit marker: pushes that were interrupted (or are running)."""
        return self._ids()[1]

    def encrypted_docs(self) -> bool:
        """Whether the backups' documents carry ``.age`` (by the replica's config)."""
        return self.require_config().encryption == "age"

    def index(self, backup_id: str) -> BackupIndex:
        """The checked ``index.json`` of a backup on the replica."""
        key = backup_key(backup_id, INDEX)
        where = f"replica {self.name!r}: {key}"
        return BackupIndex.parse(self.transport.get_bytes(key, max_size=MAX_DOC), where, backup_id)

    def backups(self) -> tuple[list[BackupIndex], list[str]]:
        """The committed backups' indexes, newest first, and the problems of those that cannot be read."""
        found: list[BackupIndex] = []
        problems: list[str] = []
        for backup_id in self.committed_ids():
            try:
                found.append(self.index(backup_id))
            except ReplicaDamaged as exc:
                problems.append(str(exc))
        found.sort(key=lambda i: (i.created, i.backup_id), reverse=True)
        return found, problems

    def document(self, backup_id: str, name: str, opener: Opener) -> bytes:
        """One of a backup's documents, decrypted."""
        key = backup_key(backup_id, name, self.encrypted_docs())
        where = f"replica {self.name!r}: {key}"
        return opener.open_bytes(self.transport.get_bytes(key, max_size=MAX_DOC), where)

    def read_backup(self, backup_id: str, opener: Opener) -> RemoteBackup:
        """A committed backup, every document read and checked against the others (ReplicaDamaged if not)."""
        if backup_id not in self.committed_ids():
            raise ReplicaError(
                f"replica {self.name!r} has no complete backup {backup_id!r} "
                f"(newest: {', '.join(self.committed_ids()[:5]) or 'none'}); `recovery replica list` shows them"
            )
        opener.require()
        index = self.index(backup_id)
        where = f"replica {self.name!r}: backup {backup_id}"
        metadata_bytes = self.document(backup_id, METADATA, opener)
        try:
            raw = json.loads(metadata_bytes.decode("utf-8"))
            if not isinstance(raw, dict):
                raise ValueError("not a JSON object")
            metadata = BackupMetadata.from_dict(raw, f"{where}/{METADATA}")
        except (UnicodeDecodeError, ValueError, BackupError) as exc:
            raise ReplicaDamaged(f"{where}: {METADATA} is malformed ({exc}); refusing this backup") from exc
        if metadata.checksum != metadata.compute_checksum() or metadata.backup_id != backup_id:
            raise ReplicaDamaged(f"{where}: {METADATA} was edited (its checksum or id does not match); refusing it")
        if metadata.status is not BackupStatus.SUCCESS:
            raise ReplicaDamaged(f"{where} is {metadata.status.value}, not success; refusing it")
        manifest_bytes = self.document(backup_id, MANIFEST, opener)
        if hashlib.sha256(manifest_bytes).hexdigest() != metadata.manifest_sha256:
            raise ReplicaDamaged(f"{where}: {MANIFEST} does not match the hash in {METADATA}; refusing it")
        try:
            manifest = parse_manifest(manifest_bytes, f"{where}/{MANIFEST}")
        except BackupError as exc:
            raise ReplicaDamaged(str(exc)) from exc
        sums_bytes = self.document(backup_id, SUMS, opener)
        expected_sums = render_sums(manifest, metadata.manifest_sha256)
        if hashlib.sha256(sums_bytes).hexdigest() != metadata.sums_sha256 or sums_bytes != expected_sums:
            raise ReplicaDamaged(f"{where}: {SUMS} does not match the manifest; refusing it")
        config = self.require_config()
        missing = [e.path for e in manifest.files if config.object_name(e.sha256) not in index.objects]
        if missing:
            raise ReplicaDamaged(f"{where}: {INDEX} lacks the object of {missing[0]} ({len(missing)} file(s))")
        return RemoteBackup(index, metadata, manifest, metadata_bytes, manifest_bytes, sums_bytes)
