"""The trades of a ledger stored column-wise (:class:`TradeRows`), and their exact totals.

A ledger of millions of rows is held as the file's bytes and one number per row and field (about
200 MB for the 2M-trade sandbox, where one Python object per row would take 1.4 GB); a
:class:`~recovery_lib.trading.ledger.trade.Trade` is built only when one is asked for. Totals per
symbol are exact: integer units in int64 chunks that cannot overflow, or Decimal arithmetic that
refuses to round when a number does not fit the columns.
"""

from __future__ import annotations

import decimal
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, overload

import numpy as np

from recovery_lib.trading.ledger.trade import ENCODING, MAX_DIGITS, Trade, decimal_units, parse_row


def numeric_fields(trade: Trade, symbols: dict[str, int]) -> tuple[bool, dict[str, int | bool]]:
    """A trade's column values (symbol code, side, quantity and price in integer units) and whether
    they fit the int64 columns exactly; one that does not is stored as 0 and takes the slow path."""
    qty, qdec = decimal_units(trade.quantity)
    px, pdec = decimal_units(trade.price)
    fits = max(abs(qty), abs(px)) < 2**63 and max(qdec, pdec) <= MAX_DIGITS
    values: dict[str, int | bool] = {
        "ids": trade.trade_id,
        "sym": symbols.setdefault(trade.symbol, len(symbols)),
        "buy": trade.side == "buy",
        "qty": qty if fits else 0,
        "qdec": qdec,
        "px": px if fits else 0,
        "pdec": pdec,
    }
    return fits, values


_COLUMNS = ("buf", "start", "end", "ids", "sym", "buy", "qty", "qdec", "px", "pdec")
_DTYPES = {
    "buf": np.int32,
    "start": np.int64,
    "end": np.int64,
    "ids": np.int64,
    "sym": np.int32,
    "buy": np.bool_,
    "qty": np.int64,
    "qdec": np.int16,
    "px": np.int64,
    "pdec": np.int16,
}


class TradeRows(Sequence[Trade]):
    """Trades in ledger order, stored column-wise: a read-only sequence of :class:`Trade`.

    Indexing and iteration build each :class:`Trade` from its row text on demand; ``len``, ids,
    concatenation (``rows + [trade]``), selection and positions work on the columns. ``list(rows)``
    gives plain Trade objects.
    """

    __slots__ = ("_buffers", "_symbols", "_exact", *(f"_{name}" for name in _COLUMNS))

    def __init__(
        self,
        buffers: tuple[bytes, ...],
        symbols: tuple[str, ...],
        columns: Mapping[str, np.ndarray],
        exact: bool = True,
    ) -> None:
        self._buffers = buffers
        self._symbols = symbols
        self._exact = exact  # False: some quantity or price does not fit the int64 columns
        for name in _COLUMNS:
            setattr(self, f"_{name}", np.asarray(columns[name], dtype=_DTYPES[name]))

    # construction

    @classmethod
    def empty(cls) -> TradeRows:
        """No trades."""
        return cls((), (), {name: np.empty(0, _DTYPES[name]) for name in _COLUMNS})

    @classmethod
    def from_trades(cls, trades: Iterable[Trade]) -> TradeRows:
        """Trades given as objects (fills, hand-made rows). Each line must parse to its own trade."""
        if isinstance(trades, TradeRows):
            return trades
        trades = list(trades)
        if not trades:
            return cls.empty()
        encoded, columns = [], {name: [] for name in _COLUMNS}
        symbols: dict[str, int] = {}
        exact, offset = True, 0
        for trade in trades:
            if "\n" in trade.line or parse_row(trade.line) != trade:
                raise ValueError(
                    f"trade {trade.trade_id}: its line {trade.line!r} is not the row of this trade; "
                    "build trades with parse_row() or trade_from_fill() so that what is written is what is counted"
                )
            data = trade.line.encode(*ENCODING)
            fits, numeric = numeric_fields(trade, symbols)
            exact = exact and fits
            values = {"buf": 0, "start": offset, "end": offset + len(data), **numeric}
            for name, value in values.items():
                columns[name].append(value)
            encoded.append(data)
            offset += len(data) + 1
        return cls((b"\n".join(encoded),), tuple(symbols), columns, exact)

    @classmethod
    def concat(cls, parts: Iterable[Iterable[Trade]]) -> TradeRows:
        """One sequence of the parts in order (TradeRows or any iterable of Trade)."""
        blocks = [part if isinstance(part, TradeRows) else cls.from_trades(part) for part in parts]
        blocks = [block for block in blocks if len(block)]
        if not blocks:
            return cls.empty()
        if len(blocks) == 1:
            return blocks[0]
        buffers: list[bytes] = []
        symbols: dict[str, int] = {}
        columns: dict[str, list[np.ndarray]] = {name: [] for name in _COLUMNS}
        for block in blocks:
            remap = np.array([symbols.setdefault(name, len(symbols)) for name in block._symbols], dtype=np.int32)
            for name in _COLUMNS:
                values = getattr(block, f"_{name}")
                if name == "buf":
                    values = values + len(buffers)
                elif name == "sym":
                    values = remap[values]
                columns[name].append(values)
            buffers.extend(block._buffers)
        merged = {name: np.concatenate(values) for name, values in columns.items()}
        return cls(tuple(buffers), tuple(symbols), merged, all(block._exact for block in blocks))

    def take(self, indices: Any) -> TradeRows:
        """The rows at ``indices`` (an index array or a boolean mask), in that order."""
        columns = {name: getattr(self, f"_{name}")[indices] for name in _COLUMNS}
        return TradeRows(self._buffers, self._symbols, columns, self._exact)

    # the sequence

    def __len__(self) -> int:
        return int(self._ids.size)

    def line_of(self, index: int) -> str:
        """The row text of trade ``index`` (cheaper than building the Trade)."""
        buffer = self._buffers[int(self._buf[index])]
        return buffer[int(self._start[index]) : int(self._end[index])].decode(*ENCODING)

    def _trade(self, index: int) -> Trade:
        trade = parse_row(self.line_of(index))
        assert trade is not None, "rows are stored only after they parsed"
        return trade

    @overload
    def __getitem__(self, index: int) -> Trade: ...

    @overload
    def __getitem__(self, index: slice) -> TradeRows: ...

    def __getitem__(self, index: int | slice) -> Trade | TradeRows:
        if isinstance(index, slice):
            return self.take(index)
        if not -len(self) <= index < len(self):
            raise IndexError(f"trade index {index} out of range ({len(self)} trades)")
        return self._trade(index % len(self))

    def __iter__(self) -> Iterator[Trade]:
        for index in range(len(self)):
            yield self._trade(index)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str | bytes):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]  # mutable-looking equality, like list

    def __add__(self, other: Iterable[Trade]) -> TradeRows:
        return TradeRows.concat([self, other])

    def __radd__(self, other: Iterable[Trade]) -> TradeRows:
        return TradeRows.concat([other, self])

    def __repr__(self) -> str:
        return f"<TradeRows: {len(self)} trades>"

    # columns

    @property
    def id_array(self) -> np.ndarray:
        """The trade ids in row order (read-only int64 array)."""
        view = self._ids.view()
        view.flags.writeable = False
        return view

    @property
    def symbols(self) -> list[str]:
        """The symbols that occur, sorted."""
        return sorted(self._symbols[code] for code in np.unique(self._sym))

    def write_to(self, handle: Any) -> None:
        """Write every row and its newline to a binary file, copying runs of adjacent rows at once."""
        if not len(self):
            return
        # A run continues while the next row starts right after this row's newline in the same buffer.
        breaks = np.flatnonzero((self._buf[1:] != self._buf[:-1]) | (self._start[1:] != self._end[:-1] + 1)) + 1
        firsts = np.concatenate(([0], breaks))
        lasts = np.concatenate((breaks - 1, [len(self) - 1]))
        for first, last in zip(firsts.tolist(), lasts.tolist(), strict=True):
            buffer = self._buffers[int(self._buf[first])]
            handle.write(memoryview(buffer)[int(self._start[first]) : int(self._end[last])])
            handle.write(b"\n")

    def totals(self) -> Totals:
        """Exact per-symbol net, bought quantity and bought notional in integer units."""
        if not self._exact or not len(self):
            return totals_of_objects(iter(self))
        qdec, pdec = int(self._qdec.max()), int(self._pdec.max())
        qty = _rescale(self._qty, self._qdec, qdec)
        px = _rescale(self._px, self._pdec, pdec)
        if qty is None or px is None:
            return totals_of_objects(iter(self))
        big = int(np.abs(qty).max()) * max(int(np.abs(px).max()), 1)
        if big >= 2**63:
            return totals_of_objects(iter(self))
        signed = np.where(self._buy, qty, -qty)
        bought = np.where(self._buy, qty, 0)
        notional = np.where(self._buy, qty * px, 0)
        codes, count = self._sym, len(self._symbols)
        net_sum = _group_sum(codes, signed, count, int(np.abs(qty).max()))
        bought_sum = _group_sum(codes, bought, count, int(np.abs(qty).max()))
        notional_sum = _group_sum(codes, notional, count, big)
        present = set(np.unique(codes).tolist())
        names = self._symbols
        return Totals(
            net={names[i]: net_sum[i] for i in present},
            bought={names[i]: bought_sum[i] for i in present},
            notional={names[i]: notional_sum[i] for i in present},
            quantity_decimals=qdec,
            price_decimals=pdec,
        )


def _rescale(units: np.ndarray, decimals: np.ndarray, target: int) -> np.ndarray | None:
    """``units`` at ``decimals`` re-expressed at ``target`` decimals, or None if int64 would overflow."""
    shift = target - decimals.astype(np.int64)
    if not shift.any():
        return units
    if int(shift.max()) > MAX_DIGITS:
        return None
    factor = 10**shift
    if float(np.abs(units).max()) * float(factor.max()) >= 2**62:
        return None
    return units * factor


def _group_sum(codes: np.ndarray, values: np.ndarray, count: int, largest: int) -> list[int]:
    """Exact per-code sums as Python ints, in int64 chunks small enough never to overflow."""
    chunk = max(1, (2**63 - 1) // max(largest, 1))
    sums = [0] * count
    for first in range(0, values.size, chunk):
        part = np.zeros(count, dtype=np.int64)
        np.add.at(part, codes[first : first + chunk], values[first : first + chunk])
        sums = [total + int(value) for total, value in zip(sums, part.tolist(), strict=True)]
    return sums


@dataclass(frozen=True)
class Totals:
    """Per-symbol sums in integer units: quantities at ``quantity_decimals``, notional at both."""

    net: dict[str, int]
    bought: dict[str, int]
    notional: dict[str, int]  # units of 10**-(quantity_decimals + price_decimals)
    quantity_decimals: int
    price_decimals: int


def totals_of_objects(trades: Iterable[Trade]) -> Totals:
    """Exact totals of any iterable of trades, with Decimal arithmetic that refuses to round."""
    context = decimal.Context(prec=200, traps=[decimal.Inexact, decimal.InvalidOperation, decimal.Overflow])
    net: dict[str, Decimal] = {}
    bought: dict[str, Decimal] = {}
    notional: dict[str, Decimal] = {}
    qdec = pdec = 0
    with decimal.localcontext(context):
        for trade in trades:
            qdec = max(qdec, decimal_units(trade.quantity)[1])
            pdec = max(pdec, decimal_units(trade.price)[1])
            zero = Decimal(0)
            if trade.side == "buy":
                net[trade.symbol] = net.get(trade.symbol, zero) + trade.quantity
                bought[trade.symbol] = bought.get(trade.symbol, zero) + trade.quantity
                notional[trade.symbol] = notional.get(trade.symbol, zero) + trade.quantity * trade.price
            else:
                net[trade.symbol] = net.get(trade.symbol, zero) - trade.quantity
                bought.setdefault(trade.symbol, zero)
                notional.setdefault(trade.symbol, zero)
        return Totals(
            net={symbol: int(value.scaleb(qdec)) for symbol, value in net.items()},
            bought={symbol: int(value.scaleb(qdec)) for symbol, value in bought.items()},
            notional={symbol: int(value.scaleb(qdec + pdec)) for symbol, value in notional.items()},
            quantity_decimals=qdec,
            price_decimals=pdec,
        )


def trade_totals(trades: Iterable[Trade]) -> Totals:
    """Exact totals of any trades: from the columns for :class:`TradeRows`, else object by object."""
    return trades.totals() if isinstance(trades, TradeRows) else totals_of_objects(trades)
