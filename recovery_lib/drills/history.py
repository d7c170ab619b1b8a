"""Reading drill records back: one row per drill from the executed notebooks in ``outputs/``,
and the monthly drill schedule (week 1 config, 2 data, 3 full, 4 backup)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from ..records import read_notebook

COLUMNS = [
    "run_id",
    "kind",
    "scenario",
    "procedure",
    "started_at",
    "fault_at",
    "detected_at",
    "recovered_at",
    "time_to_detect_s",
    "time_to_recover_s",
    "data_loss_window_s",
    "trades_lost",
    "rto_target_s",
    "rpo_target_s",
    "rto_met",
    "rpo_met",
    "backup_id",
    "escalation_level",
    "outcome",
    "failed_step",
    "notebooks",
]
SCHEDULE = {1: "config", 2: "data", 3: "full", 4: "backup"}  # week of the month -> scenario


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def _seconds(later: datetime | None, earlier: datetime | None) -> float | None:
    return round((later - earlier).total_seconds(), 3) if later and earlier else None


def drill_row(run_dir: Path) -> dict[str, Any] | None:
    """The record of one drill directory, or None if it holds no drill notebook."""
    notebooks = sorted(run_dir.glob("*.ipynb"))
    if not notebooks:
        return None
    merged: dict[str, Any] = {}
    failed_step = None
    procedure = None
    for path in notebooks:
        archived = read_notebook(path)
        for name, value in archived.records.items():
            if name == "drill" and isinstance(value, dict):
                merged.setdefault("drill", {}).update(value)
            elif name == "run" and "run" in merged:
                continue  # the first notebook's run record starts the incident
            else:
                merged.setdefault(name, value)
                if name in ("verification", "escalation", "outcome"):
                    merged[name] = value  # the last notebook to say it wins
        run = archived.records.get("run", {})
        if run.get("procedure") in ("A", "B", "C", "D"):
            procedure = run["procedure"]
        if archived.failed_step and failed_step is None:
            failed_step = f"{path.name}: {archived.failed_step.name}"
        halted = archived.records.get("halted")
        if halted and failed_step is None:
            step = archived.record_steps.get("halted", "?")
            failed_step = f"{path.name}: {step}: halted: {halted.get('reason')}"
    drill = merged.get("drill", {})
    run = merged.get("run", {})
    triage = merged.get("triage", {})
    fault_at, detected_at = _time(drill.get("fault_at")), _time(triage.get("detected_at"))
    verification = merged.get("verification", {})
    recovered_at = _time(merged.get("outcome", {}).get("finished_at")) if verification.get("ok") else None
    restore_point = _time((merged.get("backup_selection") or {}).get("created_at"))
    ttr = _seconds(recovered_at, fault_at)
    loss = _seconds(fault_at, restore_point) if restore_point else (0.0 if verification.get("ok") else None)
    rto, rpo = drill.get("rto_target_s"), drill.get("rpo_target_s")
    return {
        "run_id": drill.get("run_id") or run.get("incident_id") or run_dir.name,
        "kind": run.get("kind"),
        "scenario": drill.get("scenario") or triage.get("scenario_name"),
        "procedure": procedure or triage.get("procedure"),
        "started_at": run.get("started_at"),
        "fault_at": drill.get("fault_at"),
        "detected_at": triage.get("detected_at"),
        "recovered_at": recovered_at.isoformat().replace("+00:00", "Z") if recovered_at else None,
        "time_to_detect_s": _seconds(detected_at, fault_at),
        "time_to_recover_s": ttr,
        "data_loss_window_s": loss,
        "trades_lost": drill.get("trades_lost"),
        "rto_target_s": rto,
        "rpo_target_s": rpo,
        "rto_met": None if ttr is None or rto is None else ttr <= rto,
        "rpo_met": None if loss is None or rpo is None else loss <= rpo,
        "backup_id": (merged.get("backup_selection") or {}).get("backup_id"),
        "escalation_level": (merged.get("escalation") or {}).get("level"),
        "outcome": "recovered" if verification.get("ok") else "not_recovered",
        "failed_step": failed_step,
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
    return min(4, (day.day - 1) // 7 + 1)


def due_scenario(day: date | None = None) -> str:
    """The scenario the monthly schedule drills this week."""
    return SCHEDULE[week_of_month(day or datetime.now(UTC).date())]


def last_drilled(records: Any, now: datetime | None = None) -> Any:
    """Per scenario: when it was last drilled (recovered or not), and whether that is overdue
    (more than 31 days ago, or never)."""
    import pandas as pd

    now = now or datetime.now(UTC)
    rows = []
    for week, scenario in SCHEDULE.items():
        mine = records[records["scenario"] == scenario] if len(records) else records
        last = max((_time(t) for t in mine["fault_at"] if t), default=None) if len(mine) else None
        recovered = bool(len(mine) and (mine["outcome"] == "recovered").iloc[-1])
        overdue = last is None or now - last > timedelta(days=31)
        rows.append(
            {
                "week": week,
                "scenario": scenario,
                "last_drilled": last.strftime("%Y-%m-%d %H:%M UTC") if last else "never",
                "last_outcome": ("recovered" if recovered else "not_recovered") if last else "-",
                "status": "⚠️ OVERDUE" if overdue else "✅ on schedule",
            }
        )
    return pd.DataFrame(rows)
