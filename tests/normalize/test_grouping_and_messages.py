"""Grouping alike actions (what Log Analytics returns) and fitting alerts into queue messages."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from pathlib import Path

import orjson
import pytest

from detectors.alerts.render import MAX_MESSAGE_BYTES, fit
from detectors.delivery.queue import decode, encode
from detectors.model.errors import ConfigurationError
from detectors.model.observation import Observation, RawRow
from detectors.normalize.grouping import aggregate
from detectors.normalize.rows import Normalizer
from detectors.settings.app import APP_SETTINGS, AppSettings
from detectors.sources.files import FileSource
from tests.rowkit import POWERSHELL, PUBLISHXML, START, Actor, activity, site_id, workdays

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "samples" / "contoso-sample.jsonl.gz"
DOCS_EXAMPLE = ROOT / "docs" / "alerts.md"


def _sample_observations() -> list[Observation]:
    normalizer = Normalizer()
    found = []
    for row in FileSource(SAMPLE):
        if not isinstance(row, RawRow):
            continue
        result = normalizer.normalize(row)
        if isinstance(result, Observation):
            found.append(result)
    return found


def test_grouping_keeps_every_action_and_regroups_to_itself():
    observations = _sample_observations()
    grouped = aggregate(observations)
    assert sum(o.count for o in grouped) == len(observations)
    assert len(grouped) < len(observations)
    assert aggregate(grouped) == grouped
    # A group split over two query results (two split windows) merges back into one.
    halves = aggregate(observations[: len(observations) // 2]) + aggregate(
        observations[len(observations) // 2 :]
    )
    assert aggregate(halves) == grouped


def _harvest(count_column: bool) -> list[dict]:
    """A principal that ran CLI reads for two weeks, then pulls twelve publish profiles
    of one site in one minute: as twelve rows, or as one grouped row counting twelve."""
    dev = Actor(caller="dev@contoso.com", name="Dev")
    rows = []
    for day in workdays(START, 14):
        rows += activity(dev, day, PUBLISHXML, site_id("own"))
    thief = Actor(caller="dev@contoso.com", name="Dev", app_id=POWERSHELL, ip="203.0.113.9")
    burst = (START + timedelta(days=15)).replace(hour=3)
    pulls = [
        activity(thief, burst + timedelta(seconds=n), PUBLISHXML, site_id("pay"), with_start=False)[
            0
        ]
        for n in range(12)
    ]
    if count_column:
        grouped = dict(pulls[0])
        grouped["Count"] = 12
        pulls = [grouped]
    return rows + pulls


def test_a_grouped_row_scores_like_the_actions_it_counts(run_rows):
    one_by_one, _ = run_rows(_harvest(count_column=False), learning_days=14)
    grouped, _ = run_rows(_harvest(count_column=True), learning_days=14)
    assert one_by_one, "the burst should alert"
    assert [(a["score"], a["severity"]) for a in grouped] == [
        (a["score"], a["severity"]) for a in one_by_one
    ]
    assert [r["code"] for r in grouped[0]["reasons"]] == [
        r["code"] for r in one_by_one[0]["reasons"]
    ]
    assert grouped[0]["operations"] == one_by_one[0]["operations"]
    assert grouped[0]["operations"][0]["count"] == 12


def test_a_damaged_count_is_rejected_with_its_reason(run_rows):
    rows = _harvest(count_column=True)
    rows[-1]["Count"] = -3
    _, stats = run_rows(rows, learning_days=14)
    assert stats.rejected == 1
    assert any("Count" in reason for reason in stats.rejection_reasons)


def _example_alert() -> dict:
    text = DOCS_EXAMPLE.read_text(encoding="utf-8")
    start = text.index("```json\n") + len("```json\n")
    return json.loads(text[start : text.index("```", start)])


def test_small_alerts_go_on_the_queue_unchanged():
    alert = _example_alert()
    assert fit(alert) is alert
    assert decode(encode(alert)) == alert
    assert base64.b64decode(encode(alert)) == orjson.dumps(alert)


def test_oversized_alerts_are_trimmed_predictably_never_dropped():
    alert = _example_alert()
    alert["eventIds"] = [f"{n:032x}" for n in range(5_000)]
    alert["sourceIps"] = [f"10.0.{n // 256}.{n % 256}" for n in range(3_000)]
    trimmed = fit(alert)
    assert len(orjson.dumps(trimmed)) <= MAX_MESSAGE_BYTES
    assert trimmed["id"] == alert["id"]
    assert trimmed["reasons"] == alert["reasons"]
    assert trimmed["truncated"]["eventIds"] == 5_000
    assert trimmed["eventIds"] == alert["eventIds"][:20]
    assert fit(alert) == trimmed  # the same alert is always trimmed the same way
    message = encode(alert)
    assert len(message) <= 64 * 1024
    assert decode(message) == trimmed


def test_an_alert_that_cannot_be_trimmed_enough_keeps_what_identifies_it():
    alert = _example_alert()
    hostile = "\u202e\x00<>" * 300  # every character escapes to six bytes in JSON
    alert["reasons"] = [{"code": "X", "message": "m" * 400, "weight": 1.0}] * 400
    alert["mitre"] = [{"id": "T" * 300, "name": hostile}] * 100
    alert["principal"] = {**alert["principal"], "id": hostile, "name": hostile}
    alert["resource"] = {**alert["resource"], "id": hostile * 3}
    trimmed = fit(alert)
    assert len(orjson.dumps(trimmed)) <= MAX_MESSAGE_BYTES
    assert trimmed["truncated"]["everythingElse"] == 1
    assert trimmed["id"] == alert["id"]
    assert trimmed["detection"] == alert["detection"]
    assert trimmed["reasons"][0]["code"] == "X"
    assert len(encode(alert)) <= 64 * 1024


def test_app_settings_report_every_problem_at_once():
    with pytest.raises(ConfigurationError) as caught:
        AppSettings.from_env(
            {
                "LOG_ANALYTICS_WORKSPACE_ID": "not-a-guid",
                "DETECTOR_WINDOW_MINUTES": "soon",
                "DETECTOR_ALERT_QUEUE": "Alerts_Queue",
                "NOTIFY_WEBHOOK_URL": "https://hooks.example/x",
                "DETECTOR_ALERT_THRESHOLD": "-1",
            }
        )
    message = str(caught.value)
    for expected in (
        "LOG_ANALYTICS_WORKSPACE_ID='not-a-guid' is not a GUID",
        "storage is not configured",
        "DETECTOR_WINDOW_MINUTES='soon'",
        "DETECTOR_ALERT_QUEUE='Alerts_Queue'",
        "NOTIFY_WEBHOOK_SECRET is missing",
        "DETECTOR_ALERT_THRESHOLD",
    ):
        assert expected in message


def test_app_settings_defaults_and_identity_based_storage():
    settings = AppSettings.from_env(
        {
            "LOG_ANALYTICS_WORKSPACE_ID": "0f0e0d0c-0000-4000-8000-000000000001",
            "DETECTOR_STORAGE__tableServiceUri": "https://acct.table.core.windows.net",
            "DETECTOR_STORAGE__queueServiceUri": "https://acct.queue.core.windows.net",
            "DETECTOR_STORAGE__clientId": "11111111-2222-4333-8444-555555555555",
        }
    )
    assert settings.storage.connection_string is None
    assert settings.storage.client_id == "11111111-2222-4333-8444-555555555555"
    assert settings.alert_queue == "detector-alerts"
    assert settings.window_minutes == 15
    assert settings.schedule == "0 */5 * * * *"
    documented = (ROOT / "docs" / "settings.md").read_text(encoding="utf-8")
    missing = [name for name in APP_SETTINGS if f"`{name}`" not in documented]
    assert not missing, f"undocumented app settings: {missing}"
