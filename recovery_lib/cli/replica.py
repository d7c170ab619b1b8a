"""``recovery replica ...`` (list, push, verify, pull, prune): the copies of the backups off the host.

Printing around ``replica/service`` and ``RecoveryManager``; the work and its checks live there. A
replica's failure names it and says what to do; exit 1 when a replica is unusable or damaged, 2 for
bad input (an unknown replica, a missing identity).
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import asdict
from typing import Any, TextIO

from recovery_lib.cli.backup import add_retention_arguments, retention_policy
from recovery_lib.cli.common import ProgressBar, SiteOption, open_manager
from recovery_lib.cli.logs import NOT_ON_CONSOLE
from recovery_lib.cli.operations import push_outcome, reporting
from recovery_lib.errors import EXIT_FAILED, EXIT_OK, InvalidArgumentError, ReplicaError, ReplicaUnreachable
from recovery_lib.rendering import human_size, human_time
from recovery_lib.replica.check import verify_remote
from recovery_lib.replica.crypto import IDENTITY_ENV
from recovery_lib.replica.layout import OBJECTS_PREFIX, BackupIndex, is_backup_id
from recovery_lib.replica.remote import Replica
from recovery_lib.replica.service import opened, prune, replica_spec
from recovery_lib.replica.status import PushRecord, read_push_record, status_path
from recovery_lib.site.config import Site, load_site
from recovery_lib.site.replicas import ReplicaSpec

log = logging.getLogger(__name__)

EXAMPLES = """\
Examples:
  recovery replica list
  recovery replica push all --replica offsite
  recovery replica verify all --read-data --identity ~/dr-key.txt
  recovery replica pull latest --replica dr-host --identity ~/dr-key.txt
  recovery replica prune --keep-daily 7 --keep-weekly 4 --dry-run
  recovery restore latest --all --from-replica offsite --identity ~/dr-key.txt   (a lost host)

Replicas are the [[replicas]] tables of recovery.toml (README: Replicas). The age identity (private key)
for an encrypted replica comes from --identity FILE or $RECOVERY_AGE_IDENTITY, never from the site.
"""
NO_IDENTITY = "contents checked as stored; pass --identity to check them against the manifest"


def add_commands(commands: Any, site_option: SiteOption) -> None:
    """Register ``replica`` (list, push, verify, pull, prune)."""
    replica = commands.add_parser(
        "replica",
        help="copies of the backups off the host: list, push, verify, pull, prune",
        description="Replicas keep copies of the backups off the host (S3, SFTP, a second disk), so a lost\n"
        "host or lost local backups can be recovered. --replica NAME chooses one when the site has several.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = replica.add_subparsers(dest="replica_command", metavar="SUBCOMMAND", required=True)

    def command(name: str, summary: str, description: str, example: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = sub.add_parser(
            name, help=summary, description=description, epilog=f"Example: {example}"
        )
        site_option(parser)
        parser.add_argument("--replica", metavar="NAME", help="the replica (needed when the site has several)")
        return parser

    listing = command(
        "list",
        "show each replica, its backups, interrupted pushes and the last push from here",
        "For each replica (or the one named): where it is, its encryption and push mode, the complete "
        "backups on it, interrupted pushes, and the last push from this host. Exits 1 if a replica cannot "
        "be reached or read (the others are still listed).",
        "recovery replica list --replica offsite",
    )
    listing.add_argument("--json", action="store_true", help="JSON for machines")
    listing.set_defaults(handler=cmd_replica_list)

    push = command(
        "push",
        "copy local backups to a replica",
        "Copy local SUCCESS backups to the replica: only the file contents it lacks are uploaded, and a "
        "backup becomes visible there only once all of it is stored. 'latest' also pushes every local "
        "backup newer than the replica's newest (catching up after failed pushes). Exits 1 if any failed.",
        "recovery replica push all --replica offsite",
    )
    push.add_argument("target", nargs="?", default="latest", metavar="ID|latest|all", help="default: latest")
    push.set_defaults(handler=cmd_replica_push)

    verify = command(
        "verify",
        "check backups on a replica",
        "Check backups on the replica: every object present at the size the push stored; with --read-data "
        "every object downloaded and hashed. With the identity (encrypted replicas) the backup's documents "
        "and contents are checked against its manifest; without it, against what the push stored. "
        "Exits 1 and names every problem.",
        "recovery replica verify all --read-data --identity ~/dr-key.txt",
    )
    verify.add_argument(
        "backup_id", nargs="?", default="latest", metavar="ID|latest|all", help="default: the replica's newest"
    )
    verify.add_argument("--read-data", action="store_true", help="download and hash every object (slower, complete)")
    _identity_option(verify)
    verify.set_defaults(handler=cmd_replica_verify)

    pull = command(
        "pull",
        "copy a backup from a replica into the local backup directory",
        "Bring a backup into the local backup directory, every file decrypted and hashed against its "
        "manifest. 'latest' is the newest (not pre-recovery) backup that pulls and verifies; damaged ones "
        "are passed over with a note. Nothing in the site changes (`recovery restore` does that).",
        "recovery replica pull latest --replica offsite --identity ~/dr-key.txt",
    )
    pull.add_argument("backup_id", metavar="ID|latest", help="the backup to pull")
    _identity_option(pull)
    pull.set_defaults(handler=cmd_replica_pull)

    prune = command(
        "prune",
        "remove backups on a replica that a retention policy does not keep",
        "The rules of `recovery backup prune`, applied to the replica's backups; the replica's newest is "
        "always kept, and backups under Object Lock are kept (LOCKED, with the date they may go). Objects "
        "no remaining backup needs are removed with them.",
        "recovery replica prune --keep-daily 7 --keep-weekly 4 --replica offsite --dry-run",
    )
    add_retention_arguments(prune)
    prune.set_defaults(handler=cmd_replica_prune)


def _identity_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--identity",
        metavar="FILE",
        help=f"age private key for an encrypted replica (default: ${IDENTITY_ENV}); keep it off the trading host",
    )


def _check_id(text: str, allowed: tuple[str, ...]) -> str:
    """``text`` if it is one of ``allowed`` or shaped like a backup id; a usage error otherwise."""
    if text in allowed or is_backup_id(text):
        return text
    raise InvalidArgumentError(
        f"{text!r} is not a backup id (like 20261125T223600Z-full-3fa2c1) nor {' or '.join(allowed)}; "
        "`recovery replica list` shows the backups"
    )


# --- list -----------------------------------------------------------------------------------------


def _index_row(index: BackupIndex) -> dict[str, Any]:
    return {
        "backup_id": index.backup_id,
        "created_at": index.created_at,
        "backup_type": index.backup_type,
        "files_count": index.files_count,
        "size_bytes": index.size_bytes,
        "tags": index.tags,
        "retain_until": index.retain_until,
        "pushed_at": index.pushed_at,
    }


def _describe(site: Site, spec: ReplicaSpec) -> dict[str, Any]:
    """One replica as ``list`` shows it; ``error`` set when it cannot be reached or read."""
    record = read_push_record(site.backup_dir, spec.name)
    entry: dict[str, Any] = {
        "name": spec.name,
        "url": spec.url,
        "kind": spec.scheme,
        "encryption": "age" if spec.encrypted else "none",
        "push": spec.push,
        "object_lock_days": spec.object_lock_days,
        "reachable": True,
        "error": None,
        "initialised": False,
        "backups": [],
        "incomplete": [],
        "unreadable": [],
        "last_push": asdict(record) if record else None,
    }
    try:
        with opened(spec) as replica:
            entry["initialised"] = replica.config() is not None
            indexes, entry["unreadable"] = replica.backups()
            entry["backups"] = [_index_row(index) for index in indexes]
            entry["incomplete"] = replica.incomplete_ids()
    except ReplicaError as exc:
        entry["reachable"] = not isinstance(exc, ReplicaUnreachable)
        entry["error"] = str(exc)
        log.warning("replica %s: %s", spec.name, exc, extra=NOT_ON_CONSOLE)
    return entry


def _write_entry(entry: dict[str, Any], out: TextIO) -> None:
    lock = f", Object Lock {entry['object_lock_days']} days" if entry["object_lock_days"] else ""
    out.write(
        f"{entry['name']}: {entry['url']}\n  kind {entry['kind']}, encryption {entry['encryption']}, "
        f"push {entry['push']}{lock}\n"
    )
    record = entry["last_push"]
    if record is None:
        out.write("  last push: never from this host\n")
    else:
        out.write(f"  {PushRecord(**record).summary()}\n")
    if entry["error"]:
        out.write(f"  {'UNREACHABLE' if not entry['reachable'] else 'ERROR'}: {entry['error']}\n")
        return
    if not entry["initialised"]:
        out.write("  no backups yet (never pushed to): `recovery replica push` sends the latest\n")
        return
    backups = entry["backups"]
    if not backups:
        out.write("  no complete backups\n")
    else:
        width = max(len(row["backup_id"]) for row in backups)
        out.write(f"  {'backup':<{width}}  {'created':<20} {'type':<6} {'files':>6} {'size':>9}  tags / locked until\n")
    for row in backups:
        tags = f"[{', '.join(row['tags'])}]" if row["tags"] else ""
        locked = f"locked until {human_time(row['retain_until'])}" if row["retain_until"] else ""
        out.write(
            f"  {row['backup_id']:<{width}}  {human_time(row['created_at']):<20} {row['backup_type']:<6} "
            f"{row['files_count']:6d} {human_size(row['size_bytes']):>9}  {' '.join(filter(None, [tags, locked]))}\n"
        )
    for backup_id in entry["incomplete"]:
        out.write(f"  interrupted push: {backup_id} (invisible to restores; the next push completes it)\n")
    for problem in entry["unreadable"]:
        out.write(f"  UNREADABLE: {problem}\n")


def cmd_replica_list(args: argparse.Namespace, out: TextIO) -> int:
    """``recovery replica list``: every replica (or the one named), unreachable ones said so."""
    site = load_site(args.site)
    specs = [replica_spec(site, args.replica)] if args.replica or not site.replicas else list(site.replicas)
    entries = [_describe(site, spec) for spec in specs]
    if args.json:
        out.write(json.dumps(entries, indent=2) + "\n")
    else:
        for number, entry in enumerate(entries):
            if number:
                out.write("\n")
            _write_entry(entry, out)
    return EXIT_FAILED if any(entry["error"] for entry in entries) else EXIT_OK


# --- push, pull -----------------------------------------------------------------------------------


def cmd_replica_push(args: argparse.Namespace, out: TextIO) -> int:
    """``recovery replica push``: exit 1 if any backup was not pushed."""
    target = _check_id(args.target, ("latest", "all"))
    site = load_site(args.site)
    with reporting("push", site) as outcome:  # a failed push notifies the site's [alerts]
        outcome.subject = replica_spec(site, args.replica).name  # named in the notification even if it fails
        outcome.record = status_path(site.backup_dir, outcome.subject)
        manager, _ = open_manager(args, "push")
        report = manager.push_to_replica(args.replica, target)
        push_outcome(outcome, report, manager.backup_dir)
    out.write(("✅ " if report.ok else "❌ ") + report.summary().split("; FAILED", 1)[0] + "\n")
    for backup_id in report.pushed:
        out.write(f"   pushed  {backup_id}\n")
    for backup_id in report.already:
        out.write(f"   already there  {backup_id}\n")
    for backup_id, why in report.failed.items():
        out.write(f"   FAILED  {backup_id}: {why}\n")
    return EXIT_OK if report.ok else EXIT_FAILED


def cmd_replica_pull(args: argparse.Namespace, out: TextIO) -> int:
    """``recovery replica pull``: the backup into the local backup directory, verified."""
    backup_id = _check_id(args.backup_id, ("latest",))
    manager, bar = open_manager(args, "pull")
    try:
        report = manager.pull_from_replica(args.replica, backup_id, args.identity)
    finally:
        bar.close()
    for note in manager.notes:
        out.write(f"note: {note}\n")
    out.write(f"{report.summary()}\n")
    if not report.already_local:
        out.write(f"It is in {manager.backup_dir}; restore it with `recovery restore {report.backup_id} --all`.\n")
    return EXIT_OK


# --- verify ---------------------------------------------------------------------------------------


def _verify_ids(replica: Replica, wanted: str) -> list[str]:
    """The committed backups ``wanted`` names (``latest``: the newest; ``all``); clear errors otherwise."""
    committed = replica.committed_ids()
    if wanted == "all" or wanted == "latest":
        if not committed:
            raise ReplicaError(
                f"replica {replica.name!r} ({replica.spec.url}) holds no complete backup: nothing to verify and "
                f"nothing to restore from. Push one with `recovery replica push --replica {replica.name}`"
            )
        # Newest by creation time (ids of one second sort by their random suffix); unreadable ones last,
        # still verified, so their damage is reported.
        readable = [index.backup_id for index in replica.backups()[0]]
        ordered = readable + [backup_id for backup_id in committed if backup_id not in readable]
        return ordered if wanted == "all" else ordered[:1]
    if wanted in committed:
        return [wanted]
    if wanted in replica.incomplete_ids():
        raise ReplicaError(
            f"backup {wanted} on replica {replica.name!r} is an interrupted push (no commit marker): "
            f"`recovery replica push {wanted} --replica {replica.name}` completes it"
        )
    raise ReplicaError(
        f"replica {replica.name!r} has no backup {wanted} (newest: {', '.join(committed[:3]) or 'none'}); "
        f"`recovery replica list --replica {replica.name}` shows them"
    )


def cmd_replica_verify(args: argparse.Namespace, out: TextIO) -> int:
    """``recovery replica verify``: exit 1 and every problem named if any backup is damaged."""
    wanted = _check_id(args.backup_id, ("latest", "all"))
    site = load_site(args.site)
    spec = replica_spec(site, args.replica)
    bar = ProgressBar("verify")
    with opened(spec) as replica:
        ids = _verify_ids(replica, wanted)
        opener = replica.opener(args.identity)  # no identity on an encrypted replica: stored bytes only
        objects = {o.key: o for o in replica.transport.list(OBJECTS_PREFIX)}
        try:
            reports = [verify_remote(replica, bid, args.read_data, opener, objects, bar) for bid in ids]
        finally:
            bar.close()
        incomplete = replica.incomplete_ids()
    if opener.encrypted and not opener.identities:
        out.write(f"note: replica {spec.name} is encrypted and no identity was given: {NO_IDENTITY}.\n")
    for report in reports:
        log.log(logging.INFO if report.ok else logging.WARNING, "%s", report.summary(), extra=NOT_ON_CONSOLE)
        out.write(("✅ " if report.ok else "❌ ") + report.summary() + "\n")
        for problem in report.problems:
            out.write(f"   {problem}\n")
    for backup_id in incomplete:
        out.write(f"note: interrupted push {backup_id} (not verified; the next push completes it)\n")
    return EXIT_OK if all(report.ok for report in reports) else EXIT_FAILED


# --- prune ----------------------------------------------------------------------------------------


def cmd_replica_prune(args: argparse.Namespace, out: TextIO) -> int:
    """``recovery replica prune``: every decision with its reason, LOCKED ones too."""
    policy = retention_policy(args)  # an empty policy is refused before the replica is opened
    site = load_site(args.site)
    with reporting("prune", None if args.dry_run else site) as outcome:  # a dry run changed nothing
        spec = replica_spec(site, args.replica)
        outcome.subject = spec.name
        result = prune(spec, site.backup_dir, policy, dry_run=args.dry_run)
        outcome.results.append(result)
        outcome.summary = f"prune of replica {spec.name}: {result.summary(args.dry_run).splitlines()[0]}"
    log.info("replica prune%s with %s:\n%s", " (dry run)" if args.dry_run else "", policy, result.summary(args.dry_run))
    out.write(("Dry run, nothing removed: " if args.dry_run else "Pruned: ") + result.summary(args.dry_run) + "\n")
    return EXIT_OK
