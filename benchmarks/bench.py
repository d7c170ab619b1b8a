"""`make bench`: every benchmark in its own process with --json, then one table of all of them.

Runs bench_sandbox.py, bench_backup.py and bench_drill.py (and bench_replica.py with --replica: it
starts S3 and sftp servers and takes 5-10 minutes). Their own output goes to stderr as they run; the
table goes to stdout, as markdown: one row per measure (site, file count, size), with its seconds,
the baseline's seconds, the ratio, the target, whether it is met, microseconds per file and peak
memory. A measure that could not run is a row that says n/a and why.

Usage: python benchmarks/bench.py [--replica] [--sites 1g,2k,20k] [--rounds N] [--only sandbox,backup,drill]
       [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench_backup import BASELINES, MEASURES
from sites import SITES

HERE = Path(__file__).resolve().parent
BENCHES = ("sandbox", "backup", "drill", "replica")
DRILL_SCENARIOS = ("config", "data", "full", "backup")  # bench_drill's, for the n/a rows if it cannot run
REPLICA_OPERATIONS = (  # label, ours, baseline for s3/sftp, baseline for file://
    ("first push", "push", "push_restic", "push_cp"),
    ("unchanged push", "unchanged_push", None, None),
    ("pull + restore", "restore", "restore_restic", "restore_cp"),
)
UNCHANGED_PUSH_TARGET = 0.05
COLUMNS = ("measure", "s", "baseline", "baseline s", "ratio", "target", "met?", "us/file", "peak MB")
Row = dict[str, Any]


def run_bench(name: str, options: list[str], workdir: Path) -> tuple[dict[str, Any] | None, str]:
    """Run bench_<name>.py with --json; its figures (even after a partial failure), and why it failed."""
    out, log = workdir / f"{name}.json", workdir / f"{name}.stderr"
    print(f"== bench_{name}.py {' '.join(options)}", file=sys.stderr, flush=True)
    started = time.perf_counter()
    with log.open("w") as err:
        argv = [sys.executable, str(HERE / f"bench_{name}.py"), *options, "--json", str(out)]
        done = subprocess.run(argv, stdout=sys.stderr, stderr=err)
    text = log.read_text()
    sys.stderr.write(text)
    print(f"== bench_{name}.py: exit {done.returncode} after {time.perf_counter() - started:.0f} s", file=sys.stderr)
    tail = [line for line in text.splitlines() if line.strip()][-1:]
    reason = f"bench_{name}.py exited {done.returncode}: {tail[0][:160] if tail else 'no message'}"
    figures = json.loads(out.read_text()) if out.is_file() else None
    return figures, "" if done.returncode == 0 else reason


def row(measure: str, seconds: float | None = None, **cells: Any) -> Row:
    return {"measure": measure, "s": seconds, **cells}


def site_label(name: str, figures: dict[str, Any]) -> str:
    if "files" not in figures:
        return name
    return f"{name} ({figures['files']:,} files, {figures['bytes'] / 2**20:,.0f} MiB)"


def sandbox_rows(figures: dict[str, Any]) -> list[Row]:
    rows = [row("sandbox create: default site (drills, tests)", figures["default_sandbox_ms"] / 1e3)]
    for name, site in figures["sites"].items():
        label = site_label(name, site)
        per_file = site["generate_s"] / site["files"] * 1e6
        rows.append(row(f"sandbox create: {label}", site["generate_s"], baseline="cp -a + sync", us_per_file=per_file))
        rows[-1].update(baseline_s=site["cp_a_sync_s"], ratio=site["generate_vs_cp"])
        rows.append(row(f"data check: {label}", site["data_health_check_s"]))
    return rows


def backup_rows(figures: dict[str, Any]) -> list[Row]:
    rows = []
    for name, site in figures["sites"].items():
        label = site_label(name, site)
        if "error" in site:
            rows += [row(f"{what}: {label}", note=f"n/a: {site['error']}") for _, what, *_ in MEASURES]
            continue
        for key, what in BASELINES.items():
            base = site["baselines"][key]
            rows.append(row(f"{what} (baseline): {label}", base["seconds"], us_per_file=base["us_per_file"]))
        for key, what, *_ in MEASURES:
            op = site["operations"][key]
            rows.append(
                row(f"{what}: {label}", op["seconds"], baseline=BASELINES[op["baseline"]], baseline_s=op["baseline_s"])
            )
            rows[-1].update({k: op[k] for k in ("ratio", "target", "met", "us_per_file", "peak_mb")})
    return rows


def drill_rows(figures: dict[str, Any]) -> list[Row]:
    target = figures.get("target_s")
    rows = []
    injection = figures.get("from_injection_s", {})
    for scenario, seconds in figures["drill_s"].items():
        goal = target.get(scenario) if isinstance(target, dict) else target
        # The target is from the fault's injection to the record; the whole drill adds the sandbox and backup.
        measured = injection.get(scenario, seconds)
        rows.append(
            row(
                f"drill {scenario}: injection to record (default sandbox)",
                measured,
                target=goal,
                met=_met(measured, goal),
                note=f"{seconds:.1f} s with sandbox, trading and backup",
            )
        )
    rows.append(row("drill suite, one after the other", figures["suite_sequential_s"]))
    share = figures.get("kernel_share_of_suite")
    rows.append(row("kernel start (python3)", figures["kernel_start_s"], note=f"{share:.0%} of the suite"))
    rows.append(row("config + data drills in parallel", figures["config_plus_data_parallel_s"]))
    rows[-1].update(baseline="one after the other", baseline_s=figures["config_plus_data_sequential_s"])
    rows[-1]["ratio"] = figures["config_plus_data_parallel_s"] / figures["config_plus_data_sequential_s"]
    return rows


def replica_rows(figures: dict[str, Any]) -> list[Row]:
    rows = []
    for tag in ("large", "small"):
        site = figures.get(tag)
        if site is None:
            continue
        label = f"{tag} ({site['files']:,} files, {site['bytes'] / 2**20:,.0f} MiB)"
        for store, ops in site["stores"].items():
            for what, ours_key, restic_key, cp_key in REPLICA_OPERATIONS:
                ours = ops[ours_key]
                measure = f"replica {what}, {store}: {label}"
                cells: Row = {"peak_mb": ours.get("max_rss_mb"), "us_per_file": ours["seconds"] / site["files"] * 1e6}
                if ours_key == "unchanged_push":
                    first = ops["push"]["seconds"]
                    cells.update(baseline="first push", baseline_s=first, ratio=ours["seconds"] / first)
                    cells.update(target=UNCHANGED_PUSH_TARGET, met=_met(ours["seconds"] / first, UNCHANGED_PUSH_TARGET))
                else:
                    key = cp_key if store == "file" else restic_key
                    base = ops.get(key) or {"error": "not measured"}
                    cells["baseline"] = "cp -a + sync" if store == "file" else "restic"
                    if "error" in base:
                        cells["note"] = f"baseline n/a: {base['error']}"
                    else:
                        cells.update(baseline_s=base["seconds"], ratio=ours["seconds"] / base["seconds"])
                rows.append(row(measure, ours["seconds"], **cells))
    return rows


def missing_rows(name: str, reason: str, sites: list[str]) -> list[Row]:
    """The rows a benchmark would have made, each saying why it has no figure."""
    measures = {
        "sandbox": ["sandbox create: default site", *(f"sandbox create: {s}" for s in sites)],
        "backup": [f"{what}: {s}" for s in sites for _, what, *_ in MEASURES],
        "drill": [f"drill {scenario}: injection to record (default sandbox)" for scenario in DRILL_SCENARIOS],
        "replica": ["replica push, unchanged push, pull + restore"],
    }[name]
    return [row(measure, note=f"n/a: {reason}") for measure in measures]


def _met(value: float | None, target: float | None) -> bool | None:
    return None if value is None or target is None else value <= target


def markdown(rows: list[Row]) -> str:
    def cell(value: Any, digits: int | None = 2) -> str:
        if value is None:
            return ""
        if isinstance(value, bool):
            return "yes" if value else "NO"
        return f"{value:,.{digits}f}" if isinstance(value, int | float) and digits is not None else str(value)

    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + " --- |" * len(COLUMNS)]
    for r in rows:
        seconds = cell(r.get("s"), 3 if (r.get("s") or 1) < 0.1 else 2)
        cells = [r["measure"], seconds or r.get("note", ""), r.get("baseline", ""), cell(r.get("baseline_s"))]
        cells += [cell(r.get("ratio"), 3), cell(r.get("target"), None), cell(r.get("met"))]
        cells += [cell(r.get("us_per_file"), 0), cell(r.get("peak_mb"), 0)]
        if seconds and r.get("note"):
            cells[0] += f" ({r['note']})"
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replica", action="store_true", help="also run bench_replica.py (5-10 minutes)")
    parser.add_argument("--sites", default=",".join(SITES), help=f"any of {','.join(SITES)} (default all)")
    parser.add_argument("--rounds", type=int, default=1, help="bench_backup's rounds (median; default 1)")
    parser.add_argument("--only", default="sandbox,backup,drill", help=f"any of {','.join(BENCHES)}")
    parser.add_argument("--json", type=Path, help="also write every benchmark's figures and the rows here")
    args = parser.parse_args()
    chosen = args.only.split(",") + (["replica"] if args.replica and "replica" not in args.only else [])
    sites = args.sites.split(",")
    if not set(chosen) <= set(BENCHES) or not set(sites) <= set(SITES):
        parser.error(f"--only takes {','.join(BENCHES)}; --sites {','.join(SITES)}")
    options = {
        "sandbox": ["--sites", args.sites],
        "backup": ["--sites", args.sites, "--rounds", str(args.rounds)],
        "drill": [],
        "replica": [],
    }
    builders: dict[str, Callable[[dict[str, Any]], list[Row]]] = {
        "sandbox": sandbox_rows,
        "backup": backup_rows,
        "drill": drill_rows,
        "replica": replica_rows,
    }
    rows: list[Row] = []
    everything: dict[str, Any] = {}
    growth = None
    with tempfile.TemporaryDirectory(prefix="bench-") as workdir:
        for name in BENCHES:
            if name not in chosen:
                continue
            figures, failed = run_bench(name, options[name], Path(workdir))
            everything[name] = figures if figures is not None else {"error": failed}
            if figures is None:
                rows += missing_rows(name, failed, sites)
                continue
            try:
                rows += builders[name](figures)
            except (KeyError, TypeError, ZeroDivisionError) as exc:
                rows += missing_rows(name, f"{failed or 'its figures'} lack {exc!r}", sites)
            if name == "backup":
                growth = figures.get("growth_2k_to_20k")
    print(markdown(rows))
    if growth:
        times = ", ".join(f"{k} {v}x" for k, v in growth.items() if k != "files_x")
        print(f"\nFrom the 2k to the 20k site ({growth['files_x']}x the files), times grow: {times}.")
    if args.json:
        args.json.write_text(json.dumps({"figures": everything, "rows": rows}, indent=2) + "\n")
    return 0 if all("error" not in f for f in everything.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
