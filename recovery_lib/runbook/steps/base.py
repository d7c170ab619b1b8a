"""What every procedure step shares: one rule for a halted run, reruns, and health checks as evidence.

A step that cannot go on (no usable backup, a failed restore, a refused approval) *halts* the run
(:func:`halt`): later steps return a :class:`Halted` saying why, the success criteria fail, the
escalation names who to call, and the final outcome cell raises ``ProcedureFailed``, so papermill
exits non-zero and no record of a failed recovery reads like a successful one.

No step checks for a halt itself: every step function is decorated with :func:`step`, which says in
one line how it meets a halted run (skip, go on because it only reads, or say something else), a run
whose assessment found nothing to do, an earlier step's skipped result, and a rerun after the change
it prepared (:class:`Again`). The decorator acts before the body runs, so a skipped step does nothing.
What a step returns besides its result lives in :mod:`.outcomes`; how a resumed run replays the steps
of a failed run (``replay=``) in :mod:`.replaying`.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from recovery_lib.checks.default import health_check
from recovery_lib.runbook.approval import ApprovalRequired
from recovery_lib.runbook.run import Run, ran
from recovery_lib.runbook.steps.outcomes import Again, Halted, NothingToDo, did, once
from recovery_lib.runbook.steps.replaying import EXECUTE, Replay, completed, plain, raised, replayed


def digest(plan: dict[str, Any], fingerprint: str) -> str:
    """What an approval is for: exactly this plan (its plain data) on exactly this site state."""
    text = json.dumps(plan, sort_keys=True, default=str) + fingerprint
    return hashlib.sha256(text.encode()).hexdigest()[:16]


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


@dataclass(frozen=True)
class StepRule:
    """How a step meets a halted run, an idle run, a skipped input and a rerun (see :func:`step`)."""

    on_halt: str | Callable[..., Any] = SKIP
    idle: bool = False
    consumes: bool = False
    again: Callable[..., tuple[str, str]] | None = None
    prepares: tuple[str, str] | None = None
    replay: Replay | None = None


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
                value = replayed(run, replay, function.__name__, args, kwargs)
                if value is not EXECUTE:
                    return value
            if again is not None and (repeated := once(run, *again(run, *args, **kwargs))):
                return repeated
            if run.halted and on_halt != GO_ON:
                skipped = Halted(run.halted, aborted=run.aborted is not None)
                return skipped if on_halt == SKIP else on_halt(run, skipped, *args, **kwargs)
            if idle and run.nothing_to_do:
                return NothingToDo(run.nothing_to_do)
            halted_before, mark = run.halted, len(run.recorder.written)
            try:
                value = function(run, *args, **kwargs)
            except ApprovalRequired:
                raise  # waiting for a click, not failed
            except Exception as exc:  # journalled as the step that failed (a resume starts there), then raised
                raised(run, replay, function.__name__, exc, args, kwargs)
                raise
            if replay is None:
                if run.halted != halted_before:  # it halted the run: a resume starts here, and says why
                    raised(run, None, function.__name__, None, args, kwargs, run.halted)
                return value
            completed(run, replay, function.__name__, value, halted_before, run.recorder.written[mark:], args, kwargs)
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
