"""``recovery sandbox create``: a realistic demo site to drill on."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any, TextIO

from recovery_lib.cli.common import SiteOption
from recovery_lib.errors import EXIT_OK
from recovery_lib.sandbox import SandboxSpec, create_sandbox, parse_size
from recovery_lib.site.config import SITE_ENV

log = logging.getLogger(__name__)

QUIET_BELOW_BYTES = 64 * 1024 * 1024  # small sites finish before progress would help


def add_commands(commands: Any, site_option: SiteOption) -> None:
    """Register ``sandbox`` (create)."""
    sandbox = commands.add_parser(
        "sandbox", help="create a demo site to drill on", description="Sandbox sites for drills and tests."
    )
    sandbox_commands = sandbox.add_subparsers(dest="sandbox_command", metavar="SUBCOMMAND", required=True)
    create = sandbox_commands.add_parser(
        "create",
        help="create a realistic Peak_Trade-like site in DIR",
        description="Create a sandbox site: config, state, trades and positions that agree, daily fill "
        "reports (data/reports/YYYY/MM/), optionally a market-data cache of small files (data/cache/), "
        "a simulated exchange, and the marker that lets fault injection touch it. "
        "DIR must be new, empty, or (with --force) an existing sandbox.",
        epilog="Examples:\n"
        "  a 1 GB site of a few large files:\n"
        "    recovery sandbox create /tmp/big --trades 2000000 --size 1G\n"
        "  a site of 20,000 files (10 years of daily reports, 16,350 candle files of 1-8 KB), 170 MiB:\n"
        "    recovery sandbox create /tmp/many --trades 100000 --reports 3650 --cache-files 16350 --size 170M",
        formatter_class=argparse.RawDescriptionHelpFormatter,
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
        "--cache-files",
        type=_non_negative_int,
        default=SandboxSpec.cache_files,
        metavar="N",
        help="market-data cache: N candle files of 1-8 KB, one per symbol and day, under "
        f"data/cache/SYMBOL/YYYY-MM/ (default {SandboxSpec.cache_files})",
    )
    create.add_argument(
        "--size",
        type=_size,
        metavar="SIZE",
        help="grow the reports until the site holds SIZE bytes (e.g. 500M, 1G, 4G); the cache counts towards it",
    )
    create.add_argument("--seed", type=int, default=SandboxSpec.seed, help="random seed (same seed, same site)")
    create.add_argument("--force", action="store_true", help="replace DIR if it already holds a sandbox")
    create.add_argument("--quiet", action="store_true", help="no progress output")
    create.set_defaults(handler=cmd_sandbox_create)


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
        trades=args.trades,
        reports=args.reports,
        report_rows=args.report_rows,
        cache_files=args.cache_files,
        seed=args.seed,
        size_bytes=args.size,
    )
    printer = None if args.quiet else _ProgressPrinter(sys.stderr)
    summary = create_sandbox(args.dir, spec, force=args.force, progress=printer)
    if printer:
        printer.finish()
    log.info(
        "sandbox created at %s: %d trades, %d reports, %d cache files, %d bytes",
        summary.root,
        summary.trades,
        summary.reports,
        summary.cache_files,
        summary.bytes_written,
    )
    out.write(
        f"Sandbox site created at {summary.root}: {summary.trades} trades, {summary.reports} reports, "
        f"{summary.cache_files} cache files, {summary.bytes_written / 1e6:.1f} MB in {summary.seconds:.1f} s.\n"
        f"Schedule installed: {summary.schedule}.\n"
        f"Use it with --site {summary.root} or export {SITE_ENV}={summary.root}\n"
    )
    return EXIT_OK
