"""``recovery alerts test``: prove, before an incident, that every ``[alerts] urls`` entry reaches someone.

A test notification goes through the same path a failed backup's does (``alerts.notify``), marked as a
test in its title and body, and each URL is reported by its position, scheme and host (never the rest:
URLs carry tokens). Healthchecks-style pings are left alone unless ``--pings`` is given: a ping is a
real signal to the monitoring service (a success ping would mark a dead scheduler as alive), so it is
sent only when asked, as ``/start`` followed by success, exactly what a good scheduled run sends.

This is also where a URL Apprise does not accept shows up (``recovery site`` loads such a file without a
word: which schemes exist is Apprise's business, known only once it is asked). It is not a health check
on purpose: ``health`` gates the runbook's procedures, and a mistyped Slack URL must not block a restore.
"""

from __future__ import annotations

import argparse
import socket
from typing import Any, TextIO

from recovery_lib import clock
from recovery_lib.alerts.message import Message
from recovery_lib.alerts.notify import send_each
from recovery_lib.alerts.pings import send_ping, where
from recovery_lib.errors import EXIT_FAILED, EXIT_OK, InvalidArgumentError
from recovery_lib.site.config import CONFIG_NAME, load_site, require_site

HOW_TO_ADD = (
    'add them: [alerts] urls = ["slack://TokenA/TokenB/TokenC", "mailtos://user:pass@example.com"] '
    "(any Apprise URL; docs/recovery-toml.md, [alerts])"
)


def add_commands(commands: Any, site_option: Any) -> None:
    """Register ``alerts`` (test)."""
    alerts = commands.add_parser(
        "alerts",
        help="send a test notification to every [alerts] urls entry",
        description="Notifications and pings of [alerts] in recovery.toml.",
    )
    sub = alerts.add_subparsers(dest="alerts_command", metavar="SUBCOMMAND", required=True)
    test = sub.add_parser(
        "test",
        help="send a clearly marked test notification to every [alerts] urls entry; report each",
        description="Sends one notification marked TEST to every [alerts] urls entry, through the same path a "
        "failed backup's alert takes, and reports each URL (by position, scheme and host) delivered or why not. "
        "Ping URLs (ping_backup, ping_drill) get nothing unless --pings is given. Exit 0 all delivered, "
        "1 any not delivered (or a ping failed), 2 no [alerts] urls configured.",
        epilog="Example: recovery alerts test --site /srv/trading",
    )
    test.add_argument(
        "--pings",
        action="store_true",
        help="also ping ping_backup and ping_drill (/start, then success): the monitoring service sees a good run",
    )
    site_option(test)
    test.set_defaults(handler=cmd_alerts_test)


def test_message(site_name: str, site_root: str, host: str | None = None) -> Message:
    """The test notification: TEST in the title and the first line, so nobody starts an incident over it."""
    host = host or socket.gethostname()
    body = "\n".join(
        [
            "TEST: this is a test notification, not an incident. Nothing failed.",
            f"Site: {site_name} ({site_root})",
            f"Host: {host}",
            f"When: {clock.now():%Y-%m-%d %H:%M:%S} UTC",
            "Sent by `recovery alerts test`: a failed backup, push or drill would arrive here the same way.",
        ]
    )
    return Message(title=f"[recovery] TEST {site_name}: alert test from {host}", body=body, failure=False)


def cmd_alerts_test(args: argparse.Namespace, out: TextIO) -> int:
    """``recovery alerts test``: exit 0 every URL (and ping, with --pings) delivered, 1 one was not, 2 none set."""
    site = require_site(load_site(args.site))
    urls = site.ops.alert_urls
    if not urls:
        raise InvalidArgumentError(f"no [alerts] urls in {site.root / CONFIG_NAME}: nothing to test; {HOW_TO_ADD}")
    deliveries = send_each(urls, test_message(site.name, str(site.root)))
    for delivery in deliveries:
        out.write(f"{delivery.where}: {'delivered' if delivery.delivered else 'NOT DELIVERED: ' + delivery.why}\n")
    failed = sum(not d.delivered for d in deliveries)
    ping_failed = _test_pings(site, out) if args.pings else 0
    if not args.pings and site.ops.pings:
        out.write(f"Ping URLs ({', '.join(sorted(site.ops.pings))}) not pinged: add --pings to ping them too.\n")
    if failed or ping_failed:
        out.write(
            f"FAILED: {failed} of {len(deliveries)} alert URLs not delivered"
            + (f", {ping_failed} ping(s) not delivered" if ping_failed else "")
            + f"; fix [alerts] in {site.root / CONFIG_NAME} and run this again.\n"
        )
        return EXIT_FAILED
    out.write(f"OK: the test notification reached all {len(deliveries)} alert URLs (check that it arrived).\n")
    return EXIT_OK


def _test_pings(site: Any, out: TextIO) -> int:
    """Ping each configured ping URL: ``/start`` then success; the number not delivered."""
    if not site.ops.pings:
        out.write("No ping URLs ([alerts] ping_backup, ping_drill) configured: no ping sent.\n")
        return 0
    failed = 0
    for run, base in sorted(site.ops.pings.items()):
        body = f"TEST: `recovery alerts test --pings` for {site.name} on {socket.gethostname()}, not a {run} run"
        problems = [p for p in (send_ping(base, phase, body) for phase in ("start", "success")) if p]
        failed += bool(problems)
        said = "start and success delivered" if not problems else "NOT DELIVERED: " + "; ".join(problems)
        out.write(f"ping_{run} ({where(base)}): {said}\n")
    return failed
