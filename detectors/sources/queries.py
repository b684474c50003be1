"""The KQL the timer sends to Log Analytics: one query per table and window.

The Activity Log reaches the workspace 3 to 20 minutes after the event, out of order, so a
timer step scores a slice of event time only once it has settled (`Window`, `step_end`):
the events of the slice ingested by then, and the stragglers of earlier slices ingested
since the previous step. Each query selects rows by `ingestion_time()` as well as by event
time (so a row that arrives late is still read exactly once) under a wider `TimeGenerated`
bound (which the service needs to prune), keeps only the operations the detections read, counts each
action once (the Start row is dropped, an Accept and its Success collapse into one), and
groups alike actions of one minute into one row with a `Count`. What comes back grows with
distinct (who, what, where, from where, tool) groups per minute, not with raw rows.

The columns keep their Log Analytics names where they exist, so the rows go through the
same normaliser as exported files; claims come back as flat columns that
`log_analytics.row_fields` folds back into a `Claims` object.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from detectors.model.observation import SourceTable
from detectors.model.operations import operation_names

TENANT_CLAIM = "http://schemas.microsoft.com/identity/claims/tenantid"
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
    """What one query reads: rows by ingestion time, and optionally by event time.

    Without event bounds, a window is every row ingested in [`since`, `until`) (what
    `backfill` reads). With them it is one timer step, which scores event time once it has
    settled: the rows whose event falls in [`event_since`, `event_until`) and that were
    ingested before `until`, plus the stragglers, rows of earlier events ingested in
    [`since`, `until`). Steps laid end to end (each `since` the last `until`, each
    `event_since` the last `event_until`) read every row exactly once; `step_end` says which.
    """

    since: datetime
    until: datetime
    lateness: timedelta
    """How far before `since` an event may have happened and still be ingested in it."""
    event_since: datetime | None = None
    event_until: datetime | None = None

    def __post_init__(self) -> None:
        if (self.event_since is None) != (self.event_until is None):
            raise ValueError("a window has both event bounds or neither")

    @property
    def event_time_range(self) -> tuple[datetime, datetime]:
        """The `TimeGenerated` bound: the query's `timespan` and its first filter."""
        if self.event_since is None or self.event_until is None:
            return self.since - self.lateness, self.until + EVENT_TIME_SLACK
        return min(self.since - self.lateness, self.event_since), self.event_until

    @property
    def span(self) -> timedelta:
        """The longer of the window's ingestion and event ranges (what splitting halves)."""
        if self.event_since is None or self.event_until is None:
            return self.until - self.since
        return max(self.until - self.since, self.event_until - self.event_since)

    def halves(self) -> tuple[Window, Window]:
        """Two windows that together read exactly what this one reads.

        An ingestion window splits at its middle; a step splits its longer range: the
        event range (the second half then has no stragglers) or the straggler range (the
        first half then has no event range). Middles are rounded to a microsecond.
        """
        ev_since, ev_until = self.event_since, self.event_until
        if ev_since is None or ev_until is None:
            middle = self.since + (self.until - self.since) / 2
            return _window(self, self.since, middle, None), _window(self, middle, self.until, None)
        if self.until - self.since >= ev_until - ev_since:
            middle = self.since + (self.until - self.since) / 2
            return (
                _window(self, self.since, middle, (ev_since, ev_since)),
                _window(self, middle, self.until, (ev_since, ev_until)),
            )
        middle = ev_since + (ev_until - ev_since) / 2
        return (
            _window(self, self.since, self.until, (ev_since, middle)),
            _window(self, self.until, self.until, (middle, ev_until)),
        )


def _window(
    like: Window, since: datetime, until: datetime, events: tuple[datetime, datetime] | None
) -> Window:
    return Window(
        since=since,
        until=until,
        lateness=like.lateness,
        event_since=events[0] if events else None,
        event_until=events[1] if events else None,
    )


def step_end(
    event: datetime, ingested: datetime | None, *, window: timedelta, hold: timedelta
) -> datetime:
    """The end of the event window of the timer step that reads a row.

    Steps end on a grid of `window` from 1970-01-01 UTC; the step ending at `b` scores the
    events of [b - window, b) ingested before `b + hold`, and the stragglers of earlier
    events ingested in [b - window + hold, b + hold). A row is read by the first step whose
    event window has ended after it happened and whose ingestion cut is after it arrived.
    Without an ingestion time a row counts as on time (its event window's step).
    """
    end = grid_start(event, window) + window
    if ingested is not None:
        end = max(end, grid_start(ingested - hold, window) + window)
    return end


def grid_start(moment: datetime, size: timedelta) -> datetime:
    """Start of the fixed, epoch-aligned window of `size` holding `moment`."""
    step = size // timedelta(microseconds=1)
    micros = (moment - _EPOCH) // timedelta(microseconds=1)
    return _EPOCH + timedelta(microseconds=micros - micros % step)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def kql_datetime(moment: datetime) -> str:
    """A UTC datetime literal: `datetime(2026-11-25T10:00:00.0000000Z)`."""
    return f"datetime({moment.astimezone(UTC):%Y-%m-%dT%H:%M:%S.%f}0Z)"


def _quoted(values: tuple[str, ...]) -> str:
    return ", ".join(f'"{value}"' for value in values)


def _header(table: str, window: Window) -> str:
    low, high = window.event_time_range
    head = f"let Since = {kql_datetime(window.since)};\nlet Until = {kql_datetime(window.until)};\n"
    if window.event_since is None or window.event_until is None:
        where = "| where ingestion_time() >= Since and ingestion_time() < Until\n"
    else:
        head += (
            f"let EventSince = {kql_datetime(window.event_since)};\n"
            f"let EventUntil = {kql_datetime(window.event_until)};\n"
        )
        # Settled events of the step, and the stragglers of earlier steps' events.
        where = (
            "| where (TimeGenerated >= EventSince and TimeGenerated < EventUntil"
            " and ingestion_time() < Until)"
            " or (TimeGenerated < EventSince"
            " and ingestion_time() >= Since and ingestion_time() < Until)\n"
        )
    return (
        head
        + f"{table}\n"
        + f"| where TimeGenerated between ({kql_datetime(low)} .. {kql_datetime(high)})\n"
        + where
    )


def _claim(*names: str) -> str:
    """The first non-empty of several claims, as a string (empty when none is set)."""
    parts = [f'tostring(Token["{name}"])' for name in names]
    return parts[0] if len(parts) == 1 else f"coalesce({', '.join(parts)})"


def activity_query(window: Window, *, ingestion: bool = False) -> str:
    """Credential, configuration and WebJob operations in AzureActivity; with `ingestion`,
    each row also says when its latest action reached the workspace (`IngestionTime`)."""
    arrival = _arrival(ingestion)
    return (
        _header("AzureActivity", window)
        + f"| where OperationNameValue in~ ({_quoted(operation_names())})\n"
        '| where ActivityStatusValue !in~ ("Start", "Started")\n'
        + arrival.extend
        + "| extend Token = parse_json(Claims), Grant = parse_json(Authorization),"
        " Request = parse_json(HTTPRequest)\n"
        "| extend ResourceKey = iff(isempty(_ResourceId), tostring(Grant.scope), _ResourceId)\n"
        '| extend Rank = case(ActivityStatusValue in~ ("Failure", "Failed"), 2,'
        ' ActivityStatusValue in~ ("Success", "Succeeded"), 1, 0)\n'
        '| extend ActionKey = strcat(iff(isempty(CorrelationId), EventDataId, CorrelationId), "|",'
        ' tolower(OperationNameValue), "|", tolower(ResourceKey))\n'
        "| summarize arg_max(Rank, TimeGenerated, EventDataId, CorrelationId, OperationNameValue,"
        " ActivityStatusValue, ActivitySubstatusValue, ResourceKey, Caller, CallerIpAddress,"
        f" Token, Grant, Request{arrival.keep}) by ActionKey\n"
        f"| extend AppId = {_claim('appid', 'azp')}, ObjectId = {_claim(OID_CLAIM, 'oid')},"
        f" Name = {_claim(*NAME_CLAIMS)}, IdType = {_claim('idtyp')},"
        f" ManagedIdentity = {_claim('xms_mirid')}, TokenIp = {_claim('ipaddr')},"
        f" Tenant = {_claim('tid', TENANT_CLAIM)},"
        " EvidenceType = tostring(Grant.evidence.principalType),"
        " ClientIp = tostring(Request.clientIpAddress)\n"
        "| summarize Count = count(), arg_min(TimeGenerated, EventDataId, CorrelationId)"
        f"{arrival.latest} by Minute = bin(TimeGenerated, 1m), OperationNameValue,"
        " ActivityStatusValue, ActivitySubstatusValue, ResourceKey, Caller, CallerIpAddress,"
        " AppId, ObjectId, Name, IdType, ManagedIdentity, TokenIp, Tenant, EvidenceType,"
        " ClientIp\n"
        "| project TimeGenerated, EventDataId, CorrelationId, Count, OperationNameValue,"
        " ActivityStatusValue, ActivitySubstatusValue, _ResourceId = ResourceKey, Caller,"
        " CallerIpAddress, AppId, ObjectId, Name, IdType, ManagedIdentity, TokenIp, Tenant,"
        f" EvidenceType, ClientIp{arrival.column}\n"
        "| order by TimeGenerated asc, EventDataId asc"
    )


def login_query(window: Window, *, ingestion: bool = False) -> str:
    """Kudu, FTP and Web Deploy logins in AppServiceAuditLogs."""
    arrival = _arrival(ingestion)
    return (
        _header("AppServiceAuditLogs", window)
        + arrival.extend
        + "| summarize Count = count(), TimeGenerated = min(TimeGenerated)"
        f"{arrival.latest} by Minute = bin(TimeGenerated, 1m), User, UserDisplayName,"
        " UserAddress, Protocol, OperationName, _ResourceId\n"
        "| project TimeGenerated, Count, User, UserDisplayName, UserAddress, Protocol,"
        f" OperationName, _ResourceId{arrival.column}\n"
        "| order by TimeGenerated asc"
    )


def file_query(window: Window, *, ingestion: bool = False) -> str:
    """Changes under `App_Data/jobs` in AppServiceFileAuditLogs (the normaliser is exact)."""
    arrival = _arrival(ingestion)
    return (
        _header("AppServiceFileAuditLogs", window)
        + '| where Path contains "jobs" and Path contains "app_data"\n'
        + arrival.extend
        + "| summarize Count = count(), TimeGenerated = min(TimeGenerated)"
        f"{arrival.latest} by Minute = bin(TimeGenerated, 1m), Path, OperationName, Process,"
        " _ResourceId\n"
        "| project TimeGenerated, Count, Path, OperationName, Process,"
        f" _ResourceId{arrival.column}\n"
        "| order by TimeGenerated asc"
    )


@dataclass(frozen=True, slots=True)
class _Arrival:
    """The pieces of KQL that carry each row's ingestion time through a query, or nothing."""

    extend: str = ""
    keep: str = ""
    latest: str = ""
    column: str = ""


def _arrival(ingestion: bool) -> _Arrival:
    if not ingestion:
        return _Arrival()
    return _Arrival(
        extend="| extend IngestionTime = ingestion_time()\n",
        keep=", IngestionTime",
        latest=", IngestionTime = max(IngestionTime)",
        column=", IngestionTime",
    )


_BUILDERS = {
    SourceTable.AZURE_ACTIVITY: activity_query,
    SourceTable.APP_SERVICE_AUDIT: login_query,
    SourceTable.APP_SERVICE_FILE_AUDIT: file_query,
}

QUERIES: dict[SourceTable, Callable[[Window], str]] = dict(_BUILDERS)
"""The query that reads each table for a window."""

EXPORT_QUERIES: dict[SourceTable, Callable[[Window], str]] = {
    table: functools.partial(query, ingestion=True) for table, query in _BUILDERS.items()
}
"""The same queries, each row also carrying its `IngestionTime`, so that a replay of what
`detector export` wrote sees rows arrive as the timer did."""


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
