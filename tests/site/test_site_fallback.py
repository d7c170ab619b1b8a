"""Issue 15 part 5: what makes a directory a site, and the tolerant loader of `backup list` and `restore`.

A malformed recovery.toml gives the default settings plus the problem (file, line, what is wrong), and
the [backups] dir the broken file seems to set, so the warning can say where the backups really are.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from recovery_lib.errors import NotASiteError, SiteConfigError, SiteError
from recovery_lib.site.config import load_site, looks_like_a_site, require_site, site_from_text
from recovery_lib.site.fallback import load_site_or_defaults, written_backup_dir


@pytest.mark.parametrize(
    "layout",
    [
        pytest.param({"recovery.toml": ""}, id="recovery-toml-only"),  # a lost host before its restore
        pytest.param({"config/config.toml": "[trading]\n"}, id="config-only"),
        pytest.param({"state/x.json": "{}"}, id="state-only"),
        pytest.param({"data/trades.csv": "id\n"}, id="data-only"),
        pytest.param({"backups/.lock": ""}, id="backups-only"),  # everything else lost in the incident
    ],
)
def test_anything_of_a_site_makes_a_site(tmp_path: Path, layout: dict[str, str]) -> None:
    for relative, text in layout.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text)
    site = load_site(tmp_path)
    assert looks_like_a_site(site)
    assert require_site(site) is site


def test_custom_paths_make_a_site_only_through_recovery_toml(tmp_path: Path) -> None:
    """The category paths recovery.toml declares count, the default ones it replaces do not."""
    (tmp_path / "recovery.toml").write_text('[paths]\nconfig = ["etc"]\n[backups]\ndir = "/nonexistent/vault"\n')
    assert looks_like_a_site(load_site(tmp_path))  # recovery.toml itself
    (tmp_path / "recovery.toml").unlink()
    (tmp_path / "etc").mkdir()
    assert not looks_like_a_site(load_site(tmp_path))  # etc/ means nothing without the file that declares it


def test_an_empty_or_unrelated_directory_is_not_a_site(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("shopping list\n")
    (tmp_path / "notebooks").mkdir()
    with pytest.raises(NotASiteError) as raised:
        require_site(load_site(tmp_path))
    message = str(raised.value)
    assert f"{tmp_path} is not a site" in message
    assert "no recovery.toml" in message and "config/, state/, data/, backups/" in message
    assert "--site DIR" in message and "$RECOVERY_SITE" in message
    assert isinstance(raised.value, SiteError)  # callers catching SiteError keep working
    assert raised.value.exit_code == 2


def test_a_valid_recovery_toml_loads_as_usual(sandbox: Path) -> None:
    fallback = load_site_or_defaults(sandbox)
    assert fallback.problem is None and fallback.written_backup_dir is None
    assert fallback.site == load_site(sandbox)
    assert fallback.warning(fallback.site.backup_dir, False) == ""


def test_a_malformed_recovery_toml_gives_the_defaults_and_the_problem(sandbox: Path) -> None:
    (sandbox / "recovery.toml").write_text('[site]\nname = "x"\n[backups]\nmax_age_hours = "24h"\n')
    with pytest.raises(SiteConfigError):
        load_site(sandbox)  # every other command still refuses
    fallback = load_site_or_defaults(sandbox)
    assert fallback.site.root == sandbox.resolve() and fallback.site.config_source is None
    assert fallback.site.backup_dir == sandbox.resolve() / "backups"
    assert fallback.problem is not None and fallback.problem.line == 4
    warning = fallback.warning(fallback.site.backup_dir, False)
    assert f"{sandbox.resolve() / 'recovery.toml'}:4:" in warning and "max_age_hours" in warning
    assert "DEFAULT settings" in warning and str(sandbox.resolve() / "backups") in warning
    assert "recovery restore latest --settings" in warning
    assert "--backup-dir" not in warning  # the file sets no other backup directory


@pytest.mark.parametrize(
    "text, expected",
    [
        pytest.param('[backups]\ndir = "/srv/vault"\nmax_age_hours = "x"\n', ("/srv/vault", 2), id="schema-error"),
        pytest.param("[backups]\ndir = '/srv/vault'\n[paths\n", ("/srv/vault", 2), id="syntax-error-later"),
        pytest.param('[site]\nname = "a"\n\n[backups]\n  dir="vault" # here\n[x', ("vault", 5), id="relative"),
        pytest.param('[backups]\nmax_age_hours = 1\n[paths]\ndir = "x"\n[y', None, id="dir-of-another-table"),
        pytest.param("[backups\n", None, id="no-dir"),
        pytest.param('[backups]\ndir = ""\n', None, id="empty-dir"),
    ],
)
def test_the_backup_dir_a_broken_file_sets_is_found(
    tmp_path: Path, text: str, expected: tuple[str, int] | None
) -> None:
    (tmp_path / "recovery.toml").write_text(text)
    assert written_backup_dir(tmp_path / "recovery.toml") == expected


def test_the_warning_points_at_the_backup_dir_the_broken_file_sets(tmp_path: Path) -> None:
    (tmp_path / "recovery.toml").write_text('[backups]\ndir = "vault"\nmax_age_hourz = 1\n')
    fallback = load_site_or_defaults(tmp_path)
    warning = fallback.warning(fallback.site.backup_dir, False)
    assert "[backups] dir = 'vault' (line 2)" in warning
    assert f"--backup-dir {tmp_path.resolve() / 'vault'}" in warning
    # Told the directory (--backup-dir), the warning names it and stops suggesting it.
    given = fallback.warning(tmp_path / "vault", True)
    assert f"backups in {tmp_path / 'vault'} (--backup-dir)" in given and "Run the command again" not in given


def test_a_missing_site_still_raises(tmp_path: Path) -> None:
    with pytest.raises(SiteError, match="does not exist"):
        load_site_or_defaults(tmp_path / "nowhere")


def test_site_from_text_checks_a_copy_like_the_file(sandbox: Path) -> None:
    raw = (sandbox / "recovery.toml").read_bytes()
    assert site_from_text(sandbox.resolve(), raw) == load_site(sandbox)
    assert site_from_text(sandbox.resolve(), raw.replace(b"\n", b"\r\n")).name == load_site(sandbox).name
    for broken, line in ((b"[site\n", 1), (b'[backups]\nmax_age_hours = "1"\n', 2)):
        with pytest.raises(SiteConfigError) as raised:
            site_from_text(sandbox.resolve(), broken)
        assert raised.value.line == line and raised.value.path == str(sandbox.resolve() / "recovery.toml")
    with pytest.raises(SiteConfigError, match="not UTF-8"):
        site_from_text(sandbox.resolve(), b"\xff\xfe[site]\n")
