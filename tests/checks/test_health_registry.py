"""The health-check registry (registering, normalising, timing checks) and which site a check reads."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from health_helpers import BUILTIN

from recovery_lib import HealthCheckRegistry, HealthResult, RecoveryManager, health_check
from recovery_lib.errors import SiteError
from recovery_lib.site.config import Site, load_site

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


def test_duration_is_measured_around_the_check(sandbox: Path) -> None:
    """duration_s is the time the check itself took: a check that sleeps 50 ms reports at least that,
    and no more than the whole call."""
    registry = HealthCheckRegistry()
    registry.register("slow", lambda: time.sleep(0.05) or True)
    registry.register("quick", lambda: True)
    began = time.perf_counter()
    results = registry.run_all(sandbox)
    wall = time.perf_counter() - began
    assert 0.05 <= results["slow"].duration_s <= wall
    assert 0 < results["quick"].duration_s < 0.05
    assert results["slow"].to_dict()["duration_s"] >= 0.05


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
