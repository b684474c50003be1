"""The Sentinel table of alerts, declared once: its columns, the stream that feeds it, and
how each column is computed from an alert.

Everything else follows from `COLUMNS`: the rows the `sentinel` destination uploads (`row`),
the custom table and the data collection rule's stream declaration in the Bicep (it loads
`infra/sentinel/alert-table.json`, which `table_document` writes and a test compares), and
the schema the analytic rule's KQL is checked against. `ONLY_IN_ALERT` names the top-level
alert fields that have no column of their own and are read from the `Alert` column; a test
holds the two against docs/alert.schema.json, so a new alert field cannot miss the table
unnoticed.

One row per alert. `TimeGenerated` is the moment the notifier delivered it (the stream
carries it as `DeliveredAt`, which the rule's transform turns into `TimeGenerated`), not
the activity's time (`FirstSeen`, `LastSeen`): an alert reaches the table about half an
hour after its events, and the analytic rule must see each row in the run after it lands.
Pure: no clock, no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import orjson

from detectors.alerts.render import fit

TABLE = "AppServiceDetectorAlerts_CL"
"""The custom table (`_CL`: a custom table's suffix)."""
STREAM = "Custom-AppServiceDetectorAlerts"
"""The data collection rule's input stream the rows are posted to."""
DELIVERED_AT = "DeliveredAt"
"""The stream's time column; the transform makes it the table's `TimeGenerated`."""
TRANSFORM = f"source | extend TimeGenerated = {DELIVERED_AT} | project-away {DELIVERED_AT}"
"""The data collection rule's transformation from the stream to the table."""

FIELD_BYTES = 32_000
"""Bound on one value's JSON: Log Analytics keeps 32 KB of a field (the Logs Ingestion API
64 KB) and cuts the rest, which would leave the `Alert` column unparseable."""
LIST_ENTRIES = 100
"""At most this many entries in a list column (the `Alert` column says what was cut)."""

RESERVED = frozenset(
    {"id", "_ResourceId", "_SubscriptionId", "TenantId", "Type", "UniqueId", "Title"}
)
"""Column names Log Analytics keeps for itself (hence `AadTenantId` and `AlertTitle`)."""


class ColumnType(StrEnum):
    """A column's type, as KQL and the stream declaration write it."""

    STRING = "string"
    INT = "int"
    REAL = "real"
    DATETIME = "datetime"
    DYNAMIC = "dynamic"

    @property
    def table_type(self) -> str:
        """The type as a workspace table's schema writes it (`dateTime`)."""
        return "dateTime" if self is ColumnType.DATETIME else self.value


@dataclass(frozen=True, kw_only=True, slots=True)
class Column:
    """One column: its name, type, meaning, the alert fields it is computed from, and how."""

    name: str
    type: ColumnType
    description: str
    fields: tuple[str, ...]
    """The top-level alert fields the value comes from."""
    value: Callable[[Mapping[str, Any]], Any]


def _get(*path: str) -> Callable[[Mapping[str, Any]], Any]:
    def value(alert: Mapping[str, Any]) -> Any:
        node: Any = alert
        for key in path:
            node = node.get(key) if isinstance(node, Mapping) else None
        return node

    return value


def _resources(alert: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Every site of the alert: `resources`, or `resource` alone in a trimmed alert."""
    listed = alert.get("resources")
    if isinstance(listed, list) and listed:
        return [r for r in listed if isinstance(r, Mapping)]
    single = alert.get("resource")
    return [single] if isinstance(single, Mapping) else []


def _site(resource: Mapping[str, Any]) -> str:
    site, slot = str(resource.get("site") or ""), resource.get("slot")
    return f"{site}/{slot}" if slot else site


def _unique(values: Iterable[Any]) -> list[str]:
    return list(dict.fromkeys(str(v) for v in values if v not in (None, "")))


def _burst_id(alert: Mapping[str, Any]) -> Any:
    # An alert no later finding updated is a burst of its own.
    return _get("burst", "id")(alert) or alert.get("id")


def _burst_sequence(alert: Mapping[str, Any]) -> Any:
    return _get("burst", "sequence")(alert) or 1


def _each(key: str, field: str) -> Callable[[Mapping[str, Any]], list[str]]:
    def value(alert: Mapping[str, Any]) -> list[str]:
        items = alert.get(key)
        if not isinstance(items, list):
            return []
        return _unique(item.get(field) for item in items if isinstance(item, Mapping))

    return value


def _strings(key: str) -> Callable[[Mapping[str, Any]], list[str]]:
    def value(alert: Mapping[str, Any]) -> list[str]:
        items = alert.get(key)
        return _unique(items) if isinstance(items, list) else []

    return value


def _whole(alert: Mapping[str, Any]) -> dict[str, Any]:
    # Trimmed as the queue trims (lists cut, texts shortened, `truncated` says what) to the
    # size Log Analytics keeps whole.
    return fit(dict(alert), FIELD_BYTES)


_S, _I, _R, _T, _D = (
    ColumnType.STRING,
    ColumnType.INT,
    ColumnType.REAL,
    ColumnType.DATETIME,
    ColumnType.DYNAMIC,
)

COLUMNS: tuple[Column, ...] = (
    Column(
        name="TimeGenerated",
        type=_T,
        description="When the detector delivered the alert to the workspace (UTC).",
        fields=(),
        value=lambda _alert: None,  # the stream's DeliveredAt, through the transform
    ),
    Column(
        name="AlertId",
        type=_S,
        description="The alert's id: the same activity always has the same id.",
        fields=("id",),
        value=_get("id"),
    ),
    Column(
        name="BurstId",
        type=_S,
        description="The burst the alert belongs to: the first alert's id (its own id when no "
        "later finding updated it). The analytic rule groups a burst into one incident by it.",
        fields=("burst", "id"),
        value=_burst_id,
    ),
    Column(
        name="BurstSequence",
        type=_I,
        description="1 for a burst's first alert, rising with each update.",
        fields=("burst",),
        value=_burst_sequence,
    ),
    Column(
        name="SchemaVersion",
        type=_S,
        description="The alert contract's version (docs/alert-contract.md).",
        fields=("schemaVersion",),
        value=_get("schemaVersion"),
    ),
    Column(
        name="Detection",
        type=_S,
        description="The detection that raised the alert (docs/detections.md).",
        fields=("detection",),
        value=_get("detection"),
    ),
    Column(
        name="AlertTitle",
        type=_S,
        description="The detection's title.",
        fields=("title",),
        value=_get("title"),
    ),
    Column(
        name="Severity",
        type=_S,
        description="low, medium or high.",
        fields=("severity",),
        value=_get("severity"),
    ),
    Column(
        name="Score",
        type=_R,
        description="The sum of the reasons' weights.",
        fields=("score",),
        value=_get("score"),
    ),
    Column(
        name="Summary",
        type=_S,
        description="One line: who, where, the strongest reason. Attacker-controlled text.",
        fields=("summary",),
        value=_get("summary"),
    ),
    Column(
        name="PrincipalId",
        type=_S,
        description="Who acted: a UPN, an object id, `$<site>` or `unattributed:<site>`.",
        fields=("principal",),
        value=_get("principal", "id"),
    ),
    Column(
        name="PrincipalName",
        type=_S,
        description="The principal's display name. Attacker-controlled text.",
        fields=("principal",),
        value=_get("principal", "name"),
    ),
    Column(
        name="PrincipalType",
        type=_S,
        description="user, servicePrincipal, managedIdentity, publishingUser or unknown.",
        fields=("principal",),
        value=_get("principal", "type"),
    ),
    Column(
        name="PrincipalAppId",
        type=_S,
        description="The client application of the principal's tokens, the most used.",
        fields=("principal",),
        value=_get("principal", "appId"),
    ),
    Column(
        name="Tool",
        type=_S,
        description="The principal's client tool in this activity (azureCli, portal, kudu...).",
        fields=("principal",),
        value=_get("principal", "tool"),
    ),
    Column(
        name="Tools",
        type=_D,
        description="Every client tool seen in the activity.",
        fields=("tools",),
        value=_strings("tools"),
    ),
    Column(
        name="SourceIps",
        type=_D,
        description="Client addresses, sorted.",
        fields=("sourceIps",),
        value=_strings("sourceIps"),
    ),
    Column(
        name="ResourceId",
        type=_S,
        description="The ARM id of the site (or slot) most active in the alert.",
        fields=("resource",),
        value=_get("resource", "id"),
    ),
    Column(
        name="ResourceIds",
        type=_D,
        description="The ARM ids of every site and slot the alert covers, most active first.",
        fields=("resource", "resources"),
        value=lambda alert: _unique(r.get("id") for r in _resources(alert)),
    ),
    Column(
        name="Sites",
        type=_D,
        description="Their names (`site` or `site/slot`).",
        fields=("resource", "resources"),
        value=lambda alert: _unique(_site(r) for r in _resources(alert)),
    ),
    Column(
        name="SubscriptionIds",
        type=_D,
        description="The subscriptions of those sites.",
        fields=("resource", "resources"),
        value=lambda alert: _unique(r.get("subscriptionId") for r in _resources(alert)),
    ),
    Column(
        name="RiskScore",
        type=_I,
        description="The score on a 0-100 scale (docs/alert-contract.md): low 21-46, medium "
        "47-72, high 73-100.",
        fields=("riskScore",),
        value=_get("riskScore"),
    ),
    Column(
        name="AadTenantId",
        type=_S,
        description="The Entra tenant of the principal's tokens (empty when the logs do not say).",
        fields=("tenantId",),
        value=_get("tenantId"),
    ),
    Column(
        name="DetectorVersion",
        type=_S,
        description="The detector's version that raised the alert.",
        fields=("detectorVersion",),
        value=_get("detectorVersion"),
    ),
    Column(
        name="ReasonCodes",
        type=_D,
        description="Why the activity is suspicious (docs/reasons.md), strongest evidence first "
        "as the alert lists it.",
        fields=("reasons",),
        value=_each("reasons", "code"),
    ),
    Column(
        name="MitreTechniques",
        type=_D,
        description="MITRE ATT&CK technique ids of the detection.",
        fields=("mitre",),
        value=_each("mitre", "id"),
    ),
    Column(
        name="MitreTactics",
        type=_D,
        description="MITRE ATT&CK tactics of those techniques, by name (Credential Access...).",
        fields=("mitre",),
        value=lambda alert: _unique(
            tactic
            for entry in alert.get("mitre") or ()
            if isinstance(entry, dict)
            for tactic in entry.get("tactics") or ()
        ),
    ),
    Column(
        name="FirstSeen",
        type=_T,
        description="The first event of the activity (UTC).",
        fields=("firstSeen",),
        value=_get("firstSeen"),
    ),
    Column(
        name="LastSeen",
        type=_T,
        description="The last event of the activity (UTC).",
        fields=("lastSeen",),
        value=_get("lastSeen"),
    ),
    Column(
        name="Alert",
        type=_D,
        description="The whole alert (docs/alerts.md), trimmed like a queue message if its JSON "
        "exceeds 32 KB (`truncated` then says what was cut).",
        fields=(),
        value=_whole,
    ),
)
"""The table's columns, in order."""

ONLY_IN_ALERT: frozenset[str] = frozenset(
    {"operations", "history", "investigation", "eventIds", "truncated", "actors"}
)
"""Top-level alert fields without a column: read them from `Alert` (`Alert.history`...)."""


def stream_columns() -> tuple[tuple[str, ColumnType], ...]:
    """The stream declaration: every column but `TimeGenerated`, and `DeliveredAt` first."""
    rest = tuple((c.name, c.type) for c in COLUMNS if c.name != "TimeGenerated")
    return ((DELIVERED_AT, ColumnType.DATETIME), *rest)


def row(alert: Mapping[str, Any], *, delivered_at: datetime) -> dict[str, Any]:
    """The stream row for one alert, JSON-ready, every value within `FIELD_BYTES`."""
    values: dict[str, Any] = {DELIVERED_AT: _timestamp(delivered_at)}
    for column in COLUMNS:
        if column.name == "TimeGenerated":
            continue
        values[column.name] = _bounded(column.value(alert), column.type)
    return values


def table_document() -> dict[str, Any]:
    """What the Bicep loads (`infra/sentinel/alert-table.json`): the table's schema, the
    stream declaration and the transformation, all from `COLUMNS`."""
    return {
        "tableName": TABLE,
        "streamName": STREAM,
        "outputStream": f"Custom-{TABLE}",
        "transformKql": TRANSFORM,
        "tableColumns": [
            {"name": c.name, "type": c.type.table_type, "description": c.description}
            for c in COLUMNS
        ],
        "streamColumns": [{"name": name, "type": kind.value} for name, kind in stream_columns()],
    }


def _timestamp(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("delivered_at must be an aware datetime")
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _bounded(value: Any, kind: ColumnType) -> Any:
    """A value as its column takes it: wrong types become null, long ones are cut."""
    if value is None:
        return None
    if kind is ColumnType.DYNAMIC:
        if isinstance(value, list):
            kept = value[:LIST_ENTRIES]
            while kept and len(orjson.dumps(kept)) > FIELD_BYTES:
                kept = kept[: len(kept) // 2]
            return kept
        return value
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if kind is ColumnType.REAL:
        return float(value) if number else None
    if kind is ColumnType.INT:
        return value if number and isinstance(value, int) else None
    text = str(value)
    if kind is ColumnType.DATETIME:
        return text
    # A character is at most 4 bytes of UTF-8 and JSON escapes control characters in 6.
    limit = FIELD_BYTES // 6
    return text if len(text) <= limit else text[:limit] + "…"
