"""The backup directory format (version 1): metadata, manifest and SHA256SUMS.

Specified in ``docs/backup-format.md``. A backup is a plain directory that a person can check with
``sha256sum -c SHA256SUMS`` and restore with ``cp`` if this tool is broken.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from json.encoder import encode_basestring_ascii as quote
from pathlib import Path
from typing import Any

from recovery_lib import clock
from recovery_lib.errors import BackupError
from recovery_lib.fsops.paths import UnsafePathError, safe_relative, within

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
        """The manifest's JSON object for this file (built directly: ``asdict`` deep-copies)."""
        return {name: getattr(self, name) for name in ENTRY_FIELDS}


ENTRY_FIELDS = ("path", "size", "sha256", "mode", "mtime_ns", "ctime_ns", "ino", "dev", "bino")
_ENCODER = json.JSONEncoder(separators=(", ", ": "))
_ENTRY_JSON = (  # one file's JSON object, fields in ENTRY_FIELDS order
    '{{"path": {}, "size": {}, "sha256": {}, "mode": {}, '
    '"mtime_ns": {}, "ctime_ns": {}, "ino": {}, "dev": {}, "bino": {}}}'
).format


@dataclass
class Manifest:
    """Every file of a backup and the category paths it covers."""

    categories: dict[str, list[str]]
    files: list[FileEntry]
    dirs: list[str] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)

    def to_json(self) -> bytes:
        """The manifest document: one line per file, so it diffs and greps well and encodes in C
        (an indented dump goes through json's pure-Python encoder, seconds at 20,000 files)."""
        encode = _ENCODER.encode
        head = ",\n ".join(
            f"{json.dumps(key)}: {encode(value)}"
            for key, value in (
                ("version", FORMAT_VERSION),
                ("categories", self.categories),
                ("absent", self.absent),
                ("dirs", self.dirs),
            )
        )
        # Every number was checked to be an int (parse_manifest) or came from stat; strings are escaped.
        files = ",\n  ".join(
            _ENTRY_JSON(quote(e.path), e.size, quote(e.sha256), e.mode, e.mtime_ns, e.ctime_ns, e.ino, e.dev, e.bino)
            for e in self.files
        )
        listed = f"[\n  {files}\n ]" if files else "[]"
        return f'{{{head},\n "files": {listed}}}\n'.encode()

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


def read_manifest(backup_path: Path) -> Manifest:
    """Load and parse ``manifest.json`` of a backup directory (not checked against its metadata)."""
    return parse_manifest((backup_path / MANIFEST).read_bytes(), f"{backup_path.name}/{MANIFEST}")


_PARSED: dict[bytes, Manifest] = {}  # sha256 of manifest bytes -> parsed: a restore reads one manifest 4 times
_PARSED_KEPT = 2
_parsed_lock = threading.Lock()


def parse_manifest(raw: bytes, source: str) -> Manifest:
    """Parse and validate manifest bytes: every path must be safe and inside a declared category.

    Parsing is a pure function of the bytes, so the last few results are kept (by sha256) and handed
    out as fresh Manifest objects with their own lists (the entries are frozen)."""
    key = hashlib.sha256(raw).digest()
    with _parsed_lock:
        known = _PARSED.get(key)
    if known is None:
        known = _parse(raw, source)
        with _parsed_lock:
            _PARSED[key] = known
            while len(_PARSED) > _PARSED_KEPT:
                del _PARSED[next(iter(_PARSED))]
    return Manifest(
        categories={k: list(v) for k, v in known.categories.items()},
        files=list(known.files),
        dirs=list(known.dirs),
        absent=list(known.absent),
    )


def _parse(raw: bytes, source: str) -> Manifest:
    try:
        document = json.loads(raw.decode("utf-8"))
        if document.get("version") != FORMAT_VERSION:
            raise BackupError(f"{source}: unsupported manifest version {document.get('version')!r}")
        categories = {
            str(k): [safe_relative(p, what="category path") for p in v] for k, v in document["categories"].items()
        }
        tops = [top for paths in categories.values() for top in paths]
        inside = within(tops)
        files = []
        seen: set[str] = set()
        for item in document["files"]:
            entry = _file_entry(item)
            path = safe_relative(entry.path, what="manifest path")
            if path != entry.path or path in seen or path in RESERVED:
                raise BackupError(f"{source}: manifest path {entry.path!r} is duplicated, reserved or not normal")
            if not inside(path):
                raise BackupError(f"{source}: manifest path {path!r} lies outside the backup's categories")
            numbers = (entry.size, entry.mode, entry.mtime_ns, entry.ctime_ns, entry.ino, entry.dev, entry.bino)
            if any(type(n) is not int for n in numbers) or entry.size < 0 or not 0 <= entry.mode <= 0o7777:
                raise BackupError(f"{source}: manifest entry {path!r} has a bad size, number or sha256")
            if len(entry.sha256) != 64:  # and hex, all at once below
                raise BackupError(f"{source}: manifest entry {path!r} has a bad size, number or sha256")
            seen.add(path)
            files.append(entry)
        _check_sha256s(files, source)
        dirs = [safe_relative(d, what="manifest directory") for d in document.get("dirs", [])]
        absent = [safe_relative(a, what="absent path") for a in document.get("absent", [])]
    except UnsafePathError as exc:
        raise BackupError(f"{source}: {exc}; refusing to use this backup") from exc
    except BackupError:
        raise
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        raise BackupError(f"{source} is malformed ({type(exc).__name__}: {exc}); the backup cannot be used") from exc
    return Manifest(categories=categories, files=files, dirs=dirs, absent=absent)


def _check_sha256s(files: list[FileEntry], source: str) -> None:
    """Every sha256 is 64 lowercase hex digits: to_json quotes it and SHA256SUMS holds it as it is, so a
    list of 64 items or a newline would break the next backup, which links the entry. Checked in one
    pass over all of them (a regex per file cost 10 ms at 20,000 files); a failure then names the entry."""
    try:
        joined = "".join([entry.sha256 for entry in files]).encode("ascii")
        if len(joined) == 64 * len(files) and not joined.translate(None, b"0123456789abcdef"):
            return
    except (TypeError, UnicodeEncodeError):
        pass
    bad = next(e.path for e in files if type(e.sha256) is not str or not _SHA256(e.sha256))
    raise BackupError(f"{source}: manifest entry {bad!r} has a bad size, number or sha256")


_ENTRY_KEYS = frozenset(ENTRY_FIELDS)
_SHA256 = re.compile("[0-9a-f]{64}").fullmatch


def _file_entry(item: dict[str, Any]) -> FileEntry:
    """A manifest's file object as a FileEntry: the dataclass's own __init__ only when fields are
    missing or unknown (it raises for the unknown), else the parsed dict becomes its attributes
    (four times faster, and no second dict per file)."""
    if type(item) is dict and item.keys() == _ENTRY_KEYS:
        entry = object.__new__(FileEntry)
        object.__setattr__(entry, "__dict__", item)  # the parsed dict itself: no copy of 20,000 dicts
        return entry
    return FileEntry(**item)


def sums_line(sha256: str, path: str) -> str:
    """One line of coreutils ``sha256sum`` output (paths are already free of newlines/backslashes)."""
    return f"{sha256}  {path}\n"


def render_sums(manifest: Manifest, manifest_sha256: str) -> bytes:
    """``SHA256SUMS``: every file plus ``manifest.json``, so ``sha256sum -c`` checks both."""
    lines = [sums_line(entry.sha256, entry.path) for entry in manifest.files]
    lines.append(sums_line(manifest_sha256, MANIFEST))
    return "".join(lines).encode("utf-8")
