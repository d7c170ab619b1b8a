"""Hostile backups and hostile sites: a restore writes only inside the site, whatever a backup says.

A backup is data from disk, so every path in it is hostile until checked. Each hostile manifest is
tried twice: tampered but not re-signed (the hashes show the edit) and re-signed consistently, as an
attacker would (manifest, SHA256SUMS and metadata all agree), so the checks are proven to be on the
paths themselves, not only on hashes. Then hypothesis generates many more hostile paths.

Every case watches a sibling directory of the site (``SiblingWatch``) and the parent directory both
hold: nothing is ever written outside the site.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from site_state import SiblingWatch, backups_bytes, leftovers, make_tiny_site
from snapshots import tree

from recovery_lib.backup.model import read_metadata
from recovery_lib.errors import RecoveryError
from recovery_lib.manager import PRE_RECOVERY_TAG, RecoveryManager

CATEGORIES = ("config", "state", "data")
TRADES = "data/trades.csv"


# --- helpers ------------------------------------------------------------------------------------


def make_writable(backup: Path) -> None:
    """chmod u+w on a backup directory and everything in it (backups are read-only)."""
    for folder, _dirs, files in os.walk(backup):
        os.chmod(folder, stat.S_IMODE(os.lstat(folder).st_mode) | stat.S_IWUSR)
        for name in files:
            path = os.path.join(folder, name)
            if not os.path.islink(path):
                os.chmod(path, stat.S_IMODE(os.lstat(path).st_mode) | stat.S_IWUSR)


def read_manifest(backup: Path) -> dict:
    return json.loads((backup / "manifest.json").read_text())


def write_tampered(backup: Path, document: dict) -> None:
    """Replace manifest.json only: SHA256SUMS and metadata.json still describe the original."""
    make_writable(backup)
    (backup / "manifest.json").write_text(json.dumps(document, indent=1) + "\n")


def write_resigned(backup: Path, document: dict) -> None:
    """Replace manifest.json and make SHA256SUMS and metadata.json agree with it, as an attacker would."""
    make_writable(backup)
    manifest = (json.dumps(document, indent=1) + "\n").encode()
    manifest_sha = hashlib.sha256(manifest).hexdigest()
    lines = [f"{entry['sha256']}  {entry['path']}\n" for entry in document["files"]]
    sums = "".join([*lines, f"{manifest_sha}  manifest.json\n"]).encode("utf-8", "surrogateescape")
    metadata = read_metadata(backup)
    metadata.manifest_sha256 = manifest_sha
    metadata.sums_sha256 = hashlib.sha256(sums).hexdigest()
    metadata.files_count = len(document["files"])
    metadata.size_bytes = sum(entry["size"] for entry in document["files"])
    (backup / "manifest.json").write_bytes(manifest)
    (backup / "SHA256SUMS").write_bytes(sums)
    (backup / "metadata.json").write_bytes(metadata.to_json())


def pre_recovery_ids(site: Path) -> list[str]:
    return [m.backup_id for m in RecoveryManager(site=site).list_backups(tags=[PRE_RECOVERY_TAG])]


def inside(path: Path, root: Path) -> bool:
    return os.path.realpath(path) == os.path.realpath(root) or os.path.realpath(path).startswith(
        os.path.realpath(root) + os.sep
    )


@dataclass
class Scene:
    """A tiny site with one full backup in ``root/site``, a watched sibling ``root/outside``."""

    root: Path
    site: Path
    backup_id: str
    outside: Path
    watch: SiblingWatch | None = None
    listing: list[str] | None = None

    @property
    def backup(self) -> Path:
        return self.site / "backups" / self.backup_id

    def arm(self) -> None:
        """Start watching: call after the hostile setup, right before the operation under test."""
        self.watch = SiblingWatch(self.outside)
        self.listing = sorted(os.listdir(self.root))

    def assert_nothing_outside(self) -> None:
        assert self.watch is not None
        self.watch.assert_untouched()
        assert sorted(os.listdir(self.root)) == self.listing, "a new entry next to the site"


def build_template(root: Path) -> str:
    """A tiny site with one full backup at ``root/site``; returns the backup id."""
    site = make_tiny_site(root / "site")
    return RecoveryManager(site=site).create_backup(description="template")


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """Built once per module; copied (symlinks kept) for every case and every hypothesis example."""
    root = tmp_path_factory.mktemp("hostile-template")
    return root / "site", build_template(root)


def scene_from(template: tuple[Path, str], root: Path) -> Scene:
    site_template, backup_id = template
    shutil.copytree(site_template, root / "site", symlinks=True)
    (root / "outside").mkdir()
    return Scene(root=root, site=root / "site", backup_id=backup_id, outside=root / "outside")


@pytest.fixture
def scene(template: tuple[Path, str], tmp_path: Path) -> Scene:
    return scene_from(template, tmp_path)


def damage_site(site: Path) -> None:
    """Give every category something to restore."""
    shutil.rmtree(site / "data")
    (site / "config/config.toml").write_text("[exchange\n")
    (site / "state/session.json").write_text("{}")


def assert_refused_and_nothing_changed(scene: Scene, manager: RecoveryManager, before: dict) -> None:
    assert manager.last_error
    assert tree(scene.site, exclude=("backups",)) == before
    assert leftovers(scene.site) == []
    assert pre_recovery_ids(scene.site) == []
    scene.assert_nothing_outside()


# --- hostile manifests: a table, each case tampered and re-signed ---------------------------------


Mutation = Callable[[dict, Scene], None]  # edits a manifest document (and maybe the backup) of a scene


def add_entry(path: str) -> Mutation:
    """A mutation adding a copy of the trades.csv entry under ``path`` (``{outside}`` is filled in)."""

    def mutate(document: dict, scene: Scene) -> None:
        template = next(entry for entry in document["files"] if entry["path"] == TRADES)
        document["files"].append({**template, "path": path.format(outside=scene.outside)})

    return mutate


def set_categories(**categories: list[str]) -> Mutation:
    def mutate(document: dict, scene: Scene) -> None:
        document["categories"].update(categories)

    return mutate


def move_data_under(top: str, move_files: bool = False) -> Mutation:
    """Declare the data category at ``top`` and move every data file and directory under it; with
    ``move_files`` the backup's own copies are moved there too (a fully consistent forgery)."""

    def mutate(document: dict, scene: Scene) -> None:
        new_top = top.format(outside=scene.outside)
        if move_files:
            make_writable(scene.backup)
            os.rename(scene.backup / "data", scene.backup / new_top)
        document["categories"]["data"] = [new_top]
        for entry in document["files"]:
            if entry["path"].startswith("data/"):
                entry["path"] = new_top + entry["path"][len("data") :]
        document["dirs"] = [new_top + d[len("data") :] if d.split("/")[0] == "data" else d for d in document["dirs"]]

    return mutate


LONG_COMPONENT = "data/" + "n" * 256 + ".csv"  # > 255 bytes in one component
LONG_TOTAL = "data/" + "/".join(["d" * 200] * 21) + "/x.csv"  # > 4096 bytes in all
LONG_UNICODE = "data/" + "é" * 128 + ".csv"  # 128 characters but 256 bytes

# name: (mutation, what verify says about manifest.json once it is re-signed; None: the paths are fine)
HOSTILE_MANIFESTS: dict[str, tuple[Mutation, str | None]] = {
    "absolute": (add_entry("{outside}/evil.csv"), "is absolute"),
    "dotdot": (add_entry("data/../../outside/evil.csv"), "'..' component"),
    "dotdot-leading": (add_entry("../outside/evil.csv"), "'..' component"),
    "dot": (add_entry("./data/evil.csv"), "'.' or '..' component"),
    "empty-segment": (add_entry("data//evil.csv"), "empty, '.' or '..' component"),
    "empty": (add_entry(""), "is empty"),
    "backslash": (add_entry("data\\..\\..\\outside\\evil.csv"), "backslash"),
    "nul": (add_entry("data/evil\0.csv"), "NUL"),
    "newline": (add_entry("data/evil\n.csv"), "newline"),
    "long-component": (add_entry(LONG_COMPONENT), "too long"),
    "long-component-unicode": (add_entry(LONG_UNICODE), "too long"),
    "long-total": (add_entry(LONG_TOTAL), "too long"),
    "duplicate": (add_entry(TRADES), "duplicated"),
    "reserved-name": (add_entry("metadata.json"), "duplicated, reserved"),
    "outside-every-category": (add_entry("run/evil.csv"), "outside the backup's categories"),
    "in-another-category": (add_entry("exchange/account.json"), "outside the backup's categories"),
    "category-dotdot": (move_data_under("../outside"), "'..' component"),
    "category-absolute": (move_data_under("{outside}"), "is absolute"),
    "category-backslash": (move_data_under("..\\outside"), "backslash"),
    # Consistent and made of safe paths, so verify accepts them: the restore itself must refuse.
    "category-swapped": (set_categories(config=["data"], data=["config"]), None),
    "category-claims-another": (set_categories(config=["config", "state"], state=[]), None),
    "category-foreign-top": (move_data_under("exchange", move_files=True), None),
    "category-overlapping": (set_categories(data=["data", "data/reports"]), None),
}


@pytest.mark.parametrize("signed", ["tampered", "resigned"])
@pytest.mark.parametrize("name", list(HOSTILE_MANIFESTS))
def test_a_hostile_manifest_is_refused_and_writes_nothing(scene: Scene, name: str, signed: str) -> None:
    """Promise: a manifest with hostile paths or categories is reported and never restored from,
    whether or not its hashes were forged to match; nothing is written in or outside the site."""
    mutate, complaint = HOSTILE_MANIFESTS[name]
    document = read_manifest(scene.backup)
    mutate(document, scene)
    (write_resigned if signed == "resigned" else write_tampered)(scene.backup, document)
    damage_site(scene.site)
    before = tree(scene.site, exclude=("backups",))
    scene.arm()

    report = RecoveryManager(site=scene.site).verify_backup(scene.backup_id, read_data=True)
    details = [p.detail for p in report.problems if p.path == "manifest.json"]
    if signed == "tampered":
        assert any("edited" in d for d in details), report.summary()
    else:
        assert not any("edited" in str(p) for p in report.problems), report.summary()  # the forgery is consistent
    if complaint is not None:
        assert any(complaint in d for d in details), report.summary()
    elif signed == "resigned":
        assert report.ok, report.summary()

    manager = RecoveryManager(site=scene.site)
    assert manager.restore_backup(scene.backup_id, restore_config=True, restore_state=True, restore_data=True) is False
    if complaint is not None:
        assert complaint in manager.last_error, manager.last_error
    assert manager.restore_backup(scene.backup_id, True, True, True, dry_run=True) is False
    with pytest.raises(RecoveryError):
        manager.plan_restore(scene.backup_id, True, True, True)
    assert_refused_and_nothing_changed(scene, manager, before)
    if complaint is not None or signed == "tampered":
        with pytest.raises(RecoveryError):
            manager.latest()  # the only backup does not verify: nothing to restore from, said clearly
    else:  # it verifies (consistent, safe paths), so it may be "latest": restoring from it is still refused
        assert manager.restore_backup("latest", True, True, True) is False
    assert_refused_and_nothing_changed(scene, manager, before)


@pytest.mark.parametrize("signed", ["tampered", "resigned"])
def test_a_manifest_path_that_is_not_utf8_is_handled(scene: Scene, signed: str) -> None:
    """Promise: restore_backup reports failure as False (never raises) and verify reports, for any manifest."""
    document = read_manifest(scene.backup)
    add_entry("data/evil\udc80.csv")(document, scene)
    (write_resigned if signed == "resigned" else write_tampered)(scene.backup, document)
    damage_site(scene.site)
    before = tree(scene.site, exclude=("backups",))
    scene.arm()

    report = RecoveryManager(site=scene.site).verify_backup(scene.backup_id, read_data=True)
    assert not report.ok  # the file is not in the backup (and, tampered, the manifest was edited)
    manager = RecoveryManager(site=scene.site)
    assert manager.restore_backup(scene.backup_id, True, True, True) is False
    assert_refused_and_nothing_changed(scene, manager, before)


# --- hostile backup directories ---------------------------------------------------------------------


def test_a_symlinked_directory_inside_a_backup_is_refused(scene: Scene) -> None:
    """Promise: a backup whose category directory became a symlink (to identical files) is not used."""
    make_writable(scene.backup)
    shutil.copytree(scene.backup / "data", scene.outside / "data")
    shutil.rmtree(scene.backup / "data")
    (scene.backup / "data").symlink_to(scene.outside / "data", target_is_directory=True)
    damage_site(scene.site)
    before = tree(scene.site, exclude=("backups",))
    scene.arm()

    report = RecoveryManager(site=scene.site).verify_backup(scene.backup_id, read_data=True)
    assert ("data", "symlink") in {(p.path, p.kind) for p in report.problems}, report.summary()
    manager = RecoveryManager(site=scene.site)
    assert manager.restore_backup(scene.backup_id, True, True, True) is False
    assert "symlink" in manager.last_error
    assert_refused_and_nothing_changed(scene, manager, before)


@pytest.mark.parametrize("target", ["outside", "another-backup"])
def test_a_backup_directory_that_is_a_symlink_is_never_used(scene: Scene, target: str) -> None:
    """Promise: backups/<id> being a symlink (out of the backup root or to another backup) is never
    listed, verified, restored from or chosen as latest."""
    real = scene.backup_id
    planted_id = "20991231T235959Z-full-feed01"  # newer than any real backup
    if target == "outside":
        destination = scene.outside / planted_id
        shutil.copytree(scene.backup, destination, symlinks=True)
        make_writable(destination)
        metadata = read_metadata(destination)
        metadata.backup_id = planted_id
        (destination / "metadata.json").write_bytes(metadata.to_json())
    else:
        destination = scene.backup
    (scene.site / "backups" / planted_id).symlink_to(destination, target_is_directory=True)
    damage_site(scene.site)
    before = tree(scene.site, exclude=("backups",))
    scene.arm()

    manager = RecoveryManager(site=scene.site)
    assert [m.backup_id for m in manager.list_backups()] == [real]
    with pytest.raises(RecoveryError, match="symlink"):
        manager.verify_backup(planted_id)
    assert manager.restore_backup(planted_id, True, True, True) is False
    assert "symlink" in manager.last_error
    assert_refused_and_nothing_changed(scene, manager, before)
    assert manager.latest().backup_id == real
    scene.assert_nothing_outside()


# --- hostile sites ----------------------------------------------------------------------------------


def test_a_category_directory_replaced_by_a_symlink_to_the_sibling_is_refused(scene: Scene) -> None:
    """Promise: site/data being a symlink to the directory next to the site stops the restore."""
    scene.arm()  # creates outside/ with its canary first: the symlink points at the watched directory
    shutil.rmtree(scene.site / "data")
    (scene.site / "data").symlink_to(scene.outside, target_is_directory=True)
    before = tree(scene.site, exclude=("backups",))

    manager = RecoveryManager(site=scene.site)
    assert manager.restore_backup(scene.backup_id, True, True, True) is False
    assert "symlink" in manager.last_error and str(scene.site / "data") in manager.last_error
    with pytest.raises(RecoveryError, match="symlink"):
        manager.plan_restore(scene.backup_id, restore_config=False, restore_data=True)
    assert_refused_and_nothing_changed(scene, manager, before)
    assert (scene.site / "data").is_symlink()


def test_a_symlink_planted_after_the_plan_is_refused(scene: Scene) -> None:
    """Promise: apply_restore re-checks the site; a symlink planted after planning changes nothing."""
    shutil.rmtree(scene.site / "data")
    manager = RecoveryManager(site=scene.site)
    plan = manager.plan_restore(scene.backup_id, restore_config=True, restore_state=True, restore_data=True)
    scene.arm()
    (scene.site / "data").symlink_to(scene.outside, target_is_directory=True)
    before = tree(scene.site, exclude=("backups",))
    backups_before = backups_bytes(scene.site / "backups")

    with pytest.raises(RecoveryError, match="(?i)plan again"):
        manager.apply_restore(plan)
    assert tree(scene.site, exclude=("backups",)) == before
    assert backups_bytes(scene.site / "backups") == backups_before
    assert leftovers(scene.site) == []
    scene.assert_nothing_outside()


def test_a_symlinked_parent_of_a_category_path_is_refused(tmp_path: Path) -> None:
    """Promise: with data at var/data, site/var being a symlink out of the site stops the restore."""
    site = make_tiny_site(tmp_path / "site")
    (site / "recovery.toml").write_text('[paths]\ndata = ["var/data"]\n')
    (site / "var").mkdir()
    shutil.move(site / "data", site / "var/data")
    backup_id = RecoveryManager(site=site).create_backup()
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.move(site / "var", outside / "var")
    (outside / "var/data/trades.csv").write_text("id\n")  # what a restore would want to replace
    (site / "var").symlink_to(outside / "var", target_is_directory=True)
    watch = SiblingWatch(outside)
    listing = sorted(os.listdir(tmp_path))
    before = tree(site, exclude=("backups",))

    manager = RecoveryManager(site=site)
    assert manager.restore_backup(backup_id, restore_config=True, restore_state=True, restore_data=True) is False
    assert "symlink" in manager.last_error and str(site / "var") in manager.last_error
    assert tree(site, exclude=("backups",)) == before
    assert pre_recovery_ids(site) == []
    assert leftovers(site) == []
    watch.assert_untouched()
    assert sorted(os.listdir(tmp_path)) == listing


def test_a_symlinked_file_in_the_site_is_never_written_through(scene: Scene) -> None:
    """Promise: a site file that is a symlink out of the site is replaced or refused, never written through."""
    scene.arm()
    target = scene.outside / "canary.txt"
    (scene.site / TRADES).unlink()
    (scene.site / TRADES).symlink_to(target)
    before = tree(scene.site, exclude=("backups",))

    manager = RecoveryManager(site=scene.site)
    restored = manager.restore_backup(scene.backup_id, restore_config=False, restore_data=True)

    scene.assert_nothing_outside()
    if restored:
        assert not (scene.site / TRADES).is_symlink()
        assert (scene.site / TRADES).read_bytes() == (scene.backup / TRADES).read_bytes()
    else:
        assert manager.last_error
        assert tree(scene.site, exclude=("backups",)) == before
    assert leftovers(scene.site) == []


# --- generated hostile paths ------------------------------------------------------------------------

SEGMENTS = st.one_of(
    st.sampled_from(["..", ".", "", "data", "config", "state", "backups", "outside", "...", " ", "~", "-"]),
    st.sampled_from(["\\", "..\\..", "a\\b", "\0", "a\0b", "\n", "\r", "\t", "/"]),
    st.text(st.characters(), min_size=1, max_size=6),  # any unicode, lone surrogates included
    st.integers(250, 260).map(lambda n: "L" * n),  # around the 255-byte name limit
    st.integers(85, 90).map(lambda n: "€" * n),  # 3 bytes each: a long name in bytes, short in characters
)
PLAIN_NAMES = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="/\\\0\n\r"), min_size=1, max_size=12
).filter(lambda name: name not in (".", ".."))  # valid names, any unicode: some of these restores succeed
LEADS = st.sampled_from(["", "", "/", "./", "../", "//", "\\", "data/", "data/../", "config/", "state/", "~/"])


@st.composite
def hostile_paths(draw: st.DrawFn) -> str:
    """Mixes of '..', '/', '\\', NUL, unicode, long segments, leading '/', './' and empty segments."""
    shape = draw(st.integers(0, 9))
    if shape == 0:  # now and then, a path longer than PATH_MAX
        return "data/" + "/".join(["t" * 200] * draw(st.integers(20, 24)))
    if shape <= 2:  # a plain path under a category: the hostile part, if any, is only in its characters
        return draw(st.sampled_from(["data/", "config/", "state/", "data/reports/"])) + "/".join(
            draw(st.lists(PLAIN_NAMES, min_size=1, max_size=3))
        )
    return draw(LEADS) + "/".join(draw(st.lists(SEGMENTS, min_size=1, max_size=6)))


def place_in_backup(backup: Path, relative: str, data: bytes) -> None:
    """Put ``data`` at ``relative`` in the backup when that stays inside it (a consistent forgery)."""
    if "\0" in relative or not relative:
        return
    target = os.path.normpath(os.path.join(backup, relative))
    if not target.startswith(str(backup) + os.sep) or os.path.basename(target) in (
        "metadata.json",
        "manifest.json",
        "SHA256SUMS",
    ):
        return
    try:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        if not os.path.lexists(target):
            Path(target).write_bytes(data)
    except (OSError, ValueError):
        pass


def assert_wrote_only_inside(scene: Scene, ok: bool, manager: RecoveryManager, before: dict) -> None:
    scene.assert_nothing_outside()
    after = tree(scene.site, exclude=("backups",))
    if not ok:
        assert manager.last_error
        assert after == before
    for relative in after:
        assert relative.split("/")[0] in CATEGORIES or after[relative] == before.get(relative), relative
        assert inside(scene.site / relative, scene.site), relative
    assert leftovers(scene.site) == []


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(path=hostile_paths(), where=st.sampled_from(["files", "dirs", "absent"]), resigned=st.booleans())
def test_generated_hostile_manifest_paths_never_write_outside_the_site(
    template: tuple[Path, str], path: str, where: str, resigned: bool
) -> None:
    """Promise: for any path in a manifest (files, dirs or absent; forged or not), restoring every
    category is refused or writes only inside the site; nothing appears next to the site."""
    with tempfile.TemporaryDirectory(prefix="hostile-") as holder:  # a fresh copy of the template per example
        check_hostile_manifest_path(scene_from(template, Path(holder)), path, where, resigned)


def check_hostile_manifest_path(scene: Scene, path: str, where: str, resigned: bool) -> None:
    document = read_manifest(scene.backup)
    trades = next(entry for entry in document["files"] if entry["path"] == TRADES)
    if where == "files":
        document["files"].append({**trades, "path": path})
        make_writable(scene.backup)
        place_in_backup(scene.backup, path, (scene.backup / TRADES).read_bytes())
    else:
        document[where].append(path)
    (write_resigned if resigned else write_tampered)(scene.backup, document)
    damage_site(scene.site)
    before = tree(scene.site, exclude=("backups",))
    scene.arm()

    manager = RecoveryManager(site=scene.site)
    ok = manager.restore_backup(scene.backup_id, restore_config=True, restore_state=True, restore_data=True)

    assert ok in (True, False)
    event(f"restored={ok}")
    assert_wrote_only_inside(scene, ok, manager, before)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(top=hostile_paths(), resigned=st.booleans())
def test_generated_hostile_category_paths_never_write_outside_the_site(
    template: tuple[Path, str], top: str, resigned: bool
) -> None:
    """Promise: whatever path a backup declares for its data category (its files moved under it, the
    backup's own copies moved there too when possible), a data restore stays inside the site's data."""
    with tempfile.TemporaryDirectory(prefix="hostile-") as holder:
        check_hostile_category_path(scene_from(template, Path(holder)), top, resigned)


def check_hostile_category_path(scene: Scene, top: str, resigned: bool) -> None:
    document = read_manifest(scene.backup)
    originals = [entry["path"] for entry in document["files"]]
    move_data_under(top.replace("{", "{{").replace("}", "}}"))(document, scene)
    make_writable(scene.backup)
    moved = {new["path"]: old for new, old in zip(document["files"], originals, strict=True) if new["path"] != old}
    contents = {old: (scene.backup / old).read_bytes() for old in moved.values()}
    for old in moved.values():  # the forger moves the backup's own copies too
        if old not in moved:
            (scene.backup / old).unlink()
    for new, old in moved.items():
        place_in_backup(scene.backup, new, contents[old])
    for folder, _dirs, _files in os.walk(scene.backup / "data", topdown=False):
        if not os.listdir(folder):
            os.rmdir(folder)
    (write_resigned if resigned else write_tampered)(scene.backup, document)
    damage_site(scene.site)
    before = tree(scene.site, exclude=("backups",))
    scene.arm()

    manager = RecoveryManager(site=scene.site)
    ok = manager.restore_backup(scene.backup_id, restore_config=False, restore_state=False, restore_data=True)

    assert ok in (True, False)
    event(f"restored={ok}")
    assert_wrote_only_inside(scene, ok, manager, before)
    if ok:  # only a top inside the site's data path can be restored, and only into it
        after = tree(scene.site, exclude=("backups",))
        assert {k: v for k, v in after.items() if k.split("/")[0] != "data"} == {
            k: v for k, v in before.items() if k.split("/")[0] != "data"
        }
