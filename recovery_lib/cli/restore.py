"""``recovery restore``: plan, show, (ask), apply exactly that plan."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any, TextIO

from recovery_lib.cli.common import SiteOption, open_manager
from recovery_lib.cli.logs import NOT_ON_CONSOLE
from recovery_lib.errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, RestoreError

log = logging.getLogger(__name__)


def add_commands(commands: Any, site_option: SiteOption) -> None:
    """Register ``restore``."""
    restore = commands.add_parser(
        "restore",
        help="restore config, state and/or data from a backup",
        description="Plan a restore, show it, and apply exactly that plan. Refused while the trading system "
        "runs. The current state is saved first in a backup tagged pre-recovery. Exits 0 only if "
        "everything asked for was restored and verified.",
        epilog="Example: recovery restore latest --config --dry-run",
    )
    site_option(restore)
    restore.add_argument(
        "backup_id", metavar="ID|latest", help="backup to restore from ('latest': newest that verifies)"
    )
    restore.add_argument("--config", action="store_true", help="restore config")
    restore.add_argument("--state", action="store_true", help="restore state")
    restore.add_argument("--data", action="store_true", help="restore data")
    restore.add_argument("--all", action="store_true", help="restore config, state and data")
    restore.add_argument("--dry-run", action="store_true", help="show the plan, change nothing")
    restore.add_argument("--yes", action="store_true", help="apply without asking (needed when not on a terminal)")
    restore.set_defaults(handler=cmd_restore)


def _confirm(question: str) -> bool:
    sys.stderr.write(question)
    sys.stderr.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def cmd_restore(args: argparse.Namespace, out: TextIO) -> int:
    """``recovery restore``: plan, show, (ask), apply the same plan."""
    wanted = [args.config or args.all, args.state or args.all, args.data or args.all]
    if not any(wanted):
        raise RestoreError("choose what to restore: --config, --state, --data or --all")
    manager, bar = open_manager(args, "restore")
    plan = manager.plan_restore(args.backup_id, *wanted)
    for note in manager.notes:
        out.write(f"note: {note}\n")
    out.write(plan.summary() + "\n")
    log.info("restore plan from backup %s (%s):\n%s", plan.backup_id, ", ".join(plan.categories), plan.summary())
    if plan.blockers:
        log.warning("restore refused: %s", "; ".join(plan.blockers), extra=NOT_ON_CONSOLE)
        sys.stderr.write(f"recovery: restore refused: {plan.blockers[0]}\n")
        return EXIT_USAGE
    if args.dry_run:
        log.info("dry run: nothing was changed")
        out.write("Dry run: nothing was changed.\n")
        return EXIT_OK
    if not args.yes:
        if not sys.stdin.isatty():
            raise RestoreError("not on a terminal: review the plan with --dry-run, then pass --yes to apply it")
        if not _confirm("Apply this plan? The current state is backed up first. [y/N] "):
            log.info("the plan was declined at the prompt: nothing was changed")
            out.write("Not applied; nothing was changed.\n")
            return EXIT_FAILED  # nothing was restored: a script must not read this as success
    result = manager.apply_restore(plan)
    bar.close()
    if result.pre_recovery_backup_id:
        out.write(f"Pre-recovery backup: {result.pre_recovery_backup_id}\n")
    if not result.ok:
        for problem in result.problems:
            log.warning("restore problem: %s", problem, extra=NOT_ON_CONSOLE)
            sys.stderr.write(f"recovery: restore problem: {problem}\n")
        return EXIT_FAILED
    log.info(
        "restored %s from %s: %d files, %d bytes written and verified (pre-recovery backup %s)",
        ", ".join(plan.categories),
        plan.backup_id,
        result.files_written,
        result.bytes_written,
        result.pre_recovery_backup_id,
    )
    out.write(
        f"Restored {', '.join(plan.categories)} from {plan.backup_id}: {result.files_written} files, "
        f"{result.bytes_written:,} bytes written and verified in {result.duration_s:.2f} s.\n"
    )
    return EXIT_OK
