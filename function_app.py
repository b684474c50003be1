"""Azure Functions entry point: wiring only, the logic lives in `detectors/`.

- `detector_timer` runs one timer cycle on the `DETECTOR_SCHEDULE` schedule (NCRONTAB, UTC).
- `detector_notifier` delivers each alert on the `DETECTOR_ALERT_QUEUE` queue to the
  webhook, Teams, Slack and Sentinel destinations in the app settings (docs/consumers.md).

Settings are read once per invocation (never at import), and every missing or malformed
one is reported in a single error.
"""

import logging
import os
from datetime import UTC, datetime

import azure.functions as func

from detectors.delivery.notifier import Notifier
from detectors.runs.wiring import build_timer
from detectors.settings.app import STORAGE, AppSettings, NotifierSettings, unknown_settings
from detectors.sources import Budget

app = func.FunctionApp()
log = logging.getLogger("detectors.function")


@app.timer_trigger(
    schedule="%DETECTOR_SCHEDULE%", arg_name="timer", run_on_startup=False, use_monitor=True
)
def detector_timer(timer: func.TimerRequest) -> None:
    """Read what Log Analytics ingested since the checkpoint, score it, enqueue alerts."""
    if timer.past_due:
        log.warning("timer is past due: the previous run overran or the app was down")
    settings = AppSettings.from_env(os.environ)
    for warning in unknown_settings(os.environ):
        log.warning("%s", warning)
    report = build_timer(settings).run(datetime.now(UTC), Budget(settings.run_budget_seconds))
    log.info("%s", report.line())
    if report.outcome == "failed":
        # Failing the invocation makes it visible in Application Insights; the next run
        # resumes from the checkpoint, which did not move past anything unfinished.
        raise RuntimeError(report.error)


@app.queue_trigger(arg_name="message", queue_name="%DETECTOR_ALERT_QUEUE%", connection=STORAGE)
def detector_notifier(message: func.QueueMessage) -> None:
    """Deliver one alert to every destination that does not have it yet.

    An exception makes the host retry the message and, after `maxDequeueCount` attempts
    (host.json), move it to `<queue>-poison`.
    """
    settings = NotifierSettings.from_env(os.environ)
    with Notifier.from_settings(settings) as notifier:
        report = notifier.handle(
            message.get_body(),
            message_id=message.id or "",
            # The worker's concrete message carries the count; the abstract type does not.
            dequeue_count=getattr(message, "dequeue_count", None) or 1,
        )
    log.info("%s", report.line())
