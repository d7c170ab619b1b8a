"""Is the protected system running? Told by a pidfile, a detect command, or both.

Stopping and starting (``[process] stop`` / ``start``) belong to the procedures that need them.
"""

from __future__ import annotations

import contextlib
import fcntl
import html
import logging
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recovery_lib.fsops.flock import flock_within
from recovery_lib.site.config import Site

log = logging.getLogger(__name__)

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


@dataclass(frozen=True)
class ProcessAction:
    """The outcome of stopping or starting the protected system."""

    action: str
    ok: bool
    running_after: bool | None
    message: str

    def summary(self) -> str:
        """One line for a person: what was done and what the system is doing now."""
        verb = {"stop": "Stop the trading system", "start": "Start the trading system"}.get(self.action, self.action)
        state = {True: "running", False: "not running", None: "state unknown"}[self.running_after]
        return f"{'✅' if self.ok else '❌'} {verb}: {self.message} (now {state})."

    def _repr_html_(self) -> str:
        return f"<p>{html.escape(self.summary())}</p>"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.summary())


def _run_command(site: Site, command: str, timeout_s: float) -> tuple[int, str]:
    try:
        done = subprocess.run(
            command, shell=True, cwd=site.root, capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired:
        return 124, f"timed out after {timeout_s:g} s"
    return done.returncode, (done.stdout + done.stderr).strip()[-500:]


def _wait_for(site: Site, running: bool, timeout_s: float) -> bool | None:
    deadline = time.monotonic() + timeout_s
    while True:
        state = process_status(site).running
        if state is None or state == running or time.monotonic() >= deadline:
            return state
        time.sleep(0.1)


def stop_system(site: Site, timeout_s: float = 30.0) -> ProcessAction:
    """Run ``[process] stop`` and wait until the system is no longer running (runbook: step 1)."""
    before = process_status(site)
    if before.running is False:
        return ProcessAction("stop", True, False, f"already stopped ({before.detail})")
    if not site.process.stop:
        return ProcessAction(
            "stop",
            before.running is None,
            before.running,
            "no [process] stop command in recovery.toml: stop the trading system by hand",
        )
    log.info("stopping the trading system of %s: %s", site.root, site.process.stop)
    code, output = _run_command(site, site.process.stop, timeout_s)
    after = _wait_for(site, False, timeout_s)
    ok = after is not True
    log.log(logging.INFO if ok else logging.WARNING, "stop command exited %d; running afterwards: %s", code, after)
    return ProcessAction(
        "stop",
        ok,
        after,
        f"stop command exited {code}; "
        + ("system stopped" if after is False else "still running" if after else "state unknown")
        + (f" ({output})" if output and not ok else ""),
    )


STAY_UP_S = 1.0  # a system that dies right after it starts has not started


def start_system(site: Site, timeout_s: float = 30.0, stay_up_s: float = STAY_UP_S) -> ProcessAction:
    """Run ``[process] start`` in the background, wait until the system runs, then check that it is
    still running ``stay_up_s`` later (one that crashes on its first write has not started)."""
    before = process_status(site)
    if before.running:
        return ProcessAction("start", True, True, f"already running ({before.detail})")
    if not site.process.start:
        return ProcessAction(
            "start",
            False,
            before.running,
            "no [process] start command in recovery.toml: start the trading system by hand",
        )
    # Started detached: the system must outlive this notebook or command.
    log.info("starting the trading system of %s: %s", site.root, site.process.start)
    subprocess.Popen(
        site.process.start,
        shell=True,
        cwd=site.root,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    after = _wait_for(site, True, timeout_s)
    if after is not True:
        log.warning("the trading system is not running %g s after its start command", timeout_s)
        return ProcessAction("start", False, after, f"not running {timeout_s:g} s after the start command")
    first = process_status(site).pid
    time.sleep(stay_up_s)
    now = process_status(site)
    if not now.running or (first is not None and now.pid != first):
        log.warning("the trading system started, then exited within %g s (%s)", stay_up_s, now.detail)
        return ProcessAction(
            "start", False, now.running, f"started, then exited within {stay_up_s:g} s ({now.detail}): see its logs"
        )
    log.info("the trading system runs (pid %s)", now.pid)
    return ProcessAction("start", True, True, "system running")


@contextlib.contextmanager
def consistent_view(site: Site, timeout_s: float = 10.0) -> Iterator[None]:
    """Hold the site's ``[process] write_lock`` shared, so the running system is not half-way
    through a multi-file update while files are read (backups, data checks). A no-op when unset."""
    if not site.process.write_lock:
        yield
        return
    try:  # read-only: readers never create or change anything in the site
        fd = os.open(site.path(site.process.write_lock), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        yield  # no writer has ever run
        return
    try:
        if not flock_within(fd, fcntl.LOCK_SH, timeout_s, poll_s=0.01):
            raise TimeoutError(f"{site.process.write_lock} stayed locked by the trading system for {timeout_s:g} s")
        yield
    finally:
        os.close(fd)
