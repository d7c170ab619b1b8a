"""Drills: the monthly schedule (which scenario is due, what is overdue), against the records."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from drill_records import utc, write_drill

from recovery_lib.drills.due import DUE, OK, OVERDUE, drills_due, due_frame, slot_of
from recovery_lib.drills.history import COLUMNS, due_scenario, load_records, week_of_month
from recovery_lib.drills.report import schedule_table

# --- 5. the monthly schedule ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "week", "scenario"),
    [(1, 1, "config"), (7, 1, "config"), (8, 2, "data"), (14, 2, "data"), (15, 3, "full"), (21, 3, "full")]
    + [(22, 4, "backup"), (28, 4, "backup"), (29, 4, "backup"), (31, 4, "backup")],
)
def test_week_of_month_and_due_scenario(day: int, week: int, scenario: str) -> None:
    assert week_of_month(date(2026, 1, day)) == week
    assert due_scenario(date(2026, 1, day)) == scenario


# --- each scenario's slot ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("today", "slots"),
    [
        # Mid-month: weeks 1-3 of this month have started, week 4 is last month's (February: to the 28th).
        (
            date(2026, 3, 20),
            ["2026-03-01..2026-03-07", "2026-03-08..2026-03-14", "2026-03-15..2026-03-21"] + ["2026-02-22..2026-02-28"],
        ),
        # The first day: only week 1 has started; the rest are December's (week 4 runs to the 31st).
        (
            date(2026, 1, 1),
            ["2026-01-01..2026-01-07", "2025-12-08..2025-12-14", "2025-12-15..2025-12-21"] + ["2025-12-22..2025-12-31"],
        ),
        (
            date(2028, 3, 7),
            ["2028-03-01..2028-03-07", "2028-02-08..2028-02-14", "2028-02-15..2028-02-21"] + ["2028-02-22..2028-02-29"],
        ),  # a leap year's February
        (
            date(2026, 4, 22),
            ["2026-04-01..2026-04-07", "2026-04-08..2026-04-14", "2026-04-15..2026-04-21"] + ["2026-04-22..2026-04-30"],
        ),
    ],
)
def test_each_scenario_has_its_week_this_month_once_started_else_last_month(today: date, slots: list[str]) -> None:
    found = [slot_of(scenario, week, today) for week, scenario in enumerate(["config", "data", "full", "backup"], 1)]
    assert [slot.text() for slot in found] == slots
    assert all(slot.first <= today for slot in found)


# --- drilled in the slot, due, overdue ---------------------------------------------------------------

NOW = utc(2026, 3, 20, 12)  # week 3: config's and data's slots have passed, full's is now, backup's is February's


def states(outputs: Path, now: datetime = NOW) -> dict[str, Any]:
    return {due.scenario: due for due in drills_due(load_records(outputs), now)}


def test_no_records_every_scenario_is_due_or_overdue(tmp_path: Path) -> None:
    found = states(tmp_path / "never-written")
    assert {s: d.state for s, d in found.items()} == {
        "config": OVERDUE,
        "data": OVERDUE,
        "full": DUE,
        "backup": OVERDUE,
    }
    assert all(d.last_at is None and d.last_text() == "never" and d.due for d in found.values())


def test_a_recovered_drill_in_or_after_the_slot_counts_and_a_failed_one_does_not(tmp_path: Path) -> None:
    drilled = write_drill(tmp_path, "config", utc(2026, 3, 2, 4))  # in its week
    write_drill(tmp_path, "data", utc(2026, 2, 10, 4))  # last month's slot: not this month's
    write_drill(tmp_path, "data", utc(2026, 3, 7, 23, 59))  # a minute before its week began
    failed = write_drill(tmp_path, "full", utc(2026, 3, 16, 4), recovered=False)
    caught_up = write_drill(tmp_path, "backup", utc(2026, 3, 3, 4))  # after February's slot (catch-up)

    found = states(tmp_path)

    assert (found["config"].state, found["config"].drilled_by) == (OK, drilled)
    assert found["config"].last_text() == "2026-03-02 04:00 UTC recovered"
    assert found["data"].state == OVERDUE and found["data"].drilled_by is None
    assert found["data"].last_at == utc(2026, 3, 7, 23, 59)
    assert (found["full"].state, found["full"].last_run_id, found["full"].last_outcome) == (
        DUE,
        failed,
        "not_recovered",
    )
    assert found["full"].last_text() == "2026-03-16 04:00 UTC not recovered"
    assert (found["backup"].state, found["backup"].drilled_by) == (OK, caught_up)
    # A day later the full drill's week is over: due becomes overdue.
    assert states(tmp_path, utc(2026, 3, 22, 0, 1))["full"].state == OVERDUE
    # On April 1st config's slot is April's: March's drill no longer counts.
    assert states(tmp_path, utc(2026, 4, 1))["config"].state == DUE


def test_a_failure_after_a_recovered_drill_keeps_the_slot_and_shows_the_failure(tmp_path: Path) -> None:
    good = write_drill(tmp_path, "config", utc(2026, 3, 2, 4))
    write_drill(tmp_path, "config", utc(2026, 3, 9, 4), recovered=False)
    config = states(tmp_path)["config"]
    assert (config.state, config.drilled_by, config.last_outcome) == (OK, good, "not_recovered")


def test_a_real_incident_is_not_a_drill(tmp_path: Path) -> None:
    write_drill(tmp_path, "config", utc(2026, 3, 2, 4), kind="incident")
    config = states(tmp_path)["config"]
    assert config.state == OVERDUE and config.last_at is None


def _record(scenario: str, started: datetime | None, fault_at: datetime | None, outcome: str) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(COLUMNS)
    row.update(
        run_id=f"old-{scenario}",
        scenario=scenario,
        started_at=started.isoformat().replace("+00:00", "Z") if started else None,
        fault_at=fault_at.isoformat().replace("+00:00", "Z") if fault_at else None,
        outcome=outcome,
    )
    return row


def test_a_record_without_a_start_is_placed_by_its_fault_time_or_left_out() -> None:
    records = pd.DataFrame(
        [
            _record("config", None, utc(2026, 3, 3, 4), "recovered"),  # an older record: no run start
            _record("data", None, None, "recovered"),  # nothing to place it by
        ],
        columns=COLUMNS,
    )
    found = {due.scenario: due for due in drills_due(records, NOW)}
    assert found["config"].state == OK and found["config"].last_at == utc(2026, 3, 3, 4)
    assert found["data"].state == OVERDUE and found["data"].last_at is None


def test_the_records_page_shows_the_same_computation(tmp_path: Path) -> None:
    write_drill(tmp_path, "config", utc(2026, 3, 2, 4))
    write_drill(tmp_path, "full", utc(2026, 3, 16, 4), recovered=False)
    records = load_records(tmp_path)
    frame = due_frame(drills_due(records, NOW)).set_index("scenario")
    assert list(frame.columns) == ["week", "slot", "last_drilled", "last_outcome", "status"]
    assert frame.loc["config", "last_drilled"] == "2026-03-02 04:00 UTC"
    assert frame.loc["config", "status"] == "✅ drilled in its slot"
    assert frame.loc["full", "last_outcome"] == "not recovered" and "DUE" in frame.loc["full", "status"]
    assert frame.loc["data", "last_drilled"] == "never" and "OVERDUE" in frame.loc["data", "status"]
    assert frame.loc["backup", "slot"] == "2026-02-22..2026-02-28"

    page = schedule_table(records).data  # the page's cell: today, with the same rows
    today = {due.scenario: due for due in drills_due(records)}
    assert 'class="dataframe schedule"' in page and "last drilled" in page and "slot" in page
    for scenario, due in today.items():
        assert f"<td>{scenario}</td>" in page and due.slot.text() in page
    assert page.count("never") == sum(due.last_at is None for due in today.values())


def test_now_defaults_to_the_clock(tmp_path: Path) -> None:
    write_drill(tmp_path, "config", datetime.now(UTC))  # a drill just now counts in whatever slot is current
    assert next(d for d in drills_due(load_records(tmp_path)) if d.scenario == "config").state == OK
