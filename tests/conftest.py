"""Shared fixtures: run rows in the real export format through the real replay path."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from detectors.engine.scoring import Engine
from detectors.runs.replay import ReplayStats, replay
from detectors.runs.step import WindowStep
from detectors.settings.detection import DetectionSettings
from detectors.stores.sqlite import SqliteStore
from tests.rowkit import write_ndjson

# Real local stand-ins for Azure services, each a fixture module of its own.
pytest_plugins = [
    "tests.services.azurite",
    "tests.services.log_analytics",
    "tests.services.functions_host",
    "tests.services.webhook_receiver",
    "tests.services.logs_ingestion",
]

Replayer = Callable[..., tuple[list[dict[str, Any]], ReplayStats]]


@pytest.fixture
def run_rows(tmp_path: Path) -> Replayer:
    """Write rows as an NDJSON export and replay them; returns (alerts, stats)."""

    def run(
        rows: Iterable[dict[str, Any]],
        *,
        learning_days: int = 14,
        settings: DetectionSettings | None = None,
        window: timedelta = timedelta(minutes=15),
    ) -> tuple[list[dict[str, Any]], ReplayStats]:
        path = write_ndjson(tmp_path / f"rows-{len(list(tmp_path.iterdir()))}.jsonl", rows)
        alerts: list[dict[str, Any]] = []
        store = SqliteStore()
        try:
            stats = replay(
                [str(path)],
                step=WindowStep(Engine(settings=settings or DetectionSettings()), store),
                sink=alerts.append,
                window=window,
                learning_days=learning_days,
            )
        finally:
            store.close()
        return alerts, stats

    return run
