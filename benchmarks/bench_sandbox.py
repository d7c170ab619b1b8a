"""Benchmark: sandbox generation and the data health check, against `cp -a` + `sync` of the same site.

Usage: python benchmarks/bench_sandbox.py [--size 1G] [--trades 2000000] [--workdir DIR]
Prints seconds and ratios; writes nothing outside --workdir (default: a temp dir, removed after).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from recovery_lib.checks.builtin import check_data_files
from recovery_lib.sandbox import SandboxSpec, create_sandbox, parse_size
from recovery_lib.site.config import load_site


def timed(action) -> float:  # noqa: ANN001 - any zero-argument callable
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="1G", help="site size (default 1G)")
    parser.add_argument("--trades", type=int, default=2_000_000, help="trades in trades.csv (default 2,000,000)")
    parser.add_argument("--workdir", type=Path, help="where to build (default: a temp dir)")
    args = parser.parse_args()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="bench-sandbox-"))
    workdir.mkdir(parents=True, exist_ok=True)
    site_dir, copy_dir = workdir / "site", workdir / "copy"
    try:
        spec = SandboxSpec(trades=args.trades, size_bytes=parse_size(args.size))
        generate_s = timed(lambda: (create_sandbox(site_dir, spec, force=True), subprocess.run(["sync"], check=True)))
        shutil.rmtree(copy_dir, ignore_errors=True)
        cp_s = timed(lambda: subprocess.run(f"cp -a '{site_dir}' '{copy_dir}' && sync", shell=True, check=True))
        site = load_site(site_dir)
        health_s = timed(lambda: check_data_files(site))
        size = sum(p.stat().st_size for p in site_dir.rglob("*") if p.is_file())
        result = {
            "site_bytes": size,
            "trades": args.trades,
            "generate_s": round(generate_s, 2),
            "cp_a_sync_s": round(cp_s, 2),
            "generate_vs_cp": round(generate_s / cp_s, 2),
            "data_health_check_s": round(health_s, 2),
        }
        print(json.dumps(result, indent=2))
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
