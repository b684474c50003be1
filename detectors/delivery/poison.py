"""The poison queue: alerts the notifier failed to deliver `maxDequeueCount` times.

The Functions host moves such a message, unchanged, to `<queue>-poison`, but with the queue
service's default time to live of seven days, and no setting changes that. Left alone, an
alert nobody looked at within a week would be gone. So:

- `keep` gives every poison message a copy that never expires (the timer calls it each run:
  within minutes of the host's move the alert is kept for good);
- `list` shows what waits there, and `requeue` puts messages back on the alert queue, never
  to expire either, once their destination is fixed (`detector poison`); the delivery
  records make that safe: destinations that already have an alert are skipped.

Copies go out before originals are deleted: a crash in between leaves one alert twice,
which the notifier's records (and consumers, by alert `id`) turn into one delivery.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.storage.queue import QueueClient, QueueMessage

from detectors.delivery.queue import NEVER_EXPIRES, decode
from detectors.model.errors import DeliveryFailed, one_line

POISON_SUFFIX = "-poison"
"""What the Functions host appends to a queue's name for its poison queue."""
BATCH = 32
"""The most messages the queue service hands out in one receive."""
HIDE_SECONDS = 60
"""How long a message being looked at stays hidden from other readers."""
KEEP_LIMIT = 1024
"""Poison messages `keep` looks at in one run (at most 32 receives). Messages are received
oldest first and kept copies go to the back, so a queue longer than this could leave its
newest messages unrenewed; long before that, `detector status` and the poison alert rule
have failed on it."""
FOREVER_YEAR = 9999
"""The queue service reports a message that never expires as expiring on 9999-12-31."""


def poison_name(alert_queue: str) -> str:
    """The poison queue of an alert queue."""
    return f"{alert_queue}{POISON_SUFFIX}"


@dataclass(frozen=True, kw_only=True, slots=True)
class PoisonMessage:
    """One message on the poison queue, and the alert it holds (if it holds one)."""

    message_id: str
    inserted_on: datetime | None
    expires_on: datetime | None
    """None: never."""
    alert_id: str | None = None
    detection: str | None = None
    severity: str | None = None
    title: str | None = None
    principal: str | None = None
    problem: str | None = None
    """Why the message is not an alert, when it is not one."""

    def matches(self, wanted: str) -> bool:
        """Whether an operator's ID names this message: its message id or its alert's id."""
        return wanted in (self.message_id, self.alert_id)


@dataclass(kw_only=True, slots=True)
class Requeued:
    """What a requeue moved, and what it left."""

    moved: list[PoisonMessage] = field(default_factory=list)
    left: int = 0


def describe(message: QueueMessage) -> PoisonMessage:
    """A poison message as an operator reads it."""
    expires = message.expires_on
    if expires is not None and expires.year >= FOREVER_YEAR:
        expires = None
    common: dict[str, Any] = {
        "message_id": str(message.id),
        "inserted_on": message.inserted_on,
        "expires_on": expires,
    }
    try:
        alert = decode(message.content)
    except (ValueError, TypeError) as err:
        return PoisonMessage(**common, problem=f"not an alert: {one_line(err, 120)}")
    principal = alert.get("principal")
    return PoisonMessage(
        **common,
        alert_id=str(alert.get("id")) if alert.get("id") is not None else None,
        detection=_text(alert.get("detection")),
        severity=_text(alert.get("severity")),
        title=_text(alert.get("title")),
        principal=_text(principal.get("name") or principal.get("id"))
        if isinstance(principal, dict)
        else None,
    )


class PoisonQueue:
    """The poison queue of one alert queue, and the alert queue its messages go back to."""

    def __init__(self, *, poison: QueueClient, alerts: QueueClient) -> None:
        self.poison = poison
        self.alerts = alerts

    @property
    def name(self) -> str:
        """The poison queue's name."""
        return str(self.poison.queue_name)

    def depth(self) -> int:
        """About how many messages wait (0 when the host has not made the queue yet)."""
        try:
            properties = self.poison.get_queue_properties()
        except ResourceNotFoundError:
            return 0
        except AzureError as err:
            raise DeliveryFailed(f"cannot read poison queue {self.name}: {one_line(err)}") from err
        return int(properties.approximate_message_count or 0)

    def peek(self, limit: int = BATCH) -> list[PoisonMessage]:
        """The first messages (at most 32, the service's limit), without taking them."""
        try:
            found = self.poison.peek_messages(max_messages=min(limit, BATCH))
        except ResourceNotFoundError:
            return []
        except AzureError as err:
            raise DeliveryFailed(f"cannot read poison queue {self.name}: {one_line(err)}") from err
        return [describe(message) for message in found]

    def requeue(self, wanted: Callable[[PoisonMessage], bool]) -> Requeued:
        """Put the messages `wanted` picks back on the alert queue (never to expire), and
        take them off the poison queue; the others stay as they were."""
        result = Requeued()

        def move(message: QueueMessage) -> bool:
            seen = describe(message)
            if not wanted(seen):
                result.left += 1
                return False
            self._send(self.alerts, message.content)
            self._delete(message)
            result.moved.append(seen)
            return True

        self._each(move, limit=None)
        return result

    def keep(self) -> int:
        """Give each poison message that would expire a copy that never does; how many."""
        kept = 0

        def renew(message: QueueMessage) -> bool:
            nonlocal kept
            if message.expires_on is None or message.expires_on.year >= FOREVER_YEAR:
                return False
            self._send(self.poison, message.content)
            self._delete(message)
            kept += 1
            return True

        self._each(renew, limit=KEEP_LIMIT)
        return kept

    def _each(self, handle: Callable[[QueueMessage], bool], *, limit: int | None) -> None:
        """Receive every visible message once; `handle` says whether it took it. Those it
        left are made visible again at the end (hidden until then, so each is seen once)."""
        left: list[QueueMessage] = []
        seen = 0
        try:
            for message in self._received():
                seen += 1
                if not handle(message):
                    left.append(message)
                if limit is not None and seen >= limit:
                    break
        finally:
            for message in left:
                try:
                    self.poison.update_message(message, visibility_timeout=0)
                except AzureError:  # it shows again after HIDE_SECONDS anyway
                    continue

    def _received(self) -> Iterator[QueueMessage]:
        while True:
            try:
                batch = list(
                    self.poison.receive_messages(
                        messages_per_page=BATCH, visibility_timeout=HIDE_SECONDS, max_messages=BATCH
                    )
                )
            except ResourceNotFoundError:
                return
            except AzureError as err:
                raise DeliveryFailed(
                    f"cannot read poison queue {self.name}: {one_line(err)}"
                ) from err
            if not batch:
                return
            yield from batch

    def _send(self, queue: QueueClient, content: Any) -> None:
        try:
            queue.send_message(content, time_to_live=NEVER_EXPIRES)
        except AzureError as err:
            raise DeliveryFailed(
                f"cannot write to queue {queue.queue_name}: {one_line(err)}"
            ) from err

    def _delete(self, message: QueueMessage) -> None:
        try:
            self.poison.delete_message(message)
        except AzureError as err:
            raise DeliveryFailed(
                f"cannot delete message {message.id} from {self.name}: {one_line(err)}"
            ) from err


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
