"""Kill -9 at random moments: a backup, restore or prune SIGKILLed anywhere loses nothing.

A forked child runs the operation under the fault shim, which SIGKILLs it just before, or just
after, one chosen filesystem call. The points are drawn with a fixed seed from every call the
operation makes (counted in a first, clean run), so a failure names a reproducible point; the
default run tries at least 30 points per operation, ``--long`` tries every call both ways.

After each kill, the next ``RecoveryManager`` operation does its crash recovery, and then:
earlier backups are byte for byte as they were, every SUCCESS backup verifies, the site is per
category wholly old or wholly restored, nothing is left behind, and the next run succeeds.
"""

from __future__ import annotations

import os
import random
import signal
from collections.abc import Callable
from pathlib import Path

import pytest
from fault_shim import FaultShim
from site_state import (
    CATEGORIES,
    RESTORED,
    TALLY,
    assert_backups_unchanged,
    assert_each_category_old_or_restored,
    assert_success_backups_verify,
    backups_bytes,
    category_tree,
    damaged_site,
    is_long,
    leftovers,
    make_tiny_site,
    restore_config_and_data,
    scaled,
    site_with_backups,
)

from recovery_lib.backup import RetentionPolicy
from recovery_lib.manager import RecoveryManager

KILLS = 30  # per operation in the default run: the minimum


# Unchanged files are hard-linked even though the test wrote them milliseconds ago.
pytestmark = pytest.mark.usefixtures("no_racy_window")


def kill_points(action: Callable[[], object], seed: int, minimum: int = KILLS) -> list[tuple[str, int, bool]]:
    """Every (operation, k) the action performs, each before and after the call, in a seeded order.

    Callers stop after :func:`kills_wanted` kills (a point can fall past the end of a shorter run).
    """
    counting = FaultShim()
    with counting:
        action()
    points = [(op, k, after) for op, n in sorted(counting.counts.items()) for k in range(1, n + 1) for after in (0, 1)]
    assert len(points) >= minimum, f"only {len(points)} kill points: {dict(counting.counts)}"
    random.Random(seed).shuffle(points)
    return [(op, k, bool(after)) for op, k, after in points]


def kills_wanted(points: list, minimum: int = KILLS) -> int:
    """30 kills by default (the issue's minimum); every point, both ways, under --long."""
    return len(points) if is_long() else min(len(points), scaled(minimum))


def run_killed(action: Callable[[], object], operation: str, k: int, after: bool) -> bool:
    """Run ``action`` in a forked child that SIGKILLs itself at the point; True if it was killed there."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 0
        try:
            with FaultShim(fail=(operation, k), kill=True, kill_after=after):
                action()
        except BaseException:  # noqa: BLE001 - the exit code carries it to the parent
            code = 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        assert os.WTERMSIG(status) == signal.SIGKILL
        return True
    assert os.WEXITSTATUS(status) == 0, f"the child failed at {operation} #{k} without being killed"
    return False


# --- backup ---------------------------------------------------------------------------------------


def test_backup_killed_at_random_points(tmp_path: Path) -> None:
    """DESIGN: a backup killed at any moment never leaves a bad SUCCESS backup or touches earlier ones."""
    site = make_tiny_site(tmp_path / "site")
    first = RecoveryManager(site=site).create_backup()

    def action() -> str:
        return RecoveryManager(site=site).create_backup()

    points = kill_points(action, seed=1)
    killed = 0
    for n, (operation, k, after) in enumerate(points):
        if killed == kills_wanted(points):
            break
        (site / "state" / "session.json").write_text(f'{{"tick": {n}}}\n')
        site_before = {c: category_tree(site, c) for c in CATEGORIES}
        before = backups_bytes(site / "backups")
        killed += run_killed(action, operation, k, after)
        where = f"killed {'after' if after else 'before'} {operation} #{k}"
        listed = RecoveryManager(site=site).list_backups()  # crash recovery runs here
        assert leftovers(site) == [], f"{where}: debris left: {leftovers(site)}"
        assert_backups_unchanged(site, before, where)
        assert {c: category_tree(site, c) for c in CATEGORIES} == site_before, f"{where}: the site changed"
        assert len(listed) in (len(before), len(before) + 1)
        assert_success_backups_verify(site)
    TALLY["backup kill -9 points"] += killed
    assert killed >= KILLS, f"only {killed} runs reached their kill point"
    last = RecoveryManager(site=site).create_backup()
    assert {first, last} <= set(assert_success_backups_verify(site))


# --- restore --------------------------------------------------------------------------------------


def test_restore_killed_at_random_points(tmp_path: Path) -> None:
    """DESIGN: a restore killed at any moment is completed or rolled back by the next operation."""
    wanted = {c: category_tree(make_tiny_site(tmp_path / "pristine"), c) for c in RESTORED}

    def restore(site: Path, backup_id: str) -> Callable[[], object]:
        return lambda: restore_config_and_data(site, backup_id)

    probe_site, probe_id = damaged_site(tmp_path / "probe")
    points = kill_points(restore(probe_site, probe_id), seed=2)
    killed = 0
    for operation, k, after in points:
        if killed == kills_wanted(points):
            break
        site, backup_id = damaged_site(tmp_path / "run")
        before = {c: category_tree(site, c) for c in CATEGORIES}
        backups_before = backups_bytes(site / "backups")
        killed += run_killed(restore(site, backup_id), operation, k, after)
        where = f"killed {'after' if after else 'before'} {operation} #{k}"
        RecoveryManager(site=site).list_backups()  # crash recovery runs here
        assert leftovers(site) == [], f"{where}: debris left: {leftovers(site)}"
        assert_each_category_old_or_restored(site, before, wanted, where)
        assert_backups_unchanged(site, backups_before, where)
        assert_success_backups_verify(site)
        result = restore(site, backup_id)()
        assert result.ok, (where, result.problems)
        assert category_tree(site, "config") == wanted["config"] and category_tree(site, "data") == wanted["data"]
    TALLY["restore kill -9 points"] += killed
    assert killed >= KILLS, f"only {killed} runs reached their kill point"


# --- prune ----------------------------------------------------------------------------------------


def test_prune_killed_at_random_points(tmp_path: Path) -> None:
    """DESIGN: a prune killed at any moment never leaves half a backup; the next prune finishes it."""

    def prune(site: Path) -> Callable[[], object]:
        return lambda: RecoveryManager(site=site).prune(RetentionPolicy(keep_last=1), dry_run=False)

    probe, _ = site_with_backups(tmp_path / "probe")
    points = kill_points(prune(probe), seed=3, minimum=20)
    killed = 0
    for operation, k, after in points:
        if killed == kills_wanted(points, 20):
            break
        site, ids = site_with_backups(tmp_path / "run")
        before = backups_bytes(site / "backups")
        killed += run_killed(prune(site), operation, k, after)
        where = f"killed {'after' if after else 'before'} {operation} #{k}"
        manager = RecoveryManager(site=site)
        listed = [m.backup_id for m in manager.list_backups()]  # crash recovery runs here
        assert manager.unreadable == [] and leftovers(site) == [], f"{where}: half a backup is left"
        assert ids[-1] in listed, f"{where}: the kept backup is gone"
        after_bytes = backups_bytes(site / "backups")
        for backup_id in listed:
            assert after_bytes[backup_id] == before[backup_id], f"{where}: {backup_id} is damaged"
        manager.prune(RetentionPolicy(keep_last=1), dry_run=False)
        assert [m.backup_id for m in manager.list_backups()] == [ids[-1]]
    TALLY["prune kill -9 points"] += killed
    assert killed >= 20, f"only {killed} runs reached their kill point"
