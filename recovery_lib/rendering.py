"""What a person sees: tables without index noise, widgets that leave a static summary behind,
and HTML records that open without network.

Library functions return plain data (DataFrames, dataclasses); this module decides how they look in
JupyterLab and in the archived HTML, so the notebooks stay thin and the records stay readable.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
TEMPLATES = Path(__file__).parent / "templates"
TEMPLATE_NAME = "recovery_offline"  # the lab template minus every CDN script
SHOWN_ITEMS = 10  # a message names this many problems; beyond that it counts the rest by kind


class LiveDisplay:
    """Something shown in a notebook that updates in place: :meth:`refresh` re-sends :meth:`bundle`."""

    _handle: Any = None

    def bundle(self) -> dict[str, Any]:
        """The display data (MIME type -> content)."""
        raise NotImplementedError

    def _ipython_display_(self) -> None:
        from IPython.display import display

        self._handle = display(self.bundle(), raw=True, display_id=True)

    def refresh(self) -> None:
        """Update what was displayed after a change."""
        if self._handle is not None:
            self._handle.update(self.bundle(), raw=True)


class LiveWidget(LiveDisplay):
    """An ipywidget for JupyterLab whose display also carries a static summary of its state.

    JupyterLab renders the widget; an archived notebook or its HTML (where the widget's kernel is
    gone) shows the summary instead, e.g. "restore APPROVED by alice at 02:14Z". Call
    :meth:`refresh` after the state changes; the display is updated in place.
    """

    def __init__(self, widget: Any, summary: Callable[[], str]) -> None:
        self.widget = widget
        self._summary = summary

    def __getattr__(self, name: str) -> Any:
        return getattr(self.widget, name)  # e.g. a Dropdown's .value, .options

    def bundle(self) -> dict[str, Any]:
        """The display data: the widget view first, the static summary as HTML and plain text."""
        text = self._summary()
        data = {"text/plain": text, "text/html": f'<p class="recovery-static">{html.escape(text)}</p>'}
        view = self.widget._repr_mimebundle_().get(WIDGET_VIEW)
        if view is not None:
            data[WIDGET_VIEW] = view
        return data

    def __repr__(self) -> str:
        return self._summary()


def frame_html(frame: Any) -> str:
    """A DataFrame as a person reads it: no index column, no truncated cells."""
    import pandas as pd

    with pd.option_context("display.max_colwidth", None):
        rendered = frame.to_html(index=False, border=0, classes="dataframe recovery-table", na_rep="")
    # Inline, because JupyterLab right-aligns table cells (for numbers) and may drop <style> blocks.
    left = ' style="text-align: left;"'
    return rendered.replace("<td>", f"<td{left}>").replace("<th>", f"<th{left}>")


def frame_text(frame: Any) -> str:
    """The plain-text form, for terminals and text/plain readers."""
    import pandas as pd

    if frame.empty:
        return "(none)"  # not pandas' "Empty DataFrame / Columns: [...] / Index: []"

    with pd.option_context("display.max_colwidth", None):
        return frame.to_string(index=False)


def install_display_formatters() -> None:
    """In a notebook kernel: show every DataFrame without its index and without truncation, and a string
    a step returns as its text (not its repr)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None:
        return
    register_formatters(shell.display_formatter.formatters)


def register_formatters(formatters: Mapping[str, Any]) -> None:
    """Register this module's looks with IPython's display formatters (by MIME type)."""
    import pandas as pd

    formatters["text/html"].for_type(pd.DataFrame, frame_html)
    formatters["text/plain"].for_type(pd.DataFrame, lambda frame, printer, cycle: printer.text(frame_text(frame)))
    # A step that returns a string (a backup id, a sentence) is a message for a person: no repr quotes.
    formatters["text/plain"].for_type(str, plain_str)


def plain_str(text: str, printer: Any, cycle: bool) -> None:
    """IPython's text/plain printer for a ``str`` shown on its own: the text itself, not ``'its repr'``.
    Inside a list or dict it keeps its quotes (they delimit it, and a raw container stays recognisable)."""
    nested = len(getattr(printer, "stack", ())) > 1  # the printer's stack holds every enclosing object
    printer.text(repr(text) if nested else str(text))


def name_all(
    items: Sequence[str],
    kinds: Sequence[str] | None = None,
    *,
    unlisted: Mapping[str, int] | None = None,
    limit: int = SHOWN_ITEMS,
    separator: str = "; ",
) -> str:
    """``items`` for a person: all of them when there are at most ``limit``; otherwise the first ``limit``
    and how many more of each kind ("and 12 more: 10 hash problem(s), 2 missing problem(s)").

    ``kinds`` gives each item's kind (parallel to ``items``); ``unlisted`` counts, by kind, items that
    were never kept as text (a report that keeps only its first problems). Without kinds the rest is
    only counted.
    """
    by_kind: Counter[str] = Counter(kinds[limit : len(items)] if kinds is not None else ())
    by_kind.update(dict(unlisted or {}))
    kindless = max(len(items) - limit, 0) if kinds is None else 0
    count = sum(by_kind.values()) + kindless
    shown = separator.join(items[:limit])
    if not count:
        return shown
    counted = [f"{n} {kind}" for kind, n in by_kind.items() if n]
    if not counted:
        return f"{shown}{separator}and {count} more"
    return f"{shown}{separator}and {count} more: {', '.join(counted + ([f'{kindless} other'] if kindless else []))}"


def static_widgets(notebook: Any) -> Any:
    """Drop widget views from outputs that have a fallback: an archive has no kernel to render them."""
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if WIDGET_VIEW in data and ("text/html" in data or "text/plain" in data):
                del data[WIDGET_VIEW]
    notebook.metadata.pop("widgets", None)
    return notebook


def export_html(notebook_path: Path, *, hide_code: bool = False) -> str:
    """HTML of an executed notebook that needs no network: no CDN scripts, widgets as static summaries."""
    import nbformat
    from nbconvert import HTMLExporter

    notebook = static_widgets(nbformat.read(str(notebook_path), as_version=4))
    # The browser tab names the record ("Procedure A: Config Recovery"), not "Notebook".
    notebook.metadata["title"] = _title(notebook) or Path(notebook_path).stem
    exporter = HTMLExporter(
        template_name=TEMPLATE_NAME,
        extra_template_basedirs=[str(TEMPLATES)],
        exclude_input=hide_code,
        exclude_input_prompt=hide_code,
        exclude_output_prompt=hide_code,
    )
    body, _ = exporter.from_notebook_node(notebook)
    return body


class Findings(dict):
    """A step's result as a plain dict (for code and the record) that a person reads as a short table.

    An ``ok`` key, when present, becomes the ✅ / ❌ heading instead of a row.
    """

    def __init__(self, title: str, values: dict[str, Any]) -> None:
        super().__init__(values)
        self.title = title

    def _rows(self) -> list[tuple[str, str]]:
        return [(key.replace("_", " "), _plain(value)) for key, value in self.items() if key != "ok"]

    def _heading(self) -> str:
        icon = {True: "✅ ", False: "❌ "}.get(self.get("ok"), "") if "ok" in self else ""
        return f"{icon}{self.title}"

    def _repr_html_(self) -> str:
        cell = "style='text-align:left'"
        rows = "".join(
            f"<tr><th {cell}>{html.escape(k)}</th><td {cell}>{html.escape(v)}</td></tr>" for k, v in self._rows()
        )
        return f"<p><b>{html.escape(self._heading())}</b></p><table class='recovery-table'>{rows}</table>"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text("\n".join([self._heading(), *(f"  {k}: {v}" for k, v in self._rows())]))


def _plain(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_plain(v)}" for k, v in value.items()) or "none"
    if isinstance(value, list | tuple):
        return ", ".join(_plain(v) for v in value) or "none"
    return "" if value is None else str(value)


def human_age(hours: float) -> str:
    """``0.2`` -> ``"12 min"``, ``5.5`` -> ``"5.5 h"``, ``50`` -> ``"2.1 days"``."""
    if hours < 1:
        return f"{max(0, round(hours * 60))} min"
    if hours < 48:
        return f"{hours:.1f} h"
    return f"{hours / 24:.1f} days"


def human_size(size: int) -> str:
    """Bytes in the unit a person reads: ``639 MB``."""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" or value >= 100 else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def human_time(iso: str) -> str:
    """``2026-11-26T00:07:44.522325Z`` -> ``2026-11-26 00:07:44Z`` (seconds are enough for a person)."""
    return iso.replace("T", " ", 1).split(".", 1)[0].removesuffix("Z") + "Z" if iso else ""


def _title(notebook: Any) -> str | None:
    """The first level-1 heading of the notebook's markdown."""
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return None
