"""Fault injectors, one per runbook scenario. They refuse any site that is not a sandbox.

Each injection is deterministic given its seed and returns what it did and when (the fault
time), which the drill records.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import random
import shutil
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from recovery_lib.catalog import SCENARIOS as RUNBOOK_SCENARIOS
from recovery_lib.catalog import by_drill
from recovery_lib.clock import now_iso
from recovery_lib.drills.lost_host import LostHost, destroy_host
from recovery_lib.errors import SiteError
from recovery_lib.manager import RecoveryManager, read_backups
from recovery_lib.site.config import SANDBOX_MARKER, Site
from recovery_lib.site.process import process_status, stop_system
from recovery_lib.trading.ledger import positions_csv, read_ledger

# Drill scenario name -> the runbook's scenario number and its procedure (recovery_lib.catalog).
SCENARIOS = {s.drill: s.number for s in RUNBOOK_SCENARIOS}
PROCEDURE_OF = {s.drill: s.procedure for s in RUNBOOK_SCENARIOS}
# Each scenario's faults. Besides the runbook's plain ones: a config that parses but fails its checks
# (section_renamed), corruption rather than loss (duplicated_rows, edited_position), the nightly backup
# taken of the broken state (broken_in_newest_backup) and a damaged newest backup (newest_backup_damaged):
# the faults where a careless procedure restores the wrong thing or reports success it did not have.
# And the faults a replica must answer (they refuse a site without one): the host lost with its local
# backups (host_lost: Procedure C recovers into a new host from the replica) and the backup disk lost
# (disk_lost: Procedure D re-seeds the local backups from it). New variants go last: the seed's choice
# among the earlier ones stays the same for seed 0.
VARIANTS = {
    "config": (
        "unparseable",
        "missing_section",
        "truncated",
        "section_renamed",
        "broken_in_newest_backup",
        "newest_backup_damaged",
    ),
    "data": (
        "state_deleted",
        "phantom_trade",
        "files_deleted",
        "dir_deleted",
        "truncated_csv",
        "duplicated_rows",
        "edited_position",
        "broken_in_newest_backup",
        "newest_backup_damaged",
    ),
    "full": ("everything", "newest_backup_damaged", "host_lost"),
    "backup": (
        "dir_deleted",
        "unwritable",
        "newest_corrupted",
        "metadata_deleted",
        "dir_replaced_by_file",
        "disk_lost",
    ),
}
# Faults no procedure can recover from here, chosen only by name (never by seed): they drill the
# failure path, proving that the procedure keeps trading stopped, escalates and records a failure.
ESCALATION_VARIANTS = {
    "config": ("every_backup_broken",),
    "data": ("exchange_disagrees",),
}
REPLICA_VARIANTS = ("host_lost", "disk_lost")
DUPLICATED_ROWS = 50
KILL_WAIT_S = 10.0


@dataclass
class Fault:
    """One injected fault: which, how, when, and every change made."""

    scenario: str
    variant: str
    fault_at: str
    actions: list[str] = field(default_factory=list)
    lost_host: LostHost | None = None  # host_lost: what survives off the host, to provision a new one

    @property
    def scenario_number(self) -> int:
        """The runbook's number of the drilled scenario (``data`` -> 2)."""
        return by_drill(self.scenario).number

    @property
    def expected_procedure(self) -> str:
        """The procedure that should recover from it (``data`` -> ``B``)."""
        return by_drill(self.scenario).procedure


def _require_sandbox(site: Site) -> None:
    if not (site.root / SANDBOX_MARKER).is_file():
        raise SiteError(
            f"{site.root} is not a sandbox (no {SANDBOX_MARKER}); fault injection refuses to touch it. "
            "Create one with `recovery sandbox create DIR`."
        )


@contextlib.contextmanager
def _trading_paused(site: Site) -> Iterator[None]:
    """Hold the trading process's write lock: an injected edit never interleaves with one of its writes."""
    if not site.process.write_lock:
        yield
        return
    path = site.path(site.process.write_lock)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _flip_byte(folder: Path, victim: Path, rng: random.Random) -> None:
    """Flip one byte of a backup file. Replace, never edit in place: it may be a hard link shared with
    older backups."""
    data = bytearray(victim.read_bytes())
    if data:
        data[rng.randrange(len(data))] ^= 0xFF
    os.chmod(folder / victim.parent.relative_to(folder), 0o755)
    victim.unlink()
    victim.write_bytes(bytes(data))


def _newest_backup(site: Site, description: str, actions: list[str]) -> str:
    backup_id = RecoveryManager(site=site).create_backup(description=description, tags=["daily", "scheduled"])
    actions.append(f"backup {backup_id} taken ({description})")
    return backup_id


def _damage_newest(site: Site, relative: str, rng: random.Random, actions: list[str]) -> None:
    """A fresh backup of the (still good) site, then one byte flipped in its copy of ``relative``."""
    backup_id = _newest_backup(site, "Scheduled backup", actions)
    folder = site.backup_dir / backup_id
    _flip_byte(folder, folder / relative, rng)
    actions.append(f"backup {backup_id}: flipped a byte in {relative}")


def _corrupt_config(site: Site, variant: str, rng: random.Random, actions: list[str]) -> None:
    path = site.path(site.config_file)
    text = path.read_text()
    if variant == "unparseable":
        lines = text.splitlines()
        at = rng.randrange(len(lines))
        lines.insert(at, "[trading = broken ")
        path.write_text("\n".join(lines) + "\n")
        actions.append(f"{site.config_file}: inserted an unparseable line at line {at + 1}")
    elif variant == "missing_section":
        section = rng.choice(list(site.required_sections))
        kept, skipping = [], False
        for line in text.splitlines():
            if line.strip().startswith("["):
                skipping = line.strip() == f"[{section}]"
            if not skipping:
                kept.append(line)
        path.write_text("\n".join(kept) + "\n")
        actions.append(f"{site.config_file}: removed the [{section}] section")
    elif variant == "section_renamed":
        section = rng.choice(list(site.required_sections))
        renamed = text.replace(f"[{section}]", f"[{section}_old]", 1)
        path.write_text(renamed)
        actions.append(f"{site.config_file}: renamed [{section}] to [{section}_old] (still valid TOML)")
    else:
        cut = rng.randrange(1, max(2, len(text) // 2))
        path.write_bytes(text.encode()[:cut])
        actions.append(f"{site.config_file}: truncated to {cut} bytes")


def _lose_data(site: Site, variant: str, rng: random.Random, actions: list[str]) -> None:
    if variant == "files_deleted":
        for relative in (site.positions_file, site.trades_file):
            site.path(relative).unlink(missing_ok=True)
            actions.append(f"{relative}: deleted")
    elif variant == "dir_deleted":
        for top in site.data_paths:
            shutil.rmtree(site.path(top), ignore_errors=True)
            actions.append(f"{top}/: deleted")
    elif variant == "duplicated_rows":
        path = site.path(site.trades_file)
        with _trading_paused(site):
            rows = path.read_bytes().rstrip(b"\n").split(b"\n")[1:]
            copies = [rng.choice(rows) for _ in range(DUPLICATED_ROWS)]
            with path.open("ab") as handle:
                handle.write(b"\n".join(copies) + b"\n")
        actions.append(f"{site.trades_file}: appended {len(copies)} duplicated rows (copies of existing trades)")
    elif variant == "state_deleted":
        # Under the write lock: a write of the process in the middle of rmtree would leave state/ behind.
        with _trading_paused(site):
            for top in site.state_paths:
                shutil.rmtree(site.path(top), ignore_errors=True)
                actions.append(f"{top}/: deleted (the trading process dies on its next write)")
    elif variant == "phantom_trade":
        stopped = stop_system(site)
        actions.append(f"trading process stopped ({stopped.message})")
        ledger = read_ledger(site.path(site.trades_file), site.trades_file)
        last = ledger.trades[len(ledger.trades) - 1]
        phantom = f"{ledger.highest_id() + 1},{last.timestamp},{last.symbol},buy,2.5000,{last.price}"
        with site.path(site.trades_file).open("a") as handle:
            handle.write(phantom + "\n")
        trades = read_ledger(site.path(site.trades_file), site.trades_file).trades
        site.path(site.positions_file).write_text(positions_csv(trades))
        actions.append(f"{site.trades_file}: appended a trade the exchange never had ({phantom}); positions recomputed")
    elif variant == "edited_position":
        stopped = stop_system(site)  # the process rewrites positions on every trade: edit behind its back
        actions.append(f"trading process stopped ({stopped.message})")
        path = site.path(site.positions_file)
        lines = path.read_text().splitlines()
        at = rng.randrange(1, len(lines))
        symbol, quantity, avg = lines[at].split(",")
        lines[at] = f"{symbol},{float(quantity) + 1.5:.4f},{avg}"
        path.write_text("\n".join(lines) + "\n")
        actions.append(
            f"{site.positions_file}: {symbol} quantity edited by hand from {quantity} to {float(quantity) + 1.5:.4f}"
        )
    else:
        path = site.path(site.trades_file)
        data = path.read_bytes()
        last_row = data.rstrip(b"\n").rfind(b"\n") + 1
        cut = last_row + rng.randrange(1, max(2, len(data) - last_row - 1))
        path.write_bytes(data[:cut])
        actions.append(f"{site.trades_file}: truncated mid-row at byte {cut}")


def _break_backups(site: Site, variant: str, rng: random.Random, actions: list[str]) -> None:
    backup_dir = site.backup_dir
    if variant in ("dir_deleted", "disk_lost"):
        for folder, dirs, _ in os.walk(backup_dir):
            for name in dirs:
                os.chmod(os.path.join(folder, name), 0o755)
        shutil.rmtree(backup_dir, ignore_errors=True)
        actions.append(f"{site.relative(backup_dir)}/: deleted with every backup")
        if variant == "disk_lost":
            where = ", ".join(f"{spec.name} ({spec.url})" for spec in site.replicas)
            actions.append(f"the backup disk is gone (the disk died); copies of the backups remain on replica {where}")
    elif variant == "unwritable":
        os.chmod(backup_dir, 0o555)
        actions.append(f"{site.relative(backup_dir)}/: made unwritable (mode 0555)")
    elif variant == "dir_replaced_by_file":
        for folder, dirs, _ in os.walk(backup_dir):
            for name in dirs:
                os.chmod(os.path.join(folder, name), 0o755)
        shutil.rmtree(backup_dir, ignore_errors=True)
        backup_dir.write_text("not a directory\n")
        actions.append(f"{site.relative(backup_dir)}: every backup deleted and a file put in its place")
    elif variant == "metadata_deleted":
        backups, _ = read_backups(backup_dir)
        if not backups:
            raise ValueError(f"no backups in {site.relative(backup_dir)} to damage; take one first")
        folder = backup_dir / backups[0].backup_id
        os.chmod(folder, 0o755)
        (folder / "metadata.json").unlink()
        actions.append(f"backup {backups[0].backup_id}: metadata.json deleted")
    else:
        backups, _ = read_backups(backup_dir)
        if not backups:
            raise ValueError(f"no backups in {site.relative(backup_dir)} to corrupt; take one first")
        for metadata in backups[: max(1, len(backups) // 2)]:
            folder = backup_dir / metadata.backup_id
            victims = sorted(p for p in folder.rglob("*.csv") if p.is_file())
            if not victims:
                continue
            victim = rng.choice(victims)
            _flip_byte(folder, victim, rng)
            actions.append(f"backup {metadata.backup_id}: flipped a byte in {victim.relative_to(folder)}")


def chosen_variant(scenario: str, variant: str | None, seed: int) -> str:
    """The variant :func:`inject` injects for these arguments (the seed chooses when none is named)."""
    return variant or random.Random(seed).choice(VARIANTS[scenario])


def inject(site: Site, scenario: str, variant: str | None = None, seed: int = 0) -> Fault:
    """Inject the fault of ``scenario`` (config, data, full, backup) into a sandbox site."""
    _require_sandbox(site)
    if scenario not in VARIANTS:
        raise ValueError(f"unknown scenario {scenario!r}; choose from {', '.join(VARIANTS)}")
    rng = random.Random(seed)
    variant = variant or rng.choice(VARIANTS[scenario])
    known = (*VARIANTS[scenario], *ESCALATION_VARIANTS.get(scenario, ()))
    if variant not in known:
        raise ValueError(f"unknown {scenario} fault {variant!r}; choose from {', '.join(known)}")
    if variant in REPLICA_VARIANTS and not site.replicas:
        raise ValueError(
            f"the {scenario} fault {variant!r} drills recovery from a replica, and {site.root}/recovery.toml names "
            "none: add a [[replicas]] table (a new sandbox has one)"
        )
    actions: list[str] = []
    fault_at = now_iso()
    lost_host = None
    if variant == "newest_backup_damaged":
        target = {"config": site.config_file, "data": site.trades_file, "full": site.trades_file}[scenario]
        _damage_newest(site, target, rng, actions)
    if scenario == "config":
        _corrupt_config(site, _plain(variant, "unparseable"), rng, actions)
        if variant == "every_backup_broken":
            manager = RecoveryManager(site=site)
            for metadata in manager.list_backups():
                if not manager.delete_backup(metadata.backup_id):
                    raise ValueError(f"could not delete backup {metadata.backup_id}: {manager.last_error}")
                actions.append(f"backup {metadata.backup_id} deleted")
        if variant in ("broken_in_newest_backup", "every_backup_broken"):
            _newest_backup(site, "Nightly backup, taken after the config broke", actions)
    elif scenario == "data":
        _lose_data(site, _plain(variant, "files_deleted", "edited_position"), rng, actions)
        if variant == "broken_in_newest_backup":
            _newest_backup(site, "Nightly backup, taken after the data broke", actions)
        if variant == "exchange_disagrees":
            _move_exchange_balance(site, rng, actions)
    elif variant == "host_lost":
        _kill_trading(site, actions)
        lost_host = destroy_host(site, actions)
    elif scenario == "full":
        stopped = stop_system(site)
        actions.append(f"trading process killed ({stopped.message})")
        _corrupt_config(site, "unparseable", rng, actions)
        _lose_data(site, "dir_deleted", rng, actions)
        for top in site.state_paths:
            shutil.rmtree(site.path(top), ignore_errors=True)
            actions.append(f"{top}/: deleted")
    else:
        _break_backups(site, variant, rng, actions)
    return Fault(scenario=scenario, variant=variant, fault_at=fault_at, actions=actions, lost_host=lost_host)


def _kill_trading(site: Site, actions: list[str]) -> None:
    """SIGKILL the trading process, as a dying host does, but between two of its writes (under its write
    lock): the simulated exchange's files stand for a service that never sees half a record."""
    status = process_status(site)
    if not status.running or status.pid is None:
        stopped = stop_system(site)  # no pid to kill: stop it the ordinary way
        actions.append(f"trading process stopped ({stopped.message})")
        return
    with _trading_paused(site):
        with contextlib.suppress(ProcessLookupError):
            os.kill(status.pid, signal.SIGKILL)
        deadline = time.monotonic() + KILL_WAIT_S
        while _alive(status.pid) and time.monotonic() < deadline:
            time.sleep(0.02)
    if _alive(status.pid):
        raise ValueError(f"trading process {status.pid} survived SIGKILL for {KILL_WAIT_S:g} s; the drill stops here")
    actions.append(f"trading process {status.pid} killed (SIGKILL)")


def _alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (killed, but not yet reaped by its parent)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[-1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _plain(variant: str, damaged: str, broken: str | None = None) -> str:
    """The plain fault a backup-state or escalation variant injects into the site itself."""
    if variant in ("newest_backup_damaged", "every_backup_broken", "exchange_disagrees"):
        return damaged
    if variant == "broken_in_newest_backup":
        return broken or damaged
    return variant


def _move_exchange_balance(site: Site, rng: random.Random, actions: list[str]) -> None:
    """A balance on the exchange that no trade explains (a transfer nobody booked): no restore or replay
    can make the positions agree with it."""
    path = site.path(site.exchange.path) / "account.json"
    with _trading_paused(site):
        account = json.loads(path.read_text())
        currency = rng.choice(sorted(c for c in account["balances"] if c != "USD"))
        account["balances"][currency] = round(float(account["balances"][currency]) + 1.5, 4)
        path.write_text(json.dumps(account, indent=2) + "\n")
    actions.append(f"exchange: {currency} balance moved by +1.5 with no trade behind it")
