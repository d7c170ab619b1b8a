"""A parent backup damaged after it was made never lends its damage to the next backup.

A new backup's parent is chosen on its three documents only (backup/verify.py ``verify_documents``);
each file it would lend is checked as it is linked. Every way of damaging that file (or a folder above
it, or the manifest, re-signed) must give a next backup that is SUCCESS and verifies byte for byte, with
the damaged file copied afresh from the site: never linked, never a PARTIAL blaming the site, never a crash.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from backup_helpers import assert_backup_sound

from recovery_lib.backup import BackupStatus
from recovery_lib.backup.model import BackupError, BackupMetadata, parse_manifest
from recovery_lib.manager import RecoveryManager

VICTIM = "data/reports/2026/11/fills_2026-11-17_0000.csv"


def unlock(path: Path, top: Path) -> None:
    """Make ``path`` and its folders up to ``top`` writable (a backup is read-only)."""
    for folder in [top, *reversed(path.relative_to(top).parents)]:
        target = top / folder
        os.chmod(target, stat.S_IMODE(os.lstat(target).st_mode) | 0o700)
    if path.exists() and not path.is_symlink():
        os.chmod(path, stat.S_IMODE(os.lstat(path).st_mode) | 0o600)


def truncate(copy: Path) -> None:
    os.truncate(copy, copy.stat().st_size // 2)


def replace_same_size_same_mtime(copy: Path) -> None:
    # Renamed over it, as rsync -t would: the new inode exists before the old one is freed. (Deleted first,
    # the filesystem may hand the same inode number to the new file: then nothing but a hash tells them apart.)
    info = copy.stat()
    other = copy.with_name("other")
    other.write_bytes(bytes(byte ^ 1 for byte in copy.read_bytes()))
    os.chmod(other, 0o444)
    os.utime(other, ns=(info.st_atime_ns, info.st_mtime_ns))
    other.rename(copy)


def symlink_to_a_good_copy(copy: Path) -> None:
    good = copy.parents[7] / "good-copy"  # beside the site
    shutil.copy2(copy, good)
    copy.unlink()
    copy.symlink_to(good)


def fifo(copy: Path) -> None:
    copy.unlink()
    os.mkfifo(copy)


def delete(copy: Path) -> None:
    copy.unlink()


def chmod_000(copy: Path) -> None:
    os.chmod(copy, 0)  # the shared inode: linking it would make the new backup unreadable too


def folder_chmod_000(copy: Path) -> None:
    os.chmod(copy.parent, 0)  # (only bites when not root: root reads through it)


def folder_replaced_by_a_file(copy: Path) -> None:
    shutil.rmtree(copy.parent)
    copy.parent.write_bytes(b"x")


def folder_replaced_by_a_symlink_loop(copy: Path) -> None:
    shutil.rmtree(copy.parent)
    copy.parent.symlink_to(copy.parent.name)


DAMAGE: dict[str, Callable[[Path], None]] = {
    fn.__name__: fn
    for fn in (
        truncate,
        replace_same_size_same_mtime,
        symlink_to_a_good_copy,
        fifo,
        delete,
        chmod_000,
        folder_chmod_000,
        folder_replaced_by_a_file,
        folder_replaced_by_a_symlink_loop,
    )
}


@pytest.mark.usefixtures("no_racy_window")
@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_file_of_the_parent_is_copied_afresh(sandbox: Path, damage: str) -> None:
    manager = RecoveryManager(site=sandbox)
    first = manager.create_backup(push=False)
    first_dir = manager._get_backup_dir(first)
    unlock(first_dir / VICTIM, first_dir)
    DAMAGE[damage](first_dir / VICTIM)
    try:
        second = manager.create_backup(push=False)
    finally:
        subprocess.run(["chmod", "-R", "u+rwx", str(first_dir)], check=True)
    meta = manager.get_backup(second)
    assert meta.status is BackupStatus.SUCCESS, meta.problems
    assert meta.parent_id == first  # its documents are intact: still the parent of the other files
    assert meta.files_linked > 0
    stored = manager._get_backup_dir(second) / VICTIM
    damaged = first_dir / VICTIM
    if damage != "folder_chmod_000" and (damaged.exists() or damaged.is_symlink()):
        # not the damaged object (as root, a folder chmodded 000 is no damage at all: linking is right)
        assert stored.stat().st_ino != damaged.lstat().st_ino
    assert stored.read_bytes() == (sandbox / VICTIM).read_bytes()
    assert_backup_sound(manager, second)


def resign(backup: Path, document: dict) -> None:
    """Write ``document`` as the manifest and make SHA256SUMS and metadata.json agree, as an attacker would."""
    subprocess.run(["chmod", "-R", "u+w", str(backup)], check=True)
    raw = (json.dumps(document) + "\n").encode()
    (backup / "manifest.json").write_bytes(raw)
    metadata = json.loads((backup / "metadata.json").read_text())
    metadata["manifest_sha256"] = hashlib.sha256(raw).hexdigest()
    lines = [f"{entry['sha256']}  {entry['path']}\n" for entry in document["files"]]
    sums = "".join([*lines, f"{metadata['manifest_sha256']}  manifest.json\n"]).encode()
    (backup / "SHA256SUMS").write_bytes(sums)
    metadata["sums_sha256"] = hashlib.sha256(sums).hexdigest()
    metadata["checksum"] = BackupMetadata.from_dict(metadata, "test").compute_checksum()
    (backup / "metadata.json").write_text(json.dumps(metadata, indent=2))


BAD_ENTRIES = {
    "sha256 a list of 64": ("sha256", list(range(64))),
    "sha256 with newlines": ("sha256", "\n" * 64),
    "sha256 not hex": ("sha256", "z" * 64),
    "mode too large": ("mode", 2**70),
    "mode negative": ("mode", -1),
    "size a float": ("size", 1.0),
    "size a bool": ("size", True),
}


@pytest.mark.parametrize("case", sorted(BAD_ENTRIES))
def test_a_manifest_entry_of_the_wrong_type_is_refused(sandbox: Path, case: str) -> None:
    manager = RecoveryManager(site=sandbox)
    backup = manager._get_backup_dir(manager.create_backup(push=False))
    document = json.loads((backup / "manifest.json").read_bytes())
    key, value = BAD_ENTRIES[case]
    entry = next(e for e in document["files"] if e["path"] == VICTIM)
    entry[key] = value
    with pytest.raises(BackupError, match="bad size, number or sha256"):
        parse_manifest(json.dumps(document).encode(), "test/manifest.json")


@pytest.mark.usefixtures("no_racy_window")
def test_a_resigned_parent_with_a_list_for_a_sha256_is_no_parent(sandbox: Path) -> None:
    # It passed a length test, was linked, and the next manifest's writer failed on it: every later
    # backup ended in an internal TypeError.
    manager = RecoveryManager(site=sandbox)
    first = manager.create_backup(push=False)
    first_dir = manager._get_backup_dir(first)
    document = json.loads((first_dir / "manifest.json").read_bytes())
    next(e for e in document["files"] if e["path"] == VICTIM)["sha256"] = list(range(64))
    resign(first_dir, document)
    assert not manager.verify_backup(first, read_data=False).ok
    second = manager.create_backup(push=False)
    meta = manager.get_backup(second)
    assert meta.status is BackupStatus.SUCCESS and meta.parent_id is None
    assert_backup_sound(manager, second)


def test_a_folder_nested_too_deep_to_verify_is_left_out_loudly(sandbox: Path) -> None:
    # The scan walks any depth, but verify and restore recurse (os.walk, shutil.rmtree): a SUCCESS
    # backup of 1,100 nested folders could be neither verified nor restored (RecursionError).
    deep = sandbox / "data" / "deep"
    folder = str(deep)
    try:
        for _ in range(1100):
            folder += "/d"
            os.makedirs(folder)
        Path(folder, "bottom.txt").write_text("bottom\n")
        manager = RecoveryManager(site=sandbox)
        with pytest.raises(BackupError, match="nested more than"):
            manager.create_backup(push=False)
        backup = manager.list_backups()[0]
        assert backup.status is BackupStatus.PARTIAL
        assert any(problem.startswith("data/deep/d/d/") for problem in backup.problems)
        report = manager.verify_backup(backup.backup_id, read_data=True)
        assert report.ok and report.partial, report.summary()
    finally:
        # pytest's own cleanup recurses: nothing this deep may be left for it
        subprocess.run(["chmod", "-R", "u+rwx", str(sandbox)], check=True)
        subprocess.run(["rm", "-rf", str(deep), str(sandbox / "backups")], check=True)
