"""Retention: restic's ``forget`` rules as a plan with reasons, plus our two safety rules; deletion.

The rules are tested on synthetic backup records (``plan_prune`` is pure), against an independent
reference implementation on random histories, and then end to end on real backups with chosen
timestamps: a dry run deletes nothing, a real run deletes exactly the plan, and what remains verifies.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import recovery_lib.backup.create as create_module
from recovery_lib import clock as real_clock
from recovery_lib.backup import BackupMetadata, BackupStatus, BackupType, RetentionPolicy
from recovery_lib.backup.model import PRE_RECOVERY_TAG
from recovery_lib.backup.retention import plan_prune
from recovery_lib.manager import RecoveryManager

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


# --- helpers ----------------------------------------------------------------------------------


def meta(
    backup_id: str, when: datetime, backup_type: BackupType = BackupType.FULL, tags: tuple[str, ...] = ()
) -> BackupMetadata:
    return BackupMetadata(
        backup_id=backup_id,
        backup_type=backup_type,
        created_at=when.isoformat(timespec="microseconds").replace("+00:00", "Z"),
        status=BackupStatus.SUCCESS,
        tags=list(tags),
    )


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def history(*stamps: str) -> list[BackupMetadata]:
    """Backups named by their timestamps, returned newest first like ``list_backups``."""
    backups = [meta(stamp, at(stamp)) for stamp in stamps]
    return sorted(backups, key=lambda b: b.created, reverse=True)


def kept(plan) -> list[str]:  # noqa: ANN001
    return [d.backup.backup_id for d in plan.keep]


def removed(plan) -> list[str]:  # noqa: ANN001
    return [d.backup.backup_id for d in plan.remove]


def reasons(plan) -> dict[str, list[str]]:  # noqa: ANN001
    return {d.backup.backup_id: d.reasons for d in plan.decisions}


# --- policy validation ------------------------------------------------------------------------


def test_empty_policy_is_refused() -> None:
    backups = history("2026-11-20T12:00:00", "2026-11-19T12:00:00")
    with pytest.raises(ValueError, match="empty retention policy"):
        plan_prune(backups, RetentionPolicy(), newest_verified=None)
    assert RetentionPolicy().is_empty
    assert not RetentionPolicy(keep_tags=("x",)).is_empty
    assert not RetentionPolicy(keep_within=timedelta(hours=1)).is_empty


@pytest.mark.parametrize("bad", [-1, 1.5, True, "3", None])
def test_counts_must_be_whole_non_negative_numbers(bad: object) -> None:
    with pytest.raises(ValueError, match="keep_daily"):
        RetentionPolicy(keep_daily=bad)  # type: ignore[arg-type]


# --- restic's rules on synthetic histories ----------------------------------------------------


def test_keep_last() -> None:
    backups = history(*(f"2026-11-{day:02d}T06:00:00" for day in range(1, 11)))
    plan = plan_prune(backups, RetentionPolicy(keep_last=3), newest_verified=None)
    assert kept(plan) == ["2026-11-10T06:00:00", "2026-11-09T06:00:00", "2026-11-08T06:00:00"]
    assert len(removed(plan)) == 7
    assert all(r == ["last"] for r in reasons(plan).values() if r)


def test_keep_last_sorts_whatever_order_it_is_given() -> None:
    backups = history("2026-11-01T00:00:00", "2026-11-03T00:00:00", "2026-11-02T00:00:00")
    plan = plan_prune(list(reversed(backups)), RetentionPolicy(keep_last=1), newest_verified=None)
    assert kept(plan) == ["2026-11-03T00:00:00"]
    assert [d.backup.backup_id for d in plan.decisions] == [b.backup_id for b in backups]


def test_keep_daily_takes_the_newest_of_each_of_the_n_most_recent_days_that_have_one() -> None:
    backups = history(
        "2026-11-07T09:00:00",
        "2026-11-04T23:59:00",
        "2026-11-04T12:00:00",
        "2026-11-04T01:00:00",
        "2026-11-02T18:00:00",
        "2026-11-02T08:00:00",
        "2026-11-01T10:00:00",
    )
    plan = plan_prune(backups, RetentionPolicy(keep_daily=3), newest_verified=None)
    # Days without backups (11-03, 11-05, 11-06) do not use up the count.
    assert kept(plan) == ["2026-11-07T09:00:00", "2026-11-04T23:59:00", "2026-11-02T18:00:00"]
    assert reasons(plan)["2026-11-04T23:59:00"] == ["daily 2026-11-04"]
    assert removed(plan) == ["2026-11-04T12:00:00", "2026-11-04T01:00:00", "2026-11-02T08:00:00", "2026-11-01T10:00:00"]


def test_keep_hourly() -> None:
    backups = history(
        "2026-11-20T12:45:00",
        "2026-11-20T12:05:00",
        "2026-11-20T11:59:59",
        "2026-11-20T09:30:00",
        "2026-11-20T09:10:00",
    )
    plan = plan_prune(backups, RetentionPolicy(keep_hourly=2), newest_verified=None)
    assert kept(plan) == ["2026-11-20T12:45:00", "2026-11-20T11:59:59"]
    assert reasons(plan)["2026-11-20T11:59:59"] == ["hourly 2026-11-20 11"]


def test_keep_weekly_uses_iso_weeks_across_the_year_end() -> None:
    backups = history(
        "2027-01-04T08:00:00",  # Monday, 2027-W01
        "2027-01-01T08:00:00",  # Friday, but ISO week 2026-W53
        "2026-12-29T08:00:00",  # 2026-W53
        "2026-12-27T08:00:00",  # Sunday, 2026-W52
    )
    plan = plan_prune(backups, RetentionPolicy(keep_weekly=2), newest_verified=None)
    assert kept(plan) == ["2027-01-04T08:00:00", "2027-01-01T08:00:00"]
    assert reasons(plan)["2027-01-01T08:00:00"] == ["weekly 2026-W53"]
    assert removed(plan) == ["2026-12-29T08:00:00", "2026-12-27T08:00:00"]


def test_keep_monthly_and_yearly() -> None:
    backups = history(
        "2026-11-20T00:00:00",
        "2026-11-02T00:00:00",
        "2026-09-30T00:00:00",
        "2026-09-01T00:00:00",
        "2025-12-31T00:00:00",
        "2025-06-01T00:00:00",
        "2023-03-01T00:00:00",
    )
    monthly = plan_prune(backups, RetentionPolicy(keep_monthly=3), newest_verified=None)
    assert kept(monthly) == ["2026-11-20T00:00:00", "2026-09-30T00:00:00", "2025-12-31T00:00:00"]
    yearly = plan_prune(backups, RetentionPolicy(keep_yearly=5), newest_verified=None)
    assert kept(yearly) == ["2026-11-20T00:00:00", "2025-12-31T00:00:00", "2023-03-01T00:00:00"]
    assert reasons(yearly)["2023-03-01T00:00:00"] == ["yearly 2023"]


def test_keep_within_is_relative_to_the_newest_backup_not_to_now() -> None:
    backups = history("2020-03-10T12:00:00", "2020-03-09T00:00:00", "2020-03-08T11:00:00", "2020-03-01T00:00:00")
    plan = plan_prune(backups, RetentionPolicy(keep_within=timedelta(days=2)), newest_verified=None)
    assert kept(plan) == ["2020-03-10T12:00:00", "2020-03-09T00:00:00"]
    assert reasons(plan)["2020-03-09T00:00:00"] == ["within 2 days, 0:00:00"]


def test_keep_tags_keeps_every_tagged_backup() -> None:
    backups = [
        meta("new", T0),
        meta("pre", T0 - timedelta(days=30), tags=("pre-recovery", "emergency")),
        meta("mid", T0 - timedelta(days=40)),
        meta("post", T0 - timedelta(days=50), tags=("post-incident",)),
        meta("old", T0 - timedelta(days=60)),
    ]
    plan = plan_prune(
        backups, RetentionPolicy(keep_last=1, keep_tags=("pre-recovery", "post-incident")), newest_verified=None
    )
    assert kept(plan) == ["new", "pre", "post"]
    assert reasons(plan)["pre"] == ["tag pre-recovery"]
    assert reasons(plan)["post"] == ["tag post-incident"]
    assert removed(plan) == ["mid", "old"]


def test_rules_combine_and_every_decision_has_its_reasons() -> None:
    backups = history(
        "2026-11-20T12:00:00",
        "2026-11-20T06:00:00",
        "2026-11-19T12:00:00",
        "2026-10-31T12:00:00",
        "2026-10-01T12:00:00",
        "2025-07-01T12:00:00",
    )
    policy = RetentionPolicy(keep_last=2, keep_daily=2, keep_monthly=2, keep_yearly=2)
    plan = plan_prune(backups, policy, newest_verified=None)
    assert reasons(plan) == {
        "2026-11-20T12:00:00": ["last", "daily 2026-11-20", "monthly 2026-11", "yearly 2026"],
        "2026-11-20T06:00:00": ["last"],
        "2026-11-19T12:00:00": ["daily 2026-11-19"],
        "2026-10-31T12:00:00": ["monthly 2026-10"],
        "2026-10-01T12:00:00": [],
        "2025-07-01T12:00:00": ["yearly 2025"],
    }
    assert removed(plan) == ["2026-10-01T12:00:00"]
    summary = plan.summary()
    assert summary.splitlines()[0] == "keep 5, remove 1"
    assert "remove 2026-10-01T12:00:00  (matched no keep rule)" in summary
    assert "keep   2026-11-19T12:00:00  (daily 2026-11-19)" in summary


def test_newest_verified_backup_is_never_removed() -> None:
    backups = history("2026-11-20T12:00:00", "2026-11-19T12:00:00", "2026-11-18T12:00:00")
    plan = plan_prune(backups, RetentionPolicy(keep_last=1), newest_verified="2026-11-18T12:00:00")
    assert kept(plan) == ["2026-11-20T12:00:00", "2026-11-18T12:00:00"]
    assert reasons(plan)["2026-11-18T12:00:00"] == ["newest verified backup (never removed)"]
    tags_only = plan_prune(backups, RetentionPolicy(keep_tags=("nothing-has-this",)), "2026-11-19T12:00:00")
    assert kept(tags_only) == ["2026-11-19T12:00:00"]


def test_a_group_is_never_emptied() -> None:
    backups = [
        meta("full-3", T0, BackupType.FULL),
        meta("full-2", T0 - timedelta(days=1), BackupType.FULL),
        meta("config-2", T0 - timedelta(days=5), BackupType.CONFIG),
        meta("config-1", T0 - timedelta(days=6), BackupType.CONFIG),
        meta("data-1", T0 - timedelta(days=7), BackupType.DATA),
        meta("full-1", T0 - timedelta(days=9), BackupType.FULL),
    ]
    plan = plan_prune(backups, RetentionPolicy(keep_last=2), newest_verified="full-3")
    assert kept(plan) == ["full-3", "full-2", "config-2", "data-1"]
    assert reasons(plan)["config-2"] == ["newest config backup (a group is never emptied)"]
    assert reasons(plan)["data-1"] == ["newest data backup (a group is never emptied)"]
    assert removed(plan) == ["config-1", "full-1"]


def test_a_pre_recovery_snapshot_never_stands_in_for_the_last_real_full_backup() -> None:
    """Found by a new user: keep_last=1 removed the only full backup "latest" could restore data from,
    because the newer pre-recovery snapshot (also full) counted as the full group's survivor."""
    backups = [
        meta("config-1", T0, BackupType.CONFIG),
        meta("snapshot", T0 - timedelta(hours=1), BackupType.FULL, tags=(PRE_RECOVERY_TAG,)),
        meta("full-1", T0 - timedelta(hours=2), BackupType.FULL),
    ]
    plan = plan_prune(backups, RetentionPolicy(keep_last=1), newest_verified="config-1")
    assert reasons(plan)["full-1"] == ["newest full backup (a group is never emptied)"]
    assert reasons(plan)["snapshot"] == ["newest full pre-recovery backup (a group is never emptied)"]
    assert removed(plan) == []


def test_no_backups_is_an_empty_plan() -> None:
    plan = plan_prune([], RetentionPolicy(keep_last=3), newest_verified=None)
    assert plan.decisions == [] and plan.keep == [] and plan.remove == []


# --- against a reference implementation -------------------------------------------------------

PERIODS = {
    "hourly": lambda t: (t.year, t.month, t.day, t.hour),
    "daily": lambda t: (t.year, t.month, t.day),
    "weekly": lambda t: tuple(t.isocalendar())[:2],
    "monthly": lambda t: (t.year, t.month),
    "yearly": lambda t: (t.year,),
}


def reference_keep(backups: list[BackupMetadata], policy: RetentionPolicy, newest_verified: str | None) -> set[str]:
    """restic's forget, written as "group by period, take the N most recent periods" (not a scan)."""
    ordered = sorted(backups, key=lambda b: b.created, reverse=True)
    keep = {b.backup_id for b in ordered[: policy.keep_last]}
    for name, period_of in PERIODS.items():
        count = getattr(policy, f"keep_{name}")
        newest_in: dict[tuple, BackupMetadata] = {}
        for backup in ordered:
            newest_in.setdefault(period_of(backup.created), backup)
        for period in sorted(newest_in, reverse=True)[:count]:
            keep.add(newest_in[period].backup_id)
    if ordered and policy.keep_within:
        keep |= {b.backup_id for b in ordered if ordered[0].created - b.created <= policy.keep_within}
    keep |= {b.backup_id for b in ordered if set(b.tags) & set(policy.keep_tags)}
    if newest_verified:
        keep.add(newest_verified)
    for group in {b.backup_type for b in ordered}:
        members = [b for b in ordered if b.backup_type is group]
        if not any(b.backup_id in keep for b in members):
            keep.add(members[0].backup_id)
    return keep


@settings(max_examples=300, deadline=None)
@given(
    # Minutes after the start, over six hours, ten days or three years: buckets collide at every scale.
    offsets=st.sampled_from([6 * 60, 10 * 24 * 60, 3 * 365 * 24 * 60]).flatmap(
        lambda span: st.lists(st.integers(min_value=0, max_value=span), max_size=40, unique=True)
    ),
    types=st.lists(st.sampled_from([BackupType.FULL, BackupType.CONFIG, BackupType.DATA]), min_size=40, max_size=40),
    tagged=st.lists(st.booleans(), min_size=40, max_size=40),
    counts=st.tuples(*[st.integers(min_value=0, max_value=6)] * 6),
    within_hours=st.one_of(st.none(), st.integers(min_value=1, max_value=24 * 90)),
    verified_index=st.integers(min_value=-1, max_value=39),
)
def test_plan_matches_the_reference(
    offsets: list[int],
    types: list[BackupType],
    tagged: list[bool],
    counts: tuple[int, ...],
    within_hours: int | None,
    verified_index: int,
) -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    backups = [
        meta(f"b{i}", start + timedelta(minutes=offset), types[i], ("keep",) if tagged[i] else ())
        for i, offset in enumerate(offsets)
    ]
    policy = RetentionPolicy(
        keep_last=counts[0],
        keep_hourly=counts[1],
        keep_daily=counts[2],
        keep_weekly=counts[3],
        keep_monthly=counts[4],
        keep_yearly=counts[5],
        # Half a second off the hour: no backup sits exactly on the boundary (restic excludes it, we include it).
        keep_within=timedelta(hours=within_hours, milliseconds=500) if within_hours else None,
        keep_tags=("keep",) if counts[0] % 2 else (),
    )
    newest_verified = backups[verified_index].backup_id if 0 <= verified_index < len(backups) else None
    if policy.is_empty:
        with pytest.raises(ValueError):
            plan_prune(backups, policy, newest_verified)
        return
    plan = plan_prune(backups, policy, newest_verified)
    assert set(kept(plan)) == reference_keep(backups, policy, newest_verified)
    assert set(kept(plan)) | set(removed(plan)) == {b.backup_id for b in backups}
    assert all(d.reasons for d in plan.keep) and not any(d.reasons for d in plan.remove)


# --- real backups -----------------------------------------------------------------------------


class Clock:
    """Stands in for the clock module in the backup creator, so real backups get chosen timestamps."""

    def __init__(self) -> None:
        self.current = T0

    def now(self) -> datetime:
        return self.current

    iso = staticmethod(real_clock.iso)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(create_module, "clock", fake)
    monkeypatch.setattr(create_module, "RACY_WINDOW_NS", 0)  # unchanged files are hard-linked
    return fake


def make_backups(manager: RecoveryManager, clock: Clock, plan: list[tuple[str, dict]]) -> dict[str, str]:
    """Create one backup per (timestamp, create_backup kwargs); returns timestamp -> backup id."""
    ids = {}
    for stamp, kwargs in plan:
        clock.current = at(stamp)
        ids[stamp] = manager.create_backup(**kwargs)
    return ids


def backup_dirs(manager: RecoveryManager) -> list[str]:
    return sorted(p.name for p in manager.backup_dir.iterdir() if not p.name.startswith("."))


def assert_all_verify(manager: RecoveryManager) -> None:
    fresh = RecoveryManager(site=manager.site)
    for metadata in fresh.list_backups():
        report = fresh.verify_backup(metadata.backup_id, read_data=True)
        assert report.ok, report.summary()


def test_prune_dry_run_then_for_real(sandbox: Path, clock: Clock) -> None:
    manager = RecoveryManager(site=sandbox)
    ids = make_backups(
        manager,
        clock,
        [
            ("2026-10-15T08:00:00", {"include_state": False, "include_data": False}),
            ("2026-10-20T08:00:00", {"tags": ["pre-recovery"]}),
            ("2026-11-01T10:00:00", {}),
            ("2026-11-01T18:00:00", {}),
            ("2026-11-02T09:00:00", {}),
            ("2026-11-05T12:00:00", {}),
            ("2026-11-05T13:00:00", {}),
        ],
    )
    assert manager.get_backup(ids["2026-11-05T13:00:00"]).files_linked == 9  # 8 site files and recovery.toml
    policy = RetentionPolicy(keep_daily=2, keep_tags=("pre-recovery",))
    before = backup_dirs(manager)

    dry = manager.prune(policy, dry_run=True)
    assert backup_dirs(manager) == before
    assert set(removed(dry)) == {ids["2026-11-05T12:00:00"], ids["2026-11-01T18:00:00"], ids["2026-11-01T10:00:00"]}
    why = reasons(dry)
    assert why[ids["2026-11-05T13:00:00"]] == ["daily 2026-11-05", "newest verified backup (never removed)"]
    assert why[ids["2026-11-02T09:00:00"]] == ["daily 2026-11-02"]
    assert why[ids["2026-10-20T08:00:00"]] == ["tag pre-recovery"]
    assert why[ids["2026-10-15T08:00:00"]] == ["newest config backup (a group is never emptied)"]

    real = manager.prune(policy, dry_run=False)
    assert removed(real) == removed(dry) and kept(real) == kept(dry)
    assert backup_dirs(manager) == sorted(kept(dry))
    assert [b.backup_id for b in manager.list_backups()] == kept(dry)
    assert not list(manager.backup_dir.glob(".tmp-*"))
    assert_all_verify(manager)


def test_prune_with_an_empty_policy_deletes_nothing(sandbox: Path) -> None:
    manager = RecoveryManager(site=sandbox)
    manager.create_backup()
    manager.create_backup()
    before = backup_dirs(manager)
    for dry_run in (True, False):
        with pytest.raises(ValueError, match="empty retention policy"):
            manager.prune(RetentionPolicy(), dry_run=dry_run)
    assert backup_dirs(manager) == before


def test_prune_never_removes_the_newest_verified_backup(sandbox: Path, clock: Clock) -> None:
    manager = RecoveryManager(site=sandbox)
    ids = make_backups(
        manager,
        clock,
        [
            ("2026-11-01T00:00:00", {"tags": ["keep"]}),
            ("2026-11-02T00:00:00", {}),
            ("2026-11-03T00:00:00", {}),
            ("2026-11-04T00:00:00", {}),
        ],
    )
    newest = manager._get_backup_dir(ids["2026-11-04T00:00:00"]) / "metadata.json"
    newest.chmod(0o644)
    newest.write_text(newest.read_text().replace('"description": ""', '"description": "tampered"'))
    plan = manager.prune(RetentionPolicy(keep_tags=("keep",)), dry_run=False)
    survivor = ids["2026-11-03T00:00:00"]
    assert reasons(plan)[survivor] == ["newest verified backup (never removed)"]
    assert set(kept(plan)) == {ids["2026-11-01T00:00:00"], survivor}
    assert backup_dirs(manager) == sorted(kept(plan))
    assert RecoveryManager(site=sandbox).get_backup("latest").backup_id == survivor


def test_cleanup_old_backups_keeps_the_newest_n(sandbox: Path, clock: Clock) -> None:
    manager = RecoveryManager(site=sandbox)
    stamps = [f"2026-11-{day:02d}T06:00:00" for day in range(1, 6)]
    ids = make_backups(manager, clock, [(stamp, {}) for stamp in stamps])
    assert manager.cleanup_old_backups(keep_count=2) == 3  # the original API: how many were deleted
    assert [b.backup_id for b in manager.list_backups()] == [ids[stamps[4]], ids[stamps[3]]]
    assert manager.cleanup_old_backups(keep_count=2) == 0
    assert_all_verify(manager)


def test_cleanup_old_backups_keeps_one_of_each_type(sandbox: Path, clock: Clock) -> None:
    manager = RecoveryManager(site=sandbox)
    ids = make_backups(
        manager,
        clock,
        [
            ("2026-11-01T06:00:00", {"include_state": False, "include_data": False}),
            ("2026-11-02T06:00:00", {}),
            ("2026-11-03T06:00:00", {}),
            ("2026-11-04T06:00:00", {}),
        ],
    )
    assert manager.cleanup_old_backups(keep_count=1) == 2
    assert backup_dirs(manager) == sorted([ids["2026-11-01T06:00:00"], ids["2026-11-04T06:00:00"]])
    assert [b.backup_type for b in manager.list_backups()] == [BackupType.FULL, BackupType.CONFIG]


@pytest.mark.parametrize("bad", [0, -3])
def test_cleanup_old_backups_refuses_to_keep_nothing(sandbox: Path, bad: int) -> None:
    manager = RecoveryManager(site=sandbox)
    manager.create_backup()
    before = backup_dirs(manager)
    with pytest.raises(ValueError, match="keep_count"):
        manager.cleanup_old_backups(bad)
    assert backup_dirs(manager) == before


def test_delete_backup_leaves_hard_linked_siblings_intact(sandbox: Path, clock: Clock) -> None:
    manager = RecoveryManager(site=sandbox)
    ids = make_backups(manager, clock, [(f"2026-11-0{day}T00:00:00", {}) for day in (1, 2, 3)])
    first, middle, last = ids.values()
    shared = manager._get_backup_dir(last) / "data" / "trades.csv"
    assert shared.stat().st_nlink == 3

    assert manager.delete_backup(middle) is True
    assert backup_dirs(manager) == sorted([first, last])
    assert shared.stat().st_nlink == 2
    assert manager.delete_backup(first) is True
    assert shared.stat().st_nlink == 1
    assert [b.backup_id for b in manager.list_backups()] == [last]
    assert not list(manager.backup_dir.glob(".tmp-*"))
    assert_all_verify(manager)
    assert (manager._get_backup_dir(last) / "data" / "trades.csv").read_bytes() == (
        sandbox / "data" / "trades.csv"
    ).read_bytes()


def test_delete_backup_refuses_unknown_and_unsafe_ids(sandbox: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The original API: False (logged, with the reason in last_error), never an exception."""
    manager = RecoveryManager(site=sandbox)
    keep = manager.create_backup()
    assert manager.delete_backup("20261125T000000Z-full-000000") is False
    assert manager.last_error is not None
    assert "20261125T000000Z-full-000000" in manager.last_error and str(manager.backup_dir) in manager.last_error
    assert "20261125T000000Z-full-000000" in caplog.text
    for bad in ("../site", "..", ".lock", f"{keep}/data"):
        manager.last_error = None
        assert manager.delete_backup(bad) is False, bad
        assert manager.last_error and repr(bad) in manager.last_error
    assert backup_dirs(manager) == [keep]
    assert (sandbox / "data" / "trades.csv").is_file()
    assert RecoveryManager(site=sandbox).verify_backup(keep).ok


def test_delete_interrupted_midway_is_finished_by_the_next_run(sandbox: Path) -> None:
    """delete renames the backup to .tmp-deleting-<id> first: a crash there never leaves half a backup listed."""
    manager = RecoveryManager(site=sandbox)
    keep = manager.create_backup()
    doomed = manager.create_backup()
    half_deleted = manager.backup_dir / f".tmp-deleting-{doomed}"
    (manager.backup_dir / doomed).rename(half_deleted)
    half_deleted.chmod(0o755)  # _remove_dir makes the tree writable, then the crash hit during rmtree
    (half_deleted / "config").chmod(0o755)
    shutil.rmtree(half_deleted / "config")

    fresh = RecoveryManager(site=sandbox)
    assert [b.backup_id for b in fresh.list_backups()] == [keep]
    assert not half_deleted.exists()
    assert any(half_deleted.name in note for note in fresh.notes)
    assert fresh.verify_backup(keep).ok
