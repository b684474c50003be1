"""Analyst feedback on an alert: teach its activity to the baseline, or keep it out.

When an alert leaves the engine, `alert_record` notes every value its activity teaches a
baseline (sites, tools, networks, operations, jobs ... with the day each was seen) and
which of them were new to the principal at that moment. That record is all feedback
needs later, whenever it comes:

- benign (`teach`): the values go into the principal's baseline as seen on the alert's day,
  and out of its quarantine, so the same activity is no longer new;
- malicious (`unlearn`): the values that were new are taken out again, from the
  baseline's quarantine as well (see `PrincipalBaseline.quarantine`), so the same activity
  alerts again and is never released.

Pure functions: the command line reads and writes the store, with ETags.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from detectors.baselines.baseline import DIMENSIONS, PrincipalBaseline, learn
from detectors.model.days import day_from_text, day_number, day_text
from detectors.model.observation import Observation, PrincipalType
from detectors.settings.detection import DetectionSettings

RECORD_VERSION = 1
_UNBOUNDED = 1 << 30


def alert_record(
    alert: Mapping[str, Any],
    observations: Iterable[Observation],
    baseline: PrincipalBaseline | None,
    settings: DetectionSettings,
) -> dict[str, Any]:
    """What feedback on this alert needs: the values its activity teaches, and the new ones.

    `observations` are the window's observations of the alert's principal (those the
    alert lists are picked by event id); `baseline` is the one it was scored against.
    """
    wanted = set(alert.get("eventIds") or ())
    mine = sorted(
        (o for o in observations if o.event_id in wanted), key=lambda o: (o.time, o.event_id)
    )
    fresh = learn(None, mine, max_age_days=_UNBOUNDED, max_values=_UNBOUNDED)
    values: dict[str, dict[str, str]] = {}
    novel: dict[str, list[str]] = {}
    if fresh is not None:
        today = day_number(fresh.last_seen)
        for name in DIMENSIONS:
            seen: Mapping[str, int] = getattr(fresh, name)
            if not seen:
                continue
            values[name.value] = {value: day_text(day) for value, day in sorted(seen.items())}
            new = [
                value
                for value in sorted(seen)
                if baseline is None
                or not baseline.knows(name, value, today, settings.baseline_max_age_days)
            ]
            if new:
                novel[name.value] = new
    principal = alert.get("principal") or {}
    return {
        "version": RECORD_VERSION,
        "alertId": str(alert.get("id")),
        "detection": alert.get("detection"),
        "principalId": principal.get("id"),
        "principalName": principal.get("name"),
        "principalType": principal.get("type"),
        "firstSeen": alert.get("firstSeen"),
        "lastSeen": alert.get("lastSeen"),
        "values": values,
        "novel": novel,
        "verdict": None,
        # What an allow rule looks at, so that `allow add --dry-run` can try a rule on the
        # alerts a store recorded (records written before these keys are told apart).
        "allowView": {
            "appId": principal.get("appId"),
            "severity": alert.get("severity"),
            "sourceIps": list(alert.get("sourceIps") or ()),
            "resources": [
                {"site": r.get("site"), "slot": r.get("slot"), "id": r.get("id")}
                for r in alert.get("resources") or ()
            ],
            "reasonCodes": [r.get("code") for r in alert.get("reasons") or ()],
        },
    }


def teach(
    baseline: PrincipalBaseline | None, record: Mapping[str, Any]
) -> tuple[PrincipalBaseline, int]:
    """The baseline knowing every value of the alert (benign); and how many it lacked."""
    if baseline is None:
        seen = _time(str(record["lastSeen"]))
        baseline = PrincipalBaseline(
            principal_id=str(record["principalId"]),
            principal_type=PrincipalType(record.get("principalType") or "unknown"),
            name=str(record.get("principalName") or ""),
            first_seen=_time(str(record["firstSeen"])),
            last_seen=seen,
        )
    changes: dict[str, dict[str, int]] = {}
    added = 0
    for name, entries in (record.get("values") or {}).items():
        if name not in DIMENSIONS:
            continue
        current = dict(getattr(baseline, name))
        for value, text in entries.items():
            day = day_from_text(text)
            if value not in current:
                added += 1
            if current.get(value, -1) < day:
                current[value] = day
        changes[name] = current
    # What the alert taught is no longer held back: the analyst vouched for it.
    quarantine = _without(baseline, record.get("values") or {})
    return replace(baseline, **changes, quarantine=quarantine), added  # type: ignore[arg-type]


def unlearn(
    baseline: PrincipalBaseline, record: Mapping[str, Any]
) -> tuple[PrincipalBaseline, int]:
    """The baseline without the values that were new in the alert (malicious); how many."""
    changes: dict[str, dict[str, int]] = {}
    removed = 0
    for name, values in (record.get("novel") or {}).items():
        if name not in DIMENSIONS:
            continue
        current = dict(getattr(baseline, name))
        for value in values:
            if current.pop(value, None) is not None:
                removed += 1
        changes[name] = current
    # Nor is it ever released from the quarantine: the activity was the attacker's.
    quarantine = _without(baseline, record.get("novel") or {})
    for name, values in (record.get("novel") or {}).items():
        held = baseline.quarantine.get(name, {})
        removed += sum(
            1 for value in values if value in held and value not in getattr(baseline, name, {})
        )
    return replace(baseline, **changes, quarantine=quarantine), removed  # type: ignore[arg-type]


def _without(
    baseline: PrincipalBaseline, values: Mapping[str, Iterable[str]]
) -> dict[str, dict[str, tuple[int, int]]]:
    """The baseline's quarantine without these values ({dimension: values})."""
    out = {}
    for name, held in baseline.quarantine.items():
        drop = set(values.get(name) or ())
        kept = {value: days for value, days in held.items() if value not in drop}
        if kept:
            out[name] = kept
    return out


def _time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
