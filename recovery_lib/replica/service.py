"""Replicas of one site by name: open them, push after a backup, choose what "latest" is on one.

This is what the manager, the CLI and the health check call; the stages live in ``push``, ``pull``,
``check`` and ``prune``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from recovery_lib import clock
from recovery_lib.backup.listing import read_backups
from recovery_lib.backup.model import BackupMetadata, BackupStatus
from recovery_lib.backup.retention import RetentionPolicy
from recovery_lib.errors import InvalidArgumentError, ReplicaDamaged, ReplicaError, ReplicaUnreachable
from recovery_lib.replica.crypto import IDENTITY_ENV, Opener
from recovery_lib.replica.layout import BackupIndex
from recovery_lib.replica.open import open_transport
from recovery_lib.replica.prune import RemotePrunePlan, prune_remote
from recovery_lib.replica.pull import Progress, PullReport, pull_backup
from recovery_lib.replica.push import PushReport, push_backups
from recovery_lib.replica.remote import Replica
from recovery_lib.replica.status import PushRecord, failed_record, read_push_record, replica_lock, write_push_record
from recovery_lib.site.config import Site
from recovery_lib.site.replicas import ReplicaSpec

log = logging.getLogger(__name__)


def replica_spec(site: Site, name: str | None) -> ReplicaSpec:
    """The ``[[replicas]]`` entry called ``name`` (None: the only one); a clear error otherwise."""
    names = [spec.name for spec in site.replicas]
    if not names:
        raise InvalidArgumentError(
            f"{site.config_source or site.root / 'recovery.toml'} configures no replica: add a [[replicas]] table "
            "(README: Replicas)"
        )
    if name is None:
        if len(names) > 1:
            raise InvalidArgumentError(
                f"this site has {len(names)} replicas: choose one with --replica ({', '.join(names)})"
            )
        return site.replicas[0]
    for spec in site.replicas:
        if spec.name == name:
            return spec
    raise InvalidArgumentError(f"no replica {name!r} in recovery.toml; configured: {', '.join(names)}")


@contextmanager
def opened(spec: ReplicaSpec) -> Iterator[Replica]:
    """A :class:`Replica` on its store, closed afterwards."""
    replica = Replica(spec, open_transport(spec))
    try:
        yield replica
    finally:
        replica.close()


def local_success(backup_dir: Path) -> list[BackupMetadata]:
    """Local SUCCESS backups, oldest first (the order to push in: later ones reuse earlier objects)."""
    found, _ = read_backups(backup_dir)
    return [m for m in reversed(found) if m.status is BackupStatus.SUCCESS]


def resolve_push_targets(replica: Replica, backup_dir: Path, target: str) -> list[str]:
    """``all``: every local SUCCESS backup; ``latest``: the newest, plus every one newer than the newest
    already on the replica (catching up after failed pushes); else the id itself."""
    local = local_success(backup_dir)
    if target == "all":
        return [m.backup_id for m in local]
    if target != "latest":
        return [target]
    if not local:
        raise ReplicaError(f"no SUCCESS backup in {backup_dir} to push; take one with `recovery backup create`")
    remote = set(replica.committed_ids())
    there = [m.created for m in local if m.backup_id in remote]
    newest_there = max(there) if there else None
    catch_up = [m.backup_id for m in local if m.backup_id not in remote and newest_there and m.created > newest_there]
    return catch_up or [local[-1].backup_id]


def vanished(spec: ReplicaSpec, backup_dir: Path) -> str | None:
    """Why a ``file://`` replica must not be written: its directory is gone although this host pushed to it
    (an unmounted disk: creating it again would put the next backup on the host's own disk)."""
    if spec.scheme != "file" or Path(spec.location).is_dir():
        return None
    record = read_push_record(backup_dir, spec.name, spec.url)
    if record is None or not (record.ok or record.pushed):
        return None
    return (
        f"replica {spec.name!r}: {spec.location} does not exist, but this host pushed to it ({record.at}): is the "
        "disk mounted? Mount it and run the command again; nothing was written (the directory is not created "
        "again, or the backups would land on this host's own disk)"
    )


def push(spec: ReplicaSpec, backup_dir: Path, target: str = "latest") -> PushReport:
    """Push ``target`` (an id, ``latest`` or ``all``) to one replica and record the outcome."""
    try:
        if gone := vanished(spec, backup_dir):
            raise ReplicaUnreachable(gone)
        with replica_lock(backup_dir, spec.name), opened(spec) as replica:
            report = push_backups(replica, backup_dir, resolve_push_targets(replica, backup_dir, target))
    except ReplicaError as exc:
        write_push_record(backup_dir, failed_record(spec.name, str(exc), spec.url))
        raise
    write_push_record(
        backup_dir,
        PushRecord(
            replica=spec.name,
            at=clock.now_iso(),
            ok=report.ok,
            pushed=report.pushed,
            failed=report.failed,
            bytes_uploaded=report.bytes_uploaded,
            duration_s=report.duration_s,
            url=spec.url,
        ),
    )
    return report


def prune(spec: ReplicaSpec, backup_dir: Path, policy: RetentionPolicy, dry_run: bool = True) -> RemotePrunePlan:
    """Apply ``policy`` to one replica (never while a push to it runs from this host)."""
    with replica_lock(backup_dir, spec.name), opened(spec) as replica:
        return prune_remote(replica, policy, dry_run)


def push_after_backup(site: Site, backup_dir: Path) -> list[PushRecord | PushReport]:
    """Push to every replica with ``push = "after-backup"``. Never raises for a replica's failure: the
    local backup is done whatever happens off the host; failures are recorded (health shows them)."""
    outcomes: list[PushRecord | PushReport] = []
    for spec in site.replicas:
        if not spec.pushes_after_backup:
            continue
        try:
            outcomes.append(push(spec, backup_dir, "latest"))
        except ReplicaError as exc:
            log.error("push to replica %s after the backup failed: %s", spec.name, exc)
            outcomes.append(failed_record(spec.name, str(exc)))
        except Exception as exc:  # noqa: BLE001 - a bug or an unwrapped OSError must not fail a good backup
            log.exception("push to replica %s after the backup failed unexpectedly", spec.name)
            record = failed_record(
                spec.name, f"{type(exc).__name__}: {exc} (a bug: the log has the traceback)", spec.url
            )
            write_push_record(backup_dir, record)
            outcomes.append(record)
    return outcomes


def restore_candidates(replica: Replica, needs: tuple[str, ...] = ()) -> list[BackupIndex]:
    """Committed backups a restore of ``needs`` may use, newest first: they hold every category asked
    for, and are not pre-recovery snapshots of a broken state."""
    indexes, problems = replica.backups()
    for problem in problems:
        log.warning("%s", problem)
    return [index for index in indexes if not index.pre_recovery and index.holds(needs)]


def pull(
    replica: Replica,
    backup_dir: Path,
    backup_id: str,
    opener: Opener,
    notes: list[str],
    progress: Progress | None = None,
    needs: tuple[str, ...] = (),
) -> PullReport:
    """Pull ``backup_id``; ``latest`` is the newest non-pre-recovery backup holding ``needs`` that pulls
    and verifies, passing over damaged ones (each named in ``notes``)."""
    opener.require()
    if backup_id != "latest":
        return pull_backup(replica, backup_dir, backup_id, opener, progress)
    candidates = restore_candidates(replica, needs)
    if not candidates:
        what = f" holding {', '.join(needs)}" if needs else ""
        raise ReplicaError(
            f"replica {replica.name!r} holds no backup{what} to restore from; `recovery replica list` shows them"
        )
    for index in candidates:
        try:
            return pull_backup(replica, backup_dir, index.backup_id, opener, progress)
        except ReplicaDamaged as exc:
            note = f"passed over backup {index.backup_id} on replica {replica.name}: {exc}"
            notes.append(note)
            log.warning("%s", note)
    raise ReplicaDamaged(
        f"no backup on replica {replica.name!r} pulls and verifies ({len(candidates)} tried; see the notes). "
        "If every note says 'does not decrypt', the identity is not this replica's key (check --identity / "
        f"${IDENTITY_ENV}); otherwise try another replica"
    )
