"""What one engine remembers from window to window is what the timer carries between runs.

A replay scores every window with one engine; the timer scores each run's windows with an
engine restored from the state the last run saved (plain JSON, pruned of what can no longer
change a judgement). A detection figure measured by replay holds for the timer only if the
two remember the same things, so each window here starts from a saved and restored state.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from detectors.engine.scoring import Engine
from detectors.model.observation import Observation
from detectors.runs.replay import replay
from detectors.runs.step import Judged, WindowResult, WindowStep
from detectors.settings.app import DEFAULT_HOLD_MINUTES
from detectors.settings.detection import DetectionSettings
from detectors.sources.arrival import Arrival, DelayModel
from detectors.stores.sqlite import SqliteStore
from detectors.stores.write_behind import WriteBehindStore

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "contoso-sample.jsonl.gz"
WINDOW = timedelta(minutes=15)


class RunPerWindow(WindowStep):
    """A timer run per window: the engine is rebuilt from its saved state before each."""

    restored = 0

    def score(
        self, observations: Iterable[Observation], *, emit: bool, since: datetime | None = None
    ) -> tuple[WindowResult, Judged]:
        state = json.loads(json.dumps(self.engine.export_state()))
        engine = Engine(
            settings=self.engine.settings,
            track_actions=self.engine.track_actions,
            late_rows=self.engine.late_rows,
        )
        engine.restore_state(state)
        self.engine = engine
        self.restored += 1
        return super().score(observations, emit=emit, since=since)


def _alerts(step: WindowStep, arrival: Arrival) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []
    replay(
        [str(SAMPLE)], step=step, sink=sent.append, window=WINDOW, learning_days=14, arrival=arrival
    )
    return sent


@pytest.mark.parametrize("delays", [None, "realistic"], ids=["event order", "ingestion order"])
def test_one_engine_and_a_timer_run_per_window_send_the_same_alerts(delays):
    """The bundled sample, in event order and with Azure's delays: the same alerts, ids,
    documents and order, whether one engine scores every window or each window starts from
    the state the last one saved."""
    model = DelayModel.parse(delays, seed=7) if delays else None
    hold = timedelta(minutes=DEFAULT_HOLD_MINUTES if delays else 0)
    arrival = Arrival(window=WINDOW, hold=hold, delays=model)
    settings = DetectionSettings()
    together = _alerts(
        WindowStep(Engine(settings=settings), WriteBehindStore(SqliteStore())), arrival
    )
    runs = RunPerWindow(Engine(settings=settings), WriteBehindStore(SqliteStore()))
    apart = _alerts(runs, arrival)
    assert runs.restored > 1_000  # every window of the sample's weeks
    assert len(together) >= 10
    assert [a["id"] for a in apart] == [a["id"] for a in together]
    assert apart == together
