"""Concurrency between real processes: one writer at a time per backup directory, clear waits and refusals.

Every operation under test runs in its own Python process (``WORKER``). Overlap is made deterministic
with handshakes instead of sleeps: the first operation pauses in its progress callback (so it provably
holds the backup directory's lock, with real work half done on a ~32 MB site) until the second one has
*observed the lock busy*; the worker records every lock attempt (when it began, whether the lock was
busy, when it was granted), so no test can pass without the operations really colliding.

Promises checked: two backups serialize and both verify; a backup, prune or restore that meets another
operation waits for it or is refused with a message naming the holder (operation, pid, host); the
results are exactly right afterwards (a waiting backup captures the fully restored site, a prune never
touches the backup being written, a waiting restore restores exactly); a SIGKILLed holder's lock is
released by the kernel and crash recovery removes what it left; a stale lock file naming a dead pid
blocks nothing.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from site_state import (
    assert_success_backups_verify,
    backup_files,
    backups_bytes,
    leftovers,
    make_tiny_site,
    scaled,
    site_files,
)

from recovery_lib.backup import BackupStatus
from recovery_lib.backup.lock import LOCK_NAME, BackupLock
from recovery_lib.manager import PRE_RECOVERY_TAG, RecoveryManager

BIG_FILE = "data/big.bin"
BIG_BYTES = 8 << 20  # sparse apart from a random head: instant to create, real work to copy and hash
TIMEOUT_S = 60.0  # nothing here may take that long; it only stops a hung process from hanging the suite

WORKER = textwrap.dedent(
    '''
    """Run one recovery operation, recording lock attempts; pause where the test says (files in DIR)."""
    import json, os, sys, time
    from pathlib import Path

    import recovery_lib.backup.lock as lock_module
    from recovery_lib.manager import RecoveryManager
    from recovery_lib.backup import RetentionPolicy
    from recovery_lib.errors import RecoveryError
    from recovery_lib.restore.journal import JOURNAL_NAME

    spec = json.loads(sys.argv[1])
    site, signals = Path(spec["site"]), Path(spec["dir"])
    out = {"pid": os.getpid(), "attempts": [], "notes": []}


    def mark(name):
        if name:
            (signals / name).touch()


    def wait_for(name):
        deadline = time.monotonic() + 30
        while not (signals / name).exists():
            if time.monotonic() > deadline:
                raise SystemExit(f"pid {os.getpid()} gave up waiting for {name}")
            time.sleep(0.002)


    real_flock_within = lock_module.flock_within


    def observed_flock_within(fd, operation, timeout_s, poll_s=0.02):
        """The lock module's wait, recording whether the lock was busy and when it was granted."""
        began = time.monotonic()
        if real_flock_within(fd, operation, 0.0):
            out["attempts"].append(
                {"began": began, "ended": time.monotonic(), "timeout": timeout_s, "busy": False, "got": True}
            )
            return True
        if timeout_s > 0:
            mark(spec.get("waiting"))
        got = real_flock_within(fd, operation, timeout_s, poll_s) if timeout_s > 0 else False
        out["attempts"].append(
            {"began": began, "ended": time.monotonic(), "timeout": timeout_s, "busy": True, "got": got}
        )
        return got


    lock_module.flock_within = observed_flock_within


    def progress(done, total):
        staging = (site / JOURNAL_NAME).exists()
        if "holding" not in out and (spec.get("hold_in") != "staging" or staging):
            out["holding"] = time.monotonic()
            out["holding_staging"] = staging
            mark(spec.get("holding"))
            if spec.get("hold_until"):
                wait_for(spec["hold_until"])
        out["last_progress"] = time.monotonic()


    mark(spec.get("ready"))
    if spec.get("start_after"):
        wait_for(spec["start_after"])
    manager = RecoveryManager(
        site=site, backup_dir=spec.get("backup_dir"), lock_timeout_s=spec["lock_timeout"], progress=progress
    )
    out["call"] = time.monotonic()
    try:
        if spec["op"] == "backup":
            out["result"] = manager.create_backup(description=spec.get("description", ""))
        elif spec["op"] == "restore":
            out["result"] = manager.restore_backup(spec["backup_id"], *spec["flags"])
            out["message"] = getattr(manager, "last_error", None)
            if manager.last_result is not None:
                out["pre_recovery"] = manager.last_result.pre_recovery_backup_id
        elif spec["op"] == "prune":
            plan = manager.prune(RetentionPolicy(keep_last=spec["keep_last"]), dry_run=False)
            out["result"] = sorted(d.backup.backup_id for d in plan.remove)
        elif spec["op"] == "list":
            out["result"] = [m.backup_id for m in manager.list_backups()]
        else:
            raise SystemExit(f"unknown op {spec['op']}")
    except RecoveryError as exc:
        out["error"], out["message"] = type(exc).__name__, str(exc)
    out["end"] = time.monotonic()
    out["notes"] = manager.notes
    print(json.dumps(out), flush=True)
    '''
)


# --- helpers ------------------------------------------------------------------------------------


@dataclass
class Worker:
    """A recovery operation running in its own process."""

    process: subprocess.Popen[str]
    signals: Path
    spec: dict[str, Any]
    _out: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_signal(self, name: str, timeout: float = 30.0) -> None:
        """Wait until this worker has touched ``name``; fail at once (with its stderr) if it died."""
        deadline = time.monotonic() + timeout
        while not (self.signals / name).exists():
            if self.process.poll() is not None:
                out, err = self.process.communicate()
                raise AssertionError(f"worker {self.spec['op']} exited {self.process.returncode} first:\n{out}\n{err}")
            assert time.monotonic() < deadline, f"worker {self.spec['op']} never signalled {name}"
            time.sleep(0.002)

    def result(self) -> dict[str, Any]:
        """Its JSON report, once it has exited cleanly."""
        if self._out is None:
            out, err = self.process.communicate(timeout=TIMEOUT_S)
            assert self.process.returncode == 0, f"worker {self.spec['op']} exited {self.process.returncode}:\n{err}"
            self._out = json.loads(out.strip().splitlines()[-1])
        return self._out


Start = Callable[..., Worker]


@pytest.fixture
def ops(tmp_path: Path) -> Iterator[Start]:
    """Start workers; every one still running at teardown is SIGKILLed and reaped (none is left behind)."""
    signals = tmp_path / "signals"
    signals.mkdir()
    started: list[Worker] = []

    def start(op: str, site: Path, lock_timeout: float = 30.0, **spec: Any) -> Worker:
        spec.update(op=op, site=str(site), dir=str(signals), lock_timeout=lock_timeout)
        process = subprocess.Popen(
            [sys.executable, "-c", WORKER, json.dumps(spec)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        worker = Worker(process, signals, spec)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        if worker.process.poll() is None:
            worker.process.kill()
        worker.process.communicate(timeout=10)
        assert worker.process.poll() is not None


def release(signals: Path, name: str) -> None:
    """Let a paused worker go on: it waits for this file."""
    (signals / name).touch()


@pytest.fixture
def big_site(tmp_path: Path) -> Path:
    """The tiny site plus a ~32 MB data file, so every copy and hash is real work that takes time."""
    site = make_tiny_site(tmp_path / "site")
    with open(site / BIG_FILE, "wb") as handle:
        handle.write(os.urandom(4096))
        handle.truncate(BIG_BYTES)
    return site


def damage(site: Path) -> None:
    """Break every category a little: what a restore from the good backup must undo."""
    (site / "config/config.toml").write_bytes(b"[exchange\nname = broken\n")
    (site / "state/session.json").write_bytes(b'{"session": 8, "open": false}\n')
    with open(site / BIG_FILE, "r+b") as handle:
        handle.write(b"DAMAGED!")
    (site / "data/stray.csv").write_bytes(b"not in any backup\n")


def restore_leftovers(site: Path) -> list[str]:
    """Journal, staging and old trees of a restore in the site root (and the helper's temp names)."""
    found = {p.name for p in site.iterdir() if p.name.startswith((".recovery-", "..recovery-"))}
    return sorted(found | set(leftovers(site)))


def assert_clean(site: Path) -> None:
    """Nothing half-done anywhere and the lock free, with nobody recorded as holding it."""
    assert restore_leftovers(site) == []
    assert sorted(p.name for p in (site / "backups").glob(".tmp*")) == []
    probe = BackupLock(site / "backups", "probe")
    assert probe.acquire(blocking=False), f"lock still held: {probe.holder()}"
    probe.release()
    assert (site / "backups" / LOCK_NAME).read_text() == ""


def busy_attempt(report: dict[str, Any]) -> dict[str, Any]:
    """The worker's blocking lock attempt that found the lock held by someone else (exactly one).

    Non-blocking looks (a reader checking whether crash recovery is needed) are not counted.
    """
    busy = [a for a in report["attempts"] if a["busy"] and a["timeout"] > 0]
    assert len(busy) == 1, f"expected one attempt on a busy lock, got {report['attempts']}"
    return busy[0]


def assert_waited_for(waiter: dict[str, Any], holder: dict[str, Any]) -> None:
    """``waiter`` asked for the lock while ``holder`` held it (mid-work) and got it only after."""
    attempt = busy_attempt(waiter)
    assert attempt["got"] is True
    assert attempt["began"] < holder["last_progress"] < attempt["ended"], (attempt, holder)
    assert attempt["ended"] - attempt["began"] >= 0.05  # it really waited


def backup_ids(site: Path) -> list[str]:
    return sorted(backups_bytes(site / "backups"))


def stored(site: Path, backup_id: str) -> dict[str, bytes]:
    return backup_files(site / "backups" / backup_id)


def dead_pid() -> int:
    """The pid of a process that has exited (and was reaped)."""
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, timeout=TIMEOUT_S
    )
    pid = int(done.stdout)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    return pid


# --- two writers at once ------------------------------------------------------------------------


def test_two_backups_started_at_once_run_one_after_the_other(big_site: Path, ops: Start) -> None:
    """Two simultaneous backups both succeed, strictly one after the other; both verify; no leftovers."""
    signals = big_site.parent / "signals"
    ids: list[str] = []
    for round_ in range(scaled(2)):
        workers = {
            name: ops(
                "backup",
                big_site,
                ready=f"ready-{name}{round_}",
                start_after=f"go{round_}",
                holding=f"holding-{name}{round_}",
                hold_until=f"release{round_}",
                waiting=f"waiting-{name}{round_}",
                description=f"{name}{round_}",
            )
            for name in ("a", "b")
        }
        for name, worker in workers.items():
            worker.wait_signal(f"ready-{name}{round_}")
        release(signals, f"go{round_}")
        deadline = time.monotonic() + 30
        while True:  # whichever got the lock holds it mid-backup while the other waits for it
            pair = [n for n in ("a", "b") if (signals / f"holding-{n}{round_}").exists()]
            if pair and (signals / f"waiting-{'b' if pair[0] == 'a' else 'a'}{round_}").exists():
                break
            assert time.monotonic() < deadline, "the two backups never collided"
            assert all(w.process.poll() is None for w in workers.values())
            time.sleep(0.002)
        first_name = pair[0]
        first, second = workers[first_name], workers["b" if first_name == "a" else "a"]
        assert (big_site / "backups" / LOCK_NAME).exists()
        record = BackupLock(big_site / "backups", "probe").holder()
        assert record["pid"] == first.pid and record["operation"] == "backup"
        release(signals, f"release{round_}")

        a, b = first.result(), second.result()
        assert "error" not in a and "error" not in b, (a, b)
        assert_waited_for(b, a)  # the second found it busy and started only after the first had finished
        assert b["holding"] > a["last_progress"]
        manager = RecoveryManager(site=big_site)
        newest = manager.list_backups()[:2]
        assert [m.backup_id for m in newest] == [b["result"], a["result"]]
        assert newest[0].parent_id == a["result"]  # built on the finished first backup, not a half-written one
        assert [m.status for m in newest] == [BackupStatus.SUCCESS] * 2
        assert stored(big_site, a["result"]) == stored(big_site, b["result"]) == site_files(big_site)
        ids += [a["result"], b["result"]]

    assert sorted(assert_success_backups_verify(big_site)) == sorted(ids)
    assert_clean(big_site)


def test_a_backup_that_cannot_wait_is_refused_naming_the_running_backup(big_site: Path, ops: Start) -> None:
    """A second backup with a short lock timeout is refused with who holds the lock (op, pid, host);
    it stores nothing, and the running backup completes and verifies."""
    signals = big_site.parent / "signals"
    existing = RecoveryManager(site=big_site).create_backup(description="before")
    first = ops("backup", big_site, holding="holding", hold_until="release")
    first.wait_signal("holding")
    in_progress = sorted(p.name for p in (big_site / "backups").glob(".tmp-*"))
    assert len(in_progress) == 1  # the first backup really is half-written now

    second = ops("backup", big_site, lock_timeout=0.3).result()
    assert second.get("error") == "LockedError", second
    message = second["message"]
    assert f"backup by pid {first.pid}" in message
    assert socket.gethostname() in message and str(big_site / "backups") in message
    assert busy_attempt(second)["got"] is False
    assert 0.3 <= second["end"] - second["call"] < 10
    # It stored nothing and removed nothing: in particular not the other's backup in progress.
    assert backup_ids(big_site) == [existing]
    assert sorted(p.name for p in (big_site / "backups").glob(".tmp-*")) == in_progress

    release(signals, "release")
    done = first.result()
    assert "error" not in done
    assert backup_ids(big_site) == sorted([existing, done["result"]])
    assert sorted(assert_success_backups_verify(big_site)) == sorted([existing, done["result"]])
    assert_clean(big_site)


# --- a backup during a restore, a restore during a backup ----------------------------------------


@pytest.mark.parametrize("patience", ["waits", "refused"])
def test_a_backup_started_during_a_restore_waits_for_it_or_is_refused(
    big_site: Path, ops: Start, patience: str
) -> None:
    """A backup that meets a restore mid-staging waits and then captures the fully restored site (never
    a half-restored one), or is refused naming the restore and its pid; the restore's result is exact."""
    signals = big_site.parent / "signals"
    good = RecoveryManager(site=big_site).create_backup(description="known good")
    damage(big_site)
    damaged = site_files(big_site)
    restore = ops(
        "restore", big_site, backup_id=good, flags=[True, True, True], hold_in="staging", holding="staging",
        hold_until="release",
    )  # fmt: skip
    restore.wait_signal("staging")
    assert (big_site / ".recovery-journal.json").exists()  # the restore is half-way: staged, not swapped

    if patience == "waits":
        backup = ops("backup", big_site, waiting="waiting", description="during the restore")
        backup.wait_signal("waiting")
    else:
        refused = ops("backup", big_site, lock_timeout=0.3).result()
        assert refused.get("error") == "LockedError", refused
        assert f"restore by pid {restore.pid}" in refused["message"]
        assert socket.gethostname() in refused["message"]
        assert "busy" in refused["message"]
    release(signals, "release")

    restored = restore.result()
    assert restored["result"] is True, restored
    assert site_files(big_site) == stored(big_site, good)  # exactly the good backup, stray file gone
    pre = restored["pre_recovery"]
    assert stored(big_site, pre) == damaged  # the replaced state was saved first
    expected = {good, pre}
    if patience == "waits":
        during = backup.result()
        assert "error" not in during, during
        assert_waited_for(during, restored)
        assert stored(big_site, during["result"]) == stored(big_site, good)  # the restored site, complete
        expected.add(during["result"])
    assert backup_ids(big_site) == sorted(expected)
    assert sorted(assert_success_backups_verify(big_site)) == sorted(expected)
    assert_clean(big_site)


@pytest.mark.parametrize("patience", ["waits", "refused"])
def test_a_restore_started_during_a_backup_waits_for_it_or_is_refused(
    big_site: Path, ops: Start, patience: str
) -> None:
    """A restore that meets a running backup waits and then restores exactly (the backup keeps the
    consistent pre-restore state), or is refused naming the backup and changes nothing at all."""
    signals = big_site.parent / "signals"
    good = RecoveryManager(site=big_site).create_backup(description="known good")
    damage(big_site)
    damaged = site_files(big_site)
    backup = ops("backup", big_site, holding="holding", hold_until="release", description="of the damage")
    backup.wait_signal("holding")

    if patience == "waits":
        restore = ops("restore", big_site, backup_id=good, flags=[True, False, True], waiting="waiting")
        restore.wait_signal("waiting")
        assert site_files(big_site) == damaged  # nothing restored while the backup reads the site
    else:
        refused = ops("restore", big_site, lock_timeout=0.3, backup_id=good, flags=[True, False, True]).result()
        assert refused["result"] is False, refused
        assert f"backup by pid {backup.pid}" in refused["message"] and "busy" in refused["message"]
        assert site_files(big_site) == damaged
        assert not refused.get("pre_recovery")
    release(signals, "release")

    taken = backup.result()
    assert "error" not in taken, taken
    assert stored(big_site, taken["result"]) == damaged  # a consistent snapshot of the state it saw
    expected = {good, taken["result"]}
    manager = RecoveryManager(site=big_site)
    if patience == "waits":
        restored = restore.result()
        assert restored["result"] is True, restored
        assert_waited_for(restored, taken)
        good_files = stored(big_site, good)
        assert {k: v for k, v in site_files(big_site).items() if not k.startswith("state/")} == {
            k: v for k, v in good_files.items() if not k.startswith("state/")
        }
        assert site_files(big_site)["state/session.json"] == damaged["state/session.json"]  # not asked for
        assert stored(big_site, restored["pre_recovery"]) == damaged
        expected.add(restored["pre_recovery"])
    else:
        assert site_files(big_site) == damaged
        assert manager.list_backups(tags=[PRE_RECOVERY_TAG]) == []
    assert backup_ids(big_site) == sorted(expected)
    assert sorted(assert_success_backups_verify(big_site)) == sorted(expected)
    assert_clean(big_site)


# --- a prune during a backup --------------------------------------------------------------------


@pytest.mark.parametrize("patience", ["waits", "refused"])
def test_a_prune_during_a_backup_never_touches_the_backup_being_written(
    big_site: Path, ops: Start, patience: str
) -> None:
    """A prune that meets a running backup waits and then prunes with the new backup counted (it is
    kept), or is refused naming the backup; the half-written backup is never removed; all verify."""
    signals = big_site.parent / "signals"
    manager = RecoveryManager(site=big_site)
    old = []
    for n in range(3):
        (big_site / "state/session.json").write_text(f'{{"session": {n}}}\n')
        old.append(manager.create_backup(description=f"old {n}"))
    before = backups_bytes(big_site / "backups")
    backup = ops("backup", big_site, holding="holding", hold_until="release", description="new")
    backup.wait_signal("holding")
    [in_progress] = list((big_site / "backups").glob(".tmp-*"))

    if patience == "waits":
        prune = ops("prune", big_site, keep_last=1, waiting="waiting")
        prune.wait_signal("waiting")
    else:
        refused = ops("prune", big_site, lock_timeout=0.3, keep_last=1).result()
        assert refused.get("error") == "LockedError", refused
        assert f"backup by pid {backup.pid}" in refused["message"]
    assert in_progress.is_dir()  # the backup being written is untouched while the prune waits or gives up
    assert backups_bytes(big_site / "backups") == before
    release(signals, "release")

    new = backup.result()
    assert "error" not in new, new
    assert RecoveryManager(site=big_site).verify_backup(new["result"], read_data=True).ok
    if patience == "waits":
        pruned = prune.result()
        assert "error" not in pruned, pruned
        assert_waited_for(pruned, new)
        assert pruned["result"] == sorted(old)  # the new backup was complete, counted and kept
        assert backup_ids(big_site) == [new["result"]]
    else:
        assert backup_ids(big_site) == sorted([*old, new["result"]])
        assert {k: v for k, v in backups_bytes(big_site / "backups").items() if k in before} == before
    assert stored(big_site, new["result"]) == site_files(big_site)
    assert sorted(assert_success_backups_verify(big_site)) == backup_ids(big_site)
    assert_clean(big_site)


# --- holders that died --------------------------------------------------------------------------


@pytest.mark.parametrize("operation", ["backup", "restore"])
def test_a_holder_sigkilled_mid_operation_does_not_block_the_next_one(
    big_site: Path, ops: Start, operation: str
) -> None:
    """A holder SIGKILLed half-way leaves its record and its debris; the next operation gets the lock at
    once (no waiting at all), crash recovery removes the debris, and the site is as before."""
    good = RecoveryManager(site=big_site).create_backup(description="known good")
    damage(big_site)
    before_site = site_files(big_site)
    before_backups = backups_bytes(big_site / "backups")
    if operation == "backup":
        victim = ops("backup", big_site, holding="holding", hold_until="never")
    else:
        victim = ops(
            "restore", big_site, backup_id=good, flags=[True, True, True], hold_in="staging", holding="holding",
            hold_until="never",
        )  # fmt: skip
    victim.wait_signal("holding")
    record = BackupLock(big_site / "backups", "probe").holder()
    assert record["pid"] == victim.pid and record["operation"] == operation
    if operation == "backup":
        assert len(list((big_site / "backups").glob(".tmp-*"))) == 1
    else:
        assert len(restore_leftovers(big_site)) == 2  # journal and staging tree

    os.kill(victim.pid, signal.SIGKILL)
    victim.process.wait(timeout=10)
    assert victim.process.returncode == -signal.SIGKILL
    assert BackupLock(big_site / "backups", "probe").holder()["pid"] == victim.pid  # the record survives

    after = ops("backup", big_site, lock_timeout=0.0, description="after the crash").result()
    assert "error" not in after, after
    assert [a["busy"] for a in after["attempts"]] == [False] * len(after["attempts"])
    expected_note = ".tmp-" if operation == "backup" else "rolled back interrupted restore"
    assert any(expected_note in note for note in after["notes"]), after["notes"]
    assert site_files(big_site) == before_site  # a killed restore never got to the swap: rolled back
    assert stored(big_site, after["result"]) == before_site
    now = backups_bytes(big_site / "backups")
    assert {k: v for k, v in now.items() if k in before_backups} == before_backups
    assert sorted(assert_success_backups_verify(big_site)) == sorted(now)
    assert_clean(big_site)


@pytest.mark.parametrize("operation", ["backup", "restore", "prune", "cli backup"])
def test_a_stale_lock_file_naming_a_dead_pid_blocks_nothing(
    big_site: Path, ops: Start, operation: str, tmp_path: Path
) -> None:
    """A lock file whose record names a dead process, on a lock nobody holds, is ignored: every
    operation proceeds at once (never waits, never refused) and afterwards nobody is recorded."""
    good = RecoveryManager(site=big_site).create_backup(description="known good")
    damage(big_site)
    gone = dead_pid()
    lock_file = big_site / "backups" / LOCK_NAME
    stale = {"operation": "restore", "pid": gone, "host": socket.gethostname(), "since": "2026-01-01T00:00:00Z"}
    lock_file.write_text(json.dumps(stale))

    if operation == "cli backup":
        began = time.monotonic()
        done = subprocess.run(
            [str(Path(sys.executable).parent / "recovery"), "backup", "create", "--site", str(big_site)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            cwd=tmp_path,
        )
        assert done.returncode == 0, done.stderr
        assert time.monotonic() - began < 10  # the CLI would wait up to 30 s for a lock really held
        assert f"pid {gone}" not in done.stdout + done.stderr
        [new] = [b for b in backup_ids(big_site) if b != good]
        assert stored(big_site, new) == site_files(big_site)
    else:
        spec: dict[str, Any] = {"backup_id": good, "flags": [True, True, True], "keep_last": 1}
        report = ops(operation, big_site, lock_timeout=0.0, **spec).result()
        assert "error" not in report and report["result"] not in (False, None), report
        assert report["attempts"] and not any(a["busy"] for a in report["attempts"])
        if operation == "backup":
            assert stored(big_site, report["result"]) == site_files(big_site)
        elif operation == "restore":
            assert site_files(big_site) == stored(big_site, good)
        else:
            assert report["result"] == []  # nothing to prune: the only backup is the newest
    assert BackupLock(big_site / "backups", "probe").holder() == {}  # the dead pid's record is gone
    assert_success_backups_verify(big_site)
    assert_clean(big_site)


# --- a second backup directory does not make a second writer of the site ------------------------


@pytest.mark.parametrize("operation", ["backup", "list"])
def test_an_operation_on_another_backup_directory_leaves_a_running_restore_alone(
    big_site: Path, ops: Start, operation: str, tmp_path: Path
) -> None:
    """A backup to (or a listing of) a second backup directory of the same site, e.g. an off-site copy,
    during a restore: it must wait for the restore or be refused, never undo it; the restore succeeds."""
    signals = big_site.parent / "signals"
    good = RecoveryManager(site=big_site).create_backup(description="known good")
    damage(big_site)
    restore = ops(
        "restore", big_site, backup_id=good, flags=[True, True, True], hold_in="staging", holding="staging",
        hold_until="release",
    )  # fmt: skip
    restore.wait_signal("staging")
    offsite = ops(operation, big_site, backup_dir=str(tmp_path / "offsite"), waiting="offsite-waiting")
    deadline = time.monotonic() + 30
    while offsite.process.poll() is None and not (signals / "offsite-waiting").exists():
        assert time.monotonic() < deadline
        time.sleep(0.002)
    release(signals, "release")

    restored, other = restore.result(), offsite.result()
    assert restored["result"] is True, (restored, other)
    assert site_files(big_site) == stored(big_site, good)
    assert not any("interrupted restore" in note for note in other["notes"]), other["notes"]
    assert_clean(big_site)
