"""What every procedure step shares: one rule for a halted run, reruns, and health checks as evidence.

A step that cannot go on (no usable backup, a failed restore, a refused approval) *halts* the run
(:func:`halt`): later steps return a :class:`Halted` saying why, the success criteria fail, the
escalation names who to call, and the final outcome cell raises ``ProcedureFailed``, so papermill
exits non-zero and no record of a failed recovery reads like a successful one.

No step checks for a halt itself: every step function is decorated with :func:`step`, which says in
one line how it meets a halted run (skip, go on because it only reads, or say something else), a run
whose assessment found nothing to do, an earlier step's skipped result, and a rerun after the change
it prepared (:class:`Again`). The decorator acts before the body runs, so a skipped step does nothing.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from recovery_lib.checks.default import health_check
from recovery_lib.clock import now_iso
from recovery_lib.restore.plan import site_fingerprint
from recovery_lib.runbook.approval import ApprovalRequired
from recovery_lib.runbook.escalation import Facts
from recovery_lib.runbook.failed_runs import STEP
from recovery_lib.runbook.resume import Earlier, Stale, backup_listing, id_ranges, ids_of
from recovery_lib.runbook.run import Run, ran


class Halted:
    """What a step returns when an earlier step halted the run (``aborted``: a person clicked Abort)."""

    ok = False

    def __init__(self, reason: str, aborted: bool = False) -> None:
        self.reason = reason
        self.aborted = aborted

    def summary(self) -> str:
        """One line for a person."""
        if self.aborted:
            return f"Skipped because the procedure was aborted ({self.reason}). Nothing was done by this step."
        return f"Skipped: the run was halted ({self.reason}). See the escalation at the end."

    def __repr__(self) -> str:
        return f"⏭ {self.summary()}"

    def _repr_html_(self) -> str:
        import html

        head, _, rest = self.summary().partition(" (")
        return f"<p><b>⏭ {html.escape(head)}</b> ({html.escape(rest)}</p>"


class Again:
    """A step run again after it already happened in this run: the earlier result, not a second action."""

    def __init__(self, value: Any, what: str, at: str, where: str = "in this run") -> None:
        if isinstance(value, Again):  # an earlier result that was itself a repeat: say it once
            value, what, at, where = value.value, value.what, value.at, value.where
        self.value = value
        self.what = what
        self.at = at
        self.where = where  # "in this run", "earlier in this incident" (another kernel's run), "from run <id>"

    def __getattr__(self, name: str) -> Any:
        return getattr(self.value, name)  # .ok, .backup_id ... of the earlier result

    def summary(self) -> str:
        """One line for a person."""
        earlier = getattr(self.value, "summary", None)
        if callable(earlier):
            shown = " " + earlier()
        elif isinstance(self.value, str):
            shown = " " + self.value
        else:  # a table or a plan: shown where the step first ran
            shown = " (what it showed then is in the record)"
        when = f"{self.at.replace('T', ' ')[:19]}Z"
        if self.where.startswith("from run"):  # a resumed run replays what the failed run did
            return f"{self.where[0].upper()}{self.where[1:]}, not repeated: {self.what} at {when}.{shown}"
        return f"Already done {self.where}: {self.what} at {when}; not repeated.{shown}"

    def __repr__(self) -> str:
        return f"↩ {self.summary()}"


def digest(plan: dict[str, Any], fingerprint: str) -> str:
    """What an approval is for: exactly this plan (its plain data) on exactly this site state."""
    text = json.dumps(plan, sort_keys=True, default=str) + fingerprint
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def once(run: Run, step: str, key: str = "") -> Again | None:
    """The earlier result when ``step`` already happened in this run for the same ``key``, else None."""
    done = run.done.get(step)
    if done is not None and done[0] == key:
        return Again(*done[1:])
    return None


def did(run: Run, step: str, value: Any, what: str, key: str = "") -> Any:
    """Remember that ``step`` happened (a rerun of its cell returns :class:`Again`); returns ``value``."""
    if isinstance(value, Again):  # remember the original, so a later repeat names it once
        run.done[step] = (key, value.value, value.what, value.at, value.where)
    else:
        run.done[step] = (key, value, what, now_iso(), "in this run")
    return value


class NothingToDo:
    """What a writing step returns when the assessment found no fault: nothing is stopped or changed."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def summary(self) -> str:
        """One line for a person."""
        return f"Nothing to do: {self.reason}. Nothing was stopped or changed."

    def __repr__(self) -> str:
        return "✅ " + self.summary()


def halt(run: Run, reason: str) -> Halted:
    """Stop the procedure here: record why; later steps skip."""
    run.halt(reason)
    return Halted(run.halted or reason, aborted=run.aborted is not None)


def refused(run: Run, action: str, summary: str | None = None, key: str = "") -> Halted | None:
    """The approval of ``action`` (``summary``: what it does; None: the one already requested).

    Interactive, a missing approval raises :class:`ApprovalRequired`: the person clicks and reruns the
    cell. Headless, nobody can click: the run halts, so the record still ends with its criteria,
    escalation and outcome. Returns None when approved.
    """
    try:
        if summary is None:
            run.gate.require(action)
        else:
            run.gate.confirm(action, summary, key)
    except ApprovalRequired as exc:
        if run.gate.interactive:
            raise
        return halt(run, f"not approved: {exc}")
    return None


def succeeded(value: Any) -> bool:
    """True for a step result that says it succeeded (``.ok``), never for a skipped step."""
    return bool(getattr(value, "ok", False)) and not isinstance(value, Halted)


def health(run: Run, *names: str) -> tuple[bool, str]:
    """Run the health checks (``names``, or all) now: (all healthy, evidence naming each check)."""
    results = health_check.run_all(run.site)
    chosen = {n: r for n, r in results.items() if not names or n in names}
    failing = [n for n, r in chosen.items() if not r.healthy]
    checked = ", ".join(chosen)
    if failing:
        details = "; ".join(f"{n}: {chosen[n].message}" for n in failing)
        return False, f"failing: {details} (checked: {checked})"
    return True, f"healthy ({'every check' if not names else 'checked'}: {checked})"


# The steps that change the site: once one of them happened in a run, the steps that prepared it
# (assessment, backup choice, dry run, pre-recovery backup) are not repeated by a "Run All".
CHANGES = ("restore", "remedy")
SKIP = "skip"  # on_halt: the step returns the run's Halted and does nothing (the default)
GO_ON = "go on"  # on_halt: the step runs after a halt too: it only reads, or asks its own approval


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
      :class:`~recovery_lib.runbook.resume.Stale` when its facts no longer hold, or returns :data:`EXECUTE`
      when the step must run now anyway (a dry run whose restore has not happened reads the site anew);
    - ``keep(run, value, *args, **kwargs)``: the facts its result stands on, journalled when it completes:
      ``stopped`` (the trading process must still be stopped), ``backups`` (ids that must still be usable),
      ``site`` (it depends on the site's files), and anything ``rebuild`` needs;
    - ``key(run, *args, **kwargs)``: which call of the step it is ("" for most; a backup's record name).
    """

    rebuild: Callable[..., Any]
    keep: Callable[..., dict[str, Any]] = _no_facts
    key: Callable[..., str] = _no_key


@dataclass(frozen=True)
class StepRule:
    """How a step meets a halted run, an idle run, a skipped input and a rerun (see :func:`step`)."""

    on_halt: str | Callable[..., Any] = SKIP
    idle: bool = False
    consumes: bool = False
    again: Callable[..., tuple[str, str]] | None = None
    prepares: tuple[str, str] | None = None
    replay: Replay | None = None


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


def _completed(
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
            "fingerprint": _fingerprint(run),
            "backups": backup_listing(run.manager),
        },
    )


def _replayed(run: Run, rule: Replay, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The failed run's result of this step, when a resumed run replays it; :data:`EXECUTE` otherwise."""
    assert run.resume is not None
    key = rule.key(run, *args, **kwargs)
    earlier: Earlier | None = run.resume.take(name, key)
    if earlier is None:
        return EXECUTE
    try:
        value = rule.rebuild(run, earlier, *args, **kwargs)
    except Stale as exc:
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


def step(
    function: Callable[..., Any] | None = None,
    *,
    on_halt: str | Callable[..., Any] = SKIP,
    idle: bool = False,
    consumes: bool = False,
    again: Callable[..., tuple[str, str]] | None = None,
    prepares: tuple[str, str] | None = None,
    replay: Replay | None = None,
) -> Any:
    """Decorate a procedure step ``function(run, ...)``: the one place a halted run is handled.

    Before the body runs, in this order:

    - ``prepares=(name, what)``: the step prepares a change (assessment, backup choice, dry run, pre-recovery
      backup). Run again after the change happened in this run, it returns its earlier result
      (:class:`Again`) instead of working it out anew on the changed site, so a rerun of the whole notebook
      neither plans a second restore nor asks for a second approval; its result is remembered for that.
    - ``consumes``: the step's first argument is an earlier step's result: a :class:`NotRun` is refused
      (:func:`~recovery_lib.runbook.run.ran`), a :class:`Halted` or :class:`NothingToDo` is returned as it is.
    - ``again(run, *args, **kwargs) -> (name, key)``: the step happened already for this key: the earlier
      result (:class:`Again`), even after a later halt (a restore that happened is not "skipped").
    - ``on_halt``: the run halted earlier: :data:`SKIP` returns the run's :class:`Halted`; :data:`GO_ON`
      runs the step anyway (it only reads, or asks its own approval); a callable
      ``on_halt(run, halted, *args, **kwargs)`` returns what the step says instead (e.g. why trading stays
      stopped).
    - ``idle``: the assessment found no fault: the step returns :class:`NothingToDo` and changes nothing.

    ``replay``: the step writes or decides. Each time its body completes, the journal gets a ``step``
    entry (:class:`Replay`); in a resumed run, before the ``again`` rule, the failed run's result is
    replayed (:class:`Again`, "from run <id>") instead of running the body, while its facts hold.
    """

    rule = StepRule(on_halt, idle, consumes, again, prepares, replay)

    def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(function)
        consumed = list(signature.parameters)[1] if consumes else None

        def guarded(run: Run, *args: Any, **kwargs: Any) -> Any:
            if consumed is not None:
                bound = signature.bind(run, *args, **kwargs)
                earlier = ran(bound.arguments[consumed])
                if isinstance(earlier, Halted | NothingToDo):
                    return earlier
                bound.arguments[consumed] = plain(earlier)  # a replayed plan is applied as the plan it is
                args, kwargs = bound.args[1:], bound.kwargs
            if replay is not None and run.resume is not None and not run.halted:
                replayed = _replayed(run, replay, function.__name__, args, kwargs)
                if replayed is not EXECUTE:
                    return replayed
            if again is not None and (repeated := once(run, *again(run, *args, **kwargs))):
                return repeated
            if run.halted and on_halt != GO_ON:
                skipped = Halted(run.halted, aborted=run.aborted is not None)
                return skipped if on_halt == SKIP else on_halt(run, skipped, *args, **kwargs)
            if idle and run.nothing_to_do:
                return NothingToDo(run.nothing_to_do)
            if replay is None:
                return function(run, *args, **kwargs)
            halted_before, mark = run.halted, len(run.recorder.written)
            value = function(run, *args, **kwargs)
            _completed(run, replay, function.__name__, value, halted_before, run.recorder.written[mark:], args, kwargs)
            return value

        @functools.wraps(function)
        def step_function(run: Run, *args: Any, **kwargs: Any) -> Any:
            if prepares is None:
                return guarded(run, *args, **kwargs)
            name, what = prepares
            done = run.done.get(name)
            if done is not None and any(change in run.done for change in CHANGES):
                return Again(*done[1:])
            value = guarded(run, *args, **kwargs)
            if not isinstance(value, Halted | NothingToDo):
                did(run, name, value, what)
            return value

        step_function.rule = rule  # type: ignore[attr-defined]  # read by tests: every step has one
        return step_function

    return decorate(function) if function is not None else decorate
