"""The built-in health checks on a sandbox, each failure they must report, and the check registry."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from recovery_lib import HealthCheckRegistry, HealthResult, RecoveryManager, health_check
from recovery_lib.backup import BackupStatus
from recovery_lib.backup.model import read_metadata
from recovery_lib.errors import SiteError
from recovery_lib.site.config import Site, load_site
from recovery_lib.site.integrity import check_data
from recovery_lib.trading.ledger import parse_row, positions_csv, read_ledger

BUILTIN = ["config", "data", "backups", "disk", "process", "exchange", "reconciliation"]
FRESH_UNHEALTHY = {"backups", "process"}  # a fresh sandbox has no backup and no running process


def snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def run_all(sandbox: Path) -> dict[str, HealthResult]:
    """Run every built-in check and make sure that checking changed nothing in the site."""
    before = snapshot(sandbox)
    results = health_check.run_all(sandbox)
    assert snapshot(sandbox) == before
    assert list(results) == BUILTIN
    return results


def unhealthy(results: dict[str, HealthResult]) -> set[str]:
    return {name for name, result in results.items() if not result.healthy}


def expect_failure(sandbox: Path, name: str, *fragments: str, also: frozenset[str] = frozenset()) -> HealthResult:
    """``name`` is unhealthy with a message containing every fragment; no other check but ``also`` changed."""
    results = run_all(sandbox)
    result = results[name]
    assert not result.healthy, result.message
    for fragment in fragments:
        assert fragment in result.message, result.message
    assert unhealthy(results) == FRESH_UNHEALTHY | {name} | also
    return result


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


# --- a fresh sandbox --------------------------------------------------------------------------


def test_fresh_sandbox(sandbox: Path) -> None:
    results = run_all(sandbox)
    assert unhealthy(results) == FRESH_UNHEALTHY
    assert results["config"].message == "config/config.toml is valid TOML with sections trading, risk, live"
    assert results["data"].message == "500 trades and 8 positions agree"
    assert results["disk"].healthy and "free for backups" in results["disk"].message
    assert results["exchange"].message.startswith("simulated: BTC/USD last ")
    assert "no successful backups in backups/" in results["backups"].message
    assert results["process"].message == "trading process not running (no pidfile run/live_ops.pid)"
    assert not health_check.is_system_healthy(sandbox)
    for result in results.values():
        assert result.duration_s >= 0
        json.dumps(result.to_dict())  # plain data, ready for --json and records


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


# --- backups ----------------------------------------------------------------------------------


def write_backup(sandbox: Path, created: datetime, status: BackupStatus = BackupStatus.SUCCESS) -> str:
    """A real backup, then its metadata re-dated (and re-checksummed) to ``created``."""
    backup_id = RecoveryManager(site=sandbox).create_backup()
    path = sandbox / "backups" / backup_id / "metadata.json"
    metadata = read_metadata(path.parent)
    metadata.created_at = created.astimezone(UTC).isoformat().replace("+00:00", "Z")
    metadata.status = status
    path.chmod(0o644)
    path.write_bytes(metadata.to_json())
    return backup_id


def test_backup_dir_unwritable(sandbox: Path) -> None:
    backups = sandbox / "backups"
    backups.chmod(0o555)
    try:
        result = health_check.run("backups", sandbox)
    finally:
        backups.chmod(0o755)
    assert not result.healthy
    assert "backup directory backups/ is not writable (mode dr-xr-xr-x)" in result.message


def test_backup_dir_missing(sandbox: Path) -> None:
    (sandbox / "backups").rmdir()
    expect_failure(sandbox, "backups", "backup directory backups/ is missing", "Procedure D")
    assert not (sandbox / "backups").exists()  # reporting does not recreate it


def test_fresh_backup_is_healthy(sandbox: Path) -> None:
    backup_id = write_backup(sandbox, datetime.now(UTC))
    result = health_check.run("backups", sandbox)
    assert result.healthy, result.message
    assert result.message == f"newest backup {backup_id} is 0.0 h old"
    assert result.details["newest"] == backup_id
    assert sorted(p.name for p in (sandbox / "backups").iterdir()) == [".lock", backup_id]  # probe cleaned up


def test_stale_backup_is_unhealthy(sandbox: Path) -> None:
    backup_id = write_backup(sandbox, datetime.now(UTC) - timedelta(hours=30))
    result = health_check.run("backups", sandbox)
    assert not result.healthy
    assert result.message == f"newest backup {backup_id} is 30.0 h old (max 24 h)"
    assert result.details["age_hours"] == pytest.approx(30, abs=0.01)


def test_newest_successful_backup_counts(sandbox: Path) -> None:
    write_backup(sandbox, datetime.now(UTC) - timedelta(hours=30))
    newest = write_backup(sandbox, datetime.now(UTC) - timedelta(hours=2))
    result = health_check.run("backups", sandbox)
    assert result.healthy and result.details["newest"] == newest


def test_partial_backup_is_ignored(sandbox: Path) -> None:
    write_backup(sandbox, datetime.now(UTC), status=BackupStatus.PARTIAL)
    assert "no successful backups in backups/" in health_check.run("backups", sandbox).message
    old = write_backup(sandbox, datetime.now(UTC) - timedelta(hours=30))
    result = health_check.run("backups", sandbox)
    assert not result.healthy and f"newest backup {old} is 30.0 h old" in result.message


def test_unreadable_backup_metadata_is_reported_not_counted(sandbox: Path) -> None:
    (sandbox / "backups/broken").mkdir()
    (sandbox / "backups/broken/metadata.json").write_text("{not json")
    result = health_check.run("backups", sandbox)
    assert not result.healthy and "no successful backups in backups/" in result.message
    assert "backup broken: unreadable: broken/metadata.json is unreadable" in result.message
    assert result.details["damaged"] == ["broken"]


def test_backup_without_timezone_does_not_hide_a_good_one(sandbox: Path) -> None:
    (sandbox / "backups/naive").mkdir()
    (sandbox / "backups/naive/metadata.json").write_text(
        json.dumps({"status": "success", "created_at": "2026-11-25T20:00:00"})
    )
    assert "no successful backups in backups/" in health_check.run("backups", sandbox).message
    good = write_backup(sandbox, datetime.now(UTC) - timedelta(hours=1))
    result = health_check.run("backups", sandbox)
    assert result.details["newest"] == good and f"newest backup {good} is 1.0 h old" in result.message
    # ...and the unreadable one is never silent: the check stays red until it is dealt with (Procedure D).
    assert not result.healthy and "backup naive: unreadable: naive/metadata.json is malformed" in result.message


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


# --- process ----------------------------------------------------------------------------------


@pytest.fixture
def spawn() -> Iterator[Callable[[str], subprocess.Popen[bytes]]]:
    """Start sleeping Python processes with a chosen last argument; all are killed afterwards."""
    started: list[subprocess.Popen[bytes]] = []

    def start(argument: str) -> subprocess.Popen[bytes]:
        process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", argument])
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()
        process.wait()


def test_process_running_then_stale_pidfile(sandbox: Path, spawn: Callable[[str], subprocess.Popen[bytes]]) -> None:
    process = spawn("live_ops")
    (sandbox / "run/live_ops.pid").write_text(f"{process.pid}\n")
    result = health_check.run("process", sandbox)
    assert result.healthy, result.message
    assert result.message == f"trading process running (pid {process.pid})"
    assert result.details == {"configured": True, "pid": process.pid}
    process.kill()
    process.wait()
    result = health_check.run("process", sandbox)
    assert not result.healthy
    assert f"stale pidfile run/live_ops.pid: pid {process.pid} is gone" in result.message


def test_process_zombie_is_not_running(sandbox: Path, spawn: Callable[[str], subprocess.Popen[bytes]]) -> None:
    process = spawn("live_ops")
    (sandbox / "run/live_ops.pid").write_text(str(process.pid))
    process.kill()
    for _ in range(200):  # until the kernel has made it a zombie (not reaped yet)
        if Path(f"/proc/{process.pid}/stat").read_text().split(") ")[-1].startswith("Z"):
            break
        time.sleep(0.005)
    result = health_check.run("process", sandbox)
    assert not result.healthy and f"pid {process.pid} from run/live_ops.pid is a zombie" in result.message


def test_pidfile_of_another_program(sandbox: Path, spawn: Callable[[str], subprocess.Popen[bytes]]) -> None:
    process = spawn("some_other_tool")
    (sandbox / "run/live_ops.pid").write_text(str(process.pid))
    result = health_check.run("process", sandbox)
    assert not result.healthy
    assert f"pid {process.pid} from run/live_ops.pid is another program, not 'live_ops'" in result.message
    assert process.poll() is None  # the check only looked; the process still runs


def test_pidfile_without_a_pid(sandbox: Path) -> None:
    (sandbox / "run/live_ops.pid").write_text("garbage")
    result = health_check.run("process", sandbox)
    assert not result.healthy and "pidfile run/live_ops.pid holds 'garbage', not a pid" in result.message


@pytest.mark.parametrize(("command", "healthy", "says"), [("true", True, "exited 0"), ("false", False, "exited 1")])
def test_detect_command(sandbox: Path, command: str, healthy: bool, says: str) -> None:
    edit(sandbox / "recovery.toml", 'match = "live_ops"\n', f'match = "live_ops"\ndetect = "{command}"\n')
    result = health_check.run("process", sandbox)
    assert result.healthy is healthy
    assert f"detect command '{command}' {says}" in result.message


def test_detect_command_runs_in_the_site(sandbox: Path) -> None:
    edit(sandbox / "recovery.toml", 'match = "live_ops"\n', 'match = "live_ops"\ndetect = "test -f recovery.toml"\n')
    assert health_check.run("process", sandbox).healthy


def test_process_not_configured(sandbox: Path) -> None:
    edit(sandbox / "recovery.toml", 'pidfile = "run/live_ops.pid"\nmatch = "live_ops"\n', "")
    result = health_check.run("process", sandbox)
    assert result.healthy
    assert result.message.startswith("not monitored: no [process] pidfile or detect command")


# --- exchange ---------------------------------------------------------------------------------


def test_exchange_account_missing(sandbox: Path) -> None:
    (sandbox / "exchange/account.json").unlink()
    # without balances nothing can be reconciled either
    result = expect_failure(
        sandbox, "exchange", "ExchangeError", "exchange/account.json is missing", also=frozenset({"reconciliation"})
    )
    assert result.details == {"exception": "ExchangeError"}


def test_exchange_not_configured(sandbox: Path) -> None:
    edit(sandbox / "recovery.toml", 'client = "simulated"', 'client = "none"')
    (sandbox / "exchange/account.json").unlink()  # not consulted when nothing is configured
    result = health_check.run("exchange", sandbox)
    assert result.healthy
    assert result.message.startswith("not monitored")
    assert result.details == {"configured": False}


# --- the registry -----------------------------------------------------------------------------


def test_global_registry_has_the_builtin_checks() -> None:
    assert health_check.names == BUILTIN


def test_register_accepts_bool_tuple_and_result(sandbox: Path) -> None:
    registry = HealthCheckRegistry()
    registry.register("yes", lambda site: True)
    registry.register("no", lambda site: False)
    registry.register("pair", lambda site: (False, "queue is 3 h behind"))
    registry.register("result", lambda site: HealthResult("whatever", True, "fine", {"n": 1}))
    results = registry.run_all(sandbox)
    assert list(results) == ["yes", "no", "pair", "result"]
    assert (results["yes"].healthy, results["yes"].message) == (True, "healthy")
    assert (results["no"].healthy, results["no"].message) == (False, "unhealthy")
    assert (results["pair"].healthy, results["pair"].message) == (False, "queue is 3 h behind")
    assert results["result"].name == "result"  # renamed to the registered name
    assert results["result"].healthy and results["result"].details == {"n": 1}


@pytest.mark.parametrize("value", ["ok", None, 1, (True,), ("yes", "message")])
def test_invalid_return_is_unhealthy(sandbox: Path, value: object) -> None:
    registry = HealthCheckRegistry()
    registry.register("odd", lambda site: value)
    result = registry.run("odd", sandbox)
    assert not result.healthy
    assert result.message.startswith(f"check returned {value!r}; a check must return HealthResult")


def test_raising_check_is_unhealthy_and_others_still_run(sandbox: Path) -> None:
    def boom(site: Site) -> bool:
        raise RuntimeError("database is on fire")

    registry = HealthCheckRegistry()
    registry.register("boom", boom)
    registry.register("after", lambda site: True)
    results = registry.run_all(sandbox)
    assert not results["boom"].healthy
    assert results["boom"].message == "check raised RuntimeError: database is on fire"
    assert results["boom"].details == {"exception": "RuntimeError"}
    assert results["after"].healthy
    assert not registry.is_system_healthy(sandbox)


def test_check_gets_the_site_or_nothing(sandbox: Path) -> None:
    seen: list[object] = []
    registry = HealthCheckRegistry()
    registry.register("with_site", lambda site: seen.append(site) or True)
    registry.register("no_args", lambda: (True, "no arguments needed"))
    results = registry.run_all(sandbox)
    assert results["no_args"].healthy and results["no_args"].message == "no arguments needed"
    assert results["with_site"].healthy
    assert isinstance(seen[0], Site) and seen[0].root == sandbox.resolve()


def test_is_system_healthy_only_when_all_are(sandbox: Path) -> None:
    registry = HealthCheckRegistry()
    assert registry.is_system_healthy(sandbox)  # nothing registered, nothing wrong
    registry.register("a", lambda: True)
    registry.register("b", lambda: True)
    assert registry.is_system_healthy(sandbox)
    registry.register("b", lambda: (False, "down"))  # replaces b
    assert registry.names == ["a", "b"]
    assert not registry.is_system_healthy(sandbox)
    registry.unregister("b")
    assert registry.is_system_healthy(sandbox)


def test_registry_rejects_bad_registrations(sandbox: Path) -> None:
    registry = HealthCheckRegistry()
    with pytest.raises(ValueError, match="non-empty name"):
        registry.register("", lambda: True)
    with pytest.raises(TypeError, match="not callable"):
        registry.register("x", True)  # type: ignore[arg-type]
    with pytest.raises(KeyError, match="no health check named 'x'"):
        registry.unregister("x")
    with pytest.raises(KeyError, match="no health check named 'x'"):
        registry.run("x", sandbox)
    assert registry.names == []


def test_builtin_check_can_be_added_to_own_registry(sandbox: Path) -> None:
    from recovery_lib.checks.builtin import check_config

    registry = HealthCheckRegistry()
    registry.register("my_config", check_config)
    result = registry.run("my_config", sandbox)
    assert result.name == "my_config" and result.healthy


# --- which site -------------------------------------------------------------------------------


def test_site_from_environment(sandbox: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the environment wins over the current directory
    monkeypatch.setenv("RECOVERY_SITE", str(sandbox))
    results = health_check.run_all()
    assert results["config"].healthy and results["data"].message == "500 trades and 8 positions agree"


def test_site_from_current_directory(sandbox: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(sandbox)
    results = health_check.run_all()
    assert results["data"].message == "500 trades and 8 positions agree"
    (sandbox / "config/config.toml").unlink()
    assert not health_check.run_all()["config"].healthy


def test_site_from_environment_must_exist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECOVERY_SITE", str(tmp_path / "nowhere"))
    with pytest.raises(SiteError, match=r"from \$RECOVERY_SITE\) does not exist"):
        health_check.run_all()


def test_a_config_only_backup_does_not_make_stale_data_look_fresh(sandbox: Path) -> None:
    """Found by a new user: the newest backup was config-only, so health said "fresh" with no data backup."""
    RecoveryManager(site=sandbox).create_backup(include_state=False, include_data=False)
    result = health_check.run("backups", load_site(sandbox))
    assert not result.healthy
    assert "no successful backup of state, data" in result.message
    RecoveryManager(site=sandbox).create_backup()
    assert health_check.run("backups", load_site(sandbox)).healthy


# --- backups: damage is a fault -------------------------------------------------------------------


def replace_with_flipped_byte(path: Path, offset: int = 100) -> None:
    """Damage one backup's own copy (same size, new inode: a hard-linked sibling keeps its bytes)."""
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.parent.chmod(0o755)
    path.unlink()
    path.write_bytes(bytes(data))


def health_cli(sandbox: Path) -> tuple[int, dict]:
    from recovery_lib.cli.main import main

    out = io.StringIO()
    code = main(["health", "--site", str(sandbox), "--check", "backups", "--json"], out=out)
    return code, json.loads(out.getvalue())["checks"]["backups"]


def test_damaged_and_unreadable_backups_make_health_red(sandbox: Path) -> None:
    """Issue 11: a byte flipped in the newest backup and metadata.json gone from the one before were green."""
    manager = RecoveryManager(site=sandbox)
    oldest, second, newest = (manager.create_backup() for _ in range(3))
    assert health_cli(sandbox)[0] == 0  # fresh and sound: green
    replace_with_flipped_byte(sandbox / "backups" / newest / "data/trades.csv")
    (sandbox / "backups" / second).chmod(0o755)
    (sandbox / "backups" / second / "metadata.json").unlink()
    before = snapshot(sandbox)

    code, result = health_cli(sandbox)

    assert code == 1 and result["healthy"] is False
    message = result["message"]
    assert f"backup {newest}: data/trades.csv: hash: contents differ from the manifest (corrupted)" in message
    assert f"backup {second}: unreadable: {second}/metadata.json is missing" in message
    assert "Procedure D" in message and oldest not in message
    details = result["details"]
    assert details["damaged"] == [newest, second]
    assert [c["backup_id"] for c in details["checked"]] == [newest, oldest, second]
    assert [c["ok"] for c in details["checked"]] == [False, True, False]
    assert details["budget_bytes"] == 256 * 1024 * 1024 and details["bytes_hashed"] > 0
    assert details["files_hashed"] > 0 and details["quarantined"] == 0
    assert snapshot(sandbox) == before  # the check found the damage and touched nothing


def test_quarantined_backups_are_counted_and_keep_health_green(sandbox: Path) -> None:
    manager = RecoveryManager(site=sandbox)
    damaged, good = manager.create_backup(), manager.create_backup()
    replace_with_flipped_byte(sandbox / "backups" / damaged / "data/trades.csv")
    assert not health_check.run("backups", sandbox).healthy

    manager.quarantine_backup(damaged, "hash mismatch in data/trades.csv")

    result = health_check.run("backups", sandbox)
    assert result.healthy, result.message
    assert result.message == f"newest backup {good} is 0.0 h old; 1 quarantined backup(s) await the post-mortem"
    assert result.details["quarantined"] == 1 and result.details["damaged"] == []


def test_the_health_budget_comes_from_recovery_toml(sandbox: Path) -> None:
    RecoveryManager(site=sandbox).create_backup()
    text = (sandbox / "recovery.toml").read_text().replace("[backups]\n", "[backups]\nhealth_read_mib = 0\n", 1)
    (sandbox / "recovery.toml").write_text(text)
    result = health_check.run("backups", sandbox)
    assert result.healthy and result.details["budget_bytes"] == 0 and result.details["bytes_hashed"] == 0
    assert [c["contents"] for c in result.details["checked"]] == ["structure only"]


def test_a_stale_and_damaged_backup_reports_both(sandbox: Path) -> None:
    backup_id = write_backup(sandbox, datetime.now(UTC) - timedelta(hours=30))
    replace_with_flipped_byte(sandbox / "backups" / backup_id / "config/config.toml", offset=3)
    result = health_check.run("backups", sandbox)
    assert not result.healthy
    assert f"backup {backup_id}: config/config.toml: hash:" in result.message
    assert f"newest backup {backup_id} is 30.0 h old (max 24 h)" in result.message


# --- reconciliation ---------------------------------------------------------------------------


def test_a_whole_ledger_the_exchange_disagrees_with_fails_only_reconciliation(sandbox: Path) -> None:
    """A trade the exchange never had, with positions recomputed: the files are consistent, so the
    data check passes, and only reconciliation sees the fault."""
    trades = sandbox / "data/trades.csv"
    ledger = read_ledger(trades, "data/trades.csv")
    last = ledger.trades[-1]
    with trades.open("a") as handle:
        handle.write(f"{ledger.highest_id() + 1},{last.timestamp},{last.symbol},buy,2.5000,{last.price}\n")
    (sandbox / "data/positions.csv").write_text(positions_csv(read_ledger(trades, "data/trades.csv").trades))
    result = expect_failure(sandbox, "reconciliation", last.symbol, "(Procedure B)")
    assert [d["symbol"] for d in result.details["discrepancies"]] == [last.symbol]


def test_reconciliation_not_configured(sandbox: Path) -> None:
    edit(sandbox / "recovery.toml", 'client = "simulated"', 'client = "none"')
    result = health_check.run("reconciliation", sandbox)
    assert result.healthy
    assert result.message.startswith("not monitored")
    assert result.details == {"configured": False}


@pytest.mark.parametrize(
    "row",
    [
        "{id},2026-11-20T12:00:00Z,BTC/USD,buy,1.0000,43000.0000",
        "{id},,BTC/USD,buy,1.0000,43000.0000",
        "{id},   ,BTC/USD,buy,1.0000,43000.0000",
        "{id},\t,BTC/USD,buy,1.0000,43000.0000",
        "{id},2026-11-20T12:00:00Z,,buy,1.0000,43000.0000",
        "{id},2026-11-20T12:00:00Z,NA,buy,1.0000,43000.0000",
        "{id},2026-11-20T12:00:00Z,BTC/USD, buy,1.0000,43000.0000",
        "{id},2026-11-20T12:00:00Z,BTC/USD,BUY,1.0000,43000.0000",
        "{id},2026-11-20T12:00:00Z,BTC/USD,buy,0,43000.0000",
        "{id},2026-11-20T12:00:00Z,BTC/USD,buy,nan,43000.0000",
        "{id},2026-11-20T12:00:00Z,BTC/USD,buy,1.0000,inf",
        "{id}.5,2026-11-20T12:00:00Z,BTC/USD,buy,1.0000,43000.0000",
        "-{id},2026-11-20T12:00:00Z,BTC/USD,buy,1.0000,43000.0000",
        "{id},2026-11-20T12:00:00Z,BTC/USD,buy,,43000.0000",
    ],
)
def test_the_data_check_refuses_exactly_the_rows_the_ledger_reader_refuses(sandbox: Path, row: str) -> None:
    trades = sandbox / "data/trades.csv"
    lines = trades.read_text().splitlines()
    line = row.format(id=len(lines) + 1000)
    trades.write_text("\n".join([*lines, line]) + "\n")
    report = check_data(load_site(sandbox))
    flagged = f"data/trades.csv line {len(lines) + 1}: incomplete or invalid trade row" in report.problems
    assert flagged == (parse_row(line) is None), (line, report.problems)
