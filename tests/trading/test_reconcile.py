"""Reconciliation of positions with the exchange, exact to each instrument's precision, on a real sandbox
and its simulated exchange (wrapped where a test needs an exchange that says less, or fails)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from recovery_lib.errors import ExchangeError
from recovery_lib.site.config import load_site
from recovery_lib.trading.exchange import SimulatedExchange, get_exchange_client
from recovery_lib.trading.reconcile import COLUMNS, reconcile, reconcile_positions

BTC = Decimal("2.5669")  # the template sandbox's BTC/USD position (tests/conftest.py)


def set_balance(sandbox: Path, currency: str, amount: float) -> None:
    path = sandbox / "exchange/account.json"
    account = json.loads(path.read_text())
    account["balances"][currency] = amount
    path.write_text(json.dumps(account, indent=2))


def add_to_recovery_toml(sandbox: Path, text: str) -> None:
    with (sandbox / "recovery.toml").open("a") as handle:
        handle.write("\n" + text)


class BalanceOnly:
    """An exchange that states no market precision (no load_markets)."""

    def __init__(self, inner: SimulatedExchange) -> None:
        self.inner = inner

    def fetch_balance(self) -> dict[str, Any]:
        return self.inner.fetch_balance()


class DecimalPlaces(BalanceOnly):
    """An exchange whose precision values are numbers of decimal places (ccxt DECIMAL_PLACES)."""

    def __init__(self, inner: SimulatedExchange, places: int, mode: int | None = 2) -> None:
        super().__init__(inner)
        self.places = places
        if mode is not None:
            self.precisionMode = mode

    def load_markets(self) -> dict[str, Any]:
        markets = self.inner.load_markets()
        return {s: m | {"precision": {"amount": self.places, "price": self.places}} for s, m in markets.items()}


def test_a_fresh_sandbox_reconciles_exactly(sandbox: Path) -> None:
    site = load_site(sandbox)
    result = reconcile(site, get_exchange_client(site))
    assert result.ok and result.error is None and result.discrepancies == []
    assert len(result.rows) == 8 and [list(row) for row in result.rows] == [COLUMNS] * 8
    btc = next(row for row in result.rows if row["symbol"] == "BTC/USD")
    assert btc == {
        "symbol": "BTC/USD",
        "position": 2.5669,
        "exchange": 2.5669,
        "difference": 0.0,
        "decimals": 4,
        "matches": True,
    }
    frame = result.frame()
    assert frame.index.name == "symbol" and list(frame.columns) == COLUMNS[1:] and bool(frame["matches"].all())
    assert result.summary() == "all 8 position(s) equal the exchange's balances"


def test_a_difference_below_the_precision_matches_and_one_at_it_does_not(sandbox: Path) -> None:
    site = load_site(sandbox)
    exchange = get_exchange_client(site)
    set_balance(sandbox, "BTC", float(BTC + Decimal("0.00004")))
    assert reconcile(site, exchange).ok  # 2.56694 is 2.5669 at the market's 0.0001 tick
    set_balance(sandbox, "BTC", float(BTC + Decimal("0.0001")))
    result = reconcile(site, exchange)
    assert not result.ok
    assert [(row["symbol"], row["difference"]) for row in result.discrepancies] == [("BTC/USD", 0.0001)]
    assert result.summary() == "1 of 8 position(s) differ from the exchange: BTC/USD: position 2.5669, exchange 2.5670"


def test_the_tolerance_in_recovery_toml_allows_a_difference(sandbox: Path) -> None:
    set_balance(sandbox, "BTC", float(BTC + Decimal("0.0001")))
    add_to_recovery_toml(sandbox, "[reconcile]\ntolerance = 0.0001\n")
    site = load_site(sandbox)
    assert site.reconcile.tolerance == 0.0001
    assert reconcile(site, get_exchange_client(site)).ok
    set_balance(sandbox, "BTC", float(BTC + Decimal("0.0002")))
    assert not reconcile(site, get_exchange_client(site)).ok


def test_without_market_precision_the_sites_decimals_apply(sandbox: Path) -> None:
    set_balance(sandbox, "BTC", float(BTC + Decimal("0.00004")))
    site = load_site(sandbox)
    strict = reconcile(site, BalanceOnly(get_exchange_client(site)))  # default: 8 decimals
    assert not strict.ok and strict.discrepancies[0]["decimals"] == 8
    add_to_recovery_toml(sandbox, "[reconcile]\ndecimals = 4\n")
    site = load_site(sandbox)
    assert reconcile(site, BalanceOnly(get_exchange_client(site))).ok


@pytest.mark.parametrize(("places", "mode"), [(4, 2), (4, None), (3, 2)])
def test_precision_given_as_decimal_places(sandbox: Path, places: int, mode: int | None) -> None:
    """ccxt's DECIMAL_PLACES mode, or an integer >= 1 without a mode: a number of decimal places."""
    set_balance(sandbox, "BTC", float(BTC + Decimal("0.00004")))
    site = load_site(sandbox)
    result = reconcile(site, DecimalPlaces(get_exchange_client(site), places, mode))
    assert result.ok and {row["decimals"] for row in result.rows} == {places}


def test_a_whole_unit_tick_size(sandbox: Path) -> None:
    """precision 1 in TICK_SIZE mode is a tick of one whole unit, not one decimal place."""
    set_balance(sandbox, "BTC", float(BTC + Decimal("0.3")))  # 2.8669 rounds to 3, like 2.5669
    site = load_site(sandbox)
    result = reconcile(site, DecimalPlaces(get_exchange_client(site), 1, mode=4))
    assert result.ok and {row["decimals"] for row in result.rows} == {0}


def test_a_currency_without_a_position_is_a_discrepancy_unless_it_is_zero_or_a_quote(sandbox: Path) -> None:
    set_balance(sandbox, "DOGE", 12.5)
    set_balance(sandbox, "XMR", 0.0)
    site = load_site(sandbox)
    result = reconcile(site, get_exchange_client(site))
    assert not result.ok
    assert result.discrepancies == [
        {"symbol": "DOGE", "position": 0.0, "exchange": 12.5, "difference": 12.5, "decimals": 8, "matches": False}
    ]
    assert "USD" not in {row["symbol"] for row in result.rows}


def test_positions_given_by_the_caller_are_used_instead_of_the_file(sandbox: Path) -> None:
    site = load_site(sandbox)
    exchange = get_exchange_client(site)
    held = {row["symbol"]: Decimal(str(row["position"])) for row in reconcile(site, exchange).rows}
    assert reconcile(site, exchange, held).ok
    result = reconcile(site, exchange, held | {"BTC/USD": BTC - 1})
    assert [row["symbol"] for row in result.discrepancies] == ["BTC/USD"]


def test_an_unreachable_exchange_is_a_result_not_an_exception(sandbox: Path) -> None:
    (sandbox / "exchange/account.json").unlink()
    site = load_site(sandbox)
    result = reconcile(site, get_exchange_client(site))
    assert not result.ok and result.rows == [] and "account.json is missing" in (result.error or "")
    assert result.summary().startswith("reconciliation impossible: the exchange cannot be asked: ExchangeError")
    with pytest.raises(ExchangeError, match="account.json is missing"):
        reconcile_positions(site, get_exchange_client(site))


def test_any_client_error_is_a_result_not_an_exception(sandbox: Path) -> None:
    class NetworkError(Exception):  # what ccxt raises when the network is down
        pass

    class Down(BalanceOnly):
        def fetch_balance(self) -> dict[str, Any]:
            raise NetworkError("kraken GET https://api.kraken.com/0/private/Balance timed out")

    site = load_site(sandbox)
    result = reconcile(site, Down(get_exchange_client(site)))
    assert not result.ok and result.error == (
        "the exchange cannot be asked: NetworkError: kraken GET https://api.kraken.com/0/private/Balance timed out"
    )


def test_an_unreadable_positions_file_is_named(sandbox: Path) -> None:
    (sandbox / "data/positions.csv").unlink()
    site = load_site(sandbox)
    result = reconcile(site, get_exchange_client(site))
    assert not result.ok and (result.error or "").startswith("data/positions.csv cannot be read")
    (sandbox / "data/positions.csv").write_text("symbol,quantity,avg_price\nBTC/USD,two,1.0\n")
    result = reconcile(site, get_exchange_client(site))
    assert "data/positions.csv line 2: quantity 'two' is not a number" in (result.error or "")


def test_reconcile_positions_keeps_its_table_for_existing_callers(sandbox: Path) -> None:
    site = load_site(sandbox)
    table = reconcile_positions(site, get_exchange_client(site))
    assert list(table.columns) == ["symbol", "restored", "exchange", "difference", "decimals", "matches"]
    assert len(table) == 8 and bool(table["matches"].all())
