"""Runs the organisation day by day and yields its rows in time order.

Each day every actor records what it does; rows are rendered and yielded once no later day
can produce an earlier row, so memory holds about two days of specs, never the dataset.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from operator import itemgetter
from typing import Any, Protocol

from detectors.simulation.administrators import AdminBehaviour
from detectors.simulation.applications import AppRuntimeBehaviour
from detectors.simulation.attacks import inject
from detectors.simulation.automation import JobRunnerBehaviour, MonitorBehaviour, PipelineBehaviour
from detectors.simulation.clock import to_ticks
from detectors.simulation.day import Day
from detectors.simulation.developers import DeveloperBehaviour
from detectors.simulation.organisation import Organisation, build_organisation
from detectors.simulation.product_teams import team_actors
from detectors.simulation.profile import PRODUCT_TEAMS, OrgProfile
from detectors.simulation.recorder import Pending, Recorder
from detectors.simulation.rows import RowRenderer
from detectors.simulation.tokens import TokenIssuer


class Actor(Protocol):
    """Anything that acts once per simulated day."""

    def day(self, day: Day, rec: Recorder) -> None:
        """Records what the actor does on that day."""


def actors(org: Organisation, seed: int) -> list[Actor]:
    """Every benign actor of the organisation, in a fixed order."""
    result: list[Actor] = []
    result += [DeveloperBehaviour(dev, org, seed) for dev in org.developers]
    result += [AdminBehaviour(admin, org, seed) for admin in org.admins]
    result += [PipelineBehaviour(pipeline, org, seed) for pipeline in org.pipelines]
    result += [
        JobRunnerBehaviour(n, runner, org, seed) for n, runner in enumerate(org.managed_identities)
    ]
    result += [MonitorBehaviour(monitor, org, seed) for monitor in org.monitors]
    result += [AppRuntimeBehaviour(app, org, seed) for app in org.apps if app.runtime_writes]
    return result


def simulate(profile: OrgProfile) -> Iterator[dict[str, Any]]:
    """The profile's rows (all three tables), ascending by TimeGenerated, attacks included."""
    org = build_organisation(profile)
    render = RowRenderer(workspace_id=org.workspace_id)
    rec = Recorder(tokens=TokenIssuer())
    cast = actors(org, profile.seed)
    if profile.shape == PRODUCT_TEAMS:
        cast = team_actors(org, profile, cast)
    buffer: list[Pending] = [
        entry for injection in inject(org, profile) for entry in injection.pending
    ]
    start, end = to_ticks(profile.start), to_ticks(profile.end)
    first_date = profile.start.date()
    for index in range(profile.days):
        today = first_date + timedelta(days=index)
        day = Day(
            index=index,
            date=today,
            midnight=to_ticks(datetime.combine(today, time(), UTC)),
            period_start=start,
            period_end=end,
        )
        for actor in cast:
            actor.day(day, rec)
        buffer += rec.pending
        rec.pending = []
        buffer.sort()
        # Local days run at most 14 hours ahead of or behind UTC, so nothing recorded from
        # tomorrow on can fall before today's UTC midnight.
        cut = bisect_left(buffer, day.midnight, key=itemgetter(0))
        for _, _, _, spec, step in buffer[:cut]:
            yield render(spec, step)
        del buffer[:cut]
    for _, _, _, spec, step in buffer:
        yield render(spec, step)
