"""What `detector status` looks at: the deployment's checkpoint, outbox, queues and tables.

Each fact is gathered on its own, so one unreachable service still leaves the others
reported; `health.assess` turns the facts into checks.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from azure.core.credentials import TokenCredential
from azure.core.exceptions import AzureError, ResourceNotFoundError

from detectors.clients.connections import queue_client
from detectors.clients.sign_in import sign_in_problem
from detectors.delivery.poison import poison_name
from detectors.model.errors import DetectorError, SignInFailed, one_line
from detectors.model.observation import SourceTable
from detectors.runs.backfill import CHECKPOINT_NAME as BACKFILL_NAME
from detectors.runs.backfill import recorded
from detectors.runs.checkpoint import CHECKPOINT_NAME
from detectors.runs.health import Coverage, Facts, moment
from detectors.runs.wiring import logs_source, table_store
from detectors.settings.app import AppSettings
from detectors.sources import Budget
from detectors.sources.queries import coverage_query

STATUS_BUDGET_SECONDS = 60
"""How long the workspace queries of one status may take, retries included."""


def gather(
    settings: AppSettings,
    *,
    now: datetime,
    days: int,
    logs_credential: TokenCredential | None = None,
) -> Facts:
    """The facts about the deployment the settings describe, as of `now`."""
    facts: dict[str, Any] = {
        "now": now,
        "days": days,
        "queue": settings.alert_queue,
        "bootstrap_days": settings.bootstrap_days,
    }
    try:
        store = table_store(settings, create_tables=False)
        try:
            facts["checkpoint"], _ = store.get_state_with_etag(CHECKPOINT_NAME)
            facts["outbox"] = len(store.held())
            learning = recorded(store.get_state(BACKFILL_NAME))
            if learning is not None:
                facts["learned"] = learning.days
                facts["learned_through"] = learning.until
        finally:
            store.close()
    except SignInFailed as err:
        # Said once: every other service would fail the same way.
        return Facts(**facts, sign_in_error=str(err))
    except DetectorError as err:
        facts["state_error"] = str(err)
    try:
        facts["queue_depth"] = _depth(settings, settings.alert_queue)
    except ResourceNotFoundError:
        facts["queue_error"] = f"queue {settings.alert_queue} does not exist"
    except (AzureError, SignInFailed) as err:
        if (problem := sign_in_problem(err)) is not None:
            return Facts(**facts, sign_in_error=problem)
        facts["queue_error"] = f"queue {settings.alert_queue}: {one_line(err)}"
    try:
        facts["poison_depth"] = _depth(settings, poison_name(settings.alert_queue))
    except ResourceNotFoundError:
        facts["poison_depth"] = 0  # the host makes it with the first poison message
    except (AzureError, SignInFailed) as err:
        facts.setdefault("queue_error", f"poison queue: {one_line(err)}")
    try:
        source = logs_source(settings, logs_credential)
        since = now - timedelta(days=days)
        budget = Budget(STATUS_BUDGET_SECONDS)
        facts["coverage"] = [
            _coverage(
                table,
                *source.tabulate(
                    table.value, coverage_query(table, since, now), (since, now), budget
                ),
            )
            for table in SourceTable
        ]
    except SignInFailed as err:
        return Facts(**facts, sign_in_error=str(err))
    except DetectorError as err:
        facts["logs_error"] = str(err)
    return Facts(**facts)


def _depth(settings: AppSettings, queue: str) -> int:
    with queue_client(settings.storage, queue, retries=1) as client:
        return int(client.get_queue_properties().approximate_message_count or 0)


def _coverage(table: SourceTable, columns: list[str], rows: list[Any]) -> Coverage:
    values = dict(zip(columns, rows[0], strict=False)) if rows else {}
    return Coverage(
        table=table,
        rows=int(values.get("Rows") or 0),
        last_event=moment(values.get("LastEvent")),
        last_ingested=moment(values.get("LastIngested")),
    )
