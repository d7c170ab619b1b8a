"""Judgment (issue 11): a procedure decides like a careful engineer, and its record never claims
more than happened.

Each finding of the issue is reproduced on a sandbox whose trading process really runs, and the
test asserts the safe decision and the honest record. The judgment matrix drills every scenario
with every fault variant (the injectors' own, plus corruption, a config that parses but fails its
checks, a newest backup that holds the broken state or is damaged, and two faults nothing here can
recover from) and checks, from the site itself and not from the records alone, that a drill is
recovered if and only if the site is healthy, reconciled with the exchange and every success
criterion passed, and that trading runs at the end if and only if it recovered.

The matrix drills run once per module, two at a time (each on its own sandbox), about two minutes on
2 cores; the notebook tests of single findings cost a few seconds each.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import nbformat
import papermill
import pytest

from recovery_lib.checks.default import health_check
from recovery_lib.cli import main as cli
from recovery_lib.clock import human_duration, seconds_between
from recovery_lib.drills.history import drill_row
from recovery_lib.drills.injectors import ESCALATION_VARIANTS, VARIANTS
from recovery_lib.drills.lost_host import new_host_root
from recovery_lib.manager import RecoveryManager
from recovery_lib.runbook.escalation import Facts, assess
from recovery_lib.runbook.postmortem import summarize
from recovery_lib.runbook.records import read_notebook
from recovery_lib.sandbox import SandboxSpec, create_sandbox
from recovery_lib.sandbox.destination import replica_dir
from recovery_lib.site.config import load_site
from recovery_lib.site.process import process_status, start_system, stop_system
from recovery_lib.trading.exchange import get_exchange_client
from recovery_lib.trading.ledger import read_ledger
from recovery_lib.trading.reconcile import reconcile
from recovery_lib.trading.replay import exchange_fills

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
APPROVE_ALL = ["restore", "repair", "backup", "stop_system", "start_system"]
MICROSECONDS = re.compile(r"\.\d{6}Z$")

MATRIX = [(s, v) for s, variants in VARIANTS.items() for v in variants] + [
    (s, v) for s, variants in ESCALATION_VARIANTS.items() for v in variants
]
CANNOT_RECOVER = {(s, v) for s, variants in ESCALATION_VARIANTS.items() for v in variants}
SITE_CHECKS = ("config", "data", "backups", "disk", "exchange")  # the runner stops the process when it ends


# --- the matrix: one drill per (scenario, variant), run in worker processes -----------------------


def _drill_case(scenario: str, variant: str, workdir: str) -> dict[str, Any]:
    """One drill through the CLI on a sandbox of its own, then the site judged from the outside."""
    root = Path(workdir) / "site"
    create_sandbox(root, SandboxSpec(trades=800, reports=3, report_rows=20, seed=5))
    outputs = Path(workdir) / "outputs"
    out = io.StringIO()
    began = time.monotonic()
    code = cli.main(
        [
            "drill", "run", "--scenario", scenario, "--variant", variant,
            "--site", str(root), "--outputs", str(outputs),
        ],
        out=out,
    )  # fmt: skip
    seconds = time.monotonic() - began
    run_dir = next(p for p in outputs.iterdir() if p.is_dir() and not p.name.startswith("."))  # .logs is the CLI's log
    row = drill_row(run_dir)
    judged = new_host_root(root) if variant == "host_lost" else root  # the host is gone: judge the new one
    site = load_site(judged)
    health = {name: r.healthy for name, r in health_check.run_all(site).items() if name in SITE_CHECKS}
    exchange = get_exchange_client(site)
    ledger = read_ledger(site.path(site.trades_file), site.trades_file)
    fills = exchange_fills(exchange)
    notebooks = {p.name: read_notebook(p) for p in sorted(run_dir.glob("*.ipynb"))}
    procedures = {n: nb for n, nb in notebooks.items() if nb.get("run", {}).get("procedure") in ("A", "B", "C", "D")}
    verification = next(nb for n, nb in notebooks.items() if nb.get("run", {}).get("procedure") == "V")
    return {
        "exit": code,
        "seconds": seconds,
        "stdout": out.getvalue(),
        "row": row,
        "run_dir": str(run_dir),
        "site": str(judged),
        "health": health,
        "reconciled": reconcile(site, exchange).ok,
        "ids_unique": len(ledger.trades) == len(ledger.ids),
        "exchange_ids_missing": sorted(set(fills) - ledger.ids),
        "criteria_passed": {n: (nb.get("success_criteria") or {}).get("all_passed") for n, nb in procedures.items()},
        "trading_at_end": verification["health_verification"]["process"]["healthy"],
        "escalation": {n: (nb.get("escalation") or {}).get("level") for n, nb in procedures.items()},
        "verified_backups": [m.backup_id for m in RecoveryManager(site=site).list_backups() if "verified" in m.tags],
    }


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], dict[str, Any]]:
    """Every (scenario, variant) drilled once, two at a time."""
    with ProcessPoolExecutor(max_workers=2) as pool:
        futures = {
            case: pool.submit(_drill_case, *case, str(tmp_path_factory.mktemp(f"{case[0]}-{case[1]}")))
            for case in MATRIX
        }
        done = {case: future.result() for case, future in futures.items()}
    print("\nscenario  variant                   outcome        trades lost  replayed  escalation  remedy")
    for (scenario, variant), case in done.items():
        row = case["row"]
        print(
            f"{scenario:<9} {variant:<25} {row['outcome']:<14} {row['trades_lost']!s:>11} "
            f"{row['trades_replayed']!s:>9} {row['escalation_level']!s:>11}  {row['remedy'] or '-'}"
        )
    return done


@pytest.mark.parametrize("case", MATRIX, ids=[f"{s}-{v}" for s, v in MATRIX])
def test_judgment_matrix(matrix: dict[tuple[str, str], dict[str, Any]], case: tuple[str, str]) -> None:
    """Recovered iff the site is healthy, reconciled and every criterion passed; trading runs iff recovered."""
    result = matrix[case]
    row = result["row"]
    recovered = row["outcome"] == "recovered"
    whole = all(result["health"].values()) and result["reconciled"] and all(result["criteria_passed"].values())
    assert recovered == whole, (row, result["health"], result["reconciled"], result["criteria_passed"])
    assert result["trading_at_end"] == recovered, row
    assert (result["exit"] == 0) == recovered, result["stdout"]
    assert recovered == (case not in CANNOT_RECOVER), (row["failed_step"], result["stdout"])
    if not recovered:
        assert row["failed_step"], row
        assert max(result["escalation"].values()) >= 2, result["escalation"]
        assert not result["verified_backups"], "a failed recovery took a backup tagged verified"
    assert result["ids_unique"], "a trade id names two trades"
    if case[0] in ("data", "full"):
        assert row["trades_lost"] == 0 and not result["exchange_ids_missing"], row
    # Detection (triage) comes after the fault, within the drill command's own run.
    assert row["time_to_detect_s"] is not None and 0 < row["time_to_detect_s"] <= result["seconds"]


def test_matrix_every_timestamp_has_one_precision(matrix: dict[tuple[str, str], dict[str, Any]]) -> None:
    """One clock: fault, detection, step records and outcomes all carry microseconds, so no duration is
    computed from a truncated end (time_to_detect_s was once negative)."""
    for case in matrix.values():
        for path in Path(case["run_dir"]).glob("*.ipynb"):
            records = read_notebook(path)
            stamps = [records.get("run", {}).get("started_at"), (records.get("outcome") or {}).get("finished_at")]
            stamps += [(records.get("triage") or {}).get("detected_at"), (records.get("drill") or {}).get("fault_at")]
            stamps += list(records.record_times.values())
            for stamp in filter(None, stamps):
                assert MICROSECONDS.search(stamp), (path.name, stamp)


# --- finding 1: a failed recovery is never reported as success ------------------------------------


def test_failed_reconciliation_fails_the_procedure_the_drill_and_the_summary(
    matrix: dict[tuple[str, str], dict[str, Any]],
) -> None:
    case = matrix[("data", "exchange_disagrees")]
    run_dir = Path(case["run_dir"])
    procedure = read_notebook(next(run_dir.glob("*_B_data_recovery.ipynb")))
    outcome = procedure["outcome"]
    assert outcome["success"] is False
    assert "Data reconciled with external systems" in outcome["failed_criteria"]
    assert procedure["escalation"]["level"] >= 2
    assert any("success criteria not met" in reason for reason in procedure["escalation"]["reasons"])
    # papermill failed the notebook at its outcome cell: a headless run exits non-zero
    assert procedure.failed_step is not None and procedure.failed_step.name == "outcome"
    assert case["exit"] == 1 and "NOT RECOVERED: data" in case["stdout"]
    assert "criterion failed: Data reconciled with external systems" in case["row"]["failed_step"]
    post = read_notebook(next(run_dir.glob("*_P_post_recovery.ipynb")))
    text = post["notification"]["text"]
    assert "restored and verified" not in text and "NOT recovered" in text
    assert "Data reconciled with external systems" in text
    assert post["escalation"]["level"] >= 2


def test_a_failed_criterion_is_never_level_1(sandbox: Path) -> None:
    for failed in (["Existing backups verified"], ["Trading can safely resume"]):
        level = assess(Facts(criteria_failed=failed), load_site(sandbox))
        assert level.level >= 2 and any(failed[0] in reason for reason in level.reasons)


# --- the notebooks, run headless on a sandbox whose trading process runs ---------------------------


def execute(notebook: str, output: Path, site: Path, **parameters: Any) -> str | None:
    """Run a notebook headless; returns the error papermill raised (the run's verdict) or None."""
    values = {"site": str(site), "interactive": False, "kind": "drill", "approve": APPROVE_ALL, "operator": "judge"}
    try:
        papermill.execute_notebook(
            str(NOTEBOOKS / notebook),
            str(output),
            parameters=values | parameters,
            kernel_name="python3",
            cwd=str(output.parent),
            progress_bar=False,
        )
    except papermill.PapermillExecutionError as exc:
        return f"{exc.ename}: {exc.evalue}"
    return None


@pytest.fixture
def trading(sandbox: Path) -> Iterator[Path]:
    """The sandbox with its trading process running and a good backup; stopped whatever happens."""
    site = load_site(sandbox)
    assert start_system(site).ok
    try:
        RecoveryManager(site=site).create_backup(description="Scheduled daily backup", tags=["daily"])
        yield sandbox
    finally:
        if process_status(site).running:
            stop_system(site)


def _files(site: Path) -> dict[str, bytes]:
    return {
        p.relative_to(site).as_posix(): p.read_bytes()
        for top in ("config", "state", "data", "backups")
        for p in sorted((site / top).rglob("*"))
        if p.is_file() and not p.name.endswith(".lock")
    }


# --- finding 2: trading restarts only on a whole system --------------------------------------------


def test_procedure_a_never_restarts_trading_on_a_site_that_fails_the_gate(trading: Path, tmp_path: Path) -> None:
    """A restores the config and its own checks pass, but the data does not: the restart refuses and
    trading stays stopped (the gate is config, data AND reconciliation, not only A's own criteria)."""
    site = load_site(trading)
    assert stop_system(site).ok
    positions = site.path(site.positions_file)
    lines = positions.read_text().splitlines()
    symbol, quantity, avg = lines[1].split(",")
    lines[1] = f"{symbol},{float(quantity) + 1:.4f},{avg}"
    positions.write_text("\n".join(lines) + "\n")
    config = site.path(site.config_file)
    config.write_text(config.read_text() + "\n[trading = broken\n")
    error = execute("A_config_recovery.ipynb", tmp_path / "A.ipynb", trading)
    records = read_notebook(tmp_path / "A.ipynb")
    assert error and error.startswith("ProcedureFailed"), error
    assert records["restore_result"]["ok"] is True and records["config_check"]["ok"] is True
    assert records["restart_system"]["refused"] is True
    assert any(reason.startswith("data check") for reason in records["restart_system"]["reasons"])
    assert process_status(site).running is False
    assert records["outcome"]["success"] is False and records["outcome"]["trading_running"] is False
    assert records["outcome"]["failed_criteria"] == ["System starts successfully"]
    assert records["escalation"]["level"] >= 2
    assert any("Trading stays STOPPED" in step for step in records["escalation"]["next_steps"])


def test_a_named_backup_that_cannot_fix_the_fault_is_not_restored(trading: Path, tmp_path: Path) -> None:
    """The rule "latest" follows holds for a named backup: the nightly backup of the broken config is refused."""
    site = load_site(trading)
    config = site.path(site.config_file)
    config.write_text(config.read_text() + "\n[trading = broken\n")
    broken_text = config.read_bytes()
    broken = RecoveryManager(site=site).create_backup(description="nightly, of the broken config")
    error = execute("A_config_recovery.ipynb", tmp_path / "A.ipynb", trading, backup_id=broken)
    records = read_notebook(tmp_path / "A.ipynb")
    assert error and error.startswith("ProcedureFailed"), error
    assert records["backup_selection"]["backup_id"] is None
    assert any("cannot fix the fault" in reason for reason in records["backup_selection"]["skipped"])
    assert "restore_result" not in records.records and config.read_bytes() == broken_text
    assert process_status(site).running is False and records["outcome"]["trading_running"] is False


# --- finding 3: "latest" is a backup that can fix the fault ----------------------------------------


def test_latest_passes_over_the_nightly_backup_of_the_bad_config(
    matrix: dict[tuple[str, str], dict[str, Any]],
) -> None:
    case = matrix[("config", "broken_in_newest_backup")]
    procedure = read_notebook(next(Path(case["run_dir"]).glob("*_A_config_recovery.ipynb")))
    selection = procedure["backup_selection"]
    assert selection["backup_id"] == case["row"]["backup_id"]
    assert any("config" in reason and "fails the config check" in reason for reason in selection["skipped"])
    assert procedure["restore_result"]["files_written"] >= 1
    assert case["row"]["outcome"] == "recovered"


# --- finding 4: no "verified" backup of a broken state ---------------------------------------------


def test_procedure_c_with_trading_up_stops_it_recovers_and_tags_only_a_verified_state(
    trading: Path, tmp_path: Path
) -> None:
    site = load_site(trading)
    site.path(site.config_file).write_text("[trading\n")
    shutil.rmtree(site.path(site.reports_dir))  # the trading process keeps running: it never writes reports
    assert process_status(site).running
    error = execute("C_full_system_recovery.ipynb", tmp_path / "C.ipynb", trading)
    records = read_notebook(tmp_path / "C.ipynb")
    assert error is None, error
    assert records["stop_system"]["ok"] and records["outcome"]["success"] is True
    assert records["post_recovery_backup"]["ok"] is True and "verified" in records["post_recovery_backup"]["tags"]
    assert process_status(site).running is True


def test_a_halted_procedure_c_takes_no_verified_backup(trading: Path, tmp_path: Path) -> None:
    config = trading / "recovery.toml"  # no replica either: nothing anywhere to restore from
    config.write_text(config.read_text().split("[[replicas]]")[0])
    site = load_site(trading)
    manager = RecoveryManager(site=site)
    for metadata in manager.list_backups():
        assert manager.delete_backup(metadata.backup_id), manager.last_error
    site.path(site.config_file).write_text("[trading\n")
    shutil.rmtree(site.path(site.reports_dir))
    error = execute("C_full_system_recovery.ipynb", tmp_path / "C.ipynb", trading)
    records = read_notebook(tmp_path / "C.ipynb")
    assert error and error.startswith("ProcedureFailed"), error
    # Nothing local and nothing off the host: the seed step halts the run and says both.
    assert records["halted"]["reason"].startswith("No local backup can fix the fault, and no replica")
    assert records["post_recovery_backup"]["ok"] is False
    assert not [m for m in RecoveryManager(site=site).list_backups() if "verified" in m.tags]
    assert process_status(site).running is False, "trading was left running on a broken site"


# --- finding 5: damaged backups are a fault --------------------------------------------------------


def test_damaged_and_unreadable_backups_are_detected_by_health_and_triage(sandbox: Path, tmp_path: Path) -> None:
    manager = RecoveryManager(site=sandbox)
    older = manager.create_backup(description="older")
    (sandbox / "data" / "reports").joinpath("extra.csv").write_text("x\n")
    newer = manager.create_backup(description="newer")
    victim = sandbox / "backups" / newer / "data" / "trades.csv"
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01
    victim.chmod(0o644)
    victim.parent.chmod(0o755)
    victim.unlink()
    victim.write_bytes(bytes(data))
    (sandbox / "backups" / older).chmod(0o755)
    (sandbox / "backups" / older / "metadata.json").unlink()
    out = io.StringIO()
    assert cli.main(["health", "--site", str(sandbox)], out=out) == 1, out.getvalue()
    assert newer in out.getvalue() and older in out.getvalue()
    assert execute("00_detect_and_triage.ipynb", tmp_path / "T.ipynb", sandbox) is None
    records = read_notebook(tmp_path / "T.ipynb")
    assert records["triage"]["scenario"] == 4 and records["triage"]["procedure"] == "D"
    assert newer in records["backups"]["damaged"]
    assert older in [u["backup_id"] for u in records["backups"]["unreadable"]]
    shown = nbformat.read(tmp_path / "T.ipynb", as_version=4)
    html = "".join(o.get("data", {}).get("text/html", "") for c in shown.cells for o in c.get("outputs", []))
    assert "❌ DAMAGED" in html and "❌ UNREADABLE" in html


# --- finding 6: bad input is refused before anything happens ---------------------------------------


def test_a_typo_in_backup_id_is_refused_before_trading_is_touched(trading: Path, tmp_path: Path) -> None:
    site = load_site(trading)
    site.path(site.config_file).write_text("[trading\n")
    real = RecoveryManager(site=site).list_backups()[0].backup_id
    pid = process_status(site).pid
    before = _files(trading)
    error = execute("A_config_recovery.ipynb", tmp_path / "A.ipynb", trading, backup_id=real[:-1])
    assert error and error.startswith("ParameterError"), error
    assert f"Did you mean: {real}" in error and "`recovery backup list` shows the backups" in error
    assert process_status(site).running and process_status(site).pid == pid, "trading was stopped for a typo"
    after = _files(trading)
    untouched = ("config/", "backups/")  # the trading process keeps writing data/ and state/
    assert {k: v for k, v in after.items() if k.startswith(untouched)} == {
        k: v for k, v in before.items() if k.startswith(untouched)
    }
    assert not read_notebook(tmp_path / "A.ipynb").records.get("stop_system")


def test_post_recovery_refuses_a_records_path_that_does_not_exist(sandbox: Path, tmp_path: Path) -> None:
    before = _files(sandbox)
    error = execute("P_post_recovery.ipynb", tmp_path / "P.ipynb", sandbox, records=[str(tmp_path / "nope.ipynb")])
    assert error and error.startswith("ParameterError") and "nope.ipynb does not exist" in error, error
    assert _files(sandbox) == before


def test_post_recovery_refuses_records_of_another_incident(trading: Path, tmp_path: Path) -> None:
    """A summary built from another incident's records would report its outcome as this one's."""
    for incident in ("INC-1", "INC-2"):
        assert (
            execute("00_detect_and_triage.ipynb", tmp_path / f"{incident}.ipynb", trading, incident_id=incident) is None
        )
    records = [str(tmp_path / "INC-1.ipynb"), str(tmp_path / "INC-2.ipynb")]
    error = execute("P_post_recovery.ipynb", tmp_path / "P.ipynb", trading, records=records)
    assert error and error.startswith("ParameterError") and "mixes incidents" in error, error
    error = execute("P_post_recovery.ipynb", tmp_path / "P2.ipynb", trading, records=records[:1], incident_id="INC-9")
    assert error and error.startswith("ParameterError") and "'INC-9'" in error, error


def test_an_empty_required_section_fails_the_config_check(sandbox: Path) -> None:
    (sandbox / "config" / "config.toml").write_text("[trading]\n[risk]\n[live]\nenabled = true\n")
    result = health_check.run("config", sandbox)
    assert not result.healthy and "empty [trading] section" in result.message


# --- finding 7: least loss first, and no trade lost ------------------------------------------------


def test_procedure_b_on_a_healthy_site_changes_nothing_and_keeps_trading(trading: Path, tmp_path: Path) -> None:
    site = load_site(trading)
    pid = process_status(site).pid
    backups = len(RecoveryManager(site=site).list_backups())
    error = execute("B_data_recovery.ipynb", tmp_path / "B.ipynb", trading)
    records = read_notebook(tmp_path / "B.ipynb")
    assert error is None, error
    assert records["data_loss_extent"]["nothing_to_do"]
    assert "stop_system" not in records.records and "remedy" not in records.records
    assert process_status(site).pid == pid, "trading was stopped although nothing was wrong"
    assert len(RecoveryManager(site=site).list_backups()) == backups
    assert records["outcome"]["success"] is True


def test_without_repair_approved_the_least_loss_among_the_approved_is_taken(trading: Path, tmp_path: Path) -> None:
    site = load_site(trading)
    trades = site.path(site.trades_file)
    assert stop_system(site).ok
    rows = trades.read_text().splitlines()
    trades.write_text("\n".join([*rows, rows[-1]]) + "\n")  # one duplicated row: a repair would do
    approve = ["restore", "backup", "stop_system", "start_system"]
    error = execute("B_data_recovery.ipynb", tmp_path / "B.ipynb", trading, approve=approve)
    records = read_notebook(tmp_path / "B.ipynb")
    assert error is None, error
    assert records["remedy_plan"]["recommended"] == "repair"
    assert records["remedy_choice"] == {
        "recommended": "repair",
        "chosen": "restore",
        "why": "the recommended one is not approved",
    }
    assert records["remedy"]["action"] == "restore" and records["trades"]["still_missing"] == 0
    assert records["outcome"]["success"] is True and process_status(site).running


def test_a_missing_approval_headless_halts_and_escalates(trading: Path, tmp_path: Path) -> None:
    """Headless nobody can click: a step without its approval halts the run, so the record still ends
    with criteria, escalation (level 2 or more) and outcome."""
    site = load_site(trading)
    site.path(site.config_file).write_text("[trading\n")
    error = execute("A_config_recovery.ipynb", tmp_path / "A.ipynb", trading, approve=["stop_system", "backup"])
    records = read_notebook(tmp_path / "A.ipynb")
    assert error and error.startswith("ProcedureFailed"), error
    assert records["halted"]["reason"].startswith("not approved: restore")
    assert records["escalation"]["level"] >= 2 and records["outcome"]["success"] is False
    assert "restore_result" not in records.records


def test_duplicated_rows_are_repaired_in_place_and_no_trade_is_lost(
    matrix: dict[tuple[str, str], dict[str, Any]],
) -> None:
    case = matrix[("data", "duplicated_rows")]
    procedure = read_notebook(next(Path(case["run_dir"]).glob("*_B_data_recovery.ipynb")))
    assert procedure["data_loss_extent"]["corruption"], "the assessment saw no corruption"
    options = {o["action"]: o for o in procedure["remedy_plan"]["options"]}
    assert procedure["remedy_plan"]["recommended"] == "repair" and procedure["remedy"]["action"] == "repair"
    assert options["repair"]["trades_lost"] == 0
    assert options["restore"]["viable"] and options["restore"]["from_exchange"] > 0  # what a restore would give up
    assert procedure["trades"]["still_missing"] == 0
    assert case["row"]["trades_lost"] == 0 and case["ids_unique"]
    assert "restore_result" not in procedure.records
    # Found on an on-call try: P said "data-loss window unknown" where the drill row says 0.
    summary = summarize(sorted(Path(case["run_dir"]).glob("*.ipynb")))
    assert summary.remedy == "repair" and summary.recovered
    assert summary.data_loss_window_s == 0.0 == case["row"]["data_loss_window_s"]


def test_a_restore_writes_back_every_trade_the_exchange_knows(matrix: dict[tuple[str, str], dict[str, Any]]) -> None:
    for variant in ("files_deleted", "dir_deleted", "newest_backup_damaged"):
        case = matrix[("data", variant)]
        procedure = read_notebook(next(Path(case["run_dir"]).glob("*_B_data_recovery.ipynb")))
        trades = procedure["trades"]
        assert procedure["remedy"]["action"] == "restore", variant
        assert trades["lost"] == trades["recovered"] > 0 and trades["still_missing"] == 0, (variant, trades)
        window = procedure["data_loss_window"]
        assert window["text"] == human_duration(window["seconds"]) and "hours" not in window
        assert case["row"]["trades_replayed"] == trades["recovered"]


# --- finding 9: one clock --------------------------------------------------------------------------


def test_durations_from_one_clock_are_never_negative() -> None:
    assert seconds_between("2026-12-02T03:00:00.000001Z", "2026-12-02T03:00:00.500000Z") == 0.0
    assert seconds_between("2026-12-02T03:00:01.250000Z", "2026-12-02T03:00:00.000000Z") == 1.25
    assert [human_duration(s) for s in (1.23, 42, 190, 7500, 200000)] == [
        "1.2 s",
        "42 s",
        "3 min 10 s",
        "2 h 5 min",
        "2 days 7 h",
    ]


def test_no_module_reads_the_wall_clock_but_the_clock_module() -> None:
    offenders = []
    for path in sorted((ROOT / "recovery_lib").rglob("*.py")):
        if path.name == "clock.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if "datetime.now(" in line or "timespec=" in line:
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "timestamps must come from recovery_lib.clock:\n" + "\n".join(offenders)


def test_the_drill_summary_names_trades_lost_and_replayed(matrix: dict[tuple[str, str], dict[str, Any]]) -> None:
    stdout = matrix[("data", "files_deleted")]["stdout"]
    header = next(line for line in stdout.splitlines() if line.startswith("scenario"))
    assert "trades lost" in header and "replayed" in header


def test_records_hold_no_raw_reprs(matrix: dict[tuple[str, str], dict[str, Any]]) -> None:
    """What a post-mortem reader sees: no Python reprs, no pandas index columns, no host paths."""
    for case in matrix.values():
        for path in Path(case["run_dir"]).glob("*.ipynb"):
            notebook = json.loads(path.read_text())
            for cell in notebook["cells"]:
                for output in cell.get("outputs", []):
                    text = "".join(output.get("data", {}).get("text/plain", ""))
                    html = "".join(output.get("data", {}).get("text/html", ""))
                    assert not re.search(r"<\w+(\.\w+)+ object at 0x", text + html), (path.name, text[:200])
                    assert "<th></th>" not in html, (path.name, "a pandas index column")
                    assert "{'" not in text, (path.name, text[:200])
                    # The one host path shown is where the backups are off the host: the sandbox's replica.
                    shown = (text + html).replace(replica_dir(Path(case["site"])).as_uri(), "<replica>")
                    assert case["site"] not in shown, (path.name, "a host path")


def test_every_record_written_is_specified_in_docs(matrix: dict[tuple[str, str], dict[str, Any]]) -> None:
    """docs/records.md is the spec of the records: every record name a drill writes is in its table."""
    spec = (ROOT / "docs" / "records.md").read_text()
    documented = set(re.findall(r"`([a-z_<>]+)`", spec.split("## Records by notebook", 1)[1]))
    written = set()
    for case in matrix.values():
        for path in Path(case["run_dir"]).glob("*.ipynb"):
            written |= set(read_notebook(path).records)
    shown = {re.sub(r"^(approval|health)_.*", r"\1_<\1>", name) for name in written}
    shown = {
        name.replace("approval_<approval>", "approval_<action>").replace("health_<health>", "health_<label>")
        for name in shown
    }
    assert not shown - documented, f"records missing from docs/records.md: {sorted(shown - documented)}"
