"""Builds the production objects from the app settings: the one place adapters are chosen.

`function_app.py` and `detector run` both call this, so the timer and the command line
run exactly the same thing.
"""

from __future__ import annotations

from azure.core.credentials import TokenCredential
from azure.monitor.query import LogsQueryClient

from detectors.clients.connections import credential as default_credential
from detectors.clients.connections import queue_client
from detectors.delivery.ledger import TableLedger
from detectors.delivery.poison import PoisonQueue, poison_name
from detectors.delivery.queue import AlertQueue
from detectors.runs.timer import TimerRun
from detectors.settings.app import AppSettings
from detectors.sources.log_analytics import LogAnalyticsSource
from detectors.stores.table import TableStore


def build_timer(
    settings: AppSettings,
    *,
    logs_credential: TokenCredential | None = None,
    run_id: str | None = None,
) -> TimerRun:
    """A timer run wired to the workspace, tables and queue the settings name."""
    local = settings.storage.connection_string is not None  # Azurite: no deployment made them
    store = table_store(settings, create_tables=local)
    deliveries = TableLedger.from_settings(
        settings.storage, table=settings.delivery_table, create_table=local
    )
    queue = AlertQueue(client=queue_client(settings.storage, settings.alert_queue))
    if local:
        queue.ensure()
    poison = PoisonQueue(
        poison=queue_client(settings.storage, poison_name(settings.alert_queue)),
        alerts=queue.client,
    )
    return TimerRun(
        source=logs_source(settings, logs_credential),
        store=store,
        state=store,
        queue=queue,
        settings=settings,
        run_id=run_id,
        allow=store,
        records=store,
        prune=(store.prune_alert_records, deliveries.prune),
        poison=poison,
    )


def logs_source(
    settings: AppSettings, logs_credential: TokenCredential | None = None
) -> LogAnalyticsSource:
    """The workspace the settings name, through the real LogsQueryClient."""
    client = LogsQueryClient(
        logs_credential or default_credential(settings.storage.client_id),
        endpoint=settings.logs_endpoint,
        retry_total=0,  # the source retries itself, within the run's budget
        connection_timeout=15,
        read_timeout=settings.run_budget_seconds,
    )
    return LogAnalyticsSource(client=client, workspace_id=settings.workspace_id)


def table_store(settings: AppSettings, *, create_tables: bool) -> TableStore:
    """The baseline, state and allow tables the settings name."""
    return TableStore.from_settings(
        settings.storage,
        baseline_table=settings.baseline_table,
        state_table=settings.state_table,
        allow_table=settings.allow_table,
        create_tables=create_tables,
    )
