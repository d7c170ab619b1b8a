"""Copies of the session's sandbox template, each with a replica and a schedule of its own.

A sandbox's recovery.toml names its default file:// replica beside it (``<site>-offsite``); a copy
that kept the template's URL would push into, and restore from, one store shared by every test. Its
``[schedule] systemd_dir`` is ``../<site>-units``: the copy gets its own, with its schedule installed
there as `recovery sandbox create` installs it (Procedure D confirms what is really installed).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from recovery_lib.sandbox.destination import replica_dir, units_dir_name
from recovery_lib.schedule import install
from recovery_lib.site.config import load_site


def copy_site(template: Path, where: Path) -> Path:
    """A copy of the sandbox ``template`` at ``where`` whose replica is ``<where>-offsite`` and whose
    schedule is installed in ``<where>-units``."""
    shutil.copytree(template, where, symlinks=True)
    config = where / "recovery.toml"
    text = config.read_text()
    old, new = replica_dir(template).as_uri(), replica_dir(where).as_uri()
    assert f'url = "{old}"' in text, "the sandbox's recovery.toml should name its default replica"
    text = text.replace(f'url = "{old}"', f'url = "{new}"')
    units = f'systemd_dir = "../{units_dir_name(template)}"'
    assert units in text, "the sandbox's recovery.toml should name its unit directory beside it"
    config.write_text(text.replace(units, f'systemd_dir = "../{units_dir_name(where)}"'))
    install(load_site(where), "systemd")
    return where


def unmonitor_process(site: Path) -> None:
    """Drop the [process] table from recovery.toml: no trading process runs in these tests, and a
    process that is not monitored is healthy, so a recovered site can end fully healthy."""
    toml = site / "recovery.toml"
    kept, skipping = [], False
    for line in toml.read_text().splitlines(keepends=True):
        if line.strip().startswith("["):
            skipping = line.strip() == "[process]"
        if not skipping:
            kept.append(line)
    toml.write_text("".join(kept))
