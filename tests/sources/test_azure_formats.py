"""Rows as Azure itself writes them: pretty-printed events, the resource-log schema of the
storage archive and Event Hubs, REST list responses, SDK dumps, portal CSV in any locale,
other tables' rows and Microsoft.Web resources that are not sites."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from detectors.model.errors import InputError
from detectors.model.observation import Observation, OperationFamily, RawRow, RejectedRow
from detectors.normalize.rows import PUBLISHING_USER_SITE, Normalizer, Skipped, SkipReason
from detectors.normalize.schemas import log_analytics_columns
from detectors.sources import portal_dates
from detectors.sources.files import FileSource
from detectors.sources.portal_dates import DateOrder
from tests.azure_shapes import resource_log, rest_event, sdk_event
from tests.rowkit import (
    PORTAL,
    SUB,
    Actor,
    activity,
    file_change,
    login,
    site_id,
)

WHEN = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
JANE = Actor(caller="jane@contoso.com", name="Jane Doe", app_id=PORTAL, ip="198.51.100.10")
PIPELINE = Actor(
    caller="", kind="app", ip="203.0.113.5", oid="9d2f7c1e-5b0a-4c39-8e0f-1a2b3c4d5e6f"
)
PIPELINE.caller = PIPELINE.oid  # the Activity Log's caller of an app is its object id
JOBS = "D:\\home\\site\\wwwroot\\App_Data\\jobs\\continuous\\sync\\run.ps1"


def la_rows() -> list[dict[str, Any]]:
    """One of each: a user's and a pipeline's ARM actions (Start and end rows), a Kudu login
    and a WebJob file change, as Log Analytics exports them."""
    rows = activity(JANE, WHEN, "MICROSOFT.WEB/SITES/PUBLISHXML/ACTION", site_id("pay"))
    rows += activity(
        PIPELINE,
        WHEN + timedelta(minutes=1),
        "MICROSOFT.WEB/SITES/CONFIG/LIST/ACTION",
        site_id("pay") + "/config/publishingcredentials",
    )
    rows.append(login("$pay", WHEN + timedelta(minutes=2), site_id("pay"), "192.0.2.7"))
    rows.append(file_change(WHEN + timedelta(minutes=3), site_id("pay"), JOBS))
    return rows


def observations(path: Path, **options: Any) -> list[Observation | Skipped | RejectedRow]:
    normalizer = Normalizer()
    out: list[Observation | Skipped | RejectedRow] = []
    for item in FileSource(path, **options):
        out.append(normalizer.normalize(item) if isinstance(item, RawRow) else item)
    return out


def only_observations(path: Path, **options: Any) -> list[Observation]:
    found = observations(path, **options)
    assert all(isinstance(o, Observation | Skipped) for o in found), found
    return [o for o in found if isinstance(o, Observation)]


def write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def ndjson(records: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


# --- one event, written over several lines -------------------------------------------------------


def test_a_pretty_printed_event_is_one_row_not_one_rejection_per_line(tmp_path: Path) -> None:
    path = write(tmp_path / "event.json", '{\n  "eventDataId": "x"\n}\n')

    (row,) = FileSource(path)

    assert isinstance(row, RawRow)
    assert row.line == 1
    assert row.fields["EventDataId"] == "x"


def test_pretty_printed_events_one_after_another_each_keep_their_line(tmp_path: Path) -> None:
    events = [rest_event(r) for r in la_rows() if r["Type"] == "AzureActivity"]
    text = "".join(json.dumps(e, indent=2) + "\n" for e in events)
    path = write(tmp_path / "portal.json", text)

    rows = list(FileSource(path))

    assert all(isinstance(r, RawRow) for r in rows)
    assert [r.line for r in rows] == [
        n + 1 for n, line in enumerate(text.splitlines()) if line == "{"
    ]


def test_a_broken_pretty_printed_event_is_reported_and_its_neighbours_kept(tmp_path: Path) -> None:
    events = [rest_event(r) for r in la_rows() if r["Type"] == "AzureActivity"]
    texts = [json.dumps(e, indent=2) for e in events]
    texts[1] = texts[1].replace('"caller":', '"caller" ', 1)  # a missing colon
    path = write(tmp_path / "broken.json", "\n".join(texts) + "\n")

    rows = list(FileSource(path))

    assert [type(r).__name__ for r in rows] == ["RawRow", "RejectedRow", "RawRow", "RawRow"]
    rejected = rows[1]
    assert isinstance(rejected, RejectedRow)
    assert rejected.line == texts[0].count("\n") + 2
    assert "invalid JSON" in rejected.reason


# --- the same activity in every shape gives the same observations --------------------------------


def _without_event_data_id(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != "EventDataId"} for r in rows]


@pytest.mark.parametrize(
    "layout",
    ["pt1h-lines", "records-object", "records-per-line", "records-gzip"],
)
def test_the_archive_schema_gives_the_observations_of_log_analytics(
    tmp_path: Path, layout: str
) -> None:
    # The archive carries no eventDataId: Log Analytics rows without one are its twin.
    rows = _without_event_data_id(la_rows())
    records = [resource_log(r) for r in rows]
    if layout == "pt1h-lines":
        text: str | bytes = ndjson(records)
    elif layout == "records-object":
        text = json.dumps({"records": records}, indent=2)
    elif layout == "records-per-line":
        text = ndjson([{"records": records[:3]}, {"records": records[3:]}])
    else:
        text = gzip.compress(json.dumps({"records": records}).encode())
    archive = write(tmp_path / "PT1H.json", text)
    export = write(tmp_path / "export.jsonl", ndjson(rows))

    assert only_observations(archive) == only_observations(export)
    assert len(only_observations(export)) == 4


def test_rest_list_responses_and_sdk_dumps_give_the_observations_of_log_analytics(
    tmp_path: Path,
) -> None:
    rows = [r for r in la_rows() if r["Type"] == "AzureActivity"]
    export = write(tmp_path / "export.jsonl", ndjson(rows))
    rest = write(
        tmp_path / "az-rest.json",
        json.dumps({"value": [rest_event(r) for r in rows], "nextLink": "https://x?$skiptoken=a"}),
    )
    listed = write(tmp_path / "activity-log-list.json", json.dumps([rest_event(r) for r in rows]))
    sdk = write(tmp_path / "sdk.jsonl", ndjson([sdk_event(r) for r in rows]))

    expected = only_observations(export)
    assert len(expected) == 2
    assert only_observations(rest) == expected
    assert only_observations(listed) == expected
    assert only_observations(sdk) == expected


def test_a_malformed_record_in_a_records_object_is_reported_and_the_rest_kept(
    tmp_path: Path,
) -> None:
    records = [resource_log(r) for r in _without_event_data_id(la_rows())]
    lines = json.dumps({"records": records}, indent=2).splitlines()
    broken = [n for n, line in enumerate(lines) if '"callerIpAddress"' in line][1]
    lines[broken] = lines[broken].replace('"callerIpAddress":', '"callerIpAddress" "x",', 1)
    path = write(tmp_path / "PT1H.json", "\n".join(lines))

    rows = list(FileSource(path))

    assert [type(r).__name__ for r in rows] == ["RawRow", "RejectedRow", *["RawRow"] * 4]
    assert isinstance(rows[1], RejectedRow)
    assert "invalid JSON" in rows[1].reason


@pytest.mark.parametrize("stray", ["[", "{", "]"])
def test_a_stray_bracket_among_records_costs_only_its_own_record(
    tmp_path: Path, stray: str
) -> None:
    records = [resource_log(r) for r in _without_event_data_id(la_rows())]
    texts = [
        "\n".join("    " + line for line in json.dumps(r, indent=2).splitlines()) for r in records
    ]
    texts[2] = stray + texts[2]
    path = write(tmp_path / "PT1H.json", '{\n  "records": [\n' + ",\n".join(texts) + "\n  ]\n}\n")

    rows = list(FileSource(path))

    read = [r.fields for r in rows if isinstance(r, RawRow)]
    expected = [log_analytics_columns(r) for n, r in enumerate(records) if n != 2 or stray == "]"]
    assert [f for f in read if f in expected] == expected
    assert any(isinstance(r, RejectedRow) for r in rows)


def test_a_records_object_cut_short_says_so(tmp_path: Path) -> None:
    records = [resource_log(r) for r in la_rows()]
    text = json.dumps({"records": records}, indent=2)
    path = write(tmp_path / "PT1H.json", text[: text.rindex("}", 0, len(text) - 10)])

    with pytest.raises(InputError, match="truncated"):
        list(FileSource(path))


# --- rows that are not the detector's ------------------------------------------------------------


def test_rows_of_other_tables_are_skipped_with_their_table_named(tmp_path: Path) -> None:
    other = [
        {"Type": "SigninLogs", "TimeGenerated": "2026-11-25T10:00:00Z", "UserPrincipalName": "x"},
        {"Type": "AppServiceHTTPLogs", "TimeGenerated": "2026-11-25T10:00:00Z", "CsHost": "y"},
    ]
    http_log = {
        "time": "2026-11-25T10:00:00Z",
        "resourceId": site_id("pay").upper(),
        "category": "AppServiceHTTPLogs",
        "operationName": "Microsoft.Web/sites/log",
        "properties": {"CsHost": "pay.azurewebsites.net"},
    }
    path = write(tmp_path / "union.jsonl", ndjson([*other, http_log]))

    found = observations(path)

    assert [getattr(o, "reason", None) for o in found] == [
        "rows of table SigninLogs: not read by this detector",
        "rows of table AppServiceHTTPLogs: not read by this detector",
        "rows of table AppServiceHTTPLogs: not read by this detector",
    ]
    assert all(isinstance(o, Skipped) for o in found)


def test_other_tables_named_one_by_one_are_bounded() -> None:
    normalizer = Normalizer()
    reasons = {
        normalizer.normalize(
            RawRow(source="f", line=n, table=None, fields={"Type": f"Table{n}"})
        ).reason  # type: ignore[union-attr]
        for n in range(500)
    }
    assert SkipReason.OTHER_TABLES in reasons
    assert len(reasons) <= 33


@pytest.mark.parametrize(
    ("operation", "resource"),
    [
        ("MICROSOFT.WEB/CERTIFICATES/WRITE", "certificates/wildcard"),
        ("MICROSOFT.WEB/SERVERFARMS/WRITE", "serverfarms/plan-prod"),
        ("Microsoft.Web/staticSites/write", "staticSites/docs"),
        ("MICROSOFT.WEB/HOSTINGENVIRONMENTS/WRITE", "hostingEnvironments/ase1"),
    ],
)
def test_microsoft_web_resources_that_are_not_sites_are_skipped(
    tmp_path: Path, operation: str, resource: str
) -> None:
    resource_id = f"/subscriptions/{SUB}/resourceGroups/rg-web/providers/Microsoft.Web/{resource}"
    path = write(tmp_path / "plans.jsonl", ndjson(activity(JANE, WHEN, operation, resource_id)))

    found = observations(path)

    # Start and end row alike: the operation says it is not on a site.
    assert [getattr(o, "reason", None) for o in found] == [SkipReason.NOT_A_SITE] * 2


def test_a_change_of_the_user_level_deployment_credentials_is_a_credential_change(
    tmp_path: Path,
) -> None:
    rows = activity(
        JANE,
        WHEN,
        "MICROSOFT.WEB/PUBLISHINGUSERS/WRITE",
        "/providers/Microsoft.Web/publishingUsers/web",
    )
    path = write(tmp_path / "user-set.jsonl", ndjson(rows))

    (observation,) = only_observations(path)

    assert observation.family is OperationFamily.CREDENTIAL_CHANGE
    assert observation.resource.site == PUBLISHING_USER_SITE
    assert observation.resource.id == "/providers/microsoft.web/publishingusers/web"
    assert observation.principal.id == "jane@contoso.com"


# --- portal CSV in the browser's locale ----------------------------------------------------------


def portal_csv(times: list[str]) -> str:
    header = (
        "TimeGenerated [UTC],Category,OperationName,Protocol,User,UserDisplayName,UserAddress,"
        "_ResourceId,Type\n"
    )
    body = "".join(
        f'"{t}",AppServiceAuditLogs,Authorization,FTP,$pay,$pay,192.0.2.7,{site_id("pay")},'
        "AppServiceAuditLogs\n"
        for t in times
    )
    return header + body


def csv_times(path: Path, **options: Any) -> list[datetime | str]:
    out: list[datetime | str] = []
    for item in observations(path, **options):
        out.append(item.time if isinstance(item, Observation) else item.reason)  # type: ignore[union-attr]
    return out


def test_a_later_day_after_the_12th_settles_day_first_for_rows_read_before_it(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path / "gb.csv",
        portal_csv(
            ["05/12/2024, 08:49:37.587", "06/12/2024, 09:00:00.000", "19/12/2024, 08:49:37.587"]
        ),
    )

    assert csv_times(path) == [
        datetime(2024, 12, 5, 8, 49, 37, 587000, tzinfo=UTC),  # 5 December, not 12 May
        datetime(2024, 12, 6, 9, 0, tzinfo=UTC),
        datetime(2024, 12, 19, 8, 49, 37, 587000, tzinfo=UTC),
    ]


def test_month_first_with_a_12_hour_clock_is_settled_the_same_way(tmp_path: Path) -> None:
    path = write(
        tmp_path / "us.csv",
        portal_csv(["12/5/2024, 8:49:37.587 PM", "12/19/2024, 12:05:00.000 AM"]),
    )

    assert csv_times(path) == [
        datetime(2024, 12, 5, 20, 49, 37, 587000, tzinfo=UTC),
        datetime(2024, 12, 19, 0, 5, tzinfo=UTC),
    ]


def test_an_export_whose_dates_all_read_both_ways_is_refused_with_the_option_to_pass(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path / "ambiguous.csv", portal_csv(["05/12/2024, 08:49:37", "06/12/2024, 08:49:37"])
    )

    with pytest.raises(InputError, match=r"--date-order dmy .* --date-order mdy"):
        list(FileSource(path))
    assert csv_times(path, date_order=DateOrder.DMY)[0] == datetime(
        2024, 12, 5, 8, 49, 37, tzinfo=UTC
    )
    assert csv_times(path, date_order=DateOrder.MDY)[0] == datetime(
        2024, 5, 12, 8, 49, 37, tzinfo=UTC
    )


def test_a_date_that_contradicts_the_settled_order_is_rejected_not_guessed(tmp_path: Path) -> None:
    path = write(
        tmp_path / "mixed.csv",
        portal_csv(["19/12/2024, 08:00:00", "12/20/2024, 08:00:00", "20/12/2024, 08:00:00"]),
    )

    found = csv_times(path)

    assert found[0] == datetime(2024, 12, 19, 8, tzinfo=UTC)
    assert isinstance(found[1], str)
    assert "not a valid date read dmy" in found[1]
    assert "line 2: '19/12/2024, 08:00:00'" in found[1]
    assert found[2] == datetime(2024, 12, 20, 8, tzinfo=UTC)


def test_dotted_dates_iso_dates_and_year_first_dates_are_read(tmp_path: Path) -> None:
    path = write(
        tmp_path / "de.csv",
        portal_csv(["19.12.2024 08:49:37", "2024-12-19T09:00:00Z", "2024/12/19 10:00:00"]),
    )

    assert csv_times(path) == [
        datetime(2024, 12, 19, 8, 49, 37, tzinfo=UTC),
        datetime(2024, 12, 19, 9, tzinfo=UTC),
        datetime(2024, 12, 19, 10, tzinfo=UTC),
    ]


def test_rows_held_for_the_day_order_are_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(portal_dates, "MAX_HELD_ROWS", 5)
    path = write(
        tmp_path / "long.csv", portal_csv(["05/12/2024, 08:49:37"] * 6 + ["19/12/2024, 08:49:37"])
    )

    with pytest.raises(InputError, match="first 5 rows"):
        list(FileSource(path))


def test_an_archived_attack_alerts_exactly_as_its_log_analytics_export(tmp_path: Path) -> None:
    from detectors.cli.main import main
    from tests.cli.test_replay_cli import attack_rows

    rows = _without_event_data_id(attack_rows())
    export = write(tmp_path / "export.jsonl", ndjson(rows))
    archive = write(tmp_path / "PT1H.json", ndjson([resource_log(r) for r in rows]))
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"

    assert main(["replay", str(export), "--out", str(a), "--quiet"]) == 0
    assert main(["replay", str(archive), "--out", str(b), "--quiet"]) == 0
    assert a.read_bytes() == b.read_bytes()
    assert b"appservice-credential-download" in b.read_bytes()
