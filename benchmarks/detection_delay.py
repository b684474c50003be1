"""Detection delay of the timer: from the event to its alert on the queue.

The timer scores a slice of event time only once its late rows are in (`hold_minutes`), so
every alert waits for the hold, the rest of its slice, the settle time and the next run.
This measures that wait through the real path: the local HTTPS Log Analytics endpoint (real
`LogsQueryClient`), Azurite tables and queue, the timer run on its schedule in simulated
time. Thirty service principals never seen before each harvest publish profiles over two
and a half hours; every row reaches the workspace after a delay drawn as Azure delays them
(mostly 3-10 minutes, a tail to 25). After each run the queue is read, and each new alert
is timed from its last event and from its first. Nothing is asserted.

    .venv/bin/python -m benchmarks.detection_delay [--hold 20] [--window 15] [--every 5]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from azure.storage.queue import QueueClient

from detectors.clients.connections import QUEUE_API_VERSION
from detectors.delivery.queue import AlertQueue, decode
from detectors.normalize.rows import parse_time
from detectors.runs.timer import TimerRun
from detectors.settings.app import DEFAULT_HOLD_MINUTES, AppSettings
from detectors.sources import Budget
from detectors.sources.arrival import DelayModel
from detectors.sources.log_analytics import LogAnalyticsSource
from detectors.stores.table import TableStore
from tests.rowkit import harvest_bursts
from tests.services.azurite import Azurite
from tests.services.log_analytics import LogAnalytics, _Server
from tests.services.tls import serving

START = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hold", type=int, default=DEFAULT_HOLD_MINUTES, help="minutes")
    parser.add_argument("--window", type=int, default=15, help="minutes of event time a step")
    parser.add_argument("--every", type=int, default=5, help="minutes between runs")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    emulator = Azurite()
    emulator.start()
    folder = Path(tempfile.mkdtemp(prefix="detector-delay-"))
    try:
        with serving(_Server, folder, "log-analytics") as endpoint:
            workspace = LogAnalytics(
                endpoint=endpoint.url, ca_path=endpoint.ca_path, workspace_id=str(uuid.uuid4())
            )
            endpoint.server.workspace = workspace
            try:
                delays = _run(args, workspace, emulator)
            finally:
                endpoint.server.workspace = None
                workspace.release()
    finally:
        emulator.stop()
    _report(args, delays)


def _run(
    args: argparse.Namespace, workspace: LogAnalytics, emulator: Azurite
) -> list[tuple[timedelta, timedelta]]:
    model = DelayModel.parse("realistic", seed=args.seed)
    rows, arrivals = [], []
    for action in harvest_bursts(random.Random(args.seed), START):
        arrival = action.time + model.delay(f"{action.principal}@{action.time.isoformat()}")
        for row in action.rows:
            rows.append({k: v for k, v in row.items() if k != "Type"})
            arrivals.append(arrival)
    workspace.add_rows("AzureActivity", rows, arrivals=arrivals)
    settings = AppSettings.from_env(
        {
            "LOG_ANALYTICS_WORKSPACE_ID": workspace.workspace_id,
            "LOG_ANALYTICS_ENDPOINT": workspace.endpoint,
            "DETECTOR_STORAGE": emulator.connection_string,
            "DETECTOR_WINDOW_MINUTES": str(args.window),
            "DETECTOR_HOLD_MINUTES": str(args.hold),
            "DETECTOR_FIRST_RUN_LOOKBACK_MINUTES": "60",
            "DETECTOR_BOOTSTRAP_DAYS": "0",
        }
    )
    store = TableStore(
        connection_string=emulator.connection_string,
        baseline_table=settings.baseline_table,
        state_table=settings.state_table,
    )
    client = QueueClient.from_connection_string(
        emulator.connection_string, settings.alert_queue, api_version=QUEUE_API_VERSION
    )
    queue = AlertQueue(client=client)
    queue.ensure()
    timer = TimerRun(
        source=LogAnalyticsSource(client=workspace.client(), workspace_id=workspace.workspace_id),
        store=store,
        state=store,
        queue=queue,
        settings=settings,
    )
    found: list[tuple[timedelta, timedelta]] = []
    last_event = max(arrivals) + timedelta(minutes=args.hold + 2 * args.window)
    now = START + timedelta(minutes=args.every)
    while now <= last_event:
        report = timer.run(now, Budget(300))
        if report.outcome != "ok":
            raise SystemExit(f"run at {now:%H:%M}: {report.line()}")
        for message in client.receive_messages(max_messages=32, visibility_timeout=3600):
            alert = decode(message.content)
            found.append(
                (now - parse_time(alert["lastSeen"]), now - parse_time(alert["firstSeen"]))
            )
        now += timedelta(minutes=args.every)
    return found


def _report(args: argparse.Namespace, delays: list[tuple[timedelta, timedelta]]) -> None:
    print(
        f"hold {args.hold} min, steps of {args.window} min, a run every {args.every} min, "
        f"settle {AppSettings.__dataclass_fields__['settle_seconds'].default} s; "
        f"{len(delays)} alert(s)"
    )
    for label, values in (
        ("last event", [d[0] for d in delays]),
        ("first event", [d[1] for d in delays]),
    ):
        minutes = [v.total_seconds() / 60 for v in values]
        if not minutes:
            print(f"  from the {label}: no alert")
            continue
        print(
            f"  from the {label} to the queue: median {statistics.median(minutes):.1f} min, "
            f"worst {max(minutes):.1f} min, best {min(minutes):.1f} min"
        )


if __name__ == "__main__":
    main()
