"""The samples of the backup, verify, prune and push files (drills: :mod:`.drills`).

Backups are recomputed from the backup directory and pushes from the push records
(``<backup dir>/.replicas/<name>.json``); what only the run itself knows (whether the last
``backup create`` succeeded, what the last verify found) comes from the :class:`Outcome`. The backup
and verify files can also be written for a run of another kind (the file was missing: see
``textfile._missing``); they then hold what the durable sources say and nothing about a run.
"""

from __future__ import annotations

from dataclasses import dataclass

from recovery_lib.alerts.events import Outcome
from recovery_lib.backup.listing import UnreadableBackup, read_backups
from recovery_lib.backup.model import CATEGORIES, PRE_RECOVERY_TAG, BackupMetadata, BackupStatus
from recovery_lib.backup.retention import PrunePlan
from recovery_lib.backup.verify import VerifyReport
from recovery_lib.clock import parse
from recovery_lib.metrics.families import BACKUP, READ_DATA, STRUCTURE, VERIFY, VERIFY_MODES, Sample
from recovery_lib.replica.prune import RemotePrunePlan
from recovery_lib.replica.push import PushReport
from recovery_lib.replica.status import PushRecord, read_push_record
from recovery_lib.site.calendar import longest_gap
from recovery_lib.site.config import Site

LOCAL = "local"  # the prune target of the site's own backup directory


def _flag(value: bool) -> float:
    return 1.0 if value else 0.0


@dataclass(frozen=True)
class VerifyMode:
    """Put in a verify outcome's results by ``backup verify``: which check it ran, also when it verified
    no backup (none found, all unreadable, a bad id), so its failure is put on the right mode."""

    read_data: bool


def backup_samples(site: Site, outcome: Outcome) -> list[Sample]:
    """The backup file: the newest SUCCESS backup per category and per type and the PARTIAL ones, read
    from the backup directory; the last run's end and verdict (only from a ``backup create`` outcome:
    another kind's run knows nothing of it); the limits the alert rules compare with."""
    found, unreadable = read_backups(site.backup_dir)
    # A pre-recovery snapshot is a copy of a broken state, never a recovery point: it must not look fresh.
    good = [m for m in found if m.status is BackupStatus.SUCCESS and PRE_RECOVERY_TAG not in m.tags]
    samples = []
    for category in CATEGORIES:
        newest = next((m for m in good if m.includes(category)), None)
        taken = newest.created.timestamp() if newest else 0.0
        samples.append(Sample("recovery_backup_last_success_timestamp_seconds", taken, {"category": category}))
    by_type: dict[str, BackupMetadata] = {}
    for metadata in good:  # newest first: the first of each type wins
        by_type.setdefault(metadata.backup_type.value, metadata)
    for backup_type, metadata in sorted(by_type.items()):
        labels = {"type": backup_type}
        samples.append(Sample("recovery_backup_last_size_bytes", float(metadata.size_bytes), labels))
        samples.append(Sample("recovery_backup_last_files", float(metadata.files_count), labels))
        samples.append(Sample("recovery_backup_last_duration_seconds", float(metadata.duration_s), labels))
    if outcome.kind == BACKUP:
        made = [r for r in outcome.results if isinstance(r, BackupMetadata)]
        # PARTIAL is a backup that is kept but never restored from: the run did not do its job.
        succeeded = outcome.ok and all(m.status is BackupStatus.SUCCESS for m in made)
        samples.append(Sample("recovery_backup_last_run_timestamp_seconds", outcome.finished.timestamp()))
        samples.append(Sample("recovery_backup_last_run_success", _flag(succeeded)))
    samples.append(Sample("recovery_backup_unreadable_backups", float(len(unreadable))))
    # verify says "OK" of a PARTIAL backup (its files are intact; some were never captured): count them.
    partial = sum(1 for m in found if m.status is BackupStatus.PARTIAL)
    samples.append(Sample("recovery_backup_partial_backups", float(partial)))
    samples.append(Sample("recovery_backup_max_age_seconds", site.max_backup_age_hours * 3600))
    gap = longest_gap(site.backup_schedule)
    if gap is not None:
        samples.append(Sample("recovery_backup_schedule_interval_seconds", gap.total_seconds()))
        samples.append(Sample("recovery_backup_schedule_grace_seconds", site.ops.backup_grace.total_seconds()))
    return samples


def verified_modes(outcome: Outcome) -> tuple[str, ...]:
    """The modes a verify run checked: a ``--read-data`` run checks the structure too, so both."""
    hashed = any(isinstance(r, (VerifyReport, VerifyMode)) and r.read_data for r in outcome.results)
    return (STRUCTURE, READ_DATA) if hashed else (STRUCTURE,)


def verify_samples(outcome: Outcome, previous: list[Sample]) -> list[Sample]:
    """The verify file, one set per mode: the modes this run checked from the run (when it ended, whether
    every backup it checked was intact); the other mode as the file had it, else never (timestamp 0, no
    verdict). A structure-only run never overwrites what a read-data run found in the contents.

    ``outcome`` of another kind (the file was missing): every mode as the file had it, else never.
    """
    ran = verified_modes(outcome) if outcome.kind == VERIFY else ()
    reports = [r for r in outcome.results if isinstance(r, VerifyReport)]
    unreadable = [r for r in outcome.results if isinstance(r, UnreadableBackup)]
    intact = sum(1 for r in reports if r.ok)
    failed = len(reports) - intact + len(unreadable)
    samples = []
    for mode in VERIFY_MODES:
        labels = {"mode": mode}
        if mode not in ran:
            kept = [s for s in previous if s.labels == labels]
            samples += kept or [Sample("recovery_verify_last_timestamp_seconds", 0.0, labels)]
            continue
        samples += [
            Sample("recovery_verify_last_timestamp_seconds", outcome.finished.timestamp(), labels),
            Sample("recovery_verify_last_success", _flag(outcome.ok and failed == 0), labels),
            Sample("recovery_verify_last_backups_verified", float(intact), labels),
            Sample("recovery_verify_last_backups_failed", float(failed), labels),
            Sample("recovery_verify_last_duration_seconds", outcome.seconds, labels),
        ]
    return samples


def _plans(outcome: Outcome) -> list[PrunePlan | RemotePrunePlan]:
    return [r for r in outcome.results if isinstance(r, (PrunePlan, RemotePrunePlan))]


def is_dry_run(site: Site, outcome: Outcome) -> bool:
    """Whether a prune outcome only showed its plan: it meant to remove backups and removed none of
    them (they are all still listed). A plan that removes nothing is the same either way: not a dry run."""
    for plan in _plans(outcome):
        if isinstance(plan, RemotePrunePlan):
            wanted = [d for d in plan.plan.remove if d.backup.backup_id not in plan.locked]
            if wanted and not plan.removed:
                return True
            continue
        if plan.remove:
            listed = {m.backup_id for m in read_backups(site.backup_dir)[0]}
            if all(d.backup.backup_id in listed for d in plan.remove):
                return True
    return False


def prune_samples(outcome: Outcome, previous: list[Sample]) -> list[Sample]:
    """The prune file: this run's target (``local`` or the replica) from the run, every other target as
    the file had it (each target is pruned by its own command)."""
    plans = _plans(outcome)
    target = outcome.subject or LOCAL
    if plans:
        target = plans[0].replica if isinstance(plans[0], RemotePrunePlan) else LOCAL
    samples = [s for s in previous if s.labels.get("target") != target]
    labels = {"target": target}
    samples.append(Sample("recovery_prune_last_timestamp_seconds", outcome.finished.timestamp(), labels))
    samples.append(Sample("recovery_prune_last_success", _flag(outcome.ok), labels))
    for plan in plans[:1]:
        if isinstance(plan, RemotePrunePlan):
            removed, kept = len(plan.removed), len(plan.plan.decisions) - len(plan.removed)
        else:
            removed, kept = len(plan.remove), len(plan.keep)
        samples.append(Sample("recovery_prune_last_removed_backups", float(removed), labels))
        samples.append(Sample("recovery_prune_last_kept_backups", float(kept), labels))
    return samples


def pushes_in(outcome: Outcome) -> bool:
    """Whether the run pushed to a replica (``backup create`` pushes to the after-backup ones)."""
    return any(isinstance(r, (PushReport, PushRecord)) for r in outcome.results)


def push_samples(site: Site, previous: list[Sample]) -> list[Sample]:
    """The push file, one set per configured replica, from the push records.

    A record holds only the newest push: when that one failed, the last success is the one this file
    had before (0 when none is known), so a failing replica keeps getting older until it alerts.
    """
    known = {
        s.labels.get("replica"): s.value
        for s in previous
        if s.name == "recovery_replica_last_success_timestamp_seconds"
    }
    samples = []
    for spec in site.replicas:
        labels = {"replica": spec.name}
        max_age = spec.max_age_hours if spec.max_age_hours is not None else site.max_backup_age_hours
        samples.append(Sample("recovery_replica_max_age_seconds", max_age * 3600, labels))
        # A record of another url says nothing about this replica (read_push_record gives None for it).
        record = read_push_record(site.backup_dir, spec.name, spec.url)
        at = parse(record.at) if record is not None else None
        last_success = known.get(spec.name, 0.0)
        if record is not None and at is not None:
            samples.append(Sample("recovery_replica_last_push_timestamp_seconds", at.timestamp(), labels))
            samples.append(Sample("recovery_replica_last_push_success", _flag(record.ok), labels))
            samples.append(Sample("recovery_replica_last_push_uploaded_bytes", float(record.bytes_uploaded), labels))
            samples.append(Sample("recovery_replica_last_push_duration_seconds", float(record.duration_s), labels))
            if record.ok:
                last_success = at.timestamp()
        samples.append(Sample("recovery_replica_last_success_timestamp_seconds", last_success, labels))
    return samples


__all__ = [
    "LOCAL",
    "VerifyMode",
    "backup_samples",
    "is_dry_run",
    "prune_samples",
    "push_samples",
    "pushes_in",
    "verified_modes",
    "verify_samples",
]
