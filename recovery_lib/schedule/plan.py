"""What a schedule install will do, before it does it: the jobs the site declares, as a :class:`Plan`.

Plan, then apply (Terraform's habit): ``recovery schedule install --dry-run`` prints the very plan the
real run applies (every file with its full contents, every command), and whatever the real run would
refuse is refused while planning, so a dry run that passes means the install will.

A job is one thing the site asks to run on a schedule: ``backup`` (``[backups] schedule``) runs
``recovery backup create --site ROOT --scheduled``; ``drill`` (``[drills] schedule``) runs
``recovery drill run --due --outputs <drill records> --for-site ROOT`` (a fresh sandbox each time;
``--for-site`` names the production site whose alerts and metrics apply). Drill records go to the
site's drill records directory, never inside the site.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from recovery_lib.errors import ScheduleError
from recovery_lib.site.calendar import Calendar
from recovery_lib.site.config import CONFIG_NAME, Site

RUNS = ("backup", "drill")
TABLES = {"backup": "[backups] schedule", "drill": "[drills] schedule"}
SITE_FLAG = {"backup": "--site", "drill": "--for-site"}  # the option naming the site a job serves


@dataclass(frozen=True)
class Job:
    """One scheduled command of a site: when (its calendars, UTC) and what (its argv)."""

    run: str  # "backup" or "drill"
    calendars: tuple[Calendar, ...]
    argv: tuple[str, ...]  # absolute program first

    @property
    def table(self) -> str:
        """Where ``recovery.toml`` declares it: ``[backups] schedule`` or ``[drills] schedule``."""
        return TABLES[self.run]


def recovery_program() -> tuple[tuple[str, ...], str | None]:
    """The ``recovery`` script beside this Python (what a scheduler must call: no PATH, no venv
    activation at 02:00), and a note when it is missing and ``python -m recovery_lib.cli`` stands in."""
    script = Path(sys.executable).with_name("recovery")  # not resolved: a venv's python is a symlink
    if script.is_file() and os.access(script, os.X_OK):
        return (str(script),), None
    return (
        (sys.executable, "-m", "recovery_lib.cli"),
        f"there is no `recovery` script beside {sys.executable}; the jobs run `{sys.executable} -m recovery_lib.cli`.",
    )


def declared_jobs(site: Site) -> list[Job]:
    """The jobs ``recovery.toml`` declares (none, backup, drill or both), with their commands."""
    program, _ = recovery_program()
    root = str(site.root)
    jobs = []
    if site.ops.backup_schedule:
        argv = (*program, "backup", "create", "--site", root, "--scheduled")
        jobs.append(Job("backup", site.ops.backup_schedule, argv))
    if site.ops.drill_schedule:
        outputs = str(site.drill_records_dir)
        argv = (*program, "drill", "run", "--due", "--outputs", outputs, "--for-site", root)
        jobs.append(Job("drill", site.ops.drill_schedule, argv))
    return jobs


def required_jobs(site: Site) -> list[Job]:
    """:func:`declared_jobs`, refusing a site that declares no schedule at all (nothing to install)."""
    jobs = declared_jobs(site)
    if not jobs:
        raise ScheduleError(
            f"{config_file(site)} declares no schedule, so there is nothing to install: add "
            '`schedule = ["*-*-* 02:00"]` under [backups] schedule (systemd calendar or cron, always UTC; '
            "and [drills] schedule for drills), then run `recovery schedule install` again."
        )
    return jobs


def config_file(site: Site) -> Path:
    """The site's ``recovery.toml`` (for messages that tell a person where to edit)."""
    return site.config_source or site.root / CONFIG_NAME


def served_site(run: str, argv: Sequence[str]) -> Path | None:
    """The site an installed command serves: the value of its ``--site`` (backup) or ``--for-site``
    (drill) option, None when it is not such a ``recovery`` command."""
    words = list(argv)
    if run not in RUNS or not {"backup", "drill"} & set(words):
        return None
    flag = SITE_FLAG[run]
    for index, word in enumerate(words[:-1]):
        if word == flag:
            return Path(os.path.normpath(words[index + 1]))
        if word.startswith(flag + "="):
            return Path(os.path.normpath(word.split("=", 1)[1]))
    return None


def command_matches(job: Job, argv: Sequence[str]) -> bool:
    """Whether an installed command runs ``job`` for the same site (the program may differ: a venv
    moved, or ``python -m``; the subcommand and the site must not)."""
    subcommand = job.argv[job.argv.index(job.run) :]
    words = list(argv)
    if job.run not in words:
        return False
    installed = words[words.index(job.run) :]
    return tuple(installed[:2]) == subcommand[:2] and served_site(job.run, installed) == served_site(
        job.run, subcommand
    )


@dataclass(frozen=True)
class FileChange:
    """A file the install writes (``text``) or removes (``text`` None: a job the site no longer declares)."""

    path: Path
    text: str | None


@dataclass(frozen=True)
class Plan:
    """Everything an install does, in order: files, the crontab, commands; and what a person must know.

    ``commands`` are run by the install; ``manual`` are commands the install cannot run here (systemd
    not running, or a unit directory systemd does not read) and prints for a person.
    """

    scheduler: str  # "systemd" or "cron"
    site: Path
    where: str  # the unit directory, or "the crontab of user root"
    jobs: tuple[Job, ...]
    files: tuple[FileChange, ...] = ()
    crontab_before: str | None = None  # cron: the crontab the plan was made from (checked again on apply)
    crontab_after: str | None = None
    block: str = ""  # cron: this site's block, as it will read
    stop_first: tuple[tuple[str, ...], ...] = ()  # before the files change (timers of removed units)
    commands: tuple[tuple[str, ...], ...] = ()
    manual: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    def render(self) -> str:
        """The plan for a person: what will be written where (in full), what will be run."""
        lines = [f"Schedule of the site {self.site} with {self.scheduler}, in {self.where}:"]
        for job in self.jobs:
            lines.append(f"  {job.run}: {'; '.join(c.text for c in job.calendars)} (UTC, from {job.table})")
        lines += [f"WARNING: {warning}" for warning in self.warnings]
        if self.stop_first:
            lines += ["", "--- first run"] + [shlex.join(command) for command in self.stop_first]
        for change in self.files:
            if change.text is None:
                lines += ["", f"--- remove {change.path} (its job is no longer declared)"]
            else:
                lines += ["", f"--- write {change.path}", change.text.rstrip("\n")]
        if self.crontab_after is not None:
            kept = _kept_lines(self.crontab_after, self.block)
            lines += ["", f"--- crontab: this block, at the end (the {kept} other line(s) are kept as they are)"]
            lines.append(self.block.rstrip("\n"))
        if self.commands:
            lines += ["", "--- then run"] + [shlex.join(command) for command in self.commands]
        lines += [f"Note: {note}" for note in self.notes]
        if self.manual:
            lines += ["Run these where systemd reads the units:"] + [f"  {command}" for command in self.manual]
        return "\n".join(lines) + "\n"


def _kept_lines(crontab: str, block: str) -> int:
    return len(crontab.splitlines()) - len(block.splitlines())


__all__ = [
    "RUNS",
    "FileChange",
    "Job",
    "Plan",
    "command_matches",
    "config_file",
    "declared_jobs",
    "recovery_program",
    "required_jobs",
    "served_site",
]
