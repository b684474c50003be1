"""Activity Log events as `az monitor activity-log list` and the Activity Log REST API
return them (camel-case fields, `{value, localizedValue}` pairs), renamed to the columns of
Log Analytics' AzureActivity table; and the same events as Python tools dump the SDK's
objects (`EventData.as_dict()`: snake-case fields, `{value, localized_value}` pairs)."""

from __future__ import annotations

import re
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

_CAMEL_HUMP = re.compile(r"(?<=[a-z0-9])([A-Z])")


def _snake(name: str) -> str:
    return _CAMEL_HUMP.sub(r"_\1", name).lower()


_SNAKE_COLUMNS: Final = tuple(
    (column, tuple(_snake(key) for key in path)) for column, path in _COLUMNS
)
"""The same paths as the SDK's `as_dict()` spells them (`http_request.client_ip_address`)."""


def matches(record: Mapping[str, Any]) -> bool:
    """An Activity Log event, not a Log Analytics row."""
    return "eventDataId" in record or isinstance(record.get("operationName"), dict)


def columns(event: Mapping[str, Any]) -> dict[str, Any]:
    """The event renamed to AzureActivity columns; absent fields stay absent."""
    return _renamed(event, _COLUMNS)


def matches_sdk(record: Mapping[str, Any]) -> bool:
    """An Activity Log event dumped from the Python SDK's objects."""
    return "event_data_id" in record or isinstance(record.get("operation_name"), dict)


def columns_sdk(event: Mapping[str, Any]) -> dict[str, Any]:
    """The SDK dump renamed to AzureActivity columns; absent fields stay absent."""
    return _renamed(event, _SNAKE_COLUMNS)


def _renamed(
    event: Mapping[str, Any], paths: tuple[tuple[str, tuple[str, ...]], ...]
) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for column, path in paths:
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
