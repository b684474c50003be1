"""Renders row specs as Log Analytics rows (column name to value) and names each row."""

from __future__ import annotations

from typing import Any

import orjson

from detectors.model.observation import SourceTable
from detectors.normalize.rows import row_event_id as detector_row_event_id
from detectors.simulation.clock import TimestampText
from detectors.simulation.recorder import ArmCall, FileChange, ScmLogin, Spec

_STARTS = frozenset(("Start", "Started"))
_FAILURES = frozenset(("Failure", "Failed"))
_DENIED = (
    "The client '{caller}' with object id '{oid}' does not have authorization to perform "
    "action '{action}' over scope '{scope}' or the scope is invalid."
)
_CONFLICT = "Job '{job}' is already running. A triggered job cannot run more than once at a time."


def row_event_id(row: dict[str, Any]) -> str:
    """A row's event id, exactly as the detector names it (see `detectors.normalize.rows`)."""
    return detector_row_event_id(SourceTable(row["Type"]), row)


class RowRenderer:
    """Turns specs into rows exactly as a Log Analytics query returns them."""

    __slots__ = ("_time", "_workspace")

    def __init__(self, *, workspace_id: str) -> None:
        self._workspace = workspace_id
        self._time = TimestampText()

    def __call__(self, spec: Spec, step: int) -> dict[str, Any]:
        """The row of one step of a spec (only ARM calls have more than one)."""
        if type(spec) is ArmCall:
            return self._activity(spec, step)
        if type(spec) is ScmLogin:
            return self._login(spec)
        assert type(spec) is FileChange
        return self._file(spec)

    def _activity(self, call: ArmCall, step: int) -> dict[str, Any]:
        at, status, event_id, submitted = call.steps[step]
        resource = call.resource
        subscription = call.site.app.subscription
        hierarchy = subscription.hierarchy
        properties: dict[str, str] = {
            "eventCategory": "Administrative",
            "entity": resource,
            "message": call.action,
            "hierarchy": hierarchy,
        }
        level = "Informational"
        if status in _STARTS:
            substatus = ""
        elif step < len(call.steps) - 1:
            substatus = "Accepted"
            properties["statusCode"] = "Accepted"
            properties["serviceRequestId"] = call.service_request_id
        else:
            substatus = call.end_code
            properties["statusCode"] = call.end_code
            properties["serviceRequestId"] = call.service_request_id
            if status in _FAILURES:
                level = "Error"
                properties["statusMessage"] = self._failure_message(call, resource)
        return {
            "TenantId": self._workspace,
            "SourceSystem": "Azure",
            "CallerIpAddress": call.address,
            "CategoryValue": "Administrative",
            "CorrelationId": call.correlation_id,
            "Authorization": call.authorization,
            "Claims": call.claims,
            "Level": level,
            "OperationNameValue": call.operation_name,
            "Properties": orjson.dumps(properties).decode(),
            "Caller": call.identity.caller,
            "EventDataId": event_id,
            "EventSubmissionTimestamp": self._time(submitted),
            "HTTPRequest": call.http_request,
            "OperationId": call.operation_id,
            "ResourceGroup": call.site.group_upper,
            "ResourceProviderValue": "MICROSOFT.WEB",
            "ActivityStatusValue": status,
            "ActivitySubstatusValue": substatus,
            "TimeGenerated": self._time(at),
            "SubscriptionId": subscription.id,
            "ResourceId": call.resource_upper,
            "Type": "AzureActivity",
            "_ResourceId": call.resource_key,
        }

    @staticmethod
    def _failure_message(call: ArmCall, resource: str) -> str:
        if call.end_code == "Forbidden":
            message = _DENIED.format(
                caller=call.identity.caller,
                oid=call.identity.object_id,
                action=call.action,
                scope=resource,
            )
            body: dict[str, Any] = {"error": {"code": "AuthorizationFailed", "message": message}}
        else:
            job = resource.rsplit("/", 1)[-1]
            body = {"Code": call.end_code, "Message": _CONFLICT.format(job=job)}
        return orjson.dumps(body).decode()

    def _login(self, login: ScmLogin) -> dict[str, Any]:
        return {
            "TenantId": self._workspace,
            "TimeGenerated": self._time(login.at),
            "Category": "AppServiceAuditLogs",
            "OperationName": "Authorization",
            "User": login.user,
            "UserDisplayName": login.display_name,
            "UserAddress": login.address,
            "Protocol": login.protocol,
            "SourceSystem": "Azure",
            "Type": "AppServiceAuditLogs",
            "_ResourceId": login.site.key,
        }

    def _file(self, change: FileChange) -> dict[str, Any]:
        return {
            "TenantId": self._workspace,
            "TimeGenerated": self._time(change.at),
            "Category": "AppServiceFileAuditLogs",
            "OperationName": change.operation,
            "Path": change.path,
            "Process": change.process,
            "SourceSystem": "Azure",
            "Type": "AppServiceFileAuditLogs",
            "_ResourceId": change.site.key,
        }
