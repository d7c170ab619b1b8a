"""Fault injectors, one per runbook scenario. They refuse any site that is not a sandbox.

Each injection is deterministic given its seed and returns what it did and when (the fault
time), which the drill records.
"""

from __future__ import annotations

import os
import random
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ..backup.manager import read_backups
from ..errors import SiteError
from ..process import stop_system
from ..site import SANDBOX_MARKER, Site

SCENARIOS = {"config": 1, "data": 2, "full": 3, "backup": 4}
PROCEDURE_OF = {"config": "A", "data": "B", "full": "C", "backup": "D"}
VARIANTS = {
    "config": ("unparseable", "missing_section", "truncated"),
    "data": ("files_deleted", "dir_deleted", "truncated_csv"),
    "full": ("everything",),
    "backup": ("dir_deleted", "unwritable", "newest_corrupted"),
}


@dataclass
class Fault:
    """One injected fault: which, how, when, and every change made."""

    scenario: str
    variant: str
    fault_at: str
    actions: list[str] = field(default_factory=list)

    @property
    def scenario_number(self) -> int:
        return SCENARIOS[self.scenario]

    @property
    def expected_procedure(self) -> str:
        return PROCEDURE_OF[self.scenario]


def _require_sandbox(site: Site) -> None:
    if not (site.root / SANDBOX_MARKER).is_file():
        raise SiteError(
            f"{site.root} is not a sandbox (no {SANDBOX_MARKER}); fault injection refuses to touch it. "
            "Create one with `recovery sandbox create DIR`."
        )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


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
    else:
        path = site.path(site.trades_file)
        data = path.read_bytes()
        last_row = data.rstrip(b"\n").rfind(b"\n") + 1
        cut = last_row + rng.randrange(1, max(2, len(data) - last_row - 1))
        path.write_bytes(data[:cut])
        actions.append(f"{site.trades_file}: truncated mid-row at byte {cut}")


def _break_backups(site: Site, variant: str, rng: random.Random, actions: list[str]) -> None:
    backup_dir = site.backup_dir
    if variant == "dir_deleted":
        for folder, dirs, _ in os.walk(backup_dir):
            for name in dirs:
                os.chmod(os.path.join(folder, name), 0o755)
        shutil.rmtree(backup_dir, ignore_errors=True)
        actions.append(f"{site.relative(backup_dir)}/: deleted with every backup")
    elif variant == "unwritable":
        os.chmod(backup_dir, 0o555)
        actions.append(f"{site.relative(backup_dir)}/: made unwritable (mode 0555)")
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
            data = bytearray(victim.read_bytes())
            if data:
                data[rng.randrange(len(data))] ^= 0xFF
            # Replace, never edit in place: the file may be a hard link shared with older backups.
            os.chmod(folder / victim.parent.relative_to(folder), 0o755)
            victim.unlink()
            victim.write_bytes(bytes(data))
            actions.append(f"backup {metadata.backup_id}: flipped a byte in {victim.relative_to(folder)}")


def inject(site: Site, scenario: str, variant: str | None = None, seed: int = 0) -> Fault:
    """Inject the fault of ``scenario`` (config, data, full, backup) into a sandbox site."""
    _require_sandbox(site)
    if scenario not in VARIANTS:
        raise ValueError(f"unknown scenario {scenario!r}; choose from {', '.join(VARIANTS)}")
    rng = random.Random(seed)
    variant = variant or rng.choice(VARIANTS[scenario])
    if variant not in VARIANTS[scenario]:
        raise ValueError(f"unknown {scenario} fault {variant!r}; choose from {', '.join(VARIANTS[scenario])}")
    actions: list[str] = []
    fault_at = _now()
    if scenario == "config":
        _corrupt_config(site, variant, rng, actions)
    elif scenario == "data":
        _lose_data(site, variant, rng, actions)
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
    return Fault(scenario=scenario, variant=variant, fault_at=fault_at, actions=actions)
