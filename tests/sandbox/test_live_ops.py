"""The sandbox's trading process (``recovery_lib.sandbox.live_ops``), started and stopped the way
drills and procedures do it: through the ``[process]`` start/stop commands of ``recovery.toml``.

While it runs, every sample of the site must be consistent: positions equal the net of the trades
(the ``data`` health check), the simulated exchange's balances equal the positions, and a backup
taken mid-trading holds trades, positions and session state that agree.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pandas as pd

from recovery_lib.checks.default import health_check
from recovery_lib.manager import RecoveryManager
from recovery_lib.sandbox.live_ops import PIDFILE
from recovery_lib.site.config import load_site
from recovery_lib.site.process import consistent_view, process_status, start_system, stop_system
from recovery_lib.trading.exchange import get_exchange_client
from recovery_lib.trading.reconcile import reconcile_positions

SAMPLES = 20
STOP_WITHIN_S = 5.0


def pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (a reaped or exited process is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(") ", 1)[-1][:1] != "Z"


def kill_leftover(pid: int | None) -> None:
    """Last resort for a test that failed half-way: never leave a trading process behind (and never
    touch a process that merely reuses its pid)."""
    if pid is None or not pid_alive(pid):
        return
    with contextlib.suppress(OSError):  # OSError: it exited meanwhile
        if b"recovery_lib.sandbox.live_ops" in Path(f"/proc/{pid}/cmdline").read_bytes():
            os.kill(pid, signal.SIGKILL)


def trade_count(site_root: Path) -> int:
    with (site_root / "data" / "trades.csv").open() as handle:
        return sum(1 for _ in handle) - 1


def last_trade_id(site_root: Path) -> int:
    return int(json.loads((site_root / "state" / "session.json").read_text())["last_trade_id"])


def net_of_trades(trades: pd.DataFrame) -> dict[str, Decimal]:
    """Exact per-symbol net quantity (buys minus sells) of a trades table read as strings."""
    net: dict[str, Decimal] = {}
    for symbol, side, quantity in zip(trades["symbol"], trades["side"], trades["quantity"], strict=True):
        signed = Decimal(quantity) if side == "buy" else -Decimal(quantity)
        net[symbol] = net.get(symbol, Decimal(0)) + signed
    return net


def positions_table(positions: pd.DataFrame) -> dict[str, Decimal]:
    return {symbol: Decimal(q) for symbol, q in zip(positions["symbol"], positions["quantity"], strict=True)}


def test_live_ops_trades_consistently_and_stops_cleanly(sandbox: Path) -> None:
    site = load_site(sandbox)
    pidfile = sandbox / PIDFILE
    trades_before = trade_count(sandbox)
    assert not pidfile.exists() and process_status(site).running is False
    exchange = get_exchange_client(site)
    pid = None
    try:
        started = start_system(site, timeout_s=15)
        assert started.ok and started.running_after is True, started.message
        pid = int(pidfile.read_text().strip())
        assert pid_alive(pid)
        assert "recovery_lib.sandbox.live_ops" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        assert process_status(site).pid == pid

        counts = []
        for _ in range(SAMPLES):
            data = health_check.run("data", site)
            assert data.healthy, data.message
            with consistent_view(site):  # the writer's lock: trades, positions and balances move together
                reconciliation = reconcile_positions(site, exchange)
                counts.append(trade_count(sandbox))
                assert last_trade_id(sandbox) == counts[-1]
            assert len(reconciliation) >= 1
            assert reconciliation["matches"].all(), reconciliation[~reconciliation["matches"]].to_dict("records")
            time.sleep(0.05)
        assert counts == sorted(counts), "trades.csv must only ever grow"
        assert counts[-1] > trades_before, "no trade was appended while live_ops ran"

        # A backup taken while it trades verifies, and inside it trades, positions and state agree.
        manager = RecoveryManager(site=site)
        backup_id = manager.create_backup(description="taken while trading")
        report = manager.verify_backup(backup_id)
        assert report.ok, report.summary()
        stored = site.backup_dir / backup_id
        trades = pd.read_csv(stored / "data" / "trades.csv", dtype=str)
        positions = pd.read_csv(stored / "data" / "positions.csv", dtype=str)
        assert len(trades) > trades_before
        assert trades["trade_id"].astype(int).tolist() == list(range(1, len(trades) + 1))
        assert positions_table(positions) == net_of_trades(trades)
        session = json.loads((stored / "state" / "session.json").read_text())
        assert session["last_trade_id"] == len(trades)
        assert pid_alive(pid), "the backup must not disturb the trading process"

        began = time.monotonic()
        stopped = stop_system(site, timeout_s=15)
        took = time.monotonic() - began
        assert stopped.ok and stopped.running_after is False, stopped.message
        assert took < STOP_WITHIN_S, f"stop took {took:.1f} s"
        deadline = time.monotonic() + STOP_WITHIN_S
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not pid_alive(pid), f"live_ops pid {pid} still alive after stop_system"
        assert not pidfile.exists(), "live_ops must remove its pidfile when it stops"
        assert process_status(site).running is False
    finally:
        stop_system(site, timeout_s=10)
        kill_leftover(pid)

    # Stopped: the site is left consistent and no longer changes.
    settled = trade_count(sandbox)
    time.sleep(0.3)
    assert trade_count(sandbox) == settled == last_trade_id(sandbox)
    assert health_check.run("data", site).healthy
    assert reconcile_positions(site, exchange)["matches"].all()


def test_max_trades_makes_exactly_n_trades(sandbox: Path) -> None:
    site = load_site(sandbox)
    before_count, before_id = trade_count(sandbox), last_trade_id(sandbox)
    done = subprocess.run(
        [sys.executable, "-m", "recovery_lib.sandbox.live_ops", "--site", str(sandbox), "--interval", "0.01"]
        + ["--max-trades", "7"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert trade_count(sandbox) == before_count + 7
    assert last_trade_id(sandbox) == before_id + 7
    trades = pd.read_csv(sandbox / "data" / "trades.csv", dtype=str)
    assert trades["trade_id"].astype(int).tolist()[-7:] == list(range(before_id + 1, before_id + 8))
    assert not (sandbox / PIDFILE).exists()
    assert process_status(site).running is False
    data = health_check.run("data", site)
    assert data.healthy, data.message
    assert reconcile_positions(site, get_exchange_client(site))["matches"].all()


def test_stop_command_without_a_running_process_is_a_no_op(sandbox: Path) -> None:
    site = load_site(sandbox)
    before = trade_count(sandbox)
    stopped = stop_system(site)
    assert stopped.ok and stopped.running_after is False
    assert "already stopped" in stopped.message
    assert trade_count(sandbox) == before and not (sandbox / PIDFILE).exists()


def test_a_system_that_exits_right_after_starting_has_not_started(sandbox: Path) -> None:
    """It writes its pid and runs long enough to be seen, then dies (as one that crashes on its first
    write would): start_system must say so, not report "system running"."""
    config = sandbox / "recovery.toml"
    start = next(line for line in config.read_text().splitlines() if line.startswith("start = "))
    # its command line names live_ops, as [process] match expects
    (sandbox / "run").mkdir(exist_ok=True)
    (sandbox / "run/live_ops_dies.sh").write_text("echo $$ > run/live_ops.pid\nsleep 1\n")
    config.write_text(config.read_text().replace(start, 'start = "sh run/live_ops_dies.sh"'))
    site = load_site(sandbox)
    started = start_system(site, timeout_s=15, stay_up_s=2.5)
    assert not started.ok, started.message
    assert started.running_after is False
    assert "started, then exited within 2.5 s" in started.message
    assert process_status(site).running is False


def test_sigterm_mid_run_leaves_the_site_consistent(sandbox: Path) -> None:
    """A SIGTERM between trades (what ``--stop`` sends) never leaves a half-written trade behind."""
    site = load_site(sandbox)
    process = subprocess.Popen(
        [sys.executable, "-m", "recovery_lib.sandbox.live_ops", "--site", str(sandbox), "--interval", "0.05"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 15
        while not (sandbox / PIDFILE).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (sandbox / PIDFILE).read_text().strip() == str(process.pid)
        start = trade_count(sandbox)
        while trade_count(sandbox) < start + 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=STOP_WITHIN_S) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert not (sandbox / PIDFILE).exists()
    assert trade_count(sandbox) >= start + 3
    assert (sandbox / "data" / "trades.csv").read_bytes().endswith(b"\n")
    assert health_check.run("data", site).healthy
    assert reconcile_positions(site, get_exchange_client(site))["matches"].all()


# --- the exchange's side: its fill log, its balances, and ids never reused ----------------------------

FILL_LOG = Path("exchange") / "my_trades.csv"


def make_trades(site_root: Path, count: int) -> None:
    """live_ops makes exactly ``count`` trades and exits."""
    done = subprocess.run(
        [sys.executable, "-m", "recovery_lib.sandbox.live_ops", "--site", str(site_root), "--interval", "0.01"]
        + ["--max-trades", str(count)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def exact_balances(site_root: Path) -> dict[str, Decimal]:
    """The account's balances as the decimals their JSON text says."""
    account = json.loads((site_root / "exchange" / "account.json").read_text(), parse_float=Decimal)
    return {currency: Decimal(amount) for currency, amount in account["balances"].items()}


def test_the_fill_log_holds_exactly_the_trades_live_ops_made(sandbox: Path) -> None:
    header = (sandbox / "data" / "trades.csv").read_text().splitlines()[0]
    assert (sandbox / FILL_LOG).read_text() == header + "\n"
    before = (sandbox / "data" / "trades.csv").read_bytes()
    make_trades(sandbox, 7)
    after = (sandbox / "data" / "trades.csv").read_bytes()
    assert after.startswith(before)
    made = after[len(before) :].decode()
    assert (sandbox / FILL_LOG).read_text() == header + "\n" + made  # the same rows, byte for byte
    assert [int(row.split(",")[0]) for row in made.splitlines()] == list(range(501, 508))


def test_exchange_balances_move_by_exactly_each_fill(sandbox: Path) -> None:
    start = exact_balances(sandbox)
    make_trades(sandbox, 25)
    site = load_site(sandbox)
    balances = exact_balances(sandbox)
    positions = positions_table(pd.read_csv(sandbox / "data" / "positions.csv", dtype=str))
    assert {symbol.split("/")[0]: balances[symbol.split("/")[0]] for symbol in positions} == {
        symbol.split("/")[0]: quantity for symbol, quantity in positions.items()
    }
    fills = pd.read_csv(sandbox / FILL_LOG, dtype=str)
    spent = sum(
        (Decimal(q) * Decimal(p) * (1 if side == "buy" else -1))
        for side, q, p in zip(fills["side"], fills["quantity"], fills["price"], strict=True)
    )
    assert balances["USD"] == start["USD"] - spent  # exact to 1e-8: no float drift
    assert reconcile_positions(site, get_exchange_client(site))["matches"].all()


def test_restarted_on_a_restored_ledger_it_never_reuses_an_id_the_exchange_knows(sandbox: Path) -> None:
    """After a restore of an older trades.csv, a restarted live_ops trades above every id the exchange
    knows; before the fix, trade_id 506 named two different trades."""
    saved = {name: (sandbox / "data" / name).read_bytes() for name in ("trades.csv", "positions.csv")}
    make_trades(sandbox, 5)  # ids 501..505: on the exchange, then lost by the restore below
    for name, data in saved.items():
        (sandbox / "data" / name).write_bytes(data)
    make_trades(sandbox, 3)
    trades = pd.read_csv(sandbox / "data" / "trades.csv", dtype=str)
    fills = pd.read_csv(sandbox / FILL_LOG, dtype=str)
    assert trades["trade_id"].astype(int).tolist()[-3:] == [506, 507, 508]
    assert fills["trade_id"].astype(int).tolist() == list(range(501, 509))
    assert trades["trade_id"].is_unique
    # Every id the ledger and the exchange share names the same row.
    shared = trades.merge(fills, on="trade_id", suffixes=("", "_exchange"))
    for column in ("timestamp", "symbol", "side", "quantity", "price"):
        assert (shared[column] == shared[f"{column}_exchange"]).all(), column
    session = json.loads((sandbox / "state" / "session.json").read_text())
    assert session["last_trade_id"] == 508 and session["trade_count"] == 503
