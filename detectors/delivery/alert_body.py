"""A queue message's body as an alert, or a clear reason why it is not one.

The Functions host hands the notifier the decoded body (host.json: `messageEncoding:
base64`), so this reads UTF-8 JSON bytes. It checks only what the notifier relies on:
everything else in an alert is optional here, and unknown fields are ignored, as the
compatibility policy in docs/alerts.md promises consumers.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from detectors.delivery.errors import MalformedAlertError

MAX_BODY_BYTES = 64 * 1024
"""Largest body read: a queue message holds at most 64 KiB (alerts are trimmed to 48 KiB)."""
SUPPORTED_MAJOR = 1
"""The alert schema major version this notifier reads (`schemaVersion` "1.x")."""

MAX_DEPTH = 32
"""Deepest nesting of objects and arrays read: an alert's is 4 (investigation queries);
JSON nested hundreds deep reads but cannot be written back (orjson stops at 255)."""

_VERSION = re.compile(r"(?P<major>[0-9]{1,4})\.(?P<minor>[0-9]{1,4})")
# Printable ASCII without spaces: safe in HTTP headers and, encoded, in table keys.
# Matched whole (`fullmatch`): `$` would also match before a final newline.
_ALERT_ID = re.compile(r"[\x21-\x7e]{1,128}")


def read_alert(body: bytes) -> dict[str, Any]:
    """The alert in a message body; MalformedAlertError says what is wrong with it."""
    if len(body) > MAX_BODY_BYTES:
        raise MalformedAlertError(
            f"message body is {len(body):,} bytes; an alert is at most {MAX_BODY_BYTES:,}"
        )
    try:
        alert = orjson.loads(body)
    except orjson.JSONDecodeError as err:
        raise MalformedAlertError(f"message body is not UTF-8 JSON: {err}") from err
    if not isinstance(alert, dict):
        raise MalformedAlertError(
            f"message body is a JSON {type(alert).__name__}, not an alert object"
        )
    version = alert.get("schemaVersion")
    match = _VERSION.fullmatch(version) if isinstance(version, str) else None
    if match is None:
        raise MalformedAlertError(f"schemaVersion {_show(version)} is not MAJOR.MINOR")
    if int(match["major"]) != SUPPORTED_MAJOR:
        raise MalformedAlertError(
            f"schemaVersion {version} is not supported: this notifier reads {SUPPORTED_MAJOR}.x"
        )
    alert_id = alert.get("id")
    if not isinstance(alert_id, str) or not _ALERT_ID.fullmatch(alert_id):
        raise MalformedAlertError(
            f"id {_show(alert_id)} is not 1-128 printable ASCII characters without spaces"
        )
    problems = [
        f"{name} is missing or not {kind.__name__}"
        for name, kind in (("detection", str), ("title", str), ("principal", dict))
        if not isinstance(alert.get(name), kind)
    ]
    if not isinstance(alert.get("reasons", []), list):
        problems.append("reasons is not a list")
    if _depth(alert) > MAX_DEPTH:
        problems.append(f"it is nested more than {MAX_DEPTH} levels deep")
    if problems:
        raise MalformedAlertError(f"alert {alert_id}: " + "; ".join(problems))
    return alert


def _depth(value: Any) -> int:
    """How deep objects and arrays nest in a decoded JSON value (without recursion)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            if depth > MAX_DEPTH:
                break
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return deepest


def _show(value: Any) -> str:
    """A short, log-safe rendering of a value found where another was expected."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
