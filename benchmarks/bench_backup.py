"""Benchmark: full backup, unchanged incremental, verify --read-data and verified restore on sites of
35, 2,000 and 20,000 files, against coreutils on the same files in the same run.

Sites (``benchmarks/sites.py``): ``1g`` (1 GB, 35 files), ``2k`` (~2,000 files, 300 MiB), ``20k``
(~20,000 files, 170 MiB), each made by ``recovery sandbox create`` and aged past the racy window.
Every round, on the same files (the previous round's backups removed first, so the full backup is full):
- baselines, timed from outside: ``cp -a`` + ``sync`` of config/ state/ data/ recovery.toml (for backup
  and restore); ``cp -al`` + ``sync``, a hard-link copy (the floor of an unchanged incremental, which
  hard-links every file; a reference row); ``sha256sum`` of the same files (for verify);
- operations, each in its own process, timed inside it, peak memory its VmHWM: full backup
  (``create_backup(push=False)``: pushing is bench_replica's business), incremental of the unchanged
  site, ``verify --read-data`` of the full backup, and, after config/ state/ data/ are deleted, the
  verified restore of the full backup (``restore_backup``).

Usage: python benchmarks/bench_backup.py [--sites 1g,2k,20k] [--rounds N] [--json FILE] [--profile DIR]
       [--workdir DIR]
--rounds N reports the median of N rounds (peak memory: the highest). --profile DIR writes a cProfile
of each library operation (DIR/<site>-<operation>.prof; slower, for finding where time goes).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sites import CATEGORIES, SITES, age_past_racy_window, backed_up_files, create_site, timed_shell, wipe

# One library operation in a fresh interpreter; with a non-empty 4th argument it is profiled into that file.
OPERATION = r"""
import cProfile, json, sys, time
from recovery_lib.manager import RecoveryManager
site, op, backup_id, profile = sys.argv[1:5]
manager = RecoveryManager(site=site)
out = {}
def run():
    if op == "backup":
        out["backup_id"] = manager.create_backup(description="bench", push=False)
    elif op == "verify":
        report = manager.verify_backup(backup_id, read_data=True)
        assert report.ok, report.summary()
    elif op == "restore":
        ok = manager.restore_backup(backup_id, restore_config=True, restore_state=True, restore_data=True)
        assert ok, manager.last_error
profiler = cProfile.Profile() if profile else None
started = time.perf_counter()
profiler.runcall(run) if profiler else run()
out["seconds"] = time.perf_counter() - started
# VmHWM is this process's own peak since exec; ru_maxrss would carry the parent's peak over.
out["peak_mb"] = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")) / 1024
if "backup_id" in out:
    meta = manager.get_backup(out["backup_id"])
    out.update(files_count=meta.files_count, files_linked=meta.files_linked, bytes_new=meta.bytes_new)
if profiler:
    profiler.dump_stats(profile)
print(json.dumps(out))
"""

# measure key, label, operation, baseline, target ratio (None: a reference row)
MEASURES = (
    ("full_backup", "full backup", "backup", "cp_a_sync", 1.2),
    ("unchanged_incremental", "unchanged incremental", "backup", "cp_a_sync", 0.1),
    ("verify_read_data", "verify --read-data", "verify", "sha256sum", 0.25),
    ("restore_verified", "restore (verified)", "restore", "cp_a_sync", 1.05),
)
BASELINES = {"cp_a_sync": "cp -a + sync", "cp_al_sync": "cp -al + sync", "sha256sum": "sha256sum"}


def library(site: Path, op: str, backup_id: str, profile: Path | None) -> dict[str, Any]:
    """One library operation in its own process: its own timing and peak memory."""
    argv = [sys.executable, "-c", OPERATION, str(site), op, backup_id, str(profile or "")]
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{op} on {site} failed: {done.stderr.strip()[-1500:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def one_round(site: Path, workdir: Path, profile: Path | None, tag: str) -> dict[str, dict[str, Any]]:
    """Baselines and operations once, on the site as it is; the site is whole again at the end."""
    files = backed_up_files(site)
    listing = workdir / "files.list"
    listing.write_bytes(b"\0".join(name.encode() for name in files) + b"\0")
    copy, tops = workdir / "copy", " ".join([*CATEGORIES, "recovery.toml"])

    def copied(flags: str) -> dict[str, float]:
        wipe(copy)
        copy.mkdir()
        subprocess.run(["sync"], check=True)
        seconds = timed_shell(f"cp {flags} {tops} '{copy}' && sync", cwd=site)
        wipe(copy)
        return {"seconds": seconds}

    found: dict[str, dict[str, Any]] = {"cp_a_sync": copied("-a")}
    found["sha256sum"] = {"seconds": timed_shell(f"xargs -0 -a '{listing}' sha256sum > /dev/null", cwd=site)}

    def profiled(name: str) -> Path | None:
        return profile / f"{tag}-{name}.prof" if profile else None

    found["full_backup"] = library(site, "backup", "", profiled("full-backup"))
    full_id = found["full_backup"]["backup_id"]
    found["unchanged_incremental"] = library(site, "backup", "", profiled("incremental"))
    found["verify_read_data"] = library(site, "verify", full_id, profiled("verify"))
    for top in CATEGORIES:
        wipe(site / top)
    subprocess.run(["sync"], check=True)
    found["restore_verified"] = library(site, "restore", full_id, profiled("restore"))
    if backed_up_files(site) != files:
        raise RuntimeError(f"the restore of {site} did not bring back every file")
    # Last: linking (and unlinking) changes every file's ctime, which would make the backups above
    # read every file again as "modified just now".
    found["cp_al_sync"] = copied("-al")
    return found


def measure_site(name: str, workdir: Path, rounds: int, profile: Path | None) -> dict[str, Any]:
    """Create the site, run the rounds, and reduce them to medians, ratios and targets."""
    site = workdir / name
    figures: dict[str, Any] = {"about": SITES[name].about, "create_s": round(create_site(site, SITES[name]), 2)}
    files = backed_up_files(site)
    figures["files"] = len(files)
    figures["bytes"] = sum((site / f).stat().st_size for f in files)
    last_write = time.monotonic()
    runs = []
    for number in range(rounds):
        wipe(site / "backups")
        (site / "backups").mkdir()
        age_past_racy_window(last_write)  # the previous round's restore and cp -al touched every file
        runs.append(one_round(site, workdir, profile, name if rounds == 1 else f"{name}-r{number + 1}"))
        last_write = time.monotonic()
    per_file = 1e6 / len(files)
    figures["baselines"] = {}
    for key in BASELINES:
        seconds = statistics.median(r[key]["seconds"] for r in runs)
        figures["baselines"][key] = {"seconds": round(seconds, 3), "us_per_file": round(seconds * per_file, 1)}
    figures["operations"] = {}
    for key, _label, _op, baseline, target in MEASURES:
        seconds = statistics.median(r[key]["seconds"] for r in runs)
        ratio = statistics.median(r[key]["seconds"] / r[baseline]["seconds"] for r in runs)
        figures["operations"][key] = {
            "seconds": round(seconds, 3),
            "baseline": baseline,
            "baseline_s": figures["baselines"][baseline]["seconds"],
            "ratio": round(ratio, 3),
            "target": target,
            "met": ratio <= target,
            "us_per_file": round(seconds * per_file, 1),
            "peak_mb": round(max(r[key]["peak_mb"] for r in runs), 1),
            "rounds_s": [round(r[key]["seconds"], 3) for r in runs],
        }
    incremental = runs[-1]["unchanged_incremental"]
    figures["operations"]["unchanged_incremental"]["files_linked"] = incremental["files_linked"]
    figures["operations"]["unchanged_incremental"]["files_count"] = incremental["files_count"]
    hard_link = figures["baselines"]["cp_al_sync"]["seconds"]
    figures["operations"]["unchanged_incremental"]["vs_cp_al_sync"] = round(
        figures["operations"]["unchanged_incremental"]["seconds"] / hard_link, 3
    )
    return figures


def growth(sites: dict[str, Any]) -> dict[str, Any]:
    """From the 2k site to the 20k one: how many times the files, and how many times each operation's time."""
    small, large = sites.get("2k", {}), sites.get("20k", {})
    if "operations" not in small or "operations" not in large:
        return {}
    found: dict[str, Any] = {"files_x": round(large["files"] / small["files"], 2)}
    for key in [*BASELINES, *(m[0] for m in MEASURES)]:
        ours = "baselines" if key in BASELINES else "operations"
        found[key] = round(large[ours][key]["seconds"] / small[ours][key]["seconds"], 2)
    return found


def table(sites: dict[str, Any]) -> str:
    """One row per site and measure; the baselines as reference rows."""
    head = f"{'site':<5}{'files':>7}{'MiB':>7}  {'measure':<23}{'s':>8}{'base s':>8}{'ratio':>8}{'target':>8}"
    lines = [f"{head}{'met':>5}{'us/file':>9}{'peak MB':>9}"]
    for name, site in sites.items():
        if "error" in site:
            lines.append(f"{name:<5}  n/a: {site['error']}")
            continue
        start = f"{name:<5}{site['files']:>7,}{site['bytes'] / 2**20:>7.0f}  "
        for key, label in BASELINES.items():
            base = site["baselines"][key]
            lines.append(f"{start}{label:<23}{base['seconds']:>8.2f}{'':>29}{base['us_per_file']:>9.0f}")
        for key, label, _op, _baseline, _target in MEASURES:
            row = site["operations"][key]
            met = "yes" if row["met"] else "NO"
            lines.append(
                f"{start}{label:<23}{row['seconds']:>8.2f}{row['baseline_s']:>8.2f}{row['ratio']:>8.3f}"
                f"{row['target']:>8}{met:>5}{row['us_per_file']:>9.0f}{row['peak_mb']:>9.0f}"
            )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sites", default=",".join(SITES), help=f"any of {','.join(SITES)} (default all)")
    parser.add_argument("--rounds", type=int, default=1, help="median of N rounds on the same files (default 1)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--profile", type=Path, help="cProfile each library operation into DIR/<site>-<op>.prof")
    parser.add_argument("--workdir", type=Path, help="where to build the sites (default: a temp dir, removed)")
    args = parser.parse_args()
    chosen = args.sites.split(",")
    if not set(chosen) <= set(SITES) or args.rounds < 1:
        parser.error(f"--sites takes {','.join(SITES)}; --rounds at least 1")
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="bench-backup-")).absolute()
    workdir.mkdir(parents=True, exist_ok=True)
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    figures: dict[str, Any] = {"rounds": args.rounds, "sites": {}}
    try:
        for name in chosen:
            try:
                figures["sites"][name] = measure_site(name, workdir, args.rounds, args.profile)
            except (RuntimeError, subprocess.CalledProcessError, OSError) as exc:
                figures["sites"][name] = {"about": SITES[name].about, "error": str(exc).splitlines()[-1][:300]}
            wipe(workdir / name)  # the next site gets the disk and the page cache to itself
        figures["growth_2k_to_20k"] = growth(figures["sites"])
    finally:
        if not args.workdir:
            wipe(workdir)
    print(table(figures["sites"]))
    if figures["growth_2k_to_20k"]:
        print("2k -> 20k, times longer:", json.dumps(figures["growth_2k_to_20k"]))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 1 if any("error" in site for site in figures["sites"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
