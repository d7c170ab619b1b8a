"""Procedure steps about the system as a whole: health, triage, the trading process, the incident.

Restarting trading goes through the gate of :mod:`recovery_lib.checks.gate`: the config check, the data
check and reconciliation with the exchange must pass, and so must every success criterion the
procedure can already judge. Otherwise the process stays stopped and the record says why.
"""

from __future__ import annotations

import html
import os
import shlex
import stat
from datetime import UTC, datetime
from typing import Any

from recovery_lib.checks.default import health_check
from recovery_lib.checks.gate import trading_gate
from recovery_lib.checks.registry import HealthResult
from recovery_lib.checks.triage import Triage, triage
from recovery_lib.clock import now_iso
from recovery_lib.errors import StaleReplay
from recovery_lib.rendering import Findings
from recovery_lib.runbook.alerting import escalated_before, tell_escalation
from recovery_lib.runbook.checklist import Checklist
from recovery_lib.runbook.escalation import Escalation, assess
from recovery_lib.runbook.record_types import (
    EscalationRecord,
    HealthEntry,
    IncidentRecord,
    ListingRecord,
    RestartSystemRecord,
    TradingGateRecord,
    TriageRecord,
)
from recovery_lib.runbook.resume import Earlier
from recovery_lib.runbook.run import Run
from recovery_lib.runbook.steps.base import GO_ON, Halted, NothingToDo, Replay, refused, step
from recovery_lib.site.process import ProcessAction, process_status, start_system, stop_system


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


@step(on_halt=GO_ON)  # it only reads: the record shows the health after a halt too
def check_health(run: Run, label: str) -> dict[str, HealthResult]:
    """Run every health check and record them as ``health_<label>``."""
    results = health_check.run_all(run.site)
    run.record(
        f"health_{label}", {name: HealthEntry(healthy=r.healthy, message=r.message) for name, r in results.items()}
    )
    return results


@step(on_halt=GO_ON)  # it only reads
def detect(run: Run, results: dict[str, HealthResult]) -> Triage:
    """The scenario detections and the procedures to run; recorded as ``triage``.

    Triage issues the incident id: every notebook of this incident takes it as ``incident_id``.
    """
    found = triage(run.site, results)
    found.incident_id = run.incident_id
    run.record(
        "triage",
        TriageRecord(
            incident_id=run.incident_id,
            scenario=found.scenario,
            scenario_name=found.name,
            procedure=found.procedure,
            procedures=found.procedures,
            notebook=found.notebook,
            failed_checks=found.failed_checks,
            missing_paths=found.missing_paths,
            detected_at=now_iso(),
            also=found.evidence.get("also"),
            replica=found.replica,
            replica_action=found.replica_action,
            notes=list(found.notes),
        ),
    )
    return found


def _stopped_then(run: Run, earlier: Earlier) -> ProcessAction:
    """The stop the failed run did (its facts: the process is still stopped)."""
    stopped = earlier.record("stop_system")
    if not stopped:
        raise StaleReplay("the failed run's stop_system record is missing")
    return ProcessAction(
        str(stopped.get("action") or "stop"),
        bool(stopped.get("ok")),
        stopped.get("running_after"),
        str(stopped.get("message") or ""),
    )


def _stop_facts(run: Run, value: ProcessAction) -> dict[str, Any]:
    return {"stopped": True, "what": "the trading system was stopped"}


@step(
    prepares=("stop_system", "the trading system was stopped"),
    idle=True,
    replay=Replay(_stopped_then, _stop_facts),
)
def stop(run: Run) -> ProcessAction | Halted | NothingToDo:
    """Procedure step "Stop the system"."""
    status = process_status(run.site)
    if status.running and run.site.process.stop:
        summary = f"Stop the trading system, which is {status.detail}. Command: {run.site.process.stop}"
        if skipped := refused(run, "stop_system", summary, key=f"pid {status.pid}"):
            return skipped
    action = stop_system(run.site)
    run.record("stop_system", action)
    return action


class RestartRefused:
    """The restart step kept trading stopped: the gate did not pass or the run halted. ``reasons`` say
    why; ``start_command`` and ``gate_failing`` say what a person may do about it."""

    ok = False

    def __init__(
        self,
        reasons: list[str],
        running: bool | None,
        start_command: str | None = None,
        gate_failing: list[str] | None = None,
        site_root: str = "",
        aborted: bool = False,
    ) -> None:
        self.aborted = aborted
        self.reasons = reasons
        self.running = running
        self.start_command = start_command
        self.gate_failing = gate_failing or []
        self.site_root = site_root

    def state(self) -> str:
        """Whether it runs, in one sentence."""
        if self.running and self.aborted:
            return "It is still RUNNING: the procedure was aborted before it stopped it, and nothing was changed."
        if self.running:
            return "It is RUNNING on a state that failed the gate (someone started it): stop it now."
        return "It stays STOPPED."

    def next_step(self) -> str:
        """The command to start it by hand, or why not to."""
        if self.running:
            return (
                ""
                if not self.aborted or not self.gate_failing
                else "It runs on a site that fails " + "; ".join(self.gate_failing) + ": follow the escalation."
            )
        if self.gate_failing:
            return (
                "Do not start it by hand: the site fails " + "; ".join(self.gate_failing) + ". Follow the escalation."
            )
        if self.start_command:
            where = f"cd {shlex.quote(self.site_root)} && " if self.site_root else ""
            return (
                "The site passes the config, data and reconciliation checks now: once you have decided to resume "
                f"trading, start it with `{where}{self.start_command}` (or rerun this procedure)."
            )
        return "No [process] start command is configured: start the trading system by hand once you decide to."

    def record(self) -> RestartSystemRecord:
        """The ``restart_system`` record of the refusal."""
        return RestartSystemRecord(
            action="start",
            ok=False,
            refused=True,
            running_after=self.running,
            reasons=self.reasons,
            gate_failing=self.gate_failing,
            next=self.next_step(),
        )

    def summary(self) -> str:
        """One paragraph for a person: what was refused, why, and what to do."""
        then = self.next_step()
        return (
            f"⛔ Trading NOT restarted. {self.state()} Because: "
            + "; ".join(self.reasons)
            + (f". {then}" if then else "")
        )

    def __repr__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        items = "".join(f"<li>{html.escape(reason)}</li>" for reason in self.reasons)
        then = self.next_step()
        return f"<p><b>⛔ Trading NOT restarted. {html.escape(self.state())}</b> Because:</p><ul>{items}</ul>" + (
            f"<p>{html.escape(then)}</p>" if then else ""
        )


def _held_after_halt(run: Run, skipped: Halted, before: Checklist | None = None) -> RestartRefused:
    """The restart of a halted run: trading stays stopped (and is stopped again if someone started it),
    unless a person aborted, which changes nothing more."""
    run.facts.trading_held = run.facts.trading_held or f"the procedure halted ({skipped.reason})"
    # An abort is a person's decision to change nothing more: never ask to stop it again then.
    running = process_status(run.site).running if skipped.aborted else _keep_stopped(run, run.facts.trading_held)
    gate = trading_gate(run.site)
    refusal = RestartRefused(
        [f"the procedure {'was aborted' if skipped.aborted else 'halted'}: {skipped.reason}"],
        running,
        run.site.process.start,
        [f"{check.name}: {check.detail}" for check in gate.failing],
        str(run.site.root),
        aborted=skipped.aborted,
    )
    run.record("restart_system", refusal.record())
    return refusal


@step(on_halt=_held_after_halt)
def restart(run: Run, before: Checklist | None = None) -> ProcessAction | RestartRefused:
    """Procedure step "Restart system", behind the trading gate.

    ``before``: the procedure's success criteria judged so far (the restart's own row pending);
    any that failed also keeps trading stopped.
    """
    gate = trading_gate(run.site)
    reasons = [f"{check.name}: {check.detail}" for check in gate.failing]
    failed = [row for row in (before.rows if before else []) if row["passed"] is False]
    reasons += [f"criterion '{row['criterion']}' failed ({row['evidence']})" for row in failed]
    run.record(
        "trading_gate", TradingGateRecord(**gate.to_dict(), criteria_failed=[row["criterion"] for row in failed])
    )
    if reasons:
        run.facts.trading_held = "; ".join(reasons)
        running = _keep_stopped(run, reasons[0])
        refusal = RestartRefused(
            reasons,
            running,
            run.site.process.start,
            [f"{c.name}: {c.detail}" for c in gate.failing],
            str(run.site.root),
        )
        run.record("restart_system", refusal.record())
        return refusal
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


def _declared_then(run: Run, earlier: Earlier) -> Findings:
    return Findings("Incident declared", earlier.record("incident"))


@step(
    prepares=("declare", "the incident declaration"),
    on_halt=GO_ON,
    replay=Replay(_declared_then, lambda run, value: {"what": "the incident was declared"}),
)
def declare_incident(run: Run) -> Findings:
    """Runbook C step 1: the incident, its start and who to notify."""
    declared = IncidentRecord(
        incident_id=run.incident_id,
        declared_at=now_iso(),
        operator=run.operator,
        notify={level: f"{c.name}: {c.contact}" for level, c in run.site.contacts.items()},
    )
    run.record("incident", declared)
    return Findings("Incident declared", declared)


def _listed_then(run: Run, earlier: Earlier) -> Findings:
    return _listing_findings(earlier.record("pre_recovery_listing"))


@step(  # it only reads; replayed, so that a resumed run keeps the state from before the restore
    prepares=("document_state", "the pre-recovery listing"),
    on_halt=GO_ON,
    replay=Replay(_listed_then, lambda run, value: {"site": True, "what": "the pre-recovery state was listed"}),
)
def site_listing(run: Run) -> Findings:
    """The pre-recovery state for the post-mortem (runbook C step 4 writes it to /tmp; we record it)."""
    listing: ListingRecord = {}
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
    return _listing_findings(listing)


def _listing_findings(listing: dict[str, list[dict[str, Any]]]) -> Findings:
    """The pre-recovery listing for a person: files and missing paths per category."""

    def described(entries: list[dict[str, Any]]) -> str:
        missing = [e["path"] for e in entries if e.get("missing")]
        files = sum(1 for e in entries if not e.get("missing"))
        return f"{files} file(s)" + (f", missing: {', '.join(missing)}" if missing else "")

    shown = {category: described(entries) for category, entries in listing.items()}
    return Findings("Pre-recovery state (the full listing is in the record)", shown)


@step(on_halt=GO_ON)  # a halted run escalates: that is when it matters
def escalation(run: Run, complete_failure: bool = False, systems_affected: int = 0) -> Escalation:
    """The runbook's escalation level for what this run saw; recorded as ``escalation``."""
    facts = run.facts
    facts.complete_failure = facts.complete_failure or complete_failure
    facts.systems_affected = max(facts.systems_affected, systems_affected)
    facts.trading_running = process_status(run.site).running
    return record_escalation(run, assess(facts, run.site))


def record_escalation(run: Run, result: Escalation) -> Escalation:
    """Record ``result`` as ``escalation`` and return it for display; at ``[alerts] escalation_level`` or
    above, the site's [alerts] are told, once per level an incident reaches (see :func:`tell_escalation`)."""
    before = escalated_before(run)
    run.record(
        "escalation",
        EscalationRecord(
            level=result.level,
            name=result.name,
            contact=result.contact,
            reasons=result.reasons,
            next_steps=result.next_steps,
        ),
    )
    if result.level >= run.site.ops.escalation_level and result.level > before:
        tell_escalation(run, result)
    return result
