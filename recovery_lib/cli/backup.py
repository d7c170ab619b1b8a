"""``recovery backup ...`` (create, list, verify, prune): printing around RecoveryManager."""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from datetime import timedelta
from typing import Any, TextIO

from recovery_lib.backup import RetentionPolicy, UnreadableBackup, VerifyReport
from recovery_lib.backup.listing import UNREADABLE_ADVICE
from recovery_lib.backup.retention import plan_prune
from recovery_lib.cli.common import SiteOption, backup_dir_option, open_manager, open_tolerant_manager
from recovery_lib.cli.logs import NOT_ON_CONSOLE, LogTarget, default_target
from recovery_lib.cli.operations import Report, log_record, report_pushes, reporting
from recovery_lib.clock import now
from recovery_lib.errors import EXIT_FAILED, EXIT_OK, BackupIncomplete, RecoveryError
from recovery_lib.metrics.collect import VerifyMode
from recovery_lib.rendering import human_age, human_size
from recovery_lib.replica.push import PushReport
from recovery_lib.replica.status import PushRecord
from recovery_lib.site.config import load_site

log = logging.getLogger(__name__)
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


def add_commands(commands: Any, site_option: SiteOption) -> None:
    """Register ``backup`` (create, list, verify, prune)."""
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
        "are hard-linked to the previous backup. Exits 1 if any file could not be captured. "
        "What it did and decided is logged to BACKUP_DIR/.logs/recovery.log (rotated; "
        "recovery --log-file PATH|none backup create ... to change that). Then the backup is pushed to "
        'every replica with push = "after-backup" (one line each); a failed push is recorded and shown '
        "by `recovery health`, and never changes this command's exit status.",
        epilog="Examples:\n  recovery backup create --tag nightly\n"
        "  recovery backup create --config -m 'before the deployment' --no-push",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    site_option(create)
    for category in ("config", "state", "data"):
        create.add_argument(f"--{category}", action="store_true", help=f"include {category}")
    create.add_argument("--tag", action="append", default=[], metavar="TAG", help="tag the backup (repeatable)")
    create.add_argument("-m", "--description", default="", help="what this backup is for")
    create.add_argument(
        "--scheduled",
        action="store_true",
        help="run by the installed schedule: adds the tag `scheduled` and sends the [alerts] ping_backup pings",
    )
    create.add_argument(
        "--no-push",
        action="store_true",
        help='do not push to the replicas with push = "after-backup" (`recovery replica push` does it later)',
    )
    create.set_defaults(handler=cmd_backup_create, log_target=backup_log_target)

    listing = sub.add_parser(
        "list",
        help="list backups, newest first",
        description="List backups, newest first. Works with a malformed recovery.toml too: then on the default "
        "settings, with a warning (every backup holds recovery.toml: `recovery restore latest --settings`).",
    )
    site_option(listing)
    backup_dir_option(listing)
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
    add_retention_arguments(prune)
    prune.set_defaults(handler=cmd_backup_prune)


def add_retention_arguments(parser: argparse.ArgumentParser) -> None:
    """The retention flags (``--keep-*``, ``--dry-run``) of ``backup prune``; ``replica prune`` shares them."""
    for name in RETENTION_COUNTS:
        parser.add_argument(
            f"--keep-{name}",
            type=_count,
            default=0,
            metavar="N",
            help=f"keep the newest backup of each of the last N {name} periods"
            if name != "last"
            else "keep the N newest backups",
        )
    parser.add_argument(
        "--keep-within",
        type=_duration,
        metavar="DURATION",
        help="keep everything within DURATION of the newest backup (e.g. 7d)",
    )
    parser.add_argument("--keep-tag", action="append", default=[], metavar="TAG", help="keep backups with this tag")
    parser.add_argument("--dry-run", action="store_true", help="show what would be removed, remove nothing")


def retention_policy(args: argparse.Namespace) -> RetentionPolicy:
    """The policy the retention flags ask for; an empty one is refused (InvalidArgumentError) before
    anything is opened or locked."""
    policy = RetentionPolicy(
        **{f"keep_{n}": getattr(args, f"keep_{n}") for n in RETENTION_COUNTS},
        keep_within=args.keep_within,
        keep_tags=tuple(args.keep_tag),
    )
    plan_prune([], policy, None)  # refuses an empty policy
    return policy


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


def backup_log_target(args: argparse.Namespace) -> LogTarget:
    """``backup create`` logs to the site's backup directory: the trail is kept with the backups."""
    return default_target(load_site(args.site).backup_dir)


def cmd_backup_create(args: argparse.Namespace, out: TextIO) -> int:
    """``recovery backup create``; a PARTIAL backup raises BackupIncomplete (exit 1)."""
    chosen = [args.config, args.state, args.data]
    flags = chosen if any(chosen) else [True, True, True]
    categories = [name for name, wanted in zip(("config", "state", "data"), flags, strict=True) if wanted]
    log.info("backup create: %s%s", ", ".join(categories), "" if any(chosen) else " (none named: all)")
    site, started = load_site(args.site), now()
    # [alerts]: /start, then success or /fail; a failed or PARTIAL backup notifies; [metrics] either way.
    # Pings only from the schedule: a person's manual backup must not keep a dead timer's check green.
    tags = [*args.tag, *(["scheduled"] if args.scheduled and "scheduled" not in args.tag else [])]
    with reporting("backup", site, pinged="backup" if args.scheduled else None) as report:
        report.record = log_record(args, site.backup_dir)
        manager, bar = open_manager(args, "backup")
        try:
            backup_id = manager.create_backup(*flags, description=args.description, tags=tags, push=not args.no_push)
        except BackupIncomplete as exc:  # stored, but PARTIAL: say which files, keep the metadata
            report.subject = exc.metadata.backup_id
            report.results.append(exc.metadata)
            report.failed(
                f"backup {exc.metadata.backup_id} is PARTIAL: {len(exc.metadata.problems)} file(s) could not be "
                "captured; it is kept for evidence and never restored from",
                exc.metadata.problems,
                status="PARTIAL",
            )
            raise
        finally:
            bar.close()
        metadata = manager.get_backup(backup_id)
        report.subject, report.status = backup_id, metadata.status.value.upper()
        report.results += [metadata, *manager.last_push]
        for note in manager.notes:
            log.info("note: %s", note)
            out.write(f"note: {note}\n")
        log.info(
            "backup %s (%s) stored in %s: %d files, %d bytes, %d new, %d linked, %.2f s",
            backup_id,
            metadata.backup_type.value,
            manager.backup_dir,
            metadata.files_count,
            metadata.size_bytes,
            metadata.bytes_new,
            metadata.files_linked,
            metadata.duration_s,
        )
        report.summary = (
            f"Backup {backup_id} ({metadata.backup_type.value}): {metadata.files_count} files, "
            f"{metadata.size_bytes:,} bytes, {metadata.bytes_new:,} new, {metadata.files_linked} linked, "
            f"{metadata.duration_s:.2f} s"
        )
        out.write(report.summary + "\n")
        _print_pushes(manager.last_push, out)
    report_pushes(site, manager.backup_dir, manager.last_push, started)  # a failed push notifies, never fails this
    return EXIT_OK


def _print_pushes(outcomes: list[PushRecord | PushReport], out: TextIO) -> None:
    """One line per replica pushed to after the backup: pushed, or FAILED with why and what to do. A failed
    push never changes the backup's exit status (it is recorded; `recovery health` shows it)."""
    for outcome in outcomes:
        if isinstance(outcome, PushReport) and outcome.ok:
            out.write(f"Pushed to replica {outcome.replica}: {outcome.summary().split(': ', 1)[1]}\n")
            continue
        why = outcome.error if isinstance(outcome, PushRecord) and outcome.error else ""
        why = why or "; ".join(f"{bid}: {reason}" for bid, reason in outcome.failed.items())
        out.write(
            f"Push to replica {outcome.replica} FAILED: {why} (recorded; `recovery health` shows it; "
            f"retry with `recovery replica push --replica {outcome.replica}`)\n"
        )


def cmd_backup_list(args: argparse.Namespace, out: TextIO) -> int:
    """``recovery backup list``."""
    manager, _, _ = open_tolerant_manager(args, "list")  # a malformed recovery.toml: defaults, and a warning
    if manager.backup_dir.exists() and not manager.backup_dir.is_dir():
        raise RecoveryError(
            f"the backup directory {manager.backup_dir} is a file, not a directory: there are no backups "
            "to list. Move the file aside (Procedure D does it) or set [backups] dir in recovery.toml."
        )
    backups = manager.list_backups(tags=args.tag, backup_type=args.type)
    log.info("%d backup(s) listed in %s, %d unreadable", len(backups), manager.backup_dir, len(manager.unreadable))
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
    """``recovery backup verify``: each backup named, unreadable ones as failures (never left out); a
    damaged or unreadable backup notifies the site's [alerts]."""
    with reporting("verify", load_site(args.site)) as outcome:
        outcome.subject = args.backup_id
        outcome.results.append(VerifyMode(args.read_data))  # the metrics' mode, also when nothing is verified
        return _verify(args, out, outcome)


def _verify(args: argparse.Namespace, out: TextIO, outcome: Report) -> int:
    manager, bar = open_manager(args, "verify")
    ids = [b.backup_id for b in manager.list_backups()] if args.backup_id == "all" else [args.backup_id]
    unreadable = manager.unreadable if args.backup_id == "all" else []
    if not ids and not unreadable:  # nothing to verify: nothing to restore from is a failure, not "all ok"
        if args.json:
            out.write("[]\n")
        log.warning("no backups in %s: nothing to verify", manager.backup_dir, extra=NOT_ON_CONSOLE)
        outcome.failed(f"no backups in {manager.backup_dir}: nothing to verify and nothing to restore from")
        sys.stderr.write(
            f"recovery: no backups in {manager.backup_dir}: nothing to verify and nothing to restore from. "
            "Create one with `recovery backup create` (runbook Procedure D).\n"
        )
        return EXIT_FAILED
    reports = [manager.verify_backup(backup_id, read_data=args.read_data) for backup_id in ids]
    bar.close()
    for report in reports:
        log.log(logging.INFO if report.ok else logging.WARNING, "verify: %s", report.summary(), extra=NOT_ON_CONSOLE)
    for item in unreadable:
        log.warning("verify: %s is unreadable: %s", item.backup_id, item.problem, extra=NOT_ON_CONSOLE)
    if args.json:
        entries = [_verified_json(r) for r in reports] + [_unreadable_json(u, args.read_data) for u in unreadable]
        out.write(json.dumps(entries, indent=2) + "\n")
    else:
        for report in reports:
            out.write(("❌ " if not report.ok else "⚠️ " if report.partial else "✅ ") + report.summary() + "\n")
            for problem in report.problems:
                out.write(f"   {problem}\n")
        for item in unreadable:
            out.write(f"❌ {item.backup_id}: unreadable: {item.problem}\n   {UNREADABLE_ADVICE}\n")
    outcome.results += [*reports, *unreadable]
    damaged = [r.summary() for r in reports if not r.ok] + [
        f"{u.backup_id}: unreadable: {u.problem}" for u in unreadable
    ]
    if damaged:
        outcome.failed(f"{len(damaged)} of {len(reports) + len(unreadable)} backup(s) damaged or unreadable", damaged)
    else:
        outcome.summary = f"{len(reports)} backup(s) verified{' (contents hashed)' if args.read_data else ''}: all ok"
    return EXIT_OK if all(r.ok for r in reports) and not unreadable else EXIT_FAILED


def cmd_backup_prune(args: argparse.Namespace, out: TextIO) -> int:
    """``recovery backup prune``."""
    policy = retention_policy(args)  # an empty policy is refused before the manager's lock creates backups/
    with reporting("prune", None if args.dry_run else load_site(args.site)) as report:  # a dry run changed nothing
        report.subject = "local"
        manager, _ = open_manager(args, "prune")
        plan = manager.prune(policy, dry_run=args.dry_run)
        report.results.append(plan)
        report.summary = f"local prune: {plan.summary().splitlines()[0]}"
    log.info("prune%s with %s: %s", " (dry run)" if args.dry_run else "", policy, plan.summary())
    out.write(("Dry run, nothing removed: " if args.dry_run else "Pruned: ") + plan.summary() + "\n")
    return EXIT_OK
