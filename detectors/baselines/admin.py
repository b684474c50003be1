"""What operators do to baselines: find, read, forget a site, export and import.

Pure functions over `PrincipalBaseline`; the command line does the reading and the
ETag-conditional writing.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import replace
from typing import Any

import orjson

from detectors.baselines.baseline import DIMENSIONS, Dimension, PrincipalBaseline
from detectors.baselines.codec import from_properties, to_properties
from detectors.model.days import day_text
from detectors.model.errors import DetectorError
from detectors.model.observation import OperationFamily

SITE_DIMENSIONS = (Dimension.SITES, Dimension.CREDENTIAL_SITES, Dimension.WEBJOBS)
"""Dimensions whose values are site keys (`subscription/group/site[/slot]`, `.../job`)."""


def site_matches(value: str, wanted: str) -> bool:
    """Whether a site-keyed value belongs to the site an operator named.

    `wanted` is a site name (`contoso-api`: the site and its slots), `site/slot`, or a
    full key `subscription/group/site[/slot]` as `baselines show` prints it.
    """
    parts = value.casefold().split("/")
    target = wanted.strip().casefold().strip("/")
    if target.count("/") >= 2:
        return value.casefold() == target or value.casefold().startswith(target + "/")
    if len(parts) < 3:
        return False
    name, _, slot = target.partition("/")
    if parts[2] != name:
        return False
    return not slot or (len(parts) > 3 and parts[3] == slot)


def forget_site(baseline: PrincipalBaseline, site: str) -> tuple[PrincipalBaseline, list[str]]:
    """The baseline without the site in any dimension that holds it; the values removed."""
    changes: dict[str, dict[str, int]] = {}
    removed: list[str] = []
    for name in SITE_DIMENSIONS:
        values: Mapping[str, int] = getattr(baseline, name)
        gone = [v for v in values if site_matches(v, site)]
        if gone:
            changes[name] = {v: d for v, d in values.items() if v not in gone}
            removed += [f"{name}: {v}" for v in sorted(gone)]
    return replace(baseline, **changes), removed  # type: ignore[arg-type]


def selected(
    baseline: PrincipalBaseline,
    *,
    principal: str | None = None,
    site: str | None = None,
    families: Collection[OperationFamily] | None = None,
) -> bool:
    """Whether a baseline passes `baselines list` filters (`families`: the operation
    families of the detection asked for)."""
    if principal is not None:
        wanted = principal.casefold()
        if wanted not in baseline.principal_id.casefold() and wanted not in (
            baseline.name.casefold()
        ):
            return False
    if site is not None and not any(
        site_matches(v, site) for name in SITE_DIMENSIONS for v in getattr(baseline, name)
    ):
        return False
    return families is None or bool({f.value for f in families} & set(baseline.families))


def summary(baseline: PrincipalBaseline) -> dict[str, Any]:
    """One row of `baselines list`."""
    return {
        "principalId": baseline.principal_id,
        "name": baseline.name,
        "type": baseline.principal_type.value,
        "lastSeen": baseline.last_seen.isoformat(),
        "firstSeen": baseline.first_seen.isoformat(),
        "activeDays": baseline.active_days,
        "operations": baseline.operations,
        "sites": len(baseline.sites),
        "tools": sorted(baseline.tools),
        "networks": len(baseline.networks),
    }


def by_last_activity(baselines: Iterable[PrincipalBaseline]) -> list[PrincipalBaseline]:
    """Most recently active first; ties by principal id."""
    return sorted(baselines, key=lambda b: (-b.last_seen.timestamp(), b.principal_id))


def readable(baseline: PrincipalBaseline) -> list[str]:
    """A baseline as lines an operator reads: facts first, then each dimension's values."""
    hours = ", ".join(f"{h:02d}h:{n}" for h, n in enumerate(baseline.hours) if n)
    lines = [
        f"principal   {baseline.principal_id}",
        f"name        {baseline.name or '-'} ({baseline.principal_type.value})",
        f"seen        {baseline.first_seen:%Y-%m-%d %H:%M} .. {baseline.last_seen:%Y-%m-%d %H:%M}"
        " UTC",
        f"active      {baseline.active_days} day(s); {baseline.operations:,} operations, "
        f"{baseline.failures:,} failed",
        f"hours UTC   {hours or '-'}",
    ]
    if baseline.resumed_day >= 0:
        lines.append(f"back on     {day_text(baseline.resumed_day)} (history counts from there)")
    if baseline.learned_through:
        lines.append(f"learned to  {baseline.learned_through.isoformat()}")
    for name in DIMENSIONS:
        values: Mapping[str, int] = getattr(baseline, name)
        lines.append(f"{name} ({len(values)})")
        for value, day in sorted(values.items(), key=lambda item: (-item[1], item[0])):
            lines.append(f"  {day_text(day)}  {value}")
    return lines


def export_line(baseline: PrincipalBaseline) -> bytes:
    """One baseline as a JSON line of the stored properties (as Storage Explorer shows them)."""
    return orjson.dumps(to_properties(baseline)) + b"\n"


def import_line(text: str, where: str) -> PrincipalBaseline:
    """A baseline from an exported line; ValueError (TypeError) names the line and the fault."""
    try:
        props = orjson.loads(text)
    except orjson.JSONDecodeError as err:
        raise ValueError(f"{where}: not JSON ({err})") from None
    if not isinstance(props, dict):
        raise TypeError(f"{where}: not a JSON object")
    try:
        return from_properties(props)
    except DetectorError as err:
        raise ValueError(f"{where}: {err}") from None
