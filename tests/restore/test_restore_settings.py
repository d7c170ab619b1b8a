"""Issue 15 part 5: a malformed recovery.toml does not block `backup list` and `restore`, and every
backup can give recovery.toml back, byte for byte.

The on-call story end to end through the real CLI: the file is broken; `backup list` still lists (on
the default settings, with a loud warning naming the file, the line and what is wrong); every other
command still refuses; `restore latest --settings` brings the file back from a backup (a dry run shows
the difference and changes nothing; the broken file is kept beside it); then every command works again.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cli_capture import run
from snapshots import files

from recovery_lib.errors import RestoreError
from recovery_lib.manager import RecoveryManager
from recovery_lib.restore.plan import Action
from recovery_lib.restore.settings import apply_settings, plan_settings
from recovery_lib.site.config import load_site

BROKEN = b'[site]\nname = "peak-trade-sandbox"\n[backups\nmax_age_hours = 24\n'  # line 3: not valid TOML


def kept_files(site: Path) -> list[Path]:
    return sorted(site.glob("recovery.toml.replaced-*"))


def test_a_broken_recovery_toml_is_listed_around_and_restored_byte_for_byte(
    sandbox: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = str(sandbox)
    good = (sandbox / "recovery.toml").read_bytes()
    backup_id = RecoveryManager(site=sandbox).create_backup(push=False)
    (sandbox / "recovery.toml").write_bytes(BROKEN)

    # backup list: runs on the defaults, says so loudly (stderr and the log), lists the backup.
    log_file = tmp_path / "recovery.log"
    code, out, err = run(capsys, "--log-file", str(log_file), "backup", "list", "--site", site)
    assert code == 0 and backup_id in out
    assert f"WARNING: {sandbox / 'recovery.toml'}:3:" in err and "not valid TOML" in err
    assert f"DEFAULT settings: backups in {sandbox / 'backups'}" in err
    assert "recovery restore latest --settings" in err
    assert f"{sandbox / 'recovery.toml'}:3:" in log_file.read_text()
    code, out, err = run(capsys, "-q", "backup", "list", "--site", site)
    assert code == 0 and "WARNING" in err  # loud even with -q: everything listed depends on it

    # Every other command still refuses: a backup or a health check on the wrong settings would mislead.
    for argv in (["backup", "create", "--no-push"], ["health"], ["backup", "verify", "latest"], ["site"]):
        code, _, err = run(capsys, *argv, "--site", site)
        assert code == 2 and f"{sandbox / 'recovery.toml'}:3:" in err, argv

    # The dry run shows the change and changes nothing.
    before = files(sandbox)
    code, out, err = run(capsys, "restore", "latest", "--settings", "--dry-run", "--site", site)
    assert code == 0, err
    assert f"recovery.toml from backup {backup_id}" in out and "replace" in out
    assert "-[backups" in out and "+[backups]" in out  # the diff: broken line out, good one in
    assert "Dry run: nothing was changed." in out
    assert files(sandbox) == before

    # Applied: byte for byte, the broken file kept beside it.
    code, out, err = run(capsys, "restore", "latest", "--settings", "--yes", "--site", site)
    assert code == 0, err
    assert (sandbox / "recovery.toml").read_bytes() == good
    assert [p.read_bytes() for p in kept_files(sandbox)] == [BROKEN]
    assert f"Restored recovery.toml from {backup_id}" in out

    # And every command works again, on the real settings.
    code, out, err = run(capsys, "backup", "list", "--site", site)
    assert code == 0 and "WARNING" not in err and backup_id in out
    assert run(capsys, "site", "--site", site)[0] == 0
    assert run(capsys, "health", "--site", site, "--check", "config")[0] == 0
    assert run(capsys, "backup", "create", "--no-push", "--site", site)[0] == 0
    code, out, _ = run(capsys, "backup", "verify", "all", "--read-data", "--site", site)
    assert code == 0 and out.count("✅") == 2
    # Again: nothing to do.
    code, out, _ = run(capsys, "restore", "latest", "--settings", "--yes", "--site", site)
    assert code == 0 and "already identical" in out and len(kept_files(sandbox)) == 1


def test_a_broken_file_that_moved_the_backups_points_at_them(sandbox: Path, capsys: pytest.CaptureFixture[str]) -> None:
    toml = sandbox / "recovery.toml"
    good = toml.read_text().replace("[backups]\n", '[backups]\ndir = "vault"\n')
    toml.write_text(good)
    backup_id = RecoveryManager(site=sandbox).create_backup(push=False)
    assert (sandbox / "vault" / backup_id).is_dir()
    toml.write_text(good.replace("[backups]\n", "[backups]\nmax_age_hourz = 1\n"))
    site = str(sandbox)

    code, out, err = run(capsys, "backup", "list", "--site", site)
    assert code == 0 and f"No backups in {sandbox / 'backups'}" in out
    assert "max_age_hourz" in err and "[backups] dir = 'vault'" in err
    assert f"--backup-dir {sandbox / 'vault'}" in err

    code, out, err = run(capsys, "backup", "list", "--backup-dir", str(sandbox / "vault"), "--site", site)
    assert code == 0 and backup_id in out
    assert f"backups in {sandbox / 'vault'} (--backup-dir)" in err and "Run the command again" not in err

    vault = os.path.relpath(sandbox / "vault")  # relative: to the current directory, as a shell user means
    code, out, err = run(capsys, "restore", "latest", "--settings", "--yes", "--backup-dir", vault, "--site", site)
    assert code == 0, err
    assert toml.read_text() == good
    code, out, err = run(capsys, "backup", "list", "--site", site)
    assert code == 0 and backup_id in out and "WARNING" not in err


def test_settings_restore_refuses_the_stale_default_directory_until_backup_dir_is_given(
    sandbox: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """On-call M2: backups first in SITE/backups, then [backups] dir moved them to a vault; the file
    breaks. The warning's repair command names --backup-dir; `restore --settings` without it is refused
    (exit 2, naming the --backup-dir to add, nothing changed), since SITE/backups holds only an older
    copy of the file; with it, the newest copy (the one that sets dir) comes back."""
    toml = sandbox / "recovery.toml"
    RecoveryManager(site=sandbox).create_backup(push=False)  # the old copy, in SITE/backups
    moved = toml.read_text().replace("[backups]\n", '[backups]\ndir = "vault"\n')
    toml.write_text(moved)
    newest = RecoveryManager(site=sandbox).create_backup(push=False)  # the newest copy, in the vault
    broken = moved.replace("[backups]\n", "[backups]\nmax_age_hourz = 1\n")
    toml.write_text(broken)
    site, vault = str(sandbox), sandbox / "vault"
    repair = f"`recovery restore latest --settings --backup-dir {vault} --site {sandbox}`"

    code, _, err = run(capsys, "backup", "list", "--site", site)
    assert code == 0 and repair in err  # the warning's repair command, ready to paste
    before = files(sandbox)
    for extra in (["--yes"], ["--dry-run"]):
        code, out, err = run(capsys, "restore", "latest", "--settings", *extra, "--site", site)
        assert code == 2, err
        assert "restore refused, nothing was changed" in err and f"Add --backup-dir {vault}" in err
        assert files(sandbox) == before and out == "" and toml.read_text() == broken

    code, out, err = run(capsys, "restore", "latest", "--settings", "--yes", "--backup-dir", str(vault), "--site", site)
    assert code == 0, err
    assert toml.read_text() == moved  # the newest copy: it keeps dir = "vault"
    code, out, err = run(capsys, "backup", "list", "--site", site)
    assert code == 0 and "WARNING" not in err and newest in out  # every command reads the vault again


def test_a_category_restore_on_a_moved_backup_dir_names_backup_dir_in_its_repair_command(
    sandbox: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The refusal of a category restore on the defaults points at the repair that works: with --backup-dir."""
    toml = sandbox / "recovery.toml"
    toml.write_text(toml.read_text().replace("[backups]\n", '[backups]\ndir = "vault"\nmax_age_hourz = 1\n'))
    code, out, err = run(capsys, "restore", "latest", "--data", "--yes", "--site", str(sandbox))
    assert code == 2 and out == ""
    assert f"`recovery restore latest --settings --yes --backup-dir {sandbox / 'vault'} --site {sandbox}`" in err


def test_latest_passes_over_the_pre_recovery_snapshot_and_malformed_copies(
    sandbox: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A restore's pre-recovery backup holds the site as it was, a broken recovery.toml included; and a
    backup may hold a malformed copy. "latest" gives back neither."""
    site = load_site(sandbox)
    good = (sandbox / "recovery.toml").read_bytes()
    first = RecoveryManager(site=site).create_backup(push=False)
    (sandbox / "recovery.toml").write_bytes(good + b"[bakups]\nmax_age_hours = 1\n")  # parses, does not load
    malformed = RecoveryManager(site=site).create_backup(push=False)  # the loaded Site: no reload
    (sandbox / "recovery.toml").write_bytes(BROKEN)
    pre_recovery, _ = RecoveryManager(site=site).create_pre_recovery_backup("before the restore", [])
    assert (sandbox / "backups" / pre_recovery / "recovery.toml").read_bytes() == BROKEN

    code, out, err = run(capsys, "restore", "latest", "--settings", "--yes", "--site", str(sandbox))
    assert code == 0, err
    assert f"backup {malformed} passed over for recovery.toml: its recovery.toml is malformed too" in out
    assert pre_recovery not in out.split("Restore plan")[1]
    assert f"Restored recovery.toml from {first}" in out
    assert (sandbox / "recovery.toml").read_bytes() == good

    # Named explicitly, a malformed copy is refused with the reason, and nothing is changed.
    code, _, err = run(capsys, "restore", malformed, "--settings", "--yes", "--site", str(sandbox))
    assert code == 2 and "malformed too" in err and "unknown table [bakups]" in err
    assert (sandbox / "recovery.toml").read_bytes() == good


def test_a_damaged_copy_is_never_restored(sandbox: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manager = RecoveryManager(site=sandbox)
    older = manager.create_backup(push=False)
    newer = manager.create_backup(include_state=False, include_data=False, push=False)
    copy = manager.backup_dir / newer / "recovery.toml"
    os.chmod(copy.parent, 0o755)
    copy.unlink()  # not the hard-linked inode: a fresh file with other bytes
    copy.write_bytes(b"[site]\nname = 'evil'\n".ljust(len((sandbox / "recovery.toml").read_bytes()), b"#"))
    (sandbox / "recovery.toml").write_bytes(BROKEN)
    code, _, err = run(capsys, "restore", newer, "--settings", "--yes", "--site", str(sandbox))
    assert code == 2 and "does not verify" in err and "recovery.toml" in err
    assert (sandbox / "recovery.toml").read_bytes() == BROKEN and not kept_files(sandbox)
    code, out, err = run(capsys, "restore", "latest", "--settings", "--yes", "--site", str(sandbox))
    assert code == 0, err
    assert f"backup {newer} passed over" in out and f"Restored recovery.toml from {older}" in out
    assert (sandbox / "recovery.toml").read_bytes() == (manager.backup_dir / older / "recovery.toml").read_bytes()


def test_older_backups_without_it_stay_usable(sandbox: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A backup taken before backups kept recovery.toml: listed, verified and restored as before; asked
    for recovery.toml, it says it has none."""
    text = (sandbox / "recovery.toml").read_bytes()
    (sandbox / "recovery.toml").unlink()  # a backup without it, as every backup before this change
    old = RecoveryManager(site=sandbox).create_backup(push=False)
    assert not (sandbox / "backups" / old / "recovery.toml").exists()
    (sandbox / "recovery.toml").write_bytes(text)
    site = str(sandbox)
    assert run(capsys, "backup", "verify", old, "--read-data", "--site", site)[0] == 0
    code, out, err = run(capsys, "restore", old, "--all", "--dry-run", "--site", site)
    assert code == 0, err
    code, _, err = run(capsys, "restore", old, "--settings", "--dry-run", "--site", site)
    assert code == 2 and "holds no recovery.toml" in err
    code, _, err = run(capsys, "restore", "latest", "--settings", "--dry-run", "--site", site)
    assert code == 2 and "no backup in" in err and "holds no recovery.toml" in err


def test_a_missing_recovery_toml_is_created(sandbox: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = (sandbox / "recovery.toml").read_bytes()
    backup_id = RecoveryManager(site=sandbox).create_backup(push=False)
    (sandbox / "recovery.toml").unlink()
    code, out, err = run(capsys, "restore", "latest", "--settings", "--yes", "--site", str(sandbox))
    assert code == 0, err
    assert f"from backup {backup_id}" in out and ": create," in out
    assert (sandbox / "recovery.toml").read_bytes() == good and not kept_files(sandbox)


def test_a_category_restore_on_the_defaults_is_only_a_dry_run(
    sandbox: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """On the defaults a restore cannot tell whether the trading system runs ([process] is in the broken
    file) nor trust the category paths: the plan is shown, applying it is refused until --settings."""
    backup_id = RecoveryManager(site=sandbox).create_backup(push=False)
    (sandbox / "data" / "trades.csv").unlink()
    (sandbox / "recovery.toml").write_bytes(BROKEN)
    site = str(sandbox)
    code, out, err = run(capsys, "restore", backup_id, "--data", "--dry-run", "--site", site)
    assert code == 0 and "create    data/trades.csv" in out and "DEFAULT settings" in err
    before = files(sandbox)
    code, out, err = run(capsys, "restore", backup_id, "--data", "--yes", "--site", site)
    assert code == 2 and "restore refused, nothing was changed" in err
    assert f"recovery restore latest --settings --yes --site {sandbox}" in err
    assert files(sandbox) == before and out == ""
    assert run(capsys, "restore", "latest", "--settings", "--yes", "--site", site)[0] == 0
    code, out, err = run(capsys, "restore", backup_id, "--data", "--yes", "--site", site)
    assert code == 0, err
    assert (sandbox / "data" / "trades.csv").read_bytes() == (
        sandbox / "backups" / backup_id / "data" / "trades.csv"
    ).read_bytes()


@pytest.mark.parametrize("other", ["--config", "--all", "--data"])
def test_settings_is_restored_on_its_own(sandbox: Path, other: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "restore", "latest", "--settings", other, "--dry-run", "--site", str(sandbox))
    assert code == 2 and "--settings restores recovery.toml on its own" in err


def test_a_file_changed_since_the_plan_is_not_overwritten(sandbox: Path) -> None:
    manager = RecoveryManager(site=sandbox)
    manager.create_backup(push=False)
    (sandbox / "recovery.toml").write_bytes(BROKEN)
    plan = plan_settings(sandbox.resolve(), manager.backup_dir, manager.list_backups(), "latest", [])
    assert plan.action is Action.REPLACE and plan.current == BROKEN
    (sandbox / "recovery.toml").write_bytes(BROKEN + b"# someone fixing it by hand\n")
    with pytest.raises(RestoreError, match="changed since the plan"):
        apply_settings(plan, manager.backup_dir)
    assert (sandbox / "recovery.toml").read_bytes() == BROKEN + b"# someone fixing it by hand\n"
    assert not kept_files(sandbox)


def test_restoring_settings_refuses_while_another_restore_runs(sandbox: Path) -> None:
    from recovery_lib.backup.lock import SiteRestoreLock
    from recovery_lib.errors import LockedError

    manager = RecoveryManager(site=sandbox)
    manager.create_backup(push=False)
    (sandbox / "recovery.toml").write_bytes(BROKEN)
    plan = plan_settings(sandbox.resolve(), manager.backup_dir, manager.list_backups(), "latest", [])
    with SiteRestoreLock(sandbox.resolve()), pytest.raises(LockedError, match="a restore is running"):
        apply_settings(plan, manager.backup_dir, lock_timeout_s=0.2)
    assert (sandbox / "recovery.toml").read_bytes() == BROKEN
