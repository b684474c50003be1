"""HTTPS delivery, and what a failed delivery means.

`HttpsSender` posts one request with a timeout and never follows a redirect (a webhook
URL that redirects is misconfigured, and following it would send the alert, and for the
webhook its signature, somewhere nobody configured). What an answer means is decided by
`verdict`, a pure function:

| Answer | Verdict |
|---|---|
| 2xx | delivered |
| 408, 425, 429, 5xx, timeout, connection refused or reset, DNS failure | transient |
| any other 3xx or 4xx, a certificate the system does not trust | permanent |

A 429 or 503 may carry `Retry-After` (seconds or an HTTP date): `retry_after` reads it.
"""

from __future__ import annotations

import http.client
import logging
import socket
import ssl
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import IO, Any, Protocol

from detectors.delivery.errors import PermanentDeliveryError, TransientDeliveryError
from detectors.model.errors import one_line

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_SECONDS = 10.0
"""Bound on connecting and on each read of one request."""
_EXCERPT_BYTES = 300
_TRANSIENT_4XX = frozenset({408, 425, 429})


class Verdict(StrEnum):
    """What an HTTP answer means for the alert."""

    DELIVERED = "delivered"
    TRANSIENT = "transient"
    PERMANENT = "permanent"


@dataclass(frozen=True, kw_only=True, slots=True)
class Answer:
    """The destination's answer: status, `Retry-After` (as sent), and the body's start."""

    status: int
    retry_after: str | None = None
    excerpt: str = ""


def verdict(status: int) -> Verdict:
    """Delivered, worth retrying, or not worth retrying until something changes."""
    if 200 <= status < 300:
        return Verdict.DELIVERED
    if status in _TRANSIENT_4XX or 500 <= status < 600:
        return Verdict.TRANSIENT
    return Verdict.PERMANENT


def retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or HTTP date), or None."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(int(text))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


class Sender(Protocol):
    """Posts one request and returns the answer; raises only for no answer at all."""

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Answer:
        """POST `body` to `url`; TransientDeliveryError or PermanentDeliveryError if no answer."""
        ...


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # urllib then raises the 3xx as an HTTPError


class HttpsSender:
    """POSTs over HTTPS with urllib, a timeout, the system's trust store, no redirects."""

    def __init__(
        self, *, timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS, ca_path: str | None = None
    ) -> None:
        """`ca_path` adds a PEM bundle of trusted CAs (tests use a local CA)."""
        self.timeout_seconds = timeout_seconds
        context = ssl.create_default_context(cafile=ca_path)
        self._opener = urllib.request.build_opener(
            urllib.request.HTTPSHandler(context=context), _NoRedirects()
        )

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Answer:
        """POST `body` to `url`; an HTTP error status is an answer, not an exception."""
        if not url.lower().startswith("https://"):
            raise PermanentDeliveryError("the destination URL is not https://")
        # The scheme is checked just above: only https:// is ever opened.
        request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")  # noqa: S310
        request.add_header("User-Agent", "appservice-detectors-notifier/1")
        try:
            with self._opener.open(request, timeout=self.timeout_seconds) as reply:
                return Answer(status=reply.status, excerpt=_excerpt(reply))
        except urllib.error.HTTPError as err:
            with err:
                return Answer(
                    status=err.code,
                    retry_after=err.headers.get("Retry-After") if err.headers else None,
                    excerpt=_excerpt(err),
                )
        except urllib.error.URLError as err:
            reason = err.reason
            if isinstance(reason, ssl.SSLCertVerificationError):
                raise PermanentDeliveryError(
                    f"TLS certificate not trusted: {reason.verify_message}"
                ) from err
            if isinstance(reason, TimeoutError | socket.timeout):
                raise TransientDeliveryError(
                    f"no answer within {self.timeout_seconds:g} s"
                ) from err
            raise TransientDeliveryError(f"cannot connect: {one_line(reason, 200)}") from err
        except TimeoutError as err:
            raise TransientDeliveryError(f"no answer within {self.timeout_seconds:g} s") from err
        except (http.client.HTTPException, OSError) as err:
            raise TransientDeliveryError(f"connection failed: {one_line(err, 200)}") from err


def _excerpt(reply: IO[bytes]) -> str:
    """The start of an answer's body, as one printable line (for the log)."""
    try:
        raw = reply.read(_EXCERPT_BYTES)
    except (OSError, http.client.HTTPException, TimeoutError):
        return ""
    text = raw.decode("utf-8", "replace")
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())
