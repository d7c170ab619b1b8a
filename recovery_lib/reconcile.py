"""Reconciling restored positions with the exchange (Procedure B, step 8).

Positions are per market (``BTC/USD``); exchange balances are per currency (``BTC``). Each market's
base currency is compared; differences beyond the tolerance are discrepancies.
"""

from __future__ import annotations

from typing import Any

from .site import Site

TOLERANCE = 1e-6


def reconcile_positions(site: Site, exchange: Any) -> Any:
    """A DataFrame (symbol, restored, exchange, difference, matches), one row per market."""
    import pandas as pd

    positions = pd.read_csv(site.path(site.positions_file), dtype={"symbol": str})
    totals = exchange.fetch_balance().get("total", {})
    rows = []
    for symbol, quantity in zip(positions["symbol"], positions["quantity"], strict=True):
        base = symbol.split("/")[0]
        on_exchange = float(totals.get(base, 0.0))
        restored = float(quantity)
        difference = on_exchange - restored
        rows.append(
            {
                "symbol": symbol,
                "restored": restored,
                "exchange": on_exchange,
                "difference": difference,
                "matches": abs(difference) <= TOLERANCE * max(1.0, abs(on_exchange)),
            }
        )
    known = {s.split("/")[0] for s in positions["symbol"]}
    quote = {s.split("/")[1] for s in positions["symbol"] if "/" in s}
    for currency, amount in sorted(totals.items()):
        if currency not in known and currency not in quote and float(amount):
            rows.append(
                {
                    "symbol": currency,
                    "restored": 0.0,
                    "exchange": float(amount),
                    "difference": float(amount),
                    "matches": False,
                }
            )
    return pd.DataFrame(rows, columns=["symbol", "restored", "exchange", "difference", "matches"])
