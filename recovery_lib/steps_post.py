"""The post-recovery notebook's steps: the verification backup, the incident summary, the escalation
for the whole incident, and the stakeholder notification. Each claims only what the records show."""

from __future__ import annotations

from typing import Any

from .clock import human_duration
from .escalation import Escalation, assess
from .gate import trading_gate
from .notebook import Run
from .postmortem import IncidentSummary, notification, summarize
from .process import process_status
from .steps_restore import NotTaken, verified_backup
from .steps_system import record_escalation


def verification_backup(run: Run, records: list[str]) -> str | NotTaken:
    """Post-recovery "Create verification backup": only of a recovered incident, and only of a state
    that passes the trading gate now. A broken state is never backed up as "verified"."""
    recovered = summarize(records).recovered if records else None
    if recovered is False:
        reason = "the incident was not recovered (see the summary below)"
        run.record("verification_backup", {"ok": False, "skipped": True, "reasons": [reason]})
        return NotTaken(reason)
    return verified_backup(run, "verification_backup", "Post-recovery verified state", ["post-recovery"])


def incident_summary(run: Run, records: list[str]) -> Any:
    """Runbook "Document incident", from the records of this incident's notebooks (``records``)."""
    import pandas as pd

    summary = summarize(records)
    gate = trading_gate(run.site)  # the site as it is now, not only as the records left it
    summary.gate_failing = gate.reason() or None
    summary.trading_now = process_status(run.site).running
    run.summary = summary
    run.record("incident_summary", summary)
    verdict = {True: "✅ yes: every success criterion passed and verification passed", None: "❓ not recorded"}
    procedures = "; ".join(
        f"{p['procedure']} "
        + ({True: "succeeded", False: "FAILED", None: "did not finish"}[p["success"]])
        + (f" ({', '.join(p['failed_criteria'])})" if p["failed_criteria"] else "")
        for p in summary.procedures
    )
    if summary.trades_lost is None:
        trades = "not recorded"
    else:
        trades = (
            f"{summary.trades_lost} lost, {summary.trades_recovered or 0} recovered from the exchange, "
            f"{summary.trades_missing or 0} still missing"
        )
    rows = [
        ("Recovered", verdict.get(summary.recovered, "❌ NO: " + ("; ".join(summary.failed_criteria) or "see below"))),
        ("What failed", ", ".join(summary.what_failed) or "not recorded"),
        ("Scenario", summary.scenario or "not recorded"),
        ("When detected", summary.detected_at or "not recorded"),
        ("Procedures", procedures or "none recorded"),
        ("Recovery steps taken", f"{len(summary.steps)} steps in {', '.join(summary.notebooks) or 'no notebooks'}"),
        ("Remedy", summary.remedy or ("restore" if summary.backup_used else "none applied")),
        ("Backup restored from", summary.backup_used or "none"),
        ("Trades", trades),
        (
            # Not the records page's "recover (s)", which runs from the fault to health green.
            "Detection to verified recovery",
            human_duration(summary.time_to_recovery_s) if summary.time_to_recovery_s is not None else "not recovered",
        ),
        (
            "Data loss window",
            human_duration(summary.data_loss_window_s) if summary.data_loss_window_s is not None else "unknown",
        ),
        ("Verified", {True: "✅ yes", False: "❌ no", None: "not recorded"}[summary.verified_ok]),
    ]
    return pd.DataFrame(rows, columns=["", "value"])


def escalation_from(run: Run, _summary_table: Any = None) -> Escalation:
    """The escalation for the whole incident, from the summary's facts; never lower than a procedure's."""
    summary = run.summary
    if summary is not None:
        facts = summary.facts()
        run.facts.restore_failed |= facts.restore_failed
        run.facts.criteria_failed = facts.criteria_failed
        run.facts.trades_missing = facts.trades_missing
        run.facts.no_backup |= facts.no_backup
        run.facts.data_loss_s = facts.data_loss_s
        run.facts.complete_failure |= facts.complete_failure
        run.facts.systems_affected = max(run.facts.systems_affected, facts.systems_affected)
    result = assess(run.facts, run.site)
    prior = max(summary.escalations, key=lambda e: e.get("level", 0), default=None) if summary else None
    if prior and prior.get("level", 0) > result.level:  # never lower what a procedure already escalated to
        contact = run.site.contacts[f"level{prior['level']}"]
        reasons = list(dict.fromkeys([*prior.get("reasons", []), *result.reasons]))
        result = Escalation(prior["level"], contact.name, contact.contact, reasons, result.next_steps)
    return record_escalation(run, result)


def notify_text(run: Run, _summary_table: Any, level: Escalation) -> str:
    """The stakeholder notification for the incident."""
    text = notification(run.summary or IncidentSummary(), level.summary())
    run.record("notification", {"text": text})
    return text
