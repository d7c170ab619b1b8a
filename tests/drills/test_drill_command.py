"""Drills: the command line's small commands (``drill run`` refusals; ``drill due`` is in
test_drill_due_command.py)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from recovery_lib.cli import main as cli

# --- 6. the command line ----------------------------------------------------------------------


def run_cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return cli.main(list(argv), out=out), out.getvalue()


@pytest.mark.parametrize("option", ["--site", "--for-site"])
def test_cli_drill_run_refuses_outputs_inside_the_site(
    sandbox: Path, option: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Drill records never go inside a site: a restore would overwrite them, a backup would copy them."""
    before = sorted(p.relative_to(sandbox) for p in sandbox.rglob("*"))
    inside = sandbox / "drill-records"
    code, _ = run_cli("drill", "run", "--scenario", "config", option, str(sandbox), "--outputs", str(inside))
    err = capsys.readouterr().err
    assert code == 2, err
    assert "inside the site" in err and str(inside) in err and option in err
    assert f"{sandbox.name}-drill-records" in err  # where to put them instead
    assert not inside.exists() and sorted(p.relative_to(sandbox) for p in sandbox.rglob("*")) == before


def test_cli_drill_run_help_documents_its_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["drill", "run", "--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    for option in ("--scenario", "--due", "--outputs", "--site", "--seed"):
        assert option in text, option
    assert "{config,data,full,backup,all}" in text
    assert "Exits 0 only if every scenario recovered" in " ".join(text.split())


def test_cli_drill_run_rejects_an_unknown_scenario(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["drill", "run", "--scenario", "meteor", "--outputs", str(tmp_path / "out")])
    assert exited.value.code == 2
    assert "invalid choice: 'meteor'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
