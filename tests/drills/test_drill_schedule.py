"""Drills: the monthly schedule (which scenario is due, what is overdue)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from recovery_lib.drills.history import COLUMNS, due_scenario, last_drilled, load_records, week_of_month

# --- 5. the monthly schedule ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "week", "scenario"),
    [(1, 1, "config"), (7, 1, "config"), (8, 2, "data"), (14, 2, "data"), (15, 3, "full"), (21, 3, "full")]
    + [(22, 4, "backup"), (28, 4, "backup"), (29, 4, "backup"), (31, 4, "backup")],
)
def test_week_of_month_and_due_scenario(day: int, week: int, scenario: str) -> None:
    assert week_of_month(date(2026, 1, day)) == week
    assert due_scenario(date(2026, 1, day)) == scenario


def _record(scenario: str, fault_at: datetime, outcome: str) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(COLUMNS)
    row.update(
        run_id=f"{fault_at:%Y%m%dT%H%M%SZ}-{scenario}",
        scenario=scenario,
        fault_at=fault_at.isoformat().replace("+00:00", "Z"),
        outcome=outcome,
    )
    return row


def test_last_drilled_flags_never_and_stale_drills_as_overdue() -> None:
    now = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)
    records = pd.DataFrame(
        [
            _record("config", now - timedelta(days=40), "recovered"),
            _record("config", now - timedelta(days=3), "recovered"),
            _record("data", now - timedelta(days=32), "recovered"),
            _record("backup", now - timedelta(days=30), "not_recovered"),
        ],
        columns=COLUMNS,
    )
    table = last_drilled(records, now=now).set_index("scenario")
    assert list(table.index) == ["config", "data", "full", "backup"]
    assert list(table["week"]) == [1, 2, 3, 4]
    assert "OVERDUE" not in table.loc["config", "status"]
    assert table.loc["config", "last_drilled"].startswith((now - timedelta(days=3)).date().isoformat())
    assert table.loc["config", "last_outcome"] == "recovered"
    assert "OVERDUE" in table.loc["data", "status"]
    assert "OVERDUE" in table.loc["full", "status"]
    assert table.loc["full", "last_drilled"] == "never" and table.loc["full", "last_outcome"] == "-"
    assert "OVERDUE" not in table.loc["backup", "status"]
    assert table.loc["backup", "last_outcome"] == "not_recovered"


def test_last_drilled_with_no_records_says_every_drill_is_overdue(tmp_path: Path) -> None:
    table = last_drilled(load_records(tmp_path))
    assert list(table["scenario"]) == ["config", "data", "full", "backup"]
    assert (table["last_drilled"] == "never").all()
    assert table["status"].str.contains("OVERDUE").all()
