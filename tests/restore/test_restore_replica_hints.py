"""On-call M7: when every local backup is damaged and a replica holds a good copy, the refusal names the
restore from that replica; and a ``--from-replica --dry-run`` says what its pull wrote and moved (into
the backup directory), never "nothing was changed"."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from cli_capture import run

from recovery_lib.cli.main import main
from recovery_lib.errors import BackupError
from recovery_lib.manager import RecoveryManager

CATEGORY_DIRS = ("config", "state", "data")


def site_files(root: Path) -> dict[str, bytes]:
    """The site's own files (its three categories and recovery.toml), not the backup directory."""
    found = {
        p.relative_to(root).as_posix(): p.read_bytes()
        for top in CATEGORY_DIRS
        for p in (root / top).rglob("*")
        if p.is_file()
    }
    return {**found, "recovery.toml": (root / "recovery.toml").read_bytes()}


def with_replica(site: Path, replica_dir: Path) -> None:
    """The sandbox with one file:// replica ``offsite`` (pushed after every backup) instead of its own."""
    toml = site / "recovery.toml"
    text = toml.read_text()
    text = text[: text.index("[[replicas]]")] if "[[replicas]]" in text else text
    toml.write_text(text.rstrip("\n") + f'\n\n[[replicas]]\nname = "offsite"\nurl = "file://{replica_dir}"\n')


def damage_local(site: Path, backup_id: str) -> None:
    """Flip one byte of a data file in the local backup (bit rot; the backup stored it read-only)."""
    victim = site / "backups" / backup_id / "data" / "trades.csv"
    victim.chmod(0o600)
    data = victim.read_bytes()
    victim.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))


def backup(site: Path) -> str:
    out = io.StringIO()
    assert main(["backup", "create", "--site", str(site)], out=out) == 0, out.getvalue()
    return out.getvalue().split()[1]


def test_nothing_to_restore_locally_names_the_replica_restore(
    sandbox: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Promise: no local backup verifies, the site has a replica: the refusal names
    `recovery restore latest --from-replica offsite --data --dry-run --site SITE` as the next step."""
    with_replica(sandbox, tmp_path / "replica")
    backup_id = backup(sandbox)
    damage_local(sandbox, backup_id)
    before = site_files(sandbox)

    code, out, err = run(capsys, "restore", "latest", "--data", "--dry-run", "--site", str(sandbox))

    assert code != 0 and "nothing to restore from" in err
    assert f"`recovery restore latest --from-replica offsite --data --dry-run --site {sandbox}`" in err
    assert site_files(sandbox) == before


def test_without_replicas_the_next_step_stays_procedure_d(sandbox: Path) -> None:
    """Promise: a site without replicas is not sent looking for one."""
    toml = sandbox / "recovery.toml"
    text = toml.read_text()
    toml.write_text(text[: text.index("[[replicas]]")] if "[[replicas]]" in text else text)
    backup_id = RecoveryManager(site=sandbox).create_backup(push=False)
    damage_local(sandbox, backup_id)
    with pytest.raises(BackupError) as raised:
        RecoveryManager(site=sandbox).latest(("data",))
    assert "(Procedure D: escalate and create a new backup)" in str(raised.value)
    assert "--from-replica" not in str(raised.value)


def test_from_replica_dry_run_says_what_the_pull_wrote_and_moved(
    sandbox: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Promise: the dry run names the backup it pulled into the backup directory and where the damaged
    local copy went, says the site itself was not changed, and it was not."""
    with_replica(sandbox, tmp_path / "replica")
    backup_id = backup(sandbox)
    damage_local(sandbox, backup_id)
    before = site_files(sandbox)
    backups = sandbox / "backups"

    code, out, err = run(
        capsys, "restore", "latest", "--from-replica", "offsite", "--data", "--dry-run", "--site", str(sandbox)
    )

    assert code == 0, err
    last = out.splitlines()[-1]
    assert last.startswith(
        f"Dry run: pulled {backup_id} into {backups}; moved the damaged local copy to "
        f"{backups / ('.quarantine-' + backup_id)}; the site itself was not changed"
    ), out
    assert "nothing was changed" not in out
    assert site_files(sandbox) == before
    assert (backups / f".quarantine-{backup_id}").is_dir()  # kept as evidence, where the line says
    assert RecoveryManager(site=sandbox).verify_backup(backup_id).ok  # the pulled copy is whole

    # Again: the good copy is already local, nothing is pulled, and now nothing was changed indeed.
    code, out, err = run(
        capsys, "restore", "latest", "--from-replica", "offsite", "--data", "--dry-run", "--site", str(sandbox)
    )
    assert code == 0, err
    assert out.splitlines()[-1] == f"Dry run: nothing was changed (backup {backup_id} was already in {backups})."
