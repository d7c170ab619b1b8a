"""Benchmark: drill time. One drill per scenario end to end (fresh sandbox, backup, trading, fault, four
notebooks, HTML, record), the whole suite one after the other, the time the notebooks waited for their
kernels, and whether two drills in parallel beat running them one after the other on this machine.

Figures (``--json FILE`` writes them too):
- ``drill_s``: each scenario's drill, run_drill's own wall time; ``from_injection_s``: from the fault's
  injection to the record (triage, the procedures, verification, post-recovery, HTML, stopping);
- ``kernel_start_s``: median time to start a cold python3 kernel and get its first reply (what a drill
  would wait per notebook if it started each kernel when the notebook needs it);
- ``kernel_wait_s`` and ``kernel_share_of_suite``: what the notebooks actually waited for their kernels
  and the library (papermill's start of each notebook to the end of its validation cell: the kernel's
  start, the imports, the parameter check; read from the executed notebooks), per scenario and as a
  share of the sequential suite;
- ``config_plus_data_sequential_s`` and ``config_plus_data_parallel_s`` (two at once in two processes,
  as ``recovery drill run --jobs 2``); ``target_s``: the target for one drill.

Usage: python benchmarks/bench_drill.py [--outputs DIR] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import nbformat

from recovery_lib.drills.runner import run_drill

SCENARIOS = ("config", "data", "full", "backup")
TARGET_S = 5


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


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def kernel_wait_s(notebook: Path) -> float:
    """How long the notebook waited, in the drill, for its kernel and the library: from papermill's start
    to the end of the validation cell (the kernel's start, the library's imports, the parameter check)."""
    executed = nbformat.read(str(notebook), as_version=4)
    validate = next(c for c in executed.cells if "validate" in c.metadata.get("tags", []))
    ended, started = validate.metadata["papermill"]["end_time"], executed.metadata["papermill"]["start_time"]
    return (_at(ended) - _at(started)).total_seconds()


def one(scenario: str, outputs: str) -> dict[str, float]:
    """One drill of ``scenario``: its seconds, from the injection on, and its notebooks' kernel wait."""
    injected: list[float] = []

    def say(line: str) -> None:
        if " injected " in line:
            injected.append(time.monotonic())

    result = run_drill(scenario, Path(outputs), say=say)
    returned = time.monotonic()
    if not result.recovered:
        raise SystemExit(f"{scenario} drill did not recover: {result.failure}")
    return {
        "seconds": result.seconds,
        "from_injection_s": returned - injected[0],
        "kernel_wait_s": sum(kernel_wait_s(notebook) for notebook in result.notebooks),
    }


def measure(outputs: Path | None = None) -> dict[str, Any]:
    """Every figure (see the module docstring), without printing; records go to ``outputs`` (a temporary
    directory, removed afterwards, when None)."""
    records = outputs or Path(tempfile.mkdtemp(prefix="bench-drill-"))
    try:
        kernel = kernel_start_s()
        drills = {scenario: one(scenario, str(records)) for scenario in SCENARIOS}
        suite = sum(d["seconds"] for d in drills.values())
        started = time.perf_counter()
        with ProcessPoolExecutor(max_workers=2) as pool:
            list(pool.map(one, ["config", "data"], [str(records)] * 2))
        parallel_pair = time.perf_counter() - started
    finally:
        if outputs is None:
            shutil.rmtree(records, ignore_errors=True)
    return {
        "drill_s": {k: round(d["seconds"], 2) for k, d in drills.items()},
        "from_injection_s": {k: round(d["from_injection_s"], 2) for k, d in drills.items()},
        "kernel_wait_s": {k: round(d["kernel_wait_s"], 2) for k, d in drills.items()},
        "suite_sequential_s": round(suite, 2),
        "kernel_start_s": round(kernel, 2),
        "kernel_share_of_suite": round(sum(d["kernel_wait_s"] for d in drills.values()) / suite, 3),
        "config_plus_data_sequential_s": round(drills["config"]["seconds"] + drills["data"]["seconds"], 2),
        "config_plus_data_parallel_s": round(parallel_pair, 2),
        "target_s": TARGET_S,
    }


def table(figures: dict[str, Any]) -> str:
    """One row per scenario, then the suite and the parallel pair."""
    rows = [f"{'drill':<8} {'total s':>8} {'from fault s':>13} {'kernel wait s':>14} {'target s':>9}"]
    for scenario, seconds in figures["drill_s"].items():
        rows.append(
            f"{scenario:<8} {seconds:>8.2f} {figures['from_injection_s'][scenario]:>13.2f} "
            f"{figures['kernel_wait_s'][scenario]:>14.2f} {figures['target_s']:>9}"
        )
    rows.append(
        f"suite {figures['suite_sequential_s']:.2f} s one after the other (kernel wait "
        f"{figures['kernel_share_of_suite']:.1%}; a cold kernel starts in {figures['kernel_start_s']:.2f} s); "
        f"config+data {figures['config_plus_data_sequential_s']:.2f} s in turn, "
        f"{figures['config_plus_data_parallel_s']:.2f} s two at once"
    )
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--outputs", type=Path, help="keep the drills' records here (default: a temp dir)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    figures = measure(args.outputs)
    print(json.dumps(figures, indent=2))
    print(table(figures))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
