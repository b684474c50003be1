"""Per-principal baselines: what each identity did before, and how that memory ages.

A baseline is working state while a run learns into it and a value to everyone else.
`absorb` folds a window's observations into a baseline in place: during a replay (and within
a timer step) each baseline accumulates what it learns, window after window, and is encoded
only when it is saved (`codec`). `learn` is the same step on a copy, for what is only
supposed (the rows judged first, feedback's records), and leaves its argument as it was.
Nothing here touches storage or reads a clock.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from functools import lru_cache
from operator import itemgetter
from typing import Any

from detectors.model.days import day_number, hour_number
from detectors.model.observation import (
    ClientTool,
    Observation,
    OperationFamily,
    PrincipalType,
    ResourceRef,
    Status,
)
from detectors.model.operations import DEPLOYMENT_CREDENTIAL_SUFFIXES


class Dimension(StrEnum):
    """What a baseline keeps as {value: last day seen}. The values are the baseline's field
    names and, in camel case, the operator-facing stored property names (`codec`)."""

    FAMILIES = "families"
    CONFIG_SUFFIXES = "config_suffixes"
    SITES = "sites"
    SUBSCRIPTIONS = "subscriptions"
    TOOLS = "tools"
    APP_IDS = "app_ids"
    IPS = "ips"
    NETWORKS = "networks"
    WIDE_NETWORKS = "wide_networks"
    CREDENTIAL_SITES = "credential_sites"
    WEBJOBS = "webjobs"
    CHANGE_SLOTS = "change_slots"
    PRINCIPALS = "principals"


DIMENSIONS = tuple(Dimension)


@lru_cache(maxsize=65_536)
def network_of(ip: str) -> str:
    """The network an address belongs to for novelty: /24 for IPv4, /48 for IPv6."""
    address = ipaddress.ip_address(ip)
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


@lru_cache(maxsize=65_536)
def wide_network_of(ip: str) -> str:
    """The wider network of an address: /16 for IPv4, /32 for IPv6 (a provider's block)."""
    address = ipaddress.ip_address(ip)
    prefix = 16 if address.version == 4 else 32
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


@dataclass(kw_only=True, slots=True)
class PrincipalBaseline:
    """What one principal has done, with the last day each thing was seen.

    Not frozen: `absorb` learns into a baseline in place, so that a replay does not build a
    new one per principal and window. Everyone else reads it and never changes it; a
    baseline made by `replace` shares its mappings with the one it was made from, and
    `absorb` copies a mapping it did not make itself before it writes to it (`_owned`).
    """

    principal_id: str
    principal_type: PrincipalType
    name: str
    first_seen: datetime
    last_seen: datetime
    active_days: int = 0
    last_active_day: int = -1
    resumed_day: int = -1
    """The day the principal came back after more than `baseline_max_age_days` away, all it
    did before forgotten: where its remembered history starts again (-1: never away that
    long)."""
    operations: int = 0
    failures: int = 0
    families: Mapping[str, int] = field(default_factory=dict)
    config_suffixes: Mapping[str, int] = field(default_factory=dict)
    sites: Mapping[str, int] = field(default_factory=dict)
    subscriptions: Mapping[str, int] = field(default_factory=dict)
    tools: Mapping[str, int] = field(default_factory=dict)
    app_ids: Mapping[str, int] = field(default_factory=dict)
    ips: Mapping[str, int] = field(default_factory=dict)
    networks: Mapping[str, int] = field(default_factory=dict)
    wide_networks: Mapping[str, int] = field(default_factory=dict)
    credential_sites: Mapping[str, int] = field(default_factory=dict)
    """Sites whose credentials, secrets or keys the principal read or changed."""
    webjobs: Mapping[str, int] = field(default_factory=dict)
    change_slots: Mapping[str, int] = field(default_factory=dict)
    """Hours of the week, each of one ISO week (`2026-W43-2T18`: Tuesday 18:00 UTC), in which
    the principal changed credentials, keys or the basic-auth policy: its maintenance windows."""
    principals: Mapping[str, int] = field(default_factory=dict)
    """Sites' context baselines only: the principals that took the site's deployment
    credentials or function keys, the crowd that works on it."""
    hours: tuple[int, ...] = (0,) * 24
    weekdays: tuple[int, ...] = (0,) * 7
    last_hour_slot: int = -1
    credential_reads_per_day: Mapping[int, int] = field(default_factory=dict)
    webjob_runs_peak_hour: Mapping[int, int] = field(default_factory=dict)
    current_hour_runs: int = 0
    learned_through: datetime | None = None
    """Ingestion cut of the last timer step folded in: a re-run of that step learns nothing."""
    quarantine: Mapping[str, Mapping[str, tuple[int, int]]] = field(default_factory=dict)
    """Values new to the principal that only an alert's activity taught, by dimension:
    {value: (day seen, day released)}. They count as known from the day they are released
    (`quarantine_days` after the alert, unless an analyst's verdict came first: see
    `baselines.feedback`), and while the burst that alerted goes on (`told`), so an alert
    nobody triages does not teach the baseline the attacker's network and tool at once."""
    _owned: set[str] = field(default_factory=set, init=False, repr=False, compare=False)
    """Names of the mappings this baseline made itself, which `absorb` may change in place
    (none for one read from a store or made by `replace`: each is copied once, when first
    written)."""
    _fresh: set[_Shape] = field(default_factory=set, init=False, repr=False, compare=False)
    """Activity (`_Shape`) learned on day `_fresh_day`, the day of `last_seen`, whose every
    value the dimensions still hold with that day: learning it again changes nothing."""
    _fresh_day: int = field(default=-1, init=False, repr=False, compare=False)

    def knows(self, dimension: Dimension, value: str, today: int, max_age_days: int) -> bool:
        """Whether `value` was seen in `dimension` within the last `max_age_days` (or was
        quarantined and is released by `today`)."""
        seen: Mapping[str, int] = getattr(self, dimension)
        last = seen.get(value)
        if last is not None and today - last <= max_age_days:
            return True
        if self.quarantine and (held := self.quarantine.get(dimension, {}).get(value)):
            return _released_by(held, today) and today - held[0] <= max_age_days
        return False

    def last_day(self, dimension: Dimension, value: str) -> int:
        """The last day `value` was seen in `dimension`, quarantined or not (-1: never)."""
        seen: Mapping[str, int] = getattr(self, dimension)
        held = self.quarantine.get(dimension, {}).get(value) if self.quarantine else None
        return max(seen.get(value, -1), held[0] if held else -1)

    def known_count(self, dimension: Dimension, today: int, max_age_days: int) -> int:
        """How many values of a dimension still count as known."""
        seen: Mapping[str, int] = getattr(self, dimension)
        count = sum(1 for last in seen.values() if today - last <= max_age_days)
        held = self.quarantine.get(dimension, {}) if self.quarantine else {}
        return count + sum(
            1
            for value, (day, release) in held.items()
            if value not in seen
            and _released_by((day, release), today)
            and today - day <= max_age_days
        )

    def history_start(self, today: int, max_age_days: int) -> int:
        """The day its remembered history starts, seen from `today`: its first day on record,
        or the day it came back after an absence that made the baseline forget everything
        before (`today` itself, when it comes back today)."""
        if 0 <= self.last_active_day < today - max_age_days:
            return today
        return max(day_number(self.first_seen), self.resumed_day)

    def history_days(self, today: int) -> int:
        """Days on which the principal was active before `today`."""
        return self.active_days - (1 if self.last_active_day == today else 0)

    def hour_share(self, hour: int) -> float:
        """Share of the principal's active hours that fell in this hour of day."""
        total = sum(self.hours)
        return self.hours[hour] / total if total else 0.0

    def usual_hour(self, hour: int, share: float) -> bool:
        """Whether this hour of day is one the principal works in: its own share of the
        activity, with half its neighbours' added, reaches `share`. A day that starts an hour
        early is not unusual, and daylight saving time moves a person's UTC hours by one."""
        near = self.hour_share((hour - 1) % 24) + self.hour_share((hour + 1) % 24)
        return self.hour_share(hour) + near / 2 >= share

    def peak_credential_reads(self, today: int) -> int:
        """Most credential reads on any earlier day still remembered."""
        return max(
            (n for day, n in self.credential_reads_per_day.items() if day != today), default=0
        )

    def peak_webjob_runs_per_hour(self, today: int) -> int:
        """Most WebJob runs in one hour on any earlier day still remembered."""
        return max((n for day, n in self.webjob_runs_peak_hour.items() if day != today), default=0)


SENSITIVE_FAMILIES = frozenset(
    {
        OperationFamily.CREDENTIAL_READ,
        OperationFamily.CREDENTIAL_CHANGE,
        OperationFamily.BASIC_AUTH_POLICY,
        OperationFamily.FUNCTION_KEYS_READ,
        OperationFamily.FUNCTION_KEYS_CHANGE,
    }
)
"""Operations that read or change credentials, secrets or keys."""

_CREDENTIAL_FAMILIES = frozenset(
    {
        OperationFamily.CREDENTIAL_READ,
        OperationFamily.FUNCTION_KEYS_READ,
    }
)


SITE_CONTEXT_PREFIX = "site:"
"""Ids of sites' context baselines (see `baselines.surroundings`): the ones with a crowd."""

_CROWD_SUFFIXES = frozenset({None, *DEPLOYMENT_CREDENTIAL_SUFFIXES})
"""Credential reads that count a principal into a site's crowd: deployment credentials and
function keys (which carry no configuration suffix), not the settings every reviewer lists."""

CHANGE_SLOT_FAMILIES = frozenset(
    {
        OperationFamily.CREDENTIAL_CHANGE,
        OperationFamily.BASIC_AUTH_POLICY,
        OperationFamily.FUNCTION_KEYS_CHANGE,
    }
)
"""Changes whose hour of the week `change_slots` remembers."""


def change_slot(moment: datetime) -> str:
    """The hour of the week of one ISO week a moment falls in: `2026-W43-2T18`."""
    year, week, weekday = moment.isocalendar()
    return f"{year}-W{week:02d}-{weekday}T{moment.hour:02d}"


_Shape = tuple[
    int, OperationFamily, str | None, ResourceRef, ClientTool, str | None, str | None, str | None
]
"""What one observation teaches the dimensions: (day, what, where, how, from where, job)."""
_FAILED = Status.FAILED
_WEBJOB_RUN = OperationFamily.WEBJOB_RUN
_SHAPE_DIMENSIONS = frozenset(DIMENSIONS) - {Dimension.PRINCIPALS, Dimension.CHANGE_SLOTS}
"""The dimensions a `_Shape` teaches (the crowd and the change slots are learned apart)."""
_PER_DAY = ("credential_reads_per_day", "webjob_runs_peak_hour")
_VALUE: dict[OperationFamily | ClientTool, str] = {
    member: member.value for kind in (OperationFamily, ClientTool) for member in kind
}
"""Each family's and tool's value: a lookup costs less than the enum's `value` property."""


def learn(
    baseline: PrincipalBaseline | None,
    observations: Iterable[Observation],
    *,
    max_age_days: int,
    max_values: int,
    through: datetime | None = None,
    context: tuple[str, str] | None = None,
    quarantined: Collection[str] = (),
    quarantine_days: int = 0,
) -> PrincipalBaseline | None:
    """The baseline after also having seen these observations, as a new baseline: `baseline`
    is left as it was (`absorb`, on a copy that shares what it does not change)."""
    items = list(observations)
    if not items:
        return baseline
    return absorb(
        replace(baseline) if baseline is not None else None,
        items,
        max_age_days=max_age_days,
        max_values=max_values,
        through=through,
        context=context,
        quarantined=quarantined,
        quarantine_days=quarantine_days,
    )


def absorb(
    baseline: PrincipalBaseline | None,
    observations: Iterable[Observation],
    *,
    max_age_days: int,
    max_values: int,
    through: datetime | None = None,
    context: tuple[str, str] | None = None,
    quarantined: Collection[str] = (),
    quarantine_days: int = 0,
    idle: Collection[str] = (),
) -> PrincipalBaseline | None:
    """Learn these observations (time-ordered, one principal) into `baseline`, in place, and
    return it (a new baseline when there is none yet, None when there is nothing to learn).

    The caller owns `baseline`: one read from a store for this step, or its own copy.
    Ageing (values older than `max_age_days` before the last day seen are forgotten, at
    most `max_values` per dimension are kept) happens as the days move on, once per day and
    baseline, and whenever a dimension outgrows `max_values`: what a baseline answers
    depends on it (a late row of yesterday, judged against a baseline that moved on).
    `through` marks the window they came from as learned (see `learned_through`).
    `context` (id, name) learns a context baseline (a site, a job, a peer group; see
    `surroundings`) from several principals' observations instead.
    `quarantined`: event ids of observations an alert listed; what they teach that the
    baseline does not know yet is held in `quarantine` for `quarantine_days` (0: learned
    at once like the rest); they count as operations but not as the principal's active
    days (`idle`): an intrusion that used a leaver's identity does not make the leaver look
    active while away.
    """
    items = observations if isinstance(observations, list) else list(observations)
    if not items:
        return baseline
    held_back = (
        [o for o in items if o.event_id in quarantined]
        if quarantined and quarantine_days > 0
        else []
    )
    if held_back:
        held_ids = {o.event_id for o in held_back}
        others = [o for o in items if o.event_id not in held_ids]
        before = None
        if baseline is not None:
            # What the baseline knew before: the mappings it has now become the snapshot's,
            # and the baseline copies each one it changes below.
            before = replace(baseline)
            baseline._owned.clear()
        learned = absorb(
            baseline,
            items,
            max_age_days=max_age_days,
            max_values=max_values,
            through=through,
            context=context,
            idle=held_ids,
        )
        assert learned is not None  # items is not empty
        _quarantine(
            before, learned, held_back, others, max_age_days=max_age_days, days=quarantine_days
        )
        return learned
    first = items[0]
    if baseline is None:
        baseline = PrincipalBaseline(
            principal_id=context[0] if context else first.principal.id,
            principal_type=PrincipalType.UNKNOWN if context else first.principal.type,
            name=context[1] if context else first.principal.name,
            first_seen=first.time,
            last_seen=first.time,
        )
        baseline._owned.update(_MAPPINGS)
    # Only a site keeps its crowd: a peer group's would be everyone, rewritten every window.
    crowd = context is not None and context[0].startswith(SITE_CONTEXT_PREFIX)
    # What the window teaches each dimension (only those it teaches anything).
    seen: defaultdict[Dimension, dict[str, int]] = defaultdict(dict)
    hours: list[int] | None = None
    weekdays: list[int] | None = None
    reads: dict[int, int] | None = None
    run_peaks: dict[int, int] | None = None
    active_days, last_active_day = baseline.active_days, baseline.last_active_day
    resumed_day = baseline.resumed_day
    last_hour_slot, current_hour_runs = baseline.last_hour_slot, baseline.current_hour_runs
    operations, failures = baseline.operations, baseline.failures
    last_seen = baseline.last_seen
    old_day = day_number(last_seen)
    # The fast path: activity of the baseline's own day that it learned already.
    fresh = baseline._fresh if baseline._fresh_day == old_day else set()
    other_days = False

    # One pass over the observations for time-based counters, then the dimensions once per
    # distinct (day, what, where, how, from where): a burst repeats the same few of these.
    shapes: dict[_Shape, None] = {}
    for obs in items:
        today = day_number(obs.time)
        slot = hour_number(obs.time)
        if today != last_active_day and obs.event_id not in idle:
            if 0 <= last_active_day < today - max_age_days:
                resumed_day = today
            active_days += 1
            last_active_day = today
        if slot != last_hour_slot:
            if hours is None or weekdays is None:
                hours, weekdays = list(baseline.hours), list(baseline.weekdays)
            hours[obs.time.hour] += 1
            weekdays[obs.time.weekday()] += 1
            last_hour_slot = slot
            current_hour_runs = 0
        n = obs.count
        operations += n
        if obs.status is _FAILED:
            failures += n
            # A failure proves an attempt, not a capability: it teaches nothing else.
            continue
        family = obs.family
        if family in _CREDENTIAL_FAMILIES:
            if reads is None:
                reads = _writable(baseline, "credential_reads_per_day")
            reads[today] = reads.get(today, 0) + n
            if crowd and obs.config_suffix in _CROWD_SUFFIXES:
                seen[Dimension.PRINCIPALS][obs.principal.id] = today
        elif family in CHANGE_SLOT_FAMILIES:
            seen[Dimension.CHANGE_SLOTS][change_slot(obs.time)] = today
        elif family is _WEBJOB_RUN:
            current_hour_runs += n
            if run_peaks is None:
                run_peaks = _writable(baseline, "webjob_runs_peak_hour")
            run_peaks[today] = max(run_peaks.get(today, 0), current_hour_runs)
        if today != old_day:
            other_days = True
        shapes[
            (
                today,
                family,
                obs.config_suffix,
                obs.resource,
                obs.tool,
                obs.app_id,
                obs.source_ip,
                obs.webjob,
            )
        ] = None
        last_seen = max(last_seen, obs.time)

    # Shapes of one day teach each value that day, so when every shape is of the baseline's
    # own day, one it learned already that day (`_fresh`) teaches nothing new.
    skip = fresh if not other_days else set()
    for shape in shapes:
        if shape in skip:
            continue
        today, family, suffix, resource, tool, app_id, ip, webjob = shape
        seen[Dimension.FAMILIES][_VALUE[family]] = today
        if suffix:
            seen[Dimension.CONFIG_SUFFIXES][suffix] = today
        site_key = resource.site_key
        seen[Dimension.SITES][site_key] = today
        seen[Dimension.SUBSCRIPTIONS][resource.subscription_id] = today
        seen[Dimension.TOOLS][_VALUE[tool]] = today
        if app_id:
            seen[Dimension.APP_IDS][app_id] = today
        if ip:
            seen[Dimension.IPS][ip] = today
            seen[Dimension.NETWORKS][network_of(ip)] = today
            seen[Dimension.WIDE_NETWORKS][wide_network_of(ip)] = today
        if webjob:
            seen[Dimension.WEBJOBS][f"{site_key}/{webjob}"] = today
        if family in SENSITIVE_FAMILIES:
            seen[Dimension.CREDENTIAL_SITES][site_key] = today

    new_day = day_number(last_seen)
    horizon = new_day - max_age_days
    moved = new_day != old_day
    if baseline.quarantine and moved:
        # Released values join what is known, as seen on their day; expired ones go.
        baseline.quarantine, released = _released(baseline.quarantine, new_day, horizon)
        for name, values in released.items():
            for value, day in values.items():
                if baseline_day(baseline, name, value) < day and seen[name].get(value, -1) < day:
                    seen[name][value] = day
    # Values that went back to an earlier day (a late row), or were forgotten, leave what
    # `_fresh` says no longer true.
    still_fresh = not moved and not other_days
    # A day that moved ages every dimension; otherwise only those the window taught change.
    for name in DIMENSIONS if moved else tuple(seen):
        new = seen.get(name)
        if not new and not getattr(baseline, name):
            continue  # nothing to learn, nothing to age
        if not _merge(baseline, name, new or {}, horizon, max_values, prune=moved):
            still_fresh = still_fresh and name not in _SHAPE_DIMENSIONS
    for counter in _PER_DAY:
        # Only a day before the horizon is dropped: one the window went back to, or all
        # of them once the day moved.
        per_day: Mapping[int, int] = getattr(baseline, counter)
        stale = [day for day in per_day if day < horizon]
        if stale:
            writable = _writable(baseline, counter)
            for day in stale:
                del writable[day]

    if context is None:
        baseline.name = first.principal.name or baseline.name
    baseline.last_seen = last_seen
    baseline.learned_through = through or baseline.learned_through
    baseline.active_days, baseline.last_active_day = active_days, last_active_day
    baseline.resumed_day = resumed_day
    baseline.operations, baseline.failures = operations, failures
    if hours is not None and weekdays is not None:
        baseline.hours, baseline.weekdays = tuple(hours), tuple(weekdays)
    baseline.last_hour_slot, baseline.current_hour_runs = last_hour_slot, current_hour_runs
    if still_fresh:
        fresh.update(shapes)
        baseline._fresh, baseline._fresh_day = fresh, new_day
    else:
        baseline._fresh, baseline._fresh_day = set(), new_day
    return baseline


_MAPPINGS = frozenset({*DIMENSIONS, *_PER_DAY, "quarantine"})
"""The mappings a baseline holds, which `absorb` changes in place when it owns them."""


def _writable(baseline: PrincipalBaseline, name: str) -> dict[Any, Any]:
    """A mapping of the baseline that it owns, copied first if it does not yet (`_owned`)."""
    current: dict[Any, Any] = getattr(baseline, name)
    if name in baseline._owned:
        return current
    copy = dict(current)
    setattr(baseline, name, copy)
    baseline._owned.add(name)
    return copy


_BY_DAY_THEN_VALUE = itemgetter(1, 0)


def _merge(
    baseline: PrincipalBaseline,
    name: Dimension,
    new: dict[str, int],
    horizon: int,
    limit: int,
    *,
    prune: bool,
) -> bool:
    """Update one dimension of the baseline with `new` (a value's day changes to the day it
    was last seen, even an earlier one), ageing it when the day moved (`prune`) or it
    outgrew `limit`. Whether every value that was there before is still there, with the
    day it had or one `new` gave it."""
    values: Mapping[str, int] = getattr(baseline, name)
    changed = (
        [(value, day) for value, day in new.items() if values.get(value) != day] if new else []
    )
    if not changed and not prune:
        return True
    if changed:
        writable = _writable(baseline, name)
        for value, day in changed:
            writable[value] = day
        values = writable
        if not prune and len(values) <= limit:
            return True
    stale = [value for value, day in values.items() if day < horizon]
    if not stale and len(values) <= limit:
        return True
    writable = _writable(baseline, name)
    for value in stale:
        del writable[value]
    if len(writable) > limit:
        # The most recent kept, in that order (as a stored baseline reads back).
        recent = sorted(writable.items(), key=_BY_DAY_THEN_VALUE)[-limit:]
        writable.clear()
        writable.update(recent)
    return False


def _released_by(held: tuple[int, int], today: int) -> bool:
    """Whether a quarantined value (day seen, day released) counts as known `today`."""
    return today >= held[1]


def told(baseline: PrincipalBaseline) -> PrincipalBaseline:
    """The baseline with its quarantine counted as known, to judge the rest of a burst that
    alerted: what it held back, the burst's alert told of already (late rows of the same
    burst are not new a second time). Never stored."""
    if not baseline.quarantine:
        return baseline
    return replace(
        baseline,
        quarantine={
            name: {value: (seen, seen) for value, (seen, _) in values.items()}
            for name, values in baseline.quarantine.items()
        },
    )


def baseline_day(baseline: PrincipalBaseline, dimension: Dimension, value: str) -> int:
    """The last day a value was seen in a dimension (-1: never, or forgotten)."""
    seen: Mapping[str, int] = getattr(baseline, dimension)
    return seen.get(value, -1)


def _released(
    quarantine: Mapping[str, Mapping[str, tuple[int, int]]], today: int, horizon: int
) -> tuple[dict[str, dict[str, tuple[int, int]]], dict[Dimension, dict[str, int]]]:
    """The quarantine still held by `today`, and the values released from it by then (those
    seen before `horizon` are forgotten, as any value would be)."""
    held: dict[str, dict[str, tuple[int, int]]] = {}
    released: dict[Dimension, dict[str, int]] = {}
    for name, values in quarantine.items():
        for value, (day, release) in values.items():
            if day < horizon or name not in Dimension._value2member_map_:
                continue
            if release <= today:
                released.setdefault(Dimension(name), {})[value] = day
            else:
                held.setdefault(name, {})[value] = (day, release)
    return held, released


def _quarantine(
    before: PrincipalBaseline | None,
    learned: PrincipalBaseline,
    held_back: Sequence[Observation],
    others: Sequence[Observation],
    *,
    max_age_days: int,
    days: int,
) -> None:
    """Move to `learned`'s quarantine (it learned everything, in place) the values that only
    `held_back` (an alert's observations) taught and that `before` did not know, for `days`
    from their day. Counters (active days, hours, reads) stay learned."""
    unbounded = 1 << 30
    alerted = learn(None, held_back, max_age_days=unbounded, max_values=unbounded)
    rest = learn(None, others, max_age_days=unbounded, max_values=unbounded) if others else None
    if alerted is None:
        return
    today = day_number(learned.last_seen)
    quarantine = {name: dict(values) for name, values in learned.quarantine.items()}
    for name in DIMENSIONS:
        taught: Mapping[str, int] = getattr(alerted, name)
        also: Mapping[str, int] = getattr(rest, name) if rest is not None else {}
        for value, day in taught.items():
            if value in also or (
                before is not None and before.knows(name, value, today, max_age_days)
            ):
                continue
            kept = _writable(learned, name)
            previous = baseline_day(before, name, value) if before is not None else -1
            if previous >= 0:
                kept[value] = previous  # forgotten before, and still: as it was
            else:
                kept.pop(value, None)
            held = quarantine.setdefault(name.value, {})
            first = held.get(value)
            held[value] = (day, first[1]) if first else (day, day + days)
    learned.quarantine = {name: values for name, values in quarantine.items() if values}
    learned._owned.add("quarantine")
    learned._fresh, learned._fresh_day = set(), today
