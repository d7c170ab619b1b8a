"""What every command group shares: the ``--site`` option, the exit-status epilog, the handler type."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any, TextIO

from recovery_lib.errors import EXIT_FAILED, EXIT_INTERNAL, EXIT_OK, EXIT_USAGE
from recovery_lib.manager import RecoveryManager
from recovery_lib.site.config import SITE_ENV

# A command: its parsed arguments and where its output goes, in; its exit status, out.
Handler = Callable[[argparse.Namespace, TextIO], int]
SiteOption = Callable[[argparse.ArgumentParser], None]

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
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def open_manager(args: argparse.Namespace, label: str) -> tuple[RecoveryManager, ProgressBar]:
    """The site's RecoveryManager (``--site``), reporting progress on a bar labelled ``label``."""
    bar = ProgressBar(label)
    return RecoveryManager(site=args.site, progress=bar), bar
