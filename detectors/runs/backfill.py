"""Bootstrap: build baselines from the last N days in Log Analytics, emitting no alerts.

Day by day of ingestion time (the timer's own queries, one window a day), oldest first:
score without emitting, learn, then record the day in a checkpoint (state `backfill`).
An interrupted backfill resumes at the first day not recorded. Each day is learned with
its end as `learned_through`, so a day that is read again (a crash between learning and
the checkpoint, or a second backfill) teaches nothing twice, and a baseline the timer has
already advanced past a day skips it: run backfill before the timer's first run.

Query limits are the source's business: three queries a day, a result too large for the
service is split, throttling is retried within each day's budget, and a failed or partial
result stops the backfill with the checkpoint on the last complete day.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any

from detectors.engine.scoring import Engine
from detectors.model.days import day_windows
from detectors.model.errors import DetectorError
from detectors.model.observation import Observation, RawRow
from detectors.normalize.rows import normalize_rows
from detectors.runs.progress import DayDone, DayProgress
from detectors.runs.step import WindowStep
from detectors.settings.detection import DetectionSettings
from detectors.sources import Budget, LogSource
from detectors.sources.queries import Window
from detectors.stores import BaselineStore

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "backfill"
CHECKPOINT_VERSION = 1
MAX_DAYS = 365


@dataclass(kw_only=True, slots=True)
class BackfillReport:
    """What a backfill did."""

    since: str
    until: str
    days: int
    done: int = 0
    resumed_from: str | None = None
    rows: int = 0
    rejected: int = 0
    observations: int = 0
    principals: set[str] = field(default_factory=set)
    queries: int = 0

    def line(self) -> str:
        """One summary line."""
        resumed = f" (resumed from {self.resumed_from})" if self.resumed_from else ""
        return (
            f"backfill {self.since} .. {self.until}{resumed}: {self.done} of {self.days} day(s) "
            f"learned; rows {self.rows:,} ({self.rejected:,} rejected); observations "
            f"{self.observations:,}; principals {len(self.principals):,}; queries "
            f"{self.queries:,}; no alerts are emitted by a backfill"
        )


def plan(days: int, now: datetime, settle: timedelta) -> tuple[datetime, datetime]:
    """The ingestion span of a new backfill: N whole UTC days before today, and today so far."""
    if not 1 <= days <= MAX_DAYS:
        raise DetectorError(f"--days {days}: give a number of days from 1 to {MAX_DAYS}")
    today = datetime.combine(now.astimezone(UTC).date(), time(), tzinfo=UTC)
    return today - timedelta(days=days), now - settle


def backfill(
    *,
    source: LogSource,
    store: BaselineStore,
    settings: DetectionSettings,
    days: int,
    now: datetime,
    lateness: timedelta,
    settle: timedelta = timedelta(minutes=2),
    day_budget_seconds: float = 900,
    progress: DayProgress | None = None,
    budget: Budget | None = None,
) -> BackfillReport:
    """Learn the span day by day, resuming an unfinished backfill recorded in `store`.

    Each day gets `day_budget_seconds`, unless `budget` is given: then the days share it, and
    once half of it is spent no new day is started (the timer's bootstrap: a slice per run,
    the report's `done` short of `days` until the last one).
    """
    since, until = plan(days, now, settle)
    checkpoint = store.get_state(CHECKPOINT_NAME)
    engine = Engine(settings=settings, track_actions=False)
    step = WindowStep(engine, store)
    done_through = since
    resumed_from = None
    if _unfinished(checkpoint):
        assert checkpoint is not None
        since, until = _time(checkpoint["since"]), _time(checkpoint["until"])
        done_through = _time(checkpoint["doneThrough"])
        resumed_from = done_through.isoformat()
        if checkpoint.get("engine"):
            engine.restore_state(checkpoint["engine"])
    windows = day_windows(since, until)
    report = BackfillReport(
        since=since.isoformat(),
        until=until.isoformat(),
        days=len(windows),
        resumed_from=resumed_from,
    )
    report.done = sum(1 for _, end in windows if end <= done_through)
    doc: dict[str, Any] = {
        "version": CHECKPOINT_VERSION,
        "since": since.isoformat(),
        "until": until.isoformat(),
        "doneThrough": done_through.isoformat(),
    }
    started = 0
    for number, (start, end) in enumerate(windows, start=1):
        if end <= done_through:
            continue
        if budget is not None and started and budget.remaining() < budget.seconds / 2:
            break
        started += 1
        window = Window(since=start, until=end, lateness=lateness)
        rows, fetched = source.fetch(window, budget or Budget(day_budget_seconds))
        observations = _normalize(rows, report)
        _, judged = step.score(observations, emit=False)
        step.learn(judged, through=end)
        doc["doneThrough"] = end.isoformat()
        doc["engine"] = engine.export_state()
        store.put_state(CHECKPOINT_NAME, doc)
        report.done += 1
        report.rows += len(rows)
        report.observations += len(observations)
        report.principals.update(o.principal.id for o in observations)
        report.queries += fetched.queries
        if progress is not None:
            progress(
                DayDone(
                    number=number,
                    total=len(windows),
                    left=len(windows) - report.done,
                    text=(
                        f"day {number}/{len(windows)} {start:%Y-%m-%d}: {len(rows):,} rows, "
                        f"{len({o.principal.id for o in observations}):,} principals, "
                        f"{fetched.queries} queries ({fetched.retries} retried, "
                        f"{fetched.splits} split)"
                    ),
                )
            )
    return report


@dataclass(frozen=True, kw_only=True, slots=True)
class Recorded:
    """A backfill as its checkpoint records it: the ingestion span it learns, how far it
    got, and the engine's state where it stopped."""

    since: datetime
    until: datetime
    done_through: datetime
    engine: Mapping[str, Any] | None

    @property
    def finished(self) -> bool:
        """Whether every day of the span was learned."""
        return self.done_through >= self.until

    @property
    def days(self) -> tuple[int, int]:
        """Days learned, and days in all."""
        windows = day_windows(self.since, self.until)
        return sum(1 for _, end in windows if end <= self.done_through), len(windows)


def recorded(checkpoint: Mapping[str, Any] | None) -> Recorded | None:
    """The backfill a checkpoint records (None: none, or one this version cannot read)."""
    if not checkpoint or checkpoint.get("version") != CHECKPOINT_VERSION:
        return None
    try:
        return Recorded(
            since=_time(checkpoint["since"]),
            until=_time(checkpoint["until"]),
            done_through=_time(checkpoint["doneThrough"]),
            engine=checkpoint.get("engine"),
        )
    except (KeyError, TypeError, ValueError):
        return None


def _unfinished(checkpoint: Mapping[str, Any] | None) -> bool:
    if not checkpoint or checkpoint.get("version") != CHECKPOINT_VERSION:
        return False
    try:
        return _time(checkpoint["doneThrough"]) < _time(checkpoint["until"])
    except (KeyError, TypeError, ValueError):
        return False


def _normalize(rows: list[RawRow], report: BackfillReport) -> list[Observation]:
    observations, rejected = normalize_rows(rows)
    for row in rejected:
        report.rejected += 1
        log.warning("rejected %s row %d: %s", row.source, row.line, row.reason)
    return observations


def _time(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
