"""Benchmark: sandbox generation and the data health check on the named sites, against `cp -a` + `sync`
of the same site; and the default sandbox (the one drills and tests make by the hundred).

Sites (``benchmarks/sites.py``): ``1g`` (35 files), ``2k`` and ``20k`` files. Each is made with
``recovery sandbox create`` (timed from outside, ``sync`` included), then copied with ``cp -a`` + ``sync``;
the data check (positions against the trades) runs in-process on it.

Usage: python benchmarks/bench_sandbox.py [--sites 1g,2k,20k] [--workdir DIR] [--json FILE]
Writes nothing outside --workdir (default: a temp dir, removed after).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sites import SITES, backed_up_files, create_site, timed_shell, wipe

from recovery_lib.checks.builtin import check_data_files
from recovery_lib.sandbox import SandboxSpec, create_sandbox
from recovery_lib.site.config import load_site

DEFAULT_SAMPLES = 9


def default_sandbox_ms(workdir: Path) -> float:
    """Median time to create the default sandbox, in-process, as a drill or a test does."""
    times = []
    for number in range(DEFAULT_SAMPLES):
        started = time.perf_counter()
        create_sandbox(workdir / f"default-{number}", SandboxSpec())
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e3


def measure_site(name: str, workdir: Path) -> dict[str, Any]:
    site, copy = workdir / name, workdir / f"{name}-copy"
    generate_s = create_site(site, SITES[name])
    files = backed_up_files(site)
    copy.mkdir()
    cp_s = timed_shell(f"cp -a config state data recovery.toml '{copy}' && sync", cwd=site)
    wipe(copy)
    started = time.perf_counter()
    check = check_data_files(load_site(site))
    health_s = time.perf_counter() - started
    return {
        "about": SITES[name].about,
        "files": len(files),
        "bytes": sum((site / f).stat().st_size for f in files),
        "generate_s": round(generate_s, 2),
        "cp_a_sync_s": round(cp_s, 2),
        "generate_vs_cp": round(generate_s / cp_s, 2),
        "data_health_check_s": round(health_s, 2),
        "data_health_check_ok": check.healthy,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sites", default=",".join(SITES), help=f"any of {','.join(SITES)} (default all)")
    parser.add_argument("--workdir", type=Path, help="where to build (default: a temp dir)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    chosen = args.sites.split(",")
    if not set(chosen) <= set(SITES):
        parser.error(f"--sites takes {','.join(SITES)}")
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="bench-sandbox-")).absolute()
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        figures: dict[str, Any] = {"default_sandbox_ms": round(default_sandbox_ms(workdir), 1), "sites": {}}
        for name in chosen:
            figures["sites"][name] = measure_site(name, workdir)
            wipe(workdir / name)
    finally:
        if not args.workdir:
            wipe(workdir)
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
