"""Tests for the streaming file source: formats, gzip, tables, bad rows, streaming."""

from __future__ import annotations

import csv
import gzip
import json
import os
import random
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from detectors.model.errors import InputError
from detectors.model.observation import RawRow, RejectedRow, SourceTable
from detectors.normalize.schemas import infer_table
from detectors.sources import files
from detectors.sources.files import CHUNK_BYTES, FileSource

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "files"
SITE = (
    "/subscriptions/3f2504e0-4f89-41d3-9a0c-0305e82c3301/resourceGroups/rg-web"
    "/providers/Microsoft.Web/sites/contoso-app"
)
CLAIMS = {
    "appid": "04b07795-8ddb-461a-bbee-02f9e1bf7b46",
    "ipaddr": "203.0.113.7",
    "name": "Alice {Example} [admin]",
    "upn": "alice@contoso.com",
}

# Rows as `az monitor log-analytics query` prints them: every value a string, dynamic columns
# as JSON text, a `TableName` column, `Type` only where the query kept it.
ACTIVITY = {
    "TimeGenerated": "2026-05-09T07:35:25.123Z",
    "OperationNameValue": "MICROSOFT.WEB/SITES/PUBLISHXML/ACTION",
    "ActivityStatusValue": "Success",
    "Caller": "alice@contoso.com",
    "CallerIpAddress": "203.0.113.7",
    "Claims": json.dumps(CLAIMS),
    "Authorization": json.dumps({"action": "Microsoft.Web/sites/publishxml/action", "scope": SITE}),
    "EventDataId": "0f8e2c1d-3b4a-4e5f-8a7b-6c5d4e3f2a1b",
    "_ResourceId": SITE.lower(),
    "Type": "AzureActivity",
    "TableName": "PrimaryResult",
}
AUDIT = {
    "TimeGenerated": "2026-05-09T07:40:00Z",
    "OperationName": "Authorization",
    "Protocol": "FTP",
    "User": "$contoso-app",
    "UserAddress": "198.51.100.9",
    "_ResourceId": SITE.lower(),
    "TableName": "PrimaryResult",
}
FILE_AUDIT = {
    "TimeGenerated": "2026-05-09T07:41:00Z",
    "OperationName": "Create",
    "Path": "D:\\home\\site\\wwwroot\\App_Data\\jobs\\continuous\\updater\\run.cmd",
    "Process": "w3wp",
    "_ResourceId": SITE.lower(),
    "Type": "AppServiceFileAuditLogs",
    "TableName": "PrimaryResult",
}
ROWS = [ACTIVITY, AUDIT, FILE_AUDIT]
TABLES = [
    SourceTable.AZURE_ACTIVITY,
    SourceTable.APP_SERVICE_AUDIT,
    SourceTable.APP_SERVICE_FILE_AUDIT,
]


def write(tmp_path: Path, name: str, data: bytes | str) -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def read(path: Path, **options: Any) -> list[RawRow | RejectedRow]:
    return list(FileSource(path, **options))


def raw_rows(rows: list[RawRow | RejectedRow]) -> list[RawRow]:
    assert all(isinstance(row, RawRow) for row in rows), [
        row for row in rows if isinstance(row, RejectedRow)
    ]
    return [row for row in rows if isinstance(row, RawRow)]


def summary(rows: list[RawRow | RejectedRow]) -> list[tuple[str, int]]:
    """(kind, line) per row: enough to see what was read and where."""
    return [("raw" if isinstance(row, RawRow) else "rejected", row.line) for row in rows]


def reasons(rows: list[RawRow | RejectedRow]) -> list[str]:
    return [row.reason for row in rows if isinstance(row, RejectedRow)]


def element_lines(text: str, indent: str = "  ") -> list[int]:
    """1-based lines on which a top-level element of a pretty-printed array opens."""
    return [n for n, line in enumerate(text.split("\n"), 1) if line.rstrip() == indent + "{"]


def ndjson(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)


def portal_csv() -> bytes:
    """A Log Analytics portal "Export to CSV": BOM, CRLF, `[UTC]` suffixes, quoted JSON cells."""
    claims = json.dumps(CLAIMS).replace('"', '""')
    lines = [
        "\ufeffTenantId,SourceSystem,TimeGenerated [UTC],OperationNameValue,ActivityStatusValue,"
        "Caller,Claims,Properties,Type",
        f'72f988bf,Azure,"5/19/2026, 7:35:25.123 AM",MICROSOFT.WEB/SITES/PUBLISHXML/ACTION,Success,'
        f'alice@contoso.com,"{claims}","{{""message"": ""first line',
        # the quoted cell above goes on over two more physical lines
        "second, with a comma",
        'third""}",AzureActivity',
        "72f988bf,Azure,2026-05-09T07:36:00Z,MICROSOFT.WEB/SITES/CONFIG/LIST/ACTION,Start,"
        'bob@contoso.com,"{}","{}",azureactivity',
    ]
    return ("\r\n".join(lines) + "\r\n").encode()


# --- formats -------------------------------------------------------------------------------------


def test_pretty_printed_json_array_yields_each_element_from_the_line_it_opens_on(
    tmp_path: Path,
) -> None:
    text = json.dumps(ROWS, indent=2)
    path = write(tmp_path, "query.json", text)

    rows = raw_rows(read(path))

    assert [row.fields for row in rows] == ROWS
    assert [row.line for row in rows] == element_lines(text)
    assert [row.table for row in rows] == TABLES
    assert {row.source for row in rows} == {str(path)}


def test_json_array_with_one_element_per_line_and_crlf_is_read(tmp_path: Path) -> None:
    text = "[\r\n" + ",\r\n".join(json.dumps(row) for row in ROWS) + "\r\n]\r\n"
    path = write(tmp_path, "rows.json", text)

    rows = raw_rows(read(path))

    assert [row.fields for row in rows] == ROWS
    assert [row.line for row in rows] == [2, 3, 4]


def test_json_array_on_a_single_line_is_read_element_by_element(tmp_path: Path) -> None:
    # Braces, brackets, quotes and a trailing backslash inside strings must not end an element.
    tricky = {"Path": "C:\\jobs\\", "Note": 'say "}]" then {[', "Type": "AppServiceFileAuditLogs"}
    path = write(tmp_path, "compact.json", json.dumps([*ROWS, tricky]))

    rows = raw_rows(read(path))

    assert [row.fields for row in rows] == [*ROWS, tricky]
    assert [row.line for row in rows] == [1, 1, 1, 1]


def test_json_array_whose_nested_braces_share_the_element_indentation_is_read(
    tmp_path: Path,
) -> None:
    # indent=0 puts nested closing braces in column 0 too, where the elements' own close.
    nested = [{"a": {"b": [{"c": 1}]}, "Type": "AzureActivity"}, {"a": {}, "Protocol": "FTP"}] * 3
    elements = [json.dumps(element, indent=0) for element in nested]
    path = write(tmp_path, "indent0.json", "[\n" + ",\n".join(elements) + "\n]")

    rows = raw_rows(read(path))

    assert [row.fields for row in rows] == nested
    sizes = [element.count("\n") + 1 for element in elements]
    assert [row.line for row in rows] == [2 + sum(sizes[:k]) for k in range(len(sizes))]


def test_layout_that_defeats_the_end_guess_stops_the_guessing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    guesses = 0
    real_guess_end = files._guess_end

    def counting_guess_end(*args: Any) -> int:
        nonlocal guesses
        guesses += 1
        return real_guess_end(*args)

    monkeypatch.setattr(files, "_guess_end", counting_guess_end)
    # Every element closes at the indentation where its nested object closes first.
    elements = [json.dumps({"a": {"b": n}, "Protocol": "FTP"}, indent=0) for n in range(50)]
    path = write(tmp_path, "indent0.json", "[\n" + ",\n".join(elements) + "\n]")

    rows = raw_rows(read(path))

    assert [row.fields["a"] for row in rows] == [{"b": n} for n in range(50)]
    assert guesses <= 3


def test_json_arrays_written_one_after_another_are_read_as_one(tmp_path: Path) -> None:
    path = write(tmp_path, "two.json", json.dumps(ROWS[:1]) + "\n" + json.dumps(ROWS[1:]))

    assert [row.fields for row in raw_rows(read(path))] == ROWS


def test_ndjson_yields_rows_with_their_line_numbers_and_skips_blank_lines(tmp_path: Path) -> None:
    text = (
        json.dumps(ACTIVITY) + "\r\n\r\n" + json.dumps(AUDIT) + "\n   \n" + json.dumps(FILE_AUDIT)
    )
    path = write(tmp_path, "rows.ndjson", text)

    rows = raw_rows(read(path))

    assert [row.fields for row in rows] == ROWS
    assert [row.line for row in rows] == [1, 3, 5]
    assert [row.table for row in rows] == TABLES


def test_portal_csv_export_is_read_with_clean_column_names_and_multiline_cells(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, "export.csv", portal_csv())

    rows = raw_rows(read(path))

    assert [row.line for row in rows] == [2, 5]
    first = rows[0].fields
    assert list(first) == [
        "TenantId",
        "SourceSystem",
        "TimeGenerated",
        "OperationNameValue",
        "ActivityStatusValue",
        "Caller",
        "Claims",
        "Properties",
        "Type",
    ]
    # the day after the 12th settles the locale: month first, made ISO 8601
    assert first["TimeGenerated"] == "2026-05-19T07:35:25.123000+00:00"
    assert json.loads(first["Claims"]) == CLAIMS
    assert first["Properties"] == '{"message": "first line\r\nsecond, with a comma\r\nthird"}'
    assert [row.table for row in rows] == [SourceTable.AZURE_ACTIVITY] * 2


def test_csv_with_only_local_times_is_refused_rather_than_shifted(tmp_path: Path) -> None:
    path = write(tmp_path, "local.csv", "TimeGenerated [Local Time],Protocol,User\nx,FTP,$app\n")

    with pytest.raises(
        InputError, match=r"local times; export again with the time zone set to UTC"
    ):
        read(path)


def test_activity_log_list_output_is_renamed_to_azure_activity_columns() -> None:
    path = FIXTURES / "activity-log-list.json"
    events = json.loads(path.read_text())

    first, second = raw_rows(read(path))

    site = events[0]["resourceId"]
    assert first.line == 2
    assert first.table is SourceTable.AZURE_ACTIVITY
    assert first.fields == {
        "TimeGenerated": "2026-05-09T07:35:25.1234567Z",
        "OperationNameValue": "Microsoft.Web/sites/publishxml/action",
        "ActivityStatusValue": "Succeeded",
        "ActivitySubstatusValue": "OK",
        "Caller": "alice@contoso.com",
        "CallerIpAddress": "203.0.113.7",
        "Claims": events[0]["claims"],
        "Authorization": events[0]["authorization"],
        "HTTPRequest": events[0]["httpRequest"],
        "Properties": events[0]["properties"],
        "CorrelationId": "b7c1a7f0-5d2e-4c7a-9a51-0c2f3e4d5a6b",
        "OperationId": "5c4b3a29-1807-4f6e-9d8c-7b6a59483726",
        "EventDataId": "0f8e2c1d-3b4a-4e5f-8a7b-6c5d4e3f2a1b",
        "ResourceId": site,
        "_ResourceId": site.lower(),
        "SubscriptionId": "3f2504e0-4f89-41d3-9a0c-0305e82c3301",
        "ResourceGroup": "rg-web",
        "ResourceProviderValue": "Microsoft.Web",
        "CategoryValue": "Administrative",
        "Level": "Informational",
        "EventSubmissionTimestamp": "2026-05-09T07:37:01.5550000Z",
        "TenantId": "72f988bf-86f1-41af-91ab-2d7cd011db47",
        "Type": "AzureActivity",
    }
    assert isinstance(first.fields["Claims"], dict)
    # The second event has no httpRequest and no subStatus: those columns stay absent.
    assert second.line == 83
    assert second.fields["ActivityStatusValue"] == "Started"
    assert {"HTTPRequest", "CallerIpAddress", "ActivitySubstatusValue"}.isdisjoint(second.fields)


def test_activity_log_events_are_recognised_in_ndjson_too(tmp_path: Path) -> None:
    event = {"operationName": {"value": "Microsoft.Web/sites/newpassword/action"}, "caller": "x"}
    path = write(tmp_path, "events.ndjson", json.dumps(event) + "\n")

    (row,) = raw_rows(read(path))

    assert row.fields == {
        "OperationNameValue": "Microsoft.Web/sites/newpassword/action",
        "Caller": "x",
        "Type": "AzureActivity",
    }


# --- gzip ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(json.dumps(ROWS, indent=2).encode(), id="json-array"),
        pytest.param(ndjson(ROWS).encode(), id="ndjson"),
        pytest.param(portal_csv(), id="csv"),
        pytest.param((FIXTURES / "activity-log-list.json").read_bytes(), id="activity-log-list"),
    ],
)
def test_gzipped_file_reads_exactly_like_the_plain_one(tmp_path: Path, content: bytes) -> None:
    plain = read(write(tmp_path, "plain", content))
    # the name says nothing: gzip is recognised by its magic bytes
    zipped = read(write(tmp_path, "zipped.csv", gzip.compress(content)))

    assert [(row.line, row.table, row.fields) for row in raw_rows(zipped)] == [
        (row.line, row.table, row.fields) for row in raw_rows(plain)
    ]
    assert len(plain) >= 2


def test_plain_file_with_a_gz_name_is_read_as_plain(tmp_path: Path) -> None:
    path = write(tmp_path, "rows.ndjson.gz", ndjson(ROWS))

    assert [row.fields for row in raw_rows(read(path))] == ROWS


def test_gzip_of_several_members_and_zero_padding_is_read_to_the_end(tmp_path: Path) -> None:
    data = gzip.compress(ndjson(ROWS[:2]).encode()) + gzip.compress(ndjson(ROWS[2:]).encode())
    data += bytes(512)  # some writers pad to a block size
    path = write(tmp_path, "members.gz", data)

    assert [row.line for row in raw_rows(read(path))] == [1, 2, 3]


def noisy_ndjson(count: int, seed: int = 7) -> bytes:
    """Rows with random values, so that gzip cannot shrink them much."""
    rng = random.Random(seed)
    return ndjson(
        [{**AUDIT, "Noise": rng.randbytes(300).hex(), "Seq": n} for n in range(count)]
    ).encode()


def test_truncated_gzip_keeps_the_rows_before_the_cut_then_raises(tmp_path: Path) -> None:
    compressed = gzip.compress(noisy_ndjson(2000))
    path = write(tmp_path, "cut.ndjson.gz", compressed[: len(compressed) * 6 // 10])
    rows: list[RawRow | RejectedRow] = []

    with pytest.raises(InputError, match="truncated") as caught:
        rows.extend(FileSource(path))

    assert str(path) in str(caught.value)
    assert "bytes of content" in str(caught.value)
    assert len(rows) > 1000  # about 60% of the rows were complete before the cut
    assert [row.line for row in raw_rows(rows)] == list(range(1, len(rows) + 1))


def test_corrupt_gzip_raises_input_error_naming_the_file(tmp_path: Path) -> None:
    compressed = bytearray(gzip.compress(noisy_ndjson(200)))
    compressed[len(compressed) // 2 : len(compressed) // 2 + 64] = bytes(64)
    path = write(tmp_path, "bad.gz", bytes(compressed))

    with pytest.raises(InputError, match="corrupt") as caught:
        for _ in FileSource(path):
            pass

    assert str(path) in str(caught.value)


# --- tables --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("declared", "table"),
    [
        ("AzureActivity", SourceTable.AZURE_ACTIVITY),
        ("appserviceauditlogs", SourceTable.APP_SERVICE_AUDIT),
        ("APPSERVICEFILEAUDITLOGS", SourceTable.APP_SERVICE_FILE_AUDIT),
        ("SigninLogs", None),
    ],
)
def test_type_column_decides_the_table_whatever_its_case(
    tmp_path: Path, declared: str, table: SourceTable | None
) -> None:
    # The columns look like AzureActivity: only Type may decide.
    path = write(tmp_path, "t.ndjson", json.dumps({"OperationNameValue": "x", "Type": declared}))

    (row,) = raw_rows(read(path))

    assert row.table is table


@pytest.mark.parametrize(
    ("fields", "table"),
    [
        ({"OperationNameValue": "x"}, SourceTable.AZURE_ACTIVITY),
        ({"ActivityStatusValue": "Success"}, SourceTable.AZURE_ACTIVITY),
        ({"CategoryValue": "Administrative"}, SourceTable.AZURE_ACTIVITY),
        ({"Protocol": "FTP", "User": "$app"}, SourceTable.APP_SERVICE_AUDIT),
        ({"Protocol": "FTP", "UserAddress": "198.51.100.9"}, SourceTable.APP_SERVICE_AUDIT),
        ({"Path": "/x", "Process": "w3wp"}, SourceTable.APP_SERVICE_FILE_AUDIT),
        ({"Path": "/x", "OperationName": "Delete"}, SourceTable.APP_SERVICE_FILE_AUDIT),
        ({"Protocol": "FTP"}, None),
        ({"Path": "/x"}, None),
        ({"TimeGenerated": "t"}, None),
        # a union export carries every table's columns, empty where they do not apply
        (
            {"OperationNameValue": "", "Protocol": "", "Path": "/x", "Process": "w3wp"},
            SourceTable.APP_SERVICE_FILE_AUDIT,
        ),
    ],
)
def test_infer_table_from_the_columns_that_carry_values(
    fields: dict[str, str], table: SourceTable | None
) -> None:
    assert infer_table(fields) is table


def test_rows_without_type_get_the_inferred_table_and_unknown_rows_are_still_yielded(
    tmp_path: Path,
) -> None:
    rows = [{"Protocol": "FTP", "User": "$app", "Type": ""}, {"Computer": "vm1"}]
    path = write(tmp_path, "t.ndjson", ndjson(rows))

    assert [row.table for row in raw_rows(read(path))] == [SourceTable.APP_SERVICE_AUDIT, None]


# --- bad rows ------------------------------------------------------------------------------------


def test_ndjson_bad_lines_are_rejected_with_their_line_and_neighbours_kept(tmp_path: Path) -> None:
    lines = [
        json.dumps(ACTIVITY).encode(),
        b'{"Protocol": "FTP", "User": tru}',
        b"[1, 2]",
        b'{"Protocol": "FTP", "User": "\xff\xfe"}',
        b"42",
        json.dumps(AUDIT).encode(),
    ]
    path = write(tmp_path, "bad.ndjson", b"\n".join(lines) + b"\n")

    rows = read(path)

    assert summary(rows) == [
        ("raw", 1),
        ("rejected", 2),
        ("rejected", 3),
        ("rejected", 4),
        ("rejected", 5),
        ("raw", 6),
    ]
    assert reasons(rows) == [
        "invalid JSON: invalid literal at line 2, column 29",
        "expected a JSON object, found an array",
        "invalid UTF-8: byte 0xff at line 4, column 30",
        "expected a JSON object, found a number",
    ]


def test_odd_unicode_and_control_characters_in_values_are_kept(tmp_path: Path) -> None:
    lines = [
        b'{"User": "nul\\u0000 bell\\u0007 rtl\\u202e zwj\\u200d"}',
        b'{"User": "raw\ttab"}',  # a raw control character: not strict JSON, but kept
        b'{"User": "lone \\ud800 surrogate"}',
    ]
    path = write(tmp_path, "odd.ndjson", b"\n".join(lines))

    rows = raw_rows(read(path))

    assert [row.fields["User"] for row in rows] == [
        "nul\x00 bell\x07 rtl\u202e zwj\u200d",
        "raw\ttab",
        "lone \ud800 surrogate",
    ]


def pretty(elements: list[str]) -> str:
    """A pretty-printed array from elements already written at two spaces of indentation."""
    return "[\n" + ",\n".join(elements) + "\n]\n"


def indented(row: dict[str, Any]) -> str:
    return "\n".join("  " + line for line in json.dumps(row, indent=2).split("\n"))


def test_json_array_element_with_bad_content_is_rejected_and_the_rest_read(
    tmp_path: Path,
) -> None:
    broken = indented(AUDIT).replace('"FTP"', "FTP")
    text = pretty([indented(ACTIVITY), broken, indented(FILE_AUDIT)])
    path = write(tmp_path, "bad.json", text)

    rows = read(path)

    assert summary(rows) == [("raw", line) for line in element_lines(text)[:1]] + [
        ("rejected", element_lines(text)[1]),
        ("raw", element_lines(text)[2]),
    ]
    assert reasons(rows)[0].startswith("invalid JSON: unexpected character at line")


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        # a bracket that closes the wrong thing
        (lambda text: text.replace('"FTP"', '["FTP"}', 1), "unbalanced '}'"),
        # a string that never closes: the scanner must not read on into the next element
        (lambda text: text.replace('"FTP"', '"FTP', 1), "string not closed"),
        # the element's own closing brace is missing
        (lambda text: text.rstrip().removesuffix("}"), "invalid JSON"),
    ],
    ids=["wrong-closer", "open-string", "missing-close"],
)
def test_json_array_element_with_broken_structure_is_rejected_and_reading_resumes(
    tmp_path: Path, damage: Any, problem: str
) -> None:
    text = pretty([indented(ACTIVITY), damage(indented(AUDIT)), indented(FILE_AUDIT)])
    starts = element_lines(text)
    path = write(tmp_path, "broken.json", text)

    rows = read(path)

    assert summary(rows) == [("raw", starts[0]), ("rejected", starts[1]), ("raw", starts[2])]
    assert problem in reasons(rows)[0]
    assert raw_rows([rows[0], rows[2]])[1].fields == FILE_AUDIT


def test_json_array_one_per_line_with_an_unclosed_string_loses_only_that_line(
    tmp_path: Path,
) -> None:
    lines = [json.dumps(AUDIT), '{"Protocol": "FTP", "User": "$app},', json.dumps(FILE_AUDIT)]
    path = write(tmp_path, "lines.json", "[\n" + ",\n".join(lines) + "\n]\n")

    rows = read(path)

    assert summary(rows) == [("raw", 2), ("rejected", 3), ("raw", 4)]
    assert reasons(rows) == ["invalid JSON: string not closed before the end of line 3"]


def filler(count: int) -> list[str]:
    """Valid pretty-printed elements, enough to run past the first chunk."""
    return [indented({**AUDIT, "Seq": n, "Noise": "n" * 400}) for n in range(count)]


def test_unclosed_element_that_runs_past_the_limit_is_cut_at_the_next_element(
    tmp_path: Path,
) -> None:
    unclosed = indented(AUDIT).rstrip().removesuffix("}")
    text = pretty([indented(ACTIVITY), unclosed, *filler(3000)])
    path = write(tmp_path, "runaway.json", text)

    rows = read(path, max_row_bytes=64 * 1024)

    starts = element_lines(text)
    assert len(text) > 2 * CHUNK_BYTES
    assert summary(rows) == [
        ("raw", starts[0]),
        ("rejected", starts[1]),
        *(("raw", line) for line in starts[2:]),
    ]
    assert reasons(rows) == [f"invalid JSON: not closed before the element at line {starts[2]}"]


@pytest.mark.parametrize(
    ("tail", "problem"),
    [
        ('"Extra": {\n      "a": 1\n  }', "not closed before the element at line"),
        ('"Extra": [1}\n  }', "unbalanced '}'"),
    ],
    ids=["unclosed", "wrong-closer"],
)
def test_broken_element_over_the_limit_is_rejected_and_reading_resumes(
    tmp_path: Path, tail: str, problem: str
) -> None:
    huge = '  {\n    "User": "' + "z" * (3 * CHUNK_BYTES) + '",\n    ' + tail
    text = pretty([indented(ACTIVITY), huge, *filler(3)])
    path = write(tmp_path, "huge-broken.json", text)

    rows = read(path)

    starts = element_lines(text)
    assert summary(rows) == [
        ("raw", starts[0]),
        ("rejected", starts[1]),
        *(("raw", line) for line in starts[2:]),
    ]
    assert problem in reasons(rows)[0]
    assert "1,048,576-byte limit" in reasons(rows)[0]


def test_json_array_last_element_unclosed_is_rejected_without_losing_the_others(
    tmp_path: Path,
) -> None:
    text = pretty([indented(ACTIVITY), indented(AUDIT).rstrip().removesuffix("}")])
    path = write(tmp_path, "last.json", text)

    rows = read(path)

    assert summary(rows) == [("raw", 2), ("rejected", element_lines(text)[1])]


def test_json_array_elements_that_are_not_objects_are_rejected(tmp_path: Path) -> None:
    text = (
        '[\n  "text",\n  12,\n  null,\n  true,\n  [1, {"a": 2}],\n  }\n  "open,\n  '
        + json.dumps(AUDIT)
        + "\n]"
    )
    path = write(tmp_path, "scalars.json", text)

    rows = read(path)

    assert summary(rows) == [*(("rejected", line) for line in range(2, 9)), ("raw", 9)]
    assert reasons(rows) == [
        "expected a JSON object, found a string",
        "expected a JSON object, found a number",
        "expected a JSON object, found null",
        "expected a JSON object, found a boolean",
        "expected a JSON object, found an array",
        "invalid JSON: '}' outside any element",
        "invalid JSON: string not closed before the end of the line",
    ]


def test_content_after_the_json_array_raises_after_its_rows(tmp_path: Path) -> None:
    path = write(tmp_path, "tail.json", json.dumps(ROWS, indent=2) + "\n# done\n")
    rows: list[RawRow | RejectedRow] = []

    with pytest.raises(InputError, match=r"line 3\d: unexpected b'# done"):
        rows.extend(FileSource(path))

    assert len(raw_rows(rows)) == 3


def test_json_array_element_with_invalid_utf8_is_rejected(tmp_path: Path) -> None:
    text = pretty([indented(ACTIVITY), indented(AUDIT), indented(FILE_AUDIT)]).encode()
    text = text.replace(b"$contoso-app", b"$contoso-\xc3app")
    path = write(tmp_path, "utf8.json", text)

    rows = read(path)

    starts = element_lines(text.decode(errors="replace"))
    assert summary(rows) == [("raw", starts[0]), ("rejected", starts[1]), ("raw", starts[2])]
    assert reasons(rows)[0].startswith("invalid UTF-8: byte 0xc3 at line ")


def test_single_line_json_array_with_broken_structure_raises_with_the_line(
    tmp_path: Path,
) -> None:
    text = "[\n" + json.dumps(ACTIVITY) + ", " + json.dumps(AUDIT).replace('"FTP"', '["FTP"}')
    path = write(tmp_path, "oneline.json", text + "]\n")
    rows: list[RawRow | RejectedRow] = []

    with pytest.raises(InputError, match=r"line 2: .*unbalanced '\}'"):
        rows.extend(FileSource(path))

    assert summary(rows) == [("raw", 2), ("rejected", 2)]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[\n  {"Protocol": "FTP"},\n  {"Protocol": ', "element that starts at line 3"),
        ('[\n  {"Protocol": "FTP"},\n', "array that starts at line 1 is not closed"),
    ],
    ids=["inside-element", "after-element"],
)
def test_truncated_json_array_raises_after_the_complete_elements(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path, "cut.json", text)
    rows: list[RawRow | RejectedRow] = []

    with pytest.raises(InputError, match=message):
        rows.extend(FileSource(path))

    assert summary(rows) == [("raw", 2)]


def test_csv_record_with_the_wrong_number_of_fields_is_rejected(tmp_path: Path) -> None:
    text = (
        "Protocol,User,UserAddress\r\n"
        "FTP,$app,1.2.3.4\r\n"
        'FTP,"$app,x",1.2.3.4,extra\r\n'
        "\r\n"
        "SCM,$b,\r\n"
    )
    path = write(tmp_path, "fields.csv", text)

    rows = read(path)

    assert summary(rows) == [("raw", 2), ("rejected", 3), ("raw", 5)]
    assert reasons(rows) == ["record has 4 fields but the header has 3"]


def test_csv_last_record_without_a_line_end_is_read(tmp_path: Path) -> None:
    path = write(tmp_path, "noeol.csv", 'Protocol,User\r\nFTP,a\r\nFTP,"b\r\nc"')

    rows = raw_rows(read(path))

    assert [(row.line, row.fields["User"]) for row in rows] == [(2, "a"), (3, "b\r\nc")]


def test_csv_record_the_csv_module_refuses_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, "cr.csv", "Protocol,User\nFTP,a\rb\nFTP,ok\n")

    rows = read(path)

    assert summary(rows) == [("rejected", 2), ("raw", 3)]
    assert reasons(rows)[0].startswith("invalid CSV: ")


def test_csv_repeated_column_keeps_its_first_value(tmp_path: Path) -> None:
    text = "TimeGenerated [UTC],TimeGenerated [Local Time],Protocol,User\nutc,local,FTP,$a\n"
    path = write(tmp_path, "twice.csv", text)

    (row,) = raw_rows(read(path))

    assert row.fields == {"TimeGenerated": "utc", "Protocol": "FTP", "User": "$a"}


def test_csv_header_over_the_limit_raises(tmp_path: Path) -> None:
    path = write(tmp_path, "wide-header.csv", ",".join(f"Column{n}" for n in range(2000)) + "\n")

    with pytest.raises(InputError, match=r"the header is .* over the 4,096-byte limit"):
        read(path, max_row_bytes=4096)


def test_csv_stray_quote_inside_a_value_does_not_swallow_the_next_rows(tmp_path: Path) -> None:
    text = 'Protocol,User\nFTP,ali"ce\nFTP,bob\n"FTP","c""d"\n'
    path = write(tmp_path, "quotes.csv", text)

    rows = raw_rows(read(path))

    assert [row.fields["User"] for row in rows] == ['ali"ce', "bob", 'c"d']
    assert [row.line for row in rows] == [2, 3, 4]


def test_csv_record_with_invalid_utf8_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, "utf8.csv", b"Protocol,User\nFTP,a\xffb\nFTP,ok\n")

    rows = read(path)

    assert summary(rows) == [("rejected", 2), ("raw", 3)]
    assert reasons(rows) == ["invalid UTF-8: byte 0xff at line 2, column 6"]


def test_csv_quoted_value_open_at_the_end_of_the_file_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, "open.csv", 'Protocol,User\nFTP,a\nFTP,"never\nclosed\n')

    rows = read(path)

    assert summary(rows) == [("raw", 2), ("rejected", 3)]


# --- size limit ----------------------------------------------------------------------------------


def test_ndjson_line_over_the_limit_is_rejected_with_its_size(tmp_path: Path) -> None:
    big = json.dumps({**AUDIT, "Noise": "x" * 5000})
    path = write(tmp_path, "big.ndjson", ndjson([ACTIVITY]) + big + "\n" + ndjson([AUDIT]))

    rows = read(path, max_row_bytes=4096)

    assert summary(rows) == [("raw", 1), ("rejected", 2), ("raw", 3)]
    assert reasons(rows) == [f"row is {len(big):,} bytes, over the 4,096-byte limit"]


def test_ndjson_last_line_over_the_limit_without_a_line_end_is_rejected(tmp_path: Path) -> None:
    big = json.dumps({"User": "x" * (2 * CHUNK_BYTES)})
    path = write(tmp_path, "last.ndjson", ndjson([AUDIT]) + big)

    rows = read(path)

    assert summary(rows) == [("raw", 1), ("rejected", 2)]
    assert reasons(rows) == [f"row is {len(big):,} bytes, over the 1,048,576-byte limit"]


def test_json_array_element_over_the_limit_is_rejected_with_its_size(tmp_path: Path) -> None:
    big = indented({**AUDIT, "Noise": "x" * 5000})
    text = pretty([indented(ACTIVITY), big, indented(FILE_AUDIT)])
    path = write(tmp_path, "big.json", text)

    rows = read(path, max_row_bytes=4096)

    starts = element_lines(text)
    assert summary(rows) == [("raw", starts[0]), ("rejected", starts[1]), ("raw", starts[2])]
    assert reasons(rows) == [f"row is {len(big.strip()):,} bytes, over the 4,096-byte limit"]


def test_csv_record_over_the_limit_is_rejected_with_its_size(tmp_path: Path) -> None:
    big = 'FTP,"' + "line\r\n" * 1000 + '"\r\n'
    text = "Protocol,User\r\nFTP,a\r\n" + big + "FTP,b\r\n"
    path = write(tmp_path, "big.csv", text)

    rows = read(path, max_row_bytes=4096)

    assert summary(rows) == [("raw", 2), ("rejected", 3), ("raw", 1004)]
    assert reasons(rows) == [f"row is {len(big):,} bytes, over the 4,096-byte limit"]


def test_csv_cell_larger_than_the_csv_module_default_is_read_under_the_row_limit(
    tmp_path: Path,
) -> None:
    previous = csv.field_size_limit(131_072)  # the csv module's default
    try:
        cell = "y" * 300_000
        path = write(tmp_path, "wide.csv", f"Protocol,User\nFTP,{cell}\n")

        (row,) = raw_rows(read(path))
    finally:
        csv.field_size_limit(previous)

    assert row.fields["User"] == cell


@pytest.mark.parametrize("fmt", ["ndjson", "json-array", "csv"])
def test_row_over_the_limit_spanning_many_chunks_is_skipped_with_bounded_memory(
    tmp_path: Path, fmt: str
) -> None:
    huge = "z" * (24 * CHUNK_BYTES)
    if fmt == "ndjson":
        text = ndjson([AUDIT, {"User": huge}, FILE_AUDIT])
        expected = [("raw", 1), ("rejected", 2), ("raw", 3)]
    elif fmt == "json-array":
        text = pretty([indented(AUDIT), indented({"User": huge}), indented(FILE_AUDIT)])
        expected = list(zip(["raw", "rejected", "raw"], element_lines(text), strict=True))
    else:
        text = f'Protocol,User\nFTP,a\nFTP,"{huge}\nmore"\nFTP,b\n'
        expected = [("raw", 2), ("rejected", 3), ("raw", 5)]
    path = write(tmp_path, "huge", text)
    del text

    tracemalloc.start()
    try:
        rows = read(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert summary(rows) == expected
    assert reasons(rows)[0].endswith("over the 1,048,576-byte limit")
    assert peak < len(huge) // 2  # what the reader holds does not grow with the row


def test_brackets_nested_without_end_are_refused_in_bounded_memory(tmp_path):
    """Each bracket was remembered: 100 MB of `[` held about 950 MB (a 1 MiB gzip, 9.5 GiB).
    Nesting is followed 512 deep at the most; an element deeper is broken."""
    path = write(tmp_path, "deep.json", b"[" * (3 * CHUNK_BYTES))
    tracemalloc.start()
    try:
        with pytest.raises(InputError, match="nested more than 512 deep"):
            read(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 3 * CHUNK_BYTES  # bytes of input, while a list entry per bracket is eight


def test_a_deeply_nested_element_is_rejected_and_its_neighbours_read(tmp_path):
    good = json.dumps({"Type": "AzureActivity", "OperationNameValue": "X"})
    text = f"[\n  {good},\n  " + "[" * 5000 + "]" * 5000 + f",\n  {good}\n]\n"
    rows = read(write(tmp_path, "deep.json", text))
    assert summary(rows) == [("raw", 2), ("rejected", 3), ("raw", 4)]
    assert reasons(rows) == ["invalid JSON: nested more than 512 deep at line 3"]


# --- damaged and changing files -------------------------------------------------------------


def test_ndjson_split_mid_line_keeps_every_whole_line(tmp_path):
    """A file cut from a larger export starts inside a line: it used to be read as CSV, and
    none of its rows were used."""
    lines = [json.dumps({"Type": "AppServiceAuditLogs", "Protocol": "FTP", "User": f"u{n}"})
             for n in range(5)]  # fmt: skip
    path = write(tmp_path, "part.jsonl", lines[0][17:] + "\n" + "\n".join(lines[1:]) + "\n")
    rows = read(path)
    assert summary(rows) == [("rejected", 1), ("raw", 2), ("raw", 3), ("raw", 4), ("raw", 5)]


def test_a_stray_nul_in_a_csv_export_is_a_damaged_value_not_a_binary_file(tmp_path):
    path = write(tmp_path, "nul.csv", "Protocol,User,UserAddress\r\nFTP,a\x00b,1.2.3.4\r\n")
    rows = read(path)
    assert summary(rows) == [("raw", 2)]
    with pytest.raises(InputError, match="binary"):
        read(write(tmp_path, "bin.dat", b"PK\x03\x04" + b"\x00" * 4096))


@pytest.mark.parametrize("indent", ["", "  "])
def test_two_elements_on_one_line_the_second_cut_lose_only_the_cut_one(tmp_path, indent):
    """A line-per-element array where one line holds two elements, the second truncated:
    reading resumed nowhere (or half the rows after it were lost)."""
    rows = [{"Type": "AppServiceAuditLogs", "Protocol": "FTP", "User": f"u{n}"} for n in range(60)]
    lines = [indent + json.dumps(row) for row in rows]
    lines[20] += ", " + json.dumps(rows[21])[:25]
    del lines[21]
    read_rows = read(write(tmp_path, "two.json", "[\n" + ",\n".join(lines) + "\n]\n"))
    users = [r.fields["User"] for r in read_rows if isinstance(r, RawRow)]
    assert users == [row["User"] for n, row in enumerate(rows) if n != 21]
    assert len(reasons(read_rows)) == 1


def test_a_file_deleted_after_it_was_read_is_not_an_error(tmp_path):
    path = write(tmp_path, "gone.jsonl", json.dumps({"Type": "AzureActivity"}) + "\n")
    source = FileSource(path)
    rows = list(source)
    path.unlink()
    assert summary(rows) == [("raw", 1)]
    assert source.total_bytes == len(json.dumps({"Type": "AzureActivity"})) + 1


def test_a_file_that_shrinks_while_it_is_read_fails_clearly(tmp_path):
    line = json.dumps({"Type": "AppServiceAuditLogs", "Protocol": "FTP", "User": "x" * 200})
    path = write(tmp_path, "growing.jsonl", (line + "\n") * (3 * CHUNK_BYTES // len(line)))
    rows = iter(FileSource(path))
    next(rows)  # the first chunk is read
    os.truncate(path, 2 * CHUNK_BYTES)
    with pytest.raises(InputError, match="shrank while it was read"):
        list(rows)


def test_a_directory_or_a_pipe_is_named_for_what_it_is(tmp_path):
    with pytest.raises(InputError, match="is a directory"):
        read(tmp_path)
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    with pytest.raises(InputError, match="not a regular file"):
        read(pipe)


# --- whole files ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [b"", b"[]", b"[ ]\n", b"\xef\xbb\xbf", b"\n\n  \n", gzip.compress(b"")],
    ids=["empty", "empty-array", "empty-array-spaced", "bom-only", "blank", "empty-gzip"],
)
def test_empty_content_yields_nothing(tmp_path: Path, data: bytes) -> None:
    assert read(write(tmp_path, "empty", data)) == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"PK\x03\x04" + random.Random(3).randbytes(4000), "binary"),
        ("TimeGenerated,User\n".encode("utf-16"), "UTF-16"),
        (b"# Notes\nnothing to see\n", "not JSON, NDJSON or a CSV export"),
        (b"\xc3\x28abc,def\n", "invalid UTF-8"),
    ],
    ids=["zip", "utf16", "text", "latin"],
)
def test_file_that_is_not_an_export_raises_input_error_naming_it(
    tmp_path: Path, data: bytes, message: str
) -> None:
    path = write(tmp_path, "junk.bin", data)

    with pytest.raises(InputError, match=message) as caught:
        read(path)

    assert str(path) in str(caught.value)


def test_missing_file_raises_input_error(tmp_path: Path) -> None:
    source = FileSource(tmp_path / "absent.json")

    with pytest.raises(InputError, match=r"absent\.json"):
        list(source)
    with pytest.raises(InputError, match=r"absent\.json"):
        _ = source.total_bytes


def first_row_progress(source: FileSource) -> tuple[int, int]:
    """(bytes_read after the first row, rows in total)."""
    rows: Iterator[RawRow | RejectedRow] = iter(source)
    next(rows)
    after_first = source.bytes_read
    return after_first, 1 + sum(1 for _ in rows)


@pytest.mark.parametrize("zipped", [False, True], ids=["plain", "gzip"])
def test_bytes_read_grows_while_streaming_and_ends_at_the_file_size(
    tmp_path: Path, zipped: bool
) -> None:
    content = noisy_ndjson(12_000)  # about 8 MB
    path = write(tmp_path, "many", gzip.compress(content) if zipped else content)
    source = FileSource(path)
    assert source.bytes_read == 0

    after_first, count = first_row_progress(source)

    assert count == 12_000
    assert 0 < after_first < source.total_bytes // 2
    assert source.bytes_read == source.total_bytes == path.stat().st_size


def test_constructor_refuses_a_limit_below_one_byte(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="max_row_bytes"):
        FileSource(tmp_path / "x", max_row_bytes=0)
