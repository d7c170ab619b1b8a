"""The runbook's procedure steps, one import for the notebooks: ``from recovery_lib import procedures as steps``.

Each step does one runbook step, records it and returns data; notebook cells call these and display
what they return. The steps live in one module per concern:

- :mod:`.steps_base`: halting a run, health evidence, :class:`ProcedureFailed`;
- :mod:`.steps_system`: health, triage, stopping and (behind the trading gate) restarting, the incident;
- :mod:`.steps_restore`: backups, the choice of backup, the dry run, approval, restore, procedure backups;
- :mod:`.steps_checks`: config, data, exchange and reconciliation checks;
- :mod:`.steps_data`: Procedure B's assessment, repair-or-restore, and trades written back from the exchange;
- :mod:`.steps_backups`: Procedure D's backup directory, verification and quarantine;
- :mod:`.steps_verdict`: success criteria, the verification verdict, and the outcome every procedure ends with;
- :mod:`.steps_post`: the post-recovery notebook.
"""

from __future__ import annotations

from recovery_lib.runbook.notebook import REMEDIES
from recovery_lib.runbook.steps.backups import (
    backup_dir_status,
    backup_schedule,
    quarantine_damaged,
    verify_all_backups,
)
from recovery_lib.runbook.steps.base import Halted, ProcedureFailed, halt
from recovery_lib.runbook.steps.checks import check_exchange, reconcile, verify_config, verify_data
from recovery_lib.runbook.steps.data import (
    apply_remedy,
    assess_data_loss,
    data_loss_window,
    plan_remedies,
    remedy_approval,
    replay_trades,
)
from recovery_lib.runbook.steps.post import escalation_from, incident_summary, notify_text, verification_backup
from recovery_lib.runbook.steps.restore import (
    BackupChoice,
    NotTaken,
    UnfitPick,
    approval,
    backups_overview,
    choose_backup,
    create_backup,
    plan,
    pre_recovery_backup,
    restore,
    verified_backup,
)
from recovery_lib.runbook.steps.system import (
    RestartRefused,
    check_health,
    declare_incident,
    detect,
    escalation,
    health_table,
    restart,
    site_listing,
    stop,
)
from recovery_lib.runbook.steps.verdict import (
    PENDING,
    conclude,
    criteria_a,
    criteria_b,
    criteria_c,
    criteria_d,
    finish,
    verdict,
)

__all__ = [
    "PENDING",
    "REMEDIES",
    "BackupChoice",
    "Halted",
    "NotTaken",
    "ProcedureFailed",
    "RestartRefused",
    "UnfitPick",
    "apply_remedy",
    "approval",
    "assess_data_loss",
    "backup_dir_status",
    "backup_schedule",
    "backups_overview",
    "check_exchange",
    "check_health",
    "choose_backup",
    "conclude",
    "create_backup",
    "criteria_a",
    "criteria_b",
    "criteria_c",
    "criteria_d",
    "data_loss_window",
    "declare_incident",
    "detect",
    "escalation",
    "escalation_from",
    "finish",
    "halt",
    "health_table",
    "incident_summary",
    "notify_text",
    "plan",
    "plan_remedies",
    "pre_recovery_backup",
    "quarantine_damaged",
    "reconcile",
    "remedy_approval",
    "replay_trades",
    "restart",
    "restore",
    "site_listing",
    "stop",
    "verdict",
    "verification_backup",
    "verified_backup",
    "verify_all_backups",
    "verify_config",
    "verify_data",
]
