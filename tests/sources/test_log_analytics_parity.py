"""The Log Analytics source and the file source turn the same rows into the same observations.

The bundled sample is seeded into the local Log Analytics endpoint and read back through the
real LogsQueryClient with the production queries (grouped and deduplicated server-side);
the same file is read by the file source and grouped by the engine's own rules. Both must
give the same observations, action for action.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from detectors.engine.scoring import Engine
from detectors.model.observation import Observation, RawRow
from detectors.normalize.rows import Normalizer, parse_time
from detectors.runs.step import WindowStep
from detectors.settings.detection import DetectionSettings
from detectors.sources import Budget
from detectors.sources.files import FileSource
from detectors.sources.log_analytics import LogAnalyticsSource
from detectors.sources.queries import Window
from detectors.stores.sqlite import SqliteStore

pytestmark = pytest.mark.logs

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "contoso-sample.jsonl.gz"


def _normalized(rows: Iterable[RawRow | Any]) -> list[Observation]:
    normalizer = Normalizer()
    found = []
    for row in rows:
        if isinstance(row, RawRow):
            result = normalizer.normalize(row)
            if isinstance(result, Observation):
                found.append(result)
    return found


def _as_engine_sees(observations: list[Observation], *, timer: bool) -> list[Observation]:
    """What the engine scores: each action once, grouped, file changes tied to logins.

    The timer's engine trusts Log Analytics to have counted each action once; replay's
    engine does it itself.
    """
    engine = WindowStep(
        Engine(settings=DetectionSettings(), track_actions=not timer), SqliteStore()
    )
    _, scored = engine.score(observations, emit=False)
    return [o for group in scored.groups.values() for o in group]


def _comparable(observations: Iterable[Observation]) -> list[tuple[Any, ...]]:
    """Everything an observation says, except its dedupe key (grouped rows have none)."""
    return sorted(
        (
            o.event_id,
            o.time,
            o.table,
            o.operation,
            o.family,
            o.status,
            o.http_status,
            o.principal,
            o.app_id,
            o.tool,
            o.source_ip,
            o.resource,
            o.config_suffix,
            o.webjob,
            o.detail,
            o.count,
        )
        for o in observations
    )


def test_log_analytics_and_file_rows_give_the_same_observations(log_analytics):
    by_table: dict[str, list[dict[str, Any]]] = {}
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            by_table.setdefault(row.pop("Type"), []).append(row)
    for table, rows in by_table.items():
        log_analytics.add_rows(table, rows)  # ingested the moment each row happened
    times = [parse_time(r["TimeGenerated"]) for rows in by_table.values() for r in rows]
    window = Window(
        since=min(times), until=max(times) + timedelta(seconds=1), lateness=timedelta(hours=1)
    )
    source = LogAnalyticsSource(
        client=log_analytics.client(), workspace_id=log_analytics.workspace_id
    )
    rows, stats = source.fetch(window, Budget(300))
    from_logs = _as_engine_sees(_normalized(rows), timer=True)
    from_files = _as_engine_sees(_normalized(FileSource(SAMPLE)), timer=False)
    assert sum(o.count for o in from_files) > len(from_files)  # grouping did group
    assert stats.rows["AzureActivity"] < len(by_table["AzureActivity"])  # so did the service
    assert _comparable(from_logs) == _comparable(from_files)
