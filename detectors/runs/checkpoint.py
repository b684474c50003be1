"""The timer's checkpoint: the one document a run reads first and writes after every step.

- `watermark`: ingestion time read up to; `eventWatermark`: event time scored up to (a
  checkpoint written before steps has only `watermark`, and event time goes on from it);
- `pending`: the step being finished (scored and its alerts held, not yet learned), so a
  run after a crash finishes it without sending its alerts again, and `pendingEngine`, the
  engine's state as that scoring left it, which the finishing run goes on from;
- `engine`: the engine's state (`Engine.export_state`);
- `lease`: the run that holds it, and until when.

Every write is conditional on the ETag of the last read or write (`StateWriter`), so two runs
never both go on; the release writes back exactly what was last saved.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, NotRequired, Protocol, TypedDict, cast

from detectors.sources.queries import Window

CHECKPOINT_NAME = "timer"
CHECKPOINT_VERSION = 1


class Lease(TypedDict):
    """Which run holds the checkpoint, and until when (ISO 8601)."""

    owner: str
    until: str


class StepBounds(TypedDict):
    """A step's ranges: ingestion time, and event time (absent before steps had them)."""

    since: str
    until: str
    eventSince: NotRequired[str]
    eventUntil: NotRequired[str]


class CheckpointDoc(TypedDict, total=False):
    """The stored document."""

    version: int
    watermark: str
    eventWatermark: str
    pending: StepBounds | None
    pendingEngine: dict[str, Any] | None
    """The engine's state after the pending step was scored (absent in checkpoints written
    before it was kept: such a step goes on from the state its new scoring leaves)."""
    engine: dict[str, Any]
    lease: Lease | None


class StateWriter(Protocol):
    """Where the checkpoint is written (`TableStore`)."""

    def put_state_if(self, name: str, value: Mapping[str, Any], etag: str | None) -> str:
        """Conditional replace; ConflictError when another run changed it."""
        ...


def read_checkpoint(found: Mapping[str, Any] | None) -> CheckpointDoc:
    """The stored document, or a new one when there is none."""
    if not found:
        return {"version": CHECKPOINT_VERSION}
    return cast(CheckpointDoc, dict(found))


class Checkpoint:
    """The checkpoint being worked on, the version last written and that write's ETag.

    Whatever step fails, the lease is released on exactly what was last written: a change
    made in memory but never saved is never saved by the release either.
    """

    def __init__(self, state: StateWriter, doc: CheckpointDoc, etag: str | None) -> None:
        self.state, self.doc, self.etag = state, doc, etag
        self.saved: CheckpointDoc = copy.deepcopy(doc)

    def save(self) -> None:
        """Write the document if nobody else did since; ConflictError otherwise."""
        self.etag = self.state.put_state_if(CHECKPOINT_NAME, self.doc, self.etag)
        self.saved = copy.deepcopy(self.doc)

    def release(self) -> None:
        """Give up the lease on the last written version."""
        self.etag = self.state.put_state_if(
            CHECKPOINT_NAME, {**self.saved, "lease": None}, self.etag
        )


def bounds(window: Window) -> StepBounds:
    """A step's ranges as the checkpoint keeps them."""
    out: StepBounds = {"since": _iso(window.since), "until": _iso(window.until)}
    if window.event_since is not None and window.event_until is not None:
        out["eventSince"] = _iso(window.event_since)
        out["eventUntil"] = _iso(window.event_until)
    return out


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()
