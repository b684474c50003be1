"""The product-teams shape (issue #22): the benign habits that look like intrusions.

An organisation of product teams whose sites are named for their team and environment
(`cobalt-payments-api-prod`, `func-cobalt-payments-dev`), with, besides the default shape's
people and automation:

- developers opening their own team's function apps' keys in the portal (host and function
  `listkeys` through the portal's client), now and then, so first listings keep coming,
  whether or not they otherwise use keys;
- developers editing WebJob files in the Kudu console on their team's dev and test sites
  (an Entra Kudu login, then writes under `App_Data/jobs`);
- joiners (about one developer in twelve) taking their team's production publish profiles
  in one sitting on their second or third day;
- platform SREs: one rotates the host keys of the same few function apps every Wednesday;
  in its week off after the learning days another SRE does it for the first time; the
  others handle on-call incidents;
- a publishing-password rotation once a month (`newpassword` then `publishxml` of every
  production site, by its own service principal) and a quarterly DR drill by the backup
  automation, which otherwise reads backup settings nightly;
- an hourly `az webapp show`-style monitor reading the metadata of every site (config
  reads, not credentials);
- pipelines moving after the learning days (`_moves`): to a new GitHub OIDC principal, two
  Azure DevOps pipelines to one new connection of a new organisation in another
  geography, to other hosted-agent ranges, to a scale-set pool's managed identity; each
  re-runs every environment at once on its move day;
- contractors and guests working on one team's non-production sites from their company's
  network.

The organisation's calendars (`organisation._team_calendars`) add daylight saving time to
the offices, a returning leaver on long periods and travellers after the learning days.
Everything is drawn from streams of its own, so the default shape is untouched.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Protocol

from detectors.simulation import operations as ops
from detectors.simulation.automation import PipelineBehaviour, own_client
from detectors.simulation.clients import AZURE_CLI, AZURE_POWERSHELL, PORTAL, VISUAL_STUDIO
from detectors.simulation.clock import TICKS_PER_HOUR, TICKS_PER_MS, TICKS_PER_SECOND
from detectors.simulation.day import Day, at_minute, poisson
from detectors.simulation.developers import PORTAL_CONFIGURATION_BLADE
from detectors.simulation.identities import (
    WEBSITE_CONTRIBUTOR,
    Identity,
    IdentityKind,
    RoleAssignment,
)
from detectors.simulation.ids import b64url, guid, hex32, make_rng, puid
from detectors.simulation.network import (
    AZURE_HOSTS,
    CONTRACTOR_NETWORKS,
    DST_BY_COUNTRY,
    HOME_ISPS,
    MOVED_HOSTED_AGENTS,
    NEW_AGENT_POOL,
    OFFICES,
    OTHER_GEOGRAPHY_AGENTS,
    Office,
    address,
    office_address,
)
from detectors.simulation.organisation import (
    DOMAIN,
    Developer,
    Organisation,
    Pipeline,
    Site,
    team_name,
)
from detectors.simulation.profile import OrgProfile
from detectors.simulation.recorder import Recorder, Session

_SRE_NAMES = (
    ("Priya", "Raman"),
    ("Mateo", "Ferreira"),
    ("Hanna", "Lindqvist"),
    ("Kwame", "Mensah"),
    ("Aiko", "Mori"),
    ("Oskar", "Nowicki"),
)
_GUEST_NAMES = (
    ("Ravi", "Kapoor", "fabrikam.com"),
    ("Lucia", "Moreno", "fabrikam.com"),
    ("Tom", "Becker", "northwind.io"),
    ("Mei", "Lin", "northwind.io"),
    ("Jakub", "Horak", "adatum.net"),
    ("Sara", "Okoro", "adatum.net"),
    ("Nils", "Berg", "fabrikam.com"),
    ("Ana", "Costa", "northwind.io"),
)
# Months of the quarterly DR drill (the second Tuesday of each).
_DRILL_MONTHS = (2, 5, 8, 11)
_ROTATION_DAY = 3


class Actor(Protocol):
    """Anything that acts once per simulated day."""

    def day(self, day: Day, rec: Recorder) -> None:
        """Records what the actor does on that day."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Sre:
    """A platform SRE: the routine one rotates keys weekly; the others on their on-call week."""

    identity: Identity
    office: Office
    home_address: str
    routine: bool


@dataclass(frozen=True, kw_only=True, slots=True)
class Guest:
    """A contractor's guest account, working on one team's non-production sites."""

    identity: Identity
    team: int
    address: str
    office: Office


@dataclass(frozen=True, kw_only=True, slots=True)
class Automation:
    """A service principal of the platform team and the address it runs from."""

    identity: Identity
    address: str
    minute: int


@dataclass(frozen=True, kw_only=True, slots=True)
class PipelineMove:
    """From `day` on, `successor` deploys what pipeline `index` deployed; that day it re-runs
    every stage from local `minute` on."""

    index: int
    day: int
    kind: str
    successor: Pipeline
    minute: int


@dataclass(frozen=True, kw_only=True, slots=True)
class ProductTeams:
    """The people and automation the product-teams shape adds."""

    sres: tuple[Sre, ...]
    guests: tuple[Guest, ...]
    rotation: Automation
    backup: Automation
    hourly: Automation
    moves: tuple[PipelineMove, ...]
    # The function apps whose keys the routine SRE rotates each Wednesday, and the day (a
    # Wednesday after the learning days, in the routine SRE's week off) that `cover`, another
    # SRE, rotates them instead, for the first time.
    rotated: tuple[Site, ...]
    cover_day: int
    cover: int


def build_product_teams(org: Organisation, profile: OrgProfile) -> ProductTeams:
    """The shape's extra cast, the same every time for the same profile and organisation."""
    rng = make_rng(profile.seed, "product-teams")
    everywhere = [f"/subscriptions/{sub.id}" for sub in org.subscriptions]
    teams = sorted({app.team for app in org.apps})
    sres = tuple(
        Sre(
            identity=_user(
                rng,
                org,
                f"sre-{n}",
                first=_SRE_NAMES[n % len(_SRE_NAMES)][0],
                last=_SRE_NAMES[n % len(_SRE_NAMES)][1],
                company=DOMAIN,
                scopes=everywhere,
            ),
            office=replace(OFFICES[n % 2], dst=DST_BY_COUNTRY[OFFICES[n % 2].country]),
            home_address=address(rng, rng.choice(HOME_ISPS[OFFICES[n % 2].country])),
            routine=n == 0,
        )
        for n in range(min(len(_SRE_NAMES), max(2, len(teams) // 2 + 1)))
    )
    guests = []
    for n in range(min(len(_GUEST_NAMES), max(2, profile.developers // 10))):
        team = teams[n % len(teams)]
        groups = sorted(
            {app.group_id for app in org.apps if app.team == team and app.env != "prod"}
        )
        first, last, company = _GUEST_NAMES[n]
        guests.append(
            Guest(
                identity=_user(
                    rng,
                    org,
                    f"guest-{n}",
                    first=first,
                    last=last,
                    company=company,
                    scopes=groups,
                    guest=True,
                ),
                team=team,
                address=address(rng, rng.choice(CONTRACTOR_NETWORKS)),
                office=OFFICES[n % len(OFFICES)],
            )
        )
    return ProductTeams(
        sres=sres,
        guests=tuple(guests),
        rotation=_automation(rng, org, "sp-publishing-password-rotation", everywhere, 2 * 60 + 10),
        backup=_automation(rng, org, "sp-backup-dr", everywhere, 60 + 30),
        hourly=_automation(rng, org, "sp-webapp-inventory-hourly", everywhere, rng.randrange(60)),
        moves=_moves(rng, org, profile),
        rotated=_rotated(org),
        cover_day=_cover_day(profile),
        cover=1,
    )


def _rotated(org: Organisation) -> tuple[Site, ...]:
    """Production function apps first, up to four, at least two where there are."""
    functions = [s for s in org.sites if s.app.function_app and s.slot is None]
    prod = [s for s in functions if s.app.env == "prod"]
    chosen = prod[:4]
    return tuple(chosen + [s for s in functions if s not in chosen][: max(0, 2 - len(chosen))])


def _cover_day(profile: OrgProfile) -> int:
    """The first Wednesday at least two days after the learning days (or -1 if none)."""
    first = profile.start.date()
    for index in range(profile.learning_days + 2, profile.days):
        if (first + timedelta(days=index)).weekday() == 2:
            return index
    return -1


def team_actors(org: Organisation, profile: OrgProfile, cast: Sequence[Actor]) -> list[Actor]:
    """The default shape's cast with moved pipelines swapped, then the shape's own actors."""
    teams = build_product_teams(org, profile)
    seed = profile.seed
    moved = {move.index: move for move in teams.moves}
    result: list[Actor] = []
    for actor in cast:
        index = org.pipelines.index(actor.pipeline) if isinstance(actor, PipelineBehaviour) else -1
        if index in moved and isinstance(actor, PipelineBehaviour):
            move = moved[index]
            after = PipelineBehaviour(move.successor, org, seed)
            result.append(_MovedPipeline(before=actor, after=after, move=move, org=org, seed=seed))
        else:
            result.append(actor)
    result += [_KeysBlade(dev, org, seed) for dev in org.developers]
    result += [_KuduJobEdits(dev, org, seed) for dev in org.developers]
    result += [_JoinerWeek(dev, org, seed) for dev in org.developers if dev.join_day]
    result += [_SreBehaviour(n, sre, teams, org, seed) for n, sre in enumerate(teams.sres)]
    result += [_GuestBehaviour(guest, org, seed) for guest in teams.guests]
    result += [
        _Rotation(teams.rotation, org, seed),
        _Backup(teams.backup, org, seed),
        _Hourly(teams.hourly, org, seed),
    ]
    return result


def _user(
    rng: random.Random,
    org: Organisation,
    key: str,
    *,
    first: str,
    last: str,
    company: str,
    scopes: Sequence[str],
    guest: bool = False,
) -> Identity:
    home = f"{first.lower()}.{last.lower()}@{company}"
    upn = f"{home.replace('@', '_')}#EXT#@contoso.onmicrosoft.com" if guest else home
    return Identity(
        key=key,
        kind=IdentityKind.USER,
        object_id=guid(rng),
        display_name=f"{first} {last}" + (f" ({company})" if guest else ""),
        tenant_id=org.tenant_id,
        subject=b64url(rng, 43),
        assignments=_assign(rng, scopes),
        upn=upn,
        given_name=first,
        surname=last,
        puid=puid(rng),
        auth_methods="pwd,mfa",
    )


def _assign(rng: random.Random, scopes: Sequence[str]) -> tuple[RoleAssignment, ...]:
    return tuple(RoleAssignment(id=hex32(rng), role=WEBSITE_CONTRIBUTOR, scope=s) for s in scopes)


def _service_principal(
    rng: random.Random, org: Organisation, key: str, name: str, scopes: Sequence[str]
) -> Identity:
    return Identity(
        key=key,
        kind=IdentityKind.SERVICE_PRINCIPAL,
        object_id=guid(rng),
        display_name=name,
        tenant_id=org.tenant_id,
        subject="",
        assignments=_assign(rng, scopes),
        app_id=guid(rng),
    )


def _automation(
    rng: random.Random, org: Organisation, name: str, scopes: Sequence[str], minute: int
) -> Automation:
    return Automation(
        identity=_service_principal(rng, org, name, name, scopes),
        address=address(rng, rng.choice(AZURE_HOSTS)),
        minute=minute,
    )


# What each provider's pipelines move to, in turn (pipeline 0 never moves): the first of a
# provider to a new service connection, the second to new agents (see `_moves`).
_MOVE_KINDS = {
    "github-actions": ("connection", "agents"),
    "azure-devops": ("shared-connection", "agents"),
    "self-hosted": ("agent-identity",),
}


def _moves(rng: random.Random, org: Organisation, profile: OrgProfile) -> tuple[PipelineMove, ...]:
    """After the learning days, several pipelines move, each on a working day:

    - `connection`: a GitHub Actions pipeline to a new federated (OIDC) app registration;
    - `shared-connection`: two Azure DevOps pipelines moved to the company's new Azure
      DevOps organisation, in another geography: one new workload-identity service
      connection (a new service principal deploying the sites of both), and hosted agents
      from that geography's ranges;
    - `agents`: a pipeline on Microsoft-hosted agents to agents of other datacenter ranges;
    - `agent-identity`: a self-hosted pipeline to a new scale-set agent pool that signs in
      with the pool's user-assigned managed identity.

    On its move day each re-runs every stage (see `_MovedPipeline`)."""
    moves: list[PipelineMove] = []
    scoring = max(1, profile.days - profile.learning_days)
    turns: dict[str, int] = {}
    moved: set[int] = set()
    for index, old in enumerate(org.pipelines):
        if index == 0 or index in moved:
            continue
        kinds = _MOVE_KINDS.get(old.provider, ())
        turn = turns.get(old.provider, 0)
        turns[old.provider] = turn + 1
        if turn >= len(kinds):
            continue
        kind = kinds[turn]
        day = profile.learning_days + rng.randrange(max(1, scoring - 3))
        while (profile.start.date() + timedelta(days=day)).weekday() >= 5:
            day += 1
        day = min(profile.days - 1, day)
        minute = rng.randint(10 * 60, 14 * 60)
        if kind == "agents":
            successor = replace(old, agent_ranges=MOVED_HOSTED_AGENTS[old.provider])
        elif kind == "agent-identity":
            agents = tuple(address(rng, NEW_AGENT_POOL[0]) for _ in range(3))
            identity = _agent_identity(rng, org, old)
            successor = replace(old, identity=identity, agent_addresses=agents)
        else:
            partner = next(
                (
                    n
                    for n, other in enumerate(org.pipelines)
                    if kind == "shared-connection"
                    and n > index
                    and n not in moved
                    and other.provider == old.provider
                ),
                None,
            )
            sharing = [old] if partner is None else [old, org.pipelines[partner]]
            identity = _connection(rng, org, sharing)
            if partner is not None:
                moved.add(partner)
                other = org.pipelines[partner]
                # The same principal; its own token cache and random stream in that pipeline.
                shared = replace(identity, key=f"{other.identity.key}-v2")
                moves.append(
                    PipelineMove(
                        index=partner,
                        day=day,
                        kind=kind,
                        successor=replace(
                            other, identity=shared, agent_ranges=OTHER_GEOGRAPHY_AGENTS
                        ),
                        # Queued together, the two run side by side (two parallel jobs):
                        # the same moment, in the partner's local minutes.
                        minute=minute
                        - old.utc_offset_minutes
                        + other.utc_offset_minutes
                        + rng.randint(0, 3),
                    )
                )
            successor = replace(old, identity=identity)
            if partner is not None:
                successor = replace(successor, agent_ranges=OTHER_GEOGRAPHY_AGENTS)
        moves.append(
            PipelineMove(index=index, day=day, kind=kind, successor=successor, minute=minute)
        )
    return tuple(sorted(moves, key=lambda move: move.index))


def _connection(rng: random.Random, org: Organisation, sharing: Sequence[Pipeline]) -> Identity:
    """The service principal of a new service connection, with the rights of the ones it
    replaces; both providers sign in with a federated credential (no secret)."""
    old = sharing[0]
    scopes = list(
        dict.fromkeys(a.scope for pipeline in sharing for a in pipeline.identity.assignments)
    )
    app = old.apps[0]
    if old.provider == "github-actions":
        name = f"github-oidc-{app.product}-{app.component}"
    else:
        # Azure DevOps names the app of a connection it creates `org-project-subscription`.
        name = f"contoso-{team_name(app.team)}-{app.subscription.id}"
    identity = _service_principal(rng, org, f"{old.identity.key}-v2", name, scopes)
    return replace(
        identity,
        credential_type="2",
        token_version=2 if old.provider == "github-actions" else 1,
    )


def _agent_identity(rng: random.Random, org: Organisation, old: Pipeline) -> Identity:
    """The user-assigned managed identity of a scale-set agent pool (`az login --identity`)."""
    name = f"id-build-agents-{team_name(old.apps[0].team)}"
    resource = (
        f"/subscriptions/{org.subscriptions[0].id}/resourcegroups/rg-build-agents/providers/"
        f"Microsoft.ManagedIdentity/userAssignedIdentities/{name}"
    )
    scopes = [assignment.scope for assignment in old.identity.assignments]
    return replace(
        _service_principal(rng, org, f"{old.identity.key}-mi", name, scopes),
        kind=IdentityKind.MANAGED_IDENTITY,
        credential_type="2",
        mi_resource_id=resource,
    )


class _MovedPipeline:
    """A pipeline that, after one day, runs as its successor; that day the team switches it
    over and re-runs every environment at once (dev, test, and production through the slot,
    as parallel jobs) to check."""

    __slots__ = ("_after", "_before", "_day", "_minute", "_rng", "_stages")

    def __init__(
        self,
        *,
        before: PipelineBehaviour,
        after: PipelineBehaviour,
        move: PipelineMove,
        org: Organisation,
        seed: int,
    ) -> None:
        self._before, self._after, self._day = before, after, move.day
        self._minute = move.minute
        pipeline = after.pipeline
        self._rng = make_rng(seed, "pipeline-move", pipeline.identity.key)
        order = {"dev": 0, "test": 1, "prod": 2}
        self._stages = [
            org.sites_of(app)[-1] if app.env == "prod" else org.sites_of(app)[0]
            for app in sorted(pipeline.apps, key=lambda app: (order.get(app.env, 1), app.index))
        ]

    def day(self, day: Day, rec: Recorder) -> None:
        """Records the runs of whichever identity deploys that day, and the re-run."""
        # The switch is made just before the re-run: that day's earlier runs are the old ones.
        (self._after if day.index > self._day else self._before).day(day, rec)
        if day.index == self._day:
            rng = self._rng
            midnight = day.local_midnight(self._after.pipeline.utc_offset_minutes)
            t = at_minute(rng, midnight, self._minute)
            for site in self._stages:
                if day.within(t):
                    self._after.deploy(rec, site, t)
                # Parallel jobs: the stages start a minute or two apart.
                t += rng.randint(30, 150) * TICKS_PER_SECOND


def _where(rng: random.Random, dev: Developer, day: Day) -> str:
    trip = dev.trip
    if trip is not None and trip.first_day <= day.index <= trip.last_day:
        return trip.address
    if day.date.weekday() in dev.office_days:
        return office_address(rng, dev.office)
    return dev.home_address


def _away(dev: Developer, day: Day) -> bool:
    """Not yet joined, or off (a day off or a leaver's months away)."""
    return day.index < dev.join_day or day.index in dev.days_off


def _allowed(rec: Recorder, identity: Identity, sites: Sequence[Site]) -> list[Site]:
    return [site for site in sites if rec.allowed(identity, site)]


class _KeysBlade:
    """A developer opening a team function app's keys in the portal (App keys, Get URL)."""

    __slots__ = ("_dev", "_functions", "_rng")

    def __init__(self, dev: Developer, org: Organisation, seed: int) -> None:
        self._dev = dev
        self._rng = make_rng(seed, "keys-blade", dev.identity.key)
        self._functions = [
            site for site in org.team_sites(dev.team) if site.app.function_app and not site.slot
        ]

    def day(self, day: Day, rec: Recorder) -> None:
        """Now and then, on a working day, one function app's keys."""
        dev, rng = self._dev, self._rng
        weekday = day.date.weekday()
        if _away(dev, day) or weekday >= 5 or not self._functions:
            return
        if rng.random() >= 0.1:
            return
        targets = _allowed(rec, dev.identity, self._functions)
        if not targets:
            return
        site = rng.choice(targets)
        midnight = day.local_midnight(dev.office.offset_on(day.date))
        at = at_minute(rng, midnight, dev.day_start_minute + rng.randrange(dev.day_minutes))
        if not day.within(at):
            return
        portal = Session(
            rec, rng, identity=dev.identity, client=PORTAL, address=_where(rng, dev, day)
        )
        t = portal.call(ops.HOST_LISTKEYS, site, at, "/host/default")
        for function in rng.sample(site.app.functions, rng.randint(1, 2)):
            t += rng.randint(3, 40) * TICKS_PER_SECOND
            t = portal.call(ops.FUNCTIONS_LISTKEYS, site, t, f"/functions/{function}")


class _KuduJobEdits:
    """A developer editing a WebJob's files in the Kudu console of a dev or test site."""

    __slots__ = ("_dev", "_rng", "_sites")

    def __init__(self, dev: Developer, org: Organisation, seed: int) -> None:
        self._dev = dev
        self._rng = make_rng(seed, "kudu-job-edits", dev.identity.key)
        self._sites = [
            site
            for site in org.team_sites(dev.team)
            if site.app.env != "prod" and site.app.file_audit and not site.app.function_app
        ]

    def day(self, day: Day, rec: Recorder) -> None:
        """Now and then, on a working day, a Kudu sitting that edits a job."""
        dev, rng = self._dev, self._rng
        weekday = day.date.weekday()
        if _away(dev, day) or weekday >= 5 or not self._sites:
            return
        if rng.random() >= 0.06:
            return
        site = rng.choice(self._sites)
        app = site.app
        jobs = [("triggered", job.name) for job in app.triggered_jobs]
        jobs += [("continuous", job) for job in app.continuous_jobs]
        kind, job = rng.choice(jobs) if jobs else ("triggered", "smoke-test")
        midnight = day.local_midnight(dev.office.offset_on(day.date))
        at = at_minute(rng, midnight, dev.day_start_minute + rng.randrange(dev.day_minutes))
        if not day.within(at):
            return
        rec.entra_login(rng, site=site, identity=dev.identity, at=at, address=_where(rng, dev, day))
        t = at + rng.randint(30, 300) * TICKS_PER_SECOND
        for name in rng.sample(("run.cmd", "settings.job", "run.py", "run.ps1"), rng.randint(1, 3)):
            rec.file(rng, site=site, relative=f"App_Data/jobs/{kind}/{job}/{name}", at=t)
            t += rng.randint(20, 400) * TICKS_PER_SECOND


class _JoinerWeek:
    """A joiner's first week: on the second or third working day, the publish profiles of every
    production site and slot of the team in one sitting (setting up local publishing), and
    on other days a few of the team's profiles."""

    __slots__ = ("_burst", "_dev", "_rng", "_sites")

    def __init__(self, dev: Developer, org: Organisation, seed: int) -> None:
        self._dev = dev
        self._rng = make_rng(seed, "joiner-week", dev.identity.key)
        team = org.team_sites(dev.team)
        prod = [s for s in team if s.app.env == "prod"]
        rest = [s for s in team if s.app.env != "prod" and s.slot is None]
        self._sites = prod + rest
        # Onboarding's second or third day: "set up publishing to your team's sites".
        self._burst = dev.join_day + self._rng.randint(1, 2)

    def day(self, day: Day, rec: Recorder) -> None:
        """On most working days of the first week, a few profiles; once, all of production."""
        dev, rng = self._dev, self._rng
        weekday = day.date.weekday()
        if not dev.join_day <= day.index < dev.join_day + 7 or weekday >= 5 or _away(dev, day):
            return
        if day.index < self._burst and rng.random() >= 0.7:
            return
        targets = _allowed(rec, dev.identity, self._sites)
        if not targets:
            return
        if day.index >= self._burst:
            # Once: every production site and slot, then test sites up to four in all.
            self._burst = dev.join_day + 7
            prod = [site for site in targets if site.app.env == "prod"]
            chosen = (
                prod + [site for site in targets if site.app.env != "prod"][: max(0, 4 - len(prod))]
            )
            client = rng.choice((AZURE_CLI, VISUAL_STUDIO))
        else:
            # Before that sitting, dev and test only.
            before = day.index < self._burst
            chosen = [site for site in targets if not before or site.app.env != "prod"]
            chosen = chosen[: rng.randint(2, 4)]
            client = rng.choice((AZURE_CLI, VISUAL_STUDIO, PORTAL))
        where = _where(rng, dev, day)
        tool = Session(rec, rng, identity=dev.identity, client=client, address=where)
        midnight = day.local_midnight(dev.office.offset_on(day.date))
        t = at_minute(rng, midnight, dev.day_start_minute + rng.randrange(dev.day_minutes))
        for site in chosen:
            if day.within(t):
                t = tool.call(ops.PUBLISHXML, site, t)
            t += rng.randint(10, 120) * TICKS_PER_SECOND


class _SreBehaviour:
    """An SRE: portal reviews, incidents when on call, and function key rotations (the
    routine SRE each Wednesday; another SRE once, in the routine one's week off)."""

    __slots__ = ("_cover_day", "_covers", "_index", "_prod", "_rng", "_rotated", "_sre", "_sres")

    def __init__(
        self, index: int, sre: Sre, teams: ProductTeams, org: Organisation, seed: int
    ) -> None:
        self._sre = sre
        self._index = index
        self._sres = len(teams.sres)
        self._rng = make_rng(seed, "sre", sre.identity.key)
        self._rotated = teams.rotated
        self._cover_day = teams.cover_day
        self._covers = index == teams.cover
        self._prod = [s for s in org.sites if s.app.env == "prod" and s.slot is None]

    def _on_call(self, when: date) -> bool:
        # On-call rotates weekly among the SREs who are not the routine one.
        others = self._sres - 1
        if self._sre.routine or others < 1:
            return False
        week = when.isocalendar()[1]
        return week % others == self._index - 1

    def day(self, day: Day, rec: Recorder) -> None:
        """Records the SRE's day."""
        sre, rng = self._sre, self._rng
        weekday = day.date.weekday()
        midnight = day.local_midnight(sre.office.offset_on(day.date))
        on_call = self._on_call(day.date)
        where = office_address(rng, sre.office) if weekday in (1, 2, 3) else sre.home_address
        week_off = sre.routine and self._cover_day - 2 <= day.index <= self._cover_day + 2
        if weekday < 5 and self._prod and not week_off:
            for _ in range(poisson(rng, 1.0)):
                at = at_minute(rng, midnight, rng.randint(9 * 60, 17 * 60))
                if day.within(at):
                    portal = Session(rec, rng, identity=sre.identity, client=PORTAL, address=where)
                    site = rng.choice(self._prod)
                    for suffix in PORTAL_CONFIGURATION_BLADE:
                        portal.call(ops.CONFIG_LIST, site, at, f"/config/{suffix}")
        if on_call and self._prod and rng.random() < 0.4:
            at = at_minute(rng, midnight, rng.randrange(24 * 60))
            if day.within(at):
                cli = Session(rec, rng, identity=sre.identity, client=AZURE_CLI, address=where)
                site = rng.choice(self._prod)
                t = cli.call(ops.CONFIG_LIST, site, at, "/config/appsettings")
                cli.call(ops.RESTART, site, t + rng.randint(30, 300) * TICKS_PER_SECOND)
        rotates = (sre.routine and weekday == 2 and not week_off) or (
            self._covers and day.index == self._cover_day
        )
        if rotates and self._rotated:
            at = at_minute(rng, midnight, rng.randint(10 * 60, 16 * 60))
            if day.within(at):
                self._rotate(rec, at, where)

    def _rotate(self, rec: Recorder, at: int, where: str) -> None:
        """`Get-AzFunctionAppKey`-style: list the host keys, then write a new default key."""
        rng = self._rng
        shell = Session(
            rec, rng, identity=self._sre.identity, client=AZURE_POWERSHELL, address=where
        )
        t = at
        for site in self._rotated:
            t = shell.call(ops.HOST_LISTKEYS, site, t, "/host/default")
            t = shell.call(
                ops.HOST_FUNCTIONKEYS_WRITE,
                site,
                t + rng.randint(2, 20) * TICKS_PER_SECOND,
                "/host/default/functionkeys/default",
            )
            t += rng.randint(20, 120) * TICKS_PER_SECOND


class _GuestBehaviour:
    """A contractor on three days a week: portal settings and publish profiles of dev/test."""

    __slots__ = ("_days", "_guest", "_rng", "_sites")

    def __init__(self, guest: Guest, org: Organisation, seed: int) -> None:
        self._guest = guest
        self._rng = make_rng(seed, "guest", guest.identity.key)
        self._sites = [
            s for s in org.team_sites(guest.team) if s.app.env != "prod" and s.slot is None
        ]
        self._days = tuple(sorted(self._rng.sample(range(5), 3)))

    def day(self, day: Day, rec: Recorder) -> None:
        """Records a working day's sessions."""
        guest, rng = self._guest, self._rng
        if day.date.weekday() not in self._days or not self._sites:
            return
        midnight = day.local_midnight(guest.office.offset_on(day.date))
        for _ in range(1 + poisson(rng, 1.5)):
            at = at_minute(rng, midnight, rng.randint(9 * 60, 18 * 60))
            if not day.within(at):
                continue
            site = rng.choice(self._sites)
            if rng.random() < 0.6:
                portal = Session(
                    rec, rng, identity=guest.identity, client=PORTAL, address=guest.address
                )
                for suffix in PORTAL_CONFIGURATION_BLADE:
                    portal.call(ops.CONFIG_LIST, site, at, f"/config/{suffix}")
            else:
                cli = Session(
                    rec, rng, identity=guest.identity, client=AZURE_CLI, address=guest.address
                )
                cli.call(ops.PUBLISHXML, site, at)


class _Rotation:
    """The monthly publishing-password rotation: reset, then the new profile into a vault."""

    __slots__ = ("_auto", "_client", "_rng", "_sites")

    def __init__(self, auto: Automation, org: Organisation, seed: int) -> None:
        self._auto = auto
        self._rng = make_rng(seed, "rotation")
        self._client = own_client(auto.identity)
        self._sites = [s for s in org.sites if s.app.env == "prod"]

    def day(self, day: Day, rec: Recorder) -> None:
        """On the third of each month, every production site and slot."""
        if day.date.day != _ROTATION_DAY:
            return
        rng, auto = self._rng, self._auto
        t = at_minute(rng, day.midnight, auto.minute)
        session = Session(
            rec, rng, identity=auto.identity, client=self._client, address=auto.address
        )
        for site in self._sites:
            if day.within(t):
                t = session.call(ops.NEWPASSWORD, site, t)
                t = session.call(ops.PUBLISHXML, site, t + rng.randint(2, 8) * TICKS_PER_SECOND)
            t += rng.randint(5, 30) * TICKS_PER_SECOND


class _Backup:
    """Backup automation: backup settings nightly; a quarterly DR drill takes the profiles."""

    __slots__ = ("_auto", "_client", "_rng", "_sites")

    def __init__(self, auto: Automation, org: Organisation, seed: int) -> None:
        self._auto = auto
        self._rng = make_rng(seed, "backup")
        self._client = own_client(auto.identity)
        self._sites = [s for s in org.sites if s.app.env == "prod" and s.slot is None]

    def day(self, day: Day, rec: Recorder) -> None:
        """The nightly check, and the drill on the second Tuesday of a drill month."""
        rng, auto = self._rng, self._auto
        session = Session(
            rec, rng, identity=auto.identity, client=self._client, address=auto.address
        )
        t = at_minute(rng, day.midnight, auto.minute)
        for site in self._sites:
            if day.within(t):
                t = session.call(ops.CONFIG_LIST, site, t, "/config/backup")
            t += rng.randint(200, 2000) * TICKS_PER_MS
        when = day.date
        if when.month in _DRILL_MONTHS and when.weekday() == 1 and 8 <= when.day <= 14:
            t = at_minute(rng, day.midnight, 13 * 60)
            for site in self._sites:
                if day.within(t):
                    t = session.call(ops.CONFIG_LIST, site, t, "/config/publishingcredentials")
                    t = session.call(ops.PUBLISHXML, site, t + rng.randint(1, 5) * TICKS_PER_SECOND)
                t += rng.randint(10, 60) * TICKS_PER_SECOND


class _Hourly:
    """An hourly inventory (`az webapp show`-style) reading every site's metadata."""

    __slots__ = ("_auto", "_client", "_rng", "_sites")

    def __init__(self, auto: Automation, org: Organisation, seed: int) -> None:
        self._auto = auto
        self._rng = make_rng(seed, "hourly")
        self._client = own_client(auto.identity)
        self._sites = [s for s in org.sites if s.slot is None]

    def day(self, day: Day, rec: Recorder) -> None:
        """Twenty-four sweeps."""
        rng, auto = self._rng, self._auto
        session = Session(
            rec, rng, identity=auto.identity, client=self._client, address=auto.address
        )
        for hour in range(24):
            t = day.midnight + hour * TICKS_PER_HOUR
            t = at_minute(rng, t, auto.minute)
            for site in self._sites:
                if day.within(t):
                    t = session.call(ops.CONFIG_LIST, site, t, "/config/metadata")
                t += rng.randint(50, 400) * TICKS_PER_MS
