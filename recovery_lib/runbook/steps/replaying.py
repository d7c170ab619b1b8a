"""How a resumed run replays the steps a failed run did (:mod:`recovery_lib.runbook.resume`): the
:class:`Replay` rule a step declares, the ``step`` journal entry written when such a step completes, and
the replay itself. Used by :func:`recovery_lib.runbook.steps.base.step`, the one place steps are guarded."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from recovery_lib.clock import now_iso
from recovery_lib.errors import RecoveryError, StaleReplay
from recovery_lib.restore.plan import site_fingerprint
from recovery_lib.runbook.escalation import Facts
from recovery_lib.runbook.failed_runs import STEP
from recovery_lib.runbook.resume import Earlier, backup_listing, id_ranges, ids_of
from recovery_lib.runbook.run import Run
from recovery_lib.runbook.steps.outcomes import Again, Halted

EXECUTE: Any = object()  # what a Replay's rebuild returns when the step must run now (not stale)


def _no_facts(run: Run, value: Any, *_: Any, **__: Any) -> dict[str, Any]:
    return {}


def _no_key(run: Run, *_: Any, **__: Any) -> str:
    return ""


@dataclass(frozen=True)
class Replay:
    """How a resumed run replays a step that writes or decides (:mod:`recovery_lib.runbook.resume`).

    - ``rebuild(run, earlier, *args, **kwargs)``: what the step returned in the failed run, rebuilt from
      ``earlier`` (its :class:`~recovery_lib.runbook.resume.Earlier` entry), without acting again; raises
      :class:`~recovery_lib.runbook.resume.StaleReplay` when its facts no longer hold, or returns :data:`EXECUTE`
      when the step must run now anyway (a dry run whose restore has not happened reads the site anew);
    - ``keep(run, value, *args, **kwargs)``: the facts its result stands on, journalled when it completes:
      ``stopped`` (the trading process must still be stopped), ``backups`` (ids that must still be usable),
      ``site`` (it depends on the site's files), and anything ``rebuild`` needs;
    - ``key(run, *args, **kwargs)``: which call of the step it is ("" for most; a backup's record name).
    """

    rebuild: Callable[..., Any]
    keep: Callable[..., dict[str, Any]] = _no_facts
    key: Callable[..., str] = _no_key


def plain(value: Any) -> Any:
    """A step's result without the :class:`Again` around it (a repeat or a replay of it)."""
    return value.value if isinstance(value, Again) else value


def _fingerprint(run: Run) -> str:
    return site_fingerprint(run.site.root, [top for tops in run.site.categories.values() for top in tops])


def _state(run: Run) -> dict[str, Any]:
    """What the run knows that later steps read: journalled with each step, restored by its replay."""
    return {
        "facts": dataclasses.asdict(run.facts),
        "nothing_to_do": run.nothing_to_do,
        "remedy_action": run.remedy_action,
        "known_trade_ids": id_ranges(run.known_trade_ids),
    }


def _restore_state(run: Run, state: dict[str, Any]) -> None:
    names = {f.name for f in dataclasses.fields(Facts)}
    run.facts = Facts(**{k: v for k, v in (state.get("facts") or {}).items() if k in names})
    run.nothing_to_do = state.get("nothing_to_do")
    run.remedy_action = state.get("remedy_action")
    run.known_trade_ids = ids_of(state.get("known_trade_ids") or [])


def _journal_step(run: Run, name: str, value: dict[str, Any]) -> None:
    if run.journal is not None:
        run.journal.append(STEP, run.run_id, run.procedure, name, {"at": now_iso(), **value})


def completed(
    run: Run,
    rule: Replay,
    name: str,
    value: Any,
    halted_before: str | None,
    written: list[str],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> None:
    """Journal a step that ran to its end: what a resumed run replays, or where it starts."""
    ok = not isinstance(value, Halted) and getattr(value, "ok", True) is not False and run.halted == halted_before
    facts = rule.keep(run, value, *args, **kwargs) if ok else {}
    _journal_step(
        run,
        name,
        {
            "key": rule.key(run, *args, **kwargs),
            "ok": ok,
            "records": list(dict.fromkeys(written)),
            "facts": facts,
            "state": _state(run),
            # A site walk only where it matters: the steps that depend on the site's files, and the stop (the
            # site as it is once trading no longer writes it: a fingerprint from before is stale by then).
            "fingerprint": _fingerprint(run) if facts.get("site") or facts.get("stopped") else "",
            "backups": backup_listing(run.manager),
        },
    )


def raised(
    run: Run,
    rule: Replay | None,
    name: str,
    exc: Exception | None,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    halted: str | None = None,
) -> None:
    """Journal a step that failed: it raised ``exc`` (a full disk, an interrupt) or ``halted`` the run. A
    resumed run starts there and says why. A journal that cannot be written either is added to ``exc``,
    which the caller raises (for a halt, the journal error itself is raised: the record must not go on)."""
    error = f"{type(exc).__name__}: {exc}"[:500] if exc is not None else f"halted: {halted}"[:500]
    try:
        _journal_step(run, name, {"key": rule.key(run, *args, **kwargs) if rule else "", "ok": False, "error": error})
    except RecoveryError as journal_failed:
        if exc is None:
            raise
        exc.add_note(f"The incident journal could not record this failure either: {journal_failed}")


def replayed(run: Run, rule: Replay, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The failed run's result of this step, when a resumed run replays it; :data:`EXECUTE` otherwise."""
    assert run.resume is not None
    key = rule.key(run, *args, **kwargs)
    earlier: Earlier | None = run.resume.take(name, key)
    if earlier is None:
        return EXECUTE
    try:
        if why := run.resume.why_stale(earlier, run.site, run.manager):  # again: time passed since the plan
            raise StaleReplay(why)
        value = rule.rebuild(run, earlier, *args, **kwargs)
    except StaleReplay as exc:
        run.resume.go_stale(name, key, str(exc))
        run.record("resume", run.resume.to_record())  # the plan changed: the record says which step and why
        return EXECUTE
    if value is EXECUTE:
        return EXECUTE
    _restore_state(run, earlier.state)
    run.resume.replayed.append(name)
    _journal_step(  # a resumed run that fails in turn is resumed with these steps replayed again
        run,
        name,
        {
            "key": key,
            "ok": True,
            "records": list(earlier.records),
            "facts": earlier.facts,
            "state": earlier.state,
            "fingerprint": earlier.fingerprint,
            "backups": earlier.backups,
            "replayed_from": earlier.run,
            "replayed_records": earlier.records,
        },
    )
    what = str(earlier.facts.get("what") or name.replace("_", " "))
    return Again(value, what, earlier.at, f"from run {earlier.run}")
