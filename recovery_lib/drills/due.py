"""Which drills are due: each scenario of the monthly drill schedule against the drill records.

The runbook drills one scenario a week (``recovery_lib.catalog``): week 1 (days 1-7) config, week 2
(days 8-14) data, week 3 (days 15-21) full, week 4 (day 22 to the end of the month) backup. A
scenario's *slot* is its week in the current month once that week has started, else its week in the
previous month. The scenario was drilled in its slot when a drill of it started on or after the
slot's first day and recovered; a drill that ran and did not recover is shown with its outcome and
does not count. Not drilled in its slot: DUE while the slot's week lasts, OVERDUE after.

One computation for ``recovery drill due``, ``recovery drill run --due`` (which runs what is due: a
scheduler that missed a week catches up) and the records page's schedule table.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, NamedTuple

from recovery_lib.clock import now as clock_now
from recovery_lib.clock import parse
from recovery_lib.drills.history import SCHEDULE

OK, DUE, OVERDUE = "ok", "DUE", "OVERDUE"
# How the records page marks each state (the CLI prints the plain word).
STATUS_MARKS = {OK: "✅ drilled in its slot", DUE: "⏳ DUE this week", OVERDUE: "⚠️ OVERDUE"}
WEEK_DAYS = 7


class Drill(NamedTuple):
    """One drill of the records, as far as the schedule cares."""

    started: datetime
    scenario: str
    outcome: str  # "recovered", "not_recovered"
    run_id: str


@dataclass(frozen=True)
class DrillSlot:
    """The week of the month (UTC days, inclusive) in which the schedule drills one scenario."""

    scenario: str
    week: int
    first: date
    last: date

    @property
    def start(self) -> datetime:
        """Midnight UTC of the slot's first day: a drill started then or later counts."""
        return datetime(self.first.year, self.first.month, self.first.day, tzinfo=UTC)

    def text(self) -> str:
        """``2026-03-08..2026-03-14``."""
        return f"{self.first.isoformat()}..{self.last.isoformat()}"


@dataclass(frozen=True)
class DrillDue:
    """One scenario against its slot: the state, and its newest drill whatever the outcome."""

    slot: DrillSlot
    state: str  # OK, DUE or OVERDUE
    last_at: datetime | None  # when the newest drill of the scenario started (None: never drilled)
    last_outcome: str | None  # "recovered" or "not_recovered"
    last_run_id: str | None
    drilled_by: str | None  # the run id of the recovered drill that satisfied the slot

    @property
    def due(self) -> bool:
        """Not drilled in its slot: the next scheduled (or catch-up) drill should run it."""
        return self.state != OK

    @property
    def scenario(self) -> str:
        """The drill scenario: ``config``, ``data``, ``full`` or ``backup``."""
        return self.slot.scenario

    def last_text(self) -> str:
        """``2026-03-09 04:00 UTC recovered``, or ``never``."""
        if self.last_at is None:
            return "never"
        return f"{_minute(self.last_at)} {(self.last_outcome or 'unknown').replace('_', ' ')}"

    def to_dict(self) -> dict[str, Any]:
        """The row as JSON (``recovery drill due --json``)."""
        return {
            "scenario": self.scenario,
            "week": self.slot.week,
            "slot_first": self.slot.first.isoformat(),
            "slot_last": self.slot.last.isoformat(),
            "state": self.state,
            "due": self.due,
            "last_started_at": self.last_at.isoformat().replace("+00:00", "Z") if self.last_at else None,
            "last_outcome": self.last_outcome,
            "last_run_id": self.last_run_id,
            "drilled_by": self.drilled_by,
        }


def slot_of(scenario: str, week: int, today: date) -> DrillSlot:
    """``week``'s days in this month if they have started by ``today``, else in the previous month."""
    first_day = WEEK_DAYS * (week - 1) + 1
    month = today.replace(day=1)
    if today.day < first_day:
        month = (month - timedelta(days=1)).replace(day=1)
    month_days = calendar.monthrange(month.year, month.month)[1]
    last_day = month_days if week == max(SCHEDULE) else WEEK_DAYS * week  # the last week runs to the month's end
    return DrillSlot(scenario, week, month.replace(day=first_day), month.replace(day=last_day))


def drills_due(records: Any, now: datetime | None = None) -> list[DrillDue]:
    """Every scenario of the schedule (in week order) against ``records`` (``load_records``' DataFrame)
    at ``now`` (default: the clock's)."""
    now = now or clock_now()
    today = now.astimezone(UTC).date()
    drills = _drills(records)
    found = []
    for week, scenario in SCHEDULE.items():
        slot = slot_of(scenario, week, today)
        mine = [d for d in drills if d.scenario == scenario]
        last = mine[-1] if mine else None
        satisfying = [d for d in mine if d.started >= slot.start and d.outcome == "recovered"]
        state = OK if satisfying else DUE if today <= slot.last else OVERDUE
        found.append(
            DrillDue(
                slot=slot,
                state=state,
                last_at=last.started if last else None,
                last_outcome=last.outcome if last else None,
                last_run_id=last.run_id if last else None,
                drilled_by=satisfying[-1].run_id if satisfying else None,
            )
        )
    return found


def due_frame(dues: list[DrillDue]) -> Any:
    """The records page's schedule table: week, scenario, slot, last drilled, last outcome, status."""
    import pandas as pd

    return pd.DataFrame(
        [
            {
                "week": due.slot.week,
                "scenario": due.scenario,
                "slot": due.slot.text(),
                "last_drilled": _minute(due.last_at) if due.last_at else "never",
                "last_outcome": (due.last_outcome or "-").replace("_", " ") if due.last_at else "-",
                "status": STATUS_MARKS[due.state],
            }
            for due in dues
        ]
    )


def due_report(
    dues: list[DrillDue], records_dir: str, today: date, exists: bool = True, action: str | None = None
) -> str:
    """``recovery drill due``'s text: one line per scenario, then what to run (``action``: what is
    done about the due ones instead of telling the reader to run them)."""
    where = records_dir if exists else f"{records_dir} (does not exist yet: no drill has written there)"
    lines = [
        f"Drill records: {where}",
        f"Today {today.isoformat()} (UTC); a scenario is drilled in its slot when a drill of it started in or "
        "after its week and recovered.",
        f"{'scenario':<9}{'week':<6}{'slot':<24}{'last drill':<40}status",
    ]
    for due in dues:
        lines.append(f"{due.scenario:<9}{due.slot.week:<6}{due.slot.text():<24}{due.last_text():<40}{due.state}")
    pending = [due.scenario for due in dues if due.due]
    if pending:
        todo = action or f"Run them with: recovery drill run --due --outputs {records_dir}"
        lines.append(f"Not drilled in their slot: {', '.join(pending)}. {todo}")
    else:
        lines.append("Every scenario was drilled in its slot.")
    return "\n".join(lines) + "\n"


def _drills(records: Any) -> list[Drill]:
    """Every drill in ``records``, oldest first.

    The start is the run's ``started_at`` (the fault time for a record that lacks it); a record with
    neither cannot be placed in a slot and is left out. A real incident is not a drill.
    """
    drills: list[Drill] = []
    if records is None or not len(records):
        return drills
    for row in records.to_dict("records"):
        if _text(row.get("kind")) == "incident":
            continue
        started = parse(_text(row.get("started_at"))) or parse(_text(row.get("fault_at")))
        scenario = _text(row.get("scenario"))
        if started is None or scenario is None:
            continue
        outcome, run_id = _text(row.get("outcome")) or "unknown", _text(row.get("run_id")) or "?"
        drills.append(Drill(started, scenario, outcome, run_id))
    return sorted(drills, key=lambda d: d.started)


def _text(value: Any) -> str | None:
    """A record field as text; None for missing values (None, or pandas' NaN)."""
    return value if isinstance(value, str) and value else None


def _minute(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


__all__ = ["DUE", "OK", "OVERDUE", "DrillDue", "DrillSlot", "drills_due", "due_frame", "due_report", "slot_of"]
