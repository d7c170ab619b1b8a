"""The site's ``recovery.toml`` in every backup (docs/backup-format.md, "recovery.toml in every backup").

The file says where the backups are and what config, state and data are; when it is broken or lost,
a backup must still be able to give it back. So every backup captures it, whatever categories were
chosen, under the manifest category ``settings`` (a site that lists it in a category's paths already
has it there). It does not change what the backup is: ``metadata.json`` ``categories`` and the backup
type name only config, state and data.
"""

from __future__ import annotations

import logging
import os
import stat

from recovery_lib.backup.model import SETTINGS, FileEntry
from recovery_lib.fsops.paths import is_within
from recovery_lib.site.config import CONFIG_NAME, Site

log = logging.getLogger(__name__)


def _chosen_tops(site: Site, categories: list[str]) -> list[str]:
    return [top.rstrip("/") for category in categories for top in site.categories[category]]


def settings_file(site: Site, categories: list[str]) -> list[tuple[str, os.stat_result]]:
    """``[(recovery.toml, its lstat)]`` to capture besides ``categories``, or ``[]``: the site has none, a
    chosen category covers it already, or it is not a regular file (a symlink is never followed into a
    backup; logged, the backup itself is not the worse for it)."""
    if is_within(CONFIG_NAME, _chosen_tops(site, categories)):
        return []
    try:
        info = os.lstat(site.path(CONFIG_NAME))
    except FileNotFoundError:
        return []
    if not stat.S_ISREG(info.st_mode):
        log.warning("%s is not a regular file (a symlink?): this backup does not keep it", site.path(CONFIG_NAME))
        return []
    return [(CONFIG_NAME, info)]


def manifest_categories(site: Site, categories: list[str], entries: list[FileEntry]) -> dict[str, list[str]]:
    """The manifest's ``categories``: each chosen one's paths, plus ``settings`` when recovery.toml was
    captured outside them (it may have vanished between the scan and the copy: then it is not claimed)."""
    mapped = {category: [top.rstrip("/") for top in site.categories[category]] for category in categories}
    captured = any(entry.path == CONFIG_NAME for entry in entries)
    if captured and not is_within(CONFIG_NAME, _chosen_tops(site, categories)):
        mapped[SETTINGS] = [CONFIG_NAME]
    return mapped
