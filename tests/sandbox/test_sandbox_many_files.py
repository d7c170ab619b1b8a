"""A sandbox at a realistic scale: reports nested by year and month, and the market-data cache of small files."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from snapshots import files

from recovery_lib.cli.main import main
from recovery_lib.errors import InvalidArgumentError
from recovery_lib.sandbox import SandboxSpec, create_sandbox, parse_size
from recovery_lib.sandbox.generate import SYMBOLS

NEW_YEAR = datetime(2027, 1, 15, 9, 30, tzinfo=UTC)  # 70 daily reports reach back into November
REPORT = re.compile(r"data/reports/(\d{4})/(\d{2})/fills_(\d{4})-(\d{2})-(\d{2})_(\d{4})\.csv")
CANDLES = re.compile(r"data/cache/([A-Z]+-USD)/(\d{4}-\d{2})/candles_([A-Z]+-USD)_(\d{4}-\d{2}-\d{2})\.csv")
CACHED = SandboxSpec(trades=200, reports=2, report_rows=5, cache_files=250, seed=4, now=NEW_YEAR)


def relative_files(root: Path, under: str) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in (root / under).rglob("*") if p.is_file())


def test_reports_nest_by_year_and_month(tmp_path: Path) -> None:
    create_sandbox(tmp_path / "site", SandboxSpec(trades=100, reports=70, report_rows=3, seed=2, now=NEW_YEAR))
    reports = relative_files(tmp_path / "site", "data/reports")
    assert len(reports) == 70
    months = set()
    for number, path in enumerate(reports):
        match = REPORT.fullmatch(path)
        assert match, path
        year, month, name_year, name_month, _, index = match.groups()
        assert (year, month) == (name_year, name_month) and int(index) == number
        months.add(f"{year}/{month}")
    assert months == {"2026/11", "2026/12", "2027/01"}
    assert reports[0].endswith("fills_2026-11-06_0000.csv") and reports[-1].endswith("fills_2027-01-14_0069.csv")
    assert sorted(p.name for p in (tmp_path / "site/data/reports").iterdir()) == ["2026", "2027"]


def test_cache_files_are_candles_of_1_to_8_kb_per_symbol_and_day(tmp_path: Path) -> None:
    summary = create_sandbox(tmp_path / "site", CACHED)
    root = tmp_path / "site"
    cached = relative_files(root, "data/cache")
    assert len(cached) == summary.cache_files == 250
    pairs, days = set(), set()
    for path in cached:
        match = CANDLES.fullmatch(path)
        assert match, path
        pair, month, name_pair, day = match.groups()
        assert pair == name_pair and day.startswith(month) and day < "2027-01-15", path
        pairs.add(pair)
        days.add((pair, day))
        assert 1024 <= (root / path).stat().st_size <= 8192, path
    assert pairs == {name.replace("/", "-") for name in SYMBOLS}
    assert len(days) == 250  # one file per symbol and day, no file written twice
    assert summary.bytes_written == sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def test_candles_are_whole_15_minute_rows_of_their_day(tmp_path: Path) -> None:
    create_sandbox(tmp_path / "site", CACHED)
    for path in sorted((tmp_path / "site/data/cache").rglob("*.csv"))[::25]:
        lines = path.read_text().splitlines()
        assert lines[0] == "timestamp,open,high,low,close,volume"
        day = path.stem.rsplit("_", 1)[1]
        stamps = []
        for line in lines[1:]:
            stamp, *numbers = line.split(",")
            open_, high, low, close, volume = (float(n) for n in numbers)
            assert stamp.startswith(day + "T") and stamp.endswith("Z"), path
            assert low <= min(open_, close) <= max(open_, close) <= high and volume > 0, line
            stamps.append(datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ"))
        steps = {(b - a).total_seconds() for a, b in zip(stamps, stamps[1:], strict=False)}
        assert steps == {900.0} and stamps[0].minute % 15 == 0, path


def test_same_seed_same_cache_other_seed_differs(tmp_path: Path) -> None:
    create_sandbox(tmp_path / "a", CACHED)
    create_sandbox(tmp_path / "b", CACHED)
    create_sandbox(tmp_path / "c", SandboxSpec(**{**CACHED.__dict__, "seed": 5}))
    a, b, c = (files(tmp_path / name / "data/cache") for name in "abc")
    assert a == b
    assert a.keys() == c.keys() and a != c


def test_cache_counts_towards_the_size_target(tmp_path: Path) -> None:
    target = parse_size("4M")
    spec = SandboxSpec(trades=500, reports=5, cache_files=400, seed=3, size_bytes=target, now=NEW_YEAR)
    summary = create_sandbox(tmp_path / "site", spec)
    on_disk = sum(p.stat().st_size for p in (tmp_path / "site").rglob("*") if p.is_file())
    assert summary.bytes_written == on_disk and abs(on_disk - target) <= 0.02 * target
    cache = sum(p.stat().st_size for p in (tmp_path / "site/data/cache").rglob("*") if p.is_file())
    assert 400 * 1024 <= cache < on_disk / 2  # the reports were grown by what the cache left


def test_negative_cache_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="cache files >= 0"):
        create_sandbox(tmp_path / "site", SandboxSpec(cache_files=-1))
    assert list(tmp_path.iterdir()) == []


def test_cli_cache_files_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = io.StringIO()
    argv = ["sandbox", "create", str(tmp_path / "site"), "--trades", "100", "--reports", "40", "--quiet"]
    assert main([*argv, "--cache-files", "1_000"], out=out) == 0
    assert "100 trades, 40 reports, 1000 cache files" in out.getvalue()
    assert len(list((tmp_path / "site/data/cache").rglob("*.csv"))) == 1000
    assert len(list((tmp_path / "site/data/reports").rglob("*.csv"))) == 40
    with pytest.raises(SystemExit) as refused:
        main(["sandbox", "create", str(tmp_path / "other"), "--cache-files", "-5"])
    assert refused.value.code == 2
    assert "--cache-files: '-5' must not be negative" in capsys.readouterr().err
    assert not (tmp_path / "other").exists()


def test_help_shows_a_20000_file_site(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["sandbox", "create", "--help"])
    shown = capsys.readouterr().out
    assert "--cache-files N" in shown and "20,000 files" in shown
    assert "--reports 3650 --cache-files 16350 --size 170M" in shown
