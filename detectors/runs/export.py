"""Export: a time range of the workspace, written to NDJSON as the timer reads it.

Day by day of ingestion time (the windows `backfill` reads), each table is read with the
timer's own queries plus each row's ingestion time (`EXPORT_QUERIES`): the same filters,
each action counted once, alike actions of a minute grouped. A result too large for the
service is split by the source, so no query passes the row and size limits. What is written
replays (`detector replay`) to the alerts the timer raised over the range: the rows carry
`IngestionTime`, so replay scores each with the step that read it.

Resumable: after each day the file is flushed and a state file beside it
(`<out>.export-state.json`) records how far it got and how long the file was; a second run
with the same range cuts the file back to that length and goes on from the next day. The
state file is removed when the export is complete.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from detectors.model.days import day_windows
from detectors.model.errors import DetectorError, InputError
from detectors.runs.progress import DayDone, DayProgress
from detectors.sources import Budget, LogSource
from detectors.sources.queries import Window

STATE_VERSION = 1
MAX_DAYS = 731
"""The longest range one export reads (Log Analytics keeps interactive data up to 2 years)."""


@dataclass(kw_only=True, slots=True)
class ExportReport:
    """What an export did."""

    since: datetime
    until: datetime
    days: int
    done: int = 0
    rows: int = 0
    queries: int = 0
    splits: int = 0
    retries: int = 0
    resumed_from: datetime | None = None
    out: str = ""

    def line(self) -> str:
        """One summary line."""
        resumed = f" (resumed from {self.resumed_from:%Y-%m-%d %H:%M})" if self.resumed_from else ""
        return (
            f"export {self.since:%Y-%m-%d %H:%M} .. {self.until:%Y-%m-%d %H:%M} UTC{resumed}: "
            f"{self.done} of {self.days} day(s), {self.rows:,} rows in {self.queries:,} queries "
            f"({self.splits} split, {self.retries} retried) written to {self.out}"
        )


def state_path(out: Path) -> Path:
    """Where an export's progress is kept, beside its output."""
    return out.with_name(out.name + ".export-state.json")


def export(
    *,
    source: LogSource,
    out: Path,
    since: datetime,
    until: datetime,
    lateness: timedelta,
    day_budget_seconds: float = 900,
    progress: DayProgress | None = None,
) -> ExportReport:
    """Write every row ingested in [since, until) to `out`, day by day, resuming an
    unfinished export of the same range."""
    since, until = since.astimezone(UTC), until.astimezone(UTC)
    if until <= since:
        raise InputError(
            f"nothing to export: {since:%Y-%m-%d %H:%M} is not before {until:%Y-%m-%d %H:%M}"
        )
    windows = day_windows(since, until)
    if len(windows) > MAX_DAYS:
        raise InputError(f"{len(windows)} days: export at most {MAX_DAYS} days at a time")
    state_file = state_path(out)
    state = _read_state(state_file)
    report = ExportReport(since=since, until=until, days=len(windows), out=str(out))
    done_through = since
    length = 0
    if state is not None:
        if (state.get("since"), state.get("until")) != (since.isoformat(), until.isoformat()):
            raise InputError(
                f"{out}: holds an unfinished export of {state.get('since')} .. "
                f"{state.get('until')}; run that export again to finish it, or remove {out} and "
                f"{state_file.name} to start another"
            )
        done_through = datetime.fromisoformat(state["doneThrough"])
        length = int(state["bytes"])
        report.rows = int(state.get("rows", 0))
        report.resumed_from = done_through
    elif out.exists():
        raise InputError(f"{out}: already exists; remove it or choose another --out")
    report.done = sum(1 for _, end in windows if end <= done_through)
    try:
        handle = out.open("r+b" if state is not None else "wb")
    except OSError as err:
        raise DetectorError(f"{out}: cannot write: {err.strerror}") from err
    with handle:
        if state is not None:
            if handle.seek(0, os.SEEK_END) < length:
                raise InputError(
                    f"{out}: is shorter ({handle.tell():,} bytes) than its state file says "
                    f"({length:,}); remove both and export again"
                )
            handle.truncate(length)  # rows of a day that did not finish
            handle.seek(length)
        for number, (start, end) in enumerate(windows, start=1):
            if end <= done_through:
                continue
            window = Window(since=start, until=end, lateness=lateness)
            rows, fetched = source.fetch(window, Budget(day_budget_seconds))
            rows.sort(
                key=lambda r: (str(r.fields.get("TimeGenerated")), r.table.value if r.table else "")
            )
            for row in rows:
                handle.write(orjson.dumps(row.fields, option=_TIMES_IN_UTC))
                handle.write(b"\n")
            handle.flush()
            os.fsync(handle.fileno())
            length = handle.tell()
            report.done += 1
            report.rows += len(rows)
            report.queries += fetched.queries
            report.splits += fetched.splits
            report.retries += fetched.retries
            _write_state(
                state_file,
                {
                    "version": STATE_VERSION,
                    "since": since.isoformat(),
                    "until": until.isoformat(),
                    "doneThrough": end.isoformat(),
                    "bytes": length,
                    "rows": report.rows,
                },
            )
            if progress is not None:
                progress(
                    DayDone(
                        number=number,
                        total=len(windows),
                        left=len(windows) - report.done,
                        text=(
                            f"day {number}/{len(windows)} {start:%Y-%m-%d}: {len(rows):,} rows "
                            f"({fetched.queries} queries, {fetched.splits} split, "
                            f"{fetched.retries} retried); {report.rows:,} rows so far"
                        ),
                    )
                )
    state_file.unlink(missing_ok=True)
    return report


_TIMES_IN_UTC = orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC
"""Times as Log Analytics prints them: UTC, with a Z."""


def _read_state(path: Path) -> dict[str, Any] | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as err:
        raise DetectorError(f"{path}: cannot read the export's state: {err.strerror}") from err
    try:
        state = json.loads(text)
    except ValueError:
        state = None
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
        raise InputError(
            f"{path}: not an export state this version writes; remove it and the export"
        )
    return state


def _write_state(path: Path, state: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(state), encoding="utf-8")
    os.replace(tmp, path)
