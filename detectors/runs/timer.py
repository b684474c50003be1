"""One timer cycle: read what Log Analytics ingested since the checkpoint, score it, alert.

Rows reach the workspace minutes after their event and out of order, so the timer scores
event time, not arrival: each step takes one slice of event time (`window_minutes`, on a
grid from midnight UTC) once `hold_minutes` have passed after its end, with the rows of
earlier slices that arrived since the last step (`sources.queries.Window`). A burst whose
rows arrive in several batches is judged whole, as a replay judges it; the cost is the
hold, added to every alert's delay. Each step goes through four stages, and the
checkpoint records how far it got, so a run that dies anywhere is finished by the next
one without losing or repeating work:

1. score the step against the stored baselines; keep each alert in the outbox
   (idempotent by alert id); mark the step *pending* in the checkpoint;
2. learn the step into the baselines (a baseline that already learned it is skipped);
3. put every alert of the outbox on the queue, clearing each once it is there;
4. advance the watermarks (ingestion and event time) and clear *pending*.

A run that finds a pending step does not score it again (its alerts are already kept):
it re-reads the same rows and repeats steps 2-4. The checkpoint also holds a lease, so a
second run that overlaps the first leaves at once instead of racing it; every checkpoint
write is conditional on its ETag, so even a run whose lease lapsed cannot advance it twice.

A run that caught up then deletes a bounded slice of records past retention, and gives the
poison queue's messages a copy that never expires (`delivery.poison`).

A new deployment learns before it alerts: while the checkpoint has never been advanced, each
run spends its budget on the bootstrap instead (`DETECTOR_BOOTSTRAP_DAYS` days of the
workspace, learned day by day by `backfill`, which records its progress in its own state
document and resumes there after a crash), scoring and emitting nothing. The run that
finishes it moves the checkpoint to where the bootstrap stopped reading: every row ingested
before is learned and none scored, every row ingested after is scored, none learned twice.
A backfill an operator already finished counts as the bootstrap.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from detectors.alerts.allow import AllowGate
from detectors.alerts.document import AlertDocument
from detectors.engine.scoring import Engine
from detectors.model.errors import ConflictError, DetectorError
from detectors.model.observation import Observation, RawRow
from detectors.normalize.rows import normalize_rows
from detectors.runs.backfill import CHECKPOINT_NAME as BACKFILL_NAME
from detectors.runs.backfill import backfill, recorded
from detectors.runs.checkpoint import (
    CHECKPOINT_NAME,
    Checkpoint,
    CheckpointDoc,
    StepBounds,
    bounds,
    read_checkpoint,
)
from detectors.runs.step import WindowStep
from detectors.settings.app import AppSettings
from detectors.sources import Budget, LogSource
from detectors.sources.queries import Window, grid_start
from detectors.stores import AlertRecords, AllowRuleStore, BaselineStore

log = logging.getLogger(__name__)

LEASE_MARGIN = timedelta(minutes=10)
"""A lease outlives the run's budget by this much: time to finish the step in hand."""
MAX_REPORTED_REJECTIONS = 10
PRUNE_LIMIT = 200
"""Old records each table gives up per run: at one run every 5 minutes, 57,600 a day."""

Prune = Callable[[datetime, int], int]
"""Deletes up to n records last written before a moment; returns how many it deleted."""


class RunState(Protocol):
    """The checkpoint and the outbox (`TableStore`)."""

    def get_state_with_etag(self, name: str) -> tuple[dict[str, Any] | None, str | None]:
        """The checkpoint and its ETag."""
        ...

    def put_state_if(self, name: str, value: Mapping[str, Any], etag: str | None) -> str:
        """Conditional replace; ConflictError when another run changed it."""
        ...

    def hold(self, alert: AlertDocument) -> None:
        """Keep an alert until it is on the queue."""
        ...

    def held(self) -> Any:
        """Alerts waiting for the queue."""
        ...

    def release(self, alert_id: str) -> None:
        """Forget an alert that is on the queue."""
        ...


class Queue(Protocol):
    """Where alerts go (`AlertQueue`)."""

    def send(self, alert: AlertDocument) -> None:
        """Enqueue durably, or DeliveryFailed."""
        ...


class Poison(Protocol):
    """The alert queue's poison queue (`PoisonQueue`)."""

    def keep(self) -> int:
        """Give each message that would expire a copy that never does; how many."""
        ...

    def depth(self) -> int:
        """About how many messages wait there."""
        ...


@dataclass(kw_only=True, slots=True)
class RunReport:
    """What one run did, for its log line and for `detector run --json`."""

    run_id: str
    outcome: str = "ok"
    """ok | behind (budget spent, more to read) | learning (the bootstrap is not finished:
    nothing was scored) | skipped (another run holds the lease) | failed"""
    error: str | None = None
    watermark_before: str | None = None
    watermark_after: str | None = None
    """How far ingestion time was read, before and after the run."""
    scored_through: str | None = None
    """How far event time was scored after the run (`hold_minutes` behind what was read)."""
    windows: int = 0
    resumed: int = 0
    rows: int = 0
    rejected: int = 0
    rejections: list[str] = field(default_factory=list)
    observations: int = 0
    principals: int = 0
    alerts: int = 0
    enqueued: int = 0
    queries: int = 0
    retries: int = 0
    splits: int = 0
    allowed: dict[str, int] = field(default_factory=dict)
    """Alerts that allow rules kept off the queue, by rule id (each is also logged)."""
    expired_rules: list[str] = field(default_factory=list)
    invalid_rules: list[str] = field(default_factory=list)
    """Rules in the allow table that are too broad or incomplete: never applied."""
    rules_error: str | None = None
    """Why no allow rule was applied this run (the table could not be read), if so."""
    pruned: int = 0
    """Alert and delivery records past the retention period deleted by this run."""
    prune_error: str | None = None
    """Why deleting old records failed this run, if it did (the next run tries again)."""
    learned_days: int | None = None
    learning_days: int | None = None
    """With a bootstrap in progress or finished by this run: days learned, and in all."""
    poison: int | None = None
    """Alerts waiting on the poison queue (None: not looked at this run)."""
    poison_kept: int = 0
    """Poison messages this run gave a copy that never expires."""

    def line(self) -> str:
        """One summary line for the log."""
        return (
            f"run {self.run_id}: {self.outcome}; windows {self.windows} (resumed {self.resumed}); "
            f"rows {self.rows} ({self.rejected} rejected); observations {self.observations}; "
            f"principals {self.principals}; alerts {self.alerts}; "
            f"allowed by rules {sum(self.allowed.values())}; enqueued {self.enqueued}; "
            f"queries {self.queries} ({self.retries} retried, {self.splits} split); "
            f"old records deleted {self.pruned}; "
            f"{self._progress()}"
            + (
                f"; bootstrap {self.learned_days} of {self.learning_days} day(s) learned"
                if self.learning_days is not None
                else ""
            )
            + (f"; poison queue {self.poison}" if self.poison is not None else "")
            + (f"; error: {self.error}" if self.error else "")
        )

    def _progress(self) -> str:
        """How far ingestion was read and event time scored, in words when nothing is."""
        before, after = self.watermark_before, self.watermark_after
        if before is None and after is None:
            read = "nothing read yet (no checkpoint)"
        elif before == after:
            read = f"read up to {after} (unchanged)"
        else:
            read = f"read {before or 'from the first-run lookback'} -> {after}"
        scored = self.scored_through
        return f"{read}; events scored through {scored or 'nothing yet'}"


class TimerRun:
    """Runs timer cycles against one workspace, one store, one outbox and one queue."""

    def __init__(
        self,
        *,
        source: LogSource,
        store: BaselineStore,
        state: RunState,
        queue: Queue,
        settings: AppSettings,
        run_id: str | None = None,
        allow: AllowRuleStore | None = None,
        records: AlertRecords | None = None,
        prune: Sequence[Prune] = (),
        poison: Poison | None = None,
    ) -> None:
        """`allow` holds the operators' allow rules; `records` keeps what feedback needs of
        each alert (both optional: without them every alert goes out, unrecorded). Each of
        `prune` deletes a slice of old records after a run that caught up; `poison`'s
        messages are kept from expiring."""
        self.source = source
        self.store = store
        self.state = state
        self.queue = queue
        self.settings = settings
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self.allow = allow
        self.records = records
        self.prune = tuple(prune)
        self.poison = poison
        self._gate = AllowGate(rules=(), now=datetime.now(UTC))
        self._hits_written: dict[str, int] = {}

    def run(self, now: datetime, budget: Budget) -> RunReport:
        """One cycle; never raises for Azure trouble: the report says what failed."""
        report = RunReport(run_id=self.run_id)
        try:
            self._run(now, budget, report)
        except ConflictError as err:
            report.outcome, report.error = "skipped", f"another run advanced the checkpoint: {err}"
        except DetectorError as err:
            report.outcome, report.error = "failed", str(err)
        return report

    def _run(self, now: datetime, budget: Budget, report: RunReport) -> None:
        s = self.settings
        found, etag = self.state.get_state_with_etag(CHECKPOINT_NAME)
        checkpoint = Checkpoint(self.state, read_checkpoint(found), etag)
        doc = checkpoint.doc
        lease = doc.get("lease")
        owner = lease.get("owner") if lease else None
        if lease and owner not in (None, self.run_id) and _time(lease["until"]) > now:
            report.outcome = "skipped"
            report.error = f"run {owner} holds the lease until {lease['until']}"
            return
        doc["lease"] = {
            "owner": self.run_id,
            "until": _iso(now + timedelta(seconds=s.run_budget_seconds) + LEASE_MARGIN),
        }
        checkpoint.save()
        report.watermark_before = doc.get("watermark")
        self._open_gate(now, report)
        try:
            if self._bootstrapped(checkpoint, now, budget, report):
                self._windows(checkpoint, now, budget, report)
            self._keep_poison(report)
            self._housekeeping(now, budget, report)
        finally:
            report.watermark_after = checkpoint.saved.get("watermark")
            report.scored_through = checkpoint.saved.get("eventWatermark")
            try:
                checkpoint.release()
            except DetectorError as err:  # the lease lapses on its own
                log.warning("could not release the lease: %s", err)

    def _bootstrapped(
        self, checkpoint: Checkpoint, now: datetime, budget: Budget, report: RunReport
    ) -> bool:
        """Whether this run may score: the bootstrap is finished (or off, or the checkpoint
        was advanced before); otherwise learn the next days of it, within the budget."""
        s = self.settings
        doc = checkpoint.doc
        if s.bootstrap_days == 0 or doc.get("watermark") or doc.get("pending"):
            return True
        found = recorded(self.store.get_state(BACKFILL_NAME))
        # A backfill that ended longer ago than the bootstrap would reach back is not gone on
        # from (that would score every day since, at once): the recent days are learned
        # instead, and baselines skip what they learned already.
        stale = found is not None and found.until < now - timedelta(days=s.bootstrap_days)
        if found is None or not found.finished or stale:
            learned = backfill(
                source=self.source,
                store=self.store,
                settings=s.detection,
                days=s.bootstrap_days,
                now=now,
                lateness=timedelta(hours=s.lateness_hours),
                settle=timedelta(seconds=s.settle_seconds),
                budget=budget,
                progress=lambda day: log.info("bootstrap %s", day.text),
            )
            report.queries += learned.queries
            report.rows += learned.rows
            report.rejected += learned.rejected
            report.learned_days, report.learning_days = learned.done, learned.days
            found = recorded(self.store.get_state(BACKFILL_NAME))
            if found is None or not found.finished:
                report.outcome = "learning"
                return False
        # Every row ingested before `until` was learned; event time cannot run ahead of
        # ingestion, so scoring goes on from there in both.
        doc["watermark"] = doc["eventWatermark"] = _iso(found.until)
        if found.engine:
            doc["engine"] = dict(found.engine)
        checkpoint.save()
        log.info("bootstrap finished: learned through %s; scoring from there", doc["watermark"])
        return True

    def _keep_poison(self, report: RunReport) -> None:
        """Keep poison messages from expiring, and count them (never fails the run)."""
        if self.poison is None or report.outcome == "failed":
            return
        try:
            report.poison_kept = self.poison.keep()
            report.poison = self.poison.depth()
        except DetectorError as err:
            log.warning("poison queue not looked at this run: %s", err)
            return
        if report.poison:
            log.warning(
                "%d alert(s) wait on the poison queue: `detector poison list`", report.poison
            )

    def _housekeeping(self, now: datetime, budget: Budget, report: RunReport) -> None:
        """Delete a bounded slice of records past retention, once the run has caught up.

        Never fails the run: old records are only housekeeping, and the next run goes on.
        """
        if report.outcome != "ok" or budget.remaining() < budget.seconds / 2:
            return
        before = now - timedelta(days=self.settings.retention_days)
        for prune in self.prune:
            try:
                report.pruned += prune(before, PRUNE_LIMIT)
            except DetectorError as err:
                report.prune_error = str(err)
                log.warning("old records not deleted this run: %s", err)

    def _windows(
        self, checkpoint: Checkpoint, now: datetime, budget: Budget, report: RunReport
    ) -> None:
        doc = checkpoint.doc
        horizon = now - timedelta(seconds=self.settings.settle_seconds)
        while True:
            pending = doc.get("pending")
            if pending:
                window = self._pending(pending)
            else:
                step = self._next_step(doc, horizon)
                if step is None:
                    return
                window = step
                if report.windows and budget.remaining() < budget.seconds / 4:
                    report.outcome = "behind"
                    return
            self._window(checkpoint, window, resume=bool(pending), budget=budget, report=report)

    def _next_step(self, doc: CheckpointDoc, horizon: datetime) -> Window | None:
        """The step after the checkpoint, once its events have settled; None before then.

        The checkpoint holds how far ingestion time was read (`watermark`) and how far
        event time was scored (`eventWatermark`). A checkpoint written before steps had an
        event range carries only the first: every row ingested before it was read, so
        event time is scored from there on.
        """
        s = self.settings
        size = timedelta(minutes=s.window_minutes)
        hold = timedelta(minutes=s.hold_minutes)
        if doc.get("watermark"):
            read = _time(doc["watermark"])
            scored = _time(doc.get("eventWatermark") or doc["watermark"])
        else:
            scored = grid_start(horizon - timedelta(minutes=s.first_run_lookback_minutes), size)
            read = scored + hold
        end = grid_start(scored, size) + size
        # A shorter hold than before never moves the ingestion cut back.
        until = max(end + hold, read)
        if until > horizon:
            return None
        return Window(
            since=read,
            until=until,
            lateness=timedelta(hours=s.lateness_hours),
            event_since=scored,
            event_until=end,
        )

    def _pending(self, pending: StepBounds) -> Window:
        """The step a crashed run scored but did not finish (a checkpoint written before
        steps had an event range read the rows ingested in its window, whatever their
        event time)."""
        until = _time(pending["until"])
        event_since = _time(pending.get("eventSince") or pending["until"])
        return Window(
            since=_time(pending["since"]),
            until=until,
            lateness=timedelta(hours=self.settings.lateness_hours),
            event_since=event_since,
            event_until=_time(pending.get("eventUntil") or pending["until"]),
        )

    def _window(
        self,
        checkpoint: Checkpoint,
        window: Window,
        *,
        resume: bool,
        budget: Budget,
        report: RunReport,
    ) -> None:
        s = self.settings
        doc = checkpoint.doc
        rows, fetched = self.source.fetch(window, budget)
        report.queries += fetched.queries
        report.retries += fetched.retries
        report.splits += fetched.splits
        report.rows += len(rows)
        observations = self._normalize(rows, report)

        engine = Engine(settings=s.detection, track_actions=False, late_rows=True)
        if doc.get("engine"):
            engine.restore_state(doc["engine"])
        step = WindowStep(engine, self.store)
        result, judged = step.score(observations, emit=not resume, since=window.event_since)
        report.observations += result.observations
        report.principals += result.principals
        if resume:
            report.resumed += 1
        else:
            records = []
            for alert in step.admitted(result, self._gate):
                self.state.hold(alert)
                report.alerts += 1
                # One line per alert: the workbook counts them by detection and severity.
                log.info(
                    "alert %s held: detection %s, severity %s, principal %s",
                    alert["id"],
                    alert["detection"],
                    alert["severity"],
                    alert["principal"]["id"],
                )
                records.append(step.record(alert, judged))
            if self.records is not None and records:
                self.records.record_alerts(records)
            doc["pending"] = bounds(window)
            # The engine as this scoring left it: a run that finishes the step after a crash
            # scores it again only to learn what the crash left unlearned (baselines the
            # crashed run saved may have learned the step already, and would judge it
            # otherwise), and goes on from this state, not from its own.
            doc["pendingEngine"] = engine.export_state()
            checkpoint.save()
            self._count_hits(report)

        step.learn(judged, through=window.until)
        report.enqueued += self._drain()
        doc["watermark"] = _iso(window.until)
        if window.event_until is not None:
            doc["eventWatermark"] = _iso(window.event_until)
        scored_state = doc.get("pendingEngine") if resume else None
        doc["engine"] = scored_state or engine.export_state()
        doc["pending"] = None
        doc["pendingEngine"] = None
        report.windows += 1
        checkpoint.save()

    def _open_gate(self, now: datetime, report: RunReport) -> None:
        """This run's allow rules; an unreadable table means none (alerts go out, not lost)."""
        rules = []
        if self.allow is not None:
            try:
                rules = [stored.rule for stored in self.allow.list_rules()]
            except DetectorError as err:
                report.rules_error = str(err)
                log.warning("allow rules not applied this run: %s", err)
        self._gate = AllowGate(rules=rules, now=now, max_days=self.settings.allow_max_days)
        self._hits_written = {}
        report.expired_rules = list(self._gate.expired)
        report.invalid_rules = list(self._gate.invalid)

    def _count_hits(self, report: RunReport) -> None:
        """Add this window's allowed alerts to their rules' hit counts (best effort)."""
        report.allowed = dict(self._gate.hits)
        new = {
            rule_id: n - self._hits_written.get(rule_id, 0)
            for rule_id, n in self._gate.hits.items()
            if n > self._hits_written.get(rule_id, 0)
        }
        if not new or self.allow is None:
            return
        # A rule's last hit is when the activity it allowed happened, as after a replay.
        times = self._gate.hit_times()
        gone: list[str] = []
        for rule_id, hits in sorted(new.items()):
            try:
                gone += self.allow.record_hits({rule_id: hits}, times.get(rule_id, self._gate.now))
            except DetectorError as err:  # the counts are in the report and the log
                log.warning("could not count allow rule hits %s: %s", new, err)
                return
            self._hits_written[rule_id] = self._gate.hits[rule_id]
        if gone:
            log.warning("allow rules removed while they matched alerts: %s", ", ".join(gone))

    def _drain(self) -> int:
        """Put every held alert on the queue; DeliveryFailed leaves the rest held."""
        sent = 0
        for alert in self.state.held():
            self.queue.send(alert)
            self.state.release(str(alert["id"]))
            sent += 1
        return sent

    def _normalize(self, rows: list[RawRow], report: RunReport) -> list[Observation]:
        observations, rejected = normalize_rows(rows)
        for row in rejected:
            report.rejected += 1
            where = f"{row.source} row {row.line}: {row.reason}"
            log.warning("rejected %s", where)
            if len(report.rejections) < MAX_REPORTED_REJECTIONS:
                report.rejections.append(where)
        return observations


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _time(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
