"""`detector backfill`: baselines from the last N days of Log Analytics (the local HTTPS
endpoint, through the real LogsQueryClient) into Table Storage (Azurite), day by day, no
alerts, and resumable: an interrupted backfill finishes without counting a day twice."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from detectors.cli import tuning as cli_tuning
from detectors.cli.main import main
from detectors.model.errors import QueryFailed
from detectors.runs.backfill import CHECKPOINT_NAME, backfill
from detectors.runs.progress import DayDone
from detectors.settings.detection import DetectionSettings
from detectors.sources.log_analytics import LogAnalyticsSource
from detectors.stores.table import TableStore
from tests.cli.test_baselines_cli import one_line_error
from tests.rowkit import PUBLISHXML, Actor, activity, site_id

pytestmark = [pytest.mark.azurite, pytest.mark.logs]

NOW = datetime(2026, 10, 5, 12, tzinfo=UTC)
DEV = Actor(caller="dev@contoso.com", ip="198.51.100.20", name="Dev One")


def seed(la: Any) -> None:
    """Dev takes app1's publish profile at 10:00 on each of the four days up to NOW."""
    for days_ago in range(4):
        when = (NOW - timedelta(days=days_ago)).replace(hour=10)
        rows = activity(DEV, when, PUBLISHXML, site_id("app1"))
        la.add_rows(
            "AzureActivity",
            [{k: v for k, v in r.items() if k != "Type"} for r in rows],
            ingested_at=when + timedelta(minutes=5),
        )


def source(la: Any) -> LogAnalyticsSource:
    return LogAnalyticsSource(
        client=la.client(retry_total=0), workspace_id=la.workspace_id, backoff_seconds=0.01
    )


def store(azurite: Any, names: dict[str, str]) -> TableStore:
    return TableStore(connection_string=azurite.connection_string, **names)


@pytest.fixture
def tables(storage_names) -> dict[str, str]:
    return {
        "baseline_table": storage_names.table("Baselines"),
        "state_table": storage_names.table("State"),
    }


class Interrupted(QueryFailed):
    pass


class StopsAfter:
    """A source that fails once it has answered `days` windows (an outage mid-backfill)."""

    def __init__(self, inner: LogAnalyticsSource, days: int) -> None:
        self.inner, self.left = inner, days

    def fetch(self, window, budget):
        if self.left == 0:
            raise Interrupted("Log Analytics went away")
        self.left -= 1
        return self.inner.fetch(window, budget)


def test_backfill_learns_each_day_and_emits_nothing(log_analytics, azurite, tables):
    seed(log_analytics)
    target = store(azurite, tables)
    lines: list[DayDone] = []
    report = backfill(
        source=source(log_analytics),
        store=target,
        settings=DetectionSettings(),
        days=3,
        now=NOW,
        lateness=timedelta(hours=24),
        progress=lines.append,
    )
    assert report.days == 4  # three whole days, and today up to now
    assert report.done == 4
    assert report.queries >= 12
    assert [line.text.split(":")[0] for line in lines] == [
        "day 1/4 2026-10-02",
        "day 2/4 2026-10-03",
        "day 3/4 2026-10-04",
        "day 4/4 2026-10-05",
    ]
    dev = target.load([DEV.caller])[DEV.caller].baseline
    assert dev.active_days == 4
    assert dev.learned_through == NOW - timedelta(minutes=2)
    checkpoint = target.get_state(CHECKPOINT_NAME)
    assert checkpoint is not None
    assert checkpoint["doneThrough"] == checkpoint["until"]
    target.close()


def test_an_interrupted_backfill_resumes_without_counting_a_day_twice(
    log_analytics, azurite, tables
):
    seed(log_analytics)
    target = store(azurite, tables)
    common: dict[str, Any] = {
        "store": target,
        "settings": DetectionSettings(),
        "days": 3,
        "lateness": timedelta(hours=24),
    }
    with pytest.raises(Interrupted):
        backfill(source=StopsAfter(source(log_analytics), 2), now=NOW, **common)
    halfway = target.load([DEV.caller])[DEV.caller].baseline
    assert halfway.active_days == 2
    later = NOW + timedelta(hours=3)  # resumed later: the plan recorded is finished
    report = backfill(source=source(log_analytics), now=later, **common)
    assert report.resumed_from == "2026-10-04T00:00:00+00:00"
    assert report.done == 4
    dev = target.load([DEV.caller])[DEV.caller].baseline
    assert dev.active_days == 4
    assert dev.operations == 4
    target.close()


def test_the_backfill_command_reports_progress_and_refuses_bad_days(
    log_analytics, azurite, tables, monkeypatch, capsys
):
    seed(log_analytics)
    monkeypatch.setattr(cli_tuning, "logs_source", lambda settings: source(log_analytics))
    monkeypatch.setattr(cli_tuning, "clock", lambda: NOW)
    monkeypatch.setenv("DETECTOR_BASELINE_TABLE", tables["baseline_table"])
    monkeypatch.setenv("DETECTOR_STATE_TABLE", tables["state_table"])
    spec = f"table:{azurite.connection_string}"
    assert main(["backfill", "--days", "0", "--store", spec]) == 2
    assert "give a number of days from 1 to 365" in capsys.readouterr().err
    assert main(["backfill", "--days", "2", "--store", spec, "--json"]) == 0
    captured = capsys.readouterr()
    assert "day 1/" in captured.err
    assert "no alerts are emitted by a backfill" in captured.err
    assert json.loads(captured.out)["principals"] == 1


def test_backfill_needs_a_workspace(monkeypatch, capsys, tmp_path):
    monkeypatch.delenv("LOG_ANALYTICS_WORKSPACE_ID", raising=False)
    assert main(["backfill", "--days", "2", "--store", f"sqlite:{tmp_path / 's.db'}"]) == 1
    assert "LOG_ANALYTICS_WORKSPACE_ID is not set" in one_line_error(capsys)
