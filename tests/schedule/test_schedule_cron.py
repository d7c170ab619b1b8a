"""``recovery schedule install --cron``: a block at the end of the real crontab (Debian's ``crontab``).

The ``user_crontab`` fixture saves the user's crontab, starts each test from none, and always puts it back.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from schedule_helpers import crontab_bytes, make_site, set_crontab, user_crontab  # noqa: F401 - a fixture

from recovery_lib.errors import ScheduleError, SchedulerFailed
from recovery_lib.schedule import apply, plan_install, schedule_status
from recovery_lib.schedule.cron import cron_daemon_running, parse_block, split_block

pytestmark = [
    pytest.mark.skipif(shutil.which("crontab") is None, reason="no crontab here (Debian: apt-get install cron)"),
    pytest.mark.usefixtures("user_crontab"),
]
RECOVERY = str(Path(sys.executable).with_name("recovery"))
# Someone's own lines: a variable, a comment, a % (cron's newline), bytes that are not UTF-8.
THEIRS = b"MAILTO=ops@example.com\n# nightly report\n5 1 * * * /usr/bin/report --at 100%\n# caf\xe9\n"


def crontab_text() -> str:
    return (crontab_bytes() or b"").decode("utf-8", "surrogateescape")


def test_block_goes_last_with_cron_tz_and_other_lines_are_kept_byte_for_byte(tmp_path: Path) -> None:
    set_crontab(THEIRS)
    site = make_site(tmp_path / "prod", ["*-*-* 02:00", "Sun *-*-* 03:00"], ["0 4 * * 1"])
    apply(plan_install(site, "cron"))
    after = crontab_bytes()
    assert after is not None and after.startswith(THEIRS)
    block = after[len(THEIRS) :].decode()
    lines = [line for line in block.splitlines() if line and not line.startswith("#")]
    assert block.splitlines()[0] == f"# BEGIN recovery_lib {site.root}"
    assert block.splitlines()[-1] == f"# END recovery_lib {site.root}"
    assert lines[0] == "CRON_TZ=UTC", "CRON_TZ before every job line"
    assert lines[1:] == [
        f"0 2 * * * {RECOVERY} backup create --site {site.root} --scheduled",
        f"0 3 * * 0 {RECOVERY} backup create --site {site.root} --scheduled",
        f"0 4 * * 1 {RECOVERY} drill run --due --outputs {tmp_path / 'prod-drill-records'} --for-site {site.root}",
    ]
    status = schedule_status(site)
    assert [e.installed for e in status.entries] == [True, True, True]
    assert status.schedulers == ("cron",) and [e.found_in for e in status.entries] == [("cron",)] * 3


def test_reinstall_replaces_the_block_and_a_second_site_gets_its_own(tmp_path: Path) -> None:
    set_crontab(THEIRS)
    one = make_site(tmp_path / "one", ["daily"])
    two = make_site(tmp_path / "two", ["hourly"])
    apply(plan_install(one, "cron"))
    apply(plan_install(two, "cron"))
    one = make_site(tmp_path / "one", ["0 5 * * *"])  # its schedule changed
    apply(plan_install(one, "cron"))
    text = crontab_text()
    assert text.count("# BEGIN recovery_lib") == 2 and text.count("CRON_TZ=UTC") == 2
    assert text.encode("utf-8", "surrogateescape").startswith(THEIRS)
    rest, block_one = split_block(text, one.root)
    _, block_two = split_block(rest, two.root)
    assert block_one is not None and block_two is not None
    assert text.endswith(block_one), "the block installed last goes last"
    assert [line.fields for line in parse_block(block_one)[0]] == ["0 5 * * *"]
    assert [line.fields for line in parse_block(block_two)[0]] == ["0 * * * *"]
    assert [e.installed for e in schedule_status(one).entries] == [True]
    assert [e.installed for e in schedule_status(two).entries] == [True]


def test_an_entry_cron_cannot_express_is_refused_naming_it(tmp_path: Path) -> None:
    set_crontab(THEIRS)
    site = make_site(tmp_path / "prod", ["*-*-* 02:00", "Mon *-*-01..07 02:00"])
    with pytest.raises(ScheduleError) as refused:
        plan_install(site, "cron")  # what --dry-run does: refused there already
    message = str(refused.value)
    assert "[backups] schedule" in message and "'Mon *-*-01..07 02:00'" in message and "--systemd" in message
    assert crontab_bytes() == THEIRS
    assert plan_install(site, "systemd").jobs  # the same site installs with --systemd


def test_a_block_edited_without_its_end_is_refused(tmp_path: Path) -> None:
    site = make_site(tmp_path / "prod", ["daily"])
    broken = THEIRS + f"# BEGIN recovery_lib {site.root}\nCRON_TZ=UTC\n0 0 * * * true\n".encode()
    set_crontab(broken)
    with pytest.raises(ScheduleError, match="no '# END recovery_lib"):
        plan_install(site, "cron")
    assert crontab_bytes() == broken


def test_a_crontab_changed_after_the_plan_is_not_overwritten(tmp_path: Path) -> None:
    site = make_site(tmp_path / "prod", ["daily"])
    plan = plan_install(site, "cron")
    set_crontab(THEIRS)  # someone ran `crontab -e` in between
    with pytest.raises(SchedulerFailed, match="changed since the plan"):
        apply(plan)
    assert crontab_bytes() == THEIRS


def test_percent_in_a_path_is_escaped_for_cron_and_read_back(tmp_path: Path) -> None:
    site = make_site(tmp_path / "100% prod", ["daily"])
    apply(plan_install(site, "cron"))
    job = next(line for line in crontab_text().splitlines() if line.startswith("0 0 * * *"))
    assert "100\\%" in job and "100%" not in job.replace("\\%", "")
    assert schedule_status(site).entries[0].installed


def test_a_block_without_cron_tz_is_not_counted(tmp_path: Path) -> None:
    site = make_site(tmp_path / "prod", ["daily"])
    apply(plan_install(site, "cron"))
    set_crontab(crontab_text().replace("CRON_TZ=UTC\n", "").encode())
    status = schedule_status(site)
    assert not status.entries[0].installed and any("CRON_TZ=UTC" in note for note in status.notes)


def test_local_time_that_is_not_utc_is_said_loudly(tmp_path: Path) -> None:
    make_site(tmp_path / "prod", ["daily"])
    recovery = [RECOVERY, "schedule", "install", "--cron", "--dry-run", "--site", str(tmp_path / "prod")]
    berlin = subprocess.run(recovery, capture_output=True, text=True, env={**os.environ, "TZ": "Europe/Berlin"})
    assert berlin.returncode == 0, berlin.stderr
    warning = next(line for line in berlin.stdout.splitlines() if line.startswith("WARNING:"))
    assert "not UTC" in warning and "CRON_TZ" in warning and "--systemd" in warning
    utc = subprocess.run(recovery, capture_output=True, text=True, env={**os.environ, "TZ": "UTC"})
    assert utc.returncode == 0 and "WARNING" not in utc.stdout
    assert crontab_bytes() is None, "a dry run writes nothing"


@pytest.mark.skipif(not Path("/usr/sbin/cron").exists(), reason="Debian's cron daemon is not installed")
def test_active_follows_a_real_cron_daemon(tmp_path: Path) -> None:
    if cron_daemon_running():
        pytest.skip("a cron daemon already runs on this machine: cannot show one missing")
    site = make_site(tmp_path / "prod", ["0 0 29 2 *"])  # Feb 29 only: the daemon never runs it here
    apply(plan_install(site, "cron"))
    status = schedule_status(site)
    assert status.active is False and not status.confirmed()
    assert "no cron daemon" in status.problems()[0]
    daemon = subprocess.Popen(["/usr/sbin/cron", "-f"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not cron_daemon_running() and time.monotonic() < deadline:
            time.sleep(0.05)
        status = schedule_status(site)
        assert status.active is True and status.confirmed() and status.problems() == []
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)
    deadline = time.monotonic() + 10
    while cron_daemon_running() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert schedule_status(site).active is False
