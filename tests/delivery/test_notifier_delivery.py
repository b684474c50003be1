"""The notifier end to end on real protocols: alerts enqueued as the timer enqueues them
(Azurite), the queue trigger run with the Functions host's semantics (base64 bodies,
dequeue counts, retries, `<queue>-poison` after maxDequeueCount), deliveries to a local
HTTPS receiver, and idempotency records in Azurite's Table Storage."""

from __future__ import annotations

import base64
import copy
import json
import logging
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from azure.data.tables import TableClient
from azure.storage.queue import QueueClient

import function_app
from detectors.clients.connections import QUEUE_API_VERSION
from detectors.delivery.destinations import Destination
from detectors.delivery.errors import (
    MalformedAlertError,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from detectors.delivery.ledger import Busy, Claim, TableLedger
from detectors.delivery.notifier import Notifier, RetryPolicy
from detectors.delivery.queue import AlertQueue
from detectors.delivery.transport import HttpsSender
from detectors.settings.app import NotifierSettings
from tests.alerts.test_alert_schema import sample_alerts
from tests.delivery.test_notifier_messages import (
    assert_slack_message_is_inert,
    assert_teams_card_is_inert,
    doc_function,
    hostile_alert,
    verify_signature,
)
from tests.services.functions_host import QueueTriggerHost, indexed_function
from tests.services.webhook_receiver import Receiver, Reply

pytestmark = pytest.mark.azurite

SECRET = "s3cret-for-tests-only"
DESTINATIONS = ("webhook", "teams", "slack")
FAST = RetryPolicy(attempts=3, backoff_seconds=(0.05,), max_wait_seconds=5)


class Rig:
    """One deployment's notifier: its app settings, queue, delivery table and host."""

    def __init__(
        self,
        *,
        env: dict[str, str],
        receiver: Receiver,
        make_host: Callable[..., QueueTriggerHost],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        self.env = env
        self.receiver = receiver
        self.make_host = make_host
        self.monkeypatch = monkeypatch
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        # The receiver's self-signed CA: urllib's default context honours SSL_CERT_FILE.
        monkeypatch.setenv("SSL_CERT_FILE", str(receiver.ca_path))
        self.settings = NotifierSettings.from_env(env)
        self.fast(timeout_seconds=5.0)
        queue = self.queue_client()
        queue.create_queue()
        self.alerts = AlertQueue(client=queue)

    def fast(self, *, timeout_seconds: float) -> None:
        """The function's real wiring, with a test timeout and short in-process back-off."""

        class TestNotifier(Notifier):
            @classmethod
            def from_settings(cls, settings: Any, **_: Any) -> Notifier:
                return Notifier.from_settings(
                    settings, timeout_seconds=timeout_seconds, policy=FAST
                )

        self.monkeypatch.setattr(function_app, "Notifier", TestNotifier)

    def queue_client(self) -> QueueClient:
        return QueueClient.from_connection_string(
            self.env["DETECTOR_STORAGE"],
            self.env["DETECTOR_ALERT_QUEUE"],
            api_version=QUEUE_API_VERSION,
        )

    def host(self, **kwargs: Any) -> QueueTriggerHost:
        """The host running `function_app.detector_notifier` on this rig's queue."""
        return self.make_host(
            app=function_app.app, name="detector_notifier", settings=self.env, **kwargs
        )

    def send_raw(self, text: str) -> None:
        self.queue_client().send_message(text)

    def records(self) -> dict[tuple[str, str], dict[str, Any]]:
        """The delivery table: (alert id, destination) -> entity."""
        table = TableClient.from_connection_string(
            self.env["DETECTOR_STORAGE"], self.env["DETECTOR_DELIVERY_TABLE"]
        )
        with table:
            return {(e["AlertId"], e["RowKey"]): dict(e) for e in table.list_entities()}


def _env(azurite, storage_names, receiver, **notify: str) -> dict[str, str]:
    """The notifier's app settings against Azurite and the local receiver."""
    return {
        "DETECTOR_STORAGE": azurite.connection_string,
        "DETECTOR_ALERT_QUEUE": storage_names.queue("alerts"),
        "DETECTOR_DELIVERY_TABLE": storage_names.table("Deliveries"),
        "NOTIFY_WEBHOOK_URL": receiver.url("webhook"),
        "NOTIFY_ALLOW_PRIVATE_ADDRESSES": "true",  # the local receiver
        **notify,
    }


@pytest.fixture
def rig(azurite, storage_names, receiver, functions_host, monkeypatch) -> Rig:
    env = _env(
        azurite,
        storage_names,
        receiver,
        NOTIFY_WEBHOOK_SECRET=SECRET,
        NOTIFY_TEAMS_URL=receiver.url("teams"),
        NOTIFY_SLACK_URL=receiver.url("slack"),
    )
    return Rig(env=env, receiver=receiver, make_host=functions_host, monkeypatch=monkeypatch)


def _delivered_once_each(rig: Rig, alert_id: str) -> None:
    """Each destination acknowledged exactly one request for the alert, and says so."""
    for name in DESTINATIONS:
        acknowledged = rig.receiver.acknowledged(name)
        assert len(acknowledged) == 1, (name, len(acknowledged))
    records = rig.records()
    for name in DESTINATIONS:
        assert records[alert_id, name]["State"] == "delivered", name


# -- the happy path ---------------------------------------------------------------------------


def test_a_previous_webhook_key_signs_too_while_it_is_rotated(
    azurite, storage_names, receiver, functions_host, monkeypatch
):
    env = _env(
        azurite,
        storage_names,
        receiver,
        NOTIFY_WEBHOOK_SECRET="the new key",
        NOTIFY_WEBHOOK_SECRET_PREVIOUS=SECRET,
    )
    rig = Rig(env=env, receiver=receiver, make_host=functions_host, monkeypatch=monkeypatch)
    alert = sample_alerts()[0]
    rig.alerts.send(alert)
    run = rig.host().run_until_idle()
    assert run.errors() == []
    [hook] = rig.receiver.requests("webhook")
    # A receiver still on the old key and one already on the new key both accept it.
    assert verify_signature(SECRET, hook.headers, hook.body)
    assert verify_signature("the new key", hook.headers, hook.body)
    assert not verify_signature("another secret", hook.headers, hook.body)


def test_the_queue_trigger_binds_the_alert_queue_through_the_storage_connection():
    function = indexed_function(function_app.app, "detector_notifier")
    [binding] = json.loads(function.get_function_json())["bindings"]
    assert binding["type"] == "queueTrigger"
    assert binding["queueName"] == "%DETECTOR_ALERT_QUEUE%"
    assert binding["connection"] == "DETECTOR_STORAGE"
    assert binding["name"] == "message"


def test_an_enqueued_alert_reaches_each_destination_once_signed(rig):
    alert = sample_alerts()[0]
    rig.alerts.send(alert)
    run = rig.host().run_until_idle()
    assert run.errors() == []
    assert run.poisoned == []
    _delivered_once_each(rig, alert["id"])
    [hook] = rig.receiver.requests("webhook")
    assert verify_signature(SECRET, hook.headers, hook.body)
    assert not verify_signature("another secret", hook.headers, hook.body)
    assert orjson.loads(hook.body) == alert
    assert hook.headers["x-detector-alert-id"] == alert["id"]
    assert hook.headers["idempotency-key"] == alert["id"]
    assert hook.headers["content-type"].startswith("application/json")
    [teams] = rig.receiver.requests("teams")
    card = orjson.loads(teams.body)["attachments"][0]
    assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert card["content"]["type"] == "AdaptiveCard"
    [slack] = rig.receiver.requests("slack")
    assert orjson.loads(slack.body)["blocks"][0]["type"] == "header"
    assert rig.host().visible() == 0


def test_every_sample_alert_is_delivered_and_each_only_once(rig):
    alerts = sample_alerts()
    for alert in alerts:
        rig.alerts.send(alert)
    run = rig.host(parallel=True).run_until_idle()
    assert run.errors() == []
    for name in DESTINATIONS:
        assert len(rig.receiver.acknowledged(name)) == len(alerts), name
    ids = [orjson.loads(r.body)["id"] for r in rig.receiver.acknowledged("webhook")]
    assert sorted(ids) == sorted(a["id"] for a in alerts)


# -- duplicates -------------------------------------------------------------------------------


def test_an_alert_enqueued_twice_is_delivered_once(rig):
    alert = sample_alerts()[1]
    rig.alerts.send(alert)
    rig.alerts.send(alert)
    run = rig.host().run_until_idle()
    assert run.errors() == []
    assert len(run.invocations) == 2
    _delivered_once_each(rig, alert["id"])


def test_copies_processed_at_the_same_time_are_delivered_once(rig, caplog):
    alert = sample_alerts()[2]
    for _ in range(4):
        rig.alerts.send(alert)
    # Slow answers keep the first claim in flight while the other copies arrive.
    for name in DESTINATIONS:
        rig.receiver.script(name, *[Reply(status=200, body=b"1", delay=0.3)] * 4)
    with caplog.at_level(logging.INFO):
        run = rig.host(parallel=True).run_until_idle()
    assert run.errors() == []
    _delivered_once_each(rig, alert["id"])
    # The copies that found a claim in flight waited for it, then sent nothing.
    assert "already delivered (after waiting" in caplog.text


def test_a_claim_held_past_the_wait_is_retried_then_taken_over_when_stale(rig, caplog):
    alert = sample_alerts()[0]
    ledger = TableLedger.from_settings(
        rig.settings.storage, table=rig.settings.delivery_table, create_table=True
    )
    now = datetime.now(UTC)
    held = ledger.claim(
        alert["id"], "slack", holder="dead-worker", now=now, hold=timedelta(minutes=2), details={}
    )
    assert isinstance(held, Claim)
    body = orjson.dumps(alert)

    def notifier(clock: Callable[[], datetime]) -> Notifier:
        return Notifier(
            destinations=[Destination(name="slack", url=rig.receiver.url("slack"))],
            ledger=ledger,
            sender=HttpsSender(ca_path=str(rig.receiver.ca_path)),
            in_flight_wait_seconds=0.3,
            clock=clock,
        )

    with pytest.raises(TransientDeliveryError, match=r"slack in flight elsewhere \(after waiting"):
        notifier(lambda: datetime.now(UTC)).handle(body, message_id="m2", dequeue_count=1)
    assert rig.receiver.requests("slack") == []
    # Three minutes later the claim is stale: the worker that made it is gone.
    later = notifier(lambda: datetime.now(UTC) + timedelta(minutes=3))
    with caplog.at_level(logging.WARNING):
        report = later.handle(body, message_id="m2", dequeue_count=2)
    assert [o.result.value for o in report.outcomes] == ["delivered"]
    assert "took over the unfinished claim of message dead-worker" in caplog.text
    assert len(rig.receiver.acknowledged("slack")) == 1
    ledger.close()


def test_two_hosts_on_one_queue_deliver_each_alert_once(rig):
    alerts = sample_alerts()[:6]
    for alert in alerts + alerts:
        rig.alerts.send(alert)
    first, second = rig.host(parallel=True), rig.host(parallel=True)
    threads = [threading.Thread(target=h.run_until_idle) for h in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    first.run_until_idle()
    for name in DESTINATIONS:
        assert len(rig.receiver.acknowledged(name)) == len(alerts), name
    assert first.poison_texts() == []


# -- transient failures -----------------------------------------------------------------------


def test_server_errors_are_retried_until_delivered_once(rig):
    alert = sample_alerts()[0]
    # Four 500s: three in-process attempts fail, the host's retry succeeds on the second try.
    rig.receiver.script("webhook", *[Reply(status=500, body=b"boom")] * 4)
    rig.receiver.script("slack", Reply(status=503, body=b"down"))
    rig.alerts.send(alert)
    run = rig.host().run_until_idle()
    assert [type(e) for e in run.errors()] == [TransientDeliveryError]
    assert [i.dequeue_count for i in run.invocations] == [1, 2]
    assert run.poisoned == []
    _delivered_once_each(rig, alert["id"])
    assert len(rig.receiver.requests("webhook")) == 5
    assert len(rig.receiver.requests("teams")) == 1  # delivered on attempt 1, skipped on 2
    assert len(rig.receiver.requests("slack")) == 2
    assert rig.records()[alert["id"], "webhook"]["Attempts"] == 2


def test_throttling_with_retry_after_is_honoured_then_delivered_once(rig):
    alert = sample_alerts()[0]
    rig.receiver.script("slack", Reply(status=429, headers={"Retry-After": "2"}, body=b"rate"))
    rig.receiver.script("teams", Reply(status=429, headers={"Retry-After": "3600"}, body=b"x"))
    rig.alerts.send(alert)
    run = rig.host().run_until_idle()
    # Slack asked for 2 s: waited in-process. Teams asked for an hour: left to the host.
    first, second = rig.receiver.requests("slack")
    assert second.at - first.at >= 1.9
    assert len(rig.receiver.requests("teams")) == 2
    assert [type(e) for e in run.errors()] == [TransientDeliveryError]
    assert "Retry-After 3600 s is left to the host's retry" in str(run.errors()[0])
    _delivered_once_each(rig, alert["id"])


def test_a_destination_that_does_not_answer_in_time_is_retried(rig):
    rig.fast(timeout_seconds=0.5)
    alert = sample_alerts()[0]
    rig.receiver.script("teams", Reply(status=200, body=b"1", delay=3, lost=True))
    rig.alerts.send(alert)
    run = rig.host().run_until_idle()
    assert run.errors() == []
    # The timed-out request did arrive: the sender never saw its answer, so it sent again.
    # Receivers that must not act twice use the alert id (docs/consumers.md).
    assert len(rig.receiver.requests("teams")) == 2
    _delivered_once_each(rig, alert["id"])


def test_a_throttled_teams_connector_answering_200_is_retried(rig):
    alert = sample_alerts()[0]
    quirk = (
        b"Webhook message delivery failed with error: Microsoft Teams endpoint returned "
        b"HTTP error 429 with ContextId x"
    )
    rig.receiver.script("teams", Reply(status=200, body=quirk))
    rig.alerts.send(alert)
    rig.host().run_until_idle()
    assert len(rig.receiver.requests("teams")) == 2


# -- permanent failures -----------------------------------------------------------------------


def test_a_refused_alert_ends_in_the_poison_queue_with_the_reason_logged(rig, caplog):
    alert = sample_alerts()[0]
    rig.receiver.script("slack", *[Reply(status=400, body=b"invalid_payload")] * 10)
    rig.alerts.send(alert)
    host = rig.host()
    with caplog.at_level(logging.ERROR, logger="detectors.delivery"):
        run = host.run_until_idle()
    attempts = host.options.max_dequeue_count
    assert attempts == 5  # explicit in host.json
    assert [type(e) for e in run.errors()] == [PermanentDeliveryError] * attempts
    assert len(run.poisoned) == 1
    [poisoned] = host.poison_texts()
    assert orjson.loads(base64.b64decode(poisoned)) == alert  # the message, untouched
    # Slack was asked once per host attempt (no in-process retries of a refusal) ...
    assert len(rig.receiver.requests("slack")) == attempts
    # ... while the destinations that accepted it got it once.
    for name in ("webhook", "teams"):
        assert len(rig.receiver.requests(name)) == 1
    record = rig.records()[alert["id"], "slack"]
    assert record["State"] == "failed"
    assert "HTTP 400: invalid_payload" in record["LastError"]
    assert "slack refused (HTTP 400: invalid_payload)" in caplog.text
    assert host.visible() == 0


def test_a_redirect_is_refused_not_followed(rig):
    alert = sample_alerts()[0]
    rig.receiver.script(
        "webhook", *[Reply(status=302, headers={"Location": "https://elsewhere.example/"})] * 5
    )
    rig.alerts.send(alert)
    run = rig.host().run_until_idle()
    assert len(run.poisoned) == 1
    assert "HTTP 302" in str(run.errors()[0])


def test_a_destination_fixed_before_the_last_attempt_gets_the_alert(rig):
    alert = sample_alerts()[0]
    rig.receiver.script("teams", *[Reply(status=404, body=b"not found")] * 3)
    rig.alerts.send(alert)
    run = rig.host().run_until_idle()
    assert [i.dequeue_count for i in run.invocations] == [1, 2, 3, 4]
    assert run.poisoned == []
    _delivered_once_each(rig, alert["id"])


# -- hostile content --------------------------------------------------------------------------


def test_malicious_field_contents_arrive_escaped_in_teams_and_slack(rig):
    alert = hostile_alert()
    rig.alerts.send(alert)
    run = rig.host().run_until_idle()
    assert run.errors() == []
    assert_teams_card_is_inert(orjson.loads(rig.receiver.requests("teams")[0].body))
    assert_slack_message_is_inert(orjson.loads(rig.receiver.requests("slack")[0].body))
    # The webhook carries the alert itself; its receiver escapes for its own output.
    assert orjson.loads(rig.receiver.requests("webhook")[0].body) == alert


# -- malformed and oversized messages ---------------------------------------------------------


def test_malformed_messages_go_to_poison_and_the_next_alert_is_still_delivered(rig):
    alert = sample_alerts()[0]
    rig.send_raw("this is not base64 at all!")
    nested = b'"principal": {}, "x": ' + b"[" * 300 + b"]" * 300
    for body in (
        b"\xff\xfe not utf-8",
        b"[1, 2, 3]",
        b'{"schemaVersion": "2.0", "id": "x"}',
        # Each once crashed the notifier (an HTTP header, serialisation) on every attempt.
        orjson.dumps({**alert, "id": "a-newline\n"}),
        b'{"schemaVersion": "1.0", "id": "deep", "detection": "d", "title": "t", ' + nested + b"}",
    ):
        rig.send_raw(base64.b64encode(body).decode())
    rig.send_raw(base64.b64encode(b"[" * 100_000).decode()[:60_000])
    rig.alerts.send(alert)
    host = rig.host()
    run = host.run_until_idle()
    assert len(run.undecodable) == 1  # the host poisons it without calling the function
    assert len(run.poisoned) == 7
    errors = run.errors()
    assert errors
    assert all(isinstance(e, MalformedAlertError) for e in errors)
    assert len(errors) == 6 * host.options.max_dequeue_count
    assert len(host.poison_texts()) == 7
    _delivered_once_each(rig, alert["id"])
    assert len(rig.receiver.requests("webhook")) == 1


def test_an_alert_with_enormous_fields_is_delivered_within_each_limit(rig):
    alert = copy.deepcopy(sample_alerts()[0])
    alert["principal"]["name"] = "N" * 20_000
    alert["summary"] = "S" * 10_000
    alert["reasons"] = [{"code": f"CODE_{n}", "message": "m" * 400, "weight": n} for n in range(30)]
    alert["resources"] = [alert["resource"]] * 40
    rig.alerts.send(alert)  # fit() trims it to a queue message, as the timer does
    run = rig.host().run_until_idle()
    assert run.errors() == []
    teams = rig.receiver.requests("teams")[0].body
    slack = orjson.loads(rig.receiver.requests("slack")[0].body)
    assert len(teams) <= 24_000
    assert len(slack["blocks"]) <= 50
    assert all(len(b["text"]["text"]) <= 150 for b in slack["blocks"] if b["type"] == "header")


def test_without_destinations_alerts_are_kept_in_the_poison_queue(rig, monkeypatch):
    for name in ("NOTIFY_WEBHOOK_URL", "NOTIFY_TEAMS_URL", "NOTIFY_SLACK_URL"):
        monkeypatch.delenv(name)
    rig.alerts.send(sample_alerts()[0])
    host = rig.host()
    run = host.run_until_idle()
    assert "no destination is configured" in str(run.errors()[0])
    assert len(host.poison_texts()) == 1


# -- the ledger's races -----------------------------------------------------------------------


@pytest.fixture
def ledger(rig) -> Iterator[TableLedger]:
    with_table = TableLedger.from_settings(
        rig.settings.storage, table=rig.settings.delivery_table, create_table=True
    )
    yield with_table
    with_table.close()


NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
HOLD = timedelta(minutes=2)


def _claim(ledger: TableLedger, holder: str, now: datetime = NOW) -> Claim | Busy:
    return ledger.claim("a1", "slack", holder=holder, now=now, hold=HOLD, details={})


def test_of_two_claims_exactly_one_wins_and_delivered_is_final(ledger):
    first = _claim(ledger, "message-1")
    assert isinstance(first, Claim)
    assert _claim(ledger, "message-2") is Busy.IN_FLIGHT
    ledger.delivered(first, now=NOW, status=200)
    assert _claim(ledger, "message-2") is Busy.ALREADY_DELIVERED
    assert _claim(ledger, "message-1", NOW + timedelta(days=30)) is Busy.ALREADY_DELIVERED


def test_a_failed_attempt_releases_its_claim_at_once(ledger):
    first = _claim(ledger, "message-1")
    assert isinstance(first, Claim)
    ledger.failed(first, now=NOW, error="HTTP 500")
    second = _claim(ledger, "message-2")
    assert isinstance(second, Claim)
    assert second.took_over is None


def test_an_abandoned_claim_is_taken_over_after_its_hold_or_by_the_same_message(ledger):
    first = _claim(ledger, "message-1")
    assert isinstance(first, Claim)
    # The worker died. Another message waits for the hold; the same message does not.
    assert _claim(ledger, "message-2", NOW + timedelta(seconds=30)) is Busy.IN_FLIGHT
    again = _claim(ledger, "message-1", NOW + timedelta(seconds=30))
    assert isinstance(again, Claim)
    assert again.took_over == "message-1"
    later = _claim(ledger, "message-2", NOW + HOLD + timedelta(seconds=31))
    assert isinstance(later, Claim)
    assert later.took_over == "message-1"
    # The slow first worker finishing late still records the delivery, with a warning.
    ledger.delivered(again, now=NOW, status=200)
    assert _claim(ledger, "message-3", NOW + timedelta(hours=1)) is Busy.ALREADY_DELIVERED


def test_racing_claims_on_a_new_record_have_one_winner(ledger, rig):
    results: list[Claim | Busy] = []
    barrier = threading.Barrier(6)

    def race(n: int) -> None:
        other = TableLedger.from_settings(
            rig.settings.storage, table=rig.settings.delivery_table, create_table=False
        )
        barrier.wait()
        results.append(_claim(other, f"message-{n}"))
        other.close()

    threads = [threading.Thread(target=race, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sum(isinstance(r, Claim) for r in results) == 1
    assert results.count(Busy.IN_FLIGHT) == 5


def test_unreadable_delivery_records_mean_nothing_is_sent(rig, monkeypatch):
    monkeypatch.setenv("DETECTOR_DELIVERY_TABLE", "Missing" + "x" * 8)

    class NoCreate(Notifier):
        @classmethod
        def from_settings(cls, settings: Any, **_: Any) -> Notifier:
            # As in Azure: the table is not created by the notifier (here, nobody made it).
            ledger = TableLedger.from_settings(
                settings.storage, table=settings.delivery_table, create_table=False
            )
            return Notifier(
                destinations=[Destination(name="slack", url=settings.slack_url)],
                ledger=ledger,
                sender=HttpsSender(),
                policy=FAST,
            )

    monkeypatch.setattr(function_app, "Notifier", NoCreate)
    rig.alerts.send(sample_alerts()[0])
    run = rig.host().run_until_idle()
    assert all(isinstance(e, TransientDeliveryError) for e in run.errors())
    assert "delivery records unavailable, nothing sent" in str(run.errors()[0])
    assert len(run.poisoned) == 1
    for name in DESTINATIONS:
        assert rig.receiver.requests(name) == []


# -- the consumers' guide ---------------------------------------------------------------------


def test_the_documented_python_reader_gets_each_alert_the_timer_enqueued(rig):
    alerts = list(sample_alerts()[:5])
    for alert in alerts:
        rig.alerts.send(alert)
    handled: list[dict[str, Any]] = []
    read_alerts = doc_function("read_alerts")
    assert read_alerts(rig.queue_client(), handled.append) == len(alerts)
    assert sorted(a["id"] for a in handled) == sorted(a["id"] for a in alerts)
    assert handled[0] == next(a for a in alerts if a["id"] == handled[0]["id"])
    assert rig.host().visible() == 0


def test_requeued_poison_messages_reach_only_the_destinations_that_missed_them(rig):
    alert = sample_alerts()[0]
    rig.receiver.script("slack", *[Reply(status=410, body=b"channel_is_archived")] * 5)
    rig.alerts.send(alert)
    host = rig.host()
    assert len(host.run_until_idle().poisoned) == 1
    # The channel is restored; an operator moves the poison messages back, as documented.
    requeue = doc_function("requeue_poisoned")
    assert requeue(host.poison, rig.queue_client()) == 1
    run = host.run_until_idle()
    assert run.errors() == []
    assert host.poison_texts() == []
    assert len(rig.receiver.requests("slack")) == 6
    _delivered_once_each(rig, alert["id"])
    assert len(rig.receiver.requests("webhook")) == 1
