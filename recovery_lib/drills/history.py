"""Reading drill records back: one row per drill from the executed notebooks in ``outputs/``,
and the monthly drill schedule (week 1 config, 2 data, 3 full, 4 backup; which scenario is due
against the records: ``drills/due.py``).

A notebook that was not saved to the end (its kernel killed, the runner stopped) is completed from
the copy of the incident journal beside it (``journal.jsonl``): what a step recorded is never lost
because the notebook file was not written afterwards."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from recovery_lib.catalog import RECOVERY_PROCEDURES, SCENARIOS, by_week
from recovery_lib.clock import now as clock_now
from recovery_lib.clock import seconds_between
from recovery_lib.runbook.journal import JournalRun, read_runs
from recovery_lib.runbook.record_types import DrillRecord, RunRecord, TriageRecord, VerificationRecord
from recovery_lib.runbook.records import (
    NotebookRecords,
    drill_of,
    escalation_of,
    halted_of,
    outcome_of,
    read_notebook,
    remedy_of,
    restore_result_of,
    resume_of,
    run_of,
    trades_of,
    triage_of,
    verification_of,
)

COLUMNS = [
    "run_id",
    "kind",
    "scenario",
    "variant",
    "procedure",
    "started_at",
    "fault_at",
    "detected_at",
    "recovered_at",
    "time_to_detect_s",
    "time_to_recover_s",
    "data_loss_window_s",
    "trades_lost",
    "trades_replayed",
    "remedy",
    "rto_target_s",
    "rpo_target_s",
    "rto_met",
    "rpo_met",
    "backup_id",
    "escalation_level",
    "outcome",
    "failed_step",
    "resumed",
    "notebooks",
]
# Week of the month -> drill scenario, from the runbook's monthly schedule (recovery_lib.catalog).
SCHEDULE = {s.week: s.drill for s in sorted(SCENARIOS, key=lambda s: s.week)}
PROCEDURES = RECOVERY_PROCEDURES
JOURNAL_COPY = "journal.jsonl"  # the incident journal, copied beside the drill's notebooks


def _completed(archived: NotebookRecords, journal: dict[str, JournalRun]) -> NotebookRecords:
    """The notebook's records, completed by its run in the journal (records it wrote that the saved
    notebook lacks). The notebook's own records win where both have one."""
    run_id = run_of(archived).get("run_id")
    from_journal = journal.get(run_id) if run_id else None
    if from_journal is None:
        return archived
    missing = {k: v for k, v in from_journal.records.items() if k not in archived.records}
    if missing:
        archived.records = {**archived.records, **missing}
        archived.record_times = {**from_journal.record_times, **archived.record_times}
    return archived


def _failed_step(name: str, archived: NotebookRecords) -> str | None:
    """Why one notebook did not succeed: its first failed criterion, its halt, or the step that failed."""
    outcome = outcome_of(archived)
    if outcome.get("failed_criteria"):
        return f"{name}: criterion failed: {outcome['failed_criteria'][0]}"
    halted = halted_of(archived)
    if halted:
        return f"{name}: {archived.record_steps.get('halted', '?')}: halted: {halted.get('reason')}"
    if archived.failed_step:
        return f"{name}: {archived.failed_step.name}"
    return None


def _superseded(archived: NotebookRecords, later: list[tuple[str, NotebookRecords]]) -> bool:
    """Whether a later run of the same procedure replaced this one (resumed it, or ran it again)."""
    letter = run_of(archived).get("procedure")
    return any(run_of(other).get("procedure") == letter for _, other in later)


def _resumed(archived: NotebookRecords) -> str:
    """How a run went on from a failed one: "B at apply_remedy from run <id>" (see the ``resume`` record)."""
    resume = resume_of(archived)
    where = resume.get("failed_step") or "an error"
    return f"{run_of(archived).get('procedure')} at {where} from run {resume.get('resumed_from')}"


def drill_row(run_dir: Path) -> dict[str, Any] | None:
    """The record of one drill directory, or None if it holds no drill notebook.

    The drill recovered only when every procedure notebook's outcome was success (each of its success
    criteria passed) and the verification notebook passed; ``failed_step`` says what did not. A later run of
    a procedure (one that resumed a run halted midway) supersedes an earlier one; ``resumed`` says which
    procedure was resumed, at which step, from which run (None: none was).
    """
    notebooks = sorted(run_dir.glob("*.ipynb"))
    if not notebooks:
        return None
    drill: DrillRecord = {}
    run: RunRecord = {}
    triage: TriageRecord = {}
    verification: VerificationRecord = {}
    verification_failed: list[str] = []
    verified_at = None
    procedures: list[tuple[str, NotebookRecords]] = []
    levels: list[int] = []
    other_failures: list[str] = []
    copy = run_dir / JOURNAL_COPY
    journal = {r.run: r for r in read_runs(copy)} if copy.is_file() else {}
    for path in notebooks:
        archived = _completed(read_notebook(path), journal)
        drill.update(drill_of(archived))
        run = run or run_of(archived)  # the first notebook's run record starts the incident
        triage = triage or triage_of(archived)
        letter = run_of(archived).get("procedure")
        if letter in PROCEDURES:
            procedures.append((path.name, archived))
        elif letter == "V":
            verification = verification_of(archived)
            verified_at = outcome_of(archived).get("finished_at")
            verification_failed = outcome_of(archived).get("failed_criteria", [])
        elif archived.failed_step:
            other_failures.append(f"{path.name}: {archived.failed_step.name}")
        if level := escalation_of(archived).get("level"):
            levels.append(int(level))
    # The latest run of each procedure decides, as in the post-mortem (postmortem.summarize): a run that
    # halted midway and was resumed (or run again) stays in the directory as history.
    every = procedures
    procedures = [(name, a) for n, (name, a) in enumerate(every) if not _superseded(a, every[n + 1 :])]
    succeeded = bool(procedures) and all(outcome_of(a).get("success") is True for _, a in procedures)
    recovered = succeeded and bool(verification.get("ok"))
    failed_step = None
    for name, archived in procedures:
        if outcome_of(archived).get("success") is not True:
            failed_step = _failed_step(name, archived) or f"{name}: did not reach its outcome"
            break
    if failed_step is None and not recovered:
        if not procedures:
            failed_step = other_failures[0] if other_failures else "no procedure notebook ran"
        else:
            failed = verification_failed or verification.get("failing") or []
            failed_step = f"verification failed: {', '.join(failed)}" if verification else "verification did not run"
    # A restore a superseded run applied still set the restore point, unless the latest run restored again.
    restores = [restore_result_of(a) for _, a in procedures if restore_result_of(a).get("ok")]
    restores = restores or [restore_result_of(a) for _, a in every if restore_result_of(a).get("ok")]
    restore_point = restores[0].get("backup_created_at") if restores else None
    remedies = [remedy_of(a).get("action") for _, a in procedures if remedy_of(a)]
    replayed = [trades_of(a).get("recovered") for _, a in procedures]
    fault_at = drill.get("fault_at")
    ttr = seconds_between(verified_at, fault_at) if recovered else None
    loss = seconds_between(fault_at, restore_point) if restore_point else (0.0 if recovered else None)
    rto, rpo = drill.get("rto_target_s"), drill.get("rpo_target_s")
    return {
        "run_id": drill.get("run_id") or run.get("incident_id") or run_dir.name,
        "kind": run.get("kind"),
        "scenario": drill.get("scenario") or triage.get("scenario_name"),
        "variant": drill.get("variant"),
        "procedure": "+".join(letter for letter in (run_of(a).get("procedure") for _, a in procedures))
        or triage.get("procedure"),
        "started_at": run.get("started_at"),
        "fault_at": fault_at,
        "detected_at": triage.get("detected_at"),
        "recovered_at": verified_at if recovered else None,
        "time_to_detect_s": seconds_between(triage.get("detected_at"), fault_at),
        "time_to_recover_s": ttr,
        "data_loss_window_s": loss,
        "trades_lost": drill.get("trades_lost"),
        "trades_replayed": drill.get("trades_replayed", sum(r for r in replayed if isinstance(r, int))),
        "remedy": remedies[0] if remedies else None,
        "rto_target_s": rto,
        "rpo_target_s": rpo,
        "rto_met": None if ttr is None or rto is None else ttr <= rto,
        "rpo_met": None if loss is None or rpo is None else loss <= rpo,
        "backup_id": restores[0].get("backup_id") if restores else None,
        "escalation_level": max(levels) if levels else None,
        "outcome": "recovered" if recovered else "not_recovered",
        "failed_step": None if recovered else failed_step,
        "resumed": "; ".join(_resumed(a) for _, a in procedures if resume_of(a)) or None,
        "notebooks": [path.name for path in notebooks],
    }


def load_records(outputs_dir: str | Path) -> Any:
    """A pandas DataFrame with one row per drill directory under ``outputs_dir`` (oldest first)."""
    import pandas as pd

    rows = []
    for run_dir in sorted(Path(outputs_dir).iterdir()) if Path(outputs_dir).is_dir() else []:
        if run_dir.is_dir() and not run_dir.name.startswith(("sandbox", ".")):
            row = drill_row(run_dir)
            if row is not None:
                rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)


def week_of_month(day: date) -> int:
    """1-4: days 1-7 are week 1, ..., days 22 and later week 4 (the runbook's monthly schedule)."""
    return min(max(SCHEDULE), (day.day - 1) // 7 + 1)


def due_scenario(day: date | None = None) -> str:
    """The scenario the monthly schedule drills this week."""
    return by_week(week_of_month(day or clock_now().date())).drill
