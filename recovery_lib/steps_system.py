"""Procedure steps about the system as a whole: health, triage, the trading process, the incident.

Restarting trading goes through the gate of :mod:`recovery_lib.gate`: the config check, the data
check and reconciliation with the exchange must pass, and so must every success criterion the
procedure can already judge. Otherwise the process stays stopped and the record says why.
"""

from __future__ import annotations

import html
import os
import stat
from datetime import UTC, datetime
from typing import Any

from .checklist import Checklist
from .clock import now_iso
from .escalation import Escalation, assess
from .gate import trading_gate
from .health import HealthResult, health_check
from .notebook import Run
from .process import ProcessAction, process_status, start_system, stop_system
from .rendering import Findings
from .steps_base import Halted, NothingToDo, halted, idle, refused
from .triage import Triage, triage


def health_table(results: dict[str, HealthResult], restart_pending: bool = False) -> Any:
    """Health results as a table with a pass/fail marker in words (emoji fonts are not everywhere).

    ``restart_pending``: the system was stopped on purpose and a later step restarts it, so a stopped
    process is shown as such, not as a failure (the recorded results are unchanged).
    """
    import pandas as pd

    def mark(name: str, result: HealthResult) -> tuple[str, str]:
        if result.healthy:
            return "✅ ok", result.message
        if restart_pending and name == "process" and result.details.get("configured"):
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
    """The scenario detections and the procedures to run; recorded as ``triage``.

    Triage issues the incident id: every notebook of this incident takes it as ``incident_id``.
    """
    found = triage(run.site, results)
    found.incident_id = run.incident_id
    run.record(
        "triage",
        {
            "incident_id": run.incident_id,
            "scenario": found.scenario,
            "scenario_name": found.name,
            "procedure": found.procedure,
            "procedures": found.procedures,
            "notebook": found.notebook,
            "failed_checks": found.failed_checks,
            "missing_paths": found.missing_paths,
            "detected_at": now_iso(),
            "also": found.evidence.get("also"),
        },
    )
    return found


def stop(run: Run) -> ProcessAction | Halted | NothingToDo:
    """Procedure step "Stop the system"."""
    if skipped := halted(run) or idle(run):
        return skipped
    status = process_status(run.site)
    if status.running and run.site.process.stop:
        summary = f"Stop the trading system, which is {status.detail}. Command: {run.site.process.stop}"
        if skipped := refused(run, "stop_system", summary):
            return skipped
    action = stop_system(run.site)
    run.record("stop_system", action)
    return action


class RestartRefused:
    """The restart step kept trading stopped: the gate did not pass. ``reasons`` say why."""

    ok = False

    def __init__(self, reasons: list[str], running: bool | None) -> None:
        self.reasons = reasons
        self.running = running

    def summary(self) -> str:
        """One paragraph for a person: what was refused, why, and what to do."""
        state = (
            "It is RUNNING on a state that failed the gate (someone started it): stop it now."
            if self.running
            else "It stays stopped."
        )
        return f"⛔ Trading NOT restarted. {state} Because: " + "; ".join(self.reasons)

    def __repr__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        items = "".join(f"<li>{html.escape(reason)}</li>" for reason in self.reasons)
        state = html.escape(self.summary().split(" Because:")[0])
        return f"<p><b>{state}</b> Because:</p><ul>{items}</ul>"


def restart(run: Run, before: Checklist | None = None) -> ProcessAction | RestartRefused | Halted:
    """Procedure step "Restart system", behind the trading gate.

    ``before``: the procedure's success criteria judged so far (the restart's own row pending);
    any that failed also keeps trading stopped.
    """
    if skipped := halted(run):
        run.facts.trading_held = run.facts.trading_held or f"the procedure halted ({skipped.reason})"
        _keep_stopped(run, run.facts.trading_held)
        return skipped
    gate = trading_gate(run.site)
    reasons = [f"{check.name}: {check.detail}" for check in gate.failing]
    failed = [row for row in (before.rows if before else []) if row["passed"] is False]
    reasons += [f"criterion '{row['criterion']}' failed ({row['evidence']})" for row in failed]
    run.record("trading_gate", {**gate.to_dict(), "criteria_failed": [row["criterion"] for row in failed]})
    if reasons:
        run.facts.trading_held = "; ".join(reasons)
        running = _keep_stopped(run, reasons[0])
        run.record(
            "restart_system",
            {"action": "start", "ok": False, "refused": True, "running_after": running, "reasons": reasons},
        )
        return RestartRefused(reasons, running)
    if run.site.process.start and not process_status(run.site).running:
        summary = f"Start the trading system. Command: {run.site.process.start}"
        if skipped := refused(run, "start_system", summary):
            run.facts.trading_held = f"the start was not approved ({skipped.reason})"
            return skipped
    action = start_system(run.site)
    run.record("restart_system", action)
    if not action.ok:
        run.facts.trading_held = f"the start command did not bring it up: {action.message}"
    return action


def _keep_stopped(run: Run, why: str) -> bool | None:
    """Trading must not run on a state that failed the gate: if someone started it meanwhile, stop it
    again (with approval). Returns whether it runs now."""
    status = process_status(run.site)
    if status.running and run.site.process.stop:
        summary = (
            f"Stop the trading system again: it is {status.detail} on a state that did not pass the gate "
            f"({why}). Command: {run.site.process.stop}"
        )
        if not refused(run, "stop_system", summary):
            run.record("stop_system", stop_system(run.site))
    return process_status(run.site).running


def declare_incident(run: Run) -> Findings:
    """Runbook C step 1: the incident, its start and who to notify."""
    declared = {
        "incident_id": run.incident_id,
        "declared_at": now_iso(),
        "operator": run.operator,
        "notify": {level: f"{c.name}: {c.contact}" for level, c in run.site.contacts.items()},
    }
    run.record("incident", declared)
    return Findings("Incident declared", declared)


def site_listing(run: Run) -> Findings:
    """The pre-recovery state for the post-mortem (runbook C step 4 writes it to /tmp; we record it)."""
    listing: dict[str, list[dict[str, Any]]] = {}
    for category, tops in run.site.categories.items():
        entries: list[dict[str, Any]] = []
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

    def described(entries: list[dict[str, Any]]) -> str:
        missing = [e["path"] for e in entries if e.get("missing")]
        files = sum(1 for e in entries if not e.get("missing"))
        return f"{files} file(s)" + (f", missing: {', '.join(missing)}" if missing else "")

    shown = {category: described(entries) for category, entries in listing.items()}
    return Findings("Pre-recovery state (the full listing is in the record)", shown)


def escalation(run: Run, complete_failure: bool = False, systems_affected: int = 0) -> Escalation:
    """The runbook's escalation level for what this run saw; recorded as ``escalation``."""
    facts = run.facts
    facts.complete_failure = facts.complete_failure or complete_failure
    facts.systems_affected = max(facts.systems_affected, systems_affected)
    facts.trading_running = process_status(run.site).running
    return record_escalation(run, assess(facts, run.site))


def record_escalation(run: Run, result: Escalation) -> Escalation:
    """Record ``result`` as ``escalation`` and return it for display."""
    run.record(
        "escalation",
        {
            "level": result.level,
            "name": result.name,
            "contact": result.contact,
            "reasons": result.reasons,
            "next_steps": result.next_steps,
        },
    )
    return result
