"""Helpers of the restore tests: snapshots of the site, files of a category, backup paths, a broken config."""

from __future__ import annotations

from pathlib import Path

from snapshots import tree

from recovery_lib.manager import PRE_RECOVERY_TAG, RecoveryManager

CATEGORIES = ("config", "state", "data")


def snapshot(root: Path, exclude: tuple[str, ...] = (), dir_mtimes: bool = False) -> dict[str, tuple]:
    """Every entry under ``root`` (symlinks never followed): files with bytes, mode and mtime; with
    ``dir_mtimes``, directories (``root`` itself included) with their mtime too.

    The backup directory's lock file is only noted as present: taking the lock rewrites it.
    """
    return tree(
        root,
        exclude,
        mtimes=("file", "dir") if dir_mtimes else ("file",),
        root_entry=dir_mtimes,
        volatile=("backups/.lock",),
    )


def site_state(site: Path) -> dict[str, tuple]:
    """The site without its backup directory (a restore adds a pre-recovery backup there)."""
    return snapshot(site, exclude=("backups",))


def files_under(root: Path, top: str) -> dict[str, bytes]:
    """``{site-relative path: bytes}`` of the regular files below ``root/top``."""
    base = root / top
    if not base.is_dir():
        return {}
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(base.rglob("*")) if p.is_file()}


def leftovers(site: Path) -> list[str]:
    """Restore artifacts left in the site root: staging/old trees, the journal (or its temp file)."""
    return sorted(
        p.name
        for p in site.iterdir()
        if p.name.startswith((".recovery-", "..recovery-")) and p.name != ".recovery-sandbox.json"
    )


def backup_path(manager: RecoveryManager, backup_id: str) -> Path:
    return manager._get_backup_dir(backup_id)


def corrupt_config(site: Path) -> None:
    (site / "config/config.toml").write_text('[trading\nstrategy = "unterminated\n')


def pre_recovery_ids(site: Path) -> list[str]:
    return [m.backup_id for m in RecoveryManager(site=site).list_backups(tags=[PRE_RECOVERY_TAG])]
