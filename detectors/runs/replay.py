"""Replay exported logs through the engine, step by step, as the timer would see them.

Each step is a slice of event time (`window`). When replay knows when each row reached the
workspace (the export's `IngestionTime` column, or a simulated `DelayModel`), a row that
arrived after its slice's step is scored with the step that would have read it, exactly as
the timer does (`arrival.Arrival`); otherwise every row is scored with its own slice.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from detectors.alerts.allow import AllowGate
from detectors.alerts.document import AlertDocument
from detectors.model.days import day_number, day_start
from detectors.model.observation import Observation, RawRow, RejectedRow
from detectors.normalize.rows import Normalizer, Skipped, TimeBounds, early_skip
from detectors.runs.step import WindowStep
from detectors.sources import RowSource
from detectors.sources.arrival import Arrival
from detectors.sources.files import FileSource, Row
from detectors.sources.queries import grid_start
from detectors.sources.spool import Keyed, ObservationSpool

log = logging.getLogger(__name__)

MAX_REPORTED_REJECTIONS = 20


@dataclass(kw_only=True, slots=True)
class ReplayStats:
    """Counts a replay reports when it ends."""

    files: int = 0
    bytes: int = 0
    rows: int = 0
    rejected: int = 0
    rejection_reasons: Counter[str] = field(default_factory=Counter)
    rejection_examples: list[RejectedRow] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    observations: int = 0
    duplicates: int = 0
    principals: set[str] = field(default_factory=set)
    windows: int = 0
    alerts: Counter[tuple[str, str | None]] = field(default_factory=Counter)
    suppressed: int = 0
    first: datetime | None = None
    last: datetime | None = None
    learning_until: datetime | None = None
    principal_days: set[tuple[str, int]] = field(default_factory=set)
    """(principal, day) pairs with activity in the scored (not learning) windows."""
    activity: Counter[tuple[str, int]] = field(default_factory=Counter)
    """Actions per (principal, day) over the whole input, learning days included: each
    principal's history, which the replay report sets beside its alerts."""
    ingestion_times: int = 0
    """Observations whose row said when it was ingested (an `IngestionTime` column)."""
    already_replayed: int = 0
    """Observations at or before the store's watermark: a previous replay scored them."""
    records: list[dict[str, Any]] = field(default_factory=list)
    """What feedback needs of each alert sent to the sink (with `keep_records`)."""
    days: Counter[int] = field(default_factory=Counter)
    """Observations read per day (day numbers), to find days apart from the input's span."""
    apart: int = 0
    """Observations dated on days apart from the rest of the input, left out (`dense_days`)."""
    reading_seconds: float = 0.0
    """Time spent reading, normalising and ordering the rows."""
    scoring_seconds: float = 0.0
    """Time spent after reading: ordering, scoring and learning, window by window."""
    learning_seconds: float = 0.0
    """The part of `scoring_seconds` spent learning what each window judged."""

    def absorb_reading(self, other: ReplayStats) -> None:
        """Add what another reader counted of a later part of the input."""
        self.rows += other.rows
        self.rejected += other.rejected
        self.rejection_reasons.update(other.rejection_reasons)
        room = MAX_REPORTED_REJECTIONS - len(self.rejection_examples)
        self.rejection_examples.extend(other.rejection_examples[: max(room, 0)])
        self.skipped.update(other.skipped)
        self.days.update(other.days)
        self.ingestion_times += other.ingestion_times
        self.already_replayed += other.already_replayed


@dataclass(frozen=True, kw_only=True, slots=True)
class Progress:
    """Where a long replay is, for whoever shows progress."""

    phase: str
    done: int
    total: int
    rows: int


ProgressCallback = Callable[[Progress], None]
AlertSink = Callable[[AlertDocument], None]


SPLIT_BYTES = 64 * 2**20
"""An NDJSON file at least this large is read in parts, one per worker, when replay has more
than one core."""


def read_observations(
    inputs: Sequence[str | RowSource],
    stats: ReplayStats,
    spool: ObservationSpool,
    progress: ProgressCallback | None = None,
    *,
    after: datetime | None = None,
    bounds: TimeBounds | None = None,
    arrival: Arrival | None = None,
    workers: int = 1,
    split_bytes: int = SPLIT_BYTES,
) -> None:
    """Normalise every row of every file into the spool, counting what was left out and why
    (rows dated outside `bounds` among them).

    With `workers` > 1 (and the `arrival` the spool is ordered by, `steps_first`), an NDJSON
    file of at least `split_bytes` is cut into that many parts at line ends: this process
    reads the first while the others read the rest into sorted runs the spool then merges.
    The observations, counts and rejections (with their lines) are the same either way.
    """
    sources = [FileSource(i, skip=early_skip) if isinstance(i, str) else i for i in inputs]
    reader = _Reader(
        stats=stats,
        normalizer=Normalizer(bounds),
        after=after,
        progress=progress,
        total=sum(source.total_bytes for source in sources),
    )
    for source in sources:
        stats.files += 1
        if (
            arrival is not None
            and isinstance(source, FileSource)
            and (parts := _parts(source, workers, split_bytes))
        ):
            task = _PartTask(source=source, bounds=bounds, after=after, arrival=arrival)
            _read_in_parts(reader, source, parts, spool, task)
        else:
            reader.read(source, source, spool.add)
        reader.done_before += source.total_bytes
    stats.bytes = reader.total
    stats.observations = spool.count + stats.already_replayed


@dataclass(kw_only=True, slots=True)
class _Reader:
    """Normalises rows into a spool, counting them in `stats`."""

    stats: ReplayStats
    normalizer: Normalizer
    after: datetime | None
    progress: ProgressCallback | None = None
    done_before: int = 0
    """Bytes of the inputs read before the current one, for progress."""
    total: int = 0

    def read(
        self,
        rows: Iterable[Row],
        source: RowSource,
        add: Callable[[Observation], None],
        share: float = 1.0,
    ) -> None:
        """Normalise `rows` (all or, `share`, a part of `source`'s) into `add`."""
        stats, normalize, after, progress = (
            self.stats,
            self.normalizer.normalize,
            self.after,
            self.progress,
        )
        next_report = stats.rows + 20_000
        for item in rows:
            stats.rows += 1
            if stats.rows >= next_report and progress is not None:
                next_report += 20_000
                done = self.done_before + int(source.bytes_read / share)
                progress(Progress(phase="reading", done=done, total=self.total, rows=stats.rows))
            result = normalize(item) if type(item) is RawRow else item
            if type(result) is Observation:
                if result.ingested is not None:
                    stats.ingestion_times += 1
                if after is not None and result.time <= after:
                    stats.already_replayed += 1
                else:
                    add(result)
                    stats.days[day_number(result.time)] += 1
            elif type(result) is Skipped:
                stats.skipped[result.reason] += 1
            elif isinstance(result, RejectedRow):
                _reject(stats, result)


@dataclass(frozen=True, kw_only=True, slots=True)
class _PartTask:
    """What a worker needs to read a part of a file as this process would."""

    source: FileSource
    """The file, with the options this process reads it with (not yet read)."""
    bounds: TimeBounds | None
    after: datetime | None
    arrival: Arrival
    directory: str | None = None
    memory_limit: int = 250_000
    """Observations the worker holds before it spills a sorted run."""
    start: int = 0
    end: int = 0


@dataclass(frozen=True, kw_only=True, slots=True)
class _Part:
    """What a worker read of a part of a file: its counts and its sorted run."""

    stats: ReplayStats
    run: str
    count: int
    first: Observation | None
    last: Observation | None


def _read_in_parts(
    reader: _Reader,
    source: FileSource,
    parts: list[tuple[int, int]],
    spool: ObservationSpool,
    task: _PartTask,
) -> None:
    """This process reads the first part while workers read the others."""
    (start, end), rest = parts[0], parts[1:]
    # Forked, from a process with no other thread (`_can_fork`): a spawned worker would
    # import the caller's main module again, which a script calling `main` need not guard.
    with multiprocessing.get_context("fork").Pool(processes=len(rest)) as pool:
        pending = [
            pool.apply_async(
                _read_part,
                (
                    replace(
                        task,
                        start=a,
                        end=b,
                        directory=spool.directory,
                        # Both processes together keep about what one would.
                        memory_limit=max(spool.memory_limit // (2 * len(rest)), 1_000),
                    ),
                ),
            )
            for a, b in rest
        ]
        share = (end - start) / max(source.total_bytes, 1)
        try:
            reader.read(source.read_part(start, end), source, spool.add, share)
            parts_read = [job.get() for job in pending]
        except BaseException:
            # The runs of the parts read already go with the rest.
            for job in pending:
                if job.ready() and job.successful():
                    with contextlib.suppress(OSError):
                        os.unlink(job.get().run)
            raise
        for part in parts_read:
            reader.stats.absorb_reading(part.stats)
            spool.adopt(part.run, part.count, part.first, part.last)


def _read_part(task: _PartTask) -> _Part:
    """A worker's reading of part of an NDJSON file, saved as a sorted run."""
    source = task.source
    reader = _Reader(stats=ReplayStats(), normalizer=Normalizer(task.bounds), after=task.after)
    spool = ObservationSpool(
        order=steps_first(task.arrival), directory=task.directory, memory_limit=task.memory_limit
    )
    try:
        reader.read(source.read_part(task.start, task.end), source, spool.add)
        run = spool.save()
        return _Part(
            stats=reader.stats, run=run, count=spool.count, first=spool.first, last=spool.last
        )
    finally:
        spool.close()


APART_DAYS = 7
"""A gap of more days than this, with few rows before it, sets those rows apart."""
APART_ROWS = 10
APART_SHARE = 0.001
"""At most this many observations (or this share of the input, if more) may be set apart:
strays, not a period of their own."""


def dense_days(days: Mapping[int, int]) -> tuple[int, int]:
    """The first and last day of the input's own span. Days at its start that a gap of more
    than `APART_DAYS` separates from the rest, holding a stray few observations, are left
    out: one row dated years before an export would otherwise start the learning days
    there. (A stray at the end is left in: it may be what the export was made for, and
    rows dated after the run's clock are rejected when read.)"""
    ordered = sorted(days)
    most = max(APART_ROWS, sum(days.values()) * APART_SHARE)
    low, seen = 0, 0
    for i in range(len(ordered) - 1):
        seen += days[ordered[i]]
        if seen > most:
            break
        if ordered[i + 1] - ordered[i] > APART_DAYS:
            low = i + 1
    return ordered[low], ordered[-1]


def _parts(source: FileSource, workers: int, split_bytes: int) -> list[tuple[int, int]] | None:
    """Where to cut a file to read it with `workers` processes; None to read it in one."""
    if workers < 2 or not _can_fork() or source.total_bytes < split_bytes:
        return None
    return source.parts(workers)


def _can_fork() -> bool:
    """Whether reading may be shared with forked workers: on Linux, from a process running
    no other thread (a fork copies only the calling thread, and the locks others hold)."""
    return sys.platform == "linux" and threading.active_count() == 1


def _cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _reject(stats: ReplayStats, row: RejectedRow) -> None:
    stats.rejected += 1
    stats.rejection_reasons[_reason_kind(row.reason)] += 1
    if len(stats.rejection_examples) < MAX_REPORTED_REJECTIONS:
        stats.rejection_examples.append(row)
    log.debug("rejected %s:%d: %s", row.source, row.line, row.reason)


def _reason_kind(reason: str) -> str:
    """The reason without its row-specific details, for counting."""
    return reason.split(":", 1)[0].split(" {", 1)[0][:80]


def windows(
    ordered: Iterable[Keyed], arrival: Arrival
) -> Iterator[tuple[datetime, list[Observation]]]:
    """Observations in step order, each with its key from `steps_first` (whose first part
    is its step), cut into the steps that score them, each with the start of its event
    slice; then one empty step, as the timer's next run, which judges what the last one
    held back for a second look."""
    current: datetime | None = None
    batch: list[Observation] = []
    for key, obs in ordered:
        end = key[0]
        if end != current:
            if batch and current is not None:
                yield current - arrival.window, batch
            current, batch = end, []
        batch.append(obs)
    if batch and current is not None:
        yield current - arrival.window, batch
        yield current, []


def steps_first(arrival: Arrival) -> Callable[[Observation], tuple[datetime, datetime, str]]:
    """The order replay scores observations in: by step, then by event time."""
    step = arrival.step
    return lambda obs: (step(obs), obs.time, obs.event_id)


def replay(
    inputs: Sequence[str | RowSource],
    *,
    step: WindowStep,
    sink: AlertSink,
    window: timedelta,
    learning_days: int,
    progress: ProgressCallback | None = None,
    spool_limit: int = 250_000,
    after: datetime | None = None,
    allow: AllowGate | None = None,
    keep_records: bool = False,
    arrival: Arrival | None = None,
    now: datetime | None = None,
    read_workers: int | None = None,
    split_bytes: int = SPLIT_BYTES,
) -> ReplayStats:
    """Read, normalise, order and score the inputs (paths of exported files, or sources of
    rows); alerts after the learning days go to `sink`.

    With `after` (the watermark of an earlier replay into the same store), activity at or
    before it is skipped: overlapping exports are scored once. With `allow`, alerts its
    rules allow are counted there instead of reaching `sink`; with `keep_records`, what
    feedback needs of each alert is collected in `records`. `arrival` (whose window must be
    `window`) says when rows arrived: by default each is scored with its own slice. With
    `now` (the run's clock), rows dated after it or older than any workspace keeps are
    rejected (`TimeBounds`). `read_workers` processes read large NDJSON files in parts (by
    default one per core, at most two; see `read_observations`).
    """
    arrival = arrival or Arrival(window=window)
    if arrival.window != window:
        raise ValueError("the arrival's window is not the replay's")
    stats = ReplayStats()
    spool = ObservationSpool(memory_limit=spool_limit, order=steps_first(arrival))
    try:
        started = time.perf_counter()
        bounds = TimeBounds.around(now) if now is not None else None
        workers = read_workers if read_workers is not None else min(2, _cores())
        read_observations(
            inputs,
            stats,
            spool,
            progress,
            after=after,
            bounds=bounds,
            arrival=arrival,
            workers=workers,
            split_bytes=split_bytes,
        )
        stats.reading_seconds = time.perf_counter() - started
        if spool.first is None or spool.last is None:
            return stats
        low, high = dense_days(stats.days)
        keep_from, keep_until = day_start(low), day_start(high + 1)
        stats.first = max(spool.first.time, keep_from)
        # Rows that arrive late reach the engine out of event order, as in the timer.
        step.engine.late_rows = arrival.delays is not None or stats.ingestion_times > 0
        stats.learning_until = grid_start(stats.first + timedelta(days=learning_days), window)
        queued, scored = max(spool.count, 1), 0
        for start, read in windows(spool.ordered(), arrival):
            scored += len(read)
            batch = [o for o in read if keep_from <= o.time < keep_until]
            if len(batch) < len(read):
                stats.apart += len(read) - len(batch)
                if not batch:
                    continue
            emit = start >= stats.learning_until
            result, judged = step.score(batch, emit=emit, since=start)
            stats.duplicates += result.duplicates
            stats.suppressed += result.suppressed
            if batch:  # the last, empty step only judges what was held back
                if emit:
                    stats.principal_days.update((o.principal.id, day_number(o.time)) for o in batch)
                stats.windows += 1
                stats.principals.update(o.principal.id for o in batch)
                for o in batch:
                    stats.activity[o.principal.id, day_number(o.time)] += o.count
                stats.last = max(stats.last or batch[-1].time, *(o.time for o in batch))
            for alert in step.admitted(result, allow):
                stats.alerts[(alert["detection"], alert["severity"])] += 1
                if keep_records:
                    stats.records.append(step.record(alert, judged))
                sink(alert)
            learning = time.perf_counter()
            step.learn(judged)
            stats.learning_seconds += time.perf_counter() - learning
            if progress is not None and batch and stats.windows % 100 == 0:
                progress(Progress(phase="scoring", done=scored, total=queued, rows=scored))
        stats.scoring_seconds = time.perf_counter() - started - stats.reading_seconds
        return stats
    finally:
        spool.close()
