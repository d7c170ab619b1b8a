"""Pull a backup from a replica into the local backup directory, verified, exactly as it was pushed.

The backup is built in ``.tmp-<id>`` like a new local backup (removed by the next command if this is
killed): every file is downloaded, decrypted and hashed against the manifest, then the backup's own
``manifest.json``, ``SHA256SUMS`` and ``metadata.json`` are written last, byte for byte, and the
directory is renamed into place. A wrong, truncated or missing object stops the pull and names the
file; nothing is written outside the backup directory (paths were checked by ``parse_manifest``).
The caller holds the backup directory's lock.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from recovery_lib import clock
from recovery_lib.backup.create import TMP_PREFIX
from recovery_lib.backup.model import MANIFEST, METADATA, SUMS, FileEntry
from recovery_lib.backup.store import quarantine
from recovery_lib.backup.verify import verify_backup_dir
from recovery_lib.errors import ReplicaDamaged, ReplicaError
from recovery_lib.fsops.atomic import fsync_dir
from recovery_lib.fsops.fileio import make_writable_tree, sync_filesystem, write_file
from recovery_lib.replica.crypto import Opener
from recovery_lib.replica.layout import object_key
from recovery_lib.replica.remote import RemoteBackup, Replica

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class PullReport:
    """What a pull did: the backup now in the local backup directory, and what it cost."""

    replica: str
    backup_id: str
    already_local: bool
    files: int
    bytes_downloaded: int
    duration_s: float
    note: str = ""  # e.g. a damaged local copy set aside before the pull
    set_aside_as: str = ""  # the name the damaged local copy was moved to in the backup directory, if one was

    def summary(self) -> str:
        """One line for a person."""
        if self.already_local:
            return f"backup {self.backup_id} is already in the local backup directory (verified); nothing pulled"
        return (
            f"{self.note}pulled backup {self.backup_id} from replica {self.replica}: {self.files} files, "
            f"{self.bytes_downloaded:,} bytes downloaded, verified, in {clock.human_duration(self.duration_s)}"
        )


def pull_backup(
    replica: Replica, backup_dir: Path, backup_id: str, opener: Opener, progress: Progress | None = None
) -> PullReport:
    """Bring ``backup_id`` from ``replica`` into ``backup_dir`` (created if needed), every byte verified."""
    began = time.monotonic()
    target = backup_dir / backup_id
    set_aside, name = "", ""
    if target.exists() or target.is_symlink():
        local = verify_backup_dir(target, read_data=True)
        if local.ok:
            return PullReport(replica.name, backup_id, True, local.files_checked, 0, 0.0)
        # The local copy is damaged and the replica may hold it whole: keep the damaged one as evidence.
        name, _ = quarantine(backup_dir, backup_id, target)
        set_aside = f"the damaged local copy was set aside as {name} ({local.summary()}); "
        log.warning("backup %s: %s", backup_id, set_aside)
    remote = replica.read_backup(backup_id, opener)
    backup_dir.mkdir(parents=True, exist_ok=True)
    tmp = backup_dir / f"{TMP_PREFIX}{backup_id}"
    if tmp.exists():
        make_writable_tree(tmp)
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        downloaded = _fill(replica, remote, tmp, opener, progress)
        _finish(remote, tmp, target, backup_dir)
    except BaseException:
        make_writable_tree(tmp)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    check = verify_backup_dir(target, read_data=False)
    if not check.ok:  # cannot happen unless the disk lies; never leave it looking good
        raise ReplicaError(f"backup {backup_id} was pulled but does not verify locally: {check.summary()}")
    duration = round(time.monotonic() - began, 3)
    files = len(remote.manifest.files)
    report = PullReport(replica.name, backup_id, False, files, downloaded, duration, set_aside, name)
    log.info("%s", report.summary())
    return report


def _fill(replica: Replica, remote: RemoteBackup, tmp: Path, opener: Opener, progress: Progress | None) -> int:
    """Download, decrypt and check every file into ``tmp``; returns the bytes downloaded. Each content is
    fetched once (files sharing it are copied), several at a time where the store allows it."""
    config = replica.require_config()
    for directory in remote.manifest.dirs:
        (tmp / directory).mkdir(parents=True, exist_ok=True)
    first: dict[str, FileEntry] = {}  # sha256 -> the first file with that content
    for entry in remote.manifest.files:
        tmp.joinpath(*entry.path.split("/")).parent.mkdir(parents=True, exist_ok=True)
        first.setdefault(entry.sha256, entry)

    def fetch(entry: FileEntry) -> int:
        name = config.object_name(entry.sha256)
        where = f"replica {replica.name!r}: {object_key(name)} ({entry.path} in {remote.metadata.backup_id})"
        spool = tmp / f".download-{name}"
        try:
            try:
                got = replica.transport.get_file(object_key(name), spool, max_size=remote.index.objects[name].size)
            except ReplicaDamaged as exc:  # missing or oversize: say which file of which backup it holds
                raise ReplicaDamaged(f"{where}: {exc}; refusing this backup, nothing was restored") from exc
            digest, size = opener.open_file(spool, tmp.joinpath(*entry.path.split("/")), where)
        finally:
            spool.unlink(missing_ok=True)
        if digest != entry.sha256 or size != entry.size:
            raise ReplicaDamaged(
                f"{where} holds other content than the manifest says ({size} bytes, sha256 {digest[:12]}…, "
                f"expected {entry.size} bytes, {entry.sha256[:12]}…); refusing this backup. Nothing was "
                "restored; try an older backup (`recovery replica list`) or another replica"
            )
        return got

    total = sum(e.size for e in remote.manifest.files)
    done = downloaded = 0
    with ThreadPoolExecutor(max_workers=replica.transport.parallel) as pool:
        for entry, got in zip(first.values(), pool.map(fetch, first.values()), strict=True):
            downloaded += got
            done += entry.size
            if progress:
                progress(done, total)
    for entry in remote.manifest.files:
        destination = tmp.joinpath(*entry.path.split("/"))
        source = first[entry.sha256]
        if source is not entry:
            shutil.copyfile(tmp.joinpath(*source.path.split("/")), destination)
            done += entry.size
            if progress:
                progress(min(done, total), total)
        os.chmod(destination, entry.mode & 0o7555)  # backup files are read-only
        os.utime(destination, ns=(entry.mtime_ns, entry.mtime_ns))
    return downloaded


def _finish(remote: RemoteBackup, tmp: Path, target: Path, backup_dir: Path) -> None:
    """Durable files, then the documents (metadata last), read-only, renamed into place."""
    sync_filesystem(tmp)
    write_file(tmp / MANIFEST, remote.manifest_bytes)
    write_file(tmp / SUMS, remote.sums_bytes)
    write_file(tmp / METADATA, remote.metadata_bytes)  # last: its presence means "complete"
    for directory in sorted(remote.manifest.dirs, key=len, reverse=True):
        os.chmod(tmp / directory, 0o555)
    os.chmod(tmp, 0o555)
    fsync_dir(tmp)
    os.rename(tmp, target)
    fsync_dir(backup_dir)
