"""The runbook's Python snippets, pasted verbatim (only imports changed), run against a sandbox."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from recovery_lib import RecoveryManager

# Disaster Scenarios -> Scenario 1: Configuration Corruption -> Detection.
SCENARIO_1 = """
from recovery_lib import health_check

results = health_check.run_all()
if not results["config"].healthy:
    print("⚠️  Config health check failed")
"""

# Disaster Scenarios -> Scenario 3: Complete System Failure -> Detection.
SCENARIO_3 = """
from recovery_lib import health_check

if not health_check.is_system_healthy():
    results = health_check.run_all()
    failed = [name for name, r in results.items() if not r.healthy]
    print(f"⚠️  Multiple failures: {', '.join(failed)}")
"""

# Verification Steps -> 1. Health Checks.
VERIFICATION_1 = """
from recovery_lib import health_check

results = health_check.run_all()

print("\\n" + "="*60)
print("HEALTH CHECK RESULTS")
print("="*60)

for name, result in results.items():
    status = "✅" if result.healthy else "❌"
    print(f"{status} {name.upper()}: {result.message}")

if all(r.healthy for r in results.values()):
    print("\\n🟢 System Healthy")
else:
    print("\\n🔴 System Unhealthy")
"""

# Verification Steps -> 2. Data Integrity.
VERIFICATION_2 = """
import pandas as pd

# Check critical data files
files_to_check = {
    "positions": "data/positions.csv",
    "trades": "data/trades.csv",
}

for name, path in files_to_check.items():
    try:
        df = pd.read_csv(path)
        print(f"✅ {name}: {len(df)} rows")
    except Exception as e:
        print(f"❌ {name}: {e}")
"""

HEADER = ["", "=" * 60, "HEALTH CHECK RESULTS", "=" * 60]
CORRUPT_LINE = 7


@pytest.fixture
def run(sandbox: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture):
    """Execute a snippet with the sandbox as the current directory; returns what it printed."""
    monkeypatch.chdir(sandbox)

    def execute(snippet: str) -> str:
        capsys.readouterr()
        exec(snippet, {"__name__": "__runbook__"})
        return capsys.readouterr().out

    return execute


def make_fully_healthy(sandbox: Path) -> None:
    """A fresh backup and a detect command that says the trading process runs."""
    RecoveryManager(site=sandbox).create_backup(description="fresh")
    recovery = sandbox / "recovery.toml"
    recovery.write_text(recovery.read_text().replace('match = "live_ops"\n', 'match = "live_ops"\ndetect = "true"\n'))


def corrupt_config(sandbox: Path) -> None:
    config = sandbox / "config/config.toml"
    lines = config.read_text().splitlines()
    lines[CORRUPT_LINE - 1] = "strategy = mean_reversion without quotes"
    config.write_text("\n".join(lines) + "\n")


def test_scenario_1_silent_on_a_healthy_config(run) -> None:
    assert run(SCENARIO_1) == ""


def test_scenario_1_detects_a_corrupted_config(sandbox: Path, run) -> None:
    corrupt_config(sandbox)
    before = (sandbox / "config/config.toml").read_bytes()
    assert run(SCENARIO_1) == "⚠️  Config health check failed\n"
    assert (sandbox / "config/config.toml").read_bytes() == before  # detection only


def test_scenario_3_names_the_failures(sandbox: Path, run) -> None:
    # A fresh sandbox: no backup yet (so its replica holds none either) and no trading process.
    assert run(SCENARIO_3) == "⚠️  Multiple failures: backups, process, replicas\n"
    corrupt_config(sandbox)
    assert run(SCENARIO_3) == "⚠️  Multiple failures: config, backups, process, replicas\n"


def test_scenario_3_silent_when_everything_is_healthy(sandbox: Path, run) -> None:
    make_fully_healthy(sandbox)
    assert run(SCENARIO_3) == ""


def test_verification_1_on_a_fully_healthy_sandbox(sandbox: Path, run) -> None:
    make_fully_healthy(sandbox)
    lines = run(VERIFICATION_1).splitlines()
    assert lines[:4] == HEADER
    body = lines[4:12]
    assert [line.split(":")[0] for line in body] == [
        "✅ CONFIG",
        "✅ DATA",
        "✅ BACKUPS",
        "✅ DISK",
        "✅ PROCESS",
        "✅ EXCHANGE",
        "✅ RECONCILIATION",
        "✅ REPLICAS",
    ]
    assert body[0] == "✅ CONFIG: config/config.toml is valid TOML with sections trading, risk, live"
    assert body[1] == "✅ DATA: 500 trades and 8 positions agree"
    assert re.fullmatch(r"✅ BACKUPS: newest backup \d{8}T\d{6}Z-full-[0-9a-f]{6} is 0\.0 h old", body[2])
    assert body[4] == "✅ PROCESS: trading process running (detect command 'true' exited 0)"
    assert body[5].startswith("✅ EXCHANGE: simulated: BTC/USD last ")
    assert body[6] == "✅ RECONCILIATION: all 8 position(s) equal the exchange's balances"
    assert body[7].startswith("✅ REPLICAS: replica offsite: newest backup ")
    assert lines[12:] == ["", "🟢 System Healthy"]


def test_verification_1_on_a_corrupted_config(sandbox: Path, run) -> None:
    corrupt_config(sandbox)
    lines = run(VERIFICATION_1).splitlines()
    assert lines[:4] == HEADER
    body = lines[4:12]
    assert [line.split(":")[0] for line in body] == [
        "❌ CONFIG",
        "✅ DATA",
        "❌ BACKUPS",
        "✅ DISK",
        "❌ PROCESS",
        "✅ EXCHANGE",
        "✅ RECONCILIATION",
        "❌ REPLICAS",
    ]
    assert body[0].startswith("❌ CONFIG: config/config.toml")
    assert f"config/config.toml is not valid TOML at line {CORRUPT_LINE}: " in body[0]
    assert body[0].endswith("(Procedure A restores it)")
    assert body[1] == "✅ DATA: 500 trades and 8 positions agree"  # the data is untouched
    assert lines[12:] == ["", "🔴 System Unhealthy"]


def test_verification_2_counts_rows(sandbox: Path, run) -> None:
    assert run(VERIFICATION_2) == "✅ positions: 8 rows\n✅ trades: 500 rows\n"
    corrupt_config(sandbox)
    assert run(VERIFICATION_2) == "✅ positions: 8 rows\n✅ trades: 500 rows\n"  # config damage is not data damage


def test_verification_2_reports_a_missing_file(sandbox: Path, run) -> None:
    (sandbox / "data/trades.csv").unlink()
    out = run(VERIFICATION_2).splitlines()
    assert out[0] == "✅ positions: 8 rows"
    assert out[1].startswith("❌ trades: ") and "data/trades.csv" in out[1]
    assert len(out) == 2
