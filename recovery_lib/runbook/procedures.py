"""The runbook's procedure steps, one import for the notebooks: ``from recovery_lib import procedures as steps``.

Each step does one runbook step, records it and returns data; notebook cells call these and display
what they return. The steps live in one module per concern:

- :mod:`.steps.base`: the :func:`~recovery_lib.runbook.steps.base.step` decorator every step carries (the one
  rule for a halted run, a run with nothing to do and a rerun), :class:`Halted`, health evidence;
- :mod:`.steps.system`: health, triage, stopping and (behind the trading gate) restarting, the incident;
- :mod:`.steps.choice`: the backups overview and the choice of backup (the picker in JupyterLab);
- :mod:`.steps.restore`: the dry run, its approval, and the restore;
- :mod:`.steps.procedure_backups`: the backups a procedure takes (emergency, pre-recovery, "verified");
- :mod:`.steps.checks`: config, data, exchange and reconciliation checks;
- :mod:`.steps.data`: Procedure B's assessment, repair-or-restore, and trades written back from the exchange;
- :mod:`.steps.backups`: Procedure D's backup directory, verification and quarantine;
- :mod:`.steps.replicas`: C's and D's replicas: what each holds, re-seeding the backup directory, D's push;
- :mod:`.steps.verdict`: success criteria, the verification verdict, and the outcome every procedure ends with;
- :mod:`.steps.post`: the post-recovery notebook.
"""

from __future__ import annotations

from recovery_lib.errors import ProcedureFailed, UnfitPick
from recovery_lib.runbook.parameters import REMEDIES
from recovery_lib.runbook.steps.backups import (
    backup_dir_status,
    backup_schedule,
    quarantine_damaged,
    verify_all_backups,
)
from recovery_lib.runbook.steps.base import Halted, halt
from recovery_lib.runbook.steps.checks import check_exchange, reconcile, verify_config, verify_data
from recovery_lib.runbook.steps.choice import BackupChoice, backups_overview, choose_backup
from recovery_lib.runbook.steps.data import (
    apply_remedy,
    assess_data_loss,
    data_loss_window,
    plan_remedies,
    remedy_approval,
    replay_trades,
)
from recovery_lib.runbook.steps.post import escalation_from, incident_summary, notify_text, verification_backup
from recovery_lib.runbook.steps.procedure_backups import (
    NotTaken,
    create_backup,
    pre_recovery_backup,
    verified_backup,
)
from recovery_lib.runbook.steps.replicas import (
    criteria_d_replicas,
    push_to_replicas,
    replica_overview,
    seed_from_replica,
)
from recovery_lib.runbook.steps.restore import approval, plan, restore
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
    "criteria_d_replicas",
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
    "push_to_replicas",
    "quarantine_damaged",
    "reconcile",
    "remedy_approval",
    "replay_trades",
    "replica_overview",
    "restart",
    "restore",
    "seed_from_replica",
    "site_listing",
    "stop",
    "verdict",
    "verification_backup",
    "verified_backup",
    "verify_all_backups",
    "verify_config",
    "verify_data",
]
