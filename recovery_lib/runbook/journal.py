"""The incident journal: what a procedure did, written as it happens, not when a notebook is saved.

One JSON-lines file per incident, ``<records dir>/<incident id>.jsonl`` (``[records] dir`` in
``recovery.toml``, by default ``incidents/`` at the site root, outside every restored category).
Every record, approval decision, halt and outcome of every notebook run of the incident is
appended as one line and fsynced before the step goes on, so a page reload, a kernel restart or a
crash loses nothing. Readers skip a torn last line (a crash in the middle of a write).

Line format (``docs/records.md``)::

    {"at": "<UTC>", "run": "<run id>", "procedure": "B", "kind": "record"|"decision"|"opened"|"closed",
     "name": "<record name or action>", "value": <plain JSON>}

An incident is *open* until the post-recovery notebook closes it; procedure notebooks started
without an ``incident_id`` join the newest open incident of their site.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recovery_lib.clock import now_iso
from recovery_lib.errors import JournalError, ProcedureBusy
from recovery_lib.fsops.atomic import fsync_dir

SUFFIX = ".jsonl"
# An incident id becomes a file name: letters, digits, dot, dash, underscore; never hidden.
INCIDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def valid_incident_id(incident_id: str) -> bool:
    """True when ``incident_id`` can name a journal file."""
    return bool(INCIDENT_ID.match(incident_id))


@dataclass
class JournalRun:
    """Everything one notebook run wrote into the journal, in order."""

    run: str
    procedure: str
    records: dict[str, Any] = field(default_factory=dict)  # the last record of each name wins
    record_times: dict[str, str] = field(default_factory=dict)
    order: list[tuple[str, str]] = field(default_factory=list)  # (record name, at) as written
    decisions: list[dict[str, Any]] = field(default_factory=list)

    @property
    def started_at(self) -> str:
        return (self.records.get("run") or {}).get("started_at") or (self.order[0][1] if self.order else "")


class IncidentJournal:
    """The journal file of one incident."""

    def __init__(self, directory: Path, incident_id: str) -> None:
        if not valid_incident_id(incident_id):
            raise JournalError(
                f"incident id {incident_id!r} cannot name a journal file in {directory}: use letters, digits, "
                "'.', '-' or '_' (the id triage issues looks like 20261203T061800Z-1a2b3c)."
            )
        self.directory = Path(directory)
        self.incident_id = incident_id
        self.path = self.directory / f"{incident_id}{SUFFIX}"

    def append(self, kind: str, run: str, procedure: str, name: str, value: Any = None) -> None:
        """Append one entry and fsync it; raises :class:`JournalError` naming the file when it cannot."""
        line = json.dumps(
            {"at": now_iso(), "run": run, "procedure": procedure, "kind": kind, "name": name, "value": value},
            ensure_ascii=False,
            separators=(",", ":"),
            default=str,
        )
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            created = not self.path.exists()
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)  # two notebooks of one incident never interleave a line
                os.write(fd, (line + "\n").encode("utf-8"))
                os.fsync(fd)
            finally:
                os.close(fd)
            if created:
                fsync_dir(self.directory)
        except OSError as exc:
            raise JournalError(f"cannot write the incident journal {self.path}: {_why(self.directory, exc)}") from exc

    def entries(self) -> list[dict[str, Any]]:
        """Every complete entry, oldest first ([] when the journal does not exist)."""
        return list(_read(self.path))

    def runs(self) -> list[JournalRun]:
        """The notebook runs of this incident, in the order they started."""
        return runs_of(self.entries())

    def closed(self) -> bool:
        """True once the incident was closed (the post-recovery notebook ran to its end)."""
        return any(entry.get("kind") == "closed" for entry in self.entries())


def read_runs(path: Path) -> list[JournalRun]:
    """The notebook runs in a journal file (e.g. the copy a drill keeps beside its notebooks)."""
    return runs_of(list(_read(Path(path))))


def runs_of(entries: list[dict[str, Any]]) -> list[JournalRun]:
    """Group journal entries by notebook run, in the order the runs started."""
    runs: dict[str, JournalRun] = {}
    for entry in entries:
        key = str(entry.get("run") or "")
        if not key:
            continue
        run = runs.setdefault(key, JournalRun(key, str(entry.get("procedure") or "")))
        name, at = str(entry.get("name") or ""), str(entry.get("at") or "")
        if entry.get("kind") == "record":
            run.records[name] = entry.get("value")
            run.record_times[name] = at
            run.order.append((name, at))
        elif entry.get("kind") == "decision":
            run.decisions.append({**(entry.get("value") or {}), "action": name})
    return list(runs.values())


def _why(directory: Path, exc: OSError) -> str:
    """The cause and the fix, for a journal that cannot be written or read."""
    if directory.exists() and not directory.is_dir():
        return (
            f"{directory} is a file, not a directory. Move it aside (or set [records] dir in recovery.toml), "
            "then run the cell again; the step did not go on."
        )
    return (
        f"{exc.strerror or exc}. The step did not go on: free space or fix the permissions of the records "
        "directory ([records] dir in recovery.toml), then run the cell again."
    )


def _read(path: Path) -> Iterator[dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return
    except OSError as exc:
        raise JournalError(f"cannot read the incident journal {path}: {_why(path.parent, exc)}") from exc
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue  # a torn last line: the crash it records came before the write finished
        if isinstance(entry, dict):
            yield entry


def _parsed(line: bytes) -> Any:
    try:
        return json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def _kind(line: bytes) -> str | None:
    entry = _parsed(line)
    return entry.get("kind") if isinstance(entry, dict) else None


def open_incident(directory: Path) -> str | None:
    """The id of the newest open (not closed) incident in ``directory``, or None.

    Newest by the time its journal was first written, so an old incident someone left open does not
    capture a new one's records: the newest open one wins.
    """
    found: list[tuple[str, str]] = []
    for path in Path(directory).glob(f"*{SUFFIX}") if Path(directory).is_dir() else []:
        incident = path.name[: -len(SUFFIX)]
        if not valid_incident_id(incident):
            continue
        try:
            lines = path.read_bytes().splitlines()
        except OSError:
            continue
        # The first readable line says when it opened (a torn first write does not hide the incident);
        # only lines that may be a "closed" entry are parsed, so years of journals stay quick to scan.
        opened = next((entry for line in lines[:20] if isinstance(entry := _parsed(line), dict)), None)
        if opened is None or any(_kind(line) == "closed" for line in lines if b'"closed"' in line):
            continue
        found.append((str(opened.get("at") or ""), incident))
    return max(found)[1] if found else None


# --- one recovery procedure at a time per site --------------------------------------------------------

LOCK_NAME = ".procedure.lock"
_held: dict[Path, int] = {}  # lock file -> open descriptor, for this process (one kernel)


def hold_procedure_lock(directory: Path, holder: dict[str, Any]) -> None:
    """Take the site's procedure lock for this process (a kernel) until it exits, or raise
    :class:`ProcedureBusy` naming who holds it. Taken again by the same process, it is a no-op: a
    rerun of the validation cell, or the next procedure in the same kernel, keeps it."""
    path = Path(directory) / LOCK_NAME
    if path in _held:
        _write_holder(_held[path], holder)
        return
    try:
        Path(directory).mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise JournalError(f"cannot take the procedure lock {path}: {_why(Path(directory), exc)}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        other = _read_holder(fd)
        os.close(fd)
        who = ", ".join(f"{k} {v}" for k, v in other.items()) or "another process"
        raise ProcedureBusy(
            f"another recovery procedure is running on this site ({who}). Two at once would restore and "
            "write trades back twice: finish or stop that one first (or shut down its kernel), then run "
            "this cell again. Nothing was read or changed."
        ) from None
    _held[path] = fd  # released by the kernel when this process exits, however it exits
    _write_holder(fd, holder)


def _write_holder(fd: int, holder: dict[str, Any]) -> None:
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps({**holder, "pid": os.getpid()}).encode(), 0)


def _read_holder(fd: int) -> dict[str, Any]:
    try:
        found = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except (OSError, json.JSONDecodeError):
        return {}
    return found if isinstance(found, dict) else {}


def release_procedure_lock(directory: Path) -> None:
    """Let another kernel run a procedure on this site (this one reached its outcome)."""
    fd = _held.pop(Path(directory) / LOCK_NAME, None)
    if fd is not None:
        os.close(fd)  # closing the descriptor releases the flock
