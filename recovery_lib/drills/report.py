"""The records page: ``outputs/index.html`` from the drill records.

The report is itself a notebook (``notebooks/R_drill_report.ipynb``) run by papermill and exported
by nbconvert without its code cells; the functions here are what its cells call.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from recovery_lib import catalog
from recovery_lib.drills.due import drills_due, due_frame
from recovery_lib.drills.history import load_records
from recovery_lib.drills.kernels import papermill_kernel_options, quiet_kernels
from recovery_lib.rendering import export_html, install_display_formatters
from recovery_lib.runbook.notebook import ParameterError, validate_parameters

REPORT_NOTEBOOK = catalog.notebook(catalog.REPORT)


# Left-aligned text and no wrapping of ids: the index and records are read, not scanned as numbers.
TABLE_STYLE = (
    "<style>table.drills th, table.drills td, table.schedule th, table.schedule td"
    " {text-align: left !important; vertical-align: top;}"
    " table.drills td:first-child {white-space: nowrap;}</style>"
)


def drill_table(records: Any) -> Any:
    """The drill table for people: outcome marks, rounded seconds, links to each record's HTML."""
    from IPython.display import HTML

    if records.empty:
        return HTML("<p>No drills recorded yet. Run <code>make drill</code>.</p>")
    rows = []
    for _, row in records.iloc[::-1].iterrows():
        links = "<br>".join(  # one record per line: they must not run together
            f'<a href="{html.escape(row["run_id"])}/{html.escape(Path(name).with_suffix(".html").name)}">'
            f"{html.escape(name.split('_', 1)[1].removesuffix('.ipynb'))}</a>"
            for name in row["notebooks"]
        )
        rows.append(
            {
                "drill": html.escape(str(row["run_id"])),
                "scenario": row["scenario"],
                "procedure": row["procedure"],
                "outcome": "✅ recovered" if row["outcome"] == "recovered" else "❌ not recovered",
                "detect (s)": _num(row["time_to_detect_s"]),
                "recover (s)": _num(row["time_to_recover_s"]),
                "RTO met": {True: "✅ yes", False: "❌ no"}.get(row["rto_met"], "-"),
                "data lost (s)": _num(row["data_loss_window_s"]),
                "trades lost": "-"
                if row["trades_lost"] is None or row["trades_lost"] != row["trades_lost"]
                else int(row["trades_lost"]),
                "escalation": _num(row["escalation_level"], 0),
                "failed step": _text(row["failed_step"]),
                # A procedure that halted midway and was resumed: its halted record is among the records.
                "resumed": _text(row.get("resumed")),
                "records": links,
            }
        )
    import pandas as pd

    return HTML(TABLE_STYLE + pd.DataFrame(rows).to_html(index=False, escape=False, classes="drills"))


def _text(value: Any) -> str:
    """A text column's value for the HTML table (escaped: halt reasons quote parameters); "" when missing."""
    return html.escape(value) if isinstance(value, str) else ""


def _num(value: Any, digits: int = 1) -> str:
    if value is None or value != value:  # None or NaN
        return "-"
    return f"{float(value):.{digits}f}"


def ttr_plot(records: Any) -> Any:
    """Time to recover per procedure over time, against each procedure's RTO target."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    figure, axis = plt.subplots(figsize=(9, 4))
    done = records.dropna(subset=["time_to_recover_s"])
    for procedure, group in done.groupby("procedure"):
        times = pd.to_datetime(group["fault_at"])
        line = axis.plot(times, group["time_to_recover_s"], marker="o", label=f"Procedure {procedure}")[0]
        target = group["rto_target_s"].dropna()
        if len(target):
            axis.axhline(
                float(target.iloc[-1]),
                linestyle="--",
                color=line.get_color(),
                alpha=0.5,
                label=f"RTO target {procedure}",
            )
    if len(done) and pd.to_datetime(done["fault_at"]).nunique() == 1:
        # One drill: matplotlib would span years around it; a day either side reads naturally.
        moment = pd.to_datetime(done["fault_at"]).iloc[0]
        axis.set_xlim(moment - pd.Timedelta(days=1), moment + pd.Timedelta(days=1))
    axis.set_yscale("log")
    axis.set_ylabel("time to recover (s, log)")
    axis.set_title("Time to recover per procedure (fault to health green)")
    if len(done):
        axis.legend(fontsize="small", loc="upper left")
    figure.autofmt_xdate()
    # A PNG image, not the Figure: it renders the same in JupyterLab and in the exported HTML.
    import io

    from IPython.display import Image

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(figure)
    return Image(data=buffer.getvalue(), format="png")


def schedule_table(records: Any) -> Any:
    """The monthly schedule against the records, as ``recovery drill due`` computes it: each scenario's
    slot, its last drill and outcome, and whether it was drilled in its slot, is due or is overdue."""
    from IPython.display import HTML

    table = due_frame(drills_due(records)).rename(columns=lambda c: c.replace("_", " "))
    return HTML(TABLE_STYLE + table.to_html(index=False, escape=True, classes="schedule"))


def check_outputs(outputs: str | Path, name: str = "parameter 'outputs'") -> Path:
    """``outputs`` as a directory of drill records, or a :class:`ParameterError` naming it."""
    if not isinstance(outputs, str | Path) or not str(outputs).strip():
        raise ParameterError(f"{name} must be a directory path, got {outputs!r}.")
    path = Path(outputs)
    if not path.is_dir():
        problem = "is not a directory" if path.exists() else "does not exist"
        raise ParameterError(
            f"{name} {path} {problem}; give the directory `recovery drill run --outputs DIR` wrote its records to."
        )
    return path


def load(namespace: dict[str, Any]) -> Any:
    """The records page's validation cell: check the parameters, then load the drill records."""
    values = validate_parameters(namespace)
    install_display_formatters()
    return load_records(check_outputs(values["outputs"]))


def write_index(outputs: Path, notebooks_dir: Path) -> Path:
    """Run the report notebook over ``outputs`` and write ``outputs/index.html`` (code cells hidden)."""
    import papermill

    outputs = check_outputs(outputs, "outputs directory")
    executed = outputs / f".{REPORT_NOTEBOOK}"
    with quiet_kernels():
        papermill.execute_notebook(
            str(notebooks_dir / REPORT_NOTEBOOK),
            str(executed),
            parameters={"outputs": str(outputs.resolve())},
            **papermill_kernel_options(),
            progress_bar=False,
            cwd=str(outputs),
        )
    index = outputs / "index.html"
    index.write_text(export_html(executed, hide_code=True), encoding="utf-8")
    executed.unlink()
    return index


__all__ = ["check_outputs", "drill_table", "load", "load_records", "schedule_table", "ttr_plot", "write_index"]
