"""Drills that only a replica can answer: ``full/host_lost`` and ``backup/disk_lost``.

The injectors on a private sandbox copy with its own ``file://`` replica (what is destroyed, what
survives off the host, refusals), the new host the runner provisions, and one headless drill of the
lost host end to end (papermill: several notebooks, so it runs once).
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import pytest
from drill_helpers import copy_site, healthy, kill_leftovers, our_trading_processes, pid_alive
from snapshots import files, tree

from recovery_lib.cli import drill as drill_cli
from recovery_lib.cli import main as cli
from recovery_lib.drills.injectors import VARIANTS, chosen_variant, inject
from recovery_lib.drills.lost_host import PARKED_EXCHANGE_SUFFIX, new_host_root
from recovery_lib.drills.runner import run_drill
from recovery_lib.errors import SiteError
from recovery_lib.manager import RecoveryManager
from recovery_lib.replica.service import opened
from recovery_lib.replica.status import PushRecord
from recovery_lib.runbook.records import read_notebook
from recovery_lib.sandbox.destination import replica_dir
from recovery_lib.site.config import SANDBOX_MARKER, Site, load_site
from recovery_lib.site.process import process_status, start_system, stop_system


def on_replica(site: Site) -> list[str]:
    """The backups the site's (only) replica holds, newest first."""
    with opened(site.replicas[0]) as replica:
        return replica.committed_ids()


def backed_up_and_pushed(site: Site) -> str:
    """A backup taken and pushed as ``recovery backup create`` does; its id."""
    manager = RecoveryManager(site=site)
    backup_id = manager.create_backup(description="Scheduled daily backup", tags=["daily", "scheduled"])
    outcomes = manager.last_push  # create_backup pushes, as `recovery backup create` does
    assert len(outcomes) == 1 and not isinstance(outcomes[0], PushRecord), outcomes
    assert outcomes[0].ok and outcomes[0].pushed == [backup_id], outcomes[0].summary()
    return backup_id


@pytest.fixture
def site(sandbox_template: Path, tmp_path: Path) -> Site:
    """A sandbox copy whose replica is its own (``<site>-offsite``), not the template's."""
    return load_site(copy_site(sandbox_template, tmp_path / "site"))


def without_replicas(site: Site) -> Site:
    config = site.root / "recovery.toml"
    text = config.read_text()
    config.write_text(text[: text.index("[[replicas]]")])
    return load_site(site.root)


# --- the injectors ------------------------------------------------------------------------------


def test_host_lost_destroys_the_host_and_keeps_what_lives_off_it(site: Site, tmp_path: Path) -> None:
    backup_id = backed_up_and_pushed(site)
    root, backups = site.root, site.backup_dir
    exchange_before = files(site.path(site.exchange.path))
    toml, marker = (root / "recovery.toml").read_bytes(), (root / SANDBOX_MARKER).read_bytes()
    replica_before = tree(replica_dir(root))
    try:
        assert start_system(site, timeout_s=15).ok
        pid = process_status(site).pid
        assert pid is not None
        fault = inject(site, "full", "host_lost", seed=1)
    finally:
        seen = our_trading_processes()
        stop_system(site, timeout_s=10)
        kill_leftovers({p: cwd for p, cwd in seen.items() if cwd == str(root)})

    # Destroyed: the process, the site directory, the local backup directory.
    assert not pid_alive(pid), "the trading process must be killed"
    assert not root.exists() and not backups.exists()
    assert (fault.scenario, fault.variant, fault.expected_procedure) == ("full", "host_lost", "C")
    assert f"trading process {pid} killed (SIGKILL)" in fault.actions
    assert any(f"site directory {root} destroyed" in a for a in fault.actions)
    assert any(f"local backup directory {backups} destroyed with its 1 backup(s)" in a for a in fault.actions)
    # Survives: the replica (untouched, still holding the backup), the exchange (parked off the host,
    # byte for byte), recovery.toml and the marker (in memory: config management).
    assert tree(replica_dir(root)) == replica_before and on_replica(site) == [backup_id]
    parked = tmp_path / f"site{PARKED_EXCHANGE_SUFFIX}"
    exchange_at_kill = files(parked)
    assert sorted(exchange_at_kill) == sorted(exchange_before)
    fills = exchange_at_kill["my_trades.csv"]  # the process traded until it was killed: whole rows only
    assert fills.startswith(exchange_before["my_trades.csv"]) and fills.endswith(b"\n")
    assert json.loads(exchange_at_kill["account.json"])["balances"]
    lost = fault.lost_host
    assert lost is not None and lost.exchange == ("exchange", parked)
    assert lost.kept == {"recovery.toml": toml, SANDBOX_MARKER: marker}
    assert lost.replicas == (f"offsite ({replica_dir(root).as_uri()})",)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site-exchange", "site-offsite"]

    # The new host: recovery.toml, the marker and the exchange, nothing else; the same replica.
    new_root = new_host_root(root)
    moved = lost.provision(new_root)
    assert moved[0] == f"new host provisioned in an empty directory, site-newhost/ beside the lost site ({new_root})"
    assert any("exchange/ reconnected" in a for a in moved)
    assert not parked.exists()
    assert sorted(files(new_root)) == sorted(
        ["recovery.toml", SANDBOX_MARKER, *(f"exchange/{name}" for name in exchange_before)]
    )
    assert files(new_root / "exchange") == exchange_at_kill
    new_site = load_site(new_root)
    assert new_site.is_sandbox and new_site.replicas == site.replicas
    assert on_replica(new_site) == [backup_id]
    assert not healthy(new_site, "config") and not healthy(new_site, "data"), "nothing else is on the new host"


def test_a_new_host_must_start_empty(site: Site) -> None:
    backed_up_and_pushed(site)
    fault = inject(site, "full", "host_lost", seed=1)
    busy = new_host_root(site.root)
    busy.mkdir()
    (busy / "notes.txt").write_text("someone else's")
    assert fault.lost_host is not None
    with pytest.raises(SiteError, match="not an empty directory"):
        fault.lost_host.provision(busy)
    assert files(busy) == {"notes.txt": b"someone else's"}
    assert fault.lost_host.exchange is not None and fault.lost_host.exchange[1].is_dir(), "the exchange stays parked"


def test_disk_lost_destroys_the_local_backups_only(site: Site) -> None:
    backup_id = backed_up_and_pushed(site)
    before = {top: files(site.path(top)) for top in ("config", "data", "state", "exchange")}
    fault = inject(site, "backup", "disk_lost", seed=1)
    assert not site.backup_dir.exists() and not healthy(site, "backups")
    assert {top: files(site.path(top)) for top in before} == before, "the site itself is intact"
    assert healthy(site, "config") and healthy(site, "data")
    assert on_replica(site) == [backup_id], "the replica keeps the backup"
    assert fault.expected_procedure == "D"
    assert any(f"remain on replica offsite ({replica_dir(site.root).as_uri()})" in a for a in fault.actions)


@pytest.mark.parametrize(("scenario", "variant"), [("full", "host_lost"), ("backup", "disk_lost")])
def test_replica_faults_refuse_a_site_without_a_replica(site: Site, scenario: str, variant: str) -> None:
    RecoveryManager(site=site).create_backup(description="good")
    bare = without_replicas(site)
    before = tree(bare.root, root_entry=True)
    with pytest.raises(ValueError, match="names none: add a \\[\\[replicas\\]\\] table"):
        inject(bare, scenario, variant)
    assert tree(bare.root, root_entry=True) == before


@pytest.mark.parametrize(("scenario", "variant"), [("full", "host_lost"), ("backup", "disk_lost")])
def test_replica_faults_refuse_a_site_that_is_not_a_sandbox(site: Site, scenario: str, variant: str) -> None:
    backed_up_and_pushed(site)
    (site.root / SANDBOX_MARKER).unlink()
    before = tree(site.root.parent, root_entry=True)
    with pytest.raises(SiteError, match="not a sandbox"):
        inject(site, scenario, variant)
    assert tree(site.root.parent, root_entry=True) == before


def test_new_variants_leave_the_seeds_choice_of_the_others_alone() -> None:
    """Appended last: seed 0 (make drill, the drill tests) still picks what it picked before."""
    assert VARIANTS["full"][-1] == "host_lost" and VARIANTS["backup"][-1] == "disk_lost"
    assert chosen_variant("full", None, 0) == "newest_backup_damaged"
    assert chosen_variant("backup", None, 0) == "metadata_deleted"
    assert chosen_variant("full", "host_lost", 0) == "host_lost"


# --- the runner and the command line --------------------------------------------------------------


def test_scenario_all_runs_the_host_lost_drill_too() -> None:
    def planned(*argv: str) -> list[tuple[str, str | None]]:
        args = argparse.Namespace(due=False, scenario="all", variant=None, site=None)
        for option in argv:
            setattr(args, *option.split("="))
        return drill_cli._planned(args, io.StringIO())

    assert planned() == [("config", None), ("data", None), ("full", None), ("backup", None), ("full", "host_lost")]
    assert ("full", "host_lost") not in planned("site=/srv/sandbox"), "a drill on --site keeps its site"
    assert planned("scenario=full", "variant=host_lost") == [("full", "host_lost")]


def test_host_lost_drill_on_site_refuses_a_busy_new_host(
    site: Site, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    busy = new_host_root(site.root)
    busy.mkdir()
    (busy / "keep.txt").write_text("an earlier drill's host")
    before = tree(tmp_path, ("out",), root_entry=True)  # the CLI makes its records directory first
    out = io.StringIO()
    code = cli.main(
        ["drill", "run", "--scenario", "full", "--variant", "host_lost", "--site", str(site.root), "--outputs",
         str(tmp_path / "out")],
        out=out,
    )  # fmt: skip
    assert code == 2, out.getvalue()
    assert f"into {new_host_root(site.root)}, which is not empty" in capsys.readouterr().err
    assert tree(tmp_path, ("out",), root_entry=True) == before, "nothing may be started, written or destroyed"
    assert our_trading_processes() == {}


def test_host_lost_drill_recovers_into_a_new_host(tmp_path: Path) -> None:
    """Headless, end to end: the runner's own sandbox, its scheduled backup pushed to the replica, the host
    destroyed, a new host provisioned, and Procedure C recovering it from the replica."""
    lines: list[str] = []
    seen: dict[int, str] = {}

    def say(line: str) -> None:
        lines.append(line)
        if "sandbox ready" in line:
            seen.update(our_trading_processes())

    try:
        result = run_drill("full", tmp_path / "out", variant="host_lost", say=say)
    finally:
        kill_leftovers(seen)
    print("\n".join(lines))
    assert result.fault is not None and result.fault.variant == "host_lost"
    assert result.recovered, result.failure
    assert result.triage_procedure == "C" and result.procedures in (["C"], ["C", "D"])
    assert result.trades_lost == 0

    triage = read_notebook(result.notebooks[0])
    old_root = Path(next(iter(seen.values())))
    new_root = new_host_root(old_root)
    # Every notebook ran on the new host; the old one was gone before triage.
    for notebook in result.notebooks:
        assert read_notebook(notebook).parameters["site"] == str(new_root), notebook.name
    actions = triage.parameters["drill"]["actions"]
    assert any(
        a.startswith("new host provisioned in an empty directory, site-newhost/") for a in triage["drill"]["actions"]
    )
    assert actions[0].startswith("scheduled backup ")
    assert actions[1].startswith("pushed: replica offsite: 1 pushed, 0 already there")
    assert any(f"site directory {old_root} destroyed" in a for a in actions)
    assert any("local backup directory" in a and "destroyed" in a for a in actions)
    assert any(a.endswith(f"/ beside the lost site ({new_root})") for a in actions)
    assert any("exchange/ reconnected" in a for a in actions)
    verification = next(read_notebook(p) for p in result.notebooks if p.name.endswith("V_verification.ipynb"))
    assert verification["verification"]["ok"] is True
    # Nothing left running, and the runner's sandbox (old host, new host, replica) is gone.
    assert seen and not [pid for pid in seen if pid_alive(pid)]
    assert not old_root.parent.exists()
