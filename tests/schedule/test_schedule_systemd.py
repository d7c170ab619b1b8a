"""``recovery schedule install --systemd``: units systemd accepts, firing when recovery.toml says, read back.

Checked against the real ``systemd-analyze``: ``verify`` on every unit written, and ``calendar`` for the
firing times of the ``OnCalendar=`` values against :meth:`Calendar.next_after`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from schedule_helpers import make_site

from recovery_lib.errors import ScheduleError
from recovery_lib.schedule import apply, plan_install, schedule_status, written_units
from recovery_lib.schedule.systemd import (
    SYSTEM_UNIT_DIR,
    exec_line,
    parse_exec,
    read_unit,
    slug,
    systemd_running,
    unit_dir,
)
from recovery_lib.site.calendar import next_after, parse_calendar

ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(
    ANALYZE is None, reason="systemd-analyze is not installed (Debian: apt-get install systemd; .ci/run does)"
)
RECOVERY = str(Path(sys.executable).with_name("recovery"))
BASE = datetime(2026, 1, 30, 22, 17, tzinfo=UTC)  # a Friday, two days before a month's end


def verify(paths: list[Path]) -> None:
    """``systemd-analyze verify``: exit 0 and not one warning (an unknown key only warns)."""
    answer = subprocess.run(
        [ANALYZE or "systemd-analyze", "verify", *map(str, paths)], capture_output=True, text=True, check=False
    )
    assert answer.returncode == 0 and answer.stderr.strip() == "" and answer.stdout.strip() == "", answer


# --- what is written -------------------------------------------------------------------------------------------


@needs_analyze
def test_units_are_valid_and_say_what_recovery_toml_declares(tmp_path: Path) -> None:
    site = make_site(tmp_path / "prod", ["*-*-* 02:00", "0 4 1 * 1"], ["Mon *-*-* 04:00"])
    plan = plan_install(site, "systemd")
    apply(plan)
    units = tmp_path / "units"
    assert sorted(p.name for p in units.iterdir()) == [
        "recovery-prod-one-backup.service",
        "recovery-prod-one-backup.timer",
        "recovery-prod-one-drill.service",
        "recovery-prod-one-drill.timer",
    ]
    verify(written_units(plan))
    timer = read_unit(units / "recovery-prod-one-backup.timer")
    # One value per value of each entry; cron's "day 1 OR Monday" needs two.
    assert timer["Timer.OnCalendar"] == [
        "*-*-* 02:00:00 UTC",
        "*-*-01 04:00:00 UTC",
        "Mon *-*-* 04:00:00 UTC",
    ]
    assert timer["Timer.Persistent"] == ["true"] and timer["Install.WantedBy"] == ["timers.target"]
    service = read_unit(units / "recovery-prod-one-backup.service")
    assert service["Service.Type"] == ["oneshot"]
    root = str(site.root)
    assert parse_exec(service["Service.ExecStart"][0]) == (
        RECOVERY,
        "backup",
        "create",
        "--site",
        root,
        "--scheduled",
    )
    drill = parse_exec(read_unit(units / "recovery-prod-one-drill.service")["Service.ExecStart"][0])
    records = str(tmp_path / "prod-drill-records")
    assert drill == (RECOVERY, "drill", "run", "--due", "--outputs", records, "--for-site", root)
    assert not Path(records).is_relative_to(site.root), "drill records never go inside the site"
    # What was written is exactly what the plan showed.
    for change in plan.files:
        assert change.text is not None and change.path.read_text() == change.text
        assert change.text in plan.render()


def test_only_what_the_site_declares_and_an_undeclared_job_is_removed(tmp_path: Path) -> None:
    root = tmp_path / "prod"
    apply(plan_install(make_site(root, ["daily"], ["weekly"]), "systemd"))
    assert len(list((tmp_path / "units").iterdir())) == 4
    site = make_site(root, ["daily"])  # drills no longer declared
    plan = plan_install(site, "systemd")
    removed = sorted(change.path.name for change in plan.files if change.text is None)
    assert removed == ["recovery-prod-one-drill.service", "recovery-prod-one-drill.timer"]
    assert "--- remove" in plan.render()
    apply(plan)
    assert sorted(p.name for p in (tmp_path / "units").iterdir()) == [
        "recovery-prod-one-backup.service",
        "recovery-prod-one-backup.timer",
    ]
    assert [e.run for e in schedule_status(site).entries] == ["backup"]
    assert schedule_status(site).undeclared == ()


def test_nothing_declared_is_refused_naming_the_key(tmp_path: Path) -> None:
    site = make_site(tmp_path / "prod")
    with pytest.raises(ScheduleError, match=r"\[backups\] schedule") as refused:
        plan_install(site, "systemd")
    assert str(site.root / "recovery.toml") in str(refused.value)
    assert not (tmp_path / "units").exists()


def test_units_of_another_site_that_exists_are_never_overwritten(tmp_path: Path) -> None:
    other = make_site(tmp_path / "other", ["daily"], units="../units")
    apply(plan_install(other, "systemd"))
    before = {p.name: p.read_bytes() for p in (tmp_path / "units").iterdir()}
    mine = make_site(tmp_path / "mine", ["hourly"], units="../units")  # same [site] name: same unit names
    with pytest.raises(ScheduleError, match="another site") as refused:
        plan_install(mine, "systemd")
    assert str(other.root) in str(refused.value) and "[site] name" in str(refused.value)
    assert {p.name: p.read_bytes() for p in (tmp_path / "units").iterdir()} == before
    # The other site gone (a lost host): its units are replaced by the new host's.
    shutil.rmtree(other.root)
    apply(plan_install(mine, "systemd"))
    assert schedule_status(mine).confirmed()


def test_exec_quoting_survives_spaces_percent_and_dollar() -> None:
    argv = ("/opt/my venv/bin/recovery", "backup", "create", "--site", "/srv/100% $HOME/it's", "--tag", "scheduled")
    line = exec_line(argv)
    assert "%%" in line and "$$" in line
    assert parse_exec(line) == argv


@needs_analyze
def test_a_site_path_with_spaces_and_percent_gives_valid_units(tmp_path: Path) -> None:
    site = make_site(tmp_path / "my 100% site", ["*-*-* 02:00"], units="../units dir")
    plan = plan_install(site, "systemd")
    apply(plan)
    verify(written_units(plan))
    assert schedule_status(site).confirmed()


def test_slug_is_safe_for_unit_names() -> None:
    assert slug("Peak Trade / EU #1") == "peak-trade-eu-1"
    assert slug("---") == "site"


# --- where the units go ----------------------------------------------------------------------------------------


def test_default_unit_directory_and_what_runs_when_systemd_does_not(tmp_path: Path) -> None:
    site = make_site(tmp_path / "prod", ["daily"], units=None)
    where = unit_dir(site)
    if os.geteuid() == 0:
        assert where.path == SYSTEM_UNIT_DIR and not where.user
    else:
        assert where.path == Path.home() / ".config/systemd/user" and where.user
    assert where.read_by_systemd
    if systemd_running(where):
        pytest.skip("systemd runs here: this test is about a host where it does not")
    plan = plan_install(site, "systemd")  # planned only: never written into the real systemd directory
    assert plan.commands == () and plan.stop_first == ()
    assert "systemd is not running here, so nothing will run these units" in plan.render()
    assert any("daemon-reload" in c for c in plan.manual) and any("enable --now" in c for c in plan.manual)


def test_a_custom_directory_is_not_enabled_and_says_how_to_link_it(tmp_path: Path) -> None:
    site = make_site(tmp_path / "prod", ["daily"], units="../units")
    plan = plan_install(site, "systemd")
    assert plan.commands == ()  # nothing to ask systemd: it does not read that directory
    assert "systemd does not read" in plan.render()
    assert plan.manual[0].startswith("systemctl") and " link " in plan.manual[0]
    assert str(tmp_path / "units" / "recovery-prod-one-backup.timer") in plan.manual[0]


# --- read back -------------------------------------------------------------------------------------------------


def test_status_reads_back_installed_missing_and_undeclared(tmp_path: Path) -> None:
    site = make_site(tmp_path / "prod", ["*-*-* 02:00", "Sun *-*-* 03:00"])
    status = schedule_status(site)
    assert not status.confirmed() and [e.installed for e in status.entries] == [False, False]
    assert "recovery schedule install --systemd" in status.problems()[0]
    apply(plan_install(site, "systemd"))
    status = schedule_status(site)
    assert status.confirmed() and status.schedulers == ("systemd",)
    assert status.active is None, "nobody can say whether a directory systemd does not read runs"
    record = status.to_record("backup")
    assert record["installed"] is True and record["scheduler"] == "systemd" and record["problems"] == []
    timer = tmp_path / "units" / "recovery-prod-one-backup.timer"
    # An edit by hand: one entry gone, one nobody declared.
    timer.write_text(
        timer.read_text().replace("OnCalendar=Sun *-*-* 03:00:00 UTC", "OnCalendar=Sat *-*-* 05:00:00 UTC")
    )
    status = schedule_status(site)
    assert [(e.entry, e.installed) for e in status.entries] == [("*-*-* 02:00", True), ("Sun *-*-* 03:00", False)]
    assert len(status.undeclared) == 1 and "Sat *-*-* 05:00:00 UTC" in status.undeclared[0]
    assert not status.confirmed() and "not installed: backup 'Sun *-*-* 03:00'" in status.problems()[0]


def test_status_counts_only_units_that_serve_this_site(tmp_path: Path) -> None:
    site = make_site(tmp_path / "prod", ["daily"])
    apply(plan_install(site, "systemd"))
    service = tmp_path / "units" / "recovery-prod-one-backup.service"
    service.write_text(service.read_text().replace(f"--site {site.root}", f"--site {tmp_path / 'elsewhere'}"))
    status = schedule_status(site)
    assert not status.confirmed() and status.schedulers == ()


def test_status_matches_times_not_spelling(tmp_path: Path) -> None:
    """A timer written another way (cron entry, shorthand) counts when it fires at the same times."""
    site = make_site(tmp_path / "prod", ["0 2 * * *"])
    apply(plan_install(site, "systemd"))
    assert schedule_status(make_site(tmp_path / "prod", ["*-*-* 02:00"])).confirmed()
    assert not schedule_status(make_site(tmp_path / "prod", ["*-*-* 02:30"])).confirmed()


# --- systemd's own calendar against ours --------------------------------------------------------------------


def systemd_firings(value: str, count: int) -> list[datetime]:
    """The next ``count`` firings of an ``OnCalendar=`` value after BASE, as systemd computes them."""
    answer = subprocess.run(
        [ANALYZE or "", "calendar", f"--iterations={count}", f"--base-time={BASE:%Y-%m-%d %H:%M:%S} UTC", value],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "TZ": "UTC"},
    )
    found = []
    for line in answer.stdout.splitlines():
        label, _, when = line.strip().partition(": ")
        if label == "Next elapse" or label.startswith("Iter. #"):
            found.append(datetime.strptime(when.strip(), "%a %Y-%m-%d %H:%M:%S %Z").replace(tzinfo=UTC))
    assert len(found) == count, answer.stdout
    return found


@needs_analyze
@pytest.mark.parametrize(
    "entry",
    [
        "*-*-* 02:00",
        "Sun *-*-* 03:00",
        "Mon..Fri *-*-* 02:30",
        "*-*-01 00:00",
        "Mon *-*-01..07 02:00",  # a weekday AND a date: systemd only
        "*-02-29 12:00",
        "quarterly",
        "0 */6 * * *",
        "0 4 1 * 1",  # cron: the 1st OR a Monday (two OnCalendar values)
        "15,45 9-17 * * mon-fri",
        "@weekly",
    ],
)
def test_systemd_fires_when_calendar_next_after_says(entry: str) -> None:
    calendar = parse_calendar(entry)
    count = 12
    theirs = sorted({t for value in calendar.on_calendar() for t in systemd_firings(value, count)})[:count]
    ours, moment = [], BASE
    for _ in range(count):
        moment = next_after([calendar], moment)
        assert moment is not None
        ours.append(moment)
    assert ours == theirs
