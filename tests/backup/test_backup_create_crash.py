"""Backup creation: crash safety (SIGKILL at random moments, the k-th filesystem call failing,
leftovers of an interrupted run).

Every test works on real files in a private sandbox site and checks the result on disk (often with
coreutils ``sha256sum -c``), not only what the API returns.
"""

from __future__ import annotations

import errno
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest
from backup_helpers import (
    assert_backup_sound,
    backup_tree,
    category_files,
    sha256sum_check,
    site_snapshot,
    tmp_leftovers,
)
from fault_shim import FaultShim

import recovery_lib.backup.create as create_module
from recovery_lib.backup import BackupError, BackupStatus
from recovery_lib.backup.lock import LockFileError
from recovery_lib.manager import BackupIncomplete, RecoveryManager

# --- crash safety -----------------------------------------------------------------------------


def test_interrupted_backup_leftovers_are_cleaned_and_noted(sandbox: Path) -> None:
    manager = RecoveryManager(site=sandbox)
    earlier = manager.create_backup()
    backups = manager.backup_dir
    crashed = backups / ".tmp-20261125T000000Z-full-dead01"
    (crashed / "data" / "reports").mkdir(parents=True)
    (crashed / "data" / "trades.csv").write_bytes(b"half a file")
    (crashed / "manifest.json").write_text("{}")
    (crashed / "data" / "reports").chmod(0o555)
    (crashed / "data").chmod(0o555)
    bare = backups / ".tmp-20261125T000001Z-config-dead02"
    bare.mkdir()

    fresh = RecoveryManager(site=sandbox)
    assert [b.backup_id for b in fresh.list_backups()] == [earlier]
    assert tmp_leftovers(fresh) == []
    assert any(crashed.name in note and "interrupted" in note for note in fresh.notes), fresh.notes
    assert any(bare.name in note for note in fresh.notes), fresh.notes

    (backups / ".tmp-20261125T000002Z-data-dead03" / "data").mkdir(parents=True)
    other = RecoveryManager(site=sandbox)
    new = other.create_backup()
    assert tmp_leftovers(other) == []
    assert any(".tmp-20261125T000002Z-data-dead03" in note for note in other.notes)
    assert_backup_sound(other, earlier)
    assert_backup_sound(other, new)


def test_backup_directory_without_metadata_is_never_success(sandbox: Path) -> None:
    manager = RecoveryManager(site=sandbox)
    good = manager.create_backup()
    fake = manager.backup_dir / "20991231T235959Z-full-abcdef"  # would sort newest
    (fake / "data").mkdir(parents=True)
    (fake / "data" / "trades.csv").write_bytes((sandbox / "data" / "trades.csv").read_bytes())
    fresh = RecoveryManager(site=sandbox)
    assert [b.backup_id for b in fresh.list_backups()] == [good]
    assert [u.backup_id for u in fresh.unreadable] == [fake.name]
    assert "metadata.json is missing" in fresh.unreadable[0].problem
    assert fresh.get_backup("latest").backup_id == good
    with pytest.raises(BackupError, match="metadata.json is missing"):
        fresh.get_backup(fake.name)
    report = fresh.verify_backup(fake.name)
    assert not report.ok
    assert [(p.path, p.kind) for p in report.problems] == [("metadata.json", "metadata")]


CRASH_LOOP = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from recovery_lib.manager import RecoveryManager
    from recovery_lib.backup import BackupError

    site = Path(sys.argv[1])
    manager = RecoveryManager(site=site)
    print("ready", flush=True)
    i = 0
    while True:
        i += 1
        with open(site / "data" / "trades.csv", "ab") as handle:
            handle.write(b"2026-11-20T12:00:00Z,BTC/USD,buy,0.01,%d\\n" % i)
        (site / "state" / "session.json").write_text('{"tick": %d}' % i)
        try:
            manager.create_backup(description=f"loop {i}")
        except BackupError:
            pass
        if i % 4 == 0:
            manager.cleanup_old_backups(3)
    """
)


def test_sigkill_at_random_moments_never_leaves_a_bad_success(sandbox: Path) -> None:
    rng = random.Random(20261125)
    seen: set[str] = set()
    cleaned_leftovers = 0
    began = time.monotonic()
    for _ in range(10):
        process = subprocess.Popen(
            [sys.executable, "-c", CRASH_LOOP, str(sandbox)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 0.35))
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        assert process.returncode == -signal.SIGKILL, process.stderr.read() if process.stderr else ""
        process.stdout.close()
        if process.stderr:
            process.stderr.close()

        had_leftovers = bool(list((sandbox / "backups").glob(".tmp-*")))
        manager = RecoveryManager(site=sandbox)
        listed = manager.list_backups()
        if had_leftovers:
            cleaned_leftovers += 1
            assert any("interrupted" in note for note in manager.notes), manager.notes
        assert manager.unreadable == []
        for metadata in listed:
            seen.add(metadata.backup_id)
            assert metadata.status is BackupStatus.SUCCESS
            report = manager.verify_backup(metadata.backup_id, read_data=True)
            assert report.ok, report.summary()
    assert time.monotonic() - began < 15
    assert len(seen) >= 5  # the loop really did make (and prune) backups between the kills

    manager = RecoveryManager(site=sandbox)
    last = manager.create_backup()
    assert tmp_leftovers(manager) == []
    for metadata in manager.list_backups():
        checked = sha256sum_check(manager._get_backup_dir(metadata.backup_id))
        assert checked.returncode == 0, checked.stdout
    assert_backup_sound(manager, last)
    assert backup_tree(manager._get_backup_dir(last)) == category_files(sandbox)


@pytest.mark.usefixtures("no_racy_window")
def test_failing_the_kth_filesystem_call_for_every_k(sandbox: Path) -> None:
    """DESIGN promise 1: make the k-th call of each filesystem operation fail, for every k; never a bad
    SUCCESS backup, never an earlier backup lost, never a change to the site."""
    manager = RecoveryManager(site=sandbox)
    first = manager.create_backup()
    counting = FaultShim()
    (sandbox / "state" / "session.json").write_text('{"tick": 0}')
    with counting:
        manager.create_backup()
    # An incremental backup links, copies (open, write), chmods, renames, writes three format files, syncs.
    assert {"link", "open-write", "write", "chmod", "rename", "fsync"} <= set(counting.counts), counting.counts
    assert sum(counting.counts.values()) >= 15

    cause = os.strerror(errno.EIO)
    outcomes: Counter[str] = Counter()
    points = [(operation, k) for operation, total in counting.counts.items() for k in range(1, total + 1)]
    for tick, point in enumerate(points, start=1):
        (sandbox / "state" / "session.json").write_text(f'{{"tick": {tick}}}')
        before = site_snapshot(sandbox)
        known = {b.backup_id for b in RecoveryManager(site=sandbox).list_backups()}
        shim = FaultShim(fail=point, errno_=errno.EIO)
        try:
            with shim:
                created: str | None = manager.create_backup()
        except BackupIncomplete as exc:
            created = None
            assert cause in str(exc), (point, str(exc))
            outcome = "partial"
        except (BackupError, LockFileError) as exc:  # LockFileError: the lock file itself could not be opened
            created = None
            assert cause in str(exc), (point, str(exc))
            outcome = "error"
        else:
            outcome = "success"
        if shim.fired is None:
            # The push after the backup stores objects under objects/<2 hex>/: whether that folder exists
            # (a mkdir and a directory fsync) depends on the new files' hashes, so the counts vary by one.
            operation, k = point
            assert operation in ("mkdir", "fsync") and shim.counts[operation] == k - 1, f"{point} was never made"
            outcome = "not reached"
        outcomes[outcome] += 1
        assert tmp_leftovers(manager) == [], shim.fired
        assert site_snapshot(sandbox) == before, shim.fired
        fresh = RecoveryManager(site=sandbox)
        listed = fresh.list_backups()
        assert known <= {b.backup_id for b in listed}, f"{shim.fired}: an earlier backup was lost"
        for metadata in listed:
            if metadata.status is BackupStatus.SUCCESS:
                report = fresh.verify_backup(metadata.backup_id, read_data=True)
                assert report.ok, (shim.fired, report.summary())
        if created is not None:
            assert fresh.get_backup(created).status is BackupStatus.SUCCESS
    assert outcomes["error"] > 0 and outcomes["not reached"] <= 2, outcomes
    assert_backup_sound(manager, first)
    assert_backup_sound(manager, manager.create_backup())


def test_error_after_rename_does_not_claim_nothing_was_stored(sandbox: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    manager = RecoveryManager(site=sandbox)
    real_fsync_dir = create_module.fsync_dir

    def failing_fsync_dir(path: Path) -> None:
        if Path(path) == manager.backup_dir:
            raise OSError(errno.EIO, "Input/output error", str(path))
        real_fsync_dir(path)

    monkeypatch.setattr(create_module, "fsync_dir", failing_fsync_dir)
    with pytest.raises(BackupError) as caught:
        manager.create_backup()
    monkeypatch.undo()
    stored = RecoveryManager(site=sandbox).list_backups()
    # Either nothing is stored (as the message says) or the message must not say so.
    assert stored == [] or "Nothing was stored" not in str(caught.value)


@pytest.mark.usefixtures("no_racy_window")
def test_damaged_parent_is_not_propagated_into_a_new_success_backup(sandbox: Path) -> None:
    manager = RecoveryManager(site=sandbox)
    manager.create_backup()
    (sandbox / "data" / "positions.csv").write_text("symbol,qty\nBTC/USD,3\n")
    parent = manager.create_backup()  # holds its own copy of positions.csv
    damaged = manager._get_backup_dir(parent) / "data" / "positions.csv"
    damaged.chmod(0o644)
    with damaged.open("r+b") as handle:
        handle.truncate(3)
    child = manager.create_backup()  # the site is intact
    fresh = RecoveryManager(site=sandbox)
    status = fresh.get_backup(child).status
    report = fresh.verify_backup(child, read_data=False)
    assert status is not BackupStatus.SUCCESS or report.ok, report.summary()


def test_stray_tmp_named_file_does_not_block_backups(sandbox: Path) -> None:
    (sandbox / "backups" / ".tmp-notes").write_text("someone's scratch file\n")
    manager = RecoveryManager(site=sandbox)
    assert manager.list_backups() == []
    assert_backup_sound(manager, manager.create_backup())


def test_file_deleted_between_scan_and_copy_is_simply_not_in_the_backup(
    sandbox: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer's temp file renamed away mid-backup must not make the backup PARTIAL."""
    import recovery_lib.backup.create as create

    transient = sandbox / "state" / ".session.json.abc123.tmp"
    transient.write_text("{}")
    real = create.copy_and_hash

    def vanish_first(source: Path, target: Path, mode: int):  # noqa: ANN202
        if Path(source).name == transient.name:
            Path(source).unlink()
        return real(source, target, mode)

    monkeypatch.setattr(create, "copy_and_hash", vanish_first)
    manager = RecoveryManager(site=sandbox)
    backup_id = manager.create_backup()
    metadata = manager.get_backup(backup_id)
    assert metadata.status is BackupStatus.SUCCESS and metadata.problems == []
    report = manager.verify_backup(backup_id)
    assert report.ok
    assert "state/.session.json.abc123.tmp" not in {entry.path for entry in report.manifest.files}
