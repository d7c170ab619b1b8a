"""Validation of the protected system's files: the TOML config and the trading CSVs.

Both return reports (data in, data out); the health checks and the notebooks decide what to show.
Trades are read in chunks so that a multi-GB ``trades.csv`` is checked in bounded memory.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from recovery_lib.rendering import name_all
from recovery_lib.site.config import Site
from recovery_lib.site.process import consistent_view
from recovery_lib.site.tomlconf import describe_toml_error

TRADE_COLUMNS = ("trade_id", "timestamp", "symbol", "side", "quantity", "price")
POSITION_COLUMNS = ("symbol", "quantity", "avg_price")
QUANTITY_TOLERANCE = 1e-6  # CSV quantities carry 4 decimals; float sums drift far below this
PRICE_RELATIVE_TOLERANCE = 1e-6
MISMATCH = "position(s) that disagree with the trades"
TRADE_CHUNK_ROWS = 100_000  # bounded memory; also faster than bigger chunks (they fall out of the CPU cache)
MAX_PROBLEMS = 20  # a report keeps the first problems as text, then counts the rest by kind
OTHER = "other problem(s)"  # the kind of a problem its caller did not classify
T = TypeVar("T")


@dataclass
class Report:
    """Outcome of a validation: ``ok`` only when ``problems`` is empty.

    Each problem has a kind ("invalid trade row(s)"), so a summary that cannot name every problem
    still says how many of which kind it did not name.
    """

    subject: str
    problems: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    more_problems: int = 0
    kinds: list[str] = field(default_factory=list)  # the kind of each problem in ``problems``
    more_kinds: dict[str, int] = field(default_factory=dict)  # the problems beyond ``problems``, by kind

    @property
    def ok(self) -> bool:
        """True when nothing is wrong."""
        return not self.problems

    def add(self, problem: str, kind: str = OTHER) -> None:
        """Record a problem of ``kind``, keeping the list short enough to read."""
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)
            self.kinds.append(kind)
        else:
            self._count(kind, 1)

    def add_each(self, items: Sequence[T], describe: Callable[[T], str], kind: str = OTHER) -> None:
        """Record one problem of ``kind`` per item: the ones still listed are described, every other one
        is counted (a million bad rows cost one subtraction, and the count stays exact)."""
        room = max(MAX_PROBLEMS - len(self.problems), 0)
        for item in items[:room]:
            self.problems.append(describe(item))
            self.kinds.append(kind)
        self._count(kind, max(len(items) - room, 0))

    def _count(self, kind: str, number: int) -> None:
        if number:
            self.more_problems += number
            self.more_kinds[kind] = self.more_kinds.get(kind, 0) + number

    def summary(self) -> str:
        """One line for a person: every problem when there are few (each names its file), else the first
        ones and how many more of which kind."""
        if self.ok:
            return f"{self.subject}: OK"
        kinds = self.kinds + [OTHER] * (len(self.problems) - len(self.kinds))  # problems appended directly
        return name_all(self.problems, kinds[: len(self.problems)], unlisted=self.more_kinds)


def check_config_file(path: Path, required_sections: tuple[str, ...], shown_as: str | None = None) -> Report:
    """The config exists, parses as TOML (naming the line of a syntax error) and has the required sections."""
    name = shown_as or str(path)
    report = Report(subject=name)
    if not path.is_file():
        report.add(f"{name} is missing" if not path.exists() else f"{name} is not a file")
        return report
    try:
        raw = path.read_bytes()
        config = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        report.add(f"{name} is not UTF-8 text (byte {exc.start})")
        return report
    except tomllib.TOMLDecodeError as exc:
        line, message = describe_toml_error(exc)
        where = f" at line {line}" if line else ""
        report.add(f"{name} is not valid TOML{where}: {message}")
        return report
    except OSError as exc:
        report.add(f"{name} cannot be read: {exc.strerror}")
        return report
    report.facts = {"size_bytes": len(raw), "sections": sorted(k for k, v in config.items() if isinstance(v, dict))}
    for section in required_sections:
        if not isinstance(config.get(section), dict):
            report.add(f"{name} has no [{section}] section")
        elif not config[section]:  # a header with nothing under it: no risk limits is not a config
            report.add(f"{name} has an empty [{section}] section")
    return report


def check_data(site: Site) -> Report:
    """Critical files exist; positions and trades parse with the expected columns; trade ids are
    unique; every position equals the net of its trades (and its average buy price)."""
    report = Report(subject="data")
    for relative in site.critical:
        path = site.path(relative.rstrip("/"))
        if relative.endswith("/") and not path.is_dir():
            report.add(f"{relative} (directory) is missing", kind="missing file(s)")
        elif not relative.endswith("/") and not path.is_file():
            report.add(f"{relative} is missing", kind="missing file(s)")
    trades_path, positions_path = site.path(site.trades_file), site.path(site.positions_file)
    if not trades_path.is_file() or not positions_path.is_file():
        for relative, path in ((site.trades_file, trades_path), (site.positions_file, positions_path)):
            if not path.is_file() and relative not in site.critical:
                report.add(f"{relative} is missing", kind="missing file(s)")
        return report
    with consistent_view(site):
        totals = _trade_totals(trades_path, site.trades_file, report)
        positions = _read_positions(positions_path, site.positions_file, report)
    if totals is None or positions is None:
        return report  # a parse failure already says the file is broken
    for relative, path in ((site.trades_file, trades_path), (site.positions_file, positions_path)):
        if not _ends_with_newline(path):
            report.add(f"{relative} ends mid-row (no final newline): the file looks truncated")
    _compare_positions(totals, positions, site.positions_file, report)
    return report


def _ends_with_newline(path: Path) -> bool:
    """A CSV cut mid-write loses its final newline; an empty file is left to the parser to judge."""
    with path.open("rb") as handle:
        handle.seek(0, 2)
        if handle.tell() == 0:
            return True
        handle.seek(-1, 2)
        return handle.read(1) == b"\n"


def _read_csv_problem(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _trade_totals(path: Path, shown: str, report: Report) -> Any:
    """Per-symbol net quantity, bought quantity and bought notional, or None if unreadable."""
    import numpy as np
    import pandas as pd

    ids: list[Any] = []
    parts = []
    rows = 0
    try:
        # Speed at millions of rows: symbol and side as categories; the timestamp is only tested for
        # being non-empty, as the ledger reader does (a converter skips pandas' NaN inference).
        reader = pd.read_csv(
            path,
            chunksize=TRADE_CHUNK_ROWS,
            dtype={"symbol": "category", "side": "category"},
            converters={"timestamp": str.strip},
            keep_default_na=False,  # a symbol "NA" is a name, as for the ledger reader; "" is missing
            skipinitialspace=True,
        )
        for chunk in reader:
            missing = [c for c in TRADE_COLUMNS if c not in chunk.columns]
            if missing:
                report.add(f"{shown} lacks column(s) {', '.join(missing)} (expected {', '.join(TRADE_COLUMNS)})")
                return None
            quantity = pd.to_numeric(chunk["quantity"], errors="coerce")
            price = pd.to_numeric(chunk["price"], errors="coerce")
            trade_id = pd.to_numeric(chunk["trade_id"], errors="coerce")
            # A missing field: NaN in the numbers, "" in the symbol and the timestamp, not buy/sell in side.
            bad = quantity.isna() | price.isna() | (quantity <= 0)
            bad |= chunk["symbol"].isna() | chunk["symbol"].str.strip().isin([""])
            bad |= ~chunk["timestamp"].fillna("").to_numpy().astype(bool)
            bad |= ~chunk["side"].isin(["buy", "sell"])
            # The same rows the ledger reader refuses: ids that are not whole numbers, infinite amounts.
            bad |= trade_id.isna() | (trade_id < 0) | (trade_id % 1 != 0)
            bad |= ~np.isfinite(quantity.fillna(0)) | ~np.isfinite(price.fillna(0))
            first_line = rows + 2  # +2: one for the header line, one because lines count from 1
            report.add_each(
                np.flatnonzero(bad.to_numpy()),
                lambda position, first_line=first_line: (
                    f"{shown} line {first_line + int(position)}: incomplete or invalid trade row"
                ),
                kind="invalid trade row(s)",
            )
            quantity, price = quantity[~bad], price[~bad]
            buys = chunk["side"][~bad] == "buy"
            signed = quantity.where(buys, -quantity)
            parts.append(
                pd.DataFrame(
                    {
                        "symbol": chunk["symbol"][~bad],
                        "net": signed,
                        "bought": quantity.where(buys, 0.0),
                        "notional": (quantity * price).where(buys, 0.0),
                    }
                )
                .groupby("symbol", observed=True)
                .sum()
                .rename(index=str)
            )
            ids.append(chunk["trade_id"].to_numpy())
            rows += len(chunk)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        report.add(f"{shown} cannot be parsed: {_read_csv_problem(exc)}")
        return None
    all_ids = pd.Series(np.concatenate(ids) if ids else np.array([]))
    duplicated = all_ids[all_ids.duplicated()]
    report.add_each(
        duplicated.unique(), lambda trade_id: f"{shown}: duplicate trade_id {trade_id}", kind="duplicate trade id(s)"
    )
    report.facts["trades"] = rows
    if not parts:
        return pd.DataFrame(columns=["net", "bought", "notional"])
    return pd.concat(parts).groupby(level=0).sum()


def _read_positions(path: Path, shown: str, report: Report) -> Any:
    import pandas as pd

    try:
        positions = pd.read_csv(path, dtype={"symbol": str}, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        report.add(f"{shown} cannot be parsed: {_read_csv_problem(exc)}")
        return None
    missing = [c for c in POSITION_COLUMNS if c not in positions.columns]
    if missing:
        report.add(f"{shown} lacks column(s) {', '.join(missing)} (expected {', '.join(POSITION_COLUMNS)})")
        return None
    for column in ("quantity", "avg_price"):
        numeric = pd.to_numeric(positions[column], errors="coerce")
        report.add_each(
            numeric[numeric.isna()].index,
            lambda position, column=column: f"{shown} line {int(position) + 2}: {column} is not a number",
            kind=f"position(s) whose {column} is not a number",
        )
        positions[column] = numeric
    if positions["symbol"].isna().any():
        report.add(f"{shown}: a row has no symbol")
    duplicated = positions["symbol"][positions["symbol"].duplicated()].unique()
    for symbol in duplicated:
        report.add(f"{shown}: symbol {symbol} appears more than once", kind="position(s) listed twice")
    if len(duplicated):
        return None  # which of the rows is the position? Nothing sensible to compare.
    report.facts["positions"] = len(positions)
    return positions.dropna().set_index("symbol")


def _compare_positions(totals: Any, positions: Any, shown: str, report: Report) -> None:
    """Positions are the net of trades; avg_price is the volume-weighted average buy price."""
    for symbol in sorted(set(totals.index) | set(positions.index)):
        net = float(totals["net"].get(symbol, 0.0))
        if symbol not in positions.index:
            if abs(net) > QUANTITY_TOLERANCE:
                report.add(f"{shown}: no position for {symbol}, but trades net to {net:.4f}", kind=MISMATCH)
            continue
        held = float(positions.at[symbol, "quantity"])
        if abs(held - net) > QUANTITY_TOLERANCE * max(1.0, abs(net)):
            report.add(f"{shown}: {symbol} quantity {held:.4f} differs from the net of trades {net:.4f}", kind=MISMATCH)
        bought = float(totals["bought"].get(symbol, 0.0))
        if bought > 0:
            expected = float(totals["notional"].get(symbol, 0.0)) / bought
            price = float(positions.at[symbol, "avg_price"])
            if abs(price - expected) > PRICE_RELATIVE_TOLERANCE * max(abs(expected), 1e-9) + 5e-7:
                report.add(
                    f"{shown}: {symbol} avg_price {price:.6f} differs from the trades' average buy price "
                    f"{expected:.6f}",
                    kind=MISMATCH,
                )
