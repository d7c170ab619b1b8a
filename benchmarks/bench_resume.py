"""Benchmark: resuming a procedure from the step that failed, against running it again from the top.

On each site, Procedure B (data recovery) of a real sandbox with its ledger deleted: trading runs, a
backup is taken, the fault is injected, and B runs headless (papermill, in a kernel of its own) with
the approval of the remedy withheld, so it halts at the restore after stopping trading and taking the
pre-recovery backup. The halted site is copied (``cp -a``: the same files on the same disk); then, in
the same round:

- ``resume``: B with ``resume_from`` (what ``recovery resume`` runs) on the halted site: it replays
  assessment, choice (the chosen backup verified again, every byte), stop and pre-recovery backup, and
  executes from the restore;
- ``rerun``: B from the top on the copy, every approval given: what an engineer did before issue 17
  (another assessment, another fitness check, another pre-recovery backup);

and also ``halted``: the first, halted run. Both end recovered (checked; a round that does not is an
error). Figures are medians over ``--rounds``; ``ratio`` is resume / rerun (the target: under 1).

Usage: python benchmarks/bench_resume.py [--sites 2k,20k] [--rounds 1] [--json FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sites import SITES, age_past_racy_window, create_site

from recovery_lib.drills.injectors import inject
from recovery_lib.drills.kernels import execute_in, quiet_kernels, start_kernel
from recovery_lib.drills.runner import NOTEBOOK_DIR
from recovery_lib.manager import RecoveryManager
from recovery_lib.runbook.records import read_notebook
from recovery_lib.site.config import load_site
from recovery_lib.site.process import start_system, stop_system

NOTEBOOK = "B_data_recovery.ipynb"
EVERY = ["restore", "repair", "backup", "stop_system", "start_system"]


def run_b(site: Path, out: Path, approve: list[str], **more: Any) -> tuple[float, dict[str, Any]]:
    """B headless on ``site`` into ``out``: (seconds, its outcome record); a notebook that raised is fine
    (a halted run's outcome cell raises), a kernel that died is not."""
    import papermill

    started = time.perf_counter()
    kernel = start_kernel(site)
    try:
        parameters = {"site": str(site), "interactive": False, "approve": approve, **more}
        # A halted run's outcome cell raises: whether it recovered is read from the record below.
        with quiet_kernels(), contextlib.suppress(papermill.PapermillExecutionError):
            execute_in(kernel, NOTEBOOK_DIR / NOTEBOOK, out, parameters)
    finally:
        kernel.stop()
    return time.perf_counter() - started, read_notebook(out).get("outcome") or {}


def one_round(name: str, workdir: Path) -> dict[str, float]:
    """One round on site ``name``: the halted run, then the resume and the rerun on identical copies."""
    root = workdir / "site"
    create_site(root, SITES[name])
    age_past_racy_window(time.monotonic())
    site = load_site(root)
    assert start_system(site, timeout_s=30).ok, "the sandbox's trading process did not start"
    RecoveryManager(site=site).create_backup(description="nightly", tags=["daily"])
    time.sleep(1.0)  # some trades after the restore point: the ones the exchange gives back
    inject(site, "data", variant="files_deleted", seed=4)
    halted_s, outcome = run_b(root, workdir / "01_halted.ipynb", [a for a in EVERY if a not in ("restore", "repair")])
    assert not outcome.get("success"), "B recovered although the remedy was not approved"
    stop_system(site, timeout_s=30)
    copy = workdir / "copy"
    subprocess.run(["cp", "-a", str(root), str(copy)], check=True)
    subprocess.run(["sync"], check=True)
    # The same way as the rerun (papermill, a kernel of its own), with resume_from: what `recovery resume`
    # runs, without its process start and HTML export (timed apart as cli_resume_s on a second copy).
    halted_run = read_notebook(workdir / "01_halted.ipynb").get("run")["run_id"]
    resume_s, outcome = run_b(root, workdir / "02_resumed.ipynb", EVERY, resume_from=halted_run)
    assert outcome.get("success"), "the resumed B did not recover"
    rerun_s, outcome = run_b(copy, workdir / "02_rerun.ipynb", EVERY)
    assert outcome.get("success"), "B from the top did not recover"
    for each in (root, copy):
        stop_system(load_site(each), timeout_s=30)
    return {"halted_s": halted_s, "resume_s": resume_s, "rerun_s": rerun_s}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sites", default="2k,20k", help="comma-separated sites of sites.py (default 2k,20k)")
    parser.add_argument("--rounds", type=int, default=1, help="rounds per site; medians are reported")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    figures: dict[str, Any] = {}
    for name in args.sites.split(","):
        rounds = []
        for number in range(args.rounds):
            workdir = Path(tempfile.mkdtemp(prefix=f"bench-resume-{name}-"))
            try:
                rounds.append(one_round(name, workdir))
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
            print(f"{name} round {number + 1}: {rounds[-1]}", file=sys.stderr)
        median = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
        median["ratio"] = median["resume_s"] / median["rerun_s"]
        figures[name] = median
    print("| site | halted run (s) | resume (s) | rerun from the top (s) | resume / rerun |")
    print("| --- | --- | --- | --- | --- |")
    for name, f in figures.items():
        print(f"| {name} | {f['halted_s']:.1f} | {f['resume_s']:.1f} | {f['rerun_s']:.1f} | {f['ratio']:.2f} |")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
