"""The tree shows the architecture, and these checks keep it true (STYLE.md, design/layout.md).

Pure folders compute: no Azure SDK, no I/O, no clock of their own, so the same code runs in
the timer, in replay and in tests. They sit in layers, each importing only the ones below.
Adapters (`sources/`, `stores/`, `delivery/`) talk to one kind of service each and do not
import one another; `runs/` joins them around the engine, and `cli/` sits on top.

The checks read every module's imports and work per folder, so a new module is checked the
moment it exists. What the tree does not meet yet is listed in `KNOWN`, with the change that
will remove it: the list can only shrink (a fixed entry that stays listed fails too).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "detectors"

PURE = ("model", "settings", "normalize", "baselines", "detections", "alerts", "engine")
"""The pure folders, lowest first: each imports only from the folders before it."""
ADAPTERS = ("sources", "stores", "delivery")
"""One kind of service each: they import pure folders and `clients/`, never one another or
what runs them."""
CLIENTS = "clients"
"""Signing in and the storage account's shared helpers: below every adapter."""
ABOVE = {"runs": {"cli", "simulation"}, "simulation": {"runs", "cli"}}
"""What the other folders must not import: `runs/` is not steered by the command line, and
the labelled simulator produces rows, it runs nothing."""
PURE_ELSEWHERE = (
    "runs/health.py",
    "sources/queries.py",
    "sources/arrival.py",
    "delivery/destinations/sentinel_table.py",
)
"""Pure modules kept beside the adapters they serve (the status checks, the KQL, the timer's
steps, the Sentinel table's columns): held to the pure folders' rules on I/O and clocks."""

KNOWN = {}

FORBIDDEN_MODULES = {
    "azure",
    "http",
    "io",
    "os",
    "pathlib",
    "random",
    "requests",
    "shutil",
    "socket",
    "sqlite3",
    "subprocess",
    "tempfile",
    "time",
    "urllib",
}
FORBIDDEN_CALLS = {"open", ".now", ".utcnow", ".today", ".monotonic", ".perf_counter"}
"""Bare calls, and method calls (with a dot): the clock comes in as an argument."""


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _folder(path: Path) -> str:
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else ""


def _imports(tree: ast.AST) -> set[str]:
    """Dotted names imported, absolute imports only (the package uses no relative ones)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


def _calls(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name):
                names.add(func.id)
            elif isinstance(func, ast.Attribute):
                names.add(f".{func.attr}")
    return names


def _folders_imported(path: Path) -> set[str]:
    """The other folders of the package that a module imports."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    own = _folder(path)
    found = set()
    for name in _imports(tree):
        parts = name.split(".")
        if parts[0] == "detectors" and len(parts) > 1 and parts[1] != own:
            found.add(parts[1])
    return found


def _may_not_import(folder: str) -> set[str]:
    if folder in PURE:
        below = PURE[: PURE.index(folder)]
        return {f for f in _all_folders() if f not in below}
    if folder in ADAPTERS:
        return (set(ADAPTERS) - {folder}) | {"runs", "cli", "simulation"}
    if folder == CLIENTS:
        return {*ADAPTERS, "runs", "cli", "simulation"}
    return ABOVE.get(folder, set())


def _all_folders() -> set[str]:
    return {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}


def _violations() -> set[tuple[str, str]]:
    found = set()
    for path in _modules():
        folder = _folder(path)
        for imported in _folders_imported(path) & _may_not_import(folder):
            found.add((path.relative_to(PACKAGE).as_posix(), imported))
    return found


def test_every_folder_has_a_place_in_the_layers():
    known = {*PURE, CLIENTS, *ADAPTERS, *ABOVE, "cli"}
    assert _all_folders() == known


def test_folders_import_only_downwards():
    found = _violations()
    new = sorted(found - KNOWN.keys())
    assert not new, f"imports against the layers: {new}"
    fixed = sorted(KNOWN.keys() - found)
    assert not fixed, f"fixed: take these out of KNOWN: {fixed}"


PURE_MODULES = [
    *(p for p in _modules() if _folder(p) in PURE),
    *(PACKAGE / name for name in PURE_ELSEWHERE),
]


@pytest.mark.parametrize("path", PURE_MODULES, ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_a_pure_module_does_no_io_and_reads_no_clock(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = {name.split(".")[0] for name in _imports(tree)}
    assert not top & FORBIDDEN_MODULES, path.name
    assert not _calls(tree) & FORBIDDEN_CALLS, path.name


def test_the_checkers_would_see_a_violation(tmp_path):
    tree = ast.parse("import os\nfrom azure.data import tables\nx = datetime.now(UTC)\n")
    assert {"os", "azure"} <= {n.split(".")[0] for n in _imports(tree)} & FORBIDDEN_MODULES
    assert ".now" in _calls(tree) & FORBIDDEN_CALLS
    assert _may_not_import("model") >= {"engine", "stores", "runs"}
    assert "model" not in _may_not_import("engine")
    assert "stores" in _may_not_import("delivery")
    assert "clients" not in _may_not_import("delivery")
    assert "stores" in _may_not_import("clients")
    module = PACKAGE / "runs" / "step.py"
    assert "stores" in _folders_imported(module)
    assert "stores" in _may_not_import("engine")
