"""One writer at a time: the backup directory lock, its holder record, the stale rule, and real contention.

Other holders are real processes (``sys.executable -c``), killed with SIGKILL where the test needs a
holder that dies without cleaning up; the kernel must then release the ``flock``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest

from recovery_lib.backup import LockedError, RetentionPolicy
from recovery_lib.backup.lock import LOCK_NAME, BackupLock
from recovery_lib.manager import RecoveryManager

HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from recovery_lib.backup.lock import BackupLock

    lock = BackupLock(Path(sys.argv[1]), sys.argv[2])
    lock.acquire()
    print("held", flush=True)
    time.sleep(float(sys.argv[3]))
    lock.release()
    """
)

CREATOR = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from recovery_lib.manager import RecoveryManager

    site, role, marker = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    if role == "first":
        def slow(done, total):
            marker.touch()  # we hold the lock now
            time.sleep(0.1)
        manager = RecoveryManager(site=site, progress=slow, lock_timeout_s=30)
    else:
        while not marker.exists():
            time.sleep(0.01)
        manager = RecoveryManager(site=site, lock_timeout_s=30)
    began = time.monotonic()
    backup_id = manager.create_backup(description=role)
    print(json.dumps({"id": backup_id, "waited": time.monotonic() - began}), flush=True)
    """
)

Spawn = Callable[..., subprocess.Popen[str]]


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    """Start ``python -c CODE ARGS...``; every process started here is killed at teardown."""
    started: list[subprocess.Popen[str]] = []

    def start(code: str, *args: str) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


def backup_dirs(manager: RecoveryManager) -> list[str]:
    if not manager.backup_dir.is_dir():
        return []
    # Not the lock, nor .replicas (the push records: the sandbox pushes to its replica after a backup).
    return sorted(p.name for p in manager.backup_dir.iterdir() if p.name not in (LOCK_NAME, ".replicas"))


def wait_until_held(lock_file: Path, process: subprocess.Popen[str], timeout: float = 10.0) -> dict:
    """Wait until ``process`` has recorded itself in the lock file; return the record."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        try:
            record = json.loads(lock_file.read_text() or "{}")
        except (OSError, ValueError):
            record = {}
        if record.get("pid") == process.pid:
            return record
        time.sleep(0.01)
    raise AssertionError(f"pid {process.pid} never recorded itself in {lock_file}")


def sigkill(process: subprocess.Popen[str]) -> None:
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    assert process.returncode == -signal.SIGKILL


# --- a live holder in another process ---------------------------------------------------------


def test_busy_lock_fails_with_who_holds_it_and_changes_nothing(sandbox: Path, spawn: Spawn) -> None:
    manager = RecoveryManager(site=sandbox, lock_timeout_s=0.3)
    existing = manager.create_backup()
    before = backup_dirs(manager)
    holder = spawn(HOLDER, str(manager.backup_dir), "restore", "60")
    record = wait_until_held(manager.backup_dir / LOCK_NAME, holder)
    assert record["operation"] == "restore"
    assert record["host"] == socket.gethostname()
    datetime.fromisoformat(record["since"].replace("Z", "+00:00"))

    began = time.monotonic()
    with pytest.raises(LockedError) as caught:
        manager.create_backup()
    waited = time.monotonic() - began
    message = str(caught.value)
    assert f"pid {holder.pid}" in message
    assert "restore" in message
    assert socket.gethostname() in message
    assert str(manager.backup_dir) in message
    assert 0.25 <= waited < 5  # it waited for the timeout, then gave up
    assert backup_dirs(manager) == before  # no backup, no .tmp-* directory

    assert manager.delete_backup(existing) is False  # the original API: False, with the reason
    assert manager.last_error and f"pid {holder.pid}" in manager.last_error
    with pytest.raises(LockedError, match=f"pid {holder.pid}"):
        manager.quarantine_backup(existing, "damaged")
    with pytest.raises(LockedError, match=f"pid {holder.pid}"):
        manager.prune(RetentionPolicy(keep_last=1), dry_run=False)
    with pytest.raises(LockedError):
        manager.cleanup_old_backups(1)
    assert backup_dirs(manager) == before
    assert RecoveryManager(site=sandbox).verify_backup(existing).ok
    assert holder.poll() is None  # the holder was never disturbed


def test_lock_of_a_sigkilled_holder_is_released_by_the_kernel(sandbox: Path, spawn: Spawn) -> None:
    manager = RecoveryManager(site=sandbox, lock_timeout_s=0.2)
    holder = spawn(HOLDER, str(manager.backup_dir), "backup", "60")
    wait_until_held(manager.backup_dir / LOCK_NAME, holder)
    with pytest.raises(LockedError):
        manager.create_backup()

    sigkill(holder)
    # The dead holder's record is still in the file; it does not matter.
    assert json.loads((manager.backup_dir / LOCK_NAME).read_text())["pid"] == holder.pid
    backup_id = manager.create_backup()
    report = RecoveryManager(site=sandbox).verify_backup(backup_id, read_data=True)
    assert report.ok, report.summary()
    assert backup_dirs(manager) == [backup_id]


def test_lock_file_naming_a_dead_process_does_not_block(sandbox: Path) -> None:
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(finished.stdout)
    lock_file = sandbox / "backups" / LOCK_NAME
    lock_file.write_text(
        json.dumps({"operation": "backup", "pid": dead_pid, "host": socket.gethostname(), "since": "2026-01-01"})
    )
    manager = RecoveryManager(site=sandbox, lock_timeout_s=0.0)
    backup_id = manager.create_backup()
    assert RecoveryManager(site=sandbox).verify_backup(backup_id).ok
    assert BackupLock(manager.backup_dir, "check").holder() == {}  # released, record cleared


def test_waiting_writer_proceeds_when_the_holder_finishes(sandbox: Path, spawn: Spawn) -> None:
    manager = RecoveryManager(site=sandbox, lock_timeout_s=20)
    holder = spawn(HOLDER, str(manager.backup_dir), "prune", "0.6")
    wait_until_held(manager.backup_dir / LOCK_NAME, holder)
    began = time.monotonic()
    backup_id = manager.create_backup()
    assert time.monotonic() - began >= 0.3
    assert holder.wait(timeout=10) == 0
    assert RecoveryManager(site=sandbox).verify_backup(backup_id).ok


def test_two_concurrent_backups_run_one_after_the_other(sandbox: Path, spawn: Spawn, tmp_path: Path) -> None:
    marker = tmp_path / "first-holds-the-lock"
    first = spawn(CREATOR, str(sandbox), "first", str(marker))
    second = spawn(CREATOR, str(sandbox), "second", str(marker))
    out_first, err_first = first.communicate(timeout=30)
    out_second, err_second = second.communicate(timeout=30)
    assert first.returncode == 0, err_first
    assert second.returncode == 0, err_second
    a, b = json.loads(out_first), json.loads(out_second)

    manager = RecoveryManager(site=sandbox)
    assert [m.backup_id for m in manager.list_backups()] == [b["id"], a["id"]]
    # The second really waited for the first: it built on the finished first backup.
    assert manager.get_backup(b["id"]).parent_id == a["id"]
    assert manager.get_backup(b["id"]).description == "second"
    assert b["waited"] >= 0.2
    for backup_id in (a["id"], b["id"]):
        report = manager.verify_backup(backup_id, read_data=True)
        assert report.ok, report.summary()
    assert not list(manager.backup_dir.glob(".tmp-*"))


def test_reader_does_not_clean_up_while_another_process_holds_the_lock(sandbox: Path, spawn: Spawn) -> None:
    """A ``.tmp-*`` directory may be a backup in progress: only whoever gets the lock removes it."""
    manager = RecoveryManager(site=sandbox)
    existing = manager.create_backup()
    holder = spawn(HOLDER, str(manager.backup_dir), "backup", "60")
    wait_until_held(manager.backup_dir / LOCK_NAME, holder)
    in_progress = manager.backup_dir / ".tmp-20261125T000000Z-full-abc123"
    (in_progress / "data").mkdir(parents=True)

    reader = RecoveryManager(site=sandbox)
    assert [m.backup_id for m in reader.list_backups()] == [existing]
    assert in_progress.is_dir()
    assert reader.notes == []

    sigkill(holder)  # now it is a leftover of a dead writer
    cleaner = RecoveryManager(site=sandbox)
    assert [m.backup_id for m in cleaner.list_backups()] == [existing]
    assert not in_progress.exists()
    assert any(in_progress.name in note for note in cleaner.notes)


# --- in one process ---------------------------------------------------------------------------


def test_holder_is_recorded_while_a_backup_runs(sandbox: Path) -> None:
    seen: list[dict] = []
    lock_file = sandbox / "backups" / LOCK_NAME

    def look(done: int, total: int) -> None:
        if not seen:
            seen.append(json.loads(lock_file.read_text()))

    manager = RecoveryManager(site=sandbox, progress=look)
    manager.create_backup()
    [record] = seen
    assert record["pid"] == os.getpid()
    assert record["operation"] == "backup"
    assert record["host"] == socket.gethostname()
    since = datetime.fromisoformat(record["since"].replace("Z", "+00:00"))
    assert abs(time.time() - since.timestamp()) < 60
    assert lock_file.read_text() == ""  # released: nobody is recorded as holding it
    assert lock_file.exists()  # the file stays; removing it would race other lockers


def test_lock_is_exclusive_between_holders_and_reentrant_within_one(sandbox: Path) -> None:
    backup_dir = sandbox / "backups"
    first = BackupLock(backup_dir, "restore")
    other = BackupLock(backup_dir, "backup", timeout_s=0.1)
    assert first.acquire()
    assert first.acquire()  # re-entrant
    assert other.acquire(blocking=False) is False
    with pytest.raises(LockedError, match=f"restore by pid {os.getpid()}"):
        other.acquire()
    first.release()
    assert other.acquire(blocking=False) is False  # still held once
    first.release()
    assert other.acquire(blocking=False) is True
    assert other.holder()["operation"] == "backup"
    other.release()
    with first:
        assert first.holder()["operation"] == "restore"
        assert other.acquire(blocking=False) is False
    assert other.acquire(blocking=False) is True
    other.release()


def test_manager_operations_refuse_while_this_process_holds_another_lock(sandbox: Path) -> None:
    manager = RecoveryManager(site=sandbox, lock_timeout_s=0.1)
    existing = manager.create_backup()
    with BackupLock(manager.backup_dir, "restore"), pytest.raises(LockedError, match="restore"):
        manager.create_backup()
    assert backup_dirs(manager) == [existing]
    assert manager.create_backup() != existing  # free again
