"""Drills: the fault injectors, each scenario and variant on a private sandbox copy."""

from __future__ import annotations

import re
import stat
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from drill_helpers import copy_site, healthy, iso_z, kill_leftovers, our_trading_processes, pid_alive
from snapshots import tree

from recovery_lib.backup import create as backup_create
from recovery_lib.checks.default import health_check
from recovery_lib.drills.injectors import PROCEDURE_OF, VARIANTS, Fault, inject
from recovery_lib.drills.runner import run_drill
from recovery_lib.errors import SiteError
from recovery_lib.manager import RecoveryManager
from recovery_lib.site.config import SANDBOX_MARKER, Site, load_site
from recovery_lib.site.process import process_status, start_system, stop_system

ALL_FAULTS = [(scenario, variant) for scenario, variants in VARIANTS.items() for variant in variants]
# host_lost destroys the site itself: test_drill_lost_host.py checks what it destroys and what survives.
IN_PLACE_FAULTS = [(scenario, variant) for scenario, variant in ALL_FAULTS if variant != "host_lost"]
BACKUP_ID = re.compile(r"\d{8}T\d{6}Z-\w+-[0-9a-f]+")


def stop_trading_in(site: Site) -> None:
    """Cleanup for tests that start the trading process: the stop command, then force."""
    stop_system(site, timeout_s=10)
    kill_leftovers({pid: cwd for pid, cwd in our_trading_processes().items() if cwd == str(site.root)})


def snapshot(root: Path) -> dict[str, tuple[Any, ...]]:
    """Every path under ``root``, ``root`` itself included, with its type, mode and contents (or link target)."""
    return tree(root, root_entry=True)


# --- 1. injectors -----------------------------------------------------------------------------


def _prepare(site: Site, scenario: str, variant: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """What an injection needs first: backups for the backup and full faults, a running process for full."""
    facts: dict[str, Any] = {}
    manager = RecoveryManager(site=site)
    if scenario == "backup" and variant == "newest_corrupted":
        # Unchanged files of the newer backup are hard links into the older one (no racy window in tests).
        monkeypatch.setattr(backup_create, "RACY_WINDOW_NS", 0)
        facts["older"] = manager.create_backup(description="older")
        facts["newer"] = manager.create_backup(description="newer")
        shared = [p for p in (site.backup_dir / facts["newer"]).rglob("*.csv") if p.stat().st_nlink > 1]
        assert shared, "the newer backup should share unchanged files with the older one"
    elif scenario in ("backup", "full"):
        facts["older"] = manager.create_backup(description="good")
    if scenario == "full":
        started = start_system(site, timeout_s=15)
        assert started.ok, started.message
        facts["pid"] = process_status(site).pid
    assert healthy(site, "config") and healthy(site, "data")
    if scenario == "backup":
        assert healthy(site, "backups")
    return facts


def _check_config_fault(site: Site, fault: Fault, original: bytes) -> None:
    path = site.path(site.config_file)
    text = path.read_bytes()
    assert text != original
    assert not healthy(site, "config")
    if fault.variant in ("unparseable", "broken_in_newest_backup", "newest_backup_damaged"):
        with pytest.raises(tomllib.TOMLDecodeError):
            tomllib.loads(text.decode())
        _check_newest_backup(site, fault, site.config_file)
    elif fault.variant == "section_renamed":
        section = fault.actions[0].split("[", 1)[1].split("]", 1)[0]
        parsed = tomllib.loads(text.decode())  # still valid TOML: only the config check can tell
        assert section not in parsed and f"{section}_old" in parsed
    elif fault.variant == "missing_section":
        section = fault.actions[0].split("[", 1)[1].split("]", 1)[0]
        assert section in site.required_sections
        parsed = tomllib.loads(text.decode())
        assert section not in parsed
        assert all(s in parsed for s in site.required_sections if s != section)
    else:
        cut = int(fault.actions[0].rsplit("truncated to ", 1)[1].split()[0])
        assert text == original[:cut] and 0 < cut < len(original)
    assert healthy(site, "data"), "a config fault must leave the data alone"


def _check_newest_backup(site: Site, fault: Fault, relative: str) -> None:
    """The backup-state variants: the newest backup holds the broken file, or is damaged."""
    if fault.variant not in ("broken_in_newest_backup", "newest_backup_damaged"):
        return
    newest = RecoveryManager(site=site).list_backups()[0]
    if fault.variant == "broken_in_newest_backup":
        assert (site.backup_dir / newest.backup_id / relative).read_bytes() == site.path(relative).read_bytes()
        assert RecoveryManager(site=site).verify_backup(newest.backup_id).ok
    elif fault.variant == "newest_backup_damaged":
        report = RecoveryManager(site=site).verify_backup(newest.backup_id)
        assert not report.ok and relative in report.summary()


def _check_data_fault(site: Site, fault: Fault, original_trades: bytes, original_positions: bytes) -> None:
    trades, positions = site.path(site.trades_file), site.path(site.positions_file)
    if fault.variant == "state_deleted":
        assert all(not site.path(top).exists() for top in site.state_paths)
        assert trades.read_bytes() == original_trades and healthy(site, "data")
        return
    if fault.variant == "phantom_trade":
        # The ledger and positions agree with each other, but not with the exchange.
        added = trades.read_bytes()[len(original_trades) :].splitlines()
        assert trades.read_bytes().startswith(original_trades) and len(added) == 1
        assert healthy(site, "data") and not healthy(site, "reconciliation")
        return
    assert not healthy(site, "data")
    if fault.variant in ("files_deleted", "newest_backup_damaged"):
        assert not trades.exists() and not positions.exists()
        assert site.path(site.reports_dir).is_dir()
        _check_newest_backup(site, fault, site.trades_file)
    elif fault.variant == "duplicated_rows":
        data = trades.read_bytes()
        assert data.startswith(original_trades)
        copies = data[len(original_trades) :].splitlines()
        assert len(copies) == 50 and set(copies) <= set(original_trades.splitlines()[1:])
    elif fault.variant in ("edited_position", "broken_in_newest_backup"):
        assert trades.read_bytes() == original_trades
        changed_lines = set(positions.read_bytes().splitlines()) ^ set(original_positions.splitlines())
        assert len(changed_lines) == 2, "exactly one position was edited"
        _check_newest_backup(site, fault, site.positions_file)
    elif fault.variant == "dir_deleted":
        assert all(not site.path(top).exists() for top in site.data_paths)
    else:
        data = trades.read_bytes()
        assert original_trades.startswith(data) and len(data) < len(original_trades)
        assert not data.endswith(b"\n"), "the file must end mid-row"
        assert positions.exists()
    assert healthy(site, "config"), "a data fault must leave the config alone"


def _check_full_fault(site: Site, facts: dict[str, Any]) -> None:
    assert not pid_alive(facts["pid"]), "the trading process must be killed"
    assert process_status(site).running is False
    assert not healthy(site, "config")
    with pytest.raises(tomllib.TOMLDecodeError):
        tomllib.loads(site.path(site.config_file).read_text())
    assert all(not site.path(top).exists() for top in site.data_paths)
    assert all(not site.path(top).exists() for top in site.state_paths)
    assert not healthy(site, "data") and not healthy(site, "process")
    # The backups are what Procedure C restores from: untouched.
    assert RecoveryManager(site=site).verify_backup(facts["older"]).ok


def _check_backup_fault(site: Site, fault: Fault, facts: dict[str, Any]) -> None:
    manager = RecoveryManager(site=site)
    if fault.variant in ("dir_deleted", "disk_lost"):
        assert not site.backup_dir.exists()
        assert not healthy(site, "backups")
    elif fault.variant == "unwritable":
        assert stat.S_IMODE(site.backup_dir.stat().st_mode) & 0o222 == 0
        assert not healthy(site, "backups")
        assert manager.verify_backup(facts["older"]).ok, "existing backups stay readable"
    elif fault.variant == "dir_replaced_by_file":
        assert site.backup_dir.is_file()
        assert "is a file, not a directory" in health_check.run("backups", site).message
    elif fault.variant == "metadata_deleted":
        assert manager.list_backups() == []
        assert [u.backup_id for u in manager.unreadable] == [facts["older"]]
        assert not healthy(site, "backups")
    else:
        assert fault.actions and all(facts["newer"] in action for action in fault.actions)
        assert not manager.verify_backup(facts["newer"]).ok
        older = manager.verify_backup(facts["older"])
        assert older.ok, f"corrupting the newest backup damaged an older one through a shared link: {older.summary()}"
    assert healthy(site, "config") and healthy(site, "data"), "a backup fault must leave the site alone"


@pytest.mark.parametrize(("scenario", "variant"), IN_PLACE_FAULTS, ids=[f"{s}-{v}" for s, v in IN_PLACE_FAULTS])
def test_injector_does_what_it_says(
    sandbox: Path, monkeypatch: pytest.MonkeyPatch, scenario: str, variant: str
) -> None:
    site = load_site(sandbox)
    try:
        facts = _prepare(site, scenario, variant, monkeypatch)
        original_config = site.path(site.config_file).read_bytes()
        original_trades = site.path(site.trades_file).read_bytes()
        original_positions = site.path(site.positions_file).read_bytes()
        before = datetime.now(UTC)
        fault = inject(site, scenario, variant, seed=3)
        after = datetime.now(UTC)
    finally:
        stop_trading_in(site)

    assert (fault.scenario, fault.variant) == (scenario, variant)
    assert before <= iso_z(fault.fault_at) <= after
    assert fault.actions and all(isinstance(a, str) and a for a in fault.actions)
    assert fault.expected_procedure == PROCEDURE_OF[scenario]
    assert fault.scenario_number == list(VARIANTS).index(scenario) + 1
    if scenario == "config":
        _check_config_fault(site, fault, original_config)
    elif scenario == "data":
        _check_data_fault(site, fault, original_trades, original_positions)
    elif scenario == "full":
        _check_full_fault(site, facts)
        assert any("killed" in action for action in fault.actions)
    else:
        _check_backup_fault(site, fault, facts)


def _named(action: str, tmp_path: Path, copy: str) -> str:
    """An action with the copy's own names (its backup ids, its path, its units' directory) made neutral."""
    return BACKUP_ID.sub("<id>", action).replace(str(tmp_path / copy), "<site>").replace(f"{copy}-units/", "<units>/")


@pytest.mark.parametrize("scenario", ["config", "data", "full"])
def test_same_seed_same_fault(sandbox_template: Path, tmp_path: Path, scenario: str) -> None:
    variants = set()
    for seed in range(6):
        faults, states = [], []
        for copy in ("a", "b"):
            site = load_site(copy_site(sandbox_template, tmp_path / f"{seed}{copy}"))
            faults.append(inject(site, scenario, seed=seed))
            states.append({k: v for k, v in snapshot(site.root).items() if k.split("/")[0] in ("config", "data")})
        assert faults[0].variant == faults[1].variant
        # The backups a variant takes have ids of their own; host_lost names the site's own paths.
        assert [_named(a, tmp_path, f"{seed}a") for a in faults[0].actions] == [
            _named(a, tmp_path, f"{seed}b") for a in faults[1].actions
        ]
        assert states[0] == states[1], "the same seed must break the site the same way"
        variants.add(faults[0].variant)
    assert variants <= set(VARIANTS[scenario])
    if len(VARIANTS[scenario]) > 1:
        assert len(variants) > 1, "the seed should choose among the variants"


def test_same_seed_same_backup_fault(sandbox_template: Path, tmp_path: Path) -> None:
    chosen = []
    for copy in ("a", "b"):
        site = load_site(copy_site(sandbox_template, tmp_path / copy))
        RecoveryManager(site=site).create_backup(description="good")
        chosen.append(inject(site, "backup", seed=7).variant)
    assert chosen[0] == chosen[1] in VARIANTS["backup"]


def test_injection_refuses_a_site_that_is_not_a_sandbox(sandbox: Path) -> None:
    site = load_site(sandbox)
    RecoveryManager(site=site).create_backup(description="good")
    (sandbox / SANDBOX_MARKER).unlink()
    assert not site.is_sandbox and not (sandbox / ".recovery-sandbox.json").exists()
    before = snapshot(sandbox)
    for scenario, variant in ALL_FAULTS:
        with pytest.raises(SiteError, match="not a sandbox"):
            inject(site, scenario, variant)
        with pytest.raises(SiteError, match="not a sandbox"):
            inject(site, scenario, seed=1)
    assert snapshot(sandbox) == before


def test_refused_full_fault_does_not_kill_the_process(sandbox: Path) -> None:
    site = load_site(sandbox)
    (sandbox / SANDBOX_MARKER).unlink()
    config = site.path(site.config_file).read_bytes()
    try:
        assert start_system(site, timeout_s=15).ok
        pid = process_status(site).pid
        with pytest.raises(SiteError):
            inject(site, "full")
        assert pid is not None and pid_alive(pid) and process_status(site).running is True
        assert site.path(site.config_file).read_bytes() == config and healthy(site, "config")
        assert site.path(site.trades_file).exists() and (sandbox / "state").is_dir()
    finally:
        stop_trading_in(site)


@pytest.mark.parametrize(
    ("scenario", "variant", "message"),
    [
        ("meteor", None, "unknown scenario 'meteor'"),
        ("config", "melted", "unknown config fault 'melted'"),
        ("data", "unparseable", "unknown data fault 'unparseable'"),
        ("backup", "everything", "unknown backup fault 'everything'"),
    ],
)
def test_unknown_scenario_or_variant_is_refused_before_any_change(
    sandbox: Path, scenario: str, variant: str | None, message: str
) -> None:
    before = snapshot(sandbox)
    with pytest.raises(ValueError, match=message):
        inject(load_site(sandbox), scenario, variant)
    assert snapshot(sandbox) == before


def test_run_drill_refuses_an_unknown_scenario_before_creating_anything(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown scenario 'meteor'"):
        run_drill("meteor", tmp_path / "out")
    assert not (tmp_path / "out").exists()
