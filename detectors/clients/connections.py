"""Clients for the storage account and the workspace, built from the app settings.

Production signs in with the Function's user-assigned managed identity (no keys);
local runs and tests use a connection string (Azurite's). `TableStore` builds its own
table clients from the same settings.
"""

from __future__ import annotations

from typing import Any

from azure.core.credentials import TokenCredential
from azure.storage.queue import QueueClient

from detectors.model.errors import ConfigurationError
from detectors.settings.app import StorageSettings

QUEUE_API_VERSION = "2025-11-05"
"""Accepted by Azure and by Azurite 3.35 (the SDK's newer default is refused by Azurite)."""
_TIMEOUTS: dict[str, Any] = {
    "connection_timeout": 10,
    "read_timeout": 30,
    "retry_total": 3,
    # The storage SDK's own back-off waits 15, 18 and 24 s: almost a minute per operation
    # against a queue that is down, a quarter of a run's budget. 1, 3 and 5 s instead.
    "initial_backoff": 1,
    "increment_base": 2,
}


def credential(client_id: str | None = None) -> TokenCredential:
    """The managed identity named by `client_id`, or DefaultAzureCredential's choice."""
    # azure.identity takes a quarter of a second to import; only signing in needs it, not
    # replay, the operators' local commands or a run on a connection string.
    from azure.identity import (  # noqa: PLC0415
        DefaultAzureCredential,
        ManagedIdentityCredential,
    )

    if client_id:
        return ManagedIdentityCredential(client_id=client_id)
    return DefaultAzureCredential()


def queue_client(storage: StorageSettings, queue: str, *, retries: int = 3) -> QueueClient:
    """A client for one queue, by connection string or by identity.

    `retries` failed attempts are tried again, after 1, 3, 5 s; a quick look (`detector
    status`) passes fewer.
    """
    options = {**_TIMEOUTS, "retry_total": retries}
    if storage.connection_string:
        try:
            return QueueClient.from_connection_string(
                storage.connection_string, queue, api_version=QUEUE_API_VERSION, **options
            )
        except ValueError as err:
            raise ConfigurationError(
                f"the storage connection string is not one Queue Storage reads ({err})"
            ) from None
    return QueueClient(
        account_url=storage.queue_service_uri or "",
        queue_name=queue,
        credential=credential(storage.client_id),
        api_version=QUEUE_API_VERSION,
        **options,
    )
