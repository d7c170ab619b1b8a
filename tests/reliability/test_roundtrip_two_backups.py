"""Round trips, property 2: two backups of a changing site, restored in turn, each exactly.

The generated sites, what "exactly" means and the mutations are in ``roundtrip_sites.py``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st
from roundtrip_sites import (
    SITES,
    Entries,
    Layout,
    assert_backup_holds,
    assert_clean_site_root,
    backup_path,
    categories_now,
    describe,
    flags,
    mutate_randomly,
    no_dir_modes,
    outside_now,
    site_dir,
    write_site,
)
from site_state import CATEGORIES, assert_success_backups_verify, scaled
from snapshots import tree

import recovery_lib.backup.create as create_module
from recovery_lib.backup import BackupError
from recovery_lib.manager import RecoveryManager

# --- property 2: two backups, restored in turn ---------------------------------------------------


@contextmanager
def racy_window(kind: str) -> Iterator[None]:
    """``real``: the library's 3 s window (every file of a fresh site is copied, never linked);
    ``none``: no window, so the second backup really hard-links what did not change since the first
    (file times here have nanosecond resolution, and every change happens after the first backup)."""
    if kind == "real":
        yield
    else:
        with mock.patch.object(create_module, "RACY_WINDOW_NS", 0):
            yield


def source_stats(site: Path, entries: Entries) -> dict[str, tuple[int, ...]]:
    """What the backup compares to decide "unchanged": size, mtime, ctime, inode, device."""
    found = {}
    for path, value in entries.items():
        if value[0] == "file":
            info = os.lstat(site / path)
            found[path] = (info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino, info.st_dev)
    return found


@pytest.mark.parametrize("window", ["real", "none"])
@settings(max_examples=scaled(10), suppress_health_check=[HealthCheck.too_slow])
@given(layout=SITES, data=st.data())
def test_two_backups_restore_each_exactly_and_share_only_unchanged_files(
    window: str, layout: Layout, data: st.DataObject
) -> None:
    """Item 5, incremental round trip: backup 1 -> damage -> backup 2 -> restore 1 -> restore 2.

    Promises proven: restoring the first backup gives back the first state exactly and restoring the
    second then gives the second state exactly, so hard-linked incremental backups share neither
    damage nor content wrongly; backup 2 hard-links a file from backup 1 only when the source is
    unchanged (size, mtime, ctime, inode) and then holds the same bytes, and (with no racy window)
    it links every such file; no backup changes across the restores and every one verifies.
    """
    describe(layout)
    with racy_window(window), site_dir() as site:
        write_site(site, layout)
        manager = RecoveryManager(site=site)
        first = categories_now(site)
        outside = outside_now(site)
        if not any(first.values()):
            with pytest.raises(BackupError, match="nothing to back up"):
                manager.create_backup()
            return
        first_id = manager.create_backup()
        first_stats = source_stats(site, {k: v for c in first.values() for k, v in c.items()})

        mutate_randomly(site, data)
        second = categories_now(site)
        if not any(second.values()):
            with pytest.raises(BackupError, match="nothing to back up"):
                manager.create_backup()
            second_id = None
        else:
            second_stats = source_stats(site, {k: v for c in second.values() for k, v in c.items()})
            second_id = manager.create_backup()
            assert_backup_holds(manager, first_id, first)
            assert_backup_holds(manager, second_id, second)
            metadata = manager.get_backup(second_id)
            assert metadata.parent_id == first_id
            shared = []
            for path, stats in second_stats.items():
                copy_2 = os.lstat(backup_path(manager, second_id) / path)
                try:
                    copy_1 = os.lstat(backup_path(manager, first_id) / path)
                except (FileNotFoundError, NotADirectoryError):
                    continue
                unchanged = first_stats.get(path) == stats
                if copy_1.st_ino == copy_2.st_ino:
                    shared.append(path)
                    assert unchanged, f"{path} changed since backup 1 but backup 2 shares its copy"
                elif window == "none":
                    assert not unchanged, f"{path} is unchanged since backup 1 but was copied again"
            assert metadata.files_linked == len(shared)
            event("backup 2 hard-linked some files" if shared else "backup 2 linked nothing")
            note(f"backup 2 linked {len(shared)} of {len(second_stats)} files")
        stored = {i: tree(backup_path(manager, i)) for i in (first_id, second_id) if i}

        result = manager.apply_restore(manager.plan_restore(first_id, **flags(list(CATEGORIES))))
        assert result.ok, result.problems
        now = categories_now(site)
        assert {c: no_dir_modes(now[c]) for c in CATEGORIES} == {c: no_dir_modes(first[c]) for c in CATEGORIES}
        assert outside_now(site) == outside
        assert_clean_site_root(site, {c for c in CATEGORIES if first[c]})
        if second_id is None:
            assert result.pre_recovery_backup_id is None  # the damaged site held nothing to save
        else:
            assert result.pre_recovery_backup_id is not None
            assert_backup_holds(manager, result.pre_recovery_backup_id, second)

        if second_id is not None:
            result = manager.apply_restore(manager.plan_restore(second_id, **flags(list(CATEGORIES))))
            assert result.ok, result.problems
            now = categories_now(site)
            assert {c: no_dir_modes(now[c]) for c in CATEGORIES} == {c: no_dir_modes(second[c]) for c in CATEGORIES}
            assert outside_now(site) == outside
            assert_clean_site_root(site, {c for c in CATEGORIES if second[c]})
            assert result.pre_recovery_backup_id is not None
            assert_backup_holds(manager, result.pre_recovery_backup_id, first)

        for backup_id, entries in stored.items():
            assert tree(backup_path(manager, backup_id)) == entries, f"backup {backup_id} changed"
        verified = assert_success_backups_verify(site)
        assert first_id in verified and (second_id is None or second_id in verified)
