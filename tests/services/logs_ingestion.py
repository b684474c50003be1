"""A local HTTPS stand-in for the Azure Monitor Logs Ingestion API, for the real
`LogsIngestionClient`, with the workspace table the data collection rule feeds.

The real `azure.monitor.ingestion.LogsIngestionClient` talks to it over TLS as it talks to a
data collection rule's `https://<rule>.<region>.ingest.monitor.azure.com` endpoint: it posts
gzip-compressed JSON arrays to `/dataCollectionRules/{immutable id}/streams/{stream}` with
`api-version` and a bearer token, in calls it splits at 1 MB. The rule is the one `infra/`
deploys, from the same declaration (`sentinel_table`): its stream columns, its transform,
and the custom table the transform's output lands in.

What it does as the service does (Azure Monitor service limits, Logs Ingestion API):

- 401 without a bearer token; 404 for an unknown rule; 400 for an unknown stream, a body
  that is not a JSON array of objects, a missing `api-version`; 413 for a call over 1 MB,
  compressed or not.
- A field value over 64 KB is cut to 64 KB (the service truncates silently); the cut is
  recorded in `truncated` so a test can assert there was none.
- The transform (`transformKql`) runs on duckdb-kql over each call's rows as `source`; its
  output is appended to the table with the moment of the call as `ingestion_time()`.
- Faults queue up per call: 429 with `Retry-After`, or a 5xx; nothing of that call is kept.

Stricter than the service, to catch mistakes: a row with a column the stream does not
declare, or a value that is not of the declared type, is refused with 400 naming it (the
service would drop or null it without a word).
"""

from __future__ import annotations

import gzip
import json
import re
import secrets
import ssl
import threading
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from detectors.delivery.destinations import sentinel_table
from tests.services.log_analytics import FakeTokenCredential
from tests.services.tls import Endpoint, TLSRequestHandler, serving

#: The service's limit on one call, compressed or uncompressed.
MAX_CALL_BYTES = 1024 * 1024
#: The service's limit on one field's value; longer values are truncated.
MAX_FIELD_BYTES = 64 * 1024
INGESTION_COLUMN = "_IngestTime"
API_VERSIONS = frozenset({"2021-11-01-preview", "2023-01-01"})

_PATH = re.compile(r"/dataCollectionRules/(?P<rule>[^/?#]+)/streams/(?P<stream>[^/?#]+)")
_DUCKDB = {
    "string": "VARCHAR",
    "int": "BIGINT",
    "long": "BIGINT",
    "real": "DOUBLE",
    "boolean": "BOOLEAN",
    "datetime": "TIMESTAMP",
    "dynamic": "JSON",
}


@dataclass(frozen=True, kw_only=True, slots=True)
class Call:
    """One request as the endpoint saw it, and the status it was answered with."""

    path: str
    api_version: str | None
    authorized: bool
    gzip: bool
    wire_bytes: int
    body_bytes: int
    rows: int
    status: int
    error: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class Throttle:
    """Answer 429 with `Retry-After` (seconds)."""

    retry_after: float = 1


@dataclass(frozen=True, kw_only=True, slots=True)
class ServerError:
    """Answer a 5xx."""

    status: int = 503


Fault = Throttle | ServerError


@dataclass(kw_only=True, slots=True)
class _Answer:
    status: int
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)


class _Refused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.answer = _Answer(status=status, body={"error": {"code": code, "message": message}})


class LogsIngestion:
    """One test's data collection rule and the workspace table it feeds."""

    def __init__(self, *, endpoint: str, ca_path: str) -> None:
        import duckdb_kql

        self.endpoint = endpoint
        self.ca_path = ca_path
        self.rule_id = f"dcr-{secrets.token_hex(16)}"
        self.stream = sentinel_table.STREAM
        self.table = sentinel_table.TABLE
        self.credential = FakeTokenCredential()
        self.stream_columns = {name: kind.value for name, kind in sentinel_table.stream_columns()}
        self.table_columns = {c.name: c.type.value for c in sentinel_table.COLUMNS}
        self.now = datetime.now(UTC)
        """The moment calls are ingested at (`ingestion_time()`); a test may move it."""
        self.truncated: list[tuple[str, int]] = []
        self._calls: list[Call] = []
        self._faults: deque[Fault] = deque()
        self._lock = threading.Lock()
        self._db = duckdb_kql.connect()
        body = ", ".join(f'"{n}" {_DUCKDB[t]}' for n, t in self.table_columns.items())
        self._db.execute(f'CREATE TABLE "{self.table}" ({body}, "{INGESTION_COLUMN}" TIMESTAMP)')

    # -- what a test sets up

    def environment(self) -> dict[str, str]:
        """The notifier's app settings for this rule."""
        return {
            "DETECTOR_SENTINEL_ENDPOINT": self.endpoint,
            "DETECTOR_SENTINEL_RULE_ID": self.rule_id,
            "DETECTOR_SENTINEL_STREAM": self.stream,
        }

    def throttle(self, *, retry_after: float = 1, times: int = 1) -> None:
        """The next `times` calls get 429 with `Retry-After: retry_after`."""
        with self._lock:
            self._faults.extend([Throttle(retry_after=retry_after)] * times)

    def fail(self, status: int = 503, *, times: int = 1) -> None:
        """The next `times` calls get a 5xx."""
        with self._lock:
            self._faults.extend([ServerError(status=status)] * times)

    # -- what a test reads back

    @property
    def calls(self) -> list[Call]:
        """Every call so far, oldest first."""
        with self._lock:
            return list(self._calls)

    def rows(self) -> list[dict[str, Any]]:
        """The table's rows in ingestion order: dynamic columns parsed, datetimes aware."""
        columns, rows = self.query(f"{self.table} | order by {INGESTION_COLUMN} asc")
        return [dict(zip(columns, values, strict=True)) for values in rows]

    def query(self, kql: str, *, now: datetime | None = None) -> tuple[list[str], list[Any]]:
        """Run KQL over the table on duckdb-kql, with `ingestion_time()` and `now()`."""
        import duckdb_kql

        prelude = f"let ingestion_time = () {{ todatetime({INGESTION_COLUMN}) }}; "
        with self._lock:
            relation = duckdb_kql.kql(
                self._db, prelude + kql, query_now=now or self.now, allow_write=False
            )
            names = list(relation.columns)
            values = relation.fetchall()
        kinds = {**self.table_columns, INGESTION_COLUMN: "datetime"}
        return names, [
            [_value(v, kinds.get(n, "")) for n, v in zip(names, row, strict=True)] for row in values
        ]

    # -- serving

    def answer(self, path: str, headers: Mapping[str, str], wire: bytes) -> _Answer:
        """Answer one POST and record it."""
        headers = {k.lower(): v for k, v in headers.items()}
        authorization = headers.get("authorization", "")
        authorized = authorization.startswith("Bearer ") and len(authorization) > len("Bearer ")
        parts = urlsplit(path)
        version = (parse_qs(parts.query).get("api-version") or [None])[0]
        zipped = headers.get("content-encoding", "").lower() == "gzip"
        body, rows, error = wire, 0, ""
        try:
            body = self._checked(
                parts.path, version, authorized=authorized, zipped=zipped, wire=wire
            )
            records = self._records(body)
            rows = len(records)
            with self._lock:
                fault = self._faults.popleft() if self._faults else None
            if isinstance(fault, Throttle):
                seconds = f"{fault.retry_after:g}"
                answer = _Answer(
                    status=429,
                    headers={"Retry-After": seconds},
                    body={"error": {"code": "TooManyRequests", "message": "Throttled."}},
                )
            elif isinstance(fault, ServerError):
                answer = _Answer(
                    status=fault.status,
                    body={"error": {"code": "ServiceUnavailable", "message": "Try again."}},
                )
            else:
                self._ingest(records)
                answer = _Answer(status=204)
        except _Refused as refused:
            answer, error = refused.answer, str(refused)
        call = Call(
            path=path,
            api_version=version,
            authorized=authorized,
            gzip=zipped,
            wire_bytes=len(wire),
            body_bytes=len(body),
            rows=rows,
            status=answer.status,
            error=error,
        )
        with self._lock:
            self._calls.append(call)
        return answer

    def _checked(
        self, path: str, version: str | None, *, authorized: bool, zipped: bool, wire: bytes
    ) -> bytes:
        """The call's data, once its token, path, version and size pass."""
        if not authorized:
            raise _Refused(401, "InvalidAuthToken", "The bearer token is missing.")
        match = _PATH.fullmatch(path)
        if match is None or match["rule"] != self.rule_id:
            raise _Refused(404, "NotFound", f"No data collection rule at {path}")
        if version not in API_VERSIONS:
            raise _Refused(400, "InvalidApiVersion", f"api-version {version!r} is not one")
        if match["stream"] != self.stream:
            raise _Refused(400, "InvalidStream", f"The rule has no stream {match['stream']}")
        if len(wire) > MAX_CALL_BYTES:
            raise _Refused(413, "ContentLengthLimitExceeded", "The call is over 1 MB.")
        body = gzip.decompress(wire) if zipped else wire
        if len(body) > MAX_CALL_BYTES:
            raise _Refused(413, "ContentLengthLimitExceeded", "The data is over 1 MB.")
        return body

    def _records(self, body: bytes) -> list[dict[str, Any]]:
        try:
            records = json.loads(body)
        except ValueError as err:
            raise _Refused(400, "InvalidJson", f"The body is not JSON: {err}") from err
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise _Refused(400, "InvalidPayload", "The body must be a JSON array of objects.")
        for number, record in enumerate(records):
            for name, value in record.items():
                if name not in self.stream_columns:
                    raise _Refused(400, "InvalidColumn", f"row {number}: no column {name!r}")
                problem = _type_problem(value, self.stream_columns[name])
                if problem:
                    raise _Refused(400, "InvalidValue", f"row {number}: {name} {problem}")
                text = value if isinstance(value, str) else json.dumps(value)
                if len(text.encode("utf-8")) > MAX_FIELD_BYTES:
                    self.truncated.append((name, len(text.encode("utf-8"))))
                    record[name] = _cut(value, text)
        return records

    def _ingest(self, records: Sequence[Mapping[str, Any]]) -> None:
        import duckdb_kql

        stream = self.stream_columns
        names = list(stream)
        with self._lock:
            self._db.execute("DROP TABLE IF EXISTS source")
            body = ", ".join(f'"{n}" {_DUCKDB[t]}' for n, t in stream.items())
            self._db.execute(f"CREATE TEMP TABLE source ({body})")
            marks = ", ".join("?" for _ in names)
            self._db.executemany(
                f"INSERT INTO source VALUES ({marks})",
                [[_stored(r.get(n), stream[n]) for n in names] for r in records],
            )
            output = duckdb_kql.kql(self._db, sentinel_table.TRANSFORM, allow_write=False)
            columns, values = list(output.columns), output.fetchall()
            unknown = set(columns) - set(self.table_columns)
            if unknown:
                raise _Refused(400, "TransformOutput", f"the table has no {sorted(unknown)}")
            quoted = ", ".join(f'"{c}"' for c in [*columns, INGESTION_COLUMN])
            marks = ", ".join("?" for _ in range(len(columns) + 1))
            arrived = self.now.astimezone(UTC).replace(tzinfo=None)
            self._db.executemany(
                f'INSERT INTO "{self.table}" ({quoted}) VALUES ({marks})',
                [[*row, arrived] for row in values],
            )
            self._db.execute("DROP TABLE source")

    def release(self) -> None:
        """End the test."""
        with self._lock:
            self._db.close()


def _type_problem(value: Any, kind: str) -> str:
    if value is None or kind == "dynamic":
        return ""
    if kind == "string":
        return "" if isinstance(value, str) else f"is not a string: {value!r}"
    if kind in ("int", "long"):
        ok = isinstance(value, int) and not isinstance(value, bool)
        return "" if ok else f"is not an integer: {value!r}"
    if kind == "real":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return "" if ok else f"is not a number: {value!r}"
    if kind == "boolean":
        return "" if isinstance(value, bool) else f"is not a boolean: {value!r}"
    if kind == "datetime":
        try:
            datetime.fromisoformat(str(value))
        except ValueError:
            return f"is not an ISO 8601 time: {value!r}"
        return ""
    return f"has a type the endpoint does not know: {kind}"


def _cut(value: Any, text: str) -> Any:
    cut = text.encode("utf-8")[:MAX_FIELD_BYTES].decode("utf-8", "ignore")
    return cut if isinstance(value, str) else json.dumps(cut)


def _stored(value: Any, kind: str) -> Any:
    if value is None:
        return None
    if kind == "datetime":
        moment = datetime.fromisoformat(str(value))
        if moment.tzinfo is not None:
            moment = moment.astimezone(UTC).replace(tzinfo=None)
        return moment
    if kind == "dynamic":
        return json.dumps(value)
    return value


def _value(value: Any, kind: str) -> Any:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value
    if kind == "dynamic" and isinstance(value, str):
        return json.loads(value)
    return value


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, context: ssl.SSLContext) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.context = context
        self.rule: LogsIngestion | None = None

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


class _Handler(TLSRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        wire = self.body()
        rule = self.server.rule
        if rule is None:
            answer = _Answer(status=503, body={"error": {"code": "NoTest", "message": "idle"}})
        else:
            answer = rule.answer(self.path, dict(self.headers.items()), wire)
        payload = b"" if answer.body is None else json.dumps(answer.body).encode()
        self.reply(answer.status, payload, answer.headers)


@pytest.fixture(scope="session")
def _logs_ingestion_endpoint(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Endpoint[_Server]]:
    with serving(_Server, tmp_path_factory.mktemp("logs-ingestion"), "logs-ingestion") as running:
        yield running


@pytest.fixture
def logs_ingestion(_logs_ingestion_endpoint: Endpoint[_Server]) -> Iterator[LogsIngestion]:
    """A fresh data collection rule and empty table on the local HTTPS endpoint."""
    rule = LogsIngestion(
        endpoint=_logs_ingestion_endpoint.url, ca_path=str(_logs_ingestion_endpoint.ca_path)
    )
    _logs_ingestion_endpoint.server.rule = rule
    try:
        yield rule
    finally:
        _logs_ingestion_endpoint.server.rule = None
        rule.release()
