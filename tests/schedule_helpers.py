"""Sites with declared schedules for the schedule tests, and the user's crontab kept safe around them."""

from __future__ import annotations

import fcntl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from recovery_lib.site.config import Site, load_site

CRONTAB_LOCK = Path("/tmp/recovery_lib-tests-crontab.lock")  # one test at a time owns the user's crontab


def make_site(
    root: Path,
    backups: list[str] | None = None,
    drills: list[str] | None = None,
    units: str | None = "../units",
    name: str = "prod one",
) -> Site:
    """A site directory whose recovery.toml declares these schedules (and ``[schedule] systemd_dir``)."""
    root.mkdir(parents=True, exist_ok=True)
    lines = ["[site]", f'name = "{name}"']
    if backups is not None:
        lines += ["[backups]", f"schedule = {_toml_list(backups)}"]
    if drills is not None:
        lines += ["[drills]", f"schedule = {_toml_list(drills)}"]
    if units is not None:
        lines += ["[schedule]", f'systemd_dir = "{units}"']
    (root / "recovery.toml").write_text("\n".join(lines) + "\n")
    return load_site(root)


def _toml_list(items: list[str]) -> str:
    return "[" + ", ".join(f'"{item}"' for item in items) + "]"


def crontab_bytes() -> bytes | None:
    """The user's crontab as ``crontab -l`` gives it, None when there is none."""
    answer = subprocess.run(["crontab", "-l"], capture_output=True, check=False)
    return answer.stdout if answer.returncode == 0 else None


def set_crontab(data: bytes | None) -> None:
    """Install ``data`` as the user's crontab (None: remove it)."""
    if data is None:
        subprocess.run(["crontab", "-r"], capture_output=True, check=False)
        assert crontab_bytes() is None
    else:
        subprocess.run(["crontab", "-"], input=data, check=True)


@pytest.fixture
def user_crontab() -> Iterator[None]:
    """The test may change the user's crontab: it is saved first and always put back (under a lock)."""
    with CRONTAB_LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        saved = crontab_bytes()
        try:
            set_crontab(None)
            yield
        finally:
            set_crontab(saved)
            assert crontab_bytes() == saved, "the user's crontab was not restored"
