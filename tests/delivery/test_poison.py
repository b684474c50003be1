"""No alert expires unseen, on Azurite: alert messages never expire, the timer gives poison
messages (which the Functions host moves with the service's seven-day default) a copy that
never expires, and `detector poison` lists them and puts them back on the alert queue."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from azure.storage.queue import QueueClient

from detectors.cli import main as cli
from detectors.clients.connections import QUEUE_API_VERSION
from detectors.delivery.poison import FOREVER_YEAR, PoisonQueue, poison_name
from detectors.delivery.queue import AlertQueue, decode, encode
from detectors.sources import Budget
from tests.alerts.test_alert_schema import sample_alerts
from tests.runs.test_timer_end_to_end import T0, _rig

pytestmark = pytest.mark.azurite

SEVEN_DAYS = 7 * 24 * 3600


class Queues:
    """An alert queue and its poison queue on Azurite."""

    def __init__(self, azurite: Any, name: str) -> None:
        self.connection_string = azurite.connection_string
        self.name = name
        self.alerts = self.client(name)
        self.poison = self.client(poison_name(name))
        self.alerts.create_queue()
        self.poison.create_queue()

    def client(self, name: str) -> QueueClient:
        return QueueClient.from_connection_string(
            self.connection_string, name, api_version=QUEUE_API_VERSION
        )

    def poisoned(self, alert: dict[str, Any], *, ttl: int = SEVEN_DAYS) -> None:
        """What the host does after maxDequeueCount: the message, unchanged, default TTL."""
        self.poison.send_message(encode(alert), time_to_live=ttl)

    def peek(self, client: QueueClient) -> list[Any]:
        return list(client.peek_messages(max_messages=32))


@pytest.fixture
def queues(azurite, storage_names) -> Queues:
    return Queues(azurite, storage_names.queue("alerts"))


@pytest.fixture
def alerts() -> list[dict[str, Any]]:
    found = list(sample_alerts()[:3])
    assert len({a["id"] for a in found}) == 3
    return found


def test_alerts_on_the_queue_never_expire(queues, alerts):
    AlertQueue(client=queues.alerts).send(alerts[0])
    [message] = queues.peek(queues.alerts)
    assert message.expires_on.year == FOREVER_YEAR
    assert decode(message.content)["id"] == alerts[0]["id"]


def test_the_timer_gives_poison_messages_a_copy_that_never_expires(queues, alerts):
    for alert in alerts[:2]:
        queues.poisoned(alert)
    poison = PoisonQueue(poison=queues.poison, alerts=queues.alerts)
    assert poison.keep() == 2
    kept = queues.peek(queues.poison)
    assert sorted(decode(m.content)["id"] for m in kept) == sorted(a["id"] for a in alerts[:2])
    assert all(m.expires_on.year == FOREVER_YEAR for m in kept)
    assert poison.keep() == 0  # nothing left to renew; the kept ones are visible again
    assert len(queues.peek(queues.poison)) == 2
    assert poison.depth() == 2


def test_keeping_a_missing_poison_queue_does_nothing(azurite, storage_names):
    client = Queues(azurite, storage_names.queue("alerts")).client("never-made-poison")
    poison = PoisonQueue(poison=client, alerts=client)
    assert poison.keep() == 0
    assert poison.depth() == 0
    assert poison.peek() == []


def _poison(capsys, *args: str) -> tuple[int, Any]:
    code = cli.main(["poison", *args, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_the_poison_command_lists_and_requeues_alerts(queues, alerts, monkeypatch, capsys):
    monkeypatch.setenv("DETECTOR_STORAGE", queues.connection_string)
    monkeypatch.setenv("DETECTOR_ALERT_QUEUE", queues.name)
    for alert in alerts:
        queues.poisoned(alert)
    queues.poison.send_message("not base64 at all!", time_to_live=SEVEN_DAYS)

    code, listed = _poison(capsys, "list")
    assert code == 0
    assert listed["depth"] == 4
    by_alert = {m["alertId"]: m for m in listed["messages"]}
    assert set(by_alert) == {*(a["id"] for a in alerts), None}
    assert by_alert[None]["problem"].startswith("not an alert")
    first = by_alert[alerts[0]["id"]]
    assert first["detection"] == alerts[0]["detection"]
    assert first["expiresOn"] is not None  # the host's seven days, until the timer keeps it

    # One alert, named by its alert id.
    code, moved = _poison(capsys, "requeue", alerts[0]["id"])
    assert code == 0
    assert [m["alertId"] for m in moved["moved"]] == [alerts[0]["id"]]
    assert moved["left"] == 3
    [back] = queues.peek(queues.alerts)
    assert decode(back.content) == decode(encode(alerts[0]))  # the message, unchanged
    assert back.expires_on.year == FOREVER_YEAR
    assert len(queues.peek(queues.poison)) == 3  # the others are visible again at once

    # One by its message id.
    second = by_alert[alerts[1]["id"]]["messageId"]
    code, moved = _poison(capsys, "requeue", second)
    assert code == 0
    assert [m["alertId"] for m in moved["moved"]] == [alerts[1]["id"]]

    # Everything that is an alert; the message that is not one stays.
    code, moved = _poison(capsys, "requeue", "--all")
    assert code == 0
    assert [m["alertId"] for m in moved["moved"]] == [alerts[2]["id"]]
    assert moved["left"] == 1
    assert len(queues.peek(queues.alerts)) == 3
    [rest] = queues.peek(queues.poison)
    assert rest.content == "not base64 at all!"

    # An id that is not there is an error, and the text form reads well.
    assert cli.main(["poison", "requeue", "no-such-alert"]) == 1
    captured = capsys.readouterr()
    assert "moved 0 message(s)" in captured.out
    assert f"not on {queues.name}-poison: no-such-alert" in captured.err
    assert cli.main(["poison", "list"]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"1 message(s) on {queues.name}-poison\n")
    assert "not an alert" in text


def test_the_poison_command_needs_storage(monkeypatch, capsys):
    for name in ("DETECTOR_STORAGE", "DETECTOR_STORAGE__queueServiceUri"):
        monkeypatch.delenv(name, raising=False)
    assert cli.main(["poison", "list"]) == 1
    assert "DETECTOR_STORAGE__queueServiceUri" in capsys.readouterr().err


@pytest.mark.logs
def test_each_timer_run_keeps_the_poison_queue_and_reports_it(
    log_analytics, azurite, storage_names, alerts, caplog
):
    rig = _rig(log_analytics, azurite, storage_names)
    queues = Queues(azurite, rig.settings.alert_queue)
    queues.poisoned(alerts[0])
    timer = rig.timer()
    timer.poison = PoisonQueue(poison=queues.poison, alerts=queues.alerts)
    report = timer.run(T0 + timedelta(minutes=5), Budget(60))
    assert report.outcome == "ok", report.line()
    assert (report.poison_kept, report.poison) == (1, 1)
    assert report.line().endswith("; poison queue 1")
    assert "1 alert(s) wait on the poison queue" in caplog.text
    [kept] = queues.peek(queues.poison)
    assert kept.expires_on.year == FOREVER_YEAR
