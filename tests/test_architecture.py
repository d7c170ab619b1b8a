"""The package's shape, read from its own source: layers, imports flowing one way, small modules.

A newcomer should be able to trust README "Layout": each folder is one layer, a module imports
only from lower layers (or from its own folder), no import cycle exists, and no import is hidden
inside a function to dodge one. These tests read the source with ``ast``; nothing is imported.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "recovery_lib"
MAX_LINES = 400

# Lowest first. A module may import from a lower layer, or from its own folder; never upward and
# never sideways into another folder of the same layer.
LAYERS: dict[str, float] = {
    "errors": 0,
    "clock": 0,
    "rendering": 0,
    "catalog": 0,
    "fsops": 1,
    "site": 2,
    "alerts": 2.5,
    "schedule": 2.5,
    "trading": 3,
    "backup": 4,
    "sandbox": 4,
    "replica": 4.5,
    "restore": 5,
    "manager": 6,
    "checks": 7,
    "runbook": 8,
    "drills": 9,
    "metrics": 9.2,
    "": 9.5,  # recovery_lib/__init__.py: the public facade (the runbook's snippets import from it)
    "cli": 10,
}
# The CLI imports the drill machinery (papermill, nbconvert: about a second) only for the commands
# that need it, so that `recovery backup create` from cron starts fast.
LAZY_ALLOWED = ("recovery_lib.cli.",)


@dataclass(frozen=True)
class Import:
    """One import statement of one module, resolved to the recovery_lib module it loads."""

    source: str
    target: str
    line: int
    nested: bool


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _resolve(source: str, node: ast.ImportFrom | ast.Import) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        base = source.split(".")
        if MODULES[source].name != "__init__.py":
            base = base[:-1]
        base = base[: len(base) - (node.level - 1)]
        stem = ".".join(base + ([node.module] if node.module else []))
    else:
        stem = node.module or ""
    # `from pkg import submodule` loads the submodule; `from module import name` loads the module.
    return [f"{stem}.{a.name}" if f"{stem}.{a.name}" in MODULES else stem for a in node.names]


def _imports(source: str) -> list[Import]:
    tree = ast.parse(MODULES[source].read_text(encoding="utf-8"))
    top_level = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Import | ast.ImportFrom):
            continue
        for target in _resolve(source, node):
            while target and target not in MODULES and "." in target:
                target = target.rsplit(".", 1)[0]
            if target in MODULES and target != source:
                found.append(Import(source, target, node.lineno, id(node) not in top_level))
    return found


IMPORTS = [imp for name in MODULES for imp in _imports(name)]


def layer_of(module: str) -> tuple[str, float]:
    rest = module.removeprefix("recovery_lib").lstrip(".")
    folder = rest.split(".", 1)[0]
    assert folder in LAYERS, f"{module}: folder {folder!r} has no layer; add it to LAYERS and to README 'Layout'"
    return folder, LAYERS[folder]


def test_every_folder_has_a_layer_and_the_table_names_no_ghosts() -> None:
    folders = {layer_of(m)[0] for m in MODULES}
    assert folders == set(LAYERS), f"LAYERS names folders that do not exist: {set(LAYERS) - folders}"


def upward_imports(imports: list[Import]) -> list[str]:
    """Imports into another folder of the same or a higher layer."""
    upward = []
    for imp in imports:
        (src_folder, src_layer), (dst_folder, dst_layer) = layer_of(imp.source), layer_of(imp.target)
        if src_folder != dst_folder and dst_layer >= src_layer:
            upward.append(f"{imp.source}:{imp.line} imports {imp.target} (layer {dst_layer} >= {src_layer})")
    return upward


def find_cycles(imports: list[Import]) -> list[str]:
    """Every cycle a depth-first walk meets, as ``a -> b -> a``."""
    graph: dict[str, set[str]] = {}
    for imp in imports:
        # A package's __init__ runs before its submodules, so an edge from a submodule to its own
        # parent package is implied by Python and is not a cycle of ours; every other edge counts.
        if not imp.source.startswith(imp.target + "."):
            graph.setdefault(imp.source, set()).add(imp.target)
    cycles: list[str] = []
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join([*path[path.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return cycles


def late_imports(imports: list[Import]) -> list[str]:
    """Imports of the library inside a function, outside the CLI's lazy drill commands."""
    return [
        f"{imp.source}:{imp.line} imports {imp.target} inside a function"
        for imp in imports
        if imp.nested and not imp.source.startswith(LAZY_ALLOWED)
    ]


def test_imports_flow_down_the_layers() -> None:
    upward = upward_imports(IMPORTS)
    assert not upward, "imports that do not flow down:\n" + "\n".join(upward)


def test_no_import_cycles() -> None:
    cycles = find_cycles(IMPORTS)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_no_late_imports_of_the_library() -> None:
    late = late_imports(IMPORTS)
    assert not late, "imports hidden in functions (move them to the top of the module):\n" + "\n".join(late)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_fits_in_one_sitting(module: str) -> None:
    lines = len(MODULES[module].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{MODULES[module]} has {lines} lines (> {MAX_LINES}): split it along its seams"


def test_the_checks_can_fail() -> None:
    """Each check above reports a planted fault: a cycle, an upward import, a late import."""
    planted = [
        Import("recovery_lib.backup.model", "recovery_lib.backup.verify", 3, nested=False),
        Import("recovery_lib.backup.verify", "recovery_lib.backup.model", 4, nested=False),
        Import("recovery_lib.site.config", "recovery_lib.manager", 5, nested=False),
        Import("recovery_lib.runbook.notebook", "recovery_lib.runbook.records", 6, nested=True),
        Import("recovery_lib.cli.drill", "recovery_lib.drills.runner", 7, nested=True),
        Import("recovery_lib.backup.model", "recovery_lib.backup", 8, nested=False),
    ]
    assert find_cycles(planted) == [
        "recovery_lib.backup.model -> recovery_lib.backup.verify -> recovery_lib.backup.model"
    ]
    assert upward_imports(planted) == ["recovery_lib.site.config:5 imports recovery_lib.manager (layer 6 >= 2)"]
    assert late_imports(planted) == [
        "recovery_lib.runbook.notebook:6 imports recovery_lib.runbook.records inside a function"
    ]
    # and the walk really sees this package's imports, nested ones included
    assert any(i.source == "recovery_lib.manager" and i.target.startswith("recovery_lib.restore") for i in IMPORTS)


def test_the_facade_serves_every_public_name_from_its_module() -> None:
    """recovery_lib loads its public names when first asked for (PEP 562): each must be where the
    table says, and ``from recovery_lib import *`` must give them all."""
    import importlib

    import recovery_lib

    for name, module in recovery_lib.PUBLIC.items():
        assert module in MODULES, f"{name}: {module} is not a module of the package"
        assert getattr(recovery_lib, name) is getattr(importlib.import_module(module), name)
    namespace: dict[str, object] = {}
    exec("from recovery_lib import *", namespace)  # noqa: S102 - the star import a runbook snippet may use
    assert set(recovery_lib.PUBLIC) <= set(namespace)
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        recovery_lib.Nope  # noqa: B018


def test_a_module_run_with_python_m_does_not_load_the_whole_library() -> None:
    """The sandbox's trading process and its stop command start with ``python -m``: the package's
    facade must not import the manager (and with it replicas, checks, boto3) for them."""
    import subprocess
    import sys

    code = (
        "import sys, recovery_lib.sandbox.live_ops\n"
        "print(sorted(m for m in sys.modules if m.startswith(('recovery_lib.manager', 'boto3'))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout
