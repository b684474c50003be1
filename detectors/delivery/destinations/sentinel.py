"""Microsoft Sentinel: each alert as one row of a custom table, through the Logs Ingestion API.

The row (`sentinel_table.row`) is posted to the data collection rule's stream with
`azure.monitor.ingestion.LogsIngestionClient`, signed in as the Function App's managed
identity (the one that reads Log Analytics and storage, `DETECTOR_STORAGE__clientId`), which
holds Monitoring Metrics Publisher on that rule alone. No key or connection string.

The client does not retry (`retry_total=0`): the notifier's own retries decide, as for every
destination, so a 429's `Retry-After`, a 5xx and a timeout mean here what they mean for the
webhook (docs/consumers.md), and the delivery ledger records the outcome. The service's
answer becomes the notifier's `Answer`; no answer at all becomes a transient error.

`IngestionSender.upload` takes any number of rows: the client splits them into calls of at
most 1 MB and uploads each; only the rows of calls that failed come back, to be retried
without sending the others twice. The notifier posts one row per alert, which stays far
below 1 MB: every value is bounded (`sentinel_table.FIELD_BYTES`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)

from detectors.clients.connections import credential
from detectors.delivery.destinations import (
    JSON,
    Connection,
    Destination,
    DestinationType,
    Request,
)
from detectors.delivery.destinations.sentinel_table import row
from detectors.delivery.digest import Digest
from detectors.delivery.errors import (
    NotifyFailed,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from detectors.delivery.transport import Answer, Sender
from detectors.model.errors import one_line
from detectors.settings.app import NotifierSettings

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.monitor.ingestion import LogsIngestionClient, LogsUploadError

log = logging.getLogger(__name__)

NAME = "sentinel"


class IngestionSender:
    """Uploads rows to one data collection rule's stream; the notifier's `Sender` for Sentinel."""

    def __init__(self, *, client: LogsIngestionClient, rule_id: str, stream: str) -> None:
        """Use a client aimed at the rule's ingestion endpoint (see `connect`)."""
        self.client = client
        self.rule_id = rule_id
        self.stream = stream

    @classmethod
    def connect(
        cls,
        *,
        endpoint: str,
        rule_id: str,
        stream: str,
        credential: TokenCredential,
        timeout_seconds: float,
        ca_path: str | None = None,
    ) -> IngestionSender:
        """A sender with its own client; `ca_path` trusts a local CA (the tests')."""
        from azure.monitor.ingestion import LogsIngestionClient  # noqa: PLC0415

        options: dict[str, Any] = {
            "retry_total": 0,  # the notifier retries, with the ledger's records
            "connection_timeout": timeout_seconds,
            "read_timeout": timeout_seconds,
        }
        if ca_path:
            options["connection_verify"] = ca_path
        client = LogsIngestionClient(endpoint=endpoint, credential=credential, **options)
        return cls(client=client, rule_id=rule_id, stream=stream)

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Answer:
        """Upload the rows in `body` (a JSON array, as `request` makes it) to the rule's
        stream; `url` is the endpoint the client was made for."""
        result = self.upload(orjson.loads(body))
        if isinstance(result.failure, NotifyFailed):
            raise result.failure
        return result.failure or Answer(status=204)

    def upload(self, rows: Sequence[Mapping[str, Any]]) -> Upload:
        """Upload rows in calls of at most 1 MB (the client splits them).

        The rows of failed calls come back with the last failure, to be retried; the rows
        of calls that succeeded are never sent again.
        """
        failed: list[Mapping[str, Any]] = []
        failures: list[Answer | NotifyFailed] = []

        def on_error(error: LogsUploadError) -> None:
            failed.extend(error.failed_logs)
            failures.append(_failure(error.error))

        try:
            self.client.upload(
                rule_id=self.rule_id,
                stream_name=self.stream,
                logs=[dict(r) for r in rows],
                on_error=on_error,
            )
        except AzureError as err:  # raised before any call: signing in, say
            return Upload(failed=list(rows), failure=_no_answer(err))
        if failed:
            log.warning(
                "%d of %d row(s) not accepted by stream %s: %s",
                len(failed),
                len(rows),
                self.stream,
                failures[-1],
            )
        return Upload(failed=failed, failure=failures[-1] if failures else None)

    def close(self) -> None:
        """Close the client's connections."""
        self.client.close()


@dataclass(frozen=True, kw_only=True, slots=True)
class Upload:
    """What an upload left undone: the rows not accepted, and why (None: every row landed)."""

    failed: list[Mapping[str, Any]]
    failure: Answer | NotifyFailed | None


def _failure(error: BaseException) -> Answer | NotifyFailed:
    """The service's answer to a failed call, or the error that means there was none."""
    if isinstance(error, HttpResponseError) and error.status_code is not None:
        headers = getattr(error.response, "headers", None) or {}
        retry_after = headers.get("Retry-After")
        lines = str(error.message or error).strip().splitlines()
        return Answer(
            status=int(error.status_code),
            retry_after=retry_after,
            excerpt=lines[0][:300] if lines else "",
        )
    return _no_answer(error)


def _no_answer(error: BaseException) -> NotifyFailed:
    """A call that got no answer: transient, except a certificate nobody trusts."""
    text = one_line(error, 200)
    if isinstance(error, ServiceRequestError | ServiceResponseError):
        if "CERTIFICATE_VERIFY_FAILED" in text:
            return PermanentDeliveryError(f"TLS certificate not trusted: {text}")
        return TransientDeliveryError(f"cannot reach the ingestion endpoint: {text}")
    if isinstance(error, ClientAuthenticationError):
        # The managed identity's endpoint gave no token: usually passing.
        return TransientDeliveryError(f"no token for the ingestion endpoint: {text}")
    return TransientDeliveryError(f"upload failed: {text}")


def _connect(settings: NotifierSettings, connection: Connection) -> Sender:
    return IngestionSender.connect(
        endpoint=settings.sentinel_endpoint or "",
        rule_id=settings.sentinel_rule_id or "",
        stream=settings.sentinel_stream,
        credential=connection.credential or credential(settings.storage.client_id),
        timeout_seconds=connection.timeout_seconds,
        ca_path=connection.ca_path,
    )


def _configured(settings: NotifierSettings) -> Destination | None:
    if not (settings.sentinel_endpoint and settings.sentinel_rule_id):
        return None
    return Destination(name=NAME, url=settings.sentinel_endpoint)


def _request(
    _destination: Destination, alert: Mapping[str, Any], _digest: Digest, now: datetime
) -> Request:
    return orjson.dumps([row(alert, delivered_at=now)]), JSON


TYPE = DestinationType(name=NAME, configured=_configured, request=_request, connect=_connect)
