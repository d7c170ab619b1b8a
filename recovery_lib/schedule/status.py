"""What is really installed for a site, against what its ``recovery.toml`` declares.

Both places a schedule can live are read: the unit directory (``[schedule] systemd_dir`` or systemd's
own) and the user's crontab. A declared entry counts as installed when a timer's ``OnCalendar=``
values (or a crontab line's fields, after ``CRON_TZ=UTC``) fire at the same times AND the command
runs that job for THIS site. Then every unit file and the crontab block must say exactly what
``recovery schedule install`` writes now, and the program they run must exist (:mod:`.drift`): a
timer starting another unit or a venv moved away is a problem, not a confirmed schedule.
``active`` says whether anything will run them: for systemd, the timers
enabled and active (False when the directory is systemd's and systemd is not running; None for a
``systemd_dir`` systemd does not read: nobody can say); for cron, a cron daemon process.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recovery_lib.errors import SchedulerFailed
from recovery_lib.schedule import cron, drift, systemd
from recovery_lib.schedule.plan import Job, command_matches, config_file, declared_jobs
from recovery_lib.site.calendar import Calendar, CalendarError, parse_calendar
from recovery_lib.site.config import Site

Key = tuple[frozenset[int], ...]


@dataclass(frozen=True)
class EntryStatus:
    """One declared entry: installed or not, and where it was found."""

    run: str  # "backup" or "drill"
    entry: str  # as written in recovery.toml
    installed: bool
    found_in: tuple[str, ...]  # "systemd", "cron"
    why: str = ""  # when not installed: which file is missing, which site its command serves, ...


@dataclass(frozen=True)
class ScheduleStatus:
    """The schedule of one site: declared entries, what is installed, and whether anything runs it."""

    site: Path
    config: Path
    shown_site: str  # the site as messages name it (the runbook: "."; records hold no host paths)
    entries: tuple[EntryStatus, ...]
    undeclared: tuple[str, ...]  # installed for this site, declared nowhere
    schedulers: tuple[str, ...]  # which hold a job of this site
    where: tuple[str, ...]  # what was read
    active: bool | None
    inactive_why: str  # why active is not True: what to run (False), what cannot be checked (None)
    notes: tuple[str, ...] = ()
    drift: tuple[tuple[str | None, str], ...] = ()  # (run or None for all, problem): differs from the install

    def drifted(self, run: str | None = None) -> list[str]:
        """What differs from what the install writes, or cannot run (of one run, or all)."""
        return [text for which, text in self.drift if run is None or which in (None, run)]

    def declared(self, run: str | None = None) -> list[EntryStatus]:
        """The declared entries (of one run, or all)."""
        return [e for e in self.entries if run is None or e.run == run]

    def confirmed(self, run: str | None = None) -> bool:
        """Declared, every entry installed, and not known to be idle (``active`` is not False)."""
        entries = self.declared(run)
        installed = bool(entries) and all(e.installed for e in entries)
        return installed and self.active is not False and not self.drifted(run)

    def problems(self, run: str | None = None) -> list[str]:
        """What keeps :meth:`confirmed` false, each with what to do."""
        what = {"backup": "[backups] schedule", "drill": "[drills] schedule", None: "[backups] schedule"}[run]
        if not self.declared(run):
            return [
                f'no {what} is declared in {self.config}: declare one (e.g. ["*-*-* 02:00"], UTC), then run '
                f"`recovery schedule install --systemd --site {self.shown_site}`"
            ]
        found: list[str] = []
        missing = [e for e in self.declared(run) if not e.installed]
        if missing:
            flag = "--cron" if self.schedulers == ("cron",) else "--systemd"
            found.append(
                f"not installed: {', '.join(f'{e.run} {e.entry!r} ({e.why})' for e in missing)} "
                f"(read {'; '.join(self.where)}); "
                f"run `recovery schedule install {flag} --site {self.shown_site}`"
            )
        found += self.drifted(run)
        if self.active is False:
            found.append(self.inactive_why)
        return found

    def to_record(self, run: str | None = None) -> dict[str, Any]:
        """The record Procedure D keeps (and ``recovery schedule status --json`` prints)."""
        return {
            "configured": bool(self.declared(run)),
            "entries": [e.entry for e in self.declared(run)],
            "installed": bool(self.declared(run)) and all(e.installed for e in self.declared(run)),
            "scheduler": "+".join(n for n in ("systemd", "cron") if any(n in e.found_in for e in self.declared(run)))
            or None,
            "where": "; ".join(self.where),
            "active": self.active,
            "problems": self.problems(run),
        }

    def will_run(self) -> str:
        """Whether anything runs what is installed, saying only what is known."""
        if self.active is None:
            if not self.schedulers:
                return "nothing of this site is installed"
            return f"installed; whether anything runs it cannot be checked here: {self.inactive_why}"
        return "yes" if self.active else f"NO: {self.inactive_why}"

    def describe(self) -> str:
        """Several lines for a person: each entry, what else is installed, whether it runs."""
        lines = [f"Schedule of {self.site} (declared in {self.config}; read {'; '.join(self.where)}):"]
        for e in self.entries:
            state = f"installed ({', '.join(e.found_in)})" if e.installed else f"NOT INSTALLED ({e.why})"
            lines.append(f"  {e.run:<6} {e.entry!r}: {state}")
        lines += [f"  installed but not declared: {extra}" for extra in self.undeclared]
        lines.append(f"  will run: {self.will_run()}")
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)


def _key(calendar: Calendar) -> Key:
    return (
        calendar.minutes,
        calendar.hours,
        calendar.days,
        calendar.months,
        calendar.weekdays,
        frozenset({int(calendar.either_day)}),
    )


def _keys(values: list[str] | tuple[str, ...]) -> tuple[set[Key], list[str]]:
    keys, unreadable = set(), []
    for value in values:
        try:
            keys.add(_key(parse_calendar(value)))
        except CalendarError:
            unreadable.append(value)
    return keys, unreadable


def schedule_status(site: Site, show: Callable[[Path], str] = str) -> ScheduleStatus:
    """Read both schedulers and judge every declared entry (see the module docstring). ``show`` turns a
    path into the text messages use (the runbook's records name paths relative to the site)."""
    jobs = declared_jobs(site)
    where = systemd.unit_dir(site)
    units = systemd.installed_jobs(where.path, site.root)
    read, notes = [f"systemd units in {show(where.path)}"], []
    try:
        crontab = cron.read_crontab()
        read.append(cron.where())
    except SchedulerFailed as exc:  # no crontab here: only the units can hold the schedule
        crontab = ""
        notes.append(f"crontab not read: {exc}")
    _, block = cron.split_block(crontab, site.root)
    lines, utc = cron.parse_block(block) if block else ([], False)
    if lines and not utc:
        notes.append(f"the block of {site.root} in {cron.where()} has no CRON_TZ=UTC: its lines are not counted")
    entries, declared_keys = [], {"systemd": set(), "cron": set()}
    for job in jobs:
        timer_keys: set[Key] = set()
        for unit in units:
            if unit.run == job.run and command_matches(job, unit.argv):
                timer_keys |= _keys(unit.on_calendar)[0]
        cron_keys = {_key(line.calendar) for line in lines if line.calendar and utc and command_matches(job, line.argv)}
        for calendar in job.calendars:
            needed, _ = _keys(calendar.on_calendar())
            in_cron = _cron_key(calendar)
            declared_keys["systemd"] |= needed
            declared_keys["cron"] |= {in_cron} if in_cron else set()
            in_systemd = bool(needed) and needed <= timer_keys  # every OnCalendar value the entry needs
            found_in = tuple(name for name, ok in (("systemd", in_systemd), ("cron", in_cron in cron_keys)) if ok)
            why = "" if found_in else drift.not_installed_why(site, job, where, show, _cron_why(block, utc))
            entries.append(EntryStatus(job.run, calendar.text, bool(found_in), found_in, why))
    if units and lines:
        notes.append("installed in both systemd and cron: each backup runs twice; remove one of them")
    undeclared = _undeclared(units, lines, jobs, declared_keys, show)
    schedulers = tuple(name for name, found in (("systemd", units), ("cron", lines)) if found)
    active, why = _active(where, units, bool(lines), show)
    found = _drift(site, jobs, where, units, lines, block, show)
    return ScheduleStatus(
        site.root,
        config_file(site),
        show(site.root),
        tuple(entries),
        tuple(undeclared),
        schedulers,
        tuple(read),
        active,
        why,
        tuple(notes),
        tuple(found),
    )


def _cron_why(block: str | None, utc: bool) -> str | None:
    """The crontab's side of why an entry is not installed (None when the site has no block there)."""
    if block is None:
        return None
    if not utc:
        return "the crontab block has no CRON_TZ=UTC"
    return "no line of the crontab block fires at these times with this site's command"


def _drift(
    site: Site,
    jobs: list[Job],
    where: systemd.UnitDir,
    units: list[systemd.InstalledJob],
    lines: list[cron.CronLine],
    block: str | None,
    show: Callable[[Path], str],
) -> list[tuple[str | None, str]]:
    """Everything installed for this site that is not what the install writes now, or cannot run."""
    shown = show(site.root)
    found: list[tuple[str | None, str]] = list(drift.systemd_drift(site, jobs, where, {u.run for u in units}, show))
    found += [(None, problem) for problem in drift.cron_drift(site, jobs, block, show)]
    for unit in units:
        what = f"{show(where.path)}/{unit.service.name}"
        problem = drift.program_problem(unit.argv, what, "--systemd", shown)
        found += [(unit.run, problem)] if problem else []
    for line in lines:
        problem = drift.program_problem(line.argv, f"the line {line.fields!r} of {cron.where()}", "--cron", shown)
        found += [(None, problem)] if problem else []
    return found


def _cron_key(calendar: Calendar) -> Key | None:
    try:
        return _key(parse_calendar(calendar.cron()))
    except CalendarError:
        return None  # cron cannot say it: only a timer can hold it


def _undeclared(
    units: list[systemd.InstalledJob],
    lines: list[cron.CronLine],
    jobs: list[Job],
    declared: dict[str, set[Key]],
    show: Callable[[Path], str],
) -> list[str]:
    runs = {job.run for job in jobs}
    extra = []
    for unit in units:
        _, unreadable = _keys(unit.on_calendar)
        if unit.run not in runs:
            extra.append(f"{unit.run} job {show(unit.service)} ({', '.join(unit.on_calendar) or 'no timer'})")
            continue
        for value in unit.on_calendar:
            if value in unreadable or _keys([value])[0] - declared["systemd"]:
                extra.append(f"{unit.run} OnCalendar={value} in {show(unit.timer)}")
    for line in lines:
        if line.calendar is None or _key(line.calendar) not in declared["cron"]:
            extra.append(f"crontab line {line.fields} {' '.join(line.argv[1:3])}")
    return extra


def _active(
    where: systemd.UnitDir, units: list[systemd.InstalledJob], in_cron: bool, show: Callable[[Path], str]
) -> tuple[bool | None, str]:
    """Whether what is installed will run (see the module docstring), and if not, what to do."""
    verdicts: list[tuple[bool | None, str]] = []
    if units:
        timers = [unit.timer.name for unit in units]
        if not where.read_by_systemd:
            verdicts.append((None, f"the unit directory {show(where.path)} is not one systemd reads"))
        elif not systemd.systemd_running(where):
            verdicts.append(
                (
                    False,
                    f"systemd is not running here, so nothing runs the timers in {show(where.path)}",
                )
            )
        else:
            idle = [timer for timer in timers if not systemd.timer_active(where, timer)]
            command = " ".join(where.systemctl("enable", "--now", *idle))
            verdicts.append((not idle, f"timers not enabled and active: {', '.join(idle)}; run `{command}`"))
    if in_cron:
        running = cron.cron_daemon_running()
        verdicts.append((running, "no cron daemon runs here: start it (`service cron start`, or `cron` as root)"))
    if not verdicts:
        return None, ""
    for verdict, why in verdicts:
        if verdict is False:
            return False, why
    unknown = [why for verdict, why in verdicts if verdict is None]
    return (None, unknown[0]) if unknown else (True, "")


__all__ = ["EntryStatus", "ScheduleStatus", "schedule_status"]
