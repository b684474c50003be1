"""A local HTTPS receiver standing in for the generic webhook, Teams and Slack.

One TLS server on 127.0.0.1 (a self-signed certificate the tests trust through its CA
file, as `NOTIFY_*` URLs must be https://). Each destination is a path (`/webhook`,
`/teams`, `/slack`); every request is recorded with its headers and exact body. A test
scripts answers per path: a status, headers such as `Retry-After`, or a delay longer than
the sender's timeout. Unscripted requests get 200 and the body Teams and Slack send.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections import defaultdict, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.services.tls import Endpoint, TLSRequestHandler, serving


@dataclass(frozen=True, kw_only=True, slots=True)
class Reply:
    """One scripted answer."""

    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    """Seconds to wait before answering."""
    lost: bool = False
    """The delay is longer than the sender's timeout: it never sees this answer."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Received:
    """One request as it arrived, and the reply it was given."""

    path: str
    headers: dict[str, str]
    body: bytes
    reply: Reply
    at: float
    """When it arrived (`time.monotonic()`)."""

    @property
    def acknowledged(self) -> bool:
        """Answered 2xx in time: the sender saw a success."""
        return 200 <= self.reply.status < 300 and not self.reply.lost


class Receiver:
    """The recorded requests and scripted replies of one test."""

    def __init__(self, *, base_url: str, ca_path: Path) -> None:
        self.base_url = base_url
        self.ca_path = ca_path
        self._lock = threading.Lock()
        self._script: dict[str, deque[Reply]] = defaultdict(deque)
        self._received: list[Received] = []
        self.released = threading.Event()

    def url(self, name: str) -> str:
        """The https URL of one destination."""
        return f"{self.base_url}/{name}"

    def script(self, name: str, *replies: Reply) -> None:
        """Answer the next requests to `name` with these replies, then 200."""
        with self._lock:
            self._script[f"/{name}"].extend(replies)

    def requests(self, name: str) -> list[Received]:
        """Every request to one destination, in arrival order."""
        with self._lock:
            return [r for r in self._received if r.path == f"/{name}"]

    def acknowledged(self, name: str) -> list[Received]:
        """The requests to `name` the sender saw succeed."""
        return [r for r in self.requests(name) if r.acknowledged]

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> Reply:
        with self._lock:
            script = self._script[path]
            reply = script.popleft() if script else Reply(body=b"1" if "teams" in path else b"ok")
            self._received.append(
                Received(path=path, headers=headers, body=body, reply=reply, at=time.monotonic())
            )
        return reply


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, context: ssl.SSLContext) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.context = context
        self.receiver: Receiver | None = None

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a sender that gave up on a slow reply is part of the tests


class _Handler(TLSRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        body = self.body()
        receiver = self.server.receiver
        if receiver is None:
            reply = Reply(status=503, body=b"no test holds the receiver")
        else:
            headers = {k.lower(): v for k, v in self.headers.items()}
            reply = receiver.answer(self.path, headers, body)
            if reply.delay:
                receiver.released.wait(reply.delay)
        self.reply(reply.status, reply.body, reply.headers, "text/plain; charset=utf-8")


@pytest.fixture(scope="session")
def _receiver_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoint[_Server]]:
    with serving(_Server, tmp_path_factory.mktemp("receiver"), "receiver") as running:
        yield running


@pytest.fixture
def receiver(_receiver_endpoint: Endpoint[_Server]) -> Iterator[Receiver]:
    """A fresh receiver: nothing recorded, nothing scripted."""
    receiver = Receiver(base_url=_receiver_endpoint.url, ca_path=_receiver_endpoint.ca_path)
    _receiver_endpoint.server.receiver = receiver
    try:
        yield receiver
    finally:
        receiver.released.set()
        _receiver_endpoint.server.receiver = None
