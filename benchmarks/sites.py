"""The benchmarks' named sites and the small tools they share (no recovery_lib import: a benchmark times
the library in child processes only).

Each site is made by ``recovery sandbox create`` and then aged past the backup engine's racy window
(a file modified within 3 s of a backup is read again even if it looks unchanged), as real files are.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

RACY_WINDOW_S = 3.0
CATEGORIES = ("config", "state", "data")


@dataclass(frozen=True)
class SiteSpec:
    """A named site: what it stands for and the ``recovery sandbox create`` options that make it."""

    name: str
    about: str
    options: tuple[str, ...]


SITES = {
    site.name: site
    for site in (
        SiteSpec("1g", "1 GB in 35 files: 2 million trades, 30 large reports", ("--trades", "2000000", "--size", "1G")),
        SiteSpec(
            "2k",
            "~2,000 files, 300 MiB: 600,000 trades, 1,000 daily reports, 1,000 candle files of 1-8 KB",
            ("--trades", "600000", "--reports", "1000", "--cache-files", "1000", "--size", "300M"),
        ),
        SiteSpec(
            "20k",
            "~20,000 files, 170 MiB: 100,000 trades, 3,650 daily reports, 16,350 candle files of 1-8 KB",
            ("--trades", "100000", "--reports", "3650", "--cache-files", "16350", "--size", "170M"),
        ),
    )
}


def create_site(root: Path, site: SiteSpec) -> float:
    """Make the site with the CLI (replacing an earlier one) and sync it; the seconds it took."""
    started = time.perf_counter()
    argv = [sys.executable, "-m", "recovery_lib.cli.main", "sandbox", "create", str(root), "--force", "--quiet"]
    subprocess.run([*argv, *site.options], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["sync"], check=True)
    return time.perf_counter() - started


def age_past_racy_window(last_write: float) -> None:
    """Sleep until the racy window has passed since ``last_write`` (a ``time.monotonic()``)."""
    time.sleep(max(0.0, last_write + RACY_WINDOW_S + 1.0 - time.monotonic()))


def backed_up_files(root: Path) -> list[str]:
    """What a full backup holds: every file under config/, state/ and data/, and recovery.toml."""
    found = ["recovery.toml"]
    for top in CATEGORIES:
        for folder, _, names in os.walk(root / top):
            found += [os.path.relpath(os.path.join(folder, name), root) for name in names]
    return sorted(found)


def timed_shell(command: str, cwd: Path | None = None) -> float:
    """Run a baseline in a shell; its wall time (it fails the run if it fails)."""
    started = time.perf_counter()
    subprocess.run(command, shell=True, check=True, cwd=cwd, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def wipe(path: Path) -> None:
    """Remove a tree that may hold read-only backup files, and sync: the removal of 20,000 files (with
    the filesystem's discard) must not be paid by the sync of whatever is timed next."""
    if path.exists() or path.is_symlink():
        subprocess.run(["chmod", "-R", "u+w", str(path)], check=True)
        shutil.rmtree(path)
        subprocess.run(["sync"], check=True)
