"""Clients for the storage account and the workspace, built from the app settings.

Production signs in with the Function's user-assigned managed identity (no keys);
local runs and tests use a connection string (Azurite's). `TableStore` builds its own
table clients from the same settings.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from azure.core.credentials import TokenCredential
from azure.storage.queue import QueueClient

from detectors.clients import sign_in
from detectors.model.errors import ConfigurationError, redact
from detectors.settings.app import StorageSettings

if TYPE_CHECKING:
    from azure.storage.blob import BlobServiceClient

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
    """The managed identity named by `client_id` where one can be had (in Azure), else
    DefaultAzureCredential's choice (`az login` on a laptop); see `sign_in`."""
    return sign_in.credential(client_id, os.environ)


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


BLOB_API_VERSION = "2025-11-05"
"""Accepted by Azure and by Azurite 3.35, as for the queue."""
ARCHIVE_CONNECTION_STRING = "AZURE_STORAGE_CONNECTION_STRING"
"""Where `--archive env` finds the archive's connection string (the name the Azure CLI
reads): a connection string holds the account key, so never on a command line."""


def archive_service(target: str, environ: Mapping[str, str]) -> BlobServiceClient:
    """The Blob service of the storage account that diagnostic settings archive logs to:
    `target` is its blob endpoint (signed in with Entra ID, as `az login` or a managed
    identity allows), or `env` for the connection string in `ARCHIVE_CONNECTION_STRING`."""
    from azure.storage.blob import BlobServiceClient  # noqa: PLC0415 - only replay --archive

    if target == "env":
        text = environ.get(ARCHIVE_CONNECTION_STRING, "")
        if not text:
            raise ConfigurationError(
                f"--archive env: {ARCHIVE_CONNECTION_STRING} is not set; set it to the storage "
                "account's connection string, or give the account's blob endpoint "
                "(https://ACCOUNT.blob.core.windows.net) to sign in with Entra ID"
            )
        try:
            return BlobServiceClient.from_connection_string(
                text, api_version=BLOB_API_VERSION, **_TIMEOUTS
            )
        except ValueError as err:
            raise ConfigurationError(
                f"{ARCHIVE_CONNECTION_STRING} is not a connection string Blob Storage reads "
                f"({redact(str(err))})"
            ) from None
    if not target.startswith(("https://", "http://")):
        raise ConfigurationError(
            f"--archive {target[:60]!r}: expected the account's blob endpoint "
            "(https://ACCOUNT.blob.core.windows.net) or `env`"
        )
    return BlobServiceClient(
        account_url=target,
        credential=credential(),
        api_version=BLOB_API_VERSION,
        **_TIMEOUTS,
    )
