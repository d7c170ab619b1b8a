"""The site model: defaults, recovery.toml overrides, resolution order, and errors that point at a line."""

from __future__ import annotations

from pathlib import Path

import pytest

from recovery_lib.errors import SiteConfigError, SiteError
from recovery_lib.site.config import DEFAULT_TARGETS, Site, load_site, resolve_site_root

FULL_TOML = """\
[site]
name = "peak-trade-prod"

[paths]
config = ["config", "etc/extra.toml"]
state = ["state"]
data = ["data"]
config_file = "config/config.toml"
positions_file = "data/positions.csv"
trades_file = "data/trades.csv"
reports_dir = "data/reports"
critical = ["data/positions.csv", "data/trades.csv", "data/reports/"]

[config_check]
required_sections = ["trading", "risk"]

[backups]
dir = "/var/backups/peak"
max_age_hours = 6

[targets.B]
rto_minutes = 20

[process]
pidfile = "run/live_ops.pid"
match = "live_ops"
stop = "pkill -f 'python.*live_ops'"
start = "python scripts/live_ops.py"

[exchange]
client = "ccxt"
exchange_id = "kraken"
api_key_env = "PEAK_KEY"
secret_env = "PEAK_SECRET"

[escalation.level2]
name = "Dana (team lead)"
contact = "slack:@dana"

[alerts]
webhook_url = "https://hooks.example.invalid/peak"
"""


def write_toml(root: Path, text: str) -> Path:
    path = root / "recovery.toml"
    path.write_text(text)
    return path


def test_defaults_without_recovery_toml(tmp_path: Path) -> None:
    site = load_site(tmp_path)
    assert site.root == tmp_path.resolve()
    assert site.config_file == "config/config.toml"
    assert site.categories == {"config": ("config",), "state": ("state",), "data": ("data",)}
    assert site.critical == ("data/positions.csv", "data/trades.csv", "data/reports/")
    assert site.required_sections == ("trading", "risk", "live")
    assert site.backup_dir == tmp_path.resolve() / "backups"
    assert site.max_backup_age_hours == 24
    assert site.targets == DEFAULT_TARGETS
    assert site.contacts["level4"].contact == "CTO/CEO immediately"
    assert not site.process.configured
    assert site.exchange.client == "none"
    assert not site.is_sandbox


def test_full_recovery_toml_overrides_defaults(tmp_path: Path) -> None:
    write_toml(tmp_path, FULL_TOML)
    site = load_site(tmp_path)
    assert site.name == "peak-trade-prod"
    assert site.config_paths == ("config", "etc/extra.toml")
    assert site.required_sections == ("trading", "risk")
    assert site.backup_dir == Path("/var/backups/peak")
    assert site.max_backup_age_hours == 6
    assert site.targets["B"].rto_minutes == 20
    assert site.targets["B"].rpo_hours == DEFAULT_TARGETS["B"].rpo_hours  # untouched key keeps its default
    assert site.targets["A"] == DEFAULT_TARGETS["A"]
    assert site.process.pidfile == "run/live_ops.pid" and site.process.configured
    assert site.process.stop == "pkill -f 'python.*live_ops'"
    assert site.exchange.client == "ccxt" and site.exchange.api_key_env == "PEAK_KEY"
    assert site.contacts["level2"].contact == "slack:@dana"
    assert site.contacts["level3"].name == "Senior Engineer"
    assert site.ops.alert_urls == ("jsons://hooks.example.invalid/peak",)


def test_relative_backup_dir_is_relative_to_site(tmp_path: Path) -> None:
    write_toml(tmp_path, '[backups]\ndir = "../elsewhere/backups"\n')
    assert load_site(tmp_path).backup_dir == tmp_path.resolve() / "../elsewhere/backups"


def test_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = write_toml(tmp_path, '[site]\nname = "x"\n\n[backups]\nmax_age_hours = = 3\n')
    with pytest.raises(SiteConfigError) as caught:
        load_site(tmp_path)
    assert caught.value.line == 5
    assert str(caught.value).startswith(f"{path}:5:")
    assert "not valid TOML" in str(caught.value)


def test_wrong_type_names_file_line_and_key(tmp_path: Path) -> None:
    write_toml(tmp_path, '[site]\nname = "x"\n\n[backups]\ndir = "b"\nmax_age_hours = "24h"\n')
    with pytest.raises(SiteConfigError) as caught:
        load_site(tmp_path)
    error = caught.value
    assert (error.line, error.key) == (6, "backups.max_age_hours")
    assert "must be a finite non-negative number" in str(error) and "'24h'" in str(error)


def test_unknown_key_lists_the_known_ones(tmp_path: Path) -> None:
    write_toml(tmp_path, "[backups]\nmax_age_hour = 3\n")
    with pytest.raises(SiteConfigError) as caught:
        load_site(tmp_path)
    assert caught.value.line == 2
    assert "unknown key" in str(caught.value) and "max_age_hours" in str(caught.value)


def test_unknown_table_and_subtable(tmp_path: Path) -> None:
    write_toml(tmp_path, "[bakups]\ndir = 'x'\n")
    with pytest.raises(SiteConfigError, match=r"recovery.toml:1: \[bakups\] unknown table"):
        load_site(tmp_path)
    write_toml(tmp_path, "[targets.E]\nrto_minutes = 1\n")
    with pytest.raises(SiteConfigError, match="use one of A, B, C, D"):
        load_site(tmp_path)


@pytest.mark.parametrize("bad", ["/etc/passwd", "../outside", "config/../../x", "a\\\\b"])
def test_paths_must_stay_inside_the_site(tmp_path: Path, bad: str) -> None:
    write_toml(tmp_path, f'[paths]\nconfig_file = "{bad}"\n')
    with pytest.raises(SiteConfigError, match="relative path inside the site") as caught:
        load_site(tmp_path)
    assert caught.value.line == 2


def test_exchange_client_must_be_known(tmp_path: Path) -> None:
    write_toml(tmp_path, '[exchange]\nclient = "binance"\n')
    with pytest.raises(SiteConfigError, match='one of "none", "simulated", "ccxt"'):
        load_site(tmp_path)


def test_non_utf8_recovery_toml(tmp_path: Path) -> None:
    (tmp_path / "recovery.toml").write_bytes(b"[site]\nname = '\xff'\n")
    with pytest.raises(SiteConfigError, match="not UTF-8"):
        load_site(tmp_path)


def test_resolution_order_argument_env_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    explicit, from_env, cwd = (tmp_path / name for name in ("explicit", "env", "cwd"))
    for directory in (explicit, from_env, cwd):
        directory.mkdir()
    monkeypatch.chdir(cwd)
    assert resolve_site_root() == cwd.resolve()
    monkeypatch.setenv("RECOVERY_SITE", str(from_env))
    assert resolve_site_root() == from_env.resolve()
    assert resolve_site_root(explicit) == explicit.resolve()
    site = Site(root=explicit)
    assert load_site(site) is site


def test_missing_site_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECOVERY_SITE", str(tmp_path / "nowhere"))
    with pytest.raises(SiteError, match=r"from \$RECOVERY_SITE\) does not exist.*--site DIR"):
        load_site()
    (tmp_path / "file").write_text("")
    with pytest.raises(SiteError, match="is not a directory"):
        load_site(tmp_path / "file")


def test_relative_shows_site_paths_without_host_prefix(tmp_path: Path) -> None:
    site = load_site(tmp_path)
    assert site.relative(tmp_path / "data" / "trades.csv") == "data/trades.csv"
    assert site.relative(Path("/somewhere/else")) == "/somewhere/else"
