"""Reading a ledger file tolerantly: every row that parses is a trade, every other problem is named.

Reading never fails on a damaged file: a missing header, duplicated ids, a torn last row and rows
that do not parse are each listed in the :class:`Ledger`, so that a repair can say exactly what it
drops and what that loses. Canonical rows are parsed column-wise with numpy (about 2 s for the
2M-trade sandbox); rows in an unusual but valid form (spaces around fields, ``\\r\\n`` line ends,
exponents) are handed to :func:`~recovery_lib.trading.ledger.trade.parse_row`, the same rules.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from recovery_lib.errors import LedgerError
from recovery_lib.site.integrity import TRADE_COLUMNS
from recovery_lib.trading.ledger.rows import TradeRows, numeric_fields
from recovery_lib.trading.ledger.trade import ENCODING, HEADER, MAX_DIGITS, Trade, leading_id, parse_row

log = logging.getLogger(__name__)


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
        shown = [leading_id(text) for text in [*self.invalid_text.values(), self.torn_last_row or ""]]
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
            fits, values = numeric_fields(trade, symbol_codes)
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
    ledger = Ledger(
        shown_as=shown_as,
        exists=True,
        trades=rows,
        header_missing=not header,
        torn_last_row=torn,
        invalid_lines=[index + 1 for index in sorted(invalid)],
        invalid_text={index + 1: invalid[index] for index in sorted(invalid)},
        unterminated_last_row=not terminated and torn is None and (count > 1 or not header),
    )
    log.debug(
        "read %s: %d trades, %d row(s) that do not parse, header %s, torn last row %s",
        shown_as,
        len(rows),
        len(invalid),
        "present" if header else "missing",
        "yes" if torn is not None else "no",
    )
    return ledger
