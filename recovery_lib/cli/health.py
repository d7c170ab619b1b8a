"""``recovery health``: the runbook's health checks, a table for people and JSON for machines."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any, TextIO

from recovery_lib.checks.default import health_check
from recovery_lib.cli.common import EPILOG, SiteOption
from recovery_lib.errors import EXIT_FAILED, EXIT_OK, RecoveryError
from recovery_lib.fsops.atomic import atomic_write_text
from recovery_lib.site.config import load_site, require_site

log = logging.getLogger(__name__)


def add_commands(commands: Any, site_option: SiteOption) -> None:
    """Register ``health``."""
    health = commands.add_parser(
        "health",
        help="run the health checks (runbook: Verification step 1)",
        description="Run every health check against the site and print the results. "
        "Exits 0 when all are healthy, 1 when any is not.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    site_option(health)
    health.add_argument("--json", action="store_true", help="print JSON for machines instead of a table")
    health.add_argument("--json-file", metavar="PATH", help="also write the JSON report to PATH (drills, cron)")
    health.add_argument(
        "--check",
        action="append",
        metavar="NAME",
        help=f"run only this check (repeatable): {', '.join(health_check.names)}",
    )
    health.set_defaults(handler=cmd_health)


def cmd_health(args: argparse.Namespace, out: TextIO) -> int:
    """``recovery health``: a table for people, JSON for machines."""
    site = require_site(load_site(args.site))  # the wrong directory: one message, not every check "missing"
    json_file = _json_file_target(args.json_file)
    if args.check:
        unknown = [name for name in args.check if name not in health_check.names]
        if unknown:
            raise RecoveryError(f"unknown check(s) {', '.join(unknown)}; choose from {', '.join(health_check.names)}")
        results = {name: health_check.run(name, site) for name in args.check}
    else:
        results = health_check.run_all(site)
    healthy = all(result.healthy for result in results.values())
    failing = [name for name, result in results.items() if not result.healthy]
    log.info("site %s: %s", site.root, "healthy" if healthy else f"unhealthy: {', '.join(failing)}")
    payload = {
        "site": str(site.root),
        "healthy": healthy,
        "checks": {name: result.to_dict() for name, result in results.items()},
    }
    report = json.dumps(payload, indent=2, default=str) + "\n"
    if json_file is not None:
        _write_json_file(json_file, report)
    if args.json:
        out.write(report)
    else:
        out.write(f"Health of site {site.root} ({site.name})\n")
        width = max(len(name) for name in results)
        for name, result in results.items():
            mark = "✅" if result.healthy else "❌"
            out.write(f"  {mark} {name.upper():<{width}}  {result.message}\n")
        out.write("🟢 System healthy\n" if healthy else f"🔴 System unhealthy: {', '.join(failing)}\n")
    return EXIT_OK if healthy else EXIT_FAILED


def _json_file_target(value: str | None) -> Path | None:
    """Check ``--json-file PATH`` before any check runs: a file path in an existing directory."""
    if value is None:
        return None
    path = Path(value).expanduser()
    if not value.strip() or path.is_dir():
        what = "is empty" if not value.strip() else f"{path} is a directory"
        raise RecoveryError(f"--json-file {what}; pass the path of a file to write, e.g. DIR/health.json.")
    if not path.parent.is_dir():
        problem = "is not a directory" if path.parent.exists() else "does not exist"
        raise RecoveryError(
            f"--json-file {path}: its directory {path.parent} {problem}; create it first or choose another path."
        )
    return path


def _write_json_file(path: Path, report: str) -> None:
    """Write the ``--json-file`` report; a failure names the path instead of being an internal error."""
    try:
        atomic_write_text(path, report)
    except OSError as exc:
        raise RecoveryError(
            f"--json-file {path}: cannot write the report ({exc.strerror or exc}); choose a writable path."
        ) from exc
    log.info("wrote the health report to %s", path)
