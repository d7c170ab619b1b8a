"""Is the protected system running? Told by a pidfile, a detect command, or both.

Stopping and starting (``[process] stop`` / ``start``) belong to the procedures that need them.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .site import Site

DETECT_TIMEOUT_S = 10


@dataclass(frozen=True)
class ProcessStatus:
    """``running`` is None when the site does not say how to tell."""

    running: bool | None
    detail: str
    pid: int | None = None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _from_pidfile(site: Site) -> ProcessStatus:
    relative = site.process.pidfile or ""
    path = site.path(relative)
    if not path.is_file():
        return ProcessStatus(False, f"not running (no pidfile {relative})")
    text = path.read_text(errors="replace").strip()
    if not text.isdigit():
        return ProcessStatus(False, f"not running (pidfile {relative} holds {text[:20]!r}, not a pid)")
    pid = int(text)
    if not _pid_alive(pid):
        return ProcessStatus(False, f"not running (stale pidfile {relative}: pid {pid} is gone)", pid)
    if os.path.exists(f"/proc/{pid}/stat") and Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][:1] == "Z":
        return ProcessStatus(False, f"not running (pid {pid} from {relative} is a zombie)", pid)
    match = site.process.match
    if match and match not in _cmdline(pid):
        return ProcessStatus(False, f"not running (pid {pid} from {relative} is another program, not {match!r})", pid)
    return ProcessStatus(True, f"running (pid {pid})", pid)


def _from_command(site: Site) -> ProcessStatus:
    command = site.process.detect or ""
    try:
        done = subprocess.run(
            command, shell=True, cwd=site.root, capture_output=True, timeout=DETECT_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        return ProcessStatus(False, f"unknown: detect command {command!r} timed out after {DETECT_TIMEOUT_S}s")
    if done.returncode == 0:
        return ProcessStatus(True, f"running (detect command {command!r} exited 0)")
    return ProcessStatus(False, f"not running (detect command {command!r} exited {done.returncode})")


def process_status(site: Site) -> ProcessStatus:
    """Whether the protected system runs, as configured in ``[process]`` of ``recovery.toml``."""
    if site.process.pidfile:
        status = _from_pidfile(site)
        if status.running or not site.process.detect:
            return status
    if site.process.detect:
        return _from_command(site)
    return ProcessStatus(None, "no [process] pidfile or detect command in recovery.toml")
