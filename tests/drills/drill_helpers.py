"""Helpers of the drill tests: processes seen from /proc, site copies, backup ids."""

from __future__ import annotations

import contextlib
import os
import signal
from datetime import datetime
from pathlib import Path

from site_copies import copy_site  # noqa: F401 - the drill tests import it from here

from recovery_lib.checks.default import health_check
from recovery_lib.manager import RecoveryManager
from recovery_lib.site.config import Site

LIVE_OPS = "recovery_lib.sandbox.live_ops"


def _stat_fields(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[-1].split()
    except OSError:
        return None


def pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    fields = _stat_fields(pid)
    return fields is not None and fields[0] != "Z"


def cmdline_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def cwd_of(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/cwd").removesuffix(" (deleted)")
    except OSError:
        return ""


def _descends_from_this_process(pid: int) -> bool:
    for _ in range(4):
        fields = _stat_fields(pid)
        if fields is None:
            return False
        pid = int(fields[1])
        if pid == os.getpid():
            return True
    return False


def our_trading_processes() -> dict[int, str]:
    """Live trading processes started from this test process: pid -> working directory (the site)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            pid = int(entry.name)
            if LIVE_OPS in cmdline_of(pid) and pid_alive(pid) and _descends_from_this_process(pid):
                found[pid] = cwd_of(pid)
    return found


def kill_leftovers(seen: dict[int, str]) -> None:
    """SIGKILL trading processes this test started (pid -> site) that are still alive; a pid that now
    belongs to another program or another directory is left alone."""
    for pid, cwd in seen.items():
        if pid_alive(pid) and LIVE_OPS in cmdline_of(pid) and cwd_of(pid) == cwd:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def healthy(site: Site, check: str) -> bool:
    return health_check.run(check, site).healthy


def backup_ids(site: Site) -> list[str]:
    """Newest first."""
    return [m.backup_id for m in RecoveryManager(site=site).list_backups()]


def iso_z(text: str) -> datetime:
    assert text.endswith("Z"), text
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
