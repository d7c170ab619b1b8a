"""Exchange clients with the ccxt interface the runbook uses.

``get_exchange_client()`` resolves the site like everything else and returns the simulated
exchange of a sandbox, or a real ccxt exchange configured in ``recovery.toml`` (``[exchange]
client = "ccxt"``) whose API keys are read from the environment variables it names, never
from files.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .errors import ExchangeError
from .site import Site, load_site

SIMULATED_ACCOUNT_FILE = "account.json"


class SimulatedExchange:
    """The sandbox's exchange: an account file outside the backed-up paths.

    Reads the file on every call, so it sees what the sandbox's trading process wrote last.
    """

    id = "simulated"

    def __init__(self, account_path: Path) -> None:
        self.account_path = account_path

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
        now = datetime.now(UTC)
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
        return SimulatedExchange(resolved.path(resolved.exchange.path) / SIMULATED_ACCOUNT_FILE)
    if kind == "ccxt":
        return _ccxt_client(resolved)
    raise ExchangeError(
        f"no exchange client is configured for site {resolved.root}; "
        'set [exchange] client = "ccxt" (or "simulated" in a sandbox) in recovery.toml'
    )
