"""Helpers of the health-check tests: run every built-in check and prove checking changed nothing."""

from __future__ import annotations

from pathlib import Path

from snapshots import files

from recovery_lib import HealthResult, health_check

BUILTIN = ["config", "data", "backups", "disk", "process", "exchange", "reconciliation", "replicas"]
# A fresh sandbox has no backup (so its replica holds none either) and no running process.
FRESH_UNHEALTHY = {"backups", "process", "replicas"}


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under the site with its bytes: checking must change none."""
    return files(root)


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
