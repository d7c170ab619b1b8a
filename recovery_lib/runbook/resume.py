"""Resuming a procedure from the step that failed (the ``resume_from`` parameter, ``recovery resume``).

Every step that writes or decides journals a ``step`` entry when it completes (the
:func:`~recovery_lib.runbook.steps.base.step` decorator): whether it succeeded, the records it wrote,
the facts its result stands on (the trading process stopped, the backups it took or chose, the site
as it left it) and what the run knew then. A run started with ``resume_from`` plans its resumption
from the failed run's entries before any step runs (:func:`plan_resume`):

- the steps that succeeded before the first one that failed are *replayed*: each returns what it
  returned then, rebuilt from the failed run's records and marked "from run <id>", without acting again;
- a replayed step whose facts no longer hold (the process runs again, a backup is gone, the site
  changed since) is *stale*: it and every step after it execute again, and the record says which and why;
- the failed step and every step after it execute.

Steps that only read and judge (health, checks, criteria, escalation, the outcome) always run again:
a resumed run's verdict is about the site as it is now, never the failed run's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from recovery_lib.backup import BackupError, BackupStatus
from recovery_lib.catalog import RECOVERY_PROCEDURES
from recovery_lib.errors import ParameterError
from recovery_lib.manager import RecoveryManager
from recovery_lib.restore.plan import site_fingerprint
from recovery_lib.runbook.failed_runs import STEP, find_run, overtaken, run_id_of
from recovery_lib.runbook.record_types import ResumeRecord
from recovery_lib.site.config import Site
from recovery_lib.site.process import process_status

CHANGES = ("restore", "apply_remedy")  # the steps that change the site's files from a chosen backup


@dataclass
class Earlier:
    """One completed step of the failed run, as its journal entry holds it."""

    run: str  # the failed run's id
    step: str  # the step function's name
    key: str  # which call of it (a backup step's record name); "" for most
    at: str
    ok: bool
    records: dict[str, Any]  # the records it wrote, as written
    facts: dict[str, Any]  # what its result stands on, and what rebuilds it
    state: dict[str, Any]  # what the run knew after it (escalation facts, the remedy, the known trade ids)
    fingerprint: str  # the site after it
    backups: list[str] = field(default_factory=list)  # the backup directory's listing after it
    error: str = ""  # what the step raised, when it raised

    def record(self, name: str) -> dict[str, Any]:
        """The record ``name`` this step wrote ({} when it wrote none)."""
        value = self.records.get(name)
        return value if isinstance(value, dict) else {}


@dataclass
class Resume:
    """The plan of a resumed run: what is replayed from the failed run, and where execution starts."""

    from_run: str
    incident_id: str
    procedure: str
    parameters: dict[str, Any]  # the failed run's parameters
    replay: dict[tuple[str, str], Earlier] = field(default_factory=dict)
    planned: list[str] = field(default_factory=list)  # the steps to replay, in the failed run's order
    failed_step: str | None = None  # the step that failed, None when the run stopped on an error
    failed_error: str = ""  # what that step raised, if it raised
    halted: str | None = None  # why the failed run halted
    stale: str | None = None  # which replayed step's facts no longer hold, and why
    replayed: list[str] = field(default_factory=list)  # the steps replayed so far
    records: dict[str, Any] = field(default_factory=dict)  # the failed run's records before it failed
    # Writes the failed run made after its failure that stand on their own (a backup D takes after a halt):
    # replayed while their own facts hold, wherever the resumed run starts executing.
    standalone: dict[tuple[str, str], Earlier] = field(default_factory=dict)
    change_stands: bool = False  # the failed run's restore or remedy is replayed: the site is as it left it
    left: str = ""  # the site's fingerprint as the failed run left it
    listed: list[str] | None = None  # its backup directory's listing then
    _stale_index: int = field(default=1 << 30, repr=False)

    def take(self, step: str, key: str = "") -> Earlier | None:
        """The failed run's entry to replay for this call of ``step``, or None: it executes."""
        earlier = self.replay.get((step, key))
        if earlier is None or self._index(step, key) >= self._stale_index:
            return self.standalone.get((step, key))
        return earlier

    def replays(self, step: str, key: str = "") -> bool:
        """Whether ``step`` (e.g. the restore a dry run prepared) will be replayed rather than executed."""
        return self.take(step, key) is not None

    def go_stale(self, step: str, key: str, why: str) -> None:
        """``step`` cannot be replayed: it and every step after it execute."""
        index = self._index(step, key)
        if self.stale is None or index < self._stale_index:
            self.stale = f"{step}: {why}"
            self._stale_index = index

    def _index(self, step: str, key: str) -> int:
        label = _label(step, key)
        return self.planned.index(label) if label in self.planned else len(self.planned)

    def why_stale(self, earlier: Earlier, site: Site, manager: RecoveryManager) -> str:
        """Why ``earlier``'s facts no longer hold now ("" when they do): checked when the resume is planned,
        and again just before the step is replayed (in JupyterLab minutes may pass between the cells)."""
        if earlier.facts.get("stopped") and (status := process_status(site)).running:
            return f"the trading process runs again ({status.detail}) since run {earlier.run} stopped it"
        for backup_id in [*(earlier.facts.get("backups") or []), *self._chosen(earlier)]:
            if gone := _backup_gone(manager, backup_id):
                return gone
        tops = [top for tops in site.categories.values() for top in tops]
        if earlier.facts.get("site") and site_fingerprint(site.root, tops) != self.left:
            return f"the site's files changed since run {self.from_run} left them"
        if earlier.facts.get("backup_dir") and backup_listing(manager) != self.listed:
            return f"the backup directory changed since run {self.from_run} left it"
        return ""

    def _chosen(self, earlier: Earlier) -> list[str]:
        """The backups a choice stands on: only while the change it was chosen for has not happened."""
        return [] if self.change_stands else list(earlier.facts.get("chosen") or [])

    def kept(self) -> list[str]:
        """The steps planned to be replayed (before the first stale one), in order; a step that prepared a
        change that is not replayed (a dry run before the restore that failed) is worked out again."""
        before = [s for s in self.planned if self._index(*_split(s)) < self._stale_index]
        return [s for s in before if self._prepares(s) in ("", *map(lambda x: _split(x)[0], before))]

    def again(self) -> list[str]:
        """The steps of the failed run that run again although they succeeded then."""
        kept = self.kept()
        return [s for s in self.planned if s not in kept]

    def _prepares(self, label: str) -> str:
        earlier = self.replay.get(_split(label))
        return str(earlier.facts.get("prepares") or "") if earlier else ""

    def to_record(self) -> ResumeRecord:
        """The ``resume`` record: which run this one resumes, what it replays, and why anything runs again."""
        return ResumeRecord(
            resumed_from=self.from_run,
            incident_id=self.incident_id,
            failed_step=self.failed_step,
            halted=self.halted,
            replay=self.kept() + [_label(*place) for place in self.standalone],
            again=self.again(),
            stale=self.stale,
            summary=self.summary(),
        )

    def summary(self) -> str:
        """One paragraph for a person: what is replayed, what executes, and why."""
        kept = self.kept()
        failed = f"it failed at {self.failed_step}" if self.failed_step else "it stopped on an error"
        failed += f" ({self.failed_error})" if self.failed_error and not self.halted else ""
        if self.halted:
            failed += f" (halted: {self.halted})"
        text = f"Resuming run {self.from_run} of procedure {self.procedure}: {failed}. "
        text += f"Replayed from that run, not repeated: {', '.join(kept)}. " if kept else "Nothing is replayed. "
        if self.stale:
            text += f"Its facts no longer hold at {self.stale}: that step and every step after it run again. "
        if self.standalone:
            also = ", ".join(_label(*place) for place in self.standalone)
            text += f"Also replayed, done after the failure and still standing: {also}. "
        prepared = [s for s in self.again() if self._prepares(s)]
        if prepared:
            text += f"Worked out again on the site as it is (their change had not happened): {', '.join(prepared)}. "
        return text + "The failed step and every step after it run now; the checks judge the site as it is now."


def _label(step: str, key: str) -> str:
    return f"{step}[{key}]" if key else step


def _split(label: str) -> tuple[str, str]:
    step, _, key = label.partition("[")
    return step, key.rstrip("]")


def plan_resume(site: Site, manager: RecoveryManager, procedure: str, resume_from: str, incident_id: str) -> Resume:
    """Plan the resumption of the failed run ``resume_from`` (a run id or an executed notebook) of
    ``procedure`` on ``site``. Refuses (ParameterError, nothing read or changed beyond the journal) a
    run of another procedure or incident, and a run that recovered. Read-only."""
    if procedure not in RECOVERY_PROCEDURES:
        raise ParameterError(
            f"parameter 'resume_from': only the recovery procedures ({', '.join(RECOVERY_PROCEDURES)}) resume; "
            f"run {procedure} again from the top instead."
        )
    run_id, recorded_incident = run_id_of(resume_from)
    if incident_id and recorded_incident and incident_id != recorded_incident:
        raise ParameterError(
            f"parameter 'resume_from': run {run_id} belongs to incident {recorded_incident}, not {incident_id}: "
            "leave 'incident_id' empty (a resumed run goes on with the failed run's incident)."
        )
    journal, entries = find_run(site, run_id, incident_id or recorded_incident)
    records = {e.get("name"): e.get("value") for e in entries if e.get("kind") == "record"}
    run = records.get("run") or {}
    if run.get("procedure") != procedure:
        raise ParameterError(
            f"parameter 'resume_from': run {run_id} is procedure {run.get('procedure')}, not {procedure}: "
            f"open the notebook of procedure {run.get('procedure')} to resume it."
        )
    if incident_id and journal.incident_id != incident_id:
        raise ParameterError(
            f"parameter 'resume_from': run {run_id} belongs to incident {journal.incident_id}, not {incident_id}."
        )
    outcome = records.get("outcome") or {}
    if outcome.get("success"):
        raise ParameterError(
            f"parameter 'resume_from': run {run_id} recovered (its outcome is success): there is nothing to "
            "resume. Run V (verification) and P (post-recovery) next."
        )
    if why := overtaken(journal.entries(), run_id):
        raise ParameterError(
            f"parameter 'resume_from': run {run_id} is not the one to resume: {why}. `recovery resume --list` "
            "names the runs that may be resumed. Nothing was read or changed."
        )
    resume = Resume(run_id, journal.incident_id, procedure, dict(run.get("parameters") or {}))
    resume.halted = (records.get("halted") or {}).get("reason")
    prefix = _prefix(run_id, entries, resume)
    _check_facts(site, manager, prefix, resume, _left(entries))
    for place, earlier in list(resume.standalone.items()):
        if any(_backup_gone(manager, backup_id) for backup_id in earlier.facts.get("backups") or []):
            del resume.standalone[place]
    return resume


def _left(entries: list[dict[str, Any]]) -> tuple[str, list[str] | None]:
    """The site's fingerprint and the backup listing as the failed run left them: after its last step that
    journalled them, the ones after its failure included (D takes its emergency backup after a halt: that
    backup is the failed run's own, not a change since)."""
    values = [e["value"] for e in entries if e.get("kind") == STEP and isinstance(e.get("value"), dict)]
    fingerprint = next((str(v["fingerprint"]) for v in reversed(values) if v.get("fingerprint")), "")
    listed = next((list(v["backups"]) for v in reversed(values) if isinstance(v.get("backups"), list)), None)
    return fingerprint, listed


def _prefix(run_id: str, entries: list[dict[str, Any]], resume: Resume) -> list[Earlier]:
    """The failed run's steps that succeeded before the first that failed (or halted the run). A step run
    again in the failed run's kernel (a cell rerun after a fix) counts by its last entry."""
    halted_at = next((e.get("at", "") for e in entries if e.get("kind") == "record" and e.get("name") == "halted"), "")
    written: dict[str, Any] = {}
    last: dict[str, tuple[Earlier, int]] = {}  # label -> its last entry before the halt, and where it is
    after: list[Earlier] = []  # entries after the halt
    for index, entry in enumerate(entries):
        if entry.get("kind") == "record":
            written[str(entry.get("name"))] = entry.get("value")
        elif entry.get("kind") == STEP and isinstance(entry.get("value"), dict):
            earlier = _earlier(run_id, entry, written)
            # The step that halted journals itself just after its ``halted`` record; steps after it come later.
            halting = not earlier.ok and not any(not e.ok for e, _ in last.values())
            if halted_at and str(entry.get("at", "")) > halted_at and not halting:
                after.append(earlier)
            else:
                last[_label(earlier.step, earlier.key)] = (earlier, index)  # in the order steps first ran
    prefix: list[Earlier] = []
    failed_at = len(entries)
    for label, (earlier, index) in last.items():
        if failed_at < len(entries):
            after.append(earlier)
        elif not earlier.ok:
            resume.failed_step, resume.failed_error, failed_at = earlier.step, earlier.error, index
        else:
            resume.planned.append(label)
            resume.replay[(earlier.step, earlier.key)] = earlier
            prefix.append(earlier)
    if halted_at and failed_at == len(entries) and after:  # halted in a step that journals nothing (an approval)
        failed_at = next(i for i, e in enumerate(entries) if str(e.get("at", "")) > halted_at)
    for earlier in after:  # after the failure: only a write that stands on its own (D's backup after a halt)
        if earlier.ok and earlier.facts.get("standalone"):
            resume.standalone[(earlier.step, earlier.key)] = earlier
    resume.records = {}
    for entry in entries[:failed_at]:  # the records as they were when the failed run failed
        if entry.get("kind") == "record":
            resume.records[str(entry.get("name"))] = entry.get("value")
    return prefix


def _earlier(run_id: str, entry: dict[str, Any], written: dict[str, Any]) -> Earlier:
    """One journalled step, with the records it wrote (a replay's: the run it replayed)."""
    value = entry["value"]
    earlier = Earlier(
        run=str(value.get("replayed_from") or run_id),
        step=str(entry.get("name")),
        key=str(value.get("key") or ""),
        at=str(value.get("at") or entry.get("at") or ""),
        ok=bool(value.get("ok")),
        records={name: written.get(name) for name in value.get("records") or [] if name in written},
        facts=dict(value.get("facts") or {}),
        state=dict(value.get("state") or {}),
        fingerprint=str(value.get("fingerprint") or ""),
        backups=list(value.get("backups") or []),
        error=str(value.get("error") or ""),
    )
    if value.get("replayed_from"):
        earlier.records = dict(value.get("replayed_records") or {})
    return earlier


def _check_facts(
    site: Site, manager: RecoveryManager, prefix: list[Earlier], resume: Resume, left_by: tuple[str, list[str] | None]
) -> None:
    """Mark the first replayed step whose facts no longer hold (see the module docstring); ``left_by``: the
    site's fingerprint and the backup listing as the failed run left them (:func:`_left`)."""
    resume.left, resume.listed = left_by
    changes = [e for e in prefix if e.step in CHANGES]
    resume.change_stands = bool(changes) and not resume.why_stale(changes[-1], site, manager)
    for earlier in prefix:
        if why := resume.why_stale(earlier, site, manager):
            resume.go_stale(earlier.step, earlier.key, why)
            return


def backup_listing(manager: RecoveryManager) -> list[str]:
    """The backups in the backup directory now, readable or not, by id (or why it cannot be listed)."""
    try:
        listed = manager.list_backups()
    except (BackupError, OSError) as exc:  # a fact too: compared with the listing a resumed run finds
        return [f"cannot be listed: {type(exc).__name__}"]
    return sorted([m.backup_id for m in listed] + [u.backup_id for u in manager.unreadable])


def _backup_gone(manager: RecoveryManager, backup_id: str) -> str:
    """Why backup ``backup_id`` can no longer be used ("" when it can)."""
    try:
        metadata = manager.get_backup(backup_id)
    except BackupError as exc:
        return f"backup {backup_id} cannot be read any more ({exc})"
    if metadata.status is not BackupStatus.SUCCESS:
        return f"backup {backup_id} is {metadata.status.value}, not SUCCESS"
    return ""


def id_ranges(ids: set[int]) -> list[list[int]]:
    """Trade ids as [first, last] ranges: a journal line stays small for a ledger of 100,000 trades."""
    ranges: list[list[int]] = []
    for value in sorted(ids):
        if ranges and value == ranges[-1][1] + 1:
            ranges[-1][1] = value
        else:
            ranges.append([value, value])
    return ranges


def ids_of(ranges: list[list[int]]) -> set[int]:
    """The trade ids of :func:`id_ranges`."""
    return {value for first, last in ranges for value in range(int(first), int(last) + 1)}


class Recorded:
    """A step's result as the failed run recorded it, for the steps after it: the record's fields as
    attributes (``.ok``, ``.backup_id`` ...) and one line for a person. What replays a step whose
    result later steps only read."""

    widget: Any = None  # a replayed choice offers no picker: the pick was made in the failed run

    def __init__(self, record: dict[str, Any], text: str) -> None:
        self._record = dict(record)
        self._text = text

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["_record"][name]
        except KeyError:
            raise AttributeError(name) from None

    def get(self, name: str, default: Any = None) -> Any:
        """A field of the record (criteria read some results as mappings)."""
        return self._record.get(name, default)

    def summary(self) -> str:
        """One line for a person."""
        return self._text

    def __repr__(self) -> str:
        return self._text
