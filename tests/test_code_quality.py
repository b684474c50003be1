"""The gates the project holds itself to: ruff over everything, mypy --strict on the package."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CODE = ("detectors", "tests", "benchmarks", "function_app.py")


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)


def test_ruff_finds_nothing():
    done = run(str(BIN / "ruff"), "check", *CODE)
    assert done.returncode == 0, done.stdout + done.stderr


def test_code_is_formatted():
    done = run(str(BIN / "ruff"), "format", "--check", *CODE)
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_strict_is_clean_on_the_package():
    done = run(str(BIN / "mypy"))
    assert done.returncode == 0, done.stdout + done.stderr
