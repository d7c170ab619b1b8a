"""The record schema, defined once: one ``TypedDict`` per record a notebook writes (the records of
backups, restores and data remedies are in :mod:`recovery_lib.runbook.restore_record_types`).

A step builds its record with the type (``run.record("trades", TradesRecord(ok=True, lost=0, ...))``);
post-recovery and the drill history read it back through the accessors of
:mod:`recovery_lib.runbook.records` (``RECORD_TYPES`` there names every record's type). ``docs/records.md``
documents the same names and fields, and a test holds the two together.

Why ``TypedDict`` and not dataclasses: a record *is* a plain JSON object, in the notebook and in the
journal. A ``TypedDict`` is a dict at run time, so the writer's keys (and their order) are what goes
to disk, byte for byte as before, and a reader takes an archived record as it is, without conversion.
Every type is ``total=False``: records vary by outcome (``{"ok": false, "error": ...}`` or the full
result), and records written by older versions may lack a field. A missing field reads as missing
(``.get`` gives None); nothing is invented. ``None`` stored in a field is a value of its own (e.g. a
``backup_selection`` with ``backup_id: null`` found no usable backup).
"""

from __future__ import annotations

from typing import Any, TypedDict

# --- written by every notebook ---------------------------------------------------------------------


class RunRecord(TypedDict, total=False):
    """``run``: who runs which procedure of which incident, where, with which parameters."""

    incident_id: str
    incident_source: str  # parameter | records | journal | new
    run_id: str
    kind: str  # incident | drill
    procedure: str  # triage, A-D, V, P
    operator: str
    site: str
    started_at: str
    parameters: dict[str, Any]
    interactive: bool
    journal: str
    earlier_runs: list[str]
    resumed_from: str | None  # the failed run this run resumes (``resume_from``), None for a run from the top


class ResumeRecord(TypedDict, total=False):
    """``resume``: the failed run a resumed run goes on from, the steps it replays, and why any runs again."""

    resumed_from: str  # the failed run's id
    incident_id: str
    failed_step: str | None  # the step that failed; None when the failed run stopped on an error
    halted: str | None  # why the failed run halted
    replay: list[str]  # the steps replayed from the failed run, in order
    again: list[str]  # the failed run's steps that succeeded then and run again (stale, or preparing a change)
    stale: str | None  # the first replayed step whose facts no longer hold, and why (it and later steps run again)
    summary: str


class DrillRecord(TypedDict, total=False):
    """``drill``: the drill runner's facts about the fault it injected (the ``drill`` parameter)."""

    run_id: str
    scenario: str
    variant: str
    fault_at: str
    actions: list[str]
    expected_procedure: str
    trades_at_fault: int | None
    rto_target_s: float
    rpo_target_s: float
    trades_lost: int | None
    trades_replayed: int
    midway: dict[str, Any]  # a midway drill: the fault that halted the procedure, and the run that resumed it


class HealthEntry(TypedDict, total=False):
    """One check of a ``health_<label>`` record."""

    healthy: bool
    message: str


HealthRecord = dict[str, HealthEntry]  # health_<label>: {check name: {healthy, message}}


class TriageRecord(TypedDict, total=False):
    """``triage``: the scenario detected and the procedures to run."""

    incident_id: str
    scenario: int | None
    scenario_name: str
    procedure: str
    procedures: list[str]
    notebook: str
    failed_checks: list[str]
    missing_paths: list[str]
    detected_at: str
    also: Any
    replica: str | None  # the replica to recover from when no local backup can serve
    replica_action: str | None  # "restore" (a lost host) or "reseed" (local backups lost)
    notes: list[str]  # what to do differently, and why (e.g. the restore command for a lost host)


class ApprovalRecord(TypedDict, total=False):
    """``approval_<action>``: one approval decision (:class:`recovery_lib.runbook.approval.Decision`)."""

    action: str
    approved: bool
    by: str
    at: str
    via: str  # widget | parameter
    summary: str
    key: str
    note: str


class AbortedRecord(TypedDict, total=False):
    """``aborted``: who clicked Abort on what, and when."""

    action: str
    by: str
    at: str
    what: str


class HaltedRecord(TypedDict, total=False):
    """``halted``: why the procedure stopped early."""

    reason: str
    at: str


# --- checks ------------------------------------------------------------------------------------------


class ConfigCheckRecord(TypedDict, total=False):
    """``config_check``: the config file parses and has the required sections."""

    ok: bool
    file: str
    problems: list[str]
    size_bytes: int
    sections: list[str]


class DataCheckRecord(TypedDict, total=False):
    """``data_check``: row counts and the data consistency check."""

    ok: bool
    problems: list[str]
    more_problems: int
    files: list[dict[str, str]]
    trades: int
    positions: int


class ReconciliationRecord(TypedDict, total=False):
    """``reconciliation``: positions against the exchange (``ok`` None: no exchange configured)."""

    ok: bool | None
    markets: int
    discrepancies: list[dict[str, Any]]
    error: str | None


class ExchangeCheckRecord(TypedDict, total=False):
    """``exchange_check``: a ticker from the exchange."""

    ok: bool
    message: str


class VerificationRecord(TypedDict, total=False):
    """``verification``: the verification notebook's verdict and its parts."""

    ok: bool
    health_ok: bool
    failing: list[str]
    data_ok: bool
    reconciled: bool | None
    config_ok: bool
    exchange_ok: bool


# --- the system -------------------------------------------------------------------------------------


class StopSystemRecord(TypedDict, total=False):
    """``stop_system``: :class:`recovery_lib.site.process.ProcessAction` of the stop."""

    action: str
    ok: bool
    running_after: bool | None
    message: str


class TradingGateRecord(TypedDict, total=False):
    """``trading_gate``: the gate's checks and the criteria that failed before the restart."""

    ok: bool
    checks: list[dict[str, Any]]
    criteria_failed: list[str]


class RestartSystemRecord(TypedDict, total=False):
    """``restart_system``: the start (a ``ProcessAction``), or the refusal to start."""

    action: str
    ok: bool
    refused: bool
    running_after: bool | None
    message: str
    reasons: list[str]
    gate_failing: list[str]
    next: str


class IncidentRecord(TypedDict, total=False):
    """``incident``: Procedure C's declaration."""

    incident_id: str
    declared_at: str
    operator: str
    notify: dict[str, str]


ListingRecord = dict[str, list[dict[str, Any]]]  # pre_recovery_listing: {category: [{path, size, mode, mtime}]}


# --- the verdict ------------------------------------------------------------------------------------


class SuccessCriteriaRecord(TypedDict, total=False):
    """``success_criteria``: :meth:`recovery_lib.runbook.checklist.Checklist.to_dict`."""

    title: str
    all_passed: bool
    rows: list[dict[str, Any]]


class EscalationRecord(TypedDict, total=False):
    """``escalation``: the runbook's escalation level."""

    level: int
    name: str
    contact: str
    reasons: list[str]
    next_steps: list[str]


class OutcomeRecord(TypedDict, total=False):
    """``outcome``: the procedure's verdict."""

    success: bool
    halted: str | None
    failed_criteria: list[str]
    criteria_judged: bool
    trading_running: bool | None
    finished_at: str
    approvals: list[dict[str, Any]]


class IncidentSummaryRecord(TypedDict, total=False):
    """``incident_summary``: :class:`recovery_lib.runbook.postmortem.IncidentSummary` and where it was read from."""

    incident_id: str | None
    scenario: str | None
    scenario_number: int | None  # 1-4, from triage; the name above is for people
    what_failed: list[str]
    detected_at: str | None
    recovered_at: str | None
    time_to_recovery_s: float | None
    steps: list[dict[str, Any]]
    data_loss_window_s: float | None
    backup_used: str | None
    restored_ok: bool | None
    remedy: str | None
    verified_ok: bool | None
    verification_stale: bool
    verification_failed: list[str]
    procedures: list[dict[str, Any]]
    trades_lost: int | None
    trades_recovered: int | None
    trades_missing: int | None
    notebooks: list[str]
    gate_failing: str | None
    trading_now: bool | None
    escalations: list[dict[str, Any]]
    read_from: str  # notebooks | journal


class NotificationRecord(TypedDict, total=False):
    """``notification``: the stakeholder message."""

    text: str
