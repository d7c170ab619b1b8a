"""Benchmark: backup, incremental backup, restore and verify against coreutils on one ~1 GB site.

Each operation runs in its own process (so its peak memory is its own) and is timed inside it;
the baselines run on the same files in the same run:
- a durable copy: ``cp -a SITE COPY && sync``;
- ``sha256sum`` over the same files (one process) for ``verify --read-data``.

Usage: python benchmarks/bench_backup.py [--size 1G] [--trades 2000000] [--workdir DIR] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OPERATION = r"""
import json, resource, sys, time
from recovery_lib.manager import RecoveryManager
site, op = sys.argv[1], sys.argv[2]
manager = RecoveryManager(site=site)
started = time.perf_counter()
if op == "backup":
    result = manager.create_backup(description="bench")
elif op == "restore":
    backup_id = manager.list_backups(tags=["bench-full"])[0].backup_id
    ok = manager.restore_backup(backup_id, restore_config=True, restore_state=True, restore_data=True)
    assert ok, "restore failed"
elif op == "verify":
    backup_id = manager.list_backups(tags=["bench-full"])[0].backup_id
    assert manager.verify_backup(backup_id, read_data=True).ok
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run_operation(site: Path, operation: str) -> dict[str, float]:
    done = subprocess.run([sys.executable, "-c", OPERATION, str(site), operation], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{operation} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def timed_shell(command: str) -> float:
    started = time.perf_counter()
    subprocess.run(command, shell=True, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def drop_copy(path: Path) -> None:
    if not path.exists():
        return
    subprocess.run(["chmod", "-R", "u+w", str(path)], check=True)
    shutil.rmtree(path, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="1G")
    parser.add_argument("--trades", type=int, default=2_000_000)
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="bench-backup-"))
    site, copy = workdir / "site", workdir / "copy"
    try:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "recovery_lib.cli.main",
                "sandbox",
                "create",
                str(site),
                "--force",
                "--quiet",
                "--trades",
                str(args.trades),
                "--size",
                args.size,
            ],
            check=True,
        )
        subprocess.run(["sync"], check=True)
        time.sleep(4)  # let the files age past the "modified just now" window, as real files are
        files = [
            str(p.relative_to(site))
            for p in sorted(site.rglob("*"))
            if p.is_file() and p.relative_to(site).parts[0] in ("config", "state", "data")
        ]
        size = sum((site / f).stat().st_size for f in files)

        drop_copy(copy)
        cp_s = timed_shell(f"cp -a '{site}' '{copy}' && sync")
        drop_copy(copy)
        subprocess.run(["sync"], check=True)
        cp_syncfs_s = timed_shell(f"cp -a '{site}' '{copy}' && sync -f '{copy}'")
        drop_copy(copy)
        subprocess.run(["sync"], check=True)
        cp_plain_s = timed_shell(f"cp -a '{site}' '{copy}'")
        drop_copy(copy)
        subprocess.run(["sync"], check=True)

        full = run_operation(site, "backup")
        # A sync right after the backup must find nothing left to write if the backup's own sync worked.
        full["sync_after_s"] = timed_shell("sync")
        # tag the full backup so restore/verify find it after the pre-recovery backup exists
        incremental = run_operation(site, "backup")
        listing = json.loads(
            subprocess.run(
                [sys.executable, "-m", "recovery_lib.cli.main", "backup", "list", "--json", "--site", str(site)],
                capture_output=True,
                text=True,
            ).stdout
        )
        newest = listing["backups"][0]["backup_id"]
        meta_path = site / "backups" / newest / "metadata.json"
        from recovery_lib.backup.model import read_metadata

        metadata = read_metadata(meta_path.parent)
        metadata.tags = ["bench-full"]
        os.chmod(meta_path, 0o644)
        meta_path.write_bytes(metadata.to_json())

        sums_s = timed_shell(f"cd '{site}' && sha256sum {' '.join(files)} > /dev/null")
        verify = run_operation(site, "verify")

        for category in ("config", "state", "data"):
            shutil.rmtree(site / category)
        subprocess.run(["sync"], check=True)
        restore = run_operation(site, "restore")

        figures = {
            "site_bytes": size,
            "files": len(files),
            "cp_a_sync_s": round(cp_s, 3),
            "cp_a_s": round(cp_plain_s, 3),
            "cp_a_syncfs_s": round(cp_syncfs_s, 3),
            "sha256sum_s": round(sums_s, 3),
            "full_backup_s": round(full["seconds"], 3),
            "full_backup_vs_cp": round(full["seconds"] / cp_s, 3),
            "sync_after_full_backup_s": round(full["sync_after_s"], 3),
            "incremental_backup_s": round(incremental["seconds"], 3),
            "incremental_vs_cp": round(incremental["seconds"] / cp_s, 3),
            "restore_s": round(restore["seconds"], 3),
            "restore_vs_cp": round(restore["seconds"] / cp_s, 3),
            "verify_read_data_s": round(verify["seconds"], 3),
            "verify_vs_sha256sum": round(verify["seconds"] / sums_s, 3),
            "peak_rss_mb": {
                op: round(r["max_rss_mb"], 1)
                for op, r in (("backup", full), ("incremental", incremental), ("restore", restore), ("verify", verify))
            },
        }
        targets = {
            "full_backup_vs_cp": 1.2,
            "incremental_vs_cp": 0.1,
            "restore_vs_cp": 1.05,
            "verify_vs_sha256sum": 0.25,
        }
        print(f"{'measure':<24}{'seconds':>10}{'ratio':>10}{'target':>10}")
        print(f"{'cp -a + sync':<24}{cp_s:>10.2f}")
        print(f"{'cp -a + sync -f':<24}{cp_syncfs_s:>10.2f}   (syncfs of the copy's filesystem only)")
        print(f"{'sha256sum':<24}{sums_s:>10.2f}")
        rows = (
            ("full backup", "full_backup_s", "full_backup_vs_cp"),
            ("incremental backup", "incremental_backup_s", "incremental_vs_cp"),
            ("restore (verified)", "restore_s", "restore_vs_cp"),
            ("verify --read-data", "verify_read_data_s", "verify_vs_sha256sum"),
        )
        for name, seconds_key, ratio_key in rows:
            print(f"{name:<24}{figures[seconds_key]:>10.2f}{figures[ratio_key]:>10.3f}{targets[ratio_key]:>10}")
        print("peak RSS (MB):", figures["peak_rss_mb"])
        print(json.dumps(figures))
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2) + "\n")
    finally:
        if not args.workdir:
            drop_copy(workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
