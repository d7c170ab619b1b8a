"""Midway drills (``recovery drill run --midway``): the procedure halts at a fault injected in the middle
of it, and is resumed from the step that failed (issue 17); the drill recovers only if the resumed run does.

The procedure's first run is given every approval but its main change's (A and C: ``restore``; B:
``restore`` and ``repair``; D: ``backup``), as if that approval had been refused by mistake: it stops
trading, takes its pre-recovery backup and halts at the step that needs the approval. Its record stays
in the drill's directory as the failed run (``02_B_data_recovery.ipynb``); the same notebook then runs
again with ``resume_from`` = that run's id, in the same incident, with every approval
(``03_B_data_recovery-resumed.ipynb``): it replays what the halted run did and goes on from the halt.

The faults (:data:`MIDWAY_FAULTS`):

- ``approval_refused``: only the approval is missing; nothing changes between the runs, so the resumed
  run replays the stop and the pre-recovery backup (nothing is done twice).
- ``trading_restarted``: the same, and the trading process comes back between the runs (someone started
  it): the resumed run finds the halted run's stop stale and stops it again (for A, ``resume.stale`` names
  ``stop``; B's first steps assess the data, which the restarted process wrote to, so they are stale
  first). Only for A and B, whose faults leave a site the trading process can run on: C's (the whole site
  lost) do not, D does not stop trading, and neither do B's faults in :data:`CANNOT_RESTART`.

Both work headless and as root: nothing depends on file permissions. Each drill records what it did in
the ``drill`` record's ``midway`` (:meth:`Midway.record`), which the drill history reads back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recovery_lib.catalog import by_drill
from recovery_lib.errors import MidwayNotTaken
from recovery_lib.runbook.failed_runs import failed_runs
from recovery_lib.runbook.records import outcome_of, read_notebook, resume_of, run_of
from recovery_lib.site.config import Site
from recovery_lib.site.process import start_system

APPROVAL_REFUSED = "approval_refused"
TRADING_RESTARTED = "trading_restarted"
# New faults go last: the seed's choice among the earlier ones stays the same.
MIDWAY_FAULTS = (APPROVAL_REFUSED, TRADING_RESTARTED)
# The approval of each procedure's main change: what the halted run lacks.
WITHHELD = {"A": ("restore",), "B": ("restore", "repair"), "C": ("restore",), "D": ("backup",)}
# The procedures trading can come back under: they stop it before their change, and their faults leave a
# site the trading process runs on (C's faults lose the whole site: it cannot start until C restored it).
RESTARTABLE = ("A", "B")
# The faults after which the trading process cannot start (measured: it exits at once or never comes up).
CANNOT_RESTART = {"data": ("state_deleted", "dir_deleted", "truncated_csv")}
RESTART_TIMEOUT_S = 10.0  # the sandbox's process is up in about a second
RESUMED_SUFFIX = "-resumed"
# Runs the procedure notebook with these parameters as the drill's next record (``out_name``: its name);
# returns its path and its error (its verdict failed).
Execute = Callable[..., tuple[Path, str | None]]
Say = Callable[[str], None]


def midway_faults(scenario: str, variant: str) -> tuple[str, ...]:
    """The midway faults that apply to a drill of ``scenario`` with the fault ``variant``."""
    restartable = by_drill(scenario).procedure in RESTARTABLE and variant not in CANNOT_RESTART.get(scenario, ())
    return tuple(f for f in MIDWAY_FAULTS if f != TRADING_RESTARTED or restartable)


def chosen_midway(scenario: str, variant: str, midway: bool | str | None, seed: int) -> str | None:
    """The midway fault of a drill of ``scenario`` with the fault ``variant``: None (no midway fault), the
    one named, or (``midway=True``) the one ``seed`` chooses among those that apply (seed 0:
    ``approval_refused``). Raises ValueError for a name that does not apply."""
    if midway is False or midway is None:
        return None
    faults = midway_faults(scenario, variant)
    if midway is True:
        return faults[seed % len(faults)]
    if midway not in faults:
        raise ValueError(
            f"midway fault {midway!r} does not apply to the {scenario} scenario's {variant} fault "
            f"({_why_not(scenario, variant, midway)}); choose from {', '.join(faults)}"
        )
    return str(midway)


def _why_not(scenario: str, variant: str, midway: str) -> str:
    procedure = by_drill(scenario).procedure
    if midway not in MIDWAY_FAULTS:
        return f"it is none of {', '.join(MIDWAY_FAULTS)}"
    if procedure == "D":
        return "Procedure D does not stop trading"
    if procedure not in RESTARTABLE:
        return f"Procedure {procedure} recovers a site lost whole: no trading process can start on it"
    return f"the trading process cannot start on the site {variant} leaves"


@dataclass
class Midway:
    """One midway fault: what was withheld, which run halted where, and which run resumed it."""

    fault: str
    procedure: str
    withheld: tuple[str, ...]
    halted_run: str | None = None
    halted_step: str | None = None  # the step that failed (the one that needed the approval)
    halted: str | None = None  # why it halted, as its record says
    restarted: str | None = None  # trading_restarted: what starting the trading process said
    resumed_run: str | None = None
    replayed: list[str] = field(default_factory=list)  # the steps the resumed run replayed
    stale: str | None = None  # which replayed step's facts no longer held, and why

    @classmethod
    def of(cls, fault: str, scenario: str) -> Midway:
        """The midway fault ``fault`` on ``scenario``'s procedure."""
        procedure = by_drill(scenario).procedure
        return cls(fault=fault, procedure=procedure, withheld=WITHHELD[procedure])

    def approvals(self, every: list[str]) -> list[str]:
        """The halted run's ``approve``: every approval but the withheld ones."""
        return [action for action in every if action not in self.withheld]

    def resumed_name(self, halted: Path) -> str:
        """The resumed run's record's name: ``02_B_data_recovery.ipynb`` halted, ``B_data_recovery-resumed.ipynb``
        (the drill numbers it)."""
        stem = halted.stem.split("_", 1)[1] if halted.stem[:2].isdigit() else halted.stem
        return f"{stem}{RESUMED_SUFFIX}{halted.suffix}"

    def after_halt(self, site: Site, notebook: Path) -> None:
        """Check that the run recorded in ``notebook`` halted at the withheld approval, and note where; for
        ``trading_restarted``, start the trading process again. Raises :class:`MidwayNotTaken` when it did not."""
        records = read_notebook(notebook)
        run_id = run_of(records).get("run_id")
        outcome = outcome_of(records)
        refused = [
            a.get("action")
            for a in outcome.get("approvals") or []
            if a.get("approved") is False and a.get("action") in self.withheld
        ]
        if not run_id or outcome.get("success") is not False or not refused:
            verdict = "recovered" if outcome.get("success") else "did not reach its outcome"
            if outcome.get("success") is False:
                verdict = "failed without asking for it"
            raise MidwayNotTaken(
                f"the midway fault did not stop Procedure {self.procedure} at the approval of "
                f"{' or '.join(self.withheld)} ({notebook.name}: it {verdict}); the drill cannot test a resume. "
                "Run it without --midway, or with another --variant."
            )
        failed = next((f for f in failed_runs(site, self.procedure) if f.run_id == run_id), None)
        if failed is None:
            raise MidwayNotTaken(
                f"run {run_id} ({notebook.name}) halted but is not among the failed runs of {site.root} "
                "that can be resumed (`recovery resume --list`); the drill cannot test a resume."
            )
        self.halted_run, self.halted_step, self.halted = run_id, failed.failed_step, failed.halted
        if self.fault == TRADING_RESTARTED:
            started = start_system(site, timeout_s=RESTART_TIMEOUT_S)
            if not started.ok:
                raise MidwayNotTaken(
                    f"the trading process of {site.root} did not come back between the runs ({started.message}); "
                    f"the drill cannot test a stale stop. Run it with --midway {APPROVAL_REFUSED}."
                )
            self.restarted = started.message

    def after_resume(self, notebook: Path) -> None:
        """Note which run resumed the halted one, what it replayed and what was stale; raises
        :class:`MidwayNotTaken` when the run in ``notebook`` did not resume the halted run."""
        records = read_notebook(notebook)
        resume = resume_of(records)
        self.resumed_run = run_of(records).get("run_id")
        if resume.get("resumed_from") != self.halted_run:
            raise MidwayNotTaken(
                f"{notebook.name} did not resume run {self.halted_run} (its resume record names "
                f"{resume.get('resumed_from')!r}); the drill cannot test a resume."
            )
        self.replayed, self.stale = list(resume.get("replay") or []), resume.get("stale")

    def halt_and_resume(self, execute: Execute, common: dict[str, Any], site: Site, say: Say) -> str | None:
        """The procedure of a midway drill: ``execute`` it without the withheld approvals, so that it halts
        midway (its record kept as the failed run); then again with ``resume_from`` = that run and every
        approval, in the same incident, as ``<notebook>-resumed.ipynb``. ``common`` are the drill's
        parameters (its ``drill`` record gains ``midway``, for the runs after). Returns the resumed run's
        error: the drill recovers only if the resumed run does."""
        halted, _ = execute({**common, "approve": self.approvals(list(common["approve"]))})
        self.after_halt(site, halted)
        common["drill"]["midway"] = self.record()  # the resumed run, V and P record where it halted
        say(self.halted_line())
        resumed, error = execute({**common, "resume_from": self.halted_run}, out_name=self.resumed_name(halted))
        self.after_resume(resumed)
        common["drill"]["midway"] = self.record()
        say(self.resumed_line(error))
        return error

    def record(self) -> dict[str, Any]:
        """The drill record's ``midway``."""
        return {
            "fault": self.fault,
            "procedure": self.procedure,
            "withheld": list(self.withheld),
            "halted_run": self.halted_run,
            "halted_step": self.halted_step,
            "halted": self.halted,
            "restarted": self.restarted,
            "resumed_run": self.resumed_run,
            "replayed": self.replayed,
            "stale": self.stale,
        }

    def halted_line(self) -> str:
        """The drill's output line once the procedure halted."""
        line = (
            f"midway fault {self.fault}: Procedure {self.procedure} ran without the approval of "
            f"{', '.join(self.withheld)} and halted at {self.halted_step or 'an error'} (run {self.halted_run})"
        )
        return line + (f"; then the trading process was started again: {self.restarted}" if self.restarted else "")

    def resumed_line(self, error: str | None) -> str:
        """The drill's output line once the resumed run ended."""
        replayed = ", ".join(self.replayed) or "nothing"
        stale = f"; stale: {self.stale}" if self.stale else ""
        verdict = f"FAILED: {error}" if error else "recovered"
        return (
            f"resumed Procedure {self.procedure} from run {self.halted_run} as run {self.resumed_run} "
            f"(replayed: {replayed}{stale}): {verdict}"
        )


__all__ = [
    "APPROVAL_REFUSED",
    "CANNOT_RESTART",
    "MIDWAY_FAULTS",
    "TRADING_RESTARTED",
    "WITHHELD",
    "Midway",
    "MidwayNotTaken",
    "chosen_midway",
    "midway_faults",
]
