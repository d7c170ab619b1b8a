"""Round trips: the bugs they found, each pinned with its smallest example."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from roundtrip_sites import (
    CONTENTS,
    NAMES,
    SITES,
    DirSpec,
    FileSpec,
    Layout,
    assert_backup_holds,
    assert_clean_site_root,
    categories_now,
    flags,
    no_dir_modes,
    site_dir,
    write_site,
)
from site_state import CATEGORIES, scaled
from snapshots import tree

from recovery_lib.manager import BackupIncomplete, RecoveryManager

# --- bugs found by the round trips: each pinned with its smallest example ------------------------


def _ensure_dirs(layout: Layout, relative: str) -> Layout:
    """``layout`` plus the directories down to ``relative`` (kept parents-first)."""
    layout = dict(layout)
    parts = relative.split("/")
    for i in range(1, len(parts) + 1):
        prefix = "/".join(parts[:i])
        if isinstance(layout.get(prefix), FileSpec):
            del layout[prefix]
            layout = {k: v for k, v in layout.items() if not k.startswith(prefix + "/")}
        layout.setdefault(prefix, DirSpec(0o755))
    return layout


@settings(max_examples=scaled(5), suppress_health_check=[HealthCheck.too_slow])
@example(layout={"config": DirSpec(0o755), "config/a": FileSpec(b"A", 0o644)}, category="config", clobber=b"")
@given(layout=SITES, category=st.sampled_from(CATEGORIES), clobber=CONTENTS)
def test_a_category_directory_replaced_by_a_file_is_restored(layout: Layout, category: str, clobber: bytes) -> None:
    """Promise: restoring a category gives back the backup's tree whatever stands at its path now,
    here a regular file where the category directory was (``cp settings.toml config`` gone wrong),
    and the pre-recovery backup keeps that file (the scan captures a category path that is a file)."""
    layout = _ensure_dirs(layout, category)
    with site_dir() as site:
        write_site(site, layout)
        manager = RecoveryManager(site=site)
        at_backup = categories_now(site)
        backup_id = manager.create_backup()
        shutil.rmtree(site / category)
        (site / category).write_bytes(clobber)
        mutated = categories_now(site)

        result = manager.apply_restore(manager.plan_restore(backup_id, **flags([category])))
        assert result.ok, result.problems
        after = categories_now(site)
        assert no_dir_modes(after[category]) == no_dir_modes(at_backup[category])
        assert all(after[c] == mutated[c] for c in CATEGORIES if c != category)
        assert result.pre_recovery_backup_id is not None
        assert_backup_holds(manager, result.pre_recovery_backup_id, mutated)
        assert_clean_site_root(site, {c for c in CATEGORIES if after[c]})


@settings(max_examples=scaled(5), suppress_health_check=[HealthCheck.too_slow])
@example(layout={}, category="data", parents=[], name="notes")
@given(
    layout=SITES,
    category=st.sampled_from(CATEGORIES),
    parents=st.lists(NAMES, max_size=3),
    name=NAMES,
)
def test_a_user_file_named_like_a_restore_artifact_round_trips(
    layout: Layout, category: str, parents: list[str], name: str
) -> None:
    """Promise: every regular file of a category is backed up (or the backup is PARTIAL and says
    why), and a restore never loses anything: the pre-recovery backup keeps what it replaces.
    Restore artifacts (``.recovery-staging-*``, ``.recovery-old-*``, the journal) only ever live in
    the site root, so a user's ``data/.recovery-notes`` is an ordinary file."""
    folder = "/".join([category, *parents])
    layout = _ensure_dirs(layout, folder)
    path = f"{folder}/.recovery-{name}"
    layout[path] = FileSpec(b"the user's own file\n", 0o644)
    with site_dir() as site:
        write_site(site, layout)
        manager = RecoveryManager(site=site)
        at_backup = categories_now(site)
        backup_id = manager.create_backup()
        assert_backup_holds(manager, backup_id, at_backup)

        (site / path).write_bytes(b"edited after the backup\n")
        mutated = categories_now(site)
        result = manager.apply_restore(manager.plan_restore(backup_id, **flags([category])))
        assert result.ok, result.problems
        assert no_dir_modes(categories_now(site)[category]) == no_dir_modes(at_backup[category])
        assert result.pre_recovery_backup_id is not None
        assert_backup_holds(manager, result.pre_recovery_backup_id, mutated)


NON_UTF8_NAME = b"caf\xe9.csv"  # Latin-1, as a legacy export tool writes it: legal on Linux


def _site_with_non_utf8_name(site: Path) -> None:
    write_site(site, {"config": DirSpec(0o755), "config/a": FileSpec(b"A", 0o644), "data": DirSpec(0o755)})
    with open(os.path.join(os.fsencode(site), b"data", NON_UTF8_NAME), "wb") as handle:
        handle.write(b"id,qty\n1,2\n")


def test_a_file_name_that_is_not_utf8_is_backed_up_or_reported() -> None:
    """Promise: create_backup either captures every file or raises BackupIncomplete naming the one it
    could not capture (docs/backup-format.md, ``problems``); here, with a Latin-1 file name in
    ``data/``, a successful backup must round-trip the file exactly."""
    with site_dir() as site:
        _site_with_non_utf8_name(site)
        manager = RecoveryManager(site=site)
        at_backup = categories_now(site)
        try:
            backup_id = manager.create_backup()
        except BackupIncomplete as exc:
            shown = (os.fsdecode(NON_UTF8_NAME), repr(os.fsdecode(NON_UTF8_NAME))[1:-1])
            assert any(name in problem for problem in exc.metadata.problems for name in shown), exc.metadata.problems
            return
        assert_backup_holds(manager, backup_id, at_backup)
        shutil.rmtree(site / "data")
        assert manager.restore_backup(backup_id, restore_config=False, restore_data=True) is True
        assert categories_now(site)["data"] == at_backup["data"]


def test_restore_backup_answers_false_rather_than_raising_on_a_non_utf8_name() -> None:
    """Promise (RecoveryManager.restore_backup docstring, the runbook's call): errors are logged and
    the call returns a bool; it never raises. The site is left as it was if the restore cannot run."""
    with site_dir() as site:
        write_site(site, {"config": DirSpec(0o755), "config/a": FileSpec(b"A", 0o644), "data": DirSpec(0o755)})
        manager = RecoveryManager(site=site)
        backup_id = manager.create_backup()
        (site / "config/a").write_bytes(b"broken")
        with open(os.path.join(os.fsencode(site), b"data", NON_UTF8_NAME), "wb") as handle:
            handle.write(b"id,qty\n1,2\n")
        before = tree(site, exclude=("backups",))
        outcome = manager.restore_backup(backup_id, restore_config=True)
        assert isinstance(outcome, bool)
        if not outcome:
            assert tree(site, exclude=("backups",)) == before
        else:
            assert (site / "config/a").read_bytes() == b"A"
        assert_clean_site_root(site, {"config", "data"})
