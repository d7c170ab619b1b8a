"""Crash recovery of a restore through its journal: the next operation finishes or rolls back.

Simulated crashes (an exception that skips all cleanup) at each phase, real SIGKILLs at exact
points in a child process, and SIGKILLs at seeded random moments of a restore of a larger site.
After every crash and the next ``RecoveryManager`` operation, each category is wholly the old
state or wholly the backup's, never a mix, and no restore artifacts remain in the site.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import recovery_lib.restore.apply as restore_module
import recovery_lib.restore.journal as journal_module
from recovery_lib.fsops.fileio import make_writable_tree
from recovery_lib.manager import RecoveryManager
from recovery_lib.restore.journal import JOURNAL_NAME
from recovery_lib.restore.plan import Action
from recovery_lib.sandbox import SandboxSpec, create_sandbox

CATEGORIES = ("config", "state", "data")
NON_CATEGORY = ("exchange", "run", "recovery.toml", ".recovery-sandbox.json")


class SimulatedCrash(BaseException):
    """The process died here: no except/finally cleanup of the library's own may count."""


# --- helpers ------------------------------------------------------------------------------------


def files_under(root: Path, top: str) -> dict[str, bytes]:
    base = root / top
    if not base.is_dir():
        return {}
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(base.rglob("*")) if p.is_file()}


def categories_of(root: Path) -> dict[str, dict[str, bytes]]:
    return {category: files_under(root, category) for category in CATEGORIES}


def non_category_bytes(site: Path) -> dict[str, bytes]:
    found = {}
    for name in NON_CATEGORY:
        path = site / name
        if path.is_file():
            found[name] = path.read_bytes()
        else:
            found.update(files_under(site, name))
    return found


def leftovers(site: Path) -> list[str]:
    """Restore artifacts in the site root: staging/old trees, the journal (or its temp file)."""
    return sorted(
        p.name
        for p in site.iterdir()
        if p.name.startswith((".recovery-", "..recovery-")) and p.name != ".recovery-sandbox.json"
    )


def journal_phase(site: Path) -> str | None:
    path = site / JOURNAL_NAME
    return json.loads(path.read_text())["phase"] if path.exists() else None


def which_state(current: dict[str, bytes], old: dict[str, bytes], new: dict[str, bytes]) -> str:
    if current == new:
        return "new"
    if current == old:
        return "old"
    return "MIXED"


def damage(site: Path) -> None:
    """Make every category differ from the backup: edits, a deletion and additions in each."""
    (site / "config/config.toml").write_text('[trading\nstrategy = "unterminated\n')
    (site / "config/local_override.toml").write_text("[live]\nenabled = false\n")
    (site / "state/session.json").unlink()
    (site / "state/strategy_state.json").write_text('{"broken": true}\n')
    for path in sorted((site / "data").rglob("*.csv")):
        with open(path, "ab") as handle:  # every data file must be copied back
            handle.write(b"garbage,row\n")
    next(iter(sorted((site / "data/reports").rglob("*.csv")))).unlink()
    (site / "data/reports/stray.csv").write_text("fill_id\n1\n")


@pytest.fixture
def damaged(sandbox: Path) -> tuple[Path, str, dict, dict]:
    """(site, backup id, old categories, backup categories) with every category damaged."""
    manager = RecoveryManager(site=sandbox)
    backup_id = manager.create_backup(description="known good")
    new = categories_of(manager._get_backup_dir(backup_id))
    damage(sandbox)
    old = categories_of(sandbox)
    assert all(old[c] != new[c] for c in CATEGORIES)
    return sandbox, backup_id, old, new


# --- simulated crashes in process ----------------------------------------------------------------


@pytest.mark.parametrize("first_operation", ["list_backups", "plan_restore"])
def test_a_crash_after_staging_is_completed_by_the_next_operation(
    damaged, monkeypatch: pytest.MonkeyPatch, first_operation: str
) -> None:
    site, backup_id, old, new = damaged
    outside_before = non_category_bytes(site)
    seen_phase: list[str | None] = []

    def crash_before_swapping(site_root: Path, journal) -> None:  # noqa: ANN001
        seen_phase.append(journal_phase(site_root))
        raise SimulatedCrash

    monkeypatch.setattr(restore_module, "swap_in", crash_before_swapping)
    with pytest.raises(SimulatedCrash):
        RecoveryManager(site=site).restore_backup(backup_id, True, True, True)
    assert seen_phase == ["swapping"]
    assert journal_phase(site) == "swapping"
    assert any(name.startswith(".recovery-staging-") for name in leftovers(site))
    assert categories_of(site) == old  # nothing swapped yet

    manager = RecoveryManager(site=site)
    if first_operation == "list_backups":
        manager.list_backups()
    else:
        plan = manager.plan_restore(backup_id, True, True, True)
        assert {a.action for a in plan.actions} == {Action.UNCHANGED}  # planned after the completion

    assert any("completed interrupted restore" in note for note in manager.notes), manager.notes
    assert categories_of(site) == new
    assert non_category_bytes(site) == outside_before
    assert leftovers(site) == []


def test_a_crash_while_staging_is_rolled_back_by_the_next_operation(damaged, monkeypatch: pytest.MonkeyPatch) -> None:
    site, backup_id, old, _ = damaged
    outside_before = non_category_bytes(site)
    real_copy = restore_module.copy_and_hash
    calls: list[str | None] = []

    def copy_then_die(source: Path, target: Path, mode: int):  # noqa: ANN202
        calls.append(journal_phase(site))
        if len(calls) == 3:
            raise SimulatedCrash
        return real_copy(source, target, mode)

    monkeypatch.setattr(restore_module, "copy_and_hash", copy_then_die)
    monkeypatch.setattr(restore_module, "cleanup", lambda site_root, journal: None)  # a dead process cleans nothing
    monkeypatch.setattr(restore_module, "WORKERS", 1)
    with pytest.raises(SimulatedCrash):
        RecoveryManager(site=site).restore_backup(backup_id, True, True, True)
    assert set(calls) == {"staging"} and journal_phase(site) == "staging"
    assert any(name.startswith(".recovery-staging-") for name in leftovers(site))
    monkeypatch.undo()

    manager = RecoveryManager(site=site)
    manager.list_backups()

    assert any("rolled back" in note for note in manager.notes), manager.notes
    assert categories_of(site) == old
    assert non_category_bytes(site) == outside_before
    assert leftovers(site) == []


class RenameThenCrash:
    """Stands in for ``os`` in restore_journal: the ``crash_at``-th rename dies instead (once)."""

    def __init__(self, crash_at: int) -> None:
        self.crash_at = crash_at
        self.renames = 0

    def __getattr__(self, name: str):  # noqa: ANN204
        return getattr(os, name)

    def rename(self, source: Path, target: Path) -> None:
        self.renames += 1
        if self.renames == self.crash_at:
            raise SimulatedCrash
        os.rename(source, target)


@pytest.mark.parametrize("crash_at", [1, 2, 3, 4])
def test_a_crash_in_the_middle_of_swapping_two_categories_is_rolled_forward(
    damaged, monkeypatch: pytest.MonkeyPatch, crash_at: int
) -> None:
    site, backup_id, old, new = damaged
    monkeypatch.setattr(journal_module, "os", RenameThenCrash(crash_at))
    with pytest.raises(SimulatedCrash):
        RecoveryManager(site=site).restore_backup(backup_id, restore_config=True, restore_data=True)
    assert journal_phase(site) == "swapping"
    # Renames: config out, config in, data out, data in. Right after the crash the site is torn:
    torn = {
        1: (old["config"], old["data"]),  # died on the first rename: nothing moved yet
        2: ({}, old["data"]),  # config moved out, the new one not in yet
        3: (new["config"], old["data"]),
        4: (new["config"], {}),
    }[crash_at]
    assert (files_under(site, "config"), files_under(site, "data")) == torn

    manager = RecoveryManager(site=site)
    manager.list_backups()

    assert any("completed interrupted restore" in note for note in manager.notes), manager.notes
    assert files_under(site, "config") == new["config"]
    assert files_under(site, "data") == new["data"]
    assert files_under(site, "state") == old["state"]  # not part of this restore
    assert leftovers(site) == []


# --- real SIGKILLs at exact points ---------------------------------------------------------------

CHILD = r"""
import os, signal, sys
import recovery_lib.restore.apply as restore
import recovery_lib.restore.journal as restore_journal
from recovery_lib.manager import RecoveryManager

site, backup_id, point, nth = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
calls = 0


def die_on_nth(real):
    def wrapper(*args, **kwargs):
        global calls
        calls += 1
        if calls == nth:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*args, **kwargs)
    return wrapper


if point == "Journal.save":
    restore_journal.Journal.save = die_on_nth(restore_journal.Journal.save)
elif point == "os.rename":
    class Os:
        def __getattr__(self, name):
            return getattr(os, name)
        rename = staticmethod(die_on_nth(os.rename))
    restore_journal.os = Os()
elif point == "journal-replace":
    import recovery_lib.fsops.atomic as atomic
    replace_journal = die_on_nth(os.replace)

    class AtomicOs:
        def __getattr__(self, name):
            return getattr(os, name)

        def replace(self, source, target):
            if os.path.basename(target) == ".recovery-journal.json":
                return replace_journal(source, target)
            return os.replace(source, target)
    atomic.os = AtomicOs()
elif point != "none":
    setattr(restore, point, die_on_nth(getattr(restore, point)))
print("ready", flush=True)
ok = RecoveryManager(site=site).restore_backup(backup_id, True, True, True)
sys.exit(0 if ok else 1)
"""


def run_child(site: Path, backup_id: str, point: str = "none", nth: int = 0, kill_after: float | None = None):
    """Run a full restore in a child; returns (returncode, seconds from 'ready' to exit or kill)."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(site), backup_id, point, str(nth)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout.readline() == "ready\n", child.stderr.read()
        started = time.monotonic()
        if kill_after is not None:
            time.sleep(kill_after)
            child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
        return child.returncode, time.monotonic() - started
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()
        child.stderr.close()


# (function killed, on which call, the journal's phase found after the kill, the outcome after recovery).
# The journal is written before anything else, so every later kill finds one; the phase decides.
KILL_POINTS = [
    ("Journal.save", 1, None, "old"),  # after the pre-recovery backup, before the restore began
    ("_stage", 1, "staging", "old"),  # journal and empty staging directory exist
    ("copy_and_hash", 2, "staging", "old"),
    ("sync_filesystem", 1, "staging", "old"),
    ("Journal.save", 2, "staging", "old"),  # staging complete, "swapping" not yet written
    ("journal-replace", 2, "staging", "old"),  # "swapping" half written: a torn temp file
    ("swap_in", 1, "swapping", "new"),
    ("os.rename", 1, "swapping", "new"),
    ("os.rename", 4, "swapping", "new"),
    ("os.rename", 6, "swapping", "new"),
    ("Journal.save", 3, "swapping", "new"),  # swapped, "swapped" not yet written
    ("journal-replace", 3, "swapping", "new"),
    ("_verify_result", 1, None, "new"),  # the journal is removed once the swap is done
    ("cleanup", 1, "swapped", "new"),
]
NOTES = {None: None, "staging": "rolled back", "swapping": "completed interrupted restore"}
NOTES["swapped"] = NOTES["swapping"]


@pytest.mark.parametrize(
    ("point", "nth", "phase", "outcome"), KILL_POINTS, ids=[f"{p}-{n}" for p, n, *_ in KILL_POINTS]
)
def test_sigkill_at_each_step_is_recovered_by_the_next_operation(
    damaged, point: str, nth: int, phase: str | None, outcome: str
) -> None:
    site, backup_id, old, new = damaged
    outside_before = non_category_bytes(site)

    returncode, _ = run_child(site, backup_id, point, nth)

    assert returncode == -signal.SIGKILL
    assert journal_phase(site) == phase
    if point == "journal-replace":
        assert any(name.startswith("..recovery-journal.json.") for name in leftovers(site))
    manager = RecoveryManager(site=site)
    manager.list_backups()
    if NOTES[phase] is None:
        assert manager.notes == []
    else:
        assert any(NOTES[phase] in note for note in manager.notes), manager.notes
    assert categories_of(site) == (old if outcome == "old" else new)
    assert non_category_bytes(site) == outside_before
    assert leftovers(site) == []
    assert not any(p.name.startswith(".tmp-") for p in (site / "backups").iterdir())
    # And the site is usable: a restore now goes through.
    assert manager.restore_backup(backup_id, True, True, True) is True
    assert categories_of(site) == new


def test_sigkill_during_the_first_journal_write_leaves_nothing_behind(damaged) -> None:
    site, backup_id, old, _ = damaged

    returncode, _ = run_child(site, backup_id, "journal-replace", 1)

    assert returncode == -signal.SIGKILL
    assert journal_phase(site) is None
    assert [name for name in leftovers(site) if name.startswith("..recovery-journal.json.")] != []
    RecoveryManager(site=site).list_backups()
    assert categories_of(site) == old
    assert leftovers(site) == []


# --- SIGKILL at seeded random moments of a restore of a larger site -----------------------------


@pytest.fixture(scope="module")
def big_site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, dict, dict]:
    """A ~17 MB site with one good backup, then damaged in every category (generated once)."""
    site = tmp_path_factory.mktemp("big") / "site"
    create_sandbox(site, SandboxSpec(trades=200_000, reports=5, report_rows=20000, seed=5))
    manager = RecoveryManager(site=site)
    backup_id = manager.create_backup(description="known good")
    new = categories_of(manager._get_backup_dir(backup_id))
    damage(site)
    return site, backup_id, categories_of(site), new


def fresh_copy(template: Path, work: Path) -> Path:
    if work.exists():
        make_writable_tree(work)
        shutil.rmtree(work)
    shutil.copytree(template, work, symlinks=True)
    return work


def test_sigkill_at_random_moments_never_leaves_a_category_mixed(big_site, tmp_path: Path) -> None:
    template, backup_id, old, new = big_site
    outside_before = non_category_bytes(template)
    work = tmp_path / "site"

    # An uninterrupted run measures how long the restore takes here, and must succeed.
    returncode, duration = run_child(fresh_copy(template, work), backup_id)
    assert returncode == 0
    assert categories_of(work) == new

    rng = random.Random(20261125)
    delays = sorted(rng.uniform(0.0, duration * 1.1) for _ in range(10))
    outcomes = []
    for delay in delays:
        fresh_copy(template, work)
        returncode, _ = run_child(work, backup_id, kill_after=delay)
        phase = journal_phase(work)
        interrupted = phase is not None or any(name.startswith(".recovery-") for name in leftovers(work))
        manager = RecoveryManager(site=work)
        manager.list_backups()  # the first operation recovers
        states = {c: which_state(files_under(work, c), old[c], new[c]) for c in CATEGORIES}
        outcomes.append((round(delay, 3), returncode, phase, states))
        assert "MIXED" not in states.values(), outcomes
        assert len(set(states.values())) == 1, outcomes  # one restore: all categories move together
        # A torn journal temp file ("..recovery-journal.json.*.tmp") is covered by the deterministic tests.
        left = [name for name in leftovers(work) if name.startswith(".recovery-")]
        assert left == [], (outcomes, left)
        assert not any(p.name.startswith(".tmp-") for p in (work / "backups").iterdir()), outcomes
        assert non_category_bytes(work) == outside_before
        assert RecoveryManager(site=work).verify_backup(backup_id, read_data=False).ok
        if interrupted:
            assert manager.notes, outcomes
    assert any(code == -signal.SIGKILL for _, code, _, _ in outcomes), outcomes
