"""Success criteria, the verification verdict, and the one outcome every procedure ends with.

One verdict: a procedure succeeded only when every one of its success criteria passed and it did
not halt. :func:`finish` records the criteria (and tells escalation which failed); :func:`conclude`
records the outcome and, on failure, raises :class:`ProcedureFailed` as the notebook's last cell,
so papermill exits non-zero and nothing downstream mistakes the run for a recovery.

Criteria judged before the restart (``restart_action=PENDING``) are what the restart step's gate
reads: a failed criterion keeps trading stopped, so trading runs at the end exactly when the
outcome is success.
"""

from __future__ import annotations

import html
from typing import Any

from recovery_lib.catalog import VERIFICATION, procedure
from recovery_lib.checks.registry import HealthResult
from recovery_lib.clock import now_iso
from recovery_lib.errors import ProcedureFailed
from recovery_lib.runbook.checklist import Checklist
from recovery_lib.runbook.journal import release_procedure_lock
from recovery_lib.runbook.record_types import OutcomeRecord, SuccessCriteriaRecord, VerificationRecord
from recovery_lib.runbook.run import Run, ran
from recovery_lib.runbook.steps.backups import shown_path
from recovery_lib.runbook.steps.base import GO_ON, Halted, NothingToDo, health, plain, step, succeeded
from recovery_lib.runbook.steps.system import RestartRefused
from recovery_lib.schedule import schedule_status
from recovery_lib.site.integrity import check_data
from recovery_lib.site.process import process_status

PENDING: Any = object()  # a criterion the restart step has not judged yet


def _summary(value: Any) -> str:
    """One line of evidence: a result's summary, never a repr with a table in it."""
    if isinstance(value, str):
        return value  # a backup id or a sentence: shown as it is, not as 'its repr'
    summary = getattr(value, "summary", None)
    if callable(summary):
        return summary()
    return summary if isinstance(summary, str) else repr(value)


def _started(run: Run, action: Any) -> tuple[bool | None, str]:
    if action is PENDING:
        return None, "pending: the restart step judges it"
    if isinstance(action, RestartRefused | Halted):
        return False, _summary(action) if isinstance(action, RestartRefused) else repr(action)
    if not run.site.process.start:
        return None, "no [process] start command configured: start the trading system by hand"
    return succeeded(action), _summary(action)


@step(on_halt=GO_ON)  # criteria are judged after a halt too: that is when they fail
def criteria_a(run: Run, result: Any, config_check: dict[str, Any], restart_action: Any = PENDING) -> Checklist:
    """Procedure A's success criteria."""
    healthy, why = health(run, "config")
    started, start_why = _started(run, restart_action)
    return (
        Checklist(procedure("A").heading)
        .check("Config file restored", succeeded(result), _summary(result))
        .check(
            "Config file is valid",
            bool(config_check.get("ok")),
            "; ".join(config_check.get("problems", [])) or "valid TOML with the required sections",
        )
        .check("Health checks pass", healthy, why)
        .check("System starts successfully", started, start_why)
    )


@step(on_halt=GO_ON)
def criteria_b(run: Run, result: Any, reconciliation: Any, restart_action: Any = PENDING) -> Checklist:
    """Procedure B's success criteria."""
    data = check_data(run.site)
    healthy, why = health(run, "config", "data")
    reconciled = None if reconciliation is None else getattr(reconciliation, "ok", False)
    started, start_why = _started(run, restart_action)
    return (
        Checklist(procedure("B").heading)
        .check("Data files restored", None if isinstance(result, NothingToDo) else succeeded(result), _summary(result))
        .check("Data integrity verified", data.ok, data.summary())
        .check("Data reconciled with external systems", reconciled, _summary(reconciliation))
        .check("Health checks pass", healthy, why)
        .check("Trading can safely resume", started, start_why)
    )


# The trading system's checks; the `backups` check is Procedure D's, which triage schedules next
# when it fails, and the verification notebook checks everything.
SYSTEM_CHECKS = ("config", "data", "disk", "exchange", "reconciliation")


@step(on_halt=GO_ON)
def criteria_c(run: Run, result: Any, post_backup: Any = PENDING, restart_action: Any = PENDING) -> Checklist:
    """Procedure C's success criteria."""
    healthy, why = health(run, *SYSTEM_CHECKS)
    started, start_why = _started(run, restart_action)
    if post_backup is PENDING:
        backed_up, backup_why = None, "pending: the post-recovery backup step judges it"
    else:
        backed_up, backup_why = isinstance(plain(post_backup), str), _summary(post_backup)
    if restart_action is PENDING:
        operational, operational_why = None, "pending: judged after the restart"
    else:
        operational, operational_why = health(run, *SYSTEM_CHECKS, "process")
        operational = operational and started is not False
    return (
        Checklist(procedure("C").heading)
        .check("All systems restored", succeeded(result), _summary(result))
        .check("All health checks pass", healthy, why)
        .check("Services restarted", started, start_why)
        .check("Post-recovery backup created", backed_up, backup_why)
        .check("System operational", operational, operational_why)
    )


@step(on_halt=GO_ON)
def criteria_d(run: Run, directory: dict[str, Any], verification: Any, emergency: Any) -> Checklist:
    """Procedure D's success criteria. Damaged backups moved to quarantine no longer count as existing
    backups: they can never be restored from (the evidence says which)."""
    damaged = list(getattr(verification, "damaged", ["verification did not run"]))
    quarantined = list(getattr(verification, "quarantined", []))
    moved = set(getattr(verification, "quarantined_ids", []))
    left = [backup for backup in damaged if backup not in moved]
    if left:
        verified_why = f"{len(left)} damaged and still in use: {', '.join(left)}"
    elif damaged:
        verified_why = f"the others verify; {len(damaged)} damaged moved to quarantine: {', '.join(quarantined)}"
    else:
        verified_why = "every backup verifies (every byte hashed)"
    return (
        Checklist(procedure("D").heading)
        .check(
            "Backup directory accessible",
            bool(directory.get("writable")) if isinstance(directory, dict) else False,
            directory.get("message", "") if isinstance(directory, dict) else _summary(directory),
        )
        .check("Can create new backups", isinstance(plain(emergency), str), _summary(emergency))
        .check("Existing backups verified", not left, verified_why)
        .check("Automated backup schedule confirmed", *_schedule_confirmed(run))
    )


def _schedule_confirmed(run: Run) -> tuple[bool, str]:
    """Every declared backup entry really installed, and nothing says it will not run (read again here:
    the criterion is what is installed now, not what the step saw)."""
    status = schedule_status(run.site, show=lambda path: shown_path(run, path))
    if status.confirmed("backup"):
        record = status.to_record("backup")
        return True, f"installed ({record['scheduler']}): {'; '.join(record['entries'])}"
    return False, "; ".join(status.problems("backup"))


@step(on_halt=GO_ON)
def verdict(
    run: Run,
    health_results: dict[str, HealthResult],
    config_check: dict[str, Any],
    exchange_check: dict[str, Any],
    reconciliation: Any = None,
) -> Any:
    """The verification notebook's criteria: recovered when every verification step passes."""
    health_results, config_check, exchange_check = ran(health_results), ran(config_check), ran(exchange_check)
    data = check_data(run.site)
    failing = [name for name, result in health_results.items() if not result.healthy]
    reconciled = None if reconciliation is None else getattr(reconciliation, "ok", False)
    checklist = (
        Checklist(procedure(VERIFICATION).heading)
        .check("Health checks", not failing, "failing: " + ", ".join(failing) if failing else "all healthy")
        .check("Data integrity", data.ok, data.summary())
        .check("Positions reconciled with the exchange", reconciled, _summary(reconciliation))
        .check(
            "Configuration validity",
            bool(config_check.get("ok")),
            "; ".join(config_check.get("problems", [])) or "valid",
        )
        .check("External connectivity", bool(exchange_check.get("ok")), exchange_check.get("message", ""))
    )
    run.record(
        "verification",
        VerificationRecord(
            ok=checklist.all_passed,
            health_ok=not failing,
            failing=failing,
            data_ok=data.ok,
            reconciled=reconciled,
            config_ok=bool(config_check.get("ok")),
            exchange_ok=bool(exchange_check.get("ok")),
        ),
    )
    return finish(run, checklist)


@step(on_halt=GO_ON)
def finish(run: Run, checklist: Checklist) -> Any:
    """Record the success criteria; escalation learns which failed. Returns the checklist table."""
    run.criteria = checklist
    run.facts.criteria_failed = [row["criterion"] for row in checklist.rows if row["passed"] is False]
    run.record("success_criteria", SuccessCriteriaRecord(**checklist.to_dict()))
    return checklist.frame()


class Outcome:
    """The end of a procedure that succeeded: shown as a green banner."""

    def __init__(self, procedure: str, trading: str, unchecked: tuple[str, ...] = ()) -> None:
        self.procedure = procedure
        self.trading = trading
        self.unchecked = unchecked  # criteria shown as "not checked" (nothing to do): named, never called passed

    def __repr__(self) -> str:
        if self.unchecked:
            passed = f"every success criterion checked passed (not checked: {'; '.join(self.unchecked)})"
        else:
            passed = "every success criterion passed"
        return f"✅ Procedure {self.procedure} RECOVERED the system: {passed}. {self.trading}"

    def _repr_html_(self) -> str:
        return f"<p style='border-left:6px solid #2e7d32;padding-left:8px'><b>{html.escape(repr(self))}</b></p>"


def _trading(run: Run) -> tuple[bool | None, str]:
    running = process_status(run.site).running
    if running is None:
        return None, "The trading process is not monitored here ([process] in recovery.toml)."
    if running:
        return True, "Trading is RUNNING."
    held = f" ({run.facts.trading_held})" if run.facts.trading_held else ""
    return False, f"Trading is STOPPED{held}."


@step(on_halt=GO_ON)  # a halted run ends here, failed
def conclude(run: Run) -> Outcome:
    """Record the outcome; raise :class:`ProcedureFailed` unless every success criterion passed."""
    checklist = run.criteria
    failed = list(run.facts.criteria_failed) if checklist is not None else []
    success = checklist is not None and checklist.all_passed and not run.halted
    running, trading = _trading(run)
    run.record(
        "outcome",
        OutcomeRecord(
            success=success,
            halted=run.halted,
            failed_criteria=failed,
            criteria_judged=checklist is not None,
            trading_running=running,
            finished_at=now_iso(),
            approvals=run.gate.log(),
        ),
    )
    release_procedure_lock(run.site.records_dir)  # another kernel may run a procedure on this site now
    if not success:
        raise ProcedureFailed(run.procedure, failed, run.halted, trading)
    unchecked = tuple(row["criterion"] for row in checklist.rows if row["passed"] is None) if checklist else ()
    return Outcome(run.procedure, trading, unchecked)
