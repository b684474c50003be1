"""Is the detector working? What `detector status` concludes from the facts it gathered.

Pure: the facts (the checkpoint, queue depths, what each table received lately) come in,
checks with a level, a plain statement and what to do come out. A silent detector must not
pass for a quiet organisation: a timer that stopped, alerts stuck before or after the
queue, and a diagnostic setting that was never made (so a detection is blind) each get a
check of their own.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from detectors.model.observation import SourceTable

BEHIND_WARN = timedelta(minutes=30)
"""A watermark (what runs read) this far behind `now` is a warning: runs are failing or not
starting. Event time is scored `DETECTOR_HOLD_MINUTES` later still, by design."""
BEHIND_FAIL = timedelta(hours=6)
"""This far behind, the detector is failing: activity of the last hours is unscored."""
QUEUE_BACKLOG = 1000
"""More alerts than this waiting on the queue means its readers are behind or absent."""
INGESTION_QUIET = timedelta(hours=24)
"""AzureActivity with nothing new ingested for this long: the export has probably stopped."""


class Level(enum.StrEnum):
    """How a check came out; `fail` makes `detector status` exit non-zero."""

    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True, kw_only=True, slots=True)
class Check:
    """One conclusion: what was looked at, how it is, and what to do about it."""

    name: str
    level: Level
    detail: str
    action: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class Coverage:
    """What one table received over the days looked at."""

    table: SourceTable
    rows: int
    last_event: datetime | None
    last_ingested: datetime | None


@dataclass(frozen=True, kw_only=True, slots=True)
class Facts:
    """Everything `assess` needs; an `*_error` says why a fact could not be had."""

    now: datetime
    days: int
    checkpoint: Mapping[str, Any] | None = None
    outbox: int = 0
    state_error: str | None = None
    queue: str = ""
    queue_depth: int | None = None
    poison_depth: int = 0
    queue_error: str | None = None
    coverage: Sequence[Coverage] = ()
    logs_error: str | None = None
    bootstrap_days: int = 0
    """`DETECTOR_BOOTSTRAP_DAYS`: what a new deployment learns before it scores."""
    learned: tuple[int, int] | None = None
    """The bootstrap (or an operator's backfill) as recorded: days learned, days in all."""
    learned_through: datetime | None = None
    """Up to what ingestion time it learns."""
    sign_in_error: str | None = None
    """Signing in failed: the services behind it were not looked at."""


_BLIND = {
    SourceTable.AZURE_ACTIVITY: (
        Level.FAIL,
        "Send the subscription's Activity Log to this workspace (the Bicep parameter "
        "enableActivityLogExport, or a diagnostic setting with the Administrative category): "
        "both detections read it.",
    ),
    SourceTable.APP_SERVICE_AUDIT: (
        Level.WARN,
        "Enable the AppServiceAuditLogs category on the apps' diagnostic settings (the Bicep "
        "parameter enableAuditLogPolicy): without it a credential download followed by a "
        "login with the site's publishing credentials is not linked.",
    ),
    SourceTable.APP_SERVICE_FILE_AUDIT: (
        Level.WARN,
        "Enable the AppServiceFileAuditLogs category (Premium and Isolated plans only): "
        "without it WebJob files written over Kudu or FTP are invisible.",
    ),
}


def assess(facts: Facts) -> list[Check]:
    """The checks, in the order an operator reads them: runs, alerts, then the data.

    A failed sign-in is said once, in its own check: the storage and workspace checks it
    made impossible are left out rather than each blaming a role.
    """
    if facts.sign_in_error is not None:
        return [
            Check(
                name="sign-in",
                level=Level.FAIL,
                detail=facts.sign_in_error,
                action="Sign in (az login), then run `detector status` again; `-v` shows "
                "each credential that was tried.",
            )
        ]
    return [*_runs(facts), *_alerts(facts), *_data(facts)]


def worst(checks: Sequence[Check]) -> Level:
    """The most serious level among the checks."""
    levels = {check.level for check in checks}
    return next((level for level in (Level.FAIL, Level.WARN) if level in levels), Level.OK)


def _runs(facts: Facts) -> list[Check]:
    if facts.state_error is not None:
        return [
            Check(
                name="storage",
                level=Level.FAIL,
                detail=facts.state_error,
                action="Check DETECTOR_STORAGE (or DETECTOR_STORAGE__tableServiceUri) and that "
                "you hold Storage Table Data Contributor on the account (the deployment grants "
                "it to operatorsPrincipalId).",
            )
        ]
    doc = facts.checkpoint or {}
    watermark = moment(doc.get("watermark"))
    if watermark is None and facts.bootstrap_days:
        return [_learning(facts)]
    if watermark is None:
        return [
            Check(
                name="last run",
                level=Level.WARN,
                detail="no run has scored a window yet",
                action="A new deployment scores its first window at the next scheduled run; "
                "if this lasts, read the detector_timer invocations in Application Insights "
                "or run `detector run` by hand.",
            )
        ]
    behind = facts.now - watermark
    level = Level.FAIL if behind > BEHIND_FAIL else Level.WARN if behind > BEHIND_WARN else Level.OK
    # Event time is scored a hold after ingestion: say both, and judge by what was read.
    scored = moment(doc.get("eventWatermark")) or watermark
    checks = [
        Check(
            name="last run",
            level=level,
            detail=f"activity scored up to {_when(scored)} ({_ago(facts.now - scored)} ago), "
            f"rows read up to {_when(watermark)} ({_ago(behind)} ago)",
            action=""
            if level is Level.OK
            else "Runs are failing or not starting: read the detector_timer invocations in "
            "Application Insights, or run `detector run` by hand to see the error.",
        )
    ]
    pending = doc.get("pending")
    if pending:
        checks.append(
            Check(
                name="interrupted window",
                level=Level.WARN,
                detail=f"the window {pending.get('since')} .. {pending.get('until')} was "
                "interrupted after scoring",
                action="The next run finishes it without scoring it again; if it stays, "
                "`detector run` shows why.",
            )
        )
    lease = doc.get("lease") or {}
    until = moment(lease.get("until"))
    if until is not None and until > facts.now:
        checks.append(
            Check(
                name="running",
                level=Level.OK,
                detail=f"run {lease.get('owner')} holds the lease until {_when(until)}",
            )
        )
    return checks


def _learning(facts: Facts) -> Check:
    """A new deployment learning the workspace before it scores (the timer's bootstrap)."""
    if facts.learned is None:
        return Check(
            name="bootstrap",
            level=Level.WARN,
            detail=f"not started: the first run learns the last {facts.bootstrap_days} day(s) "
            "of the workspace before anything is scored",
            action="A new deployment starts at its next scheduled run; if this lasts, read the "
            "detector_timer invocations in Application Insights or run `detector run` by hand.",
        )
    done, days = facts.learned
    through = _when(facts.learned_through)
    if done >= days:
        return Check(
            name="bootstrap",
            level=Level.OK,
            detail=f"learned {days} day(s) through {through}; the next run scores from there",
        )
    return Check(
        name="bootstrap",
        level=Level.WARN,
        detail=f"learning: {done} of {days} day(s) learned (through {through}); no alerts "
        "until it ends",
        action="Each run learns the next days within its budget; if the count stops, "
        "`detector run` shows why.",
    )


def _alerts(facts: Facts) -> list[Check]:
    checks = []
    if facts.state_error is None:
        checks.append(
            Check(
                name="outbox",
                level=Level.WARN if facts.outbox else Level.OK,
                detail=f"{facts.outbox} alert(s) scored but not yet on the queue",
                action="The next run sends them; if the number stays, the queue cannot be "
                "written (the identity needs Storage Queue Data Contributor)."
                if facts.outbox
                else "",
            )
        )
    if facts.queue_error is not None:
        checks.append(
            Check(
                name="alert queue",
                level=Level.FAIL,
                detail=facts.queue_error,
                action="Check DETECTOR_ALERT_QUEUE and the identity's Storage Queue Data "
                "Contributor role; alerts wait in the outbox meanwhile.",
            )
        )
        return checks
    depth = facts.queue_depth or 0
    checks.append(
        Check(
            name="alert queue",
            level=Level.WARN if depth > QUEUE_BACKLOG else Level.OK,
            detail=f"{depth} alert(s) waiting on {facts.queue}",
            action="Its readers are behind or absent; the alerts wait (they never expire)."
            if depth > QUEUE_BACKLOG
            else "",
        )
    )
    if facts.poison_depth:
        checks.append(
            Check(
                name="poison queue",
                level=Level.FAIL,
                detail=f"{facts.poison_depth} alert(s) on {facts.queue}-poison: delivery failed "
                "five times, nobody has them",
                action="Read them (`detector poison list`) and the notifier's errors in "
                "Application Insights, fix the destination, then `detector poison requeue "
                "--all` (destinations that already have an alert are skipped).",
            )
        )
    return checks


def _data(facts: Facts) -> list[Check]:
    if facts.logs_error is not None:
        return [
            Check(
                name="workspace",
                level=Level.FAIL,
                detail=facts.logs_error,
                action="Check LOG_ANALYTICS_WORKSPACE_ID and that you hold Log Analytics "
                "Reader on the workspace (the deployment grants it to operatorsPrincipalId).",
            )
        ]
    checks = []
    for seen in facts.coverage:
        name = seen.table.value
        if seen.rows == 0:
            level, action = _BLIND[seen.table]
            checks.append(
                Check(
                    name=name,
                    level=level,
                    detail=f"no rows the detections read in the last {facts.days} day(s)",
                    action=action,
                )
            )
            continue
        detail = (
            f"{seen.rows:,} row(s) in the last {facts.days} day(s); last event "
            f"{_when(seen.last_event)}, last ingested {_when(seen.last_ingested)}"
        )
        quiet = (
            seen.table is SourceTable.AZURE_ACTIVITY
            and seen.last_ingested is not None
            and facts.now - seen.last_ingested > INGESTION_QUIET
        )
        checks.append(
            Check(
                name=name,
                level=Level.WARN if quiet else Level.OK,
                detail=detail,
                action="Nothing new for a day: check that the Activity Log export still runs."
                if quiet
                else "",
            )
        )
    return checks


def render(checks: Sequence[Check]) -> str:
    """The checks as lines an operator reads: level, name, detail, and what to do."""
    lines = []
    for check in checks:
        lines.append(f"  {check.level.value:<5} {check.name:<24} {check.detail}")
        if check.action:
            lines.append(f"  {'':<5} {'':<24} -> {check.action}")
    return "\n".join(lines) + "\n"


def moment(value: Any) -> datetime | None:
    """A datetime, or ISO 8601 text of one (`Z` allowed); None for anything else."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment is not None else "never"


def _ago(span: timedelta) -> str:
    minutes = max(int(span.total_seconds() // 60), 0)
    if minutes < 120:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h {minutes % 60} min"
    return f"{minutes // 1440} days"
