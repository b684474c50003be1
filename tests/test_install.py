"""`pip install .` (or `pipx install .`) gives a working `detector`: the package declares what
its commands import. Slow by nature (a fresh virtual environment and pip, about ten seconds
with a warm cache), hence its own marker: `-m "not install"` leaves it out."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from detectors import __version__

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "contoso-sample.jsonl.gz"


@pytest.mark.install
def test_the_package_installs_alone_and_replays_the_sample(tmp_path):
    # Only what the package is built from: nothing of the working tree (tests, the dev
    # environment) can make it work by accident.
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "detectors", source / "detectors", ignore=shutil.ignore_patterns("__pycache__")
    )
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "--quiet"]
    installed = subprocess.run(
        [*pip, "install", "-c", str(ROOT / "constraints.txt"), str(source)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert installed.returncode == 0, installed.stderr[-2000:]
    detector = str(venv / "bin" / "detector")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [detector, *args], capture_output=True, text=True, check=False, cwd=tmp_path
        )

    shown = run("--help")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("usage: detector")
    version = run("--version")
    assert version.stdout.strip() == f"detector {__version__} (appservice-detectors)"
    out = tmp_path / "alerts.jsonl"
    replayed = run("replay", str(SAMPLE), "--out", str(out), "--quiet")
    assert replayed.returncode == 0, replayed.stderr
    # The same alerts, byte for byte, as the development environment gives.
    expected = tmp_path / "expected.jsonl"
    from detectors.cli.main import main

    assert main(["replay", str(SAMPLE), "--out", str(expected), "--quiet"]) == 0
    assert (
        hashlib.sha256(out.read_bytes()).digest() == hashlib.sha256(expected.read_bytes()).digest()
    )
    assert out.stat().st_size > 0
