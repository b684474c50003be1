"""The Functions host's queue-trigger semantics over Azurite, for tests (there is no host
offline: see /work/shared/reference/local-services.md).

What it reproduces of the WebJobs queue extension (`QueueProcessor`, `QueueListener`) and
host.json (`extensions.queues`), read from the repository's host.json:

- Messages are received in batches of `batchSize` with a visibility lease, so a message
  being processed is invisible to other receivers.
- Bodies are base64 (`messageEncoding`). A message that does not decode is moved to
  `<queue>-poison` at once and never reaches the function (the extension's
  `MessageDecodingFailed` handler does this).
- A message already dequeued more than `maxDequeueCount` times is poisoned unprocessed.
- The function gets `azure.functions.queue.QueueMessage` with the id, the decoded body,
  `dequeue_count`, pop receipt and times, as the Python worker builds it.
- The function returns: the message is deleted. It raises any `Exception`: when
  `dequeue_count >= maxDequeueCount` the original message text is copied to
  `<queue>-poison` (created if missing) and the message deleted; otherwise it becomes
  visible again after `visibilityTimeout`. Tests shorten that delay (`retry_delay_seconds`,
  0 by default) so they do not wait 30 seconds per retry; the order of events is the same.
- `parallel=True` runs a batch's messages concurrently, as the host does.

Not reproduced: polling back-off, lease renewal (the lease is simply long enough),
`newBatchThreshold`, the function timeout. Two hosts on one queue stand for two instances.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import re
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import ResourceExistsError
from azure.functions.queue import QueueMessage
from azure.storage.queue import QueueClient
from azure.storage.queue import QueueMessage as StoredMessage

from tests.services.azurite import QUEUE_API_VERSION, Azurite

ROOT = Path(__file__).resolve().parents[2]
HOST_JSON = ROOT / "host.json"
_SETTING = re.compile(r"^%(?P<name>[A-Za-z0-9_]+)%$")

UserFunction = Callable[[QueueMessage], None]


@dataclass(frozen=True, kw_only=True, slots=True)
class QueueOptions:
    """host.json's `extensions.queues`, with the host's defaults for what it leaves out."""

    max_dequeue_count: int = 5
    batch_size: int = 16
    visibility_timeout: timedelta = timedelta(0)
    message_encoding: str = "base64"

    @classmethod
    def from_host_json(cls, path: Path = HOST_JSON) -> QueueOptions:
        """The options a host would use with this host.json."""
        queues = json.loads(path.read_text())["extensions"]["queues"]
        hours, minutes, seconds = (
            int(p) for p in queues.get("visibilityTimeout", "0:0:0").split(":")
        )
        return cls(
            max_dequeue_count=int(queues.get("maxDequeueCount", 5)),
            batch_size=int(queues.get("batchSize", 16)),
            visibility_timeout=timedelta(hours=hours, minutes=minutes, seconds=seconds),
            message_encoding=str(queues.get("messageEncoding", "base64")).lower(),
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class Invocation:
    """One call of the function: which message, which attempt, what it raised."""

    message_id: str
    dequeue_count: int
    error: Exception | None


@dataclass(kw_only=True)
class HostRun:
    """What `run_until_idle` did."""

    invocations: list[Invocation] = field(default_factory=list)
    poisoned: list[str] = field(default_factory=list)
    """Ids of messages moved to the poison queue."""
    undecodable: list[str] = field(default_factory=list)
    """Ids of messages poisoned because their body was not base64 (never invoked)."""

    def errors(self) -> list[Exception]:
        """The exceptions the function raised, in order."""
        return [i.error for i in self.invocations if i.error is not None]


class QueueTriggerHost:
    """Runs one queue-triggered function over an Azurite queue as the host would."""

    def __init__(
        self,
        *,
        function: UserFunction,
        connection_string: str,
        queue_name: str,
        options: QueueOptions | None = None,
        retry_delay_seconds: int = 0,
        lease_seconds: int = 120,
        parallel: bool = False,
    ) -> None:
        """`retry_delay_seconds` stands in for host.json's `visibilityTimeout`."""
        self.function = function
        self.options = options or QueueOptions.from_host_json()
        if self.options.message_encoding != "base64":
            raise ValueError("the harness reproduces messageEncoding base64 only")
        self.queue = _client(connection_string, queue_name)
        self.poison = _client(connection_string, f"{queue_name}-poison")
        self.retry_delay_seconds = retry_delay_seconds
        self.lease_seconds = lease_seconds
        self.parallel = parallel

    @classmethod
    def for_function(
        cls, app: Any, name: str, *, settings: Mapping[str, str], **kwargs: Any
    ) -> QueueTriggerHost:
        """The host for a decorated function of `app`, its binding resolved like the host:
        `%SETTING%` in the queue name and the `connection` setting from `settings`."""
        function = indexed_function(app, name)
        [binding] = json.loads(function.get_function_json())["bindings"]
        if binding["type"] != "queueTrigger" or binding["direction"] != "IN":
            raise ValueError(f"{name} is not queue-triggered: {binding}")
        queue = binding["queueName"]
        match = _SETTING.match(queue)
        if match:
            queue = settings[match["name"]]
        return cls(
            function=function.get_user_function(),
            connection_string=settings[binding["connection"]],
            queue_name=queue,
            **kwargs,
        )

    def run_until_idle(self, *, max_rounds: int = 100) -> HostRun:
        """Receive and process until no message is visible; what happened."""
        run = HostRun()
        for _ in range(max_rounds):
            batch = list(
                self.queue.receive_messages(
                    messages_per_page=self.options.batch_size,
                    max_messages=self.options.batch_size,
                    visibility_timeout=self.lease_seconds,
                )
            )
            if not batch:
                return run
            if self.parallel and len(batch) > 1:
                with ThreadPoolExecutor(max_workers=len(batch)) as pool:
                    for future in [pool.submit(self._process, m, run) for m in batch]:
                        future.result()
            else:
                for message in batch:
                    self._process(message, run)
        raise AssertionError(f"the queue was still busy after {max_rounds} rounds")

    def _process(self, stored: StoredMessage, run: HostRun) -> None:
        text = str(stored.content)
        try:
            body = base64.b64decode("".join(text.split()), validate=True)
        except (binascii.Error, ValueError):
            self._to_poison(stored)
            run.undecodable.append(stored.id)
            run.poisoned.append(stored.id)
            return
        if stored.dequeue_count > self.options.max_dequeue_count:
            self._to_poison(stored)
            run.poisoned.append(stored.id)
            return
        message = QueueMessage(
            id=stored.id,
            body=body,
            dequeue_count=stored.dequeue_count,
            expiration_time=stored.expires_on,
            insertion_time=stored.inserted_on,
            time_next_visible=stored.next_visible_on,
            pop_receipt=stored.pop_receipt,
        )
        try:
            self.function(message)
        except Exception as err:  # noqa: BLE001 - the host catches whatever the function raises
            run.invocations.append(
                Invocation(message_id=stored.id, dequeue_count=stored.dequeue_count, error=err)
            )
            if stored.dequeue_count >= self.options.max_dequeue_count:
                self._to_poison(stored)
                run.poisoned.append(stored.id)
            else:
                self.queue.update_message(
                    stored.id, stored.pop_receipt, visibility_timeout=self.retry_delay_seconds
                )
            return
        run.invocations.append(
            Invocation(message_id=stored.id, dequeue_count=stored.dequeue_count, error=None)
        )
        self.queue.delete_message(stored.id, stored.pop_receipt)

    def _to_poison(self, stored: StoredMessage) -> None:
        with contextlib.suppress(ResourceExistsError):
            self.poison.create_queue()
        self.poison.send_message(str(stored.content))
        self.queue.delete_message(stored.id, stored.pop_receipt)

    def poison_texts(self) -> list[str]:
        """The poison queue's message texts, as a consumer would find them."""
        try:
            return [str(m.content) for m in self.poison.peek_messages(max_messages=32)]
        except Exception:  # noqa: BLE001 - a poison queue that does not exist holds nothing
            return []

    def visible(self) -> int:
        """Messages left on the queue."""
        return len(self.queue.peek_messages(max_messages=32))


def indexed_function(app: Any, name: str) -> Any:
    """One function of a v2 app, as the host indexes it.

    `FunctionApp.get_functions()` remembers the names it indexed and refuses to index them
    again in the same process (a host indexes once); the index state is put back after
    reading, so every test (and the timer's tests) can read the app afresh.
    """
    remembered = getattr(app, "functions_bindings", None)
    try:
        functions = app.get_functions()
    finally:
        app.functions_bindings = remembered
    [function] = [f for f in functions if f.get_function_name() == name]
    return function


def _client(connection_string: str, queue: str) -> QueueClient:
    return QueueClient.from_connection_string(
        connection_string, queue, api_version=QUEUE_API_VERSION
    )


@pytest.fixture
def functions_host(azurite: Azurite) -> Iterator[Callable[..., QueueTriggerHost]]:
    """Makes `QueueTriggerHost`s on the shared Azurite; pass `function=` or `app=` + `name=`."""
    made: list[QueueTriggerHost] = []

    def make(**kwargs: Any) -> QueueTriggerHost:
        if "app" in kwargs:
            host = QueueTriggerHost.for_function(kwargs.pop("app"), kwargs.pop("name"), **kwargs)
        else:
            kwargs.setdefault("connection_string", azurite.connection_string)
            host = QueueTriggerHost(**kwargs)
        made.append(host)
        return host

    yield make
    for host in made:
        host.queue.close()
        host.poison.close()
