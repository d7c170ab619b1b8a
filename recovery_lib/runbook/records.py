"""Structured records inside notebooks, and reading them back from archived notebooks.

A notebook cell calls ``record(name, value)``; the value is displayed as JSON under the MIME type
``application/vnd.recovery-record+json`` (with a readable text fallback), so it travels inside the
executed ``.ipynb``. ``read_notebook(path)`` returns every record and each ``step:<name>`` cell's
duration and status from papermill's cell metadata. Secrets are redacted and paths inside the site
are shown relative to it before anything is recorded.

Each record's type is defined once (:mod:`recovery_lib.runbook.record_types`,
:mod:`recovery_lib.runbook.restore_record_types`); ``RECORD_TYPES`` names them all, and the readers
below (``run_of``, ``outcome_of``, ...) give a stored record back as its type.
"""

from __future__ import annotations

import dataclasses
import html
import json
import re
from collections.abc import Callable
from datetime import date, datetime, timedelta
from enum import Enum
from pathlib import Path
from typing import Any, Protocol, cast

from recovery_lib.clock import now_iso
from recovery_lib.runbook.record_types import (
    AbortedRecord,
    ApprovalRecord,
    ConfigCheckRecord,
    DataCheckRecord,
    DrillRecord,
    EscalationRecord,
    ExchangeCheckRecord,
    HaltedRecord,
    HealthRecord,
    IncidentRecord,
    IncidentSummaryRecord,
    ListingRecord,
    NotificationRecord,
    OutcomeRecord,
    ReconciliationRecord,
    RestartSystemRecord,
    ResumeRecord,
    RunRecord,
    StopSystemRecord,
    SuccessCriteriaRecord,
    TradingGateRecord,
    TriageRecord,
    VerificationRecord,
)
from recovery_lib.runbook.restore_record_types import (
    BackupDirRecord,
    BackupScheduleRecord,
    BackupSelectionRecord,
    BackupsRecord,
    BackupTakenRecord,
    BackupVerificationRecord,
    DataLossExtentRecord,
    DataLossWindowRecord,
    PreRecoveryBackupRecord,
    QuarantineRecord,
    RemedyChoiceRecord,
    RemedyPlanRecord,
    RemedyRecord,
    ReplicaPushRecord,
    ReplicaSeedRecord,
    ReplicasRecord,
    RestorePlanRecord,
    RestoreResultRecord,
    TradesRecord,
)

MIME_TYPE = "application/vnd.recovery-record+json"
SECRET_KEY = re.compile(r"(secret|password|passwd|token|api_?key|credential|private)", re.IGNORECASE)
REDACTED = "***"


def to_plain(value: Any, site_root: Path | None = None) -> Any:
    """JSON-safe data: dataclasses, enums, paths, datetimes and DataFrames become plain values;
    secret-looking keys are redacted; paths inside ``site_root`` become site-relative."""
    if isinstance(value, dict):
        return {
            str(key): REDACTED if SECRET_KEY.search(str(key)) and value[key] else to_plain(item, site_root)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [to_plain(item, site_root) for item in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_plain({f.name: getattr(value, f.name) for f in dataclasses.fields(value)}, site_root)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Path):
        return _relative(value, site_root)
    if isinstance(value, str) and site_root is not None and str(site_root) in value:
        # Only at a path boundary: a sibling such as <site>-offsite (the replica) stays a whole path.
        pattern = re.escape(str(site_root)) + r"(/|(?![\w.-]))"
        return re.sub(pattern, lambda m: "" if m.group(1) == "/" else ".", value)
    if isinstance(value, datetime | date):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, timedelta):
        return value.total_seconds()
    if hasattr(value, "to_dict") and hasattr(value, "columns"):  # a pandas DataFrame
        return to_plain(value.to_dict(orient="records"), site_root)
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def _relative(path: Path, site_root: Path | None) -> str:
    if site_root is not None:
        try:
            return path.resolve().relative_to(site_root).as_posix() or "."
        except ValueError:
            pass
    return str(path)


class Recorder:
    """Records of one notebook run: shown in the notebook and kept for the run's summary."""

    def __init__(self, site_root: Path | None = None, sink: Callable[[str, Any], None] | None = None) -> None:
        self.site_root = site_root
        self.values: dict[str, Any] = {}
        self.sink = sink  # the incident journal: written before the record is shown
        self.written: list[str] = []  # record names in the order written: what each step wrote

    def record(self, name: str, value: Any) -> Any:
        """Record ``value`` under ``name`` (the last record of a name wins when read back)."""
        self.values[name] = plain = to_plain(value, self.site_root)
        self.written.append(name)
        if self.sink is not None:
            self.sink(name, plain)
        _display_record(name, plain, now_iso())
        return plain


def _display_record(name: str, plain: Any, at: str) -> None:
    try:
        from IPython.display import display
    except ImportError:  # plain Python: nothing to show the record in
        return
    # People see a small "recorded ... at" tag (JupyterLab and nbconvert HTML prefer text/html): in an
    # archived record it is the UTC time of the step. The data travels in the custom MIME type.
    shown = at.replace("T", " ")
    display(
        {
            MIME_TYPE: {"name": name, "value": plain, "at": at},
            "text/html": f'<small style="color:#777">recorded: <code>{html.escape(name)}</code> at {shown}</small>',
            "text/plain": f"[recorded: {name} at {shown}]",
        },
        raw=True,
    )


_default = Recorder()


def record(name: str, value: Any) -> Any:
    """Record a value into the running notebook (module-level convenience, no site redaction)."""
    return _default.record(name, value)


@dataclasses.dataclass
class Step:
    """One ``step:<name>`` cell of an executed notebook."""

    name: str
    status: str  # completed | failed | pending | not-run
    duration_s: float | None
    start_time: str | None
    end_time: str | None


@dataclasses.dataclass
class NotebookRecords:
    """What an archived notebook says: its records, its steps and its papermill parameters."""

    path: Path
    records: dict[str, Any]
    steps: list[Step]
    parameters: dict[str, Any]
    record_steps: dict[str, str] = dataclasses.field(default_factory=dict)  # record name -> step that wrote it
    record_times: dict[str, str] = dataclasses.field(default_factory=dict)  # record name -> UTC time it was written
    source: str = ""  # how a person names it: the notebook's file name, or "journal: B" for a journal run

    @property
    def label(self) -> str:
        """The notebook's file name, or what the journal run is."""
        return self.source or self.path.name

    def __getitem__(self, name: str) -> Any:
        return self.records[name]

    def get(self, name: str, default: Any = None) -> Any:
        return self.records.get(name, default)

    @property
    def failed_step(self) -> Step | None:
        """The first step that failed, if any."""
        return next((step for step in self.steps if step.status == "failed"), None)


def read_notebook(path: str | Path) -> NotebookRecords:
    """Read the records and step timings back from an executed notebook."""
    path = Path(path)
    # Plain JSON: nbformat's schema validation costs seconds on first import, and an archived
    # record must be readable even if it no longer validates.
    notebook = json.loads(path.read_text(encoding="utf-8"))
    records: dict[str, Any] = {}
    record_steps: dict[str, str] = {}
    record_times: dict[str, str] = {}
    steps: list[Step] = []
    for cell in notebook.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        tags = cell.get("metadata", {}).get("tags", [])
        step_names = [tag.split(":", 1)[1] for tag in tags if tag.startswith("step:")]
        first_record_at = None
        for output in cell.get("outputs", []):
            payload = output.get("data", {}).get(MIME_TYPE)
            if isinstance(payload, dict) and "name" in payload:
                records[payload["name"]] = payload.get("value")
                record_steps[payload["name"]] = step_names[0] if step_names else (tags[0] if tags else "")
                if payload.get("at"):
                    record_times[payload["name"]] = payload["at"]
                    first_record_at = first_record_at or payload["at"]
        if step_names:
            info = cell.get("metadata", {}).get("papermill", {})
            status = info.get("status") or ("completed" if cell.get("execution_count") else "not-run")
            if info.get("exception"):
                status = "failed"
            # Run by hand in JupyterLab there is no papermill timing: the step's first record says when it ran.
            started = info.get("start_time") or first_record_at
            steps.append(Step(step_names[0], status, info.get("duration"), started, info.get("end_time")))
    parameters = notebook.get("metadata", {}).get("papermill", {}).get("parameters", {})
    return NotebookRecords(
        path=path,
        records=records,
        steps=steps,
        parameters=to_plain(parameters),
        record_steps=record_steps,
        record_times=record_times,
    )


# --- the registry -----------------------------------------------------------------------------------

RECORD_TYPES: dict[str, Any] = {
    "run": RunRecord,
    "resume": ResumeRecord,
    "drill": DrillRecord,
    "health_<label>": HealthRecord,
    "triage": TriageRecord,
    "backups": BackupsRecord,
    "backup_selection": BackupSelectionRecord,
    "data_loss_extent": DataLossExtentRecord,
    "data_loss_window": DataLossWindowRecord,
    "approval_<action>": ApprovalRecord,
    "aborted": AbortedRecord,
    "stop_system": StopSystemRecord,
    "trading_gate": TradingGateRecord,
    "restart_system": RestartSystemRecord,
    "pre_recovery_backup": PreRecoveryBackupRecord,
    "restore_plan": RestorePlanRecord,
    "remedy_plan": RemedyPlanRecord,
    "remedy_choice": RemedyChoiceRecord,
    "remedy": RemedyRecord,
    "restore_result": RestoreResultRecord,
    "trades": TradesRecord,
    "config_check": ConfigCheckRecord,
    "data_check": DataCheckRecord,
    "reconciliation": ReconciliationRecord,
    "incident": IncidentRecord,
    "pre_recovery_listing": ListingRecord,
    "post_recovery_backup": BackupTakenRecord,
    "verification_backup": BackupTakenRecord,
    "emergency_backup": BackupTakenRecord,
    "backup_dir": BackupDirRecord,
    "backup_verification": BackupVerificationRecord,
    "quarantine": QuarantineRecord,
    "backup_schedule": BackupScheduleRecord,
    "replicas": ReplicasRecord,
    "replica_seed": ReplicaSeedRecord,
    "replica_push": ReplicaPushRecord,
    "exchange_check": ExchangeCheckRecord,
    "verification": VerificationRecord,
    "halted": HaltedRecord,
    "success_criteria": SuccessCriteriaRecord,
    "escalation": EscalationRecord,
    "outcome": OutcomeRecord,
    "incident_summary": IncidentSummaryRecord,
    "notification": NotificationRecord,
}
"""Every record a notebook writes, by name (``<label>``/``<action>``: a family of names), and its type."""

_FAMILIES = {"health_": "health_<label>", "approval_": "approval_<action>"}


def record_type(name: str) -> Any:
    """The type of the record ``name`` (``health_before`` is a ``health_<label>``); KeyError if unknown."""
    if name in RECORD_TYPES:
        return RECORD_TYPES[name]
    for prefix, family in _FAMILIES.items():
        if name.startswith(prefix) and len(name) > len(prefix):
            return RECORD_TYPES[family]
    raise KeyError(f"{name!r} is no record of docs/records.md; add its type to RECORD_TYPES in {__name__}")


def record_fields(name: str) -> tuple[str, ...]:
    """The fields of the record ``name``, in the order its type declares them (empty for a mapping)."""
    return tuple(getattr(record_type(name), "__annotations__", {}))


# --- the readers ------------------------------------------------------------------------------------


class RecordSource(Protocol):
    """Where records are read from: a notebook's or a journal run's records (``NotebookRecords``, a dict)."""

    def get(self, name: str, default: Any = None) -> Any:
        """The stored value of record ``name``."""
        ...


def _stored(source: RecordSource, name: str) -> dict[str, Any]:
    """The record as stored; an absent record (or one that is no JSON object) reads as an empty one, so
    each of its fields reads as missing."""
    value = source.get(name)
    return value if isinstance(value, dict) else {}


def run_of(source: RecordSource) -> RunRecord:
    """The ``run`` record (empty when absent)."""
    return cast(RunRecord, _stored(source, "run"))


def resume_of(source: RecordSource) -> ResumeRecord:
    """The ``resume`` record (empty when absent: the run started from the top)."""
    return cast(ResumeRecord, _stored(source, "resume"))


def drill_of(source: RecordSource) -> DrillRecord:
    """The ``drill`` record (empty when absent: not a drill)."""
    return cast(DrillRecord, _stored(source, "drill"))


def triage_of(source: RecordSource) -> TriageRecord:
    """The ``triage`` record (empty when absent)."""
    return cast(TriageRecord, _stored(source, "triage"))


def backup_selection_of(source: RecordSource) -> BackupSelectionRecord:
    """The ``backup_selection`` record (empty when absent)."""
    return cast(BackupSelectionRecord, _stored(source, "backup_selection"))


def found_no_backup(selection: BackupSelectionRecord) -> bool:
    """The selection found no usable backup: ``backup_id`` recorded as null (absent is not the same)."""
    return "backup_id" in selection and selection["backup_id"] is None


def restore_result_of(source: RecordSource) -> RestoreResultRecord:
    """The ``restore_result`` record (empty when absent: no restore was applied)."""
    return cast(RestoreResultRecord, _stored(source, "restore_result"))


def remedy_of(source: RecordSource) -> RemedyRecord:
    """The ``remedy`` record (empty when absent)."""
    return cast(RemedyRecord, _stored(source, "remedy"))


def trades_of(source: RecordSource) -> TradesRecord:
    """The ``trades`` record (empty when absent)."""
    return cast(TradesRecord, _stored(source, "trades"))


def verification_of(source: RecordSource) -> VerificationRecord:
    """The ``verification`` record (empty when absent: not the verification notebook)."""
    return cast(VerificationRecord, _stored(source, "verification"))


def outcome_of(source: RecordSource) -> OutcomeRecord:
    """The ``outcome`` record (empty when absent: the notebook never reached its verdict)."""
    return cast(OutcomeRecord, _stored(source, "outcome"))


def halted_of(source: RecordSource) -> HaltedRecord:
    """The ``halted`` record (empty when absent: the run did not halt)."""
    return cast(HaltedRecord, _stored(source, "halted"))


def aborted_of(source: RecordSource) -> AbortedRecord | None:
    """The ``aborted`` record, or None when nobody aborted the run."""
    return cast(AbortedRecord, _stored(source, "aborted")) or None


def escalation_of(source: RecordSource) -> EscalationRecord:
    """The ``escalation`` record (empty when absent)."""
    return cast(EscalationRecord, _stored(source, "escalation"))
