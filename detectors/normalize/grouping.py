"""Actions alike within a minute become one observation that counts them.

Log Analytics does this grouping itself (`sources.queries`), so that what a query returns
grows with distinct (who, what, where, from where, tool) groups rather than with rows.
Replaying files groups the same way, so both paths feed the engine the same observations.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import replace
from datetime import datetime

from detectors.model.observation import Observation


def minute_of(moment: datetime) -> datetime:
    """The start of the minute holding `moment` (KQL's `bin(TimeGenerated, 1m)`)."""
    return moment.replace(second=0, microsecond=0)


def group_key(obs: Observation) -> tuple[Hashable, ...]:
    """What two observations must share to be counted as one."""
    return (
        minute_of(obs.time),
        obs.table,
        obs.operation,
        obs.family,
        obs.status,
        obs.http_status,
        obs.principal,
        obs.app_id,
        obs.tool,
        obs.source_ip,
        obs.resource,
        obs.config_suffix,
        obs.webjob,
        obs.detail,
        obs.tenant_id,
    )


def aggregate(observations: Iterable[Observation]) -> list[Observation]:
    """One observation per group, timed and named by its earliest action, in time order.

    Grouping is idempotent: observations that Log Analytics already grouped regroup to
    themselves, and a group split across two query results merges back into one.
    """
    groups: dict[tuple[Hashable, ...], Observation] = {}
    for obs in observations:
        key = group_key(obs)
        held = groups.get(key)
        if held is None:
            groups[key] = obs
            continue
        first = min(held, obs, key=_order)
        groups[key] = replace(first, count=held.count + obs.count)
    return sorted(groups.values(), key=_order)


def _order(obs: Observation) -> tuple[datetime, str]:
    return obs.time, obs.event_id
