"""The runbook's procedure steps as functions: each does one step, records it, returns data.

Notebook cells call these and display what they return; the logic lives (and is tested) here. A
step that cannot go on (no usable backup, a failed restore) *halts* the run: later steps return
quickly saying why, the success criteria fail, and the escalation names who to call, so a
notebook never ends in a traceback for a situation the runbook describes.
"""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime
from typing import Any

from .backup import BackupError, BackupMetadata, BackupStatus
from .checklist import Checklist
from .escalation import Escalation, assess
from .health import HealthResult, health_check
from .integrity import check_config_file, check_data
from .notebook import Run
from .process import ProcessAction, process_status, start_system, stop_system
from .reconcile import reconcile_positions
from .rendering import Findings, LiveWidget, human_age, human_size, human_time
from .restore import RestorePlan, RestoreResult
from .restore_journal import RestoreError
from .triage import Triage, triage


class Halted:
    """What a step returns when an earlier step halted the run."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __repr__(self) -> str:
        return f"Skipped: the run was halted ({self.reason}). See the escalation at the end."

    def _repr_html_(self) -> str:
        return f"<p><b>⏭ Skipped</b>: the run was halted ({self.reason}). See the escalation at the end.</p>"


def halt(run: Run, reason: str) -> Halted:
    """Stop the procedure here: record why; later steps skip."""
    if not run.halted:
        run.halted = reason
        run.record("halted", {"reason": reason, "at": _now()})
    return Halted(reason)


def _halted(run: Run) -> Halted | None:
    return Halted(run.halted) if run.halted else None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


# --- health and triage ------------------------------------------------------------------------


def health_table(results: dict[str, HealthResult], restart_pending: bool = False) -> Any:
    """Health results as a table with a pass/fail marker in words (emoji fonts are not everywhere).

    ``restart_pending``: the system was stopped on purpose and a later step restarts it, so a stopped
    process is shown as such, not as a failure (the recorded results are unchanged).
    """
    import pandas as pd

    def mark(name: str, result: HealthResult) -> tuple[str, str]:
        if result.healthy:
            return "✅ ok", result.message
        if restart_pending and name == "process" and "not running" in result.message:
            return "⏸ stopped", f"{result.message} (stopped for the recovery; the restart step starts it)"
        return "❌ FAILING", result.message

    rows = [(*mark(name, result), name) for name, result in results.items()]
    return pd.DataFrame(
        [{"": shown, "check": name, "message": message} for shown, message, name in rows],
        columns=["", "check", "message"],
    )


def check_health(run: Run, label: str) -> dict[str, HealthResult]:
    """Run every health check and record them as ``health_<label>``."""
    results = health_check.run_all(run.site)
    run.record(f"health_{label}", {name: {"healthy": r.healthy, "message": r.message} for name, r in results.items()})
    return results


def detect(run: Run, results: dict[str, HealthResult]) -> Triage:
    """The scenario detections and the procedure to run; recorded as ``triage``."""
    found = triage(run.site, results)
    run.record(
        "triage",
        {
            "scenario": found.scenario,
            "scenario_name": found.name,
            "procedure": found.procedure,
            "notebook": found.notebook,
            "failed_checks": found.failed_checks,
            "missing_paths": found.missing_paths,
            "detected_at": _now(),
            "also": found.evidence.get("also"),
        },
    )
    return found


# --- the trading process ----------------------------------------------------------------------


def stop(run: Run) -> ProcessAction | Halted:
    """Procedure step "Stop the system"."""
    if skipped := _halted(run):
        return skipped
    status = process_status(run.site)
    if status.running and run.site.process.stop:
        run.gate.confirm(
            "stop_system", f"Stop the trading system, which is {status.detail}. Command: {run.site.process.stop}"
        )
    action = stop_system(run.site)
    run.record("stop_system", action)
    return action


def restart(run: Run) -> ProcessAction | Halted:
    """Procedure step "Restart system" (only after a successful restore)."""
    if skipped := _halted(run):
        return skipped
    if run.site.process.start and not process_status(run.site).running:
        run.gate.confirm("start_system", f"Start the trading system. Command: {run.site.process.start}")
    action = start_system(run.site)
    run.record("restart_system", action)
    return action


# --- backups ----------------------------------------------------------------------------------


def backups_overview(run: Run, verify: bool = True) -> Any:
    """Every backup with age, size, status and (quick) verification; recorded as ``backups``."""
    import pandas as pd

    rows = []
    for metadata in run.manager.list_backups():
        ok = run.manager.verify_backup(metadata.backup_id, read_data=False).ok if verify else None
        rows.append(
            {
                "backup_id": metadata.backup_id,
                "type": metadata.backup_type.value,
                "created_at": metadata.created_at,
                "age_h": round(metadata.age_hours(), 2),
                "files": metadata.files_count,
                "size_bytes": metadata.size_bytes,
                "status": metadata.status.value,
                "verifies": ok,
                "tags": ", ".join(metadata.tags),
            }
        )
    verdict = {True: "✅ verifies", False: "❌ FAILS", None: "not checked"}
    shown = [
        {
            "backup": row["backup_id"],
            "type": row["type"],
            "taken (UTC)": human_time(row["created_at"]),
            "age": human_age(row["age_h"]),
            "files": row["files"],
            "size": human_size(row["size_bytes"]),
            "status": row["status"],
            "verification": verdict[row["verifies"]],
            "tags": row["tags"],
        }
        for row in rows
    ]
    columns = ["backup", "type", "taken (UTC)", "age", "files", "size", "status", "verification", "tags"]
    frame = pd.DataFrame(shown, columns=columns)  # for people; the record keeps the raw values
    run.record("backups", {"count": len(rows), "backups": rows, "unreadable": run.manager.unreadable})
    if not rows:
        run.facts.no_backup = True
    return frame


class BackupChoice:
    """The backup a procedure restores from: the parameter's choice, or the picker's in JupyterLab."""

    def __init__(self, run: Run, metadata: BackupMetadata | None, skipped: list[str], widget: Any = None) -> None:
        self.run = run
        self.metadata = metadata
        self.skipped = skipped
        self.widget = widget

    @property
    def backup_id(self) -> str | None:
        if self.widget is not None and self.widget.value:
            return str(self.widget.value)
        return self.metadata.backup_id if self.metadata else None

    def _repr_html_(self) -> str:
        if self.metadata is None:
            return "<p><b>❌ No usable backup.</b> Escalate (see the end of this notebook).</p>"
        skipped = "".join(f"<li>{s}</li>" for s in self.skipped)
        return (
            f"<p>Selected backup <code>{self.metadata.backup_id}</code>, taken {human_time(self.metadata.created_at)} "
            f"({human_age(self.metadata.age_hours())} ago): {self.metadata.description or 'no description'}</p>"
            + (f"<p>Skipped:</p><ul>{skipped}</ul>" if skipped else "")
        )

    def __repr__(self) -> str:
        if self.metadata is None:
            return "No usable backup: escalate."
        return f"Selected backup {self.metadata.backup_id} ({human_age(self.metadata.age_hours())} old)"


def choose_backup(run: Run, backup_id: str, needs: tuple[str, ...] = ()) -> BackupChoice:
    """Resolve ``backup_id`` ("latest": newest SUCCESS backup that verifies and holds ``needs``).

    In interactive runs the choice also comes with a picker of every good candidate.
    """
    if skipped := _halted(run):
        return BackupChoice(run, None, [skipped.reason])
    notes_before = len(run.manager.notes)
    skipped_ids: list[str] = []
    metadata = None
    try:
        # The manager's own rule for "latest", so notebooks and the CLI can never pick differently.
        metadata = run.manager.latest(needs) if backup_id == "latest" else run.manager.get_backup(backup_id)
    except BackupError as exc:
        skipped_ids.append(str(exc))
    skipped_ids += run.manager.notes[notes_before:]
    run.record(
        "backup_selection",
        {
            "requested": backup_id,
            "backup_id": metadata.backup_id if metadata else None,
            "created_at": metadata.created_at if metadata else None,
            "age_hours": round(metadata.age_hours(), 3) if metadata else None,
            "skipped": skipped_ids,
        },
    )
    if metadata is None:
        run.facts.no_backup = True
        halt(run, f"no usable backup ({backup_id})")
        return BackupChoice(run, None, skipped_ids)
    widget = None
    if run.gate.interactive:
        import ipywidgets as widgets

        options = [
            (f"{m.backup_id}  ({human_age(m.age_hours())} old, {human_size(m.size_bytes)})", m.backup_id)
            for m in run.manager.list_backups()
            if m.status is BackupStatus.SUCCESS
        ]
        picker = widgets.Dropdown(
            options=options, value=metadata.backup_id, description="Backup:", layout=widgets.Layout(width="90%")
        )
        # The archived record cannot run the widget: it shows which backup was picked instead.
        widget = LiveWidget(picker, lambda: f"Backup picked: {picker.value} (in the picker; run the next cell to plan)")
        picker.observe(lambda _: widget.refresh(), names="value")
    return BackupChoice(run, metadata, skipped_ids, widget)


def data_loss_window(run: Run, choice: BackupChoice) -> float | None:
    """Seconds between the restore point and now: what the restore gives up (runbook B step 3)."""
    if choice.metadata is None:
        return None
    metadata = run.manager.get_backup(choice.backup_id or "")
    seconds = (datetime.now(UTC) - metadata.created).total_seconds()
    run.facts.data_loss_s = seconds
    run.record(
        "data_loss_window",
        {
            "backup_id": metadata.backup_id,
            "restore_point": metadata.created_at,
            "seconds": round(seconds, 1),
            "hours": round(seconds / 3600, 2),
        },
    )
    return seconds


def plan(
    run: Run, choice: BackupChoice, config: bool = False, state: bool = False, data: bool = False
) -> RestorePlan | Halted:
    """The dry run: the restore plan, recorded, and put up for approval."""
    if skipped := _halted(run):
        return skipped
    try:
        restore_plan = run.manager.plan_restore(choice.backup_id or "latest", config, state, data)
    except (BackupError, RestoreError) as exc:
        run.facts.restore_failed = True
        return halt(run, f"dry run failed: {exc}")
    run.record("restore_plan", restore_plan.to_dict())
    return restore_plan


def approval(run: Run, restore_plan: RestorePlan | Halted) -> Any:
    """The approval gate for the restore (widgets in JupyterLab, the ``approve`` parameter headless)."""
    if isinstance(restore_plan, Halted):
        return restore_plan
    if restore_plan.blockers:
        return halt(run, f"restore blocked: {restore_plan.blockers[0]}")
    # The plan itself is displayed just above: the gate repeats only what is being approved.
    plan = restore_plan
    what = (
        f"Restore {', '.join(plan.categories)} from backup {plan.backup_id}: {len(plan.changes)} file(s) to "
        f"create, replace or delete, {plan.bytes_to_write:,} bytes to write (the plan above)."
    )
    return run.gate.request("restore", what, step="Perform actual restore")


def restore(run: Run, restore_plan: RestorePlan | Halted) -> RestoreResult | Halted:
    """Apply exactly the approved plan. Fails closed (raises) without approval."""
    if isinstance(restore_plan, Halted):
        return restore_plan
    if skipped := _halted(run):
        return skipped
    decision = run.gate.require("restore")
    run.record("approval_restore", decision)
    try:
        result = run.manager.apply_restore(restore_plan)
    except (BackupError, RestoreError) as exc:
        run.facts.restore_failed = True
        run.record("restore_result", {"ok": False, "error": str(exc)})
        return halt(run, f"restore failed: {exc}")
    run.record(
        "restore_result",
        {
            "ok": result.ok,
            "backup_id": restore_plan.backup_id,
            "categories": list(restore_plan.categories),
            "files_restored": [a.path for a in restore_plan.changes],
            "files_written": result.files_written,
            "bytes_written": result.bytes_written,
            "pre_recovery_backup_id": result.pre_recovery_backup_id,
            "problems": result.problems,
            "duration_s": result.duration_s,
        },
    )
    if not result.ok:
        run.facts.restore_failed = True
        halt(run, "restore did not verify: " + "; ".join(result.problems[:3]))
    return result


def create_backup(run: Run, name: str, description: str, tags: list[str]) -> str | Halted:
    """A backup taken by a procedure step (pre-recovery, post-recovery, emergency); recorded as ``name``."""
    run.gate.confirm("backup", f"Create a backup of the site: {description} (tags: {', '.join(tags)})")
    try:
        backup_id = run.manager.create_backup(description=description, tags=tags)
    except BackupError as exc:
        run.record(name, {"ok": False, "error": str(exc)})
        return halt(run, f"{name} failed: {exc}")
    run.record(name, {"ok": True, "backup_id": backup_id, "tags": tags})
    return backup_id


# --- verification -----------------------------------------------------------------------------


def verify_config(run: Run) -> dict[str, Any]:
    """The config exists, is valid TOML and has the required sections (runbook A step 6, V step 3)."""
    report = check_config_file(
        run.site.path(run.site.config_file), run.site.required_sections, shown_as=run.site.config_file
    )
    result = {"ok": report.ok, "file": run.site.config_file, "problems": report.problems, **report.facts}
    run.record("config_check", result)
    return Findings("Configuration check", result)


def verify_data(run: Run) -> Any:
    """Row counts of the critical CSVs and the data consistency check (runbook B step 7, V step 2)."""
    import pandas as pd

    report = check_data(run.site)
    rows = []
    for relative in (run.site.positions_file, run.site.trades_file):
        try:
            frame = pd.read_csv(run.site.path(relative))
            rows.append({"": "✅", "file": relative, "rows": len(frame), "note": ""})
        except Exception as exc:  # shown to the engineer as a failed row, exactly like the runbook's loop
            rows.append({"": "❌", "file": relative, "rows": None, "note": f"{type(exc).__name__}: {exc}"})
    run.record("data_check", {"ok": report.ok, "problems": report.problems, "files": rows, **report.facts})
    return pd.DataFrame(rows)


def check_exchange(run: Run) -> dict[str, Any]:
    """External connectivity: a ticker from the exchange (runbook V step 4)."""
    result = health_check.run("exchange", run.site)
    outcome = {"ok": result.healthy, "message": result.message}
    run.record("exchange_check", outcome)
    return Findings("Exchange connectivity", outcome)


def reconcile(run: Run) -> Any:
    """Restored positions against the exchange's balances (runbook B step 8)."""
    if skipped := _halted(run):
        return skipped
    from .exchange import get_exchange_client

    try:
        table = reconcile_positions(run.site, get_exchange_client(run.site))
    except Exception as exc:  # an unreachable exchange is a finding for the record, not a crash
        run.record("reconciliation", {"ok": False, "error": f"{type(exc).__name__}: {exc}"})
        run.facts.external_systems_affected = True
        return f"Reconciliation impossible: {exc}"
    mismatched = table[~table["matches"]]
    run.record(
        "reconciliation",
        {"ok": mismatched.empty, "discrepancies": mismatched.to_dict(orient="records"), "markets": len(table)},
    )
    return table


def site_listing(run: Run) -> dict[str, list[dict[str, Any]]]:
    """The pre-recovery state for the post-mortem (runbook C step 4 writes it to /tmp; we record it)."""
    listing: dict[str, list[dict[str, Any]]] = {}
    for category, tops in run.site.categories.items():
        entries = []
        for top in tops:
            root = run.site.path(top)
            if not root.exists():
                entries.append({"path": top, "missing": True})
                continue
            for folder, _, files in os.walk(root):
                for name in sorted(files):
                    path = os.path.join(folder, name)
                    info = os.lstat(path)
                    entries.append(
                        {
                            "path": run.relative(path),
                            "size": info.st_size,
                            "mode": stat.filemode(info.st_mode),
                            "mtime": datetime.fromtimestamp(info.st_mtime, UTC).isoformat(),
                        }
                    )
        listing[category] = entries
    run.record("pre_recovery_listing", listing)
    return listing


# --- the end ----------------------------------------------------------------------------------


def escalation(run: Run, complete_failure: bool = False, systems_affected: int = 0) -> Escalation:
    """The runbook's escalation level for what this run saw; recorded as ``escalation``."""
    facts = run.facts
    facts.complete_failure = facts.complete_failure or complete_failure
    facts.systems_affected = max(facts.systems_affected, systems_affected)
    result = assess(facts, run.site)
    run.record(
        "escalation", {"level": result.level, "name": result.name, "contact": result.contact, "reasons": result.reasons}
    )
    return result


def finish(run: Run, checklist: Checklist) -> Any:
    """Record the success criteria and the outcome; returns the checklist table."""
    run.record("success_criteria", checklist.to_dict())
    run.record(
        "outcome",
        {
            "success": checklist.all_passed and not run.halted,
            "halted": run.halted,
            "finished_at": _now(),
            "approvals": run.gate.log(),
        },
    )
    return checklist.frame()


# --- steps particular to one procedure ------------------------------------------------------


def assess_data_loss(run: Run) -> Any:
    """Which critical paths are missing (runbook B step 1)."""
    import pandas as pd

    rows = [{"": "✅" if run.site.path(p.rstrip("/")).exists() else "❌ missing", "path": p} for p in run.site.critical]
    missing = [row["path"] for row in rows if row[""] != "✅"]
    run.record("data_loss_extent", {"missing": missing, "checked": list(run.site.critical)})
    return pd.DataFrame(rows)


def pre_recovery_backup(run: Run) -> str | Halted:
    """Back up the current state before restoring (runbook B step 5); nothing to save is not an error."""
    if skipped := _halted(run):
        return skipped
    run.gate.confirm(
        "backup", "Create a backup of the site: Pre-recovery current state (tags: pre-recovery, emergency)"
    )
    try:
        backup_id = run.manager.create_backup(
            description="Pre-recovery current state", tags=["pre-recovery", "emergency"]
        )
    except BackupError as exc:
        if "nothing to back up" in str(exc):
            run.record("pre_recovery_backup", {"ok": True, "backup_id": None, "note": "nothing left to save"})
            return "Nothing left in the site to save."
        run.record("pre_recovery_backup", {"ok": False, "error": str(exc)})
        return halt(run, f"pre-recovery backup failed: {exc}")
    run.record("pre_recovery_backup", {"ok": True, "backup_id": backup_id})
    return backup_id


def declare_incident(run: Run) -> dict[str, Any]:
    """Runbook C step 1: the incident, its start and who to notify."""
    declared = {
        "incident_id": run.incident_id,
        "declared_at": _now(),
        "operator": run.operator,
        "notify": {level: f"{c.name}: {c.contact}" for level, c in run.site.contacts.items()},
    }
    run.record("incident", declared)
    return Findings("Incident declared", declared)


def backup_dir_status(run: Run) -> dict[str, Any]:
    """Runbook D step 1: the backup directory exists (created if not) and is writable."""
    directory = run.manager.backup_dir
    created = False
    fixed_mode = False
    if not directory.exists():
        run.gate.confirm("backup", f"Create the missing backup directory {run.relative(directory)}")
        directory.mkdir(parents=True)
        created = True
    elif not directory.stat().st_mode & stat.S_IWUSR:
        run.gate.confirm("backup", f"Give the owner write permission on {run.relative(directory)}")
        directory.chmod(stat.S_IMODE(directory.stat().st_mode) | stat.S_IWUSR)
        fixed_mode = True
    writable = health_check.run("backups", run.site)
    if created or not any(m.status is BackupStatus.SUCCESS for m in run.manager.list_backups()):
        run.facts.no_backup = True  # runbook: "Backup not available" escalates to level 2
    status = {
        "backup_dir": run.relative(directory),
        "created": created,
        "permissions_fixed": fixed_mode,
        "writable": "not writable" not in writable.message,
        "backups": len(run.manager.list_backups()),
        "message": writable.message,
    }
    run.record("backup_dir", status)
    return Findings("Backup directory", status)


def verify_all_backups(run: Run) -> Any:
    """Runbook D step 2: every backup verified, contents hashed."""
    import pandas as pd

    rows = []
    for metadata in run.manager.list_backups():
        report = run.manager.verify_backup(metadata.backup_id, read_data=True)
        rows.append(
            {
                "": "✅" if report.ok else "❌",
                "backup_id": metadata.backup_id,
                "status": metadata.status.value,
                "problems": "; ".join(str(p) for p in report.problems[:3]),
            }
        )
    for problem in run.manager.unreadable:
        rows.append({"": "❌", "backup_id": "?", "status": "unreadable", "problems": problem})
    run.record("backup_verification", {"rows": rows, "damaged": sum(1 for r in rows if r[""] == "❌")})
    return pd.DataFrame(rows, columns=["", "backup_id", "status", "problems"])


def backup_schedule(run: Run) -> str:
    """Runbook D step 4: the automated backup schedule recovery.toml declares (or that none is)."""
    schedule = list(run.site.backup_schedule)
    run.record("backup_schedule", {"configured": bool(schedule), "entries": schedule})
    if not schedule:
        return (
            "❌ No automated backup schedule is declared ([backups] schedule in recovery.toml). Configure the "
            "scheduler (cron/systemd) and declare it, e.g. daily 02:00, weekly Sunday, before each deployment."
        )
    return "✅ Automated backups: " + "; ".join(schedule)


def _ok(value: Any) -> bool:
    return bool(getattr(value, "ok", False)) and not isinstance(value, Halted)


def _health(run: Run, *names: str) -> tuple[bool, str]:
    results = health_check.run_all(run.site)
    chosen = {n: r for n, r in results.items() if not names or n in names}
    failing = [n for n, r in chosen.items() if not r.healthy]
    checked = ", ".join(chosen)
    if failing:
        return False, f"failing: {', '.join(failing)} (checked: {checked})"
    return True, f"healthy ({'every check' if not names else 'checked'}: {checked})"


def _started(run: Run, action: Any) -> tuple[bool | None, str]:
    if not run.site.process.start:
        return None, "no [process] start command configured"
    return _ok(action), getattr(action, "message", str(action))


def criteria_a(run: Run, result: Any, config_check: dict[str, Any], restart_action: Any) -> Checklist:
    """Procedure A's success criteria."""
    healthy, why = _health(run, "config")
    started, start_why = _started(run, restart_action)
    return (
        Checklist("Procedure A: Config Recovery")
        .check("Config file restored", _ok(result), getattr(result, "summary", lambda: str(result))())
        .check(
            "Config file is valid",
            bool(config_check.get("ok")),
            "; ".join(config_check.get("problems", [])) or "valid TOML with the required sections",
        )
        .check("Health checks pass", healthy, why)
        .check("System starts successfully", started, start_why)
    )


def criteria_b(run: Run, result: Any, reconciliation: Any, restart_action: Any) -> Checklist:
    """Procedure B's success criteria."""
    data = check_data(run.site)
    healthy, why = _health(run, "config", "data")
    reconciled = getattr(reconciliation, "empty", None) is False and bool(reconciliation["matches"].all())
    started, start_why = _started(run, restart_action)
    return (
        Checklist("Procedure B: Data Recovery")
        .check("Data files restored", _ok(result), getattr(result, "summary", lambda: str(result))())
        .check("Data integrity verified", data.ok, data.summary())
        .check(
            "Data reconciled with external systems",
            reconciled,
            "positions equal exchange balances" if reconciled else "see the discrepancy table",
        )
        .check("Health checks pass", healthy, why)
        .check("Trading can safely resume", started, start_why)
    )


def criteria_c(run: Run, result: Any, post_backup: Any, restart_action: Any) -> Checklist:
    """Procedure C's success criteria."""
    healthy, why = _health(run, "config", "data", "backups", "disk", "exchange")
    started, start_why = _started(run, restart_action)
    return (
        Checklist("Procedure C: Full System Recovery")
        .check("All systems restored", _ok(result), getattr(result, "summary", lambda: str(result))())
        .check("All health checks pass", healthy, why)
        .check("Services restarted", started, start_why)
        .check(
            "Post-recovery backup created",
            isinstance(post_backup, str) and not isinstance(post_backup, Halted),
            str(post_backup),
        )
        .check("System operational", healthy and started is not False, why)
    )


def criteria_d(run: Run, directory: dict[str, Any], verification: Any, emergency: Any) -> Checklist:
    """Procedure D's success criteria."""
    damaged = int((verification[""] == "❌").sum()) if hasattr(verification, "columns") else -1
    return (
        Checklist("Procedure D: Backup System Recovery")
        .check("Backup directory accessible", bool(directory.get("writable")), directory.get("message", ""))
        .check(
            "Can create new backups", isinstance(emergency, str) and not isinstance(emergency, Halted), str(emergency)
        )
        .check("Existing backups verified", damaged == 0, f"{damaged} damaged" if damaged else "all verify")
        .check(
            "Automated backup schedule confirmed",
            bool(run.site.backup_schedule),
            "; ".join(run.site.backup_schedule) or "not declared in recovery.toml",
        )
    )


def verdict(
    run: Run, health: dict[str, HealthResult], config_check: dict[str, Any], exchange_check: dict[str, Any]
) -> Checklist:
    """The verification notebook's result: recovered when all four verification steps pass."""
    data = check_data(run.site)
    failing = [name for name, result in health.items() if not result.healthy]
    checklist = (
        Checklist("Verification")
        .check("Health checks", not failing, "failing: " + ", ".join(failing) if failing else "all healthy")
        .check("Data integrity", data.ok, data.summary())
        .check(
            "Configuration validity",
            bool(config_check.get("ok")),
            "; ".join(config_check.get("problems", [])) or "valid",
        )
        .check("External connectivity", bool(exchange_check.get("ok")), exchange_check.get("message", ""))
    )
    run.record(
        "verification",
        {
            "ok": checklist.all_passed,
            "health_ok": not failing,
            "failing": failing,
            "data_ok": data.ok,
            "config_ok": bool(config_check.get("ok")),
            "exchange_ok": bool(exchange_check.get("ok")),
        },
    )
    finish(run, checklist)
    return checklist.frame()


def incident_summary(run: Run, records: list[str]) -> Any:
    """Runbook "Document incident", pre-filled from the executed notebooks in ``records``."""
    import pandas as pd

    from .postmortem import duration_text, summarize

    summary = summarize(records)
    run.summary = summary
    run.record("incident_summary", summary)
    rows = [
        ("What failed", ", ".join(summary.what_failed) or "not recorded"),
        ("Scenario", summary.scenario or "not recorded"),
        ("When detected", summary.detected_at or "not recorded"),
        ("Recovery steps taken", f"{len(summary.steps)} steps in {', '.join(summary.notebooks) or 'no notebooks'}"),
        ("Backup used", summary.backup_used or "none"),
        (
            # Not the records page's "recover (s)", which runs from the fault to health green.
            "Detection to verified recovery",
            duration_text(summary.time_to_recovery_s) if summary.time_to_recovery_s is not None else "not recorded",
        ),
        (
            "Data loss window",
            duration_text(summary.data_loss_window_s) if summary.data_loss_window_s is not None else "none recorded",
        ),
        ("Verified", {True: "✅ yes", False: "❌ no", None: "not recorded"}[summary.verified_ok]),
    ]
    return pd.DataFrame(rows, columns=["", "value"])


def escalation_from(run: Run, _summary_table: Any = None) -> Escalation:
    """The escalation for the whole incident, from the summary's facts."""
    summary = run.summary
    if summary is not None:
        facts = summary.facts()
        run.facts.restore_failed |= facts.restore_failed
        run.facts.no_backup |= facts.no_backup
        run.facts.data_loss_s = facts.data_loss_s
        run.facts.complete_failure |= facts.complete_failure
        run.facts.systems_affected = max(run.facts.systems_affected, facts.systems_affected)
    result = assess(run.facts, run.site)
    prior = max(summary.escalations, key=lambda e: e.get("level", 0), default=None) if summary else None
    if prior and prior.get("level", 0) > result.level:  # never lower what a procedure already escalated to
        contact = run.site.contacts[f"level{prior['level']}"]
        result = Escalation(prior["level"], contact.name, contact.contact, list(prior.get("reasons", [])))
    run.record(
        "escalation", {"level": result.level, "name": result.name, "contact": result.contact, "reasons": result.reasons}
    )
    return result


def notify_text(run: Run, _summary_table: Any, level: Escalation) -> str:
    """The stakeholder notification for the incident."""
    from .postmortem import IncidentSummary, notification

    text = notification(run.summary or IncidentSummary(), level.summary())
    run.record("notification", {"text": text})
    return text


def verification_backup(run: Run, records: list[str]) -> str | Halted:
    """Post-recovery "Create verification backup": only of a state that verified. A broken state is
    never backed up as "verified" (a later "latest" restore could pick it)."""
    from .postmortem import summarize

    verified = summarize(records).verified_ok if records else None
    if verified is None:  # run by hand without records: check now
        verified, _ = _health(run, "config", "data")
    if not verified:
        run.record("verification_backup", {"ok": False, "skipped": "the recovered state did not verify"})
        return "Not taken: the recovered state did not verify, so it is not backed up as verified. Escalate."
    return create_backup(run, "verification_backup", "Post-recovery verified state", ["post-recovery", "verified"])
