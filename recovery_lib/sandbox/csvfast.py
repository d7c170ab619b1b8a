"""Vectorised CSV formatting: numbers to text at hundreds of MB/s with numpy.

``DataFrame.to_csv`` writes about 13 MB/s here, which makes a 1 GB sandbox take over a minute.
Instead each field becomes a (rows, width) block of ASCII bytes, padded with NUL where the text is
shorter than the width; the blocks are joined side by side and the NULs are squeezed out, which
yields ordinary variable-width CSV.
"""

from __future__ import annotations

import numpy as np

PAD = 0  # NUL never occurs in CSV text, so it can mark "no character here"


def digits(values: np.ndarray, width: int, *, strip_zeros: bool = True) -> np.ndarray:
    """Decimal digits of non-negative integers, right-aligned in ``width`` columns.

    Leading zeros become padding unless ``strip_zeros`` is False (the fraction part of a number).
    """
    values = np.asarray(values, dtype=np.int64)
    if values.size and (values.min() < 0 or (width < 19 and values.max() >= 10**width)):
        raise ValueError(f"values out of range for {width} digits: {values.min()}..{values.max()}")
    out = np.empty((values.shape[0], width), dtype=np.uint8)
    # 32-bit division is markedly faster than 64-bit when the values fit.
    remaining = values.astype(np.uint32) if width <= 9 else values.copy()
    for column in range(width - 1, -1, -1):
        digit = (remaining % 10).astype(np.uint8) + 48
        if strip_zeros and column < width - 1:
            digit *= remaining > 0  # a leading zero becomes PAD
        out[:, column] = digit
        remaining //= 10
    return out


def fixed_point(values: np.ndarray, int_width: int, decimals: int) -> np.ndarray:
    """Integers in units of 10**-decimals as ``123.4500`` (sign not supported: values >= 0)."""
    values = np.asarray(values, dtype=np.int64)
    scale = 10**decimals
    point = np.full((values.shape[0], 1), ord("."), dtype=np.uint8)
    return np.hstack([digits(values // scale, int_width), point, digits(values % scale, decimals, strip_zeros=False)])


def choice(index: np.ndarray, options: list[str]) -> np.ndarray:
    """``options[index[i]]`` for every row, padded to the longest option."""
    width = max(len(option) for option in options)
    table = np.zeros((len(options), width), dtype=np.uint8)
    for row, option in enumerate(options):
        encoded = option.encode("ascii")
        table[row, : len(encoded)] = np.frombuffer(encoded, dtype=np.uint8)
    return table[np.asarray(index)]


def constant(text: str, rows: int) -> np.ndarray:
    """The same text on every row (separators, suffixes)."""
    encoded = np.frombuffer(text.encode("ascii"), dtype=np.uint8)
    return np.broadcast_to(encoded, (rows, encoded.size))


def iso_utc(epoch_seconds: np.ndarray) -> np.ndarray:
    """``YYYY-MM-DDTHH:MM:SSZ`` for each epoch second (UTC, non-negative)."""
    seconds = np.asarray(epoch_seconds, dtype=np.int64)
    day_number, second_of_day = np.divmod(seconds, 86400)
    # A chunk spans few days: format each day once, then look rows up by day.
    first = int(day_number.min()) if day_number.size else 0
    day_index = day_number - first
    span = int(day_index.max()) + 1 if day_number.size else 1
    dates = np.datetime_as_string(np.arange(first, first + span).astype("datetime64[D]")).tolist()
    rows = seconds.shape[0]

    def two(values: np.ndarray) -> np.ndarray:
        return digits(values, 2, strip_zeros=False)

    return np.hstack(
        [
            choice(day_index, [f"{date}T" for date in dates]),
            two(second_of_day // 3600),
            constant(":", rows),
            two(second_of_day // 60 % 60),
            constant(":", rows),
            two(second_of_day % 60),
            constant("Z", rows),
        ]
    )


def csv_rows(fields: list[np.ndarray]) -> bytes:
    """Join field blocks with commas, end each row with a newline, squeeze out the padding."""
    rows = fields[0].shape[0]
    width = sum(block.shape[1] for block in fields) + len(fields)
    out = np.empty((rows, width), dtype=np.uint8)
    column = 0
    for block in fields:
        out[:, column : column + block.shape[1]] = block
        column += block.shape[1]
        out[:, column] = ord(",")
        column += 1
    out[:, -1] = ord("\n")
    return out.tobytes().translate(None, b"\0")  # bytes.translate deletes NULs at memory speed
