"""A local HTTPS stand-in for the Log Analytics query API, for the real `LogsQueryClient`.

The real `azure.monitor.query.LogsQueryClient` talks to it over TLS exactly as it talks to
`https://api.loganalytics.io`: it posts `{"query", "timespan", "workspaces"}` to
`/v1/workspaces/{id}/query` with a bearer token, and parses the `{"tables": [...]}` answer.
The posted KQL runs on duckdb-kql over rows a test seeds into the three tables the detector
reads (`AzureActivity`, `AppServiceAuditLogs`, `AppServiceFileAuditLogs`, declared in
`tests/kql/schemas.py`).

What it does as the service does:

- `timespan` (`start/end`, `start/duration` or a duration ending at `now`) filters every
  table on `TimeGenerated`, in addition to any filter in the query. The service documents no
  boundary rule; here both ends are inclusive, like `between`, so a caller that pages
  adjacent windows sees a boundary row twice instead of never.
- `ingestion_time()`: each row carries a hidden ingestion column (`ingested_at`) and the
  query runs behind `let ingestion_time = () { todatetime(_IngestTime) };`. The hidden
  column is dropped from results (so `arg_max(TimeGenerated, *)` and `take` do not show
  it); name the value to keep it: `extend IngestedAt = ingestion_time()`.
- `now()` and `ago()` read a fixed, settable `now`.
- Answers use Log Analytics column types and cell forms: datetimes as ISO 8601 with `Z`,
  dynamic cells as JSON text (a dynamic string as the bare string), timespans as
  `[d.]hh:mm:ss[.fffffff]`, NaN and infinities as strings.
- A query duckdb-kql cannot run gets a 400 `BadArgumentError` (the client raises
  `HttpResponseError`); the reason is kept in `failures` for the test to print. Note that
  duckdb-kql refusing a construct is not proof that Log Analytics would refuse it.
- More rows than `max_rows` (500,000 by default, as the service) come back cut to
  `max_rows` with a `PartialError` naming `E_QUERY_RESULT_SET_TOO_LARGE`, so the client
  returns `LogsQueryPartialResult`.
- Faults queue up per call: 429 with `Retry-After`, 500/503, a delay longer than the
  client's read timeout, a partial result.

Not emulated: `query_batch` (`/v1/$batch`), `query_resource`, GET queries, additional
workspaces (refused with 400 rather than silently ignored), statistics and render.
"""

from __future__ import annotations

import csv
import json
import math
import re
import ssl
import tempfile
import threading
import uuid
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from azure.monitor.query import LogsQueryClient

from tests.kql.schemas import TABLES
from tests.services.tls import Endpoint, TLSRequestHandler, serving

#: The service's default record limit for one result set.
SERVICE_MAX_ROWS = 500_000
#: The hidden column that `ingestion_time()` reads.
INGESTION_COLUMN = "_IngestTime"
#: Where `now()` stands unless a test moves it.
DEFAULT_NOW = datetime(2026, 10, 2, tzinfo=UTC)

_RUNAWAY = "Query execution has exceeded the allowed limits (E_RUNAWAY_QUERY)."
_INGESTION_PRELUDE = f"let ingestion_time = () {{ todatetime({INGESTION_COLUMN}) }}; "
_QUERY_PATH = re.compile(r"/v1/workspaces/(?P<workspace>[^/?#]+)/query")
_DURATION = re.compile(
    r"P(?:(?P<weeks>\d+(?:\.\d+)?)W)?(?:(?P<days>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?"
)
_NULL = "\\N"  # how a staged CSV cell says NULL
_DUCKDB_TYPES = {
    "string": "VARCHAR",
    "datetime": "TIMESTAMP",
    "real": "DOUBLE",
    "long": "BIGINT",
    "int": "INTEGER",
    "bool": "BOOLEAN",
    "dynamic": "JSON",
    "guid": "UUID",
    "timespan": "INTERVAL",
}
# AzureActivity keeps each JSON column twice, as text and as dynamic; the service fills both.
_TWINS = {"Authorization": "Authorization_d", "Claims": "Claims_d", "Properties": "Properties_d"}


# --------------------------------------------------------------------------- values


@dataclass(frozen=True, kw_only=True, slots=True)
class RecordedRequest:
    """One HTTP request as the endpoint saw it, whatever it was answered."""

    received_at: datetime
    method: str
    path: str
    workspace_id: str | None
    query: str | None
    timespan: str | None
    start: datetime | None
    end: datetime | None
    prefer: str | None
    authorized: bool
    headers: Mapping[str, str]
    status: int
    fault: str | None


@dataclass(frozen=True, kw_only=True, slots=True)
class QueryFailure:
    """A posted query duckdb-kql could not run, and why."""

    query: str
    error: str

    def __str__(self) -> str:
        return f"{self.error}\n--- query ---\n{self.query}"


@dataclass(frozen=True, kw_only=True, slots=True)
class Throttle:
    """Answer 429 Too Many Requests with a `Retry-After` in seconds."""

    retry_after: float = 1


@dataclass(frozen=True, kw_only=True, slots=True)
class ServerError:
    """Answer a 5xx with a OneAPI error body."""

    status: int = 500


@dataclass(frozen=True, kw_only=True, slots=True)
class Delay:
    """Hold the answer back, e.g. past the client's read timeout, then answer normally."""

    seconds: float


@dataclass(frozen=True, kw_only=True, slots=True)
class PartialFailure:
    """Run the query, then answer its tables together with a `PartialError`."""

    message: str = _RUNAWAY
    code: str = "-2133196799"


Fault = Throttle | ServerError | Delay | PartialFailure


class FakeTokenCredential:
    """A token credential that hands out a fixed bearer token and remembers the scopes."""

    def __init__(self, token: str = "local-test-token") -> None:
        self.token = token
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **_: Any) -> AccessToken:
        """An `AccessToken` valid for an hour, as `BearerTokenCredentialPolicy` wants."""
        self.scopes.append(scopes)
        return AccessToken(self.token, int(datetime.now(UTC).timestamp()) + 3600)


@dataclass(kw_only=True, slots=True)
class _Answer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class _BadRequestError(Exception):
    """A request the service would refuse with a 400."""

    def __init__(self, message: str, *, inner_code: str, inner_message: str) -> None:
        super().__init__(message)
        self.reason = inner_message
        self.body = _error(
            "BadArgumentError", message, innererror={"code": inner_code, "message": inner_message}
        )


def _error(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


# --------------------------------------------------------------------------- the workspace


class LogAnalytics:
    """One test's workspace: seeded rows, a clock, queued faults and a request log."""

    def __init__(self, *, endpoint: str, ca_path: Path, workspace_id: str) -> None:
        self.endpoint = endpoint
        self.ca_path = ca_path
        self.workspace_id = workspace_id
        self.credential = FakeTokenCredential()
        self.max_rows = SERVICE_MAX_ROWS
        self._now = DEFAULT_NOW
        self._faults: deque[Fault] = deque()
        self._requests: list[RecordedRequest] = []
        self._failures: list[QueryFailure] = []
        self._state = threading.Lock()
        self._engine = threading.Lock()
        self._released = threading.Event()
        self._clients: list[LogsQueryClient] = []
        # duckdb-kql is imported here, not at the top: this module is a plugin of every test
        # session, and only the sessions that use the endpoint should pay for the engine.
        import duckdb_kql

        self._db = duckdb_kql.connect()
        self._db.execute("ATTACH ':memory:' AS seed")
        for table, columns in TABLES.items():
            body = ", ".join(f'"{name}" {_DUCKDB_TYPES[kind]}' for name, kind in columns.items())
            self._db.execute(
                f'CREATE TABLE seed."{table}" ({body}, "{INGESTION_COLUMN}" TIMESTAMP)'
            )

    # -- what a test sets up

    @property
    def now(self) -> datetime:
        """The instant `now()`, `ago()` and duration timespans are measured from."""
        return self._now

    @now.setter
    def now(self, moment: datetime) -> None:
        self._now = _utc(moment, "now")

    def client(self, **kwargs: Any) -> LogsQueryClient:
        """A real `LogsQueryClient` aimed at this endpoint; kwargs go to the client."""
        kwargs.setdefault("endpoint", self.endpoint)
        kwargs.setdefault("connection_verify", str(self.ca_path))
        client = LogsQueryClient(self.credential, **kwargs)
        self._clients.append(client)
        return client

    def add_rows(
        self,
        table: str,
        rows: Iterable[Mapping[str, Any]],
        *,
        ingested_at: datetime | None = None,
        arrivals: Sequence[datetime] | None = None,
    ) -> None:
        """Seed rows (Log Analytics column names) that arrived at `ingested_at`, or each at
        its own moment of `arrivals`.

        Without either a row counts as ingested at its `TimeGenerated`. Datetimes may
        be aware datetimes or ISO 8601 text; dynamic columns may be JSON text or Python
        values. `Type` defaults to the table name, and an AzureActivity JSON column given in
        one form (`Claims`) fills its twin (`Claims_d`), as the service does.
        """
        if table not in TABLES:
            raise ValueError(f"unknown table {table!r}; known: {sorted(TABLES)}")
        columns = TABLES[table]
        arrival = None if ingested_at is None else _utc(ingested_at, "ingested_at")
        names = [*columns, INGESTION_COLUMN]
        batch = []
        for number, given in enumerate(rows):
            if arrivals is not None:
                arrival = _utc(arrivals[number], "arrivals")
            row = _complete(table, given)
            unknown = sorted(set(row) - set(columns))
            if unknown:
                raise ValueError(f"{table} row {number}: no such column(s) {unknown}")
            if row.get("TimeGenerated") is None:
                raise ValueError(f"{table} row {number}: TimeGenerated is required")
            try:
                values = [_to_column(row.get(name), columns[name]) for name in columns]
            except (TypeError, ValueError) as err:
                raise ValueError(f"{table} row {number}: {err}") from err
            values.append(arrival or values[list(columns).index("TimeGenerated")])
            batch.append(values)
        if not batch:
            return
        quoted = ", ".join(f'"{name}"' for name in names)
        # DuckDB inserts row by row at about 2 ms a row through executemany; a CSV copy of
        # the same values takes a fraction of that, which matters for seeding whole exports.
        with tempfile.TemporaryDirectory() as folder:
            staged = Path(folder) / "rows.csv"
            with staged.open("w", encoding="utf-8", newline="") as handle:
                writer = csv.writer(handle)
                for values in batch:
                    writer.writerow([_NULL if v is None else v for v in values])
            with self._engine:
                self._db.execute(
                    f"COPY seed.\"{table}\" ({quoted}) FROM '{staged}' "
                    f"(FORMAT csv, HEADER false, NULLSTR '{_NULL}', QUOTE '\"', ESCAPE '\"')"
                )

    # -- faults, each for the next `times` calls, in the order they are queued

    def throttle(self, *, retry_after: float = 1, times: int = 1) -> None:
        """The next `times` calls get 429 with `Retry-After: retry_after` (seconds)."""
        self._queue(Throttle(retry_after=retry_after), times)

    def fail(self, status: int = 500, *, times: int = 1) -> None:
        """The next `times` calls get a 5xx (500 or 503, say)."""
        if not 500 <= status <= 599:
            raise ValueError(f"fail() is for 5xx answers, not {status}")
        self._queue(ServerError(status=status), times)

    def delay(self, seconds: float, *, times: int = 1) -> None:
        """The next `times` calls are answered only after `seconds` (a client-side timeout)."""
        self._queue(Delay(seconds=seconds), times)

    def partial_failure(self, *, message: str = _RUNAWAY, times: int = 1) -> None:
        """The next `times` calls return their tables together with a `PartialError`."""
        self._queue(PartialFailure(message=message), times)

    def _queue(self, fault: Fault, times: int) -> None:
        with self._state:
            self._faults.extend([fault] * times)

    # -- what a test reads back

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request so far, oldest first."""
        with self._state:
            return list(self._requests)

    @property
    def queries(self) -> list[str]:
        """The KQL of every query request so far, oldest first."""
        return [r.query for r in self.requests if r.query is not None]

    @property
    def failures(self) -> list[QueryFailure]:
        """Every query duckdb-kql could not run."""
        with self._state:
            return list(self._failures)

    def run(self, query: str, *, timespan: str | None = None) -> tuple[list[str], list[Any]]:
        """Run KQL as the endpoint would, without HTTP: (column names, rows as sent)."""
        start, end = _parse_timespan(timespan, self._now)
        table = self._execute(query, start, end)
        return [c["name"] for c in table["columns"]], table["rows"]

    # -- serving

    def answer(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> _Answer:
        """Answer one HTTP request and record it."""
        received = datetime.now(UTC)
        shown = {k: v for k, v in headers.items() if k.lower() != "authorization"}
        headers = {k.lower(): v for k, v in headers.items()}  # HTTP header names ignore case
        authorization = headers.get("authorization", "")
        authorized = authorization.startswith("Bearer ") and len(authorization) > len("Bearer ")
        workspace = query = timespan = None
        start = end = None
        fault: Fault | None = None
        try:
            match = _QUERY_PATH.fullmatch(path)
            if method != "POST" or match is None:
                answer = _Answer(
                    status=404,
                    body=_error("PathNotFoundError", "The requested path does not exist"),
                )
            elif not authorized:
                answer = _Answer(
                    status=401,
                    body=_error(
                        "AuthenticationFailed",
                        "Authentication failed. The 'Authorization' header is missing.",
                    ),
                )
            else:
                workspace = match["workspace"]
                payload = _read_body(headers, body)
                query, timespan = payload["query"], payload.get("timespan")
                start, end = _parse_timespan(timespan, self._now)
                if workspace != self.workspace_id:
                    answer = _Answer(
                        status=404,
                        body=_error(
                            "WorkspaceNotFoundError", f"Workspace {workspace} was not found."
                        ),
                    )
                else:
                    with self._state:
                        fault = self._faults.popleft() if self._faults else None
                    answer = self._respond(query, start, end, fault)
        except _BadRequestError as err:
            answer = _Answer(status=400, body=err.body)
        record = RecordedRequest(
            received_at=received,
            method=method,
            path=path,
            workspace_id=workspace,
            query=query,
            timespan=timespan,
            start=start,
            end=end,
            prefer=headers.get("prefer"),
            authorized=authorized,
            headers=shown,
            status=answer.status,
            fault=None if fault is None else type(fault).__name__,
        )
        with self._state:
            self._requests.append(record)
        return answer

    def _respond(
        self, query: str, start: datetime | None, end: datetime | None, fault: Fault | None
    ) -> _Answer:
        if isinstance(fault, Throttle):
            seconds = f"{fault.retry_after:g}"
            return _Answer(
                status=429,
                headers={"Retry-After": seconds},
                body=_error(
                    "ThrottledError",
                    f"Your request was throttled. Please retry after {seconds} seconds.",
                ),
            )
        if isinstance(fault, ServerError):
            code = "ServiceUnavailable" if fault.status == 503 else "InternalServerError"
            return _Answer(
                status=fault.status,
                body=_error(code, "Something went wrong while processing the request."),
            )
        try:
            table = self._execute(query, start, end)
        except _BadRequestError as err:
            with self._state:
                self._failures.append(QueryFailure(query=query, error=err.reason))
            raise
        body: dict[str, Any] = {"tables": [table]}
        if len(table["rows"]) > self.max_rows:
            table["rows"] = table["rows"][: self.max_rows]
            body["error"] = _partial_error(
                "-2133196797",
                f"Query result set has exceeded the internal record count limit "
                f"{self.max_rows} (E_QUERY_RESULT_SET_TOO_LARGE; see "
                "https://aka.ms/kustoquerylimits)",
            )
        elif isinstance(fault, PartialFailure):
            body["error"] = _partial_error(fault.code, fault.message)
        delay = fault.seconds if isinstance(fault, Delay) else 0.0
        return _Answer(status=200, body=body, delay=delay)

    def _execute(self, query: str, start: datetime | None, end: datetime | None) -> dict[str, Any]:
        import duckdb_kql
        from duckdb_kql.types import kusto_type

        window = ""
        if start is not None and end is not None:
            window = (
                f" WHERE \"TimeGenerated\" BETWEEN TIMESTAMP '{_naive(start).isoformat()}'"
                f" AND TIMESTAMP '{_naive(end).isoformat()}'"
            )
        with self._engine:
            for table in TABLES:
                self._db.execute(
                    f'CREATE OR REPLACE VIEW main."{table}" AS SELECT * FROM seed."{table}"{window}'
                )
            prelude = _INGESTION_PRELUDE if "ingestion_time" in query else ""
            try:
                relation = duckdb_kql.kql(
                    self._db,
                    prelude + query,
                    query_now=self._now,
                    allow_write=False,
                )
                names = list(relation.columns)
                kinds = [kusto_type(t) for t in relation.types]
                rows = relation.fetchall()
            # Whatever stops the local engine (a refused construct, a DuckDB error, a bug in
            # the translator) must reach the test as the service's 400, not a dropped socket.
            except Exception as err:
                syntax = isinstance(err, duckdb_kql.KqlSyntaxError)
                raise _BadRequestError(
                    "The request had some invalid properties",
                    inner_code="SyntaxError" if syntax else "SemanticError",
                    inner_message=_unshifted(f"{type(err).__name__}: {err}", len(prelude)),
                ) from err
        keep = [i for i, name in enumerate(names) if name != INGESTION_COLUMN]
        return {
            "name": "PrimaryResult",
            "columns": [{"name": names[i], "type": kinds[i]} for i in keep],
            "rows": [[_to_cell(row[i], kinds[i]) for i in keep] for row in rows],
        }

    def release(self) -> None:
        """End the test: wake held answers, close clients and the database."""
        self._released.set()
        for client in self._clients:
            client.close()
        with self._engine:
            self._db.close()

    def wait(self, seconds: float) -> None:
        """Sleep for a delayed answer, cut short when the test ends."""
        self._released.wait(seconds)


def _unshifted(message: str, shift: int) -> str:
    """A duckdb-kql message with first-line positions as the caller wrote the query."""
    if not shift:
        return message
    return re.sub(r"\bat 1:(\d+)", lambda m: f"at 1:{max(1, int(m[1]) - shift)}", message)


def _partial_error(code: str, message: str) -> dict[str, Any]:
    # The shape the service sends next to the tables of a partially failed query.
    return {
        "code": "PartialError",
        "message": "There were some errors when processing your query.",
        "details": [
            {
                "code": "EngineError",
                "message": "Something went wrong processing your query on the server.",
                "innererror": {
                    "code": code,
                    "message": message,
                    "severity": 2,
                    "severityName": "Error",
                },
            }
        ],
    }


def _read_body(headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
    kind = headers.get("content-type", "")
    if not kind.startswith("application/json"):
        raise _BadRequestError(
            "The request had some invalid properties",
            inner_code="UnsupportedMediaType",
            inner_message=f"Content-Type must be application/json, got {kind!r}",
        )
    try:
        payload = json.loads(body)
    except ValueError as err:
        raise _BadRequestError(
            "The request had some invalid properties",
            inner_code="InvalidJson",
            inner_message=str(err),
        ) from err
    if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
        raise _BadRequestError(
            "The request had some invalid properties",
            inner_code="MissingQuery",
            inner_message="The body must be a JSON object with a 'query' string.",
        )
    if payload.get("workspaces"):
        raise _BadRequestError(
            "The request had some invalid properties",
            inner_code="NotEmulated",
            inner_message="Additional workspaces are not emulated by the local endpoint.",
        )
    return payload


# --------------------------------------------------------------------------- conversions


def _utc(moment: datetime, what: str) -> datetime:
    if not isinstance(moment, datetime) or moment.tzinfo is None:
        raise ValueError(f"{what} must be an aware datetime, got {moment!r}")
    return moment.astimezone(UTC)


def _naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


def _parse_datetime(text: str) -> datetime:
    moment = datetime.fromisoformat(text.strip())
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _parse_duration(text: str) -> timedelta:
    match = _DURATION.fullmatch(text.strip())
    if match is None or not any(match.groupdict().values()):
        raise ValueError(f"not an ISO 8601 duration: {text!r}")
    parts = {name: float(value) for name, value in match.groupdict().items() if value}
    return timedelta(**parts)


def _parse_timespan(timespan: str | None, now: datetime) -> tuple[datetime | None, datetime | None]:
    """The service's `timespan`: `start/end`, `start/duration`, `duration/end` or `duration`."""
    if not timespan:
        return None, None
    try:
        if "/" in timespan:
            first, second = timespan.split("/", 1)
            if first.strip().upper().startswith("P"):
                end = _parse_datetime(second)
                return end - _parse_duration(first), end
            start = _parse_datetime(first)
            if second.strip().upper().startswith("P"):
                return start, start + _parse_duration(second)
            return start, _parse_datetime(second)
        return now - _parse_duration(timespan), now
    except ValueError as err:
        raise _BadRequestError(
            "The request had some invalid properties",
            inner_code="InvalidTimespan",
            inner_message=f"Invalid timespan {timespan!r}: {err}",
        ) from err


def _complete(table: str, given: Mapping[str, Any]) -> dict[str, Any]:
    row = dict(given)
    row.setdefault("Type", table)
    if table == "AzureActivity":
        for text, dynamic in _TWINS.items():
            if row.get(text) is not None and row.get(dynamic) is None:
                row[dynamic] = row[text]
            elif row.get(dynamic) is not None and row.get(text) is None:
                value = row[dynamic]
                row[text] = value if isinstance(value, str) else json.dumps(value)
    return row


def _to_column(value: Any, kind: str) -> Any:
    """A seeded value in the form its DuckDB column takes."""
    if value is None:
        return None
    if kind == "datetime":
        moment = _parse_datetime(value) if isinstance(value, str) else _utc(value, "datetime")
        return _naive(moment)
    if kind == "dynamic":
        if isinstance(value, str):
            try:
                json.loads(value)
            except ValueError:
                return json.dumps(value)
            return value
        return json.dumps(value, default=_json_default)
    if kind == "string":
        return value if isinstance(value, str) else json.dumps(value, default=_json_default)
    if kind == "real":
        return float(value)
    if kind in ("long", "int"):
        return int(value)
    if kind == "bool":
        return bool(value)
    return str(value)


def _to_cell(value: Any, kind: str) -> Any:
    """A result value as the service writes it in JSON."""
    if value is None:
        return None
    if kind == "datetime":
        return _iso(value)
    if kind == "dynamic":
        parsed = json.loads(value) if isinstance(value, str) else value
        if isinstance(parsed, str):
            return parsed
        return json.dumps(parsed, separators=(",", ":"), ensure_ascii=False, default=_json_default)
    if kind == "timespan":
        return _timespan(value)
    if kind == "real":
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return float(value)
    if kind in ("guid", "decimal") or isinstance(value, uuid.UUID | Decimal):
        return str(value)
    return value


def _iso(value: datetime | date) -> str:
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if value.tzinfo is not None:
        value = _naive(value)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}".rstrip("0")
    return text + "Z"


def _timespan(value: timedelta) -> str:
    sign = "-" if value < timedelta(0) else ""
    value = abs(value)
    hours, rest = divmod(value.seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    text = f"{hours:02d}:{minutes:02d}:{seconds:02d}"
    if value.days:
        text = f"{value.days}.{text}"
    if value.microseconds:
        text += f".{value.microseconds:06d}0"
    return sign + text


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return _iso(value)
    if isinstance(value, timedelta):
        return _timespan(value)
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


# --------------------------------------------------------------------------- HTTPS server


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, context: ssl.SSLContext) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.context = context
        self.workspace: LogAnalytics | None = None

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (timeout, refused certificate) is part of the tests, not news.
        pass


class _Handler(TLSRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        self._serve("POST")

    def do_GET(self) -> None:
        self._serve("GET")

    def _serve(self, method: str) -> None:
        body = self.body()
        workspace = self.server.workspace
        if workspace is None:
            answer = _Answer(
                status=503, body=_error("ServiceUnavailable", "No test holds the endpoint.")
            )
        else:
            answer = workspace.answer(method, self.path, dict(self.headers.items()), body)
            if answer.delay:
                workspace.wait(answer.delay)
        self.reply(answer.status, json.dumps(answer.body).encode(), answer.headers)


@pytest.fixture(scope="session")
def _log_analytics_endpoint(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Endpoint[_Server]]:
    with serving(_Server, tmp_path_factory.mktemp("log-analytics"), "log-analytics") as running:
        yield running


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses the endpoint `logs`, so `-m "not logs"` leaves them out."""
    for item in items:
        if "log_analytics" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.logs)


@pytest.fixture
def log_analytics(_log_analytics_endpoint: Endpoint[_Server]) -> Iterator[LogAnalytics]:
    """A fresh workspace on the local HTTPS endpoint: no rows, no faults, `now` at DEFAULT_NOW."""
    workspace = LogAnalytics(
        endpoint=_log_analytics_endpoint.url,
        ca_path=_log_analytics_endpoint.ca_path,
        workspace_id=str(uuid.uuid4()),
    )
    _log_analytics_endpoint.server.workspace = workspace
    try:
        yield workspace
    finally:
        _log_analytics_endpoint.server.workspace = None
        workspace.release()
