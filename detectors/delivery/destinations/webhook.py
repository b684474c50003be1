"""The generic webhook: the alert itself as JSON, signed so receivers know it came from us.

Signature scheme (docs/consumers.md shows a receiver verifying it):

- `X-Detector-Timestamp`: Unix time in whole seconds when the request was made. Each
  attempt is signed afresh, so a retried request carries a new timestamp.
- `X-Detector-Signature`: `v1=` and the lower-case hex HMAC-SHA256, keyed with the UTF-8
  bytes of `NOTIFY_WEBHOOK_SECRET`, of `timestamp + "." + body` (the body's exact bytes).
  While a secret is rotated (`NOTIFY_WEBHOOK_SECRET_PREVIOUS` set), a second `v1=`
  signature made with the previous secret follows, after a comma: a receiver accepts the
  request if any one of them verifies, so it can switch secrets at any time meanwhile.
  Receivers compare in constant time and refuse timestamps more than five minutes away
  from their clock, which bounds replays.
- `X-Detector-Alert-Id` and `Idempotency-Key` carry the alert id: the notifier delivers at
  least once, so a receiver that must not act twice drops ids it has seen. They are not
  signed; the body's `id` is, and is what receivers deduplicate on.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson

from detectors.delivery.destinations import Destination, DestinationType, Request
from detectors.delivery.digest import Digest
from detectors.settings.app import NotifierSettings

SIGNATURE_HEADER = "X-Detector-Signature"
TIMESTAMP_HEADER = "X-Detector-Timestamp"
ALERT_ID_HEADER = "X-Detector-Alert-Id"
SCHEME = "v1"


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header's value for a body sent at `timestamp` (Unix seconds)."""
    message = timestamp.encode("ascii") + b"." + body
    digest = hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()
    return f"{SCHEME}={digest}"


def webhook_request(
    alert: Mapping[str, Any], *, secret: str, now: datetime, previous: str | None = None
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of one signed webhook request for an alert.

    With `previous` (a secret being rotated out) the request carries both signatures.
    """
    body = orjson.dumps(dict(alert))
    timestamp = str(int(now.timestamp()))
    alert_id = str(alert["id"])
    signatures = [signature(key, timestamp, body) for key in (secret, previous) if key]
    return body, {
        "Content-Type": "application/json; charset=utf-8",
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: ", ".join(signatures),
        ALERT_ID_HEADER: alert_id,
        "Idempotency-Key": alert_id,
    }


def _configured(settings: NotifierSettings) -> Destination | None:
    if not settings.webhook_url:
        return None
    return Destination(
        name=NAME,
        url=settings.webhook_url,
        secret=settings.webhook_secret,
        previous=settings.webhook_secret_previous,
    )


def _request(
    destination: Destination, alert: Mapping[str, Any], _digest: Digest, now: datetime
) -> Request:
    return webhook_request(
        alert, secret=destination.secret or "", previous=destination.previous, now=now
    )


NAME = "webhook"
TYPE = DestinationType(
    name=NAME, configured=_configured, request=_request, per_attempt=True, needs_secret=True
)
