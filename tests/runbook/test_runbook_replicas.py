"""The replica steps of Procedures C and D, without a kernel: ``begin()`` runs them as a notebook would.

Real file:// replicas in directories beside the site (a second disk), pushed with the real push; an
"unreachable" replica is one whose disk is not mounted (its parent directory does not exist). Each test
proves what it says happened on disk: what the backup directory holds, that the site's files did not
change, and what the records say.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path
from typing import Any

import pyrage
import pytest
from site_copies import unmonitor_process

from recovery_lib.manager import RecoveryManager
from recovery_lib.runbook import procedures as steps
from recovery_lib.runbook.notebook import begin
from recovery_lib.runbook.run import NotRun, Run
from recovery_lib.runbook.steps.base import Again, Halted, NothingToDo
from recovery_lib.runbook.steps.replicas import Pushes, ReplicaOverview, Seeding
from recovery_lib.site.config import load_site

PROTECTED = ("config", "state", "data")


# --- helpers (test_procedure_replicas.py uses them too) ---------------------------------------------


def set_replicas(site: Path, *tables: str) -> None:
    """Replace every ``[[replicas]]`` table of the site's recovery.toml (the sandbox's default one, when
    there is one) with ``tables``, each the body of one table."""
    toml = site / "recovery.toml"
    kept, skipping = [], False
    for line in toml.read_text().splitlines(keepends=True):
        if line.strip().startswith("["):
            skipping = line.strip() == "[[replicas]]"
        if not skipping:
            kept.append(line)
    text = "".join(kept).rstrip("\n") + "\n"
    for table in tables:
        text += f"\n[[replicas]]\n{table.strip()}\n"
    toml.write_text(text)


def file_replica(name: str, directory: Path, extra: str = "") -> str:
    """The body of a file:// replica table."""
    return f'name = "{name}"\nurl = "file://{directory}"\n{extra}'


def remove_tree(path: Path) -> None:
    """Delete a directory holding read-only backups."""
    for folder, _dirs, _files in os.walk(path):
        os.chmod(folder, stat.S_IMODE(os.stat(folder).st_mode) | stat.S_IWUSR)
    shutil.rmtree(path)


def site_files(site: Path) -> dict[str, bytes]:
    """Every file of config/, state/ and data/ with its bytes."""
    return {
        p.relative_to(site).as_posix(): p.read_bytes()
        for top in PROTECTED
        for p in sorted((site / top).rglob("*"))
        if p.is_file()
    }


def local_ids(site: Path) -> list[str]:
    """The backup directories (quarantined and temporary ones included; not the push records), sorted."""
    directory = site / "backups"
    found = [p.name for p in directory.iterdir() if p.is_dir() and p.name != ".replicas"] if directory.exists() else []
    return sorted(found)


def backed_up_and_pushed(site: Path) -> str:
    """A good backup of the site, pushed to its (only) replica; returns its id."""
    manager = RecoveryManager(site=site)
    backup_id = manager.create_backup(description="good")  # pushed after the backup (push = "after-backup")
    assert [record.ok for record in manager.last_push] == [True]
    report = manager.push_to_replica(None, backup_id)
    assert report.ok and report.already == [backup_id]
    return backup_id


def run_of(site: Path, procedure: str = "D", approve: tuple[str, ...] = ("backup",)) -> Run:
    return begin(procedure, site=str(site), interactive=False, approve=list(approve), operator="t", kind="drill")


@pytest.fixture
def site(sandbox: Path) -> Path:
    unmonitor_process(sandbox)
    set_replicas(sandbox, file_replica("offsite", sandbox.parent / "offsite-disk" / "peak-trade"))
    (sandbox.parent / "offsite-disk").mkdir()
    assert [spec.name for spec in load_site(sandbox).replicas] == ["offsite"]
    return sandbox


# --- the overview ------------------------------------------------------------------------------------


def test_overview_shows_each_replica_and_an_unreachable_one_without_raising(site: Path, tmp_path: Path) -> None:
    good = backed_up_and_pushed(site)
    unmounted = tmp_path / "not-mounted" / "peak-trade"
    set_replicas(
        site,
        file_replica("offsite", site.parent / "offsite-disk" / "peak-trade"),
        file_replica("usb", unmounted, 'push = "manual"'),
    )
    run = run_of(site)
    overview = steps.replica_overview(run)
    assert isinstance(overview, ReplicaOverview) and not overview.ok  # one replica does not answer
    offsite, usb = overview.rows
    assert offsite["reachable"] and offsite["newest"] == good and offsite["backups"] == 1
    assert offsite["stale"] is False and offsite["age_hours"] < 1
    assert offsite["last_push_ok"] is True and "ok" in offsite["last_push"]  # recorded by the push above
    assert usb["reachable"] is False and usb["newest"] is None and "not-mounted" in usb["error"]
    text = repr(overview)
    assert "✅ fresh" in text and "❌ UNREACHABLE" in text and good in text
    assert "UNREACHABLE" in overview._repr_html_()
    assert run.recorder.values["replicas"]["replicas"][1]["reachable"] is False
    assert not unmounted.parent.exists()  # looking never creates anything


def test_overview_without_a_replica_says_backups_live_only_here(site: Path) -> None:
    set_replicas(site)
    overview = steps.replica_overview(run_of(site))
    assert overview.rows == [] and not overview.ok
    assert "No replica" in repr(overview) and "only on this host" in overview._repr_html_()


# --- re-seeding ------------------------------------------------------------------------------------


def test_no_seed_while_a_local_backup_can_fix_the_fault(site: Path) -> None:
    good = backed_up_and_pushed(site)
    before = local_ids(site)
    run = run_of(site, "C")
    result = steps.seed_from_replica(run, "", "", needs=("config", "state", "data"))
    assert isinstance(result, NothingToDo) and good in result.reason
    assert local_ids(site) == before
    assert run.recorder.values["replica_seed"] == {"needed": False, "ok": True, "local_backup": good}
    assert not run.halted


def test_a_lost_backup_directory_is_reseeded_once_byte_for_byte(site: Path) -> None:
    good = backed_up_and_pushed(site)
    original = {
        p.relative_to(site / "backups" / good): p.read_bytes()
        for p in (site / "backups" / good).rglob("*")
        if p.is_file()
    }
    files = site_files(site)
    remove_tree(site / "backups")
    run = run_of(site)
    result = steps.seed_from_replica(run, "", "")
    assert isinstance(result, Seeding) and result.ok and result.backup_id == good
    assert local_ids(site) == [good]
    pulled = {
        p.relative_to(site / "backups" / good): p.read_bytes()
        for p in (site / "backups" / good).rglob("*")
        if p.is_file()
    }
    assert pulled == original  # the backup as it was, documents included
    assert RecoveryManager(site=site).verify_backup(good).ok
    record = run.recorder.values["replica_seed"]
    assert record["needed"] and record["ok"] and record["backup_id"] == good and record["replica"] == "offsite"
    assert record["bytes_downloaded"] > 0 and record["files"] > 0 and record["notes"]
    # Run again: the earlier pull, not a second one.
    again = steps.seed_from_replica(run, "", "")
    assert isinstance(again, Again) and again.backup_id == good
    assert local_ids(site) == [good]
    assert site_files(site) == files  # only the backup directory was written
    assert not run.halted


def test_damaged_local_backups_are_quarantined_then_reseeded(site: Path) -> None:
    good = backed_up_and_pushed(site)
    trades = site / "backups" / good / "data" / "trades.csv"
    trades.chmod(0o644)
    trades.write_bytes(trades.read_bytes()[:-10])  # truncated on disk: it no longer verifies
    run = run_of(site)
    verification = steps.verify_all_backups(run)
    assert verification.damaged == [good]
    steps.quarantine_damaged(run, verification)
    result = steps.seed_from_replica(run, "", "")
    assert result.ok and result.backup_id == good
    assert local_ids(site) == sorted([good, f".quarantine-{good}"])  # the damaged one kept as evidence
    assert RecoveryManager(site=site).verify_backup(good).ok


def test_every_replica_failing_halts_with_each_reason_and_nothing_written(site: Path, tmp_path: Path) -> None:
    RecoveryManager(site=site).create_backup(description="never pushed")
    empty = tmp_path / "empty-disk" / "peak-trade"
    empty.parent.mkdir()
    unmounted = tmp_path / "not-mounted" / "peak-trade"
    set_replicas(site, file_replica("empty", empty), file_replica("usb", unmounted))
    files = site_files(site)
    remove_tree(site / "backups")
    run = run_of(site)
    result = steps.seed_from_replica(run, "", "")
    assert isinstance(result, Seeding) and not result.ok and result.backup_id is None
    assert [why.split(":", 1)[0] for why in result.tried] == ["empty", "usb"]
    # The empty replica's directory was never created (nothing was ever pushed there): said as such.
    assert "does not exist" in result.tried[0] and "not-mounted" in result.tried[1]
    assert run.halted and "no replica could re-seed" in run.halted
    assert run.facts.no_backup
    assert local_ids(site) == [] and site_files(site) == files and not unmounted.parent.exists()
    record = run.recorder.values["replica_seed"]
    assert record["needed"] and record["ok"] is False and len(record["tried"]) == 2
    # The criteria of D do not claim the backups back.
    criteria = steps.criteria_d_replicas(
        run, {"writable": True}, steps.verify_all_backups(run), "x", result, Pushes("x")
    )
    restored = next(r for r in criteria.rows if r["criterion"] == "Backups restored")
    assert restored["passed"] is False and "empty" in restored["evidence"]
    assert not criteria.all_passed


def test_no_replica_configured_is_no_reseed(site: Path) -> None:
    set_replicas(site)
    run = run_of(site)
    result = steps.seed_from_replica(run, "", "")
    assert not result.ok and not result.configured and "no replica is configured" in result.summary()
    assert run.halted


def test_a_replica_named_that_does_not_exist_is_refused_by_name(site: Path) -> None:
    backed_up_and_pushed(site)
    remove_tree(site / "backups")
    run = run_of(site)
    result = steps.seed_from_replica(run, "ofsite", "")
    assert not result.ok and result.tried == ["ofsite: no replica of that name in recovery.toml (configured: offsite)"]
    assert local_ids(site) == []


def test_an_encrypted_replica_needs_the_identity_from_the_parameter_or_the_environment(
    site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    identity = pyrage.x25519.Identity.generate()
    key = tmp_path / "keys" / "offsite.age"
    key.parent.mkdir()
    key.write_text(f"{identity}\n")
    directory = tmp_path / "crypt-disk" / "peak-trade"
    directory.parent.mkdir()
    set_replicas(site, file_replica("offsite", directory, f'age_recipients = ["{identity.to_public()}"]'))
    good = backed_up_and_pushed(site)
    remove_tree(site / "backups")
    monkeypatch.delenv("RECOVERY_AGE_IDENTITY", raising=False)

    without = steps.seed_from_replica(run_of(site), "", "")
    assert not without.ok and "identity" in without.tried[0].lower() and local_ids(site) == []

    monkeypatch.setenv("RECOVERY_AGE_IDENTITY", str(key))
    with_env = steps.seed_from_replica(run_of(site), "", "")
    assert with_env.ok and with_env.backup_id == good
    remove_tree(site / "backups")
    monkeypatch.delenv("RECOVERY_AGE_IDENTITY")
    with_parameter = steps.seed_from_replica(run_of(site), "offsite", str(key))
    assert with_parameter.ok and RecoveryManager(site=site).verify_backup(good).ok


# --- D's push and criteria ---------------------------------------------------------------------------


def criteria_rows(checklist: Any) -> dict[str, tuple[bool | None, str]]:
    return {row["criterion"]: (row["passed"], row["evidence"]) for row in checklist.rows}


def test_a_failed_push_is_recorded_and_fails_its_criterion(site: Path, tmp_path: Path) -> None:
    good = backed_up_and_pushed(site)
    unmounted = tmp_path / "not-mounted" / "peak-trade"
    set_replicas(
        site, file_replica("offsite", site.parent / "offsite-disk" / "peak-trade"), file_replica("usb", unmounted)
    )
    run = run_of(site)
    directory = steps.backup_dir_status(run)
    verification = steps.verify_all_backups(run)
    seeded = steps.seed_from_replica(run, "", "")
    assert isinstance(seeded, NothingToDo)
    emergency = steps.create_backup(run, "emergency_backup", "Emergency", ["emergency", "manual"])
    pushed = steps.push_to_replicas(run, emergency)
    assert not pushed.ok and [r["replica"] for r in pushed.rows] == ["offsite", "usb"]
    offsite, usb = pushed.rows
    # create_backup pushed it already (push = "after-backup"); the step confirms it is there
    assert offsite["ok"] and [*offsite["pushed"], *offsite["already"]] == [emergency]
    assert usb["ok"] is False and "not-mounted" in usb["error"]
    assert run.recorder.values["replica_push"]["ok"] is False
    rows = criteria_rows(steps.criteria_d_replicas(run, directory, verification, emergency, seeded, pushed))
    assert rows["Backups restored"][0] is True and good in rows["Backups restored"][1]
    assert rows["New backup copied off the host"][0] is False and "usb" in rows["New backup copied off the host"][1]
    # Run again, a failed push is tried again (the replica that took it says "already there")...
    retried = steps.push_to_replicas(run, emergency)
    assert retried.rows[0]["already"] == [emergency] and retried.rows[0]["pushed"] == [] and not retried.ok
    # ... and once every push succeeded, a rerun says so instead of pushing again.
    set_replicas(site, file_replica("offsite", site.parent / "offsite-disk" / "peak-trade"))
    run.site = load_site(site)
    assert steps.push_to_replicas(run, emergency).ok
    assert isinstance(steps.push_to_replicas(run, emergency), Again)


def test_no_push_without_a_new_backup_or_a_replica(site: Path) -> None:
    run = run_of(site)
    skipped = steps.push_to_replicas(run, steps.halt(run, "test"))
    assert not skipped.attempted and "no new backup" in skipped.summary()
    set_replicas(site, file_replica("usb", site.parent / "offsite-disk" / "x", 'push = "manual"'))
    manual = steps.push_to_replicas(run_of(site), "20261120T000000Z-full-abcdef")
    assert not manual.attempted and "after-backup" in manual.note


def test_the_pull_needs_the_backup_approval(site: Path) -> None:
    backed_up_and_pushed(site)
    remove_tree(site / "backups")
    run = run_of(site, approve=())
    result = steps.seed_from_replica(run, "", "")
    assert isinstance(result, Halted) and "not approved" in result.reason
    assert run.halted and run.facts.no_backup
    assert local_ids(site) == [] and not (site / "backups").exists()  # nothing pulled, not even the directory
    record = run.recorder.values["replica_seed"]
    assert record["needed"] is True and record["ok"] is False and "not approved" in record["error"]
    assert run.recorder.values["approval_backup"]["approved"] is False
    assert "replica offsite" in run.recorder.values["approval_backup"]["summary"]


def test_steps_below_a_cell_that_never_ran_judge_it_instead_of_raising(site: Path) -> None:
    run = run_of(site)
    never = NotRun("emergency", "create a new backup")
    pushed = steps.push_to_replicas(run, never)
    assert not pushed.attempted and "no new backup" in pushed.note
    rows = criteria_rows(
        steps.criteria_d_replicas(run, {"writable": True}, never, never, NotRun("seeded", "re-seed"), never)
    )
    assert rows["Backups restored"][0] is False and "not run" in rows["Backups restored"][1]
    assert rows["New backup copied off the host"][0] is False
