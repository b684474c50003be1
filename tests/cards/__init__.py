"""Adaptive Cards as Microsoft's own library reads them (`roundtrip.js`, Node)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.node import ROOT, run_script

ROUNDTRIP_JS = Path(__file__).with_name("roundtrip.js")
PACKAGE = ROOT / "node_modules" / "adaptivecards" / "package.json"


def roundtrip(cards: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """For each card: `events` (parse and validation messages) and `card` (read back)."""
    answers: list[dict[str, Any]] = run_script(ROUNDTRIP_JS, cards, needs=PACKAGE)
    return answers
