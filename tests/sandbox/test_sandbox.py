"""The sandbox generator: layout, internal consistency, determinism, size targets and safe creation."""

from __future__ import annotations

import csv
import json
import os
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from snapshots import files

from recovery_lib.errors import SiteError
from recovery_lib.sandbox import SandboxSpec, create_sandbox, parse_size
from recovery_lib.sandbox import generate as generate_module
from recovery_lib.site.config import SANDBOX_MARKER, load_site

# The conftest's template sandbox is made with this spec.
SANDBOX_NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
SANDBOX_SPEC = SandboxSpec(trades=500, reports=3, report_rows=20, seed=11, now=SANDBOX_NOW)
NOW_TEXT = SANDBOX_NOW.strftime("%Y-%m-%dT%H:%M:%SZ")
SMALL = SandboxSpec(trades=300, reports=2, report_rows=10, seed=5, now=SANDBOX_NOW)


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def site_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


# --- layout -----------------------------------------------------------------------------------


def test_layout(sandbox: Path, sandbox_template: Path) -> None:
    for relative in (
        "config/config.toml",
        "state/session.json",
        "state/strategy_state.json",
        "data/trades.csv",
        "data/positions.csv",
        "exchange/account.json",
        "exchange/my_trades.csv",
        "recovery.toml",
        SANDBOX_MARKER,
    ):
        assert (sandbox / relative).is_file(), relative
    for relative in ("run", "backups"):
        assert (sandbox / relative).is_dir(), relative
    reports = sorted((sandbox / "data/reports").rglob("*.csv"))
    assert [str(p.relative_to(sandbox)) for p in reports] == [
        "data/reports/2026/11/fills_2026-11-17_0000.csv",
        "data/reports/2026/11/fills_2026-11-18_0001.csv",
        "data/reports/2026/11/fills_2026-11-19_0002.csv",
    ]
    assert not (sandbox / "data/cache").exists()  # the default site has no cache
    for report in reports:
        rows = read_rows(report)
        assert len(rows) == SANDBOX_SPEC.report_rows
        assert list(rows[0]) == ["fill_id", "timestamp", "symbol", "side", "quantity", "price", "fee"]
    # Nothing but the site and its schedule's units was created next to it (no staging leftovers).
    assert sorted(p.name for p in sandbox_template.parent.iterdir()) == ["site", "site-units"]


def test_marker_state_and_site_config(sandbox: Path) -> None:
    marker = json.loads((sandbox / SANDBOX_MARKER).read_text())
    assert marker == {
        "kind": "recovery-sandbox",
        "format": 1,
        "created_at": NOW_TEXT,
        "seed": SANDBOX_SPEC.seed,
        "trades": SANDBOX_SPEC.trades,
        "reports": SANDBOX_SPEC.reports,
        "cache_files": 0,
    }
    session = json.loads((sandbox / "state/session.json").read_text())
    assert session == {"last_trade_id": 500, "trade_count": 500, "updated_at": NOW_TEXT}
    site = load_site(sandbox)
    assert site.is_sandbox
    assert site.exchange.client == "simulated"
    assert site.process.pidfile == "run/live_ops.pid"
    assert site.process.match == "live_ops"


# --- consistency, computed independently of recovery_lib.site.integrity ------------------------------


def trade_books(trades: list[dict[str, str]]) -> tuple[dict[str, Decimal], dict[str, Decimal]]:
    """Exact net quantity and volume-weighted average buy price per symbol."""
    net: dict[str, Decimal] = defaultdict(Decimal)
    bought: dict[str, Decimal] = defaultdict(Decimal)
    notional: dict[str, Decimal] = defaultdict(Decimal)
    for row in trades:
        quantity, price = Decimal(row["quantity"]), Decimal(row["price"])
        assert row["side"] in ("buy", "sell")
        if row["side"] == "buy":
            net[row["symbol"]] += quantity
            bought[row["symbol"]] += quantity
            notional[row["symbol"]] += quantity * price
        else:
            net[row["symbol"]] -= quantity
    return dict(net), {symbol: notional[symbol] / bought[symbol] for symbol in bought}


def test_positions_are_the_net_of_trades(sandbox: Path) -> None:
    trades = read_rows(sandbox / "data/trades.csv")
    positions = {row["symbol"]: row for row in read_rows(sandbox / "data/positions.csv")}
    net, average_buy = trade_books(trades)
    assert len(trades) == 500
    assert set(positions) == set(net) and len(net) >= 2
    for symbol, row in positions.items():
        assert Decimal(row["quantity"]) == net[symbol], symbol
        assert abs(Decimal(row["avg_price"]) - average_buy[symbol]) <= Decimal("0.000001"), symbol
        assert len(row["avg_price"].split(".")[1]) == 6


def test_exchange_balances_equal_positions(sandbox: Path) -> None:
    account = json.loads((sandbox / "exchange/account.json").read_text())
    positions = read_rows(sandbox / "data/positions.csv")
    expected = {row["symbol"].split("/")[0]: float(row["quantity"]) for row in positions}
    expected["USD"] = 250000.0
    assert account["balances"] == expected
    # The exchange's last price of each market is the last trade's price.
    last_price = {row["symbol"]: float(row["price"]) for row in read_rows(sandbox / "data/trades.csv")}
    assert account["tickers"] == last_price


def test_the_exchanges_fill_log_starts_empty(sandbox: Path) -> None:
    """Its history through the API starts at creation: the generated trades are not copied into it."""
    header = (sandbox / "data/trades.csv").read_text().splitlines()[0]
    assert (sandbox / "exchange/my_trades.csv").read_text() == header + "\n"


def test_trade_ids_unique_and_timestamps_ordered_up_to_now(sandbox: Path) -> None:
    trades = read_rows(sandbox / "data/trades.csv")
    ids = [int(row["trade_id"]) for row in trades]
    assert ids == list(range(1, 501))
    stamps = [row["timestamp"] for row in trades]
    assert stamps == sorted(stamps)  # fixed-width ISO text sorts chronologically
    assert stamps[-1] == NOW_TEXT
    start = (SANDBOX_NOW - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert start < stamps[0]


# --- determinism ------------------------------------------------------------------------------


def test_same_seed_same_bytes_and_other_seed_differs(tmp_path: Path) -> None:
    create_sandbox(tmp_path / "a", SMALL)
    create_sandbox(tmp_path / "b", SMALL)
    create_sandbox(tmp_path / "c", SandboxSpec(trades=300, reports=2, report_rows=10, seed=6, now=SANDBOX_NOW))
    first = (tmp_path / "a/data/trades.csv").read_bytes()
    assert first == (tmp_path / "b/data/trades.csv").read_bytes()
    # Byte for byte, but for the replica's url in recovery.toml: it names the directory beside each site.
    a, b = files(tmp_path / "a"), files(tmp_path / "b")
    # and the unit directory beside it.
    toml_a = a.pop("recovery.toml").replace(b"/a-offsite", b"/b-offsite").replace(b'"../a-units"', b'"../b-units"')
    assert toml_a == b.pop("recovery.toml")
    assert a == b
    other = (tmp_path / "c/data/trades.csv").read_bytes()
    assert other != first
    assert len(other.splitlines()) == len(first.splitlines()) == 301


# --- size target ------------------------------------------------------------------------------


def test_size_target_is_met_with_whole_rows(tmp_path: Path) -> None:
    target = parse_size("3M")
    spec = SandboxSpec(trades=500, reports=4, seed=3, size_bytes=target, now=SANDBOX_NOW)
    summary = create_sandbox(tmp_path / "big", spec)
    on_disk = site_bytes(tmp_path / "big")
    assert summary.bytes_written == on_disk
    assert abs(on_disk - target) <= 0.02 * target
    reports = sorted((tmp_path / "big/data/reports").rglob("*.csv"))
    assert len(reports) == 4
    for report in reports:
        data = report.read_bytes()
        assert data.endswith(b"\n"), report.name
        last = data[data.rstrip(b"\n").rfind(b"\n") + 1 :].decode()
        fill_id, stamp, symbol, side, quantity, price, fee = last.rstrip("\n").split(",")
        assert fill_id.isdigit() and int(fill_id) > 1000
        assert len(stamp) == 20 and stamp.endswith("Z")
        assert side in ("buy", "sell") and "/" in symbol
        assert len(quantity.split(".")[1]) == len(price.split(".")[1]) == len(fee.split(".")[1]) == 4
        # Every row is complete, not just the last one.
        assert {len(line.split(b",")) for line in data.splitlines()} == {7}


def test_size_target_without_reports_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    spec = SandboxSpec(trades=100, reports=0, size_bytes=parse_size("1M"), now=SANDBOX_NOW)
    with pytest.raises(ValueError, match="at least one report"):
        create_sandbox(tmp_path / "site", spec)
    assert list(tmp_path.iterdir()) == []


def test_invalid_spec_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="trades must be >= 1"):
        create_sandbox(tmp_path / "site", SandboxSpec(trades=0))
    assert list(tmp_path.iterdir()) == []


# --- safe creation ----------------------------------------------------------------------------


def test_non_empty_non_sandbox_directory_is_refused_untouched(tmp_path: Path) -> None:
    precious = tmp_path / "precious"
    (precious / "sub").mkdir(parents=True)
    (precious / "notes.txt").write_text("do not delete")
    (precious / "sub/data.csv").write_text("a,b\n1,2\n")
    before = files(precious)
    for force in (False, True):
        with pytest.raises(SiteError, match="not a sandbox"):
            create_sandbox(precious, SMALL, force=force)
    assert files(precious) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["precious"]


def test_a_file_as_destination_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "site"
    target.write_text("a file")
    with pytest.raises(SiteError, match="not a directory"):
        create_sandbox(target, SMALL)
    assert target.read_text() == "a file"


def test_empty_directory_is_used(tmp_path: Path) -> None:
    (tmp_path / "site").mkdir()
    summary = create_sandbox(tmp_path / "site", SMALL)
    assert summary.root == tmp_path / "site"
    assert (tmp_path / "site" / SANDBOX_MARKER).is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site", "site-units"]


def test_existing_sandbox_needs_force(sandbox: Path) -> None:
    before = files(sandbox)
    with pytest.raises(SiteError, match="already holds a sandbox"):
        create_sandbox(sandbox, SMALL)
    assert files(sandbox) == before


def test_force_replaces_an_existing_sandbox(sandbox: Path) -> None:
    (sandbox / "leftover.txt").write_text("from the old sandbox")
    old_trades = (sandbox / "data/trades.csv").read_bytes()
    summary = create_sandbox(sandbox, SMALL, force=True)
    assert summary.trades == 300
    assert not (sandbox / "leftover.txt").exists()
    assert (sandbox / "data/trades.csv").read_bytes() != old_trades
    assert len(read_rows(sandbox / "data/trades.csv")) == 300
    assert json.loads((sandbox / SANDBOX_MARKER).read_text())["seed"] == SMALL.seed
    assert sorted(p.name for p in sandbox.parent.iterdir()) == ["site", "site-units"]  # old copy, staging gone


def _failing_reports(*args: object, **kwargs: object) -> int:
    raise RuntimeError("disk exploded while writing reports")


def test_failure_leaves_no_partial_site_or_staging(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(generate_module, "_write_reports", _failing_reports)
    with pytest.raises(RuntimeError, match="disk exploded"):
        create_sandbox(tmp_path / "site", SMALL)
    assert list(tmp_path.iterdir()) == []


def test_failure_during_forced_replace_keeps_the_old_sandbox(sandbox: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = files(sandbox)
    monkeypatch.setattr(generate_module, "_write_reports", _failing_reports)
    with pytest.raises(RuntimeError, match="disk exploded"):
        create_sandbox(sandbox, SMALL, force=True)
    assert files(sandbox) == before
    assert sorted(p.name for p in sandbox.parent.iterdir()) == ["site", "site-units"]


# --- parse_size -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4096", 4096),
        ("0", 0),
        ("64k", 64 * 1024),
        ("64K", 64 * 1024),
        ("500M", 500 * 1024**2),
        ("1G", 1024**3),
        ("1.5G", 3 * 1024**3 // 2),
        ("2T", 2 * 1024**4),
        ("10MB", 10 * 1024**2),
        ("10MiB", 10 * 1024**2),
        ("1gb", 1024**3),
        (" 3 M ", 3 * 1024**2),
        ("100b", 100),
    ],
)
def test_parse_size(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize(
    "text", ["", "M", "abc", "-1M", "1X", "1 G G", "1.G", "1,5G", "1e6", "12 34", "5i", "5ib", "5bb"]
)
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="is not a size"):
        parse_size(text)


def test_staging_name_is_hidden_sibling(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """While generating, the half-built site lives in a hidden sibling, never at the destination."""
    seen: list[list[str]] = []

    def spy(reports_dir: Path, *args: object) -> int:
        seen.append(sorted(p.name for p in tmp_path.iterdir()))
        assert not (tmp_path / "site").exists()
        return 0

    monkeypatch.setattr(generate_module, "_write_reports", spy)
    create_sandbox(tmp_path / "site", SMALL)
    assert len(seen) == 1 and len(seen[0]) == 1
    assert seen[0][0].startswith(".site.") and str(os.getpid()) in seen[0][0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site", "site-units"]
