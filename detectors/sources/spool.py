"""Time-ordering of observations with bounded memory: an external merge sort.

Exports come in any order (the portal sorts newest first). Observations are kept in memory
up to a limit, then sorted runs are spilled to temporary files and merged back in order.
"""

from __future__ import annotations

import heapq
import os
import pickle
import tempfile
from collections.abc import Callable, Iterator
from operator import itemgetter
from typing import IO, Any

from detectors.model.observation import Observation

_BATCH = 10_000


Order = Callable[[Observation], tuple[Any, ...]]
Keyed = tuple[tuple[Any, ...], Observation]
_KEY = itemgetter(0)


def by_time(obs: Observation) -> tuple[object, ...]:
    """Event time, ties broken by event id."""
    return (obs.time, obs.event_id)


class ObservationSpool:
    """Collects observations in any order and gives them back sorted (by time, unless told)."""

    def __init__(
        self, *, memory_limit: int = 250_000, directory: str | None = None, order: Order = by_time
    ) -> None:
        self.memory_limit = memory_limit
        self._order = order
        self._directory = directory
        self._buffer: list[Keyed] = []
        """Each observation with its place in the order, worked out once."""
        self._runs: list[IO[bytes]] = []
        self._adopted: list[IO[bytes]] = []
        """Runs other spools saved (`adopt`): a later part of the input than the buffer's."""
        self.count = 0
        self.first: Observation | None = None
        self.last: Observation | None = None

    def add(self, obs: Observation) -> None:
        """Keep one observation."""
        self._buffer.append((self._order(obs), obs))
        self.count += 1
        if self.first is None or obs.time < self.first.time:
            self.first = obs
        if self.last is None or obs.time > self.last.time:
            self.last = obs
        if len(self._buffer) >= self.memory_limit:
            self._spill()

    @property
    def directory(self) -> str | None:
        """Where spilled runs go (None: the system's temporary directory)."""
        return self._directory

    def save(self) -> str:
        """Write every observation, in order, to a file of its own (pickled batches of keyed
        observations, as a spilled run) for another process to `adopt`; its path."""
        with tempfile.NamedTemporaryFile(
            dir=self._directory, prefix="detector-part-", delete=False
        ) as run:
            batch: list[Keyed] = []
            for keyed in self.ordered():
                batch.append(keyed)
                if len(batch) >= _BATCH:
                    pickle.dump(batch, run, pickle.HIGHEST_PROTOCOL)
                    batch = []
            if batch:
                pickle.dump(batch, run, pickle.HIGHEST_PROTOCOL)
        return run.name

    def adopt(
        self, path: str, count: int, first: Observation | None, last: Observation | None
    ) -> None:
        """Take over a run another spool saved (`save`) of a later part of the input: merged
        in order with the rest (after them where keys are equal, as one reader would have
        kept them), and deleted when this spool is closed."""
        run = open(path, "rb")  # noqa: SIM115 - closed with the spool
        os.unlink(path)  # the open handle keeps it readable until closed
        self._adopted.append(run)
        self.count += count
        if first is not None and (self.first is None or first.time < self.first.time):
            self.first = first
        if last is not None and (self.last is None or last.time > self.last.time):
            self.last = last

    @property
    def spilled_runs(self) -> int:
        """How many sorted runs are on disk (spilled, or adopted from another spool)."""
        return len(self._runs) + len(self._adopted)

    def _spill(self) -> None:
        self._buffer.sort(key=_KEY)
        run = tempfile.TemporaryFile(dir=self._directory, prefix="detector-spool-")  # noqa: SIM115
        for start in range(0, len(self._buffer), _BATCH):
            # One dump per batch lets pickle share the principal and resource objects.
            pickle.dump(self._buffer[start : start + _BATCH], run, pickle.HIGHEST_PROTOCOL)
        run.seek(0)
        self._runs.append(run)
        self._buffer = []

    def __iter__(self) -> Iterator[Observation]:
        for _, obs in self.ordered():
            yield obs

    def ordered(self) -> Iterator[Keyed]:
        """Each observation in order, with its key (the order's value for it)."""
        self._buffer.sort(key=_KEY)
        if not self._runs and not self._adopted:
            yield from self._buffer
            return
        # In the order their observations were read: equal keys keep it (a stable merge).
        spilled = [_read_run(run) for run in self._runs]
        adopted = [_read_run(run) for run in self._adopted]
        yield from heapq.merge(*spilled, iter(self._buffer), *adopted, key=_KEY)

    def close(self) -> None:
        """Delete the spilled and adopted runs."""
        for run in (*self._runs, *self._adopted):
            run.close()
        self._runs.clear()
        self._adopted.clear()
        self._buffer.clear()


def _read_run(run: IO[bytes]) -> Iterator[Keyed]:
    while True:
        try:
            batch: list[Keyed] = pickle.load(run)  # noqa: S301 - our own temp file
        except EOFError:
            return
        yield from batch
