"""Make notebooks fit to commit: no outputs, no execution counts, no editor metadata.

The committed notebooks in notebooks/ are the source of the procedures; an engineer edits them in
JupyterLab, which saves outputs, execution counts, the kernel's display name and version, and
per-cell view state. This removes all of that and keeps what the notebooks mean: the cells, their
ids and their tags (``parameters``, ``validate``, ``step:<name>``). A notebook it leaves unchanged
is clean; tests/runbook/test_notebook_conventions.py checks the committed ones are.

Usage: python tools/clean_notebooks.py [--check] [NOTEBOOK ...]   (default: notebooks/*.ipynb)
``make notebooks-clean`` runs it on every notebook; ``--check`` changes nothing and exits 1 if a
notebook would change.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
# What every committed notebook's metadata is: the kernel papermill and JupyterLab start, nothing
# that differs between machines (Python version, display name) and would show in every diff.
METADATA = {
    "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
    "language_info": {"name": "python"},
}


def clean(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The notebook without outputs, execution counts and metadata other than cell tags (in place)."""
    for cell in notebook.cells:
        tags = cell.metadata.get("tags", [])
        cell.metadata = nbformat.NotebookNode({"tags": tags} if tags else {})
        cell.source = cell.source.strip()
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    notebook.metadata = nbformat.from_dict(METADATA)
    return notebook


def text(notebook: nbformat.NotebookNode) -> str:
    """The notebook as JupyterLab and nbformat write it (one space indent, sorted keys, final newline)."""
    return nbformat.writes(notebook) + "\n"


def main(argv: list[str]) -> int:
    """Clean the notebooks named in ``argv`` (default: notebooks/*.ipynb); ``--check`` only reports."""
    check = "--check" in argv
    paths = [Path(a) for a in argv if a != "--check"] or sorted(NOTEBOOKS.glob("*.ipynb"))
    unclean = []
    for path in paths:
        before = path.read_text(encoding="utf-8")
        notebook = clean(nbformat.reads(before, as_version=4))
        nbformat.validate(notebook)  # e.g. two cells with the same id: say so rather than write it
        after = text(notebook)
        if after != before:
            unclean.append(str(path))
            if not check:
                path.write_text(after, encoding="utf-8")
    if unclean:
        verb = "not clean (run `make notebooks-clean`)" if check else "cleaned"
        print(f"{verb}: {', '.join(unclean)}")
    return 1 if check and unclean else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
