"""Round trips, property 1: backup, damage, restore a subset of the categories: exactly the backup.

The generated sites, what "exactly" means and the mutations are in ``roundtrip_sites.py``.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, event, given, settings
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

from recovery_lib.backup import BackupError
from recovery_lib.manager import PRE_RECOVERY_TAG, RecoveryManager
from recovery_lib.restore.plan import Action


def plan_expectation(mutated: dict[str, Entries], backup: dict[str, Entries], categories: list[str]) -> dict:
    """What the plan must say per file: compare the backup's files with the site's non-directories."""
    expected: dict[str, Action] = {}
    for category in categories:
        wanted = {k: v for k, v in backup[category].items() if v[0] == "file"}
        present = {k: v for k, v in mutated[category].items() if v[0] != "dir"}
        for path, (_kind, data, _mode) in wanted.items():
            if path not in present:
                expected[path] = Action.CREATE
            elif present[path][0] == "file" and present[path][1] == data:
                expected[path] = Action.UNCHANGED
            else:
                expected[path] = Action.REPLACE
        expected.update({path: Action.DELETE for path in present if path not in wanted})
    return expected


SUBSETS = st.lists(st.sampled_from(CATEGORIES), min_size=1, unique=True).map(
    lambda chosen: [c for c in CATEGORIES if c in chosen]
)


# --- property 1: backup, damage, restore a subset -----------------------------------------------


@settings(max_examples=scaled(30), suppress_health_check=[HealthCheck.too_slow])
@given(layout=SITES, backed_up=SUBSETS, data=st.data())
def test_restore_of_random_categories_after_random_damage_is_exact(
    layout: Layout, backed_up: list[str], data: st.DataObject
) -> None:
    """Item 5, round trip: random tree -> backup -> random damage -> restore a random subset.

    Promises proven: the restored categories equal the site at backup time exactly (bytes, file
    modes as recorded, every directory including empty ones, absent stays absent); the other
    categories and everything outside the categories equal the damaged site exactly; the plan
    says per file what happens; the backup is unchanged and still verifies with its contents
    hashed; a pre-recovery backup was taken, verifies and holds exactly the damaged state; no
    staging, journal or temp file is left.
    """
    describe(layout)
    with site_dir() as site:
        write_site(site, layout)
        manager = RecoveryManager(site=site)
        at_backup = categories_now(site)
        outside = outside_now(site)
        if not any(at_backup[c] for c in backed_up):
            with pytest.raises(BackupError, match="nothing to back up"):
                manager.create_backup(**{f"include_{c}": c in backed_up for c in CATEGORIES})
            return
        backup_id = manager.create_backup(**{f"include_{c}": c in backed_up for c in CATEGORIES})
        assert_backup_holds(manager, backup_id, at_backup)
        stored = tree(backup_path(manager, backup_id))

        mutate_randomly(site, data)
        mutated = categories_now(site)
        chosen = data.draw(
            st.lists(st.sampled_from(backed_up), min_size=1, unique=True).map(
                lambda picked: [c for c in CATEGORIES if c in picked]
            ),
            label="restored categories",
        )
        use_runbook_call = data.draw(st.booleans(), label="restore_backup() instead of plan/apply")
        event(f"restored {'+'.join(chosen)} of a {'+'.join(backed_up)} backup")

        plan = manager.plan_restore(backup_id, **flags(chosen))
        assert {a.path: a.action for a in plan.actions} == plan_expectation(mutated, at_backup, chosen)
        assert categories_now(site) == mutated, "planning must not touch the site"
        if use_runbook_call:
            assert manager.restore_backup(backup_id, **flags(chosen)) is True
            result = manager.last_result
            assert result is not None
        else:
            result = manager.apply_restore(plan)
        assert result.ok, result.problems
        assert result.problems == []

        after = categories_now(site)
        for category in CATEGORIES:
            if category in chosen:
                assert no_dir_modes(after[category]) == no_dir_modes(at_backup[category]), category
            else:
                assert after[category] == mutated[category], category
        assert outside_now(site) == outside
        assert_clean_site_root(site, {c for c in CATEGORIES if after[c]})

        assert tree(backup_path(manager, backup_id)) == stored, "a restore must never change the backup"
        verified = assert_success_backups_verify(site)
        assert backup_id in verified
        if any(mutated.values()):
            pre_id = result.pre_recovery_backup_id
            assert pre_id is not None and pre_id in verified
            assert PRE_RECOVERY_TAG in manager.get_backup(pre_id).tags
            assert_backup_holds(manager, pre_id, mutated)
        else:
            assert result.pre_recovery_backup_id is None  # nothing to save
