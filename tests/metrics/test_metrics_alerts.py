"""docs/alerts.yml under Debian's promtool: the rules parse, the hand-written cases render their
annotations, and the rules fire exactly when they should on series the writer produced from real
backups, pushes, verifications, prunes and drill records (a renamed metric breaks these tests).

promtool's clock starts at 0: the writer's timestamps are shifted so that the backup was taken at 0;
ages are unchanged."""

from __future__ import annotations

import shutil
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from metrics_helpers import flip_one_byte, outcome, read_prom, run_cli, write_drill

from recovery_lib.backup.retention import RetentionPolicy
from recovery_lib.clock import now
from recovery_lib.errors import EXIT_FAILED, EXIT_OK, ReplicaError
from recovery_lib.manager import RecoveryManager
from recovery_lib.metrics.families import BY_NAME
from recovery_lib.metrics.textfile import write_metrics
from recovery_lib.sandbox.destination import replica_dir
from recovery_lib.site.config import Site

DOCS = Path(__file__).resolve().parents[2] / "docs"
RULES = DOCS / "alerts.yml"
STATIC_TESTS = Path(__file__).with_name("alerts_test.yml")
PROMTOOL = shutil.which("promtool")
SITE = "peak-trade-sandbox"
SCRAPE = {"instance": "db1:9100", "job": "node"}  # what Prometheus adds when it scrapes node_exporter
STEP_MIN = 5  # promtool's input interval: every eval time below is a multiple, so no sample is stale
HOURS = 50

pytestmark = pytest.mark.skipif(
    PROMTOOL is None, reason="needs Debian's promtool: sudo apt-get install prometheus (.ci/run does)"
)


def promtool(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PROMTOOL or "promtool", *args],
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def severity(alertname: str) -> str:
    rules = [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    return next(r["labels"]["severity"] for r in rules if r["alert"] == alertname)


def input_series(files: list[Path], t0: float) -> list[dict[str, str]]:
    """The samples of our textfiles as promtool input series, as Prometheus would hold them after
    scraping node_exporter: constant, with instance and job; timestamps shifted by ``-t0``."""
    series = []
    for path in files:
        for (name, labels), value in sorted(read_prom(path).items(), key=lambda item: repr(item[0])):
            if name.endswith("_timestamp_seconds"):
                value -= t0
            all_labels = {**dict(labels), **SCRAPE}
            text = ",".join(f'{k}="{v}"' for k, v in sorted(all_labels.items()))
            series.append({"series": f"{name}{{{text}}}", "values": f"{value:.6f}+0x{HOURS * 60 // STEP_MIN}"})
    return series


def firing(alertname: str, **labels: str) -> dict[str, str]:
    """One ALERTS sample promtool should return (alert labels = the series' labels and the rule's)."""
    every = {"alertname": alertname, "alertstate": "firing", "severity": severity(alertname), "site": SITE}
    text = ",".join(f'{k}="{v}"' for k, v in sorted({**every, **labels, **SCRAPE}.items()))
    return {"labels": f"ALERTS{{{text}}}", "value": 1}


def run_promtool_test(tmp_path: Path, series: list[dict[str, str]], cases: dict[str, list[dict[str, Any]]]) -> None:
    """``promtool test rules`` on ``series``: at each eval time, exactly the alerts listed fire."""
    test = {
        "rule_files": [str(RULES)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": f"{STEP_MIN}m",
                "input_series": series,
                "promql_expr_test": [
                    {"expr": 'ALERTS{alertstate="firing"}', "eval_time": at, "exp_samples": expected}
                    for at, expected in cases.items()
                ],
            }
        ],
    }
    path = tmp_path / "generated_alerts_test.yml"
    path.write_text(yaml.safe_dump(test, sort_keys=False))
    done = promtool("test", "rules", str(path))
    assert done.returncode == 0, done.stdout + done.stderr


def drill_history(site: Site, outputs: Path) -> None:
    """config drilled 10 days ago within its RTO; data 3 days ago, slower than its RTO and restoring a
    backup 30 h older than the fault (RPO 24 h); full 40 days ago, not recovered; backup never."""
    at = now()
    write_drill(outputs, "config", "A", at - timedelta(days=10), recovered=True, recover_s=300)
    write_drill(
        outputs,
        "data",
        "B",
        at - timedelta(days=3),
        recovered=True,
        recover_s=2000,
        restore_point=at - timedelta(days=3, hours=30),
    )
    write_drill(outputs, "full", "C", at - timedelta(days=40), recovered=False)


# --- the rules themselves ------------------------------------------------------------------------------


def test_the_rules_pass_promtool_check() -> None:
    done = promtool("check", "rules", str(RULES))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 13 rules found" in done.stdout


def test_the_hand_written_cases_render_their_annotations() -> None:
    done = promtool("test", "rules", str(STATIC_TESTS))
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_wrong_expectation_fails_promtool(tmp_path: Path) -> None:
    """The harness can fail: the same series expecting an alert that does not fire is refused."""
    labels = f'site="{SITE}",instance="db1:9100",job="node"'
    series = [{"series": f"recovery_backup_last_run_success{{{labels}}}", "values": "1x10"}]
    with pytest.raises(AssertionError, match="BackupRunFailed"):
        run_promtool_test(tmp_path, series, {"5m": [firing("BackupRunFailed")]})


def all_files(site: Site) -> list[Path]:
    """Every file the writer put in the site's textfile directory (node_exporter reads them all)."""
    assert site.ops.metrics_dir is not None
    return sorted(site.ops.metrics_dir.glob("*.prom"))


def never_drilled() -> list[dict[str, str]]:
    return [firing("DrillOverdue", scenario=s) for s in ("backup", "config", "data", "full")]


# --- the writer's own files --------------------------------------------------------------------------------


def healthy_site_files(site: Site, tmp_path: Path) -> tuple[list[Path], float]:
    """A fresh full backup pushed to the replica, verified, pruned; the drill history above. Returns the
    files written and the backup's time."""
    manager = RecoveryManager(site=site)
    backup_id = manager.create_backup()
    meta = manager.get_backup(backup_id)
    files = [write_metrics(site, outcome("backup", site, (meta, *manager.last_push)))]
    files.append(write_metrics(site, outcome("push", site, tuple(manager.last_push), subject="offsite")))
    files.append(write_metrics(site, outcome("verify", site, (manager.verify_backup(backup_id),))))
    plan = manager.prune(RetentionPolicy(keep_last=5), dry_run=False)
    files.append(write_metrics(site, outcome("prune", site, (plan,), subject="local")))
    outputs = tmp_path / "drills"
    drill_history(site, outputs)
    files.append(write_metrics(site, outcome("drill", site, (outputs,))))
    assert all(path is not None and path.is_file() for path in files)
    return list(dict.fromkeys(files)), meta.created.timestamp()


def test_the_files_parse_and_pass_promtool_check_metrics(site: Site, tmp_path: Path) -> None:
    files, _ = healthy_site_files(site, tmp_path)
    written = set()
    for path in files:
        done = promtool("check", "metrics", stdin=path.read_bytes())
        assert done.returncode == 0 and not done.stdout.strip() and not done.stderr.strip(), (path, done)
        written |= {name for name, _ in read_prom(path)}
    # a healthy site with a schedule, a replica and drill records writes every family, and only those
    assert written == set(BY_NAME), sorted(written ^ set(BY_NAME))


def test_alerts_fire_as_the_backups_age(site: Site, tmp_path: Path) -> None:
    files, taken = healthy_site_files(site, tmp_path)
    drills = [
        firing("DrillOverdue", scenario="full"),
        firing("DrillOverdue", scenario="backup"),  # never drilled
        firing("DrillNotRecovered", scenario="full"),
        firing("DrillOverRTO", scenario="data"),
        firing("DrillDataLossOverRPO", scenario="data"),
    ]
    late = [firing("BackupOlderThanSchedule", category=c) for c in ("config", "state", "data")]
    too_old = [firing("BackupOlderThanMaxAge", category=c) for c in ("config", "state", "data")]
    behind = [firing("ReplicaBehind", replica="offsite")]
    run_promtool_test(
        tmp_path,
        input_series(files, taken),
        {
            "5m": drills,
            "24h25m": drills,  # the schedule allows 24 h plus 30 min of grace
            "24h35m": drills + late,
            "35h55m": drills + late,  # the replica allows 36 h
            "36h5m": drills + late + behind,
            "48h5m": drills + late + behind + too_old,  # [backups] max_age_hours = 48
        },
    )


def test_failed_runs_fire_at_once(site: Site, tmp_path: Path) -> None:
    manager = RecoveryManager(site=site)
    first = manager.create_backup()
    write_metrics(site, outcome("push", site, tuple(manager.last_push), subject="offsite"))
    second = manager.create_backup(push=False)
    damaged = site.backup_dir / second / "config" / "config.toml"
    text = damaged.read_text()
    damaged.unlink()
    damaged.write_text(text + "# edited\n")
    (site.backup_dir / "20260101T000000Z-broken").mkdir()
    shutil.move(replica_dir(site.root), site.root.parent / "unplugged")
    with pytest.raises(ReplicaError):
        manager.push_to_replica("offsite")
    write_metrics(site, outcome("backup", site, ok=False))
    write_metrics(site, outcome("push", site, ok=False, subject="offsite"))
    reports = (manager.verify_backup(first), manager.verify_backup(second))  # --read-data: both modes
    write_metrics(site, outcome("verify", site, reports, ok=False))
    files = all_files(site)
    taken = manager.get_backup(second).created.timestamp()
    failures = [
        firing("BackupRunFailed"),
        firing("BackupsUnreadable"),
        firing("BackupVerifyFailed", mode="read_data"),
        firing("BackupVerifyFailed", mode="structure"),
        firing("ReplicaPushFailed", replica="offsite"),
        *never_drilled(),  # no drill file was written by a drill run: it was written as never drilled
    ]
    run_promtool_test(
        tmp_path,
        input_series(files, taken),
        {
            "5m": failures,
            "36h5m": failures
            + [
                firing("ReplicaBehind", replica="offsite"),  # the failed push did not reset the last success
                *(firing("BackupOlderThanSchedule", category=c) for c in ("config", "state", "data")),
            ],
        },
    )


# --- jobs that never ran, one verdict per verify mode, PARTIAL backups -------------------------------------


def test_a_fresh_site_with_one_backup_fires_what_it_still_owes(site: Site, tmp_path: Path) -> None:
    """One backup, nothing else ever: every drill is overdue, the contents were never verified, the
    replica never pushed to; the backup itself is on schedule until its schedule says otherwise."""
    assert run_cli("backup", "create", "--no-push", "--site", str(site.root)) == EXIT_OK
    [only] = RecoveryManager(site=site).list_backups()
    owed = [*never_drilled(), firing("VerifyOverdue", mode="read_data"), firing("ReplicaBehind", replica="offsite")]
    late = [firing("BackupOlderThanSchedule", category=c) for c in ("config", "state", "data")]
    run_promtool_test(
        tmp_path,
        input_series(all_files(site), only.created.timestamp()),
        {"5m": owed, "24h25m": owed, "24h35m": owed + late},
    )


def test_a_structure_only_verify_keeps_the_read_data_failure_firing(site: Site, tmp_path: Path) -> None:
    """The on-call's M4: contents damaged, a --read-data verify fails, a default verify says OK: the
    critical alert must not resolve."""
    manager = RecoveryManager(site=site)
    backup_id = manager.create_backup()  # pushed: the replica is not behind
    write_metrics(site, outcome("push", site, tuple(manager.last_push), subject="offsite"))
    flip_one_byte(site.backup_dir / backup_id / "data" / "positions.csv")
    assert run_cli("backup", "verify", "all", "--read-data", "--site", str(site.root)) == EXIT_FAILED
    assert run_cli("backup", "verify", "all", "--site", str(site.root)) == EXIT_OK
    run_promtool_test(
        tmp_path,
        input_series(all_files(site), manager.get_backup(backup_id).created.timestamp()),
        {"5m": [*never_drilled(), firing("BackupVerifyFailed", mode="read_data")]},
    )


def test_a_partial_backup_fires_backups_partial(site: Site, tmp_path: Path) -> None:
    manager = RecoveryManager(site=site)
    good = manager.create_backup()
    (site.root / "data" / "latest.csv").symlink_to("positions.csv")  # not backed up: the next one is PARTIAL
    assert run_cli("backup", "create", "--site", str(site.root)) == EXIT_FAILED
    assert run_cli("backup", "verify", "all", "--read-data", "--site", str(site.root)) == EXIT_OK
    run_promtool_test(
        tmp_path,
        input_series(all_files(site), manager.get_backup(good).created.timestamp()),
        {"5m": [*never_drilled(), firing("BackupRunFailed"), firing("BackupsPartial")]},
    )
