"""The local Log Analytics endpoint answers the real `LogsQueryClient` as the service does.

Every test goes through the real client over HTTPS: its request shape, its retry policy, its
parsing of tables, partial results and errors. If one of these fails, the harness no longer
stands in for the service and tests built on it prove nothing.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import requests
from azure.core.exceptions import HttpResponseError, ServiceResponseError
from azure.monitor.query import LogsQueryPartialResult, LogsQueryResult, LogsQueryStatus

from tests.kql.schemas import APP_SERVICE_AUDIT_LOGS
from tests.rowkit import CLI, CONFIG_LIST, POWERSHELL, PUBLISHXML, Actor, activity, login, site_id
from tests.services.log_analytics import INGESTION_COLUMN, LogAnalytics

pytestmark = pytest.mark.logs

DAY = datetime(2026, 10, 1, tzinfo=UTC)
SITE = site_id("web-prod")


def at(hour: int, minute: int = 0) -> datetime:
    return DAY + timedelta(hours=hour, minutes=minute)


def logins(la: LogAnalytics, *moments: datetime, ingested_at: datetime | None = None) -> None:
    for moment in moments:
        row = login("$web-prod", moment, SITE, "203.0.113.7")
        la.add_rows("AppServiceAuditLogs", [row], ingested_at=ingested_at)


def times(result: LogsQueryResult | LogsQueryPartialResult) -> list[datetime]:
    assert isinstance(result, LogsQueryResult), result
    return [row["TimeGenerated"] for row in result.tables[0].rows]


def test_summarize_with_in_claims_make_set_and_bin_answers_like_the_service(log_analytics):
    la = log_analytics
    alice = Actor("alice@contoso.com", app_id=CLI)
    bob = Actor("bob@contoso.com", app_id=POWERSHELL)
    la.add_rows("AzureActivity", activity(alice, at(10, 5), PUBLISHXML, SITE))
    la.add_rows("AzureActivity", activity(alice, at(10, 40), CONFIG_LIST, SITE))
    la.add_rows("AzureActivity", activity(bob, at(11, 15), CONFIG_LIST, SITE))
    la.add_rows("AzureActivity", activity(bob, at(11, 20), "MICROSOFT.WEB/SITES/READ", SITE))

    result = la.client().query_workspace(
        la.workspace_id,
        """AzureActivity
        | where OperationNameValue in~ ("microsoft.web/sites/publishxml/action",
                                        "microsoft.web/sites/config/list/action")
        | where ActivityStatusValue != "Start"
        | extend AppId = tostring(parse_json(Claims).appid)
        | summarize Operations = make_set(OperationNameValue, 16), Calls = count()
            by Caller, AppId, Hour = bin(TimeGenerated, 1h)
        | order by Caller asc""",
        timespan=(at(0), at(23)),
    )

    assert result.status == LogsQueryStatus.SUCCESS
    table = result.tables[0]
    assert table.name == "PrimaryResult"
    assert list(zip(table.columns, table.columns_types, strict=True)) == [
        ("Caller", "string"),
        ("AppId", "string"),
        ("Hour", "datetime"),
        ("Operations", "dynamic"),
        ("Calls", "long"),
    ]
    rows = [list(row) for row in table.rows]
    # Dynamic cells arrive as JSON text, datetimes as aware UTC datetimes.
    assert [[*row[:3], sorted(json.loads(row[3])), row[4]] for row in rows] == [
        ["alice@contoso.com", CLI, at(10), sorted([PUBLISHXML, CONFIG_LIST]), 2],
        ["bob@contoso.com", POWERSHELL, at(11), [CONFIG_LIST], 1],
    ]


def test_rows_keep_the_table_schema_without_the_hidden_ingestion_column(log_analytics):
    la = log_analytics
    logins(la, at(10) + timedelta(microseconds=123400))

    result = la.client().query_workspace(la.workspace_id, "AppServiceAuditLogs", timespan=None)

    table = result.tables[0]
    assert dict(zip(table.columns, table.columns_types, strict=True)) == APP_SERVICE_AUDIT_LOGS
    assert INGESTION_COLUMN not in table.columns
    row = table.rows[0]
    assert row["TimeGenerated"] == at(10) + timedelta(microseconds=123400)
    assert row["Type"] == "AppServiceAuditLogs"


def test_timespan_filters_time_generated_as_the_service_does(log_analytics):
    la = log_analytics
    la.now = at(12, 30)
    logins(la, at(9), at(10), at(11), at(12))
    client = la.client()
    query = "AppServiceAuditLogs | project TimeGenerated | order by TimeGenerated asc"

    between = client.query_workspace(la.workspace_id, query, timespan=(at(10), at(11)))
    last_hour = client.query_workspace(la.workspace_id, query, timespan=timedelta(hours=1))
    everything = client.query_workspace(la.workspace_id, query, timespan=None)

    assert times(between) == [at(10), at(11)]  # both ends inclusive, like `between`
    assert times(last_hour) == [at(12)]  # a duration ends at the endpoint's `now`
    assert times(everything) == [at(9), at(10), at(11), at(12)]
    asked = la.requests
    assert [(r.start, r.end) for r in asked] == [
        (at(10), at(11)),
        (at(11, 30), at(12, 30)),
        (None, None),
    ]
    assert asked[1].timespan == "PT3600.0S"


def test_ingestion_time_windows_read_a_late_row_once_in_the_window_it_arrived(log_analytics):
    la = log_analytics
    logins(la, at(10, 5), ingested_at=at(10, 7))
    logins(la, at(10, 10), ingested_at=at(11, 20))  # happened at 10:10, arrived 70 min later
    client = la.client()

    def window(since: datetime, until: datetime) -> list[datetime]:
        query = f"""let Since = datetime({since:%Y-%m-%dT%H:%M:%SZ});
        let Until = datetime({until:%Y-%m-%dT%H:%M:%SZ});
        AppServiceAuditLogs
        | where ingestion_time() >= Since and ingestion_time() < Until
        | project TimeGenerated, IngestedAt = ingestion_time()
        | order by TimeGenerated asc"""
        result = client.query_workspace(
            la.workspace_id, query, timespan=(since - timedelta(hours=2), until)
        )
        assert [row["IngestedAt"] for row in result.tables[0].rows] != []
        return times(result)

    assert window(at(10), at(11)) == [at(10, 5)]
    assert window(at(11), at(12)) == [at(10, 10)]


def test_now_and_ago_read_the_endpoints_clock(log_analytics):
    la = log_analytics
    logins(la, at(8), at(11))
    la.now = at(12)
    query = "AppServiceAuditLogs | where TimeGenerated > ago(2h) | extend Now = now()"

    result = la.client().query_workspace(la.workspace_id, query, timespan=None)

    assert times(result) == [at(11)]
    assert result.tables[0].rows[0]["Now"] == at(12)


def test_throttling_is_retried_by_the_client_after_retry_after(log_analytics):
    la = log_analytics
    logins(la, at(10))
    la.throttle(retry_after=1)

    result = la.client(retry_total=2).query_workspace(
        la.workspace_id, "AppServiceAuditLogs | count", timespan=None
    )

    assert result.tables[0].rows[0][0] == 1
    first, second = la.requests
    assert (first.status, first.fault, second.status) == (429, "Throttle", 200)
    assert second.received_at - first.received_at >= timedelta(seconds=1)


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_surface_as_http_response_error_after_the_clients_retries(
    log_analytics, status
):
    la = log_analytics
    la.fail(status, times=5)
    client = la.client(retry_total=2, retry_backoff_factor=0.01)

    with pytest.raises(HttpResponseError) as caught:
        client.query_workspace(la.workspace_id, "AppServiceAuditLogs | count", timespan=None)

    assert caught.value.status_code == status
    assert [r.status for r in la.requests] == [status] * 3  # the call and two retries


def test_an_answer_slower_than_the_read_timeout_fails_on_the_client_then_recovers(log_analytics):
    la = log_analytics
    la.delay(5)
    client = la.client(read_timeout=0.3, retry_total=0)

    with pytest.raises(ServiceResponseError):
        client.query_workspace(la.workspace_id, "AppServiceAuditLogs | count", timespan=None)
    result = client.query_workspace(la.workspace_id, "AppServiceAuditLogs | count", timespan=None)

    assert result.status == LogsQueryStatus.SUCCESS
    assert [r.fault for r in la.requests] == ["Delay", None]


def test_faults_are_used_up_in_the_order_they_were_queued(log_analytics):
    la = log_analytics
    la.throttle(retry_after=0, times=2)
    la.fail(503)
    client = la.client(retry_total=5, retry_backoff_factor=0.01)

    client.query_workspace(la.workspace_id, "AppServiceAuditLogs | count", timespan=None)

    assert [r.status for r in la.requests] == [429, 429, 503, 200]


def test_a_partial_failure_is_a_logs_query_partial_result(log_analytics):
    la = log_analytics
    logins(la, at(10), at(11))
    la.partial_failure()

    result = la.client().query_workspace(la.workspace_id, "AppServiceAuditLogs", timespan=None)

    assert isinstance(result, LogsQueryPartialResult)
    assert result.status == LogsQueryStatus.PARTIAL
    assert len(result.partial_data[0].rows) == 2
    assert result.partial_error.code == "PartialError"
    (detail,) = result.partial_error.details
    assert "E_RUNAWAY_QUERY" in detail["innererror"]["message"]


def test_more_rows_than_the_limit_come_back_cut_with_result_set_too_large(log_analytics):
    la = log_analytics
    la.max_rows = 3
    logins(la, *(at(10, minute) for minute in range(5)))
    client = la.client()

    cut = client.query_workspace(la.workspace_id, "AppServiceAuditLogs", timespan=None)
    small = client.query_workspace(la.workspace_id, "AppServiceAuditLogs | take 3", timespan=None)

    assert isinstance(cut, LogsQueryPartialResult)
    assert len(cut.partial_data[0].rows) == 3
    assert cut.partial_error.code == "PartialError"
    (detail,) = cut.partial_error.details
    assert "E_QUERY_RESULT_SET_TOO_LARGE" in detail["innererror"]["message"]
    assert isinstance(small, LogsQueryResult)


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("AppServiceAuditLogs | where", "KqlSyntaxError"),
        ("AppServiceAuditLogs | where NoSuchColumn == 1", "NoSuchColumn"),
        ("NoSuchTable | take 1", "NoSuchTable"),
        ("AppServiceAuditLogs | project K = bag_keys(pack_all())", "KqlUnsupportedError"),
    ],
)
def test_a_query_the_engine_cannot_run_is_a_bad_argument_error_with_the_reason(
    log_analytics, query, reason
):
    la = log_analytics

    with pytest.raises(HttpResponseError) as caught:
        la.client().query_workspace(la.workspace_id, query, timespan=None)

    assert caught.value.status_code == 400
    assert "BadArgumentError" in str(caught.value)
    assert reason in str(caught.value)
    (failure,) = la.failures
    assert failure.query == query
    assert reason in failure.error


def test_the_endpoint_sees_what_the_real_client_sends(log_analytics):
    la = log_analytics
    client = la.client(endpoint=la.endpoint + "/v1")  # the client accepts either form

    client.query_workspace(
        la.workspace_id, "AppServiceAuditLogs | count", timespan=(at(10), at(11))
    )
    client.query_workspace(
        la.workspace_id, "AppServiceAuditLogs | count", timespan=None, server_timeout=30
    )

    first, second = la.requests
    assert first.path == f"/v1/workspaces/{la.workspace_id}/query"
    assert first.authorized
    assert "Authorization" not in first.headers
    assert first.headers["content-type"] == "application/json"
    assert first.timespan == "2026-10-01T10:00:00.000Z/2026-10-01T11:00:00.000Z"
    assert (first.prefer, second.prefer) == ("", "wait=30")
    assert la.credential.scopes[0] == (f"{la.endpoint}/.default",)
    assert la.queries == ["AppServiceAuditLogs | count"] * 2


def test_a_request_without_a_bearer_token_is_refused(log_analytics):
    la = log_analytics

    answer = requests.post(
        f"{la.endpoint}/v1/workspaces/{la.workspace_id}/query",
        json={"query": "AppServiceAuditLogs | count"},
        verify=str(la.ca_path),
        timeout=5,
    )

    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "AuthenticationFailed"
    assert not la.requests[0].authorized


def test_an_unknown_workspace_is_not_found(log_analytics):
    la = log_analytics

    # The client maps 404 to ResourceNotFoundError, then query_workspace re-raises it as a
    # plain HttpResponseError: only the status code tells.
    with pytest.raises(HttpResponseError) as caught:
        la.client().query_workspace("not-this-workspace", "AppServiceAuditLogs", timespan=None)

    assert caught.value.status_code == 404


def test_seeding_refuses_what_the_workspace_could_not_hold(log_analytics):
    la = log_analytics
    row = login("$web-prod", at(10), SITE, "203.0.113.7")

    with pytest.raises(ValueError, match="NoSuchColumn"):
        la.add_rows("AppServiceAuditLogs", [{**row, "NoSuchColumn": 1}])
    with pytest.raises(ValueError, match="unknown table"):
        la.add_rows("AppServiceAuditLog", [row])
    with pytest.raises(ValueError, match="aware"):
        la.add_rows("AppServiceAuditLogs", [row], ingested_at=datetime(2026, 10, 1, 10))
    with pytest.raises(ValueError, match="aware"):
        la.now = datetime(2026, 10, 1, 10)


def test_a_json_column_given_once_fills_its_dynamic_twin(log_analytics):
    la = log_analytics
    la.add_rows("AzureActivity", activity(Actor("alice@contoso.com"), at(10), PUBLISHXML, SITE))

    columns, rows = la.run(
        "AzureActivity | take 1 | project A = tostring(Claims_d.appid),"
        " B = tostring(parse_json(Claims).appid), P = tostring(Authorization_d.evidence.role)"
    )

    assert columns == ["A", "B", "P"]
    assert rows == [[CLI, CLI, "Contributor"]]
