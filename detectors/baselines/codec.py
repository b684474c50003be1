"""Baselines as plain named properties an operator can read and edit in Storage Explorer.

Both stores use this one mapping, so a baseline looks the same wherever it is kept.
Sets are JSON text of `{value: "YYYY-MM-DD last seen"}`; counters are JSON lists.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from detectors.baselines.baseline import DIMENSIONS, Dimension, PrincipalBaseline
from detectors.model.days import day_from_text, day_text
from detectors.model.errors import StoreError
from detectors.model.observation import PrincipalType

FORMAT_VERSION = 1


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head.capitalize() + "".join(part.capitalize() for part in rest)


def to_properties(baseline: PrincipalBaseline) -> dict[str, Any]:
    """The baseline as flat properties (strings, numbers, ISO dates)."""
    props: dict[str, Any] = {
        "FormatVersion": FORMAT_VERSION,
        "PrincipalId": baseline.principal_id,
        "PrincipalType": baseline.principal_type.value,
        "Name": baseline.name,
        "FirstSeen": baseline.first_seen.isoformat(),
        "LastSeen": baseline.last_seen.isoformat(),
        "ActiveDays": baseline.active_days,
        "LastActiveDay": day_text(baseline.last_active_day)
        if baseline.last_active_day >= 0
        else "",
        "ResumedDay": day_text(baseline.resumed_day) if baseline.resumed_day >= 0 else "",
        "Operations": baseline.operations,
        "Failures": baseline.failures,
        "HoursUtc": orjson.dumps(list(baseline.hours)).decode(),
        "Weekdays": orjson.dumps(list(baseline.weekdays)).decode(),
        "LastHourSlot": baseline.last_hour_slot,
        "CurrentHourRuns": baseline.current_hour_runs,
        "CredentialReadsPerDay": _days_json(baseline.credential_reads_per_day),
        "WebjobRunsPeakHour": _days_json(baseline.webjob_runs_peak_hour),
        "LearnedThrough": baseline.learned_through.isoformat() if baseline.learned_through else "",
        # {dimension: {value: ["day seen", "day released"]}}: what only an alert taught.
        "Quarantine": orjson.dumps(
            {
                _camel(name): {
                    value: [day_text(seen), day_text(release)]
                    for value, (seen, release) in sorted(values.items())
                }
                for name, values in sorted(baseline.quarantine.items())
                if values
            }
        ).decode()
        if baseline.quarantine
        else "",
    }
    for name in DIMENSIONS:
        values: Mapping[str, int] = getattr(baseline, name)
        props[_camel(name)] = orjson.dumps(
            {value: day_text(day) for value, day in sorted(values.items())}
        ).decode()
    return props


def _days_json(per_day: Mapping[int, int]) -> str:
    return orjson.dumps({day_text(day): n for day, n in sorted(per_day.items())}).decode()


def from_properties(props: Mapping[str, Any]) -> PrincipalBaseline:
    """A baseline from stored properties; StoreError names the property that is wrong."""
    try:
        dims = {
            name: {
                str(value): day_from_text(str(day))
                for value, day in orjson.loads(props.get(_camel(name)) or "{}").items()
            }
            for name in DIMENSIONS
        }
        last_active = props.get("LastActiveDay") or ""
        resumed = props.get("ResumedDay") or ""
        return PrincipalBaseline(
            principal_id=str(props["PrincipalId"]),
            principal_type=PrincipalType(props["PrincipalType"]),
            name=str(props.get("Name") or ""),
            first_seen=_aware(props["FirstSeen"]),
            last_seen=_aware(props["LastSeen"]),
            active_days=int(props.get("ActiveDays") or 0),
            last_active_day=day_from_text(last_active) if last_active else -1,
            resumed_day=day_from_text(resumed) if resumed else -1,
            operations=int(props.get("Operations") or 0),
            failures=int(props.get("Failures") or 0),
            hours=_counts(props.get("HoursUtc"), 24),
            weekdays=_counts(props.get("Weekdays"), 7),
            last_hour_slot=int(props.get("LastHourSlot", -1)),
            current_hour_runs=int(props.get("CurrentHourRuns") or 0),
            credential_reads_per_day=_per_day(props.get("CredentialReadsPerDay")),
            webjob_runs_peak_hour=_per_day(props.get("WebjobRunsPeakHour")),
            families=dims[Dimension.FAMILIES],
            config_suffixes=dims[Dimension.CONFIG_SUFFIXES],
            sites=dims[Dimension.SITES],
            subscriptions=dims[Dimension.SUBSCRIPTIONS],
            tools=dims[Dimension.TOOLS],
            app_ids=dims[Dimension.APP_IDS],
            ips=dims[Dimension.IPS],
            networks=dims[Dimension.NETWORKS],
            wide_networks=dims[Dimension.WIDE_NETWORKS],
            credential_sites=dims[Dimension.CREDENTIAL_SITES],
            webjobs=dims[Dimension.WEBJOBS],
            change_slots=dims[Dimension.CHANGE_SLOTS],
            principals=dims[Dimension.PRINCIPALS],
            learned_through=_aware(learned) if (learned := props.get("LearnedThrough")) else None,
            quarantine=_quarantine(props.get("Quarantine")),
        )
    except (KeyError, ValueError, TypeError, AttributeError, orjson.JSONDecodeError) as err:
        who = props.get("PrincipalId", "?")
        raise StoreError(
            f"baseline of {who!r} cannot be read: {type(err).__name__}: {err}"
        ) from err


_DIMENSION_OF = {_camel(name): name.value for name in DIMENSIONS}


def _quarantine(text: Any) -> dict[str, dict[str, tuple[int, int]]]:
    """The stored quarantine (absent in baselines written before it existed)."""
    out: dict[str, dict[str, tuple[int, int]]] = {}
    for name, values in orjson.loads(text or "{}").items():
        dimension = _DIMENSION_OF.get(name)
        if dimension is None:
            raise ValueError(f"Quarantine names no dimension {name!r}")
        out[dimension] = {
            str(value): (day_from_text(str(seen)), day_from_text(str(release)))
            for value, (seen, release) in values.items()
        }
    return out


def _aware(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _counts(text: Any, size: int) -> tuple[int, ...]:
    values = [int(v) for v in orjson.loads(text)] if text else [0] * size
    if len(values) != size:
        raise ValueError(f"expected {size} counters, found {len(values)}")
    return tuple(values)


def _per_day(text: Any) -> dict[int, int]:
    return {day_from_text(day): int(n) for day, n in orjson.loads(text or "{}").items()}
