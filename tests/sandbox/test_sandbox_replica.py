"""The sandbox's default replica: a ``file://`` directory beside the site, named in its recovery.toml,
which outlives the site, and which re-creating the sandbox replaces only with ``--force``."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
from snapshots import tree

from recovery_lib.cli import main as cli
from recovery_lib.errors import SiteError
from recovery_lib.manager import RecoveryManager
from recovery_lib.replica.push import PushReport
from recovery_lib.replica.service import opened
from recovery_lib.sandbox import SandboxSpec, create_sandbox
from recovery_lib.sandbox import generate as generate_module
from recovery_lib.sandbox.destination import replica_dir
from recovery_lib.site.config import load_site

SMALL = SandboxSpec(trades=200, reports=1, report_rows=5, seed=3)


def pushed_backup(root: Path) -> str:
    """A backup of the sandbox at ``root``, pushed as ``recovery backup create`` does; its id."""
    site = load_site(root)
    manager = RecoveryManager(site=site)
    backup_id = manager.create_backup(description="daily")
    (report,) = manager.last_push  # create_backup pushes, as `recovery backup create` does
    assert isinstance(report, PushReport) and report.ok and report.pushed == [backup_id], report.summary()
    return backup_id


def committed(root: Path) -> list[str]:
    with opened(load_site(root).replicas[0]) as replica:
        return replica.committed_ids()


def test_recovery_toml_names_a_plain_file_replica_beside_the_site(sandbox_template: Path) -> None:
    site = load_site(sandbox_template)
    (spec,) = site.replicas
    assert (spec.name, spec.scheme, spec.push) == ("offsite", "file", "after-backup")
    assert spec.url == f"file://{sandbox_template}-offsite" and spec.location == f"{sandbox_template}-offsite"
    assert Path(spec.location) == replica_dir(sandbox_template)
    assert sandbox_template not in Path(spec.location).parents, "the replica must live outside the site"
    assert not spec.encrypted and spec.pushes_after_backup
    text = (sandbox_template / "recovery.toml").read_text()
    comment = text[: text.index("[[replicas]]")].rsplit("\n\n", 1)[1]
    assert "second disk" in comment and "host is gone" in comment, "the replica is explained where it is named"
    assert not replica_dir(sandbox_template).exists(), "the first push creates it, not the sandbox"


def test_the_replica_outlives_the_site(tmp_path: Path) -> None:
    root = tmp_path / "site"
    create_sandbox(root, SMALL)
    backup_id = pushed_backup(root)
    offsite = tmp_path / "site-offsite"
    assert (offsite / "config.json").is_file() and (offsite / "backups" / backup_id).is_dir()
    shutil.copy(root / "recovery.toml", tmp_path / "recovery.toml")  # config management keeps it
    for folder in (p for p in [root, *root.rglob("*")] if p.is_dir()):  # read-only backup folders
        folder.chmod(0o755)
    shutil.rmtree(root)
    assert not root.exists()
    root.mkdir()
    shutil.copy(tmp_path / "recovery.toml", root / "recovery.toml")
    assert committed(root) == [backup_id]


def test_a_path_with_spaces_is_a_valid_url(tmp_path: Path) -> None:
    root = tmp_path / "my sites" / "trading 1"
    create_sandbox(root, SMALL)
    assert load_site(root).replicas[0].location == str(tmp_path / "my sites" / "trading 1-offsite")
    backup_id = pushed_backup(root)
    assert (tmp_path / "my sites" / "trading 1-offsite" / "backups" / backup_id).is_dir()


def test_recreating_a_sandbox_replaces_its_replica_only_with_force(tmp_path: Path) -> None:
    root = tmp_path / "site"
    create_sandbox(root, SMALL)
    pushed_backup(root)
    site_before, replica_before = tree(root), tree(tmp_path / "site-offsite")
    with pytest.raises(SiteError, match="already holds a sandbox"):
        create_sandbox(root, SMALL)
    # The site gone (a lost host), its replica still there: a new sandbox at the same path must not
    # silently inherit another site's backups.
    gone = tmp_path / "gone"
    root.rename(gone)
    with pytest.raises(SiteError, match="holds the replica of an earlier sandbox.*--force"):
        create_sandbox(root, SMALL)
    assert not root.exists() and tree(tmp_path / "site-offsite") == replica_before
    gone.rename(root)
    assert tree(root) == site_before

    create_sandbox(root, SMALL, force=True)
    assert not (tmp_path / "site-offsite").exists(), "the earlier sandbox's backups went with it"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site", "site-units"]
    assert committed(root) == [], "a new sandbox starts with an empty replica"
    pushed_backup(root)


def test_failed_forced_recreation_keeps_the_replica(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "site"
    create_sandbox(root, SMALL)
    backup_id = pushed_backup(root)
    replica_before = tree(tmp_path / "site-offsite")

    def exploded(*args: object, **kwargs: object) -> int:
        raise RuntimeError("disk exploded while writing reports")

    monkeypatch.setattr(generate_module, "_write_reports", exploded)
    with pytest.raises(RuntimeError, match="disk exploded"):
        create_sandbox(root, SMALL, force=True)
    assert tree(tmp_path / "site-offsite") == replica_before and committed(root) == [backup_id]


@pytest.mark.parametrize("force", [False, True])
def test_something_else_where_the_replica_goes_is_refused_untouched(tmp_path: Path, force: bool) -> None:
    precious = tmp_path / "site-offsite"
    precious.mkdir()
    (precious / "photos.txt").write_text("not a replica")
    with pytest.raises(SiteError, match="is not a replica"):
        create_sandbox(tmp_path / "site", SMALL, force=force)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site-offsite"]
    assert (precious / "photos.txt").read_text() == "not a replica"


def test_an_empty_replica_directory_is_used(tmp_path: Path) -> None:
    (tmp_path / "site-offsite").mkdir()  # e.g. a mounted, empty second disk
    create_sandbox(tmp_path / "site", SMALL)
    pushed_backup(tmp_path / "site")


def test_cli_sandbox_create_writes_the_replica(tmp_path: Path) -> None:
    out = io.StringIO()
    code = cli.main(["sandbox", "create", str(tmp_path / "site"), "--trades", "100", "--quiet"], out=out)
    assert code == 0, out.getvalue()
    assert [s.url for s in load_site(tmp_path / "site").replicas] == [f"file://{tmp_path}/site-offsite"]
