"""The site: the directory of the protected system, and its optional ``recovery.toml``.

Defaults follow the runbook's layout, so a site without ``recovery.toml`` works as-is:
``config/config.toml``; state files under ``state/``; ``data/positions.csv``,
``data/trades.csv`` and ``data/reports/``; backups in ``backups/``.
The file format is specified in ``docs/recovery-toml.md``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from recovery_lib import catalog
from recovery_lib.errors import NotASiteError, SiteConfigError, SiteError
from recovery_lib.site.calendar import Calendar
from recovery_lib.site.operations import Operations, parse_operations
from recovery_lib.site.replicas import ReplicaSpec, parse_replicas
from recovery_lib.site.schema import SCHEMA, SUBTABLES, Reader, check_records_dir
from recovery_lib.site.tomlconf import load_toml, parse_toml

log = logging.getLogger(__name__)

SITE_ENV = "RECOVERY_SITE"
CONFIG_NAME = "recovery.toml"
SANDBOX_MARKER = ".recovery-sandbox.json"
CATEGORIES = ("config", "state", "data")


@dataclass(frozen=True)
class Target:
    """Recovery targets of one procedure: RTO (time to recover) and RPO (data-loss window)."""

    rto_minutes: float
    rpo_hours: float


@dataclass(frozen=True)
class Contact:
    """Who to call at one escalation level."""

    name: str
    contact: str


@dataclass(frozen=True)
class ProcessSpec:
    """How to detect, stop and start the protected system; every field optional."""

    pidfile: str | None = None
    match: str | None = None
    detect: str | None = None
    stop: str | None = None
    start: str | None = None
    write_lock: str | None = None  # a file the system flocks while it writes; readers take it shared

    @property
    def configured(self) -> bool:
        """True when the site says how to tell whether the system runs."""
        return bool(self.pidfile or self.detect)


@dataclass(frozen=True)
class ExchangeSpec:
    """Which exchange client to build; API keys come from the named environment variables."""

    client: str = "none"
    path: str = "exchange"
    exchange_id: str | None = None
    api_key_env: str | None = None
    secret_env: str | None = None
    ticker_symbol: str = "BTC/USD"


@dataclass(frozen=True)
class ReconcileSpec:
    """How positions are compared with the exchange's balances before trading may resume.

    Quantities are compared after rounding to the instrument's precision (the exchange's market
    precision; ``decimals`` when the exchange does not say); ``tolerance`` is an absolute allowance
    in units of the base currency on top of that (0: exact).
    """

    tolerance: float = 0.0
    decimals: int = 8


# Defaults from the runbook's catalog: each procedure's time estimate (upper bound), and the 24 h
# data-loss threshold of escalation level 2.
DEFAULT_TARGETS = {
    r.key: Target(r.rto_minutes, r.rpo_hours) for r in catalog.PROCEDURES if r.rto_minutes and r.rpo_hours
}
DEFAULT_CONTACTS = {
    "level1": Contact("Self-Service", "the on-call engineer, with this runbook"),
    "level2": Contact("Team Lead", "Team Lead via Slack/Email"),
    "level3": Contact("Senior Engineer", "Senior Engineer on-call"),
    "level4": Contact("Emergency", "CTO/CEO immediately"),
}


@dataclass(frozen=True)
class Site:
    """A protected system's directory and everything ``recovery.toml`` says about it."""

    root: Path
    name: str = ""
    config_paths: tuple[str, ...] = ("config",)
    state_paths: tuple[str, ...] = ("state",)
    data_paths: tuple[str, ...] = ("data",)
    config_file: str = "config/config.toml"
    positions_file: str = "data/positions.csv"
    trades_file: str = "data/trades.csv"
    reports_dir: str = "data/reports"
    critical: tuple[str, ...] = ("data/positions.csv", "data/trades.csv", "data/reports/")
    required_sections: tuple[str, ...] = ("trading", "risk", "live")
    backup_dir_setting: str = "backups"
    records_dir_setting: str = "incidents"  # the incident journals (recovery_lib.runbook.journal)
    max_backup_age_hours: float = 24.0
    health_read_mib: float = 256.0  # backup contents the `backups` health check re-hashes per run
    targets: dict[str, Target] = field(default_factory=lambda: dict(DEFAULT_TARGETS))
    process: ProcessSpec = field(default_factory=ProcessSpec)
    exchange: ExchangeSpec = field(default_factory=ExchangeSpec)
    reconcile: ReconcileSpec = field(default_factory=ReconcileSpec)
    contacts: dict[str, Contact] = field(default_factory=lambda: dict(DEFAULT_CONTACTS))
    ops: Operations = field(default_factory=Operations)  # schedules, alerts, metrics (site/operations.py)
    replicas: tuple[ReplicaSpec, ...] = ()  # [[replicas]]: copies of the backups off the host
    config_source: Path | None = None

    def path(self, relative: str) -> Path:
        """Absolute path of a site-relative POSIX path."""
        return self.root.joinpath(*PurePosixPath(relative).parts)

    @property
    def backup_schedule(self) -> tuple[Calendar, ...]:
        """``[backups] schedule``: when backups are meant to run (UTC)."""
        return self.ops.backup_schedule

    @property
    def drill_records_dir(self) -> Path:
        """Where drill records go: ``[drills] records``, else ``<site>-drill-records`` beside the site."""
        return self.ops.drill_records_dir(self.root)

    @property
    def backup_dir(self) -> Path:
        """The backup directory; a relative setting is relative to the site root."""
        setting = Path(self.backup_dir_setting)
        return setting if setting.is_absolute() else self.root / setting

    @property
    def records_dir(self) -> Path:
        """Where the incident journals are; a relative setting is relative to the site root."""
        setting = Path(self.records_dir_setting)
        return setting if setting.is_absolute() else self.root / setting

    @property
    def categories(self) -> dict[str, tuple[str, ...]]:
        """Site-relative paths of each restorable category: config, state, data."""
        return {"config": self.config_paths, "state": self.state_paths, "data": self.data_paths}

    @property
    def is_sandbox(self) -> bool:
        """True when the sandbox marker is present (fault injection needs it)."""
        return (self.root / SANDBOX_MARKER).is_file()

    def relative(self, path: Path) -> str:
        """Show ``path`` relative to the site root when it lies inside it (records never hold host paths)."""
        try:
            return Path(path).resolve().relative_to(self.root).as_posix()
        except ValueError:
            return str(path)


def resolve_site_root(site: str | os.PathLike[str] | Site | None = None) -> Path:
    """The site directory: the argument, else ``$RECOVERY_SITE``, else the current directory."""
    if isinstance(site, Site):
        return site.root
    if site is not None:
        if not os.fspath(site).strip():
            raise SiteError(
                "The site argument (--site) is empty: pass --site DIR with the site directory, "
                f"or leave --site out to use ${SITE_ENV} or the current directory."
            )
        raw, origin = Path(site), "the site argument"
    elif os.environ.get(SITE_ENV):  # an empty $RECOVERY_SITE counts as unset, as shells treat it
        raw, origin = Path(os.environ[SITE_ENV]), f"${SITE_ENV}"
    else:
        raw, origin = Path.cwd(), "the current directory"
    root = raw.expanduser().resolve()
    if not root.exists():
        raise SiteError(
            f"Site directory {root} (from {origin}) does not exist. "
            f"Pass --site DIR, set {SITE_ENV}, or create a demo site with `recovery sandbox create DIR`."
        )
    if not root.is_dir():
        raise SiteError(
            f"Site {root} (from {origin}) is not a directory. "
            f"Pass --site DIR with the site's directory (the one holding config/ and data/), or set {SITE_ENV}."
        )
    return root


def require_sandbox(site: Site) -> Site:
    """Return ``site`` if it is a sandbox; drills break their site on purpose and refuse any other."""
    if not site.is_sandbox:
        raise SiteError(
            f"{site.root} is not a sandbox (no {SANDBOX_MARKER}): drills break their site on purpose and only "
            "run on sandboxes created by `recovery sandbox create DIR`. Create one and pass it with --site, "
            "or leave --site out to drill on a fresh sandbox. Nothing was changed."
        )
    return site


def load_site(site: str | os.PathLike[str] | Site | None = None) -> Site:
    """Resolve the site directory and read its ``recovery.toml`` (optional) into a :class:`Site`."""
    if isinstance(site, Site):
        return site
    root = resolve_site_root(site)
    config_path = root / CONFIG_NAME
    if not config_path.is_file():
        return Site(root=root, name=root.name)
    data, text = load_toml(config_path)
    log.debug("site %s: reading %s", root, CONFIG_NAME)
    return _site_from_toml(root, config_path, data, text)


def site_from_text(root: Path, raw: bytes) -> Site:
    """The :class:`Site` that ``raw``, as the contents of ``<root>/recovery.toml``, would load as: checks a
    copy (one kept in a backup) before it is put in place. Malformed: :class:`SiteConfigError`."""
    config_path = root / CONFIG_NAME
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SiteConfigError(str(config_path), None, None, f"is not UTF-8 text ({exc.reason}).") from exc
    text = text.replace("\r\n", "\n")  # as load_site's read_text sees it
    return _site_from_toml(root, config_path, parse_toml(text, config_path), text)


def looks_like_a_site(site: Site) -> bool:
    """True when anything of a site is there: ``recovery.toml``, a category path (config/, state/, data/
    by default) or the backup directory. A site in the middle of an incident may have lost any of those,
    never all of them; a directory with none is the wrong directory."""
    tops = [site.path(top) for paths in site.categories.values() for top in paths]
    return site.config_source is not None or site.backup_dir.exists() or any(top.exists() for top in tops)


def require_site(site: Site) -> Site:
    """Return ``site`` if it looks like a site (:func:`looks_like_a_site`); else :class:`NotASiteError`."""
    if not looks_like_a_site(site):
        raise NotASiteError(
            f"{site.root} is not a site (no {CONFIG_NAME} and none of config/, state/, data/, backups/ in it): "
            f"pass --site DIR or set ${SITE_ENV} to the protected system's directory "
            "(or create a demo site with `recovery sandbox create DIR`)."
        )
    return site


OPERATION_TABLES = ("backups", "drills", "alerts", "metrics", "schedule")


def _site_from_toml(root: Path, config_path: Path, data: dict[str, Any], text: str) -> Site:
    reader = Reader(config_path, text)
    for name, value in data.items():
        if name == "replicas":
            continue  # an array of tables: parse_replicas checks it
        if name not in SCHEMA and name not in SUBTABLES:
            known = ", ".join(sorted([*SCHEMA, *SUBTABLES, "replicas"]))
            raise reader.fail((name,), None, f"unknown table [{name}]. Known tables: {known}.")
        if not isinstance(value, dict):
            raise reader.fail((name,), None, f"must be a table ([{name}]), got {value!r}.")

    def section(name: str) -> dict[str, Any]:
        return reader.table(data.get(name, {}), (name,), SCHEMA[name])

    paths = section("paths")

    def rel(key: str, default: str) -> str:
        return reader.site_path(("paths",), key, paths[key]) if key in paths else default

    def rel_list(key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        if key not in paths:
            return default
        return tuple(reader.site_path(("paths",), key, item) for item in paths[key])

    defaults = Site(root=root)
    backups = section("backups")
    exchange = section("exchange")
    process = section("process")
    for key in ("pidfile", "write_lock"):
        if key in process:
            reader.site_path(("process",), key, process[key])
    if "path" in exchange:
        reader.site_path(("exchange",), "path", exchange["path"])

    targets = dict(DEFAULT_TARGETS)
    contacts = dict(DEFAULT_CONTACTS)
    for name, (allowed, schema) in SUBTABLES.items():
        for sub, values in data.get(name, {}).items():
            if sub not in allowed:
                raise reader.fail((name, sub), None, f"unknown [{name}.{sub}]; use one of {', '.join(allowed)}.")
            if not isinstance(values, dict):
                keys = ", ".join(schema)
                raise reader.fail((name,), sub, f"must be a table ([{name}.{sub}] with {keys}), got {values!r}.")
            reader.table(values, (name, sub), schema)
            if name == "targets":
                base = targets[sub]
                targets[sub] = Target(
                    rto_minutes=values.get("rto_minutes", base.rto_minutes),
                    rpo_hours=values.get("rpo_hours", base.rpo_hours),
                )
            else:
                base_contact = contacts[sub]
                contacts[sub] = Contact(
                    name=values.get("name", base_contact.name),
                    contact=values.get("contact", base_contact.contact),
                )

    records_dir = section("records").get("dir", defaults.records_dir_setting)
    check_records_dir(
        reader,
        root,
        records_dir,
        [
            *rel_list("config", defaults.config_paths),
            *rel_list("state", defaults.state_paths),
            *rel_list("data", defaults.data_paths),
        ],
    )
    return Site(
        root=root,
        name=section("site").get("name", root.name),
        config_paths=rel_list("config", defaults.config_paths),
        state_paths=rel_list("state", defaults.state_paths),
        data_paths=rel_list("data", defaults.data_paths),
        config_file=rel("config_file", defaults.config_file),
        positions_file=rel("positions_file", defaults.positions_file),
        trades_file=rel("trades_file", defaults.trades_file),
        reports_dir=rel("reports_dir", defaults.reports_dir),
        critical=rel_list("critical", defaults.critical),
        required_sections=tuple(section("config_check").get("required_sections", defaults.required_sections)),
        backup_dir_setting=backups.get("dir", defaults.backup_dir_setting),
        records_dir_setting=records_dir,
        max_backup_age_hours=float(backups.get("max_age_hours", defaults.max_backup_age_hours)),
        health_read_mib=float(backups.get("health_read_mib", defaults.health_read_mib)),
        targets=targets,
        process=ProcessSpec(**process),
        exchange=ExchangeSpec(**exchange),
        reconcile=ReconcileSpec(**section("reconcile")),
        contacts=contacts,
        ops=parse_operations(reader, root, {name: section(name) for name in OPERATION_TABLES}),
        replicas=parse_replicas(reader, data["replicas"]) if "replicas" in data else (),
        config_source=config_path,
    )
