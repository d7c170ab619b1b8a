"""The exact repair of a ledger: what it keeps, what it drops and why, and what that loses.

:func:`plan_repair` decides and writes nothing; :func:`~recovery_lib.trading.ledger.write.write_ledger`
writes the kept trades. The exchange's fills, when known, settle which of two rows of one id is true.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from recovery_lib.trading.ledger.read import Ledger
from recovery_lib.trading.ledger.rows import TradeRows
from recovery_lib.trading.ledger.trade import Trade, leading_id

log = logging.getLogger(__name__)


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
    shown_ids = [leading_id(text) for text, _ in damaged]
    unidentified = sum(1 for (text, _), shown in zip(damaged, shown_ids, strict=True) if shown is None and text.strip())
    dropped.extend(damaged)

    kept = _assemble(rows, keep, replace)
    repair = LedgerRepair(
        trades=kept,
        dropped=dropped,
        header_added=ledger.header_missing or not ledger.exists,
        newline_added=bool(ledger.unterminated_last_row and len(rows) and keep[-1]) and len(rows) - 1 not in replace,
        unconfirmed_ids=unconfirmed,
        notes=notes,
        ids_before=np.union1d(ids, np.array([i for i in shown_ids if i is not None], dtype=np.int64)),
        unidentified_dropped=unidentified,
    )
    # Counts only: the trades a repair loses take another pass over millions of ids (``summary()``).
    if repair.needed:
        log.info(
            "%s: repair planned: drops %d row(s) (%d duplicated or contradicted by the exchange, %d damaged), "
            "header added %s, keeps %d trades",
            ledger.shown_as,
            len(dropped),
            len(dropped) - len(damaged),
            len(damaged),
            repair.header_added,
            len(kept),
        )
    else:
        log.debug("%s needs no repair", ledger.shown_as)
    for note in notes:
        log.warning("%s: %s", ledger.shown_as, note)
    return repair


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
