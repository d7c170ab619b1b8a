"""The ``recovery`` command line. Printing lives here; the work is done by the library.

Exit status: 0 success / healthy, 1 unhealthy, 2 bad input or an error explained in the message,
3 an internal error (a bug: the traceback is printed).
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, TextIO

from recovery_lib import __version__
from recovery_lib.checks.default import health_check
from recovery_lib.cli import backup as cli_backup
from recovery_lib.cli import drill as cli_drill
from recovery_lib.errors import RecoveryError
from recovery_lib.fsops.atomic import atomic_write_text
from recovery_lib.sandbox import SandboxSpec, create_sandbox, parse_size
from recovery_lib.site.config import SITE_ENV, load_site

EXIT_OK, EXIT_UNHEALTHY, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3

EPILOG = f"""\
The site is the protected system's directory: --site DIR, else ${SITE_ENV}, else the current directory.
Exit status: 0 ok/healthy, 1 unhealthy, 2 bad input (the message says what to fix), 3 internal error.
"""


def _site_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--site", metavar="DIR", help=f"site directory (default: ${SITE_ENV} or the current directory)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, with a useful ``--help`` on every level."""
    parser = argparse.ArgumentParser(
        prog="recovery",
        description="Executable disaster-recovery runbook for the Peak_Trade trading system.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"recovery {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    health = commands.add_parser(
        "health",
        help="run the health checks (runbook: Verification step 1)",
        description="Run every health check against the site and print the results. "
        "Exits 0 when all are healthy, 1 when any is not.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _site_option(health)
    health.add_argument("--json", action="store_true", help="print JSON for machines instead of a table")
    health.add_argument("--json-file", metavar="PATH", help="also write the JSON report to PATH (drills, cron)")
    health.add_argument(
        "--check",
        action="append",
        metavar="NAME",
        help=f"run only this check (repeatable): {', '.join(health_check.names)}",
    )
    health.set_defaults(handler=cmd_health)

    site = commands.add_parser(
        "site",
        help="show the site's resolved settings (recovery.toml merged with defaults)",
        description="Print the settings in force for the site: recovery.toml merged with the defaults.",
    )
    _site_option(site)
    site.set_defaults(handler=cmd_site)

    sandbox = commands.add_parser(
        "sandbox", help="create a demo site to drill on", description="Sandbox sites for drills and tests."
    )
    sandbox_commands = sandbox.add_subparsers(dest="sandbox_command", metavar="SUBCOMMAND", required=True)
    create = sandbox_commands.add_parser(
        "create",
        help="create a realistic Peak_Trade-like site in DIR",
        description="Create a sandbox site: config, state, trades and positions that agree, daily fill "
        "reports, a simulated exchange, and the marker that lets fault injection touch it. "
        "DIR must be new, empty, or (with --force) an existing sandbox.",
        epilog="Example: recovery sandbox create /tmp/big --trades 2000000 --size 1G",
    )
    create.add_argument("dir", metavar="DIR", help="where to create the site")
    create.add_argument(
        "--trades",
        type=_positive_int,
        default=SandboxSpec.trades,
        metavar="N",
        help=f"number of trades (default {SandboxSpec.trades})",
    )
    create.add_argument(
        "--reports",
        type=_non_negative_int,
        default=SandboxSpec.reports,
        metavar="N",
        help=f"number of daily report files (default {SandboxSpec.reports})",
    )
    create.add_argument(
        "--report-rows",
        type=_non_negative_int,
        default=SandboxSpec.report_rows,
        metavar="N",
        help=f"rows per report when no --size is given (default {SandboxSpec.report_rows})",
    )
    create.add_argument(
        "--size",
        type=_size,
        metavar="SIZE",
        help="grow the reports until the site holds SIZE bytes (e.g. 500M, 1G, 4G)",
    )
    create.add_argument("--seed", type=int, default=SandboxSpec.seed, help="random seed (same seed, same site)")
    create.add_argument("--force", action="store_true", help="replace DIR if it already holds a sandbox")
    create.add_argument("--quiet", action="store_true", help="no progress output")
    create.set_defaults(handler=cmd_sandbox_create)
    cli_backup.add_commands(commands, _site_option)
    cli_drill.add_commands(commands, _site_option)
    return parser


def _positive_int(text: str) -> int:
    value = _non_negative_int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must not be negative")
    return value


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def cmd_health(args: argparse.Namespace, out: TextIO) -> int:
    """``recovery health``: a table for people, JSON for machines."""
    site = load_site(args.site)
    json_file = _json_file_target(args.json_file)
    if args.check:
        unknown = [name for name in args.check if name not in health_check.names]
        if unknown:
            raise RecoveryError(f"unknown check(s) {', '.join(unknown)}; choose from {', '.join(health_check.names)}")
        results = {name: health_check.run(name, site) for name in args.check}
    else:
        results = health_check.run_all(site)
    healthy = all(result.healthy for result in results.values())
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
        failing = [name for name, result in results.items() if not result.healthy]
        out.write("🟢 System healthy\n" if healthy else f"🔴 System unhealthy: {', '.join(failing)}\n")
    return EXIT_OK if healthy else EXIT_UNHEALTHY


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


def cmd_site(args: argparse.Namespace, out: TextIO) -> int:
    """``recovery site``: the settings in force, as JSON."""
    site = load_site(args.site)
    settings: dict[str, Any] = asdict(site)
    settings["backup_dir"] = str(site.backup_dir)
    settings["is_sandbox"] = site.is_sandbox
    out.write(json.dumps(settings, indent=2, default=str) + "\n")
    return EXIT_OK


QUIET_BELOW_BYTES = 64 * 1024 * 1024  # small sites finish before progress would help


class _ProgressPrinter:
    """Progress on stderr: a live line on a terminal, a line per 10 % elsewhere (logs, make)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.live = stream.isatty()
        self.next_step = 10

    def __call__(self, done: int, total: int, phase: str) -> None:
        if total < QUIET_BELOW_BYTES:
            return
        percent = min(100, done * 100 // max(total, 1))
        if self.live:
            self.stream.write(f"\r  {phase:<8} {percent:3d}%  {done / 1e6:8.1f} MB")
            self.stream.flush()
        elif percent >= self.next_step:
            self.stream.write(f"  {phase:<8} {percent:3d}%  {done / 1e6:8.1f} MB\n")
            self.next_step = percent // 10 * 10 + 10

    def finish(self) -> None:
        if self.live:
            self.stream.write("\n")


def cmd_sandbox_create(args: argparse.Namespace, out: TextIO) -> int:
    """``recovery sandbox create DIR``."""
    spec = SandboxSpec(
        trades=args.trades, reports=args.reports, report_rows=args.report_rows, seed=args.seed, size_bytes=args.size
    )
    printer = None if args.quiet else _ProgressPrinter(sys.stderr)
    summary = create_sandbox(args.dir, spec, force=args.force, progress=printer)
    if printer:
        printer.finish()
    out.write(
        f"Sandbox site created at {summary.root}: {summary.trades} trades, {summary.reports} reports, "
        f"{summary.bytes_written / 1e6:.1f} MB in {summary.seconds:.1f} s.\n"
        f"Use it with --site {summary.root} or export {SITE_ENV}={summary.root}\n"
    )
    return EXIT_OK


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Entry point of the ``recovery`` console script."""
    out = out or sys.stdout
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args, out))
    except (RecoveryError, ValueError) as exc:
        sys.stderr.write(f"recovery: error: {exc}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        sys.stderr.write("recovery: interrupted\n")
        return 130
    except Exception:  # a bug: show it, but never as "unhealthy" (exit 1)
        sys.stderr.write("recovery: internal error, please report it with this traceback:\n")
        traceback.print_exc()
        return EXIT_INTERNAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
