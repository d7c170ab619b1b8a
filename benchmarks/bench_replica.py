"""Benchmark: replica push, unchanged push and pull + restore against restic and rclone, in one run.

Two sites, the same local servers, the same files:
- ``large``: a ~300 MB sandbox (a few big files: trades.csv and 30 reports);
- ``small``: a small sandbox plus ``--small-files`` files of 1-8 KB under ``state/`` (2,000 by default, so
  the run stays under 10 minutes; the per-file times are printed);
- ``double`` (peak memory only): a sandbox twice the size of ``large``, pushed to and restored from S3.
Stores: moto's S3 server and Debian's OpenSSH (sftp) on 127.0.0.1, started here with the launchers of
``tests/replica/servers.py``, and a ``file://`` directory. s3 and sftp replicas are age-encrypted, as
recovery.toml requires.

Measured, each operation in its own process and timed inside it (the baselines from outside):
1. first push of a full local backup  vs ``restic copy`` from a local restic repo of the same files to a
   restic repo on the same server, and vs ``rclone copy`` of the site's files; file:// vs ``cp -a`` + ``sync``;
2. push after an unchanged incremental backup, as a ratio to the first push (target <= 0.05);
   restic's second ``copy`` and rclone's second ``copy`` of the unchanged files alongside;
3. pull + restore onto a brand-new site directory (``RecoveryManager.restore_from_replica``)
   vs ``restic restore`` (fresh cache, as on a new host) + ``sync``, and ``rclone copy`` back + ``sync``;
4. peak memory (VmHWM) of push and pull + restore on the large, small-file and double sites.
A baseline that cannot run is reported with the reason in place of its figure.

Usage: python benchmarks/bench_replica.py [--size 300M] [--trades 600000] [--small-files 2000]
       [--sites large,small,double] [--stores file,s3,sftp] [--profile DIR] [--workdir DIR] [--json FILE]
--profile runs each library operation under cProfile (slower: use it to find where time goes, not for
the figures).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pyrage import x25519

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "replica"))
from servers import FAKE_CREDENTIALS, running_moto, running_sshd  # noqa: E402 - the test servers' launchers

from recovery_lib.sandbox import SandboxSpec, create_sandbox, parse_size  # noqa: E402

RESTIC, RCLONE, GNU_TIME = shutil.which("restic"), shutil.which("rclone"), shutil.which("time", path="/usr/bin:/bin")
CATEGORIES = ("config", "state", "data")
STORES = ("file", "s3", "sftp")

# One library operation in a fresh interpreter; with a non-empty 5th argument it is profiled into that file.
OPERATION = r"""
import cProfile, json, resource, sys, time
from recovery_lib.manager import RecoveryManager
site, op, replica, identity, profile = sys.argv[1:6]
manager = RecoveryManager(site=site)
out = {}
def run():
    if op == "backup":
        out["backup_id"] = manager.create_backup(description="bench")
    elif op == "push":
        report = manager.push_to_replica(replica, "latest")
        assert report.ok and report.pushed, report.summary()
        out.update(objects_uploaded=report.objects_uploaded, bytes_uploaded=report.bytes_uploaded,
                   objects_reused=report.objects_reused)
    elif op == "restore":
        ok = manager.restore_from_replica(replica, "latest", identity=identity or None)
        assert ok, manager.last_error
profiler = cProfile.Profile() if profile else None
started = time.perf_counter()
if profiler:
    profiler.runcall(run)
else:
    run()
out["seconds"] = time.perf_counter() - started
# VmHWM: this process's own peak since exec. ru_maxrss would carry the parent's peak over the fork
# and exec (the parent hosts moto, which holds every stored object in memory).
out["max_rss_mb"] = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")) / 1024
out["ru_maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
if profiler:
    profiler.dump_stats(profile)
print(json.dumps(out))
"""


class Bench:
    """The run's servers, keys, sites and the figures gathered so far."""

    def __init__(self, workdir: Path, s3: Any, ssh: Any, stores: list[str], profile: Path | None) -> None:
        self.workdir, self.s3, self.ssh, self.stores, self.profile = workdir, s3, ssh, stores, profile
        key = x25519.Identity.generate()
        self.identity = workdir / "age-identity.txt"  # off every site, as on a real night
        self.identity.write_text(f"{key}\n")
        self.recipient = str(key.to_public())
        (workdir / "restic-password").write_text("bench\n")
        self.env = {**os.environ, "RESTIC_PASSWORD_FILE": str(workdir / "restic-password")}
        # rclone's S3 client cannot load a custom CA bundle (LoadCustomCABundleError) and the local moto
        # server is plain http: the machine's AWS_CA_BUNDLE is not the baselines' business.
        self.env.pop("AWS_CA_BUNDLE", None)
        self.env["RCLONE_CONFIG"] = str(workdir / "rclone.conf")  # empty: every remote is given on the line
        (workdir / "rclone.conf").write_text("")

    # --- running things -------------------------------------------------------------------------

    def library(self, site: Path, op: str, replica: str = "", label: str = "") -> dict[str, Any]:
        """One library operation in its own process; its own timing and peak memory."""
        profile = str(self.profile / f"{label or op}.prof") if self.profile and label else ""
        argv = [sys.executable, "-c", OPERATION, str(site), op, replica, str(self.identity), profile]
        done = subprocess.run(argv, capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"{op} {replica} on {site} failed:\n{done.stderr[-3000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])

    def tool(self, argv: list[str | None], cwd: Path | None = None, then_sync: bool = False) -> dict[str, Any]:
        """A baseline command, timed from outside; its peak memory from GNU time (a small process between
        us and the tool, so our own peak does not leak into the figure). On failure: the reason."""
        if argv[0] is None:
            return {"error": "not installed (apt-get install restic rclone)"}
        with tempfile.NamedTemporaryFile() as err, tempfile.NamedTemporaryFile(mode="r") as peak:
            measured = [GNU_TIME, "-f", "%M", "-o", peak.name, *argv] if GNU_TIME else argv
            started = time.perf_counter()
            done = subprocess.run(measured, cwd=cwd, env=self.env, stdout=subprocess.DEVNULL, stderr=err)
            if then_sync and not done.returncode:
                subprocess.run(["sync"], check=True)
            seconds = time.perf_counter() - started
            if done.returncode:
                err.seek(0)
                tail = err.read().decode(errors="replace").strip().splitlines()[-3:]
                return {"error": f"{Path(str(argv[0])).name} exited {done.returncode}: {' | '.join(tail)}"}
            kb = peak.read().strip().splitlines()[-1:] if GNU_TIME else []
        return {"seconds": seconds, "max_rss_mb": int(kb[0]) / 1024 if kb else None}

    def shell(self, command: str) -> dict[str, Any]:
        started = time.perf_counter()
        subprocess.run(command, shell=True, check=True, stdout=subprocess.DEVNULL)
        return {"seconds": time.perf_counter() - started}

    # --- stores ---------------------------------------------------------------------------------

    def configure(self, site: Path, tag: str) -> dict[str, str]:
        """Point the site's recovery.toml at one replica per store (manual push); where each one lives."""
        bucket = self.s3.create_bucket()
        sftp_parent = self.workdir / f"sftp-{tag}"
        sftp_parent.mkdir()
        where = {
            "file": str(self.workdir / f"file-{tag}"),
            "s3": f"{bucket}/prod",
            "sftp": str(sftp_parent / "peak-trade"),
            "bucket": bucket,
            "sftp_parent": str(sftp_parent),
        }
        ssh = self.ssh
        tables = [
            f'name = "file"\nurl = "file://{where["file"]}"',
            f'name = "s3"\nurl = "s3://{bucket}/prod"\nendpoint_url = "{self.s3.endpoint_url}"\nregion = "us-east-1"',
            f'name = "sftp"\nurl = "sftp://{ssh.user}@127.0.0.1:{ssh.port}{where["sftp"]}"\n'
            f'identity_file = "{ssh.identity_file}"\nknown_hosts = "{ssh.known_hosts}"',
        ]
        toml = (site / "recovery.toml").read_text().split("[[replicas]]")[0]
        for table in tables:
            sealed = "" if table.startswith('name = "file"') else f'\nage_recipients = ["{self.recipient}"]'
            toml += f'\n[[replicas]]\n{table}\npush = "manual"{sealed}\n'
        (site / "recovery.toml").write_text(toml)
        return where

    def restic_repo(self, store: str, where: dict[str, str], name: str) -> list[str]:
        """restic's flags for a repository called ``name`` on ``store``."""
        if store == "s3":
            return ["-r", f"s3:{self.s3.endpoint_url}/{where['bucket']}/{name}"]
        ssh = self.ssh
        command = (
            f"ssh -i {ssh.identity_file} -p {ssh.port} -o UserKnownHostsFile={ssh.known_hosts} "
            f"-o StrictHostKeyChecking=yes -o BatchMode=yes -o IdentitiesOnly=yes {ssh.user}@127.0.0.1 -s sftp"
        )
        return ["-r", f"sftp:{ssh.user}@127.0.0.1:{where['sftp_parent']}/{name}", "-o", f"sftp.command={command}"]

    def rclone_remote(self, store: str, where: dict[str, str]) -> list[str]:
        """rclone's on-the-fly remote (``:s3:`` / ``:sftp:``) for the site's copy on ``store``."""
        if store == "s3":
            return [
                f":s3:{where['bucket']}/rclone",
                "--s3-provider=Other",
                f"--s3-endpoint={self.s3.endpoint_url}",
                "--s3-access-key-id=testing",
                "--s3-secret-access-key=testing",
                "--s3-region=us-east-1",
            ]
        ssh = self.ssh
        return [
            f":sftp:{where['sftp_parent']}/rclone",
            "--sftp-host=127.0.0.1",
            f"--sftp-port={ssh.port}",
            f"--sftp-user={ssh.user}",
            f"--sftp-key-file={ssh.identity_file}",
            f"--sftp-known-hosts-file={ssh.known_hosts}",
            "--sftp-disable-hashcheck",  # internal-sftp runs no md5sum; rclone would probe for it
        ]

    def stored_bytes(self, store: str, where: dict[str, str], prefix: str) -> int:
        """What a tool left on a store under ``prefix`` (replica: ``prod``, restic repo, rclone copy)."""
        if store == "s3":
            pages = self.s3.client().get_paginator("list_objects_v2").paginate(Bucket=where["bucket"], Prefix=prefix)
            return sum(o["Size"] for page in pages for o in page.get("Contents", []))
        root = Path(where["file"] if store == "file" else where["sftp_parent"]) / prefix
        return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


# --- sites ------------------------------------------------------------------------------------


def add_small_files(site: Path, count: int, seed: int = 14) -> int:
    """``count`` files of 1-8 KB under state/bench-small/NNN/ (200 a folder); their total size."""
    rng = random.Random(seed)
    total = 0
    for n in range(count):
        folder = site / "state" / "bench-small" / f"{n // 200:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        data = rng.randbytes(rng.randint(1024, 8192))
        (folder / f"order-{n:06d}.bin").write_bytes(data)
        total += len(data)
    return total


def site_files(root: Path) -> dict[str, int]:
    """Relative path -> size of every file under config/, state/ and data/ (what a backup holds)."""
    found = {}
    for top in CATEGORIES:
        for folder, _, files in os.walk(root / top):
            for name in files:
                path = Path(folder, name)
                found[str(path.relative_to(root))] = path.stat().st_size
    return found


def find_restored(target: Path) -> Path | None:
    """The directory holding config/, state/ and data/ inside a restic or rclone restore target."""
    for folder, dirs, _ in os.walk(target):
        if {"config", "state", "data"} <= set(dirs):
            return Path(folder)
    return None


def same_files(expected: dict[str, int], restored_root: Path | None) -> bool:
    return restored_root is not None and site_files(restored_root) == expected


def wipe(path: Path) -> None:
    if path.exists():
        subprocess.run(["chmod", "-R", "u+w", str(path)], check=True)
        shutil.rmtree(path)


def fresh_host(bench: Bench, site: Path, name: str) -> Path:
    """A brand-new site directory holding only the site's recovery.toml."""
    new = bench.workdir / name
    wipe(new)
    new.mkdir()
    shutil.copy(site / "recovery.toml", new / "recovery.toml")
    return new


# --- the measurements -------------------------------------------------------------------------


def measure_site(bench: Bench, site: Path, tag: str) -> dict[str, Any]:
    """Every measure on one site; figures keyed by store, then by operation and tool."""
    where = bench.configure(site, tag)
    expected = site_files(site)
    figures: dict[str, Any] = {"files": len(expected), "bytes": sum(expected.values())}
    figures["local_backup"] = bench.library(site, "backup")
    local_repo = bench.workdir / f"restic-local-{tag}"
    restic_local = [RESTIC, "-r", str(local_repo), "--cache-dir", str(bench.workdir / f"restic-cache-{tag}")]
    bench.tool([*restic_local, "init"])
    figures["restic_local_backup"] = bench.tool([*restic_local, "backup", "-q", *CATEGORIES], cwd=site)
    include = ["--include=/config/**", "--include=/state/**", "--include=/data/**"]
    results: dict[str, dict[str, Any]] = {store: {} for store in bench.stores}

    def restic_remote(store: str) -> list[str]:
        flags = bench.restic_repo(store, where, "restic")
        cache = ["--cache-dir", str(bench.workdir / f"restic-cache-{tag}-{store}")]
        return [RESTIC, *flags, *cache, "--from-repo", str(local_repo)]

    def restic_copy(store: str) -> dict[str, Any]:
        return bench.tool([*restic_remote(store), "--from-password-file", bench.env["RESTIC_PASSWORD_FILE"], "copy"])

    # 1. first push
    for store in bench.stores:
        row = results[store]
        row["push"] = bench.library(site, "push", store, label=f"{tag}-{store}-push")
        replica_prefix = {"s3": "prod", "sftp": "peak-trade", "file": ""}[store]
        row["push"]["stored_bytes"] = bench.stored_bytes(store, where, replica_prefix)
        if store == "file":
            copy = bench.workdir / f"cp-{tag}"
            copy.mkdir()
            row["push_cp"] = bench.shell(f"cd '{site}' && cp -a {' '.join(CATEGORIES)} '{copy}' && sync")
            wipe(copy)
            continue
        password = ["--from-password-file", bench.env["RESTIC_PASSWORD_FILE"]]
        init_flags = [*password, "init", "--copy-chunker-params"]
        restic_init = bench.tool([*restic_remote(store), *init_flags])
        row["push_restic"] = restic_copy(store) if "error" not in restic_init else restic_init
        row["push_restic"]["init_s"] = restic_init.get("seconds")
        if "error" not in row["push_restic"]:
            row["push_restic"]["stored_bytes"] = bench.stored_bytes(store, where, "restic")
        row["push_rclone"] = bench.tool([RCLONE, "copy", str(site), *bench.rclone_remote(store, where), *include])
        if "error" not in row["push_rclone"]:
            row["push_rclone"]["stored_bytes"] = bench.stored_bytes(store, where, "rclone")

    # 2. push after an unchanged incremental backup (restic: a second snapshot, copied)
    figures["local_incremental_backup"] = bench.library(site, "backup")
    figures["restic_local_incremental"] = bench.tool([*restic_local, "backup", "-q", *CATEGORIES], cwd=site)
    for store in bench.stores:
        row = results[store]
        row["unchanged_push"] = bench.library(site, "push", store, label=f"{tag}-{store}-unchanged")
        row["unchanged_push"]["ratio_to_first"] = row["unchanged_push"]["seconds"] / row["push"]["seconds"]
        if store != "file":
            row["unchanged_restic"] = restic_copy(store)
            row["unchanged_rclone"] = bench.tool(
                [RCLONE, "copy", str(site), *bench.rclone_remote(store, where), *include]
            )

    # 3. pull + restore onto a brand-new site directory
    for store in bench.stores:
        row = results[store]
        new = fresh_host(bench, site, f"newhost-{tag}-{store}")
        row["restore"] = bench.library(new, "restore", store, label=f"{tag}-{store}-restore")
        row["restore"]["same_files"] = site_files(new) == expected
        wipe(new)
        if store == "file":
            target = bench.workdir / f"cp-back-{tag}"
            target.mkdir()
            row["restore_cp"] = bench.shell(f"cd '{site}' && cp -a {' '.join(CATEGORIES)} '{target}' && sync")
            wipe(target)
            continue
        target = bench.workdir / f"restic-restore-{tag}-{store}"
        flags = bench.restic_repo(store, where, "restic")
        cache = ["--cache-dir", str(bench.workdir / f"restic-cache-newhost-{tag}-{store}")]  # a new host: no cache
        restore = [RESTIC, *flags, *cache, "restore", "latest", "--target", str(target)]
        row["restore_restic"] = bench.tool(restore, then_sync=True)
        if "error" not in row["restore_restic"]:
            row["restore_restic"]["same_files"] = same_files(expected, find_restored(target))
        wipe(target)
        target = bench.workdir / f"rclone-restore-{tag}-{store}"
        row["restore_rclone"] = bench.tool(
            [RCLONE, "copy", *bench.rclone_remote(store, where), str(target)], then_sync=True
        )
        if "error" not in row["restore_rclone"]:
            row["restore_rclone"]["same_files"] = same_files(expected, find_restored(target))
        wipe(target)
    figures["stores"] = results
    return figures


def measure_memory_only(bench: Bench, site: Path) -> dict[str, Any]:
    """The double site: push to S3 and restore from it, for peak memory against the large site."""
    bench.configure(site, "double")
    expected = site_files(site)
    figures: dict[str, Any] = {"files": len(expected), "bytes": sum(expected.values())}
    figures["local_backup"] = bench.library(site, "backup")
    figures["push_s3"] = bench.library(site, "push", "s3")
    new = fresh_host(bench, site, "newhost-double")
    figures["restore_s3"] = bench.library(new, "restore", "s3")
    figures["restore_s3"]["same_files"] = site_files(new) == expected
    wipe(new)
    return figures


# --- the report -------------------------------------------------------------------------------

OPERATIONS = (
    ("first push", "push", "push_restic", "push_rclone", "push_cp"),
    ("unchanged push", "unchanged_push", "unchanged_restic", "unchanged_rclone", None),
    ("pull + restore", "restore", "restore_restic", "restore_rclone", "restore_cp"),
)


def _seconds(figure: dict[str, Any] | None) -> str:
    if figure is None:
        return ""
    if "error" in figure:
        return "n/a (see JSON)"
    return f"{figure['seconds']:.2f} s"


def _ratio(ours: dict[str, Any], other: dict[str, Any] | None) -> str:
    if other is None or "error" in other:
        return ""
    return f"{ours['seconds'] / other['seconds']:.2f}x"


def _mb(value: float | None) -> str:
    return "" if value is None else f"{value:.0f}"


def markdown(figures: dict[str, Any]) -> str:
    """The tables for the closing note: seconds, ratios (recovery's time over the baseline's), peak memory."""
    sites = [tag for tag in ("large", "small") if tag in figures]
    lines = [
        "| site | store | operation | recovery | restic | rclone | cp -a + sync | ÷ restic | ÷ rclone | ÷ cp |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for tag in sites:
        site = figures[tag]
        label = f"{tag} ({site['bytes'] / 1e6:.0f} MB, {site['files']:,} files)"
        for store, row in site["stores"].items():
            for name, ours_key, restic_key, rclone_key, cp_key in OPERATIONS:
                ours = row[ours_key]
                restic, rclone = row.get(restic_key), row.get(rclone_key)
                cp = row.get(cp_key) if cp_key else None
                shown = _seconds(ours)
                if ours_key == "unchanged_push":
                    shown += f" ({ours['ratio_to_first']:.3f}x first)"
                cells = [label, store, name, shown, _seconds(restic), _seconds(rclone), _seconds(cp)]
                cells += [_ratio(ours, restic), _ratio(ours, rclone), _ratio(ours, cp)]
                lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "| peak RSS (MB) | store | recovery push | recovery pull + restore | restic copy | restic restore |"]
    lines += ["| --- | --- | --- | --- | --- | --- |"]
    for tag in sites:
        for store, row in figures[tag]["stores"].items():
            restic = [row.get(k, {}).get("max_rss_mb") for k in ("push_restic", "restore_restic")]
            cells = [tag, store, _mb(row["push"]["max_rss_mb"]), _mb(row["restore"]["max_rss_mb"]), *map(_mb, restic)]
            lines.append("| " + " | ".join(cells) + " |")
    if "double" in figures:
        double = figures["double"]
        cells = [f"double ({double['bytes'] / 1e6:.0f} MB)", "s3", _mb(double["push_s3"]["max_rss_mb"])]
        lines.append("| " + " | ".join([*cells, _mb(double["restore_s3"]["max_rss_mb"]), "", ""]) + " |")
    for tag in sites:
        stored = []
        for store, row in figures[tag]["stores"].items():
            tools = (("recovery", "push"), ("restic", "push_restic"), ("rclone", "push_rclone"))
            sizes = [(who, row.get(key, {}).get("stored_bytes")) for who, key in tools]
            named = [f"{who} {size / 1e6:.1f}" for who, size in sizes if size]
            stored.append(f"{store}: {', '.join(named)}")
        lines += ["", f"MB stored after the first push, {tag} site: " + "; ".join(stored)]
    if "small" in figures:
        small = figures["small"]
        per_file = [
            f"{store}: push {row['push']['seconds'] / small['files'] * 1e3:.1f} ms, "
            f"pull + restore {row['restore']['seconds'] / small['files'] * 1e3:.1f} ms"
            for store, row in small["stores"].items()
        ]
        lines += ["", "recovery's time per file on the small-file site: " + "; ".join(per_file)]
    return "\n".join(lines)


def failures(figures: dict[str, Any]) -> list[str]:
    """Restores that did not bring back every file, and baselines that could not run (with why)."""
    found = []
    for tag in ("large", "small"):
        for store, row in figures.get(tag, {}).get("stores", {}).items():
            for key, value in row.items():
                if "error" in value:
                    found.append(f"{tag} {store} {key}: {value['error']}")
                elif value.get("same_files") is False:
                    found.append(f"{tag} {store} {key}: the restored files differ from the site's")
    if figures.get("double", {}).get("restore_s3", {}).get("same_files") is False:
        found.append("double s3 restore_s3: the restored files differ from the site's")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="300M", help="the large site (default 300M)")
    parser.add_argument("--trades", type=int, default=600_000)
    parser.add_argument(
        "--small-files", type=int, default=2_000, help="files of 1-8 KB in the small-file site (default 2,000)"
    )
    parser.add_argument("--sites", default="large,small,double", help="any of large,small,double")
    parser.add_argument("--stores", default=",".join(STORES), help="any of file,s3,sftp")
    parser.add_argument(
        "--profile", type=Path, help="cProfile each library operation into DIR/<site>-<store>-<op>.prof"
    )
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    chosen, stores = args.sites.split(","), args.stores.split(",")
    if not set(chosen) <= {"large", "small", "double"} or not set(stores) <= set(STORES):
        parser.error("--sites takes large,small,double and --stores file,s3,sftp")
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="bench-replica-")).absolute()
    workdir.mkdir(parents=True, exist_ok=True)
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    # Only the fake credentials of the local moto server: never the machine's ~/.aws.
    os.environ.update(FAKE_CREDENTIALS)
    os.environ.update(AWS_CONFIG_FILE=str(workdir / "no-aws"), AWS_SHARED_CREDENTIALS_FILE=str(workdir / "no-aws"))
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
    started = time.perf_counter()
    size = parse_size(args.size)
    specs = {
        "large": SandboxSpec(trades=args.trades, size_bytes=size),
        "small": SandboxSpec(),
        "double": SandboxSpec(trades=2 * args.trades, size_bytes=2 * size),
    }
    figures: dict[str, Any] = {"restic": RESTIC, "rclone": RCLONE, "small_files_added": args.small_files}
    try:
        for tag in chosen:
            create_sandbox(workdir / tag, specs[tag], force=True)
        if "small" in chosen:
            add_small_files(workdir / "small", args.small_files)
        subprocess.run(["sync"], check=True)
        time.sleep(4)  # let the files age past the "modified just now" window, as real files are
        with running_moto() as s3, running_sshd(workdir / "sshd") as ssh:
            bench = Bench(workdir, s3, ssh, stores, args.profile)
            for tag in ("large", "small"):
                if tag in chosen:
                    figures[tag] = measure_site(bench, workdir / tag, tag)
            if "double" in chosen:
                figures["double"] = measure_memory_only(bench, workdir / "double")
        figures["problems"] = failures(figures)
        figures["total_s"] = round(time.perf_counter() - started, 1)
        print(markdown(figures))
        for problem in figures["problems"]:
            print(f"PROBLEM: {problem}")
        print(f"total {figures['total_s']} s")
        print(json.dumps(figures))
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2) + "\n")
    finally:
        if not args.workdir:
            wipe(workdir)
    return 1 if any("differ" in p for p in figures.get("problems", [])) else 0


if __name__ == "__main__":
    sys.exit(main())
