"""Trails: a principal's new address block followed across days (`CAMPAIGN`).

A credential taken from an address block new to the principal and to the whole organisation
starts a trail of that block. One such day looks like curiosity, or a trip; what follows
tells them apart. A later day counts when the block is used again to take the credentials of
a site not yet taken from it, and the identity does nothing else from there, while its own
work goes on from the blocks it knows: one identity in two places, one of which only takes.
A deployment, a Kudu session, a setting or a job changed from the block makes it one of the
principal's places (a new home, a hotel) and ends the trail. The days must follow each
other within `campaign_days` (a block used now and then is a second home or a phone), and a
trail is forgotten that long after its last use.

Trails are part of the engine state (small, plain JSON), so the timer and a replay agree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from detectors.baselines.baseline import Dimension, PrincipalBaseline, wide_network_of
from detectors.baselines.surroundings import Surroundings
from detectors.detections import CREDENTIAL_DOWNLOAD
from detectors.detections.evidence import listing, located
from detectors.detections.spec import Finding
from detectors.engine.chains import Findings, add_reason
from detectors.model.days import day_number, day_start
from detectors.model.observation import Observation, OperationFamily, PrincipalType, Status
from detectors.model.reasons import Reason, ReasonCode
from detectors.settings.detection import DetectionSettings

F = OperationFamily
_TAKING = frozenset({F.CREDENTIAL_READ, F.FUNCTION_KEYS_READ})
"""What takes credentials or secrets (a successful read)."""
_LOOKING = frozenset(
    {F.CONFIG_READ, F.CREDENTIAL_CHANGE, F.BASIC_AUTH_POLICY, F.FUNCTION_KEYS_CHANGE}
)
"""What a taker may also do from the block without it becoming a place it works from."""
_MAX_TRAILS = 200
"""Trails kept at most (the weakest, least recently used, dropped first): the engine state
is one Table Storage entity."""
_SITES_KEPT = 12
"""Site names kept per trail: enough to tell each day's site apart and to list them."""
_MAX_STEPS = 3
"""Later days that add weight: a campaign of four days weighs what a longer one does."""


@dataclass(kw_only=True, slots=True)
class Trail:
    """One principal's use of one new block: the days it took something new from there."""

    first: int
    """The day the block first gave credentials to the principal."""
    days: dict[int, list[str]] = field(default_factory=dict)
    """Per day, the sites (names) whose credentials were first taken from the block that day."""
    elsewhere: set[int] = field(default_factory=set)
    """Days on which the principal also worked from a block it knows."""
    last: int = 0
    """The last day the block was used."""

    def sites(self) -> list[str]:
        return [site for day in sorted(self.days) for site in self.days[day]]

    def to_json(self) -> dict[str, Any]:
        return {
            "first": self.first,
            "days": {str(day): sites for day, sites in sorted(self.days.items())},
            "elsewhere": sorted(self.elsewhere),
            "last": self.last,
        }

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> Trail:
        """A trail from `to_json`'s output; KeyError/ValueError/TypeError if malformed."""
        return cls(
            first=int(value["first"]),
            days={int(day): [str(s) for s in sites] for day, sites in value["days"].items()},
            elsewhere={int(day) for day in value["elsewhere"]},
            last=int(value["last"]),
        )


Touched = dict[str, set[str]]
"""Per principal, the blocks whose trails took something new in a window."""


class Trails:
    """The new blocks being followed, per principal and block."""

    def __init__(self, settings: DetectionSettings) -> None:
        self.settings = settings
        self.open: dict[str, dict[str, Trail]] = {}

    def follow(
        self,
        window: Sequence[Observation],
        baselines: Mapping[str, PrincipalBaseline],
        surroundings: Surroundings,
    ) -> Touched:
        """Follow the window's activity (time-ordered, late rows included, once per window);
        the principals' blocks that took something new today, for `mark`."""
        touched: Touched = {}
        for obs in window:
            if obs.principal.type is PrincipalType.PUBLISHING_USER or not located(obs):
                continue
            block = wide_network_of(obs.source_ip or "")
            if self._follow(obs, block, baselines, surroundings):
                touched.setdefault(obs.principal.id, set()).add(block)
        if window:
            self._prune(day_number(max(o.time for o in window)))
        return touched

    def mark(self, findings: Findings, touched: Touched) -> Findings:
        """The findings with `CAMPAIGN` added to each credential finding that holds what a
        followed block took (a late row's finding as well as the window's own)."""
        out = dict(findings)
        for principal_id, blocks in sorted(touched.items()):
            for block in sorted(blocks):
                self._judge(out, principal_id, block)
        return out

    def _prune(self, today: int) -> None:
        """Forget trails unused for `campaign_days`, and keep at most `_MAX_TRAILS` (the most
        recently used): every window, so that a replay and the timer, which saves the state
        after its runs, follow the same trails."""
        horizon = today - self.settings.campaign_days
        kept = {
            p: {b: t for b, t in trails.items() if t.last >= horizon}
            for p, trails in self.open.items()
        }
        self.open = {p: trails for p, trails in kept.items() if trails}
        every = sorted(
            (
                (t.last, len(t.days), p, b)
                for p, trails in self.open.items()
                for b, t in trails.items()
            ),
            reverse=True,
        )
        for _, _, p, b in every[_MAX_TRAILS:]:
            del self.open[p][b]
            if not self.open[p]:
                del self.open[p]

    def _follow(
        self,
        obs: Observation,
        block: str,
        baselines: Mapping[str, PrincipalBaseline],
        surroundings: Surroundings,
    ) -> bool:
        """Note one action in the principal's trails; whether it took something from a trail's
        block (then judged once the window is followed)."""
        s, today, principal_id = self.settings, day_number(obs.time), obs.principal.id
        trails = self.open.get(principal_id)
        trail = trails.get(block) if trails else None
        taking = obs.family in _TAKING and obs.status is Status.SUCCEEDED
        if trail is None:
            held = baselines.get(principal_id)
            if held is None or held.history_days(today) < s.min_history_days:
                return False
            if held.knows(Dimension.WIDE_NETWORKS, block, today, s.baseline_max_age_days):
                for other in (trails or {}).values():
                    if today >= other.first:
                        other.elsewhere.add(today)
                return False
            if not taking or surroundings.organisation_knows(block, today):
                return False
            trail = Trail(first=today, last=today)
            self.open.setdefault(principal_id, {})[block] = trail
        if obs.family not in _TAKING and obs.family not in _LOOKING:
            # Work done from the block: one of the principal's places.
            del self.open[principal_id][block]
            if not self.open[principal_id]:
                del self.open[principal_id]
            return False
        trail.last = max(trail.last, today)
        if not taking:
            return False
        site = obs.resource.name
        if site in trail.sites():
            return False
        taken = trail.days.setdefault(today, [])
        if len(trail.sites()) < _SITES_KEPT:
            taken.append(site)
        return today > trail.first

    def _judge(self, out: Findings, principal_id: str, block: str) -> None:
        """Add `CAMPAIGN` to the principal's credential finding when the block's trail has
        taken something new on more than one day, and the principal worked elsewhere then."""
        s = self.settings
        trail = self.open.get(principal_id, {}).get(block)
        finding: Finding | None = out.get((CREDENTIAL_DOWNLOAD, principal_id))
        if (
            trail is None
            or finding is None
            or not any(
                o.family in _TAKING and located(o) and wide_network_of(o.source_ip or "") == block
                for o in finding.observations
            )
        ):
            return
        days = _run(sorted(day for day, sites in trail.days.items() if sites), s.campaign_days)
        if len(days) < 2 or not trail.elsewhere:
            return
        first = _date(trail.first)
        weight = s.weight_campaign * min(len(days) - 1, _MAX_STEPS)
        reason = Reason(
            code=ReasonCode.CAMPAIGN,
            message=f"From {block}, a block that first gave it credentials on {first} and that "
            f"nobody else in the organisation uses, it took credentials on {len(days)} "
            f"separate days, each day of a site not taken from there before "
            f"({listing(trail.sites())}), and did nothing else from it, while its own work went "
            "on from its usual networks: one identity in two places. Each day alone looks like "
            "curiosity; together they are a campaign.",
            weight=weight,
        )
        add_reason(out, CREDENTIAL_DOWNLOAD, finding.principal, reason, (), settings=s)

    def export(self) -> dict[str, Any]:
        """The trails, as plain JSON values (pruned as each window is followed)."""
        return {
            p: {b: t.to_json() for b, t in sorted(trails.items())}
            for p, trails in sorted(self.open.items())
        }

    def restore(self, value: Mapping[str, Any]) -> None:
        """Continue from `export`'s output."""
        self.open = {
            str(p): {str(b): Trail.from_json(t) for b, t in trails.items()}
            for p, trails in value.items()
        }


def _run(days: Sequence[int], gap: int) -> list[int]:
    """The last run of days in which each follows the one before within `gap` days (a
    weekend fits in four): a campaign goes on day after day, a second home is used now and
    then."""
    run: list[int] = []
    for day in days:
        if run and day - run[-1] > gap:
            run = []
        run.append(day)
    return run


def _date(day: int) -> date:
    return day_start(day).date()
