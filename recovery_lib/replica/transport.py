"""What a replica's store must do, whatever it is (a directory, an SFTP server, an S3 bucket).

Keys are relative POSIX paths under the replica's location (``objects/ab/ab12...``,
``backups/<id>/metadata.json``); each transport maps them to its own names and never lets one lead
outside the location. Every put is atomic for readers: an object is visible whole or not at all
(a directory and SFTP write a temporary name and rename it; an S3 PUT is atomic). Errors are
:class:`~recovery_lib.errors.ReplicaError` subclasses naming the replica and the key.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from recovery_lib.errors import ReplicaDamaged

_KEY = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")


@dataclass(frozen=True)
class StoredObject:
    """One object as the store reports it."""

    key: str
    size: int
    retain_until: datetime | None = None  # S3 Object Lock: not deletable before this (UTC)
    sha256: str | None = None  # the store's own SHA-256 of the whole object (hex), when it keeps one


class Transport(Protocol):
    """A replica's store. ``description`` names it for messages (never with credentials)."""

    description: str
    parallel: int  # how many transfers the push and the pull may run at once on it

    def stat(self, key: str) -> StoredObject | None:
        """The object at ``key``, or None when there is none."""
        ...

    def list(self, prefix: str) -> Iterator[StoredObject]:
        """Every object whose key starts with ``prefix`` (recursively), in no particular order."""
        ...

    def put_file(self, key: str, source: Path, *, retain_until: datetime | None = None) -> None:
        """Store the file ``source`` at ``key`` atomically (streamed, memory flat); replaces an existing one."""
        ...

    def put_bytes(self, key: str, data: bytes, *, retain_until: datetime | None = None) -> None:
        """Store ``data`` at ``key`` atomically."""
        ...

    def get_file(self, key: str, target: Path, *, max_size: int) -> int:
        """Download ``key`` into the new file ``target`` (streamed); returns its size. Refuses (ReplicaDamaged)
        an object larger than ``max_size``; raises ReplicaDamaged when it is missing."""
        ...

    def get_bytes(self, key: str, *, max_size: int) -> bytes:
        """The content of ``key``; ReplicaDamaged when missing or larger than ``max_size``."""
        ...

    def delete(self, key: str) -> None:
        """Remove ``key`` (absent is fine); ReplicaLocked when retention forbids it."""
        ...

    def extend_retention(self, key: str, until: datetime) -> None:
        """Keep ``key`` locked until at least ``until`` (S3 Object Lock; others never lock)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


def check_key(key: str, where: str) -> str:
    """``key`` if it is a plain relative key (no ``..``, no empty or hidden-dot parts); else ReplicaDamaged."""
    if not _KEY.match(key) or any(part.startswith(".") for part in key.split("/")):
        raise ReplicaDamaged(f"{where}: {key!r} is not a key this tool writes; refusing to use it")
    return key
