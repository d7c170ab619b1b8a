"""``[[replicas]]`` in ``recovery.toml``: where copies of the backups live off the host.

Each replica has a name and a URL (``s3://bucket/prefix``, ``sftp://user@host:port/path``,
``file:///absolute/path``). Credentials never come from the site's files: S3 from the environment or
``~/.aws`` (boto3's chain), SFTP from ``identity_file`` / the SSH agent / ``~/.ssh``. Objects sent to
``s3://`` and ``sftp://`` are encrypted with age to ``age_recipients`` (public keys only); such a
replica without recipients is refused unless it says ``encryption = "none"``.
Specified in ``docs/recovery-toml.md`` and ``docs/replica-format.md``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

from recovery_lib.site.schema import NUMBER, STR, STR_LIST, Check, Reader

PUSH_MODES = ("after-backup", "manual")
ENCRYPTIONS = ("age", "none")
SCHEMES = ("s3", "sftp", "file")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
_RECIPIENT = re.compile(r"^age1[02-9ac-hj-np-z]{58}$")  # bech32, X25519

REPLICA_SCHEMA: dict[str, Check] = {
    "name": STR,
    "url": STR,
    "endpoint_url": STR,
    "region": STR,
    "object_lock_days": ("a positive integer", lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0),
    "push": (f"one of {', '.join(repr(m) for m in PUSH_MODES)}", lambda v: v in PUSH_MODES),
    "identity_file": STR,
    "known_hosts": STR,
    "age_recipients": STR_LIST,
    "encryption": (f"one of {', '.join(repr(m) for m in ENCRYPTIONS)}", lambda v: v in ENCRYPTIONS),
    "max_age_hours": NUMBER,
}


@dataclass(frozen=True)
class ReplicaSpec:
    """One ``[[replicas]]`` entry, checked. ``location`` is the bucket prefix, remote path or directory."""

    name: str
    url: str
    scheme: str
    host: str = ""  # the bucket (s3) or host (sftp)
    port: int | None = None
    user: str | None = None
    location: str = ""  # s3: key prefix (no leading /); sftp, file: absolute path
    endpoint_url: str | None = None
    region: str | None = None
    object_lock_days: int | None = None
    push: str = "after-backup"
    identity_file: str | None = None  # sftp: the SSH private key (never inside the site)
    known_hosts: str | None = None  # sftp: host keys to trust (default ~/.ssh/known_hosts)
    age_recipients: tuple[str, ...] = ()
    max_age_hours: float | None = None  # default: the site's [backups] max_age_hours

    @property
    def encrypted(self) -> bool:
        """Whether objects are encrypted with age before they leave the host."""
        return bool(self.age_recipients)

    @property
    def pushes_after_backup(self) -> bool:
        """Whether ``recovery backup create`` pushes each new backup here."""
        return self.push == "after-backup"

    def __str__(self) -> str:
        return f"replica {self.name!r} ({self.url})"


def parse_replicas(reader: Reader, raw: Any) -> tuple[ReplicaSpec, ...]:
    """Check ``[[replicas]]`` (a list of tables) and return the specs; errors name the line and key."""
    if not isinstance(raw, list):
        raise reader.fail(("replicas",), None, "must be an array of tables: write each one as [[replicas]].")
    specs: list[ReplicaSpec] = []
    for entry in raw:
        if not isinstance(entry, dict):
            raise reader.fail(("replicas",), None, f"each [[replicas]] must be a table, got {entry!r}.")
        reader.table(entry, ("replicas",), REPLICA_SCHEMA)
        specs.append(_spec(reader, entry))
    names = [s.name for s in specs]
    for name in names:
        if names.count(name) > 1:
            raise reader.fail(("replicas",), "name", f"{name!r} names two replicas; each needs its own name.")
    return tuple(specs)


def _spec(reader: Reader, entry: dict[str, Any]) -> ReplicaSpec:
    def fail(key: str, problem: str) -> Exception:
        return reader.fail(("replicas",), key, problem)

    for key in ("name", "url"):
        if key not in entry:
            raise fail(key, f"is missing: every [[replicas]] needs a name and a url (got {sorted(entry)}).")
    name = entry["name"]
    if not _NAME.match(name):
        raise fail("name", f"{name!r}: use lower-case letters, digits, '-' and '_' (up to 40), e.g. \"offsite\".")
    parts = urlsplit(entry["url"])
    scheme = parts.scheme
    try:
        port = parts.port
    except ValueError:
        raise fail("url", f"replica {name!r}: the port in {entry['url']!r} is not a number from 1 to 65535.") from None
    if scheme not in SCHEMES:
        raise fail("url", f"{entry['url']!r}: the scheme must be s3://, sftp:// or file:// (replica {name!r}).")
    if parts.password is not None:
        raise fail(
            "url",
            f"replica {name!r}: the url holds a password. Credentials never go in the site's files: use "
            "identity_file or the SSH agent (sftp), the environment or ~/.aws (s3).",
        )
    if parts.query or parts.fragment:
        raise fail("url", f"replica {name!r}: {entry['url']!r} has a query or fragment; give only the location.")
    path = unquote(parts.path)
    if scheme == "s3":
        if not parts.hostname:
            raise fail("url", f"replica {name!r}: s3:// needs a bucket, e.g. s3://peak-trade-backups/prod.")
        location = path.strip("/")
    else:
        if scheme == "sftp" and not parts.hostname:
            raise fail("url", f"replica {name!r}: sftp:// needs a host, e.g. sftp://backup@dr-host:22/srv/peak-trade.")
        if scheme == "file" and parts.netloc not in ("", "localhost"):
            raise fail("url", f"replica {name!r}: write file:///absolute/path (three slashes), got {entry['url']!r}.")
        pure = PurePosixPath(path)
        if not pure.is_absolute() or ".." in pure.parts or pure == PurePosixPath("/"):
            raise fail("url", f"replica {name!r}: the path must be absolute, not '/', without '..' ({path!r}).")
        location = pure.as_posix()
    for key, only in (("endpoint_url", "s3"), ("region", "s3"), ("object_lock_days", "s3")):
        if key in entry and scheme != only:
            raise fail(key, f"replica {name!r}: {key} applies to s3:// replicas only.")
    for key in ("identity_file", "known_hosts"):
        if key in entry and scheme != "sftp":
            raise fail(key, f"replica {name!r}: {key} applies to sftp:// replicas only.")
        if key in entry and not PurePosixPath(entry[key]).is_absolute() and not entry[key].startswith("~"):
            raise fail(key, f"replica {name!r}: give an absolute path (or ~/...), outside the site.")
    recipients = tuple(entry.get("age_recipients", ()))
    for recipient in recipients:
        if not _RECIPIENT.match(recipient):
            raise fail(
                "age_recipients",
                f"replica {name!r}: {recipient[:16]!r}... is not an age X25519 public key (age1...); "
                "make one with `age-keygen -o key.txt` and copy the public key it prints.",
            )
    encryption = entry.get("encryption")
    if encryption == "none" and recipients:
        raise fail("encryption", f'replica {name!r}: encryption = "none" contradicts age_recipients; drop one.')
    if encryption == "age" and not recipients:
        raise fail("age_recipients", f'replica {name!r}: encryption = "age" needs age_recipients (public keys).')
    if scheme in ("s3", "sftp") and not recipients and encryption != "none":
        raise fail(
            "age_recipients",
            f'replica {name!r}: objects leaving the host must be encrypted. Add age_recipients = ["age1..."] '
            '(public keys: the host can write backups but not read them back), or say encryption = "none".',
        )
    return ReplicaSpec(
        name=name,
        url=entry["url"],
        scheme=scheme,
        host=parts.hostname or "",
        port=port,
        user=unquote(parts.username) if parts.username else None,
        location=location,
        endpoint_url=entry.get("endpoint_url"),
        region=entry.get("region"),
        object_lock_days=entry.get("object_lock_days"),
        push=entry.get("push", "after-backup"),
        identity_file=entry.get("identity_file"),
        known_hosts=entry.get("known_hosts"),
        age_recipients=recipients,
        max_age_hours=float(entry["max_age_hours"]) if "max_age_hours" in entry else None,
    )
