"""The schema of ``recovery.toml``: every table, key and the type it must have, and the reader that
checks a parsed file against it with errors naming the file, the line and the key.

The file format is specified in ``docs/recovery-toml.md``; :func:`recovery_lib.site.config.load_site`
turns a checked file into a :class:`~recovery_lib.site.config.Site`.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from recovery_lib import catalog
from recovery_lib.errors import SiteConfigError
from recovery_lib.site.tomlconf import key_line

log = logging.getLogger(__name__)

PROCEDURES = catalog.RECOVERY_PROCEDURES  # the ones [targets.X] may name: A-D
ESCALATION_LEVELS = ("level1", "level2", "level3", "level4")

Check = tuple[str, Callable[[Any], bool]]


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _is_non_negative(value: Any) -> bool:
    # TOML has inf and nan: neither is an age, a size or a tolerance anyone means.
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value >= 0


STR: Check = ("a string", _is_str)
STR_LIST: Check = ("a list of strings", _is_str_list)
NUMBER: Check = ("a finite non-negative number", _is_non_negative)
COUNT: Check = ("a non-negative integer", lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0)
CLIENT: Check = ('one of "none", "simulated", "ccxt"', lambda v: v in ("none", "simulated", "ccxt"))

SCHEMA: dict[str, dict[str, Check]] = {
    "site": {"name": STR},
    "paths": {
        "config": STR_LIST,
        "state": STR_LIST,
        "data": STR_LIST,
        "config_file": STR,
        "positions_file": STR,
        "trades_file": STR,
        "reports_dir": STR,
        "critical": STR_LIST,
    },
    "config_check": {"required_sections": STR_LIST},
    "backups": {
        "dir": STR,
        "max_age_hours": NUMBER,
        "schedule": STR_LIST,  # systemd calendar or cron expressions, UTC (recovery_lib.site.calendar)
        "grace_minutes": NUMBER,
        "health_read_mib": NUMBER,
    },
    "drills": {"schedule": STR_LIST, "records": STR},
    "process": {"pidfile": STR, "match": STR, "detect": STR, "stop": STR, "start": STR, "write_lock": STR},
    "exchange": {
        "client": CLIENT,
        "path": STR,
        "exchange_id": STR,
        "api_key_env": STR,
        "secret_env": STR,
        "ticker_symbol": STR,
    },
    "reconcile": {"tolerance": NUMBER, "decimals": COUNT},
    "alerts": {
        "urls": STR_LIST,  # Apprise URLs
        "webhook_url": STR,  # a generic JSON webhook (json:// in Apprise)
        "ping_backup": STR,
        "ping_drill": STR,
        "escalation_level": COUNT,
    },
    "metrics": {"textfile_dir": STR},
    "schedule": {"systemd_dir": STR},
    "records": {"dir": STR},
}
# Tables of tables: [targets.A] ... [targets.D], [escalation.level1] ... [escalation.level4].
SUBTABLES: dict[str, tuple[tuple[str, ...], dict[str, Check]]] = {
    "targets": (PROCEDURES, {"rto_minutes": NUMBER, "rpo_hours": NUMBER}),
    "escalation": (ESCALATION_LEVELS, {"name": STR, "contact": STR}),
}


class Reader:
    """Validates the parsed TOML against the schema, raising errors that name file, line and key."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.text = text

    def fail(self, table: tuple[str, ...], key: str | None, problem: str) -> SiteConfigError:
        """The error for ``problem`` at ``[table] key``, with the line it is on (logged: a refusal)."""
        dotted = ".".join((*table, key) if key else table) or None
        error = SiteConfigError(str(self.path), key_line(self.text, table, key), dotted, problem)
        # The log file keeps the refusal; the console shows it once, as the command's error.
        log.warning("%s", error, extra={"console": False})
        return error

    def table(self, data: dict[str, Any], table: tuple[str, ...], schema: dict[str, Check]) -> dict[str, Any]:
        """``data`` (the ``[table]``) if every key is known and of its type; else the error for the first."""
        for key, value in data.items():
            if key not in schema:
                known = ", ".join(sorted(schema))
                raise self.fail(table, key, f"unknown key. Known keys in [{'.'.join(table)}]: {known}.")
            description, valid = schema[key]
            if not valid(value):
                raise self.fail(table, key, f"must be {description}, got {value!r}.")
        return data

    def site_path(self, table: tuple[str, ...], key: str, value: str) -> str:
        """A site-relative POSIX path: never absolute, never climbing out with ``..``."""
        pure = PurePosixPath(value)
        if not value or pure.is_absolute() or ".." in pure.parts or "\\" in value:
            raise self.fail(
                table, key, f"{value!r} must be a relative path inside the site (no '/', '..' or '\\' prefix)."
            )
        return pure.as_posix() + ("/" if value.endswith("/") else "")


def check_records_dir(reader: Reader, root: Path, setting: str, restored: list[str]) -> None:
    """The journals must survive every restore: never inside a restored category, however the path
    is written (relative, absolute, with ``..``)."""
    if not setting.strip():
        raise reader.fail(("records",), "dir", "must name a directory (default: incidents).")
    target = Path(os.path.normpath(root / setting))  # an absolute setting replaces root here
    try:
        parts = target.relative_to(root).parts
    except ValueError:
        return  # outside the site: no restore touches it
    for top in restored:
        top_parts = PurePosixPath(top.rstrip("/")).parts
        if not parts or parts[: len(top_parts)] == top_parts or top_parts[: len(parts)] == parts:
            raise reader.fail(
                ("records",),
                "dir",
                f"{setting!r} is inside the restored path {top!r} (or is the site itself): a restore would "
                "replace the incident journals. Choose a directory outside config, state and data "
                "(default: incidents).",
            )
