"""Exchange clients with the ccxt interface the runbook uses.

``get_exchange_client()`` resolves the site like everything else and returns the simulated
exchange of a sandbox, or a real ccxt exchange configured in ``recovery.toml`` (``[exchange]
client = "ccxt"``) whose API keys are read from the environment variables it names, never
from files.

The simulated exchange is the sandbox's second source of truth, independent of the site: its
account (balances, last prices) and its fill log ``my_trades.csv`` live in ``exchange/``, outside
the backed-up paths, so a restore of the site's data never touches them. The fill log has the
ledger's columns and row text; it starts empty when the sandbox is created (the exchange's history
through this API begins then) and the sandbox's trading process appends every fill to it.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from recovery_lib import clock
from recovery_lib.errors import ExchangeError
from recovery_lib.site.config import Site, load_site
from recovery_lib.site.integrity import TRADE_COLUMNS
from recovery_lib.trading.ledger import Ledger, LedgerError, Trade, read_ledger

log = logging.getLogger(__name__)

SIMULATED_ACCOUNT_FILE = "account.json"
SIMULATED_FILLS_FILE = "my_trades.csv"  # the exchange's fill log: the ledger's columns and row text
SIMULATED_TICK = 0.0001  # amount and price precision of every simulated market (ccxt TICK_SIZE style)
TICK_SIZE = 4  # ccxt's precisionMode constant: precision values are tick sizes, not decimal places
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class SimulatedExchange:
    """The sandbox's exchange: an account file outside the backed-up paths.

    Reads the file on every call, so it sees what the sandbox's trading process wrote last.
    """

    id = "simulated"
    precisionMode = TICK_SIZE  # ccxt's attribute name
    has = {
        "fetchBalance": True,
        "fetchTicker": True,
        "fetchMyTrades": True,
        "fetchMarkets": True,
        "loadMarkets": True,
    }

    def __init__(self, account_path: Path) -> None:
        self.account_path = account_path
        self.fills_path = account_path.with_name(SIMULATED_FILLS_FILE)
        self.markets: dict[str, dict[str, Any]] | None = None

    def _account(self) -> dict[str, Any]:
        try:
            account = json.loads(self.account_path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ExchangeError(f"simulated exchange unreachable: {self.account_path} is missing") from exc
        except (OSError, ValueError) as exc:
            raise ExchangeError(f"simulated exchange unreachable: {self.account_path} is unreadable ({exc})") from exc
        if not isinstance(account, dict) or not isinstance(account.get("balances"), dict):
            raise ExchangeError(f"simulated exchange unreachable: {self.account_path} has no balances")
        return account

    def fetch_balance(self) -> dict[str, Any]:
        """Balances in ccxt's shape: ``{"total": {...}, "free": {...}, "used": {...}, "BTC": {...}}``."""
        account = self._account()
        totals = {currency: float(amount) for currency, amount in account["balances"].items()}
        balance: dict[str, Any] = {
            "info": account,
            "total": dict(totals),
            "free": dict(totals),
            "used": {currency: 0.0 for currency in totals},
        }
        for currency, amount in totals.items():
            balance[currency] = {"free": amount, "used": 0.0, "total": amount}
        return balance

    def fetch_ticker(self, symbol: str) -> dict[str, Any]:
        """The last traded price of ``symbol`` in ccxt's ticker shape."""
        tickers = self._account().get("tickers", {})
        if symbol not in tickers:
            known = ", ".join(sorted(tickers)) or "none"
            raise ExchangeError(f"simulated exchange has no market {symbol!r}; markets: {known}")
        last = float(tickers[symbol])
        now = clock.now()
        return {
            "symbol": symbol,
            "last": last,
            "bid": last,
            "ask": last,
            "close": last,
            "timestamp": int(now.timestamp() * 1000),
            "datetime": now.isoformat().replace("+00:00", "Z"),
            "info": {"source": str(self.account_path.name)},
        }

    def load_markets(self, reload: bool = False, params: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
        """Every market the account quotes, in ccxt's shape, with tick-size precision (``precisionMode``)."""
        markets: dict[str, dict[str, Any]] = {}
        for symbol in sorted(self._account().get("tickers", {})):
            base, _, quote = symbol.partition("/")
            markets[symbol] = {
                "id": symbol.replace("/", ""),
                "symbol": symbol,
                "base": base,
                "quote": quote,
                "type": "spot",
                "spot": True,
                "active": True,
                "precision": {"amount": SIMULATED_TICK, "price": SIMULATED_TICK},
                "limits": {"amount": {"min": SIMULATED_TICK, "max": None}},
            }
        self.markets = markets
        return markets

    def _fill_log(self) -> Ledger:
        try:
            fill_log = read_ledger(self.fills_path, str(self.fills_path))
        except LedgerError as exc:
            raise ExchangeError(f"simulated exchange unreachable: {exc}") from exc
        if not fill_log.exists:
            raise ExchangeError(
                f"simulated exchange unreachable: its fill log {self.fills_path} is missing "
                "(a sandbox made before fill logs existed: recreate it with `recovery sandbox create --force`)"
            )
        if fill_log.header_missing or fill_log.invalid_lines or fill_log.duplicates():
            problems = "; ".join(fill_log.problems())
            raise ExchangeError(f"simulated exchange unreachable: its fill log is damaged: {problems}")
        return fill_log

    def fetch_my_trades(
        self,
        symbol: str | None = None,
        since: int | None = None,
        limit: int | None = None,
        params: dict[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        """The account's fills in ccxt's unified trade structure, oldest first.

        ``symbol`` filters one market; ``since`` (ms, inclusive) drops older fills; ``limit`` keeps the
        oldest ``limit`` of the rest. ``info`` holds the row's exact field strings. A last line still
        being written (no final newline yet) is not reported.
        """
        fill_log = self._fill_log()
        trades = fill_log.trades
        if fill_log.unterminated_last_row:
            trades = trades[: len(trades) - 1]
        fills = []
        for trade in trades:
            if symbol is not None and trade.symbol != symbol:
                continue
            milliseconds = self._milliseconds(trade)
            if since is not None and milliseconds < since:
                continue
            fills.append(_unified_trade(trade, milliseconds))
        fills.sort(key=lambda fill: (fill["timestamp"], int(fill["id"])))
        log.debug("simulated exchange: %d fill(s) for %s since %s ms", len(fills), symbol or "all symbols", since)
        return fills if limit is None else fills[: max(limit, 0)]

    def _milliseconds(self, trade: Trade) -> int:
        try:
            moment = clock.parse(trade.timestamp)
        except ValueError as exc:
            raise ExchangeError(
                f"simulated exchange: fill {trade.trade_id} in {self.fills_path} has no valid timestamp "
                f"({trade.timestamp!r})"
            ) from exc
        assert moment is not None  # a parsed row never has an empty timestamp
        return (moment - _EPOCH) // timedelta(milliseconds=1)


def _ccxt_client(site: Site) -> Any:
    spec = site.exchange
    try:
        import ccxt  # optional extra: recovery_lib[ccxt]
    except ImportError as exc:
        raise ExchangeError(
            "recovery.toml asks for a ccxt exchange but ccxt is not installed; "
            "install it with: pip install 'recovery_lib[ccxt]'"
        ) from exc
    if not spec.exchange_id:
        raise ExchangeError('recovery.toml [exchange] client = "ccxt" needs exchange_id (e.g. "kraken")')
    factory = getattr(ccxt, spec.exchange_id, None)
    if factory is None:
        raise ExchangeError(f"ccxt has no exchange {spec.exchange_id!r} ([exchange] exchange_id in recovery.toml)")
    options: dict[str, Any] = {"enableRateLimit": True}
    for option, variable in (("apiKey", spec.api_key_env), ("secret", spec.secret_env)):
        if variable:
            value = os.environ.get(variable)
            if not value:
                raise ExchangeError(
                    f"environment variable {variable} (named by [exchange] in recovery.toml) is not set; "
                    "export it before running, the key is never read from a file"
                )
            options[option] = value
    return factory(options)


def get_exchange_client(site: str | os.PathLike[str] | Site | None = None) -> Any:
    """The exchange client of the site (argument, ``$RECOVERY_SITE`` or the current directory)."""
    resolved = load_site(site)
    kind = resolved.exchange.client
    if kind == "simulated":
        log.debug("site %s: the simulated exchange in %s", resolved.root, resolved.exchange.path)
        return SimulatedExchange(resolved.path(resolved.exchange.path) / SIMULATED_ACCOUNT_FILE)
    if kind == "ccxt":
        # The exchange's name only: the keys stay in the environment and out of the log.
        log.info("site %s: ccxt exchange %s", resolved.root, resolved.exchange.exchange_id)
        return _ccxt_client(resolved)
    log.warning("site %s has no exchange client configured", resolved.root)
    raise ExchangeError(
        f"no exchange client is configured for site {resolved.root}; "
        'set [exchange] client = "ccxt" (or "simulated" in a sandbox) in recovery.toml'
    )


def _unified_trade(trade: Trade, milliseconds: int) -> dict[str, Any]:
    """ccxt's unified trade structure for one fill of the log."""
    moment = _EPOCH + timedelta(milliseconds=milliseconds)
    return {
        "id": str(trade.trade_id),
        "order": None,
        "timestamp": milliseconds,
        "datetime": moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{milliseconds % 1000:03d}Z",
        "symbol": trade.symbol,
        "type": None,
        "side": trade.side,
        "takerOrMaker": None,
        "price": float(trade.price),
        "amount": float(trade.quantity),
        "cost": float(trade.quantity * trade.price),
        "fee": None,
        "info": dict(zip(TRADE_COLUMNS, trade.line.split(","), strict=True)),
    }
