"""systemd timers: per job, ``recovery-<slug>-<run>.service`` (what runs) and ``.timer`` (when).

The timer has one ``OnCalendar=`` line per value of each declared entry (always with ``UTC``) and
``Persistent=true``, so a run missed while the machine was off happens at the next boot. The unit
directory is ``[schedule] systemd_dir`` when set (a directory systemd does not read unless told:
nothing runs there by itself, which is what a sandbox wants), else ``/etc/systemd/system`` for root
and ``~/.config/systemd/user`` for anyone else.

Reading back is the same format in reverse: every ``recovery-*-{backup,drill}.service`` in the
directory whose command serves this site, and the ``OnCalendar=`` values of its timer.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from recovery_lib.errors import ScheduleError
from recovery_lib.schedule.plan import RUNS, FileChange, Job, Plan, config_file, required_jobs, served_site
from recovery_lib.site.config import Site

SYSTEM_UNIT_DIR = Path("/etc/systemd/system")
RUNNING_STATES = ("running", "degraded")  # `systemctl is-system-running`: timers fire in both
SYSTEMCTL_TIMEOUT_S = 30
DESCRIPTIONS = {"backup": "scheduled backup", "drill": "scheduled disaster-recovery drill (on a fresh sandbox)"}


@dataclass(frozen=True)
class UnitDir:
    """Where the units go, and whether systemd reads it (a custom directory it does not)."""

    path: Path
    user: bool  # systemctl --user (not root)
    read_by_systemd: bool

    def systemctl(self, *args: str) -> tuple[str, ...]:
        """A ``systemctl`` command for this directory's manager (``--user`` when not root)."""
        return ("systemctl", *(("--user",) if self.user else ()), *args)


@dataclass(frozen=True)
class InstalledJob:
    """A job found in the unit directory that serves the site: its timer's values and its command."""

    run: str
    service: Path
    timer: Path
    argv: tuple[str, ...]
    on_calendar: tuple[str, ...]  # empty when the timer is missing


def unit_dir(site: Site) -> UnitDir:
    """``[schedule] systemd_dir``, else systemd's own directory for this user."""
    user = os.geteuid() != 0
    default = Path.home() / ".config/systemd/user" if user else SYSTEM_UNIT_DIR
    chosen = site.ops.systemd_dir or default
    return UnitDir(chosen, user, read_by_systemd=os.path.normpath(chosen) == os.path.normpath(default))


def slug(name: str) -> str:
    """The site's name made safe for a unit name: lowercase letters, digits and dashes."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "site"


def unit_names(site: Site, run: str) -> tuple[str, str]:
    """``(service, timer)`` file names of ``run`` for ``site``."""
    stem = f"recovery-{slug(site.name or site.root.name)}-{run}"
    return f"{stem}.service", f"{stem}.timer"


def exec_line(argv: Sequence[str]) -> str:
    """``ExecStart=`` value: systemd's quoting (double quotes), ``%`` and ``$`` escaped as systemd wants."""

    def word(text: str) -> str:
        text = text.replace("%", "%%").replace("$", "$$")
        if re.fullmatch(r"[A-Za-z0-9_@%+=:,./-]+", text):
            return text
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    return " ".join(word(w) for w in argv)


def parse_exec(value: str) -> tuple[str, ...]:
    """The argv of an ``ExecStart=`` value (the reverse of :func:`exec_line`; prefixes ``-@+!:`` dropped)."""
    value = value.lstrip("-@+!:").replace("%%", "\0").replace("$$", "$")
    try:
        return tuple(word.replace("\0", "%") for word in shlex.split(value))
    except ValueError:  # unbalanced quotes: not a command we wrote
        return ()


def service_text(site: Site, job: Job) -> str:
    """The ``.service`` unit of ``job``: one oneshot run of its command."""
    return (
        f"# Written by `recovery schedule install --systemd` for the site {site.root}.\n"
        "# The next install replaces it; edit recovery.toml, not this file.\n"
        "[Unit]\n"
        f"Description=recovery_lib: {DESCRIPTIONS[job.run]} of {site.name or site.root.name}\n"
        "\n"
        "[Service]\n"
        "Type=oneshot\n"
        f"ExecStart={exec_line(job.argv)}\n"
    )


def timer_text(site: Site, job: Job, service: str) -> str:
    """The ``.timer`` unit of ``job``: its calendars (UTC), ``Persistent=true``, enabled by timers.target."""
    values = []
    for calendar in job.calendars:
        values.append(f"# {job.table}: {calendar.text!r}")
        values += [f"OnCalendar={value}" for value in calendar.on_calendar()]
    return (
        f"# Written by `recovery schedule install --systemd` for the site {site.root}.\n"
        "# The next install replaces it; edit recovery.toml, not this file.\n"
        "[Unit]\n"
        f"Description=recovery_lib: when to run the {DESCRIPTIONS[job.run]} of {site.name or site.root.name} (UTC)\n"
        "\n"
        "[Timer]\n" + "\n".join(values) + "\n"
        "Persistent=true\n"  # a run missed while the machine was off happens at the next boot
        f"Unit={service}\n"
        "\n"
        "[Install]\n"
        "WantedBy=timers.target\n"
    )


def read_unit(path: Path) -> dict[str, list[str]]:
    """``{"Section.Key": [values...]}`` of a unit file (an empty value resets the list, as in systemd)."""
    found: dict[str, list[str]] = {}
    section = ""
    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, sep, value = line.partition("=")
        if sep:
            values = found.setdefault(f"{section}.{key.strip()}", [])
            if value.strip():
                values.append(value.strip())
            else:
                values.clear()
    return found


def installed_jobs(directory: Path, root: Path) -> list[InstalledJob]:
    """Every job in ``directory`` whose command serves the site at ``root`` (any slug: a renamed site too)."""
    jobs = []
    for run in RUNS:
        for service in sorted(directory.glob(f"recovery-*-{run}.service")) if directory.is_dir() else []:
            argv = _exec_start(service)
            if served_site(run, argv) != Path(os.path.normpath(root)):
                continue
            timer = service.with_suffix(".timer")
            values = tuple(read_unit(timer).get("Timer.OnCalendar", [])) if timer.is_file() else ()
            jobs.append(InstalledJob(run, service, timer, argv, values))
    return jobs


def _exec_start(service: Path) -> tuple[str, ...]:
    try:
        values = read_unit(service).get("Service.ExecStart", [])
    except OSError:
        return ()
    return parse_exec(values[-1]) if values else ()


def systemd_running(where: UnitDir) -> bool:
    """Whether a systemd manager runs here (``is-system-running`` says running or degraded)."""
    if shutil.which("systemctl") is None:
        return False
    try:
        answer = subprocess.run(
            where.systemctl("is-system-running"), capture_output=True, text=True, timeout=SYSTEMCTL_TIMEOUT_S
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return answer.stdout.strip() in RUNNING_STATES


def timer_active(where: UnitDir, timer: str) -> bool:
    """Whether systemd has ``timer`` enabled and active (waiting for its next firing)."""
    for question in ("is-enabled", "is-active"):
        try:
            answer = subprocess.run(
                where.systemctl(question, "--quiet", timer), capture_output=True, timeout=SYSTEMCTL_TIMEOUT_S
            )
        except (OSError, subprocess.TimeoutExpired):
            return False
        if answer.returncode != 0:
            return False
    return True


def plan_systemd(site: Site) -> Plan:
    """The units of every declared job, this site's units of undeclared jobs removed, and the systemctl
    commands (run when systemd runs here and reads the directory; printed for a person otherwise)."""
    jobs = required_jobs(site)
    where = unit_dir(site)
    files: list[FileChange] = []
    timers = []
    for job in jobs:
        service, timer = unit_names(site, job.run)
        for name in (service, timer):
            _refuse_other_site(site, where.path / name, job.run)
        files.append(FileChange(where.path / service, service_text(site, job)))
        files.append(FileChange(where.path / timer, timer_text(site, job, service)))
        timers.append(timer)
    writing = {change.path for change in files}
    stale = [found for found in installed_jobs(where.path, site.root) if found.service not in writing]
    for found in stale:
        files += [FileChange(path, None) for path in (found.service, found.timer) if path.exists()]
    before = tuple(where.systemctl("disable", "--now", found.timer.name) for found in stale)
    after = (where.systemctl("daemon-reload"), where.systemctl("enable", "--now", *timers))
    notes: list[str] = []
    if not where.read_by_systemd:
        notes.append(
            f"{where.path} is [schedule] systemd_dir of {config_file(site)}, a directory systemd does not read: "
            "nothing runs these units until they are linked into systemd (as below)."
        )
        paths = [str(change.path) for change in files if change.text is not None]
        manual = (shlex.join(where.systemctl("link", *paths)), shlex.join(where.systemctl("enable", "--now", *timers)))
        return Plan("systemd", site.root, str(where.path), tuple(jobs), tuple(files), notes=tuple(notes), manual=manual)
    if systemd_running(where):
        return Plan("systemd", site.root, str(where.path), tuple(jobs), tuple(files), stop_first=before, commands=after)
    notes.append("systemd is not running here, so nothing will run these units until it does.")
    manual = tuple(shlex.join(command) for command in after)
    return Plan("systemd", site.root, str(where.path), tuple(jobs), tuple(files), notes=tuple(notes), manual=manual)


def _refuse_other_site(site: Site, path: Path, run: str) -> None:
    """A unit of the same name that serves another site that still exists is never overwritten."""
    service = path.with_suffix(".service")
    if not service.is_file():
        return
    other = served_site(run, _exec_start(service))
    if other is not None and other != Path(os.path.normpath(site.root)) and other.exists():
        raise ScheduleError(
            f"{service} runs the {run} of another site, {other}, whose units have the same name. Give this site "
            f"its own name ([site] name in {config_file(site)}) and install again; nothing was written."
        )


__all__ = [
    "InstalledJob",
    "UnitDir",
    "exec_line",
    "installed_jobs",
    "parse_exec",
    "plan_systemd",
    "read_unit",
    "slug",
    "systemd_running",
    "timer_active",
    "unit_dir",
    "unit_names",
]
