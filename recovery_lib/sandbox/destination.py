"""Where a sandbox goes: its directory (new, empty, or with ``--force`` a sandbox to replace), the
directory of its default replica beside it, and the directory of its schedule's units beside it.

The sandbox's ``recovery.toml`` names a ``file://`` replica at ``<DIR>-offsite``: a sibling, outside
the site, so a drill that destroys the site and its local backups ("the host is gone") still finds
its backups there. The replica directory is created by the first push, never here. Its
``[schedule] systemd_dir`` is ``<DIR>-units``, also a sibling: a directory systemd does not read, so a
sandbox's timers are really installed (Procedure D confirms them) and yet never run by themselves.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from recovery_lib.errors import SiteError
from recovery_lib.site.config import SANDBOX_MARKER

REPLICA_NAME = "offsite"
REPLICA_SUFFIX = "-offsite"
UNITS_SUFFIX = "-units"  # <DIR>-units: the sandbox's systemd units (recovery schedule install --systemd)
REPLICA_CONFIG = "config.json"  # the first file a push writes into a replica (docs/replica-format.md)


def replica_dir(dest: str | os.PathLike[str]) -> Path:
    """The directory of the sandbox's default replica: ``<dest>-offsite``, beside the site."""
    dest = Path(dest).expanduser().absolute()
    return dest.parent / f"{dest.name}{REPLICA_SUFFIX}"


def units_dir_name(dest: str | os.PathLike[str]) -> str:
    """The name of the sandbox's unit directory, ``<DIR>-units``, beside the site (recovery.toml says
    ``../<DIR>-units``: relative, so a copy of the site renamed alike keeps its own)."""
    return f"{Path(dest).expanduser().absolute().name}{UNITS_SUFFIX}"


def _check_parents(dest: Path) -> None:
    """The nearest existing ancestor of ``dest`` must be a directory (the sandbox is created under it)."""
    for parent in dest.parents:
        if parent.exists():
            if not parent.is_dir():
                raise SiteError(
                    f"cannot create the sandbox at {dest}: {parent} is a file, not a directory. "
                    "Choose another path for the sandbox."
                )
            return


def prepare_destination(dest: Path, force: bool) -> None:
    """Refuse a destination the sandbox may not take (see the module docstring); change nothing."""
    _check_parents(dest)
    _check_site_dir(dest, force)
    _check_replica_dir(dest, force)


def _check_site_dir(dest: Path, force: bool) -> None:
    if not dest.exists():
        return
    if not dest.is_dir():
        raise SiteError(f"{dest} exists and is not a directory; choose another path for the sandbox.")
    if not any(dest.iterdir()):
        return
    if not (dest / SANDBOX_MARKER).is_file():
        raise SiteError(
            f"{dest} is not empty and is not a sandbox (no {SANDBOX_MARKER}); refusing to replace it. "
            "Choose an empty or new directory."
        )
    if not force:
        raise SiteError(f"{dest} already holds a sandbox; pass --force to replace it, or choose another path.")


def _check_replica_dir(dest: Path, force: bool) -> None:
    """A new sandbox starts with an empty replica: an earlier sandbox's replica at ``<dest>-offsite`` is
    replaced only with ``force``; anything else there is never touched."""
    offsite = replica_dir(dest)
    if not os.path.lexists(offsite) or (offsite.is_dir() and not offsite.is_symlink() and not any(offsite.iterdir())):
        return
    if offsite.is_symlink() or not offsite.is_dir() or not (offsite / REPLICA_CONFIG).is_file():
        raise SiteError(
            f"{offsite} exists and is not a replica; the sandbox at {dest} keeps its replica there. "
            "Move it away or choose another path for the sandbox."
        )
    if not force:
        raise SiteError(
            f"{offsite} holds the replica of an earlier sandbox (backups of another site); pass --force to "
            "replace it along with the sandbox, or remove it."
        )


def remove_old_replica(dest: Path) -> None:
    """Empty the replica directory an earlier sandbox at ``dest`` left (checked by :func:`prepare_destination`)."""
    offsite = replica_dir(dest)
    if not offsite.is_dir() or offsite.is_symlink():
        return
    os.chmod(offsite, 0o755)
    for folder, dirs, _ in os.walk(offsite):
        for name in dirs:
            os.chmod(os.path.join(folder, name), 0o755)  # a replica's folders may be read-only
    shutil.rmtree(offsite)
