"""The runbook's catalog (``recovery_lib/catalog.py``): it says what the runbook says, its notebooks
exist and name themselves as it does, and no other module of ``recovery_lib`` restates it."""

from __future__ import annotations

import ast
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from recovery_lib import catalog
from recovery_lib.drills.history import due_scenario, week_of_month
from recovery_lib.drills.injectors import VARIANTS
from recovery_lib.site.config import Site

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "recovery_lib"
NOTEBOOKS = ROOT / "notebooks"
# The runbook itself lives beside the project (see /work/shared/DESIGN.md); $RECOVERY_RUNBOOK overrides.
RUNBOOK = Path(os.environ.get("RECOVERY_RUNBOOK", ROOT.parent / "shared" / "runbook" / "DISASTER_RECOVERY_RUNBOOK.md"))

# The runbook's lines the catalog restates, pasted verbatim (in order; test_excerpt_is_verbatim checks
# them against the document wherever it is available), so the comparison runs in any checkout.
RUNBOOK_EXCERPT = """
### Scenario 1: Configuration Corruption
**Recovery:** See [Procedure A: Config Recovery](#procedure-a-config-recovery)
### Scenario 2: Data Loss
**Recovery:** See [Procedure B: Data Recovery](#procedure-b-data-recovery)
### Scenario 3: Complete System Failure
**Recovery:** See [Procedure C: Full System Recovery](#procedure-c-full-system-recovery)
### Scenario 4: Backup System Failure
**Recovery:** See [Procedure D: Backup System Recovery](#procedure-d-backup-system-recovery)
### Procedure A: Config Recovery
**Time Estimate:** 5-10 minutes
### Procedure B: Data Recovery
**Time Estimate:** 10-30 minutes
### Procedure C: Full System Recovery
**Time Estimate:** 30-60 minutes
### Procedure D: Backup System Recovery
**Time Estimate:** 15-30 minutes
### Level 2: Team Lead
- Data loss > 24 hours
### Monthly Drill Schedule
**Week 1:** Config Recovery
- Practice Procedure A
**Week 2:** Data Recovery
- Practice Procedure B
**Week 3:** Full System Recovery
- Practice Procedure C
**Week 4:** Backup System Check
"""


@dataclass
class RunbookTable:
    """What the runbook's text says: scenarios, procedures with their time estimates, the drill weeks."""

    scenarios: dict[int, tuple[str, str | None]] = field(default_factory=dict)  # number -> (name, procedure)
    procedures: dict[str, tuple[str, int | None]] = field(default_factory=dict)  # letter -> (title, minutes)
    weeks: dict[int, tuple[str, str | None]] = field(default_factory=dict)  # week -> (title, procedure practised)
    data_loss_hours: int | None = None


def parse_runbook(text: str) -> RunbookTable:
    """Read the runbook's headings, recovery links, time estimates, level 2 rule and drill schedule."""
    table = RunbookTable()
    where: tuple[str, object] | None = None
    for line in (raw.strip() for raw in text.splitlines()):
        if found := re.fullmatch(r"### Scenario (\d+): (.+)", line):
            where = ("scenario", int(found[1]))
            table.scenarios[int(found[1])] = (found[2], None)
        elif found := re.fullmatch(r"### Procedure ([A-Z]): (.+)", line):
            where = ("procedure", found[1])
            table.procedures[found[1]] = (found[2], None)
        elif line.startswith("#"):
            where = None
        elif found := re.fullmatch(r"\*\*Week (\d+):\*\* (.+)", line):
            where = ("week", int(found[1]))
            table.weeks[int(found[1])] = (found[2], None)
        elif (found := re.fullmatch(r"\*\*Recovery:\*\* See \[Procedure ([A-Z]): .+\]\(.+\)", line)) and where:
            assert where[0] == "scenario", line
            number = int(str(where[1]))
            table.scenarios[number] = (table.scenarios[number][0], found[1])
        elif (found := re.fullmatch(r"\*\*Time Estimate:\*\* (\d+)-(\d+) minutes", line)) and where:
            letter = str(where[1])
            table.procedures[letter] = (table.procedures[letter][0], int(found[2]))
        elif (found := re.fullmatch(r"- Practice Procedure ([A-Z])", line)) and where and where[0] == "week":
            week = int(str(where[1]))
            table.weeks[week] = (table.weeks[week][0], found[1])
        elif found := re.fullmatch(r"- Data loss > (\d+) hours", line):
            table.data_loss_hours = int(found[1])
    return table


def _runbook_text(source: str) -> str:
    if source == "excerpt":
        return RUNBOOK_EXCERPT
    if not RUNBOOK.is_file():
        pytest.skip(f"the runbook document is not at {RUNBOOK} (set $RECOVERY_RUNBOOK); the excerpt is checked")
    return RUNBOOK.read_text(encoding="utf-8")


@pytest.mark.parametrize("source", ["excerpt", "document"])
def test_the_catalog_says_what_the_runbook_says(source: str) -> None:
    runbook = parse_runbook(_runbook_text(source))
    assert {s.number: (s.name, s.procedure) for s in catalog.SCENARIOS} == runbook.scenarios
    recovery = [catalog.procedure(key) for key in catalog.RECOVERY_PROCEDURES]
    # RTO: the upper bound of each procedure's time estimate.
    assert {p.key: (p.title, p.rto_minutes) for p in recovery} == runbook.procedures
    # RPO: escalation level 2's "Data loss > 24 hours", for every procedure.
    assert runbook.data_loss_hours == catalog.DATA_LOSS_LIMIT_HOURS
    assert all(p.rpo_hours == runbook.data_loss_hours for p in recovery)
    # Monthly drill schedule: each week drills the scenario of the procedure it practises (week 4
    # practises none by letter: "Backup System Check" is the backup system's scenario, by title).
    assert sorted(runbook.weeks) == sorted(s.week for s in catalog.SCENARIOS)
    for week, (title, practised) in runbook.weeks.items():
        drilled = catalog.procedure(catalog.by_week(week).procedure)
        if practised is not None:
            assert drilled.key == practised, (week, title)
        assert title.rsplit(" ", 1)[0] == drilled.title.rsplit(" ", 1)[0], (week, title, drilled.title)


def test_the_excerpt_is_verbatim_from_the_runbook() -> None:
    document = [line.strip() for line in _runbook_text("document").splitlines()]
    at = 0
    for line in (line for line in RUNBOOK_EXCERPT.strip().splitlines()):
        assert line in document[at:], f"not in the runbook (after line {at}): {line!r}"
        at = document.index(line, at) + 1


def test_the_parser_sees_a_difference() -> None:
    """The comparison can fail: a runbook that drills data loss in week 1 or lets Procedure A take 15 minutes
    no longer matches the catalog."""
    edited = RUNBOOK_EXCERPT.replace("5-10 minutes", "5-15 minutes").replace(
        "Practice Procedure A", "Practice Procedure B"
    )
    runbook = parse_runbook(edited)
    assert runbook.procedures["A"] == ("Config Recovery", 15) != (catalog.procedure("A").title, 10)
    assert runbook.weeks[1] == ("Config Recovery", "B")
    assert catalog.by_week(1).procedure != "B"


# --- notebooks ---------------------------------------------------------------------------------


def _cells(name: str) -> list[dict[str, object]]:
    return json.loads((NOTEBOOKS / name).read_text(encoding="utf-8"))["cells"]


def test_every_notebook_is_in_the_catalog_and_exists() -> None:
    named = sorted(p.notebook for p in catalog.PROCEDURES)
    assert len(set(named)) == len(named), named
    assert named == sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))


@pytest.mark.parametrize("row", catalog.PROCEDURES, ids=lambda p: p.key)
def test_each_notebook_names_itself_as_the_catalog_does(row: catalog.Procedure) -> None:
    cells = _cells(row.notebook)
    title = next("".join(c["source"]) for c in cells if c["cell_type"] == "markdown").splitlines()[0]  # type: ignore[arg-type]
    assert row.heading in title, (row.notebook, title)
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")  # type: ignore[arg-type]
    keys = re.findall(r"procedure=\"([^\"]+)\"", code)
    assert set(keys) <= {row.key}, (row.notebook, keys)  # the report notebook does not call start()


def test_the_drills_inject_exactly_the_catalog_scenarios() -> None:
    assert tuple(VARIANTS) == catalog.DRILLS


# --- lookups -----------------------------------------------------------------------------------


def test_lookups_find_each_row_and_name_the_known_ones_otherwise() -> None:
    for row in catalog.SCENARIOS:
        assert catalog.scenario(row.number) is row
        assert catalog.by_drill(row.drill) is row
        assert catalog.by_week(row.week) is row
        assert catalog.procedure(row.procedure).recovers
    assert catalog.notebook("B") == "B_data_recovery.ipynb"
    assert catalog.procedure("A").heading == "Procedure A: Config Recovery"
    assert catalog.procedure("V").heading == "Verification"
    assert catalog.scenario(catalog.COMPLETE_FAILURE).name == "Complete System Failure"
    assert catalog.RECOVERY_PROCEDURES == ("A", "B", "C", "D")
    with pytest.raises(KeyError, match="config, data, full, backup"):
        catalog.by_drill("fire")
    with pytest.raises(KeyError, match="triage, A, B, C, D, V, P, R"):
        catalog.procedure("E")
    with pytest.raises(KeyError, match="1, 2, 3, 4"):
        catalog.scenario(5)
    with pytest.raises(KeyError, match="weeks: 1, 2, 3, 4"):
        catalog.by_week(5)


def test_the_schedule_site_targets_and_escalation_read_the_catalog(tmp_path: Path) -> None:
    from datetime import date

    assert [due_scenario(date(2026, 3, day)) for day in (1, 7, 8, 15, 22, 31)] == [
        catalog.by_week(week_of_month(date(2026, 3, day))).drill for day in (1, 7, 8, 15, 22, 31)
    ]
    assert [due_scenario(date(2026, 3, day)) for day in (1, 8, 15, 31)] == ["config", "data", "full", "backup"]
    assert catalog.schedule_text() == "week 1 config, week 2 data, week 3 full, week 4 backup"
    targets = Site(root=tmp_path).targets
    assert {k: (t.rto_minutes, t.rpo_hours) for k, t in targets.items()} == {
        p.key: (p.rto_minutes, p.rpo_hours) for p in catalog.PROCEDURES if p.recovers
    }


# --- no restatement ----------------------------------------------------------------------------


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def _constant(node: ast.AST) -> object:
    return node.value if isinstance(node, ast.Constant) else None


def restatements(source: str) -> list[str]:
    """What a module's code (not its docstrings) restates of the catalog: notebook file names, scenario
    names, procedure headings in strings; the procedure letters as a literal; a literal mapping from
    scenario numbers or drill names to letters, names or drills."""
    words = [p.notebook for p in catalog.PROCEDURES]
    words += [s.name for s in catalog.SCENARIOS] + [catalog.procedure(k).heading for k in catalog.RECOVERY_PROCEDURES]
    letters = set(catalog.RECOVERY_PROCEDURES)
    keys = [{s.number for s in catalog.SCENARIOS}, set(catalog.DRILLS), {s.week for s in catalog.SCENARIOS}]
    values = letters | set(catalog.DRILLS) | {s.name for s in catalog.SCENARIOS} | {s.number for s in catalog.SCENARIOS}
    tree = ast.parse(source)
    docstrings = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            found += [f"line {node.lineno}: {word!r}" for word in words if word in node.value]
        elif isinstance(node, ast.Tuple | ast.List | ast.Set):
            items = [_constant(item) for item in node.elts]
            if set(items) == letters and len(items) == len(letters):
                found.append(f"line {node.lineno}: the procedure letters {items}")
        elif isinstance(node, ast.Dict):
            dict_keys = {_constant(k) for k in node.keys if k is not None}
            dict_values = [_constant(v) for v in node.values]
            if any(dict_keys == wanted for wanted in keys) and all(v in values for v in dict_values):
                found.append(f"line {node.lineno}: a mapping {dict(zip(dict_keys, dict_values, strict=False))}")
    return found


def test_no_other_module_restates_the_catalog() -> None:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "catalog.py" and path.parent == PACKAGE:
            continue
        problems = restatements(path.read_text(encoding="utf-8"))
        if problems:
            found[path.relative_to(ROOT).as_posix()] = problems
    assert not found, "read recovery_lib.catalog instead of restating it: " + json.dumps(found, indent=1)


def test_the_restatement_check_can_fail() -> None:
    assert restatements('"""B_data_recovery.ipynb in a docstring is fine."""\nX = 1\n') == []
    assert restatements('NOTEBOOK = "V_verification.ipynb"\n') == ["line 1: 'V_verification.ipynb'"]
    assert restatements('LETTERS = ("A", "B", "C", "D")\n') == ["line 1: the procedure letters ['A', 'B', 'C', 'D']"]
    assert restatements('SCHEDULE = {1: "config", 2: "data", 3: "full", 4: "backup"}\n')
    assert restatements('PROCEDURE_OF = {"config": "A", "data": "B", "full": "C", "backup": "D"}\n')
    assert restatements('if name == "Complete System Failure":\n    pass\n')
    # The injectors' own table (faults per drill) is not the catalog.
    assert restatements('VARIANTS = {"config": ("a",), "data": ("b",), "full": ("c",), "backup": ("d",)}\n') == []
