"""The three tables the detector reads, declared as Log Analytics defines them.

Column names and KQL types follow the Azure Monitor table reference (azure-monitor-ref/tables,
MicrosoftDocs/azure-reference-other): AzureActivity, AppServiceAuditLogs and
AppServiceFileAuditLogs, including the hidden `_`-columns every workspace table carries.
AzureActivity keeps both forms of its JSON columns: the string originals (`Authorization`,
`Claims`, `Properties`, `HTTPRequest`) and the dynamic twins (`Authorization_d`, `Claims_d`,
`Properties_d`); `HTTPRequest` has no dynamic twin.
"""

from __future__ import annotations

# Columns shared by every Log Analytics table.
_STANDARD = {
    "TenantId": "string",
    "SourceSystem": "string",
    "TimeGenerated": "datetime",
    "Type": "string",
    "_ResourceId": "string",
    "_SubscriptionId": "string",
    "_BilledSize": "real",
    "_IsBillable": "string",
}

AZURE_ACTIVITY: dict[str, str] = {
    **_STANDARD,
    "ActivityStatus": "string",
    "ActivityStatusValue": "string",
    "ActivitySubstatus": "string",
    "ActivitySubstatusValue": "string",
    "Authorization": "string",
    "Authorization_d": "dynamic",
    "Caller": "string",
    "CallerIpAddress": "string",
    "Category": "string",
    "CategoryValue": "string",
    "Claims": "string",
    "Claims_d": "dynamic",
    "CorrelationId": "string",
    "EventDataId": "string",
    "EventSubmissionTimestamp": "datetime",
    "Hierarchy": "string",
    "HTTPRequest": "string",
    "Level": "string",
    "OperationId": "string",
    "OperationName": "string",
    "OperationNameValue": "string",
    "Properties": "string",
    "Properties_d": "dynamic",
    "Resource": "string",
    "ResourceGroup": "string",
    "ResourceId": "string",
    "ResourceProvider": "string",
    "ResourceProviderValue": "string",
    "SubscriptionId": "string",
}

APP_SERVICE_AUDIT_LOGS: dict[str, str] = {
    **_STANDARD,
    "Category": "string",
    "OperationName": "string",
    "Protocol": "string",
    "User": "string",
    "UserAddress": "string",
    "UserDisplayName": "string",
}

APP_SERVICE_FILE_AUDIT_LOGS: dict[str, str] = {
    **_STANDARD,
    "Category": "string",
    "OperationName": "string",
    "Path": "string",
    "Process": "string",
}

TABLES: dict[str, dict[str, str]] = {
    "AzureActivity": AZURE_ACTIVITY,
    "AppServiceAuditLogs": APP_SERVICE_AUDIT_LOGS,
    "AppServiceFileAuditLogs": APP_SERVICE_FILE_AUDIT_LOGS,
}


# The Function App's own telemetry, as workspace-based Application Insights writes it
# (azure-monitor-ref/tables: AppTraces, AppRequests): what the workbook and alert rules read.
_APP_COMMON = {
    "TenantId": "string",
    "TimeGenerated": "datetime",
    "OperationName": "string",
    "OperationId": "string",
    "ParentId": "string",
    "SyntheticSource": "string",
    "SessionId": "string",
    "UserId": "string",
    "AppVersion": "string",
    "AppRoleName": "string",
    "AppRoleInstance": "string",
    "ClientType": "string",
    "ClientIP": "string",
    "Properties": "dynamic",
    "Measurements": "dynamic",
    "ItemCount": "int",
    "ResourceGUID": "string",
    "SDKVersion": "string",
    "SourceSystem": "string",
    "Type": "string",
    "_ResourceId": "string",
    "_BilledSize": "real",
    "_IsBillable": "string",
}

APP_TRACES: dict[str, str] = {**_APP_COMMON, "Message": "string", "SeverityLevel": "int"}

APP_REQUESTS: dict[str, str] = {
    **_APP_COMMON,
    "Id": "string",
    "Name": "string",
    "Url": "string",
    "Source": "string",
    "Success": "bool",
    "ResultCode": "string",
    "DurationMs": "real",
    "PerformanceBucket": "string",
}

MONITORING: dict[str, dict[str, str]] = {"AppTraces": APP_TRACES, "AppRequests": APP_REQUESTS}


def kql_schema(columns: dict[str, str]) -> str:
    """A table schema as Kusto writes it: `(Name:type, ...)`; names bracketed to be safe."""
    return "(" + ", ".join(f"['{name}']:{kind}" for name, kind in columns.items()) + ")"


def database() -> dict[str, str]:
    """The workspace as the checker takes it: table name to schema."""
    return {name: kql_schema(columns) for name, columns in TABLES.items()}


def monitoring_database() -> dict[str, str]:
    """The detector's own workspace, where its telemetry lands: what monitoring queries read."""
    return {name: kql_schema(columns) for name, columns in MONITORING.items()}
