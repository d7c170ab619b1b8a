"""The trade ledger (``data/trades.csv``): read tolerantly, diagnosed, repaired exactly.

A ledger is ``trade_id,timestamp,symbol,side,quantity,price`` rows under that header. Reading never
fails on a damaged file: each problem is named (a missing header, duplicated ids, a torn last row,
rows that do not parse) so that a repair can say exactly what it drops and what that loses.

Every :class:`Trade` keeps its row text byte for byte (``line``): a repair or a replay rewrites the
rows it keeps exactly as they were written.

A ledger of millions of rows is read column-wise with numpy (about 2 s and 200 MB for the 2M-trade
sandbox, where one Python object per row would take 6 s and 1.4 GB): :class:`TradeRows` holds the
file's bytes and one number per row and field, and builds a :class:`Trade` only when one is asked
for. Rows in an unusual but valid form (spaces around fields, ``\\r\\n`` line ends, exponents)
are parsed one by one with exactly the same rules.
"""

from __future__ import annotations

import contextlib
import decimal
import fcntl
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, overload

import numpy as np

from recovery_lib.errors import RecoveryError
from recovery_lib.fsops.atomic import atomic_write_text, atomic_writer
from recovery_lib.fsops.flock import flock_within
from recovery_lib.site.config import Site
from recovery_lib.site.integrity import TRADE_COLUMNS
from recovery_lib.site.process import process_status

HEADER = ",".join(TRADE_COLUMNS)
POSITIONS_HEADER = "symbol,quantity,avg_price"
SIDES = ("buy", "sell")
ENCODING = ("utf-8", "surrogateescape")  # bytes that are not UTF-8 survive a rewrite unchanged
MAX_DIGITS = 18  # numbers the column store holds exactly in int64; longer ones take the slow path
WRITE_LOCK_TIMEOUT_S = 30.0


class LedgerError(RecoveryError):
    """The ledger cannot be read or written (the message names the file and what to do)."""


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


# --- parsing one row (the reference rules; the vectorised reader accepts a subset of them) ----------


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


def _units(value: Decimal) -> tuple[int, int]:
    """``value`` as (integer units, decimals): Decimal("1.2300") -> (12300, 4)."""
    exponent = value.as_tuple().exponent
    decimals = max(-int(exponent), 0)  # exponent is an int for finite values
    return int(value.scaleb(decimals)), decimals


def _numeric_fields(trade: Trade, symbols: dict[str, int]) -> tuple[bool, dict[str, int | bool]]:
    """A trade's column values (symbol code, side, quantity and price in integer units) and whether
    they fit the int64 columns exactly; one that does not is stored as 0 and takes the slow path."""
    qty, qdec = _units(trade.quantity)
    px, pdec = _units(trade.price)
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


def _leading_id(text: str) -> int | None:
    """The trade id a damaged row still shows (its first field), if any."""
    first = text.split(",", 1)[0].strip()
    return int(first) if first.isascii() and first.isdigit() and int(first) < 2**63 else None


# --- the column store -------------------------------------------------------------------------------

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
            fits, numeric = _numeric_fields(trade, symbols)
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

    def _totals(self) -> _Totals:
        """Exact per-symbol net, bought quantity and bought notional in integer units."""
        if not self._exact or not len(self):
            return _totals_of_objects(iter(self))
        qdec, pdec = int(self._qdec.max()), int(self._pdec.max())
        qty = _rescale(self._qty, self._qdec, qdec)
        px = _rescale(self._px, self._pdec, pdec)
        if qty is None or px is None:
            return _totals_of_objects(iter(self))
        big = int(np.abs(qty).max()) * max(int(np.abs(px).max()), 1)
        if big >= 2**63:
            return _totals_of_objects(iter(self))
        signed = np.where(self._buy, qty, -qty)
        bought = np.where(self._buy, qty, 0)
        notional = np.where(self._buy, qty * px, 0)
        codes, count = self._sym, len(self._symbols)
        net_sum = _group_sum(codes, signed, count, int(np.abs(qty).max()))
        bought_sum = _group_sum(codes, bought, count, int(np.abs(qty).max()))
        notional_sum = _group_sum(codes, notional, count, big)
        present = set(np.unique(codes).tolist())
        names = self._symbols
        return _Totals(
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


# --- the vectorised reader --------------------------------------------------------------------------


def _split_lines(array: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """Start and end (exclusive, newline not included) of every line; whether the last one ends in one."""
    newlines = np.flatnonzero(array == 10)
    starts = np.concatenate(([0], newlines + 1)).astype(np.int64)
    ends = np.concatenate((newlines, [array.size])).astype(np.int64)
    if starts[-1] == array.size:  # the file ends with a newline (or is empty): no line after it
        return starts[:-1], ends[:-1], True
    return starts, ends, False


def _commas_of_rows(array: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> tuple:
    """For every line but the first (the header's place): whether it has exactly five commas, and where."""
    commas = np.flatnonzero(array == 44)
    if commas.size == 5 * starts.size:  # the usual case: every line has five, checked below
        grid = commas.reshape(starts.size, 5)
        if bool(((grid[:, 0] >= starts) & (grid[:, 4] < ends)).all()):
            return np.ones(starts.size - 1, dtype=bool), grid[1:]  # a view: no copy of 10M positions
    line_of = np.searchsorted(ends, commas)  # the first line ending at or after each comma holds it
    counts = np.bincount(line_of, minlength=starts.size)[1:]
    first = np.cumsum(counts) - counts + int((line_of == 0).sum())
    five = counts == 5
    grid = np.zeros((starts.size - 1, 5), dtype=np.int64)
    grid[five] = commas[first[five][:, None] + np.arange(5)]
    return five, grid


def _fixed_point(array: np.ndarray, starts: np.ndarray, ends: np.ndarray, integer: bool) -> tuple:
    """``\\d+(\\.\\d+)?`` (``\\d+`` if ``integer``) in each field: (units, decimals, ok)."""
    length = ends - starts
    count = length.size
    ok = (length >= 1) & (length <= MAX_DIGITS + (0 if integer else 1))
    units = np.zeros(count, dtype=np.int64)
    dots = np.zeros(count, dtype=np.int8)
    dot_at = np.full(count, -1, dtype=np.int64)
    last = array.size - 1
    for k in range(int(length[ok].max()) if ok.any() else 0):
        inside = k < length
        byte = array[np.minimum(starts + k, last)]
        digit = (byte >= 48) & (byte <= 57)
        dot = inside & (byte == 46)
        ok &= ~inside | digit | (dot if not integer else False)
        dots += dot
        dot_at[dot] = k
        units = np.where(inside & digit, units * 10 + (byte.astype(np.int64) - 48), units)
    decimals = np.where(dots == 1, length - 1 - dot_at, 0)
    ok &= (dots <= 1) & (dot_at != 0) & ((dots == 0) | (decimals >= 1)) & (length - dots <= MAX_DIGITS)
    return units, decimals, ok


def _printable_ends(array: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """A non-empty field whose first and last bytes are visible ASCII (nothing for strip() to remove)."""
    last = array.size - 1
    first_byte = array[np.minimum(starts, last)]
    last_byte = array[np.clip(ends - 1, 0, last)]
    return (ends > starts) & (first_byte > 32) & (first_byte < 127) & (last_byte > 32) & (last_byte < 127)


def _symbol_codes(array: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> tuple:
    """Symbols of up to 8 visible ASCII bytes packed into one integer each: (codes, names, ok)."""
    length = ends - starts
    ok = _printable_ends(array, starts, ends) & (length <= 8)
    key = np.zeros(length.size, dtype=np.uint64)
    last = array.size - 1
    for k in range(8 if ok.any() else 0):
        byte = array[np.minimum(starts + k, last)]
        inside = k < length
        ok &= ~inside | ((byte > 32) & (byte < 127))
        key = (key << np.uint64(8)) | np.where(inside, byte, 0).astype(np.uint64)
    import pandas as pd  # factorize hashes: faster than sorting for a handful of symbols

    codes, uniques = pd.factorize(key[ok])
    names = []
    for packed in uniques.tolist():
        # Left-aligned and zero-padded; no symbol byte is zero (all are visible ASCII).
        names.append(int(packed).to_bytes(8, "big").rstrip(b"\0").decode("ascii"))
    all_codes = np.zeros(length.size, dtype=np.int32)
    all_codes[ok] = codes
    return all_codes, names, ok


def _sides(array: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(is buy, ok): the field is exactly ``buy`` or ``sell``."""
    length = ends - starts
    last = array.size - 1

    def at(k: int) -> np.ndarray:
        return array[np.minimum(starts + k, last)]

    buy = (length == 3) & (at(0) == ord("b")) & (at(1) == ord("u")) & (at(2) == ord("y"))
    sell = (length == 4) & (at(0) == ord("s")) & (at(1) == ord("e")) & (at(2) == ord("l")) & (at(3) == ord("l"))
    return buy, buy | sell


def _scan_rows(array: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> dict[str, Any]:
    """Parse the canonical rows among lines 1.. at numpy speed; the others are flagged for :func:`parse_row`.

    Each field's bounds are made just before it is parsed, so the peak stays near twice the file size.
    """
    five, commas = _commas_of_rows(array, starts, ends)
    row_starts, row_ends = starts[1:], ends[1:]
    ids, _, ok = _fixed_point(array, row_starts, commas[:, 0], integer=True)
    ok &= five
    ok &= _printable_ends(array, commas[:, 0] + 1, commas[:, 1])
    sym, names, sym_ok = _symbol_codes(array, commas[:, 1] + 1, commas[:, 2])
    ok &= sym_ok
    buy, side_ok = _sides(array, commas[:, 2] + 1, commas[:, 3])
    ok &= side_ok
    qty, qdec, qty_ok = _fixed_point(array, commas[:, 3] + 1, commas[:, 4], integer=False)
    ok &= qty_ok & (qty > 0)
    px, pdec, px_ok = _fixed_point(array, commas[:, 4] + 1, row_ends, integer=False)
    ok &= px_ok
    return {
        "ok": ok,
        "names": names,
        "columns": {
            "buf": np.zeros(ids.size, dtype=np.int32),
            "start": row_starts,
            "end": row_ends,
            "ids": ids,
            "sym": sym,
            "buy": buy,
            "qty": qty,
            "qdec": qdec.astype(np.int16),
            "px": px,
            "pdec": pdec.astype(np.int16),
        },
    }


# --- the ledger -------------------------------------------------------------------------------------


@dataclass
class Ledger:
    """What a ledger file holds, and everything wrong with it."""

    shown_as: str  # site-relative path, for messages
    exists: bool
    trades: TradeRows  # valid rows in file order (duplicated ids included); a Sequence[Trade]
    header_missing: bool  # the first line is not the header (a trade row, or a row that does not parse)
    torn_last_row: str | None  # a last line without final newline that does not parse (dropped by a repair)
    invalid_lines: list[int]  # 1-based line numbers of other rows that do not parse
    invalid_text: dict[int, str] = field(default_factory=dict)  # those rows' text, by line number
    unterminated_last_row: bool = False  # the last row parses but has no final newline: maybe cut in a number

    @property
    def ids(self) -> set[int]:
        """Every trade id of a valid row."""
        return set(self.trades.id_array.tolist())

    def highest_id(self) -> int:
        """The largest trade id the file shows, damaged rows included (0 for none): the next id must exceed it."""
        shown = [_leading_id(text) for text in [*self.invalid_text.values(), self.torn_last_row or ""]]
        ids = self.trades.id_array
        return max([int(ids.max()) if ids.size else 0, *(i for i in shown if i is not None)])

    def duplicates(self) -> dict[int, list[Trade]]:
        """Ids written more than once, each with its rows in file order."""
        ids = self.trades.id_array
        unique, counts = np.unique(ids, return_counts=True)
        repeated = unique[counts > 1]
        found: dict[int, list[Trade]] = {int(trade_id): [] for trade_id in repeated.tolist()}
        for index in np.flatnonzero(np.isin(ids, repeated)).tolist():
            found[int(ids[index])].append(self.trades[index])
        return found

    @property
    def needs_repair(self) -> bool:
        """True when a rewrite would change the file: anything but clean rows under the header."""
        return bool(self.problems())

    def problems(self) -> list[str]:
        """What is wrong, one line each, for a person (empty when the ledger is clean)."""
        found = []
        if not self.exists:
            return [f"{self.shown_as} is missing"]
        if self.header_missing:
            found.append(f"{self.shown_as} has no header line ({HEADER})")
        duplicated = self.duplicates()
        if duplicated:
            extra = sum(len(rows) - 1 for rows in duplicated.values())
            found.append(
                f"{self.shown_as}: {len(duplicated)} trade id(s) written more than once ({extra} extra row(s))"
            )
        if self.invalid_lines:
            shown = ", ".join(str(line) for line in self.invalid_lines[:5])
            more = f" and {len(self.invalid_lines) - 5} more" if len(self.invalid_lines) > 5 else ""
            found.append(f"{self.shown_as}: {len(self.invalid_lines)} row(s) do not parse (line {shown}{more})")
        if self.torn_last_row is not None:
            found.append(f"{self.shown_as} ends in a torn row: {self.torn_last_row!r}")
        if self.unterminated_last_row:
            found.append(f"{self.shown_as} has no final newline: its last row may have been cut inside a number")
        return found


def read_ledger(path: Path, shown_as: str) -> Ledger:
    """Read a ledger tolerantly: every row that parses is a trade; every other problem is listed.

    Raises :class:`LedgerError` only when the file exists but cannot be read at all.
    """
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return Ledger(shown_as, False, TradeRows.empty(), False, None, [])
    except OSError as exc:
        raise LedgerError(
            f"{shown_as} cannot be read ({exc.strerror or exc}); check that it is a readable file"
        ) from exc
    if not data:
        return Ledger(shown_as, True, TradeRows.empty(), True, None, [])
    array = np.frombuffer(data, dtype=np.uint8)
    starts, ends, terminated = _split_lines(array)
    count = starts.size

    def text(line_index: int) -> str:
        return data[int(starts[line_index]) : int(ends[line_index])].decode(*ENCODING)

    first_text = text(0)
    header = [part.strip() for part in first_text.split(",")] == list(TRADE_COLUMNS)
    scanned = _scan_rows(array, starts, ends)
    columns = scanned["columns"]
    ok: np.ndarray = scanned["ok"]
    names: list[str] = list(scanned["names"])
    symbol_codes = {name: code for code, name in enumerate(names)}
    exact = True
    # The first line and every row the fast reader did not accept are decided by parse_row.
    slow_rows = np.flatnonzero(~ok).tolist()
    extra: dict[int, Trade] = {}  # line index -> trade, for slow rows that parse
    invalid: dict[int, str] = {}
    candidates = ([] if header else [0]) + [row + 1 for row in slow_rows]
    for line_index in candidates:
        line = text(line_index)
        trade = parse_row(line)
        if trade is None:
            invalid[line_index] = line
        else:
            extra[line_index] = trade
    if extra:
        for line_index, trade in extra.items():
            if line_index == 0:
                continue
            position = line_index - 1
            fits, values = _numeric_fields(trade, symbol_codes)
            exact = exact and fits
            for name, value in values.items():
                columns[name][position] = value
            ok[position] = True
        names = list(symbol_codes)
    rows = TradeRows((data,), tuple(names), columns, exact).take(np.flatnonzero(ok))
    if 0 in extra:  # a trade row where the header should be
        rows = TradeRows.concat([[extra[0]], rows])
    torn = None
    if not terminated and (count - 1) in invalid:
        torn = invalid.pop(count - 1)
    return Ledger(
        shown_as=shown_as,
        exists=True,
        trades=rows,
        header_missing=not header,
        torn_last_row=torn,
        invalid_lines=[index + 1 for index in sorted(invalid)],
        invalid_text={index + 1: invalid[index] for index in sorted(invalid)},
        unterminated_last_row=not terminated and torn is None and (count > 1 or not header),
    )


# --- positions ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Totals:
    net: dict[str, int]
    bought: dict[str, int]
    notional: dict[str, int]  # units of 10**-(quantity_decimals + price_decimals)
    quantity_decimals: int
    price_decimals: int


def _totals_of_objects(trades: Iterable[Trade]) -> _Totals:
    """Exact totals of any iterable of trades, with Decimal arithmetic that refuses to round."""
    context = decimal.Context(prec=200, traps=[decimal.Inexact, decimal.InvalidOperation, decimal.Overflow])
    net: dict[str, Decimal] = {}
    bought: dict[str, Decimal] = {}
    notional: dict[str, Decimal] = {}
    qdec = pdec = 0
    with decimal.localcontext(context):
        for trade in trades:
            qdec = max(qdec, _units(trade.quantity)[1])
            pdec = max(pdec, _units(trade.price)[1])
            zero = Decimal(0)
            if trade.side == "buy":
                net[trade.symbol] = net.get(trade.symbol, zero) + trade.quantity
                bought[trade.symbol] = bought.get(trade.symbol, zero) + trade.quantity
                notional[trade.symbol] = notional.get(trade.symbol, zero) + trade.quantity * trade.price
            else:
                net[trade.symbol] = net.get(trade.symbol, zero) - trade.quantity
                bought.setdefault(trade.symbol, zero)
                notional.setdefault(trade.symbol, zero)
        return _Totals(
            net={symbol: int(value.scaleb(qdec)) for symbol, value in net.items()},
            bought={symbol: int(value.scaleb(qdec)) for symbol, value in bought.items()},
            notional={symbol: int(value.scaleb(qdec + pdec)) for symbol, value in notional.items()},
            quantity_decimals=qdec,
            price_decimals=pdec,
        )


def _totals(trades: Iterable[Trade]) -> _Totals:
    return trades._totals() if isinstance(trades, TradeRows) else _totals_of_objects(trades)


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
    totals = _totals(trades)
    return positions_text(totals.net, totals.bought, totals.notional, totals.quantity_decimals, totals.price_decimals)


def positions_of(trades: Iterable[Trade]) -> dict[str, Decimal]:
    """Net quantity per symbol (buys minus sells), exact."""
    totals = _totals(trades)
    return {symbol: Decimal(units_text(units, totals.quantity_decimals)) for symbol, units in totals.net.items()}


# --- fills ----------------------------------------------------------------------------------------------


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
    from datetime import UTC, datetime

    if not isinstance(value, int | float):
        return ""
    moment = datetime.fromtimestamp(int(value) / 1000, UTC)
    if int(value) % 1000:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(value) % 1000:03d}Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# --- repair ---------------------------------------------------------------------------------------------

EXACT_COPY = "exact duplicate copy"
SAME_TRADE = "duplicate of the same trade, written differently"
CONFLICT_EXCHANGE = "conflicting duplicate (the exchange's fill kept)"
CONFLICT_FIRST = "conflicting duplicate (the first row kept; the exchange does not know this id)"
DIFFERS = "differs from the exchange's fill of this id (the exchange's fill kept)"
TORN = "torn last row"
UNPARSEABLE = "unparseable row"


@dataclass
class LedgerRepair:
    """What a repair would write, what it drops and why. Nothing is written until :func:`write_ledger`."""

    trades: TradeRows  # what the repaired ledger holds, in order
    dropped: list[tuple[str, str]]  # (row text, why)
    header_added: bool
    newline_added: bool = False  # the last row had no final newline; the rewrite ends it properly
    unconfirmed_ids: list[int] = field(default_factory=list)  # kept rows nobody could confirm: a person should look
    notes: list[str] = field(default_factory=list)  # those judgment calls, in words
    ids_before: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64), repr=False)
    unidentified_dropped: int = 0  # dropped rows that do not even show an id (each counts as one trade)

    @property
    def trades_lost(self) -> int:
        """Trades present before and absent after (0 when only copies were dropped)."""
        after = self.trades.id_array
        return int(np.setdiff1d(self.ids_before, after).size) + self.unidentified_dropped

    @property
    def needed(self) -> bool:
        """True when the repair changes anything."""
        return bool(self.dropped) or self.header_added or self.newline_added

    def counts(self) -> dict[str, int]:
        """How many rows were dropped for each reason (reasons as in ``dropped``, without the id)."""
        found: dict[str, int] = {}
        for _, why in self.dropped:
            kind = why.split(":", 1)[0]
            found[kind] = found.get(kind, 0) + 1
        return found

    def summary(self) -> str:
        """One line for a person: what the repair drops and adds, and what that loses."""
        if not self.needed:
            return "the ledger needs no repair"
        parts = []
        if self.dropped:
            kinds = ", ".join(f"{kind}: {count}" for kind, count in self.counts().items())
            parts.append(f"drops {len(self.dropped)} row(s) ({kinds})")
        if self.header_added:
            parts.append("adds the missing header")
        if self.newline_added:
            parts.append("ends the last row with a newline")
        lost = self.trades_lost
        loses = f"loses {lost} trade(s)" if lost else "loses no trade"
        return f"repair {', '.join(parts)}; keeps {len(self.trades)} trades, {loses}"


def plan_repair(ledger: Ledger, fills: Mapping[int, Trade] | None = None) -> LedgerRepair:
    """The exact repair of ``ledger``, given the exchange's fills by id when known.

    Drops exact duplicate copies (keeps the first); for an id written with different contents keeps
    the row equal to the exchange's fill of that id (or the fill itself when no row equals it), else
    the first row, and says so in ``unconfirmed_ids``; replaces a single row that differs from the
    exchange's fill of its id by the fill; drops a torn last row and rows that do not parse; adds a
    missing header. Writes nothing.
    """
    fills = fills or {}
    rows = ledger.trades
    ids = rows.id_array
    keep = np.ones(len(rows), dtype=bool)
    replace: dict[int, Trade] = {}  # row index -> the exchange's fill written in its place
    dropped: list[tuple[str, str]] = []
    unconfirmed: list[int] = []
    notes: list[str] = []

    unique, counts = np.unique(ids, return_counts=True)
    repeated = unique[counts > 1]
    duplicated_rows = np.flatnonzero(np.isin(ids, repeated))
    groups: dict[int, list[int]] = {}
    for index in duplicated_rows.tolist():
        groups.setdefault(int(ids[index]), []).append(index)
    for trade_id, indices in groups.items():
        # Copies first: the same text (or the same trade in other text) as an earlier row.
        distinct: list[int] = []
        seen_text: set[str] = set()
        for index in indices:
            line = rows.line_of(index)
            if line in seen_text:
                keep[index] = False
                dropped.append((line, f"{EXACT_COPY}: trade_id {trade_id}"))
                continue
            seen_text.add(line)
            trade = rows[index]
            if any(rows[other].same_trade(trade) for other in distinct):
                keep[index] = False
                dropped.append((line, f"{SAME_TRADE}: trade_id {trade_id}"))
                continue
            distinct.append(index)
        if len(distinct) < 2:
            continue
        fill = fills.get(trade_id)
        if fill is not None:
            matching = [index for index in distinct if rows[index].same_trade(fill)]
            chosen = matching[0] if matching else distinct[0]
            if not matching:
                replace[chosen] = fill
                dropped.append((rows.line_of(chosen), f"{CONFLICT_EXCHANGE}: trade_id {trade_id}"))
            for index in distinct:
                if index != chosen:
                    keep[index] = False
                    dropped.append((rows.line_of(index), f"{CONFLICT_EXCHANGE}: trade_id {trade_id}"))
        else:
            for index in distinct[1:]:
                keep[index] = False
                dropped.append((rows.line_of(index), f"{CONFLICT_FIRST}: trade_id {trade_id}"))
            unconfirmed.append(trade_id)
            notes.append(
                f"trade_id {trade_id} is written {len(distinct)} times with different contents and the exchange "
                f"does not know it: the first row was kept ({rows.line_of(distinct[0])!r}); check it by hand"
            )

    # Single rows the exchange contradicts (a digit changed, a row cut inside its last number).
    if fills:
        known = np.fromiter(fills.keys(), dtype=np.int64, count=len(fills))
        single = np.isin(ids, known) & ~np.isin(ids, repeated)
        for index in np.flatnonzero(single).tolist():
            fill = fills[int(ids[index])]
            line = rows.line_of(index)
            if line != fill.line and not rows[index].same_trade(fill):
                replace[index] = fill
                dropped.append((line, f"{DIFFERS}: trade_id {int(ids[index])}"))
    if ledger.unterminated_last_row and len(rows):
        last_id = int(ids[-1])
        if last_id not in fills:
            unconfirmed.append(last_id)
            notes.append(
                f"the last row of {ledger.shown_as} has no final newline; it parses, but it may have been cut "
                f"inside its last number and the exchange cannot confirm trade_id {last_id}; check it by hand"
            )

    damaged = [(text, f"{UNPARSEABLE}: line {line}") for line, text in ledger.invalid_text.items()]
    if ledger.torn_last_row is not None:
        damaged.append((ledger.torn_last_row, f"{TORN}: no final newline and it does not parse"))
    shown_ids = [_leading_id(text) for text, _ in damaged]
    unidentified = sum(1 for (text, _), shown in zip(damaged, shown_ids, strict=True) if shown is None and text.strip())
    dropped.extend(damaged)

    kept = _assemble(rows, keep, replace)
    return LedgerRepair(
        trades=kept,
        dropped=dropped,
        header_added=ledger.header_missing or not ledger.exists,
        newline_added=bool(ledger.unterminated_last_row and len(rows) and keep[-1]) and len(rows) - 1 not in replace,
        unconfirmed_ids=unconfirmed,
        notes=notes,
        ids_before=np.union1d(ids, np.array([i for i in shown_ids if i is not None], dtype=np.int64)),
        unidentified_dropped=unidentified,
    )


def _assemble(rows: TradeRows, keep: np.ndarray, replace: Mapping[int, Trade]) -> TradeRows:
    """The kept rows in order, with the exchange's fills standing in their rows' places."""
    if not replace:
        return rows.take(np.flatnonzero(keep)) if not keep.all() else rows
    parts: list[Iterable[Trade]] = []
    previous = 0
    for index in sorted(replace):
        parts.append(rows.take(np.flatnonzero(keep[previous:index]) + previous))
        parts.append([replace[index]])
        previous = index + 1
    parts.append(rows.take(np.flatnonzero(keep[previous:]) + previous))
    return TradeRows.concat(parts)


# --- writing ------------------------------------------------------------------------------------------


def _refuse_while_running(site: Site, what: str) -> None:
    status = process_status(site)
    if status.running:
        how = f"stop it with: cd {site.root} && {site.process.stop}" if site.process.stop else "stop it first"
        raise LedgerError(
            f"{what} refused for site {site.root}: the trading system is {status.detail}; {how}. Nothing was changed."
        )


@contextlib.contextmanager
def _exclusive_write_lock(site: Site) -> Iterator[None]:
    """Hold the trading system's write lock exclusively, so no reader sees trades and positions disagree."""
    if not site.process.write_lock:
        yield
        return
    try:
        fd = os.open(site.path(site.process.write_lock), os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        yield  # no writer has ever run here
        return
    try:
        if not flock_within(fd, fcntl.LOCK_EX, WRITE_LOCK_TIMEOUT_S):
            raise LedgerError(
                f"{site.process.write_lock} stayed locked for {WRITE_LOCK_TIMEOUT_S:g} s (a backup or the trading "
                "system holds it); wait for it to finish and try again. Nothing was changed."
            )
        yield
    finally:
        os.close(fd)


def write_ledger(site: Site, trades: Sequence[Trade]) -> None:
    """Write ``trades`` as the site's ledger (header, then each trade's line), then positions recomputed
    from them, each file with the atomic write pattern.

    Refuses (:class:`LedgerError`) while the trading process runs. trades.csv is replaced whole or not
    at all; should positions.csv then fail to write, the error says so and rerunning the same write
    finishes the job (positions are derived from the trades).
    """
    _refuse_while_running(site, "writing the ledger")
    rows = TradeRows.from_trades(trades)
    positions = positions_csv(rows)  # computed first: nothing is written if it fails
    trades_path, positions_path = site.path(site.trades_file), site.path(site.positions_file)
    with _exclusive_write_lock(site):
        _refuse_while_running(site, "writing the ledger")  # started while we waited for the lock
        try:
            trades_path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_writer(trades_path) as handle:
                handle.write((HEADER + "\n").encode())
                rows.write_to(handle)
        except OSError as exc:
            raise LedgerError(
                f"{site.trades_file} could not be written ({exc.strerror or exc}); it is unchanged. "
                "Free space or fix permissions in its directory and try again."
            ) from exc
        try:
            positions_path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(positions_path, positions)
        except OSError as exc:
            raise LedgerError(
                f"{site.trades_file} was written but {site.positions_file} could not be ({exc.strerror or exc}), "
                "so they disagree; fix the cause and write the ledger again (positions are recomputed from it)."
            ) from exc
