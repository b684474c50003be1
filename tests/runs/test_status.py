"""`detector status`: what it concludes (pure checks) and what it reads, end to end against
Azurite and the local HTTPS Log Analytics endpoint through the real clients."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from azure.storage.queue import QueueClient

from detectors.cli import main as cli
from detectors.clients.connections import QUEUE_API_VERSION
from detectors.model.observation import SourceTable
from detectors.runs import wiring
from detectors.runs.checkpoint import CHECKPOINT_NAME
from detectors.runs.health import Coverage, Facts, Level, assess, worst
from detectors.stores.table import TableStore
from tests.rowkit import CLI, PUBLISHXML, Actor, activity, login, site_id

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def _seen(table: SourceTable, rows: int, ingested: datetime = NOW) -> Coverage:
    return Coverage(table=table, rows=rows, last_event=ingested, last_ingested=ingested)


def _all_seen() -> list[Coverage]:
    return [_seen(table, 10) for table in SourceTable]


def _facts(**changes: object) -> Facts:
    """A healthy deployment's facts, with `changes`."""
    healthy: dict[str, object] = {
        "now": NOW,
        "days": 7,
        "checkpoint": {"watermark": NOW.isoformat()},
        "queue": "alerts",
        "queue_depth": 0,
        "coverage": _all_seen(),
    }
    return Facts(**(healthy | changes))


def _by_name(facts: Facts) -> dict[str, tuple[Level, str, str]]:
    return {c.name: (c.level, c.detail, c.action) for c in assess(facts)}


@pytest.mark.parametrize(
    ("behind", "level"),
    [
        (timedelta(minutes=7), Level.OK),
        (timedelta(minutes=45), Level.WARN),
        (timedelta(hours=7), Level.FAIL),
    ],
)
def test_how_far_behind_the_watermark_is_decides_the_run_check(behind, level):
    facts = _facts(checkpoint={"watermark": (NOW - behind).isoformat()})
    found, detail, action = _by_name(facts)["last run"]
    assert found is level
    assert (NOW - behind).strftime("%Y-%m-%d %H:%M") in detail
    assert bool(action) is (level is not Level.OK)
    assert worst(assess(facts)) is level


def test_the_run_check_says_how_far_event_time_was_scored_and_judges_by_what_was_read():
    read, scored = NOW - timedelta(minutes=7), NOW - timedelta(minutes=37)
    facts = _facts(checkpoint={"watermark": read.isoformat(), "eventWatermark": scored.isoformat()})
    found, detail, _ = _by_name(facts)["last run"]
    assert found is Level.OK  # the hold is by design, not a run falling behind
    assert f"activity scored up to {scored:%Y-%m-%d %H:%M}" in detail
    assert f"rows read up to {read:%Y-%m-%d %H:%M}" in detail


def test_a_deployment_that_never_ran_and_stuck_alerts_are_warnings():
    facts = _facts(checkpoint=None, outbox=2, queue_depth=3)
    checks = _by_name(facts)
    assert checks["last run"][0] is Level.WARN
    assert checks["outbox"][0] is Level.WARN
    assert "poison queue" not in checks
    assert checks["alert queue"][0] is Level.OK
    assert worst(assess(facts)) is Level.WARN


def test_alerts_on_the_poison_queue_fail_the_status_and_say_how_to_requeue_them():
    checks = _by_name(_facts(poison_depth=4))
    level, detail, action = checks["poison queue"]
    assert level is Level.FAIL
    assert detail.startswith("4 alert(s) on alerts-poison")
    assert "detector poison list" in action
    assert "detector poison requeue --all" in action
    assert worst(assess(_facts(poison_depth=4))) is Level.FAIL


def test_a_new_deployment_learning_its_workspace_says_how_far_it_got():
    learning = _facts(checkpoint=None, bootstrap_days=14, learned=(3, 15), learned_through=NOW)
    level, detail, _ = _by_name(learning)["bootstrap"]
    assert level is Level.WARN
    assert detail.startswith("learning: 3 of 15 day(s) learned")
    assert "no alerts until it ends" in detail
    waiting = _by_name(_facts(checkpoint=None, bootstrap_days=14))["bootstrap"]
    assert waiting[0] is Level.WARN
    assert "the last 14 day(s)" in waiting[1]
    done = _facts(checkpoint=None, bootstrap_days=14, learned=(15, 15), learned_through=NOW)
    assert _by_name(done)["bootstrap"][0] is Level.OK
    # A deployment that scores already is past its bootstrap: the runs are what matter.
    running = _by_name(_facts(bootstrap_days=14, learned=(15, 15)))
    assert "bootstrap" not in running
    assert running["last run"][0] is Level.OK


def test_a_failed_sign_in_is_one_check_instead_of_every_service_blaming_its_role():
    facts = _facts(sign_in_error="not signed in: run `az login`", state_error="x")
    checks = assess(facts)
    assert [(c.name, c.level) for c in checks] == [("sign-in", Level.FAIL)]
    assert checks[0].detail == "not signed in: run `az login`"


def test_a_table_without_rows_names_the_blind_detection_and_the_setting_to_make():
    facts = _facts(coverage=[_seen(table, 0) for table in SourceTable])
    checks = _by_name(facts)
    assert checks["AzureActivity"][0] is Level.FAIL
    assert "enableActivityLogExport" in checks["AzureActivity"][2]
    assert checks["AppServiceAuditLogs"][0] is Level.WARN
    assert "enableAuditLogPolicy" in checks["AppServiceAuditLogs"][2]
    assert checks["AppServiceFileAuditLogs"][0] is Level.WARN
    assert "Premium" in checks["AppServiceFileAuditLogs"][2]


def test_an_activity_log_that_stopped_arriving_is_a_warning():
    stale = [_seen(SourceTable.AZURE_ACTIVITY, 500, NOW - timedelta(days=2)), *_all_seen()[1:]]
    facts = _facts(coverage=stale)
    assert _by_name(facts)["AzureActivity"][0] is Level.WARN


def test_unreachable_services_fail_with_their_own_errors():
    facts = Facts(
        now=NOW,
        days=7,
        state_error="table DetectorState: read failed: ServiceRequestError: refused",
        queue="alerts",
        queue_error="queue alerts does not exist",
        logs_error="AzureActivity: Log Analytics refused the query (403): Forbidden",
    )
    checks = _by_name(facts)
    assert checks["storage"][0] is Level.FAIL
    assert checks["alert queue"][0] is Level.FAIL
    assert checks["workspace"][0] is Level.FAIL
    assert "Log Analytics Reader" in checks["workspace"][2]


# -- end to end ----------------------------------------------------------------------------


@pytest.fixture
def deployment(log_analytics, azurite, storage_names, monkeypatch):
    """The environment `detector status` reads, aimed at Azurite and the local workspace."""
    env = {
        "LOG_ANALYTICS_WORKSPACE_ID": log_analytics.workspace_id,
        "LOG_ANALYTICS_ENDPOINT": log_analytics.endpoint,
        "DETECTOR_STORAGE": azurite.connection_string,
        "DETECTOR_BASELINE_TABLE": storage_names.table("Baselines"),
        "DETECTOR_STATE_TABLE": storage_names.table("State"),
        "DETECTOR_ALLOW_TABLE": storage_names.table("Allow"),
        "DETECTOR_ALERT_QUEUE": storage_names.queue("alerts"),
        "REQUESTS_CA_BUNDLE": str(log_analytics.ca_path),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    # No Entra ID offline: the local endpoint accepts the test credential.
    monkeypatch.setattr(
        wiring, "default_credential", lambda client_id=None: log_analytics.credential
    )
    return env


def _without_type(row: dict) -> dict:
    return {k: v for k, v in row.items() if k != "Type"}


def _status(capsys, *args: str) -> tuple[int, list[dict]]:
    code = cli.main(["status", "--json", *args])
    return code, json.loads(capsys.readouterr().out)


@pytest.mark.azurite
@pytest.mark.logs
def test_status_reads_the_checkpoint_queues_and_tables_of_a_deployment(
    deployment, log_analytics, azurite, capsys
):
    now = datetime.now(UTC)
    actor = Actor(caller="dev@contoso.com", app_id=CLI, ip="198.51.100.7", kind="user")
    rows = activity(actor, now - timedelta(hours=3), PUBLISHXML, site_id("pay"))
    logged_in = login("$pay", now - timedelta(hours=2), site_id("pay"), "198.51.100.7")
    log_analytics.add_rows("AzureActivity", [_without_type(row) for row in rows])
    log_analytics.add_rows("AppServiceAuditLogs", [_without_type(logged_in)])
    store = TableStore(
        connection_string=azurite.connection_string,
        baseline_table=deployment["DETECTOR_BASELINE_TABLE"],
        state_table=deployment["DETECTOR_STATE_TABLE"],
    )
    store.put_state(CHECKPOINT_NAME, {"watermark": (now - timedelta(minutes=5)).isoformat()})
    store.hold({"id": "waiting-alert", "detection": "d"})
    alerts = deployment["DETECTOR_ALERT_QUEUE"]
    for name, messages in ((alerts, 2), (f"{alerts}-poison", 1)):
        queue = QueueClient.from_connection_string(
            azurite.connection_string, name, api_version=QUEUE_API_VERSION
        )
        queue.create_queue()
        for n in range(messages):
            queue.send_message(f"m{n}")

    code, checks = _status(capsys)
    found = {c["name"]: c for c in checks}
    assert code == 1, checks  # an alert on the poison queue fails the status
    assert found["poison queue"]["level"] == "fail"
    assert found["last run"]["level"] == "ok"
    assert found["outbox"]["level"] == "warn"
    assert found["outbox"]["detail"].startswith("1 alert")
    assert found["alert queue"]["detail"].startswith("2 alert(s) waiting")
    assert found["poison queue"]["detail"].startswith("1 alert(s)")
    assert found["AzureActivity"]["level"] == "ok"
    assert found["AzureActivity"]["detail"].startswith("2 row(s)")  # the Start row and the end row
    assert found["AppServiceAuditLogs"]["level"] == "ok"
    assert found["AppServiceFileAuditLogs"]["level"] == "warn"

    # The text form says the same to a person.
    assert cli.main(["status"]) == 1
    text = capsys.readouterr().out
    assert "warn  AppServiceFileAuditLogs" in text
    assert "-> Enable the AppServiceFileAuditLogs category" in text


@pytest.mark.azurite
@pytest.mark.logs
def test_status_of_a_deployment_whose_storage_is_unreachable_fails(
    deployment, azurite, monkeypatch, capsys
):
    monkeypatch.setenv(
        "DETECTOR_STORAGE",
        azurite.connection_string.replace(azurite.table_endpoint, "http://127.0.0.1:9/x").replace(
            azurite.queue_endpoint, "http://127.0.0.1:9/x"
        ),
    )
    code, checks = _status(capsys)
    found = {c["name"]: c for c in checks}
    assert code == 1
    assert found["storage"]["level"] == "fail"
    assert found["alert queue"]["level"] == "fail"
    # The workspace is still looked at: one unreachable service does not hide the others.
    assert found["AzureActivity"]["level"] == "fail"  # no rows in this fresh workspace
