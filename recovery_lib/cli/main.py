"""The ``recovery`` command line: the parser built from the command groups, logging, exit statuses.

Each command group lives in its own module (``health``, ``site``, ``sandbox``, ``backup``, ``replica``,
``restore``, ``resume``, ``drill``, ``schedule``) and registers its subcommands with ``add_commands``. This module
does the three things every command shares, once: it builds the parser, sets up logging (``-v``/``-q``,
``--log-file``), and turns an exception into an exit status (``errors.py`` says which):

- a :class:`~recovery_lib.errors.RecoveryError`: its ``exit_code`` (2 bad input or refused, 1 failed),
  with its message on one line;
- anything else (``ValueError``, ``KeyError``, ...) is a bug: exit 3, one line saying so and where
  the traceback is (the log file, or ``-v``).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import traceback
from collections.abc import Sequence
from typing import TextIO

from recovery_lib import __version__
from recovery_lib.cli import alerts as cli_alerts
from recovery_lib.cli import backup as cli_backup
from recovery_lib.cli import drill as cli_drill
from recovery_lib.cli import health as cli_health
from recovery_lib.cli import replica as cli_replica
from recovery_lib.cli import restore as cli_restore
from recovery_lib.cli import resume as cli_resume
from recovery_lib.cli import sandbox as cli_sandbox
from recovery_lib.cli import schedule as cli_schedule
from recovery_lib.cli import site as cli_site
from recovery_lib.cli.common import EPILOG, site_option
from recovery_lib.cli.logs import NOT_ON_CONSOLE, LogSetup, LogTarget, explicit_target
from recovery_lib.errors import EXIT_FAILED, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_USAGE, RecoveryError

log = logging.getLogger(__name__)

# In --help order: the runbook's verification first, then the site, backups, replicas, restores, resuming a
# procedure that stopped halfway, drills.
GROUPS = (
    cli_health,
    cli_site,
    cli_sandbox,
    cli_backup,
    cli_replica,
    cli_restore,
    cli_resume,
    cli_drill,
    cli_schedule,
    cli_alerts,
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, with a useful ``--help`` on every level."""
    parser = argparse.ArgumentParser(
        prog="recovery",
        description="Executable disaster-recovery runbook for the Peak_Trade trading system.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"recovery {__version__}")
    loudness = parser.add_mutually_exclusive_group()
    loudness.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="show what is done and decided on stderr (-vv: in detail); tracebacks of internal errors",
    )
    loudness.add_argument("-q", "--quiet", action="store_true", help="stderr: errors only, no warnings")
    parser.add_argument(
        "--log-file",
        metavar="PATH|none",
        help="append a rotating log to PATH (default for `backup create`: BACKUP_DIR/.logs/recovery.log; "
        "for `drill run`: OUTPUTS/.logs/recovery.log); `none` turns it off",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for group in GROUPS:
        group.add_commands(commands, site_option)
    return parser


def _log_target(args: argparse.Namespace) -> LogTarget | None:
    """``--log-file`` if given (``none``: no file), else the command's default (if it has one)."""
    if args.log_file is not None:
        return explicit_target(args.log_file)
    default = getattr(args, "log_target", None)
    return default(args) if default is not None else None


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Entry point of the ``recovery`` console script."""
    out = out or sys.stdout
    args = build_parser().parse_args(argv)
    command = " ".join(sys.argv[1:] if argv is None else argv)
    with LogSetup(verbosity=-1 if args.quiet else args.verbose) as logs:
        try:
            logs.attach_file(_log_target(args))
            log.info("recovery %s: %s", __version__, command)
            code = int(args.handler(args, out))
            out.flush()  # a closed pipe is found here, not at interpreter exit
            log.info("exit %d", code)
            return code
        except RecoveryError as exc:
            # Refused, or failed in a way the message explains: the message is the whole story.
            log.warning("exit %d: %s: %s", exc.exit_code, type(exc).__name__, exc, extra=NOT_ON_CONSOLE)
            prefix = "error: " if exc.exit_code == EXIT_USAGE else ""
            sys.stderr.write(f"recovery: {prefix}{exc}\n")
            return exc.exit_code
        except BrokenPipeError:
            # The reader went away (`recovery replica list | head`): not a bug; stop quietly, as cat does.
            log.info("output pipe closed by its reader", extra=NOT_ON_CONSOLE)
            with contextlib.suppress(OSError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
            return EXIT_FAILED
        except KeyboardInterrupt:
            log.warning("interrupted (exit %d)", EXIT_INTERRUPTED, extra=NOT_ON_CONSOLE)
            sys.stderr.write("recovery: interrupted\n")
            return EXIT_INTERRUPTED
        except Exception as exc:  # a bug: never "unhealthy" (1), never "bad input" (2)
            log.exception("internal error (exit %d): %s", EXIT_INTERNAL, command, extra=NOT_ON_CONSOLE)
            logged = logs.log_file_written()
            if logged:
                where = f"the traceback is in {logged}"
            elif logs.tracebacks:
                where = "the traceback follows"
            else:
                where = "run it again with -v to see the traceback"
            sys.stderr.write(
                f"recovery: internal error, a bug in recovery_lib (please report it): "
                f"{type(exc).__name__}: {_one_line(exc)}; {where}.\n"
            )
            if logs.tracebacks:
                traceback.print_exc()
            return EXIT_INTERNAL


def _one_line(exc: BaseException) -> str:
    """The exception's message on one line (a bug's message may hold anything)."""
    return " ".join(str(exc).split()) or "(no message)"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
