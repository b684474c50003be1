"""A replay that keeps its baselines in memory as working state, learning into them window
after window and encoding them once at the end, alerts and stores what a replay that writes
every baseline out and reads it back each window does."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from detectors.baselines.codec import to_properties
from detectors.engine.scoring import Engine
from detectors.runs.replay import replay
from detectors.runs.step import WindowStep
from detectors.settings.detection import DetectionSettings
from detectors.sources.arrival import Arrival, DelayModel
from detectors.stores import BaselineStore
from detectors.stores.sqlite import SqliteStore
from detectors.stores.write_behind import WriteBehindStore

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "contoso-sample.jsonl.gz"


def _replay(store: BaselineStore, inner: SqliteStore, *, delays: bool) -> tuple[list[Any], Any]:
    window = timedelta(minutes=15)
    arrival = Arrival(
        window=window, delays=DelayModel.parse("realistic", seed=7) if delays else None
    )
    alerts: list[dict[str, Any]] = []
    replay(
        [str(SAMPLE)],
        step=WindowStep(Engine(settings=DetectionSettings()), store),
        sink=alerts.append,
        window=window,
        learning_days=14,
        arrival=arrival,
    )
    if isinstance(store, WriteBehindStore):
        store.flush()
    stored = sorted(
        (to_properties(held.baseline) for held in inner.all_baselines()),
        key=lambda props: props["PrincipalId"],
    )
    return alerts, stored


@pytest.mark.parametrize("delays", [False, True], ids=["event order", "ingestion order"])
def test_baselines_learned_in_place_give_the_alerts_and_baselines_of_a_store_read_each_window(
    delays: bool,
) -> None:
    cached = SqliteStore()
    direct = SqliteStore()
    try:
        in_memory = _replay(WriteBehindStore(cached), cached, delays=delays)
        read_back = _replay(direct, direct, delays=delays)
    finally:
        cached.close()
        direct.close()
    assert in_memory[0]
    assert in_memory == read_back
