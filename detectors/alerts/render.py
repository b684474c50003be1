"""The alert: what a finding becomes for analysts and for the systems reading the queue.

Alerts are plain JSON-ready dicts with a stable key order. Nothing here reads a clock: the
same finding always renders to the same bytes, and the same activity to the same id.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import orjson

from detectors import __version__
from detectors.alerts.document import (
    ActorDoc,
    AlertDocument,
    NextStepDoc,
    OperationDoc,
    ResourceDoc,
)
from detectors.baselines.baseline import Dimension, PrincipalBaseline
from detectors.detections.evidence import tool_name
from detectors.detections.spec import Finding
from detectors.model.days import day_number
from detectors.model.observation import (
    ClientTool,
    Observation,
    Principal,
    PrincipalType,
    ResourceRef,
    SourceTable,
)
from detectors.model.reasons import NEXT_STEPS, Reason, ReasonCode
from detectors.settings.detection import DetectionSettings

SCHEMA_VERSION = "1.1"

_KQL_UNSAFE = re.compile(r"[\x00-\x1f\x7f]")
# The site (or slot) a resource id belongs to, lower case: config/list rows carry a suffix.
_SITE_ID = (
    'tolower(extract(@"^(/subscriptions/[^/]+/resourcegroups/[^/]+/providers/'
    'microsoft\\.web/sites/[^/]+(/slots/[^/]+)?)", 1, tolower(_ResourceId)))'
)


# Characters JSON allows raw that many line readers (Python's splitlines, JavaScript) break on.
_LINE_BREAKERS = (
    (b"\xe2\x80\xa8", b"\\u2028"),
    (b"\xe2\x80\xa9", b"\\u2029"),
    (b"\xc2\x85", b"\\u0085"),
)


def alert_line(alert: Mapping[str, Any]) -> bytes:
    """One alert as a JSON line that every line reader splits correctly."""
    data = orjson.dumps(alert)
    for raw, escaped in _LINE_BREAKERS:
        if raw in data:
            data = data.replace(raw, escaped)
    return data + b"\n"


def alert_id(detection: str, principal_id: str, observations: Sequence[Observation]) -> str:
    """Deterministic id: the same detection, principal and events always give the same id."""
    digest = hashlib.sha256()
    digest.update(f"{detection}\x1f{principal_id}".encode("utf-8", "surrogatepass"))
    for event_id in sorted(o.event_id for o in observations):
        digest.update(b"\x1f" + event_id.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:32]


def iso(moment: datetime) -> str:
    """ISO 8601 UTC with a Z, to the millisecond."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def kql_string(value: str) -> str:
    """A KQL string literal for any text, attacker-controlled included."""
    cleaned = _KQL_UNSAFE.sub(" ", value)
    return '"' + cleaned.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render(
    finding: Finding,
    baseline: PrincipalBaseline | None,
    settings: DetectionSettings,
    *,
    earlier: Sequence[Observation] = (),
) -> AlertDocument:
    """The alert document for a finding; `baseline` is the history it was judged against.

    `earlier`: the activity of the burst's earlier messages, for an update that lists none of
    the principal's own (its tool and client are then those it used in the burst).
    """
    obs = sorted(finding.observations, key=lambda o: (o.time, o.event_id))
    principal = finding.principal
    resources = _resources(obs)
    # The principal's own client and tool: another actor's (a `$site` login with the
    # profile it took) are that actor's, in `actors`.
    own = [o for o in obs if o.principal.id == principal.id] or [
        o for o in earlier if o.principal.id == principal.id
    ]
    app_ids = Counter(o.app_id for o in own if o.app_id)
    own_tools = Counter(o.tool for o in own if o.tool is not ClientTool.UNKNOWN)
    tools = {o.tool for o in obs if o.tool is not ClientTool.UNKNOWN}
    first, last = obs[0].time, obs[-1].time
    return {
        "schemaVersion": SCHEMA_VERSION,
        "id": alert_id(finding.detection.id, principal.id, obs),
        "detection": finding.detection.id,
        "title": finding.detection.title,
        "severity": finding.severity.value if finding.severity else None,
        "score": finding.score,
        "riskScore": risk_score(finding.score, settings),
        "summary": _summary(finding, resources),
        "principal": {
            "id": principal.id,
            "name": principal.name,
            "type": principal.type.value,
            "appId": app_ids.most_common(1)[0][0] if app_ids else None,
            "tool": own_tools.most_common(1)[0][0].value if own_tools else ClientTool.UNKNOWN.value,
        },
        "resource": _resource_json(resources[0]),
        "resources": [_resource_json(r) for r in resources],
        "firstSeen": iso(first),
        "lastSeen": iso(last),
        "operations": _operations(obs),
        "sourceIps": sorted({o.source_ip for o in obs if o.source_ip}),
        "tools": sorted(t.value for t in tools),
        "actors": actors(obs, principal),
        "reasons": [
            {"code": r.code.value, "message": r.message, "weight": r.weight}
            for r in finding.reasons
        ],
        "history": _history(baseline, first, settings),
        "mitre": [
            {"id": t.id, "name": t.name, "tactics": list(t.tactics)}
            for t in finding.detection.mitre
        ],
        "investigation": {
            "steps": list(finding.detection.investigation),
            "nextSteps": next_steps(finding.reasons),
            "benignCauses": list(finding.detection.benign_causes),
            "queries": _queries(
                principal_id=principal.id,
                kind=principal.type,
                resources=resources,
                first=first,
                last=last,
                obs=obs,
            ),
        },
        "eventIds": [o.event_id for o in obs],
        "tenantId": _tenant(obs),
        "detectorVersion": __version__,
    }


def actors(obs: Sequence[Observation], principal: Principal) -> list[ActorDoc]:
    """Who did what of `obs`: the principal first, then every other actor by first action."""
    by_actor: dict[str, list[Observation]] = {}
    for o in sorted(obs, key=lambda o: (o.principal.id != principal.id, o.time, o.event_id)):
        by_actor.setdefault(o.principal.id, []).append(o)
    out: list[ActorDoc] = []
    for actor_id, done in by_actor.items():
        who = principal if actor_id == principal.id else done[0].principal
        out.append(
            {
                "role": "principal" if actor_id == principal.id else "other",
                "id": who.id,
                "name": who.name,
                "type": who.type.value,
                "appIds": sorted({o.app_id for o in done if o.app_id}),
                "tools": sorted({o.tool.value for o in done if o.tool is not ClientTool.UNKNOWN}),
                "sourceIps": sorted({o.source_ip for o in done if o.source_ip}),
                "operations": _operations(done),
                "firstSeen": iso(min(o.time for o in done)),
                "lastSeen": iso(max(o.time for o in done)),
            }
        )
    return out


def burst_activity(obs: Sequence[Observation], principal: Principal) -> dict[str, Any]:
    """The whole activity of a burst so far, as an update's `burst` describes it."""
    ordered = sorted(obs, key=lambda o: (o.time, o.event_id))
    return {
        "lastSeen": iso(ordered[-1].time),
        "resources": [_resource_json(r) for r in _resources(ordered)],
        "operations": _operations(ordered),
        "actors": actors(ordered, principal),
    }


def risk_score(score: float, settings: DetectionSettings) -> int:
    """The score on the 0-100 scale SIEMs read: linear between (0, 0), (alert threshold, 21),
    (medium threshold, 47), (high threshold, 73) and (twice the high threshold, 100), and 100
    above; so 21-46 is low, 47-72 medium and 73-100 high, as the thresholds band the score."""
    points = (
        (0.0, 0),
        (settings.alert_threshold, 21),
        (settings.medium_threshold, 47),
        (settings.high_threshold, 73),
        (2 * settings.high_threshold, 100),
    )
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        if score < x1:
            share = max(score - x0, 0.0) / (x1 - x0) if x1 > x0 else 1.0
            return min(y1 - 1, int(y0 + (y1 - y0) * share + 0.5))
    return 100


def next_steps(reasons: Sequence[Reason]) -> list[NextStepDoc]:
    """What to check next for each reason (`NEXT_STEPS`), the strongest reason first."""
    seen: set[ReasonCode] = set()
    out: list[NextStepDoc] = []
    for reason in sorted(reasons, key=lambda r: -r.weight):
        if reason.code in seen:
            continue
        seen.add(reason.code)
        out.append({"code": reason.code.value, "step": NEXT_STEPS[reason.code]})
    return out


def _tenant(obs: Sequence[Observation]) -> str | None:
    """The Entra tenant most of the activity's tokens came from, where the logs carry it."""
    tenants = Counter(o.tenant_id for o in obs if o.tenant_id)
    return tenants.most_common(1)[0][0] if tenants else None


def _resources(obs: Sequence[Observation]) -> list[ResourceRef]:
    """Sites touched, the most active first."""
    counts: Counter[ResourceRef] = Counter()
    for o in obs:
        counts[o.resource] += o.count
    return sorted(counts, key=lambda r: (-counts[r], r.id))


def _resource_json(ref: ResourceRef) -> ResourceDoc:
    return {
        "id": ref.id,
        "subscriptionId": ref.subscription_id,
        "resourceGroup": ref.resource_group,
        "site": ref.site,
        "slot": ref.slot,
    }


def _operations(obs: Sequence[Observation]) -> list[OperationDoc]:
    counts: Counter[tuple[str, str]] = Counter()
    for o in obs:
        counts[_operation_name(o), o.status.value] += o.count
    return [
        {"name": name, "count": n, "status": status} for (name, status), n in sorted(counts.items())
    ]


def _operation_name(obs: Observation) -> str:
    if obs.table is SourceTable.AZURE_ACTIVITY:
        if obs.config_suffix:
            return f"{obs.operation} ({obs.config_suffix})"
        return obs.operation
    if obs.table is SourceTable.APP_SERVICE_AUDIT:
        return f"{tool_name(obs.tool)} login"
    return f"WebJob file {obs.operation.lower()}: {obs.webjob}"


def _summary(finding: Finding, resources: Sequence[ResourceRef]) -> str:
    p = finding.principal
    sites = ", ".join(r.site + (f"/{r.slot}" if r.slot else "") for r in resources[:3])
    more = f" and {len(resources) - 3} more" if len(resources) > 3 else ""
    top = max(finding.reasons, key=lambda r: r.weight).message if finding.reasons else ""
    return f"{p.name} ({p.type.value}) on {sites}{more}: {top}"


def _history(
    baseline: PrincipalBaseline | None, at: datetime, settings: DetectionSettings
) -> dict[str, Any]:
    """How the principal usually behaves, to set the alert against."""
    if baseline is None:
        return {"known": False}
    today, age = day_number(at), settings.baseline_max_age_days

    def known(dimension: Dimension) -> list[str]:
        return sorted(
            v for v in getattr(baseline, dimension) if baseline.knows(dimension, v, today, age)
        )

    busy = sorted(range(24), key=lambda h: -baseline.hours[h])
    return {
        "known": True,
        "firstSeen": iso(baseline.first_seen),
        "lastSeen": iso(baseline.last_seen),
        "activeDays": baseline.history_days(today),
        "sites": len(known(Dimension.SITES)),
        "tools": known(Dimension.TOOLS),
        "networks": len(known(Dimension.NETWORKS)),
        "operations": known(Dimension.FAMILIES),
        "busiestHoursUtc": sorted(h for h in busy[:6] if baseline.hours[h]),
        "failureRate": round(baseline.failures / baseline.operations, 3)
        if baseline.operations
        else 0.0,
    }


def _queries(
    *,
    principal_id: str,
    kind: PrincipalType,
    resources: Sequence[ResourceRef],
    first: datetime,
    last: datetime,
    obs: Sequence[Observation],
) -> list[dict[str, str]]:
    """Ready-to-run KQL for the principal and the sites, a day either side of the activity."""
    start, end = iso(first - timedelta(days=1)), iso(last + timedelta(days=1))
    window = f"| where TimeGenerated between (datetime({start}) .. datetime({end}))"
    sites = ", ".join(kql_string(r.id) for r in resources[:20])
    on_sites = f"| extend SiteId = {_SITE_ID}\n| where SiteId in ({sites})"
    queries: list[dict[str, str]] = []
    if kind is not PrincipalType.PUBLISHING_USER and principal_id:
        queries.append(
            {
                "title": "Everything this principal did in the Activity Log around the alert",
                "query": "\n".join(
                    [
                        "AzureActivity",
                        window,
                        f"| where Caller =~ {kql_string(principal_id)}",
                        "| where ActivityStatusValue !in~ ('Start', 'Started')",
                        "| project TimeGenerated, OperationNameValue, ActivityStatusValue, "
                        "CallerIpAddress, _ResourceId, AppId = tostring(parse_json(Claims).appid)",
                        "| order by TimeGenerated asc",
                    ]
                ),
            }
        )
    queries.append(
        {
            "title": "Credential and WebJob operations on these sites by anyone",
            "query": "\n".join(
                [
                    "AzureActivity",
                    window,
                    on_sites,
                    "| where OperationNameValue has_any ('publishxml', 'config/list', "
                    "'newpassword', 'basicpublishingcredentialspolicies', 'listkeys', "
                    "'listsecrets', 'webjobs')",
                    "| where ActivityStatusValue !in~ ('Start', 'Started')",
                    "| summarize Operations = count(), Callers = make_set(Caller, 20) "
                    "by OperationNameValue, _ResourceId",
                ]
            ),
        }
    )
    queries.append(
        {
            "title": "Kudu, FTP and Web Deploy logins to these sites",
            "query": "\n".join(
                [
                    "AppServiceAuditLogs",
                    window,
                    on_sites,
                    "| project TimeGenerated, User, UserDisplayName, UserAddress, Protocol, "
                    "_ResourceId",
                    "| order by TimeGenerated asc",
                ]
            ),
        }
    )
    if any(o.table is SourceTable.APP_SERVICE_FILE_AUDIT or o.webjob for o in obs):
        queries.append(
            {
                "title": "WebJob files written on these sites",
                "query": "\n".join(
                    [
                        "AppServiceFileAuditLogs",
                        window,
                        on_sites,
                        "| where Path has 'App_Data' and Path has 'jobs'",
                        "| project TimeGenerated, OperationName, Path, Process, _ResourceId",
                        "| order by TimeGenerated asc",
                    ]
                ),
            }
        )
    return queries


MAX_MESSAGE_BYTES = 48 * 1024
"""Largest alert JSON that fits a 64 KiB queue message once base64-encoded."""
_KEEP = 20
_TEXT = 500


def fit(alert: dict[str, Any], max_bytes: int = MAX_MESSAGE_BYTES) -> dict[str, Any]:
    """The alert, trimmed in a fixed order until its JSON fits `max_bytes`; never dropped.

    Lists are cut to their first entries and long texts shortened; `truncated` names
    what was cut, with the original lengths, so a consumer knows to look up the rest.
    """
    if len(orjson.dumps(alert)) <= max_bytes:
        return alert
    out: dict[str, Any] = orjson.loads(orjson.dumps(alert))
    truncated: dict[str, int] = {}
    out["truncated"] = truncated

    def cut_list(container: dict[str, Any], key: str, label: str) -> None:
        values = container.get(key)
        if isinstance(values, list) and len(values) > _KEEP:
            truncated[label] = len(values)
            container[key] = values[:_KEEP]

    def cut_text(container: dict[str, Any], key: str, label: str) -> None:
        value = container.get(key)
        if isinstance(value, str) and len(value) > _TEXT:
            truncated[label] = len(value)
            container[key] = value[:_TEXT] + "…"

    investigation = out.get("investigation") or {}

    def cut_reasons() -> None:
        for i, reason in enumerate(out.get("reasons") or []):
            cut_text(reason, "message", f"reasons[{i}].message")

    def cut_queries() -> None:
        for i, query in enumerate(investigation.get("queries") or []):
            cut_text(query, "query", f"investigation.queries[{i}].query")

    burst = out.get("burst") or {}

    def cut_actors(container: dict[str, Any], label: str) -> None:
        cut_list(container, "actors", label)
        for i, actor in enumerate(container.get("actors") or []):
            for key in ("operations", "sourceIps", "appIds", "tools"):
                cut_list(actor, key, f"{label}[{i}].{key}")
            cut_text(actor, "name", f"{label}[{i}].name")

    steps: list[Callable[[], None]] = [
        lambda: cut_list(out, "eventIds", "eventIds"),
        lambda: cut_list(burst, "operations", "burst.operations"),
        lambda: cut_list(burst, "resources", "burst.resources"),
        lambda: cut_actors(burst, "burst.actors"),
        lambda: cut_list(out, "operations", "operations"),
        lambda: cut_list(out, "resources", "resources"),
        lambda: cut_list(out, "sourceIps", "sourceIps"),
        lambda: cut_actors(out, "actors"),
        lambda: cut_text(out, "summary", "summary"),
        cut_reasons,
        cut_queries,
        lambda: cut_text(out.get("principal") or {}, "name", "principal.name"),
    ]
    for step in steps:
        step()
        if len(orjson.dumps(out)) <= max_bytes:
            return out
    # Still too large: keep what identifies and explains the alert, in ever shorter forms;
    # the last one is bounded whatever the input (texts cut, lists cut, messages dropped).
    keep = (
        "schemaVersion",
        "id",
        "detection",
        "title",
        "severity",
        "score",
        "principal",
        "resource",
        "firstSeen",
        "lastSeen",
        "reasons",
        "mitre",
    )
    minimal = {k: out[k] for k in keep if k in out}
    minimal["truncated"] = {**truncated, "everythingElse": 1}
    for text, items in ((_TEXT, _KEEP), (40, 5)):
        minimal["reasons"] = [
            {**r, "message": _cut(r.get("message"), text)} for r in (out.get("reasons") or [])
        ][:items]
        minimal["mitre"] = [
            {"id": _cut(m.get("id"), text), "name": _cut(m.get("name"), text)}
            for m in (out.get("mitre") or [])
        ][:items]
        for part in ("principal", "resource"):
            if isinstance(out.get(part), dict):
                minimal[part] = {k: _cut(v, text * 4) for k, v in out[part].items()}
        minimal["title"] = _cut(out.get("title"), text)
        if len(orjson.dumps(minimal)) <= max_bytes:
            break
    return minimal


def _cut(value: Any, limit: int) -> Any:
    """Text longer than `limit` characters, cut with an ellipsis; anything else as it is."""
    return value[:limit] + "…" if isinstance(value, str) and len(value) > limit else value
