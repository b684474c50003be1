"""Runs one of the test suite's Node scripts: JSON on stdin, JSON on stdout.

A missing `node` or a missing package is a failure, never a skip: `make test` installs both
(`npm ci`), so their absence means a broken setup, not an optional test.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


class NodeUnavailableError(RuntimeError):
    """Node or a package a script needs is not installed, or the script itself failed."""


def run_script(script: Path, payload: Any, *, needs: Path, timeout: float = 120) -> Any:
    """The JSON `script` prints for `payload`; `needs` is a file its package installs."""
    node = shutil.which("node")
    if node is None:
        raise NodeUnavailableError("`node` is not on PATH: the tests need Node 20 (`make test`)")
    if not needs.is_file():
        raise NodeUnavailableError(f"{needs} is missing: run `npm ci` (or `make test`) in {ROOT}")
    try:
        done = subprocess.run(
            [node, str(script)],
            input=json.dumps(payload),
            capture_output=True,
            text=True,
            encoding="utf-8",
            cwd=ROOT,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as err:
        raise NodeUnavailableError(f"{script.name} took over {timeout} s") from err
    if done.returncode != 0:
        raise NodeUnavailableError(
            f"{script.name} exited {done.returncode}: {done.stderr.strip()[:500]}"
        )
    return json.loads(done.stdout)
