"""Adaptive Cards as Microsoft's own library reads them (`roundtrip.js`, Node)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
ROUNDTRIP_JS = Path(__file__).with_name("roundtrip.js")
PACKAGE = ROOT / "node_modules" / "adaptivecards" / "package.json"


def roundtrip(cards: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """For each card: `events` (parse and validation messages) and `card` (read back)."""
    node = shutil.which("node")
    if node is None or not PACKAGE.is_file():
        raise RuntimeError("the card checks need Node and `npm ci` (see `make test`)")
    done = subprocess.run(
        [node, str(ROUNDTRIP_JS)],
        input=json.dumps(cards),
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"roundtrip.js exited {done.returncode}: {done.stderr[:500]}")
    answers: list[dict[str, Any]] = json.loads(done.stdout)
    return answers
