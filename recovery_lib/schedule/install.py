"""Making a plan and applying it: the one path both ``--dry-run`` and the real install take."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

from recovery_lib.errors import InvalidArgumentError, SchedulerFailed
from recovery_lib.fsops.atomic import atomic_write_text
from recovery_lib.schedule import cron, systemd
from recovery_lib.schedule.plan import Plan
from recovery_lib.site.config import Site

SCHEDULERS = ("systemd", "cron")
COMMAND_TIMEOUT_S = 60


def plan_install(site: Site, scheduler: str) -> Plan:
    """The plan of installing ``site``'s declared schedule with ``scheduler`` (refusals raised here)."""
    if scheduler == "systemd":
        return systemd.plan_systemd(site)
    if scheduler == "cron":
        return cron.plan_cron(site)
    raise InvalidArgumentError(f"unknown scheduler {scheduler!r}; choose {' or '.join(SCHEDULERS)}.")


def apply(plan: Plan) -> list[str]:
    """Do what ``plan`` says, in its order; returns what was done. SchedulerFailed says what is in place."""
    if plan.scheduler == "cron":
        return _apply_cron(plan)
    done: list[str] = []
    for command in plan.stop_first:
        _run(command, done, "nothing was written yet")
    for change in plan.files:
        try:
            if change.text is None:
                change.path.unlink(missing_ok=True)
                done.append(f"removed {change.path}")
            else:
                change.path.parent.mkdir(parents=True, exist_ok=True)
                atomic_write_text(change.path, change.text)
                done.append(f"wrote {change.path}")
        except OSError as exc:
            so_far = "; ".join(done) or "nothing was written"
            raise SchedulerFailed(
                f"cannot write the units in {change.path.parent} ({exc.strerror}): {so_far}. Choose a directory "
                "you can write ([schedule] systemd_dir in recovery.toml) or run as the user who owns it."
            ) from exc
    for command in plan.commands:
        _run(command, done, f"the units are written in {plan.where}")
    return done


def _apply_cron(plan: Plan) -> list[str]:
    assert plan.crontab_after is not None, "a cron plan carries the new crontab"
    now = cron.read_crontab()
    if now != plan.crontab_before:  # someone edited it since the plan: never overwrite their change
        raise SchedulerFailed(
            f"{plan.where} changed since the plan was made; nothing was changed. Run the install again."
        )
    cron.write_crontab(plan.crontab_after)
    return [f"installed the block for {plan.site} at the end of {plan.where}"]


def _run(command: tuple[str, ...], done: list[str], state: str) -> None:
    try:
        answer = subprocess.run(command, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SchedulerFailed(f"`{shlex.join(command)}` could not run ({exc}); {state}. Run it by hand.") from exc
    if answer.returncode != 0:
        raise SchedulerFailed(
            f"`{shlex.join(command)}` failed (exit {answer.returncode}): {answer.stderr.strip()}; {state}. "
            "Fix that and run the install again."
        )
    done.append(f"ran {shlex.join(command)}")


def install(site: Site, scheduler: str) -> tuple[Plan, list[str]]:
    """Plan and apply in one call (what ``recovery sandbox create`` and a new host's provisioning use)."""
    plan = plan_install(site, scheduler)
    return plan, apply(plan)


def written_units(plan: Plan) -> list[Path]:
    """The unit files a systemd plan writes (for ``systemd-analyze verify`` and messages)."""
    return [change.path for change in plan.files if change.text is not None]


__all__ = ["SCHEDULERS", "apply", "install", "plan_install", "written_units"]
