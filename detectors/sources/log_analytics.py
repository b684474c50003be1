"""Reads one ingestion window from Log Analytics with `LogsQueryClient`.

The adapter owns the SDK: it runs the three queries of `queries`, retries throttling,
timeouts and server errors with backoff inside the run's time budget, splits a window whose
result would exceed the service's limits, and refuses a partial result (it raises; the
caller then advances nothing). Rows come back shaped like exported rows, so the same
normaliser reads both.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from azure.core.exceptions import (
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.monitor.query import LogsQueryPartialResult, LogsQueryResult, LogsQueryStatus

from detectors.clients.sign_in import sign_in_problem
from detectors.model.errors import QueryFailed, SignInFailed
from detectors.model.observation import RawRow, SourceTable
from detectors.sources import Budget, FetchStats
from detectors.sources.queries import OID_CLAIM, QUERIES, Window

log = logging.getLogger(__name__)

MAX_ROWS = 500_000
"""The service's row limit per result; a window reaching it is split."""
_SIZE_ERRORS = (
    "E_QUERY_RESULT_SET_TOO_LARGE",
    "result set has exceeded",
    "ResultSetTooLarge",
    "E_QUERY_RESULT_SIZE",
)
"""What the service says, somewhere in a partial error's details, when a result was cut."""
_RETRIABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_MIN_WINDOW = timedelta(seconds=1)


class LogsClient(Protocol):
    """The one method of `LogsQueryClient` this adapter uses."""

    def query_workspace(
        self,
        workspace_id: str,
        query: str,
        *,
        timespan: tuple[datetime, datetime],
        server_timeout: int | None = None,
    ) -> LogsQueryResult | LogsQueryPartialResult:
        """Run a query; see azure-monitor-query."""
        ...


class LogAnalyticsSource:
    """The three tables of one workspace, read window by window."""

    def __init__(
        self,
        *,
        client: LogsClient,
        workspace_id: str,
        max_rows: int = MAX_ROWS,
        max_attempts: int = 6,
        backoff_seconds: float = 2.0,
        server_timeout_seconds: int = 180,
        queries: Mapping[SourceTable, Callable[[Window], str]] = QUERIES,
    ) -> None:
        """`queries` are the timer's; `detector export` passes `EXPORT_QUERIES`."""
        self.queries = queries
        self.client = client
        self.workspace_id = workspace_id
        self.max_rows = max_rows
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self.server_timeout_seconds = server_timeout_seconds

    def fetch(self, window: Window, budget: Budget) -> tuple[list[RawRow], FetchStats]:
        """Every row of every table ingested in the window; QueryFailed if not all of them."""
        stats = FetchStats()
        rows: list[RawRow] = []
        for table in SourceTable:
            found = self._table(table, window, budget, stats)
            stats.rows[table.value] = len(found)
            rows.extend(found)
        return rows, stats

    def _table(
        self, table: SourceTable, window: Window, budget: Budget, stats: FetchStats
    ) -> list[RawRow]:
        columns, values, too_big = self._query(table, window, budget, stats)
        if too_big or len(values) >= self.max_rows:
            if window.span <= _MIN_WINDOW:
                raise QueryFailed(
                    f"{table.value}: even a {_MIN_WINDOW.total_seconds():.0f}-second window "
                    f"exceeds the service's result limits; narrow the query"
                )
            stats.splits += 1
            first, second = window.halves()
            log.info("%s: result too large, splitting %s..%s", table.value, *_span(window))
            return self._table(table, first, budget, stats) + self._table(
                table, second, budget, stats
            )
        source = f"log-analytics:{table.value}"
        return [
            RawRow(source=source, line=n, table=table, fields=row_fields(table, columns, row))
            for n, row in enumerate(values, start=1)
        ]

    def _query(
        self, table: SourceTable, window: Window, budget: Budget, stats: FetchStats
    ) -> tuple[list[str], list[Sequence[Any]], bool]:
        """Column names, rows, and whether the result hit the size limit."""
        query = self.queries[table](window)
        result = self._send(table.value, query, window.event_time_range, budget, stats)
        reason = _incomplete(result)
        if reason is not None:
            return self._partial(table, result, reason)
        return (*_first_table(result), False)

    def tabulate(
        self, label: str, query: str, timespan: tuple[datetime, datetime], budget: Budget
    ) -> tuple[list[str], list[Sequence[Any]]]:
        """Column names and rows of any query, retried like the window queries.

        QueryFailed when the service refuses it, keeps failing, or answers only in part.
        """
        result = self._send(label, query, timespan, budget, FetchStats())
        reason = _incomplete(result)
        if reason is not None:
            raise QueryFailed(f"{label}: Log Analytics returned a partial result ({reason})")
        return _first_table(result)

    def _send(
        self,
        label: str,
        query: str,
        timespan: tuple[datetime, datetime],
        budget: Budget,
        stats: FetchStats,
    ) -> LogsQueryResult | LogsQueryPartialResult:
        """The service's answer to one query, retrying what may pass on a second try."""
        for attempt in range(1, self.max_attempts + 1):
            stats.queries += 1
            timeout = int(min(self.server_timeout_seconds, max(1.0, budget.remaining())))
            try:
                return self.client.query_workspace(
                    self.workspace_id, query, timespan=timespan, server_timeout=timeout
                )
            except (HttpResponseError, ServiceRequestError, ServiceResponseError) as err:
                # azure-monitor-query 2.0 re-raises a credential's failure as a bare
                # HttpResponseError (no status, the original in its context).
                problem = sign_in_problem(err)
                if problem is not None:
                    raise SignInFailed(problem) from err
                status = getattr(err, "status_code", None)
                if isinstance(err, HttpResponseError) and status not in _RETRIABLE_STATUS:
                    raise QueryFailed(
                        f"{label}: Log Analytics refused the query ({status}): {_first_line(err)}"
                    ) from err
                delay = self._delay(attempt, err)
                if attempt == self.max_attempts or not budget.wait(delay):
                    raise QueryFailed(
                        f"{label}: Log Analytics kept failing ({status or 'no answer'}: "
                        f"{_first_line(err)}) after {attempt} attempt(s); the next run catches up"
                    ) from err
                stats.retries += 1
                log.warning("%s: query failed (%s), retrying in %.1fs", label, status or err, delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _partial(
        self, table: SourceTable, result: LogsQueryResult | LogsQueryPartialResult, reason: str
    ) -> tuple[list[str], list[Sequence[Any]], bool]:
        error = getattr(result, "partial_error", None)
        # The reason sits in the details (`innererror`), which the SDK leaves as models.
        everything = f"{reason} {getattr(error, 'details', '')}".lower()
        if any(marker.lower() in everything for marker in _SIZE_ERRORS):
            return [], [], True
        raise QueryFailed(
            f"{table.value}: Log Analytics returned a partial result ({reason}); "
            "nothing of this window is used"
        )

    def _delay(self, attempt: int, err: Exception) -> float:
        """Retry-After when the service gives one, else exponential backoff with jitter."""
        response = getattr(err, "response", None)
        headers: Mapping[str, str] = getattr(response, "headers", None) or {}
        retry_after = headers.get("Retry-After") or headers.get("retry-after")
        if retry_after:
            try:
                return max(0.0, float(retry_after))
            except ValueError:
                pass
        base = self.backoff_seconds * 2 ** (attempt - 1)
        return float(base * (0.5 + random.random() / 2))  # noqa: S311 - jitter, not crypto


def row_fields(table: SourceTable, columns: Sequence[str], row: Sequence[Any]) -> dict[str, Any]:
    """A result row as the normaliser reads rows: Log Analytics column names, JSON objects."""
    fields: dict[str, Any] = {"Type": table.value, **dict(zip(columns, row, strict=True))}
    if table is not SourceTable.AZURE_ACTIVITY:
        return fields
    claims = {
        "appid": fields.pop("AppId", None),
        OID_CLAIM: fields.pop("ObjectId", None),
        "name": fields.pop("Name", None),
        "idtyp": fields.pop("IdType", None),
        "xms_mirid": fields.pop("ManagedIdentity", None),
        "ipaddr": fields.pop("TokenIp", None),
        "tid": fields.pop("Tenant", None),
    }
    fields["Claims"] = {k: v for k, v in claims.items() if v}
    evidence = fields.pop("EvidenceType", None)
    fields["Authorization"] = {"evidence": {"principalType": evidence}} if evidence else {}
    client_ip = fields.pop("ClientIp", None)
    fields["HTTPRequest"] = {"clientIpAddress": client_ip} if client_ip else {}
    return fields


def _incomplete(result: LogsQueryResult | LogsQueryPartialResult) -> str | None:
    """Why a result is not whole (the service's code and message), or None if it is."""
    if not isinstance(result, LogsQueryPartialResult) and result.status is LogsQueryStatus.SUCCESS:
        return None
    error = getattr(result, "partial_error", None)
    text = f"{getattr(error, 'code', '')} {getattr(error, 'message', '')}".strip()
    return text or "no reason"


def _first_table(
    result: LogsQueryResult | LogsQueryPartialResult,
) -> tuple[list[str], list[Sequence[Any]]]:
    """Columns and rows of a whole result's first table (`_incomplete` said it is whole)."""
    assert isinstance(result, LogsQueryResult), "a partial result has no tables to read"
    if not result.tables:
        return [], []
    table = result.tables[0]
    return _column_names(table.columns), [list(row) for row in table.rows]


def _column_names(columns: Sequence[Any]) -> list[str]:
    return [c if isinstance(c, str) else str(getattr(c, "name", c)) for c in columns]


def _first_line(err: Exception) -> str:
    text = str(getattr(err, "message", None) or err)
    return text.strip().splitlines()[0][:300] if text.strip() else type(err).__name__


def _span(window: Window) -> tuple[str, str]:
    return window.since.isoformat(), window.until.isoformat()
