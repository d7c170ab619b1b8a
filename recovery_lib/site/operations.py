"""What ``recovery.toml`` says about running the site unattended: the backup and drill schedules,
where drill records go, who is told when something fails, where metrics are written.

``[backups] schedule`` / ``grace_minutes``, ``[drills] schedule`` / ``records``, ``[alerts] urls`` /
``webhook_url`` / ``ping_backup`` / ``ping_drill`` / ``escalation_level``, ``[metrics] textfile_dir``,
``[schedule] systemd_dir``. Specified in ``docs/recovery-toml.md``; every mistake is refused naming
the file, the line and the key.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from recovery_lib.site.calendar import Calendar, CalendarError, longest_gap, parse_calendar
from recovery_lib.site.schema import Reader

DEFAULT_GRACE = timedelta(hours=1)
PING_RUNS = ("backup", "drill")
MAX_GRACE_MINUTES = 31 * 24 * 60


@dataclass(frozen=True)
class Operations:
    """Schedules, alerts and metrics of one site (all optional; nothing is sent or written without them)."""

    backup_schedule: tuple[Calendar, ...] = ()
    backup_grace: timedelta = DEFAULT_GRACE  # how late a scheduled backup may be before it is stale
    drill_schedule: tuple[Calendar, ...] = ()
    drill_records: Path | None = None  # absolute, outside the site; None: <site>-drill-records beside it
    alert_urls: tuple[str, ...] = ()  # Apprise URLs (slack://, mailto://, json://, ntfy://, ...)
    pings: Mapping[str, str] = field(default_factory=dict)  # "backup"/"drill" -> healthchecks-style base URL
    escalation_level: int = 2  # escalations at this level or above notify
    metrics_dir: Path | None = None  # node_exporter's textfile-collector directory
    systemd_dir: Path | None = None  # where `schedule install --systemd` writes units; None: the default

    def drill_records_dir(self, root: Path) -> Path:
        """Where drill records of the site at ``root`` go: never inside the site."""
        return self.drill_records or root.parent / f"{root.name}-drill-records"


def describe(ops: Operations, root: Path, at: datetime) -> dict[str, Any]:
    """The settings as a person reads them (``recovery site``): entries as written with their next
    firing, durations in minutes, and alert URLs reduced to their scheme (they carry tokens)."""

    def entries(calendars: tuple[Calendar, ...]) -> list[dict[str, str | None]]:
        return [{"entry": c.text, "next_utc": _iso(c.next_after(at))} for c in calendars]

    gap = longest_gap(ops.backup_schedule)
    return {
        "backup_schedule": entries(ops.backup_schedule),
        "backup_schedule_longest_gap_minutes": gap.total_seconds() / 60 if gap else None,
        "backup_grace_minutes": ops.backup_grace.total_seconds() / 60,
        "drill_schedule": entries(ops.drill_schedule),
        "drill_records": str(ops.drill_records_dir(root)),
        "alert_urls": [urlsplit(url).scheme + "://(redacted)" for url in ops.alert_urls],
        "pings": {run: urlsplit(url).scheme + "://" + urlsplit(url).netloc + "/..." for run, url in ops.pings.items()},
        "escalation_level": ops.escalation_level,
        "metrics_dir": str(ops.metrics_dir) if ops.metrics_dir else None,
        "systemd_dir": str(ops.systemd_dir) if ops.systemd_dir else None,
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%dT%H:%MZ") if moment else None


def parse_operations(reader: Reader, root: Path, data: Mapping[str, Any]) -> Operations:
    """The checked :class:`Operations` of a parsed ``recovery.toml`` (tables already type-checked)."""
    backups, drills = data.get("backups", {}), data.get("drills", {})
    alerts, metrics, schedule = data.get("alerts", {}), data.get("metrics", {}), data.get("schedule", {})
    urls = list(alerts.get("urls", ()))
    if "webhook_url" in alerts:  # the older key: a generic JSON webhook
        urls.append(_json_webhook(reader, alerts["webhook_url"]))
    for index, url in enumerate(alerts.get("urls", ())):
        if "://" not in url:
            raise reader.fail(
                ("alerts",),
                "urls",
                f"entry {index + 1} ({url!r}) is not an Apprise URL such as 'slack://T/B/C', "
                "'mailtos://user:pass@host', 'ntfy://topic' or 'json://host/path'.",
            )
    pings = {run: alerts[f"ping_{run}"] for run in PING_RUNS if f"ping_{run}" in alerts}
    for run, url in pings.items():
        if urlsplit(url).scheme not in ("http", "https"):
            raise reader.fail(("alerts",), f"ping_{run}", f"{url!r} must be an http(s) URL (a healthchecks check).")
    level = alerts.get("escalation_level", 2)
    if level not in (1, 2, 3, 4):
        raise reader.fail(("alerts",), "escalation_level", f"must be 1, 2, 3 or 4, got {level!r}.")
    return Operations(
        backup_schedule=_calendars(reader, ("backups",), backups.get("schedule", ())),
        backup_grace=_grace(reader, backups.get("grace_minutes", DEFAULT_GRACE.total_seconds() / 60)),
        drill_schedule=_calendars(reader, ("drills",), drills.get("schedule", ())),
        drill_records=_outside(reader, root, ("drills",), "records", drills.get("records")),
        alert_urls=tuple(urls),
        pings=pings,
        escalation_level=level,
        metrics_dir=_outside(reader, root, ("metrics",), "textfile_dir", metrics.get("textfile_dir")),
        systemd_dir=_absolute(reader, root, ("schedule",), "systemd_dir", schedule.get("systemd_dir")),
    )


def _calendars(reader: Reader, table: tuple[str, ...], entries: Any) -> tuple[Calendar, ...]:
    calendars = []
    for index, entry in enumerate(entries):
        try:
            calendars.append(parse_calendar(entry))
        except CalendarError as exc:
            raise reader.fail(table, "schedule", f"entry {index + 1}: {exc}") from exc
    return tuple(calendars)


def _grace(reader: Reader, minutes: float) -> timedelta:
    if minutes > MAX_GRACE_MINUTES:  # a grace longer than any schedule would make the freshness check moot
        raise reader.fail(
            ("backups",), "grace_minutes", f"{minutes!r} is more than {MAX_GRACE_MINUTES} minutes (31 days)."
        )
    return timedelta(minutes=minutes)


def _json_webhook(reader: Reader, url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise reader.fail(("alerts",), "webhook_url", f"{url!r} must be an http(s) URL.")
    return ("jsons" if parts.scheme == "https" else "json") + url[len(parts.scheme) :]


def _absolute(reader: Reader, root: Path, table: tuple[str, ...], key: str, value: str | None) -> Path | None:
    if value is None:
        return None
    if not value.strip():
        raise reader.fail(table, key, "must name a directory.")
    return Path(os.path.normpath(root / os.path.expanduser(value)))


def _outside(reader: Reader, root: Path, table: tuple[str, ...], key: str, value: str | None) -> Path | None:
    path = _absolute(reader, root, table, key, value)
    if path is not None and (path == root or root in path.parents):
        raise reader.fail(
            table,
            key,
            f"{value!r} is inside the site: a restore would roll it back and every backup would carry it. "
            "Choose a directory outside the site.",
        )
    return path


__all__ = ["DEFAULT_GRACE", "Operations", "describe", "parse_operations"]
