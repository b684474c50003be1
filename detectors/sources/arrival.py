"""When rows reach the workspace, and so which timer step scores each one.

The timer scores a slice of event time once `hold` has passed after it, with the late
rows of earlier slices that arrived since (`sources.queries.step_end`). Replay cuts its
input into the same steps when it knows each row's ingestion time: from the export's
`IngestionTime` column, or drawn from a `DelayModel` for exports without one. Without
either, every row counts as on time and a step is simply its slice of event time.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from detectors.model.errors import InputError
from detectors.model.observation import Observation
from detectors.sources.queries import step_end

REALISTIC = "realistic"
_RANGE = re.compile(r"^(\d+(?:\.\d+)?)m(?:-(\d+(?:\.\d+)?)m)?$")
_REALISTIC_SHAPE = ((0.85, 3.0, 10.0), (0.97, 10.0, 20.0), (1.0, 20.0, 25.0))
"""Cumulative share, then the range of minutes it falls in: most rows 3-10 minutes after
the event, some 10-20 (Azure's documented range for the Activity Log is 3-20), a few up
to 25."""


@dataclass(frozen=True, slots=True)
class DelayModel:
    """Simulated ingestion delays, the same for a row whatever order it is read in."""

    spec: str
    seed: int = 0

    @classmethod
    def parse(cls, spec: str, seed: int = 0) -> DelayModel:
        """`realistic`, a fixed delay (`5m`) or a uniform range (`3m-20m`); InputError if not."""
        text = spec.strip().lower()
        if text != REALISTIC:
            match = _RANGE.match(text)
            if match is None or float(match.group(2) or match.group(1)) < float(match.group(1)):
                raise InputError(
                    f"--ingestion-delay {spec!r}: expected {REALISTIC!r}, minutes such as 5m, "
                    "or a range such as 3m-20m"
                )
        return cls(spec=text, seed=seed)

    def delay(self, event_id: str) -> timedelta:
        """The delay of one row, drawn from its id and the seed."""
        digest = hashlib.blake2b(f"{self.seed}\x1f{event_id}".encode(), digest_size=8).digest()
        u = int.from_bytes(digest, "big") / 2**64
        if self.spec == REALISTIC:
            low_share = 0.0
            for share, low, high in _REALISTIC_SHAPE:
                if u < share:
                    return timedelta(
                        minutes=low + (high - low) * (u - low_share) / (share - low_share)
                    )
                low_share = share
            return timedelta(minutes=_REALISTIC_SHAPE[-1][2])
        match = _RANGE.match(self.spec)
        assert match is not None, "parse() checked the spec"
        low = float(match.group(1))
        high = float(match.group(2) or low)
        return timedelta(minutes=low + (high - low) * u)


@dataclass(frozen=True, slots=True)
class Arrival:
    """How a replay cuts its input into timer steps."""

    window: timedelta
    hold: timedelta = timedelta(0)
    delays: DelayModel | None = None

    def ingested(self, obs: Observation) -> datetime | None:
        """When the row reached the workspace: as exported, else as simulated, else unknown."""
        if obs.ingested is not None:
            return obs.ingested
        if self.delays is not None:
            return obs.time + self.delays.delay(obs.event_id)
        return None

    def step(self, obs: Observation) -> datetime:
        """The end of the event slice of the step that scores the row."""
        return step_end(obs.time, self.ingested(obs), window=self.window, hold=self.hold)
