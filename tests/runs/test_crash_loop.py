"""The timer killed anywhere, again and again, with storage outages and a faulty workspace:
nothing lost, nothing sent twice, and the checkpoint consistent.

A kill is emulated in process: from a chosen call on (to the store, the checkpoint, the
queue or the workspace, before or after the call takes effect), every call of the dead run
fails, its clean-up included, as nothing runs after a SIGKILL. An outage is the same with
the error each adapter raises when its service is down (storage, queue, workspace), which
the run must survive and report. Between them the workspace fails (503); the next run
comes when the last one's lease has lapsed.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from detectors.model.errors import DeliveryFailed, QueryFailed, StoreError
from detectors.runs.timer import LEASE_MARGIN
from detectors.sources import Budget
from tests.runs.test_ingestion_order import T0, _harvests, _queue
from tests.runs.test_timer_end_to_end import Rig, _la_row

pytestmark = [pytest.mark.azurite, pytest.mark.logs]


class Killed(BaseException):
    """The process died here (not an Exception: nothing may catch it and go on)."""


class Fuse:
    """Blows at the `at`-th call; every call after it fails too: the process is dead, or
    (with `outage`) the services are down and each adapter raises its own error."""

    def __init__(self, at: int, rng: random.Random, *, outage: bool = False) -> None:
        self.at, self.rng, self.outage, self.calls, self.blown = at, rng, outage, 0, False

    def tick(self, down: type[Exception]) -> None:
        if not self.blown:
            self.calls += 1
            self.blown = self.calls >= self.at
        if self.blown:
            raise down("the service is unreachable") if self.outage else Killed


class Mortal:
    """A part of the run that dies with it: each call may be the last, before or after it
    takes effect."""

    def __init__(self, inner: Any, fuse: Fuse, down: type[Exception]) -> None:
        self._inner, self._fuse, self._down = inner, fuse, down

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._inner, name)
        if not callable(attribute):
            return attribute
        fuse, down = self._fuse, self._down

        def call(*args: Any, **kwargs: Any) -> Any:
            after = fuse.rng.random() < 0.5
            if not after:
                fuse.tick(down)
            result = attribute(*args, **kwargs)
            if after:
                fuse.tick(down)
            return result

        return call


def _mortal_run(rig: Rig, minutes: int, fuse: Fuse | None) -> Callable[[], Any]:
    timer = rig.timer()
    if fuse is not None:
        timer.source = Mortal(timer.source, fuse, QueryFailed)
        timer.store = Mortal(timer.store, fuse, StoreError)
        timer.state = Mortal(timer.state, fuse, StoreError)
        timer.queue = Mortal(timer.queue, fuse, DeliveryFailed)
    return lambda: timer.run(T0 + timedelta(minutes=minutes), Budget(60))


def test_a_timer_killed_anywhere_with_a_faulty_workspace_loses_and_repeats_nothing(
    five_minute_rig: Rig,
):
    rig = five_minute_rig
    rows, arrivals, _ = _harvests(seed=8, late_share=0.1)
    for row, arrival in zip(rows, arrivals, strict=True):
        rig.la.add_rows("AzureActivity", [_la_row(row)], ingested_at=arrival)
    expected = {row["Caller"] for row in rows}
    rng = random.Random(8)
    # Each run comes once the one before can no longer hold the lease.
    lease = LEASE_MARGIN + timedelta(seconds=rig.settings.run_budget_seconds)
    every = int(lease / timedelta(minutes=1)) + 1
    # A first run that lives sets where reading starts (a deployment whose runs all died
    # would start over each time, `first_run_lookback_minutes` back).
    assert _mortal_run(rig, 5, None)().outcome == "ok"
    minutes, kills, outages = 5 + every, 0, 0
    for _attempt in range(20):
        if rng.random() < 0.3:
            rig.la.fail(503, times=rng.randint(1, 4))
        fuse = Fuse(rng.randint(1, 24), rng, outage=rng.random() < 0.3)
        try:
            report = _mortal_run(rig, minutes, fuse)()
        except Killed:
            kills += 1
        else:
            outages += fuse.blown
            assert report.outcome in ("ok", "behind", "failed", "skipped"), report.line()
        minutes += every
    for _attempt in range(30):  # then runs that live, until the workspace is read through
        report = _mortal_run(rig, minutes, None)()
        assert report.outcome in ("ok", "behind"), report.line()
        minutes += every
        if minutes > 6 * 60 and report.outcome == "ok":
            break
    assert kills >= 8  # the loop did kill, at many points
    assert outages >= 3  # and took the services away under running runs
    sent = _queue(rig)
    # At least once on the queue, and by id exactly once: a crash between the send and the
    # outbox hearing of it sends the same alert again, which consumers drop by id.
    by_id: dict[str, dict[str, Any]] = {}
    for alert in sent:
        assert by_id.setdefault(alert["id"], alert) == alert, "one id, two different alerts"
    assert {alert["principal"]["id"] for alert in by_id.values()} == expected, "an alert lost"
    checkpoint = rig.checkpoint()
    assert checkpoint.get("pending") is None
    assert checkpoint["eventWatermark"] <= checkpoint["watermark"]
    assert not rig.state().held()  # nothing left in the outbox
