"""What every command group shares: the ``--site`` option, the exit-status epilog, the handler type."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from recovery_lib.cli.logs import NOT_ON_CONSOLE
from recovery_lib.errors import EXIT_FAILED, EXIT_INTERNAL, EXIT_OK, EXIT_USAGE, InvalidArgumentError, SiteConfigError
from recovery_lib.manager import RecoveryManager
from recovery_lib.site.config import SITE_ENV
from recovery_lib.site.fallback import load_site_or_defaults

# A command: its parsed arguments and where its output goes, in; its exit status, out.
Handler = Callable[[argparse.Namespace, TextIO], int]
SiteOption = Callable[[argparse.ArgumentParser], None]
log = logging.getLogger(__name__)

EPILOG = f"""\
The site is the protected system's directory: --site DIR, else ${SITE_ENV}, else the current directory.
Exit status: {EXIT_OK} ok/healthy, {EXIT_FAILED} unhealthy, {EXIT_USAGE} bad input (the message says what to fix), \
{EXIT_INTERNAL} internal error.
"""


def site_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--site DIR`` to a command."""
    parser.add_argument("--site", metavar="DIR", help=f"site directory (default: ${SITE_ENV} or the current directory)")


class ProgressBar:
    """tqdm on a terminal, nothing elsewhere (logs stay readable)."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.bar: Any = None

    def __call__(self, done: int, total: int) -> None:
        if not sys.stderr.isatty():
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="B", unit_scale=True, desc=self.label, leave=False)
        elif total != self.bar.total or done < self.bar.n:
            # A new phase (a restore checks the other files, stages, then backs up what it replaces): a new run.
            self.bar.reset(total=total)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def open_manager(args: argparse.Namespace, label: str) -> tuple[RecoveryManager, ProgressBar]:
    """The site's RecoveryManager (``--site``), reporting progress on a bar labelled ``label``."""
    bar = ProgressBar(label)
    return RecoveryManager(site=args.site, progress=bar), bar


def backup_dir_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--backup-dir DIR`` (``backup list`` and ``restore``: they work with a malformed recovery.toml)."""
    parser.add_argument(
        "--backup-dir",
        metavar="DIR",
        help="the backup directory (default: [backups] dir in recovery.toml, else SITE/backups); needed when "
        "recovery.toml is malformed and set another one",
    )


def open_tolerant_manager(
    args: argparse.Namespace, label: str
) -> tuple[RecoveryManager, ProgressBar, SiteConfigError | None]:
    """:func:`open_manager` for the commands that bring a malformed recovery.toml back (``backup list``,
    ``restore``): on a malformed file they run on the default settings, with a warning on stderr and in
    the log that names the file, the line, what is wrong and the backup directory used (site/fallback.py);
    the problem is returned (None: the settings loaded). ``--backup-dir`` (relative: to the current
    directory) replaces the backup directory in either case."""
    given = getattr(args, "backup_dir", None)
    if given is not None and not given.strip():
        raise InvalidArgumentError("--backup-dir is empty: pass the backup directory, or leave it out")
    fallback = load_site_or_defaults(args.site)
    bar = ProgressBar(label)
    backup_dir = Path(given).expanduser().resolve() if given is not None else None
    manager = RecoveryManager(backup_dir=backup_dir, site=fallback.site, progress=bar)
    if fallback.problem is not None:
        warning = fallback.warning(manager.backup_dir, given is not None)
        log.warning("%s", warning, extra=NOT_ON_CONSOLE)  # the log file, whatever -q says
        sys.stderr.write(f"recovery: WARNING: {warning}\n")  # loud even with -q: every line after it depends on it
    return manager, bar, fallback.problem
