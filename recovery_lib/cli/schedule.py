"""``recovery schedule install|status``: the site's declared schedules as systemd timers or crontab lines."""

from __future__ import annotations

import argparse
import json
from typing import Any, TextIO

from recovery_lib.errors import EXIT_FAILED, EXIT_OK
from recovery_lib.schedule import apply, plan_install, schedule_status
from recovery_lib.site.config import load_site


def add_commands(commands: Any, site_option: Any) -> None:
    """Register ``schedule`` (install, status)."""
    schedule = commands.add_parser(
        "schedule",
        help="install the backup and drill schedules recovery.toml declares; show what is installed",
        description="[backups] schedule and [drills] schedule of recovery.toml (UTC) as systemd timers or "
        "crontab lines, and what is really installed.",
    )
    sub = schedule.add_subparsers(dest="schedule_command", metavar="SUBCOMMAND", required=True)
    install = sub.add_parser(
        "install",
        help="write systemd units or crontab lines for what recovery.toml declares",
        description="systemd: recovery-<site>-backup.service and .timer (OnCalendar= in UTC, Persistent=true, so "
        "a run missed while the machine was off happens at boot), the same for drills; enabled when systemd runs "
        "here. cron: a block at the end of your crontab starting with CRON_TZ=UTC; other lines are kept, a second "
        "install replaces the block. --dry-run prints exactly what would be written and run, and refuses what "
        "the install would refuse. Exit 0 done, 1 failed (the message says what is in place), 2 refused.",
        epilog="Example: recovery schedule install --systemd --dry-run --site /srv/trading",
    )
    scheduler = install.add_mutually_exclusive_group(required=True)
    scheduler.add_argument("--systemd", dest="scheduler", action="store_const", const="systemd", help="systemd timers")
    scheduler.add_argument("--cron", dest="scheduler", action="store_const", const="cron", help="crontab lines")
    install.add_argument("--dry-run", action="store_true", help="print the plan; write and run nothing")
    site_option(install)
    install.set_defaults(handler=cmd_schedule_install)
    status = sub.add_parser(
        "status",
        help="what is installed against what recovery.toml declares (exit 1 if an entry is missing or idle)",
        description="Reads the unit directory and your crontab: each declared entry installed (same times, a "
        "command for THIS site, exactly what `recovery schedule install` writes now, a program that exists) or not, "
        "what is installed but not declared, and whether anything runs it. "
        "Exit 0 when every declared entry is installed and nothing says it will not run, else 1.",
    )
    status.add_argument("--json", action="store_true", help="print JSON for machines")
    site_option(status)
    status.set_defaults(handler=cmd_schedule_status)


def cmd_schedule_install(args: argparse.Namespace, out: TextIO) -> int:
    """``recovery schedule install``: plan, print the plan, then (unless --dry-run) apply it."""
    site = load_site(args.site)
    plan = plan_install(site, args.scheduler)
    out.write(plan.render())
    if args.dry_run:
        out.write("\nDry run: nothing was written or run.\n")
        return EXIT_OK
    done = apply(plan)
    out.write("\n" + "\n".join(f"Done: {line}" for line in done) + "\n")
    if plan.manual:  # written, but nothing runs them yet: say it where it cannot be missed
        out.write(f"Written; {' '.join(plan.notes)} Run the commands above to start them.\n")
    return EXIT_OK


def cmd_schedule_status(args: argparse.Namespace, out: TextIO) -> int:
    """``recovery schedule status``: exit 0 when every declared entry is installed and not idle."""
    site = load_site(args.site)
    status = schedule_status(site)
    ok = status.confirmed()
    if args.json:
        payload = {
            **status.to_record(),
            "site": str(status.site),
            "ok": ok,
            "declared": [
                {"run": e.run, "entry": e.entry, "installed": e.installed, "found_in": list(e.found_in), "why": e.why}
                for e in status.entries
            ],
            "undeclared": list(status.undeclared),
            "notes": list(status.notes),
        }
        out.write(json.dumps(payload, indent=2) + "\n")
    else:
        out.write(status.describe() + "\n")
        for problem in status.problems():
            out.write(f"PROBLEM: {problem}\n")
        if ok and status.active is None:  # exit 0 as documented, saying only what is known
            out.write(
                f"OK: every declared entry is installed; whether anything runs it cannot be checked here: "
                f"{status.inactive_why}.\n"
            )
        elif ok:
            out.write("OK: every declared entry is installed, as `recovery schedule install` writes it, and runs.\n")
    return EXIT_OK if ok else EXIT_FAILED
