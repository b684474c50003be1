"""Fuzzing the readers and the normaliser: no exception escapes, no valid row is lost.

Property-based, with a fixed budget and derandomised (the same examples on every run, no
example database), so the suite stays deterministic and its time does not depend on luck.
"""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detectors.model.observation import Observation, RawRow, RejectedRow, SourceTable
from detectors.normalize.rows import Normalizer, Skipped, early_skip
from detectors.normalize.schemas import table_of
from detectors.sources.files import FileSource
from tests.rowkit import CLI, PUBLISHXML, Actor, activity, file_change, login, site_id, ts

FUZZ = settings(
    max_examples=150,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def _valid_rows() -> list[dict[str, Any]]:
    from datetime import UTC, datetime, timedelta

    when = datetime(2026, 10, 5, 9, tzinfo=UTC)
    actor = Actor(caller="jane@contoso.com", app_id=CLI, ip="198.51.100.10")
    rows: list[dict[str, Any]] = []
    for n in range(12):
        moment = when + timedelta(minutes=n)
        if n % 3 == 0:
            rows.append(login("$app1", moment, site_id("app1"), "203.0.113.5"))
        elif n % 3 == 1:
            path = "D:\\home\\site\\wwwroot\\App_Data\\jobs\\triggered\\x\\run.cmd"
            rows.append(file_change(moment, site_id("app1"), path))
        else:
            rows += activity(actor, moment, PUBLISHXML, site_id(f"app{n}"))
    for row in rows:
        row.setdefault("TimeGenerated", ts(when))
    return rows


ROWS = _valid_rows()
LINES = [json.dumps(row, ensure_ascii=False) for row in ROWS]

_junk = st.one_of(
    st.binary(max_size=64),
    st.text(max_size=64).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.sampled_from([b"{", b"}", b"[", b"]", b'"', b"\\", b",", b"\n", b"\x00", b"\r\n"]),
    st.integers(min_value=1, max_value=200_000).map(lambda n: b"[" * n),
)
_mutation = st.tuples(
    st.sampled_from(["insert", "delete", "replace", "truncate-line"]),
    st.integers(min_value=0, max_value=len(LINES) - 1),
    st.integers(min_value=0, max_value=400),
    _junk,
)


def _mutate(mutations: list[tuple[str, int, int, bytes]]) -> tuple[bytes, set[int]]:
    """NDJSON with the mutations applied to lines after the first three (which keep the
    format recognisable); returns the bytes and the indexes of lines left intact."""
    lines = [line.encode("utf-8") for line in LINES]
    touched: set[int] = set()
    for kind, chosen, offset, junk in mutations:
        index = max(chosen, 3)
        line = lines[index]
        at = min(offset, len(line))
        if kind == "insert":
            lines[index] = line[:at] + junk + line[at:]
        elif kind == "delete":
            lines[index] = line[:at] + line[at + max(1, len(junk)) :]
        elif kind == "replace":
            lines[index] = line[:at] + junk + line[at + len(junk) :]
        else:
            lines[index] = line[:at]
        touched.add(index)
    return b"\n".join(lines) + b"\n", set(range(len(LINES))) - touched


@FUZZ
@given(st.lists(_mutation, min_size=1, max_size=6))
def test_mutated_ndjson_keeps_every_intact_row_and_raises_nothing(tmp_path_factory, mutations):
    data, intact = _mutate(mutations)
    path: Path = tmp_path_factory.mktemp("fuzz") / "rows.jsonl"
    path.write_bytes(data)
    tracemalloc.start()
    try:
        rows = list(FileSource(path))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert all(isinstance(r, RawRow | RejectedRow) for r in rows)
    read = {json.dumps(r.fields, ensure_ascii=False) for r in rows if isinstance(r, RawRow)}
    for index in intact:
        assert LINES[index] in read, f"line {index + 1} was intact and is missing"
    assert peak < 32 * 1024 * 1024  # bounded whatever the junk (200,000 brackets among it)
    normalizer = Normalizer()
    for row in rows:
        if isinstance(row, RawRow):
            assert isinstance(normalizer.normalize(row), Observation | Skipped | RejectedRow)


_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=80),
        st.sampled_from(["", " ", "²", "9" * 5000, "0001-01-01T00:30:00+01:00", "{{x}}"]),
    ),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)


@FUZZ
@given(
    st.integers(min_value=0, max_value=len(ROWS) - 1),
    st.dictionaries(
        st.sampled_from(
            [
                "TimeGenerated", "OperationNameValue", "ActivityStatusValue", "Caller",
                "CallerIpAddress", "Claims", "Authorization", "Properties", "HTTPRequest",
                "_ResourceId", "ResourceId", "Count", "User", "UserAddress", "Protocol",
                "Path", "OperationName", "EventDataId", "IngestionTime",
            ]
        ),
        _values,
        min_size=1,
        max_size=4,
    ),
)  # fmt: skip
def test_any_value_in_any_column_is_used_skipped_or_rejected_never_raised(index, changes):
    row = {**ROWS[index], **changes}
    table = SourceTable(row["Type"])
    result = Normalizer().normalize(RawRow(source="fuzz", line=1, table=table, fields=row))
    assert isinstance(result, Observation | Skipped | RejectedRow)


_deciding = st.one_of(
    _values,
    st.sampled_from(
        [
            "Start",
            " started ",
            "START",
            "Success",
            "Accept",
            "Failure",
            "Succeeded",
            "Stärt",
            "MICROSOFT.WEB/SITES/PUBLISHXML/ACTION",
            " microsoft.web/sites/config/list/action ",
            "Microsoft.Web/serverfarms/write",
            "Microsoft.Storage/storageAccounts/listKeys/action",
            "Microsoft.Web/publishingUsers/write",
            "MICROSOFT.WEB/SITES/",
            "microsoft.web/",
            "D:\\home\\site\\wwwroot\\index.html",
            "D:/home/site/wwwroot/App_Data/jobs/x",
            "d:\\HOME\\App_Data\\Jobs\\Triggered\\nightly\\run.cmd",
            " ",
            "\u212a",
            "AzureActivity",
            "AppServiceFileAuditLogs",
            "appserviceauditlogs",
            "SigninLogs",
        ]
    ),
)


@FUZZ
@given(
    st.integers(min_value=0, max_value=len(ROWS) - 1),
    st.dictionaries(
        st.sampled_from(
            ["Type", "OperationNameValue", "ActivityStatusValue", "Path", "_ResourceId", "Count"]
        ),
        _deciding,
        min_size=1,
        max_size=4,
    ),
)
def test_a_row_skipped_early_is_one_the_normaliser_skips_for_the_same_reason(index, changes):
    row = {**ROWS[index], **changes}
    table = table_of(row)
    early = early_skip(table, row)
    if early is not None:
        result = Normalizer().normalize(RawRow(source="fuzz", line=1, table=table, fields=row))
        assert result == early


@FUZZ
@given(st.lists(_mutation, min_size=1, max_size=6))
def test_mutated_ndjson_reads_the_same_with_rows_skipped_early(tmp_path_factory, mutations):
    data, _ = _mutate(mutations)
    path: Path = tmp_path_factory.mktemp("fuzz") / "rows.jsonl"
    path.write_bytes(data)

    def outcomes(skip: Any) -> list[Any]:
        normalizer = Normalizer()
        found: list[Any] = []
        for item in FileSource(path, skip=skip):
            found.append(normalizer.normalize(item) if type(item) is RawRow else item)
        return found

    assert outcomes(early_skip) == outcomes(None)


def _archived_records() -> list[dict[str, Any]]:
    from tests.azure_shapes import resource_log

    return [resource_log(row) for row in ROWS]


RECORDS = _archived_records()
RECORD_TEXTS = [
    "\n".join("    " + line for line in json.dumps(r, indent=2, ensure_ascii=False).splitlines())
    for r in RECORDS
]


@settings(FUZZ, max_examples=60)
@given(st.lists(_mutation, min_size=1, max_size=4))
def test_a_damaged_records_object_keeps_every_intact_record(tmp_path_factory, mutations):
    """An archive blob or Event Hubs batch (`{"records": [...]}`, pretty-printed) with
    records damaged (stray brackets among them): every intact record is read, the damaged
    ones are rejected; only damage that leaves the wrapping object unclosed at the end of
    the file stops the reading, with an error naming the file, once every record before it
    has been read."""
    from detectors.model.errors import InputError
    from detectors.normalize.schemas import log_analytics_columns

    texts = [t.encode("utf-8") for t in RECORD_TEXTS]
    touched: set[int] = set()
    for kind, chosen, offset, junk in mutations:
        index = max(chosen % len(texts), 1)
        text = texts[index]
        at = min(offset, len(text))
        if kind == "insert":
            texts[index] = text[:at] + junk + text[at:]
        elif kind == "delete":
            texts[index] = text[:at] + text[at + max(1, len(junk)) :]
        else:
            texts[index] = text[:at] + junk + text[at + len(junk) :]
        touched.add(index)
    data = b'{\n  "records": [\n' + b",\n".join(texts) + b"\n  ]\n}\n"
    path: Path = tmp_path_factory.mktemp("fuzz") / "PT1H.json"
    path.write_bytes(data)
    rows: list[RawRow | RejectedRow] = []
    intact = set(range(len(RECORDS))) - touched
    stopped: InputError | None = None
    try:
        rows.extend(FileSource(path))
    except InputError as err:
        stopped = err
    if stopped is not None:
        assert str(stopped).startswith(str(path))
        intact = {i for i in intact if i < max(touched)}
    read = [r.fields for r in rows if isinstance(r, RawRow)]
    for index in intact:
        assert log_analytics_columns(RECORDS[index]) in read, f"record {index} was intact"
