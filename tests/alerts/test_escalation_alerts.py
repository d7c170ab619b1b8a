"""A procedure that escalates to ``[alerts] escalation_level`` or above tells the site's [alerts], once per
level the incident reaches, with the incident journal as the record. Against a real HTTP server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from http_receiver import Receiver, running_receiver
from notebook_globals import notebook_globals

from recovery_lib.runbook import procedures as steps
from recovery_lib.runbook.notebook import start
from recovery_lib.runbook.run import Run


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as server:
        yield server


def begin(site: Path, receiver: Receiver, level: int = 2, procedure: str = "A", incident_id: str = "") -> Run:
    """A procedure run on ``site``, whose [alerts] post to ``receiver``."""
    toml = site / "recovery.toml"
    text = toml.read_text().split("\n[alerts]\n")[0]
    urls = json.dumps([receiver.json_url("/notify/oncall")])
    toml.write_text(text.rstrip("\n") + f"\n\n[alerts]\nurls = {urls}\nescalation_level = {level}\n")
    return start(notebook_globals(site, incident_id=incident_id), procedure)


def test_level_2_notifies_once_and_a_higher_level_again(sandbox: Path, receiver: Receiver) -> None:
    run = begin(sandbox, receiver)
    assert steps.escalation(run).level == 1
    assert receiver.notifications() == []  # level 1: nobody is paged
    run.facts.no_backup = True
    assert steps.escalation(run).level == 2
    (first,) = receiver.notifications()
    assert first["title"].startswith("[recovery] ") and " escalation to Level 2 (Team Lead) on " in first["title"]
    assert first["type"] == "warning"
    body = first["message"]
    assert "no usable backup available" in body and f"Incident {run.incident_id}, procedure A" in body
    assert run.journal is not None and f"Record: {run.journal.path}" in body
    assert "Procedure D" in body  # the escalation's next steps
    steps.escalation(run)  # the cell run again: the same level is not paged twice
    assert len(receiver.notifications()) == 1
    run.facts.complete_failure = True
    assert steps.escalation(run).level == 3
    second = receiver.notifications()[1]
    assert " escalation to Level 3 (Senior Engineer) on " in second["title"] and second["type"] == "failure"
    assert "complete system failure" in second["message"]


def test_below_the_configured_level_nobody_is_told(sandbox: Path, receiver: Receiver) -> None:
    run = begin(sandbox, receiver, level=3)
    run.facts.no_backup = True
    assert steps.escalation(run).level == 2
    assert receiver.notifications() == []


def test_a_level_the_incident_already_reached_in_another_run_is_not_told_again(
    sandbox: Path, receiver: Receiver
) -> None:
    first = begin(sandbox, receiver)
    first.facts.no_backup = True
    steps.escalation(first)
    assert len(receiver.notifications()) == 1
    # The same incident's journal already says Level 2: a later record of it pages nobody.
    assert first.journal is not None
    first.recorder.values.pop("escalation")  # as a new kernel would start: only the journal remembers
    steps.escalation(first)
    assert len(receiver.notifications()) == 1
