"""Installing the site's schedules (systemd timers or crontab lines) and reading back what is installed.

``plan_install(site, "systemd"|"cron")`` makes the :class:`Plan` (refusing what cannot be installed),
``apply(plan)`` does it, ``schedule_status(site)`` reads back what is really installed and whether
anything will run it. Layer 2.5: it reads the site's settings and writes with ``fsops``.
"""

from recovery_lib.schedule.install import SCHEDULERS, apply, install, plan_install, written_units
from recovery_lib.schedule.plan import FileChange, Job, Plan, declared_jobs
from recovery_lib.schedule.status import EntryStatus, ScheduleStatus, schedule_status

__all__ = [
    "SCHEDULERS",
    "EntryStatus",
    "FileChange",
    "Job",
    "Plan",
    "ScheduleStatus",
    "apply",
    "declared_jobs",
    "install",
    "plan_install",
    "schedule_status",
    "written_units",
]
