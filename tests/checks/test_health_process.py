"""The process, exchange and reconciliation health checks."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from health_helpers import edit, expect_failure

from recovery_lib import health_check
from recovery_lib.site.config import load_site
from recovery_lib.site.integrity import check_data
from recovery_lib.trading.ledger import parse_row, positions_csv, read_ledger

# --- process ----------------------------------------------------------------------------------


@pytest.fixture
def spawn() -> Iterator[Callable[[str], subprocess.Popen[bytes]]]:
    """Start sleeping Python processes with a chosen last argument; all are killed afterwards."""
    started: list[subprocess.Popen[bytes]] = []

    def start(argument: str) -> subprocess.Popen[bytes]:
        process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", argument])
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()
        process.wait()


def test_process_running_then_stale_pidfile(sandbox: Path, spawn: Callable[[str], subprocess.Popen[bytes]]) -> None:
    process = spawn("live_ops")
    (sandbox / "run/live_ops.pid").write_text(f"{process.pid}\n")
    result = health_check.run("process", sandbox)
    assert result.healthy, result.message
    assert result.message == f"trading process running (pid {process.pid})"
    assert result.details == {"configured": True, "pid": process.pid}
    process.kill()
    process.wait()
    result = health_check.run("process", sandbox)
    assert not result.healthy
    assert f"stale pidfile run/live_ops.pid: pid {process.pid} is gone" in result.message


def test_process_zombie_is_not_running(sandbox: Path, spawn: Callable[[str], subprocess.Popen[bytes]]) -> None:
    process = spawn("live_ops")
    (sandbox / "run/live_ops.pid").write_text(str(process.pid))
    process.kill()
    for _ in range(200):  # until the kernel has made it a zombie (not reaped yet)
        if Path(f"/proc/{process.pid}/stat").read_text().split(") ")[-1].startswith("Z"):
            break
        time.sleep(0.005)
    result = health_check.run("process", sandbox)
    assert not result.healthy and f"pid {process.pid} from run/live_ops.pid is a zombie" in result.message


def test_pidfile_of_another_program(sandbox: Path, spawn: Callable[[str], subprocess.Popen[bytes]]) -> None:
    process = spawn("some_other_tool")
    (sandbox / "run/live_ops.pid").write_text(str(process.pid))
    result = health_check.run("process", sandbox)
    assert not result.healthy
    assert f"pid {process.pid} from run/live_ops.pid is another program, not 'live_ops'" in result.message
    assert process.poll() is None  # the check only looked; the process still runs


def test_pidfile_without_a_pid(sandbox: Path) -> None:
    (sandbox / "run/live_ops.pid").write_text("garbage")
    result = health_check.run("process", sandbox)
    assert not result.healthy and "pidfile run/live_ops.pid holds 'garbage', not a pid" in result.message


@pytest.mark.parametrize(("command", "healthy", "says"), [("true", True, "exited 0"), ("false", False, "exited 1")])
def test_detect_command(sandbox: Path, command: str, healthy: bool, says: str) -> None:
    edit(sandbox / "recovery.toml", 'match = "live_ops"\n', f'match = "live_ops"\ndetect = "{command}"\n')
    result = health_check.run("process", sandbox)
    assert result.healthy is healthy
    assert f"detect command '{command}' {says}" in result.message


def test_detect_command_runs_in_the_site(sandbox: Path) -> None:
    edit(sandbox / "recovery.toml", 'match = "live_ops"\n', 'match = "live_ops"\ndetect = "test -f recovery.toml"\n')
    assert health_check.run("process", sandbox).healthy


def test_process_not_configured(sandbox: Path) -> None:
    edit(sandbox / "recovery.toml", 'pidfile = "run/live_ops.pid"\nmatch = "live_ops"\n', "")
    result = health_check.run("process", sandbox)
    assert result.healthy
    assert result.message.startswith("not monitored: no [process] pidfile or detect command")


# --- exchange ---------------------------------------------------------------------------------


def test_exchange_account_missing(sandbox: Path) -> None:
    (sandbox / "exchange/account.json").unlink()
    # without balances nothing can be reconciled either
    result = expect_failure(
        sandbox, "exchange", "ExchangeError", "exchange/account.json is missing", also=frozenset({"reconciliation"})
    )
    assert result.details == {"exception": "ExchangeError"}


def test_exchange_not_configured(sandbox: Path) -> None:
    edit(sandbox / "recovery.toml", 'client = "simulated"', 'client = "none"')
    (sandbox / "exchange/account.json").unlink()  # not consulted when nothing is configured
    result = health_check.run("exchange", sandbox)
    assert result.healthy
    assert result.message.startswith("not monitored")
    assert result.details == {"configured": False}


# --- reconciliation ---------------------------------------------------------------------------


def test_a_whole_ledger_the_exchange_disagrees_with_fails_only_reconciliation(sandbox: Path) -> None:
    """A trade the exchange never had, with positions recomputed: the files are consistent, so the
    data check passes, and only reconciliation sees the fault."""
    trades = sandbox / "data/trades.csv"
    ledger = read_ledger(trades, "data/trades.csv")
    last = ledger.trades[-1]
    with trades.open("a") as handle:
        handle.write(f"{ledger.highest_id() + 1},{last.timestamp},{last.symbol},buy,2.5000,{last.price}\n")
    (sandbox / "data/positions.csv").write_text(positions_csv(read_ledger(trades, "data/trades.csv").trades))
    result = expect_failure(sandbox, "reconciliation", last.symbol, "(Procedure B)")
    assert [d["symbol"] for d in result.details["discrepancies"]] == [last.symbol]


def test_reconciliation_not_configured(sandbox: Path) -> None:
    edit(sandbox / "recovery.toml", 'client = "simulated"', 'client = "none"')
    result = health_check.run("reconciliation", sandbox)
    assert result.healthy
    assert result.message.startswith("not monitored")
    assert result.details == {"configured": False}


@pytest.mark.parametrize(
    "row",
    [
        "{id},2026-11-20T12:00:00Z,BTC/USD,buy,1.0000,43000.0000",
        "{id},,BTC/USD,buy,1.0000,43000.0000",
        "{id},   ,BTC/USD,buy,1.0000,43000.0000",
        "{id},\t,BTC/USD,buy,1.0000,43000.0000",
        "{id},2026-11-20T12:00:00Z,,buy,1.0000,43000.0000",
        "{id},2026-11-20T12:00:00Z,NA,buy,1.0000,43000.0000",
        "{id},2026-11-20T12:00:00Z,BTC/USD, buy,1.0000,43000.0000",
        "{id},2026-11-20T12:00:00Z,BTC/USD,BUY,1.0000,43000.0000",
        "{id},2026-11-20T12:00:00Z,BTC/USD,buy,0,43000.0000",
        "{id},2026-11-20T12:00:00Z,BTC/USD,buy,nan,43000.0000",
        "{id},2026-11-20T12:00:00Z,BTC/USD,buy,1.0000,inf",
        "{id}.5,2026-11-20T12:00:00Z,BTC/USD,buy,1.0000,43000.0000",
        "-{id},2026-11-20T12:00:00Z,BTC/USD,buy,1.0000,43000.0000",
        "{id},2026-11-20T12:00:00Z,BTC/USD,buy,,43000.0000",
    ],
)
def test_the_data_check_refuses_exactly_the_rows_the_ledger_reader_refuses(sandbox: Path, row: str) -> None:
    trades = sandbox / "data/trades.csv"
    lines = trades.read_text().splitlines()
    line = row.format(id=len(lines) + 1000)
    trades.write_text("\n".join([*lines, line]) + "\n")
    report = check_data(load_site(sandbox))
    flagged = f"data/trades.csv line {len(lines) + 1}: incomplete or invalid trade row" in report.problems
    assert flagged == (parse_row(line) is None), (line, report.problems)
