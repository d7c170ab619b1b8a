"""Every failure point: the k-th call of each filesystem operation fails, for every k.

For backup, restore and prune, and for each operation the shim knows (open for writing, write,
fsync, link, rename/replace, unlink, rmtree, chmod, mkdir), the k-th call raises ``OSError``
(EIO, ENOSPC and EACCES in turn; all three for every k under ``--long``) for k = 1, 2, ... until
the operation completes without reaching a k-th call. After every failure:

- the error the user sees is a recovery error (not a raw ``OSError``) naming the file and the cause;
- backups that existed before are byte for byte as they were, and every SUCCESS backup verifies;
- the site is, per category, wholly as before or wholly restored;
- the next run succeeds without any manual cleanup and leaves nothing behind.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fault_shim import ERRNOS, OPERATIONS, FaultShim, Fired
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
    site_with_backups,
)

from recovery_lib.backup import BackupStatus, RetentionPolicy
from recovery_lib.errors import RecoveryError
from recovery_lib.manager import RecoveryManager

# Files written milliseconds ago count as unchanged, so the hard-link path is exercised too.
pytestmark = pytest.mark.usefixtures("no_racy_window")


@dataclass
class Outcome:
    """One run under the shim: what failed, what the caller saw."""

    fired: Fired | None
    error: BaseException | None
    result: object = None


def run_with_fault(action: Callable[[], object], fail: tuple[str, int] | None, code: int) -> Outcome:
    shim = FaultShim(fail=fail, errno_=code)
    try:
        with shim:
            result = action()
    except Exception as exc:  # noqa: BLE001 - the test inspects whatever escaped
        return Outcome(shim.fired, exc, None)
    return Outcome(shim.fired, None, result)


def failure_points(finished: set[str]) -> Iterator[tuple[str, int, int]]:
    """(operation, k, errno) in order; k grows until the caller adds the operation to ``finished``."""
    for operation in OPERATIONS:
        k = 1
        while operation not in finished:
            codes = ERRNOS if is_long() else (ERRNOS[k % len(ERRNOS)],)
            for code in codes:
                yield operation, k, code
            k += 1


def assert_reported(outcome: Outcome, site: Path) -> None:
    """The failure reached the caller as a recovery error naming the file and the cause."""
    assert outcome.fired is not None
    error = outcome.error
    assert isinstance(error, RecoveryError), f"{outcome.fired}: raw {type(error).__name__} escaped: {error}"
    message = str(error)
    causes = [os.strerror(c) for c in ERRNOS]
    assert any(cause in message for cause in causes), f"{outcome.fired}: the cause is not named: {message}"
    if outcome.fired.path:
        named = Path(outcome.fired.path).name
        assert named in message or str(site) in message, f"{outcome.fired}: the file is not named: {message}"
    else:
        assert str(site) in message, f"{outcome.fired}: no file named: {message}"


def run_every_failure_point(
    prepare: Callable[[int], object],
    action: Callable[[object], object],
    check: Callable[[object, Outcome], None],
    name: str,
) -> int:
    """Drive ``action`` through every failure point; ``check`` asserts the promises after each."""
    tried = 0
    finished: set[str] = set()
    for operation, k, code in failure_points(finished):
        context = prepare(tried)
        outcome = run_with_fault(lambda context=context: action(context), (operation, k), code)
        if outcome.fired is None:  # finished before a k-th call: this operation is done
            assert outcome.error is None, f"{name} failed without an injected fault: {outcome.error!r}"
            finished.add(operation)
            check(context, outcome)
            continue
        tried += 1
        TALLY[f"{name} failure points"] += 1
        check(context, outcome)
    return tried


# --- backup ---------------------------------------------------------------------------------------


def test_every_failure_point_of_a_backup(tmp_path: Path) -> None:
    """DESIGN: a backup that fails at any filesystem call leaves no bad SUCCESS backup and no debris."""
    site = make_tiny_site(tmp_path / "site")
    first = RecoveryManager(site=site).create_backup()
    tick = iter(range(1_000_000))

    def prepare(_: int) -> dict[str, object]:
        # One file changes per run, so each backup both copies and hard-links from its parent.
        (site / "state" / "session.json").write_text(f'{{"tick": {next(tick)}}}\n')
        return {"before": backups_bytes(site / "backups"), "site": category_tree(site, "state")}

    def action(_: object) -> str:
        return RecoveryManager(site=site).create_backup()

    def check(context: dict, outcome: Outcome) -> None:
        if outcome.error is not None:  # a fault the backup absorbed (e.g. clearing the lock record) is fine
            assert_reported(outcome, site)
        else:
            assert RecoveryManager(site=site).verify_backup(outcome.result, read_data=True).ok
        assert_backups_unchanged(site, context["before"], str(outcome.fired))
        assert category_tree(site, "state") == context["site"], "a backup changed the site"
        manager = RecoveryManager(site=site)
        listed = manager.list_backups()  # its crash recovery runs here
        assert leftovers(site) == [], f"{outcome.fired}: debris left after the next operation"
        for metadata in listed:
            if metadata.backup_id not in context["before"] and metadata.status is BackupStatus.SUCCESS:
                report = manager.verify_backup(metadata.backup_id, read_data=True)
                assert report.ok, f"{outcome.fired}: new SUCCESS backup does not verify: {report.summary()}"

    tried = run_every_failure_point(prepare, action, check, "backup")
    assert tried >= 40, tried
    # The next run succeeds without manual cleanup, and everything verifies.
    last = RecoveryManager(site=site).create_backup()
    verified = assert_success_backups_verify(site)
    assert first in verified and last in verified


# --- restore --------------------------------------------------------------------------------------


def test_every_failure_point_of_a_restore(tmp_path: Path) -> None:
    """DESIGN: a restore that fails at any call leaves each category wholly old or wholly restored."""
    pristine = make_tiny_site(tmp_path / "pristine")
    wanted = {c: category_tree(pristine, c) for c in RESTORED}  # what the backup was taken of

    def prepare(n: int) -> dict[str, object]:
        site, backup_id = damaged_site(tmp_path / f"run{n}")
        return {
            "site": site,
            "id": backup_id,
            "before": {c: category_tree(site, c) for c in CATEGORIES},
            "backups": backups_bytes(site / "backups"),
        }

    def action(context: dict) -> object:
        return restore_config_and_data(context["site"], context["id"])

    def check(context: dict, outcome: Outcome) -> None:
        site: Path = context["site"]
        if outcome.error is None:
            assert outcome.result.ok, (outcome.fired, outcome.result.problems)
            for category in RESTORED:
                assert category_tree(site, category) == wanted[category], f"{outcome.fired}: claimed, not restored"
        else:
            assert_reported(outcome, site)
        assert_each_category_old_or_restored(site, context["before"], wanted, str(outcome.fired))
        assert_backups_unchanged(site, context["backups"], str(outcome.fired))
        assert_success_backups_verify(site)  # also the pre-recovery backup, if one was finished
        # The next run completes (or rolls back) whatever was interrupted and then succeeds.
        RecoveryManager(site=site).list_backups()
        assert_each_category_old_or_restored(site, context["before"], wanted, f"{outcome.fired}, recovered")
        result = restore_config_and_data(site, context["id"])
        assert result.ok, (outcome.fired, result.problems)
        for category in RESTORED:
            assert category_tree(site, category) == wanted[category], f"{outcome.fired}: {category} not restored"
        assert category_tree(site, "state") == context["before"]["state"], "state was not to be restored"
        assert leftovers(site) == [], f"{outcome.fired}: debris left: {leftovers(site)}"

    tried = run_every_failure_point(prepare, action, check, "restore")
    assert tried >= 100, tried


# --- prune ----------------------------------------------------------------------------------------


def test_every_failure_point_of_a_prune(tmp_path: Path) -> None:
    """DESIGN: a prune that fails at any call never leaves half a backup, and never touches a kept one."""

    def prepare(n: int) -> dict[str, object]:
        site, ids = site_with_backups(tmp_path / f"run{n}")
        return {"site": site, "ids": ids, "backups": backups_bytes(site / "backups")}

    def action(context: dict) -> object:
        return RecoveryManager(site=context["site"]).prune(RetentionPolicy(keep_last=1), dry_run=False)

    def check(context: dict, outcome: Outcome) -> None:
        site: Path = context["site"]
        if outcome.error is not None:
            assert_reported(outcome, site)
        kept = context["ids"][-1]
        manager = RecoveryManager(site=site)
        listed = {m.backup_id for m in manager.list_backups()}  # crash recovery runs here
        assert manager.unreadable == [], f"{outcome.fired}: half-deleted backups are listed as unreadable"
        after = backups_bytes(site / "backups")
        assert after[kept] == context["backups"][kept], f"{outcome.fired}: the kept backup changed"
        for backup_id in listed:
            assert after[backup_id] == context["backups"][backup_id], f"{outcome.fired}: {backup_id} is damaged"
        assert leftovers(site) == [], f"{outcome.fired}: debris left after the next operation"
        # The next prune finishes the job.
        plan = manager.prune(RetentionPolicy(keep_last=1), dry_run=False)
        assert [m.backup_id for m in manager.list_backups()] == [kept], plan
        assert_success_backups_verify(site)

    tried = run_every_failure_point(prepare, action, check, "prune")
    assert tried >= 15, tried


def test_the_shim_fails_what_it_says(tmp_path: Path) -> None:
    """The shim itself: the k-th rename raises the errno asked for, with the path, and only once."""
    first, second = tmp_path / "a", tmp_path / "b"
    first.write_text("x")
    real_rename = os.rename
    shim = FaultShim(fail=("rename", 2), errno_=errno.ENOSPC)
    with shim:
        os.rename(first, second)
        with pytest.raises(OSError) as caught:
            os.rename(second, first)
        os.rename(second, first)
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(second)
    assert shim.counts["rename"] == 3 and shim.fired is not None and shim.fired.k == 2
    assert first.read_text() == "x"
    assert os.rename is real_rename  # restored on exit
    with pytest.raises(ValueError, match="unknown operation"):
        FaultShim(fail=("teleport", 1))
