"""Can a backup fix the fault? Its restored categories must pass the checks the procedure runs.

A backup taken after the fault holds the fault: the nightly backup of a broken config verifies
perfectly and restores the broken config. So a backup is chosen for what it fixes: its copy of
the config passes the config check and its copy of the data passes the data check. Read-only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path

from ..integrity import check_config_file, check_data
from ..site import Site
from .model import MANIFEST, BackupError, parse_manifest
from .paths import is_within


def _config_tops(backup_path: Path) -> list[str] | None:
    """The paths the backup's config category covered, or None if it did not capture config."""
    try:
        manifest = parse_manifest((backup_path / MANIFEST).read_bytes(), f"{backup_path.name}/{MANIFEST}")
    except (OSError, BackupError):
        return None  # an unreadable manifest is verification's finding, not fitness's
    return manifest.categories.get("config")


def fitness_problems(site: Site, backup_path: Path, categories: Iterable[str]) -> list[str]:
    """Why restoring ``categories`` from the backup at ``backup_path`` would not fix ``site``; [] if it would.

    config: the backup's copy of the site's config file passes the config check (when the backup's
    config category holds that file). data: the backup's data passes the data check, read from a
    view of the site rooted at the backup (backup files sit at their site-relative paths).
    state: no check exists. Each problem names the backup and says why.
    """
    backup_id = backup_path.name
    problems = []
    for category in categories:
        if category == "config":
            tops = _config_tops(backup_path)
            if tops is None or not is_within(site.config_file, tops):
                continue  # this backup's config category does not hold the config file: nothing to judge
            report = check_config_file(
                backup_path / site.config_file, site.required_sections, shown_as=site.config_file
            )
            if not report.ok:
                problems.append(f"backup {backup_id} holds a config that fails the config check: {report.summary()}")
        elif category == "data":
            report = check_data(dataclasses.replace(site, root=backup_path))
            if not report.ok:
                problems.append(f"backup {backup_id} holds data that fails the data check: {report.summary()}")
    return problems
