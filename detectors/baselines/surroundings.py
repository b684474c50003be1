"""What a principal's surroundings remember: its sites, its WebJobs and its peers.

A principal's own baseline says what *it* did before. Much of what is new to one principal
is routine around it: a job that the site has run for weeks, an address block that every
colleague leaves through, a tool that all principals of its kind use. These context
baselines are kept in the same store and shape as principals' baselines, under ids that
cannot be principal ids:

- `site:<subscription>/<group>/<site>[/<slot>]`: everything done on a site (jobs it has,
  and its crowd: the principals that take its deployment credentials or keys);
- `webjob:<site key>/<kind>/<name>`: everything done to one WebJob (who runs, stops and
  deploys it, when, and how often it runs per hour);
- `peers:<principal type>`: what all principals of one type did (their networks and tools).

Context baselines learn only from activity that raised no alert (see `context_groups`), so
that an attacker's addresses never become "what colleagues use".
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from detectors.baselines.baseline import (
    SITE_CONTEXT_PREFIX,
    Dimension,
    PrincipalBaseline,
    network_of,
)
from detectors.model.days import day_number
from detectors.model.observation import Observation, OperationFamily, PrincipalType, Status

SITE_PREFIX = SITE_CONTEXT_PREFIX
WEBJOB_PREFIX = "webjob:"
PEERS_PREFIX = "peers:"
CONTEXT_PREFIXES = (SITE_PREFIX, WEBJOB_PREFIX, PEERS_PREFIX)
PEER_TYPES = (
    PrincipalType.USER,
    PrincipalType.SERVICE_PRINCIPAL,
    PrincipalType.MANAGED_IDENTITY,
    PrincipalType.PUBLISHING_USER,
)
"""The principal types that form peer groups (everything but the unknown)."""


def site_history_id(site_key: str) -> str:
    """The context baseline of a site or slot."""
    return f"{SITE_PREFIX}{site_key}"


def job_history_id(site_key: str, webjob: str) -> str:
    """The context baseline of one WebJob (`kind/name`) on a site or slot."""
    return f"{WEBJOB_PREFIX}{site_key}/{webjob.lower()}"


def peer_group_id(kind: PrincipalType) -> str:
    """The context baseline shared by every principal of one type."""
    return f"{PEERS_PREFIX}{kind.value}"


def is_context_id(baseline_id: str) -> bool:
    """Whether a baseline id names a context baseline rather than a principal."""
    return baseline_id.startswith(CONTEXT_PREFIXES)


def peer_group_ids() -> list[str]:
    """Every peer group's context baseline id: the organisation as a whole."""
    return [peer_group_id(kind) for kind in PEER_TYPES]


def context_ids(obs: Observation) -> Iterator[str]:
    """The context baselines an observation teaches (and that judge it)."""
    site = obs.resource.site_key
    yield site_history_id(site)
    if obs.webjob:
        yield job_history_id(site, obs.webjob)
    if obs.principal.type is not PrincipalType.UNKNOWN and not obs.principal.unattributed:
        yield peer_group_id(obs.principal.type)


def context_groups(
    observations: Iterable[Observation],
    *,
    exclude: Collection[str] = frozenset(),
    alerted: Collection[str] = frozenset(),
) -> dict[str, list[Observation]]:
    """Observations by the context baselines they teach, leaving out excluded principals
    and the observations an alert listed (`alerted`, event ids), whoever's they are: a
    `$site` login an alert of its downloader told does not make the address ordinary for
    deployments."""
    groups: dict[str, list[Observation]] = defaultdict(list)
    for obs in observations:
        if obs.principal.id in exclude or obs.event_id in alerted:
            continue
        for key in context_ids(obs):
            groups[key].append(obs)
    return dict(groups)


_CREATIONS = frozenset({"add", "added", "create", "created"})


def is_creation(obs: Observation) -> bool:
    """Whether a file change created the file (a modified file existed before)."""
    return obs.operation.lower() in _CREATIONS


@dataclass(frozen=True, kw_only=True, slots=True)
class Surroundings:
    """The context baselines a window is judged against, with the memory limit they age by."""

    baselines: Mapping[str, PrincipalBaseline]
    max_age_days: int
    deployments: Mapping[str, tuple[tuple[datetime, str], ...]] = field(default_factory=dict)
    """Deployments by automation identities (service principals, managed identities) of the
    window and the chains' memory before it: site key -> (time, network /24 or /48)."""

    def deployed_from(self, site_key: str, at: datetime, ip: str, within: timedelta) -> bool:
        """Whether an automation identity deployed the site from this address's network at
        most `within` before `at`: a `$site` login or file write from there then is that
        deployment's own (a pipeline's zip deploy signs in to Kudu from its agent)."""
        deployed = self.deployments.get(site_key)
        if not deployed or not ip:
            return False
        net = network_of(ip)
        return any(n == net and timedelta(0) <= at - t <= within for t, n in deployed)

    stops: Mapping[str, Mapping[str, tuple[str, datetime]]] = field(default_factory=dict)
    """Who stopped each continuous WebJob of a site last, and when, in this window or before
    it: site key -> job -> (principal id, time)."""

    def stopped_by(
        self, site_key: str, webjob: str, principal_id: str, before: datetime, within: timedelta
    ) -> datetime | None:
        """When this principal stopped the job, if it was the last to, at most `within`
        before `before`; else None."""
        stop = self.stops.get(site_key, {}).get(webjob)
        if stop is None or stop[0] != principal_id:
            return None
        return stop[1] if timedelta(0) <= before - stop[1] <= within else None

    def job(self, site_key: str, webjob: str) -> PrincipalBaseline | None:
        """The history of one WebJob on a site, if any."""
        return self.baselines.get(job_history_id(site_key, webjob))

    def job_days(self, site_key: str, webjob: str, today: int) -> int:
        """Earlier days on which anything happened to this job (0 for a job new to the site)."""
        job = self.job(site_key, webjob)
        return job.history_days(today) if job is not None else 0

    def job_does(self, site_key: str, webjob: str, family: str, today: int) -> bool:
        """Whether this job's own history has this operation family (by anyone)."""
        job = self.job(site_key, webjob)
        return job is not None and job.knows(Dimension.FAMILIES, family, today, self.max_age_days)

    def site_knows_job(self, site_key: str, webjob: str, today: int) -> bool:
        """Whether anything was seen of this job on the site within the baselines' memory."""
        site = self.baselines.get(site_history_id(site_key))
        return site is not None and site.knows(
            Dimension.WEBJOBS, f"{site_key}/{webjob}", today, self.max_age_days
        )

    def site_days(self, site_key: str, today: int) -> int:
        """Earlier days with activity on the site: how much the site's history can tell."""
        site = self.baselines.get(site_history_id(site_key))
        return site.history_days(today) if site is not None else 0

    def site_does(self, site_key: str, family: str, today: int) -> bool:
        """Whether those who work on this site (anyone whose activity raised no alert) did
        this operation family on it recently: the routine of its team."""
        site = self.baselines.get(site_history_id(site_key))
        return site is not None and site.knows(Dimension.FAMILIES, family, today, self.max_age_days)

    def site_uses(self, site_key: str, tool: str, today: int) -> bool:
        """Whether those who work on this site used this client tool on it recently."""
        site = self.baselines.get(site_history_id(site_key))
        return site is not None and site.knows(Dimension.TOOLS, tool, today, self.max_age_days)

    def site_works_at(self, site_key: str, hour: int, share: float) -> bool:
        """Whether at least `share` of the site's active hours on record fell in this hour of
        the day (UTC): an hour its people work on it."""
        site = self.baselines.get(site_history_id(site_key))
        return site is not None and site.hour_share(hour) >= share

    def crowd(self, site_key: str, today: int) -> set[str]:
        """The principals that recently took this site's deployment credentials or keys."""
        site = self.baselines.get(site_history_id(site_key))
        if site is None:
            return set()
        return {p for p, day in site.principals.items() if today - day <= self.max_age_days}

    def common_crowd(self, site_keys: Iterable[str], today: int) -> set[str]:
        """The principals in the crowd of every one of these sites: whose working set covers
        them all (a team's sites have one, a harvest across teams rarely does)."""
        common: set[str] | None = None
        for key in site_keys:
            crowd = self.crowd(key, today)
            common = crowd if common is None else common & crowd
            if not common:
                return set()
        return common or set()

    def peers_know(self, kind: PrincipalType, dimension: Dimension, value: str, today: int) -> bool:
        """Whether principals of this type (the peer group) used this value recently."""
        peers = self.baselines.get(peer_group_id(kind))
        return peers is not None and peers.knows(dimension, value, today, self.max_age_days)

    def organisation_knows(
        self, block: str, today: int, dimension: Dimension = Dimension.WIDE_NETWORKS
    ) -> bool:
        """Whether any peer group (deployments, people, pipelines, identities) used this
        address block (/16, /32; or, with `Dimension.NETWORKS`, this /24, /48) recently: the
        organisation's own."""
        return any(self.peers_know(kind, dimension, block, today) for kind in PEER_TYPES)

    def released_jobs(self, observations: Iterable[Observation]) -> set[tuple[str, str]]:
        """Jobs new to their site (site key, job) whose files a deployment created while it
        rewrote files of jobs the site already has: a release that ships a new job, not a
        job planted on its own. A person's own Kudu session is hands-on, never a release."""
        files = [
            o
            for o in observations
            if o.family is OperationFamily.WEBJOB_FILE_CHANGE
            and o.webjob
            and o.status is not Status.FAILED
            and o.principal.type is not PrincipalType.USER
            and not o.principal.unattributed
        ]
        updating = {
            (o.principal.id, o.resource.site_key)
            for o in files
            if o.webjob
            and not is_creation(o)
            and self.job_days(o.resource.site_key, o.webjob, day_number(o.time)) > 0
        }
        return {
            (o.resource.site_key, o.webjob)
            for o in files
            if o.webjob
            and is_creation(o)
            and (o.principal.id, o.resource.site_key) in updating
            and self.job_days(o.resource.site_key, o.webjob, day_number(o.time)) == 0
        }


NO_SURROUNDINGS = Surroundings(baselines={}, max_age_days=0)
"""For scoring without context (everything is new to the surroundings too)."""
