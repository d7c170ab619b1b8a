"""crontab lines: one block per site, at the end of the user's crontab, starting with ``CRON_TZ=UTC``.

::

    # BEGIN recovery_lib /srv/trading
    ...
    CRON_TZ=UTC
    # [backups] schedule: '*-*-* 02:00'
    0 2 * * * /opt/recovery/.venv/bin/recovery backup create --site /srv/trading --scheduled
    # END recovery_lib /srv/trading

The block goes last because ``CRON_TZ`` applies to every line after it; every other line of the
crontab is kept byte for byte; installing again replaces the block; a second site gets its own.
Debian's cron ignores ``CRON_TZ`` (cronie and busybox honour it): on a host whose local time is not
UTC the plan says so loudly, because the lines would then fire at local times.

The crontab is read with ``crontab -l`` and written with ``crontab -``: what cron itself reads.
"""

from __future__ import annotations

import os
import pwd
import shlex
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from recovery_lib.errors import ScheduleError, SchedulerFailed
from recovery_lib.schedule.plan import Job, Plan, required_jobs
from recovery_lib.site.calendar import Calendar, CalendarError, parse_calendar
from recovery_lib.site.config import Site

BEGIN = "# BEGIN recovery_lib "
END = "# END recovery_lib "
CRONTAB_TIMEOUT_S = 30
CRON_DAEMONS = ("cron", "crond")  # /proc/PID/comm of Debian's cron, cronie and busybox crond
ENCODING = ("utf-8", "surrogateescape")  # other lines are kept byte for byte, whatever their encoding


@dataclass(frozen=True)
class CronLine:
    """One line of a site's block: its schedule (None if cron fields we cannot read) and its command."""

    fields: str
    calendar: Calendar | None
    argv: tuple[str, ...]


def crontab_user() -> str:
    """Whose crontab ``crontab -l`` reads: the effective user."""
    return pwd.getpwuid(os.geteuid()).pw_name


def where() -> str:
    """The crontab, for messages and records."""
    return f"the crontab of user {crontab_user()}"


def read_crontab() -> str:
    """The user's crontab (empty when there is none). SchedulerFailed when it cannot be read."""
    if shutil.which("crontab") is None:
        raise SchedulerFailed(
            "there is no `crontab` command here (Debian: apt-get install cron); install the schedule with "
            "--systemd instead, or install cron. Nothing was changed."
        )
    try:
        answer = subprocess.run(["crontab", "-l"], capture_output=True, timeout=CRONTAB_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SchedulerFailed(f"`crontab -l` could not run ({exc}); nothing was changed.") from exc
    if answer.returncode == 0:
        return answer.stdout.decode(*ENCODING)
    error = answer.stderr.decode(errors="replace").strip()
    # `crontab -l` exits 1 and says "no crontab for USER" when there is none: the only signal it gives.
    if not answer.stdout and error.startswith("no crontab for"):
        return ""
    raise SchedulerFailed(f"`crontab -l` failed (exit {answer.returncode}): {error}. Nothing was changed.")


def write_crontab(text: str) -> None:
    """Replace the user's crontab with ``text`` (``crontab -`` checks it and installs it in one step)."""
    try:
        answer = subprocess.run(
            ["crontab", "-"], input=text.encode(*ENCODING), capture_output=True, timeout=CRONTAB_TIMEOUT_S
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SchedulerFailed(f"`crontab -` could not run ({exc}); the crontab is as it was.") from exc
    if answer.returncode != 0:
        error = answer.stderr.decode(errors="replace").strip()
        raise SchedulerFailed(f"`crontab -` refused the new crontab (exit {answer.returncode}): {error}.")


def split_block(crontab: str, root: Path) -> tuple[str, str | None]:
    """``(the crontab without the site's block, the block or None)``; other lines untouched."""
    lines = crontab.splitlines(keepends=True)
    begin, end = f"{BEGIN}{root}", f"{END}{root}"
    starts = [i for i, line in enumerate(lines) if line.rstrip("\n") == begin]
    if not starts:
        return crontab, None
    first = starts[0]
    ends = [i for i, line in enumerate(lines) if i > first and line.rstrip("\n") == end]
    if not ends:
        raise ScheduleError(
            f"{where()} has the line {begin!r} (line {first + 1}) but no {end!r} after it: the block was edited "
            "by hand. Fix or remove it with `crontab -e`, then install again. Nothing was changed."
        )
    return "".join(lines[:first] + lines[ends[0] + 1 :]), "".join(lines[first : ends[0] + 1])


def cron_line(job: Job, calendar: Calendar) -> str:
    """The crontab line of one entry; ScheduleError (naming the entry) when cron cannot express it."""
    try:
        fields = calendar.cron()
    except CalendarError as exc:
        raise ScheduleError(
            f"{job.table} entry {calendar.text!r}: {exc} Nothing was changed; run "
            "`recovery schedule install --systemd`, or write the entry so cron can say it."
        ) from exc
    return f"{fields} {shlex.join(job.argv).replace('%', chr(92) + '%')}"  # cron reads a bare % as a newline


def block_text(site: Site, jobs: list[Job]) -> str:
    """The site's block, markers included."""
    lines = [
        f"{BEGIN}{site.root}",
        "# Written by `recovery schedule install --cron`; the next install replaces this block. Keep it last:",
        "# CRON_TZ applies to every line after it. Edit recovery.toml, not these lines.",
        "CRON_TZ=UTC",
    ]
    for job in jobs:
        for calendar in job.calendars:
            lines += [f"# {job.table}: {calendar.text!r}", cron_line(job, calendar)]
    return "\n".join([*lines, f"{END}{site.root}"]) + "\n"


def parse_block(block: str) -> tuple[list[CronLine], bool]:
    """The job lines of a block, and whether it sets ``CRON_TZ=UTC`` before them."""
    found, utc = [], False
    for raw in block.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if sep and " " not in name.strip():  # an environment line
            utc = utc or (name.strip() in ("CRON_TZ", "TZ") and value.strip() == "UTC")
            continue
        count = 1 if line.startswith("@") else 5
        words = line.split(None, count)
        if len(words) <= count:
            continue
        fields, command = " ".join(words[:count]), words[count]
        try:
            calendar: Calendar | None = parse_calendar(fields)
        except CalendarError:
            calendar = None
        try:
            argv = tuple(shlex.split(command.replace("\\%", "%")))
        except ValueError:
            argv = ()
        found.append(CronLine(fields, calendar, argv))
    return found, utc


def local_time_warning() -> str | None:
    """What a person must know when this host's local time is not UTC (None when it is)."""
    offsets = {time.timezone, time.altzone if time.daylight else time.timezone}
    if offsets == {0}:
        return None
    zone = "/".join(dict.fromkeys(time.tzname))
    return (
        f"this host's local time is not UTC ({zone}, UTC{-time.timezone / 3600:+g}h): Debian's cron ignores "
        "CRON_TZ and would run these lines at LOCAL times, not the UTC times of recovery.toml. Set the host's "
        "time zone to UTC, or install with --systemd (its timers say UTC themselves)."
    )


def cron_daemon_running(proc: Path = Path("/proc")) -> bool:
    """Whether a cron daemon runs here: a process named cron or crond (not a zombie), by /proc."""
    for entry in proc.iterdir() if proc.is_dir() else []:
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue  # gone while we looked, or not ours to read
        if comm in CRON_DAEMONS and state != "Z":
            return True
    return False


def plan_cron(site: Site) -> Plan:
    """The site's block at the end of the crontab (replacing an earlier one), and ``crontab -``."""
    jobs = required_jobs(site)
    block = block_text(site, jobs)  # refuses an entry cron cannot express, before anything is read
    before = read_crontab()
    others, _ = split_block(before, site.root)
    if others and not others.endswith("\n"):
        others += "\n"  # crontab needs the last line ended; the block starts on a line of its own
    warning = local_time_warning()
    notes = []
    if not cron_daemon_running():
        notes.append("no cron daemon runs here (no cron or crond process): nothing runs these lines until one does.")
    return Plan(
        "cron",
        site.root,
        where(),
        tuple(jobs),
        crontab_before=before,
        crontab_after=others + block,
        block=block,
        commands=(("crontab", "-"),),
        notes=tuple(notes),
        warnings=(warning,) if warning else (),
    )


__all__ = [
    "CronLine",
    "block_text",
    "cron_daemon_running",
    "crontab_user",
    "local_time_warning",
    "parse_block",
    "plan_cron",
    "read_crontab",
    "split_block",
    "where",
    "write_crontab",
]
