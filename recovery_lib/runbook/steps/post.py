"""The post-recovery notebook's steps: the verification backup, the incident summary, the escalation
for the whole incident, and the stakeholder notification. Each claims only what the records show."""

from __future__ import annotations

from typing import Any

from recovery_lib.checks.gate import trading_gate
from recovery_lib.clock import human_duration
from recovery_lib.runbook.escalation import Escalation, assess
from recovery_lib.runbook.postmortem import IncidentSummary, journal_records, notification, summarize
from recovery_lib.runbook.record_types import IncidentSummaryRecord, NotificationRecord
from recovery_lib.runbook.records import NotebookRecords, to_plain
from recovery_lib.runbook.restore_record_types import BackupTakenRecord
from recovery_lib.runbook.run import Run
from recovery_lib.runbook.steps.base import GO_ON, step
from recovery_lib.runbook.steps.procedure_backups import NotTaken, verified_backup
from recovery_lib.runbook.steps.system import record_escalation
from recovery_lib.site.process import process_status


def incident_sources(run: Run, records: list[str]) -> list[str | NotebookRecords]:
    """What the post-recovery notebook reads: the executed notebooks in ``records`` when given, else
    every run of this incident in its journal (written as the procedures ran, saved or not)."""
    if records:
        return list(records)
    return list(journal_records(run.journal, exclude={run.run_id})) if run.journal is not None else []


@step(on_halt=GO_ON)  # verified_backup() refuses after a halt itself
def verification_backup(run: Run, records: list[str]) -> str | NotTaken:
    """Post-recovery "Create verification backup": only of a recovered incident, and only of a state
    that passes the trading gate now. A broken state is never backed up as "verified"."""
    sources = incident_sources(run, records)
    recovered = summarize(sources).recovered if sources else None
    if recovered is not True:  # a verified backup needs records that say so, not the absence of a failure
        reason = (
            "the incident was not recovered (see the summary below)"
            if recovered is False
            else "the records do not show a recovery (a procedure and a passed verification)"
        )
        run.record("verification_backup", BackupTakenRecord(ok=False, skipped=True, reasons=[reason]))
        return NotTaken(reason)
    return verified_backup(run, "verification_backup", "Post-recovery verified state", ["post-recovery"])


@step(on_halt=GO_ON)  # P reads the records: a halt elsewhere changes nothing here
def incident_summary(run: Run, records: list[str]) -> Any:
    """Runbook "Document incident", from the records of this incident's notebooks (``records``), or when
    none are given from the incident's journal."""
    import pandas as pd

    sources = incident_sources(run, records)
    summary = summarize(sources)
    summary.incident_id = summary.incident_id or run.incident_id
    gate = trading_gate(run.site)  # the site as it is now, not only as the records left it
    summary.gate_failing = gate.reason() or None
    summary.trading_now = process_status(run.site).running
    run.summary = summary
    run.record(
        "incident_summary",
        IncidentSummaryRecord(**to_plain(summary), read_from="notebooks" if records else "journal"),
    )
    verdict = {True: "✅ yes: every success criterion passed and verification passed", None: "❓ not recorded"}
    procedures = "; ".join(_procedure_line(p) for p in summary.procedures)
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
        ("Read from", _read_from(run, records, summary)),
        ("Recovery steps taken", _steps_taken(summary, bool(records))),
        ("Remedy", summary.remedy or ("restore" if summary.backup_used else _none(summary))),
        ("Backup restored from", summary.backup_used or _none(summary)),
        ("Trades", trades),
        (
            # Not the records page's "recover (s)", which runs from the fault to health green.
            "Detection to verified recovery",
            human_duration(summary.time_to_recovery_s)
            if summary.time_to_recovery_s is not None
            else "not recovered"
            if summary.recovered is False
            else "unknown (the records do not say)",
        ),
        (
            "Data loss window",
            human_duration(summary.data_loss_window_s) if summary.data_loss_window_s is not None else "unknown",
        ),
        (
            "Verified",
            "out of date: a procedure ran after the last verification; run V again"
            if summary.verification_stale
            else {True: "✅ yes", False: "❌ no", None: "not recorded"}[summary.verified_ok],
        ),
    ]
    return pd.DataFrame(rows, columns=["", "value"])


def _procedure_line(entry: dict[str, Any]) -> str:
    """ "B succeeded", "B FAILED (criteria)", "B did not finish (replaced by a later run)"."""
    state = {True: "succeeded", False: "FAILED", None: "did not finish"}[entry["success"]]
    line = f"{entry['procedure']} {state}"
    if entry.get("aborted"):
        line += f" (aborted: {entry['halted']})"
    elif entry.get("failed_criteria"):
        line += f" ({', '.join(entry['failed_criteria'])})"
    if entry.get("resumed_from"):  # one procedure told across its runs: where it stopped, what went on
        replayed = ", ".join(entry.get("replayed") or []) or "nothing"
        line += f" (resumed run {entry['resumed_from']} from its step {entry.get('resumed_at') or 'that failed'}; "
        line += f"replayed: {replayed})"
    if entry.get("resumed_by"):
        line += f" (resumed by run {entry['resumed_by']})"
    elif entry.get("superseded"):
        line += " (replaced by a later run of the same procedure)"
    return line


def _none(summary: IncidentSummary) -> str:
    """ "none" only when a procedure record says so; without one, nothing is known."""
    return "none applied" if summary.procedures else "not recorded"


def _read_from(run: Run, records: list[str], summary: IncidentSummary) -> str:
    if records:
        return f"the executed notebooks given in `records`: {', '.join(summary.notebooks)}"
    journal = run.relative(run.journal.path) if run.journal is not None else "no journal"
    if not summary.notebooks:
        return f"the incident journal {journal}: no procedure has recorded anything in incident {run.incident_id} yet"
    return f"the incident journal {journal} (written as each step ran, saved or not): {', '.join(summary.notebooks)}"


def _steps_taken(summary: IncidentSummary, from_notebooks: bool) -> str:
    if not summary.steps:
        return "none recorded"
    by: dict[str, int] = {}
    for taken in summary.steps:
        by[taken["notebook"]] = by.get(taken["notebook"], 0) + 1
    what = "steps" if from_notebooks else "recorded steps"
    return f"{len(summary.steps)} {what}: " + ", ".join(f"{count} in {name}" for name, count in by.items())


@step(on_halt=GO_ON)
def escalation_from(run: Run, _summary_table: Any = None) -> Escalation:
    """The escalation for the whole incident, from the summary's facts; never lower than a procedure's."""
    summary = run.summary
    if summary is not None:
        facts = summary.facts()
        run.facts.restore_failed |= facts.restore_failed
        run.facts.aborted = facts.aborted
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


@step(on_halt=GO_ON)
def notify_text(run: Run, _summary_table: Any, level: Escalation) -> str:
    """The stakeholder notification for the incident."""
    summary = run.summary or IncidentSummary()
    text = notification(summary, level.summary())
    run.record("notification", NotificationRecord(text=text))
    if run.journal is not None:
        if summary.recovered:
            run.journal.append("closed", run.run_id, run.procedure, "incident", {"by": run.operator, "recovered": True})
            text += f"\n\n(Incident {run.incident_id} is closed: a new triage starts a new incident.)"
        else:
            text += (
                f"\n\n(Incident {run.incident_id} stays OPEN: it is not recovered. The next procedure notebook "
                "you open joins it.)"
            )
    return text
