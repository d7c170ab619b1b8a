"""``resume_parameters``: the resumed run's parameters from a failed run's record, without a kernel.

A real run is started from plain Python (``begin``: its ``run`` record goes to the site's incident
journal, as a notebook's validation cell writes it); its record file is an executed notebook as
papermill leaves one: that ``run`` record in a cell's output (the records' MIME type) and the
parameters papermill passed in the notebook's metadata.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nbformat
import pytest
from site_copies import copy_site

from recovery_lib.clock import now
from recovery_lib.errors import ParameterError, SiteError
from recovery_lib.runbook.failed_runs import overtaken
from recovery_lib.runbook.journal import IncidentJournal, release_procedure_lock
from recovery_lib.runbook.notebook import begin
from recovery_lib.runbook.records import MIME_TYPE
from recovery_lib.runbook.resume_request import resume_parameters, resumed_record_path
from recovery_lib.site.config import load_site

HEADLESS = {
    "interactive": False,
    "approve": ["backup", "stop_system"],
    "operator": "alice",
    "kind": "drill",
    "backup_id": "latest",
}


def write_record(path: Path, records: dict[str, Any], parameters: dict[str, Any]) -> Path:
    """An executed notebook holding ``records`` (as a notebook cell displays them) and papermill's parameters."""
    outputs = [
        nbformat.v4.new_output("display_data", data={MIME_TYPE: {"name": name, "value": value, "at": "t"}})
        for name, value in records.items()
    ]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("run = start(...)", outputs=outputs)])
    notebook.metadata["papermill"] = {"parameters": parameters}
    nbformat.write(notebook, path)
    return path


def failed_run(site: Path, tmp_path: Path, procedure: str = "B", **values: Any) -> tuple[Path, dict[str, Any]]:
    """A run of ``procedure`` on ``site`` that did not recover, and its record (papermill's parameters)."""
    parameters = {"site": str(site), **HEADLESS, **values}
    run = begin(procedure, **parameters)
    release_procedure_lock(run.site.records_dir)  # its kernel would have ended
    recorded = dict(run.recorder.values["run"])
    outcome = {"success": False, "halted": "not approved: restore"}
    record = write_record(tmp_path / f"02_{procedure}.ipynb", {"run": recorded, "outcome": outcome}, parameters)
    return record, recorded


def test_the_failed_runs_parameters_headless_in_its_incident(sandbox: Path, tmp_path: Path) -> None:
    record, run = failed_run(sandbox, tmp_path, remedy="restore")
    values = resume_parameters(record, ["restore", "backup"])
    assert values["site"] == str(sandbox) and values["interactive"] is False
    assert values["incident_id"] == run["incident_id"] and values["resume_from"] == run["run_id"]
    assert values["approve"] == ["backup", "stop_system", "restore"], "the failed run's first, each once"
    assert (values["remedy"], values["backup_id"], values["kind"]) == ("restore", "latest", "drill")
    assert values["operator"] == "", "the person resuming acts, not the failed run's operator"


def test_an_interactive_runs_approve_parameter_is_not_carried_over(sandbox: Path, tmp_path: Path) -> None:
    """A person clicked (or not) in that run; its ignored ``approve`` parameter approves nothing now."""
    record, _ = failed_run(sandbox, tmp_path, interactive=True, approve=["restore"])
    assert resume_parameters(record, [])["approve"] == []
    assert resume_parameters(record, ["start_system"])["approve"] == ["start_system"]


def test_site_from_the_option_else_the_record(sandbox: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    record, _ = failed_run(sandbox, tmp_path)
    monkeypatch.chdir(tmp_path)
    assert resume_parameters(record, [], site=str(sandbox))["site"] == str(sandbox)
    assert resume_parameters(record, [])["site"] == str(sandbox), "the site papermill passed"


@pytest.mark.parametrize(
    "extra, words",
    [
        pytest.param(["restor"], ("'restor'", "restore, repair"), id="unknown-approval"),
        pytest.param([""], ("''",), id="empty-approval"),
    ],
)
def test_an_unknown_approval_is_refused(sandbox: Path, tmp_path: Path, extra: list[str], words: tuple[str]) -> None:
    record, _ = failed_run(sandbox, tmp_path)
    with pytest.raises(ParameterError) as refused:
        resume_parameters(record, extra)
    assert str(record) in str(refused.value) and "Nothing was run" in str(refused.value)
    for word in words:
        assert word in str(refused.value)


def test_records_that_are_no_failed_run_of_a_to_d_are_refused(sandbox: Path, tmp_path: Path) -> None:
    record, run = failed_run(sandbox, tmp_path)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    broken = tmp_path / "broken.ipynb"
    broken.write_text("{not json")
    never = write_record(tmp_path / "never.ipynb", {}, {})
    recovered = write_record(tmp_path / "ok.ipynb", {"run": run, "outcome": {"success": True}}, {})
    verification = write_record(tmp_path / "v.ipynb", {"run": {**run, "procedure": "V"}}, {})
    cases = {
        text: ".ipynb",
        tmp_path / "missing.ipynb": "not a readable executed notebook",
        broken: "not a readable executed notebook",
        never: "holds no run record",
        recovered: "recovered",
        verification: "not of a recovery procedure",
    }
    for path, words in cases.items():
        with pytest.raises(ParameterError) as refused:
            resume_parameters(path, [])
        assert str(path) in str(refused.value) and words in str(refused.value), refused.value


def test_a_record_of_another_site_is_refused(sandbox: Path, sandbox_template: Path, tmp_path: Path) -> None:
    record, run = failed_run(sandbox, tmp_path)
    twin = copy_site(sandbox_template, tmp_path / "twin")  # same name, not its journal
    with pytest.raises(ParameterError) as refused:
        resume_parameters(record, [], site=str(twin))
    assert str(record) in str(refused.value) and run["run_id"] in str(refused.value) and "--site" in str(refused.value)
    (twin / "recovery.toml").write_text(
        (twin / "recovery.toml").read_text().replace('name = "peak-trade-sandbox"', 'name = "elsewhere"')
    )
    assert load_site(twin).name == "elsewhere"
    with pytest.raises(ParameterError, match="a record of site 'peak-trade-sandbox', not of 'elsewhere'"):
        resume_parameters(record, [], site=str(twin))


def test_a_site_that_is_gone_is_named_with_the_record(sandbox: Path, tmp_path: Path) -> None:
    """A drill's record names the temporary sandbox it ran on, removed since."""
    record, run = failed_run(sandbox, tmp_path)
    notebook = json.loads(record.read_text())
    notebook["metadata"]["papermill"]["parameters"]["site"] = str(tmp_path / "gone")
    record.write_text(json.dumps(notebook))
    with pytest.raises(SiteError) as refused:
        resume_parameters(record, [])
    assert str(record) in str(refused.value) and "does not exist" in str(refused.value)


def test_a_run_resumed_since_is_refused(sandbox: Path, tmp_path: Path) -> None:
    record, run = failed_run(sandbox, tmp_path)
    site = load_site(sandbox)
    journal = IncidentJournal(site.records_dir, run["incident_id"])
    assert overtaken(journal.entries(), run["run_id"]) == ""
    later = begin("B", site=str(sandbox), **HEADLESS, resume_from=run["run_id"])
    release_procedure_lock(site.records_dir)
    assert overtaken(journal.entries(), run["run_id"]).startswith(f"run {later.run_id} resumed it since")
    with pytest.raises(ParameterError, match=f"run {later.run_id} resumed it since"):
        resume_parameters(record, ["restore"])


def test_an_identity_shown_relative_is_found_in_the_site_or_left_to_its_default(sandbox: Path, tmp_path: Path) -> None:
    """An interactive run's record is all there is (no papermill parameters): a key file inside the
    site is shown relative to it and found again; one outside is shown by name only, never guessed."""
    record, run = failed_run(sandbox, tmp_path, procedure="C")
    (sandbox / "keys").mkdir()
    (sandbox / "keys" / "age.txt").write_text("AGE-SECRET-KEY-1...\n")
    for shown, expected in (("keys/age.txt", str(sandbox / "keys" / "age.txt")), ("age.txt", "")):
        recorded = {**run, "parameters": {**run["parameters"], "identity": shown}}
        write_record(record, {"run": recorded, "outcome": {"success": False}}, {"site": str(sandbox)})
        assert resume_parameters(record, [])["identity"] == expected


def test_the_resumed_record_sits_beside_the_failed_one_without_stacking_suffixes(tmp_path: Path) -> None:
    at = now()
    first = resumed_record_path(tmp_path / "02_B_data_recovery.ipynb", at)
    assert first == tmp_path / f"02_B_data_recovery-resumed-{at:%Y%m%dT%H%M%SZ}.ipynb"
    assert resumed_record_path(first, at) == first
