"""Schedule entries of ``recovery.toml``: systemd calendar expressions and cron expressions, in UTC.

One model for both: the minutes, hours, days of the month, months and weekdays a schedule fires on,
at minute precision. From it: the next and previous firing (what freshness is measured against),
the longest gap between firings (what the metrics export for alert rules), and the same schedule
written back as systemd ``OnCalendar=`` values or crontab lines (what ``recovery schedule install``
writes). Supported, refused with a reason otherwise:

- systemd: ``[WEEKDAYS] [[*-]MONTH-DAY] [HOUR:MINUTE[:00]] [UTC]`` where each field is ``*``, a
  number, ``a..b``, a list ``a,b`` and an optional ``/step``; weekdays ``Mon..Fri`` or ``Mon,Sun``;
  the shorthands ``minutely hourly daily weekly monthly quarterly semiannually yearly``. Year must
  be ``*``; seconds must be 0; ``~`` (last days) and time zones other than UTC are refused.
- cron: five fields ``minute hour day-of-month month day-of-week`` with ``*``, ``a-b``, lists,
  ``/step`` and names (``jan``, ``mon``); the macros ``@hourly @daily @midnight @weekly @monthly
  @yearly @annually``. As in cron, when both day-of-month and day-of-week are restricted a day
  matching either fires.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from recovery_lib.errors import CalendarError

WEEKDAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # index 0 = Monday, as date.weekday()
MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
SYSTEMD_SHORTHANDS = {
    "minutely": "*-*-* *:*:00",
    "hourly": "*-*-* *:00:00",
    "daily": "*-*-* 00:00:00",
    "weekly": "Mon *-*-* 00:00:00",
    "monthly": "*-*-01 00:00:00",
    "quarterly": "*-01,04,07,10-01 00:00:00",
    "semiannually": "*-01,07-01 00:00:00",
    "yearly": "*-01-01 00:00:00",
    "annually": "*-01-01 00:00:00",
}
CRON_MACROS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
_CRON_TOKEN = re.compile(r"^[0-9a-zA-Z*,/\-]+$")
_HORIZON_DAYS = 4 * 366 + 7  # every weekday on every date of a leap cycle


@dataclass(frozen=True)
class Calendar:
    """One schedule entry, parsed. Times are UTC; the smallest unit is the minute."""

    text: str
    kind: str  # "systemd" or "cron": how it was written
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]  # 1-31
    months: frozenset[int]  # 1-12
    weekdays: frozenset[int]  # 0 = Monday ... 6 = Sunday
    either_day: bool = False  # cron's rule: day-of-month OR day-of-week when both are restricted

    def fires_on(self, day: date) -> bool:
        """Whether the schedule fires at some time on ``day``."""
        if day.month not in self.months:
            return False
        by_day, by_weekday = day.day in self.days, day.weekday() in self.weekdays
        return (by_day or by_weekday) if self.either_day else (by_day and by_weekday)

    def times(self) -> list[int]:
        """Minutes after midnight it fires at on a day it fires on, ascending."""
        return sorted(h * 60 + m for h in self.hours for m in self.minutes)

    def next_after(self, moment: datetime) -> datetime | None:
        """The first firing strictly after ``moment`` (None if none within four years)."""
        return next_after([self], moment)

    def previous(self, moment: datetime) -> datetime | None:
        """The last firing at or before ``moment`` (None if none within four years)."""
        return previous([self], moment)

    def on_calendar(self) -> list[str]:
        """The systemd ``OnCalendar=`` values (two when cron's either-day rule needs it)."""
        time = f"{_list(self.hours, 0, 23, 2)}:{_list(self.minutes, 0, 59, 2)}:00"
        months = _list(self.months, 1, 12, 2)
        if self.either_day:
            return [
                f"*-{months}-{_list(self.days, 1, 31, 2)} {time} UTC",
                f"{_weekday_list(self.weekdays)} *-{months}-* {time} UTC",
            ]
        weekdays = "" if len(self.weekdays) == 7 else _weekday_list(self.weekdays) + " "
        return [f"{weekdays}*-{months}-{_list(self.days, 1, 31, 2)} {time} UTC"]

    def cron(self) -> str:
        """The five crontab fields; CalendarError when cron cannot say it (a weekday AND a date)."""
        all_days, all_weekdays = len(self.days) == 31, len(self.weekdays) == 7
        if not self.either_day and not all_days and not all_weekdays:
            raise CalendarError(
                f"{self.text!r} fires on a weekday AND a day of the month, which cron cannot express "
                "(cron fires on either); install it with --systemd."
            )
        cron_weekdays = sorted((d + 1) % 7 for d in self.weekdays)  # cron: 0 = Sunday
        return " ".join(
            [
                _list(self.minutes, 0, 59),
                _list(self.hours, 0, 23),
                _list(self.days, 1, 31),
                _list(self.months, 1, 12),
                "*" if all_weekdays else ",".join(str(d) for d in cron_weekdays),
            ]
        )


def parse_calendar(text: str) -> Calendar:
    """Parse one schedule entry (systemd calendar or cron); CalendarError says what is wrong."""
    if not isinstance(text, str) or not text.strip():
        raise CalendarError("is empty; write a systemd calendar (e.g. '*-*-* 02:00') or cron ('0 2 * * *').")
    stripped = " ".join(text.split())
    fields = stripped.split(" ")
    if stripped.startswith("@") or (len(fields) == 5 and all(_CRON_TOKEN.match(f) for f in fields)):
        calendar = _parse_cron(stripped, text)
    else:
        calendar = _parse_systemd(stripped, text)
    if next_after([calendar], datetime(2000, 1, 1, tzinfo=UTC)) is None:
        raise CalendarError(f"{text!r} never fires (no such date); check the day and month.")
    return calendar


def next_after(calendars: Sequence[Calendar], moment: datetime) -> datetime | None:
    """The first firing of any of ``calendars`` strictly after ``moment``."""
    start = _utc(moment).replace(second=0, microsecond=0) + timedelta(minutes=1)
    for offset in range(_HORIZON_DAYS):
        day = start.date() + timedelta(days=offset)
        floor = start.hour * 60 + start.minute if offset == 0 else 0
        times = [t for c in calendars if c.fires_on(day) for t in c.times() if t >= floor]
        if times:
            return _at(day, min(times))
    return None


def previous(calendars: Sequence[Calendar], moment: datetime) -> datetime | None:
    """The last firing of any of ``calendars`` at or before ``moment``."""
    end = _utc(moment)
    for offset in range(_HORIZON_DAYS):
        day = end.date() - timedelta(days=offset)
        ceiling = end.hour * 60 + end.minute if offset == 0 else 24 * 60
        times = [t for c in calendars if c.fires_on(day) for t in c.times() if t <= ceiling]
        if times:
            return _at(day, max(times))
    return None


def longest_gap(calendars: Sequence[Calendar]) -> timedelta | None:
    """The longest time between two consecutive firings of the union of ``calendars`` (None if empty).

    Computed over eight years of days (two leap cycles), so month lengths, leap days and weekday/date
    combinations are all seen; what an alert on "older than its schedule" compares a backup's age with.
    """
    if not calendars:
        return None
    first_day = date(2024, 1, 1)
    per_day: dict[tuple[int, ...], tuple[int, int, int]] = {}  # matching calendars -> first, last, inner gap
    gap, last = 0, None
    for offset in range(2 * _HORIZON_DAYS):
        day = first_day + timedelta(days=offset)
        key = tuple(i for i, c in enumerate(calendars) if c.fires_on(day))
        if not key:
            continue
        if key not in per_day:
            times = sorted({t for i in key for t in calendars[i].times()})
            inner = max((b - a for a, b in zip(times, times[1:], strict=False)), default=0)
            per_day[key] = (times[0], times[-1], inner)
        first, final, inner = per_day[key]
        start = offset * 24 * 60
        gap = max(gap, inner, start + first - last if last is not None else 0)
        last = start + final
    return timedelta(minutes=gap) if last is not None else None


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"{moment!r} has no time zone; schedules are UTC (use recovery_lib.clock.now()).")
    return moment.astimezone(UTC)


def _at(day: date, minute: int) -> datetime:
    return datetime(day.year, day.month, day.day, minute // 60, minute % 60, tzinfo=UTC)


def _list(values: Iterable[int], low: int, high: int, width: int = 1) -> str:
    """``*`` for the whole range, else a comma list (both systemd and cron read it)."""
    ordered = sorted(values)
    return "*" if ordered == list(range(low, high + 1)) else ",".join(str(v).zfill(width) for v in ordered)


def _weekday_list(weekdays: Iterable[int]) -> str:
    return ",".join(WEEKDAY_NAMES[d].capitalize() for d in sorted(weekdays))


def _field(
    text: str, low: int, high: int, what: str, entry: str, range_sep: str, names: Sequence[str] = ()
) -> frozenset[int]:
    """One field: ``*``, ``n``, ``a<sep>b``, lists, ``/step``; names map to ``low + index``."""

    def number(token: str) -> int:
        if token.lower() in names:
            return low + names.index(token.lower())
        if not token.isdigit():
            raise CalendarError(f"{entry!r}: {token!r} is not a {what}.")
        return int(token)

    values: set[int] = set()
    for item in text.split(","):
        base, _, step_text = item.partition("/")
        if step_text and not (step_text.isdigit() and int(step_text) > 0):
            raise CalendarError(f"{entry!r}: step {step_text!r} of the {what} must be a positive number.")
        step = int(step_text) if step_text else 1
        if base == "*":
            first, last = low, high
        elif range_sep in base:
            left, _, right = base.partition(range_sep)
            first, last = number(left), number(right)
        else:
            first = number(base)
            last = high if step_text else first
        if not (low <= first <= high and low <= last <= high) or first > last:
            raise CalendarError(f"{entry!r}: {what} {base!r} is outside {low}-{high}.")
        values.update(range(first, last + 1, step))
    return frozenset(values)


def _parse_cron(stripped: str, entry: str) -> Calendar:
    if stripped.startswith("@"):
        if stripped not in CRON_MACROS:
            raise CalendarError(f"{entry!r}: unknown cron macro; use one of {', '.join(CRON_MACROS)}.")
        stripped = CRON_MACROS[stripped]
    minute, hour, day, month, weekday = stripped.split(" ")
    sunday_first = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
    cron_weekdays = _field(weekday, 0, 7, "weekday", entry, "-", sunday_first)
    weekdays = frozenset((d - 1) % 7 for d in cron_weekdays)  # cron 0/7 = Sunday -> 6
    days = _field(day, 1, 31, "day of the month", entry, "-")
    return Calendar(
        text=entry,
        kind="cron",
        minutes=_field(minute, 0, 59, "minute", entry, "-"),
        hours=_field(hour, 0, 23, "hour", entry, "-"),
        days=days,
        months=_field(month, 1, 12, "month", entry, "-", MONTH_NAMES),
        weekdays=weekdays,
        either_day=day != "*" and weekday != "*",
    )


def _parse_systemd(stripped: str, entry: str) -> Calendar:
    words = stripped.split(" ")
    if words[-1] in ("UTC", "utc"):
        words = words[:-1]
    elif (
        words
        and re.match(r"^[A-Za-z]+/[A-Za-z_]+$|^[A-Z]{3,4}$", words[-1])
        and words[-1].lower() not in (WEEKDAY_NAMES)
    ):
        raise CalendarError(f"{entry!r}: time zone {words[-1]!r}; schedules are always UTC (write UTC or nothing).")
    if len(words) == 1 and words[0].lower() in SYSTEMD_SHORTHANDS:
        words = SYSTEMD_SHORTHANDS[words[0].lower()].split(" ")
    weekdays = frozenset(range(7))
    if words and re.match(r"^[A-Za-z]", words[0]):
        weekdays = _weekdays(words.pop(0), entry)
    date_text, time_text = "*-*-*", "00:00:00"
    for word in words:
        if "-" in word and ":" not in word:
            date_text = word
        elif ":" in word and "-" not in word:
            time_text = word
        else:
            raise CalendarError(
                f"{entry!r}: cannot read {word!r}; write a systemd calendar such as 'Mon..Fri *-*-* 02:00' "
                "or a cron expression such as '0 2 * * 1-5'."
            )
    if "~" in date_text:
        raise CalendarError(f"{entry!r}: '~' (days from the end of the month) is not supported.")
    parts = date_text.split("-")
    if len(parts) == 2:
        parts = ["*", *parts]
    if len(parts) != 3:
        raise CalendarError(f"{entry!r}: date {date_text!r} must be YEAR-MONTH-DAY or MONTH-DAY.")
    if parts[0] != "*":
        raise CalendarError(f"{entry!r}: a year ({parts[0]!r}) makes it a one-off; schedules repeat, use '*'.")
    clock = time_text.split(":")
    if len(clock) not in (2, 3):
        raise CalendarError(f"{entry!r}: time {time_text!r} must be HOUR:MINUTE[:SECOND].")
    if len(clock) == 3 and clock[2] not in ("0", "00"):
        raise CalendarError(f"{entry!r}: seconds must be 00; schedules run to the minute.")
    return Calendar(
        text=entry,
        kind="systemd",
        minutes=_field(clock[1], 0, 59, "minute", entry, ".."),
        hours=_field(clock[0], 0, 23, "hour", entry, ".."),
        days=_field(parts[2], 1, 31, "day of the month", entry, ".."),
        months=_field(parts[1], 1, 12, "month", entry, ".."),
        weekdays=weekdays,
    )


def _weekdays(text: str, entry: str) -> frozenset[int]:
    def one(token: str) -> int:
        key = token.lower()[:3]
        if key not in WEEKDAY_NAMES or not WEEKDAY_NAMES[WEEKDAY_NAMES.index(key)].startswith(key):
            raise CalendarError(
                f"{entry!r}: {token!r} is not a weekday (Mon ... Sun). Write a systemd calendar such as "
                "'*-*-* 02:00' or 'Sun *-*-* 03:00', or a cron expression such as '0 2 * * *', in UTC."
            )
        return WEEKDAY_NAMES.index(key)

    days: set[int] = set()
    for item in text.split(","):
        sep = ".." if ".." in item else ("-" if "-" in item else None)
        if sep:
            left, _, right = item.partition(sep)
            first, last = one(left), one(right)
            days.update(range(first, last + 1) if first <= last else [*range(first, 7), *range(0, last + 1)])
        else:
            days.add(one(item))
    return frozenset(days)


__all__ = ["Calendar", "CalendarError", "longest_gap", "next_after", "parse_calendar", "previous"]
