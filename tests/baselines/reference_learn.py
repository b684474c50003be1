"""The per-window `learn` that accumulation replaced, kept as the tests' oracle.

`reference_learn` is `baselines.baseline.learn` as it was before baselines learned in place
(commit a39cffe), verbatim but for the names: one new baseline per call, each dimension
merged into a copy, aged and limited on every call. The helpers it shares with today's code
(`_released`, `baseline_day`, the networks, `change_slot`) did not change.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime

from detectors.baselines.baseline import (
    _CREDENTIAL_FAMILIES,
    _CROWD_SUFFIXES,
    _FAILED,
    _WEBJOB_RUN,
    CHANGE_SLOT_FAMILIES,
    DIMENSIONS,
    SENSITIVE_FAMILIES,
    SITE_CONTEXT_PREFIX,
    Dimension,
    PrincipalBaseline,
    _released,
    _Shape,
    baseline_day,
    change_slot,
    network_of,
    wide_network_of,
)
from detectors.model.days import day_number, hour_number
from detectors.model.observation import (
    Observation,
    PrincipalType,
)


def reference_learn(
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
    """The old `learn`, verbatim: a new frozen-style baseline per call.

    `through` marks the window they came from as learned (see `learned_through`).
    `context` (id, name) learns a context baseline (a site, a job, a peer group; see
    `surroundings`) from several principals' observations instead.
    `quarantined`: event ids of observations an alert listed; what they teach that the
    baseline does not know yet is held in `quarantine` for `quarantine_days` (0: learned
    at once like the rest).
    """
    items = list(observations)
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
        learned = reference_learn(
            baseline,
            items,
            max_age_days=max_age_days,
            max_values=max_values,
            through=through,
            context=context,
            idle=held_ids,
        )
        assert learned is not None  # items is not empty
        return _ref_quarantine(
            baseline, learned, held_back, others, max_age_days=max_age_days, days=quarantine_days
        )
    first = items[0]
    if baseline is None:
        baseline = PrincipalBaseline(
            principal_id=context[0] if context else first.principal.id,
            principal_type=PrincipalType.UNKNOWN if context else first.principal.type,
            name=context[1] if context else first.principal.name,
            first_seen=first.time,
            last_seen=first.time,
        )
    # Only a site keeps its crowd: a peer group's would be everyone, rewritten every window.
    crowd = context is not None and context[0].startswith(SITE_CONTEXT_PREFIX)
    # Only what changes is copied: most windows repeat what the principal did an hour ago.
    seen: dict[Dimension, dict[str, int]] = {name: {} for name in DIMENSIONS}
    hours = list(baseline.hours)
    weekdays = list(baseline.weekdays)
    credential_reads = dict(baseline.credential_reads_per_day)
    run_peaks = dict(baseline.webjob_runs_peak_hour)
    active_days, last_active_day = baseline.active_days, baseline.last_active_day
    resumed_day = baseline.resumed_day
    last_hour_slot, current_hour_runs = baseline.last_hour_slot, baseline.current_hour_runs
    operations, failures = baseline.operations, baseline.failures
    last_seen = baseline.last_seen

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
            credential_reads[today] = credential_reads.get(today, 0) + n
            if crowd and obs.config_suffix in _CROWD_SUFFIXES:
                seen[Dimension.PRINCIPALS][obs.principal.id] = today
        elif family in CHANGE_SLOT_FAMILIES:
            seen[Dimension.CHANGE_SLOTS][change_slot(obs.time)] = today
        elif family is _WEBJOB_RUN:
            current_hour_runs += n
            run_peaks[today] = max(run_peaks.get(today, 0), current_hour_runs)
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

    for today, family, suffix, resource, tool, app_id, ip, webjob in shapes:
        seen[Dimension.FAMILIES][family.value] = today
        if suffix:
            seen[Dimension.CONFIG_SUFFIXES][suffix] = today
        site_key = resource.site_key
        seen[Dimension.SITES][site_key] = today
        seen[Dimension.SUBSCRIPTIONS][resource.subscription_id] = today
        seen[Dimension.TOOLS][tool.value] = today
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

    horizon = day_number(last_seen) - max_age_days
    moved = day_number(last_seen) != day_number(baseline.last_seen)
    quarantine = baseline.quarantine
    if quarantine and moved:
        # Released values join what is known, as seen on their day; expired ones go.
        quarantine, released = _released(quarantine, day_number(last_seen), horizon)
        for name, values in released.items():
            for value, day in values.items():
                if baseline_day(baseline, name, value) < day and seen[name].get(value, -1) < day:
                    seen[name][value] = day
    kept = {
        name: _ref_merge(getattr(baseline, name), seen[name], horizon, max_values, prune=moved)
        for name in DIMENSIONS
    }
    return replace(
        baseline,
        quarantine=quarantine,
        name=baseline.name if context else first.principal.name or baseline.name,
        last_seen=last_seen,
        learned_through=through or baseline.learned_through,
        active_days=active_days,
        last_active_day=last_active_day,
        resumed_day=resumed_day,
        operations=operations,
        failures=failures,
        hours=tuple(hours),
        weekdays=tuple(weekdays),
        last_hour_slot=last_hour_slot,
        current_hour_runs=current_hour_runs,
        credential_reads_per_day=_ref_recent_days(credential_reads, horizon),
        webjob_runs_peak_hour=_ref_recent_days(run_peaks, horizon),
        families=kept[Dimension.FAMILIES],
        config_suffixes=kept[Dimension.CONFIG_SUFFIXES],
        sites=kept[Dimension.SITES],
        subscriptions=kept[Dimension.SUBSCRIPTIONS],
        tools=kept[Dimension.TOOLS],
        app_ids=kept[Dimension.APP_IDS],
        ips=kept[Dimension.IPS],
        networks=kept[Dimension.NETWORKS],
        wide_networks=kept[Dimension.WIDE_NETWORKS],
        credential_sites=kept[Dimension.CREDENTIAL_SITES],
        webjobs=kept[Dimension.WEBJOBS],
        change_slots=kept[Dimension.CHANGE_SLOTS],
        principals=kept[Dimension.PRINCIPALS],
    )


def _ref_quarantine(
    before: PrincipalBaseline | None,
    learned: PrincipalBaseline,
    held_back: Sequence[Observation],
    others: Sequence[Observation],
    *,
    max_age_days: int,
    days: int,
) -> PrincipalBaseline:
    """`learned` (which learned everything) with the values that only `held_back` (an
    alert's observations) taught, and that `before` did not know, moved to its quarantine
    for `days` from their day. Counters (active days, hours, reads) stay learned."""
    unbounded = 1 << 30
    alerted = reference_learn(None, held_back, max_age_days=unbounded, max_values=unbounded)
    rest = (
        reference_learn(None, others, max_age_days=unbounded, max_values=unbounded)
        if others
        else None
    )
    if alerted is None:
        return learned
    today = day_number(learned.last_seen)
    quarantine = {name: dict(values) for name, values in learned.quarantine.items()}
    changed: dict[str, dict[str, int]] = {}
    for name in DIMENSIONS:
        taught: Mapping[str, int] = getattr(alerted, name)
        also: Mapping[str, int] = getattr(rest, name) if rest is not None else {}
        for value, day in taught.items():
            if value in also or (
                before is not None and before.knows(name, value, today, max_age_days)
            ):
                continue
            kept = changed.setdefault(name.value, dict(getattr(learned, name)))
            previous = baseline_day(before, name, value) if before is not None else -1
            if previous >= 0:
                kept[value] = previous  # forgotten before, and still: as it was
            else:
                kept.pop(value, None)
            held = quarantine.setdefault(name.value, {})
            first = held.get(value)
            held[value] = (day, first[1]) if first else (day, day + days)
    return replace(
        learned,
        **changed,  # type: ignore[arg-type]
        quarantine={name: values for name, values in quarantine.items() if values},
    )


def _ref_merge(
    old: Mapping[str, int], new: dict[str, int], horizon: int, limit: int, *, prune: bool
) -> Mapping[str, int]:
    """`old` updated with `new`, sharing `old` when nothing changed; pruned when the day moved."""
    changed = {value: day for value, day in new.items() if old.get(value) != day}
    if not changed and not prune:
        return old
    merged = dict(old)
    merged.update(changed)
    if prune or len(merged) > limit:
        return _ref_recent(merged, horizon, limit)
    return merged


def _ref_recent(values: dict[str, int], horizon: int, limit: int) -> dict[str, int]:
    """Values last seen on or after `horizon`, at most `limit` of them, the most recent kept."""
    kept = {value: day for value, day in values.items() if day >= horizon}
    if len(kept) > limit:
        kept = dict(sorted(kept.items(), key=lambda item: (item[1], item[0]))[-limit:])
    return kept


def _ref_recent_days(per_day: dict[int, int], horizon: int) -> dict[int, int]:
    """Per-day counters for days on or after `horizon`."""
    return {day: count for day, count in per_day.items() if day >= horizon}
