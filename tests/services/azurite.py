"""Azurite, the real Table/Queue/Blob Storage emulator, as pytest fixtures.

- `azurite` (session): one in-memory emulator shared by every test. Do not stop it.
- `azurite_outage` (function): a private emulator that keeps its data on disk, so a test
  can `stop()` it to simulate a storage outage and `start()` it again on the same ports
  with the data intact.
- `storage_names` (function): fresh table and queue names, so tests never share state.

Azurite comes from package.json (`make test` installs it with `npm ci`).
"""

from __future__ import annotations

import ctypes
import itertools
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
AZURITE = ROOT / "node_modules" / ".bin" / "azurite"
SERVICES = ("blob", "queue", "table")
ACCOUNT = "devstoreaccount1"
# The emulator's well-known development key (public, in Microsoft's documentation).
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
QUEUE_API_VERSION = "2025-11-05"
"""Azurite 3.35 rejects the newer version azure-storage-queue sends by default."""

_STARTUP_SECONDS = 20.0
_STOP_SECONDS = 10.0
_PR_SET_PDEATHSIG = 1


class Azurite:
    """One Azurite process: start, stop, and start again on the same ports."""

    def __init__(self, *, location: Path | None = None) -> None:
        """In memory (data lost on stop) unless `location` names a directory to keep it in."""
        if not AZURITE.exists():
            pytest.fail(
                f"{AZURITE.relative_to(ROOT)} is missing: run `make test` (it installs the "
                "Node test tools from package.json with `npm ci`)",
                pytrace=False,
            )
        self.location = location
        self.ports: dict[str, int] = dict.fromkeys(SERVICES, 0)
        self._process: subprocess.Popen[str] | None = None
        self._output: list[str] = []

    @property
    def running(self) -> bool:
        """Whether the process is up."""
        return self._process is not None and self._process.poll() is None

    def endpoint(self, service: str) -> str:
        """The account's endpoint of one service, e.g. `http://127.0.0.1:PORT/devstoreaccount1`."""
        return f"http://127.0.0.1:{self.ports[service]}/{ACCOUNT}"

    @property
    def table_endpoint(self) -> str:
        """The Table service endpoint of the development account."""
        return self.endpoint("table")

    @property
    def queue_endpoint(self) -> str:
        """The Queue service endpoint of the development account."""
        return self.endpoint("queue")

    @property
    def connection_string(self) -> str:
        """A connection string for the development account, as `DETECTOR_STORAGE` holds it."""
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
            f"TableEndpoint={self.endpoint('table')};QueueEndpoint={self.endpoint('queue')};"
            f"BlobEndpoint={self.endpoint('blob')};"
        )

    def start(self) -> None:
        """Start the emulator (after `stop()`: on the same ports); returns once it listens."""
        if self.running:
            return
        command = [str(AZURITE), "--silent", "--disableTelemetry"]
        if self.location is None:
            command += ["--inMemoryPersistence", "--extentMemoryLimit", "256"]
        else:
            command += ["--location", str(self.location)]
        for service in SERVICES:
            command += [
                f"--{service}Host",
                "127.0.0.1",
                f"--{service}Port",
                str(self.ports[service]),
            ]
        self._output = []
        self._process = subprocess.Popen(
            command,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "NODE_NO_WARNINGS": "1"},
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - only calls prctl
        )
        lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._drain, args=(self._process, lines), daemon=True).start()
        listening: dict[str, int] = {}
        deadline = time.monotonic() + _STARTUP_SECONDS
        while len(listening) < len(SERVICES):
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None:  # timed out, or the process exited
                self.stop()
                output = "".join(self._output[-20:]) or "(no output)"
                pytest.fail(f"Azurite did not start: {' '.join(command)}\n{output}")
            service, port = _listening(line)
            if service:
                listening[service] = port
        self.ports = listening

    def stop(self) -> None:
        """Terminate the emulator (kill it if it does not exit promptly)."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=_STOP_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=_STOP_SECONDS)
        if process.stdout is not None:
            process.stdout.close()

    def _drain(self, process: subprocess.Popen[str], lines: queue.Queue[str | None]) -> None:
        """Read the emulator's output to the end, so its pipe never fills up."""
        assert process.stdout is not None
        try:
            for line in process.stdout:
                self._output.append(line)
                lines.put(line)
        except ValueError:  # the pipe was closed by stop()
            pass
        lines.put(None)


def _die_with_parent() -> None:
    """Linux: have the emulator terminated if pytest itself is killed (no orphans)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _listening(line: str) -> tuple[str | None, int]:
    """The service and port of a `... Table service is successfully listening at URL` line."""
    marker = " service is successfully listening at http://"
    if marker not in line:
        return None, 0
    head, _, url = line.partition(marker)
    service = head.rsplit(" ", 1)[-1].lower()
    return (service if service in SERVICES else None), int(url.strip().rsplit(":", 1)[-1])


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    """The shared in-memory emulator; tests isolate themselves with `storage_names`."""
    emulator = Azurite()
    try:
        emulator.start()
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def azurite_outage(tmp_path: Path) -> Iterator[Azurite]:
    """A private emulator with its data on disk, for tests that stop and restart storage."""
    location = tmp_path / "azurite"
    location.mkdir()
    emulator = Azurite(location=location)
    try:
        emulator.start()
        yield emulator
    finally:
        emulator.stop()


_serial = itertools.count(1)


class StorageNames:
    """Hands out table and queue names no other test uses."""

    def __init__(self) -> None:
        self._tag = f"{uuid.uuid4().hex[:8]}{next(_serial)}"
        self._count = itertools.count(1)

    def table(self, role: str = "Table") -> str:
        """A fresh table name (letters and digits, starting with a letter)."""
        return f"{role}{self._tag}x{next(self._count)}"

    def queue(self, role: str = "queue") -> str:
        """A fresh queue name (lower case, digits, single hyphens)."""
        return f"{role.lower()}-{self._tag}-{next(self._count)}"


@pytest.fixture
def storage_names() -> StorageNames:
    """Fresh table and queue names for this test."""
    return StorageNames()
