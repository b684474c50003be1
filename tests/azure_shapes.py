"""Rows of `rowkit` (Log Analytics columns) written in the other shapes Azure publishes the
same events in: the resource-log schema of diagnostic settings (storage archive, Event Hubs),
the Activity Log REST API (`az monitor activity-log list`, `az rest`) and the Python SDK's
`as_dict()` dump. Written from the shapes Microsoft documents, field by field."""

from __future__ import annotations

import json
import re
from typing import Any

_REST_STATUS = {
    "Start": "Started",
    "Success": "Succeeded",
    "Failure": "Failed",
    "Accept": "Accepted",
}


def _loads(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) and value else value


def resource_log(row: dict[str, Any]) -> dict[str, Any]:
    """One Log Analytics row as diagnostic settings archive it (a `PT1H.json` line)."""
    table = row["Type"]
    if table == "AzureActivity":
        status = row["ActivityStatusValue"]
        record: dict[str, Any] = {
            "time": row["TimeGenerated"],
            "resourceId": row["ResourceId"].upper(),
            "operationName": row["OperationNameValue"],
            "category": "Administrative",
            "resultType": status,
            "resultSignature": _REST_STATUS.get(status, status)
            + "."
            + row["ActivitySubstatusValue"],
            "durationMs": "0",
            "callerIpAddress": row["CallerIpAddress"],
            "correlationId": row["CorrelationId"],
            "identity": {
                "authorization": _loads(row["Authorization"]),
                "claims": _loads(row["Claims"]),
            },
            "level": "Information",
            "location": "global",
            "properties": {
                "statusCode": row["ActivitySubstatusValue"],
                "serviceRequestId": None,
                "eventCategory": "Administrative",
                "entity": row["ResourceId"],
                "message": row["OperationNameValue"],
                "hierarchy": f"{row['TenantId']}/{row['SubscriptionId']}",
            },
        }
        if not row["ActivitySubstatusValue"]:
            del record["properties"]["statusCode"]
        return record
    columns = ("User", "UserDisplayName", "UserAddress", "Protocol", "Path", "Process")
    return {
        "time": row["TimeGenerated"],
        "ResourceId": row["_ResourceId"].upper(),
        "Category": table,
        "OperationName": row["OperationName"],
        "Properties": {c: row[c] for c in columns if c in row},
    }


def rest_event(row: dict[str, Any]) -> dict[str, Any]:
    """An AzureActivity row as the Activity Log REST API returns the event."""
    operation = row["OperationNameValue"]
    return {
        "authorization": _loads(row["Authorization"]),
        "caller": row["Caller"],
        "channels": "Operation",
        "claims": _loads(row["Claims"]),
        "correlationId": row["CorrelationId"],
        "description": "",
        "eventDataId": row["EventDataId"],
        "eventName": {"value": "EndRequest", "localizedValue": "End request"},
        "category": {"value": "Administrative", "localizedValue": "Administrative"},
        "httpRequest": _loads(row["HTTPRequest"]),
        "id": f"{row['ResourceId']}/events/{row['EventDataId']}/ticks/1",
        "level": "Informational",
        "resourceGroupName": row["ResourceGroup"],
        "resourceProviderName": {"value": "Microsoft.Web", "localizedValue": "Azure Web Sites"},
        "resourceId": row["ResourceId"],
        "resourceType": {"value": "Microsoft.Web/sites", "localizedValue": "Microsoft.Web/sites"},
        "operationId": row["OperationId"],
        "operationName": {"value": operation, "localizedValue": operation},
        "properties": _loads(row["Properties"]),
        "status": {"value": _REST_STATUS.get(row["ActivityStatusValue"])},
        "subStatus": {"value": row["ActivitySubstatusValue"], "localizedValue": ""},
        "eventTimestamp": row["TimeGenerated"],
        "submissionTimestamp": row["EventSubmissionTimestamp"],
        "subscriptionId": row["SubscriptionId"],
        "tenantId": row["TenantId"],
    }


_HUMP = re.compile(r"(?<=[a-z0-9])([A-Z])")
_OPAQUE = ("claims", "properties", "authorization")
"""Fields whose own keys are data (claim URIs, property names), left as they are."""


def sdk_event(row: dict[str, Any]) -> dict[str, Any]:
    """An AzureActivity row as `EventData.as_dict()` of the Python SDK gives the event."""

    def snake(value: Any, opaque: bool = False) -> Any:
        if isinstance(value, dict) and not opaque:
            return {
                _HUMP.sub(r"_\1", key).lower(): snake(item, key in _OPAQUE)
                for key, item in value.items()
            }
        return value

    return snake(rest_event(row))  # type: ignore[no-any-return]
