"""Retention on a replica: the same rules as ``backup prune``, and Object Lock respected.

A backup is removed commit marker first (``metadata.json``), so it disappears for readers in one step;
then its other documents, then the objects no other backup on the replica needs. A backup under
Object Lock is kept, with the date it may go. Objects of interrupted pushes are never removed here:
the next push completes them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from recovery_lib import clock
from recovery_lib.backup.model import BackupMetadata, BackupStatus, BackupType
from recovery_lib.backup.retention import PrunePlan, RetentionPolicy, plan_prune
from recovery_lib.errors import ReplicaDamaged, ReplicaLocked
from recovery_lib.replica.layout import DOCUMENTS, OBJECTS_PREFIX, BackupIndex, backup_key, object_key
from recovery_lib.replica.remote import Replica

log = logging.getLogger(__name__)


@dataclass
class RemotePrunePlan:
    """The retention plan on a replica, and what applying it did."""

    replica: str
    plan: PrunePlan
    locked: dict[str, str] = field(default_factory=dict)  # backup id -> why it is kept anyway
    removed: list[str] = field(default_factory=list)
    objects_removed: int = 0
    unreadable: list[str] = field(default_factory=list)

    def summary(self, dry_run: bool) -> str:
        """A few lines for a person: every decision with its reason."""
        lines = [f"replica {self.replica}:"]
        for decision in self.plan.keep:
            lines.append(f"  keep   {decision.backup.backup_id}  ({', '.join(decision.reasons)})")
        for decision in self.plan.remove:
            backup_id = decision.backup.backup_id
            if backup_id in self.locked:
                lines.append(f"  LOCKED {backup_id}  (kept: {self.locked[backup_id]})")
            else:
                verb = "would remove" if dry_run else "removed" if backup_id in self.removed else "remove"
                lines.append(f"  {verb} {backup_id}")
        lines.extend(f"  unreadable: {problem}" for problem in self.unreadable)
        if not dry_run:
            lines.append(f"  {len(self.removed)} backup(s) and {self.objects_removed} object(s) removed")
        return "\n".join(lines)


def _as_metadata(index: BackupIndex) -> BackupMetadata:
    """What the retention rules read, from the plain index (no private key needed)."""
    return BackupMetadata(
        backup_id=index.backup_id,
        backup_type=BackupType(index.backup_type),
        created_at=index.created_at,
        status=BackupStatus.SUCCESS,
        tags=list(index.tags),
    )


def _sound(index: BackupIndex, present: set[str]) -> bool:
    """Whether every object ``index`` needs is on the replica (its structure, as verify checks it)."""
    return all(object_key(name) in present for name in index.objects)


def prune_remote(replica: Replica, policy: RetentionPolicy, dry_run: bool = True) -> RemotePrunePlan:
    """Plan (and unless ``dry_run``, apply) ``policy`` on ``replica``.

    Objects are removed only when every backup that stays is readable and whole: which objects a
    damaged backup needs is unknown, so none is removed then (its documents may still go)."""
    indexes, unreadable = replica.backups()
    by_id = {index.backup_id: index for index in indexes}
    present = {o.key for o in replica.transport.list(OBJECTS_PREFIX)}
    # The newest backup whose objects are all there is never removed (retention's "newest verified").
    newest = next((index.backup_id for index in indexes if _sound(index, present)), None)
    plan = plan_prune([_as_metadata(index) for index in indexes], policy, newest)
    result = RemotePrunePlan(replica.name, plan, unreadable=unreadable)
    now = clock.now()
    for decision in plan.remove:
        until = clock.parse(by_id[decision.backup.backup_id].retain_until)
        if until is not None and until > now:
            result.locked[decision.backup.backup_id] = f"Object Lock until {clock.iso(until)}"
    if dry_run:
        return result
    doomed = [d.backup.backup_id for d in plan.remove if d.backup.backup_id not in result.locked]
    # Objects still needed: by every backup kept, locked, unreadable or half-pushed (never guess).
    keep_ids = (set(replica.committed_ids()) | set(replica.incomplete_ids())) - set(doomed)
    needed: set[str] = set()
    objects_removable = not unreadable
    for backup_id in sorted(keep_ids):
        index = by_id.get(backup_id)
        if index is None:
            try:
                index = replica.index(backup_id)
            except ReplicaDamaged as exc:  # which objects it needs is unknown: remove none of them
                log.warning("replica %s: %s; no object is removed this time", replica.name, exc)
                result.unreadable.append(str(exc))
                objects_removable = False
                continue
        if backup_id in by_id and not _sound(index, present):
            result.unreadable.append(f"backup {backup_id} is kept but lacks objects: no object is removed this time")
            objects_removable = False
        needed.update(index.objects)
    encrypted = replica.encrypted_docs()
    for backup_id in doomed:
        try:
            for name in reversed(DOCUMENTS):  # metadata.json first: the backup is gone for readers at once
                replica.transport.delete(backup_key(backup_id, name, encrypted))
        except ReplicaLocked as exc:
            result.locked[backup_id] = str(exc)
            continue
        result.removed.append(backup_id)
        log.info("replica %s: removed backup %s", replica.name, backup_id)
        if not objects_removable:
            continue
        for name in sorted(set(by_id[backup_id].objects) - needed):
            key = object_key(name)
            if key not in present:
                continue
            try:
                replica.transport.delete(key)
                present.discard(key)
                result.objects_removed += 1
            except ReplicaLocked:
                needed.add(name)  # still locked: it goes in a later prune
    replica.refresh()
    return result
