"""Records in Azure Monitor's resource-log schema: what diagnostic settings write to a
storage account (one record per line of each hourly `PT1H.json` blob) or deliver to an Event
Hub (`{"records": [...]}`), renamed to the columns of the Log Analytics tables.

Two kinds of record share the schema (`time`, `resourceId`, `operationName`, `category` at
the top): the Activity Log's (`resultType`, `resultSignature`, `callerIpAddress`, the token
under `identity`, no `caller`) and the App Service logs' (`Category` names the table, the
columns sit under `Properties`). A record of any other category keeps its category as its
table, so that replay counts it as another table's and skips it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from detectors.model.observation import SourceTable

ACTIVITY_CATEGORIES: Final = frozenset(
    {
        "administrative",
        "security",
        "servicehealth",
        "alert",
        "recommendation",
        "policy",
        "autoscale",
        "resourcehealth",
    }
)
"""The Activity Log's own categories: its records are AzureActivity rows."""

_APP_SERVICE_TABLES: Final = {
    SourceTable.APP_SERVICE_AUDIT.value.lower(): SourceTable.APP_SERVICE_AUDIT,
    SourceTable.APP_SERVICE_FILE_AUDIT.value.lower(): SourceTable.APP_SERVICE_FILE_AUDIT,
}
_APP_SERVICE_COLUMNS: Final = {
    name.lower(): name
    for name in ("User", "UserDisplayName", "UserAddress", "Protocol", "Path", "Process")
}

_UPN_CLAIMS: Final = ("http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn", "upn")
_OID_CLAIMS: Final = ("http://schemas.microsoft.com/identity/claims/objectidentifier", "oid")


def _field(record: Mapping[str, Any], name: str) -> Any:
    """A top-level field in the schema's casing or the Pascal casing App Service uses."""
    value = record.get(name)
    return record.get(name[:1].upper() + name[1:]) if value is None else value


def matches(record: Mapping[str, Any]) -> bool:
    """A resource-log record: its common top-level fields, and no Log Analytics `Type`."""
    return (
        "Type" not in record
        and isinstance(_field(record, "time"), str)
        and isinstance(_field(record, "category"), str)
        and isinstance(_field(record, "operationName"), str)
        and _field(record, "resourceId") is not None
    )


def columns(record: Mapping[str, Any]) -> dict[str, Any]:
    """The record renamed to the columns of its table."""
    category = str(_field(record, "category"))
    if category.lower() in ACTIVITY_CATEGORIES or "resultType" in record or "identity" in record:
        return _activity(record, category)
    table = _APP_SERVICE_TABLES.get(category.lower())
    resource_id = str(_field(record, "resourceId"))
    row: dict[str, Any] = {
        "TimeGenerated": _field(record, "time"),
        "OperationName": _field(record, "operationName"),
        "Category": category,
        "ResourceId": resource_id,
        "_ResourceId": resource_id.lower(),
        # Another category (AppServiceHTTPLogs, a storage account's logs...) stays itself.
        "Type": table.value if table is not None else category,
    }
    properties = _field(record, "properties")
    if table is not None and isinstance(properties, dict):
        for key, value in properties.items():
            if isinstance(key, str):
                column = _APP_SERVICE_COLUMNS.get(key.lower())
                if column is not None:
                    row[column] = value
                elif key.lower() == "operationname" and not row["OperationName"]:
                    row["OperationName"] = value
    return row


def _activity(record: Mapping[str, Any], category: str) -> dict[str, Any]:
    identity = record.get("identity")
    identity = identity if isinstance(identity, dict) else {}
    claims = identity.get("claims")
    properties = record.get("properties")
    properties = properties if isinstance(properties, dict) else {}
    resource_id = str(_field(record, "resourceId"))
    row: dict[str, Any] = {
        "TimeGenerated": _field(record, "time"),
        "OperationNameValue": _field(record, "operationName"),
        "ActivityStatusValue": record.get("resultType"),
        "CallerIpAddress": record.get("callerIpAddress"),
        "CorrelationId": record.get("correlationId"),
        "ResourceId": resource_id,
        "_ResourceId": resource_id.lower(),
        "CategoryValue": properties.get("eventCategory") or category,
        "Level": record.get("level"),
        "Properties": properties,
        "Type": SourceTable.AZURE_ACTIVITY.value,
    }
    # The Activity Log's `caller`, which this schema leaves out: the UPN claim for a user,
    # the object id for a service principal or managed identity.
    if isinstance(claims, dict):
        row["Claims"] = claims
        caller = _first(claims, _UPN_CLAIMS) or _first(claims, _OID_CLAIMS)
        if caller is not None:
            row["Caller"] = caller
    if isinstance(identity.get("authorization"), dict):
        row["Authorization"] = identity["authorization"]
    status = properties.get("statusCode")
    if not status and isinstance(record.get("resultSignature"), str):
        # `Succeeded.OK`, `Started.`: the HTTP status after the dot.
        status = record["resultSignature"].partition(".")[2]
    if status:
        row["ActivitySubstatusValue"] = status
    for column, key in (("EventDataId", "eventDataId"), ("TenantId", "tenantId")):
        value = properties.get(key) or record.get(key)
        if value:
            row[column] = value
    subscription = _subscription(resource_id)
    if subscription:
        row["SubscriptionId"] = subscription
    return {key: value for key, value in row.items() if value is not None}


def _first(claims: Mapping[str, Any], names: tuple[str, ...]) -> str | None:
    for name in names:
        value = claims.get(name)
        if isinstance(value, str) and value:
            return value
    return None


def _subscription(resource_id: str) -> str | None:
    parts = resource_id.split("/")
    for i, part in enumerate(parts[:-1]):
        if part.lower() == "subscriptions":
            return parts[i + 1].lower() or None
    return None
