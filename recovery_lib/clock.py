"""One clock for every timestamp and duration in records, drills and reports.

Every timestamp is UTC with microseconds and a ``Z`` suffix (``2026-12-02T03:14:07.123456Z``),
so differences between two of them are never distorted by one being truncated. Durations for
people are written in the units people use (``1.2 s``, ``3 min 10 s``, ``2 h 5 min``).
"""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """``moment`` as ISO-8601 UTC with microseconds and ``Z``."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def now_iso() -> str:
    """The current time as :func:`iso` writes it: the one timestamp format of every record."""
    return iso(now())


def parse(text: str | None) -> datetime | None:
    """A timestamp written by :func:`iso` (or any ISO-8601 form, ``Z`` or offset) back to UTC; None for empty."""
    if not text:
        return None
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def seconds_between(later: str | datetime | None, earlier: str | datetime | None) -> float | None:
    """``later - earlier`` in seconds, never negative (None if either is unknown).

    Both ends come from this clock; a wall clock stepped back by NTP between them is the only way
    the difference could come out negative, and a duration shown as negative helps nobody.
    """
    end = parse(later) if isinstance(later, str) or later is None else later
    start = parse(earlier) if isinstance(earlier, str) or earlier is None else earlier
    if end is None or start is None:
        return None
    return round(max(0.0, (end - start).total_seconds()), 6)


def human_duration(seconds: float | None) -> str:
    """``0.4 s``, ``42 s``, ``3 min 10 s``, ``2 h 5 min``, ``3 days 4 h``: no arithmetic for the reader."""
    if seconds is None:
        return "unknown"
    seconds = max(0.0, float(seconds))
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    whole = round(seconds)
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} days {hours} h" if hours else f"{days} days"
