"""The trade ledger on a real sandbox: read tolerantly, each corruption diagnosed, repaired exactly
(what a repair drops is listed and what it loses is counted), and written atomically only while the
trading system is stopped."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recovery_lib.site.config import load_site
from recovery_lib.site.integrity import check_data
from recovery_lib.site.process import process_status
from recovery_lib.trading.exchange import get_exchange_client
from recovery_lib.trading.ledger import (
    HEADER,
    Ledger,
    LedgerError,
    Trade,
    TradeRows,
    parse_row,
    plan_repair,
    positions_csv,
    positions_of,
    read_ledger,
    trade_from_fill,
    write_ledger,
)
from recovery_lib.trading.replay import exchange_fills

TRADES = "data/trades.csv"


def ledger_of(sandbox: Path) -> Ledger:
    return read_ledger(sandbox / TRADES, TRADES)


def lines_of(sandbox: Path) -> list[str]:
    return (sandbox / TRADES).read_text().splitlines()


def trade_live(sandbox: Path, trades: int) -> None:
    """Let the sandbox's real trading process make ``trades`` trades, then stop."""
    done = subprocess.run(
        [sys.executable, "-m", "recovery_lib.sandbox.live_ops", "--site", str(sandbox), "--interval", "0.01"]
        + ["--max-trades", str(trades)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


@pytest.fixture
def pretend_running(sandbox: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A real process the site's [process] settings take for its trading system (pidfile + 'live_ops' in
    its command line), which writes nothing: so a test can prove a refusal changed nothing at all."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "live_ops"])
    (sandbox / "run").mkdir(exist_ok=True)
    (sandbox / "run/live_ops.pid").write_text(f"{process.pid}\n")
    try:
        deadline = time.monotonic() + 10
        while process_status(load_site(sandbox)).running is not True and time.monotonic() < deadline:
            time.sleep(0.02)
        yield process
    finally:
        process.kill()
        process.wait()
        (sandbox / "run/live_ops.pid").unlink(missing_ok=True)


# --- a clean ledger -------------------------------------------------------------------------------


def test_a_fresh_sandbox_ledger_is_clean_and_its_positions_are_byte_identical(sandbox: Path) -> None:
    ledger = ledger_of(sandbox)
    assert ledger.exists and not ledger.needs_repair and ledger.problems() == []
    assert len(ledger.trades) == 500 and ledger.ids == set(range(1, 501))
    assert [t.line for t in ledger.trades] == lines_of(sandbox)[1:]
    assert ledger.trades[0] == parse_row(lines_of(sandbox)[1])
    assert ledger.trades[-1].trade_id == 500 and ledger.highest_id() == 500
    written = (sandbox / "data/positions.csv").read_text()
    assert positions_csv(ledger.trades) == written
    assert positions_csv(list(ledger.trades)) == written  # the object path and the column path agree
    held = {line.split(",")[0]: Decimal(line.split(",")[1]) for line in written.splitlines()[1:]}
    assert positions_of(ledger.trades) == held == positions_of(list(ledger.trades))
    repair = plan_repair(ledger)
    assert not repair.needed and repair.trades_lost == 0 and repair.dropped == []
    assert repair.summary() == "the ledger needs no repair"


def test_positions_of_live_ops_trades_are_byte_identical(sandbox: Path) -> None:
    """live_ops rewrites positions after every trade; the ledger's formatter writes the same bytes."""
    trade_live(sandbox, 12)
    assert positions_csv(ledger_of(sandbox).trades) == (sandbox / "data/positions.csv").read_text()


def test_unusual_but_valid_rows_read_the_same(sandbox: Path) -> None:
    """CRLF line ends and spaces around fields take the row-by-row path; they are the same trades."""
    original = ledger_of(sandbox)
    text = (sandbox / TRADES).read_text()
    (sandbox / TRADES).write_text(text.replace(",", ", ").replace("\n", "\r\n"))
    odd = ledger_of(sandbox)
    assert not odd.header_missing and not odd.invalid_lines and odd.torn_last_row is None
    assert odd.ids == original.ids
    assert all(a.same_trade(b) for a, b in zip(odd.trades, original.trades, strict=True))
    assert positions_of(odd.trades) == positions_of(original.trades)
    assert odd.trades[7].line == original.trades[7].line.replace(",", ", ") + "\r"  # kept byte for byte


# --- each corruption, diagnosed and repaired ------------------------------------------------------


def test_fifty_duplicated_rows_are_exact_copies_and_the_repair_loses_nothing(sandbox: Path) -> None:
    before = (sandbox / TRADES).read_bytes()
    rows = lines_of(sandbox)[1:]
    copies = rows[100:150]
    with (sandbox / TRADES).open("a") as handle:
        handle.write("\n".join(copies) + "\n")
    ledger = ledger_of(sandbox)
    assert len(ledger.trades) == 550 and ledger.needs_repair
    duplicated = ledger.duplicates()
    assert sorted(duplicated) == list(range(101, 151))
    assert all(len(rows_) == 2 and rows_[0] == rows_[1] for rows_ in duplicated.values())

    repair = plan_repair(ledger)
    assert repair.dropped == [(line, f"exact duplicate copy: trade_id {line.split(',')[0]}") for line in copies]
    assert repair.trades_lost == 0 and not repair.header_added
    assert list(repair.trades) == list(ledger_of_bytes(sandbox, before).trades)
    assert "drops 50 row(s) (exact duplicate copy: 50)" in repair.summary() and "loses no trade" in repair.summary()

    write_ledger(load_site(sandbox), repair.trades)
    assert (sandbox / TRADES).read_bytes() == before
    assert check_data(load_site(sandbox)).ok


def ledger_of_bytes(sandbox: Path, data: bytes) -> Ledger:
    path = sandbox / "other.csv"
    path.write_bytes(data)
    return read_ledger(path, "other.csv")


def test_a_conflicting_duplicate_is_resolved_by_the_exchanges_fill(sandbox: Path) -> None:
    """An id written twice with different contents: the exchange says which row is the trade. Without
    the exchange the repair keeps the first row and says a person must check it."""
    trade_live(sandbox, 3)
    site = load_site(sandbox)
    fills = exchange_fills(get_exchange_client(site))
    true_row = lines_of(sandbox)[-1]
    trade_id, stamp, symbol, side, quantity, price = true_row.split(",")
    forged = f"{trade_id},{stamp},{symbol},{side},{Decimal(quantity) + 1:.4f},{price}"
    rows = lines_of(sandbox)
    (sandbox / TRADES).write_text("\n".join([*rows[:-1], forged, true_row]) + "\n")  # the wrong one first

    ledger = ledger_of(sandbox)
    assert [t.line for t in ledger.duplicates()[int(trade_id)]] == [forged, true_row]

    guessed = plan_repair(ledger)  # no exchange: the first row is kept, and flagged
    assert guessed.unconfirmed_ids == [int(trade_id)] and "check it by hand" in guessed.notes[0]
    assert guessed.trades[-1].line == forged

    repair = plan_repair(ledger, fills)
    assert repair.unconfirmed_ids == []
    assert repair.dropped == [(forged, f"conflicting duplicate (the exchange's fill kept): trade_id {trade_id}")]
    assert repair.trades[-1].line == true_row == fills[int(trade_id)].line
    assert repair.trades_lost == 0
    write_ledger(site, repair.trades)
    assert lines_of(sandbox) == rows
    assert check_data(site).ok


def test_a_torn_last_row_is_dropped_and_counted_as_lost(sandbox: Path) -> None:
    data = (sandbox / TRADES).read_bytes()
    last = data.rstrip(b"\n").rfind(b"\n") + 1
    torn = data[last : last + 30].decode()
    (sandbox / TRADES).write_bytes(data[: last + 30])
    ledger = ledger_of(sandbox)
    assert ledger.torn_last_row == torn and ledger.invalid_lines == [] and len(ledger.trades) == 499
    assert ledger.highest_id() == 500  # the torn row still shows its id: it is never reused
    repair = plan_repair(ledger)
    assert repair.dropped == [(torn, "torn last row: no final newline and it does not parse")]
    assert repair.trades_lost == 1  # trade 500 is gone unless the exchange gives it back (see test_replay)
    write_ledger(load_site(sandbox), repair.trades)
    assert (sandbox / TRADES).read_bytes() == data[:last]


def test_a_last_row_cut_inside_its_last_number_is_replaced_by_the_exchanges_fill(sandbox: Path) -> None:
    """ "...,43000.12" parses: only the missing newline gives the cut away. The exchange knows the
    real row; without it the repair keeps the row and says nobody could confirm it."""
    trade_live(sandbox, 2)
    site = load_site(sandbox)
    data = (sandbox / TRADES).read_bytes()
    (sandbox / TRADES).write_bytes(data[:-3])
    ledger = ledger_of(sandbox)
    assert ledger.unterminated_last_row and ledger.torn_last_row is None and ledger.needs_repair
    cut = ledger.trades[-1]

    unconfirmed = plan_repair(ledger)
    assert unconfirmed.newline_added and unconfirmed.unconfirmed_ids == [cut.trade_id]

    repair = plan_repair(ledger, exchange_fills(get_exchange_client(site)))
    assert repair.dropped == [
        (cut.line, f"differs from the exchange's fill of this id (the exchange's fill kept): trade_id {cut.trade_id}")
    ]
    write_ledger(site, repair.trades)
    assert (sandbox / TRADES).read_bytes() == data


def test_a_removed_header_is_put_back(sandbox: Path) -> None:
    before = (sandbox / TRADES).read_bytes()
    (sandbox / TRADES).write_bytes(before.split(b"\n", 1)[1])
    ledger = ledger_of(sandbox)
    assert ledger.header_missing and len(ledger.trades) == 500 and ledger.trades[0].trade_id == 1
    repair = plan_repair(ledger)
    assert repair.header_added and repair.dropped == [] and repair.trades_lost == 0
    assert "adds the missing header" in repair.summary()
    write_ledger(load_site(sandbox), repair.trades)
    assert (sandbox / TRADES).read_bytes() == before


@pytest.mark.parametrize(
    ("garbage", "lost"),
    [("#@!%garbage%!@#", 1), ("77,2026-11-20T12:00:00Z,BTC/USD,hold,1.0000,43000.0000", 0), ("", 0)],
    ids=["unreadable", "shows-a-kept-id", "blank"],
)
def test_an_unparseable_middle_row_is_dropped(sandbox: Path, garbage: str, lost: int) -> None:
    """A row without a readable id counts as one lost trade; one showing an id the ledger keeps loses
    nothing; a blank line is not a trade."""
    rows = lines_of(sandbox)
    (sandbox / TRADES).write_text("\n".join([*rows[:101], garbage, *rows[101:]]) + "\n")
    ledger = ledger_of(sandbox)
    assert ledger.invalid_lines == [102] and ledger.invalid_text == {102: garbage}
    assert len(ledger.trades) == 500
    repair = plan_repair(ledger)
    assert repair.dropped == [(garbage, "unparseable row: line 102")]
    assert repair.trades_lost == lost
    write_ledger(load_site(sandbox), repair.trades)
    assert lines_of(sandbox) == rows


def test_empty_and_missing_ledgers(sandbox: Path) -> None:
    (sandbox / TRADES).write_bytes(b"")
    empty = ledger_of(sandbox)
    assert empty.exists and empty.header_missing and len(empty.trades) == 0
    assert plan_repair(empty).header_added
    (sandbox / TRADES).unlink()
    missing = ledger_of(sandbox)
    assert not missing.exists and missing.problems() == [f"{TRADES} is missing"]
    assert plan_repair(missing).header_added and plan_repair(missing).trades_lost == 0


def test_an_unreadable_ledger_is_an_error_naming_it(sandbox: Path) -> None:
    (sandbox / TRADES).unlink()
    (sandbox / TRADES).mkdir()
    with pytest.raises(LedgerError, match=f"{TRADES} cannot be read"):
        ledger_of(sandbox)


# --- writing ------------------------------------------------------------------------------------------


def test_write_ledger_recomputes_positions_and_writes_atomically(sandbox: Path) -> None:
    site = load_site(sandbox)
    trades = list(ledger_of(sandbox).trades)[:250]
    write_ledger(site, trades)
    assert lines_of(sandbox) == [HEADER, *(t.line for t in trades)]
    assert (sandbox / "data/positions.csv").read_text() == positions_csv(trades)
    assert check_data(site).ok
    assert not [p.name for p in (sandbox / "data").iterdir() if p.name.startswith(".")]  # no temp files left


def test_write_ledger_refuses_while_the_trading_system_runs_and_changes_nothing(
    sandbox: Path, pretend_running: subprocess.Popen[bytes]
) -> None:
    site = load_site(sandbox)
    before = {p: p.read_bytes() for p in (sandbox / "data").glob("*.csv")}
    with pytest.raises(LedgerError) as refused:
        write_ledger(site, list(ledger_of(sandbox).trades)[:10])
    message = str(refused.value)
    assert str(site.root) in message and site.process.stop in message and "Nothing was changed" in message
    assert {p: p.read_bytes() for p in (sandbox / "data").glob("*.csv")} == before


def test_write_ledger_refuses_a_trade_whose_line_is_not_its_row(sandbox: Path) -> None:
    trade = ledger_of(sandbox).trades[0]
    forged = Trade(
        trade.trade_id, trade.timestamp, trade.symbol, trade.side, trade.quantity + 1, trade.price, trade.line
    )
    before = (sandbox / TRADES).read_bytes()
    with pytest.raises(ValueError, match="is not the row of this trade"):
        write_ledger(load_site(sandbox), [forged])
    assert (sandbox / TRADES).read_bytes() == before


def test_a_failed_write_leaves_the_ledger_whole(sandbox: Path) -> None:
    """An unwritable data directory: the error names the file and says what to do; nothing changed."""
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only directories")
    before = (sandbox / TRADES).read_bytes()
    (sandbox / "data").chmod(0o555)
    try:
        with pytest.raises(LedgerError, match=f"{TRADES} could not be written .*it is unchanged"):
            write_ledger(load_site(sandbox), list(ledger_of(sandbox).trades)[:5])
    finally:
        (sandbox / "data").chmod(0o755)
    assert (sandbox / TRADES).read_bytes() == before


# --- rows and fills -------------------------------------------------------------------------------------


def test_trade_rows_concatenate_select_and_compare_like_lists(sandbox: Path) -> None:
    rows = ledger_of(sandbox).trades
    extra = parse_row("9001,2026-11-21T00:00:00Z,NEWCOIN/USD,buy,1.5,2.25")
    assert extra is not None
    combined = rows[:3] + [extra]
    assert isinstance(combined, TradeRows) and len(combined) == 4
    assert list(combined) == [*list(rows)[:3], extra] and combined == [*list(rows)[:3], extra]
    assert combined.symbols == sorted({t.symbol for t in combined})
    # Quantities with other decimals: totals at the most decimals any row has.
    assert positions_of([extra, parse_row("9002,2026-11-21T00:00:01Z,NEWCOIN/USD,sell,0.25,2")]) == {
        "NEWCOIN/USD": Decimal("1.25")
    }
    assert positions_csv(combined) == positions_csv(list(combined))
    with pytest.raises(IndexError):
        rows[500]


def test_trade_from_fill_keeps_the_row_text_or_rebuilds_it(sandbox: Path) -> None:
    trade_live(sandbox, 2)
    fill = get_exchange_client(load_site(sandbox)).fetch_my_trades()[-1]
    assert trade_from_fill(fill).line == lines_of(sandbox)[-1]
    unified = {k: v for k, v in fill.items() if k != "info"} | {"timestamp": fill["timestamp"] + 250}
    rebuilt = trade_from_fill(unified)
    assert rebuilt.same_trade(trade_from_fill(fill)) and rebuilt.timestamp.endswith(".250Z")
    with pytest.raises(LedgerError, match="trade ids must be integers"):
        trade_from_fill(unified | {"id": "T-17"})


def test_positions_that_cannot_be_written_are_reported_and_a_rerun_finishes(sandbox: Path) -> None:
    """trades.csv is replaced whole; if positions.csv then fails, the error says they disagree and that
    writing again finishes the job, and the new ledger is complete on disk."""
    site = load_site(sandbox)
    trades = list(ledger_of(sandbox).trades)[:40]
    positions = sandbox / "data/positions.csv"
    positions.unlink()
    (positions / "in-the-way").mkdir(parents=True)  # os.replace cannot put a file over a directory
    with pytest.raises(LedgerError, match="was written but data/positions.csv could not be .*write the ledger again"):
        write_ledger(site, trades)
    assert lines_of(sandbox) == [HEADER, *(t.line for t in trades)]
    (positions / "in-the-way").rmdir()
    positions.rmdir()
    write_ledger(site, trades)
    assert positions.read_text() == positions_csv(trades) and check_data(site).ok


# --- the column reader accepts exactly what parse_row accepts -------------------------------------------

FIELD_CHOICES = {
    "id": ["1", "42", "007", "0", "", "x1", " 5", "-3", "1e3", "99999999999999999999", "1234567890123456789"],
    "timestamp": ["2026-11-20T12:00:00Z", "2026-11-20T12:00:00.250Z", "", " 2026-11-20T12:00:00Z", "ts"],
    "symbol": ["BTC/USD", "ETH/USD", "LONGSYMBOL/USDT", "", " BTC/USD", "ÄÖ/USD", "A B", "X"],
    "side": ["buy", "sell", "hold", " buy", "BUY", ""],
    "number": ["1.5000", "0.0001", "43000.1234", "7", "0", "0.0000", "1e2", ".5", "5.", "-1", "1_0", "nan", "inf"]
    + [" 1.5", "12345678901234567890.5", "1.23456789012345678901", "", "1.2.3"],
}


@st.composite
def ledger_bytes(draw: st.DrawFn) -> bytes:
    rows = []
    for _ in range(draw(st.integers(0, 12))):
        fields = [
            draw(st.sampled_from(FIELD_CHOICES["id"])),
            draw(st.sampled_from(FIELD_CHOICES["timestamp"])),
            draw(st.sampled_from(FIELD_CHOICES["symbol"])),
            draw(st.sampled_from(FIELD_CHOICES["side"])),
            draw(st.sampled_from(FIELD_CHOICES["number"])),
            draw(st.sampled_from(FIELD_CHOICES["number"])),
        ]
        cut = draw(st.sampled_from([6, 6, 6, 6, 5, 7]))
        fields = fields[:cut] + (["extra"] if cut == 7 else [])
        rows.append(",".join(fields))
    if draw(st.booleans()):
        rows.insert(0, HEADER)
    end = draw(st.sampled_from(["\n", "\r\n"]))
    text = end.join(rows) + (end if rows and draw(st.booleans()) else "")
    return text.encode()


def reference_reading(data: bytes) -> tuple[list[Trade], list[int], str | None, bool]:
    """What read_ledger must find, by parse_row alone, line by line."""
    text = data.decode("utf-8", "surrogateescape")
    lines = text.split("\n")
    terminated = text.endswith("\n") or not text
    if terminated:
        lines = lines[:-1]
    header = bool(lines) and [part.strip() for part in lines[0].split(",")] == HEADER.split(",")
    trades, invalid = [], []
    for number, line in enumerate(lines, start=1):
        if number == 1 and header:
            continue
        trade = parse_row(line)
        if trade is None:
            invalid.append(number)
        else:
            trades.append(trade)
    torn = None
    if not terminated and invalid and invalid[-1] == len(lines):
        torn = lines[invalid.pop() - 1]
    return trades, invalid, torn, header


@settings(max_examples=300)
@given(data=ledger_bytes())
def test_the_column_reader_accepts_exactly_what_parse_row_accepts(
    tmp_path_factory: pytest.TempPathFactory, data: bytes
) -> None:
    path = tmp_path_factory.mktemp("ledger") / "trades.csv"
    path.write_bytes(data)
    ledger = read_ledger(path, "trades.csv")
    trades, invalid, torn, header = reference_reading(data)
    assert list(ledger.trades) == trades
    assert ledger.invalid_lines == invalid and ledger.torn_last_row == torn
    assert ledger.header_missing == (not header)  # an empty file lacks its header too
    assert ledger.ids == {t.trade_id for t in trades}
    assert positions_of(ledger.trades) == positions_of(trades)
    assert positions_csv(ledger.trades) == positions_csv(trades)
