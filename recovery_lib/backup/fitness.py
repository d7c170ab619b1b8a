"""Can a backup fix the fault? Its restored categories must pass the checks the procedure runs.

A backup taken after the fault holds the fault: the nightly backup of a broken config verifies
perfectly and restores the broken config. So a backup is chosen for what it fixes: its copy of
the config passes the config check and its copy of the data passes the data check. Read-only.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from recovery_lib.backup.model import MANIFEST, BackupError, parse_manifest
from recovery_lib.fsops.paths import is_within
from recovery_lib.site.config import Site
from recovery_lib.site.integrity import check_config_file, check_data

log = logging.getLogger(__name__)

FitnessMemo = dict[tuple[str, str, tuple[tuple[int, ...] | None, ...]], tuple[str, ...]]


def _config_tops(backup_path: Path) -> list[str] | None:
    """The paths the backup's config category covered, or None if it did not capture config."""
    try:
        manifest = parse_manifest((backup_path / MANIFEST).read_bytes(), f"{backup_path.name}/{MANIFEST}")
    except (OSError, BackupError):
        return None  # an unreadable manifest is verification's finding, not fitness's
    return manifest.categories.get("config")


def fitness_problems(
    site: Site, backup_path: Path, categories: Iterable[str], memo: FitnessMemo | None = None
) -> list[str]:
    """Why restoring ``categories`` from the backup at ``backup_path`` would not fix ``site``; [] if it would.

    config: the backup's copy of the site's config file passes the config check (when the backup's
    config category holds that file). data: the backup's data passes the data check, read from a
    view of the site rooted at the backup (backup files sit at their site-relative paths).
    state: no check exists. Each problem names the backup and says why.

    ``memo`` (one per site, e.g. a RecoveryManager's) answers again without re-reading files that
    have not changed: the data check of a backup of millions of trades takes seconds, and a
    procedure asks about the same backup when choosing it, planning and applying.
    """
    problems = []
    for category in categories:
        if memo is None:
            problems += _problems(site, backup_path, category)
            continue
        key = (str(backup_path), category, _identity(site, backup_path, category))
        if key not in memo:
            memo[key] = tuple(_problems(site, backup_path, category))
        problems += memo[key]
    log.debug("backup %s: %s", backup_path.name, problems or "fit to restore")
    return problems


def _problems(site: Site, backup_path: Path, category: str) -> list[str]:
    backup_id = backup_path.name
    if category == "config":
        tops = _config_tops(backup_path)
        if tops is None or not is_within(site.config_file, tops):
            return []  # this backup's config category does not hold the config file: nothing to judge
        report = check_config_file(backup_path / site.config_file, site.required_sections, shown_as=site.config_file)
        if not report.ok:
            return [f"backup {backup_id} holds a config that fails the config check: {report.summary()}"]
    elif category == "data":
        report = check_data(dataclasses.replace(site, root=backup_path))
        if not report.ok:
            return [f"backup {backup_id} holds data that fails the data check: {report.summary()}"]
    return []


def _identity(site: Site, backup_path: Path, category: str) -> tuple[tuple[int, ...] | None, ...]:
    """What the check of ``category`` reads, by inode, size and change time (a changed file is re-read)."""
    if category == "config":
        relative = [MANIFEST, site.config_file]
    else:
        # dict.fromkeys: the critical files usually include the trades and positions files again
        relative = list(dict.fromkeys([site.trades_file, site.positions_file, *(p.rstrip("/") for p in site.critical)]))
    identities = []
    for path in relative:
        try:
            found = os.stat(backup_path.joinpath(*PurePosixPath(path).parts))
        except OSError:
            identities.append(None)
        else:
            identities.append((found.st_ino, found.st_size, found.st_mtime_ns, found.st_ctime_ns))
    return tuple(identities)
