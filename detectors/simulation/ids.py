"""Seeded random identifiers: GUIDs, hex ids, token fragments, PUIDs."""

from __future__ import annotations

import base64
import random

# The variant nibble of a version-4 GUID is one of 8, 9, a, b.
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


def make_rng(*parts: object) -> random.Random:
    """A generator seeded by the parts' text, stable across runs, platforms and hash seeds."""
    # Simulation data, not secrets: a reproducible PRNG is the point.
    return random.Random(":".join(str(part) for part in parts))  # noqa: S311


def between(rng: random.Random, low: int, high: int) -> int:
    """A uniform integer in [low, high]; much cheaper than randint on hot paths."""
    return low + int(rng.random() * (high - low + 1))


def guid(rng: random.Random) -> str:
    """A version-4 GUID in its usual lower-case 8-4-4-4-12 form."""
    h = rng.randbytes(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"


def guids(rng: random.Random, count: int) -> list[str]:
    """`count` GUIDs from one draw, for hot paths that need several at once."""
    h = rng.randbytes(16 * count).hex()
    return [
        f"{h[i : i + 8]}-{h[i + 8 : i + 12]}-4{h[i + 13 : i + 16]}-{_VARIANT[h[i + 16]]}"
        f"{h[i + 17 : i + 20]}-{h[i + 20 : i + 32]}"
        for i in range(0, 32 * count, 32)
    ]


def hex32(rng: random.Random) -> str:
    """32 lower-case hex digits, the form role assignment and principal ids take in evidence."""
    return rng.randbytes(16).hex()


def b64url(rng: random.Random, length: int) -> str:
    """Base64url characters, the alphabet of token ids (`uti`, `aio`, `rh`)."""
    return base64.urlsafe_b64encode(rng.randbytes(length * 3 // 4 + 3)).decode()[:length]


def puid(rng: random.Random) -> str:
    """A 16-hex-digit Entra PUID, as in the `puid` claim and Kudu audit rows."""
    return f"1003{rng.getrandbits(48):012X}"
