"""One trade: its row format, the reference parser of a row, and a fill of the exchange as a row.

:func:`parse_row` holds the rules every reader of the ledger applies (the column reader of
:mod:`recovery_lib.trading.ledger.read` accepts a subset of them at numpy speed and hands every other
row to it), so a row means the same thing wherever it is read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from recovery_lib.errors import LedgerError
from recovery_lib.site.integrity import TRADE_COLUMNS

HEADER = ",".join(TRADE_COLUMNS)
SIDES = ("buy", "sell")
ENCODING = ("utf-8", "surrogateescape")  # bytes that are not UTF-8 survive a rewrite unchanged
MAX_DIGITS = 18  # numbers the column store holds exactly in int64; longer ones take the slow path


@dataclass(frozen=True, slots=True)
class Trade:
    """One trade of the ledger, or one fill of the exchange in the ledger's row format."""

    trade_id: int
    timestamp: str
    symbol: str
    side: str  # "buy" | "sell"
    quantity: Decimal
    price: Decimal
    line: str  # the row exactly as written (no newline): replays and repairs keep it byte for byte

    def same_trade(self, other: Trade) -> bool:
        """The same fill: id, symbol, side, quantity and price equal (timestamps are not compared:
        a site may stamp a fill with its own clock, an exchange with the matching engine's)."""
        return (self.trade_id, self.symbol, self.side, self.quantity, self.price) == (
            other.trade_id,
            other.symbol,
            other.side,
            other.quantity,
            other.price,
        )


def _number(text: str) -> Decimal | None:
    if not text or "_" in text:  # Decimal("1_000") is valid Python, not a CSV number
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def parse_row(line: str) -> Trade | None:
    """The trade in ``line`` (no newline), or None if it does not parse.

    Six comma-separated fields; surrounding whitespace is ignored; trade_id is a non-negative
    integer below 2**63; timestamp and symbol are not empty; side is ``buy`` or ``sell``; quantity is
    a positive number; price is a number.
    """
    parts = line.split(",")
    if len(parts) != 6:
        return None
    trade_id, timestamp, symbol, side, quantity_text, price_text = (part.strip() for part in parts)
    if not (trade_id.isascii() and trade_id.isdigit()) or int(trade_id) >= 2**63:
        return None
    if not timestamp or not symbol or side not in SIDES:
        return None
    quantity, price = _number(quantity_text), _number(price_text)
    if quantity is None or price is None or quantity <= 0:
        return None
    return Trade(int(trade_id), timestamp, symbol, side, quantity, price, line)


def decimal_units(value: Decimal) -> tuple[int, int]:
    """``value`` as (integer units, decimals): Decimal("1.2300") -> (12300, 4)."""
    exponent = value.as_tuple().exponent
    decimals = max(-int(exponent), 0)  # exponent is an int for finite values
    return int(value.scaleb(decimals)), decimals


def leading_id(text: str) -> int | None:
    """The trade id a damaged row still shows (its first field), if any."""
    first = text.split(",", 1)[0].strip()
    return int(first) if first.isascii() and first.isdigit() and int(first) < 2**63 else None


def trade_from_fill(fill: Mapping[str, Any]) -> Trade:
    """A ccxt trade structure (``fetch_my_trades``) as a ledger Trade.

    When ``info`` carries the ledger's six fields (the simulated exchange), the row is rebuilt from
    those exact strings; otherwise from the unified fields (``id``, ``timestamp`` in ms, ``symbol``,
    ``side``, ``amount``, ``price``). Raises :class:`LedgerError` for a fill that makes no valid row,
    e.g. a non-integer id: a site's trade_id is the exchange's trade id.
    """
    info = fill.get("info")
    if isinstance(info, Mapping) and all(isinstance(info.get(column), str) for column in TRADE_COLUMNS):
        line = ",".join(info[column] for column in TRADE_COLUMNS)
    else:
        line = ",".join(
            [
                str(fill.get("id")),
                _stamp_of_ms(fill.get("timestamp")),
                str(fill.get("symbol")),
                str(fill.get("side")),
                _decimal_text(fill.get("amount")),
                _decimal_text(fill.get("price")),
            ]
        )
    trade = parse_row(line)
    if trade is None:
        raise LedgerError(
            f"the exchange's fill {fill.get('id')!r} does not make a ledger row ({line!r}); trade ids must be "
            "integers (a site's trade_id is the exchange's trade id) and quantity/price numbers"
        )
    return trade


def _decimal_text(value: Any) -> str:
    if value is None:
        return ""
    number = Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value))
    return format(number, "f")


def _stamp_of_ms(value: Any) -> str:
    if not isinstance(value, int | float):
        return ""
    moment = datetime.fromtimestamp(int(value) / 1000, UTC)
    if int(value) % 1000:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(value) % 1000:03d}Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
