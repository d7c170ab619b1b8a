"""Procedures C and D with their replicas, executed for real with papermill (a few seconds each).

- C on a brand-new host: the site directory holds only recovery.toml, the sandbox marker and the
  exchange (an external service); the old site and its backups are gone. C pulls the newest backup from
  the file:// replica and restores it: the files are those of the backup, byte for byte.
- D with the local backup directory deleted: re-seeded from the replica, then the emergency backup,
  pushed back to the replica.
- D with the backups gone and an empty replica: not a success; the record says why and escalates.
- C on a new host run interactively without a click: the pull waits for its approval, nothing is written.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import nbclient
import papermill
import pytest
from test_runbook_replicas import (
    backed_up_and_pushed,
    file_replica,
    local_ids,
    remove_tree,
    set_replicas,
    site_files,
    unmonitor_process,
)

from recovery_lib.manager import RecoveryManager
from recovery_lib.replica.service import opened
from recovery_lib.runbook.records import NotebookRecords, read_notebook
from recovery_lib.site.config import load_site

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
APPROVE_ALL = ["restore", "backup", "stop_system", "start_system"]
SANDBOX_MARKER = ".recovery-sandbox.json"


def execute(notebook: str, site: Path, output: Path, **parameters: Any) -> NotebookRecords:
    """Run a procedure notebook headless (approving everything) and read its records back."""
    started = time.perf_counter()
    try:
        papermill.execute_notebook(
            str(NOTEBOOKS / notebook),
            str(output),
            parameters={
                "site": str(site),
                "interactive": False,
                "kind": "drill",
                "approve": APPROVE_ALL,
                "operator": "drill-bot",
                **parameters,
            },
            kernel_name="python3",
            cwd=str(output.parent),
            progress_bar=False,
        )
    finally:
        print(f"{notebook}: {time.perf_counter() - started:.1f} s")
    return read_notebook(output)


def replica_ids(site: Path) -> list[str]:
    """The committed backups on the site's replica, newest first."""
    with opened(load_site(site).replicas[0]) as replica:
        return replica.committed_ids()


def criteria(records: NotebookRecords) -> dict[str, bool | None]:
    return {row["criterion"]: row["passed"] for row in records["success_criteria"]["rows"]}


def everything(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` but the incident journals, with a file's bytes (None: a directory)."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes() if p.is_file() else None
        for p in sorted(root.rglob("*"))
        if p.relative_to(root).parts[0] != "incidents"
    }


def new_host(site: Path, parent: Path) -> Path:
    """The host is gone; a new one gets recovery.toml (config management), the marker and the exchange."""
    new = parent / "newhost" / "site"
    new.mkdir(parents=True)
    for name in ("recovery.toml", SANDBOX_MARKER):
        shutil.copy2(site / name, new / name)
    shutil.move(site / "exchange", new / "exchange")
    remove_tree(site)
    assert sorted(p.name for p in new.iterdir()) == sorted(["recovery.toml", SANDBOX_MARKER, "exchange"])
    return new


@pytest.fixture
def site(sandbox: Path) -> Path:
    unmonitor_process(sandbox)
    set_replicas(sandbox, file_replica("offsite", sandbox.parent / "offsite-disk" / "peak-trade"))
    (sandbox.parent / "offsite-disk").mkdir()
    return sandbox


def test_c_recovers_a_lost_host_from_the_replica(site: Path, tmp_path: Path) -> None:
    good = backed_up_and_pushed(site)
    originals = site_files(site)
    new = new_host(site, tmp_path)

    records = execute("C_full_system_recovery.ipynb", new, tmp_path / "C.ipynb")

    seed = records["replica_seed"]
    assert seed["needed"] is True and seed["ok"] is True and seed["backup_id"] == good
    assert seed["replica"] == "offsite" and seed["bytes_downloaded"] > 0
    overview = records["replicas"]["replicas"]
    assert overview[0]["newest"] == good and overview[0]["reachable"] is True
    assert records["backup_selection"]["backup_id"] == good
    result = records["restore_result"]
    assert result["ok"] is True and result["backup_id"] == good and result["problems"] == []
    assert site_files(new) == originals  # every file of config, state and data as the backup holds it
    assert records["success_criteria"]["all_passed"] is True, records["success_criteria"]
    assert records["outcome"]["success"] is True and records["outcome"]["halted"] is None
    post = records["post_recovery_backup"]
    assert post["ok"] is True and RecoveryManager(site=new).verify_backup(post["backup_id"]).ok
    assert good in local_ids(new)
    # A backup is usable again: escalation does not send the engineer to Procedure D for one.
    assert "no usable backup available" not in records["escalation"]["reasons"]


def test_d_reseeds_lost_backups_from_the_replica_and_pushes_the_new_one(site: Path, tmp_path: Path) -> None:
    good = backed_up_and_pushed(site)
    files = site_files(site)
    remove_tree(site / "backups")

    records = execute("D_backup_system_recovery.ipynb", site, tmp_path / "D.ipynb")

    seed = records["replica_seed"]
    assert seed["needed"] is True and seed["ok"] is True and seed["backup_id"] == good
    assert RecoveryManager(site=site).verify_backup(good).ok
    emergency = records["emergency_backup"]["backup_id"]
    push = records["replica_push"]
    # create_backup pushed it (push = "after-backup"); D's push step confirms it is on the replica
    landed = push["replicas"][0]
    assert (
        push["ok"] is True and push["backup_id"] == emergency and [*landed["pushed"], *landed["already"]] == [emergency]
    )
    assert replica_ids(site) == [emergency, good]
    rows = criteria(records)
    assert rows["Backups restored"] is True and rows["New backup copied off the host"] is True
    assert records["success_criteria"]["all_passed"] is True and records["outcome"]["success"] is True
    assert site_files(site) == files  # D restores nothing
    assert sorted(local_ids(site)) == sorted([good, emergency])


def test_d_without_a_replica_to_reseed_from_fails_and_escalates(site: Path, tmp_path: Path) -> None:
    RecoveryManager(site=site).create_backup(description="never pushed", push=False)
    files = site_files(site)
    remove_tree(site / "backups")
    output = tmp_path / "D.ipynb"

    with pytest.raises(papermill.PapermillExecutionError) as raised:
        execute("D_backup_system_recovery.ipynb", site, output)

    assert raised.value.ename == "ProcedureFailed" and "Backups restored" in raised.value.evalue
    records = read_notebook(output)
    seed = records["replica_seed"]
    assert seed["needed"] is True and seed["ok"] is False and seed["backup_id"] is None
    assert "offsite" in seed["tried"][0] and "holds no backups yet" in seed["tried"][0]
    assert criteria(records)["Backups restored"] is False
    outcome = records["outcome"]
    assert outcome["success"] is False and "no replica could re-seed" in outcome["halted"]
    escalation = records["escalation"]
    assert escalation["level"] >= 2 and "no usable backup available" in escalation["reasons"]
    # The new backup is still taken and copied off the host: from now on the site is protected again.
    emergency = records["emergency_backup"]
    assert emergency["ok"] is True and replica_ids(site) == [emergency["backup_id"]]
    assert site_files(site) == files
    assert str(site) not in json.dumps(records.records)  # site paths relative, as in every record


def test_c_on_a_new_host_without_a_click_pulls_nothing(site: Path, tmp_path: Path) -> None:
    backed_up_and_pushed(site)
    new = new_host(site, tmp_path)
    before = everything(new)
    notebook = papermill.execute_notebook(
        str(NOTEBOOKS / "C_full_system_recovery.ipynb"),
        str(tmp_path / "prepared.ipynb"),
        parameters={"site": str(new), "interactive": True, "kind": "drill"},
        prepare_only=True,
        kernel_name="python3",
        progress_bar=False,
    )
    client = nbclient.NotebookClient(
        notebook, kernel_name="python3", allow_errors=True, resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    errors = {
        cell.metadata["tags"][0]: output.ename
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if output.output_type == "error"
    }
    assert errors["step:seed_from_replica"] == "ApprovalRequired"  # the first cell that would write
    assert set(errors.values()) <= {"ApprovalRequired", "NameError", "ProcedureFailed"}, errors
    assert errors["step:outcome"] == "ProcedureFailed"
    assert everything(new) == before  # no backup directory, no pulled backup, nothing restored
