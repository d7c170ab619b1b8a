"""The host-lost fault (``full/host_lost``): the trading host is gone, with its site directory and its
local backup directory; a new host is provisioned from what lived off the old one.

What survives, as it would on a real night: the replicas (off the host by definition), the exchange
(an external service; the sandbox's simulated exchange directory stands for it, so it is moved aside
before the site is destroyed and into the new host afterwards) and ``recovery.toml`` (ops re-provision
it from config management; kept in memory here). The sandbox marker travels with ``recovery.toml`` so
the new host is a sandbox too, which the drill's notebooks and any later injection require.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from recovery_lib.errors import SiteError
from recovery_lib.schedule import declared_jobs, install
from recovery_lib.schedule.systemd import installed_jobs
from recovery_lib.site.config import CONFIG_NAME, SANDBOX_MARKER, Site, load_site

PARKED_EXCHANGE_SUFFIX = "-exchange"  # <site>-exchange: the exchange while no host runs
NEW_HOST_SUFFIX = "-newhost"  # <site>-newhost: where the drill runner provisions the new host


@dataclass
class LostHost:
    """What a host-lost fault left off the host, and how to put it on a new one."""

    old_root: Path
    kept: dict[str, bytes] = field(default_factory=dict)  # relative path -> contents (recovery.toml, marker)
    exchange: tuple[str, Path] | None = None  # (its path in the site, where it waits off the host)
    replicas: tuple[str, ...] = ()  # "name (url)" of each replica: where the backups survive

    def provision(self, new_root: Path) -> list[str]:
        """A fresh host at ``new_root`` (new or empty): ``recovery.toml`` and the marker written, the
        exchange moved in. Returns what it did, for the drill's record."""
        new_root = Path(new_root).absolute()
        if os.path.lexists(new_root) and (not new_root.is_dir() or new_root.is_symlink() or any(new_root.iterdir())):
            raise SiteError(
                f"{new_root} exists and is not an empty directory; a new host starts empty. Remove it or "
                "drill on another sandbox."
            )
        new_root.mkdir(parents=True, exist_ok=True)
        # The name too: a notebook's record shows paths inside the site relative to it ("." for the root).
        actions = [f"new host provisioned in an empty directory, {new_root.name}/ beside the lost site ({new_root})"]
        for relative, data in self.kept.items():
            path = new_root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        actions.append(f"new host: {', '.join(self.kept)} put back (re-provisioned from config management)")
        actions += _reinstall_schedule(new_root)
        if self.exchange is not None:
            relative, parked = self.exchange
            target = new_root / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(parked, target)
            actions.append(f"new host: {relative}/ reconnected (the exchange and its fill history outlived the host)")
        return actions


def _destroy_schedule(site: Site) -> list[str]:
    """The site's timers live on the host too: its units in the sandbox's own unit directory go with it
    (never anything in systemd's directories, never another site's units)."""
    units = site.ops.systemd_dir
    if units is None:
        return []
    gone = [path for job in installed_jobs(units, site.root) for path in (job.service, job.timer) if path.exists()]
    for path in gone:
        path.unlink()
    if units.is_dir() and not any(units.iterdir()):
        units.rmdir()
    return [f"its schedule's {len(gone)} unit file(s) in {units.name}/ destroyed with the host"] if gone else []


def _reinstall_schedule(new_root: Path) -> list[str]:
    """The schedule's timers, installed on the new host as config management would: only into the
    sandbox's own unit directory (``[schedule] systemd_dir``), never into systemd's."""
    if not (new_root / CONFIG_NAME).is_file():
        return []
    site = load_site(new_root)
    if site.ops.systemd_dir is None or not declared_jobs(site):
        return []
    plan, _ = install(site, "systemd")
    units = Path(plan.where)
    return [
        f"new host: its schedule re-installed (systemd units in {units.name}/ beside it), as config management does"
    ]


def new_host_root(old_root: Path) -> Path:
    """Where the drill runner provisions the new host: ``<site>-newhost``, beside the lost one."""
    return old_root.parent / f"{old_root.name}{NEW_HOST_SUFFIX}"


def wipe(path: Path) -> None:
    """Remove ``path`` and everything below it, read-only backup folders included."""
    if path.is_symlink() or path.is_file():
        path.unlink()
        return
    if not path.exists():
        return
    os.chmod(path, 0o755)
    for folder, dirs, _ in os.walk(path):
        for name in dirs:
            full = os.path.join(folder, name)
            if not os.path.islink(full):
                os.chmod(full, 0o755)
    shutil.rmtree(path)


def _inside(path: Path, root: Path) -> bool:
    return path.resolve() == root.resolve() or root.resolve() in path.resolve().parents


def destroy_host(site: Site, actions: list[str]) -> LostHost:
    """Destroy the site directory and the local backup directory; keep what lives off the host.

    The trading process must already be dead (the caller kills it). Refuses, changing nothing, a site
    with no replica: nothing could bring it back.
    """
    if not site.replicas:
        raise ValueError(
            f"{site.root}: the host-lost fault needs a replica to recover from and recovery.toml names none; "
            "add a [[replicas]] table (a new sandbox has one)"
        )
    root = site.root
    config = site.config_source or root / "recovery.toml"
    kept = {name: (root / name).read_bytes() for name in ("recovery.toml", SANDBOX_MARKER) if (root / name).is_file()}
    if not _inside(config, root):
        kept.pop("recovery.toml", None)  # kept elsewhere: config management already has it
    lost = LostHost(old_root=root, kept=kept, replicas=tuple(f"{spec.name} ({spec.url})" for spec in site.replicas))
    exchange = site.path(site.exchange.path) if site.exchange.client != "none" else None
    if exchange is not None and exchange.is_dir() and _inside(exchange, root):
        parked = root.parent / f"{root.name}{PARKED_EXCHANGE_SUFFIX}"
        wipe(parked)  # a leftover of an interrupted drill
        os.rename(exchange, parked)
        lost.exchange = (site.relative(exchange), parked)
        actions.append(
            f"{site.relative(exchange)}/: moved off the host to {parked} (it stands for the exchange's own "
            "servers, which outlive the host)"
        )
    backups = site.backup_dir
    count = sum(1 for p in backups.iterdir() if p.is_dir() and not p.name.startswith(".")) if backups.is_dir() else 0
    wipe(backups)
    actions.append(f"local backup directory {backups} destroyed with its {count} backup(s)")
    actions += _destroy_schedule(site)
    wipe(root)
    actions.append(f"site directory {root} destroyed: config, state, data, recovery.toml, everything on the host")
    actions.append(
        f"off the host and still there: replica {', replica '.join(lost.replicas)}; the exchange; "
        "recovery.toml in config management"
    )
    return lost
