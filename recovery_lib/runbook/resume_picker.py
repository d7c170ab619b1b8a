"""The "Resume from record" cell of procedures A-D: pick a failed run of this procedure to go on from.

The cell sits between the ``parameters`` cell and the validation cell and makes one call,
``resume_picker(globals(), procedure="B")``. In JupyterLab it offers the failed runs of this procedure
on this site (:func:`~recovery_lib.runbook.failed_runs.failed_runs`, newest first) and "(start from the
top)"; a pick sets ``resume_from`` and the parameters that decide what the failed run did (``backup_id``,
``remedy``, ``replica``, and ``incident_id`` to its incident) in the kernel's namespace, so the validation
cell and the cells below resume it. "(start from the top)" puts back the values the parameters cell had.
A Run All runs the parameters cell again, which empties ``resume_from``: the pick made in this kernel
stands then (while the parameters cell's values are unchanged), so the resumed run goes on instead of a
new one starting from the top.

Headless (``interactive`` False: papermill, a drill) it shows one line saying whether the run resumes a
failed run or runs from the top, and never changes a parameter: there, ``resume_from`` is the
parameter's. A site that cannot be read yet is said in one line; the validation cell reports why.
"""

from __future__ import annotations

import html
from typing import Any

from recovery_lib.errors import SiteError
from recovery_lib.rendering import WIDGET_VIEW, LiveDisplay
from recovery_lib.runbook.failed_runs import FailedRun, failed_runs
from recovery_lib.runbook.notebook import DECISIONS
from recovery_lib.runbook.run import Run
from recovery_lib.site.config import load_site, looks_like_a_site

TOP = ""  # the picker's value for "(start from the top)": what ``resume_from`` is then
TOP_LABEL = "(start from the top)"
HEAD = "Resume from record"
# What the picker sets besides ``resume_from``: the failed run's deciding parameters and its incident.
PICKED = (*DECISIONS, "incident_id")
# The parameters cell's values of PICKED, kept across reruns of this cell so that "(start from the top)"
# puts them back even after a pick changed them ("_" names are not parameters: validation skips them).
ORIGINALS = "_resume_picker_originals"
KEPT = "_resume_picker_pick"  # the last pick in this kernel: its run id, the values it set, the originals then


class ResumePicker(LiveDisplay):
    """What the resume cell shows: a picker of failed runs in JupyterLab, else one line.

    ``offered``: the failed runs the picker offers, newest first; ``dropdown``: the picker (None when
    there is none); :meth:`summary` says in words what is picked now (what an archived record shows).
    """

    def __init__(
        self,
        namespace: dict[str, Any],
        procedure: str,
        offered: list[FailedRun] | None = None,
        line: str = "",
    ) -> None:
        self.namespace = namespace
        self.procedure = procedure
        self.offered = list(offered or [])
        self.line = line  # the whole display when there is no picker
        self.dropdown: Any = None
        self.box: Any = None
        self._said: Any = None  # the widget under the picker that says what is picked

    @property
    def picked(self) -> FailedRun | None:
        """The offered failed run ``resume_from`` names now (None: from the top, or a run not offered)."""
        resume_from = self.namespace.get("resume_from") or TOP
        return next((f for f in self.offered if f.run_id == resume_from), None)

    def summary(self) -> str:
        """What is picked now, in words (the whole line when there is no picker)."""
        if self.dropdown is None:
            return self.line
        resume_from = self.namespace.get("resume_from") or TOP
        failed = self.picked
        if resume_from == TOP:
            return (
                f"{HEAD}: runs from the top (no failed run picked; {len(self.offered)} failed run(s) of "
                f"procedure {self.procedure} can be resumed: pick one above)."
            )
        if failed is None:
            return f"{HEAD}: resumes {resume_from} ({self.origin()}); the validation cell below checks it."
        values = ", ".join(f"{name}={self.namespace[name]!r}" for name in PICKED if name in self.namespace)
        return (
            f"{HEAD}: resumes {failed.label()}. Set: resume_from={failed.run_id!r}, {values}; "
            "run the validation cell and the cells below to go on from where it stopped."
        )

    def origin(self) -> str:
        """Where a ``resume_from`` that is not an offered failed run comes from."""
        resume_from = self.namespace.get("resume_from")
        run = self.namespace.get("run")
        if isinstance(run, Run) and run.resume is not None and run.resume.from_run == resume_from:
            return "picked earlier in this kernel; the run in this kernel resumes it"  # so it is not offered
        kept = self.namespace.get(KEPT) or {}
        if kept.get("values", {}).get("resume_from") == resume_from:
            return "picked earlier in this kernel"
        return "resume_from, set in the parameters cell"

    def pick(self, run_id: str) -> None:
        """Set the namespace for a pick: a failed run's id, or TOP ("" : from the top)."""
        originals = dict(self.namespace.get(ORIGINALS) or {})
        self.namespace.update(originals)  # a pick starts from the parameters cell's values
        self.namespace["resume_from"] = run_id
        failed = next((f for f in self.offered if f.run_id == run_id), None)
        if failed is not None:
            # The failed run's deciding parameters: start() refuses a resumed run with other ones.
            for name in DECISIONS:
                if name in failed.parameters and name in originals:
                    self.namespace[name] = failed.parameters[name]
            if "incident_id" in originals:
                self.namespace["incident_id"] = failed.incident_id
        if run_id == TOP:
            self.namespace.pop(KEPT, None)
        else:
            values = {name: self.namespace[name] for name in (*PICKED, "resume_from") if name in self.namespace}
            self.namespace[KEPT] = {"originals": originals, "values": values}
        if self._said is not None:
            self._said.value = self._said_html()
        self.refresh()

    def _said_html(self) -> str:
        return f'<p class="recovery-resume">{html.escape(self.summary())}</p>'

    def bundle(self) -> dict[str, Any]:
        """The display data: the line (or what is picked) as text and HTML, and the picker's widget view."""
        data: dict[str, Any] = {"text/plain": self.summary(), "text/html": self._said_html()}
        if self.box is not None:
            view = self.box._repr_mimebundle_().get(WIDGET_VIEW)
            if view is not None:
                data[WIDGET_VIEW] = view
        return data

    def __repr__(self) -> str:
        return self.summary()


def resume_picker(namespace: dict[str, Any], procedure: str) -> ResumePicker:
    """The resume cell of procedure ``procedure``'s notebook (see module docstring); ``namespace`` is the
    kernel's ``globals()`` after the parameters cell. Changes nothing until a pick in JupyterLab, except
    that a pick made earlier in this kernel stands when the parameters cell ran again unchanged (Run All)."""
    resume_from = namespace.get("resume_from") or TOP
    if not bool(namespace.get("interactive", True)):
        return ResumePicker(namespace, procedure, line=_headless_line(resume_from))
    site_value = namespace.get("site") or None  # "" means $RECOVERY_SITE or the current directory, as start()
    if site_value is not None and not isinstance(site_value, str):
        return ResumePicker(namespace, procedure, line=_no_site(f"'site' is {site_value!r}, not a directory"))
    try:
        site = load_site(site_value)
    except SiteError as exc:  # the site cannot be read yet: the validation cell says why, with the fix
        return ResumePicker(namespace, procedure, line=_no_site(str(exc)))
    if not looks_like_a_site(site):
        return ResumePicker(namespace, procedure, line=_no_site(f"{site.root} does not look like a site"))
    resume_from = _keep_earlier_pick(namespace, resume_from)
    offered = failed_runs(site, procedure)
    if not offered and not namespace.get(KEPT):
        line = f"{HEAD}: no failed run of procedure {procedure} on site {site.name} to resume"
        if resume_from:
            line += f"; resume_from is {resume_from!r} (the validation cell checks it)."
        else:
            line += ": this run starts from the top."
        return ResumePicker(namespace, procedure, line=line)
    return _interactive(namespace, procedure, offered, resume_from)


def _keep_earlier_pick(namespace: dict[str, Any], resume_from: str) -> str:
    """``resume_from`` now. A Run All runs the parameters cell again, which empties ``resume_from``: the
    pick made earlier in this kernel stands then (the run it started goes on instead of a new one from the
    top), unless the parameters cell's values changed since. Also keeps the parameters cell's values."""
    current = {name: namespace[name] for name in PICKED if name in namespace}
    kept = namespace.get(KEPT)
    if resume_from != TOP:  # set by the parameters cell, or by the pick
        namespace.setdefault(ORIGINALS, current)
        return resume_from
    namespace[ORIGINALS] = current
    if kept and kept["originals"] == current:
        namespace.update(kept["values"])
        return str(kept["values"]["resume_from"])
    namespace.pop(KEPT, None)
    return TOP


def _interactive(namespace: dict[str, Any], procedure: str, offered: list[FailedRun], resume_from: str) -> ResumePicker:
    """The picker: "(start from the top)", the failed runs newest first, and a ``resume_from`` that none of
    them is (set in the parameters cell, or a pick this kernel's run already resumed), so it shows what is set."""
    import ipywidgets as widgets

    picker = ResumePicker(namespace, procedure, offered)
    options = [(TOP_LABEL, TOP)] + [(f.label(), f.run_id) for f in offered]
    if resume_from not in {value for _, value in options}:
        options.insert(1, (f"{resume_from} ({picker.origin()})", resume_from))
    picker.dropdown = widgets.Dropdown(
        options=options, value=resume_from, description="Resume:", layout=widgets.Layout(width="95%")
    )
    picker._said = widgets.HTML()
    picker.box = widgets.VBox([picker.dropdown, picker._said])
    picker._said.value = picker._said_html()
    picker.dropdown.observe(lambda change: picker.pick(str(change["new"])), names="value")
    return picker


def _headless_line(resume_from: str) -> str:
    if resume_from:
        return (
            f"{HEAD}: this run resumes failed run {resume_from} (resume_from); the validation cell checks it "
            "and the resume record says which steps are replayed."
        )
    return f"{HEAD}: this run runs from the top (resume_from is empty)."


def _no_site(why: str) -> str:
    return f"{HEAD}: no failed runs to offer, the site cannot be read yet ({why}); the validation cell says why."
