"""Fills after the restore point come back from the exchange (DESIGN: the exchange is the second
source of truth, so a data restore loses no trade).

Every fill the exchange reports that the site's ledger lacks is appended to the ledger with its
original id and row text, positions are recomputed from the trades, and the result counts trades
lost, recovered and still missing.

Assumptions, stated once: a site's ``trade_id`` is the exchange's trade id (an integer) and its
symbols are the exchange's unified symbols (``BTC/USD``); the sandbox's simulated exchange keeps
both by construction.
"""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np

from recovery_lib import clock
from recovery_lib.errors import ExchangeError
from recovery_lib.site.config import Site
from recovery_lib.site.process import consistent_view
from recovery_lib.trading.exchange import SimulatedExchange
from recovery_lib.trading.ledger import (
    Ledger,
    LedgerError,
    LedgerRepair,
    Trade,
    TradeRows,
    plan_repair,
    read_ledger,
    trade_from_fill,
    write_ledger,
)

log = logging.getLogger(__name__)

# Fills older than this before the ledger's newest trade are not asked of a real exchange: a restore
# loses the trades after its restore point, i.e. after the restored ledger's newest trade; the margin
# covers clocks that disagree. (The simulated exchange is always asked for everything.)
SINCE_MARGIN = timedelta(hours=24)
MAX_PAGES = 10_000  # a guard against an exchange that keeps answering the same page
MAX_LIMIT = 10_000  # the largest page asked for when fills share one timestamp


def _fills_of(exchange: Any, symbol: str | None, since_ms: int | None) -> list[dict[str, Any]]:
    """Every fill of one symbol (or all) from ``since_ms`` on, following ccxt's ``since`` pagination.

    Each next page starts at the newest timestamp seen (inclusive; ids de-duplicate). A page that
    brings nothing new may be a page full of fills sharing one timestamp: it is asked again with a
    doubled ``limit`` until the exchange returns something new or fewer than asked. An exchange that
    caps its pages below that while newer fills exist is an error. (More fills than a page sharing the
    very newest timestamp cannot be told from the end through ``since`` at all: such a gap shows as
    positions that disagree with the exchange in the reconciliation that follows every replay.)
    """
    found: list[dict[str, Any]] = []
    seen: set[str] = set()
    cursor, limit = since_ms, None
    for _ in range(MAX_PAGES):
        page = exchange.fetch_my_trades(symbol, cursor, limit)
        fresh = [fill for fill in page if str(fill.get("id")) not in seen]
        if fresh:
            found.extend(fresh)
            seen.update(str(fill.get("id")) for fill in fresh)
            stamps = [fill.get("timestamp") for fill in page if isinstance(fill.get("timestamp"), int)]
            if isinstance(exchange, SimulatedExchange) or not stamps:
                return found  # the simulated exchange answers everything at once
            cursor, limit = max(stamps), None
            continue
        if not page:
            return found
        if limit is not None and len(page) < limit:
            # Fewer than asked: everything from the cursor on, unless the exchange caps its pages below
            # ``limit``. Then fills newer than the cursor exist and were not returned: fills at the
            # cursor may be missing too, and nothing here can get past them.
            if cursor is None or not exchange.fetch_my_trades(symbol, cursor + 1, 1):
                return found
            break
        if limit is not None and limit >= MAX_LIMIT:
            break
        limit = min(2 * max(len(page), limit or 0), MAX_LIMIT)
    raise ExchangeError(
        f"cannot page past the fills of {symbol or 'all symbols'} at timestamp {cursor} ms: more fills "
        "share it than the exchange returns in one page (or it kept answering for "
        f"{MAX_PAGES} pages). Recover these trades from the exchange's own export; nothing was written."
    )


def exchange_fills(
    exchange: Any, symbols: Iterable[str] | None = None, since_ms: int | None = None
) -> dict[int, Trade]:
    """Every fill the exchange reports, by trade id, as ledger trades.

    Without ``symbols`` the exchange is asked once for all symbols (the simulated exchange, and ccxt
    exchanges that allow it); with ``symbols`` once per symbol (most real exchanges need one; see
    :func:`replay_symbols`). ``since_ms`` (inclusive) limits how far back. Raises
    :class:`~recovery_lib.errors.ExchangeError` when the exchange reports one id twice with different
    contents, or :class:`~recovery_lib.trading.ledger.LedgerError` for a fill that makes no ledger row.
    """
    fills: dict[int, Trade] = {}
    for symbol in [None] if symbols is None else sorted(set(symbols)):
        for raw in _fills_of(exchange, symbol, since_ms):
            trade = trade_from_fill(raw)
            known = fills.get(trade.trade_id)
            if known is not None and not known.same_trade(trade):
                raise ExchangeError(
                    f"the exchange reported trade id {trade.trade_id} twice with different contents "
                    f"({known.line!r} and {trade.line!r}); its fills cannot be trusted for a replay: escalate"
                )
            fills.setdefault(trade.trade_id, trade)
    return fills


def replay_symbols(site: Site, exchange: Any, ledger: Ledger | None = None) -> list[str] | None:
    """The symbols to ask a real exchange about: those of the site's positions and ledger (and
    config, if it lists ``[trading] symbols``), limited to the markets ``load_markets()`` knows.
    None for the simulated exchange, which answers for all symbols at once."""
    if isinstance(exchange, SimulatedExchange):
        return None
    wanted: set[str] = set()
    if ledger is not None:
        wanted.update(ledger.trades.symbols)
    try:
        lines = site.path(site.positions_file).read_text(encoding="utf-8").splitlines()[1:]
        wanted.update(line.split(",", 1)[0].strip() for line in lines if line.strip())
    except (OSError, UnicodeDecodeError):
        pass  # a lost positions file: the ledger and the config still name the symbols
    try:
        config = tomllib.loads(site.path(site.config_file).read_text(encoding="utf-8"))
        trading = config.get("trading")
        listed = trading.get("symbols", []) if isinstance(trading, dict) else []
        if isinstance(listed, list):
            wanted.update(s for s in listed if isinstance(s, str))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        pass
    markets = exchange.load_markets() if hasattr(exchange, "load_markets") else None
    return sorted(s for s in wanted if not markets or s in markets)


def _default_since(exchange: Any, rows: Sequence[Trade]) -> int | None:
    """How far back to ask a real exchange: a day before the ledger's newest trade (None: everything)."""
    if isinstance(exchange, SimulatedExchange) or not len(rows):
        return None
    # The last row and the highest id: a ledger is appended to in time order.
    candidates = [rows[len(rows) - 1]]
    if isinstance(rows, TradeRows):
        candidates.append(rows[int(rows.id_array.argmax())])
    try:
        newest = max(moment for moment in (clock.parse(t.timestamp) for t in candidates) if moment is not None)
    except ValueError:
        return None  # an unreadable stamp: ask for everything rather than guess
    return int((newest - SINCE_MARGIN).timestamp() * 1000)


@dataclass
class ReplayResult:
    """What a replay recovered (or, for a dry run, would recover)."""

    missing_before: int  # fills the exchange knows that the ledger lacked: the trades the fault/restore lost
    recovered: int  # appended with their original ids and row text
    still_missing: int  # after the replay (0 unless writing failed)
    recovered_ids: list[int]
    ledger_trades: int  # trades in the ledger after the replay (or after it, for a dry run)
    dry_run: bool = False
    conflicting_ids: list[int] = field(default_factory=list)  # ledger rows the exchange contradicts
    repair: LedgerRepair | None = None  # the repair applied first (``repair=True``), if any
    refused: str | None = None  # dry run only: why a replay would be refused

    def summary(self) -> str:
        """One line for a person."""
        if self.refused:
            return f"replay refused: {self.refused}"
        repaired = f"; {self.repair.summary()}" if self.repair is not None and self.repair.needed else ""
        if self.dry_run:
            return (
                f"{self.missing_before} trades lost by the restore, {self.recovered} would be recovered from the "
                f"exchange (dry run: nothing written){repaired}"
            )
        return (
            f"{self.missing_before} trades lost by the restore, {self.recovered} recovered from the exchange, "
            f"{self.still_missing} still missing{repaired}"
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the record."""
        return {
            "missing_before": self.missing_before,
            "recovered": self.recovered,
            "still_missing": self.still_missing,
            "recovered_ids": self.recovered_ids,
            "ledger_trades": self.ledger_trades,
            "dry_run": self.dry_run,
            "conflicting_ids": self.conflicting_ids,
            "repair": self.repair.summary() if self.repair is not None else None,
            "refused": self.refused,
        }


def missing_fills(trades: Sequence[Trade], fills: Mapping[int, Trade]) -> list[Trade]:
    """The fills whose ids ``trades`` lack, in id order: what a replay appends."""
    held = set(trades.id_array.tolist()) if isinstance(trades, TradeRows) else {t.trade_id for t in trades}
    return [fills[trade_id] for trade_id in sorted(set(fills) - held)]


def _conflicts(rows: TradeRows, fills: Mapping[int, Trade]) -> list[int]:
    """Ids whose ledger row says something else than the exchange's fill of that id."""
    if not fills or not len(rows):
        return []
    known = np.fromiter(fills.keys(), dtype=np.int64, count=len(fills))
    found = set()
    for index in np.flatnonzero(np.isin(rows.id_array, known)).tolist():
        trade_id = int(rows.id_array[index])
        if rows.line_of(index) != fills[trade_id].line and not rows[index].same_trade(fills[trade_id]):
            found.add(trade_id)
    return sorted(found)


@dataclass
class _Plan:
    result: ReplayResult
    trades: TradeRows | None  # what would be written (None: refused)
    fill_ids: set[int]


def _plan(site: Site, exchange: Any, repair: bool, since_ms: int | None, dry_run: bool) -> _Plan:
    with consistent_view(site):  # never half of a trade the running system is writing
        ledger = read_ledger(site.path(site.trades_file), site.trades_file)
    since = since_ms if since_ms is not None else _default_since(exchange, ledger.trades)
    fills = exchange_fills(exchange, replay_symbols(site, exchange, ledger), since)
    conflicts = _conflicts(ledger.trades, fills)
    applied_repair = None
    base: TradeRows = ledger.trades
    problems = ledger.problems() if ledger.exists else []
    if conflicts:
        problems.append(f"{len(conflicts)} row(s) differ from the exchange's fill of their id: {conflicts[:5]}")
    if problems and not repair:
        why = (
            f"{site.trades_file} needs a repair first ({'; '.join(problems)}); rewriting it for a replay would "
            "silently drop or keep those rows. Plan the repair (plan_repair) and approve it, or replay with "
            "repair=True to drop exactly what plan_repair lists."
        )
        missing = missing_fills(base, fills)
        return _Plan(
            ReplayResult(len(missing), 0, len(missing), [], len(base), dry_run, conflicts, None, why),
            None,
            set(fills),
        )
    if problems:
        applied_repair = plan_repair(ledger, fills)
        base = applied_repair.trades
    missing = missing_fills(base, fills)
    trades = base + missing
    result = ReplayResult(
        missing_before=len(missing),
        recovered=len(missing),
        still_missing=0,
        recovered_ids=[t.trade_id for t in missing],
        ledger_trades=len(trades),
        dry_run=dry_run,
        conflicting_ids=conflicts,
        repair=applied_repair,
    )
    log.debug(
        "%s: the exchange reports %d fill(s); %d are missing from the ledger",
        site.trades_file,
        len(fills),
        len(missing),
    )
    return _Plan(result, trades, set(fills))


def plan_replay(site: Site, exchange: Any, *, repair: bool = False, since_ms: int | None = None) -> ReplayResult:
    """Dry run of :func:`replay_fills`: what it would append (``recovered``). Nothing is written.

    A ledger that needs a repair (duplicates, torn or unparseable rows, a missing header, rows the
    exchange contradicts) gives ``refused`` unless ``repair`` is True, in which case the result also
    carries the :class:`~recovery_lib.trading.ledger.LedgerRepair` that would be applied first.
    """
    result = _plan(site, exchange, repair, since_ms, dry_run=True).result
    log.info("replay planned for %s: %s", site.trades_file, result.summary())
    return result


def replay_fills(site: Site, exchange: Any, *, repair: bool = False, since_ms: int | None = None) -> ReplayResult:
    """Append every fill the exchange knows that the ledger lacks (in id order, original row text),
    recompute positions, write both atomically (:func:`~recovery_lib.trading.ledger.write_ledger`), read the
    ledger back and count what is still missing.

    Refuses (:class:`~recovery_lib.trading.ledger.LedgerError`) while the trading process runs, and when the
    ledger needs a repair unless ``repair`` is True (then exactly :func:`plan_repair`'s repair is
    applied in the same write). ``since_ms`` limits how far back a real exchange is asked (default:
    a day before the ledger's newest trade; the simulated exchange is always asked for everything).
    """
    plan = _plan(site, exchange, repair, since_ms, dry_run=False)
    if plan.trades is None:
        log.warning("replay into %s refused: %s", site.trades_file, plan.result.refused)
        raise LedgerError(f"replay refused: {plan.result.refused} Nothing was changed.")
    result, fill_ids = plan.result, plan.fill_ids
    if result.recovered or (result.repair is not None and result.repair.needed):
        write_ledger(site, plan.trades)
    del plan  # a multi-million-row ledger: never hold the planned one and the one read back at once
    after = read_ledger(site.path(site.trades_file), site.trades_file)
    result.still_missing = len(fill_ids - after.ids)  # counted on what is on disk now, not on the plan
    result.ledger_trades = len(after.trades)
    log.info("replay into %s: %s", site.trades_file, result.summary())
    if result.still_missing:
        log.warning(
            "%s: %d fill(s) of the exchange still missing after the replay", site.trades_file, result.still_missing
        )
    return result
