"""Activity Log events as `az monitor activity-log list` and the Activity Log REST API
return them (camel-case fields, `{value, localizedValue}` pairs), renamed to the columns of
Log Analytics' AzureActivity table."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from detectors.model.observation import SourceTable

_COLUMNS: Final = (
    ("TimeGenerated", ("eventTimestamp",)),
    ("OperationNameValue", ("operationName", "value")),
    ("ActivityStatusValue", ("status", "value")),
    ("ActivitySubstatusValue", ("subStatus", "value")),
    ("Caller", ("caller",)),
    ("CallerIpAddress", ("httpRequest", "clientIpAddress")),
    ("Claims", ("claims",)),
    ("Authorization", ("authorization",)),
    ("HTTPRequest", ("httpRequest",)),
    ("Properties", ("properties",)),
    ("CorrelationId", ("correlationId",)),
    ("OperationId", ("operationId",)),
    ("EventDataId", ("eventDataId",)),
    ("ResourceId", ("resourceId",)),
    ("SubscriptionId", ("subscriptionId",)),
    ("ResourceGroup", ("resourceGroupName",)),
    ("ResourceProviderValue", ("resourceProviderName", "value")),
    ("CategoryValue", ("category", "value")),
    ("Level", ("level",)),
    ("EventSubmissionTimestamp", ("submissionTimestamp",)),
    ("TenantId", ("tenantId",)),
)
"""The event's field path for each AzureActivity column it fills."""


def matches(record: Mapping[str, Any]) -> bool:
    """An Activity Log event, not a Log Analytics row."""
    return "eventDataId" in record or isinstance(record.get("operationName"), dict)


def columns(event: Mapping[str, Any]) -> dict[str, Any]:
    """The event renamed to AzureActivity columns; absent fields stay absent."""
    row: dict[str, Any] = {}
    for column, path in _COLUMNS:
        value: Any = event
        for key in path:
            if isinstance(value, dict) and key in value:
                value = value[key]
            elif not (key == "value" and isinstance(value, str)):
                break  # absent stays absent
            # else: a `{value, localizedValue}` pair already flattened to its value
        else:
            row[column] = value
    if isinstance(row.get("ResourceId"), str):
        # Log Analytics stores _ResourceId normalised to lower case
        row["_ResourceId"] = row["ResourceId"].lower()
    row["Type"] = SourceTable.AZURE_ACTIVITY.value
    return row
