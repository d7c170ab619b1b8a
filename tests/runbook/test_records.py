"""The record schema, defined once: the types, their one writer and one reader, and docs/records.md.

No kernel: records go through the real recorder, the real notebook reader and the real incident
journal, as a notebook run would write and read them.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pytest

from recovery_lib.checks.gate import GateCheck, TradingGate
from recovery_lib.drills.history import drill_row
from recovery_lib.restore.plan import RestorePlan
from recovery_lib.runbook import record_types, restore_record_types
from recovery_lib.runbook.approval import Decision
from recovery_lib.runbook.checklist import Checklist
from recovery_lib.runbook.journal import IncidentJournal
from recovery_lib.runbook.postmortem import IncidentSummary, summarize
from recovery_lib.runbook.record_types import (
    AbortedRecord,
    HaltedRecord,
    OutcomeRecord,
    RunRecord,
    TriageRecord,
    VerificationRecord,
)
from recovery_lib.runbook.records import (
    MIME_TYPE,
    RECORD_TYPES,
    Recorder,
    aborted_of,
    backup_selection_of,
    drill_of,
    escalation_of,
    found_no_backup,
    halted_of,
    outcome_of,
    read_notebook,
    record_fields,
    record_type,
    remedy_of,
    restore_result_of,
    run_of,
    to_plain,
    trades_of,
    triage_of,
    verification_of,
)
from recovery_lib.runbook.remedy import RemedyPlan
from recovery_lib.runbook.restore_record_types import (
    BackupSelectionRecord,
    RemedyRecord,
    RestoreResultRecord,
    TradesRecord,
)
from recovery_lib.site.process import ProcessAction

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "records.md"
PACKAGE = ROOT / "recovery_lib"

# --- docs/records.md against the types ----------------------------------------------------------------


def _top_level_quoted(cell: str) -> list[str]:
    """The `quoted` names of a table cell outside any (...), [...] or {...}: the record's fields."""
    names, depth, i = [], 0, 0
    while i < len(cell):
        char = cell[i]
        if char == "`":
            end = cell.index("`", i + 1)
            if depth == 0:
                names.append(cell[i + 1 : end])
            i = end + 1
            continue
        depth += char in "([{"
        depth -= char in ")]}"
        i += 1
    return names


def doc_records(text: str) -> dict[str, list[str]]:
    """Record name -> the fields the "Records by notebook" table names for it."""
    table = text.split("## Records by notebook", 1)[1]
    found: dict[str, list[str]] = {}
    for line in table.splitlines():
        if not line.startswith("| `"):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        assert len(cells) == 3, f"docs/records.md: a row needs 3 cells (record, written by, fields): {line}"
        for name in _top_level_quoted(cells[0]):
            assert name not in found, f"docs/records.md names record {name!r} twice"
            found[name] = _top_level_quoted(cells[2])
    return found


def schema_mismatches(documented: dict[str, list[str]]) -> list[str]:
    """Every difference between the documented records and RECORD_TYPES, in words."""
    problems = [f"{name}: documented, but no type in RECORD_TYPES" for name in documented.keys() - RECORD_TYPES]
    problems += [
        f"{name}: has a type, but docs/records.md does not name it" for name in RECORD_TYPES - documented.keys()
    ]
    for name in documented.keys() & RECORD_TYPES.keys():
        doc, typed = set(documented[name]), set(record_fields(name))
        problems += [f"{name}.{field}: documented, not in the type" for field in sorted(doc - typed)]
        problems += [f"{name}.{field}: in the type, not documented" for field in sorted(typed - doc)]
    return problems


def test_docs_name_exactly_the_records_and_fields_of_the_types() -> None:
    assert schema_mismatches(doc_records(DOC.read_text(encoding="utf-8"))) == []


def test_the_doc_check_fails_on_a_field_the_types_lack_or_a_field_left_out() -> None:
    text = DOC.read_text(encoding="utf-8")
    renamed = text.replace("| `trades` | B, C | `ok`, `lost`", "| `trades` | B, C | `ok`, `trades_lost`")
    assert renamed != text
    assert schema_mismatches(doc_records(renamed)) == [
        "trades.trades_lost: documented, not in the type",
        "trades.lost: in the type, not documented",
    ]
    dropped = text.replace("| `notification` | P |", "| `notification_text` | P |")
    assert set(schema_mismatches(doc_records(dropped))) == {
        "notification_text: documented, but no type in RECORD_TYPES",
        "notification: has a type, but docs/records.md does not name it",
    }


def test_quoted_values_in_parentheses_are_not_fields() -> None:
    cell = "`kind` (`incident`/`drill`), `rows` ([{`path`}]), `note`"
    assert _top_level_quoted(cell) == ["kind", "rows", "note"]


def test_every_type_of_the_registry_is_defined_in_the_two_schema_modules() -> None:
    defined = {
        value
        for module in (record_types, restore_record_types)
        for value in vars(module).values()
        if getattr(value, "__module__", None) == module.__name__
    }
    for name, kind in RECORD_TYPES.items():
        mapping = getattr(kind, "__origin__", None) is dict  # health_<label>, pre_recovery_listing
        assert mapping or kind in defined, name
        assert mapping or not kind.__required_keys__, f"{name}: every field may be absent in an older record"


def test_record_families_and_unknown_names() -> None:
    assert record_type("health_after") is RECORD_TYPES["health_<label>"]
    assert record_fields("approval_restore") == tuple(f.name for f in dataclasses.fields(Decision))
    with pytest.raises(KeyError, match="RECORD_TYPES"):
        record_type("no_such_record")
    with pytest.raises(KeyError):
        record_type("health_")


# --- the types match what builds the values they record ---------------------------------------------


def test_types_of_records_built_by_other_modules_list_exactly_their_fields() -> None:
    assert record_fields("stop_system") == tuple(f.name for f in dataclasses.fields(ProcessAction))
    assert set(record_fields("restart_system")) >= {f.name for f in dataclasses.fields(ProcessAction)}
    summary = {f.name for f in dataclasses.fields(IncidentSummary)}
    assert set(record_fields("incident_summary")) == summary | {"read_from"}
    plan = RestorePlan("b1", "2026-12-01T00:00:00Z", ("config",), {}, (), ROOT, "fp")
    assert record_fields("restore_plan") == (*plan.to_dict(), "key")
    assert record_fields("remedy_plan") == tuple(RemedyPlan([], set(), "fp").to_dict())
    assert record_fields("success_criteria") == tuple(Checklist("Criteria").to_dict())
    gate = TradingGate([GateCheck("config check", True, "valid")]).to_dict()
    assert record_fields("trading_gate") == (*gate, "criteria_failed")


# --- writer and reader ------------------------------------------------------------------------------

WRITTEN: dict[str, Any] = {
    "run": RunRecord(incident_id="INC-1", run_id="B-1", kind="drill", procedure="B", started_at="2026-12-01T10:00:00Z"),
    "drill": {"run_id": "INC-1", "fault_at": "2026-12-01T09:59:00Z"},
    "triage": TriageRecord(incident_id="INC-1", scenario=2, scenario_name="Data Loss", failed_checks=["data"]),
    "backup_selection": BackupSelectionRecord(requested="latest", backup_id=None, skipped=[], via="parameter"),
    "restore_result": RestoreResultRecord(ok=True, backup_id="b1", backup_created_at="2026-12-01T09:00:00Z"),
    "remedy": RemedyRecord(action="restore", ok=True),
    "trades": TradesRecord(ok=True, lost=3, recovered=3, still_missing=0),
    "halted": HaltedRecord(reason="no usable backup (latest)", at="2026-12-01T10:01:00Z"),
    "aborted": AbortedRecord(action="restore", by="alice", at="2026-12-01T10:01:00Z", what="Restore data"),
    "outcome": OutcomeRecord(success=False, halted="no usable backup (latest)", failed_criteria=["Data restored"]),
    "verification": VerificationRecord(ok=True, health_ok=True, failing=[]),
    "escalation": {"level": 2, "name": "Team Lead", "contact": "lead@example", "reasons": [], "next_steps": []},
}
READERS = {
    "run": run_of,
    "drill": drill_of,
    "triage": triage_of,
    "backup_selection": backup_selection_of,
    "restore_result": restore_result_of,
    "remedy": remedy_of,
    "trades": trades_of,
    "halted": halted_of,
    "aborted": aborted_of,
    "outcome": outcome_of,
    "verification": verification_of,
    "escalation": escalation_of,
}


def _notebook_with(path: Path, records: dict[str, Any]) -> Path:
    """An executed notebook holding ``records`` exactly as the recorder displays them."""
    recorder = Recorder(site_root=None)
    outputs = [
        {"output_type": "display_data", "metadata": {}, "data": {MIME_TYPE: {"name": n, "value": p, "at": "t"}}}
        for n, p in ((name, recorder.record(name, value)) for name, value in records.items())
    ]
    cell = {"cell_type": "code", "metadata": {"tags": ["step:all"]}, "source": "", "outputs": outputs}
    path.write_text(json.dumps({"cells": [cell], "metadata": {}}), encoding="utf-8")
    return path


def test_every_reader_gives_back_what_its_writer_wrote_through_a_notebook(tmp_path: Path) -> None:
    archived = read_notebook(_notebook_with(tmp_path / "B.ipynb", WRITTEN))
    for name, reader in READERS.items():
        read = reader(archived)
        assert read == WRITTEN[name], name
        assert list(read) == list(WRITTEN[name]), f"{name}: fields keep the writer's order"


def test_every_reader_gives_back_what_its_writer_wrote_through_the_journal(tmp_path: Path) -> None:
    journal = IncidentJournal(tmp_path, "INC-1")
    recorder = Recorder(site_root=None, sink=lambda name, plain: journal.append("record", "B-1", "B", name, plain))
    for name, value in WRITTEN.items():
        recorder.record(name, value)
    (run,) = journal.runs()
    for name, reader in READERS.items():
        assert reader(run.records) == WRITTEN[name], name


def test_on_disk_json_is_what_the_dict_literals_wrote() -> None:
    # The exact bytes of records written before the types existed: old journals and notebooks still read.
    recorder = Recorder(site_root=None)
    written = recorder.record(
        "trades",
        TradesRecord(
            ok=True, lost=2, recovered=2, still_missing=0, still_missing_ids=[], recovered_ids=[7, 8], ledger_trades=9
        ),
    )
    assert json.dumps(written) == (
        '{"ok": true, "lost": 2, "recovered": 2, "still_missing": 0, "still_missing_ids": [], '
        '"recovered_ids": [7, 8], "ledger_trades": 9}'
    )
    failed = recorder.record("restore_result", RestoreResultRecord(ok=False, error="backup b1 is damaged"))
    assert json.dumps(failed) == '{"ok": false, "error": "backup b1 is damaged"}'


def test_missing_records_and_fields_read_as_missing_never_invented() -> None:
    for name, reader in READERS.items():
        if name == "aborted":
            assert reader({}) is None
            assert reader({"aborted": None}) is None
        else:
            assert reader({}) == {}, name
            assert reader({name: None}) == {}, name
            assert reader({name: "not a JSON object"}) == {}, name
    older = {"restore_result": {"ok": True}}  # written before backup_created_at existed
    assert restore_result_of(older).get("backup_created_at") is None
    assert "backup_created_at" not in restore_result_of(older)


def test_no_backup_is_a_null_backup_id_not_an_absent_one() -> None:
    assert found_no_backup(backup_selection_of({"backup_selection": {"requested": "latest", "backup_id": None}}))
    assert not found_no_backup(backup_selection_of({"backup_selection": {"requested": "latest"}}))
    assert not found_no_backup(backup_selection_of({}))
    assert not found_no_backup(backup_selection_of({"backup_selection": {"backup_id": "b1"}}))


def test_the_summary_reads_the_typed_records_of_a_notebook(tmp_path: Path) -> None:
    written = dict(WRITTEN)
    del written["verification"]  # a procedure notebook: its halt and abort are what the summary shows
    summary = summarize([_notebook_with(tmp_path / "B.ipynb", written)])
    assert summary.incident_id == "INC-1"
    assert summary.backup_used == "b1"
    assert summary.remedy == "restore"
    assert (summary.trades_lost, summary.trades_recovered, summary.trades_missing) == (3, 3, 0)
    assert summary.data_loss_window_s == 3540.0  # from the restore point to the drill's fault
    (procedure,) = summary.procedures
    assert procedure["halted"] == "no usable backup (latest)"
    assert procedure["aborted"] == WRITTEN["aborted"]
    assert procedure["no_backup"] is True
    assert procedure["failed_criteria"] == ["Data restored"]
    assert summary.escalations == [WRITTEN["escalation"]]


# --- one writer: every record call in the package builds the record's type ------------------------


def _record_calls() -> list[tuple[Path, ast.Call]]:
    calls = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            is_call = isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            if is_call and node.func.attr == "record" and len(node.args) == 2:
                calls.append((path, node))
    return calls


def record_call_problems(calls: list[tuple[Path, ast.Call]]) -> list[str]:
    """Record calls that name no known record, pass a bare dict, or build another record's type."""
    types = {name: kind for name, kind in vars(record_types).items() if name.endswith("Record")}
    types |= {name: kind for name, kind in vars(restore_record_types).items() if name.endswith("Record")}
    problems = []
    for path, call in calls:
        where = f"{path.relative_to(ROOT)}:{call.lineno}"
        name_arg, value = call.args
        name = name_arg.value if isinstance(name_arg, ast.Constant) and isinstance(name_arg.value, str) else None
        if name is not None:
            try:
                record_type(name)
            except KeyError:
                problems.append(f"{where}: record {name!r} has no type")
                continue
        if isinstance(value, ast.Dict):
            problems.append(f"{where}: a bare dict; build the record's type")
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id in types:
            kind = types[value.func.id]
            if name is not None and record_type(name) is not kind:
                problems.append(f"{where}: {name!r} built as {value.func.id}")
            unknown = [k.arg for k in value.keywords if k.arg and k.arg not in kind.__annotations__]
            problems += [f"{where}: {value.func.id} has no field {field!r}" for field in unknown]
    return problems


def test_every_record_call_names_a_typed_record_and_builds_its_type() -> None:
    calls = _record_calls()
    assert len(calls) > 30  # the procedures' steps are found
    assert record_call_problems(calls) == []


def test_the_record_call_check_fails_on_a_bare_dict_or_an_unknown_field() -> None:
    source = (
        'run.record("trades", {"ok": True})\n'
        'run.record("trades", TradesRecord(ok=True, lots=3))\n'
        'run.record("remedy", TradesRecord(ok=True))\n'
        'run.record("no_such", 1)\n'
    )
    calls = [(PACKAGE / "x.py", node) for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Call)]
    calls = [(p, c) for p, c in calls if isinstance(c.func, ast.Attribute)]
    assert [re.sub(r"^\S+ ", "", p) for p in record_call_problems(calls)] == [
        "a bare dict; build the record's type",
        "TradesRecord has no field 'lots'",
        "'remedy' built as TradesRecord",
        "record 'no_such' has no type",
    ]


def test_the_drill_history_reads_the_typed_records_of_a_drill_directory(tmp_path: Path) -> None:
    drill = {"run_id": "INC-1", "fault_at": "2026-12-01T09:59:00Z", "rto_target_s": 3600.0, "rpo_target_s": 86400.0}
    procedure = {
        "drill": drill,
        "run": RunRecord(incident_id="INC-1", run_id="B-1", kind="drill", procedure="B"),
        "restore_result": RestoreResultRecord(ok=True, backup_id="b1", backup_created_at="2026-12-01T09:00:00Z"),
        "remedy": RemedyRecord(action="restore", ok=True),
        "trades": TradesRecord(ok=True, lost=3, recovered=3, still_missing=0),
        "outcome": OutcomeRecord(success=True, failed_criteria=[], finished_at="2026-12-01T10:05:00Z"),
        "escalation": {"level": 1},
    }
    verification = {
        "drill": drill,
        "run": RunRecord(incident_id="INC-1", run_id="V-1", kind="drill", procedure="V"),
        "verification": VerificationRecord(ok=True),
        "outcome": OutcomeRecord(success=True, failed_criteria=[], finished_at="2026-12-01T10:09:00Z"),
        "escalation": {"level": 2},
    }
    _notebook_with(tmp_path / "02_B.ipynb", procedure)
    _notebook_with(tmp_path / "03_V.ipynb", verification)
    row = drill_row(tmp_path)
    assert row is not None
    assert (row["outcome"], row["failed_step"], row["procedure"]) == ("recovered", None, "B")
    assert (row["backup_id"], row["remedy"], row["trades_replayed"], row["escalation_level"]) == ("b1", "restore", 3, 2)
    assert row["data_loss_window_s"] == 3540.0
    assert row["time_to_recover_s"] == 600.0
    assert row["rto_met"] is True
    (tmp_path / "03_V.ipynb").unlink()  # no verification: not recovered, and the row says why
    assert drill_row(tmp_path)["failed_step"] == "verification did not run"


@pytest.mark.parametrize(
    ("value", "plain"),
    [
        ("/srv/x/site/data/trades.csv", "data/trades.csv"),
        ("/srv/x/site", "."),
        ("restored into /srv/x/site: ok", "restored into .: ok"),
        ("file:///srv/x/site-offsite", "file:///srv/x/site-offsite"),  # the sandbox's replica, a sibling
        ("/srv/x/site.old/config", "/srv/x/site.old/config"),
        ("/srv/x/sites/other", "/srv/x/sites/other"),
    ],
)
def test_records_make_paths_site_relative_only_at_a_path_boundary(value: str, plain: str) -> None:
    assert to_plain(value, Path("/srv/x/site")) == plain
