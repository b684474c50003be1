"""A new deployment learns before it alerts, on real protocols (the local HTTPS Log
Analytics endpoint through the real LogsQueryClient, Azurite tables and queue): the timer
learns `DETECTOR_BOOTSTRAP_DAYS` of the workspace a slice per run, sends nothing until the
bootstrap ends, then scores from where it stopped; its baselines are those a manual
`detector backfill` of the same days builds, also after the run is killed mid-bootstrap;
and an operator's finished backfill is not learned again."""

from __future__ import annotations

import logging
import random
from datetime import timedelta
from typing import Any

import pytest

from detectors.model.errors import DeliveryFailed, QueryFailed, StoreError
from detectors.runs.backfill import CHECKPOINT_NAME as BACKFILL_NAME
from detectors.runs.backfill import backfill, recorded
from detectors.runs.health import Level, assess
from detectors.runs.status import gather
from detectors.runs.timer import LEASE_MARGIN, TimerRun
from detectors.sources import Budget
from detectors.stores.table import TableStore
from tests.rowkit import PUBLISHXML, Actor, activity, site_id
from tests.runs.test_crash_loop import Fuse, Killed, Mortal
from tests.runs.test_timer_end_to_end import (
    STRANGER_A,
    STRANGER_B,
    T0,
    Rig,
    _harvest,
    _la_row,
    _principals,
    _rig,
)
from tests.test_monitoring import _patterns as monitoring_patterns

pytestmark = [pytest.mark.azurite, pytest.mark.logs]

DAYS = 3
DEV = Actor(caller="dev@contoso.com", ip="198.51.100.20", name="Dev One")
PRINCIPALS = [DEV.caller, STRANGER_A]


@pytest.fixture
def rig(log_analytics, azurite, storage_names) -> Rig:
    """A deployment that learns the last three days before it scores."""
    return _rig(log_analytics, azurite, storage_names, DETECTOR_BOOTSTRAP_DAYS=str(DAYS))


def seed_history(la: Any) -> None:
    """Three weeks' worth of habit in three days: Dev takes app1's publish profile each
    morning, and a stranger harvests five sites the day before (alert-worthy, if scored)."""
    for days_ago in range(1, DAYS + 1):
        when = (T0 - timedelta(days=days_ago)).replace(hour=9)
        rows = activity(DEV, when, PUBLISHXML, site_id("app1"))
        la.add_rows(
            "AzureActivity", [_la_row(r) for r in rows], ingested_at=when + timedelta(minutes=5)
        )
    yesterday = T0 - timedelta(days=1, hours=4)
    _harvest(la, STRANGER_A, yesterday, ingested=yesterday + timedelta(minutes=6))


class Clock:
    """A monotonic clock that moves only when the workspace answers: each read spends 40 of
    a run's 60 seconds, so a run learns exactly one day (no wall-clock time involved)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Spending:
    """The run's workspace, each read advancing the clock."""

    def __init__(self, inner: Any, clock: Clock) -> None:
        self.inner, self.clock = inner, clock

    def fetch(self, window: Any, budget: Budget) -> Any:
        found = self.inner.fetch(window, budget)
        self.clock.now += 40
        return found


def one_day_run(rig: Rig, minutes: float, *, timer: TimerRun | None = None) -> Any:
    clock = Clock()
    timer = timer or rig.timer()
    timer.source = Spending(timer.source, clock)
    return timer.run(T0 + timedelta(minutes=minutes), Budget(60, clock=clock))


def baselines(store: TableStore) -> dict[str, Any]:
    return {k: v.baseline for k, v in store.load(PRINCIPALS).items()}


def manual_backfill(rig: Rig, tables: dict[str, str], *, until: Any) -> TableStore:
    """`detector backfill --days 3` into other tables, planned to end where `until` is."""
    store = TableStore(connection_string=rig.connection_string, **tables)
    settle = timedelta(seconds=rig.settings.settle_seconds)
    backfill(
        source=rig.timer().source,
        store=store,
        settings=rig.settings.detection,
        days=DAYS,
        now=until + settle,
        lateness=timedelta(hours=rig.settings.lateness_hours),
        settle=settle,
    )
    return store


@pytest.fixture
def other_tables(storage_names) -> dict[str, str]:
    return {
        "baseline_table": storage_names.table("Manual"),
        "state_table": storage_names.table("ManualState"),
    }


def test_a_new_deployment_learns_day_by_day_and_alerts_only_afterwards(rig, caplog):
    seed_history(rig.la)
    # Three whole days before today and today so far: four runs of one day each.
    for n in range(1, 4):
        report = one_day_run(rig, n)
        assert report.outcome == "learning", report.line()
        assert (report.learned_days, report.learning_days) == (n, DAYS + 1)
        assert report.windows == 0
        assert report.alerts == 0
        assert rig.alerts() == []
        assert not rig.state().held()
        assert "watermark" not in rig.checkpoint()
    last = one_day_run(rig, 4)
    assert last.outcome == "ok", last.line()
    assert "bootstrap 4 of 4 day(s) learned" in last.line()
    assert rig.alerts() == []  # the stranger of yesterday was learned, never scored
    learned = recorded(rig.state().get_state(BACKFILL_NAME))
    assert learned is not None
    assert learned.finished
    checkpoint = rig.checkpoint()
    assert checkpoint["watermark"] == checkpoint["eventWatermark"] == learned.until.isoformat()
    assert baselines(rig.state())[DEV.caller].active_days == DAYS

    # From there on, scoring: a new stranger alerts; Dev's habit and yesterday's do not.
    _harvest(rig.la, STRANGER_B, T0 + timedelta(minutes=20), ingested=T0 + timedelta(minutes=25))
    rows = activity(DEV, T0 + timedelta(minutes=21), PUBLISHXML, site_id("app1"))
    rig.la.add_rows(
        "AzureActivity", [_la_row(r) for r in rows], ingested_at=T0 + timedelta(minutes=25)
    )
    with caplog.at_level(logging.INFO, logger="detectors.runs.timer"):
        after = rig.run(45)
    assert after.outcome == "ok", after.line()
    assert after.learning_days is None  # the bootstrap is not looked at again
    assert _principals(rig.alerts()) == [STRANGER_B]
    # The line the workbook counts alerts by, as the run wrote it.
    held = [r.getMessage() for r in caplog.records if " held: " in r.getMessage()]
    assert len(held) == len(rig.alerts())
    for name, pattern in monitoring_patterns():
        if name == "alerts.kql":
            assert all(pattern.search(line) for line in held), pattern.pattern


def test_the_bootstrap_learns_what_a_manual_backfill_of_the_same_days_learns(rig, other_tables):
    seed_history(rig.la)
    minutes = 1
    while one_day_run(rig, minutes).outcome == "learning":
        minutes += 1
    learned = recorded(rig.state().get_state(BACKFILL_NAME))
    assert learned is not None
    manual = manual_backfill(rig, other_tables, until=learned.until)
    by_timer = baselines(rig.state())
    assert set(by_timer) == set(PRINCIPALS)
    assert by_timer == baselines(manual)


@pytest.mark.parametrize(
    ("dies_in", "at"), [(1, 1), (1, 4), (1, 8), (2, 2), (2, 6), (3, 9), (4, 5), (4, 10)]
)
def test_a_bootstrap_killed_midway_resumes_and_learns_each_day_once(rig, other_tables, dies_in, at):
    """Run `dies_in` of the four the bootstrap takes dies at its `at`-th call to the store,
    the state, the queue or the workspace (before or after the call takes effect)."""
    seed_history(rig.la)
    lease = LEASE_MARGIN + timedelta(seconds=rig.settings.run_budget_seconds)
    every = int(lease / timedelta(minutes=1)) + 1
    for n in range(1, dies_in):
        assert one_day_run(rig, n).outcome == "learning"
    timer = rig.timer()
    fuse = Fuse(at, random.Random(at))
    timer.source = Mortal(timer.source, fuse, QueryFailed)
    timer.store = Mortal(timer.store, fuse, StoreError)
    timer.state = Mortal(timer.state, fuse, StoreError)
    timer.queue = Mortal(timer.queue, fuse, DeliveryFailed)
    with pytest.raises(Killed):
        one_day_run(rig, dies_in, timer=timer)
    minutes = dies_in + every
    for _ in range(10):  # the next runs, once the dead run's lease has lapsed
        report = one_day_run(rig, minutes)
        assert report.outcome in ("learning", "ok", "behind"), report.line()
        minutes += every
        if report.outcome != "learning":
            break
    assert report.outcome != "learning"
    assert rig.alerts() == []
    learned = recorded(rig.state().get_state(BACKFILL_NAME))
    assert learned is not None
    assert learned.finished
    manual = manual_backfill(rig, other_tables, until=learned.until)
    assert baselines(rig.state()) == baselines(manual)


def test_a_backfill_the_operators_finished_is_the_bootstrap(rig, caplog):
    seed_history(rig.la)
    store = rig.state()
    settle = timedelta(seconds=rig.settings.settle_seconds)
    earlier = T0 - timedelta(hours=2)
    backfill(
        source=rig.timer().source,
        store=store,
        settings=rig.settings.detection,
        days=7,
        now=earlier,
        lateness=timedelta(hours=24),
        settle=settle,
    )
    before = baselines(store)
    queries = len(rig.la.requests)
    with caplog.at_level(logging.INFO, logger="detectors.runs.timer"):
        report = rig.run(1)
    assert report.outcome == "ok", report.line()
    assert report.learning_days is None  # nothing learned again
    assert f"learned through {(earlier - settle).isoformat()}" in caplog.text
    # Scored from 07:59 (where the backfill stopped) to 10:00: 07:59-08:00, then every 15 min.
    assert report.windows == 1 + 8
    assert rig.checkpoint()["watermark"] == T0.isoformat()
    # The timer went on from the backfill's end: its steps read, they did not relearn.
    assert baselines(store)[DEV.caller].active_days == before[DEV.caller].active_days
    assert len(rig.la.requests) > queries
    assert _principals(rig.alerts()) == []


def test_a_backfill_too_old_to_go_on_from_is_followed_by_a_bootstrap_of_the_recent_days(rig):
    seed_history(rig.la)
    store = rig.state()
    long_ago = T0 - timedelta(days=DAYS + 2)
    backfill(
        source=rig.timer().source,
        store=store,
        settings=rig.settings.detection,
        days=2,
        now=long_ago,
        lateness=timedelta(hours=24),
        settle=timedelta(seconds=rig.settings.settle_seconds),
    )
    report = one_day_run(rig, 1)
    assert report.outcome == "learning", report.line()  # not days of scoring at once
    assert report.learning_days == DAYS + 1
    minutes = 2
    while one_day_run(rig, minutes).outcome == "learning":
        minutes += 1
    assert rig.alerts() == []
    assert baselines(store)[DEV.caller].active_days == DAYS


def test_status_shows_how_far_the_bootstrap_got(rig, monkeypatch):
    seed_history(rig.la)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(rig.la.ca_path))
    assert one_day_run(rig, 1).outcome == "learning"
    facts = gather(
        rig.settings, now=T0 + timedelta(minutes=2), days=7, logs_credential=rig.la.credential
    )
    found = {c.name: c for c in assess(facts)}
    assert found["bootstrap"].level is Level.WARN
    assert found["bootstrap"].detail.startswith(f"learning: 1 of {DAYS + 1} day(s) learned")
    assert "last run" not in found  # nothing is scored yet: not a run that stopped
