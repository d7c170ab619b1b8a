"""Benchmark: drill time. One scenario end to end, the whole suite, the share spent starting
kernels, and whether two drills in parallel beat running them one after the other on this machine.

Usage: python benchmarks/bench_drill.py [--outputs DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from recovery_lib.drills.runner import run_drill

NOTEBOOKS_PER_DRILL = 4


def kernel_start_s(samples: int = 3) -> float:
    """Median time to start a python3 kernel and get its first reply."""
    from jupyter_client.manager import start_new_kernel

    times = []
    for _ in range(samples):
        started = time.perf_counter()
        manager, client = start_new_kernel(kernel_name="python3")
        client.execute_interactive("1", timeout=30)
        times.append(time.perf_counter() - started)
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    return sorted(times)[len(times) // 2]


def one(scenario: str, outputs: str) -> float:
    result = run_drill(scenario, Path(outputs), say=lambda _line: None)
    if not result.recovered:
        raise SystemExit(f"{scenario} drill did not recover: {result.failure}")
    return result.seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--outputs", type=Path)
    args = parser.parse_args()
    outputs = args.outputs or Path(tempfile.mkdtemp(prefix="bench-drill-"))
    try:
        kernel = kernel_start_s()
        single = {scenario: one(scenario, str(outputs)) for scenario in ("config", "data", "full", "backup")}
        suite = sum(single.values())
        started = time.perf_counter()
        with ProcessPoolExecutor(max_workers=2) as pool:
            list(pool.map(one, ["config", "data"], [str(outputs)] * 2))
        parallel_pair = time.perf_counter() - started
        figures = {
            "kernel_start_s": round(kernel, 2),
            "drill_s": {k: round(v, 2) for k, v in single.items()},
            "suite_sequential_s": round(suite, 2),
            "kernel_share_of_suite": round(kernel * NOTEBOOKS_PER_DRILL * 4 / suite, 2),
            "config_plus_data_sequential_s": round(single["config"] + single["data"], 2),
            "config_plus_data_parallel_s": round(parallel_pair, 2),
        }
        print(json.dumps(figures, indent=2))
    finally:
        if not args.outputs:
            shutil.rmtree(outputs, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
