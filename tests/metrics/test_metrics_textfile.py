"""The textfile writer on real runs: backups taken in a sandbox, pushes to its file:// replica (and a
replica that went away), verifications of a damaged backup, prunes, drill records; what each file says,
that it is recomputed from the durable sources, and that a directory that cannot be written costs the
run nothing."""

from __future__ import annotations

import logging
import shutil
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from metrics_helpers import key, metrics_site, names_in, outcome, read_prom, write_drill

from recovery_lib.backup.model import PRE_RECOVERY_TAG, BackupStatus
from recovery_lib.backup.retention import RetentionPolicy
from recovery_lib.cli.operations import reporting
from recovery_lib.clock import now, parse
from recovery_lib.drills.history import drill_row
from recovery_lib.drills.runner import run_drill
from recovery_lib.errors import ReplicaError, SiteError
from recovery_lib.manager import RecoveryManager
from recovery_lib.metrics.families import families_of
from recovery_lib.metrics.textfile import read_samples, textfile_path, write_metrics
from recovery_lib.replica import service as replicas
from recovery_lib.replica.status import read_push_record
from recovery_lib.sandbox.destination import replica_dir
from recovery_lib.site.config import Site, load_site

SITE = "peak-trade-sandbox"


def backup(manager: RecoveryManager, **kwargs: object) -> tuple:
    """A real backup: its metadata, then the pushes ``backup create`` made (the backup outcome's results)."""
    backup_id = manager.create_backup(**kwargs)
    return (manager.get_backup(backup_id), *manager.last_push)


def temp_files(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir() if p.name.endswith(".tmp")]


# --- backup create -----------------------------------------------------------------------------------


def test_backup_file_holds_the_newest_success_of_each_category_and_type(site: Site, textfiles: Path) -> None:
    manager = RecoveryManager(site=site)
    full = backup(manager)
    config = backup(manager, include_state=False, include_data=False, description="config only")
    done = outcome("backup", site, config)

    path = write_metrics(site, done)

    assert path == textfiles / f"recovery_{SITE}_backup.prom"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # node_exporter runs as another user
    got = read_prom(path)
    full_meta, config_meta = full[0], config[0]
    last = "recovery_backup_last_success_timestamp_seconds"
    assert got[key(last, site=SITE, category="config")] == config_meta.created.timestamp()
    assert got[key(last, site=SITE, category="state")] == full_meta.created.timestamp()
    assert got[key(last, site=SITE, category="data")] == full_meta.created.timestamp()
    for meta in (full_meta, config_meta):
        kind = meta.backup_type.value
        assert got[key("recovery_backup_last_size_bytes", site=SITE, type=kind)] == meta.size_bytes > 0
        assert got[key("recovery_backup_last_files", site=SITE, type=kind)] == meta.files_count > 0
        assert got[key("recovery_backup_last_duration_seconds", site=SITE, type=kind)] == meta.duration_s
    assert got[key("recovery_backup_last_run_success", site=SITE)] == 1
    assert got[key("recovery_backup_last_run_timestamp_seconds", site=SITE)] == done.finished.timestamp()
    assert got[key("recovery_backup_unreadable_backups", site=SITE)] == 0
    assert got[key("recovery_backup_schedule_interval_seconds", site=SITE)] == 24 * 3600  # daily 02:00
    assert got[key("recovery_backup_schedule_grace_seconds", site=SITE)] == 30 * 60
    assert got[key("recovery_backup_max_age_seconds", site=SITE)] == 48 * 3600
    assert set(names_in(path)) == {f.name for f in families_of("backup")}
    # backup create pushed to the sandbox's replica: its file is refreshed by the same run
    pushed = read_prom(textfiles / f"recovery_{SITE}_push.prom")
    assert pushed[key("recovery_replica_last_push_success", site=SITE, replica="offsite")] == 1
    assert temp_files(textfiles) == []


def test_a_failed_run_shows_although_it_made_no_backup(site: Site, textfiles: Path) -> None:
    manager = RecoveryManager(site=site)
    good = backup(manager, push=False)[0]
    broken = site.backup_dir / "20260101T000000Z-broken"
    broken.mkdir()
    (broken / "metadata.json").write_text("{not json")

    path = write_metrics(site, outcome("backup", site, ok=False))

    got = read_prom(path)
    assert got[key("recovery_backup_last_run_success", site=SITE)] == 0
    for category in ("config", "state", "data"):  # the last good backup is still the last good backup
        taken = got[key("recovery_backup_last_success_timestamp_seconds", site=SITE, category=category)]
        assert taken == good.created.timestamp()
    assert got[key("recovery_backup_unreadable_backups", site=SITE)] == 1
    # nothing was pushed, ever: the missing push file is written from the (absent) records as never
    pushed = read_prom(textfiles / f"recovery_{SITE}_push.prom")
    assert pushed[key("recovery_replica_last_success_timestamp_seconds", site=SITE, replica="offsite")] == 0
    assert key("recovery_replica_last_push_success", site=SITE, replica="offsite") not in pushed


def test_a_partial_backup_is_a_failed_run(site: Site) -> None:
    manager = RecoveryManager(site=site)
    meta = backup(manager, push=False)[0]
    meta.status = BackupStatus.PARTIAL  # as BackupIncomplete carries it; the outcome is what the CLI says
    got = read_prom(write_metrics(site, outcome("backup", site, (meta,))))
    assert got[key("recovery_backup_last_run_success", site=SITE)] == 0


def test_a_pre_recovery_snapshot_never_counts_as_the_last_success(site: Site) -> None:
    manager = RecoveryManager(site=site)
    good = backup(manager, push=False)[0]
    snapshot = backup(manager, push=False, tags=[PRE_RECOVERY_TAG])[0]
    assert snapshot.created > good.created
    got = read_prom(write_metrics(site, outcome("backup", site, (snapshot,))))
    taken = got[key("recovery_backup_last_success_timestamp_seconds", site=SITE, category="data")]
    assert taken == good.created.timestamp()


def test_never_backed_up_is_zero_and_no_schedule_means_no_schedule_series(sandbox: Path, textfiles: Path) -> None:
    site = metrics_site(sandbox, textfiles)
    config = sandbox / "recovery.toml"
    config.write_text(config.read_text().replace('schedule = ["*-*-* 02:00"]\n', ""))
    site = load_site(sandbox)
    assert site.backup_schedule == ()
    got = read_prom(write_metrics(site, outcome("backup", site, ok=False)))
    for category in ("config", "state", "data"):
        assert got[key("recovery_backup_last_success_timestamp_seconds", site=SITE, category=category)] == 0
    names = {name for name, _ in got}
    assert "recovery_backup_schedule_interval_seconds" not in names
    assert "recovery_backup_schedule_grace_seconds" not in names
    assert got[key("recovery_backup_max_age_seconds", site=SITE)] == 48 * 3600


# --- replica push --------------------------------------------------------------------------------------


def test_a_failed_push_keeps_the_last_success_until_it_is_unknown(site: Site, textfiles: Path) -> None:
    manager = RecoveryManager(site=site)
    write_metrics(site, outcome("backup", site, backup(manager)))
    first = read_push_record(site.backup_dir, "offsite")
    assert first is not None and first.ok
    labels = {"site": SITE, "replica": "offsite"}
    shutil.move(replica_dir(site.root), site.root.parent / "unplugged")  # the disk is gone
    with pytest.raises(ReplicaError):
        manager.push_to_replica("offsite")

    path = write_metrics(site, outcome("push", site, ok=False, subject="offsite"))

    assert path == textfiles / f"recovery_{SITE}_push.prom"
    got = read_prom(path)
    failed = read_push_record(site.backup_dir, "offsite")
    assert failed is not None and not failed.ok
    assert got[key("recovery_replica_last_push_success", **labels)] == 0
    assert got[key("recovery_replica_last_push_timestamp_seconds", **labels)] == parse(failed.at).timestamp()
    assert got[key("recovery_replica_last_success_timestamp_seconds", **labels)] == parse(first.at).timestamp()
    assert got[key("recovery_replica_max_age_seconds", **labels)] == 36 * 3600
    path.unlink()  # the file that remembered the success is gone: no success is known any more
    got = read_prom(write_metrics(site, outcome("push", site, ok=False, subject="offsite")))
    assert got[key("recovery_replica_last_success_timestamp_seconds", **labels)] == 0


def test_a_good_push_after_a_failed_one_is_the_new_last_success(site: Site) -> None:
    manager = RecoveryManager(site=site)
    backup(manager, push=False)
    labels = {"site": SITE, "replica": "offsite"}
    report = manager.push_to_replica("offsite")
    got = read_prom(write_metrics(site, outcome("push", site, (report,), subject="offsite")))
    record = read_push_record(site.backup_dir, "offsite")
    assert record is not None and record.ok and report.bytes_uploaded > 0
    assert got[key("recovery_replica_last_success_timestamp_seconds", **labels)] == parse(record.at).timestamp()
    assert got[key("recovery_replica_last_push_uploaded_bytes", **labels)] == record.bytes_uploaded
    assert got[key("recovery_replica_last_push_duration_seconds", **labels)] == record.duration_s


def test_an_unparsable_previous_file_is_logged_and_replaced(site: Site, caplog: pytest.LogCaptureFixture) -> None:
    path = textfile_path(site.ops.metrics_dir, site.name, "push")
    path.write_text("recovery_replica_last_push_success{site=\n")
    with caplog.at_level(logging.WARNING):
        assert read_samples(path, site.name) == []
    assert f"metrics file {path} cannot be parsed" in caplog.text
    got = read_prom(write_metrics(site, outcome("push", site, ok=False, subject="offsite")))
    assert got[key("recovery_replica_last_success_timestamp_seconds", site=SITE, replica="offsite")] == 0


# --- verify and prune ----------------------------------------------------------------------------------


def test_verify_counts_intact_and_damaged_backups(site: Site, textfiles: Path) -> None:
    manager = RecoveryManager(site=site)
    first = backup(manager, push=False)[0]
    second = backup(manager, push=False)[0]
    damaged = site.backup_dir / second.backup_id / "config" / "config.toml"
    text = damaged.read_text()
    damaged.unlink()  # files are hard-linked between backups: break the link, damage only this copy
    damaged.write_text(text + "\n# edited\n")
    reports = (manager.verify_backup(first.backup_id), manager.verify_backup(second.backup_id))
    assert [r.ok for r in reports] == [True, False]
    done = outcome("verify", site, reports, ok=False, seconds=4.0)

    got = read_prom(write_metrics(site, done))

    for mode in ("read_data", "structure"):  # a read-data verify checks the structure too
        assert got[key("recovery_verify_last_success", site=SITE, mode=mode)] == 0
        assert got[key("recovery_verify_last_backups_verified", site=SITE, mode=mode)] == 1
        assert got[key("recovery_verify_last_backups_failed", site=SITE, mode=mode)] == 1
        assert got[key("recovery_verify_last_duration_seconds", site=SITE, mode=mode)] == 4.0
        assert got[key("recovery_verify_last_timestamp_seconds", site=SITE, mode=mode)] == done.finished.timestamp()
    good = read_prom(write_metrics(site, outcome("verify", site, reports[:1])))
    assert good[key("recovery_verify_last_success", site=SITE, mode="read_data")] == 1


def test_prune_writes_what_a_real_prune_removed_and_nothing_for_a_dry_run(site: Site, textfiles: Path) -> None:
    manager = RecoveryManager(site=site)
    for _ in range(3):
        backup(manager)
    policy = RetentionPolicy(keep_last=1)
    plan = manager.prune(policy, dry_run=True)
    assert len(plan.remove) == 2
    assert write_metrics(site, outcome("prune", site, (plan,), subject="local")) is None
    assert not (textfiles / f"recovery_{SITE}_prune.prom").exists()

    plan = manager.prune(policy, dry_run=False)
    path = write_metrics(site, outcome("prune", site, (plan,), subject="local"))
    remote = replicas.prune(replicas.replica_spec(site, "offsite"), site.backup_dir, policy, dry_run=False)
    assert len(remote.removed) == 2
    later = outcome("prune", site, (remote,), subject="offsite")
    assert write_metrics(site, later) == path

    got = read_prom(path)
    local, offsite = {"site": SITE, "target": "local"}, {"site": SITE, "target": "offsite"}
    assert got[key("recovery_prune_last_removed_backups", **local)] == 2  # carried over from the first write
    assert got[key("recovery_prune_last_kept_backups", **local)] == 1
    assert got[key("recovery_prune_last_removed_backups", **offsite)] == 2
    assert got[key("recovery_prune_last_kept_backups", **offsite)] == 1
    assert got[key("recovery_prune_last_timestamp_seconds", **offsite)] == later.finished.timestamp()
    assert got[key("recovery_prune_last_success", **offsite)] == 1


# --- drills ----------------------------------------------------------------------------------------------


def test_drill_file_has_the_last_drill_of_each_scenario_against_the_sites_targets(site: Site, tmp_path: Path) -> None:
    outputs = tmp_path / "drill-records"
    at = now().replace(microsecond=0)
    write_drill(outputs, "config", "A", at - timedelta(days=40), recovered=True)
    newest = write_drill(outputs, "config", "A", at - timedelta(days=10), recovered=False)
    write_drill(outputs, "data", "B", at - timedelta(days=3), recovered=True, recover_s=2000)
    assert drill_row(newest)["outcome"] == "not_recovered"

    got = read_prom(write_metrics(site, outcome("drill", site, (outputs,), ok=False)))

    config, data = {"site": SITE, "scenario": "config"}, {"site": SITE, "scenario": "data"}
    last = "recovery_drill_last_timestamp_seconds"
    assert got[key(last, **config)] == (at - timedelta(days=10)).timestamp()
    assert got[key("recovery_drill_last_recovered", **config)] == 0
    assert key("recovery_drill_time_to_recover_seconds", **config) not in got  # it did not recover
    assert got[key("recovery_drill_data_loss_window_seconds", **config)] == 3600
    assert got[key("recovery_drill_rto_seconds", **config)] == 7 * 60  # the site's [targets.A], not the record's
    assert got[key("recovery_drill_rto_seconds", **data)] == 30 * 60
    assert got[key("recovery_drill_rpo_seconds", **data)] == 24 * 3600
    assert got[key("recovery_drill_last_recovered", **data)] == 1
    assert got[key("recovery_drill_time_to_recover_seconds", **data)] == 2000
    for scenario in ("full", "backup"):  # never drilled
        assert got[key(last, site=SITE, scenario=scenario)] == 0
        assert key("recovery_drill_last_recovered", site=SITE, scenario=scenario) not in got
    assert got[key("recovery_drill_last_run_success", site=SITE)] == 0


def test_a_drill_record_cut_short_is_left_out_with_a_warning(
    site: Site, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    outputs = tmp_path / "drill-records"
    at = now().replace(microsecond=0)
    write_drill(outputs, "data", "B", at - timedelta(days=5), recovered=True)
    cut = write_drill(outputs, "data", "B", at - timedelta(days=1), recovered=True)
    notebook = cut / "02_B.ipynb"
    notebook.write_bytes(notebook.read_bytes()[:100])  # the kernel was killed while it was saved
    with caplog.at_level(logging.WARNING):
        got = read_prom(write_metrics(site, outcome("drill", site, (outputs,))))
    assert f"drill record {cut} is unreadable" in caplog.text
    taken = got[key("recovery_drill_last_timestamp_seconds", site=SITE, scenario="data")]
    assert taken == (at - timedelta(days=5)).timestamp()  # the readable drill is still reported


def test_drill_records_default_to_the_sites_drill_records_dir(site: Site) -> None:
    at = now().replace(microsecond=0) - timedelta(days=1)
    write_drill(site.drill_records_dir, "backup", "D", at, recovered=True)
    try:
        got = read_prom(write_metrics(site, outcome("drill", site)))
    finally:
        shutil.rmtree(site.drill_records_dir)
    assert got[key("recovery_drill_last_timestamp_seconds", site=SITE, scenario="backup")] == at.timestamp()
    assert got[key("recovery_drill_last_run_success", site=SITE)] == 1


def test_a_real_drill_is_reported_as_its_records_say(site: Site, tmp_path: Path) -> None:
    outputs = tmp_path / "outputs"
    result = run_drill("config", outputs, say=lambda line: None)
    row = drill_row(result.run_dir)
    assert row is not None, result.failure

    got = read_prom(write_metrics(site, outcome("drill", site, (result, outputs), ok=result.recovered)))

    config = {"site": SITE, "scenario": "config"}
    assert got[key("recovery_drill_last_timestamp_seconds", **config)] == parse(row["fault_at"]).timestamp()
    assert got[key("recovery_drill_last_recovered", **config)] == (row["outcome"] == "recovered")
    if row["time_to_recover_s"] is not None:
        assert got[key("recovery_drill_time_to_recover_seconds", **config)] == pytest.approx(row["time_to_recover_s"])
    assert got[key("recovery_drill_last_run_success", site=SITE)] == result.recovered


# --- when there is nothing to write, or it cannot be written ---------------------------------------------


def test_nothing_is_written_without_a_directory_and_an_escalation_writes_only_the_missing_files(
    sandbox: Path, textfiles: Path
) -> None:
    plain = load_site(sandbox)
    assert plain.ops.metrics_dir is None
    assert write_metrics(plain, outcome("backup", plain, ok=False)) is None
    site = metrics_site(sandbox, textfiles)
    assert write_metrics(site, outcome("escalation", site, ok=False)) is None  # it has no file of its own
    assert sorted(p.name for p in textfiles.iterdir()) == [
        f"recovery_{SITE}_{file}.prom" for file in ("backup", "drill", "push", "verify")
    ]
    backups = read_prom(textfile_path(textfiles, SITE, "backup"))
    assert key("recovery_backup_last_run_success", site=SITE) not in backups  # no backup run is known
    assert backups[key("recovery_backup_last_success_timestamp_seconds", site=SITE, category="data")] == 0


@pytest.mark.parametrize("make", ["missing", "a file"])
def test_a_directory_that_is_not_one_is_refused_naming_the_setting(sandbox: Path, tmp_path: Path, make: str) -> None:
    target = tmp_path / "collector"
    if make == "a file":
        target.write_text("not a directory\n")
    site = metrics_site(sandbox, target)
    with pytest.raises(SiteError) as raised:
        write_metrics(site, outcome("backup", site, ok=False))
    assert "[metrics] textfile_dir" in str(raised.value) and str(target) in str(raised.value)
    assert "recovery.toml" in str(raised.value)
    assert target.is_file() if make == "a file" else not target.exists()  # nothing was created


def test_one_file_that_cannot_be_written_does_not_stop_the_others(site: Site, textfiles: Path) -> None:
    blocked = textfile_path(textfiles, site.name, "push")
    blocked.mkdir()  # the rename onto it fails
    manager = RecoveryManager(site=site)
    results = backup(manager)
    with pytest.raises(SiteError) as raised:
        write_metrics(site, outcome("backup", site, results))
    assert str(blocked) in str(raised.value) and "[metrics] textfile_dir" in str(raised.value)
    got = read_prom(textfile_path(textfiles, site.name, "backup"))
    assert got[key("recovery_backup_last_run_success", site=SITE)] == 1
    assert temp_files(textfiles) == []


def test_an_unwritable_directory_costs_the_backup_nothing_and_heals_at_the_next_run(
    sandbox: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    target = tmp_path / "not-yet"
    site = metrics_site(sandbox, target)
    manager = RecoveryManager(site=site)
    with caplog.at_level(logging.WARNING), reporting("backup", site) as report:
        report.results.extend(backup(manager))
    assert "metrics for backup not written" in caplog.text and "[metrics] textfile_dir" in caplog.text
    first = report.results[0]
    assert manager.verify_backup(first.backup_id).ok  # the backup is whole
    assert read_push_record(site.backup_dir, "offsite").ok  # and pushed
    assert not target.exists()

    target.mkdir()
    with reporting("backup", site) as report:
        report.results.extend(backup(manager, include_state=False, include_data=False))
    got = read_prom(textfile_path(target, site.name, "backup"))
    taken = got[key("recovery_backup_last_success_timestamp_seconds", site=SITE, category="state")]
    assert taken == first.created.timestamp()  # the run whose write was lost is in the snapshot
