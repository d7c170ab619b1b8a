"""Reading TOML with errors that point at a line.

``tomllib`` reports the line of a syntax error but knows nothing about keys once parsing has
succeeded; :func:`key_line` finds the line a key was written on, so a wrong type or an unknown
key can be reported as ``recovery.toml:12: [backups.max_age_hours] ...``.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from recovery_lib.errors import SiteConfigError

_AT_LINE = re.compile(r"\(at line (\d+), column (\d+)\)")
_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")


def load_toml(path: Path) -> tuple[dict[str, Any], str]:
    """Parse ``path`` and return ``(data, text)``; a syntax error raises :class:`SiteConfigError`."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SiteConfigError(str(path), None, None, f"is not UTF-8 text ({exc.reason}).") from exc
    return parse_toml(text, path), text


def parse_toml(text: str, path: Path) -> dict[str, Any]:
    """Parse ``text`` (the contents of ``path``); a syntax error raises :class:`SiteConfigError`."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line, message = describe_toml_error(exc)
        raise SiteConfigError(str(path), line, None, f"is not valid TOML: {message}.") from exc


def describe_toml_error(exc: tomllib.TOMLDecodeError) -> tuple[int | None, str]:
    """The line of a TOML syntax error and its message without the ``(at line ...)`` suffix."""
    match = _AT_LINE.search(str(exc))
    return (int(match.group(1)) if match else None), _AT_LINE.sub("", str(exc)).strip()


def _split_dotted(name: str) -> tuple[str, ...]:
    return tuple(part.strip().strip('"').strip("'") for part in name.split("."))


def key_line(text: str, table: tuple[str, ...], key: str | None) -> int | None:
    """Return the 1-based line where ``key`` is set inside ``[table]`` (or the table header).

    A best-effort scan, good for error messages; ``None`` when it cannot tell.
    """
    current: tuple[str, ...] = ()
    header_line = None
    key_pattern = re.compile(r"^\s*[\"']?" + re.escape(key) + r"[\"']?\s*=") if key else None
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            current = _split_dotted(header.group(1))
            if current == table and header_line is None:
                header_line = number
            continue
        if key_pattern and current == table and key_pattern.match(line):
            return number
        # Dotted keys at top level: ``backups.dir = "x"``.
        if key_pattern is None and not current and table and re.match(r"^\s*" + re.escape(table[0]) + r"\s*[.=]", line):
            return number
    return header_line
