"""Reliability item 8, bad input: notebook parameters (read from the notebooks' ``parameters``
cells, so a new one cannot be forgotten) of the wrong type, bad sites and bad backup ids.
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import papermill
import pytest
from bad_input_helpers import BAD_IDS, Words, World, assert_words, run_cli

from recovery_lib.errors import RecoveryError
from recovery_lib.runbook import procedures as steps
from recovery_lib.runbook.notebook import ParameterError, validate_parameters

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = ROOT / "notebooks"


# --- notebook parameters -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Notebook:
    """One notebook's parameters cell (defaults and annotations) and the cell that checks them."""

    name: str
    source: str
    validate_source: str
    annotations: dict[str, Any]

    def namespace(self, **overrides: Any) -> dict[str, Any]:
        """The kernel namespace after the parameters cell (and papermill's injected overrides)."""
        namespace: dict[str, Any] = {}
        exec(compile(self.source, self.name, "exec", dont_inherit=True), namespace)
        namespace.pop("__builtins__", None)
        namespace.update(overrides)
        return namespace

    @property
    def uses_start(self) -> bool:
        return "start(globals()" in self.validate_source


def read_notebooks() -> dict[str, Notebook]:
    """Every notebook in notebooks/, its parameters read with nbformat (new parameters are covered)."""
    found = {}
    for path in sorted(NOTEBOOK_DIR.glob("*.ipynb")):
        cells = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
        index = next(i for i, c in enumerate(cells) if "parameters" in c.metadata.get("tags", []))
        annotations: dict[str, Any] = {}
        exec(compile(cells[index].source, path.name, "exec", dont_inherit=True), annotations)
        validate = next(c for c in cells if "validate" in c.metadata.get("tags", []))  # A-D: the resume cell between
        found[path.stem] = Notebook(path.stem, cells[index].source, validate.source, annotations["__annotations__"])
    return found


NOTEBOOKS = read_notebooks()
# Values of the wrong type for each annotation the parameters cells use.
WRONG_TYPES: dict[Any, list[Any]] = {
    str: [5, ["x"]],
    bool: ["yes", 1],
    list[str]: ["restore", 5, [5]],  # list parameters are list[str]: a bare `list` would not check its items
    dict: [[], "x"],
}


def _parameter_cases() -> Iterator[Any]:
    for nb in NOTEBOOKS.values():
        for name, annotation in nb.annotations.items():
            assert annotation in WRONG_TYPES, f"{nb.name}: no wrong values for {name}: {annotation}"
            for value in WRONG_TYPES[annotation]:
                yield pytest.param(nb.name, name, value, id=f"{nb.name}-{name}-{type(value).__name__}")
            yield pytest.param(nb.name, name, None, id=f"{nb.name}-{name}-None")
            yield pytest.param(nb.name, name, KeyError, id=f"{nb.name}-{name}-deleted")


@pytest.mark.parametrize("notebook, parameter, value", list(_parameter_cases()))
def test_validate_parameters_names_the_bad_parameter(notebook: str, parameter: str, value: Any) -> None:
    """Promise: every parameter of every notebook, set to a wrong type, None or left undefined, is refused
    by validate_parameters with a RecoveryError naming it and saying to fix the parameters."""
    namespace = NOTEBOOKS[notebook].namespace()
    if value is KeyError:
        del namespace[parameter]
    else:
        namespace[parameter] = value
    with pytest.raises(RecoveryError) as raised:
        validate_parameters(namespace, hidden=set())
    assert_words(str(raised.value), (f"'{parameter}'", "fix the parameters"))
    if value is None or value is KeyError:
        assert_words(str(raised.value), (("missing", "no value"),))


@pytest.mark.parametrize("notebook", list(NOTEBOOKS))
def test_unknown_parameter_is_refused(notebook: str) -> None:
    """Promise: a misspelt parameter (papermill -p bakup_id ...) is refused, naming it and the real ones."""
    nb = NOTEBOOKS[notebook]
    with pytest.raises(RecoveryError) as raised:
        validate_parameters(nb.namespace(bakup_id="x"), hidden=set())
    assert_words(str(raised.value), ("'bakup_id'", "unknown parameter", *nb.annotations))


def run_validate_cell(nb: Notebook, namespace: dict[str, Any]) -> None:
    """Execute the notebook's validation cell (the one after the parameters) on ``namespace``."""
    exec(compile(nb.validate_source, f"{nb.name}:validate", "exec", dont_inherit=True), namespace)


@pytest.mark.parametrize(
    "notebook, parameter, value",
    [
        pytest.param(nb.name, name, value, id=f"{nb.name}-{name}-{label}")
        for nb in NOTEBOOKS.values()
        for name, annotation in nb.annotations.items()
        for label, value in (("wrong-type", WRONG_TYPES[annotation][0]),)
    ],
)
def test_validation_cell_refuses_before_touching_the_site(
    world: World, notebook: str, parameter: str, value: Any
) -> None:
    """Promise: the notebook's own validation cell (start() for the procedures) refuses a wrongly typed
    parameter with a RecoveryError naming it, before the site is read or written."""
    nb = NOTEBOOKS[notebook]
    namespace = nb.namespace(**({"site": str(world.site)} if "site" in nb.annotations else {}))
    namespace[parameter] = value
    before = world.snapshot()
    with pytest.raises(RecoveryError) as raised:
        run_validate_cell(nb, namespace)
    assert_words(str(raised.value), (f"'{parameter}'",))
    assert world.snapshot() == before


PROCEDURE_NOTEBOOKS = [nb.name for nb in NOTEBOOKS.values() if nb.uses_start]


def _site_with_toml(text: str) -> Callable[[World], str]:
    """A ``site`` parameter value: the world's site, with ``text`` as its recovery.toml."""

    def make(world: World) -> str:
        (world.site / "recovery.toml").write_text(text)
        return str(world.site)

    return make


SITE_CASES: dict[str, tuple[Callable[[World], Any], Words, list[Any]]] = {
    "site-missing": (lambda w: str(w.missing), ("{missing}", "does not exist", "--site"), []),
    "site-is-a-file": (
        lambda w: str(w.file),
        ("{file}", "not a directory", ("--site", "choose", "pass")),
        [],
    ),
    "site-invalid-toml": (
        _site_with_toml("[site\n"),
        ("recovery.toml:1:", "not valid TOML"),
        [],
    ),
    "site-unknown-key": (
        _site_with_toml("[backups]\nkeep = 3\n"),
        ("recovery.toml:2:", "backups.keep", "unknown key"),
        [],
    ),
    "site-wrong-type": (
        _site_with_toml('[targets.A]\nrto_minutes = "ten"\n'),
        ("recovery.toml:2:", "targets.A.rto_minutes", "must be"),
        [],
    ),
}


def _start_cases() -> Iterator[Any]:
    for name in PROCEDURE_NOTEBOOKS:
        nb = NOTEBOOKS[name]
        for case, (make, words, marks) in SITE_CASES.items():
            yield pytest.param(name, "site", make, words, id=f"{name}-{case}", marks=marks)
        yield pytest.param(name, "kind", lambda w: "party", ("'kind'", "incident", "drill"), id=f"{name}-kind-party")
        for parameter, annotation in nb.annotations.items():
            if typing.get_origin(annotation) is list:
                yield pytest.param(
                    name,
                    parameter,
                    lambda w: [5],
                    (f"'{parameter}'",),
                    id=f"{name}-{parameter}-int-item",
                )
        yield pytest.param(
            name,
            "approve",
            lambda w: ["restor"],
            ("'approve'", "restor", "restore"),
            id=f"{name}-approve-typo",
        )


@pytest.mark.parametrize("notebook, parameter, make, words", list(_start_cases()))
def test_start_refuses_bad_values(
    world: World, notebook: str, parameter: str, make: Callable[[World], Any], words: Words
) -> None:
    """Promise: start() (the procedure notebooks' validation cell) refuses a site that is missing, a file
    or has a malformed recovery.toml, an unknown kind and malformed approvals, naming the parameter or
    file, without creating the site or changing anything on disk."""
    nb = NOTEBOOKS[notebook]
    namespace = nb.namespace(site=str(world.site), interactive=False, kind="drill")
    namespace[parameter] = make(world)
    words = tuple(world.fill([w])[0] if isinstance(w, str) else w for w in words)
    before = world.snapshot()
    with pytest.raises(RecoveryError) as raised:
        run_validate_cell(nb, namespace)
    assert_words(str(raised.value), words)
    assert world.snapshot() == before
    assert not world.missing.exists()


BACKUP_ID_NOTEBOOKS = [name for name in PROCEDURE_NOTEBOOKS if "backup_id" in NOTEBOOKS[name].annotations]


@pytest.mark.parametrize("backup_id", BAD_IDS.values(), ids=BAD_IDS)
@pytest.mark.parametrize("notebook", BACKUP_ID_NOTEBOOKS)
def test_backup_id_parameter_is_refused_by_the_validation_cell(world: World, notebook: str, backup_id: str) -> None:
    """Promise: a backup_id parameter that is unknown or climbs out ('..', '/') is refused by the
    validation cell, naming the parameter and the id and saying where the backups are listed, before
    any step runs (a typo must never stop trading), and nothing on disk changed."""
    world.with_backup()
    nb = NOTEBOOKS[notebook]
    namespace = nb.namespace(site=str(world.site), interactive=False, kind="drill", backup_id=backup_id)
    before = world.snapshot()
    with pytest.raises(ParameterError) as raised:
        run_validate_cell(nb, namespace)
    assert_words(str(raised.value), ("'backup_id'", repr(backup_id), "backup list"))
    assert "run" not in namespace
    assert world.snapshot() == before


@pytest.mark.parametrize("notebook", BACKUP_ID_NOTEBOOKS)
def test_latest_without_backups_halts_with_what_to_do(world: World, notebook: str) -> None:
    """Promise: "latest" with no backups halts the procedure at the backup choice with a reason saying
    what to do (Procedure D), and nothing on disk changed but the incident journal, which records it."""
    assert not (world.bare / "backups").exists()
    nb = NOTEBOOKS[notebook]
    namespace = nb.namespace(site=str(world.bare), interactive=False, kind="drill", backup_id="latest")
    before = world.snapshot()
    run_validate_cell(nb, namespace)
    choice = steps.choose_backup(namespace["run"], namespace["backup_id"])
    assert choice.metadata is None
    halted = namespace["run"].halted
    assert halted and "latest" in halted
    assert_words(" ".join(choice.skipped), (("backup list", "Procedure D"),))
    journal = f"bare/incidents/{namespace['run'].incident_id}.jsonl"
    after = world.snapshot()
    assert set(after) - set(before) == {"bare/incidents", journal, "bare/incidents/.procedure.lock"}
    assert {k: v for k, v in after.items() if not k.startswith("bare/incidents")} == before
    assert '"halted"' in (world.tmp / journal).read_text()  # the halt is on disk, saved notebook or not


def test_report_notebook_refuses_a_missing_outputs_directory(world: World) -> None:
    """Promise: the records page's validation cell refuses an outputs directory that does not exist,
    naming the parameter, instead of showing an empty report as if no drill had ever run."""
    nb = NOTEBOOKS["R_drill_report"]
    namespace = nb.namespace(outputs=str(world.missing))
    with pytest.raises(RecoveryError) as raised:
        run_validate_cell(nb, namespace)
    assert_words(str(raised.value), ("'outputs'", str(world.missing)))
    assert not world.missing.exists()


def test_papermill_bad_site_fails_in_validation_with_one_line(world: World) -> None:
    """Promise: run headless with papermill, a site that is a file fails in the validation cell with one
    clear line (no traceback wall), no step runs, and nothing on disk changes."""
    output = world.tmp / "out" / "V.ipynb"
    output.parent.mkdir()
    before = world.snapshot()
    with pytest.raises(papermill.PapermillExecutionError) as raised:
        papermill.execute_notebook(
            str(NOTEBOOK_DIR / "V_verification.ipynb"),
            str(output),
            parameters={"site": str(world.file), "interactive": False, "kind": "drill"},
            kernel_name="python3",
            progress_bar=False,
            cwd=str(world.tmp / "cwd"),
        )
    assert raised.value.ename == "SiteError" and str(world.file) in raised.value.evalue
    executed = nbformat.read(output, as_version=4)
    errors = [(cell, out) for cell in executed.cells for out in cell.get("outputs", []) if out.output_type == "error"]
    assert len(errors) == 1
    cell, error = errors[0]
    assert cell.metadata.get("tags") == ["validate"]
    shown = "\n".join(error.traceback)
    assert len(error.traceback) <= 2 and "Traceback" not in shown and 'File "' not in shown, shown
    assert str(world.file) in shown
    after = {k: v for k, v in world.snapshot().items() if not k.startswith("out/")}
    assert after == before


@pytest.mark.parametrize("command", [["backup", "create"], ["backup", "prune", "--keep-last", "3"]])
def test_a_site_with_nothing_in_it_is_not_written_to(
    tmp_path: Path, command: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by a new user: an empty directory given as the site got backups/ and backups/.lock."""
    empty = tmp_path / "empty"
    empty.mkdir()
    outcome = run_cli([*command, "--site", str(empty)], capsys, monkeypatch)
    code, out, err = outcome.code, outcome.out, outcome.err
    assert not any(empty.iterdir()), f"{command} wrote into {empty}: {sorted(empty.iterdir())}"
    if command[1] == "create":
        assert code == 2 and "nothing to back up" in err
    else:
        assert code == 0 and "remove 0" in out
