"""The types of the records of backups, restores and data remedies (Procedures A-D); the others are
in :mod:`recovery_lib.runbook.record_types`, which says why they are ``TypedDict``s."""

from __future__ import annotations

from typing import Any, TypedDict

# --- backups and the restore ---------------------------------------------------------------------


class BackupsRecord(TypedDict, total=False):
    """``backups``: the backups overview."""

    count: int
    backups: list[dict[str, Any]]
    unreadable: list[dict[str, Any]]
    damaged: list[str]
    bytes_hashed: int


class BackupSelectionRecord(TypedDict, total=False):
    """``backup_selection``: the backup chosen to restore from (``backup_id`` None: none usable)."""

    requested: str
    backup_id: str | None
    created_at: str | None
    age_hours: float | None
    skipped: list[str]
    via: str  # parameter | picker
    pre_recovery: bool
    unfit: list[str]


class PreRecoveryBackupRecord(TypedDict, total=False):
    """``pre_recovery_backup``: the backup of the state before the restore."""

    ok: bool
    backup_id: str | None
    reused: bool
    fingerprint: str
    note: str
    error: str


class RestorePlanRecord(TypedDict, total=False):
    """``restore_plan``: the dry run (:meth:`recovery_lib.restore.plan.RestorePlan.to_dict`) and its key."""

    backup_id: str
    backup_created_at: str
    categories: list[str]
    counts: dict[str, int]
    bytes_to_write: int
    changes: list[dict[str, Any]]
    loses: list[dict[str, Any]]
    blockers: list[str]
    warnings: list[str]
    key: str


class RestoreResultRecord(TypedDict, total=False):
    """``restore_result``: what the restore did (or ``ok: false, error``)."""

    ok: bool
    error: str
    backup_id: str
    backup_created_at: str
    categories: list[str]
    files_restored: list[str]
    files_written: int
    bytes_written: int
    pre_recovery_backup_id: str | None
    pre_recovery_reused: bool
    problems: list[str]
    duration_s: float


class BackupTakenRecord(TypedDict, total=False):
    """``emergency_backup``, ``post_recovery_backup``, ``verification_backup``: a backup a step took."""

    ok: bool
    backup_id: str
    tags: list[str]
    skipped: bool
    reasons: list[str]
    error: str


# --- Procedure B: the data ---------------------------------------------------------------------------


class DataLossExtentRecord(TypedDict, total=False):
    """``data_loss_extent``: what is missing or corrupt."""

    nothing_to_do: str | None
    missing: list[str]
    checked: list[str]
    corruption: list[str]
    trades_on_exchange_not_in_ledger: int
    exchange_error: str | None


class DataLossWindowRecord(TypedDict, total=False):
    """``data_loss_window``: what a restore from the chosen backup gives up."""

    backup_id: str | None
    restore_point: str
    seconds: float | None
    text: str
    exchange_trades_after_restore_point: int
    note: str


class RemedyPlanRecord(TypedDict, total=False):
    """``remedy_plan``: repair and restore, each worked out (:meth:`recovery_lib.runbook.remedy.RemedyPlan.to_dict`)."""

    options: list[dict[str, Any]]
    recommended: str | None
    trades_known: int


class RemedyChoiceRecord(TypedDict, total=False):
    """``remedy_choice``: headless, the least-loss option among the approved ones."""

    recommended: str
    chosen: str
    why: str


class RemedyRecord(TypedDict, total=False):
    """``remedy``: the remedy applied."""

    action: str  # repair | restore
    ok: bool
    error: str
    rows_dropped: int
    header_added: bool
    ledger_trades: int


class TradesRecord(TypedDict, total=False):
    """``trades``: trades lost, written back from the exchange, still missing."""

    ok: bool
    error: str
    lost: int | None
    recovered: int
    still_missing: int | None
    still_missing_ids: list[int]
    recovered_ids: list[int]
    ledger_trades: int
    note: str


# --- Procedure D ------------------------------------------------------------------------------------


class BackupDirRecord(TypedDict, total=False):
    """``backup_dir``: the backup directory, made usable."""

    backup_dir: str
    created: bool
    permissions_fixed: bool
    moved_aside: str | None
    writable: bool
    backups: int
    message: str


class BackupVerificationRecord(TypedDict, total=False):
    """``backup_verification``: every backup hashed."""

    rows: list[dict[str, str]]
    damaged: int
    ids: list[str]


class QuarantineRecord(TypedDict, total=False):
    """``quarantine``: damaged backups moved out of use."""

    ok: bool
    quarantined: list[str]
    failed: list[str]


class BackupScheduleRecord(TypedDict, total=False):
    """``backup_schedule``: the backup schedule recovery.toml declares, against what is really installed."""

    configured: bool  # [backups] schedule declares at least one entry
    entries: list[str]  # as written
    installed: bool  # every entry found in a timer or the crontab, running the backup of this site
    scheduler: str | None  # "systemd", "cron", "systemd+cron", None: nothing installed for this site
    where: str  # what was read: the unit directory, the crontab
    active: bool | None  # will it run: None when the unit directory is not one systemd reads
    problems: list[str]  # what keeps the criterion from passing, each with what to run


# --- replicas (Procedures C and D) ---------------------------------------------------------------


class ReplicasRecord(TypedDict, total=False):
    """``replicas``: what each configured replica holds, and the last push to it from this host."""

    replicas: list[dict[str, Any]]


class ReplicaSeedRecord(TypedDict, total=False):
    """``replica_seed``: whether the backup directory needed re-seeding, and what was pulled from where."""

    needed: bool
    ok: bool
    local_backup: str | None
    backup_id: str | None
    replica: str | None
    already_local: bool
    files: int
    bytes_downloaded: int
    duration_s: float
    tried: list[str]
    error: str
    notes: list[str]


class ReplicaPushRecord(TypedDict, total=False):
    """``replica_push``: a procedure's new backup pushed to the replicas with ``push = "after-backup"``."""

    ok: bool
    backup_id: str | None
    replicas: list[dict[str, Any]]
    note: str
