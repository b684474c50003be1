"""The pure core stays pure: no Azure SDK, no I/O, no clock of its own (STYLE.md).

Adapters (`sources/`, `stores/`, `sinks/`, `notify/`, `connections`, `wiring`, `timer`,
`status`, `replay`, `cli`) do the talking; everything listed here only computes, so the
same code runs in the timer, in replay and in tests.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "detectors"
CORE = [
    *(
        PACKAGE / f"{name}.py"
        for name in (
            "alerts",
            "allow",
            "baseline",
            "bursts",
            "chains",
            "engine",
            "errors",
            "evaluation",
            "evidence",
            "feedback",
            "grouping",
            "health",
            "model",
            "normalize",
            "operations",
            "reasons",
            "settings",
            "surroundings",
        )
    ),
    *sorted((PACKAGE / "detections").glob("*.py")),
]
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


def _imports(tree: ast.AST) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
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


@pytest.mark.parametrize("path", CORE, ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_the_core_module_does_no_io_and_reads_no_clock(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    assert not _imports(tree) & FORBIDDEN_MODULES, path.name
    assert not _calls(tree) & FORBIDDEN_CALLS, path.name


def test_the_checker_would_see_a_violation():
    tree = ast.parse("import os\nfrom azure.data import tables\nx = datetime.now(UTC)\n")
    assert {"os", "azure"} <= _imports(tree) & FORBIDDEN_MODULES
    assert ".now" in _calls(tree) & FORBIDDEN_CALLS
