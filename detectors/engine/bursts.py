"""One alert per principal, detection and burst: a long-running pattern updates, not repeats.

A burst opens with a finding that scores as an alert. Probing (`FAILURES`) that does not
score as one yet opens a quiet burst, which sends nothing until its evidence together
scores as an alert: a probe that straddles two scoring windows is judged whole, and a
later finding that takes something is the probe's success (`FAILURES_THEN_SUCCESS`). A quiet
burst ends `burst_gap_minutes` after its first finding. Later findings of the same principal
and detection, each within `burst_gap_minutes` of the previous one, continue it: their
reasons fold into the burst's (each code once, at its highest weight), and a message is
sent only when that makes a difference (the severity rises, or the score grows by
`update_min_score_gain`); otherwise the finding is counted as a repeat. Every message of a
burst carries the same `burst.id` and a rising `burst.sequence`.

An update's reasons describe the whole burst, not the finding that held a code's highest
weight: the weights (and so the score) are those of the fold above, while each message is
said again of all the burst's activity (the detection's `restate`: seven sites taken in two
windows are seven, not the first window's one), or, for evidence judged against a history
that has moved on since, is every distinct message the burst's findings gave, in order. The
burst keeps its activity for this (and for the update to list it), within a budget.

The open bursts are part of the engine's state (small, plain JSON), so the timer, which
runs window by window from a checkpoint, and a replay behave the same.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from detectors.alerts.render import alert_id
from detectors.detections import restate_of
from detectors.detections.evidence import graded
from detectors.detections.spec import Finding, Severity
from detectors.engine.held import held_size, observation_from, observation_json
from detectors.model.observation import Observation
from detectors.model.reasons import TAKEN, Reason, ReasonCode
from detectors.settings.detection import DetectionSettings

_RANK = {None: 0, Severity.LOW: 1, Severity.MEDIUM: 2, Severity.HIGH: 3}
_MAX_QUIET = 100
"""Quiet bursts kept at most: probing in a hundred identities at once is alert enough."""
_ACTIVITY_BUDGET = 40_000
_ACTIVITY_TOTAL = 120_000
"""Characters (as `held_size` counts them) of activity one burst, and all open bursts
together, keep in the engine state (one Table Storage entity); what does not fit is counted
in `omitted`, and that burst's reasons are then no longer restated from its activity."""
_MESSAGES_KEPT = 4
"""Distinct messages kept per reason code."""
_LATER = " Later in the burst: "


@dataclass(kw_only=True, slots=True)
class Burst:
    """An open burst: its id, how many messages it sent, and the evidence so far."""

    id: str
    sequence: int
    first_seen: datetime
    last_seen: datetime
    score: float
    severity: Severity | None
    reasons: dict[ReasonCode, Reason] = field(default_factory=dict)
    repeats: int = 0
    """Findings folded in since the last message."""
    activity: list[Observation] = field(default_factory=list)
    """The burst's observations so far, each once, within `_ACTIVITY_BUDGET`."""
    omitted: int = 0
    """Observations of the burst left out of `activity` for its budget."""
    messages: dict[ReasonCode, list[str]] = field(default_factory=dict)
    """Per code, the distinct messages the burst's findings gave, in order."""

    def add(self, finding: Finding, room: int) -> None:
        """Fold a finding's activity (at most `room` more characters of it, and within the
        burst's own budget) and messages into the burst's."""
        seen = {o.event_id for o in self.activity}
        room = min(room, _ACTIVITY_BUDGET - sum(held_size(o) for o in self.activity))
        for obs in finding.observations:
            if obs.event_id in seen:
                continue
            seen.add(obs.event_id)
            size = held_size(obs)
            if size <= room:
                self.activity.append(obs)
                room -= size
            else:
                self.omitted += 1
        for reason in finding.reasons:
            said = self.messages.setdefault(reason.code, [])
            if reason.message not in said and len(said) < _MESSAGES_KEPT:
                said.append(reason.message)

    def told(self, detection: str, reasons: list[Reason]) -> list[Reason]:
        """The burst's reasons (weights as folded) with messages true of the whole burst."""
        restate = restate_of(detection)
        out = []
        for reason in reasons:
            said = self.messages.get(reason.code) or [reason.message]
            # What was taken is counted again over the whole burst, even when each window
            # said the same words ("1 site(s)" of two different sites).
            message = None if self.omitted else restate(reason.code, self.activity)
            if message is None:
                message = said[0] if len(said) == 1 else _LATER.join(said)
            out.append(Reason(code=reason.code, message=message, weight=reason.weight))
        return out

    def to_json(self) -> dict[str, Any]:
        """The burst as plain JSON values."""
        return {
            "id": self.id,
            "sequence": self.sequence,
            "firstSeen": self.first_seen.isoformat(),
            "lastSeen": self.last_seen.isoformat(),
            "score": self.score,
            "severity": self.severity.value if self.severity else None,
            "repeats": self.repeats,
            "reasons": [
                {"code": r.code.value, "message": r.message, "weight": r.weight}
                for r in self.reasons.values()
            ],
            "activity": [observation_json(o) for o in self.activity],
            "omitted": self.omitted,
            "messages": {code.value: said for code, said in self.messages.items()},
        }

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> Burst:
        """A burst from `to_json`'s output; KeyError/ValueError/TypeError if malformed."""
        reasons = [
            Reason(code=ReasonCode(r["code"]), message=str(r["message"]), weight=float(r["weight"]))
            for r in value["reasons"]
        ]
        return cls(
            id=str(value["id"]),
            sequence=int(value["sequence"]),
            first_seen=datetime.fromisoformat(value["firstSeen"]),
            last_seen=datetime.fromisoformat(value["lastSeen"]),
            score=float(value["score"]),
            severity=Severity(value["severity"]) if value["severity"] else None,
            repeats=int(value["repeats"]),
            reasons={r.code: r for r in reasons},
            # Added later: a burst written before holds neither (its messages are its reasons').
            activity=[observation_from(o) for o in value.get("activity") or ()],
            omitted=int(value.get("omitted") or 0),
            messages={
                ReasonCode(code): [str(m) for m in said]
                for code, said in (value.get("messages") or {}).items()
            },
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class Message:
    """A finding to send, with the burst it belongs to."""

    finding: Finding
    burst: dict[str, Any]
    """`id`, `sequence`, `firstSeen` (of the burst) and `repeats` folded since the last one."""
    activity: tuple[Observation, ...] = ()
    """The burst's activity so far (this finding's included), for an update to list."""
    omitted: int = 0
    """Observations of the burst left out of `activity`."""


class Bursts:
    """The open bursts, keyed by detection and principal."""

    def __init__(self, settings: DetectionSettings) -> None:
        self.settings = settings
        self.open: dict[str, Burst] = {}

    def admit(self, finding: Finding) -> Message | None:
        """What to send for a finding: a new alert, an update of its burst, or nothing."""
        s = self.settings
        key = f"{finding.detection.id}\x1f{finding.principal.id}"
        first = min(o.time for o in finding.observations)
        last = max(o.time for o in finding.observations)
        burst = self.open.get(key)
        gap = timedelta(minutes=s.burst_gap_minutes)
        # A quiet burst holds one stretch of probing: it never outlives its first finding by
        # more than the gap.
        if burst is not None and (
            first - burst.last_seen > gap
            or (burst.severity is None and first - burst.first_seen > gap)
        ):
            burst = None
            del self.open[key]
        if burst is None:
            if finding.severity is None:
                if _suspicion(finding) >= s.quiet_burst_score or any(
                    r.code is ReasonCode.FAILURES for r in finding.reasons
                ):
                    self._keep_quiet(key, finding, first, last)
                return None
            burst = Burst(
                id=alert_id(finding.detection.id, finding.principal.id, finding.observations),
                sequence=1,
                first_seen=first,
                last_seen=last,
                score=finding.score,
                severity=finding.severity,
                reasons={r.code: r for r in finding.reasons},
            )
            burst.add(finding, self._room())
            self.open[key] = burst
            return Message(finding=finding, burst=_burst_field(burst))
        burst.last_seen = max(burst.last_seen, last)
        burst.add(finding, self._room())
        merged = dict(burst.reasons)
        for reason in finding.reasons:
            held = merged.get(reason.code)
            if held is None or reason.weight > held.weight:
                merged[reason.code] = reason
        if burst.severity is None:
            _success_after_probing(merged, finding, s)
            added = merged.get(ReasonCode.FAILURES_THEN_SUCCESS)
            if added is not None:
                burst.messages.setdefault(added.code, [added.message])
        burst.reasons = merged
        # A quiet burst sent nothing yet: when it turns into an alert, the alert is of all its
        # activity (the probe or the session that straddled windows), not the last finding's.
        whole = burst.severity is None and bool(burst.activity)
        update = graded(
            spec=finding.detection,
            principal=finding.principal,
            observations=_joined(burst.activity, finding.observations)
            if whole
            else finding.observations,
            reasons=burst.told(finding.detection.id, list(merged.values())),
            settings=s,
        )
        rises = _RANK[update.severity] > _RANK[burst.severity]
        if burst.severity is None:
            # Quiet until the probe's evidence together scores as an alert, whose id the
            # burst then takes (a burst's id is its first message's).
            burst.score = update.score
            if update.severity is None:
                return None
            burst.id = alert_id(update.detection.id, update.principal.id, update.observations)
        if rises or update.score >= burst.score + s.update_min_score_gain:
            burst.sequence += 1
            burst.score, burst.severity = update.score, update.severity
            message = Message(
                finding=update,
                burst=_burst_field(burst),
                activity=tuple(burst.activity),
                omitted=burst.omitted,
            )
            burst.repeats = 0
            return message
        if finding.severity is not None:
            burst.repeats += 1
        return None

    def _room(self) -> int:
        """Characters of activity the open bursts together may still keep."""
        return _ACTIVITY_TOTAL - sum(
            held_size(o) for burst in self.open.values() for o in burst.activity
        )

    def alerting(self, at: datetime | None = None) -> set[str]:
        """Principals with an open burst that has sent an alert: what they do until it ends
        is part of what raised it. With `at`, only bursts that activity at that moment could
        still continue (last seen within `burst_gap_minutes`)."""
        gap = timedelta(minutes=self.settings.burst_gap_minutes)
        return {
            burst_key.split("\x1f", 1)[1]
            for burst_key, b in self.open.items()
            if b.severity and (at is None or at - b.last_seen <= gap)
        }

    def _keep_quiet(self, key: str, finding: Finding, first: datetime, last: datetime) -> None:
        """Open a quiet burst (sequence 0, no severity); at most `_MAX_QUIET` are kept, the
        weakest dropped first, since open bursts are part of the run state."""
        self.open[key] = Burst(
            id=alert_id(finding.detection.id, finding.principal.id, finding.observations),
            sequence=0,
            first_seen=first,
            last_seen=last,
            score=finding.score,
            severity=None,
            reasons={r.code: r for r in finding.reasons},
        )
        self.open[key].add(finding, self._room())
        quiet = [k for k, b in self.open.items() if b.severity is None]
        excess = len(quiet) - _MAX_QUIET
        if excess > 0:
            for k in sorted(quiet, key=lambda k: (self.open[k].score, k))[:excess]:
                del self.open[k]

    def forget(self, newest: datetime) -> None:
        """Keep only the bursts that can still continue after `newest`."""
        gap = timedelta(minutes=self.settings.burst_gap_minutes)
        self.open = {
            k: b
            for k, b in self.open.items()
            if newest - (b.last_seen if b.severity else b.first_seen) <= gap
        }

    def export(self) -> dict[str, Any]:
        """The open bursts, as plain JSON values."""
        return {key: burst.to_json() for key, burst in sorted(self.open.items())}

    def restore(self, value: Mapping[str, Any]) -> None:
        """Continue from `export`'s output."""
        self.open = {str(key): Burst.from_json(burst) for key, burst in value.items()}


def _suspicion(finding: Finding) -> float:
    """What a finding scores beyond what was taken (`TAKEN`: every download, setting or key
    read adds that): the evidence that something about it is odd."""
    return sum(r.weight for r in finding.reasons if r.code not in TAKEN)


def _success_after_probing(
    merged: dict[ReasonCode, Reason], finding: Finding, settings: DetectionSettings
) -> None:
    """A quiet probe whose later finding took something succeeded after its failures, though
    no one window held both: add `FAILURES_THEN_SUCCESS`, scaled as its `FAILURES` was (by
    the principal's history)."""
    failures = merged.get(ReasonCode.FAILURES)
    if failures is None or ReasonCode.FAILURES_THEN_SUCCESS in merged:
        return
    if not any(r.code in TAKEN for r in finding.reasons):
        return
    scale = failures.weight / settings.weight_failures if settings.weight_failures else 1.0
    merged[ReasonCode.FAILURES_THEN_SUCCESS] = Reason(
        code=ReasonCode.FAILURES_THEN_SUCCESS,
        message="Succeeded after the failures of the minutes before: the probing found "
        "something it could read.",
        weight=round(settings.weight_failures_then_success * scale, 1),
    )


def _burst_field(burst: Burst) -> dict[str, Any]:
    return {
        "id": burst.id,
        "sequence": burst.sequence,
        "firstSeen": burst.first_seen,
        "repeats": burst.repeats,
    }


def _joined(
    activity: Sequence[Observation], observations: Sequence[Observation]
) -> list[Observation]:
    """A burst's kept activity and a finding's observations, each once, in time order."""
    seen = {o.event_id for o in activity}
    return sorted(
        [*activity, *(o for o in observations if o.event_id not in seen)],
        key=lambda o: (o.time, o.event_id),
    )
