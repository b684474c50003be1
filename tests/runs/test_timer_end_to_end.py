"""The timer end to end on real protocols: the local HTTPS Log Analytics endpoint (through the
real LogsQueryClient), Azurite tables and queue. Each fault leaves nothing lost and nothing
enqueued twice."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.functions.timer import TimerRequest
from azure.storage.queue import QueueClient

import function_app
from detectors.cli import main as cli
from detectors.clients.connections import QUEUE_API_VERSION
from detectors.delivery.queue import AlertQueue, decode
from detectors.model.errors import DeliveryFailed, StoreError
from detectors.runs import wiring
from detectors.runs.checkpoint import CHECKPOINT_NAME
from detectors.runs.timer import TimerRun
from detectors.settings.app import AppSettings
from detectors.sources import Budget
from detectors.sources.log_analytics import LogAnalyticsSource
from detectors.stores.table import TableStore
from tests.rowkit import CLI, PUBLISHXML, Actor, activity, site_id
from tests.services.functions_host import indexed_function

pytestmark = [pytest.mark.azurite, pytest.mark.logs]

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
SITES = ["pay", "billing", "hr", "crm", "app1"]


class Killed(BaseException):
    """Stands for the process dying: not an error the run could catch."""


@dataclass
class Rig:
    """One deployment: a workspace, its tables and its queue."""

    la: Any
    settings: AppSettings
    connection_string: str

    def timer(
        self,
        *,
        queue: Any = None,
        max_attempts: int = 3,
        max_rows: int = 500_000,
        read_timeout: float = 30,
        prune: Any = (),
    ) -> TimerRun:
        s = self.settings
        client = self.la.client(retry_total=0, read_timeout=read_timeout)
        return TimerRun(
            source=LogAnalyticsSource(
                client=client,
                workspace_id=self.la.workspace_id,
                max_attempts=max_attempts,
                backoff_seconds=0.01,
                max_rows=max_rows,
            ),
            store=(store := self.state()),
            state=store,
            queue=queue or self.queue(),
            settings=s,
            prune=prune,
        )

    def state(self) -> TableStore:
        return TableStore(
            connection_string=self.connection_string,
            baseline_table=self.settings.baseline_table,
            state_table=self.settings.state_table,
        )

    def queue(self) -> AlertQueue:
        queue = AlertQueue(client=self.queue_client())
        queue.ensure()
        return queue

    def queue_client(self) -> QueueClient:
        return QueueClient.from_connection_string(
            self.connection_string, self.settings.alert_queue, api_version=QUEUE_API_VERSION
        )

    def run(self, minutes: float, *, budget: float = 60, **kwargs: Any) -> Any:
        return self.timer(**kwargs).run(T0 + timedelta(minutes=minutes), Budget(budget))

    def alerts(self) -> list[dict[str, Any]]:
        """Every message on the queue (left there, as consumers would find them)."""
        client = self.queue_client()
        found = [decode(m.content) for m in client.peek_messages(max_messages=32)]
        return sorted(found, key=lambda a: a["id"])

    def checkpoint(self) -> dict[str, Any]:
        doc, _ = self.state().get_state_with_etag(CHECKPOINT_NAME)
        assert doc is not None
        return doc


@pytest.fixture
def rig(log_analytics, azurite, storage_names) -> Rig:
    return _rig(log_analytics, azurite, storage_names)


def _rig(la: Any, emulator: Any, names: Any, **overrides: str) -> Rig:
    settings = AppSettings.from_env(
        {
            "LOG_ANALYTICS_WORKSPACE_ID": la.workspace_id,
            "LOG_ANALYTICS_ENDPOINT": la.endpoint,
            "DETECTOR_STORAGE": emulator.connection_string,
            "DETECTOR_BASELINE_TABLE": names.table("Baselines"),
            "DETECTOR_STATE_TABLE": names.table("State"),
            "DETECTOR_ALERT_QUEUE": names.queue("alerts"),
            "DETECTOR_SETTLE_SECONDS": "60",
            "DETECTOR_FIRST_RUN_LOOKBACK_MINUTES": "30",
            # These tests start scoring at once; tests/runs/test_bootstrap.py learns first.
            "DETECTOR_BOOTSTRAP_DAYS": "0",
            # Faults and delivery, not lateness, are what these tests are about: steps score
            # what arrived by their end (test_ingestion_order.py holds for late rows).
            "DETECTOR_HOLD_MINUTES": "0",
            **overrides,
        }
    )
    return Rig(la=la, settings=settings, connection_string=emulator.connection_string)


def _harvest(
    la: Any, caller: str, start: datetime, ingested: datetime, *, spread: bool = False
) -> None:
    """A principal with no history takes the publish profiles of five sites (ingested at
    one moment, or a second apart with `spread`)."""
    stranger = Actor(caller=caller, app_id=CLI, ip="203.0.113.9", kind="app")
    for n, site in enumerate(SITES):
        rows = activity(stranger, start + timedelta(minutes=n), PUBLISHXML, site_id(site))
        arrival = ingested + timedelta(seconds=n if spread else 0)
        la.add_rows("AzureActivity", [_la_row(r) for r in rows], ingested_at=arrival)


def _la_row(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k != "Type"}


STRANGER_A = "c0ffee00-aaaa-4bbb-8ccc-000000000001"
STRANGER_B = "c0ffee00-aaaa-4bbb-8ccc-000000000002"


def _principals(alerts: list[dict[str, Any]]) -> list[str]:
    return sorted(a["principal"]["id"] for a in alerts)


def test_rows_later_than_the_hold_are_read_once_as_stragglers(rig):
    _harvest(rig.la, STRANGER_A, T0 + timedelta(minutes=1), ingested=T0 + timedelta(minutes=8))
    first = rig.run(20)
    assert first.outcome == "ok", first.line()
    assert _principals(rig.alerts()) == [STRANGER_A]
    # B acted before the first run's horizon but its rows were ingested 20 minutes late:
    # the step that reads what arrived in 10:30-10:45 scores them.
    _harvest(rig.la, STRANGER_B, T0 + timedelta(minutes=10), ingested=T0 + timedelta(minutes=30))
    second = rig.run(47)
    assert second.outcome == "ok", second.line()
    assert _principals(rig.alerts()) == [STRANGER_A, STRANGER_B]
    third = rig.run(62)
    assert third.outcome == "ok", third.line()
    assert third.alerts == 0
    assert third.rows == 0
    assert len(rig.alerts()) == 2
    assert rig.checkpoint()["watermark"] == (T0 + timedelta(minutes=60)).isoformat()
    assert rig.checkpoint()["eventWatermark"] == (T0 + timedelta(minutes=60)).isoformat()
    assert third.scored_through == (T0 + timedelta(minutes=60)).isoformat()
    assert "events scored through" in third.line()
    # Grouped server-side: five actions of one principal came back as five groups at most.
    assert first.rows <= 5
    assert first.observations == 5


def test_a_rerun_of_the_same_window_gives_the_same_alert_ids(
    rig, log_analytics, azurite, storage_names
):
    _harvest(rig.la, STRANGER_A, T0 + timedelta(minutes=1), ingested=T0 + timedelta(minutes=8))
    rig.run(20)
    other = _rig(log_analytics, azurite, storage_names)  # a fresh deployment, same workspace
    other.run(20)
    assert [a["id"] for a in other.alerts()] == [a["id"] for a in rig.alerts()]


def test_throttling_is_retried_and_then_read_once(rig):
    _harvest(rig.la, STRANGER_A, T0 + timedelta(minutes=1), ingested=T0 + timedelta(minutes=8))
    rig.la.throttle(retry_after=0.2, times=2)
    report = rig.run(20)
    assert report.outcome == "ok", report.line()
    assert report.retries == 2
    assert _principals(rig.alerts()) == [STRANGER_A]


def test_a_query_that_times_out_is_retried(rig):
    """The first answer never comes (held until the test ends); the others come at once. A
    read timeout far above what an answer takes on a busy machine keeps the test from
    depending on the machine's speed: only the held query can time out."""
    _harvest(rig.la, STRANGER_A, T0 + timedelta(minutes=1), ingested=T0 + timedelta(minutes=8))
    rig.la.delay(3600, times=1)
    report = rig.run(20, read_timeout=5)
    assert report.outcome == "ok", report.line()
    assert report.retries == 1
    assert _principals(rig.alerts()) == [STRANGER_A]


@pytest.mark.parametrize("fault", ["server-error", "partial-result"])
def test_a_failed_query_advances_nothing_and_the_next_run_catches_up(rig, fault):
    _harvest(rig.la, STRANGER_A, T0 + timedelta(minutes=1), ingested=T0 + timedelta(minutes=8))
    if fault == "server-error":
        rig.la.fail(503, times=3)
    else:
        rig.la.partial_failure(times=1)
    failed = rig.run(20)
    assert failed.outcome == "failed"
    assert failed.error
    assert rig.alerts() == []
    assert rig.checkpoint().get("watermark") is None
    recovered = rig.run(25)
    assert recovered.outcome == "ok", recovered.line()
    assert _principals(rig.alerts()) == [STRANGER_A]


class _Interrupting:
    """A queue that misbehaves at a chosen moment around the n-th send."""

    def __init__(
        self,
        inner: AlertQueue,
        *,
        before: Exception | BaseException | None = None,
        after: BaseException | None = None,
    ) -> None:
        self.inner, self.before, self.after = inner, before, after

    def send(self, alert: dict[str, Any]) -> None:
        if self.before is not None:
            raise self.before
        self.inner.send(alert)
        if self.after is not None:
            raise self.after


class _StorageGoesDown:
    """A queue whose storage account stops answering just before the first alert is sent."""

    def __init__(self, inner: AlertQueue, emulator: Any) -> None:
        self.inner, self.emulator = inner, emulator

    def send(self, alert: dict[str, Any]) -> None:
        if self.emulator.running:
            self.emulator.stop()
        self.inner.send(alert)


def test_storage_outage_mid_run_keeps_alerts_until_storage_is_back(
    log_analytics, azurite_outage, storage_names
):
    rig = _rig(log_analytics, azurite_outage, storage_names)
    _harvest(rig.la, STRANGER_A, T0 + timedelta(minutes=1), ingested=T0 + timedelta(minutes=8))
    failed = rig.run(20, queue=_StorageGoesDown(rig.queue(), azurite_outage))
    assert failed.outcome == "failed"
    assert "cannot enqueue alert" in (failed.error or "")
    azurite_outage.start()  # same ports, same data
    assert rig.checkpoint()["pending"] is not None
    assert len(rig.state().held()) == 1
    recovered = rig.run(40)  # the dead run could not release its lease; it has lapsed
    assert recovered.outcome == "ok", recovered.line()
    assert recovered.resumed == 1
    assert _principals(rig.alerts()) == [STRANGER_A]
    assert rig.state().held() == []


class _DyingAtCommit:
    """Run state whose process dies as it is about to advance the watermark past `moment`."""

    def __init__(self, inner: TableStore, moment: datetime) -> None:
        self.inner, self.moment = inner, moment

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def put_state_if(self, name: str, value: dict[str, Any], etag: str | None) -> str:
        mark = value.get("watermark")
        if mark and datetime.fromisoformat(mark) > self.moment and value.get("lease"):
            raise Killed
        return self.inner.put_state_if(name, value, etag)


def test_killed_between_enqueue_and_checkpoint_nothing_is_enqueued_twice(rig):
    _harvest(rig.la, STRANGER_A, T0 + timedelta(minutes=1), ingested=T0 + timedelta(minutes=8))
    timer = rig.timer()
    timer.state = _DyingAtCommit(rig.state(), T0 + timedelta(minutes=8))
    with pytest.raises(Killed):
        timer.run(T0 + timedelta(minutes=20), Budget(60))
    assert _principals(rig.alerts()) == [STRANGER_A]  # enqueued; the watermark never moved
    assert rig.checkpoint()["pending"] is not None
    later = rig.run(60)  # after the dead run's lease has lapsed
    assert later.outcome == "ok", later.line()
    assert later.resumed == 1
    assert _principals(rig.alerts()) == [STRANGER_A]


def test_killed_between_a_send_and_its_outbox_entry_resends_with_the_same_id(rig):
    """The one gap no queue without transactions can close: the queue took the message and
    the process died before the outbox heard. The next run sends it again, under the same
    id, so the notifier and other consumers drop the copy (see docs/consumers.md)."""
    _harvest(rig.la, STRANGER_A, T0 + timedelta(minutes=1), ingested=T0 + timedelta(minutes=8))
    with pytest.raises(Killed):
        rig.run(20, queue=_Interrupting(rig.queue(), after=Killed()))
    later = rig.run(60)
    assert later.outcome == "ok", later.line()
    alerts = rig.alerts()
    assert len(alerts) == 2
    assert alerts[0] == alerts[1]


def test_killed_before_enqueue_the_alert_is_sent_by_the_next_run(rig):
    _harvest(rig.la, STRANGER_A, T0 + timedelta(minutes=1), ingested=T0 + timedelta(minutes=8))
    crashing = _Interrupting(rig.queue(), before=Killed())
    with pytest.raises(Killed):
        rig.run(20, queue=crashing)
    assert rig.alerts() == []
    later = rig.run(60)
    assert later.outcome == "ok", later.line()
    assert later.resumed == 1
    assert _principals(rig.alerts()) == [STRANGER_A]
    # The resumed window did not learn twice: one window's five reads, once.
    baselines = rig.state().load([STRANGER_A])
    assert baselines[STRANGER_A].baseline.operations == 5


def test_a_run_that_overlaps_another_leaves_at_once(rig):
    _harvest(rig.la, STRANGER_A, T0 + timedelta(minutes=1), ingested=T0 + timedelta(minutes=8))
    rig.la.delay(1.5, times=1)
    reports: list[Any] = []
    first = threading.Thread(target=lambda: reports.append(rig.run(20)))
    first.start()
    threading.Event().wait(0.5)
    second = rig.run(20)
    first.join()
    assert second.outcome == "skipped"
    assert "holds the lease" in (second.error or "")
    assert reports[0].outcome == "ok", reports[0].line()
    assert _principals(rig.alerts()) == [STRANGER_A]


def test_the_timer_function_runs_a_cycle_from_app_settings(rig, monkeypatch):
    # The function reads the wall clock: the rows are about three hours old, whatever the
    # date, and inside one hour-long step whatever the minute.
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = hour - timedelta(hours=3) + timedelta(minutes=5)
    _harvest(rig.la, STRANGER_A, start, ingested=start + timedelta(minutes=8))
    s = rig.settings
    for name, value in {
        "LOG_ANALYTICS_WORKSPACE_ID": s.workspace_id,
        "LOG_ANALYTICS_ENDPOINT": s.logs_endpoint,
        "DETECTOR_STORAGE": rig.connection_string,
        "DETECTOR_BASELINE_TABLE": s.baseline_table,
        "DETECTOR_STATE_TABLE": s.state_table,
        "DETECTOR_ALERT_QUEUE": s.alert_queue,
        # Start reading an hour before the rows, in one-hour steps, with the default hold.
        "DETECTOR_FIRST_RUN_LOOKBACK_MINUTES": "240",
        "DETECTOR_BOOTSTRAP_DAYS": "0",
        "DETECTOR_WINDOW_MINUTES": "60",
        "REQUESTS_CA_BUNDLE": str(rig.la.ca_path),
    }.items():
        monkeypatch.setenv(name, value)
    # No Entra ID offline: the local endpoint accepts the test credential.
    monkeypatch.setattr(wiring, "default_credential", lambda client_id=None: rig.la.credential)
    function = indexed_function(function_app.app, "detector_timer")
    bindings = function.get_function_json()
    assert '"schedule": "%DETECTOR_SCHEDULE%"' in bindings
    assert '"useMonitor": true' in bindings
    assert '"runOnStartup": false' in bindings
    function.get_user_function()(TimerRequest(past_due=True))
    assert _principals(rig.alerts()) == [STRANGER_A]


def test_throttling_past_the_budget_fails_cleanly_and_the_next_run_catches_up(rig):
    _harvest(rig.la, STRANGER_A, T0 + timedelta(minutes=1), ingested=T0 + timedelta(minutes=8))
    rig.la.throttle(retry_after=30, times=1)
    failed = rig.run(20, budget=5)
    assert failed.outcome == "failed"
    assert "429" in (failed.error or "")
    assert rig.checkpoint().get("watermark") is None
    assert rig.alerts() == []
    assert rig.run(25).outcome == "ok"
    assert _principals(rig.alerts()) == [STRANGER_A]


@pytest.mark.parametrize("limit", ["our-row-limit", "service-size-limit"])
def test_a_window_over_the_result_limits_is_split_not_truncated(rig, limit):
    arrival = T0 + timedelta(minutes=8)
    _harvest(rig.la, STRANGER_A, T0 + timedelta(minutes=1), ingested=arrival, spread=True)
    _harvest(rig.la, STRANGER_B, T0 + timedelta(minutes=2), ingested=arrival, spread=True)
    if limit == "our-row-limit":
        report = rig.run(20, max_rows=3)
    else:
        rig.la.max_rows = 3  # the service answers with a partial "result too large"
        report = rig.run(20)
    assert report.outcome == "ok", report.line()
    assert report.splits > 0
    assert _principals(rig.alerts()) == [STRANGER_A, STRANGER_B]
    assert report.observations == 10


def test_malformed_rows_are_reported_and_the_rest_still_alert(rig):
    _harvest(rig.la, STRANGER_A, T0 + timedelta(minutes=1), ingested=T0 + timedelta(minutes=8))
    broken = Actor(caller="x" * 5_000, app_id=CLI, ip="203.0.113.9", kind="app")
    rows = activity(broken, T0 + timedelta(minutes=2), PUBLISHXML, site_id("pay"))
    rig.la.add_rows(
        "AzureActivity", [_la_row(r) for r in rows], ingested_at=T0 + timedelta(minutes=8)
    )
    report = rig.run(20)
    assert report.outcome == "ok", report.line()
    assert report.rejected == 1
    assert "Caller is 5,000 characters" in report.rejections[0]
    assert report.rejections[0].startswith("log-analytics:AzureActivity row ")
    assert _principals(rig.alerts()) == [STRANGER_A]


def test_odd_principal_ids_travel_through_tables_and_queue_intact(rig):
    odd = "ci/deploy#1?%x\\ü🙂\u202e"
    _harvest(rig.la, odd, T0 + timedelta(minutes=1), ingested=T0 + timedelta(minutes=8))
    report = rig.run(20)
    assert report.outcome == "ok", report.line()
    assert _principals(rig.alerts()) == [odd]
    assert rig.state().load([odd])[odd].baseline.principal_id == odd


def test_detector_run_reports_bad_settings_in_one_line(monkeypatch, capsys):
    for name in ("LOG_ANALYTICS_WORKSPACE_ID", "DETECTOR_STORAGE"):
        monkeypatch.delenv(name, raising=False)
    assert cli.main(["run"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("detector: error: invalid app settings:")
    assert "LOG_ANALYTICS_WORKSPACE_ID is missing" in err
    assert "\n" not in err


def test_a_run_that_fails_mid_window_releases_its_lease_for_the_next(rig):
    _harvest(rig.la, STRANGER_A, T0 + timedelta(minutes=1), ingested=T0 + timedelta(minutes=8))
    down = _Interrupting(rig.queue(), before=DeliveryFailed("queue unreachable"))
    failed = rig.run(20, queue=down)
    assert failed.outcome == "failed"
    assert rig.checkpoint()["lease"] is None
    assert rig.checkpoint()["pending"] is not None
    retried = rig.run(21)  # well inside the failed run's lease, had it kept it
    assert retried.outcome == "ok", retried.line()
    assert retried.resumed == 1
    assert _principals(rig.alerts()) == [STRANGER_A]


def test_an_accept_and_its_success_in_different_runs_count_once(rig):
    """A long-running action's Accept row is ingested in one run's window and its Success in
    the next run's: the action is scored once, not once per row."""
    stranger = Actor(caller=STRANGER_A, app_id=CLI, ip="203.0.113.9", kind="app")
    for n, site in enumerate(SITES):
        correlation = f"0000aaaa-0000-4000-8000-00000000000{n}"
        at = T0 + timedelta(minutes=1 + n)
        (accept,) = activity(
            stranger,
            at,
            PUBLISHXML,
            site_id(site),
            status="Accept",
            substatus="Accepted",
            with_start=False,
            correlation=correlation,
        )
        (success,) = activity(
            stranger,
            at + timedelta(seconds=2),
            PUBLISHXML,
            site_id(site),
            with_start=False,
            correlation=correlation,
        )
        rig.la.add_rows("AzureActivity", [_la_row(accept)], ingested_at=T0 + timedelta(minutes=8))
        rig.la.add_rows("AzureActivity", [_la_row(success)], ingested_at=T0 + timedelta(minutes=30))
    first = rig.run(20)
    assert first.outcome == "ok", first.line()
    assert first.observations == 5
    assert _principals(rig.alerts()) == [STRANGER_A]
    second = rig.run(47)
    assert second.outcome == "ok", second.line()
    assert second.rows == 5  # the Success rows were read...
    assert second.observations == 0  # ...and recognised as actions already counted
    assert second.alerts == 0
    assert len(rig.alerts()) == 1
    # What the checkpoint keeps for this is bounded: only actions still awaiting their end.
    assert len(rig.checkpoint()["engine"]["recentActions"]) == 5


def test_a_run_that_caught_up_deletes_records_past_retention_and_one_behind_does_not(rig):
    store = rig.state()
    store.record_alerts([{"alertId": "old-1"}, {"alertId": "old-2"}])
    # Run as if retention had passed since the records were written (a fresh deployment
    # reads only its first look-back, so the run has little else to do).
    later = datetime.now(UTC) + timedelta(days=rig.settings.retention_days + 1)
    behind = rig.timer(prune=(store.prune_alert_records,)).run(later, Budget(0.001))
    assert behind.outcome != "ok", behind.line()
    assert behind.pruned == 0
    assert store.get_alert_record("old-1")[0] is not None
    done = rig.timer(prune=(store.prune_alert_records,)).run(later, Budget(60))
    assert done.outcome == "ok", done.line()
    assert done.pruned == 2
    assert "old records deleted 2" in done.line()
    assert store.get_alert_record("old-1")[0] is None


def test_a_failure_to_delete_old_records_does_not_fail_the_run(rig):
    def broken(before: datetime, limit: int) -> int:
        raise StoreError("table DetectorDeliveries: delete old delivery records failed: 403")

    report = rig.timer(prune=(broken,)).run(datetime.now(UTC), Budget(60))
    assert report.outcome == "ok", report.line()
    assert "403" in (report.prune_error or "")


def test_a_checkpoint_from_before_steps_goes_on_without_gaps_or_doubles(rig):
    """A checkpoint written when windows were ingestion time only holds one watermark: every
    row ingested before it was read. The timer then scores event time from there on."""
    watermark = T0 + timedelta(minutes=10)
    store = rig.state()
    store.put_state_if(
        CHECKPOINT_NAME,
        {"version": 1, "watermark": watermark.isoformat(), "engine": None, "pending": None},
        None,
    )
    # A's rows were ingested before the watermark (read by the old timer); B's after it.
    _harvest(rig.la, STRANGER_A, T0 + timedelta(minutes=1), ingested=T0 + timedelta(minutes=8))
    _harvest(rig.la, STRANGER_B, T0 + timedelta(minutes=2), ingested=T0 + timedelta(minutes=25))
    report = rig.run(47)
    assert report.outcome == "ok", report.line()
    assert report.observations == 5
    assert _principals(rig.alerts()) == [STRANGER_B]
    assert rig.checkpoint()["eventWatermark"] == (T0 + timedelta(minutes=45)).isoformat()


def test_a_pending_window_from_before_steps_is_finished_without_scoring_it_again(rig):
    """A run that died after scoring an ingestion-only window left it pending: the next run
    re-reads its rows to learn them (no alert: they were kept in the outbox then), and goes
    on with steps of event time from its end."""
    since, until = T0, T0 + timedelta(minutes=15)
    rig.state().put_state_if(
        CHECKPOINT_NAME,
        {
            "version": 1,
            "watermark": since.isoformat(),
            "engine": None,
            "pending": {"since": since.isoformat(), "until": until.isoformat()},
        },
        None,
    )
    # A's rows were ingested inside the pending window; B's after it.
    _harvest(rig.la, STRANGER_A, T0 + timedelta(minutes=1), ingested=T0 + timedelta(minutes=8))
    _harvest(rig.la, STRANGER_B, T0 + timedelta(minutes=2), ingested=T0 + timedelta(minutes=25))
    report = rig.run(47)
    assert report.outcome == "ok", report.line()
    assert report.resumed == 1
    assert report.observations == 10  # A re-read once (to learn), B read once
    assert _principals(rig.alerts()) == [STRANGER_B]
    doc = rig.checkpoint()
    assert doc["pending"] is None
    assert doc["eventWatermark"] == (T0 + timedelta(minutes=45)).isoformat()
