"""Reconciling positions with the exchange (Procedure B, step 8), exact to each instrument's precision.

Positions are per market (``BTC/USD``); exchange balances are per currency (``BTC``). A position and
the balance of its base currency match when, both rounded to the instrument's amount precision, they
differ by at most ``[reconcile] tolerance`` (recovery.toml; default 0: exact). The precision is the
exchange's (``load_markets()``: a tick size such as 0.0001, or a number of decimal places, as
``precisionMode`` says), else ``[reconcile] decimals``. Arithmetic is Decimal throughout: floats
from the exchange are read by their shortest text (0.1 is 0.1, not 0.1000000000000000055...).

Data in, data out: :func:`reconcile` never raises for an exchange that cannot be asked or a
positions file that cannot be read; it returns a :class:`Reconciliation` with ``ok=False`` and the
``error``.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from recovery_lib.errors import ExchangeError
from recovery_lib.rendering import name_all
from recovery_lib.site.config import Site

log = logging.getLogger(__name__)

COLUMNS = ["symbol", "position", "exchange", "difference", "decimals", "matches"]
DECIMAL_PLACES = 2  # ccxt's precisionMode constants
TICK_SIZE = 4


@dataclass
class Reconciliation:
    """Positions against the exchange's balances, one row per market (and per unexpected currency)."""

    ok: bool
    rows: list[dict[str, Any]] = field(default_factory=list)  # plain floats/strings/bools, for records
    error: str | None = None  # the exchange (or the positions file) could not be read: then ok is False

    @property
    def discrepancies(self) -> list[dict[str, Any]]:
        """The rows that do not match."""
        return [row for row in self.rows if not row["matches"]]

    def frame(self) -> Any:
        """A pandas DataFrame for display, indexed by symbol (no meaningless 0..n index)."""
        import pandas as pd

        return pd.DataFrame(self.rows, columns=COLUMNS).set_index("symbol")

    def summary(self) -> str:
        """One line for a person."""
        if self.error is not None:
            return f"reconciliation impossible: {self.error}"
        wrong = self.discrepancies
        if not wrong:
            return f"all {len(self.rows)} position(s) equal the exchange's balances"
        shown = name_all(
            [
                f"{row['symbol']}: position {row['position']:.{row['decimals']}f}, exchange "
                f"{row['exchange']:.{row['decimals']}f}"
                for row in wrong
            ]
        )
        return f"{len(wrong)} of {len(self.rows)} position(s) differ from the exchange: {shown}"

    def _repr_html_(self) -> str:
        import html

        return f"<p>{html.escape(self.summary())}</p>" + (self.frame().to_html() if self.rows else "")

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.summary())


def _decimal(value: Any) -> Decimal:
    """An exchange number as the decimal its shortest text says (None is zero)."""
    if value is None:
        return Decimal(0)
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(str(value))


def _tick(precision: Any, mode: Any, default_decimals: int) -> Decimal:
    """The smallest amount step: a tick size (< 1, or any value when ``mode`` is TICK_SIZE), or a number
    of decimal places (an integer >= 1, or any value when ``mode`` is DECIMAL_PLACES)."""
    if precision is None or isinstance(precision, bool):
        return Decimal(1).scaleb(-default_decimals)
    value = _decimal(precision)
    if not value.is_finite() or value <= 0:
        return Decimal(1).scaleb(-default_decimals)
    if mode == TICK_SIZE or (mode != DECIMAL_PLACES and value < 1):
        return value
    return Decimal(1).scaleb(-int(value))


def _round(value: Decimal, tick: Decimal) -> Decimal:
    return (value / tick).quantize(Decimal(1), rounding=ROUND_HALF_EVEN) * tick


def _places(tick: Decimal) -> int:
    return max(0, -int(tick.normalize().as_tuple().exponent))


def read_positions(site: Site) -> dict[str, Decimal]:
    """The positions file's quantity per symbol, exactly. Raises OSError / ValueError when unreadable."""
    path = site.path(site.positions_file)
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, skipinitialspace=True)
        if reader.fieldnames is None or not {"symbol", "quantity"} <= set(reader.fieldnames):
            raise ValueError(f"{site.positions_file} has no symbol and quantity columns")
        held: dict[str, Decimal] = {}
        for line, row in enumerate(reader, start=2):
            try:
                quantity = Decimal((row["quantity"] or "").strip())
            except InvalidOperation:
                quantity = Decimal("NaN")
            if not quantity.is_finite():
                raise ValueError(f"{site.positions_file} line {line}: quantity {row['quantity']!r} is not a number")
            held[(row["symbol"] or "").strip()] = quantity
    return held


def reconcile(site: Site, exchange: Any, positions: Mapping[str, Decimal] | None = None) -> Reconciliation:
    """Positions (None: the site's positions file) against the exchange's balances, never raising.

    Exchange currencies with a balance and no position (other than the quote currencies of the
    positions' markets) are discrepancies too.
    """
    if positions is None:
        try:
            positions = read_positions(site)
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            return _impossible(f"{site.positions_file} cannot be read: {reason}")
    try:
        totals = exchange.fetch_balance().get("total", {}) or {}
        markets = exchange.load_markets() if hasattr(exchange, "load_markets") else {}
    except Exception as exc:  # any client error (network, auth, ccxt's own): a finding, never a crash
        return _impossible(f"the exchange cannot be asked: {type(exc).__name__}: {exc}")
    mode = getattr(exchange, "precisionMode", None)
    default = site.reconcile.decimals
    tolerance = _decimal(site.reconcile.tolerance)
    markets = markets or {}

    def base_quote(symbol: str) -> tuple[str, str | None]:
        market = markets.get(symbol) or {}
        base, _, quote = symbol.partition("/")
        return market.get("base") or base, market.get("quote") or (quote or None)

    def tick_of(symbol: str | None) -> Decimal:
        market = (markets.get(symbol) or {}) if symbol else {}
        return _tick((market.get("precision") or {}).get("amount"), mode, default)

    def row(symbol: str, held: Decimal, balance: Decimal, tick: Decimal) -> dict[str, Any]:
        difference = _round(balance, tick) - _round(held, tick)
        return {
            "symbol": symbol,
            "position": float(held),
            "exchange": float(balance),
            "difference": float(difference),
            "decimals": _places(tick),
            "matches": abs(difference) <= tolerance,
        }

    try:
        balances = {currency: _decimal(amount) for currency, amount in totals.items()}
    except (InvalidOperation, TypeError, ValueError) as exc:
        return _impossible(f"the exchange's balances are not numbers: {exc}")
    rows = []
    bases, quotes = set(), set()
    for symbol in sorted(positions):
        base, quote = base_quote(symbol)
        bases.add(base)
        if quote:
            quotes.add(quote)
        rows.append(row(symbol, Decimal(positions[symbol]), balances.get(base, Decimal(0)), tick_of(symbol)))
    by_base = {base_quote(symbol)[0]: symbol for symbol in sorted(markets)}
    for currency, amount in sorted(balances.items()):
        if currency in bases or currency in quotes:
            continue
        unexpected = row(currency, Decimal(0), amount, tick_of(by_base.get(currency)))
        if not unexpected["matches"]:
            rows.append(unexpected)
    result = Reconciliation(ok=all(r["matches"] for r in rows), rows=rows)
    if result.ok:
        log.info("reconciliation: %s", result.summary())
    else:
        log.warning("reconciliation: %s", result.summary())
    return result


def _impossible(reason: str) -> Reconciliation:
    """A reconciliation that could not be made: a finding for the caller, and a warning in the log."""
    log.warning("reconciliation impossible: %s", reason)
    return Reconciliation(False, [], reason)


def reconcile_positions(site: Site, exchange: Any) -> Any:
    """A DataFrame (symbol, restored, exchange, difference, decimals, matches), one row per market, for
    callers of the first version. Raises :class:`ExchangeError` when the exchange cannot be asked."""
    import pandas as pd

    result = reconcile(site, exchange)
    if result.error is not None:
        raise ExchangeError(result.error)
    frame = pd.DataFrame(result.rows, columns=COLUMNS)
    return frame.rename(columns={"position": "restored"})
