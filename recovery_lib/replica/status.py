"""The last push to each replica, as the host saw it: kept so health can say when a push failed.

``<backup dir>/.replicas/<name>.json`` holds the outcome of the newest push (after a backup or by
hand): when, whether it succeeded, what it pushed and the error if it did not. A push that fails
never fails the local backup; this record, and the ``replicas`` health check that reads it, is how a
person learns of it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from recovery_lib import clock
from recovery_lib.errors import ReplicaError
from recovery_lib.fsops.atomic import atomic_write_text
from recovery_lib.fsops.flock import flock_within

log = logging.getLogger(__name__)

STATUS_DIR = ".replicas"
LOCK_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class PushRecord:
    """The outcome of one push to one replica."""

    replica: str
    at: str
    ok: bool
    error: str | None = None
    pushed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    bytes_uploaded: int = 0
    duration_s: float = 0.0
    url: str | None = None  # where the push went: a record of another location says nothing of this one

    def summary(self) -> str:
        """One line for a person."""
        if self.ok:
            return f"last push {self.at}: ok ({len(self.pushed)} backup(s), {self.bytes_uploaded:,} bytes)"
        why = self.error or "; ".join(f"{bid}: {reason}" for bid, reason in self.failed.items())
        return f"last push {self.at}: FAILED: {why}"


def status_path(backup_dir: Path, replica: str) -> Path:
    """Where the last push to ``replica`` is recorded."""
    return backup_dir / STATUS_DIR / f"{replica}.json"


def write_push_record(backup_dir: Path, record: PushRecord) -> None:
    """Keep ``record`` as the last push to its replica (atomically); a failure to write is logged only:
    it must never turn a good backup into a failed one."""
    path = status_path(backup_dir, record.replica)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(asdict(record), indent=2) + "\n")
    except OSError as exc:
        log.error("cannot record the push to replica %s in %s: %s", record.replica, path, exc.strerror or exc)


def read_push_record(backup_dir: Path, replica: str, url: str | None = None) -> PushRecord | None:
    """The last push to ``replica`` as recorded here, or None (never pushed from this host, unreadable, or
    recorded for another ``url`` than the replica has now)."""
    path = status_path(backup_dir, replica)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        record = PushRecord(**data)
        return None if url is not None and record.url not in (None, url) else record
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError) as exc:
        log.warning("push record %s is unreadable (%s); treated as unknown", path, exc)
        return None


def failed_record(replica: str, error: str, url: str | None = None) -> PushRecord:
    """A push that could not run at all (unreachable replica, wrong key, ...)."""
    return PushRecord(replica=replica, at=clock.now_iso(), ok=False, error=error, url=url)


@contextlib.contextmanager
def replica_lock(backup_dir: Path, replica: str, timeout_s: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """One push or prune of ``replica`` at a time from this host: a prune must never remove an object a
    running push has counted as already there. (Another host pushing to the same location is not seen.)"""
    path = backup_dir / STATUS_DIR / f"{replica}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        if not flock_within(fd, fcntl.LOCK_EX, timeout_s):
            raise ReplicaError(
                f"another push or prune of replica {replica!r} from this host is still running after "
                f"{timeout_s:.0f} s ({path}); let it finish, then run `recovery replica push --replica {replica}`"
            )
        yield
    finally:
        os.close(fd)  # closing releases the flock
