"""README's examples are runnable as written: a newcomer copies them into a shell during an incident.

- Every `recovery ...` line of a ```bash block is accepted by the real argument parser.
- Every `papermill` example names a notebook that exists, parameters that notebook declares, and values
  its validation cell accepts; there is one for a real incident (`kind incident`), not only a drill.
- The Quick start says how to reach the commands (activate .venv, or call .venv/bin/...) before the
  first example uses them.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
import yaml

from recovery_lib.cli.main import build_parser
from recovery_lib.runbook.parameters import validate_values

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
BASH_BLOCK = re.compile(r"```bash\n(.*?)```", re.S)


def bash_commands() -> list[str]:
    """The commands of README's ```bash blocks, continuation lines joined, comments dropped."""
    commands = []
    for block in BASH_BLOCK.findall(README):
        for command in block.replace("\\\n", " ").splitlines():
            words = shlex.split(command, comments=True)
            if words:
                commands.append(command)
    return commands


def words_of(command: str) -> list[str]:
    words = shlex.split(command, comments=True)
    return words[: words.index("&")] if "&" in words else words


RECOVERY = [c for c in bash_commands() if words_of(c)[0] in ("recovery", ".venv/bin/recovery")]
PAPERMILL = [c for c in bash_commands() if words_of(c)[0] in ("papermill", ".venv/bin/papermill")]


def test_the_readme_has_examples_to_check() -> None:
    assert len(RECOVERY) >= 2 and len(PAPERMILL) >= 3


@pytest.mark.parametrize("command", RECOVERY)
def test_every_recovery_example_parses(command: str) -> None:
    try:
        build_parser().parse_args(words_of(command)[1:])
    except SystemExit as exc:  # argparse's way of refusing
        pytest.fail(f"README example refused by the parser (exit {exc.code}): {command}")


def _parameters(notebook: Path) -> set[str]:
    cells = json.loads(notebook.read_text())["cells"]
    source = next("".join(c["source"]) for c in cells if "parameters" in c.get("metadata", {}).get("tags", []))
    return {line.split(":")[0].strip() for line in source.splitlines() if re.match(r"^\w+\s*:", line)}


def _papermill_values(words: list[str]) -> dict[str, object]:
    """``-p NAME VALUE`` (papermill reads True/False/numbers as such) and ``-y YAML``."""
    values: dict[str, object] = {}
    position = 3
    while position < len(words):
        flag = words[position]
        if flag == "-p":
            name, raw = words[position + 1], words[position + 2]
            values[name] = {"True": True, "False": False}.get(raw, raw)
            position += 3
        elif flag == "-y":
            values.update(yaml.safe_load(words[position + 1]))
            position += 2
        else:
            pytest.fail(f"unexpected papermill argument {flag!r} in README")
    return values


@pytest.mark.parametrize("command", PAPERMILL)
def test_every_papermill_example_is_valid(command: str) -> None:
    words = words_of(command)
    notebook = ROOT / words[1]
    assert notebook.is_file(), f"README runs {words[1]}, which does not exist"
    values = _papermill_values(words)
    unknown = set(values) - _parameters(notebook)
    assert not unknown, f"{words[1]} has no parameter(s) {unknown}"
    values = {k: v for k, v in values.items() if not (isinstance(v, str) and v.startswith("$"))}  # shell's
    validate_values(values)  # the validation cell's own checks: types, kind, approve names


def test_a_real_incident_has_a_papermill_example_next_to_the_drill() -> None:
    kinds = {_papermill_values(words_of(c)).get("kind") for c in PAPERMILL}
    assert {"incident", "drill"} <= kinds
    triage = [c for c in PAPERMILL if "00_detect_and_triage" in c and "kind incident" in c]
    assert triage, "an incident starts at triage"


def test_the_quick_start_says_how_to_reach_the_commands_before_using_them() -> None:
    first_use = min(README.index(block) for block in BASH_BLOCK.findall(README) if "recovery " in block)
    for hint in ("source .venv/bin/activate", ".venv/bin/recovery"):
        assert -1 < README.find(hint) < first_use, hint
