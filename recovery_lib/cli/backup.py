"""``recovery backup ...`` and ``recovery restore``: printing and prompting around RecoveryManager."""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TextIO

from recovery_lib.backup import RetentionPolicy, UnreadableBackup, VerifyReport
from recovery_lib.backup.listing import UNREADABLE_ADVICE
from recovery_lib.backup.retention import plan_prune
from recovery_lib.errors import RecoveryError
from recovery_lib.manager import BackupIncomplete, RecoveryManager
from recovery_lib.rendering import human_age, human_size
from recovery_lib.restore.journal import RestoreError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
RETENTION_COUNTS = ("last", "hourly", "daily", "weekly", "monthly", "yearly")


def _duration(text: str) -> timedelta:
    """``7d``, ``12h``, ``2w``, ``1d12h`` (restic's --keep-within style, plus weeks)."""
    parts = re.findall(r"(\d+)([hdwmy])", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration; use e.g. 12h, 7d, 2w, 1m, 1y")
    hours = {"h": 1, "d": 24, "w": 24 * 7, "m": 24 * 30, "y": 24 * 365}
    return timedelta(hours=sum(int(n) * hours[u] for n, u in parts))


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 0")
    return int(text)


def add_commands(commands: Any, site_option: Callable[[argparse.ArgumentParser], None]) -> None:
    """Register ``backup`` (create, list, verify, prune) and ``restore``."""
    backup = commands.add_parser(
        "backup",
        help="create, list, verify and prune backups",
        description="Backups of the site: create, list, verify, prune.",
    )
    sub = backup.add_subparsers(dest="backup_command", metavar="SUBCOMMAND", required=True)

    create = sub.add_parser(
        "create",
        help="back up the site (all categories unless some are named)",
        description="Back up config, state and data (or only those named). Unchanged files "
        "are hard-linked to the previous backup. Exits 1 if any file could not be captured.",
    )
    site_option(create)
    for category in ("config", "state", "data"):
        create.add_argument(f"--{category}", action="store_true", help=f"include {category}")
    create.add_argument("--tag", action="append", default=[], metavar="TAG", help="tag the backup (repeatable)")
    create.add_argument("-m", "--description", default="", help="what this backup is for")
    create.set_defaults(handler=cmd_backup_create)

    listing = sub.add_parser("list", help="list backups, newest first", description="List backups, newest first.")
    site_option(listing)
    listing.add_argument("--json", action="store_true", help="JSON for machines")
    listing.add_argument("--tag", action="append", metavar="TAG", help="only backups with this tag")
    listing.add_argument("--type", choices=["full", "config", "state", "data", "mixed"], help="only this type")
    listing.set_defaults(handler=cmd_backup_list)

    verify = sub.add_parser(
        "verify",
        help="check a backup against its manifest",
        description="Check a backup's structure (fast) or, with --read-data, every byte. "
        "Exits 1 and names every problem if it is damaged.",
    )
    site_option(verify)
    verify.add_argument("backup_id", metavar="ID|latest|all", help="the backup to check ('all' checks every one)")
    verify.add_argument("--read-data", action="store_true", help="hash every file (slower, complete)")
    verify.add_argument("--json", action="store_true", help="JSON for machines")
    verify.set_defaults(handler=cmd_backup_verify)

    prune = sub.add_parser(
        "prune",
        help="remove backups a retention policy does not keep",
        description="Retention with restic's forget rules. The newest verified backup and "
        "the newest backup of each type are always kept.",
        epilog="Example: recovery backup prune --keep-daily 7 --keep-weekly 4 --keep-tag pre-recovery --dry-run",
    )
    site_option(prune)
    for name in RETENTION_COUNTS:
        prune.add_argument(
            f"--keep-{name}",
            type=_count,
            default=0,
            metavar="N",
            help=f"keep the newest backup of each of the last N {name} periods"
            if name != "last"
            else "keep the N newest backups",
        )
    prune.add_argument(
        "--keep-within",
        type=_duration,
        metavar="DURATION",
        help="keep everything within DURATION of the newest backup (e.g. 7d)",
    )
    prune.add_argument("--keep-tag", action="append", default=[], metavar="TAG", help="keep backups with this tag")
    prune.add_argument("--dry-run", action="store_true", help="show what would be removed, remove nothing")
    prune.set_defaults(handler=cmd_backup_prune)

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


class _Bar:
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


def _manager(args: argparse.Namespace, label: str) -> tuple[RecoveryManager, _Bar]:
    bar = _Bar(label)
    return RecoveryManager(site=args.site, progress=bar), bar


def _row(metadata: Any) -> dict[str, Any]:
    return {
        "backup_id": metadata.backup_id,
        "backup_type": metadata.backup_type.value,
        "created_at": metadata.created_at,
        "status": metadata.status.value,
        "files_count": metadata.files_count,
        "size_bytes": metadata.size_bytes,
        "bytes_new": metadata.bytes_new,
        "tags": metadata.tags,
        "description": metadata.description,
    }


def cmd_backup_create(args: argparse.Namespace, out: TextIO) -> int:
    """``recovery backup create``."""
    chosen = [args.config, args.state, args.data]
    flags = chosen if any(chosen) else [True, True, True]
    manager, bar = _manager(args, "backup")
    try:
        backup_id = manager.create_backup(*flags, description=args.description, tags=args.tag)
    except BackupIncomplete as exc:
        bar.close()
        sys.stderr.write(f"recovery: {exc}\n")
        return EXIT_FAILED
    bar.close()
    metadata = manager.get_backup(backup_id)
    for note in manager.notes:
        out.write(f"note: {note}\n")
    out.write(
        f"Backup {backup_id} ({metadata.backup_type.value}): {metadata.files_count} files, "
        f"{metadata.size_bytes:,} bytes, {metadata.bytes_new:,} new, {metadata.files_linked} linked, "
        f"{metadata.duration_s:.2f} s\n"
    )
    return EXIT_OK


def cmd_backup_list(args: argparse.Namespace, out: TextIO) -> int:
    """``recovery backup list``."""
    manager, _ = _manager(args, "list")
    if manager.backup_dir.exists() and not manager.backup_dir.is_dir():
        raise RecoveryError(
            f"the backup directory {manager.backup_dir} is a file, not a directory: there are no backups "
            "to list. Move the file aside (Procedure D does it) or set [backups] dir in recovery.toml."
        )
    backups = manager.list_backups(tags=args.tag, backup_type=args.type)
    if args.json:
        out.write(
            json.dumps(
                {
                    "backup_dir": str(manager.backup_dir),
                    "backups": [_row(b) for b in backups],
                    "unreadable": [{"backup_id": u.backup_id, "problem": u.problem} for u in manager.unreadable],
                },
                indent=2,
            )
            + "\n"
        )
        return EXIT_OK
    if not backups:
        out.write(f"No backups in {manager.backup_dir}.\n")
    else:
        width = max(len(m.backup_id) for m in backups)
        out.write(f"{'backup':<{width}}  {'status':<7} {'age':>9}  {'files':>6} {'size':>9}  tags / description\n")
    for metadata in backups:
        tags = f"[{', '.join(metadata.tags)}] " if metadata.tags else ""
        description = " ".join(metadata.description.split())  # one line per backup, whatever was typed
        out.write(
            f"{metadata.backup_id:<{width}}  {metadata.status.value:<7} {human_age(metadata.age_hours()):>9}  "
            f"{metadata.files_count:6d} {human_size(metadata.size_bytes):>9}  {tags}{description}\n"
        )
    for problem in manager.unreadable:
        out.write(f"UNREADABLE: {problem}\n")
    return EXIT_OK


def _verified_json(report: VerifyReport) -> dict[str, Any]:
    return {
        "backup_id": report.backup_id,
        "ok": report.ok,
        "unreadable": False,
        "read_data": report.read_data,
        "problems": [vars(p) for p in report.problems],
    }


def _unreadable_json(item: UnreadableBackup, read_data: bool) -> dict[str, Any]:
    return {
        "backup_id": item.backup_id,
        "ok": False,
        "unreadable": True,
        "read_data": read_data,
        "problems": [{"path": "metadata.json", "kind": "metadata", "detail": item.problem}],
    }


def cmd_backup_verify(args: argparse.Namespace, out: TextIO) -> int:
    """``recovery backup verify``: each backup named, unreadable ones as failures (never left out)."""
    manager, bar = _manager(args, "verify")
    ids = [b.backup_id for b in manager.list_backups()] if args.backup_id == "all" else [args.backup_id]
    unreadable = manager.unreadable if args.backup_id == "all" else []
    if not ids and not unreadable:  # nothing to verify: nothing to restore from is a failure, not "all ok"
        if args.json:
            out.write("[]\n")
        sys.stderr.write(
            f"recovery: no backups in {manager.backup_dir}: nothing to verify and nothing to restore from. "
            "Create one with `recovery backup create` (runbook Procedure D).\n"
        )
        return EXIT_FAILED
    reports = [manager.verify_backup(backup_id, read_data=args.read_data) for backup_id in ids]
    bar.close()
    if args.json:
        entries = [_verified_json(r) for r in reports] + [_unreadable_json(u, args.read_data) for u in unreadable]
        out.write(json.dumps(entries, indent=2) + "\n")
    else:
        for report in reports:
            out.write(("✅ " if report.ok else "❌ ") + report.summary() + "\n")
            for problem in report.problems:
                out.write(f"   {problem}\n")
        for item in unreadable:
            out.write(f"❌ {item.backup_id}: unreadable: {item.problem}\n   {UNREADABLE_ADVICE}\n")
    return EXIT_OK if all(r.ok for r in reports) and not unreadable else EXIT_FAILED


def cmd_backup_prune(args: argparse.Namespace, out: TextIO) -> int:
    """``recovery backup prune``."""
    policy = RetentionPolicy(
        **{f"keep_{n}": getattr(args, f"keep_{n}") for n in RETENTION_COUNTS},
        keep_within=args.keep_within,
        keep_tags=tuple(args.keep_tag),
    )
    plan_prune([], policy, None)  # refuses an empty policy before the manager's lock creates backups/
    manager, _ = _manager(args, "prune")
    plan = manager.prune(policy, dry_run=args.dry_run)
    out.write(("Dry run, nothing removed: " if args.dry_run else "Pruned: ") + plan.summary() + "\n")
    return EXIT_OK


def _confirm(question: str) -> bool:
    sys.stderr.write(question)
    sys.stderr.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def cmd_restore(args: argparse.Namespace, out: TextIO) -> int:
    """``recovery restore``: plan, show, (ask), apply the same plan."""
    wanted = [args.config or args.all, args.state or args.all, args.data or args.all]
    if not any(wanted):
        raise RestoreError("choose what to restore: --config, --state, --data or --all")
    manager, bar = _manager(args, "restore")
    plan = manager.plan_restore(args.backup_id, *wanted)
    for note in manager.notes:
        out.write(f"note: {note}\n")
    out.write(plan.summary() + "\n")
    if plan.blockers:
        sys.stderr.write(f"recovery: restore refused: {plan.blockers[0]}\n")
        return EXIT_USAGE
    if args.dry_run:
        out.write("Dry run: nothing was changed.\n")
        return EXIT_OK
    if not args.yes:
        if not sys.stdin.isatty():
            raise RestoreError("not on a terminal: review the plan with --dry-run, then pass --yes to apply it")
        if not _confirm("Apply this plan? The current state is backed up first. [y/N] "):
            out.write("Not applied; nothing was changed.\n")
            return EXIT_FAILED  # nothing was restored: a script must not read this as success
    result = manager.apply_restore(plan)
    bar.close()
    if result.pre_recovery_backup_id:
        out.write(f"Pre-recovery backup: {result.pre_recovery_backup_id}\n")
    if not result.ok:
        for problem in result.problems:
            sys.stderr.write(f"recovery: restore problem: {problem}\n")
        return EXIT_FAILED
    out.write(
        f"Restored {', '.join(plan.categories)} from {plan.backup_id}: {result.files_written} files, "
        f"{result.bytes_written:,} bytes written and verified in {result.duration_s:.2f} s.\n"
    )
    return EXIT_OK
