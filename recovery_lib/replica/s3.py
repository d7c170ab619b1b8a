"""A replica in an S3 bucket (``s3://peak-trade-backups/prod``; any S3-compatible store via ``endpoint_url``).

Credentials come only from boto3's default chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``,
``AWS_PROFILE``, ``~/.aws``). A PUT is atomic in S3, so an object is visible whole or not at all.

Ransomware resistance: Object Lock needs a versioned bucket, and this tool never legitimately rewrites a
key. So on a versioned bucket every read (stat, get, list) uses the OLDEST version of each key that is
not a delete marker: whoever holds the write credentials can only add newer versions or delete markers,
and readers ignore both and still find the original, locked bytes. A delete removes every version of
the key (so pruning frees the space) after checking that none is under retention.
"""

from __future__ import annotations

import base64
import binascii
import logging
import math
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from recovery_lib.clock import iso, now
from recovery_lib.errors import ReplicaDamaged, ReplicaError, ReplicaLocked, ReplicaUnreachable
from recovery_lib.replica.fs import copy_limited, download, open_source, read_all, refuse_oversize
from recovery_lib.replica.transport import StoredObject, check_key
from recovery_lib.site.replicas import ReplicaSpec

try:  # an optional extra: recovery_lib[s3]
    import boto3
    from boto3.s3.transfer import TransferConfig
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, PartialCredentialsError
except ImportError:  # pragma: no cover - exercised only without the extra
    boto3 = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

SINGLE_PUT_MAX = 64 << 20  # above this, a multipart upload (memory stays flat)
PART_SIZE = 16 << 20
MAX_PARTS = 9000  # S3 allows 10,000
_MISSING = ("404", "NoSuchKey", "NotFound", "NoSuchVersion")
_CREDENTIALS = ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "ExpiredToken", "InvalidToken")


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _utc(moment: datetime | None) -> datetime | None:
    return moment.astimezone(UTC) if moment is not None else None


def whole_object_sha256(head: dict[str, Any]) -> str | None:
    """The hex SHA-256 of the whole object from a HEAD, or None (absent, or a composite multipart checksum)."""
    value = head.get("ChecksumSHA256")
    if not value or "-" in value or head.get("ChecksumType") == "COMPOSITE":
        return None
    try:
        digest = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    return digest.hex() if len(digest) == 32 else None


class S3Transport:
    """A replica under the key prefix ``spec.location`` of the bucket ``spec.host``."""

    parallel = 4  # transfers at once (boto3 clients are thread-safe; requests overlap their latency)

    def __init__(self, spec: ReplicaSpec) -> None:
        if boto3 is None:
            raise ReplicaError(f"{spec} needs boto3: pip install 'recovery_lib[s3]'")
        self.spec = spec
        self.bucket = spec.host
        self.prefix = f"{spec.location}/" if spec.location else ""
        self.endpoint = spec.endpoint_url or "AWS S3"
        self.description = f"replica {spec.name!r} (s3://{self.bucket}/{spec.location} at {self.endpoint})"
        # A session of its own: credentials are read from the environment now, not cached from an earlier one.
        self.client = boto3.session.Session().client(
            "s3",
            endpoint_url=spec.endpoint_url,
            region_name=spec.region or "us-east-1",
            config=Config(connect_timeout=5, read_timeout=60, retries={"max_attempts": 3}),
        )
        self._versioned: bool | None = None
        self._oldest: dict[str, tuple[str, int]] = {}  # key -> (version id, size), filled by list()

    # --- errors -----------------------------------------------------------------------------------

    def _where(self, key: str) -> str:
        return f"{self.description}: {key}"

    def _unreachable(self, doing: str, exc: BaseException) -> ReplicaError:
        """The store's failure as ReplicaUnreachable, saying what to set or check."""
        if isinstance(exc, NoCredentialsError | PartialCredentialsError):
            hint = (
                "no S3 credentials were found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE "
                "with ~/.aws/credentials (never in the site's files)"
            )
        elif isinstance(exc, ClientError) and _code(exc) == "NoSuchBucket":
            hint = f"the bucket {self.bucket!r} does not exist at {self.endpoint}: create it, or fix the url"
        elif isinstance(exc, ClientError) and _code(exc) in _CREDENTIALS:
            hint = (
                f"the store refused the credentials ({_code(exc)}): check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY "
                f"or AWS_PROFILE, and that they may use the bucket {self.bucket!r}"
            )
        elif isinstance(exc, ClientError):
            hint = f"the store answered {_code(exc)}: {exc}"
        else:
            hint = f"{exc}; check that {self.endpoint} is up and reachable (endpoint_url in recovery.toml)"
        return ReplicaUnreachable(f"{self.description}: {doing}: {hint}. Nothing was changed by this failure.")

    def _call(self, doing: str, operation: str, **params: Any) -> dict[str, Any]:
        """One S3 call, its errors as ReplicaUnreachable."""
        try:
            return getattr(self.client, operation)(Bucket=self.bucket, **params)
        except (ClientError, BotoCoreError) as exc:
            raise self._unreachable(doing, exc) from None

    # --- versions ---------------------------------------------------------------------------------

    def versioned(self) -> bool:
        """Whether the bucket keeps versions (Enabled, or Suspended with old versions); asked once."""
        if self._versioned is None:
            answer = self._call("cannot read the bucket's versioning", "get_bucket_versioning")
            self._versioned = answer.get("Status") in ("Enabled", "Suspended")
        return self._versioned

    def _versions(self, prefix: str) -> Iterator[tuple[str, list[dict[str, Any]], list[dict[str, Any]]]]:
        """(full key, its versions, its delete markers) for every key under ``prefix``; versions newest first."""
        found: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]] = {}
        try:
            for page in self.client.get_paginator("list_object_versions").paginate(Bucket=self.bucket, Prefix=prefix):
                for version in page.get("Versions", []):
                    found.setdefault(version["Key"], ([], []))[0].append(version)
                for marker in page.get("DeleteMarkers", []):
                    found.setdefault(marker["Key"], ([], []))[1].append(marker)
        except (ClientError, BotoCoreError) as exc:
            raise self._unreachable(f"cannot list the versions under {prefix!r}", exc) from None
        for full, (versions, markers) in found.items():
            yield full, versions, markers

    @staticmethod
    def _oldest_of(versions: list[dict[str, Any]]) -> dict[str, Any] | None:
        """The first version written: the earliest LastModified; S3 lists a key's versions newest first,
        so among equal times (one-second resolution) the later in the listing is the older."""
        if not versions:
            return None
        return min(enumerate(versions), key=lambda pair: (pair[1]["LastModified"], -pair[0]))[1]

    def _version_of(self, key: str) -> tuple[str, int] | None:
        """(version id, size) of ``key``'s oldest real version on a versioned bucket, None when it has none."""
        if key in self._oldest:
            return self._oldest[key]
        full = self.prefix + key
        for name, versions, _markers in self._versions(full):
            if name == full and (oldest := self._oldest_of(versions)) is not None:
                return oldest["VersionId"], oldest["Size"]
        return None

    # --- the Transport protocol -------------------------------------------------------------------

    def stat(self, key: str) -> StoredObject | None:
        """The object at ``key`` (on a versioned bucket: its oldest version), or None."""
        head = self._head(key)
        if head is None:
            return None
        return StoredObject(
            key=key,
            size=int(head["ContentLength"]),
            retain_until=_utc(head.get("ObjectLockRetainUntilDate")),
            sha256=whole_object_sha256(head),
        )

    def _head(self, key: str) -> dict[str, Any] | None:
        params: dict[str, Any] = {"Key": self.prefix + check_key(key, self.description), "ChecksumMode": "ENABLED"}
        if self.versioned():
            found = self._version_of(key)
            if found is None:
                return None
            params["VersionId"] = found[0]
        try:
            return self.client.head_object(Bucket=self.bucket, **params)
        except ClientError as exc:
            if _code(exc) in _MISSING:
                self._oldest.pop(key, None)
                return None
            raise self._unreachable(f"cannot read {key}", exc) from None
        except BotoCoreError as exc:
            raise self._unreachable(f"cannot read {key}", exc) from None

    def list(self, prefix: str) -> Iterator[StoredObject]:
        """Every object whose key starts with ``prefix``. Sizes only: retention and checksums come from stat()."""
        if self.versioned():
            for full, versions, _markers in self._versions(self.prefix + prefix):
                oldest = self._oldest_of(versions)
                key = self._key_of(full)
                if oldest is None or key is None:
                    continue  # only delete markers: never ours
                self._oldest[key] = (oldest["VersionId"], oldest["Size"])
                yield StoredObject(key=key, size=oldest["Size"])
            return
        try:
            paginator = self.client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
                for item in page.get("Contents", []):
                    key = self._key_of(item["Key"])
                    if key is not None:
                        yield StoredObject(key=key, size=item["Size"])
        except (ClientError, BotoCoreError) as exc:
            raise self._unreachable(f"cannot list {prefix!r}", exc) from None

    def _key_of(self, full: str) -> str | None:
        """Our key for the store's ``full`` name; None for a name this tool never writes."""
        key = full[len(self.prefix) :]
        try:
            return check_key(key, self.description)
        except ReplicaDamaged:
            return None

    def _lock(self, retain_until: datetime | None) -> dict[str, Any]:
        if retain_until is None:
            return {}
        return {"ObjectLockMode": "COMPLIANCE", "ObjectLockRetainUntilDate": retain_until}

    def put_file(self, key: str, source: Path, *, retain_until: datetime | None = None) -> None:
        """Upload ``source``: one PUT with a SHA-256 checksum up to 64 MiB, else a multipart upload."""
        full = self.prefix + check_key(key, self.description)
        reader, size = open_source(source)
        with reader:
            if size <= SINGLE_PUT_MAX:
                self._call(
                    f"cannot store {key}",
                    "put_object",
                    Key=full,
                    Body=reader,
                    ContentLength=size,
                    ChecksumAlgorithm="SHA256",  # the store keeps the whole object's SHA-256 for verify
                    **self._lock(retain_until),
                )
                return
        part = max(PART_SIZE, math.ceil(size / MAX_PARTS))
        transfer = TransferConfig(multipart_threshold=SINGLE_PUT_MAX, multipart_chunksize=part, max_concurrency=4)
        try:
            self.client.upload_file(str(source), self.bucket, full, ExtraArgs=self._lock(retain_until), Config=transfer)
        except (ClientError, BotoCoreError) as exc:
            raise self._unreachable(f"cannot store {key}", exc) from None
        except Exception as exc:  # s3transfer wraps failures in its own S3UploadFailedError
            if isinstance(exc.__context__, ClientError | BotoCoreError):
                raise self._unreachable(f"cannot store {key}", exc.__context__) from None
            raise
        if retain_until is not None:
            self._ensure_retention(key, full, retain_until)
        log.debug("%s: stored %s (%d bytes, multipart)", self.description, key, size)

    def _ensure_retention(self, key: str, full: str, retain_until: datetime) -> None:
        """Set the retention of a multipart upload's version if the store did not apply it from the upload
        (moto ignores it there; AWS applies it). A COMPLIANCE date is only ever kept or extended."""
        head = self._call(f"cannot read {key}", "head_object", Key=full)
        self._retain(key, head, retain_until)

    def _retain(self, key: str, head: dict[str, Any], until: datetime) -> None:
        """Put COMPLIANCE retention ``until`` on the version ``head`` describes, unless it is locked that long."""
        current = _utc(head.get("ObjectLockRetainUntilDate"))
        if current is not None and current >= until:
            return
        params: dict[str, Any] = {
            "Key": self.prefix + key,
            "Retention": {"Mode": "COMPLIANCE", "RetainUntilDate": until},
        }
        if head.get("VersionId"):
            params["VersionId"] = head["VersionId"]
        self._call(f"cannot set the retention of {key}", "put_object_retention", **params)

    def extend_retention(self, key: str, until: datetime) -> None:
        """Keep ``key`` (its oldest version, the one readers use) locked until at least ``until``."""
        head = self._head(key)
        if head is None:
            raise self._missing(key)
        self._retain(key, head, until)

    def put_bytes(self, key: str, data: bytes, *, retain_until: datetime | None = None) -> None:
        """Upload ``data`` in one PUT with a SHA-256 checksum."""
        full = self.prefix + check_key(key, self.description)
        lock = self._lock(retain_until)
        self._call(f"cannot store {key}", "put_object", Key=full, Body=data, ChecksumAlgorithm="SHA256", **lock)

    def get_file(self, key: str, target: Path, *, max_size: int) -> int:
        """Download ``key`` into ``target`` in chunks; ReplicaDamaged when missing or over ``max_size``."""
        return download(target, lambda out: self._get(key, out, max_size))

    def get_bytes(self, key: str, *, max_size: int) -> bytes:
        """The content of ``key`` (same refusals as :meth:`get_file`)."""
        return read_all(lambda out: self._get(key, out, max_size))

    def _get(self, key: str, out: Any, max_size: int) -> int:
        # One GET, no HEAD first: its ContentLength is checked before the body is read.
        params: dict[str, Any] = {"Key": self.prefix + check_key(key, self.description)}
        if self.versioned():
            found = self._version_of(key)
            if found is None:
                raise self._missing(key)
            params["VersionId"] = found[0]
        try:
            response = self.client.get_object(Bucket=self.bucket, **params)
        except ClientError as exc:
            if _code(exc) in _MISSING:
                self._oldest.pop(key, None)
                raise self._missing(key) from None
            raise self._unreachable(f"cannot read {key}", exc) from None
        except BotoCoreError as exc:
            raise self._unreachable(f"cannot read {key}", exc) from None
        body = response["Body"]
        try:
            size = int(response["ContentLength"])
            refuse_oversize(size, max_size, self._where(key))
            return copy_limited(body.read, out, expected=size, max_size=max_size, where=self._where(key))
        except BotoCoreError as exc:
            raise self._unreachable(f"cannot read {key}", exc) from None
        finally:
            body.close()

    def delete(self, key: str) -> None:
        """Remove ``key`` (every version of it on a versioned bucket); ReplicaLocked when retention forbids it."""
        full = self.prefix + check_key(key, self.description)
        if not self.versioned():
            self._call(f"cannot delete {key}", "delete_object", Key=full)
            return
        entries = [(n, v, m) for n, v, m in self._versions(full) if n == full]
        if not entries:
            return
        _name, versions, markers = entries[0]
        for version in versions:  # check every version first, so nothing is half-deleted when we can tell
            head = self._call(f"cannot read {key}", "head_object", Key=full, VersionId=version["VersionId"])
            until = _utc(head.get("ObjectLockRetainUntilDate"))
            if head.get("ObjectLockLegalHoldStatus") == "ON" or (until is not None and until > now()):
                raise self._locked(key, until)
        for version in [*versions, *markers]:
            try:
                self.client.delete_object(Bucket=self.bucket, Key=full, VersionId=version["VersionId"])
            except ClientError as exc:
                if _code(exc) == "AccessDenied":
                    raise self._locked(key, None) from None
                raise self._unreachable(f"cannot delete {key}", exc) from None
            except BotoCoreError as exc:
                raise self._unreachable(f"cannot delete {key}", exc) from None
        self._oldest.pop(key, None)

    def _missing(self, key: str) -> ReplicaDamaged:
        return ReplicaDamaged(
            f"{self._where(key)} is missing from the replica. Run `recovery replica verify`; "
            "`recovery replica push` uploads what a backup lacks."
        )

    def _locked(self, key: str, until: datetime | None) -> ReplicaLocked:
        when = f"until {iso(until)}" if until is not None else "(the store refused the delete: AccessDenied)"
        return ReplicaLocked(
            f"{self._where(key)} is under Object Lock retention {when}; it cannot be deleted before then. "
            "Nothing was deleted; prune skips it and can remove it after that date."
        )

    def close(self) -> None:
        """Close the client's connections."""
        self.client.close()
