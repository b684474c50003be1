"""What an analyst needs first from an alert: who, what, where, severity, why, what next.

A `Digest` is read leniently from an alert that `read_alert` accepted: a field missing
(a trimmed alert keeps only what identifies it) or of an unexpected type is shown as
unknown, never an error. Its text is raw: each message builder escapes it for its format.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

SEVERITIES = ("high", "medium", "low")
_TEXT = 2000
_ITEMS = 20


@dataclass(frozen=True, kw_only=True, slots=True)
class Reason:
    """One reason the activity is suspicious."""

    code: str
    message: str
    weight: float | None


@dataclass(frozen=True, kw_only=True, slots=True)
class Digest:
    """The parts of an alert a chat message shows, most important first."""

    alert_id: str
    detection: str
    title: str
    severity: str
    """`high`, `medium` or `low`; `unknown` for anything else."""
    score: float | None
    summary: str
    who: str
    """Name and type, with the id when it differs from the name."""
    app_id: str
    sites: tuple[str, ...]
    """Sites (`site` or `site/slot`), most active first."""
    more_sites: int
    scope: str
    """Each subscription of the sites with its resource groups, most active first."""
    first_seen: str
    last_seen: str
    operations: tuple[str, ...]
    source_ips: tuple[str, ...]
    tools: tuple[str, ...]
    others: tuple[str, ...]
    """Other actors whose activity the alert carries, each with its addresses and tools
    (a `$site` login made with a taken profile): theirs, not the principal's."""
    reasons: tuple[Reason, ...]
    """Strongest first."""
    steps: tuple[str, ...]
    """What to check next for each reason (strongest first), then the detection's steps."""
    benign_causes: tuple[str, ...]
    mitre: tuple[str, ...]
    truncated: bool


def digest(alert: Mapping[str, Any]) -> Digest:
    """The digest of an alert (see `alert_body.read_alert` for what is guaranteed)."""
    principal = _mapping(alert.get("principal"))
    name, kind = _text(principal.get("name")), _text(principal.get("type"))
    pid = _text(principal.get("id"))
    who = name or pid or "unknown principal"
    if kind:
        who += f" ({kind})"
    if pid and pid != name and name:
        who += f", id {pid}"
    resources = [_mapping(r) for r in _list(alert.get("resources"))]
    main = _mapping(alert.get("resource"))
    if not resources and main:
        resources = [main]
    sites = tuple(_site(r) for r in resources if _site(r))
    total_sites = _truncated_count(alert, "resources", len(sites))
    # Grouped by subscription: an alert may span two of them.
    groups: dict[str, list[str]] = {}
    for r in resources or [main]:
        held = groups.setdefault(_text(r.get("subscriptionId")), [])
        group = _text(r.get("resourceGroup"))
        if group and group not in held:
            held.append(group)
    scope = "; ".join(
        f"{sub}: {', '.join(names[:6])}{' ...' if len(names) > 6 else ''}"
        if sub
        else ", ".join(names)
        for sub, names in list(groups.items())[:5]
    )
    others = tuple(
        _actor(a)
        for a in map(_mapping, _list(alert.get("actors")))
        if _text(a.get("role")) != "principal"
    )[:_ITEMS]
    next_steps = [
        _text(s.get("step"))
        for s in map(_mapping, _list(_mapping(alert.get("investigation")).get("nextSteps")))
    ]
    reasons = sorted(
        (
            Reason(
                code=_text(r.get("code")),
                message=_text(r.get("message")),
                weight=_number(r.get("weight")),
            )
            for r in map(_mapping, _list(alert.get("reasons")))
        ),
        key=lambda r: -(r.weight or 0.0),
    )
    investigation = _mapping(alert.get("investigation"))
    severity = _text(alert.get("severity")).lower()
    return Digest(
        alert_id=_text(alert.get("id")),
        detection=_text(alert.get("detection")),
        title=_text(alert.get("title")) or "Alert",
        severity=severity if severity in SEVERITIES else "unknown",
        score=_number(alert.get("score")),
        summary=_text(alert.get("summary")),
        who=who,
        app_id=_text(principal.get("appId")),
        sites=sites[:_ITEMS],
        more_sites=max(0, total_sites - min(len(sites), _ITEMS)),
        scope=scope,
        first_seen=_text(alert.get("firstSeen")),
        last_seen=_text(alert.get("lastSeen")),
        operations=tuple(_operation(_mapping(o)) for o in _list(alert.get("operations"))),
        source_ips=_texts(alert.get("sourceIps")),
        tools=_texts(alert.get("tools")),
        others=others,
        reasons=tuple(reasons[:_ITEMS]),
        steps=tuple(
            dict.fromkeys(s for s in (*next_steps, *_texts(investigation.get("steps"))) if s)
        )[:_ITEMS],
        benign_causes=_texts(investigation.get("benignCauses")),
        mitre=tuple(
            " ".join(p for p in (_text(m.get("id")), _text(m.get("name"))) if p)
            for m in map(_mapping, _list(alert.get("mitre")))
        )[:_ITEMS],
        truncated=isinstance(alert.get("truncated"), Mapping),
    )


def _actor(actor: Mapping[str, Any]) -> str:
    """Another actor as one line: who, from where, with what."""
    who = _text(actor.get("name")) or _text(actor.get("id")) or "unknown"
    kind = _text(actor.get("type"))
    ips, tools = (
        ", ".join(_texts(actor.get("sourceIps"))[:5]),
        ", ".join(_texts(actor.get("tools"))),
    )
    return f"{who}{f' ({kind})' if kind else ''}: " + (
        "; ".join(p for p in (ips, tools) if p) or "no address"
    )


def _text(value: Any) -> str:
    """A string field as text (numbers shown, anything else empty), bounded."""
    if isinstance(value, str):
        return value[:_TEXT]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:g}"
    return ""


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> Sequence[Any]:
    return value[:_ITEMS] if isinstance(value, list) else ()


def _texts(value: Any) -> tuple[str, ...]:
    return tuple(t for t in map(_text, _list(value)) if t)


def _site(resource: Mapping[str, Any]) -> str:
    site, slot = _text(resource.get("site")), _text(resource.get("slot"))
    return f"{site}/{slot}" if site and slot else site


def _operation(operation: Mapping[str, Any]) -> str:
    """`NAME: 5 succeeded`."""
    name, status = _text(operation.get("name")), _text(operation.get("status"))
    count = _number(operation.get("count"))
    detail = " ".join(p for p in (f"{count:g}" if count is not None else "", status) if p)
    return f"{name or 'unknown operation'}: {detail}" if detail else name or "unknown operation"


def _truncated_count(alert: Mapping[str, Any], key: str, shown: int) -> int:
    """How many entries a list had before `fit` cut it (`truncated` records it)."""
    truncated = _mapping(alert.get("truncated"))
    original = _number(truncated.get(key))
    if original is not None:
        return max(shown, int(original))
    values = alert.get(key)
    return max(shown, len(values)) if isinstance(values, list) else shown
