"""Prometheus metrics in node_exporter's textfile-collector format, written after every scheduled run.

``write_metrics(site, outcome)`` is called when a ``backup create``, ``backup verify``, ``prune``,
``replica push`` or ``drill run`` ends (``recovery_lib.cli.operations``). Each kind of run owns one
file, ``<[metrics] textfile_dir>/recovery_<site>_<kind>.prom``, rewritten whole each time: where a
durable source exists (the backup directory, the push records, the drill records) the values are
recomputed from it, so every file is a complete snapshot and a write that was missed heals at the
next. A run of any kind also writes the backup, verify, push and drill files when they are missing (from
the backup directory, the push and drill records; verify as never run), so an alert on age fires for a
job that never ran. Files are replaced atomically (temp file, fsync, rename: node_exporter never reads half a file)
and readable by everyone (0644). The metrics are specified in ``docs/metrics.md``; the alert rules
that read them are ``docs/alerts.yml``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from recovery_lib.alerts.events import Outcome
from recovery_lib.errors import SiteError
from recovery_lib.fsops.atomic import atomic_write_bytes
from recovery_lib.metrics import collect, drills
from recovery_lib.metrics.families import BACKUP, BY_NAME, DRILL, PRUNE, PUSH, VERIFY, Sample, families_of
from recovery_lib.site.config import Site

log = logging.getLogger(__name__)

MODE = 0o644  # node_exporter usually runs as its own user: it must be able to read the file
Previous = Callable[[str], list[Sample]]  # the samples of one of our files as it is now (for carry-forward)


def textfile_path(directory: Path, site_name: str, file: str) -> Path:
    """``<directory>/recovery_<site>_<file>.prom``: the site's name made safe for a file name."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", site_name).strip("._") or "site"
    return directory / f"recovery_{slug}_{file}.prom"


def write_metrics(site: Site, outcome: Outcome) -> Path | None:
    """Write the metrics files ``outcome`` changes to ``[metrics] textfile_dir``, and the backup, verify,
    push and drill files that are missing; returns the file of the outcome's own kind, or None when no
    directory is configured or the kind writes none (an escalation, a dry-run prune).

    A directory that is missing or unwritable raises :class:`SiteError` naming ``[metrics] textfile_dir``
    and the directory; the caller logs it and the run's own outcome stands. One file that cannot be
    written does not stop the others.
    """
    directory = site.ops.metrics_dir
    if directory is None:
        return None

    def previous(file: str) -> list[Sample]:
        return read_samples(textfile_path(directory, site.name, file), site.name)

    own = _plan(site, outcome, previous)
    planned = {**own, **_missing(site, outcome, directory, own)}
    if not planned:
        return None
    if not directory.is_dir():
        raise SiteError(
            f"[metrics] textfile_dir = {directory} ({_config(site)}) is not a directory; no metrics were written. "
            "Create it (it is node_exporter's --collector.textfile.directory) or change the setting."
        )
    problems = []
    for file, build in planned.items():
        path = textfile_path(directory, site.name, file)
        try:
            data = render(site.name, file, build())
        except (ValueError, KeyError, TypeError, AttributeError) as exc:  # a bug: one file lost, not the others
            log.exception("metrics file %s could not be computed", path)
            problems.append(f"{path.name} could not be computed ({type(exc).__name__}: {exc}; a bug)")
            continue
        try:
            atomic_write_bytes(path, data, mode=MODE)
        except OSError as exc:
            problems.append(f"cannot write {path}: {exc.strerror or exc}")
            continue
        log.debug("metrics written to %s", path)
    if problems:
        raise SiteError(
            f"[metrics] textfile_dir = {directory} ({_config(site)}): {'; '.join(problems)}. Make the directory "
            "writable by the user running recovery, or change the setting."
        )
    return textfile_path(directory, site.name, next(iter(own))) if own else None


def _plan(site: Site, outcome: Outcome, previous: Previous) -> dict[str, Callable[[], list[Sample]]]:
    """The files to write for ``outcome``, the kind's own first, each with what computes its samples."""
    kind = outcome.kind
    if kind == BACKUP:
        files = {BACKUP: lambda: collect.backup_samples(site, outcome)}
        if collect.pushes_in(outcome):  # `backup create` pushed to the replicas: their file is out of date
            files[PUSH] = lambda: collect.push_samples(site, previous(PUSH))
        return files
    if kind == VERIFY:
        return {VERIFY: lambda: collect.verify_samples(outcome, previous(VERIFY))}
    if kind == PRUNE:
        if collect.is_dry_run(site, outcome):
            return {}  # a plan shown to a person changed nothing
        return {PRUNE: lambda: collect.prune_samples(outcome, previous(PRUNE))}
    if kind == PUSH:
        return {PUSH: lambda: collect.push_samples(site, previous(PUSH))}
    if kind == DRILL:
        return {DRILL: lambda: drills.drill_samples(site, outcome)}
    return {}  # escalations (and anything new) have no metrics


def _missing(
    site: Site, outcome: Outcome, directory: Path, planned: dict[str, Callable[[], list[Sample]]]
) -> dict[str, Callable[[], list[Sample]]]:
    """The backup, verify, push and drill files not written yet, each computed from its durable source
    (verify: never run). Without them a job that never ran has no series, and no alert on its age fires."""
    builders: dict[str, Callable[[], list[Sample]]] = {
        BACKUP: lambda: collect.backup_samples(site, outcome),
        VERIFY: lambda: collect.verify_samples(outcome, []),
        PUSH: lambda: collect.push_samples(site, []),
        DRILL: lambda: drills.drill_samples(site, outcome),
    }
    return {
        file: build
        for file, build in builders.items()
        if file not in planned and not textfile_path(directory, site.name, file).exists()
    }


def render(site_name: str, file: str, samples: Iterable[Sample]) -> bytes:
    """The text format of ``samples`` (families in the table's order, each with HELP and TYPE).

    A sample of a family not in the table or not of this file is a bug: ValueError.
    """
    samples = list(samples)
    for sample in samples:
        family = BY_NAME.get(sample.name)
        if family is None or family.file != file:
            raise ValueError(f"metric {sample.name!r} is not a family of the {file} file (metrics/families.py)")
    registry = CollectorRegistry(auto_describe=True)
    for family in families_of(file):
        mine = [sample for sample in samples if sample.name == family.name]
        if not mine:
            continue
        gauge = Gauge(family.name, family.help, family.labels, registry=registry)
        for sample in mine:
            gauge.labels(site=site_name, **sample.labels).set(sample.value)
    return generate_latest(registry)


def read_samples(path: Path, site_name: str) -> list[Sample]:
    """The samples of ``site_name`` in one of our files as it is now; [] when there is none or it cannot
    be parsed (logged: the values carried forward from it are then unknown)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except OSError as exc:
        log.warning("metrics file %s is unreadable (%s); values it carried are unknown", path, exc)
        return []
    try:
        found = []
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = dict(sample.labels)
                if sample.name in BY_NAME and labels.pop("site", None) == site_name:
                    found.append(Sample(sample.name, float(sample.value), labels))
        return found
    except ValueError as exc:
        log.warning("metrics file %s cannot be parsed (%s); values it carried are unknown", path, exc)
        return []


def _config(site: Site) -> str:
    return str(site.config_source) if site.config_source else f"{site.root}/recovery.toml"


__all__ = ["MODE", "read_samples", "render", "textfile_path", "write_metrics"]
