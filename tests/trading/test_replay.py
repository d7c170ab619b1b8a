"""Fills after the restore point come back from the exchange: a real sandbox trades with live_ops, its
data is put back to an older copy (what a restore does), and the replay must return every lost trade
with its original id and row text, positions recomputed, and the site reconciled with the exchange."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from recovery_lib.errors import ExchangeError
from recovery_lib.site.config import load_site
from recovery_lib.site.integrity import check_data
from recovery_lib.site.process import process_status, start_system, stop_system
from recovery_lib.trading.exchange import SimulatedExchange, get_exchange_client
from recovery_lib.trading.ledger import LedgerError, positions_csv, read_ledger
from recovery_lib.trading.reconcile import reconcile
from recovery_lib.trading.replay import SINCE_MARGIN, exchange_fills, plan_replay, replay_fills, replay_symbols

LOST = 12  # trades made after the restore point


def make_trades(site_root: Path, count: int) -> None:
    """The sandbox's real trading process makes exactly ``count`` trades and exits."""
    done = subprocess.run(
        [sys.executable, "-m", "recovery_lib.sandbox.live_ops", "--site", str(site_root), "--interval", "0.01"]
        + ["--max-trades", str(count)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


@dataclass
class Restored:
    root: Path
    trades_before_restore: bytes  # the ledger as it was when the fault struck
    positions_before_restore: bytes


def data_files(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((root / "data").glob("*.csv"))}


@pytest.fixture
def restored(sandbox: Path) -> Restored:
    """A sandbox that traded LOST times after its data was copied aside, then had that copy put back."""
    backup = data_files(sandbox)
    make_trades(sandbox, LOST)
    truth = Restored(sandbox, (sandbox / "data/trades.csv").read_bytes(), (sandbox / "data/positions.csv").read_bytes())
    for name, data in backup.items():
        (sandbox / "data" / name).write_bytes(data)
    return truth


@pytest.fixture
def pretend_running(sandbox: Path) -> Iterator[None]:
    """A real process the site takes for its trading system and which writes nothing, so a refusal can be
    shown to change nothing at all."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "live_ops"])
    (sandbox / "run/live_ops.pid").write_text(f"{process.pid}\n")
    try:
        deadline = time.monotonic() + 10
        while process_status(load_site(sandbox)).running is not True and time.monotonic() < deadline:
            time.sleep(0.02)
        yield
    finally:
        process.kill()
        process.wait()
        (sandbox / "run/live_ops.pid").unlink(missing_ok=True)


# --- the replay ---------------------------------------------------------------------------------------


def test_before_the_replay_the_restored_site_disagrees_with_the_exchange(restored: Restored) -> None:
    """The exchange is independent of the site: a restore does not move its balances."""
    site = load_site(restored.root)
    result = reconcile(site, get_exchange_client(site))
    assert not result.ok and result.error is None and result.discrepancies
    assert check_data(site).ok  # the restored data is consistent in itself: only the exchange tells


def test_the_dry_run_says_what_comes_back_and_writes_nothing(restored: Restored) -> None:
    site = load_site(restored.root)
    before = data_files(restored.root)
    plan = plan_replay(site, get_exchange_client(site))
    assert plan.dry_run and plan.refused is None
    assert plan.missing_before == plan.recovered == LOST and plan.still_missing == 0
    assert plan.recovered_ids == list(range(501, 501 + LOST))
    assert plan.ledger_trades == 500 + LOST
    assert plan.summary() == (
        f"{LOST} trades lost by the restore, {LOST} would be recovered from the exchange (dry run: nothing written)"
    )
    assert data_files(restored.root) == before


def test_every_lost_trade_comes_back_with_its_id_and_row_text(restored: Restored) -> None:
    site = load_site(restored.root)
    exchange = get_exchange_client(site)
    result = replay_fills(site, exchange)
    assert (result.missing_before, result.recovered, result.still_missing) == (LOST, LOST, 0)
    assert result.recovered_ids == list(range(501, 501 + LOST)) and result.ledger_trades == 500 + LOST
    assert result.summary() == f"{LOST} trades lost by the restore, {LOST} recovered from the exchange, 0 still missing"
    # Byte for byte the ledger and positions the site had when the fault struck.
    assert (restored.root / "data/trades.csv").read_bytes() == restored.trades_before_restore
    assert (restored.root / "data/positions.csv").read_bytes() == restored.positions_before_restore
    assert reconcile(site, exchange).ok
    assert check_data(site).ok
    # A second replay finds nothing missing and writes nothing.
    again = replay_fills(site, exchange)
    assert (again.missing_before, again.recovered, again.still_missing) == (0, 0, 0)
    assert (restored.root / "data/trades.csv").read_bytes() == restored.trades_before_restore


def test_replay_after_trading_restarted_on_the_restored_ledger(restored: Restored) -> None:
    """live_ops restarted before the replay trades above every id the exchange knows; the replay then
    fills the gap and nothing is named twice."""
    make_trades(restored.root, 4)
    site = load_site(restored.root)
    exchange = get_exchange_client(site)
    result = replay_fills(site, exchange)
    assert result.recovered_ids == list(range(501, 501 + LOST)) and result.still_missing == 0
    ledger = read_ledger(restored.root / "data/trades.csv", "data/trades.csv")
    assert ledger.ids == set(range(1, 501 + LOST + 4)) and not ledger.duplicates()
    assert (restored.root / "data/positions.csv").read_text() == positions_csv(ledger.trades)
    assert reconcile(site, exchange).ok and check_data(site).ok


def test_a_torn_row_comes_back_from_the_exchange_when_the_repair_is_asked_for(sandbox: Path) -> None:
    make_trades(sandbox, 3)
    site = load_site(sandbox)
    whole = (sandbox / "data/trades.csv").read_bytes()
    (sandbox / "data/trades.csv").write_bytes(whole[:-20])
    result = replay_fills(site, get_exchange_client(site), repair=True)
    assert result.repair is not None and result.repair.counts() == {"torn last row": 1}
    assert result.recovered_ids == [503] and result.still_missing == 0
    assert (sandbox / "data/trades.csv").read_bytes() == whole


# --- refusals change nothing ----------------------------------------------------------------------------


def test_a_damaged_ledger_is_refused_unless_the_repair_is_asked_for(restored: Restored) -> None:
    site = load_site(restored.root)
    exchange = get_exchange_client(site)
    rows = (restored.root / "data/trades.csv").read_text().splitlines()[1:]
    with (restored.root / "data/trades.csv").open("a") as handle:
        handle.write("\n".join(rows[:50]) + "\n")
    before = data_files(restored.root)
    plan = plan_replay(site, exchange)
    assert plan.refused is not None and "plan_repair" in plan.refused and "written more than once" in plan.refused
    with pytest.raises(LedgerError, match="replay refused: data/trades.csv needs a repair first.*Nothing was changed"):
        replay_fills(site, exchange)
    assert data_files(restored.root) == before

    result = replay_fills(site, exchange, repair=True)
    assert result.repair is not None and result.repair.counts() == {"exact duplicate copy": 50}
    assert result.repair.trades_lost == 0 and result.recovered == LOST and result.still_missing == 0
    assert "drops 50 row(s)" in result.summary()
    assert (restored.root / "data/trades.csv").read_bytes() == restored.trades_before_restore
    assert reconcile(site, exchange).ok


def test_replay_refuses_while_the_trading_system_runs_and_changes_nothing(
    restored: Restored, pretend_running: None
) -> None:
    site = load_site(restored.root)
    before = data_files(restored.root)
    with pytest.raises(LedgerError) as refused:
        replay_fills(site, get_exchange_client(site))
    assert str(site.root) in str(refused.value) and site.process.stop in str(refused.value)
    assert data_files(restored.root) == before


def test_replay_refuses_the_real_trading_process(restored: Restored) -> None:
    """The sandbox's real live_ops running: refused; once stopped, the replay recovers everything."""
    site = load_site(restored.root)
    exchange = get_exchange_client(site)
    try:
        assert start_system(site, timeout_s=15).ok
        with pytest.raises(LedgerError, match="the trading system is running"):
            replay_fills(site, exchange)
    finally:
        assert stop_system(site, timeout_s=15).ok
    ledger = read_ledger(restored.root / "data/trades.csv", "data/trades.csv")
    assert not ledger.ids & set(range(501, 501 + LOST))  # nothing was replayed while it ran
    result = replay_fills(site, exchange)
    assert result.recovered_ids[:LOST] == list(range(501, 501 + LOST)) and result.still_missing == 0
    assert reconcile(site, exchange).ok and check_data(site).ok


def test_an_unreachable_exchange_is_an_error_and_nothing_is_written(restored: Restored) -> None:
    (restored.root / "exchange/my_trades.csv").unlink()
    site = load_site(restored.root)
    before = data_files(restored.root)
    with pytest.raises(ExchangeError, match="my_trades.csv is missing"):
        replay_fills(site, get_exchange_client(site))
    assert data_files(restored.root) == before


# --- a real (ccxt) exchange: per symbol, paginated, from a safe "since" ------------------------------------


class PagingExchange:
    """Behaves like a ccxt exchange that needs a symbol, returns ``page`` fills per call from ``since`` on
    (more when asked, up to ``cap``), and has no ``info`` in our row format: the fills are the simulated
    exchange's, unified fields only."""

    id = "paging"

    def __init__(self, simulated: SimulatedExchange, page: int = 3, cap: int = 50) -> None:
        self.simulated = simulated
        self.page = page  # fills per call unless asked for more (live_ops makes many per second)
        self.cap = cap  # the most it ever returns at once
        self.asked: list[tuple[str | None, int | None]] = []

    def load_markets(self) -> dict[str, Any]:
        return self.simulated.load_markets()

    def fetch_balance(self) -> dict[str, Any]:
        return self.simulated.fetch_balance()

    def fetch_my_trades(self, symbol: str | None = None, since: int | None = None, limit: int | None = None) -> list:
        self.asked.append((symbol, since))
        if symbol is None:
            raise ValueError("paging fetchMyTrades() requires a symbol argument")  # as ccxt.ArgumentsRequired
        fills = self.simulated.fetch_my_trades(symbol, since, min(limit or self.page, self.cap))
        return [{key: value for key, value in fill.items() if key != "info"} for fill in fills]


def test_a_ccxt_exchange_is_asked_per_symbol_page_by_page(restored: Restored) -> None:
    site = load_site(restored.root)
    simulated = get_exchange_client(site)
    exchange = PagingExchange(simulated, page=2)
    symbols = replay_symbols(site, exchange)
    assert symbols == sorted(simulated.load_markets())  # the positions' symbols the exchange lists
    assert replay_symbols(site, simulated) is None  # the simulated exchange answers for all at once
    fills = exchange_fills(exchange, symbols)
    assert sorted(fills) == list(range(501, 501 + LOST))
    for trade_id, fill in fills.items():
        assert fill.same_trade(exchange_fills(simulated)[trade_id])
    with pytest.raises(ValueError, match="requires a symbol"):
        exchange_fills(exchange)


def test_a_ccxt_replay_looks_back_a_day_before_the_newest_trade_and_recovers_everything(restored: Restored) -> None:
    site = load_site(restored.root)
    exchange = PagingExchange(get_exchange_client(site))
    ledger = read_ledger(restored.root / "data/trades.csv", "data/trades.csv")
    newest = max(t.timestamp for t in ledger.trades)
    result = replay_fills(site, exchange)
    assert result.recovered_ids == list(range(501, 501 + LOST)) and result.still_missing == 0
    from recovery_lib import clock

    expected_since = int((clock.parse(newest) - SINCE_MARGIN).timestamp() * 1000)
    assert {since for _, since in exchange.asked if since is not None} >= {expected_since}
    # Rebuilt rows have the exchange's number text, but the positions are exactly the same.
    assert (restored.root / "data/positions.csv").read_bytes() == restored.positions_before_restore
    assert reconcile(site, exchange).ok


def test_a_fill_whose_id_is_not_an_integer_is_refused(restored: Restored) -> None:
    class TextIds(PagingExchange):
        def fetch_my_trades(
            self, symbol: str | None = None, since: int | None = None, limit: int | None = None
        ) -> list:
            return [fill | {"id": f"T-{fill['id']}"} for fill in super().fetch_my_trades(symbol, since, limit)]

    site = load_site(restored.root)
    with pytest.raises(LedgerError, match="trade ids must be integers"):
        replay_fills(site, TextIds(get_exchange_client(site)))


def test_an_exchange_that_cannot_page_past_one_timestamp_is_an_error_not_a_silent_gap(sandbox: Path) -> None:
    """Three fills share a second and a fourth is newer. An exchange that returns at most three fills per
    call can never show whether a fourth shares that second: the replay says so instead of leaving a
    gap. One that returns four pages past it."""
    header = (sandbox / "data/trades.csv").read_text().splitlines()[0]
    rows = [f"{501 + n},2026-11-20T12:00:00Z,BTC/USD,buy,0.{n + 1}000,43000.0000" for n in range(3)]
    rows.append("504,2026-11-20T12:00:01Z,BTC/USD,buy,0.4000,43000.0000")
    (sandbox / "exchange/my_trades.csv").write_text("\n".join([header, *rows]) + "\n")
    simulated = get_exchange_client(load_site(sandbox))
    with pytest.raises(ExchangeError, match="cannot page past the fills of BTC/USD at timestamp"):
        exchange_fills(PagingExchange(simulated, page=1, cap=3), ["BTC/USD"])
    assert sorted(exchange_fills(PagingExchange(simulated, page=1, cap=4), ["BTC/USD"])) == [501, 502, 503, 504]
