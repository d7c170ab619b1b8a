"""The built-in health checks: config, data, backups, disk, process, exchange.

Each takes a :class:`~recovery_lib.site.config.Site` and returns a :class:`HealthResult`; messages name
the file at fault and, where there is one, the runbook procedure that fixes it.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import stat
import tempfile
from pathlib import Path

from recovery_lib.backup.listing import list_quarantined
from recovery_lib.backup.sample import BackupsCheck, check_backups_sampled
from recovery_lib.checks.freshness import backup_freshness
from recovery_lib.checks.gate import reconciliation_check
from recovery_lib.checks.registry import HealthResult
from recovery_lib.rendering import name_all
from recovery_lib.site.config import Site
from recovery_lib.site.integrity import check_config_file, check_data
from recovery_lib.site.process import process_status
from recovery_lib.trading.exchange import get_exchange_client

MIB = 1024 * 1024
SHOWN_DAMAGED = 10  # the message names this many damaged backups (then counts them); details list every one


def check_config(site: Site) -> HealthResult:
    """``config/config.toml`` exists, parses as TOML and has the required sections."""
    report = check_config_file(site.path(site.config_file), site.required_sections, shown_as=site.config_file)
    if report.ok:
        return HealthResult(
            "config",
            True,
            f"{site.config_file} is valid TOML with sections {', '.join(site.required_sections)}",
            report.facts,
        )
    return HealthResult(
        "config", False, report.summary() + " (Procedure A restores it)", {"problems": report.problems, **report.facts}
    )


def check_data_files(site: Site) -> HealthResult:
    """Critical files exist, parse, and positions equal the net of trades."""
    report = check_data(site)
    if report.ok:
        return HealthResult(
            "data",
            True,
            f"{report.facts.get('trades', 0)} trades and {report.facts.get('positions', 0)} positions agree",
            report.facts,
        )
    return HealthResult(
        "data",
        False,
        report.summary() + " (Procedure B restores data)",
        {"problems": report.problems, "more_problems": report.more_problems, **report.facts},
    )


def writable_problem(directory: Path) -> str | None:
    """None if the backup job can write here, else why not.

    root ignores permission bits, so the mode is checked as well as an actual write: the backup
    job may well run as an unprivileged user.
    """
    mode = directory.stat().st_mode
    if not mode & stat.S_IWUSR:
        return f"not writable (mode {stat.filemode(mode)})"
    try:
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".health-probe-"):
            pass
    except OSError as exc:
        return f"not writable ({exc.strerror})"
    return None


def _damage(checked: BackupsCheck, shown: str) -> str:
    """One line naming the damaged and unreadable backups and what to do."""
    damaged = checked.damaged
    listed = name_all([check.describe() for check in damaged], limit=SHOWN_DAMAGED)
    return (
        f"{len(damaged)} damaged or unreadable backup(s) in {shown}: {listed} (Procedure D: verify them "
        "with `recovery backup verify all --read-data`, quarantine the damaged ones, take a new backup)"
    )


def check_backups(site: Site) -> HealthResult:
    """The backup directory exists and is writable, the newest successful backup of every category is
    fresh, and no backup is damaged or unreadable (every backup's structure is verified and file
    contents are re-hashed within ``[backups] health_read_mib``). Reads only."""
    backup_dir = site.backup_dir
    shown = site.relative(backup_dir).rstrip("/") + "/"
    if not backup_dir.is_dir():
        what = "is a file, not a directory" if backup_dir.exists() else "is missing"
        return HealthResult("backups", False, f"backup directory {shown} {what} (Procedure D)", {"backup_dir": shown})
    problem = writable_problem(backup_dir)
    if problem:
        return HealthResult(
            "backups", False, f"backup directory {shown} is {problem} (Procedure D)", {"backup_dir": shown}
        )
    fresh, message, details = backup_freshness(site, shown)  # max_age_hours and the schedule
    checked = check_backups_sampled(backup_dir, int(site.health_read_mib * MIB))
    quarantined = list_quarantined(backup_dir)
    details = {
        "backup_dir": shown,
        **details,
        "checked": [dataclasses.asdict(check) for check in checked.backups],
        "damaged": [check.backup_id for check in checked.damaged],
        "bytes_hashed": checked.bytes_hashed,
        "files_hashed": checked.files_hashed,
        "files_over_budget": checked.files_over_budget,
        "budget_bytes": checked.budget_bytes,
        "quarantined": len(quarantined),
    }
    if checked.damaged:  # damage first: it is the fault a person must act on
        return HealthResult("backups", False, f"{_damage(checked, shown)}; {message}", details)
    aside = f"; {len(quarantined)} quarantined backup(s) await the post-mortem" if quarantined else ""
    return HealthResult("backups", fresh, message + aside, details)


def protected_bytes(site: Site) -> int:
    """Bytes in the config, state and data paths: what a full backup has to store."""
    total = 0
    for paths in site.categories.values():
        for relative in paths:
            top = site.path(relative)
            if top.is_file():
                total += top.stat().st_size
                continue
            for folder, _, files in os.walk(top):
                for name in files:
                    try:
                        total += os.lstat(os.path.join(folder, name)).st_size
                    except FileNotFoundError:
                        continue  # removed while we walked
    return total


def _existing_ancestor(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_disk(site: Site) -> HealthResult:
    """The backup directory's filesystem has room for one more full backup of the site."""
    needed = protected_bytes(site)
    free = shutil.disk_usage(_existing_ancestor(site.backup_dir)).free
    details = {"free_bytes": free, "site_bytes": needed}
    message = f"{_human(free)} free for backups; a full backup needs {_human(needed)}"
    return HealthResult("disk", free >= needed, message, details)


def check_process(site: Site) -> HealthResult:
    """The protected system's process is running (as told by ``[process]`` in recovery.toml)."""
    status = process_status(site)
    details = {"configured": status.running is not None, "pid": status.pid}
    if status.running is None:
        return HealthResult("process", True, f"not monitored: {status.detail}", details)
    return HealthResult("process", status.running, f"trading process {status.detail}", details)


def check_exchange(site: Site) -> HealthResult:
    """The configured exchange answers a ticker and a balance request."""
    if site.exchange.client == "none":
        return HealthResult(
            "exchange", True, "not monitored: no [exchange] client in recovery.toml", {"configured": False}
        )
    client = get_exchange_client(site)
    ticker = client.fetch_ticker(site.exchange.ticker_symbol)
    balance = client.fetch_balance()
    currencies = len(balance.get("total", {}))
    return HealthResult(
        "exchange",
        True,
        f"{client.id}: {site.exchange.ticker_symbol} last {ticker['last']}, {currencies} balances",
        {"configured": True, "last": ticker["last"]},
    )


def _human(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def check_reconciliation(site: Site) -> HealthResult:
    """Positions equal the exchange's balances, exact to each instrument's precision: a ledger that
    looks whole but disagrees with the exchange (a trade the exchange never had) is a data fault."""
    if site.exchange.client == "none":
        return HealthResult(
            "reconciliation", True, "not monitored: no [exchange] client in recovery.toml", {"configured": False}
        )
    check, result = reconciliation_check(site)
    details: dict[str, object] = {"configured": True}
    if result is not None:
        details |= {"discrepancies": result.discrepancies, "error": result.error}
    message = check.detail if check.ok else f"{check.detail} (Procedure B)"
    return HealthResult("reconciliation", bool(check.ok), message, details)


BUILTIN_CHECKS = {
    "config": check_config,
    "data": check_data_files,
    "backups": check_backups,
    "disk": check_disk,
    "process": check_process,
    "exchange": check_exchange,
    "reconciliation": check_reconciliation,
}
