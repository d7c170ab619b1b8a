"""The runbook's catalog: its scenarios, its procedures and their notebooks, the drill schedule, the targets.

One table, read by every other place (triage, the drills, the site's ``[targets]``, the records): to
add a scenario or a procedure, add a row here and its notebook in ``notebooks/``. The values are the
runbook's own ("Disaster Scenarios", "Recovery Procedures", "Escalation", "Monthly Drill Schedule");
``tests/test_catalog.py`` compares them with the runbook's text.

A leaf module: it imports nothing from ``recovery_lib``, so every layer may read it.
"""

from __future__ import annotations

from dataclasses import dataclass

# Runbook "Escalation", level 2: "Data loss > 24 hours". Every procedure's default RPO target.
DATA_LOSS_LIMIT_HOURS = 24


@dataclass(frozen=True)
class Procedure:
    """One notebook of the runbook: a recovery procedure (A-D) or one around them (triage, V, P, R).

    ``key`` is what the notebook passes as ``start(globals(), procedure=key)`` and what its records
    carry as ``run.procedure``. The recovery procedures (``recovers``) are the ones that write to the
    site: one at a time per site, and they have RTO/RPO targets.
    """

    key: str
    title: str  # the runbook's heading, without "Procedure X:"
    notebook: str  # file name in notebooks/
    label: str  # how a record names the notebook in a list ("00 triage", "B")
    recovers: bool = False  # a runbook "Recovery Procedure": writes to the site, has targets
    rto_minutes: float | None = None  # upper bound of the runbook's "Time Estimate"
    rpo_hours: float | None = None

    @property
    def heading(self) -> str:
        """The runbook's heading: ``Procedure A: Config Recovery`` (a recovery procedure) or the title."""
        return f"Procedure {self.key}: {self.title}" if self.recovers else self.title


@dataclass(frozen=True)
class Scenario:
    """One of the runbook's disaster scenarios: its procedure and its place in the drill schedule."""

    number: int
    name: str  # "Configuration Corruption"
    procedure: str  # the key of the procedure that recovers from it
    drill: str  # the drill's scenario name: `recovery drill run --scenario config`
    week: int  # the week of the month the monthly drill schedule drills it


PROCEDURES: tuple[Procedure, ...] = (
    Procedure("triage", "Detect and triage", "00_detect_and_triage.ipynb", "00 triage"),
    Procedure("A", "Config Recovery", "A_config_recovery.ipynb", "A", True, 10, DATA_LOSS_LIMIT_HOURS),
    Procedure("B", "Data Recovery", "B_data_recovery.ipynb", "B", True, 30, DATA_LOSS_LIMIT_HOURS),
    Procedure("C", "Full System Recovery", "C_full_system_recovery.ipynb", "C", True, 60, DATA_LOSS_LIMIT_HOURS),
    Procedure("D", "Backup System Recovery", "D_backup_system_recovery.ipynb", "D", True, 30, DATA_LOSS_LIMIT_HOURS),
    Procedure("V", "Verification", "V_verification.ipynb", "V verification"),
    Procedure("P", "Post-Recovery Actions", "P_post_recovery.ipynb", "P post-recovery"),
    Procedure("R", "Drill records", "R_drill_report.ipynb", "R drill report"),
)
SCENARIOS: tuple[Scenario, ...] = (
    Scenario(1, "Configuration Corruption", "A", "config", 1),
    Scenario(2, "Data Loss", "B", "data", 2),
    Scenario(3, "Complete System Failure", "C", "full", 3),
    Scenario(4, "Backup System Failure", "D", "backup", 4),
)

# Derived views, for the common questions.
RECOVERY_PROCEDURES: tuple[str, ...] = tuple(p.key for p in PROCEDURES if p.recovers)  # A, B, C, D
DRILLS: tuple[str, ...] = tuple(s.drill for s in SCENARIOS)  # config, data, full, backup
TRIAGE = "triage"
VERIFICATION = "V"
POST_RECOVERY = "P"
REPORT = "R"
COMPLETE_FAILURE = 3  # the scenario that is "Complete System Failure" (escalation level 3)


def procedure(key: str) -> Procedure:
    """The procedure (or notebook) with this key: ``"A"``, ``"triage"``, ``"V"``; KeyError names the known ones."""
    for row in PROCEDURES:
        if row.key == key:
            return row
    raise KeyError(f"no procedure {key!r} in the runbook; known: {', '.join(p.key for p in PROCEDURES)}")


def scenario(number: int) -> Scenario:
    """The scenario with this number (1-4); KeyError names the known ones."""
    for row in SCENARIOS:
        if row.number == number:
            return row
    raise KeyError(f"no scenario {number!r} in the runbook; known: {', '.join(str(s.number) for s in SCENARIOS)}")


def by_drill(drill: str) -> Scenario:
    """The scenario a drill name (``config``, ``data``, ``full``, ``backup``) drills; KeyError names the known ones."""
    for row in SCENARIOS:
        if row.drill == drill:
            return row
    raise KeyError(f"no drill scenario {drill!r}; choose from {', '.join(DRILLS)}")


def by_week(week: int) -> Scenario:
    """The scenario the monthly drill schedule drills in ``week`` (1-4); KeyError names the known weeks."""
    for row in SCENARIOS:
        if row.week == week:
            return row
    raise KeyError(f"no drill in week {week!r} of the schedule; weeks: {', '.join(str(s.week) for s in SCENARIOS)}")


def notebook(key: str) -> str:
    """The notebook file of a procedure key (``"B"`` -> ``B_data_recovery.ipynb``)."""
    return procedure(key).notebook


def schedule_text() -> str:
    """The monthly schedule in one line: ``week 1 config, week 2 data, week 3 full, week 4 backup``."""
    return ", ".join(f"week {s.week} {s.drill}" for s in sorted(SCENARIOS, key=lambda s: s.week))
