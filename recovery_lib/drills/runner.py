"""The drill runner: a fresh sandbox, a scheduled backup pushed to its replicas (as `recovery backup
create` pushes), some trading, a fault, then the notebooks headless with papermill (triage, the
procedures triage names, verification, post-recovery), each kept with its HTML as the drill's
incident record.

When the fault loses the host (``full/host_lost``), the runner provisions a new one (``<site>-newhost``:
recovery.toml, the sandbox marker and the exchange, see :mod:`.lost_host`) and everything after the
fault (the notebooks, the trades-lost count, stopping the system, the journal) uses the new host.

A procedure or the verification that fails its criteria ends its notebook with an error: that is
the drill's finding, not a crash of the drill, so the remaining notebooks still run and the
post-recovery notebook documents the failure. The drill recovered only when every procedure
succeeded and verification passed; trades lost are counted against the exchange's own history.

Each notebook runs in a kernel of its own, started while the notebook before it runs (the first
while the sandbox trades: :class:`~.kernels.KernelPool`), and its HTML is written in a worker thread
while the next one runs (:mod:`.exports`); the drill returns once every HTML file is complete, and
raises the first export that failed once everything is stopped.

Everything a drill starts (the sandbox's trading process, notebook kernels) is stopped when it
ends, whether it recovered, failed or was interrupted.
"""

from __future__ import annotations

import functools
import importlib
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from recovery_lib import catalog
from recovery_lib.catalog import DRILLS, by_drill
from recovery_lib.clock import now
from recovery_lib.drills.exports import BackgroundExports
from recovery_lib.drills.history import JOURNAL_COPY, drill_row
from recovery_lib.drills.injectors import ESCALATION_VARIANTS, VARIANTS, chosen_variant, inject
from recovery_lib.drills.kernels import KernelPool, execute_in, quiet_kernels
from recovery_lib.drills.lost_host import new_host_root
from recovery_lib.drills.midway import Midway, MidwayNotTaken, chosen_midway
from recovery_lib.drills.result import DrillResult
from recovery_lib.errors import RecoveryError, SiteError
from recovery_lib.fsops.atomic import atomic_write_bytes
from recovery_lib.manager import RecoveryManager
from recovery_lib.rendering import export_html
from recovery_lib.runbook.notebook import APPROVAL_ACTIONS
from recovery_lib.runbook.records import read_notebook
from recovery_lib.sandbox import SandboxSpec, create_sandbox
from recovery_lib.site.config import Site, load_site, require_sandbox
from recovery_lib.site.process import consistent_view, process_status, start_system, stop_system
from recovery_lib.trading.exchange import get_exchange_client
from recovery_lib.trading.replay import plan_replay


def _find_notebooks() -> Path:
    """The procedure notebooks: the copy a wheel carries inside the package (recovery_lib/notebooks/),
    else, in an editable or source install, the checkout's notebooks/ beside the package, so a
    notebook edited in JupyterLab is the one the next drill runs."""
    package = Path(str(resources.files("recovery_lib")))
    packaged = package / "notebooks"
    return packaged if packaged.is_dir() else package.parent / "notebooks"


NOTEBOOK_DIR = _find_notebooks()
TRIAGE = catalog.notebook(catalog.TRIAGE)
VERIFY = catalog.notebook(catalog.VERIFICATION)
POST = catalog.notebook(catalog.POST_RECOVERY)
APPROVALS = list(APPROVAL_ACTIONS)  # a drill approves everything the gate can ask for
Say = Callable[[str], None]


def _notebooks_dir() -> Path:
    if not NOTEBOOK_DIR.is_dir():
        raise FileNotFoundError(f"procedure notebooks not found in {NOTEBOOK_DIR}")
    return NOTEBOOK_DIR


def _execute(
    kernels: KernelPool, name: str, out: Path, parameters: dict[str, Any], cwd: Path, then: bool = True
) -> tuple[Path, str | None]:
    """Run one notebook with papermill in a kernel of its own, in ``cwd``; returns the executed path and
    the error, if any (a notebook that raised, e.g. its outcome cell on a failed criterion); a kernel
    that died raises. ``then``: another notebook follows, so its kernel starts while this one runs."""
    import papermill

    kernel = kernels.take(cwd)
    try:
        if then:
            kernels.prepare(cwd)
        with quiet_kernels() as log:
            try:
                execute_in(kernel, _notebooks_dir() / name, out, parameters)
            except papermill.PapermillExecutionError as exc:
                return out, f"{name}: cell {exc.exec_count}: {exc.ename}: {exc.evalue}"
            except Exception as exc:  # the kernel itself failed: its log says why
                said = (kernel.tail() + _tail(log))[-2000:]
                raise _DrillFailure(f"{name}: {type(exc).__name__}: {exc}\n{said}") from exc
    finally:
        kernel.stop()
    return out, None


def _trade_for(seconds: float) -> None:
    """Let the sandbox trade for ``seconds``, loading meanwhile what runs the notebooks and writes their
    HTML (papermill, nbconvert: over a second, once per process), so that no notebook waits for it."""
    deadline = time.monotonic() + seconds
    for module in ("papermill", "nbconvert"):
        importlib.import_module(module)
    time.sleep(max(0.0, deadline - time.monotonic()))


def _html(notebook: Path) -> None:
    notebook.with_suffix(".html").write_text(export_html(notebook), encoding="utf-8")


def _last_trade_id(site: Site) -> int:
    import json

    try:
        return int(json.loads(site.path("state/session.json").read_text())["last_trade_id"])
    except (OSError, ValueError, KeyError):
        return 0


def _trades_lost(site: Site) -> int | None:
    """Trades the exchange knows that the site's ledger lacks, now: what the drill lost for good
    (None when the site has no exchange to ask)."""
    if site.exchange.client == "none":
        return None
    # The restarted trading process writes ledger and exchange together: hold its lock (shared) across
    # both reads, or a fill made between them would count as lost.
    with consistent_view(site):
        return plan_replay(site, get_exchange_client(site)).missing_before


def run_drill(
    scenario: str,
    outputs: Path,
    site_dir: Path | None = None,
    seed: int = 0,
    trading_s: float = 1.0,
    say: Say = print,
    variant: str | None = None,
    midway: bool | str = False,
) -> DrillResult:
    """One drill of ``scenario`` (config, data, full, backup); see the module docstring. ``variant``
    picks the fault (see ``injectors.VARIANTS``); by default ``seed`` chooses one.

    ``midway``: the procedure first halts at a fault injected in the middle of it and is then resumed
    (:mod:`.midway`); True lets ``seed`` choose the fault among ``midway.MIDWAY_FAULTS``, a name picks it.
    The drill recovers only if the resumed run does.

    A ``site_dir`` that is missing, malformed or not a sandbox raises :class:`SiteError` before
    anything is started or written.
    """
    if scenario not in DRILLS:
        raise ValueError(f"unknown scenario {scenario!r}; choose from {', '.join(DRILLS)} or all")
    expected = by_drill(scenario).procedure
    known = (*VARIANTS[scenario], *ESCALATION_VARIANTS.get(scenario, ()))
    if variant is not None and variant not in known:
        raise ValueError(f"unknown {scenario} fault {variant!r}; choose from {', '.join(known)}")
    midway_fault = chosen_midway(scenario, chosen_variant(scenario, variant, seed), midway, seed)  # raises first
    if site_dir is not None:  # before anything is started, written or backed up
        require_sandbox(load_site(site_dir))
        if chosen_variant(scenario, variant, seed) == "host_lost":
            _require_room_for_new_host(load_site(site_dir).root)
    began = time.monotonic()
    run_id = f"{now():%Y%m%dT%H%M%SZ}-{scenario}-{secrets.token_hex(2)}"
    run_dir = Path(outputs).resolve() / run_id
    run_dir.mkdir(parents=True)
    workdir = Path(tempfile.mkdtemp(prefix="drill-")) if site_dir is None else None
    root = site_dir or workdir / "site"
    result = DrillResult(run_id=run_id, scenario=scenario, fault=None, run_dir=run_dir)
    site = None
    kernels = KernelPool()
    exports = BackgroundExports(_html)
    failed_exports: list[tuple[Path, BaseException]] = []
    try:
        if site_dir is None:
            create_sandbox(root, SandboxSpec(seed=seed))
        if chosen_variant(scenario, variant, seed) != "host_lost":  # that one recovers into a new directory
            kernels.prepare(root)  # triage's kernel starts up while the sandbox trades
        site = load_site(root)
        started = start_system(site)
        say(f"[{run_id}] sandbox ready, trading process: {started.message}")
        manager = RecoveryManager(site=site)
        scheduled = manager.create_backup(description="Scheduled daily backup", tags=["daily", "scheduled"])
        # Pushed to the replicas as `recovery backup create` pushes; a failed push is recorded, not raised.
        setup = [f"scheduled backup {scheduled} taken", *(f"pushed: {o.summary()}" for o in manager.last_push)]
        say(f"[{run_id}] {'; '.join(setup)}")
        _trade_for(trading_s)  # trades made after the restore point are what a restore loses
        trades_at_fault = _last_trade_id(site)
        result.fault = inject(site, scenario, variant=variant, seed=seed)
        say(f"[{run_id}] injected {scenario}/{result.fault.variant}: {'; '.join(result.fault.actions)}")
        if result.fault.lost_host is not None:  # the procedure recovers into a new host
            moved = result.fault.lost_host.provision(new_host_root(root))
            result.fault.actions += moved
            root = new_host_root(root)
            site = load_site(root)
            say(f"[{run_id}] {'; '.join(moved)}")
        target = site.targets[expected]
        drill = {
            "run_id": run_id,
            "scenario": scenario,
            "variant": result.fault.variant,
            "fault_at": result.fault.fault_at,
            "actions": [*setup, *result.fault.actions],
            "expected_procedure": expected,
            "trades_at_fault": trades_at_fault,
            "rto_target_s": target.rto_minutes * 60,
            "rpo_target_s": target.rpo_hours * 3600,
        }
        fault_midway = Midway.of(midway_fault, scenario) if midway_fault else None
        if fault_midway is not None:
            drill["midway"] = fault_midway.record()
        common = {
            "site": str(site.root),
            "interactive": False,
            "kind": "drill",
            "incident_id": run_id,
            "approve": APPROVALS,
            "operator": "drill-runner",
            "drill": drill,
        }
        path, error = _execute(kernels, TRIAGE, run_dir / f"01_{TRIAGE}", common, root)
        result.notebooks.append(path)
        exports.submit(path)
        if error:
            raise _DrillFailure(error)
        triage = read_notebook(path).get("triage", {})
        result.triage_procedure = triage.get("procedure")
        result.procedures = list(triage.get("procedures") or [result.triage_procedure])
        say(f"[{run_id}] triage: scenario {triage.get('scenario')} -> procedures {', '.join(result.procedures)}")
        if result.triage_procedure != expected:
            raise _DrillFailure(
                f"triage named procedure {result.triage_procedure}, expected {expected} for the {scenario} scenario"
            )
        failures = []
        for letter in result.procedures:
            name = catalog.notebook(letter)
            if fault_midway is not None and letter == expected:  # halts midway, then resumed
                run = functools.partial(_procedure, kernels, exports, result, name, root=root)
                error = fault_midway.halt_and_resume(run, common, site, lambda line: say(f"[{run_id}] {line}"))
            else:
                _, error = _procedure(kernels, exports, result, name, common, root)
                say(f"[{run_id}] ran {name}: {'FAILED: ' + error if error else 'recovered'}")
            failures += [error] if error else []
        result.trades_lost = _trades_lost(site)
        result.trades_replayed = sum(
            int((read_notebook(p).get("trades") or {}).get("recovered") or 0) for p in result.notebooks[1:]
        )
        drill["trades_lost"] = result.trades_lost
        drill["trades_replayed"] = result.trades_replayed
        number = len(result.notebooks) + 1
        path, error = _execute(kernels, VERIFY, run_dir / f"{number:02d}_{VERIFY}", common, root)
        result.notebooks.append(path)
        exports.submit(path)
        if error and not read_notebook(path).get("verification"):
            raise _DrillFailure(error)
        failures += [error] if error else []
        say(f"[{run_id}] ran {VERIFY}")
        records = {**common, "records": [str(p) for p in result.notebooks]}
        path, error = _execute(kernels, POST, run_dir / f"{number + 1:02d}_{POST}", records, root, then=False)
        result.notebooks.append(path)
        exports.submit(path)
        if error:
            raise _DrillFailure(error)
        row = drill_row(run_dir)
        result.outcome = row["outcome"] if row else "not_recovered"
        if result.outcome != "recovered":
            result.failure = (row or {}).get("failed_step") or "; ".join(failures) or "not recovered"
    except (_DrillFailure, MidwayNotTaken) as exc:
        result.failure = str(exc)
        say(f"[{run_id}] FAILED: {exc}")
    except (RecoveryError, OSError, ValueError) as exc:  # before or between notebooks: the drill failed
        result.failure = f"drill setup failed: {type(exc).__name__}: {exc}"
        say(f"[{run_id}] FAILED: {result.failure}")
    finally:
        _each(
            lambda: _stop(site, run_id, run_dir, result),
            kernels.close,  # the spare kernel no notebook took
            lambda: failed_exports.extend(exports.finish(result.notebooks)),  # the HTML is complete when we return
            lambda: _leave(workdir, site, result, say),
        )
        result.seconds = round(time.monotonic() - began, 2)
    if failed_exports:  # the record lacks a page: never a silent gap (raised once everything is stopped)
        path, error = failed_exports[0]
        error.add_note(f"writing {path.with_suffix('.html')} failed; {len(failed_exports)} HTML export(s) failed")
        raise error
    return result


def _procedure(
    kernels: KernelPool,
    exports: BackgroundExports,
    result: DrillResult,
    name: str,
    parameters: dict[str, Any],
    root: Path,
    out_name: str | None = None,
) -> tuple[Path, str | None]:
    """Run one procedure notebook as the drill's next record (``out_name``: its file name, default the
    notebook's); returns its path and error (its verdict failed), raises when it crashed before its verdict."""
    path = result.run_dir / f"{len(result.notebooks) + 1:02d}_{out_name or name}"
    path, error = _execute(kernels, name, path, parameters, root)
    result.notebooks.append(path)
    exports.submit(path)
    if error and not read_notebook(path).get("outcome"):
        raise _DrillFailure(error)  # it crashed before its verdict: not a finding of the procedure
    return path, error


def _each(*steps: Callable[[], object]) -> None:
    """Run every step, each even when one before it raised (Ctrl-C included); then raise the first."""
    first: BaseException | None = None
    for step in steps:
        try:
            step()
        except BaseException as exc:  # noqa: BLE001 - re-raised below, once every step has run
            first = first or exc
    if first is not None:
        raise first


def _stop(site: Site | None, run_id: str, run_dir: Path, result: DrillResult) -> None:
    """Stop the trading process the drill started, and keep the incident journal beside the notebooks."""
    if not result.notebooks and run_dir.exists() and not any(run_dir.iterdir()):
        run_dir.rmdir()  # no record was written; the failure is in the result
    if site is not None and process_status(site).running:
        stop_system(site)
    if site is not None and result.notebooks:
        _keep_journal(site, run_id, run_dir)


def _leave(workdir: Path | None, site: Site | None, result: DrillResult, say: Say) -> None:
    """Remove the sandbox the drill made, or say where a host-lost drill on ``--site`` left it."""
    if workdir is not None:
        _remove(workdir)
    elif site is not None and result.fault is not None and result.fault.lost_host is not None:
        say(f"[{result.run_id}] the sandbox now lives on its new host: {site.root}")


def _require_room_for_new_host(root: Path) -> None:
    """A host-lost drill on ``--site`` provisions ``<site>-newhost``: it must be new or empty."""
    new_root = new_host_root(root)
    if os.path.lexists(new_root) and (not new_root.is_dir() or any(new_root.iterdir())):
        raise SiteError(
            f"the host-lost drill recovers {root} into {new_root}, which is not empty; remove it first "
            "(an earlier drill's new host?)"
        )


def _keep_journal(site: Site, incident_id: str, run_dir: Path) -> None:
    """The incident journal beside the notebooks: what a notebook that was not saved (a killed kernel)
    recorded is still there for the records page (``JOURNAL_COPY``; ``drill_row`` reads it)."""
    journal = site.records_dir / f"{incident_id}.jsonl"
    if journal.is_file():
        atomic_write_bytes(run_dir / JOURNAL_COPY, journal.read_bytes())


class _DrillFailure(Exception):
    """A drill step failed; the executed notebook holds the details."""


def _remove(path: Path) -> None:
    for folder, dirs, _ in os.walk(path):
        for name in dirs:
            full = os.path.join(folder, name)
            if not os.path.islink(full):
                os.chmod(full, 0o755)
    shutil.rmtree(path, ignore_errors=True)


def _tail(log: Any) -> str:
    log.seek(0)  # the kernels wrote through the shared descriptor: read from the start
    return log.read()[-2000:]
