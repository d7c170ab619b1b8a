"""``recovery restore``: plan, show, (ask), apply exactly that plan."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any, TextIO

from recovery_lib.backup.model import CATEGORIES
from recovery_lib.cli.common import ProgressBar, SiteOption, backup_dir_option, open_tolerant_manager
from recovery_lib.cli.logs import NOT_ON_CONSOLE
from recovery_lib.errors import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    InvalidArgumentError,
    RestoreError,
    SiteConfigError,
)
from recovery_lib.manager import RecoveryManager
from recovery_lib.replica.crypto import IDENTITY_ENV
from recovery_lib.replica.pull import PullReport
from recovery_lib.restore.plan import Action
from recovery_lib.restore.settings import apply_settings, plan_settings
from recovery_lib.site.fallback import load_site_or_defaults

log = logging.getLogger(__name__)


def add_commands(commands: Any, site_option: SiteOption) -> None:
    """Register ``restore``."""
    restore = commands.add_parser(
        "restore",
        help="restore config, state and/or data from a backup",
        description="Plan a restore, show it, and apply exactly that plan. Refused while the trading system "
        "runs. The current state is saved first in a backup tagged pre-recovery. Exits 0 only if "
        "everything asked for was restored and verified. With --from-replica NAME the backup is first "
        "pulled from that replica into the local backup directory (every byte verified), so a brand-new "
        "host whose site directory holds only recovery.toml can be recovered; --dry-run pulls too (the "
        "site itself is unchanged) and shows the plan. A malformed recovery.toml does not stop it: it runs on the "
        "default settings with a warning (--backup-dir if the backups are elsewhere), and --settings brings "
        "recovery.toml itself back from the copy every backup holds.",
        epilog="Examples:\n"
        "  recovery restore latest --config --dry-run\n"
        "  recovery restore latest --settings --dry-run   # then --yes: recovery.toml back, byte for byte\n"
        "  recovery restore latest --all --yes\n"
        "  recovery restore latest --all --from-replica offsite --identity ~/dr-key.txt --dry-run\n"
        "  recovery restore 20261125T223600Z-full-3fa2c1 --all --from-replica usb --yes",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    site_option(restore)
    restore.add_argument(
        "backup_id",
        metavar="ID|latest",
        help="backup to restore from ('latest': newest that verifies; with --from-replica: the replica's newest "
        "holding what is asked for that pulls and verifies)",
    )
    restore.add_argument("--config", action="store_true", help="restore config")
    restore.add_argument("--state", action="store_true", help="restore state")
    restore.add_argument("--data", action="store_true", help="restore data")
    restore.add_argument("--all", action="store_true", help="restore config, state and data")
    restore.add_argument(
        "--settings",
        action="store_true",
        help="restore recovery.toml alone (every backup holds it; the file it replaces is kept beside it); "
        "'latest': the newest backup whose copy verifies and loads",
    )
    backup_dir_option(restore)
    restore.add_argument(
        "--dry-run",
        action="store_true",
        help="show the plan, change nothing in the site (with --from-replica the backup is still pulled into "
        "the local backup directory)",
    )
    restore.add_argument("--yes", action="store_true", help="apply without asking (needed when not on a terminal)")
    restore.add_argument(
        "--from-replica",
        metavar="NAME",
        help="pull the backup from this [[replicas]] entry first (a lost host: the site holds only recovery.toml)",
    )
    restore.add_argument(
        "--identity",
        metavar="FILE",
        help=f"age private key to decrypt an encrypted replica (default: ${IDENTITY_ENV}); never kept on the site",
    )
    restore.set_defaults(handler=cmd_restore)


def _pull(
    args: argparse.Namespace, manager: RecoveryManager, bar: ProgressBar, categories: tuple[str, ...], out: TextIO
) -> tuple[PullReport, int]:
    """``--from-replica``: pull the backup into the local backup directory; (what the pull did, notes shown)."""
    if args.backup_id == "latest":
        pulled = manager.pull_from_replica(args.from_replica, args.backup_id, args.identity, needs=categories)
    else:
        pulled = manager.pull_from_replica(args.from_replica, args.backup_id, args.identity)
    bar.close()
    for note in manager.notes:
        out.write(f"note: {note}\n")
    out.write(pulled.summary() + "\n")
    return pulled, len(manager.notes)


def _dry_run_ends(manager: RecoveryManager, pulled: PullReport | None, out: TextIO) -> int:
    """A dry run's last line: what it did change (a pull) or that it changed nothing; logged too."""
    said = _dry_run_said(manager, pulled)
    log.info("%s", said)
    out.write(said + "\n")
    return EXIT_OK


def _dry_run_said(manager: RecoveryManager, pulled: PullReport | None) -> str:
    """The dry run's last line. A ``--from-replica`` dry run did write, into the backup directory (not the
    site): the pulled backup, and the damaged local copy moved aside; it says so, never "nothing changed"."""
    if pulled is None:
        return "Dry run: nothing was changed."
    if pulled.already_local:
        return f"Dry run: nothing was changed (backup {pulled.backup_id} was already in {manager.backup_dir})."
    moved = (
        f"; moved the damaged local copy to {manager.backup_dir / pulled.set_aside_as}" if pulled.set_aside_as else ""
    )
    return (
        f"Dry run: pulled {pulled.backup_id} into {manager.backup_dir}{moved}; the site itself was not changed "
        "(the pulled backup stays: a restore with --yes uses it without pulling again)."
    )


def _restore_settings(
    args: argparse.Namespace,
    manager: RecoveryManager,
    backup_id: str,
    shown: int,
    out: TextIO,
    pulled: PullReport | None = None,
) -> int:
    """``--settings``: recovery.toml from a backup's copy (restore/settings.py): plan, show, (ask), apply."""
    plan = plan_settings(manager.site.root, manager.backup_dir, manager.list_backups(), backup_id, manager.notes)
    for note in manager.notes[shown:]:
        out.write(f"note: {note}\n")
    out.write(plan.summary() + "\n")
    if args.dry_run:
        return _dry_run_ends(manager, pulled, out)
    if not args.yes and not _approved("Apply this plan? The current file is kept beside it. [y/N] ", out):
        return EXIT_FAILED  # nothing was restored: a script must not read this as success
    result = apply_settings(plan, manager.backup_dir, manager.lock_timeout_s)
    out.write(result.summary() + "\n")
    if plan.action is not Action.UNCHANGED:
        out.write("Every recovery command now reads the restored settings: `recovery site` shows them.\n")
    return EXIT_OK


def _approved(question: str, out: TextIO) -> bool:
    """Ask on a terminal (refused elsewhere: a script must say --yes); False, said so, when declined."""
    if not sys.stdin.isatty():
        raise RestoreError("not on a terminal: review the plan with --dry-run, then pass --yes to apply it")
    if not _confirm(question):
        log.info("the plan was declined at the prompt: nothing was changed")
        out.write("Not applied; nothing was changed.\n")
        return False
    return True


def _confirm(question: str) -> bool:
    sys.stderr.write(question)
    sys.stderr.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def _refuse_on_defaults(args: argparse.Namespace, manager: RecoveryManager, malformed: SiteConfigError) -> None:
    """A malformed recovery.toml: refuse what the default settings cannot do safely (nothing is changed)."""
    given_dir = getattr(args, "backup_dir", None) is not None
    fallback = load_site_or_defaults(args.site)
    repair = fallback.repair_command(manager.backup_dir, given_dir)
    elsewhere = None if given_dir else fallback.elsewhere(manager.backup_dir)
    if elsewhere is not None and args.settings:
        # The defaults' backup directory holds older copies of the file (or none): restoring from it would
        # bring back stale settings that point every later command at the wrong backups.
        raise InvalidArgumentError(
            f"restore refused, nothing was changed: the malformed {malformed.path} sets [backups] dir, so its "
            f"newest copy is in {elsewhere}, not in {manager.backup_dir} (older copies, if any). Add "
            f"--backup-dir {elsewhere}: `{repair}`"
        )
    if not args.settings and not args.dry_run:
        # The defaults cannot tell whether the trading system runs ([process]) nor which paths the backups map.
        raise RestoreError(
            f"restore refused, nothing was changed: {malformed.path} is malformed, so this restore cannot tell "
            "whether the trading system runs ([process]) or which paths config, state and data are. Bring it back "
            f"first: `{fallback.repair_command(manager.backup_dir, given_dir, yes=True)}`, then restore again "
            "(--dry-run shows the plan on the default settings meanwhile)."
        )


def cmd_restore(args: argparse.Namespace, out: TextIO) -> int:
    """``recovery restore``: plan, show, (ask), apply the same plan."""
    wanted = [args.config or args.all, args.state or args.all, args.data or args.all]
    if args.settings and any(wanted):
        # The other categories' paths come from recovery.toml: restore it first, then them with what it says.
        raise InvalidArgumentError(
            "--settings restores recovery.toml on its own: restore it first, then --config/--state/--data/--all "
            "in a second command, which reads the restored settings"
        )
    if not any(wanted) and not args.settings:
        raise RestoreError(
            "choose what to restore: --config, --state, --data or --all (or --settings: recovery.toml alone)"
        )
    if args.identity and not args.from_replica:
        raise InvalidArgumentError("--identity reads an encrypted replica: use it with --from-replica NAME")
    manager, bar, malformed = open_tolerant_manager(args, "restore")  # malformed recovery.toml: defaults, warned
    if malformed is not None:
        _refuse_on_defaults(args, manager, malformed)
    backup_id, shown, pulled = args.backup_id, 0, None
    if args.from_replica:  # a lost host: bring the backup here first, then restore it like a local one
        categories = tuple(c for c, w in zip(CATEGORIES, wanted, strict=True) if w)
        pulled, shown = _pull(args, manager, bar, categories, out)
        backup_id = pulled.backup_id
    if args.settings:
        return _restore_settings(args, manager, backup_id, shown, out, pulled)
    plan = manager.plan_restore(backup_id, *wanted)
    for note in manager.notes[shown:]:
        out.write(f"note: {note}\n")
    out.write(plan.summary() + "\n")
    log.info("restore plan from backup %s (%s):\n%s", plan.backup_id, ", ".join(plan.categories), plan.summary())
    if plan.blockers:
        log.warning("restore refused: %s", "; ".join(plan.blockers), extra=NOT_ON_CONSOLE)
        sys.stderr.write(f"recovery: restore refused: {plan.blockers[0]}\n")
        return EXIT_USAGE
    if args.dry_run:
        return _dry_run_ends(manager, pulled, out)
    if not args.yes and not _approved("Apply this plan? The current state is backed up first. [y/N] ", out):
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
