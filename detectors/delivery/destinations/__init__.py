"""Where the notifier sends an alert: one module per destination, behind one shape.

Each module builds the request its service expects and declares it here as a
`DestinationType`: its name, how it is configured from the app settings, how a request is
made (the webhook signs each attempt with its time; chat messages are built once), any
quirk in how its service answers, and, for a service reached through its own SDK rather
than a plain HTTPS POST (Sentinel's Logs Ingestion API), the sender that does it. `TYPES` is
the registry: a new destination is a module, a line there, and its settings.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson

from detectors.delivery.digest import Digest
from detectors.settings.app import NotifierSettings

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

    from detectors.delivery.transport import Sender


@dataclass(frozen=True, kw_only=True, slots=True)
class Destination:
    """One configured destination: its type's name, URL and, for the webhook, the signing
    secret (and `previous` while it is rotated)."""

    name: str
    url: str = field(repr=False)
    secret: str | None = field(default=None, repr=False)
    previous: str | None = field(default=None, repr=False)


Request = tuple[bytes, dict[str, str]]
"""The body and headers of one POST."""
JSON = {"Content-Type": "application/json; charset=utf-8"}


@dataclass(frozen=True, kw_only=True, slots=True)
class Connection:
    """What a destination with a client of its own is connected with: the notifier's
    timeout, a CA bundle to trust (the tests' local services), and the identity to sign in
    as (None: the managed identity the settings name)."""

    timeout_seconds: float
    ca_path: str | None = None
    credential: TokenCredential | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class DestinationType:
    """What the notifier needs to know of one kind of destination."""

    name: str
    configured: Callable[[NotifierSettings], Destination | None]
    """The destination the app settings configure, or None when they name none."""
    request: Callable[[Destination, Mapping[str, Any], Digest, datetime], Request]
    """The request for an alert (the full alert, and its digest for people) at a moment."""
    per_attempt: bool = False
    """Whether each attempt needs a request of its own (a signature with the time)."""
    needs_secret: bool = False
    throttled: Callable[[str], bool] = lambda _excerpt: False
    """Whether a 2xx answer's body says nothing was posted (the service was throttling)."""
    connect: Callable[[NotifierSettings, Connection], Sender] | None = None
    """The sender of a destination reached through its own client; None: HTTPS POST."""


def chat_type(
    name: str,
    url_of: Callable[[NotifierSettings], str | None],
    payload: Callable[[Digest], dict[str, Any]],
    *,
    throttled: Callable[[str], bool] = lambda _excerpt: False,
) -> DestinationType:
    """A chat service's incoming webhook: its URL from the settings, and one JSON message
    built from the digest for every attempt."""

    def configured(settings: NotifierSettings) -> Destination | None:
        url = url_of(settings)
        return Destination(name=name, url=url) if url else None

    def request(
        _destination: Destination, _alert: Mapping[str, Any], digest: Digest, _now: datetime
    ) -> Request:
        return orjson.dumps(payload(digest)), JSON

    return DestinationType(name=name, configured=configured, request=request, throttled=throttled)


def _types() -> dict[str, DestinationType]:
    # Imported here: the modules declare their types with the classes above.
    from detectors.delivery.destinations import sentinel, slack, teams, webhook  # noqa: PLC0415

    return {t.name: t for t in (webhook.TYPE, teams.TYPE, slack.TYPE, sentinel.TYPE)}


TYPES: dict[str, DestinationType] = _types()
"""The registry of destination types, by name."""
