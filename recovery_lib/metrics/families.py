"""Every metric this project writes: its name, its labels, what it means, and the file it is in.

One table, read by the writer (a sample of a name not in it is a bug, refused) and by the test that
compares it with ``docs/metrics.md`` and with the alert rules in ``docs/alerts.yml``. All are gauges in
base units (seconds, bytes, Unix timestamps in seconds); every one carries the ``site`` label. A
timestamp of ``0`` means "never": ``time() - 0`` is large, so an alert on age fires for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# The file each family is written to: ``recovery_<site>_<file>.prom`` (one per kind of run).
BACKUP, VERIFY, PRUNE, PUSH, DRILL = "backup", "verify", "prune", "push", "drill"
FILES = (BACKUP, VERIFY, PRUNE, PUSH, DRILL)
# The ``mode`` label of the verify families: ``backup verify`` checks the structure (sizes, manifest,
# metadata); ``--read-data`` also hashes every file.
STRUCTURE, READ_DATA = "structure", "read_data"
VERIFY_MODES = (STRUCTURE, READ_DATA)


@dataclass(frozen=True)
class Family:
    """One metric: a gauge with these labels (``site`` first, always)."""

    name: str
    file: str  # one of FILES
    labels: tuple[str, ...]
    help: str


@dataclass(frozen=True)
class Sample:
    """One value of one family: ``labels`` names every label of the family except ``site``."""

    name: str
    value: float
    labels: dict[str, str] = field(default_factory=dict)


def _family(name: str, file: str, labels: tuple[str, ...], text: str) -> Family:
    return Family(name, file, ("site", *labels), text)


FAMILIES: tuple[Family, ...] = (
    # --- backup create (recomputed from the backup directory, plus the run that just ended) -----------
    _family(
        "recovery_backup_last_success_timestamp_seconds",
        BACKUP,
        ("category",),
        "When the newest SUCCESS backup holding the category was taken (pre-recovery snapshots excluded); 0: never.",
    ),
    _family(
        "recovery_backup_last_size_bytes",
        BACKUP,
        ("type",),
        "Size of the files of the newest SUCCESS backup of this type (full, config, state, data, mixed).",
    ),
    _family("recovery_backup_last_files", BACKUP, ("type",), "Files in the newest SUCCESS backup of this type."),
    _family(
        "recovery_backup_last_duration_seconds",
        BACKUP,
        ("type",),
        "How long taking the newest SUCCESS backup of this type took.",
    ),
    _family("recovery_backup_last_run_timestamp_seconds", BACKUP, (), "When the last `backup create` run ended."),
    _family(
        "recovery_backup_last_run_success",
        BACKUP,
        (),
        "1 when the last `backup create` run made a SUCCESS backup; 0 when it failed or was PARTIAL.",
    ),
    _family(
        "recovery_backup_unreadable_backups",
        BACKUP,
        (),
        "Directories in the backup directory whose metadata.json cannot be read (never restored from).",
    ),
    _family(
        "recovery_backup_partial_backups",
        BACKUP,
        (),
        "PARTIAL backups in the backup directory: kept as evidence, never restored from (verify says OK of them).",
    ),
    _family("recovery_backup_max_age_seconds", BACKUP, (), "[backups] max_age_hours: the oldest a backup may be."),
    _family(
        "recovery_backup_schedule_interval_seconds",
        BACKUP,
        (),
        "The longest gap between two runs of [backups] schedule (only when a schedule is declared).",
    ),
    _family(
        "recovery_backup_schedule_grace_seconds",
        BACKUP,
        (),
        "[backups] grace_minutes: how late a scheduled backup may be (only when a schedule is declared).",
    ),
    # --- backup verify, per mode: "structure" or "read_data" (from the run; a read-data run sets both) --
    _family(
        "recovery_verify_last_timestamp_seconds",
        VERIFY,
        ("mode",),
        "When the last `backup verify` of the mode ended (a --read-data run counts for both); 0: never.",
    ),
    _family(
        "recovery_verify_last_success",
        VERIFY,
        ("mode",),
        "1 when every backup the last verify of the mode checked was intact.",
    ),
    _family(
        "recovery_verify_last_backups_verified",
        VERIFY,
        ("mode",),
        "Backups the last verify of the mode found intact.",
    ),
    _family(
        "recovery_verify_last_backups_failed",
        VERIFY,
        ("mode",),
        "Backups the last verify of the mode found damaged or unreadable.",
    ),
    _family("recovery_verify_last_duration_seconds", VERIFY, ("mode",), "How long the last verify of the mode took."),
    # --- prune, of the local backups ("local") or of a replica (its name) -----------------------------
    _family("recovery_prune_last_timestamp_seconds", PRUNE, ("target",), "When the last prune of the target ended."),
    _family("recovery_prune_last_success", PRUNE, ("target",), "1 when the last prune of the target succeeded."),
    _family(
        "recovery_prune_last_removed_backups",
        PRUNE,
        ("target",),
        "Backups the last prune of the target removed.",
    ),
    _family("recovery_prune_last_kept_backups", PRUNE, ("target",), "Backups the last prune of the target kept."),
    # --- replicas (recomputed from <backup dir>/.replicas/<name>.json) --------------------------------
    _family(
        "recovery_replica_last_push_timestamp_seconds",
        PUSH,
        ("replica",),
        "When the last push to the replica from this host ended (ok or not).",
    ),
    _family(
        "recovery_replica_last_push_success",
        PUSH,
        ("replica",),
        "1 when the last push to the replica from this host succeeded.",
    ),
    _family(
        "recovery_replica_last_success_timestamp_seconds",
        PUSH,
        ("replica",),
        "When the last successful push to the replica ended; 0: none known.",
    ),
    _family(
        "recovery_replica_last_push_uploaded_bytes",
        PUSH,
        ("replica",),
        "Bytes the last push to the replica uploaded.",
    ),
    _family(
        "recovery_replica_last_push_duration_seconds",
        PUSH,
        ("replica",),
        "How long the last push to the replica took.",
    ),
    _family(
        "recovery_replica_max_age_seconds",
        PUSH,
        ("replica",),
        "The replica's max_age_hours (default: [backups] max_age_hours): the oldest its copy may be.",
    ),
    # --- drills (recomputed from the drill records; targets from the site's [targets]) ----------------
    _family(
        "recovery_drill_last_timestamp_seconds",
        DRILL,
        ("scenario",),
        "When the last drill of the scenario injected its fault; 0: never drilled.",
    ),
    _family(
        "recovery_drill_last_recovered",
        DRILL,
        ("scenario",),
        "1 when the last drill of the scenario recovered (procedures and verification passed).",
    ),
    _family(
        "recovery_drill_time_to_recover_seconds",
        DRILL,
        ("scenario",),
        "Fault to verified recovery in the last drill of the scenario (only when it recovered).",
    ),
    _family(
        "recovery_drill_data_loss_window_seconds",
        DRILL,
        ("scenario",),
        "Fault time minus the restored backup's time in the last drill of the scenario.",
    ),
    _family(
        "recovery_drill_rto_seconds",
        DRILL,
        ("scenario",),
        "The site's RTO target for the scenario's procedure ([targets.X] rto_minutes).",
    ),
    _family(
        "recovery_drill_rpo_seconds",
        DRILL,
        ("scenario",),
        "The site's RPO target for the scenario's procedure ([targets.X] rpo_hours).",
    ),
    _family("recovery_drill_last_run_timestamp_seconds", DRILL, (), "When the last `drill run` ended."),
    _family(
        "recovery_drill_last_run_success",
        DRILL,
        (),
        "1 when every drill of the last `drill run` recovered.",
    ),
)
BY_NAME = {family.name: family for family in FAMILIES}


def families_of(file: str) -> tuple[Family, ...]:
    """The families written to ``file`` (one of FILES), in the table's order."""
    return tuple(family for family in FAMILIES if family.file == file)


__all__ = [
    "BACKUP",
    "BY_NAME",
    "DRILL",
    "FAMILIES",
    "FILES",
    "PRUNE",
    "PUSH",
    "READ_DATA",
    "STRUCTURE",
    "VERIFY",
    "VERIFY_MODES",
    "Family",
    "Sample",
    "families_of",
]
