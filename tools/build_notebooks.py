"""Write the procedure notebooks in notebooks/ from the cell lists below.

The notebooks are committed (without outputs); this script is how they are changed, so every
notebook keeps the same conventions: a `parameters` cell, a validation cell, one runbook step per
code cell tagged `step:<name>` with its title in a markdown cell above. tests/test_notebooks.py
checks that the committed notebooks equal what this script writes.

Usage: python tools/build_notebooks.py [--check]
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"

COMMON_PARAMETERS = """\
site: str = ""  # site directory; empty means $RECOVERY_SITE or the current directory
interactive: bool = True  # True: a person approves in widgets; False (papermill): approvals come from `approve`
approve: list[str] = []  # headless: any of restore, repair, backup, stop_system, start_system; ignored if interactive
operator: str = ""  # who runs this; empty means the logged-in user
incident_id: str = ""  # the incident's id; empty: the open incident of this site (00 starts a new one)
kind: str = "incident"  # incident or drill
drill: dict = {}  # set by the drill runner: the injected fault, its time and the targets"""

BACKUP_PARAMETER = (
    '\nbackup_id: str = "latest"  # backup to restore from; latest: the newest that verifies and fixes the fault'
)
REMEDY_PARAMETER = (
    '\nremedy: str = "least_loss"  # least_loss (the option that loses least), repair (in place) or restore'
)

VALIDATE = """\
from IPython.display import display

from recovery_lib.runbook import procedures as steps
from recovery_lib.runbook.notebook import start

run = start(globals(), procedure="{procedure}")  # checks every parameter before anything is read or written
run"""

HOW_TO = """
**How to run.** In JupyterLab run the cells one by one from the top; each says what it will do,
does it, and shows what it saw. Nothing destructive happens until you click **Approve** under the
plan. Headless (papermill), set `interactive=False` and list the approved actions in `approve`.
Edit only the parameters cell."""


def md(text: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_markdown_cell(text.strip())


def code(source: str, tag: str | None = None) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source.strip())
    if tag:
        cell.metadata["tags"] = [tag]
    return cell


def step(title: str, purpose: str, name: str, source: str) -> list[nbformat.NotebookNode]:
    return [md(f"## {title}\n\n{purpose}"), code(source, f"step:{name}")]


def header(title: str, intro: str, procedure: str, with_backup: bool, extra: str = "") -> list[nbformat.NotebookNode]:
    parameters = COMMON_PARAMETERS + (BACKUP_PARAMETER if with_backup else "") + extra
    return [
        md(f"# {title}\n\n{intro}\n{HOW_TO}"),
        code(parameters, "parameters"),
        md("### Check the parameters\n\nAn unknown, missing or wrongly typed parameter stops here."),
        code(VALIDATE.format(procedure=procedure), "validate"),
    ]


def closing_cells(criteria: str, title: str, escalation_arguments: str = "") -> list[nbformat.NotebookNode]:
    """Success criteria, escalation, and the outcome: the one verdict every procedure ends with."""
    return [
        *step(
            "Success criteria",
            f"The runbook's criteria for {title}, each pass or fail with its evidence.",
            "success_criteria",
            f"steps.finish(run, {criteria})",
        ),
        *step(
            "Escalation",
            "The runbook's escalation level for what this run saw, who to call, and what to do next. A failed "
            "criterion is level 2 at least.",
            "escalation",
            f"steps.escalation(run{escalation_arguments})",
        ),
        *step(
            "Outcome",
            "Recovered only if every success criterion passed. Otherwise this cell fails (papermill exits "
            "non-zero) and says why; trading runs now exactly when the outcome is success.",
            "outcome",
            "steps.conclude(run)",
        ),
    ]


def triage_notebook() -> list[nbformat.NotebookNode]:
    return [
        *header(
            "00 Detect and triage",
            "Runs the health checks and the detections of the runbook's four "
            "disaster scenarios, and names the procedure to run.",
            "triage",
            with_backup=False,
        ),
        *step(
            "Health checks",
            "Every registered health check against the site.",
            "health",
            'results = steps.check_health(run, "triage")\nsteps.health_table(results)',
        ),
        *step(
            "Scenario detection",
            "Scenario 1 config corruption -> A; 2 data loss -> B; 3 complete system "
            "failure -> C; 4 backup system failure -> D.",
            "detect",
            "triage = steps.detect(run, results)\nprint(triage.summary())\nsteps.backups_overview(run)",
        ),
    ]


def procedure_a() -> list[nbformat.NotebookNode]:
    return [
        *header(
            "Procedure A: Config Recovery",
            "**Time estimate:** 5-10 minutes. **Impact:** Medium, system restart required.",
            "A",
            with_backup=True,
        ),
        *step(
            "1. Stop the system",
            "Stops the trading process (the `[process] stop` command).",
            "stop_system",
            "steps.stop(run)",
        ),
        *step(
            "2. Verify backup availability",
            "Every backup with its age, size and verification status.",
            "backups",
            "steps.backups_overview(run)",
        ),
        *step(
            "3. Select recovery backup",
            "The most recent successful backup that verifies and holds the config "
            "(or the one in `backup_id`). In JupyterLab you may pick another below.",
            "select_backup",
            'choice = steps.choose_backup(run, backup_id, needs=("config",))\ndisplay(choice)\nchoice.widget',
        ),
        *step(
            "4. Dry-run restore",
            "Shows exactly what the restore would change, then asks for approval. Nothing is changed here.",
            "dry_run",
            "plan = steps.plan(run, choice, config=True)\ndisplay(plan)\n"
            'steps.approval(run, plan, then="5. Perform actual restore")',
        ),
        *step(
            "5. Perform actual restore",
            "Applies the approved plan: the current state is backed up first, "
            "the config is swapped in whole and verified. Refused without approval.",
            "restore",
            "result = steps.restore(run, plan)\nresult",
        ),
        *step(
            "6. Verify configuration",
            "The config exists, is valid TOML and has the required sections.",
            "verify_config",
            "config_check = steps.verify_config(run)\nconfig_check",
        ),
        *step(
            "7. Run health checks",
            "Every health check after the restore.",
            "health",
            'steps.health_table(steps.check_health(run, "after"), restart_pending=True)',
        ),
        *step(
            "8. Restart system",
            "Starts the trading process (the `[process] start` command), only if the config check, the data "
            "check and reconciliation with the exchange pass, and every criterion so far passed. Otherwise "
            "trading stays stopped and this says why.",
            "restart",
            "restart_action = steps.restart(run, before=steps.criteria_a(run, result, config_check))\nrestart_action",
        ),
        *closing_cells("steps.criteria_a(run, result, config_check, restart_action)", "Procedure A"),
    ]


def procedure_b() -> list[nbformat.NotebookNode]:
    return [
        *header(
            "Procedure B: Data Recovery",
            "**Time estimate:** 10-30 minutes. **Impact:** High, trading operations affected.",
            "B",
            with_backup=True,
            extra=REMEDY_PARAMETER,
        ),
        *step(
            "1. Assess data loss extent",
            "What is missing and what is corrupt (duplicated trade ids, a torn row, a missing header, positions "
            "that disagree with the trades), and the trades the exchange has that the ledger lacks.",
            "assess",
            "steps.assess_data_loss(run)",
        ),
        *step(
            "2. Identify suitable backup",
            "The newest successful backup that verifies and whose data passes the data check.",
            "select_backup",
            'choice = steps.choose_backup(run, backup_id, needs=("data",), required=False)\n'
            "display(choice)\nchoice.widget",
        ),
        *step(
            "3. Calculate data loss window",
            "What a restore from that backup would give up, and how much of it the exchange can give back.",
            "data_loss_window",
            "steps.data_loss_window(run, choice)",
        ),
        *step(
            "4. Stop trading operations",
            "Stops the trading process so nothing writes while the data is repaired or restored.",
            "stop_system",
            "steps.stop(run)",
        ),
        *step(
            "5. Backup current state",
            "Saves whatever is left, tagged `pre-recovery`.",
            "pre_recovery_backup",
            "steps.pre_recovery_backup(run)",
        ),
        *step(
            "6a. Repair or restore: the dry run",
            "Both options worked out without changing anything: repairing the ledger in place, and restoring "
            "the data from the backup; each says what it loses. The option that loses least is recommended; "
            "approve one (in JupyterLab pick it; headless, the `remedy` parameter and `approve`).",
            "dry_run",
            "remedies = steps.plan_remedies(run, choice)\ndisplay(remedies)\n"
            'steps.remedy_approval(run, remedies, remedy, then="6b. Apply the approved remedy")',
        ),
        *step(
            "6b. Apply the approved remedy",
            "Applies exactly the approved option. Refused without approval.",
            "restore",
            "result = steps.apply_remedy(run, remedies)\nresult",
        ),
        *step(
            "6c. Recover trades from the exchange",
            "Every fill the exchange knows that the ledger lacks is written back with its original id, and "
            "positions are recomputed: trades lost, recovered and still missing.",
            "replay",
            "steps.replay_trades(run)",
        ),
        *step(
            "7. Verify data integrity",
            "Row counts, unique trade ids, positions equal the net of trades.",
            "verify_data",
            "steps.verify_data(run)",
        ),
        *step(
            "8. Reconcile with external systems",
            "Positions against the exchange's balances, exact to each instrument's precision.",
            "reconcile",
            "reconciliation = steps.reconcile(run)\nreconciliation",
        ),
        *step(
            "9. Restart trading",
            "Starts the trading process only if config, data and reconciliation pass and every criterion so far "
            "passed. Otherwise trading stays stopped and this says why.",
            "restart",
            "restart_action = steps.restart(run, before=steps.criteria_b(run, result, reconciliation))\nrestart_action",
        ),
        *closing_cells("steps.criteria_b(run, result, reconciliation, restart_action)", "Procedure B"),
    ]


def procedure_c() -> list[nbformat.NotebookNode]:
    return [
        *header(
            "Procedure C: Full System Recovery",
            "**Time estimate:** 30-60 minutes. **Impact:** Critical, complete system down.",
            "C",
            with_backup=True,
        ),
        *step(
            "1. Declare incident",
            "Start time, incident id and who to notify.",
            "declare",
            "steps.declare_incident(run)",
        ),
        *step(
            "2. Assess situation",
            "Failing health checks and available backups.",
            "assess",
            'display(steps.health_table(steps.check_health(run, "before")))\nsteps.backups_overview(run)',
        ),
        *step(
            "2b. Stop services",
            "A system this broken must not trade, and a restore is refused while it runs: stop it if it still "
            "does. (The runbook's step 7 restarts services; stopping them comes first.)",
            "stop_system",
            "steps.stop(run)",
        ),
        *step(
            "3. Select recovery point",
            "The newest FULL backup that verifies and whose config and data pass their checks.",
            "select_backup",
            'choice = steps.choose_backup(run, backup_id, needs=("config", "state", "data"))\n'
            "display(choice)\nchoice.widget",
        ),
        *step(
            "4. Document current state",
            "The pre-recovery listing, kept in the record for the post-mortem "
            "(the broken files themselves are kept in the pre-recovery backup).",
            "document_state",
            "steps.site_listing(run)",
        ),
        *step(
            "5a. Dry-run the complete restore",
            "Shows exactly what would change, then asks for approval.",
            "dry_run",
            "plan = steps.plan(run, choice, config=True, state=True, data=True)\ndisplay(plan)\n"
            'steps.approval(run, plan, then="5b. Perform complete restore")',
        ),
        *step(
            "5b. Perform complete restore",
            "Applies the approved plan. Refused without approval.",
            "restore",
            "result = steps.restore(run, plan)\nresult",
        ),
        *step(
            "5c. Recover trades from the exchange",
            "Every fill the exchange knows that the restored ledger lacks is written back with its original id.",
            "replay",
            "steps.replay_trades(run)",
        ),
        *step(
            "6. Verify system integrity",
            "Every health check again.",
            "health",
            'steps.health_table(steps.check_health(run, "after"), restart_pending=True)',
        ),
        *step(
            "7. Create post-recovery backup",
            "A backup tagged verified, taken before the restart so it holds exactly the state that was "
            "checked, and only if that state passes config, data and reconciliation. (The runbook lists it "
            "after the restart.)",
            "post_recovery_backup",
            "post_backup = steps.verified_backup(\n"
            "    run,\n"
            '    "post_recovery_backup",\n'
            '    "Post-recovery verification backup",\n'
            '    ["recovery", "post-incident"],\n'
            "    before=steps.criteria_c(run, result),\n"
            ")\npost_backup",
        ),
        *step(
            "8. Restart services",
            "Starts the trading process only if config, data and reconciliation pass and every criterion so far "
            "passed. Otherwise trading stays stopped and this says why.",
            "restart",
            "restart_action = steps.restart(run, before=steps.criteria_c(run, result, post_backup))\nrestart_action",
        ),
        *closing_cells(
            "steps.criteria_c(run, result, post_backup, restart_action)", "Procedure C", ", complete_failure=True"
        ),
    ]


def procedure_d() -> list[nbformat.NotebookNode]:
    return [
        *header(
            "Procedure D: Backup System Recovery",
            "**Time estimate:** 15-30 minutes. **Impact:** Low to "
            "Medium, backups unavailable. This affects disaster recovery itself.",
            "D",
            with_backup=False,
        ),
        *step(
            "1. Assess backup system",
            "The backup directory exists (created if missing) and is writable.",
            "assess_backups",
            "directory = steps.backup_dir_status(run)\ndirectory",
        ),
        *step(
            "2. Verify backup integrity",
            "Every backup, every byte hashed; unreadable ones listed too.",
            "verify_backups",
            "verification = steps.verify_all_backups(run)\nverification",
        ),
        *step(
            "2b. Quarantine damaged backups",
            "Damaged or unreadable backups are moved out of use (`.quarantine-<id>` in the backup directory): "
            "never restored from, never the parent of a new backup, kept as evidence. Nothing is deleted.",
            "quarantine",
            "steps.quarantine_damaged(run, verification)",
        ),
        *step(
            "3. Create new backup immediately",
            "An emergency backup of the current state.",
            "emergency_backup",
            "emergency = steps.create_backup(\n"
            '    run, "emergency_backup", "Emergency backup after system recovery", ["emergency", "manual"]\n'
            ")\nemergency",
        ),
        *step(
            "4. Set up automated backups",
            "The schedule declared in recovery.toml.",
            "schedule",
            "print(steps.backup_schedule(run))",
        ),
        *closing_cells("steps.criteria_d(run, directory, verification, emergency)", "Procedure D"),
    ]


def verification_notebook() -> list[nbformat.NotebookNode]:
    return [
        *header(
            "Verification",
            "The runbook's four verification steps after any recovery procedure.",
            "V",
            with_backup=False,
        ),
        *step(
            "1. Health checks",
            "Every health check.",
            "health",
            'health = steps.check_health(run, "verification")\nsteps.health_table(health)',
        ),
        *step(
            "2. Data integrity",
            "The critical CSVs read with pandas, their consistency, and positions against the exchange.",
            "data_integrity",
            "display(steps.verify_data(run))\nreconciliation = steps.reconcile(run)\nreconciliation",
        ),
        *step(
            "3. Configuration validity",
            "Valid TOML with the required sections.",
            "config_validity",
            "config_check = steps.verify_config(run)\nconfig_check",
        ),
        *step(
            "4. External connectivity",
            "A ticker from the exchange.",
            "connectivity",
            "exchange_check = steps.check_exchange(run)\nexchange_check",
        ),
        *step(
            "Verdict",
            "Recovered when every check passes.",
            "verdict",
            "steps.verdict(run, health, config_check, exchange_check, reconciliation)",
        ),
        *step(
            "Outcome",
            "Verified only if every check passed. Otherwise this cell fails (papermill exits non-zero).",
            "outcome",
            "steps.conclude(run)",
        ),
    ]


def post_recovery_notebook() -> list[nbformat.NotebookNode]:
    extra = "\nrecords: list[str] = []  # executed notebooks (paths) to summarise; empty: this incident's journal"
    return [
        *header(
            "Post-Recovery Actions",
            "Immediate actions after recovery: verification backup, incident "
            "summary, stakeholder notification, escalation.",
            "P",
            with_backup=False,
            extra=extra,
        ),
        *step(
            "1. Create verification backup",
            "A backup of the verified state (only if it verified).",
            "verification_backup",
            "steps.verification_backup(run, records)",
        ),
        *step(
            "2. Document incident",
            "What failed, when it was detected, the steps taken, time to recovery and "
            "data lost, from the records of this incident's notebooks.",
            "incident_summary",
            "summary = steps.incident_summary(run, records)\nsummary",
        ),
        *step(
            "3. Escalation",
            "The escalation level for this incident and its contact.",
            "escalation",
            "escalation = steps.escalation_from(run, summary)\nescalation",
        ),
        *step(
            "4. Notify stakeholders",
            "The message to send.",
            "notification",
            "print(steps.notify_text(run, summary, escalation))",
        ),
    ]


def report_notebook() -> list[nbformat.NotebookNode]:
    return [
        md(
            "# Drill records\n\nEvery drill run into this outputs directory: what was broken, how long detection and "
            "recovery took against the targets, what data was lost, and when each scenario of the monthly schedule "
            "(week 1 config, 2 data, 3 full, 4 backup) was last drilled."
        ),
        code('outputs: str = "outputs"  # the outputs directory of the drills', "parameters"),
        code(
            "from recovery_lib.drills import report\n\n"
            "records = report.load(globals())  # checks the parameters, then reads the drill records",
            "validate",
        ),
        *step(
            "Drills",
            "One row per drill, newest first; the links open each notebook's record.",
            "table",
            "report.drill_table(records)",
        ),
        *step(
            "Time to recover",
            "Per procedure over time; dashed lines are the RTO targets.",
            "plot",
            "report.ttr_plot(records)",
        ),
        *step(
            "Last drilled",
            "Against the monthly schedule; a scenario not drilled in 31 days is overdue.",
            "schedule",
            "report.schedule_table(records)",
        ),
    ]


BUILDERS = {
    "00_detect_and_triage.ipynb": triage_notebook,
    "A_config_recovery.ipynb": procedure_a,
    "B_data_recovery.ipynb": procedure_b,
    "C_full_system_recovery.ipynb": procedure_c,
    "D_backup_system_recovery.ipynb": procedure_d,
    "V_verification.ipynb": verification_notebook,
    "P_post_recovery.ipynb": post_recovery_notebook,
    "R_drill_report.ipynb": report_notebook,
}


def build(name: str) -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = BUILDERS[name]()
    if not any("display(" in cell.source for cell in notebook.cells if cell.cell_type == "code"):
        # the validation cell imports display for the cells that show widgets; not every notebook has one
        validate = next(cell for cell in notebook.cells if "validate" in cell.metadata.get("tags", []))
        validate.source = validate.source.replace("from IPython.display import display\n\n", "")
    for index, cell in enumerate(notebook.cells):
        cell["id"] = f"{Path(name).stem.lower()}-{index:02d}"
    notebook.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    return notebook


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for name in BUILDERS:
        text = nbformat.writes(build(name)) + "\n"
        path = NOTEBOOKS / name
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
    if stale:
        print("out of date (run python tools/build_notebooks.py):", ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
