"""Build a realistic Peak_Trade-like sandbox site of any size, fast and in flat memory.

Trades are generated in chunks with numpy and written by :mod:`.csvfast`; positions are the exact
net of the trades (quantities are integers of 1e-4 units until printed); daily reports (``data/
reports/YYYY/MM/``), the bulk of a large site, are written by two processes in parallel; a market-data
cache of small files (:mod:`.cache`) is optional. The site is built in a hidden sibling directory and
renamed into place, so a half-built sandbox never appears. Its recovery.toml names a ``file://``
replica beside it (``<DIR>-offsite``, see :mod:`.destination`).

The simulated exchange in ``exchange/`` starts with balances equal to the positions and an empty
fill log (``my_trades.csv``, header only): its history through the API begins when the sandbox is
created. Copying the generated trades into it would double the size of a 1 GB sandbox, and the
trades that matter to a recovery are the ones made after the restore point, which ``live_ops``
logs as it makes them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from recovery_lib import clock
from recovery_lib.errors import InvalidArgumentError, SiteError
from recovery_lib.sandbox import csvfast
from recovery_lib.sandbox.cache import write_market_cache
from recovery_lib.sandbox.destination import (
    REPLICA_NAME,
    prepare_destination,
    remove_old_replica,
    replica_dir,
    units_dir_name,
)
from recovery_lib.sandbox.templates import CONFIG_TOML, RECOVERY_TOML
from recovery_lib.schedule import install
from recovery_lib.site.config import SANDBOX_MARKER, load_site
from recovery_lib.trading.exchange import SIMULATED_ACCOUNT_FILE, SIMULATED_FILLS_FILE
from recovery_lib.trading.ledger import positions_text, units_text

# symbol -> reference price in USD; all symbols are 7 characters so the CSV stays regular.
SYMBOLS: dict[str, float] = {
    "BTC/USD": 43000.0,
    "ETH/USD": 2300.0,
    "SOL/USD": 100.0,
    "BNB/USD": 300.0,
    "LTC/USD": 70.0,
    "DOT/USD": 7.0,
    "XRP/USD": 0.6,
    "ADA/USD": 0.5,
}
UNITS = 10_000  # quantities and prices are integers of 1e-4
TRADE_NOTIONAL_USD = 5_000  # upper bound of one trade's size
HISTORY = timedelta(days=30)  # trades span the last 30 days up to "now"
CHUNK_ROWS = 100_000  # small enough to stay in cache, large enough to amortise numpy calls
TRADES_HEADER = b"trade_id,timestamp,symbol,side,quantity,price\n"
FILLS_HEADER = b"fill_id,timestamp,symbol,side,quantity,price,fee\n"
EXCHANGE_FILE = SIMULATED_ACCOUNT_FILE
FILL_LOG_FILE = SIMULATED_FILLS_FILE
DECIMALS = 4  # of quantities and prices: UNITS = 10**DECIMALS

Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class SandboxSpec:
    """What to generate. ``size_bytes`` (if set) grows the reports until the site reaches it."""

    trades: int = 5_000
    reports: int = 30
    report_rows: int = 200
    cache_files: int = 0  # small candle files under data/cache/ (see .cache)
    seed: int = 7
    size_bytes: int | None = None
    now: datetime | None = None


@dataclass(frozen=True)
class SandboxSummary:
    """What :func:`create_sandbox` made."""

    root: Path
    trades: int
    reports: int
    bytes_written: int
    seconds: float
    cache_files: int = 0
    positions: dict[str, float] = field(default_factory=dict)
    schedule: str = ""  # where its schedule was installed


def parse_size(text: str) -> int:
    """``"1G"``, ``"500M"``, ``"64k"`` or a plain byte count to bytes."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(?:([kmgt])(?:ib|b)?|b)?\s*", text, flags=re.IGNORECASE)
    if not match:
        raise InvalidArgumentError(f"size {text!r} is not a size; use e.g. 500M, 1G or 4096")
    number, unit = float(match.group(1)), (match.group(2) or "").upper()
    return int(number * 1024 ** " KMGT".index(unit or " "))


def _symbol_arrays() -> tuple[list[str], np.ndarray, np.ndarray]:
    names = list(SYMBOLS)
    price_units = np.array([round(SYMBOLS[name] * UNITS) for name in names], dtype=np.int64)
    max_qty_units = np.array([round(TRADE_NOTIONAL_USD / SYMBOLS[name] * UNITS) for name in names], dtype=np.int64)
    return names, price_units, max_qty_units


def _trade_columns(rng: np.random.Generator, rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Random symbol index, side (0 buy, 1 sell), quantity units and price units for ``rows`` trades."""
    _, ref_price, max_qty = _symbol_arrays()
    symbol = rng.integers(0, len(ref_price), rows)
    side = (rng.random(rows) >= 0.6).astype(np.int64)  # 60 % buys keeps positions long
    qty = rng.integers(1, max_qty[symbol] + 1) // (1 + side)  # sells are half-size
    qty = np.maximum(qty, 1)
    drift = 1.0 + 0.03 * (rng.random(rows) * 2.0 - 1.0)
    price = np.maximum(np.rint(ref_price[symbol] * drift).astype(np.int64), 1)
    return symbol, side, qty, price


def _digits_for(values: np.ndarray) -> int:
    return max(1, len(str(int(values.max())))) if values.size else 1


def _format_fixed(values: np.ndarray) -> np.ndarray:
    return csvfast.fixed_point(values, _digits_for(values // UNITS), 4)


@dataclass
class _Book:
    """Exact running totals per symbol, in integer units."""

    net: dict[str, int] = field(default_factory=dict)
    bought: dict[str, int] = field(default_factory=dict)
    bought_notional: dict[str, int] = field(default_factory=dict)
    last_price: dict[str, int] = field(default_factory=dict)

    def add(self, names: list[str], symbol: np.ndarray, side: np.ndarray, qty: np.ndarray, price: np.ndarray) -> None:
        signed = np.where(side == 0, qty, -qty)
        buys = side == 0
        for index, name in enumerate(names):
            mine = symbol == index
            if not mine.any():
                continue
            self.net[name] = self.net.get(name, 0) + int(signed[mine].sum())
            mine_buys = mine & buys
            self.bought[name] = self.bought.get(name, 0) + int(qty[mine_buys].sum())
            self.bought_notional[name] = self.bought_notional.get(name, 0) + int(
                (qty[mine_buys] * price[mine_buys]).sum()
            )
            self.last_price[name] = int(price[np.flatnonzero(mine)[-1]])

    def positions_csv(self) -> str:
        return positions_text(self.net, self.bought, self.bought_notional, DECIMALS, DECIMALS)


def _write_trades(path: Path, spec: SandboxSpec, now: datetime, progress: Progress, total: int) -> tuple[_Book, int]:
    names, _, _ = _symbol_arrays()
    rng = np.random.default_rng([spec.seed, 1])
    book = _Book()
    end = int(now.timestamp())
    start = end - int(HISTORY.total_seconds())
    written = 0
    with path.open("wb") as handle:
        written += handle.write(TRADES_HEADER)
        for first in range(0, spec.trades, CHUNK_ROWS):
            rows = min(CHUNK_ROWS, spec.trades - first)
            ids = np.arange(first + 1, first + rows + 1, dtype=np.int64)
            # Evenly spaced over the history window, the last trade at "now".
            stamps = start + (ids * (end - start)) // max(spec.trades, 1)
            symbol, side, qty, price = _trade_columns(rng, rows)
            book.add(names, symbol, side, qty, price)
            written += handle.write(
                csvfast.csv_rows(
                    [
                        csvfast.digits(ids, _digits_for(ids)),
                        csvfast.iso_utc(stamps),
                        csvfast.choice(symbol, names),
                        csvfast.choice(side, ["buy", "sell"]),
                        _format_fixed(qty),
                        _format_fixed(price),
                    ]
                )
            )
            progress(written, total, "trades")
    return book, written


def write_fills_report(path: str, seed: int, index: int, day_start: int, budget_bytes: int, rows: int) -> int:
    """Write one daily fills report: ``rows`` rows, or as many as fit ``budget_bytes`` if that is set.

    A top-level function so a process pool can run it.
    """
    names, _, _ = _symbol_arrays()
    rng = np.random.default_rng([seed, 2, index])
    written = 0
    next_id = 1
    expected_rows = max(budget_bytes // 60, 1) if budget_bytes else max(rows, 1)
    planned = expected_rows * 11 // 10 + 64 if budget_bytes else rows  # a small report draws few rows
    with open(path, "wb") as handle:
        written += handle.write(FILLS_HEADER)
        while True:
            chunk = min(CHUNK_ROWS, planned - next_id + 1)
            if chunk <= 0 and not budget_bytes:
                break
            if chunk <= 0:  # the rows came out shorter than the budget expected: draw some more
                planned += expected_rows // 10 + 64
                continue
            ids = np.arange(next_id, next_id + chunk, dtype=np.int64)
            stamps = day_start + np.minimum(ids * 86_400 // expected_rows, 86_399)
            symbol, side, qty, price = _trade_columns(rng, chunk)
            fee = qty * price // (UNITS * 1000)  # 10 bp, in price units
            text = csvfast.csv_rows(
                [
                    csvfast.digits(ids, _digits_for(ids)),
                    csvfast.iso_utc(stamps),
                    csvfast.choice(symbol, names),
                    csvfast.choice(side, ["buy", "sell"]),
                    _format_fixed(qty),
                    _format_fixed(price),
                    _format_fixed(fee),
                ]
            )
            if budget_bytes and written + len(text) >= budget_bytes:
                cut = text.rfind(b"\n", 0, max(budget_bytes - written, 0)) + 1  # whole rows only
                written += handle.write(text[:cut])
                break
            written += handle.write(text)
            next_id += chunk
    return written


def _write_reports(
    reports_dir: Path, spec: SandboxSpec, now: datetime, budget: int, progress: Progress, done: int, total: int
) -> int:
    today = int(now.replace(hour=0, minute=0, second=0, microsecond=0).timestamp())
    per_report = budget // spec.reports if budget else 0
    jobs = []
    for index in range(spec.reports):
        day_start = today - 86_400 * (spec.reports - index)
        day = datetime.fromtimestamp(day_start, UTC).strftime("%Y-%m-%d")
        path = reports_dir / day[:4] / day[5:7] / f"fills_{day}_{index:04d}.csv"
        if index == 0 or day.endswith("-01"):  # the first report of a month
            path.parent.mkdir(parents=True, exist_ok=True)
        jobs.append((str(path), spec.seed, index, day_start, per_report, spec.report_rows))
    written = 0
    if budget < 64 * 1024 * 1024 or (os.cpu_count() or 1) < 2:
        for job in jobs:
            written += write_fills_report(*job)
            progress(done + written, total, "reports")
        return written
    with ProcessPoolExecutor(max_workers=2) as pool:
        for future in as_completed([pool.submit(write_fills_report, *job) for job in jobs]):
            written += future.result()
            progress(done + written, total, "reports")
    return written


def create_sandbox(
    dest: str | os.PathLike[str],
    spec: SandboxSpec | None = None,
    *,
    force: bool = False,
    progress: Progress | None = None,
) -> SandboxSummary:
    """Create a sandbox site at ``dest``.

    Refuses a non-empty directory that is not a sandbox; replaces an existing sandbox only with
    ``force``. ``progress(done_bytes, total_bytes, phase)`` is called as data is written.
    """
    spec = spec or SandboxSpec()
    if spec.trades < 1 or min(spec.reports, spec.report_rows, spec.cache_files) < 0:
        raise InvalidArgumentError("trades must be >= 1, reports, report rows and cache files >= 0")
    began = time.monotonic()
    now = (spec.now or clock.now()).astimezone(UTC).replace(microsecond=0)
    dest = Path(dest).expanduser().absolute()
    prepare_destination(dest, force)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SiteError(
            f"cannot create {dest.parent} for the sandbox ({exc.strerror}); choose another path for the sandbox."
        ) from exc
    report = progress or (lambda done, total, phase: None)
    estimated_trades = spec.trades * 56
    total = max(spec.size_bytes or 0, estimated_trades + spec.reports * spec.report_rows * 62 + spec.cache_files * 3800)

    staging = dest.parent / f".{dest.name}.creating-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        for sub in ("config", "state", "data/reports", "exchange", "run", "backups"):
            (staging / sub).mkdir(parents=True)
        book, trade_bytes = _write_trades(staging / "data/trades.csv", spec, now, report, total)
        positions = book.positions_csv()
        (staging / "data/positions.csv").write_text(positions)
        small = _write_small_files(staging, dest, spec, now, book)
        small += write_market_cache(staging, spec.cache_files, spec.seed, now, SYMBOLS)
        report(trade_bytes + small, total, "cache")
        budget = max((spec.size_bytes or 0) - trade_bytes - len(positions) - small, 0) if spec.size_bytes else 0
        if spec.size_bytes and budget and spec.reports == 0:
            raise InvalidArgumentError("a size target needs at least one report to fill (use --reports N with N >= 1)")
        report_bytes = _write_reports(staging / "data/reports", spec, now, budget, report, trade_bytes + small, total)
        _swap_into_place(staging, dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    remove_old_replica(dest)  # an earlier sandbox's backups (prepare_destination allowed it: --force)
    plan, _ = install(load_site(dest), "systemd")  # into <DIR>-units, which systemd does not read
    return SandboxSummary(
        root=dest,
        trades=spec.trades,
        reports=spec.reports,
        bytes_written=trade_bytes + len(positions) + small + report_bytes,
        seconds=time.monotonic() - began,
        cache_files=spec.cache_files,
        positions={name: units / UNITS for name, units in book.net.items()},
        schedule=f"systemd units in {plan.where} (a directory systemd does not read: they never run by themselves)",
    )


def _write_small_files(root: Path, dest: Path, spec: SandboxSpec, now: datetime, book: _Book) -> int:
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    symbols = sorted(book.net)
    files = {
        "recovery.toml": RECOVERY_TOML.format(
            python=sys.executable,
            replica_name=REPLICA_NAME,
            replica_url=replica_dir(dest).as_uri(),
            units_dir=json.dumps(f"../{units_dir_name(dest)}"),  # a JSON string is a TOML basic string
        ),
        "config/config.toml": CONFIG_TOML.format(symbols=json.dumps(symbols)),
        "state/session.json": json.dumps(
            {"last_trade_id": spec.trades, "trade_count": spec.trades, "updated_at": stamp}, indent=2
        ),
        "state/strategy_state.json": json.dumps(
            {
                "strategy": "mean_reversion",
                "updated_at": stamp,
                "symbols": {
                    name: {
                        "signal": "long" if book.net[name] > 0 else "flat",
                        "last_price": book.last_price[name] / UNITS,
                    }
                    for name in symbols
                },
            },
            indent=2,
        ),
        f"exchange/{EXCHANGE_FILE}": json.dumps(_exchange_account(book, stamp), indent=2),
        f"exchange/{FILL_LOG_FILE}": TRADES_HEADER.decode(),
        SANDBOX_MARKER: json.dumps(
            {
                "kind": "recovery-sandbox",
                "format": 1,
                "created_at": stamp,
                "seed": spec.seed,
                "trades": spec.trades,
                "reports": spec.reports,
                "cache_files": spec.cache_files,
            },
            indent=2,
        ),
    }
    written = 0
    for relative, text in files.items():
        written += (root / relative).write_text(text + ("" if text.endswith("\n") else "\n"))
    return written


def _exchange_account(book: _Book, stamp: str) -> dict[str, object]:
    """The simulated exchange's view: balances per base currency equal the positions."""
    balances = {name.split("/")[0]: units_text(units, DECIMALS) for name, units in book.net.items()}
    balances["USD"] = "250000.0000"
    return {
        "exchange": "simulated",
        "updated_at": stamp,
        "balances": {currency: float(text) for currency, text in sorted(balances.items())},
        "tickers": {name: book.last_price[name] / UNITS for name in sorted(book.last_price)},
    }


def _swap_into_place(staging: Path, dest: Path) -> None:
    old = None
    if dest.exists():
        if any(dest.iterdir()):
            old = dest.parent / f".{dest.name}.replaced-{os.getpid()}"
            dest.rename(old)
        else:
            dest.rmdir()
    staging.rename(dest)
    if old is not None:
        shutil.rmtree(old)
