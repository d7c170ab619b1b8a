"""Installed units and crontab blocks against exactly what ``recovery schedule install`` writes now.

Matching times and a command for this site is not enough: a timer that starts another unit, an
``ExecStartPre=/bin/false``, or an ``ExecStart=`` whose program is gone (a venv moved or rebuilt) all
look installed and never run a backup. So every unit file and the site's crontab block is compared,
line by line, with the text the install would write (comments and blank lines aside: neither systemd
nor cron reads them), and the program each installed command runs must exist and be executable.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

from recovery_lib.errors import ScheduleError
from recovery_lib.schedule import cron, systemd
from recovery_lib.schedule.plan import Job, command_matches, served_site
from recovery_lib.site.config import Site

Lines = list[tuple[int, str]]  # (line number in the file, the line stripped)


def meaningful(text: str) -> Lines:
    """The lines systemd and cron read: no blank lines, no comments."""
    return [
        (number, line.strip())
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.strip().startswith(("#", ";"))
    ]


def first_difference(found: str, expected: str) -> str | None:
    """The first line where ``found`` differs from ``expected`` (what the install writes), for a person;
    None when they say the same."""
    have, want = meaningful(found), meaningful(expected)
    for (number, line), (_, wanted) in zip(have, want, strict=False):
        if line != wanted:
            return f"line {number} is {line!r} where it writes {wanted!r}"
    if len(have) > len(want):
        number, line = have[len(want)]
        return f"line {number} {line!r} is not one it writes"
    if len(want) > len(have):
        return f"{want[len(have)][1]!r} is missing"
    return None


def systemd_drift(
    site: Site, jobs: Sequence[Job], where: systemd.UnitDir, runs: set[str], show: Callable[[Path], str]
) -> list[tuple[str, str]]:
    """``(run, problem)`` for every unit file of a job this site has in systemd (``runs``) that differs
    from what the install writes (or is missing while the job counts as installed under another name)."""
    found = []
    for job in jobs:
        if job.run not in runs:
            continue  # nothing of this job in systemd: its entries say NOT INSTALLED and why
        service, timer = systemd.unit_names(site, job.run)
        texts = {service: systemd.service_text(site, job), timer: systemd.timer_text(site, job, service)}
        for name, text in texts.items():
            path = where.path / name
            try:
                difference = first_difference(path.read_text(encoding="utf-8", errors="replace"), text)
            except OSError as exc:
                difference = f"it cannot be read ({exc.strerror})"
            if difference:
                found.append((job.run, _differs(f"{show(where.path)}/{name}", difference, "--systemd", site, show)))
    return found


def cron_drift(site: Site, jobs: Sequence[Job], block: str | None, show: Callable[[Path], str]) -> list[str]:
    """Problems of this site's crontab block against the block the install writes now (none without a block)."""
    if block is None:
        return []
    try:
        expected = cron.block_text(site, list(jobs))
    except ScheduleError as exc:  # the schedule declared now is one cron cannot say
        return [
            f"the block of this site in {cron.where()} is not what `recovery schedule install --cron` writes: {exc}"
        ]
    difference = first_difference(block, expected)
    return (
        [_differs(f"the block of this site in {cron.where()}", difference, "--cron", site, show)] if difference else []
    )


def _differs(what: str, difference: str, flag: str, site: Site, show: Callable[[Path], str]) -> str:
    root = show(site.root)
    return (
        f"{what} differs from what `recovery schedule install` writes: {difference}; re-run "
        f"`recovery schedule install {flag} --site {root}`"
    )


def program_problem(argv: Sequence[str], what: str, flag: str, root: str) -> str | None:
    """When the program an installed command runs does not exist or cannot be executed (a venv moved
    or rebuilt), what to say; None when it can run."""
    if not argv:
        return None  # no command at all: the comparison with the install's text says so
    program = argv[0]
    if os.path.isabs(program):
        runs = os.path.isfile(program) and os.access(program, os.X_OK)
    else:
        runs = shutil.which(program) is not None
    if runs:
        return None
    return (
        f"{what} runs {program}, which does not exist or is not executable (a virtualenv moved or rebuilt?), "
        f"so it can never run; re-run `recovery schedule install {flag} --site {root}` with the `recovery` "
        "that should run it"
    )


def not_installed_why(
    site: Site, job: Job, where: systemd.UnitDir, show: Callable[[Path], str], in_cron: str | None
) -> str:
    """Why an entry of ``job`` is not installed: the unit file missing, serving another site or another
    command, no timer, or a timer whose OnCalendar differs; ``in_cron`` adds the crontab's side."""
    service, timer = systemd.unit_names(site, job.run)
    unit_dir = show(where.path)
    if not (where.path / service).is_file():
        why = f"no unit file {unit_dir}/{service}"
    else:
        values = systemd.read_unit(where.path / service).get("Service.ExecStart", [])
        argv = systemd.parse_exec(values[-1]) if values else ()
        other = served_site(job.run, argv)
        root = Path(os.path.normpath(site.root))
        if other is not None and other != root:
            why = f"{unit_dir}/{service} runs the {job.run} of another site, {other}"
        elif not command_matches(job, argv):
            command = " ".join(job.argv[job.argv.index(job.run) :][:2])
            why = f"{unit_dir}/{service} does not run `recovery {command}` for this site"
        elif not (where.path / timer).is_file():
            why = f"no timer {unit_dir}/{timer}"
        else:
            why = f"no OnCalendar= in {unit_dir}/{timer} fires at these times"
    return f"{why}; {in_cron}" if in_cron else why


__all__ = ["cron_drift", "first_difference", "meaningful", "not_installed_why", "program_problem", "systemd_drift"]
