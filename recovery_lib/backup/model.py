"""The backup directory format (version 1): metadata, manifest and SHA256SUMS.

Specified in ``docs/backup-format.md``. A backup is a plain directory that a person can check with
``sha256sum -c SHA256SUMS`` and restore with ``cp`` if this tool is broken.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from recovery_lib import clock
from recovery_lib.errors import BackupError
from recovery_lib.fsops.paths import UnsafePathError, is_within, safe_relative

FORMAT_VERSION = 1
METADATA = "metadata.json"
MANIFEST = "manifest.json"
SUMS = "SHA256SUMS"
RESERVED = (METADATA, MANIFEST, SUMS)
CATEGORIES = ("config", "state", "data")
# The site's recovery.toml, captured by every backup under this manifest category (never in ``categories``
# of metadata.json: it does not change what a backup is); restored on its own (restore/settings.py).
SETTINGS = "settings"


PRE_RECOVERY_TAG = "pre-recovery"  # the snapshot a restore takes of the state it replaces


class BackupType(StrEnum):
    """What a backup holds. MIXED: two of the three categories."""

    FULL = "full"
    CONFIG = "config"
    STATE = "state"
    DATA = "data"
    MIXED = "mixed"

    @classmethod
    def for_categories(cls, categories: list[str] | tuple[str, ...]) -> BackupType:
        """FULL for all three, the category's own type for one, MIXED otherwise."""
        chosen = set(categories)
        if chosen == set(CATEGORIES):
            return cls.FULL
        if len(chosen) == 1:
            return cls(next(iter(chosen)))
        return cls.MIXED


class BackupStatus(StrEnum):
    """SUCCESS: every file captured and verified. PARTIAL: some could not be read (never restored from)."""

    SUCCESS = "success"
    PARTIAL = "partial"
    FAILED = "failed"


@dataclass(frozen=True)
class FileEntry:
    """One file of a backup. ``ctime_ns``/``ino``/``dev`` describe the *source* at backup time;
    ``bino`` is the inode of the copy inside the backup."""

    path: str
    size: int
    sha256: str
    mode: int
    mtime_ns: int
    ctime_ns: int = 0
    ino: int = 0
    dev: int = 0
    bino: int = 0  # inode of the backup's own copy: a replaced copy is never hard-linked again

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Manifest:
    """Every file of a backup and the category paths it covers."""

    categories: dict[str, list[str]]
    files: list[FileEntry]
    dirs: list[str] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)

    def to_json(self) -> bytes:
        document = {
            "version": FORMAT_VERSION,
            "categories": self.categories,
            "absent": self.absent,
            "dirs": self.dirs,
            "files": [entry.to_dict() for entry in self.files],
        }
        return (json.dumps(document, indent=1, sort_keys=False) + "\n").encode("utf-8")

    def by_path(self) -> dict[str, FileEntry]:
        return {entry.path: entry for entry in self.files}


@dataclass
class BackupMetadata:
    """The runbook's backup record plus what verification and incrementals need."""

    backup_id: str
    backup_type: BackupType
    created_at: str
    status: BackupStatus
    files_count: int = 0
    size_bytes: int = 0
    description: str = ""
    tags: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    parent_id: str | None = None
    host: str = ""
    site_name: str = ""
    manifest_sha256: str = ""
    sums_sha256: str = ""
    bytes_new: int = 0
    files_linked: int = 0
    duration_s: float = 0.0
    problems: list[str] = field(default_factory=list)
    format: int = FORMAT_VERSION
    checksum: str = ""

    @property
    def created(self) -> datetime:
        """``created_at`` as an aware datetime."""
        return datetime.fromisoformat(self.created_at.replace("Z", "+00:00"))

    def age_hours(self, now: datetime | None = None) -> float:
        """Hours since the backup was taken."""
        return ((now or clock.now()) - self.created).total_seconds() / 3600

    def includes(self, category: str) -> bool:
        """True when the backup captured ``category`` (config, state or data)."""
        return category in self.categories

    def _fields(self) -> dict[str, Any]:
        data = asdict(self)
        data["backup_type"] = self.backup_type.value
        data["status"] = self.status.value
        data.pop("checksum")
        return data

    def compute_checksum(self) -> str:
        """sha256 of the canonical JSON of every other field: detects edits to metadata.json."""
        canonical = json.dumps(self._fields(), sort_keys=True, separators=(",", ":")).encode("utf-8")
        return hashlib.sha256(canonical).hexdigest()

    def to_json(self) -> bytes:
        data = self._fields()
        data["checksum"] = self.compute_checksum()
        return (json.dumps(data, indent=2) + "\n").encode("utf-8")

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str) -> BackupMetadata:
        try:
            values = dict(data)
            values["backup_type"] = BackupType(values["backup_type"])
            values["status"] = BackupStatus(values["status"])
            known = {name for name in cls.__dataclass_fields__}
            unknown = set(values) - known
            if unknown:
                raise BackupError(f"{source}: unknown field(s) {', '.join(sorted(unknown))}")
            metadata = cls(**values)
            metadata.created  # noqa: B018 - validates the timestamp
        except BackupError:
            raise
        except (KeyError, ValueError, TypeError) as exc:
            raise BackupError(
                f"{source} is malformed ({type(exc).__name__}: {exc}); the backup cannot be used"
            ) from exc
        return metadata


def read_metadata(backup_path: Path) -> BackupMetadata:
    """Load and parse ``metadata.json`` of a backup directory."""
    source = f"{backup_path.name}/{METADATA}"
    if (backup_path / METADATA).is_symlink():  # read through, it could say anything about another backup
        raise BackupError(f"{source} is a symlink, not a file the backup wrote; the backup cannot be used")
    try:
        data = json.loads((backup_path / METADATA).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise BackupError(f"{source} is missing; the backup is incomplete and cannot be used") from exc
    except (OSError, ValueError) as exc:
        raise BackupError(f"{source} is unreadable ({exc}); the backup cannot be used") from exc
    if not isinstance(data, dict):
        raise BackupError(f"{source} is not a JSON object; the backup cannot be used")
    return BackupMetadata.from_dict(data, source)


def parse_manifest(raw: bytes, source: str) -> Manifest:
    """Parse and validate manifest bytes: every path must be safe and inside a declared category."""
    try:
        document = json.loads(raw.decode("utf-8"))
        if document.get("version") != FORMAT_VERSION:
            raise BackupError(f"{source}: unsupported manifest version {document.get('version')!r}")
        categories = {
            str(k): [safe_relative(p, what="category path") for p in v] for k, v in document["categories"].items()
        }
        tops = [top for paths in categories.values() for top in paths]
        files = []
        seen: set[str] = set()
        for item in document["files"]:
            entry = FileEntry(**item)
            path = safe_relative(entry.path, what="manifest path")
            if path != entry.path or path in seen or path in RESERVED:
                raise BackupError(f"{source}: manifest path {entry.path!r} is duplicated, reserved or not normal")
            if not is_within(path, tops):
                raise BackupError(f"{source}: manifest path {path!r} lies outside the backup's categories")
            if not isinstance(entry.size, int) or entry.size < 0 or len(entry.sha256) != 64:
                raise BackupError(f"{source}: manifest entry {path!r} has a bad size or sha256")
            seen.add(path)
            files.append(entry)
        dirs = [safe_relative(d, what="manifest directory") for d in document.get("dirs", [])]
        absent = [safe_relative(a, what="absent path") for a in document.get("absent", [])]
    except UnsafePathError as exc:
        raise BackupError(f"{source}: {exc}; refusing to use this backup") from exc
    except BackupError:
        raise
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        raise BackupError(f"{source} is malformed ({type(exc).__name__}: {exc}); the backup cannot be used") from exc
    return Manifest(categories=categories, files=files, dirs=dirs, absent=absent)


def sums_line(sha256: str, path: str) -> str:
    """One line of coreutils ``sha256sum`` output (paths are already free of newlines/backslashes)."""
    return f"{sha256}  {path}\n"


def render_sums(manifest: Manifest, manifest_sha256: str) -> bytes:
    """``SHA256SUMS``: every file plus ``manifest.json``, so ``sha256sum -c`` checks both."""
    lines = [sums_line(entry.sha256, entry.path) for entry in manifest.files]
    lines.append(sums_line(manifest_sha256, MANIFEST))
    return "".join(lines).encode("utf-8")
