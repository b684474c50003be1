"""`detector export`: a range of the workspace (the local HTTPS endpoint, through the real
LogsQueryClient) written to NDJSON with the timer's queries, split where a result is too
large, resumable, and replaying to the alerts of the rows it was made from."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from detectors.cli import tuning as cli_tuning
from detectors.cli.main import main
from detectors.model.errors import QueryFailed
from detectors.runs.export import export, state_path
from detectors.sources.log_analytics import LogAnalyticsSource
from detectors.sources.queries import EXPORT_QUERIES
from tests.cli.test_replay_cli import attack_rows
from tests.rowkit import write_ndjson

pytestmark = pytest.mark.logs

DELAY = timedelta(minutes=6)


def _time(row: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(row["TimeGenerated"].replace("0Z", "+00:00"))


def seeded(la: Any) -> list[dict[str, Any]]:
    """The attack's rows in the workspace, each ingested six minutes after its event; returns
    them as an export with those ingestion times would hold them."""
    rows = attack_rows()
    la.add_rows(
        "AzureActivity",
        [{k: v for k, v in r.items() if k != "Type"} for r in rows],
        arrivals=[_time(r) + DELAY for r in rows],
    )
    return [
        {**r, "IngestionTime": (_time(r) + DELAY).strftime("%Y-%m-%dT%H:%M:%S.%fZ")} for r in rows
    ]


def source(la: Any, **options: Any) -> LogAnalyticsSource:
    return LogAnalyticsSource(
        client=la.client(retry_total=0),
        workspace_id=la.workspace_id,
        backoff_seconds=0.01,
        queries=EXPORT_QUERIES,
        **options,
    )


def span(rows: list[dict[str, Any]]) -> tuple[str, str]:
    first = min(_time(r) for r in rows).date()
    last = max(_time(r) for r in rows).date() + timedelta(days=1)
    return first.isoformat(), last.isoformat()


def first_days(rows: list[dict[str, Any]], days: int = 4) -> tuple[datetime, datetime]:
    """The first few days of the rows: enough to split and to interrupt, quick to query."""
    since = datetime.fromisoformat(span(rows)[0]).replace(tzinfo=UTC)
    return since, since + timedelta(days=days)


class StopsAfter:
    """A source that fails once it has answered `days` windows: an outage mid-export."""

    def __init__(self, inner: LogAnalyticsSource, days: int) -> None:
        self.inner, self.left = inner, days

    def fetch(self, window: Any, budget: Any) -> Any:
        if self.left == 0:
            raise QueryFailed("Log Analytics went away")
        self.left -= 1
        return self.inner.fetch(window, budget)


def test_an_export_replays_to_the_alerts_of_the_rows_it_was_made_from(
    log_analytics: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    rows = seeded(log_analytics)
    original = write_ndjson(tmp_path / "original.jsonl", rows)
    monkeypatch.setattr(cli_tuning, "logs_source", lambda settings: source(log_analytics))
    since, until = span(rows)
    out = tmp_path / "export.jsonl"

    assert main(["export", "--since", since, "--until", until, "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "day 1/" in err
    assert "written to" in err
    assert not state_path(out).exists()

    exported = [json.loads(line) for line in out.read_text().splitlines()]
    assert exported
    assert all("IngestionTime" in r and "Count" in r for r in exported)
    a, b = tmp_path / "from-export.jsonl", tmp_path / "from-original.jsonl"
    assert main(["replay", str(out), "--out", str(a), "--quiet"]) == 0
    assert main(["replay", str(original), "--out", str(b), "--quiet"]) == 0
    alerts = [json.loads(line) for line in a.read_text().splitlines()]
    assert [x["detection"] for x in alerts] == ["appservice-credential-download"]
    assert a.read_bytes() == b.read_bytes()


def test_a_day_too_large_for_one_query_is_split_and_gives_the_same_rows(
    log_analytics: Any, tmp_path: Path
) -> None:
    rows = seeded(log_analytics)
    since, until = first_days(rows)
    whole, split = tmp_path / "whole.jsonl", tmp_path / "split.jsonl"
    lateness = timedelta(hours=24)

    plain = export(
        source=source(log_analytics), out=whole, since=since, until=until, lateness=lateness
    )
    small = export(
        source=source(log_analytics, max_rows=3),
        out=split,
        since=since,
        until=until,
        lateness=lateness,
    )

    assert plain.splits == 0
    assert small.splits > 0
    assert plain.rows > 3
    assert sorted(split.read_text().splitlines()) == sorted(whole.read_text().splitlines())


def test_an_interrupted_export_resumes_without_losing_or_repeating_a_row(
    log_analytics: Any, tmp_path: Path
) -> None:
    rows = seeded(log_analytics)
    since, until = first_days(rows)
    lateness = timedelta(hours=24)
    whole, out = tmp_path / "whole.jsonl", tmp_path / "out.jsonl"
    export(source=source(log_analytics), out=whole, since=since, until=until, lateness=lateness)

    with pytest.raises(QueryFailed):
        export(
            source=StopsAfter(source(log_analytics), days=2),
            out=out,
            since=since,
            until=until,
            lateness=lateness,
        )
    assert state_path(out).exists()
    assert out.stat().st_size > 0
    with out.open("ab") as handle:  # a crash halfway through writing the third day
        handle.write(b'{"TimeGenerated": "2026-10-0')

    report = export(
        source=source(log_analytics), out=out, since=since, until=until, lateness=lateness
    )

    assert report.resumed_from is not None
    assert out.read_bytes() == whole.read_bytes()
    assert not state_path(out).exists()


def test_an_export_refuses_to_overwrite_or_to_mix_ranges(
    log_analytics: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setattr(
        cli_tuning, "logs_source", lambda settings: StopsAfter(source(log_analytics), days=1)
    )
    out = tmp_path / "out.jsonl"
    out.write_text("keep me\n")
    assert (
        main(["export", "--since", "2026-10-01", "--until", "2026-10-03", "--out", str(out)]) == 1
    )
    assert "already exists" in capsys.readouterr().err
    assert out.read_text() == "keep me\n"

    out.unlink()
    assert (
        main(["export", "--since", "2026-10-01", "--until", "2026-10-03", "--out", str(out)]) == 1
    )
    assert "run the same command again to resume" in capsys.readouterr().err
    assert (
        main(["export", "--since", "2026-10-02", "--until", "2026-10-03", "--out", str(out)]) == 1
    )
    assert "unfinished export of 2026-10-01" in capsys.readouterr().err
