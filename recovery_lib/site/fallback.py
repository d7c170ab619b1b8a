"""A malformed ``recovery.toml`` must not stop the two commands that repair it.

Listing the backups and restoring from them (``recovery.toml`` included: every backup holds it) run on
the default settings when the file is malformed, with a loud warning naming the file, the line and
what is wrong. Every other command still refuses: a backup, a health check or a drill run on the wrong
settings would mislead. The defaults put the backups in ``<site>/backups``; when the malformed file
itself says ``[backups] dir = ...``, the warning says so and how to point at it (``--backup-dir``).
"""

from __future__ import annotations

import logging
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from recovery_lib.errors import SiteConfigError
from recovery_lib.site.config import CONFIG_NAME, Site, load_site, resolve_site_root
from recovery_lib.site.tomlconf import key_line

log = logging.getLogger(__name__)

# ``dir = "..."`` (or '...'); the line is found by key_line, the value read from it.
_DIR_VALUE = re.compile(r"""^\s*["']?dir["']?\s*=\s*(?:"([^"]*)"|'([^']*)')""")


@dataclass(frozen=True)
class Fallback:
    """The site as a tolerant command sees it: loaded from ``recovery.toml``, or, when that file is
    malformed, the default settings plus what is wrong (``problem``) and the ``[backups] dir`` the file
    seems to set (``written_backup_dir``: value and line), if any."""

    site: Site
    problem: SiteConfigError | None = None
    written_backup_dir: tuple[str, int] | None = None

    def warning(self, backup_dir: Path, given_backup_dir: bool) -> str:
        """The warning for a person ("" when the settings loaded): what is wrong, that the defaults are in
        use, where the backups are looked for, and how to repair the file. ``given_backup_dir``: the
        command was told the backup directory (``--backup-dir``)."""
        if self.problem is None:
            return ""
        root = self.site.root
        lines = [
            f"{self.problem}",
            f"{CONFIG_NAME} cannot be used, so this command runs on the DEFAULT settings: backups in "
            f"{backup_dir}{' (--backup-dir)' if given_backup_dir else ''}, config/, state/ and data/ as the "
            "category paths, no replicas.",
        ]
        elsewhere = None if given_backup_dir else self.elsewhere(backup_dir)
        if elsewhere is not None:
            value, line = self.written_backup_dir or ("", 0)
            lines.append(
                f"The file sets [backups] dir = {value!r} (line {line}): the defaults look in the wrong "
                f"place. Run the command again with --backup-dir {elsewhere}."
            )
        lines.append(
            f"Fix {root / CONFIG_NAME}, or bring back the copy every backup holds: "
            f"`{self.repair_command(backup_dir, given_backup_dir)}` (--dry-run first shows the difference)."
        )
        return "\n  ".join(lines)

    def elsewhere(self, backup_dir: Path) -> Path | None:
        """The backup directory the malformed file sets, when it is not ``backup_dir`` (the one in use):
        the newest backups, and the newest copy of the file, are there. None when it sets none or the same."""
        if self.problem is None or self.written_backup_dir is None:
            return None
        value = self.written_backup_dir[0]
        written = Path(value) if Path(value).is_absolute() else self.site.root / value  # as Site.backup_dir
        return None if written.resolve() == backup_dir.resolve() else written

    def repair_command(self, backup_dir: Path, given_backup_dir: bool, yes: bool = False) -> str:
        """``recovery restore latest --settings [--yes] [--backup-dir DIR] --site ROOT``: the file back from
        the backups that hold its newest copy (the given directory, or the one the malformed file sets)."""
        where = backup_dir if given_backup_dir else self.elsewhere(backup_dir)
        option = f" --backup-dir {where}" if where is not None else ""
        return f"recovery restore latest --settings{' --yes' if yes else ''}{option} --site {self.site.root}"


def load_site_or_defaults(site: str | os.PathLike[str] | Site | None = None) -> Fallback:
    """:func:`load_site`, except that a malformed ``recovery.toml`` gives the default settings (and the
    problem) instead of raising. A site that does not exist still raises: there is nothing to fall back to."""
    if isinstance(site, Site):
        return Fallback(site)
    root = resolve_site_root(site)
    try:
        return Fallback(load_site(root))
    except SiteConfigError as exc:
        log.debug("site %s: %s is malformed, falling back to the defaults: %s", root, CONFIG_NAME, exc)
        return Fallback(Site(root=root, name=root.name), exc, written_backup_dir(root / CONFIG_NAME))


def written_backup_dir(path: Path) -> tuple[str, int] | None:
    """The ``[backups] dir`` a possibly malformed ``recovery.toml`` sets, and its line; None if it sets
    none or it cannot be told (a best-effort read for the warning, never used as a setting by itself)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    line = key_line(text, ("backups",), "dir")
    if line is None:
        return None
    match = _DIR_VALUE.match(text.splitlines()[line - 1])
    if match is None:  # key_line found only the [backups] header: no dir in it
        return None
    value = match.group(1) if match.group(1) is not None else match.group(2)
    try:
        parsed = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return (value, line) if value.strip() else None  # unparseable: the line as written is all there is
    table = parsed.get("backups")
    real = table.get("dir") if isinstance(table, dict) else None
    return (real, line) if isinstance(real, str) and real.strip() else None
