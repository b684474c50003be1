"""Text for a terminal: what an attacker put in a log must not steer the operator's screen."""

from __future__ import annotations

import unicodedata


def printable(text: str) -> str:
    """Attacker-controlled text made safe for a terminal: no control or format characters."""
    return "".join(ch if unicodedata.category(ch)[0] != "C" else f"\\u{ord(ch):04x}" for ch in text)
