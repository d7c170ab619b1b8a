"""Telling the site's ``[alerts]`` when a procedure escalates: at ``[alerts] escalation_level`` (default
2, the Team Lead) or above, once per level an incident reaches.

A procedure records its escalation at its end, and the post-recovery notebook again for the whole
incident; a cell may be rerun. The people paged once for "Level 3" in an incident are not paged again
for the same level: the incident journal (and this run's records) say what the incident already
escalated to, and only a higher level is told again. Delivery never raises: a notification that
cannot be sent is logged (``alerts.notify``) and the procedure goes on.
"""

from __future__ import annotations

from recovery_lib.alerts.events import Outcome
from recovery_lib.alerts.notify import notify
from recovery_lib.clock import now, parse
from recovery_lib.errors import JournalError
from recovery_lib.runbook.escalation import LEVEL_NAMES, Escalation
from recovery_lib.runbook.run import Run


def escalated_before(run: Run) -> int:
    """The highest escalation level this incident recorded before now (0: none): in its journal, and
    in this run's own records (a run without a journal, a rerun cell)."""
    levels = [_level(run.recorder.values.get("escalation"))]
    if run.journal is not None:
        try:
            entries = run.journal.entries()
        except (OSError, JournalError):  # unreadable: tell again rather than stay silent
            entries = []
        levels += [
            _level(e.get("value")) for e in entries if e.get("kind") == "record" and e.get("name") == "escalation"
        ]
    return max(levels)


def tell_escalation(run: Run, result: Escalation) -> list[str]:
    """Notify the site's ``[alerts] urls`` of ``result``; the delivery problems (already logged)."""
    site = run.site
    started = parse(run.started_at) or now()
    record = run.journal.path if run.journal is not None else None
    outcome = Outcome(
        kind="escalation",
        site=site.name,
        site_root=site.root,
        ok=False,
        status=f"Level {result.level} ({LEVEL_NAMES.get(result.level, result.name)})",
        summary=f"{result.call()} Incident {run.incident_id}, procedure {run.procedure} ({run.kind}), "
        f"run by {run.operator}.",
        started=started,
        finished=now(),
        subject=run.incident_id,
        record=record,
        problems=tuple(result.reasons),
        advice=" ".join(f"{n}. {step}" for n, step in enumerate(result.next_steps, 1))
        or "call the contact named in the summary with this record.",
    )
    return notify(site, outcome)


def _level(value: object) -> int:
    level = value.get("level") if isinstance(value, dict) else None
    return level if isinstance(level, int) else 0


__all__ = ["escalated_before", "tell_escalation"]
