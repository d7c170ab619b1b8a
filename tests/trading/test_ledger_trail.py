"""The ledger package's public surface and its trail in the log: a planned repair is logged with its
counts, a write with the number of trades, a refusal as a warning. On a real sandbox ledger."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from pathlib import Path

import pytest

import recovery_lib.trading.ledger as ledger_package
from recovery_lib.errors import LedgerError
from recovery_lib.site.config import load_site
from recovery_lib.site.process import process_status
from recovery_lib.trading.ledger import plan_repair, read_ledger, write_ledger

TRADES = "data/trades.csv"


def messages(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == level and r.name.startswith("recovery_lib.")]


def test_every_public_name_is_importable_from_the_package() -> None:
    """``from recovery_lib.trading.ledger import X`` keeps working for every name it ever offered."""
    for name in ledger_package.__all__:
        assert getattr(ledger_package, name) is not None, name
    assert {"Ledger", "LedgerRepair", "Trade", "TradeRows", "read_ledger", "plan_repair", "write_ledger"} <= set(
        ledger_package.__all__
    )


def test_a_repair_is_logged_with_its_counts_and_its_write_with_the_trades(
    sandbox: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rows = (sandbox / TRADES).read_text().splitlines()[1:]
    with (sandbox / TRADES).open("a") as handle:
        handle.write("\n".join(rows[10:13]) + "\n" + "not,a,trade\n")
    ledger = read_ledger(sandbox / TRADES, TRADES)
    with caplog.at_level(logging.INFO, logger="recovery_lib"):
        repair = plan_repair(ledger)
        write_ledger(load_site(sandbox), repair.trades)
    planned = [m for m in messages(caplog, logging.INFO) if "repair planned" in m]
    assert planned == [
        f"{TRADES}: repair planned: drops 4 row(s) (3 duplicated or contradicted by the exchange, 1 damaged), "
        "header added False, keeps 500 trades"
    ]
    assert any("wrote data/trades.csv (500 trades)" in m for m in messages(caplog, logging.INFO))
    assert not read_ledger(sandbox / TRADES, TRADES).needs_repair


def test_a_clean_ledger_plans_no_repair_at_info(sandbox: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="recovery_lib"):
        assert not plan_repair(read_ledger(sandbox / TRADES, TRADES)).needed
    assert not [m for m in messages(caplog, logging.INFO) if "repair" in m]


def test_writing_while_the_system_runs_is_refused_with_a_warning(
    sandbox: Path, caplog: pytest.LogCaptureFixture
) -> None:
    before = (sandbox / TRADES).read_bytes()
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "live_ops"])
    (sandbox / "run").mkdir(exist_ok=True)
    (sandbox / "run/live_ops.pid").write_text(f"{process.pid}\n")
    try:
        deadline = time.monotonic() + 10
        while process_status(load_site(sandbox)).running is not True and time.monotonic() < deadline:
            time.sleep(0.02)
        with caplog.at_level(logging.INFO, logger="recovery_lib"), pytest.raises(LedgerError, match="refused"):
            write_ledger(load_site(sandbox), read_ledger(sandbox / TRADES, TRADES).trades)
    finally:
        process.kill()
        process.wait()
    assert (sandbox / TRADES).read_bytes() == before
    assert any("writing the ledger refused" in m for m in messages(caplog, logging.WARNING))
