"""Freshness of the local backups, the part of the ``backups`` health check that asks "is it recent?".

Two rules, either failing fails the check:

- ``[backups] max_age_hours``: the newest successful backup of every category is younger than this.
- ``[backups] schedule`` (when declared): every category has a successful backup taken at or after
  the last scheduled run whose grace (``[backups] grace_minutes``, default 1 h) has passed. A
  nightly 02:00 schedule is therefore missed at 03:00, not a day later when ``max_age_hours`` would
  notice; a weekly schedule is not called stale on the days it does not run.

The time comes from :func:`recovery_lib.clock.now` (once per check, so every age and the slot agree).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from recovery_lib import clock
from recovery_lib.backup.listing import read_backups
from recovery_lib.backup.model import CATEGORIES, PRE_RECOVERY_TAG, BackupMetadata, BackupStatus
from recovery_lib.clock import human_duration
from recovery_lib.site.calendar import Calendar
from recovery_lib.site.config import Site

WHAT_TO_DO = (
    "check that the schedule is installed with `recovery schedule status`, read the scheduler's log "
    "(`journalctl` for the systemd timer, the cron log for crontab) for why it did not run or failed, "
    "then take a backup now with `recovery backup create` (Procedure D)"
)


@dataclass(frozen=True)
class Slot:
    """The last scheduled backup run whose grace has passed: every category must be backed up since."""

    at: datetime  # when the schedule fired (UTC, minute precision)
    entry: str  # the ``[backups] schedule`` entry it came from, as written in recovery.toml
    grace: timedelta

    def describe(self) -> str:
        """``2026-03-20 02:00 UTC (schedule entry '*-*-* 02:00', grace 1 h)``."""
        return f"{_utc(self.at)} (schedule entry {self.entry!r}, grace {human_duration(self.grace.total_seconds())})"

    def to_dict(self) -> dict[str, Any]:
        """The slot for the check's details (JSON)."""
        return {
            "at": clock.iso(self.at),
            "entry": self.entry,
            "grace_minutes": self.grace.total_seconds() / 60,
        }


def last_slot(schedule: Sequence[Calendar], grace: timedelta, now: datetime) -> Slot | None:
    """The newest firing of ``schedule`` at or before ``now - grace``, and the entry it came from.

    None when nothing is scheduled (or no entry fired in the last four years).
    """
    cutoff = now - grace
    best: Slot | None = None
    for calendar in schedule:
        at = calendar.previous(cutoff)
        if at is not None and (best is None or at > best.at):
            best = Slot(at, calendar.text, grace)
    return best


def missed_slot(slot: Slot, newest: dict[str, BackupMetadata], now: datetime) -> tuple[list[str], str | None]:
    """The categories whose newest successful backup is older than ``slot``, and the message naming
    them (None when none is): the slot, each stale category's newest backup with its time and age,
    and what to do."""
    stale = [c for c, backup in newest.items() if backup.created < slot.at]
    if not stale:
        return [], None
    by_backup: dict[str, list[str]] = {}  # one backup often is the newest of several categories
    for category in stale:
        by_backup.setdefault(newest[category].backup_id, []).append(category)
    found = "; ".join(
        f"the newest backup of {', '.join(categories)} is {backup_id}, taken "
        f"{_utc(newest[categories[0]].created)} ({newest[categories[0]].age_hours(now):.1f} h ago)"
        for backup_id, categories in by_backup.items()
    )
    message = f"missed the scheduled backup of {slot.describe()}: {found}. To fix: {WHAT_TO_DO}"
    return stale, message


def backup_freshness(site: Site, shown: str, now: datetime | None = None) -> tuple[bool, str, dict[str, Any]]:
    """Whether the site's backups are fresh by ``max_age_hours`` and by its schedule, the message for
    people, and the details (JSON) for the check's result. ``shown`` is the backup directory as the
    message names it."""
    now = now or clock.now()
    backups, _ = read_backups(site.backup_dir)
    # A pre-recovery snapshot holds a broken state: it is evidence, not a fresh recovery point.
    successful = [b for b in backups if b.status is BackupStatus.SUCCESS and PRE_RECOVERY_TAG not in b.tags]
    if not successful:
        return False, f"no successful backups in {shown} (Procedure D: create one now)", {"count": len(backups)}
    # Fresh means fresh for every category: a config-only backup says nothing about the data.
    found = {c: next((b for b in successful if b.includes(c)), None) for c in CATEGORIES}
    missing = [c for c, b in found.items() if b is None]
    if missing:
        return (
            False,
            f"no successful backup of {', '.join(missing)} in {shown} (create a full backup now)",
            {"missing": missing},
        )
    newest = {c: b for c, b in found.items() if b is not None}
    category, stalest = max(newest.items(), key=lambda item: item[1].age_hours(now))
    backup_id, age_hours = stalest.backup_id, stalest.age_hours(now)
    slot = last_slot(site.backup_schedule, site.ops.backup_grace, now)
    stale, missed = missed_slot(slot, newest, now) if slot else ([], None)
    details: dict[str, Any] = {
        "newest": successful[0].backup_id,
        "stalest_category": category,
        "age_hours": round(age_hours, 2),
        "max_age_hours": site.max_backup_age_hours,
        "schedule": [calendar.text for calendar in site.backup_schedule],
        "last_slot": slot.to_dict() if slot else None,
        "missed_slot": stale,  # the categories without a backup since the last slot
    }
    every = "" if stalest is successful[0] else f" (newest of {category})"
    problems = []
    if age_hours > site.max_backup_age_hours:
        problems.append(
            f"newest backup{every} {backup_id} is {age_hours:.1f} h old (max {site.max_backup_age_hours:g} h)"
        )
    if missed:
        problems.append(missed)
    if problems:
        return False, "; ".join(problems), details
    return True, f"newest backup{every} {backup_id} is {age_hours:.1f} h old", details


def _utc(moment: datetime) -> str:
    return clock.iso(moment)[:16].replace("T", " ") + " UTC"


__all__ = ["Slot", "backup_freshness", "last_slot", "missed_slot"]
