"""A sandbox's market-data cache: thousands of small candle files, as a trading site's data cache holds.

One file per symbol and day, going back from yesterday:
``data/cache/<BASE>-<QUOTE>/<YYYY-MM>/candles_<BASE>-<QUOTE>_<YYYY-MM-DD>.csv``, holding 18 to 96
consecutive 15-minute candles of that day (1 to 8 KB). The rows of a batch of files are drawn and
formatted at once with numpy (:mod:`.csvfast`) and then cut into files, so Python's per-file cost is
an open and a write: 20,000 files take about a second.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np

from recovery_lib.sandbox import csvfast

CACHE_DIR = "data/cache"
HEADER = b"timestamp,open,high,low,close,volume\n"
CANDLE_S = 900  # 15-minute candles
CANDLES_PER_DAY = 86_400 // CANDLE_S
MIN_ROWS = 18  # the shortest row (a cheap coin's) is ~57 bytes: 18 rows and the header pass 1 KB
BATCH_FILES = 2_000  # rows of a batch stay within a few MB
DECIMALS = 4


def cache_file(symbol: str, day: str) -> str:
    """The path of one candle file, relative to the site (``day`` is ``YYYY-MM-DD``)."""
    pair = symbol.replace("/", "-")
    return f"{CACHE_DIR}/{pair}/{day[:7]}/candles_{pair}_{day}.csv"


def write_market_cache(root: Path, count: int, seed: int, now: datetime, symbols: dict[str, float]) -> int:
    """Write ``count`` candle files under ``root/data/cache``; the bytes written.

    File ``i`` is symbol ``i % len(symbols)`` on the ``i // len(symbols) + 1``-th day before ``now``
    (UTC). Deterministic from ``seed`` and the day of ``now``.
    """
    if count == 0:
        return 0
    names = list(symbols)
    units = 10**DECIMALS
    reference = np.array([round(symbols[name] * units) for name in names], dtype=np.int64)
    rng = np.random.default_rng([seed, 3])
    written = 0
    made: set[Path] = set()
    for first in range(0, count, BATCH_FILES):
        index = np.arange(first, min(first + BATCH_FILES, count), dtype=np.int64)
        symbol = index % len(names)
        day_number = int(now.timestamp()) // 86_400 - 1 - index // len(names)
        rows = rng.integers(MIN_ROWS, CANDLES_PER_DAY + 1, index.size)
        first_slot = rng.integers(0, CANDLES_PER_DAY - rows + 1)
        blob, ends = _candles(rng, reference[symbol], day_number, rows, first_slot)
        days = np.datetime_as_string(day_number.astype("datetime64[D]")).tolist()
        start = 0
        for file_symbol, day, end in zip(symbol.tolist(), days, ends.tolist(), strict=True):
            path = root / cache_file(names[file_symbol], day)
            if path.parent not in made:
                path.parent.mkdir(parents=True, exist_ok=True)
                made.add(path.parent)
            with open(path, "wb") as handle:
                written += handle.write(HEADER) + handle.write(blob[start:end])
            start = end
    return written


def _candles(
    rng: np.random.Generator, price: np.ndarray, day_number: np.ndarray, rows: np.ndarray, first_slot: np.ndarray
) -> tuple[memoryview, np.ndarray]:
    """The CSV rows of every file of a batch in one buffer, and the offset where each file's rows end."""
    owner = np.repeat(np.arange(rows.size), rows)  # the file of each row
    row_in_file = np.arange(owner.size) - np.repeat(np.cumsum(rows) - rows, rows)
    stamps = day_number[owner] * 86_400 + (first_slot[owner] + row_in_file) * CANDLE_S
    level = price * (1.0 + 0.03 * (rng.random(rows.size) * 2.0 - 1.0))  # the day's price level per file
    open_ = level[owner] * (1.0 + 0.004 * (rng.random(owner.size) * 2.0 - 1.0))
    close = open_ * (1.0 + 0.004 * (rng.random(owner.size) * 2.0 - 1.0))
    high = np.maximum(open_, close) * (1.0 + 0.002 * rng.random(owner.size))
    low = np.minimum(open_, close) * (1.0 - 0.002 * rng.random(owner.size))
    notional = rng.integers(10_000, 2_000_000, owner.size)  # USD traded in the candle
    volume = notional * 10 ** (2 * DECIMALS) // np.maximum(np.rint(close).astype(np.int64), 1)
    fields = [csvfast.iso_utc(stamps)]
    for values in (open_, high, low, close):
        fields.append(_fixed(np.maximum(np.rint(values).astype(np.int64), 1)))
    fields.append(_fixed(volume))
    # Each row's length once the padding is squeezed out: its characters, the commas and the newline.
    lengths = sum(np.count_nonzero(block, axis=1) for block in fields) + len(fields)
    row_ends = np.cumsum(lengths)
    return memoryview(csvfast.csv_rows(fields)), row_ends[np.cumsum(rows) - 1]


def _fixed(values: np.ndarray) -> np.ndarray:
    whole = values // 10**DECIMALS
    return csvfast.fixed_point(values, max(1, len(str(int(whole.max())))), DECIMALS)
