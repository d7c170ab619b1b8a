"""The ``replicas`` health check: is there a fresh copy of the backups off this host?

For each ``[[replicas]]`` entry: the newest committed backup on the replica (not a pre-recovery
snapshot) and the age of the stalest category's newest backup against the replica's ``max_age_hours``
(default: the site's ``[backups] max_age_hours``), the last push this host recorded (a failed one is a
fault, shown with its error), and the pushes left unfinished. Only ``index.json`` documents are read
(plain, no identity needed), newest first, until every category is covered: a few requests per
replica, each bounded by the transport's timeouts. Object contents are not read: that is
``recovery replica verify --read-data``.

Triage and notebooks branch on ``details["replicas"]`` (one :class:`ReplicaHealth` each, as a dict),
never on the message.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from recovery_lib import clock
from recovery_lib.backup.listing import read_backups
from recovery_lib.backup.model import CATEGORIES, PRE_RECOVERY_TAG, BackupStatus
from recovery_lib.checks.registry import HealthResult
from recovery_lib.errors import ReplicaDamaged, ReplicaError, ReplicaUnreachable
from recovery_lib.replica.layout import OBJECTS_PREFIX, BackupIndex, object_key
from recovery_lib.replica.remote import Replica
from recovery_lib.replica.service import opened, vanished
from recovery_lib.replica.status import PushRecord, read_push_record
from recovery_lib.site.config import Site
from recovery_lib.site.replicas import ReplicaSpec

log = logging.getLogger(__name__)

NAME = "replicas"
NO_REPLICA = "no replica configured (backups live only on this host)"
MAX_INDEX_READS = 50  # bounds the requests per replica when one category is backed up far less often


@dataclass
class ReplicaHealth:
    """One replica's facts, for triage and notebooks (``ok`` is this replica's verdict)."""

    name: str
    url: str
    push: str  # "after-backup" | "manual"
    max_age_hours: float
    encrypted: bool = False  # reading its backups back (pull, restore, verify --read-data) needs the age identity
    ok: bool = False
    reachable: bool = False  # the store answered and its config (if any) is one this tool can use
    error_kind: str | None = None  # "unreachable" | "damaged" | "error": why the replica could not be read
    error: str | None = None  # that reason, in full
    backups: int = 0  # committed backups on the replica, pre-recovery snapshots included
    newest: str | None = None  # newest committed backup that is not a pre-recovery snapshot
    newest_created_at: str | None = None
    age_hours: float | None = None  # of the stalest category's newest backup: what is judged
    stalest: str | None = None  # that backup (``newest`` unless one category is backed up less often)
    stalest_category: str | None = None
    missing_categories: list[str] = field(default_factory=list)  # no backup of these among those read
    fresh: bool = False  # every category has a backup younger than max_age_hours
    incomplete: list[str] = field(default_factory=list)  # unfinished pushes (interrupted, or running now)
    unreadable: list[str] = field(default_factory=list)  # committed backups whose index.json is damaged
    damaged: list[str] = field(default_factory=list)  # newest backups whose objects are missing or resized
    last_push: dict[str, Any] | None = None  # this host's record of the last push (status.PushRecord)
    push_failed: bool = False
    unpushed: str | None = None  # the newest local backup, when no push to this replica was tried since
    problems: list[str] = field(default_factory=list)  # every reason this replica is unhealthy, for people
    duration_s: float = 0.0


def check_replicas(site: Site) -> HealthResult:
    """Each configured replica holds a fresh backup of every category, is reachable, and the last push
    to it from this host did not fail. A site without replicas is healthy, flagged ``configured`` False."""
    if not site.replicas:
        return HealthResult(NAME, True, NO_REPLICA, {"configured": False, "replicas": [], "fresh": []})
    found = [replica_health(site, spec) for spec in site.replicas]
    failing = [r for r in found if not r.ok]
    # The faults first: a person reads the start of the line.
    parts = [_line(r) for r in failing] + [_line(r) for r in found if r.ok]
    message = "; ".join(parts) + (" (Procedure D)" if failing else "")
    details = {
        "configured": True,
        "replicas": [asdict(r) for r in found],
        "failing": [r.name for r in failing],
        "fresh": [r.name for r in found if r.fresh],
    }
    return HealthResult(NAME, not failing, message, details)


def replica_health(site: Site, spec: ReplicaSpec) -> ReplicaHealth:
    """The facts of one replica; never raises for the replica's own failures (they are findings)."""
    started = time.perf_counter()
    max_age = spec.max_age_hours if spec.max_age_hours is not None else site.max_backup_age_hours
    health = ReplicaHealth(spec.name, spec.url, spec.push, max_age, spec.encrypted)
    record = read_push_record(site.backup_dir, spec.name, spec.url)
    if record is not None:
        health.last_push = asdict(record)
        health.push_failed = not record.ok
    try:
        if gone := vanished(spec, site.backup_dir):
            raise ReplicaUnreachable(gone)
        with opened(spec) as replica:
            _read_replica(replica, health)
            health.unpushed = _unpushed(site, replica, record)
    except ReplicaError as exc:
        health.reachable = False
        health.error_kind = _kind(exc)
        health.error = str(exc)
    except Exception as exc:  # one replica's unexpected failure must not hide the others' state
        log.warning("replica %s: health check failed: %s", spec.name, exc, exc_info=True)
        health.error_kind = "error"
        health.error = f"{type(exc).__name__}: {exc}"
    health.problems = _problems(health, record)
    health.ok = not health.problems
    health.duration_s = round(time.perf_counter() - started, 4)
    return health


def _unpushed(site: Site, replica: Replica, record: PushRecord | None) -> str | None:
    """The newest local SUCCESS backup (not a pre-recovery snapshot) if it is not on the replica and no
    push was tried after it was taken: a push that was killed, or never ran, leaves no failure behind."""
    found, _ = read_backups(site.backup_dir)
    local = next((m for m in found if m.status is BackupStatus.SUCCESS and PRE_RECOVERY_TAG not in m.tags), None)
    if local is None or local.backup_id in replica.committed_ids():
        return None
    tried = clock.parse(record.at) if record is not None else None
    return local.backup_id if tried is None or tried < local.created else None


def _kind(exc: ReplicaError) -> str:
    if isinstance(exc, ReplicaUnreachable):
        return "unreachable"
    if isinstance(exc, ReplicaDamaged):
        return "damaged"
    return "error"


def _read_replica(replica: Replica, health: ReplicaHealth) -> None:
    """Fill in what the replica holds: its newest backups' indexes, newest first, until every category is seen."""
    config = replica.config()  # raises when it is not a replica this site may use (format, encryption)
    health.reachable = True
    if config is None:
        return  # never pushed to (or the url points elsewhere): no backups
    committed = replica.committed_ids()
    health.backups = len(committed)
    health.incomplete = replica.incomplete_ids()
    ids = committed[:MAX_INDEX_READS]
    stored: dict[str, int] | None = None
    while True:  # a recovery point whose objects are not all there, whole, does not count: read on past it
        usable = _newest_indexes(replica, ids, health)
        if stored is None:
            stored = {o.key: o.size for o in replica.transport.list(OBJECTS_PREFIX)}  # one listing
        damaged = [i.backup_id for i in usable if _lacks(i, stored)]
        if not damaged:
            break
        health.damaged.extend(damaged)
        ids = [backup_id for backup_id in ids if backup_id not in damaged]
    if usable:
        health.newest, health.newest_created_at = usable[0].backup_id, usable[0].created_at
    newest_of: dict[str, BackupIndex] = {}
    for index in usable:
        for category in index.categories:
            newest_of.setdefault(category, index)
    health.missing_categories = [c for c in CATEGORIES if c not in newest_of]
    if newest_of:
        now = clock.now()
        category, stalest = min(newest_of.items(), key=lambda item: item[1].created)
        health.stalest, health.stalest_category = stalest.backup_id, category
        health.age_hours = round(max(0.0, (now - stalest.created).total_seconds() / 3600), 2)
    health.fresh = (
        not health.missing_categories and health.age_hours is not None and health.age_hours <= health.max_age_hours
    )


def _lacks(index: BackupIndex, stored: dict[str, int]) -> bool:
    """Whether an object the backup needs is missing from the listing, or of another size than pushed."""
    return any(stored.get(object_key(name)) != entry.size for name, entry in index.objects.items())


def _newest_indexes(replica: Replica, ids: list[str], health: ReplicaHealth) -> list[BackupIndex]:
    """The indexes of the newest recovery points (not pre-recovery), newest first by ``created_at``: read
    in id order until every category is covered, then the rest of that second (ids of one second may
    sort out of time order). Damaged ones are named in ``health.unreadable``."""
    read: list[BackupIndex] = []
    covered: set[str] = set()
    for position, backup_id in enumerate(ids):
        if len(covered) == len(CATEGORIES) and _second(backup_id) != _second(ids[position - 1]):
            break
        try:
            index = replica.index(backup_id)
        except ReplicaDamaged as exc:
            health.unreadable.append(backup_id)
            log.warning("%s", exc)
            continue
        if index.pre_recovery:
            continue  # a snapshot of a broken state: evidence, not a recovery point
        read.append(index)
        covered.update(index.categories)
    return sorted(read, key=lambda i: (i.created, i.backup_id), reverse=True)


def _second(backup_id: str) -> str:
    """The UTC second a backup id starts with (``20261125T223600Z``)."""
    return backup_id.split("-", 1)[0]


def _problems(health: ReplicaHealth, record: PushRecord | None) -> list[str]:
    """Why this replica is unhealthy, each saying what to do; empty when it is healthy."""
    push = f"`recovery replica push --replica {health.name}`"
    problems: list[str] = []
    if record is not None and not record.ok:
        problems.append(record.summary())
    if health.error is not None:
        what = "unreachable" if health.error_kind == "unreachable" else "unusable"
        problems.append(f"{what}: {health.error}")
        return problems  # nothing else is known about it
    if health.newest is None:
        problems.append(f"holds no backup: push one with {push}")
    elif health.missing_categories:
        among = f" among its newest {MAX_INDEX_READS}" if health.backups > MAX_INDEX_READS else ""
        problems.append(
            f"holds no backup of {', '.join(health.missing_categories)}{among}: take a full backup and push it ({push})"
        )
    elif not health.fresh:
        manual = "" if health.push == "after-backup" else f", or set max_age_hours for it (push = {health.push!r})"
        problems.append(
            f"newest backup{_of(health)} {health.stalest} is {health.age_hours:.1f} h old "
            f"(max {health.max_age_hours:g} h): push with {push}{manual}"
        )
    if health.unpushed and health.newest is not None:  # an empty replica already says "push one"
        problems.append(
            f"the newest local backup {health.unpushed} is not on it and no push was tried since it was taken "
            f"(killed, or never run): push with {push}"
        )
    if health.damaged:
        problems.append(
            f"{len(health.damaged)} of its newest backup(s) lack objects or hold resized ones "
            f"({', '.join(health.damaged[:3])}): they cannot be restored from; run "
            f"`recovery replica verify all --replica {health.name}` and push a new backup"
        )
    if health.unreadable:
        problems.append(
            f"{len(health.unreadable)} backup(s) with a damaged index.json ({', '.join(health.unreadable[:3])}): "
            f"run `recovery replica verify all --replica {health.name}`"
        )
    return problems


def _line(health: ReplicaHealth) -> str:
    """One replica, for a person."""
    if health.problems:
        return f"replica {health.name}: " + "; ".join(health.problems)
    unfinished = f"; {len(health.incomplete)} unfinished push(es)" if health.incomplete else ""
    pushed = ""
    if health.last_push is not None:
        ago = clock.seconds_between(clock.now(), health.last_push["at"])
        pushed = f"; last push ok {clock.human_duration(ago)} ago"
    age = f"{health.age_hours:.1f}"
    return f"replica {health.name}: newest backup{_of(health)} {health.stalest} is {age} h old{pushed}{unfinished}"


def _of(health: ReplicaHealth) -> str:
    """`` (newest of data)`` when the judged backup is not the newest one, as the backups check says it."""
    return "" if health.stalest == health.newest else f" (newest of {health.stalest_category})"
