"""Alerts onto a Storage Queue, in the encoding the Functions queue trigger reads.

Each message is one alert as UTF-8 JSON, base64-encoded (`host.json` sets
`messageEncoding: base64`), at most 64 KiB: larger alerts are trimmed by `alerts.fit`.
Messages never expire: an alert waits on the queue until something reads it.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import orjson
from azure.core.exceptions import AzureError, ResourceExistsError
from azure.storage.queue import QueueClient

from detectors.alerts.render import fit
from detectors.model.errors import DeliveryFailed

NEVER_EXPIRES = -1
"""The queue service's time to live for a message that stays until it is read: an alert
nobody has consumed yet is kept, not dropped after the service's default seven days."""


def encode(alert: Mapping[str, Any]) -> str:
    """The message text for an alert: base64 of its (trimmed) JSON."""
    return base64.b64encode(orjson.dumps(fit(dict(alert)))).decode("ascii")


def decode(text: str | bytes) -> dict[str, Any]:
    """An alert back from message text (what a consumer does)."""
    raw = text.encode("ascii") if isinstance(text, str) else text
    value = orjson.loads(base64.b64decode(raw, validate=True))
    if not isinstance(value, dict):
        raise TypeError("an alert message holds a JSON object")
    return value


class AlertQueue:
    """Puts alerts on one queue; DeliveryFailed when the queue cannot take them."""

    def __init__(self, *, client: QueueClient, time_to_live_seconds: int = NEVER_EXPIRES) -> None:
        self.client = client
        self.time_to_live_seconds = time_to_live_seconds

    def ensure(self) -> None:
        """Create the queue if it is missing (Bicep creates it in Azure)."""
        try:
            self.client.create_queue()
        except ResourceExistsError:
            pass
        except AzureError as err:
            raise DeliveryFailed(
                f"cannot reach alert queue {self.client.queue_name}: {err}"
            ) from err

    def send(self, alert: Mapping[str, Any]) -> None:
        """Enqueue one alert durably (the call returns once the service has stored it)."""
        try:
            self.client.send_message(encode(alert), time_to_live=self.time_to_live_seconds)
        except AzureError as err:
            raise DeliveryFailed(
                f"cannot enqueue alert {alert.get('id')} on {self.client.queue_name}: "
                f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
            ) from err
