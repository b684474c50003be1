"""One window step: the loop around the engine that the timer, replay and backfill share.

The engine does no I/O. For each window the step has it name the baselines it needs, loads
them, has it judge the window against them, and, once the caller has made the window's
alerts safe, folds what the window taught into the store: with each baseline's ETag, and
when another writer got there first, re-reading and folding again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from detectors.alerts.allow import AllowGate
from detectors.alerts.document import AlertDocument
from detectors.baselines.feedback import alert_record
from detectors.engine.scoring import Engine, Scored, WindowResult
from detectors.model.errors import ConflictError
from detectors.model.observation import Observation
from detectors.stores import BaselineStore, StoredBaseline

log = logging.getLogger(__name__)

SAVE_ATTEMPTS = 5
"""Lost races tolerated in one save before the run gives up (another run keeps writing)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Judged:
    """A scored window with the stored baselines (and their ETags) it was judged against."""

    scored: Scored
    stored: dict[str, StoredBaseline]

    @property
    def groups(self) -> dict[str, list[Observation]]:
        """What the window teaches, by baseline id."""
        return self.scored.groups


class WindowStep:
    """Scores windows with one engine against one store."""

    def __init__(self, engine: Engine, store: BaselineStore) -> None:
        self.engine = engine
        self.store = store

    def score(
        self, observations: Iterable[Observation], *, emit: bool, since: datetime | None = None
    ) -> tuple[WindowResult, Judged]:
        """Judge a window against the stored baselines without changing them."""
        prepared = self.engine.prepare(observations, since=since)
        stored = self.store.load(sorted(prepared.wanted)) if prepared.wanted else {}
        result, scored = self.engine.score(
            prepared, {k: v.baseline for k, v in stored.items()}, emit=emit
        )
        return result, Judged(scored=scored, stored=stored)

    @staticmethod
    def admitted(result: WindowResult, gate: AllowGate | None) -> Iterator[AlertDocument]:
        """The window's alerts that the allow rules let through (all without a gate)."""
        return (a for a in result.alerts if gate is None or gate.admit(a))

    def record(self, alert: AlertDocument, judged: Judged) -> dict[str, Any]:
        """What analysts' feedback on an alert needs later (`baselines.feedback`)."""
        principal_id = alert["principal"]["id"]
        held = judged.stored.get(principal_id)
        return alert_record(
            alert,
            judged.groups.get(principal_id, ()),
            held.baseline if held else None,
            self.engine.settings,
        )

    def learn(self, judged: Judged, *, through: datetime | None = None) -> None:
        """Fold a judged window into the stored baselines (in place: the ones it was judged
        against are the step's to change now); on a lost race, re-read and fold again (see
        `Engine.learned` for `through`)."""
        pending = set(judged.groups)
        stored = judged.stored
        for _attempt in range(SAVE_ATTEMPTS):
            new = self.engine.learned(
                judged.scored,
                {k: v.baseline for k, v in stored.items()},
                only=pending,
                through=through,
            )
            updates = [
                StoredBaseline(baseline=b, etag=held.etag if (held := stored.get(k)) else None)
                for k, b in new.items()
            ]
            try:
                self.store.save(updates)
            except ConflictError as err:
                log.warning("baseline write lost a race, re-reading: %s", err)
                pending -= set(err.written)
                stored = self.store.load(sorted(pending))
                continue
            return
        raise ConflictError(f"baselines kept changing under this run ({SAVE_ATTEMPTS} attempts)")

    def process(self, observations: Iterable[Observation], *, emit: bool) -> WindowResult:
        """Score a window and learn from it; alerts are only rendered when `emit` is true."""
        result, judged = self.score(observations, emit=emit)
        self.learn(judged)
        return result
