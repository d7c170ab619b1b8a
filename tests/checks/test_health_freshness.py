"""The backups health check against the schedule: every category backed up since the last slot whose
grace has passed, as well as within ``max_age_hours``.

Backups are real (``recovery backup create``) and re-dated; "now" is moved by passing it to
``backup_freshness`` or, for the check itself, by standing in for the clock module the check reads
(as tests/backup/test_backup_retention.py does for the backup creator). Nothing sleeps.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from health_helpers import edit, snapshot, write_backup

from recovery_lib import RecoveryManager, health_check
from recovery_lib import clock as real_clock
from recovery_lib.backup.model import read_metadata
from recovery_lib.checks import freshness
from recovery_lib.checks.freshness import backup_freshness, last_slot
from recovery_lib.cli.main import main
from recovery_lib.site.calendar import parse_calendar
from recovery_lib.site.config import load_site

SANDBOX_SCHEDULE = 'schedule = ["*-*-* 02:00", "Sun *-*-* 03:00"]'
MONDAY = datetime(2026, 3, 16, tzinfo=UTC)  # a Monday; the Sunday before is 2026-03-15


def at(day: datetime, hour: int, minute: int = 0) -> datetime:
    return day.replace(hour=hour, minute=minute)


def fresh(sandbox: Path, now: datetime) -> tuple[bool, str, dict]:
    return backup_freshness(load_site(sandbox), "backups/", now=now)


class Clock:
    """Stands in for the clock module in the freshness check: a "now" the test moves."""

    def __init__(self, current: datetime) -> None:
        self.current = current

    def now(self) -> datetime:
        return self.current

    iso = staticmethod(real_clock.iso)


# --- the slot -----------------------------------------------------------------------------------


def test_the_last_slot_is_the_newest_firing_whose_grace_has_passed() -> None:
    schedule = [parse_calendar("*-*-* 02:00"), parse_calendar("Sun *-*-* 03:00")]
    hour = timedelta(hours=1)
    # Before 03:00 the 02:00 run may still be on its way: yesterday's is the one that must have happened.
    assert last_slot(schedule, hour, at(MONDAY, 2, 59)).at == at(MONDAY - timedelta(days=1), 3)
    assert last_slot(schedule, hour, at(MONDAY, 2, 59)).entry == "Sun *-*-* 03:00"
    slot = last_slot(schedule, hour, at(MONDAY, 3))
    assert (slot.at, slot.entry, slot.grace) == (at(MONDAY, 2), "*-*-* 02:00", hour)
    assert last_slot(schedule, timedelta(minutes=30), at(MONDAY, 2, 30)).at == at(MONDAY, 2)
    assert last_slot((), hour, at(MONDAY, 3)) is None


# --- the check ------------------------------------------------------------------------------------


def test_a_backup_before_the_slot_is_stale_once_the_grace_has_passed(sandbox: Path) -> None:
    backup_id = write_backup(sandbox, at(MONDAY, 1, 59))
    ok, message, details = fresh(sandbox, at(MONDAY, 2, 59))  # the 02:00 run has an hour yet
    assert ok, message
    assert details["last_slot"]["at"].startswith("2026-03-15T03:00") and details["missed_slot"] == []

    ok, message, details = fresh(sandbox, at(MONDAY, 3))

    assert not ok
    assert message == (
        "missed the scheduled backup of 2026-03-16 02:00 UTC (schedule entry '*-*-* 02:00', grace 1 h): "
        f"the newest backup of config, state, data is {backup_id}, taken 2026-03-16 01:59 UTC (1.0 h ago). "
        f"To fix: {freshness.WHAT_TO_DO}"
    )
    assert "`recovery schedule status`" in message and "`recovery backup create`" in message
    assert "scheduler's log" in message
    assert details["missed_slot"] == ["config", "state", "data"]
    assert details["last_slot"] == {"at": "2026-03-16T02:00:00.000000Z", "entry": "*-*-* 02:00", "grace_minutes": 60}
    assert details["age_hours"] == pytest.approx(1.02, abs=0.01)  # far inside max_age_hours: the schedule caught it


def test_a_backup_taken_in_the_slot_is_fresh_until_the_next_slot_has_passed(sandbox: Path) -> None:
    backup_id = write_backup(sandbox, at(MONDAY, 2, 0) + timedelta(seconds=40))
    ok, message, _ = fresh(sandbox, at(MONDAY, 3))
    assert ok and message == f"newest backup {backup_id} is 1.0 h old"
    edit(sandbox / "recovery.toml", SANDBOX_SCHEDULE, SANDBOX_SCHEDULE + "\nmax_age_hours = 48")  # the slot alone
    assert fresh(sandbox, at(MONDAY + timedelta(days=1), 2, 59))[0]
    ok, _, details = fresh(sandbox, at(MONDAY + timedelta(days=1), 3))
    assert not ok and details["missed_slot"] == ["config", "state", "data"]


def test_the_weekly_entry_is_named_when_it_is_the_one_missed(sandbox: Path) -> None:
    sunday = MONDAY - timedelta(days=1)
    write_backup(sandbox, at(sunday, 2, 5))  # the daily run happened; the weekly 03:00 one did not
    ok, message, details = fresh(sandbox, at(sunday, 4, 1))
    assert not ok
    assert message.startswith("missed the scheduled backup of 2026-03-15 03:00 UTC (schedule entry 'Sun *-*-* 03:00'")
    assert details["last_slot"]["entry"] == "Sun *-*-* 03:00"


def test_the_grace_comes_from_recovery_toml(sandbox: Path) -> None:
    edit(sandbox / "recovery.toml", SANDBOX_SCHEDULE, SANDBOX_SCHEDULE + "\ngrace_minutes = 180")
    write_backup(sandbox, at(MONDAY, 1, 0))
    assert fresh(sandbox, at(MONDAY, 4, 59))[0]
    ok, message, _ = fresh(sandbox, at(MONDAY, 5))
    assert not ok and "(schedule entry '*-*-* 02:00', grace 3 h)" in message


def test_each_category_needs_a_backup_since_the_slot(sandbox: Path) -> None:
    full = write_backup(sandbox, at(MONDAY - timedelta(days=1), 2, 1))
    config_only = RecoveryManager(site=sandbox).create_backup(include_state=False, include_data=False)
    path = sandbox / "backups" / config_only / "metadata.json"
    metadata = read_metadata(path.parent)
    metadata.created_at = real_clock.iso(at(MONDAY, 2, 1))
    path.chmod(0o644)
    path.write_bytes(metadata.to_json())

    ok, message, details = fresh(sandbox, at(MONDAY, 3, 30))

    assert not ok
    assert details["missed_slot"] == ["state", "data"]
    assert f"the newest backup of state, data is {full}, taken 2026-03-15 02:01 UTC (25.5 h ago)" in message
    assert config_only not in message
    # max_age_hours fails too (25.5 h > 24 h): both are said, the age first.
    assert message.startswith(f"newest backup (newest of state) {full} is 25.5 h old (max 24 h); missed the scheduled")


def test_without_a_schedule_only_max_age_hours_applies(sandbox: Path) -> None:
    edit(sandbox / "recovery.toml", SANDBOX_SCHEDULE, "")
    backup_id = write_backup(sandbox, at(MONDAY, 1, 0))
    ok, message, details = fresh(sandbox, at(MONDAY, 23, 0))
    assert ok and message == f"newest backup {backup_id} is 22.0 h old"
    assert details["last_slot"] is None and details["schedule"] == []
    ok, message, _ = fresh(sandbox, at(MONDAY + timedelta(days=1), 1, 30))
    assert not ok and message == f"newest backup {backup_id} is 24.5 h old (max 24 h)"


def test_max_age_hours_still_applies_under_a_weekly_schedule(sandbox: Path) -> None:
    edit(sandbox / "recovery.toml", SANDBOX_SCHEDULE, 'schedule = ["Sun *-*-* 03:00"]')
    sunday = MONDAY - timedelta(days=1)
    backup_id = write_backup(sandbox, at(sunday, 3, 5))
    ok, message, details = fresh(sandbox, at(MONDAY, 12))  # the slot is kept, the age is not
    assert not ok and details["missed_slot"] == []
    assert message == f"newest backup {backup_id} is 32.9 h old (max 24 h)"


def test_the_check_result_at_a_moved_clock(sandbox: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the registry, as `recovery health` runs it: the result is data, and checking writes nothing."""
    taken = real_clock.now()
    backup_id = RecoveryManager(site=sandbox).create_backup()  # a real backup, taken now
    clock = Clock(taken)
    monkeypatch.setattr(freshness, "clock", clock)
    assert health_check.run("backups", sandbox).healthy
    slot = last_slot(load_site(sandbox).backup_schedule, timedelta(hours=1), taken + timedelta(hours=23))
    assert slot is not None and slot.at > taken, "a daily slot lies within the next 23 h"
    clock.current = taken + timedelta(hours=23)  # under max_age_hours, past the next slot and its grace
    before = snapshot(sandbox)

    result = health_check.run("backups", sandbox)

    assert snapshot(sandbox) == before
    assert not result.healthy
    assert result.name == "backups" and result.details["missed_slot"] == ["config", "state", "data"]
    assert f"the newest backup of config, state, data is {backup_id}" in result.message
    assert "(23.0 h ago)" in result.message and "max 24 h" not in result.message


def test_recovery_health_json_reports_a_missed_slot(sandbox: Path) -> None:
    """Real time: an hourly schedule is missed by a backup three hours old, whatever the time of day."""
    edit(sandbox / "recovery.toml", SANDBOX_SCHEDULE, 'schedule = ["hourly"]\ngrace_minutes = 30')
    stale = write_backup(sandbox, datetime.now(UTC) - timedelta(hours=3))
    out = io.StringIO()

    code = main(["health", "--site", str(sandbox), "--check", "backups", "--json"], out=out)

    result = json.loads(out.getvalue())["checks"]["backups"]
    assert code == 1 and result["healthy"] is False
    assert "missed the scheduled backup of" in result["message"] and stale in result["message"]
    assert "(schedule entry 'hourly', grace 30 min)" in result["message"]
    assert result["details"]["schedule"] == ["hourly"] and result["details"]["missed_slot"] == [
        "config",
        "state",
        "data",
    ]

    recent = write_backup(sandbox, datetime.now(UTC) - timedelta(minutes=10))  # after any slot 30 min past
    out = io.StringIO()
    assert main(["health", "--site", str(sandbox), "--check", "backups", "--json"], out=out) == 0, out.getvalue()
    assert json.loads(out.getvalue())["checks"]["backups"]["details"]["newest"] == recent
