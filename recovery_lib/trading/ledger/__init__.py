"""The trade ledger (``data/trades.csv``): read tolerantly, diagnosed, repaired exactly.

A ledger is ``trade_id,timestamp,symbol,side,quantity,price`` rows under that header. Reading never
fails on a damaged file: each problem is named (a missing header, duplicated ids, a torn last row,
rows that do not parse) so that a repair can say exactly what it drops and what that loses.

Every :class:`Trade` keeps its row text byte for byte (``line``): a repair or a replay rewrites the
rows it keeps exactly as they were written.

One module per stage, each importing only those above it:

- :mod:`.trade`: one trade, the reference parser of a row, a fill of the exchange as a row
- :mod:`.rows`: :class:`TradeRows`, trades stored column-wise, and their exact totals
- :mod:`.read`: :func:`read_ledger`, the tolerant reader, and :class:`Ledger`, what is wrong
- :mod:`.positions`: ``positions.csv`` from the trades
- :mod:`.repair`: :func:`plan_repair`, what an exact repair keeps and drops (writes nothing)
- :mod:`.write`: :func:`write_ledger`, trades and positions written atomically

The names below are the ledger's public surface: import them from here.
"""

from recovery_lib.errors import LedgerError
from recovery_lib.trading.ledger.positions import (
    POSITIONS_HEADER,
    positions_csv,
    positions_of,
    positions_text,
    units_text,
)
from recovery_lib.trading.ledger.read import Ledger, read_ledger
from recovery_lib.trading.ledger.repair import (
    CONFLICT_EXCHANGE,
    CONFLICT_FIRST,
    DIFFERS,
    EXACT_COPY,
    SAME_TRADE,
    TORN,
    UNPARSEABLE,
    LedgerRepair,
    plan_repair,
)
from recovery_lib.trading.ledger.rows import TradeRows
from recovery_lib.trading.ledger.trade import ENCODING, HEADER, MAX_DIGITS, SIDES, Trade, parse_row, trade_from_fill
from recovery_lib.trading.ledger.write import WRITE_LOCK_TIMEOUT_S, write_ledger

__all__ = [
    "CONFLICT_EXCHANGE",
    "CONFLICT_FIRST",
    "DIFFERS",
    "ENCODING",
    "EXACT_COPY",
    "HEADER",
    "MAX_DIGITS",
    "POSITIONS_HEADER",
    "SAME_TRADE",
    "SIDES",
    "TORN",
    "UNPARSEABLE",
    "WRITE_LOCK_TIMEOUT_S",
    "Ledger",
    "LedgerError",
    "LedgerRepair",
    "Trade",
    "TradeRows",
    "parse_row",
    "plan_repair",
    "positions_csv",
    "positions_of",
    "positions_text",
    "read_ledger",
    "trade_from_fill",
    "units_text",
    "write_ledger",
]
