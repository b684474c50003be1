"""Which alerts reached which destination: idempotency records in Table Storage.

One entity per alert and destination in the delivery table (`DETECTOR_DELIVERY_TABLE`):
`PartitionKey` is the alert id (made a legal key by `encode_key`), `RowKey` the
destination (`webhook`, `teams`, `slack`, `sentinel`). Its `State` moves like this:

    (none) --claim--> claimed --sent--> delivered   (final: never sent again)
                         |
                         +--failed--> failed --claim--> claimed ...

- **claim**: created with an ETag-conditional insert, or taken over with an If-Match
  replace, so of two workers racing for the same alert and destination exactly one wins.
  A claim holds for `hold` (the notifier uses 2 minutes, longer than one destination's
  delivery with its retries can take); the loser sees it in flight, and the notifier
  waits for the record to say delivered (nothing sent) or failed (it claims and sends),
  leaving the message to the host's retry if that takes more than 30 seconds. A claim
  older than its hold, or left by an earlier attempt of the same queue message, is taken
  over: the worker that made it died or lost its record, and sending again is preferred
  to never sending.
- **delivered** is written after the destination answered 2xx; **failed** after it did
  not, with the reason, so the next attempt need not wait for the hold to pass.

The residual window (at-least-once, not exactly-once): a destination that received an
alert but whose answer was lost (a timeout after it acted), or a worker that stalls past
its hold while another takes over, or a `delivered` record that cannot be written after
a send, can each lead to a second delivery. docs/consumers.md says so to receivers.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol, Self

from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
)
from azure.data.tables import TableClient, TableEntity, TableServiceClient, UpdateMode

from detectors.clients.connections import credential
from detectors.clients.tables import (
    delete_older,
    encode_key,
    error_code,
    service_from_connection_string,
)
from detectors.model.errors import ConfigurationError, StoreError
from detectors.settings.app import StorageSettings

log = logging.getLogger(__name__)

_ERROR_CHARS = 1000
_RACES = 4


class State(StrEnum):
    """Where one alert stands with one destination."""

    CLAIMED = "claimed"
    DELIVERED = "delivered"
    FAILED = "failed"


class Busy(StrEnum):
    """Why a claim was not granted."""

    ALREADY_DELIVERED = "already delivered"
    IN_FLIGHT = "in flight elsewhere"


@dataclass(frozen=True, kw_only=True, slots=True)
class Claim:
    """The right to send one alert to one destination, until `expires`."""

    alert_id: str
    destination: str
    etag: str
    expires: datetime
    took_over: str | None = None
    """The holder whose unfinished claim this replaced, if any (a send may be repeated)."""


class DeliveryLedger(Protocol):
    """Idempotency records: claim before sending, record the outcome after."""

    def claim(
        self,
        alert_id: str,
        destination: str,
        *,
        holder: str,
        now: datetime,
        hold: timedelta,
        details: Mapping[str, str | int],
    ) -> Claim | Busy:
        """Claim the delivery, or say why not; StoreError if the records cannot be read."""
        ...

    def delivered(self, claim: Claim, *, now: datetime, status: int) -> None:
        """Record a delivery (final)."""
        ...

    def failed(self, claim: Claim, *, now: datetime, error: str) -> None:
        """Record a failed attempt, releasing the claim."""
        ...


class TableLedger:
    """The delivery records in one Azure table."""

    def __init__(self, *, client: TableClient) -> None:
        """Use an existing table client (see `from_settings`)."""
        self.client = client

    @classmethod
    def from_settings(
        cls,
        storage: StorageSettings,
        *,
        table: str,
        create_table: bool,
        timeout_seconds: float = 10.0,
        retries: int = 2,
    ) -> Self:
        """The ledger for the app settings' storage (connection string or managed identity).

        `create_table` creates the table if missing (local runs; in Azure the deployment
        made it and the identity may not create tables).
        """
        options: dict[str, Any] = {
            "connection_timeout": timeout_seconds,
            "read_timeout": timeout_seconds,
            "retry_total": retries,
            "retry_backoff_factor": 0.4,
            "retry_backoff_max": 4,
        }
        if storage.connection_string:
            service = service_from_connection_string(storage.connection_string, **options)
        elif storage.table_service_uri:
            service = TableServiceClient(
                endpoint=storage.table_service_uri,
                credential=credential(storage.client_id),
                **options,
            )
        else:
            raise ConfigurationError("storage settings name no table service")
        if not create_table:
            return cls(client=service.get_table_client(table))
        with _errors(table, "create the table"):
            return cls(client=service.create_table_if_not_exists(table))

    def claim(
        self,
        alert_id: str,
        destination: str,
        *,
        holder: str,
        now: datetime,
        hold: timedelta,
        details: Mapping[str, str | int],
    ) -> Claim | Busy:
        """Claim the delivery: create the record, or take over a failed or abandoned one."""
        key = encode_key(alert_id)
        table = self.client.table_name
        expires = now + hold
        for _ in range(_RACES):
            with _errors(table, f"read the delivery of {alert_id} to {destination}"):
                try:
                    current: TableEntity | None = self.client.get_entity(key, destination)
                except ResourceNotFoundError as err:
                    if error_code(err) == "TableNotFound":
                        raise
                    current = None
            entity = {
                "PartitionKey": key,
                "RowKey": destination,
                "AlertId": alert_id,
                "Destination": destination,
                "State": State.CLAIMED.value,
                "Holder": holder,
                "ClaimedAt": now,
                "ClaimExpires": expires,
                "Attempts": 1,
                **details,
            }
            if current is None:
                with _errors(table, f"claim the delivery of {alert_id} to {destination}"):
                    try:
                        created = self.client.create_entity(entity)
                    except ResourceExistsError:
                        continue  # another worker created it first: read what it says
                return Claim(
                    alert_id=alert_id,
                    destination=destination,
                    etag=str(created["etag"]),
                    expires=expires,
                )
            state = str(current.get("State", ""))
            if state == State.DELIVERED:
                return Busy.ALREADY_DELIVERED
            previous = str(current.get("Holder", ""))
            held_until = current.get("ClaimExpires")
            if (
                state == State.CLAIMED
                and previous != holder
                and isinstance(held_until, datetime)
                and held_until > now
            ):
                return Busy.IN_FLIGHT
            entity["Attempts"] = _int(current.get("Attempts")) + 1
            for name in ("LastError", "FirstFailedAt"):
                if name in current:
                    entity[name] = current[name]
            with _errors(table, f"claim the delivery of {alert_id} to {destination}"):
                try:
                    updated = self.client.update_entity(
                        entity,
                        mode=UpdateMode.REPLACE,
                        etag=str(current.metadata["etag"]),
                        match_condition=MatchConditions.IfNotModified,
                    )
                except (HttpResponseError, ResourceNotFoundError) as err:
                    if not _lost_race(err):
                        raise
                    continue
            return Claim(
                alert_id=alert_id,
                destination=destination,
                etag=str(updated["etag"]),
                expires=expires,
                took_over=previous if state == State.CLAIMED else None,
            )
        return Busy.IN_FLIGHT

    def delivered(self, claim: Claim, *, now: datetime, status: int) -> None:
        """Mark the delivery done; kept even if another worker took the claim meanwhile."""
        changes = {"State": State.DELIVERED.value, "DeliveredAt": now, "HttpStatus": status}
        if not self._merge(claim, changes):
            log.warning(
                "the claim on alert %s for %s was taken over while it was being sent: the "
                "destination may receive it twice",
                claim.alert_id,
                claim.destination,
            )
            with _errors(self.client.table_name, f"record the delivery of {claim.alert_id}"):
                self.client.upsert_entity(
                    {"PartitionKey": encode_key(claim.alert_id), "RowKey": claim.destination}
                    | changes,
                    mode=UpdateMode.MERGE,
                )

    def failed(self, claim: Claim, *, now: datetime, error: str) -> None:
        """Release the claim with the reason; a claim someone else took is left alone."""
        self._merge(
            claim,
            {"State": State.FAILED.value, "FailedAt": now, "LastError": error[:_ERROR_CHARS]},
        )

    def _merge(self, claim: Claim, changes: Mapping[str, Any]) -> bool:
        """Merge changes into the record if it is still our claim; False if it is not."""
        entity = {"PartitionKey": encode_key(claim.alert_id), "RowKey": claim.destination}
        with _errors(self.client.table_name, f"update the delivery of {claim.alert_id}"):
            try:
                self.client.update_entity(
                    entity | dict(changes),
                    mode=UpdateMode.MERGE,
                    etag=claim.etag,
                    match_condition=MatchConditions.IfNotModified,
                )
            except (HttpResponseError, ResourceNotFoundError) as err:
                if not _lost_race(err):
                    raise
                return False
        return True

    def prune(self, before: datetime, limit: int) -> int:
        """Delete up to `limit` delivery records last written before `before`.

        Only for records older than any message the queue can still hold: the timer uses
        the retention setting, which is never under 8 days (a queue message lives 7).
        """
        with _errors(self.client.table_name, "delete old delivery records"):
            return delete_older(self.client, before=before, limit=limit)

    def close(self) -> None:
        """Close the connection."""
        self.client.close()


@contextmanager
def _errors(table: str, operation: str) -> Iterator[None]:
    """SDK and connection errors as one-line StoreErrors naming the table and operation."""
    try:
        yield
    except AzureError as err:
        lines = str(err).strip().splitlines()
        raise StoreError(
            f"table {table}: {operation} failed: {type(err).__name__}: {lines[0] if lines else ''}"[
                :400
            ]
        ) from err


def _lost_race(err: HttpResponseError) -> bool:
    """Changed or deleted by another worker since read (not a missing table)."""
    code = error_code(err)
    if code:
        return code in ("UpdateConditionNotSatisfied", "ConditionNotMet", "ResourceNotFound")
    return err.status_code in (404, 412)


def _int(value: Any) -> int:
    raw = getattr(value, "value", value)
    return raw if isinstance(raw, int) and not isinstance(raw, bool) else 0
