"""The KQL the timer sends to Log Analytics: one query per table and ingestion window.

Each query selects rows by `ingestion_time()` (so a row that arrives late is read exactly
once, by the window it was ingested in) under a wider `TimeGenerated` bound (which the
service needs to prune), keeps only the operations the detections read, counts each
action once (the Start row is dropped, an Accept and its Success collapse into one), and
groups alike actions of one minute into one row with a `Count`. What comes back grows with
distinct (who, what, where, from where, tool) groups per minute, not with raw rows.

The columns keep their Log Analytics names where they exist, so the rows go through the
same normaliser as exported files; claims come back as flat columns that
`log_analytics.row_fields` folds back into a `Claims` object.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from detectors.model import SourceTable
from detectors.operations import operation_names

OID_CLAIM = "http://schemas.microsoft.com/identity/claims/objectidentifier"
NAME_CLAIMS = (
    "name",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn",
    "upn",
    "unique_name",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
)
EVENT_TIME_SLACK = timedelta(minutes=10)
"""How far an event's own clock may run ahead of ingestion (clock skew)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Window:
    """A slice of ingestion time, `since` inclusive and `until` exclusive, both UTC."""

    since: datetime
    until: datetime
    lateness: timedelta
    """How far before `since` an event may have happened and still be ingested in it."""

    @property
    def event_time_range(self) -> tuple[datetime, datetime]:
        """The `TimeGenerated` bound: the query's `timespan` and its first filter."""
        return self.since - self.lateness, self.until + EVENT_TIME_SLACK

    def halves(self) -> tuple[Window, Window]:
        """The window split in two at its middle (rounded to a microsecond)."""
        middle = self.since + (self.until - self.since) / 2
        return (
            Window(since=self.since, until=middle, lateness=self.lateness),
            Window(since=middle, until=self.until, lateness=self.lateness),
        )


def kql_datetime(moment: datetime) -> str:
    """A UTC datetime literal: `datetime(2026-11-25T10:00:00.0000000Z)`."""
    return f"datetime({moment.astimezone(UTC):%Y-%m-%dT%H:%M:%S.%f}0Z)"


def _quoted(values: tuple[str, ...]) -> str:
    return ", ".join(f'"{value}"' for value in values)


def _header(table: str, window: Window) -> str:
    low, high = window.event_time_range
    return (
        f"let Since = {kql_datetime(window.since)};\n"
        f"let Until = {kql_datetime(window.until)};\n"
        f"{table}\n"
        f"| where TimeGenerated between ({kql_datetime(low)} .. {kql_datetime(high)})\n"
        "| where ingestion_time() >= Since and ingestion_time() < Until\n"
    )


def _claim(*names: str) -> str:
    """The first non-empty of several claims, as a string (empty when none is set)."""
    parts = [f'tostring(Token["{name}"])' for name in names]
    return parts[0] if len(parts) == 1 else f"coalesce({', '.join(parts)})"


def activity_query(window: Window) -> str:
    """Credential, configuration and WebJob operations in AzureActivity."""
    return (
        _header("AzureActivity", window)
        + f"| where OperationNameValue in~ ({_quoted(operation_names())})\n"
        '| where ActivityStatusValue !in~ ("Start", "Started")\n'
        "| extend Token = parse_json(Claims), Grant = parse_json(Authorization),"
        " Request = parse_json(HTTPRequest)\n"
        "| extend ResourceKey = iff(isempty(_ResourceId), tostring(Grant.scope), _ResourceId)\n"
        '| extend Rank = case(ActivityStatusValue in~ ("Failure", "Failed"), 2,'
        ' ActivityStatusValue in~ ("Success", "Succeeded"), 1, 0)\n'
        '| extend ActionKey = strcat(iff(isempty(CorrelationId), EventDataId, CorrelationId), "|",'
        ' tolower(OperationNameValue), "|", tolower(ResourceKey))\n'
        "| summarize arg_max(Rank, TimeGenerated, EventDataId, CorrelationId, OperationNameValue,"
        " ActivityStatusValue, ActivitySubstatusValue, ResourceKey, Caller, CallerIpAddress,"
        " Token, Grant, Request) by ActionKey\n"
        f"| extend AppId = {_claim('appid', 'azp')}, ObjectId = {_claim(OID_CLAIM, 'oid')},"
        f" Name = {_claim(*NAME_CLAIMS)}, IdType = {_claim('idtyp')},"
        f" ManagedIdentity = {_claim('xms_mirid')}, TokenIp = {_claim('ipaddr')},"
        " EvidenceType = tostring(Grant.evidence.principalType),"
        " ClientIp = tostring(Request.clientIpAddress)\n"
        "| summarize Count = count(), arg_min(TimeGenerated, EventDataId, CorrelationId)"
        " by Minute = bin(TimeGenerated, 1m), OperationNameValue, ActivityStatusValue,"
        " ActivitySubstatusValue, ResourceKey, Caller, CallerIpAddress, AppId, ObjectId, Name,"
        " IdType, ManagedIdentity, TokenIp, EvidenceType, ClientIp\n"
        "| project TimeGenerated, EventDataId, CorrelationId, Count, OperationNameValue,"
        " ActivityStatusValue, ActivitySubstatusValue, _ResourceId = ResourceKey, Caller,"
        " CallerIpAddress, AppId, ObjectId, Name, IdType, ManagedIdentity, TokenIp,"
        " EvidenceType, ClientIp\n"
        "| order by TimeGenerated asc, EventDataId asc"
    )


def login_query(window: Window) -> str:
    """Kudu, FTP and Web Deploy logins in AppServiceAuditLogs."""
    return (
        _header("AppServiceAuditLogs", window)
        + "| summarize Count = count(), TimeGenerated = min(TimeGenerated)"
        " by Minute = bin(TimeGenerated, 1m), User, UserDisplayName, UserAddress, Protocol,"
        " OperationName, _ResourceId\n"
        "| project TimeGenerated, Count, User, UserDisplayName, UserAddress, Protocol,"
        " OperationName, _ResourceId\n"
        "| order by TimeGenerated asc"
    )


def file_query(window: Window) -> str:
    """Changes under `App_Data/jobs` in AppServiceFileAuditLogs (the normaliser is exact)."""
    return (
        _header("AppServiceFileAuditLogs", window)
        + '| where Path contains "jobs" and Path contains "app_data"\n'
        "| summarize Count = count(), TimeGenerated = min(TimeGenerated)"
        " by Minute = bin(TimeGenerated, 1m), Path, OperationName, Process, _ResourceId\n"
        "| project TimeGenerated, Count, Path, OperationName, Process, _ResourceId\n"
        "| order by TimeGenerated asc"
    )


QUERIES = {
    SourceTable.AZURE_ACTIVITY: activity_query,
    SourceTable.APP_SERVICE_AUDIT: login_query,
    SourceTable.APP_SERVICE_FILE_AUDIT: file_query,
}
"""The query that reads each table for a window."""


def coverage_query(table: SourceTable, since: datetime, until: datetime) -> str:
    """How much of what the detections read a table received between two moments.

    `detector status` asks it of each table: a table with no rows means a diagnostic
    setting is missing and a part of the detections is blind. AzureActivity counts only
    the watched operations; the two App Service tables count every row (their categories
    are on or off as a whole).
    """
    query = (
        f"{table.value}\n"
        f"| where TimeGenerated between ({kql_datetime(since)} .. {kql_datetime(until)})\n"
    )
    if table is SourceTable.AZURE_ACTIVITY:
        query += f"| where OperationNameValue in~ ({_quoted(operation_names())})\n"
    return query + (
        "| summarize Rows = count(), LastEvent = max(TimeGenerated),"
        " LastIngested = max(ingestion_time())"
    )
