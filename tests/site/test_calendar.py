"""Schedule entries: systemd calendar and cron expressions in UTC, their firings, gaps and rewriting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from recovery_lib.errors import SiteConfigError
from recovery_lib.site.calendar import CalendarError, longest_gap, next_after, parse_calendar, previous
from recovery_lib.site.config import load_site
from recovery_lib.site.operations import describe

AT = datetime(2026, 12, 3, 14, 50, tzinfo=UTC)  # a Thursday


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


@pytest.mark.parametrize(
    ("entry", "following", "before"),
    [
        ("*-*-* 02:00", utc(2026, 12, 4, 2), utc(2026, 12, 3, 2)),
        ("daily", utc(2026, 12, 4), utc(2026, 12, 3)),
        ("Sun *-*-* 03:00:00 UTC", utc(2026, 12, 6, 3), utc(2026, 11, 29, 3)),
        ("Mon..Fri 02:30", utc(2026, 12, 4, 2, 30), utc(2026, 12, 3, 2, 30)),
        ("Sat,Sun 12:00", utc(2026, 12, 5, 12), utc(2026, 11, 29, 12)),
        ("*-*-01 04:00", utc(2027, 1, 1, 4), utc(2026, 12, 1, 4)),
        ("12-25 00:00", utc(2026, 12, 25), utc(2025, 12, 25)),
        ("*-*-* *:00/15", utc(2026, 12, 3, 15), utc(2026, 12, 3, 14, 45)),
        ("hourly", utc(2026, 12, 3, 15), utc(2026, 12, 3, 14)),
        ("0 2 * * *", utc(2026, 12, 4, 2), utc(2026, 12, 3, 2)),
        ("30 2 * * mon-fri", utc(2026, 12, 4, 2, 30), utc(2026, 12, 3, 2, 30)),
        ("0 3 * * 0", utc(2026, 12, 6, 3), utc(2026, 11, 29, 3)),
        ("0 3 * * 7", utc(2026, 12, 6, 3), utc(2026, 11, 29, 3)),
        ("*/20 * * * *", utc(2026, 12, 3, 15), utc(2026, 12, 3, 14, 40)),
        ("0 0 1 jan *", utc(2027, 1, 1), utc(2026, 1, 1)),
        ("@weekly", utc(2026, 12, 6), utc(2026, 11, 29)),
        ("0 2 1 * mon", utc(2026, 12, 7, 2), utc(2026, 12, 1, 2)),  # cron: the 1st OR a Monday
        ("Mon *-*-01..07 02:00", utc(2026, 12, 7, 2), utc(2026, 11, 2, 2)),  # systemd: first Monday
        ("0 0 29 2 *", utc(2028, 2, 29), utc(2024, 2, 29)),
    ],
)
def test_next_and_previous_firing(entry: str, following: datetime, before: datetime) -> None:
    calendar = parse_calendar(entry)
    assert calendar.next_after(AT) == following
    assert calendar.previous(AT) == before
    assert calendar.next_after(following) > following  # strictly after
    assert calendar.previous(following) == following  # at or before


@pytest.mark.parametrize(
    ("entry", "why"),
    [
        ("daily 02:00 UTC", "systemd calendar"),  # the old free text: says what to write instead
        ("before every deployment", "cron expression"),
        ("2026-12-01 02:00", "one-off"),
        ("*-*-* 02:00:30", "seconds"),
        ("*-*-* 25:00", "outside 0-23"),
        ("*-*~01 02:00", "not supported"),
        ("Mon *-*-* 02:00 Europe/Berlin", "always UTC"),
        ("0 2 30 2 *", "never fires"),
        ("61 * * * *", "outside 0-59"),
        ("0 2 * * * *", "cron expression"),
        ("*/0 * * * *", "positive"),
        ("@reboot", "unknown cron macro"),
        ("   ", "empty"),
    ],
)
def test_refused_entries_say_why(entry: str, why: str) -> None:
    with pytest.raises(CalendarError) as caught:
        parse_calendar(entry)
    assert why in str(caught.value)


def test_rewritten_for_systemd_and_cron_fires_at_the_same_times() -> None:
    """What `schedule install` writes must fire exactly when the entry does."""
    for entry in ["*-*-* 02:00", "Sun 03:00", "Mon..Fri 02:30", "*/20 * * * *", "0 2 1 * mon", "0 0 1 jan,jul *"]:
        original = parse_calendar(entry)
        systemd = [parse_calendar(value) for value in original.on_calendar()]
        cron = parse_calendar(original.cron())
        moment = AT
        for _ in range(50):
            expected = original.next_after(moment)
            assert expected is not None
            assert next_after(systemd, moment) == expected, entry
            assert cron.next_after(moment) == expected, entry
            moment = expected


def test_cron_cannot_say_a_weekday_and_a_date() -> None:
    with pytest.raises(CalendarError, match="--systemd"):
        parse_calendar("Mon *-*-01..07 02:00").cron()


def test_longest_gap_of_the_union() -> None:
    assert longest_gap([parse_calendar("*-*-* 02:00")]) == timedelta(days=1)
    assert longest_gap([parse_calendar("Mon..Fri 02:00")]) == timedelta(days=3)
    assert longest_gap([parse_calendar("*-*-* 02:00"), parse_calendar("Sun 03:00")]) == timedelta(days=1)
    assert longest_gap([parse_calendar("*-*-* 02,14:00")]) == timedelta(hours=12)
    assert longest_gap([parse_calendar("monthly")]) == timedelta(days=31)
    assert longest_gap([parse_calendar("0 0 29 2 *")]) == timedelta(days=4 * 365 + 1)
    assert longest_gap([]) is None


def test_union_next_and_previous() -> None:
    both = [parse_calendar("*-*-* 02:00"), parse_calendar("Sun *-*-* 03:00")]
    assert next_after(both, utc(2026, 12, 6, 2, 30)) == utc(2026, 12, 6, 3)
    assert previous(both, utc(2026, 12, 6, 2, 30)) == utc(2026, 12, 6, 2)


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        parse_calendar("daily").next_after(datetime(2026, 12, 3))  # noqa: DTZ001 - the point of the test


def _site(tmp_path: Path, toml: str) -> Path:
    (tmp_path / "recovery.toml").write_text(toml, encoding="utf-8")
    return tmp_path


def test_a_bad_entry_in_recovery_toml_names_file_line_key_and_entry(tmp_path: Path) -> None:
    _site(tmp_path, '[site]\nname = "x"\n\n[backups]\nschedule = ["*-*-* 02:00", "daily 02:00 UTC"]\n')
    with pytest.raises(SiteConfigError) as caught:
        load_site(tmp_path)
    message = str(caught.value)
    assert "recovery.toml:5" in message
    assert "backups.schedule" in message
    assert "entry 2" in message and "'daily 02:00 UTC'" in message


def test_operations_settings(tmp_path: Path) -> None:
    (tmp_path / "site").mkdir()
    _site(
        tmp_path / "site",
        """
[backups]
schedule = ["0 2 * * *"]
grace_minutes = 30

[drills]
schedule = ["Mon 04:00"]
records = "../drill-records"

[alerts]
urls = ["ntfy://ops-alerts"]
webhook_url = "https://hooks.example.invalid/x"
ping_backup = "https://hc-ping.example.invalid/uuid"
escalation_level = 3

[metrics]
textfile_dir = "/var/lib/node_exporter/textfile_collector"
""",
    )
    site = load_site(tmp_path / "site")
    assert [c.text for c in site.backup_schedule] == ["0 2 * * *"]
    assert site.ops.backup_grace == timedelta(minutes=30)
    assert site.drill_records_dir == tmp_path / "drill-records"
    assert site.ops.alert_urls == ("ntfy://ops-alerts", "jsons://hooks.example.invalid/x")
    assert site.ops.pings == {"backup": "https://hc-ping.example.invalid/uuid"}
    assert site.ops.escalation_level == 3
    assert site.ops.metrics_dir == Path("/var/lib/node_exporter/textfile_collector")


@pytest.mark.parametrize(
    ("toml", "key", "why"),
    [
        ('[drills]\nrecords = "drill-records"\n', "drills.records", "inside the site"),
        ('[drills]\nrecords = "."\n', "drills.records", "inside the site"),
        ('[alerts]\nurls = ["slack-hook"]\n', "alerts.urls", "Apprise URL"),
        ('[alerts]\nping_drill = "ftp://x"\n', "alerts.ping_drill", "http(s)"),
        ('[alerts]\nwebhook_url = "hooks.example"\n', "alerts.webhook_url", "http(s)"),
        ("[alerts]\nescalation_level = 5\n", "alerts.escalation_level", "1, 2, 3 or 4"),
        ("[metrics]\ntextfile_dir = 3\n", "metrics.textfile_dir", "a string"),
        ('[metrics]\ntextfile_dir = "data/metrics"\n', "metrics.textfile_dir", "inside the site"),
        ("[backups]\ngrace_minutes = inf\n", "backups.grace_minutes", "finite"),
        ("[backups]\ngrace_minutes = nan\n", "backups.grace_minutes", "finite"),
        ("[backups]\ngrace_minutes = 1e12\n", "backups.grace_minutes", "31 days"),
        ("[backups]\nmax_age_hours = inf\n", "backups.max_age_hours", "finite"),
        ('[drills]\nschedule = ["every monday"]\n', "drills.schedule", "entry 1"),
    ],
)
def test_operations_mistakes_are_refused(tmp_path: Path, toml: str, key: str, why: str) -> None:
    _site(tmp_path, toml)
    with pytest.raises(SiteConfigError) as caught:
        load_site(tmp_path)
    assert key in str(caught.value) and why in str(caught.value)


def test_described_settings_never_show_alert_tokens(tmp_path: Path) -> None:
    _site(
        tmp_path,
        '[backups]\nschedule = ["0 2 * * *"]\n[alerts]\nurls = ["slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7F"]\n'
        'ping_backup = "https://hc-ping.example.invalid/5f1c-secret-uuid"\n',
    )
    text = str(describe(load_site(tmp_path).ops, tmp_path, AT))
    assert "TIiajkdnlazkcOXrIdevi7F" not in text and "secret-uuid" not in text
    assert "slack://(redacted)" in text and "2026-12-04T02:00Z" in text
