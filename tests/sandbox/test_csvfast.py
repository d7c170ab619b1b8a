"""The vectorised CSV formatters produce exactly what plain Python formatting produces."""

from __future__ import annotations

import string
from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from recovery_lib.sandbox import csvfast

INT64_MAX = int(np.iinfo(np.int64).max)
LAST_SECOND_OF_9999 = 253402300799  # 9999-12-31T23:59:59Z, the last second datetime can show


def texts(block: np.ndarray) -> list[str]:
    """The text of each row of a field block, padding removed."""
    return [bytes(row).replace(b"\0", b"").decode("ascii") for row in block]


def largest(width: int) -> int:
    return min(10**width - 1, INT64_MAX)


@st.composite
def width_and_values(draw: st.DrawFn) -> tuple[int, list[int]]:
    width = draw(st.integers(1, 19))
    edges = st.sampled_from([n for n in (0, 1, 9, 10, largest(width)) if n <= largest(width)])
    values = draw(st.lists(st.integers(0, largest(width)) | edges, max_size=40))
    return width, values


@given(width_and_values())
@example((1, [0, 9]))
@example((19, [0, 1, INT64_MAX]))
@example((9, [0, 10**8, 999_999_999]))
@example((10, [0, 10**9, 9_999_999_999]))
def test_digits_match_str(case: tuple[int, list[int]]) -> None:
    width, values = case
    block = csvfast.digits(np.array(values, dtype=np.int64), width)
    assert block.shape == (len(values), width)
    assert texts(block) == [str(n) for n in values]


@given(width_and_values())
@example((6, [0, 5, 40, 300_000]))
def test_digits_keep_leading_zeros_when_asked(case: tuple[int, list[int]]) -> None:
    width, values = case
    block = csvfast.digits(np.array(values, dtype=np.int64), width, strip_zeros=False)
    assert texts(block) == [f"{n:0{width}d}" for n in values]


@given(st.integers(1, 18), st.integers(0, 10**6))
def test_digits_reject_values_too_wide(width: int, excess: int) -> None:
    too_wide = 10**width + excess
    with pytest.raises(ValueError, match=f"out of range for {width} digits"):
        csvfast.digits(np.array([0, too_wide], dtype=np.int64), width)


@given(st.integers(1, 19), st.integers(-(2**63), -1))
def test_digits_reject_negative_values(width: int, negative: int) -> None:
    with pytest.raises(ValueError, match="out of range"):
        csvfast.digits(np.array([1, negative], dtype=np.int64), width)


def test_digits_of_no_rows_is_empty() -> None:
    assert csvfast.digits(np.array([], dtype=np.int64), 5).shape == (0, 5)


@given(st.lists(st.integers(0, 10**15 - 1) | st.sampled_from([0, 1, 9_999, 10_000, 10**15 - 1]), max_size=40))
@example([0, 1, 10, 100, 1_000, 10_000, 10_001, 123_400])
def test_fixed_point_four_decimals_matches_python(values: list[int]) -> None:
    block = csvfast.fixed_point(np.array(values, dtype=np.int64), 11, 4)
    assert texts(block) == [f"{v // 10**4}.{v % 10**4:04d}" for v in values]


@st.composite
def fixed_point_cases(draw: st.DrawFn) -> tuple[int, int, list[int]]:
    decimals = draw(st.integers(1, 8))
    int_width = draw(st.integers(1, 18 - decimals))
    top = 10 ** (int_width + decimals) - 1
    values = draw(st.lists(st.integers(0, top) | st.sampled_from([0, 1, top]), max_size=30))
    return int_width, decimals, values


@given(fixed_point_cases())
def test_fixed_point_any_width_matches_python(case: tuple[int, int, list[int]]) -> None:
    int_width, decimals, values = case
    scale = 10**decimals
    block = csvfast.fixed_point(np.array(values, dtype=np.int64), int_width, decimals)
    assert block.shape == (len(values), int_width + 1 + decimals)
    assert texts(block) == [f"{v // scale}.{v % scale:0{decimals}d}" for v in values]


@given(st.integers(1, 10), st.integers(0, 10**4 - 1))
def test_fixed_point_rejects_integer_part_too_wide(int_width: int, fraction: int) -> None:
    value = 10**int_width * 10**4 + fraction  # integer part has int_width + 1 digits
    with pytest.raises(ValueError, match="out of range"):
        csvfast.fixed_point(np.array([value], dtype=np.int64), int_width, 4)


@given(st.integers(-(10**12), -1))
def test_fixed_point_rejects_negative_values(value: int) -> None:
    with pytest.raises(ValueError, match="out of range"):
        csvfast.fixed_point(np.array([0, value], dtype=np.int64), 12, 4)


def iso(second: int) -> str:
    return datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# A chunk spans a limited window (the formatter renders every day in between), anywhere in 1970..9999.
@given(
    st.integers(0, LAST_SECOND_OF_9999 - 40 * 86_400),
    st.lists(st.integers(0, 40 * 86_400) | st.sampled_from([0, 86_399, 86_400]), max_size=40),
)
@example(0, [0, 1, 59, 60, 3_599, 3_600, 86_399, 86_400])
@example(951_782_400 - 86_400, [0, 86_400, 2 * 86_400])  # 2000-02-28, leap day, 2000-03-01
@example(LAST_SECOND_OF_9999 - 40 * 86_400, [40 * 86_400])
def test_iso_utc_matches_datetime(base: int, offsets: list[int]) -> None:
    seconds = [base + offset for offset in offsets]
    block = csvfast.iso_utc(np.array(seconds, dtype=np.int64))
    assert texts(block) == [iso(s) for s in seconds]


def test_iso_utc_unsorted_rows_and_far_apart_days() -> None:
    seconds = [1_790_000_000, 0, 4_102_444_799, 86_400]  # 2026, 1970, 2099-12-31T23:59:59, 1970
    assert texts(csvfast.iso_utc(np.array(seconds, dtype=np.int64))) == [iso(s) for s in seconds]


csv_text = st.text(alphabet=string.ascii_letters + string.digits + " /._-:", max_size=12)


@given(
    st.lists(csv_text, min_size=1, max_size=6),
    st.lists(st.tuples(st.integers(0, 5), st.integers(0, 10**12)), max_size=40),
)
@example(["buy", "sell"], [(0, 0), (1, 7)])
@example(["", "x"], [(0, 1), (1, 2)])
def test_choice_and_csv_rows_match_join(options: list[str], rows: list[tuple[int, int]]) -> None:
    picks = [index % len(options) for index, _ in rows]
    numbers = [number for _, number in rows]
    choice_block = csvfast.choice(np.array(picks, dtype=np.int64), options)
    assert texts(choice_block) == [options[i] for i in picks]
    out = csvfast.csv_rows([csvfast.digits(np.array(numbers, dtype=np.int64), 13), choice_block])
    assert out == "".join(f"{n},{options[i]}\n" for n, i in zip(numbers, picks, strict=True)).encode("ascii")


def test_csv_rows_of_a_trade_chunk() -> None:
    ids = np.array([1, 20, 300], dtype=np.int64)
    stamps = np.array([0, 1_790_000_000, 1_790_000_001], dtype=np.int64)
    quantity = np.array([1, 10_000, 123_456_789], dtype=np.int64)
    out = csvfast.csv_rows(
        [
            csvfast.digits(ids, 3),
            csvfast.iso_utc(stamps),
            csvfast.choice(np.array([1, 0, 1]), ["buy", "sell"]),
            csvfast.fixed_point(quantity, 5, 4),
        ]
    )
    assert out.decode("ascii").splitlines() == [
        "1,1970-01-01T00:00:00Z,sell,0.0001",
        "20,2026-09-21T14:13:20Z,buy,1.0000",
        "300,2026-09-21T14:13:21Z,sell,12345.6789",
    ]
