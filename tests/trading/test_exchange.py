"""Exchange clients: the sandbox's simulated exchange and the ccxt adapter (with a fake ccxt module)."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from recovery_lib import health_check
from recovery_lib.errors import ExchangeError, RecoveryError
from recovery_lib.trading.exchange import SimulatedExchange, get_exchange_client

# Verification step 4 of the runbook, verbatim except for its import.
VERIFICATION_4 = """
# Check exchange connectivity
from recovery_lib.trading.exchange import get_exchange_client

try:
    exchange = get_exchange_client()
    ticker = exchange.fetch_ticker("BTC/USD")
    print(f"✅ Exchange connectivity: {ticker['last']}")
except Exception as e:
    print(f"❌ Exchange connectivity failed: {e}")
"""


def account(sandbox: Path) -> dict[str, Any]:
    return json.loads((sandbox / "exchange/account.json").read_text())


def set_exchange_section(sandbox: Path, section: str) -> None:
    """Replace everything from [exchange] on (the section is last in the sandbox's recovery.toml)."""
    recovery = sandbox / "recovery.toml"
    text = recovery.read_text()
    assert text.count("[exchange]") == 1 and 'client = "simulated"' in text[text.index("[exchange]") :]
    recovery.write_text(text[: text.index("[exchange]")] + section)


# --- simulated --------------------------------------------------------------------------------


def test_simulated_client_of_a_sandbox(sandbox: Path) -> None:
    client = get_exchange_client(sandbox)
    assert isinstance(client, SimulatedExchange)
    assert client.id == "simulated"
    assert client.account_path == sandbox.resolve() / "exchange/account.json"


def test_fetch_balance_has_ccxt_shape(sandbox: Path) -> None:
    balances = account(sandbox)["balances"]
    balance = get_exchange_client(sandbox).fetch_balance()
    assert balance["total"] == balances
    assert balance["free"] == balances
    assert balance["used"] == dict.fromkeys(balances, 0.0)
    assert balance["info"] == account(sandbox)
    for currency, amount in balances.items():
        assert balance[currency] == {"free": amount, "used": 0.0, "total": amount}
    assert set(balance) == {"info", "total", "free", "used", *balances}
    assert balance["BTC"]["total"] == 2.5669 and balance["USD"]["total"] == 250000.0


def test_fetch_ticker(sandbox: Path) -> None:
    expected = account(sandbox)["tickers"]["BTC/USD"]
    ticker = get_exchange_client(sandbox).fetch_ticker("BTC/USD")
    assert ticker["symbol"] == "BTC/USD"
    assert ticker["last"] == ticker["bid"] == ticker["ask"] == ticker["close"] == expected
    assert isinstance(ticker["timestamp"], int) and ticker["datetime"].endswith("Z")


def test_simulated_exchange_reads_the_account_on_every_call(sandbox: Path) -> None:
    client = get_exchange_client(sandbox)
    data = account(sandbox)
    data["tickers"]["BTC/USD"] = 50000.5
    (sandbox / "exchange/account.json").write_text(json.dumps(data))
    assert client.fetch_ticker("BTC/USD")["last"] == 50000.5


def test_unknown_symbol_names_the_markets(sandbox: Path) -> None:
    with pytest.raises(ExchangeError, match="no market 'DOGE/USD'") as error:
        get_exchange_client(sandbox).fetch_ticker("DOGE/USD")
    for market in account(sandbox)["tickers"]:
        assert market in str(error.value)


@pytest.mark.parametrize(
    ("content", "says"),
    [(None, "is missing"), ("{broken", "is unreadable"), ('{"tickers": {}}', "has no balances")],
)
def test_unreachable_simulated_exchange(sandbox: Path, content: str | None, says: str) -> None:
    path = sandbox / "exchange/account.json"
    if content is None:
        path.unlink()
    else:
        path.write_text(content)
    client = get_exchange_client(sandbox)  # building the client needs no account; using it does
    with pytest.raises(ExchangeError, match=f"simulated exchange unreachable: .*account.json {says}"):
        client.fetch_balance()


def test_runbook_verification_4(sandbox: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.chdir(sandbox)
    exec(VERIFICATION_4, {})
    assert capsys.readouterr().out == f"✅ Exchange connectivity: {account(sandbox)['tickers']['BTC/USD']}\n"


def test_runbook_verification_4_reports_failure(
    sandbox: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    (sandbox / "exchange/account.json").unlink()
    monkeypatch.chdir(sandbox)
    exec(VERIFICATION_4, {})
    out = capsys.readouterr().out
    assert out.startswith("❌ Exchange connectivity failed: simulated exchange unreachable:")
    assert "exchange/account.json is missing" in out


# --- not configured ---------------------------------------------------------------------------


def test_client_none_tells_how_to_configure(sandbox: Path) -> None:
    set_exchange_section(sandbox, '[exchange]\nclient = "none"\n')
    with pytest.raises(ExchangeError, match=r'set \[exchange\] client = "ccxt"') as error:
        get_exchange_client(sandbox)
    assert isinstance(error.value, RecoveryError)


def test_site_without_recovery_toml_has_no_client(tmp_path: Path) -> None:
    with pytest.raises(ExchangeError, match="no exchange client is configured"):
        get_exchange_client(tmp_path)


# --- ccxt -------------------------------------------------------------------------------------

CCXT_SECTION = """[exchange]
client = "ccxt"
exchange_id = "kraken"
api_key_env = "PT_TEST_API_KEY"
secret_env = "PT_TEST_API_SECRET"
"""


class FakeKraken:
    id = "kraken"

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options

    def fetch_ticker(self, symbol: str) -> dict[str, Any]:
        return {"symbol": symbol, "last": 42.5}

    def fetch_balance(self) -> dict[str, Any]:
        return {"total": {"BTC": 1.0, "USD": 10.0}}


@pytest.fixture
def fake_ccxt(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    fake = types.ModuleType("ccxt")
    fake.kraken = FakeKraken  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "ccxt", fake)
    return fake


def test_ccxt_client_gets_keys_from_environment(
    sandbox: Path, fake_ccxt: types.ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_exchange_section(sandbox, CCXT_SECTION)
    monkeypatch.setenv("PT_TEST_API_KEY", "key-123")
    monkeypatch.setenv("PT_TEST_API_SECRET", "secret-456")
    client = get_exchange_client(sandbox)
    assert isinstance(client, FakeKraken)
    assert client.options == {"enableRateLimit": True, "apiKey": "key-123", "secret": "secret-456"}
    result = health_check.run("exchange", sandbox)
    assert result.healthy and result.message == "kraken: BTC/USD last 42.5, 2 balances"


def test_ccxt_without_key_variables_passes_no_keys(sandbox: Path, fake_ccxt: types.ModuleType) -> None:
    set_exchange_section(sandbox, '[exchange]\nclient = "ccxt"\nexchange_id = "kraken"\n')
    assert get_exchange_client(sandbox).options == {"enableRateLimit": True}


@pytest.mark.parametrize("missing", ["PT_TEST_API_KEY", "PT_TEST_API_SECRET"])
def test_ccxt_missing_environment_variable(
    sandbox: Path, fake_ccxt: types.ModuleType, monkeypatch: pytest.MonkeyPatch, missing: str
) -> None:
    set_exchange_section(sandbox, CCXT_SECTION)
    monkeypatch.setenv("PT_TEST_API_KEY", "key-123")
    monkeypatch.setenv("PT_TEST_API_SECRET", "secret-456")
    monkeypatch.delenv(missing)
    with pytest.raises(ExchangeError, match=f"environment variable {missing} .* is not set"):
        get_exchange_client(sandbox)
    result = health_check.run("exchange", sandbox)
    assert not result.healthy and missing in result.message


def test_ccxt_empty_environment_variable_counts_as_missing(
    sandbox: Path, fake_ccxt: types.ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_exchange_section(sandbox, CCXT_SECTION)
    monkeypatch.setenv("PT_TEST_API_KEY", "")
    monkeypatch.setenv("PT_TEST_API_SECRET", "secret-456")
    with pytest.raises(ExchangeError, match="PT_TEST_API_KEY"):
        get_exchange_client(sandbox)


def test_ccxt_unknown_exchange_id(sandbox: Path, fake_ccxt: types.ModuleType) -> None:
    set_exchange_section(sandbox, '[exchange]\nclient = "ccxt"\nexchange_id = "nosuchexchange"\n')
    with pytest.raises(ExchangeError, match="ccxt has no exchange 'nosuchexchange'"):
        get_exchange_client(sandbox)


def test_ccxt_needs_exchange_id(sandbox: Path, fake_ccxt: types.ModuleType) -> None:
    set_exchange_section(sandbox, '[exchange]\nclient = "ccxt"\n')
    with pytest.raises(ExchangeError, match="needs exchange_id"):
        get_exchange_client(sandbox)


def test_ccxt_not_installed(sandbox: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    set_exchange_section(sandbox, CCXT_SECTION)
    monkeypatch.setitem(sys.modules, "ccxt", None)  # makes `import ccxt` raise ImportError
    with pytest.raises(ExchangeError, match=r"ccxt is not installed.*pip install 'recovery_lib\[ccxt\]'"):
        get_exchange_client(sandbox)


# --- the fill log: fetch_my_trades, load_markets ---------------------------------------------------

FILL_KEYS = {
    "id",
    "order",
    "timestamp",
    "datetime",
    "symbol",
    "type",
    "side",
    "takerOrMaker",
    "price",
    "amount",
    "cost",
    "fee",
    "info",
}
COLUMNS = ("trade_id", "timestamp", "symbol", "side", "quantity", "price")


def trade_live(sandbox: Path, trades: int) -> None:
    """Let the sandbox's real trading process make ``trades`` trades, then stop."""
    done = subprocess.run(
        [sys.executable, "-m", "recovery_lib.sandbox.live_ops", "--site", str(sandbox), "--interval", "0.01"]
        + ["--max-trades", str(trades)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def ms(stamp: str) -> int:
    return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()) * 1000


def test_a_new_sandbox_exchange_knows_no_fill_yet(sandbox: Path) -> None:
    """The exchange's history through the API starts when the sandbox is created."""
    client = get_exchange_client(sandbox)
    assert client.has["fetchMyTrades"] is True
    assert client.fills_path == sandbox.resolve() / "exchange/my_trades.csv"
    assert client.fills_path.read_text() == ",".join(COLUMNS) + "\n"
    assert client.fetch_my_trades() == []


def test_fetch_my_trades_gives_ccxt_trades_with_the_rows_exact_text(sandbox: Path) -> None:
    trade_live(sandbox, 6)
    rows = (sandbox / "data/trades.csv").read_text().splitlines()[-6:]
    fills = get_exchange_client(sandbox).fetch_my_trades()
    assert len(fills) == 6
    for fill, row in zip(fills, rows, strict=True):
        trade_id, stamp, symbol, side, quantity, price = row.split(",")
        assert set(fill) == FILL_KEYS
        assert fill["info"] == dict(zip(COLUMNS, row.split(","), strict=True))
        assert fill["id"] == trade_id and fill["symbol"] == symbol and fill["side"] == side
        assert fill["timestamp"] == ms(stamp) and fill["datetime"] == stamp[:-1] + ".000Z"
        assert fill["amount"] == float(quantity) and fill["price"] == float(price)
        assert fill["cost"] == float(Decimal(quantity) * Decimal(price))
        assert fill["order"] is fill["type"] is fill["takerOrMaker"] is fill["fee"] is None


def write_fill_log(sandbox: Path, rows: list[str]) -> None:
    (sandbox / "exchange/my_trades.csv").write_text("\n".join([",".join(COLUMNS), *rows]) + "\n")


def test_fetch_my_trades_symbol_since_and_limit(sandbox: Path) -> None:
    write_fill_log(
        sandbox,
        [
            "501,2026-11-20T12:00:02Z,BTC/USD,buy,0.1000,43000.0000",
            "502,2026-11-20T12:00:00Z,ETH/USD,sell,1.0000,2300.0000",  # logged late: still reported in time order
            "503,2026-11-20T12:00:01Z,BTC/USD,sell,0.0500,43100.0000",
            "504,2026-11-20T12:00:03Z,BTC/USD,buy,0.2000,42900.0000",
        ],
    )
    client = get_exchange_client(sandbox)
    assert [f["id"] for f in client.fetch_my_trades()] == ["502", "503", "501", "504"]
    assert [f["id"] for f in client.fetch_my_trades("BTC/USD")] == ["503", "501", "504"]
    since = ms("2026-11-20T12:00:01Z")
    assert [f["id"] for f in client.fetch_my_trades(since=since)] == ["503", "501", "504"]  # inclusive
    assert [f["id"] for f in client.fetch_my_trades(since=since, limit=2)] == ["503", "501"]  # the oldest two
    assert [f["id"] for f in client.fetch_my_trades("ETH/USD", since=since)] == []
    assert client.fetch_my_trades(limit=0) == []


def test_a_fill_still_being_written_is_not_reported(sandbox: Path) -> None:
    write_fill_log(sandbox, ["501,2026-11-20T12:00:00Z,BTC/USD,buy,0.1000,43000.0000"])
    with (sandbox / "exchange/my_trades.csv").open("a") as handle:
        handle.write("502,2026-11-20T12:00:01Z,BTC/USD,buy,0.1000,430")  # no newline yet
    assert [f["id"] for f in get_exchange_client(sandbox).fetch_my_trades()] == ["501"]


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        ("missing", "its fill log .*exchange/my_trades.csv is missing"),
        ("garbage", "its fill log is damaged: .*my_trades.csv: 1 row\\(s\\) do not parse \\(line 2\\)"),
        ("duplicate", "its fill log is damaged: .*written more than once"),
    ],
)
def test_a_missing_or_damaged_fill_log_is_an_error_naming_it(sandbox: Path, damage: str, says: str) -> None:
    row = "501,2026-11-20T12:00:00Z,BTC/USD,buy,0.1000,43000.0000"
    if damage == "missing":
        (sandbox / "exchange/my_trades.csv").unlink()
    else:
        write_fill_log(sandbox, ["#garbage#", row] if damage == "garbage" else [row, row])
    with pytest.raises(ExchangeError, match=f"simulated exchange unreachable: {says}"):
        get_exchange_client(sandbox).fetch_my_trades()


def test_load_markets_has_ccxt_shape_with_tick_size_precision(sandbox: Path) -> None:
    client = get_exchange_client(sandbox)
    markets = client.load_markets()
    assert sorted(markets) == sorted(account(sandbox)["tickers"]) and client.markets == markets
    btc = markets["BTC/USD"]
    assert btc["symbol"] == "BTC/USD" and btc["base"] == "BTC" and btc["quote"] == "USD"
    assert btc["precision"] == {"amount": 0.0001, "price": 0.0001}
    assert client.precisionMode == 4  # ccxt.TICK_SIZE: precision values are tick sizes
