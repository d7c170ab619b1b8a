"""``positions.csv`` from the trades: the one formatter of positions, exact to the last unit."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal

from recovery_lib.trading.ledger.rows import trade_totals
from recovery_lib.trading.ledger.trade import Trade

POSITIONS_HEADER = "symbol,quantity,avg_price"


def units_text(units: int, decimals: int) -> str:
    """Integer units of 10**-decimals as fixed-point text: (-25669, 4) -> "-2.5669"."""
    sign = "-" if units < 0 else ""
    whole, fraction = divmod(abs(units), 10**decimals)
    return f"{sign}{whole}.{fraction:0{decimals}d}" if decimals else f"{sign}{whole}"


def positions_text(
    net: Mapping[str, int],
    bought: Mapping[str, int],
    notional: Mapping[str, int],
    quantity_decimals: int,
    price_decimals: int,
) -> str:
    """``positions.csv`` from exact totals in integer units (the one formatter of positions).

    ``notional`` is in units of 10**-(quantity_decimals + price_decimals). avg_price is the
    volume-weighted average buy price to 6 decimals, computed as the sandbox always has (float
    division of the exact integers), so every writer produces the same bytes.
    """
    lines = [POSITIONS_HEADER]
    for symbol in sorted(net):
        units_bought = bought.get(symbol, 0)
        average = notional.get(symbol, 0) / units_bought / 10**price_decimals if units_bought else 0.0
        lines.append(f"{symbol},{units_text(net[symbol], quantity_decimals)},{average:.6f}")
    return "\n".join(lines) + "\n"


def positions_csv(trades: Iterable[Trade]) -> str:
    """``symbol,quantity,avg_price``: the exact net of the trades at the ledger's decimals (the most any
    quantity has: 4 in the sandbox) and the volume-weighted average buy price to 6 decimals,
    byte-identical to what the sandbox generator and ``live_ops`` write for the same trades."""
    totals = trade_totals(trades)
    return positions_text(totals.net, totals.bought, totals.notional, totals.quantity_decimals, totals.price_decimals)


def positions_of(trades: Iterable[Trade]) -> dict[str, Decimal]:
    """Net quantity per symbol (buys minus sells), exact."""
    totals = trade_totals(trades)
    return {symbol: Decimal(units_text(units, totals.quantity_decimals)) for symbol, units in totals.net.items()}
