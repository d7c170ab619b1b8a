"""The replica format (version 1): key names, the replica's own config, object names, the backup index.

Specified in ``docs/replica-format.md``::

    config.json                         {"format", "version", "salt", "encryption", "created_at"}
    objects/<2 hex>/<64 hex>            one file content, named HMAC-SHA256(salt, its sha256)
    backups/<id>/index.json             plain: the objects the backup needs (names, stored sizes), no paths
    backups/<id>/manifest.json[.age]    the local backup's own files, byte for byte
    backups/<id>/SHA256SUMS[.age]
    backups/<id>/OBJECTS[.age]          "<object name>  <path>" per file: for a restore by hand
    backups/<id>/metadata.json[.age]    written last: the commit marker

Everything read from a replica is treated as hostile until checked: sizes are bounded, names are
checked against patterns, and JSON is validated field by field.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from recovery_lib import clock
from recovery_lib.backup.model import MANIFEST, METADATA, PRE_RECOVERY_TAG, SUMS, BackupMetadata
from recovery_lib.errors import ReplicaDamaged

FORMAT = "recovery_lib replica"
VERSION = 1
CONFIG_KEY = "config.json"
OBJECTS_PREFIX = "objects/"
BACKUPS_PREFIX = "backups/"
INDEX = "index.json"
OBJECTS_LIST = "OBJECTS"
AGE_SUFFIX = ".age"
MAX_DOC = 256 * 1024 * 1024  # a manifest of millions of files fits; a hostile endless one does not
MAX_SMALL = 64 * 1024

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_BACKUP_ID = re.compile(r"^\d{8}T\d{6}Z-[a-z]+-[0-9a-f]{6}$")


@dataclass(frozen=True)
class ReplicaConfig:
    """The replica's own ``config.json``: written once by the first push, never changed."""

    salt: str
    encryption: str  # "age" | "none"
    created_at: str
    recipients: list[str] | None = None  # the public keys objects are encrypted to (sorted)

    @classmethod
    def new(cls, encryption: str, recipients: list[str]) -> ReplicaConfig:
        """A fresh config with a random salt (object names then differ from every other replica's)."""
        return cls(salt=secrets.token_hex(32), encryption=encryption, created_at=clock.now_iso(), recipients=recipients)

    def to_json(self) -> bytes:
        body = {"format": FORMAT, "version": VERSION, **self.__dict__}
        return (json.dumps(body, indent=2) + "\n").encode()

    @classmethod
    def parse(cls, raw: bytes, where: str) -> ReplicaConfig:
        """Checked ``config.json``; ReplicaDamaged naming ``where`` if it is not one this tool wrote."""
        data = _json_object(raw, where)
        if data.get("format") != FORMAT or data.get("version") != VERSION:
            raise ReplicaDamaged(
                f"{where}: not a version {VERSION} replica of this tool (format {data.get('format')!r}, "
                f"version {data.get('version')!r}); refusing to read or write it"
            )
        salt, encryption = data.get("salt"), data.get("encryption")
        if not isinstance(salt, str) or not _HEX64.match(salt) or encryption not in ("age", "none"):
            raise ReplicaDamaged(f"{where}: salt or encryption is malformed; refusing to use this replica")
        recipients = data.get("recipients")
        if recipients is not None and (
            not isinstance(recipients, list) or not all(isinstance(r, str) for r in recipients)
        ):
            raise ReplicaDamaged(f"{where}: recipients is malformed; refusing to use this replica")
        return cls(salt=salt, encryption=encryption, created_at=str(data.get("created_at", "")), recipients=recipients)

    def object_name(self, sha256: str) -> str:
        """The stored name of a file content: HMAC-SHA256(salt, sha256). Another site's replica names the
        same content differently, so names reveal nothing about the plaintext."""
        if not _HEX64.match(sha256):
            raise ReplicaDamaged(f"{sha256[:80]!r} is not a sha256 in hex; refusing this manifest")
        return hmac.new(bytes.fromhex(self.salt), sha256.encode(), hashlib.sha256).hexdigest()


def object_key(name: str) -> str:
    """Where object ``name`` lives: ``objects/<first two hex>/<name>``."""
    return f"{OBJECTS_PREFIX}{name[:2]}/{name}"


def is_backup_id(text: str) -> bool:
    """Whether ``text`` has the shape of a backup id (``20261125T223600Z-full-3fa2c1``)."""
    return bool(_BACKUP_ID.match(text))


def backup_key(backup_id: str, name: str, encrypted: bool = False) -> str:
    """The key of one of a backup's documents; ``encrypted`` adds ``.age`` (never to index.json)."""
    if not is_backup_id(backup_id):
        raise ReplicaDamaged(f"{backup_id!r} is not a backup id; `recovery replica list` shows the backups")
    suffix = AGE_SUFFIX if encrypted and name != INDEX else ""
    return f"{BACKUPS_PREFIX}{backup_id}/{name}{suffix}"


# The order a push writes a backup's documents in; metadata.json last: its presence means "complete".
DOCUMENTS = (INDEX, MANIFEST, SUMS, OBJECTS_LIST, METADATA)


@dataclass(frozen=True)
class StoredEntry:
    """One object as a backup's index records it: its stored (maybe encrypted) size and SHA-256."""

    size: int
    sha256: str | None = None
    retain_until: str | None = None  # Object Lock: not deletable before (as known when pushed)


@dataclass
class BackupIndex:
    """``index.json``: what a person or the health check may know without the private key."""

    backup_id: str
    created_at: str
    backup_type: str
    tags: list[str]
    categories: list[str]  # config, state, data: what a restore from it can bring back
    files_count: int
    size_bytes: int
    encryption: str
    pushed_at: str = ""
    retain_until: str | None = None  # the backup's own documents are locked until then
    objects: dict[str, StoredEntry] = field(default_factory=dict)

    @property
    def created(self) -> datetime:
        """``created_at`` as an aware datetime."""
        moment = clock.parse(self.created_at)
        assert moment is not None  # parse() refuses an index without created_at
        return moment

    def holds(self, needs: tuple[str, ...] | list[str]) -> bool:
        """Whether the backup captured every category in ``needs``."""
        return set(needs) <= set(self.categories)

    @property
    def pre_recovery(self) -> bool:
        """Whether this is a snapshot of a broken state taken before a restore."""
        return PRE_RECOVERY_TAG in self.tags

    @classmethod
    def for_backup(cls, metadata: BackupMetadata, encryption: str, retain_until: str | None) -> BackupIndex:
        """A new index for the local backup ``metadata`` (objects added by the push)."""
        return cls(
            backup_id=metadata.backup_id,
            created_at=metadata.created_at,
            backup_type=metadata.backup_type.value,
            tags=list(metadata.tags),
            categories=list(metadata.categories),
            files_count=metadata.files_count,
            size_bytes=metadata.size_bytes,
            encryption=encryption,
            pushed_at=clock.now_iso(),
            retain_until=retain_until,
        )

    def to_json(self) -> bytes:
        body = {k: v for k, v in self.__dict__.items() if k != "objects"}
        body["version"] = VERSION
        body["objects"] = {name: e.__dict__ for name, e in sorted(self.objects.items())}
        return (json.dumps(body, indent=1) + "\n").encode()

    @classmethod
    def parse(cls, raw: bytes, where: str, backup_id: str) -> BackupIndex:
        """A checked index; ReplicaDamaged naming ``where`` for anything this tool would not have written."""
        data = _json_object(raw, where)
        try:
            objects = {}
            for name, entry in data["objects"].items():
                if not _HEX64.match(name) or not isinstance(entry, dict):
                    raise ValueError(f"object name {name[:80]!r}")
                size, sha = entry["size"], entry.get("sha256")
                if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                    raise ValueError(f"size of {name}")
                if sha is not None and (not isinstance(sha, str) or not _HEX64.match(sha)):
                    raise ValueError(f"sha256 of {name}")
                objects[name] = StoredEntry(size, sha, entry.get("retain_until"))
            index = cls(
                backup_id=str(data["backup_id"]),
                created_at=str(data["created_at"]),
                backup_type=str(data["backup_type"]),
                tags=[str(t) for t in data["tags"]],
                categories=[str(c) for c in data["categories"]],
                files_count=int(data["files_count"]),
                size_bytes=int(data["size_bytes"]),
                encryption=str(data["encryption"]),
                pushed_at=str(data.get("pushed_at", "")),
                retain_until=data.get("retain_until"),
                objects=objects,
            )
            index.created  # noqa: B018 - validates the timestamp
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ReplicaDamaged(f"{where} is malformed ({exc}); this backup on the replica cannot be used") from exc
        if index.files_count and not 0 < len(index.objects) <= index.files_count:
            # Every file has an object; files sharing a content share one. Anything else was edited.
            raise ReplicaDamaged(
                f"{where} lists {len(index.objects)} object(s) for {index.files_count} file(s): it was edited or "
                "truncated; this backup on the replica cannot be used"
            )
        if index.backup_id != backup_id or data.get("version") != VERSION:
            raise ReplicaDamaged(f"{where} says it is backup {index.backup_id!r}; refusing a misplaced index")
        return index


def _json_object(raw: bytes, where: str) -> dict[str, Any]:
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ReplicaDamaged(f"{where} is not JSON ({exc}); refusing to use it") from exc
    if not isinstance(data, dict):
        raise ReplicaDamaged(f"{where} is not a JSON object; refusing to use it")
    return data


def render_objects(pairs: list[tuple[str, str]]) -> bytes:
    """``OBJECTS``: ``<object name>  <path>`` per file, the by-hand restore's map (docs/replica-format.md)."""
    return "".join(f"{name}  {path}\n" for name, path in pairs).encode("utf-8")
