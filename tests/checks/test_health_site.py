"""The built-in health checks on a sandbox: a fresh one, and the config, data and disk failures they
must report.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from health_helpers import FRESH_UNHEALTHY, edit, expect_failure, run_all, unhealthy

from recovery_lib import health_check
from recovery_lib.trading.ledger import positions_csv, read_ledger

# --- a fresh sandbox --------------------------------------------------------------------------


def test_fresh_sandbox(sandbox: Path) -> None:
    began = time.perf_counter()
    results = run_all(sandbox)
    wall = time.perf_counter() - began
    assert unhealthy(results) == FRESH_UNHEALTHY
    assert results["config"].message == "config/config.toml is valid TOML with sections trading, risk, live"
    assert results["data"].message == "500 trades and 8 positions agree"
    assert results["disk"].healthy and "free for backups" in results["disk"].message
    assert results["exchange"].message.startswith("simulated: BTC/USD last ")
    assert "no successful backups in backups/" in results["backups"].message
    assert results["process"].message == "trading process not running (no pidfile run/live_ops.pid)"
    assert not health_check.is_system_healthy(sandbox)
    for result in results.values():
        assert isinstance(result.duration_s, float) and result.duration_s > 0, result  # measured, not the default
        json.dumps(result.to_dict())  # plain data, ready for --json and records
    assert sum(result.duration_s for result in results.values()) <= wall  # each measured inside the call


# --- config -----------------------------------------------------------------------------------


def test_corrupted_config_names_the_line(sandbox: Path) -> None:
    config = sandbox / "config/config.toml"
    lines = config.read_text().splitlines()
    lines.insert(9, "this line is not = = toml")  # becomes line 10
    config.write_text("\n".join(lines) + "\n")
    result = expect_failure(sandbox, "config", "config/config.toml is not valid TOML", "at line 10", "Procedure A")
    assert result.details["problems"]


def test_config_missing_section(sandbox: Path) -> None:
    edit(sandbox / "config/config.toml", "[risk]", "[risk_limits]")
    expect_failure(sandbox, "config", "config/config.toml has no [risk] section")


def test_config_missing(sandbox: Path) -> None:
    (sandbox / "config/config.toml").unlink()
    expect_failure(sandbox, "config", "config/config.toml is missing")


def test_config_not_utf8(sandbox: Path) -> None:
    (sandbox / "config/config.toml").write_bytes(b'[trading]\nname = "\xff\xfe"\n')
    expect_failure(sandbox, "config", "config/config.toml is not UTF-8")


# --- data -------------------------------------------------------------------------------------


def test_trades_missing(sandbox: Path) -> None:
    (sandbox / "data/trades.csv").unlink()
    expect_failure(sandbox, "data", "data/trades.csv is missing", "Procedure B")
    assert (sandbox / "data/positions.csv").is_file()


def test_reports_dir_missing(sandbox: Path) -> None:
    shutil.rmtree(sandbox / "data/reports")
    result = expect_failure(sandbox, "data", "data/reports/ (directory) is missing")
    assert result.details["problems"] == ["data/reports/ (directory) is missing"]  # trades still agree


def test_trades_binary_garbage(sandbox: Path) -> None:
    (sandbox / "data/trades.csv").write_bytes(bytes(range(256)) * 16)
    expect_failure(sandbox, "data", "data/trades.csv cannot be parsed")


def test_trades_row_with_too_many_fields(sandbox: Path) -> None:
    with (sandbox / "data/trades.csv").open("a") as handle:
        handle.write("501,2026-11-20T12:00:00Z,BTC/USD,buy,1.0000,43000.0000,extra,fields\n")
    expect_failure(sandbox, "data", "data/trades.csv cannot be parsed", "Expected 6 fields in line 502, saw 8")


@pytest.mark.parametrize(
    "keep", ["500,2026-11-20T1", "500,2026-11-20T12:00:00Z,BTC/U", "500,2026-11-20T12:00:00Z,BTC/USD,buy,0.0"]
)
def test_trades_truncated_mid_row(sandbox: Path, keep: str) -> None:
    trades = sandbox / "data/trades.csv"
    data = trades.read_bytes()
    last_row = data.rstrip(b"\n").rfind(b"\n") + 1
    assert data[last_row:].startswith(keep.encode())
    trades.write_bytes(data[: last_row + len(keep)])
    expect_failure(sandbox, "data", "data/trades.csv line 501")


def test_duplicate_trade_id(sandbox: Path) -> None:
    edit(sandbox / "data/trades.csv", "\n2,2026-", "\n1,2026-")
    result = expect_failure(sandbox, "data", "duplicate trade_id 1")
    assert result.details["problems"] == ["data/trades.csv: duplicate trade_id 1"]


def test_every_problem_is_counted_beyond_the_listed_ones(sandbox: Path) -> None:
    """70 duplicated ids and 30 bad rows: 20 are listed and the other 80 counted, none dropped on the floor."""
    trades = sandbox / "data/trades.csv"
    rows = trades.read_text().splitlines()[1:]
    bad = [f"{600 + n},2026-11-20T12:00:00Z,BTC/USD,hold,1.0000,43000.0000" for n in range(30)]
    with trades.open("a") as handle:
        handle.write("\n".join(rows[:70] + bad) + "\n")
    # Positions that agree with every valid row, copies included: only the 100 row problems remain.
    (sandbox / "data/positions.csv").write_text(positions_csv(read_ledger(trades, "data/trades.csv").trades))
    # The positions now hold the copies too, so they disagree with the exchange as well.
    result = expect_failure(
        sandbox, "data", "data/trades.csv line 572: incomplete or invalid trade row", also=frozenset({"reconciliation"})
    )
    assert len(result.details["problems"]) == 20 and result.details["more_problems"] == 80
    # Ten named, the other 90 counted by kind: the message says which problems it did not name.
    assert (
        "line 581: incomplete or invalid trade row; and 90 more: 20 invalid trade row(s), 70 duplicate trade id(s)"
        in (result.message)
    )
    assert sum("invalid trade row" in p for p in result.details["problems"]) == 20  # bad rows are met first


def test_trades_cut_inside_the_last_number(sandbox: Path) -> None:
    """A cut inside the final price still parses as a number; the lost newline gives it away."""
    trades = sandbox / "data/trades.csv"
    data = trades.read_bytes()
    trades.write_bytes(data[: len(data) - 3])
    expect_failure(sandbox, "data", "data/trades.csv ends mid-row (no final newline)")


def test_duplicate_position_is_reported_not_crashed(sandbox: Path) -> None:
    positions = sandbox / "data/positions.csv"
    btc = next(row for row in positions.read_text().splitlines() if row.startswith("BTC/USD"))
    with positions.open("a") as handle:
        handle.write(btc + "\n")
    result = expect_failure(sandbox, "data", "data/positions.csv: symbol BTC/USD appears more than once")
    assert "exception" not in result.details


def test_position_quantity_disagrees_with_trades(sandbox: Path) -> None:
    edit(sandbox / "data/positions.csv", "BTC/USD,2.5669,", "BTC/USD,2.5670,")
    # the position disagrees with the exchange's balance too
    expect_failure(
        sandbox,
        "data",
        "BTC/USD quantity 2.5670 differs from the net of trades 2.5669",
        also=frozenset({"reconciliation"}),
    )


def test_position_avg_price_disagrees_with_trades(sandbox: Path) -> None:
    positions = sandbox / "data/positions.csv"
    rows = positions.read_text().splitlines()
    symbol, quantity, avg_price = next(row for row in rows if row.startswith("ETH/USD")).split(",")
    edit(positions, f"ETH/USD,{quantity},{avg_price}", f"ETH/USD,{quantity},{float(avg_price) + 0.01:.6f}")
    expect_failure(sandbox, "data", f"ETH/USD avg_price {float(avg_price) + 0.01:.6f} differs", avg_price)


def test_position_missing_for_traded_symbol(sandbox: Path) -> None:
    positions = sandbox / "data/positions.csv"
    positions.write_text("".join(line for line in positions.read_text().splitlines(True) if "SOL/USD" not in line))
    expect_failure(sandbox, "data", "no position for SOL/USD, but trades net to", also=frozenset({"reconciliation"}))


def test_positions_missing_column(sandbox: Path) -> None:
    positions = sandbox / "data/positions.csv"
    rows = [line.rsplit(",", 1)[0] for line in positions.read_text().splitlines()]
    positions.write_text("\n".join(rows) + "\n")
    expect_failure(sandbox, "data", "data/positions.csv lacks column(s) avg_price")


# --- disk -------------------------------------------------------------------------------------


def test_disk_reports_too_little_space(sandbox: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[Path] = []

    def tiny_disk(path: Path) -> SimpleNamespace:
        asked.append(Path(path))
        return SimpleNamespace(total=10_000, used=9_000, free=1_000)

    monkeypatch.setattr("recovery_lib.checks.builtin.shutil.disk_usage", tiny_disk)
    expected_bytes = sum(
        p.stat().st_size for top in ("config", "state", "data") for p in (sandbox / top).rglob("*") if p.is_file()
    )
    result = expect_failure(sandbox, "disk", "1000 B free for backups; a full backup needs")
    assert result.details == {"free_bytes": 1_000, "site_bytes": expected_bytes}
    assert asked and asked[0] == sandbox / "backups"


def test_disk_with_room_is_healthy(sandbox: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        "recovery_lib.checks.builtin.shutil.disk_usage", lambda path: SimpleNamespace(free=10 * 1024**3)
    )
    result = health_check.run("disk", sandbox)
    assert result.healthy and result.message.startswith("10.0 GiB free for backups")
