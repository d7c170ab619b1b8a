"""``recovery site``: the settings in force for a site (recovery.toml merged with the defaults)."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from typing import Any, TextIO

from recovery_lib.cli.common import SiteOption
from recovery_lib.clock import now
from recovery_lib.errors import EXIT_OK
from recovery_lib.site.config import load_site
from recovery_lib.site.operations import describe


def add_commands(commands: Any, site_option: SiteOption) -> None:
    """Register ``site``."""
    site = commands.add_parser(
        "site",
        help="show the site's resolved settings (recovery.toml merged with defaults)",
        description="Print the settings in force for the site: recovery.toml merged with the defaults.",
    )
    site_option(site)
    site.set_defaults(handler=cmd_site)


def cmd_site(args: argparse.Namespace, out: TextIO) -> int:
    """``recovery site``: the settings in force, as JSON."""
    site = load_site(args.site)
    settings: dict[str, Any] = asdict(site)
    settings["ops"] = describe(site.ops, site.root, now())
    settings["backup_dir"] = str(site.backup_dir)
    settings["is_sandbox"] = site.is_sandbox
    out.write(json.dumps(settings, indent=2, default=str) + "\n")
    return EXIT_OK
