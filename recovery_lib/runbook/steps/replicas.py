"""Procedures C and D off the host: what each replica holds, the local backup directory re-seeded from a
replica when no local backup can fix the fault, and D's new backup copied off the host.

Re-seeding writes only into the backup directory (a verified pull); config, state and data do not change.
It asks the ``backup`` approval all the same, as every step writing there does (D's creating it,
quarantining): a "Run All" without a click changes nothing on disk. C's restore then asks its own. A rerun
of the cell says what was pulled instead of pulling again.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

from recovery_lib.clock import now
from recovery_lib.errors import RecoveryError
from recovery_lib.rendering import frame_html, frame_text, human_age, human_size, human_time
from recovery_lib.replica.pull import PullReport
from recovery_lib.replica.service import opened, restore_candidates
from recovery_lib.replica.status import read_push_record
from recovery_lib.runbook.checklist import Checklist
from recovery_lib.runbook.records import to_plain
from recovery_lib.runbook.restore_record_types import ReplicaPushRecord, ReplicaSeedRecord, ReplicasRecord
from recovery_lib.runbook.resume import Earlier, Recorded
from recovery_lib.runbook.run import Run
from recovery_lib.runbook.steps.base import GO_ON, Again, Halted, NothingToDo, Replay, did, halt, refused, step
from recovery_lib.runbook.steps.verdict import criteria_d
from recovery_lib.site.replicas import ReplicaSpec

NO_REPLICA = "no replica is configured ([[replicas]] in recovery.toml, README: Replicas)"

# --- what each replica holds ----------------------------------------------------------------------


@dataclass
class ReplicaOverview:
    """One row per configured replica: reachable, its newest backup and age, the last push from here."""

    rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every replica answered and holds a backup newer than its max age."""
        return bool(self.rows) and all(r["reachable"] and r["stale"] is False for r in self.rows)

    def frame(self) -> Any:
        """A table for a person: mark, replica, newest backup, age, backups, last push."""
        import pandas as pd

        shown = [
            {
                "": _mark(row),
                "replica": f"{row['replica']} ({row['url']})",
                "newest backup": row["newest"] or ("none" if row["reachable"] else "?"),
                "taken (UTC)": human_time(row["newest_at"] or ""),
                "age": "" if row["age_hours"] is None else human_age(row["age_hours"]),
                "backups": "" if row["backups"] is None else row["backups"],
                "last push from this host": row["last_push"] or "never (from this host)",
            }
            for row in self.rows
        ]
        columns = ["", "replica", "newest backup", "taken (UTC)", "age", "backups", "last push from this host"]
        return pd.DataFrame(shown, columns=columns)

    def _repr_html_(self) -> str:
        if not self.rows:
            return f"<p><b>⚠ No replica</b>: {html.escape(NO_REPLICA)}; every backup lives only on this host.</p>"
        return frame_html(self.frame())

    def __repr__(self) -> str:
        if not self.rows:
            return f"⚠ No replica: {NO_REPLICA}; every backup lives only on this host."
        return frame_text(self.frame())


def _mark(row: dict[str, Any]) -> str:
    if not row["reachable"]:
        return f"❌ UNREACHABLE: {row['error']}"
    if row["newest"] is None:
        return "❌ holds no backup"
    if row["stale"]:
        return f"⚠ newest older than {row['max_age_hours']:g} h"
    return "✅ fresh"


def _replica_row(run: Run, spec: ReplicaSpec) -> dict[str, Any]:
    """What one replica holds (restore candidates: pre-recovery snapshots left out); never raises."""
    max_age = spec.max_age_hours if spec.max_age_hours is not None else run.site.max_backup_age_hours
    pushed = read_push_record(run.manager.backup_dir, spec.name)
    row: dict[str, Any] = {
        "replica": spec.name,
        "url": spec.url,
        "reachable": False,
        "backups": None,
        "newest": None,
        "newest_at": None,
        "age_hours": None,
        "max_age_hours": max_age,
        "stale": None,
        "last_push": pushed.summary() if pushed else None,
        "last_push_ok": pushed.ok if pushed else None,
        "error": None,
    }
    try:
        with opened(spec) as replica:
            found = restore_candidates(replica)
    except (RecoveryError, OSError) as exc:  # an unreachable replica is a row, never a traceback
        row["error"] = str(exc)
        return row
    row.update(reachable=True, backups=len(found))
    if found:
        age = (now() - found[0].created).total_seconds() / 3600
        row.update(newest=found[0].backup_id, newest_at=found[0].created_at, age_hours=round(age, 2))
        row["stale"] = age > max_age
    return row


@step(on_halt=GO_ON)  # it only reads
def replica_overview(run: Run) -> ReplicaOverview:
    """Every configured replica: reachable or why not, its newest backup and age, the last push from this
    host. Read-only; recorded as ``replicas``."""
    overview = ReplicaOverview([_replica_row(run, spec) for spec in run.site.replicas])
    run.record("replicas", ReplicasRecord(replicas=overview.rows))
    return overview


# --- re-seeding the backup directory from a replica -------------------------------------------------


@dataclass
class Seeding:
    """The backup directory re-seeded from a replica (``pulled``), or why it could not be."""

    pulled: PullReport | None
    local: list[str]  # why no local backup can fix the fault
    tried: list[str] = field(default_factory=list)  # "<replica>: why it could not re-seed"
    notes: list[str] = field(default_factory=list)  # backups passed over on the replica
    configured: bool = True

    @property
    def ok(self) -> bool:
        """A verified backup from a replica is now in the local backup directory."""
        return self.pulled is not None

    @property
    def backup_id(self) -> str | None:
        """The backup pulled (None when none was)."""
        return self.pulled.backup_id if self.pulled else None

    def summary(self) -> str:
        """One line for a person."""
        if self.pulled is not None:
            return f"Re-seeded the local backup directory: {self.pulled.summary()}."
        if not self.configured:
            return f"No local backup can fix the fault, and {NO_REPLICA}: nothing to re-seed from."
        tried = "; ".join(self.tried)
        return f"No local backup can fix the fault, and no replica could re-seed the backup directory: {tried}"

    def _lines(self) -> list[str]:
        return [f"local: {why}" for why in self.local] + [f"passed over: {note}" for note in self.notes]

    def __repr__(self) -> str:
        mark = "✅" if self.ok else "❌"
        return "\n  ".join([f"{mark} {self.summary()}", *self._lines()])

    def _repr_html_(self) -> str:
        mark = "✅" if self.ok else "❌"
        items = "".join(f"<li>{html.escape(line)}</li>" for line in self._lines())
        return f"<p><b>{mark} {html.escape(self.summary())}</b></p>" + (f"<ul>{items}</ul>" if items else "")


def _local_fix(run: Run, needs: tuple[str, ...]) -> tuple[str | None, list[str]]:
    """The local backup that can fix the fault (the manager's own "latest"), else None and why not."""
    before = len(run.manager.notes)
    try:
        backup_id = run.manager.latest(needs).backup_id
    except (RecoveryError, OSError) as exc:  # shown and recorded: paths in the site as the records write them
        return None, [to_plain(why, run.site.root) for why in [*run.manager.notes[before:], str(exc)]]
    return backup_id, []


def _seeded_once(run: Run, *_: Any, **__: Any) -> tuple[str, str]:
    """One pull per run: run again, the cell names the backup it pulled."""
    return "seed_from_replica", ""


def _seeded_then(run: Run, earlier: Earlier, *_: Any, **__: Any) -> Recorded:
    """What the failed run's re-seeding found or pulled (its facts: the backup directory is as it left it)."""
    seed = earlier.record("replica_seed")
    if seed.get("needed"):
        text = f"✅ backup {seed.get('backup_id')} pulled from replica {seed.get('replica')}"
    else:
        text = f"Nothing pulled: local backup {seed.get('local_backup')} can fix the fault"
    return did(run, "seed_from_replica", Recorded(seed, text), text)


@step(
    again=_seeded_once,
    idle=True,
    replay=Replay(_seeded_then, lambda run, value, *a, **k: {"backup_dir": True, "what": "re-seeding"}),
)
def seed_from_replica(
    run: Run, replica: str = "", identity: str = "", needs: tuple[str, ...] = (), backup_id: str = "latest"
) -> Seeding | NothingToDo | Halted:
    """When no local backup can fix the fault (none is SUCCESS, verifies, holds ``needs`` and passes their
    checks; or the backup directory is gone), pull the newest backup that verifies from a replica into the
    local backup directory. ``replica``: its name ("" tries each configured one in order); ``identity``: the
    age key file of an encrypted replica ("" means $RECOVERY_AGE_IDENTITY). Recorded as ``replica_seed``.

    Asks the ``backup`` approval before it pulls. When no replica can re-seed, the run halts (no usable
    backup): the criteria say so and escalation follows.
    """
    if backup_id != "latest":  # a named backup was checked to exist locally by the validation cell
        run.record("replica_seed", ReplicaSeedRecord(needed=False, ok=True, local_backup=backup_id))
        return NothingToDo(f"backup {backup_id} was named: it is restored from the local backup directory")
    local, why = _local_fix(run, tuple(needs))
    if local is not None:
        run.record("replica_seed", ReplicaSeedRecord(needed=False, ok=True, local_backup=local))
        return NothingToDo(f"local backup {local} verifies and can fix the fault; nothing pulled from a replica")
    names = [spec.name for spec in run.site.replicas]
    seeding = Seeding(None, why, configured=bool(names))
    if replica and replica not in names:
        seeding.tried.append(f"{replica}: no replica of that name in recovery.toml (configured: {', '.join(names)})")
    chosen = names if not replica else [replica] if replica in names else []
    summary = f"Pull the newest backup that verifies from replica {' or '.join(chosen)} into "
    summary += f"{run.relative(run.manager.backup_dir)} (no local backup can fix the fault; the site is not changed)"
    if chosen and (skipped := refused(run, "backup", summary)):
        run.facts.no_backup = True
        run.record("replica_seed", ReplicaSeedRecord(needed=True, ok=False, error=skipped.reason, notes=why))
        return skipped
    for name in chosen:
        before = len(run.manager.notes)
        try:
            seeding.pulled = run.manager.pull_from_replica(name, "latest", identity or None)
        except (RecoveryError, OSError) as exc:
            seeding.tried.append(f"{name}: {exc}")
        seeding.notes += run.manager.notes[before:]
        if seeding.pulled is not None:
            break
    pulled = seeding.pulled
    run.record(
        "replica_seed",
        ReplicaSeedRecord(
            needed=True,
            ok=seeding.ok,
            backup_id=seeding.backup_id,
            replica=pulled.replica if pulled else None,
            already_local=pulled.already_local if pulled else False,
            files=pulled.files if pulled else 0,
            bytes_downloaded=pulled.bytes_downloaded if pulled else 0,
            duration_s=pulled.duration_s if pulled else 0.0,
            tried=seeding.tried,
            notes=[*seeding.local, *seeding.notes],
        ),
    )
    if pulled is None:
        run.facts.no_backup = True  # the runbook: "backup not available" escalates
        halt(run, seeding.summary())
        return seeding
    run.facts.no_backup = False  # a verified backup is back in the backup directory (said by the assessment)
    return did(run, "seed_from_replica", seeding, f"backup {pulled.backup_id} pulled from replica {pulled.replica}")


# --- Procedure D: its new backup copied off the host ----------------------------------------------


@dataclass
class Pushes:
    """A procedure's new backup pushed to each replica that takes every backup (``push = "after-backup"``)."""

    backup_id: str | None
    rows: list[dict[str, Any]] = field(default_factory=list)
    note: str = ""  # why nothing was pushed

    @property
    def attempted(self) -> bool:
        """Whether any push was tried."""
        return bool(self.rows)

    @property
    def ok(self) -> bool:
        """Every push tried succeeded (vacuously true when none was tried: see ``note``)."""
        return all(row["ok"] for row in self.rows)

    def lines(self) -> list[str]:
        """One line per replica."""
        return [
            f"{'✅' if r['ok'] else '❌'} replica {r['replica']}: {len(r['pushed'])} pushed, "
            f"{len(r['already'])} already there, {human_size(r['bytes'])} up"
            + (f"; FAILED: {r['error']}" if r["error"] else "")
            for r in self.rows
        ]

    def summary(self) -> str:
        """One line for a person."""
        if not self.rows:
            return f"Nothing pushed: {self.note}."
        return f"backup {self.backup_id}: " + " | ".join(self.lines())

    def __repr__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        if not self.rows:
            return f"<p><b>{html.escape(self.summary())}</b></p>"
        items = "".join(f"<li>{html.escape(line)}</li>" for line in self.lines())
        return f"<p><b>Backup {html.escape(self.backup_id or '')} copied off the host</b></p><ul>{items}</ul>"


def _pushed_once(run: Run, emergency: Any) -> tuple[str, str]:
    return "push_to_replicas", str(getattr(emergency, "value", emergency))


def _push_row(run: Run, spec: ReplicaSpec) -> dict[str, Any]:
    try:
        report = run.manager.push_to_replica(spec.name, "latest")  # the new backup, and any the replica lacks
    except (RecoveryError, OSError) as exc:  # recorded (health shows it too), never a traceback
        return {"replica": spec.name, "ok": False, "pushed": [], "already": [], "bytes": 0, "error": str(exc)}
    error = "; ".join(f"{bid}: {why}" for bid, why in report.failed.items()) or None
    return {
        "replica": spec.name,
        "ok": report.ok,
        "pushed": report.pushed,
        "already": report.already,
        "bytes": report.bytes_uploaded,
        "error": error,
    }


@step(on_halt=GO_ON, again=_pushed_once)  # a backup D took after a halt is copied off the host too
def push_to_replicas(run: Run, emergency: Any) -> Pushes:
    """Push the backup ``emergency`` (a backup id; anything else: none was taken) to every replica with
    ``push = "after-backup"``, with any backup a replica lacks. A failed push is recorded and shown, the
    criteria count it, and running the cell again tries it again. Recorded as ``replica_push``."""
    backup_id = emergency.value if isinstance(emergency, Again) else emergency  # NotRun, Halted: none taken
    pushes = Pushes(backup_id if isinstance(backup_id, str) else None)
    targets = [spec for spec in run.site.replicas if spec.pushes_after_backup]
    if pushes.backup_id is None:
        pushes.note = "no new backup was taken"
    elif not targets:
        pushes.note = 'no replica takes every backup (push = "after-backup")' if run.site.replicas else NO_REPLICA
    else:
        pushes.rows = [_push_row(run, spec) for spec in targets]
    run.record(
        "replica_push",
        ReplicaPushRecord(ok=pushes.ok, backup_id=pushes.backup_id, replicas=pushes.rows, note=pushes.note),
    )
    if not pushes.rows or not pushes.ok:  # a rerun tries a failed push again (a push is idempotent)
        return pushes
    return did(run, "push_to_replicas", pushes, f"backup {pushes.backup_id} pushed", key=str(pushes.backup_id))


def _restored(seeded: Any) -> tuple[bool, str]:
    """The "Backups restored" criterion: local backups fine, or re-seeded from a replica."""
    value = seeded.value if isinstance(seeded, Again) else seeded
    if isinstance(value, NothingToDo):
        return True, value.reason
    if isinstance(value, Seeding | Recorded):  # Recorded: replayed from the run a resumed run goes on from
        return bool(value.ok), value.summary()
    summary = getattr(value, "summary", None)  # a skipped step (Halted), or one that never ran (NotRun)
    return False, f"not re-seeded: {summary() if callable(summary) else value!r}"


@step(on_halt=GO_ON)  # criteria are judged after a halt too: that is when they fail
def criteria_d_replicas(
    run: Run, directory: Any, verification: Any, emergency: Any, seeded: Any, pushed: Any
) -> Checklist:
    """Procedure D's success criteria (:func:`criteria_d`) and its replicas': the backups were restored
    (the local ones verify, or a replica re-seeded them) and the new backup was copied off the host."""
    checklist = criteria_d(run, directory, verification, emergency)
    restored, why = _restored(seeded)
    checklist.check("Backups restored", restored, why)
    pushed = pushed.value if isinstance(pushed, Again) else pushed
    if isinstance(pushed, Pushes):
        copied: bool | None = pushed.ok if pushed.attempted else None
        checklist.check("New backup copied off the host", copied, pushed.summary())
    else:  # the push step never ran (NotRun)
        checklist.check("New backup copied off the host", False, repr(pushed))
    return checklist
