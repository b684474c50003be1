"""Where rows come from: Log Analytics for the timer and backfill, exported files and the
storage account's archive for replay.

What every reader of rows shares is here: the `LogSource` protocol the runs read through,
the `RowSource` protocol replay reads through, the `Budget` of time a run may spend, and
what reading cost (`FetchStats`). The window a step reads, and the KQL, are in `queries`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from detectors.model.observation import RawRow, RejectedRow
from detectors.normalize.rows import Skipped
from detectors.sources.queries import Window


@dataclass(kw_only=True, slots=True)
class FetchStats:
    """What reading a window cost."""

    queries: int = 0
    retries: int = 0
    splits: int = 0
    rows: dict[str, int] = field(default_factory=dict)


class Budget:
    """The time a run may still spend, on a monotonic clock."""

    def __init__(
        self,
        seconds: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._clock, self._sleep = clock, sleep
        self.seconds = seconds
        self._deadline = clock() + seconds

    def remaining(self) -> float:
        """Seconds left (never negative)."""
        return max(0.0, self._deadline - self._clock())

    def wait(self, seconds: float) -> bool:
        """Sleep if the budget allows it; False (without sleeping) when it does not."""
        if seconds >= self.remaining():
            return False
        self._sleep(seconds)
        return True


class LogSource(Protocol):
    """Reads the rows of one window (`LogAnalyticsSource`)."""

    def fetch(self, window: Window, budget: Budget) -> tuple[list[RawRow], FetchStats]:
        """Every row of the window, or QueryFailed."""
        ...


class RowSource(Protocol):
    """Rows read from start to end, rejected ones included, with progress in bytes: an
    exported file (`files.FileSource`) or an archive's blobs (`archive.ArchiveSource`)."""

    @property
    def total_bytes(self) -> int:
        """How many bytes there are to read, as far as is known before reading."""
        ...

    @property
    def bytes_read(self) -> int:
        """How many of them have been read."""
        ...

    def __iter__(self) -> Iterator[RawRow | RejectedRow | Skipped]:
        """Every row in order; rows the normaliser would skip may come as their `Skipped`."""
        ...
