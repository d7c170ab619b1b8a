"""The verify file per mode (a structure-only verify never clears what a --read-data verify found), the
PARTIAL backups gauge, and the files of jobs that never ran (written by a run of any kind when missing),
through the real command line and real damage to a backup."""

from __future__ import annotations

from pathlib import Path

from metrics_helpers import flip_one_byte, key, outcome, read_prom, run_cli, write_drill

from recovery_lib.backup.model import BackupStatus
from recovery_lib.clock import now
from recovery_lib.errors import EXIT_FAILED, EXIT_OK
from recovery_lib.manager import RecoveryManager
from recovery_lib.metrics.textfile import textfile_path, write_metrics
from recovery_lib.site.config import Site

SITE = "peak-trade-sandbox"
SCENARIOS = ("config", "data", "full", "backup")


def verify_file(site: Site) -> dict:
    return read_prom(textfile_path(site.ops.metrics_dir, site.name, "verify"))


def verdict(got: dict, mode: str) -> tuple[float | None, float]:
    """(last_success or None when the mode has no verdict, last timestamp) of one mode."""
    return (
        got.get(key("recovery_verify_last_success", site=SITE, mode=mode)),
        got[key("recovery_verify_last_timestamp_seconds", site=SITE, mode=mode)],
    )


# --- M4: one verdict per mode ----------------------------------------------------------------------------


def test_a_structure_only_verify_never_clears_what_a_read_data_verify_found(site: Site) -> None:
    manager = RecoveryManager(site=site)
    backup_id = manager.create_backup(push=False)
    positions = site.backup_dir / backup_id / "data" / "positions.csv"
    intact = positions.read_bytes()
    flip_one_byte(positions)  # same size: only hashing the contents can see it

    assert run_cli("backup", "verify", "all", "--read-data", "--site", str(site.root)) == EXIT_FAILED
    hashed = verify_file(site)
    assert verdict(hashed, "read_data")[0] == 0
    assert verdict(hashed, "structure")[0] == 0  # the read-data run checked the structure too, and failed
    assert hashed[key("recovery_verify_last_backups_failed", site=SITE, mode="read_data")] == 1

    assert run_cli("backup", "verify", "all", "--site", str(site.root)) == EXIT_OK  # structure only: "OK"
    after = verify_file(site)
    assert verdict(after, "structure")[0] == 1
    assert verdict(after, "structure")[1] > verdict(hashed, "structure")[1]
    assert verdict(after, "read_data") == verdict(hashed, "read_data")  # untouched: still the failure
    assert after[key("recovery_verify_last_backups_failed", site=SITE, mode="read_data")] == 1

    positions.write_bytes(intact)  # repaired: a read-data verify clears both
    assert run_cli("backup", "verify", "all", "--read-data", "--site", str(site.root)) == EXIT_OK
    healed = verify_file(site)
    assert verdict(healed, "read_data")[0] == verdict(healed, "structure")[0] == 1


def test_a_read_data_verify_that_found_no_backup_fails_its_own_mode(site: Site) -> None:
    """No VerifyReport tells the mode when nothing was verified: the command says it (VerifyMode)."""
    assert run_cli("backup", "verify", "all", "--site", str(site.root)) == EXIT_FAILED
    got = verify_file(site)
    assert verdict(got, "structure")[0] == 0
    assert verdict(got, "read_data") == (None, 0)  # never run: no verdict, timestamp 0
    assert run_cli("backup", "verify", "all", "--read-data", "--site", str(site.root)) == EXIT_FAILED
    got = verify_file(site)
    assert verdict(got, "read_data")[0] == 0 and verdict(got, "read_data")[1] > 0


def test_partial_backups_are_counted_although_verify_says_ok(site: Site) -> None:
    manager = RecoveryManager(site=site)
    manager.create_backup(push=False)
    (site.root / "data" / "latest.csv").symlink_to("positions.csv")  # symlinks are not backed up: PARTIAL
    assert run_cli("backup", "create", "--no-push", "--site", str(site.root)) == EXIT_FAILED
    statuses = sorted(b.status.value for b in manager.list_backups())
    assert statuses == [BackupStatus.PARTIAL.value, BackupStatus.SUCCESS.value]
    assert run_cli("backup", "verify", "all", "--site", str(site.root)) == EXIT_OK  # its files are intact

    got = read_prom(textfile_path(site.ops.metrics_dir, site.name, "backup"))
    assert got[key("recovery_backup_partial_backups", site=SITE)] == 1
    assert got[key("recovery_backup_last_run_success", site=SITE)] == 0
    assert verdict(verify_file(site), "structure")[0] == 1


# --- M10: a job that never ran still has its series ---------------------------------------------------


def test_the_first_backup_writes_the_never_run_files(site: Site, textfiles: Path) -> None:
    assert run_cli("backup", "create", "--no-push", "--site", str(site.root)) == EXIT_OK

    assert sorted(p.name for p in textfiles.iterdir()) == [
        f"recovery_{SITE}_{file}.prom" for file in ("backup", "drill", "push", "verify")
    ]
    drills = read_prom(textfile_path(textfiles, SITE, "drill"))
    for scenario in SCENARIOS:
        assert drills[key("recovery_drill_last_timestamp_seconds", site=SITE, scenario=scenario)] == 0
    assert drills[key("recovery_drill_rto_seconds", site=SITE, scenario="config")] == 7 * 60
    assert key("recovery_drill_last_run_success", site=SITE) not in drills  # no drill run is known
    verify = verify_file(site)
    assert verdict(verify, "structure") == verdict(verify, "read_data") == (None, 0)
    pushed = read_prom(textfile_path(textfiles, SITE, "push"))
    assert pushed[key("recovery_replica_last_success_timestamp_seconds", site=SITE, replica="offsite")] == 0
    assert key("recovery_prune_last_success", site=SITE, target="local") not in pushed
    assert not textfile_path(textfiles, SITE, "prune").exists()  # no prune is owed: no file


def test_never_run_files_come_from_the_durable_sources_and_existing_files_are_left_alone(
    site: Site, textfiles: Path
) -> None:
    at = now().replace(microsecond=0)
    assert site.drill_records_dir.parent == site.root.parent  # beside the sandbox, in tmp_path
    write_drill(site.drill_records_dir, "data", "B", at, recovered=True)  # the site's [drills] records
    write_metrics(site, outcome("verify", site, ok=False))
    drills = textfile_path(textfiles, SITE, "drill")
    got = read_prom(drills)
    assert got[key("recovery_drill_last_timestamp_seconds", site=SITE, scenario="data")] == at.timestamp()
    assert got[key("recovery_drill_last_timestamp_seconds", site=SITE, scenario="full")] == 0

    assert run_cli("backup", "create", "--no-push", "--site", str(site.root)) == EXIT_OK
    write_drill(site.drill_records_dir, "full", "C", at, recovered=True)
    before = drills.read_bytes()
    assert run_cli("backup", "verify", "all", "--site", str(site.root)) == EXIT_OK
    assert drills.read_bytes() == before  # another kind's run never rewrites an existing file

    drills.unlink()  # lost (a cleaned directory): the next run of any kind writes it again
    assert run_cli("backup", "verify", "all", "--site", str(site.root)) == EXIT_OK
    got = read_prom(drills)
    assert got[key("recovery_drill_last_timestamp_seconds", site=SITE, scenario="full")] == at.timestamp()
