"""The product-teams shape (issue #22): the benign habits that look like intrusions.

An organisation of product teams whose sites are named for their team and environment
(`cobalt-payments-api-prod`, `func-cobalt-payments-dev`), with, besides the default shape's
people and automation:

- developers opening their own team's function apps' keys in the portal (host and function
  `listkeys` through the portal's client), now and then, so first listings keep coming,
  whether or not they otherwise use keys;
- developers editing WebJob files in the Kudu console on their team's dev and test sites
  (an Entra Kudu login, then writes under `App_Data/jobs`);
- joiners (about one developer in twelve) taking their team's publish profiles in their
  first week;
- platform SREs: one rotates function keys across a few function apps every week, the
  others do it when on call (one week in turn), for the first time after the learning days;
- a publishing-password rotation once a month (`newpassword` then `publishxml` of every
  production site, by its own service principal) and a quarterly DR drill by the backup
  automation, which otherwise reads backup settings nightly;
- an hourly `az webapp show`-style monitor reading the metadata of every site (config
  reads, not credentials);
- a pipeline moving to a new service connection (a new service principal deploying the
  same sites) and another to a new agent pool (new addresses), after the learning days;
- contractors and guests working on one team's non-production sites from their company's
  network.

Everything is drawn from streams of its own, so the default shape is untouched.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date
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
    HOME_ISPS,
    NEW_AGENT_POOL,
    OFFICES,
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
    """From `day` on, `successor` deploys what pipeline `index` deployed."""

    index: int
    day: int
    kind: str
    successor: Pipeline


@dataclass(frozen=True, kw_only=True, slots=True)
class ProductTeams:
    """The people and automation the product-teams shape adds."""

    sres: tuple[Sre, ...]
    guests: tuple[Guest, ...]
    rotation: Automation
    backup: Automation
    hourly: Automation
    moves: tuple[PipelineMove, ...]


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
            office=OFFICES[n % 2],
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
    )


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
            result.append(_MovedPipeline(before=actor, after=after, day=move.day))
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


def _moves(rng: random.Random, org: Organisation, profile: OrgProfile) -> tuple[PipelineMove, ...]:
    """Pipeline 1 moves to a new service connection, pipeline 2 to a new agent pool."""
    moves = []
    scoring = max(1, profile.days - profile.learning_days)
    for index, kind in ((1, "connection"), (2, "agents")):
        if index >= len(org.pipelines):
            continue
        old = org.pipelines[index]
        day = min(profile.days - 1, profile.learning_days + rng.randrange(max(1, scoring // 2)))
        if kind == "connection":
            scopes = [assignment.scope for assignment in old.identity.assignments]
            identity = replace(
                _service_principal(
                    rng, org, f"{old.identity.key}-v2", f"{old.identity.display_name}-v2", scopes
                ),
                credential_type="2",
            )
            successor = replace(old, identity=identity)
        else:
            agents = tuple(address(rng, NEW_AGENT_POOL[0]) for _ in range(3))
            successor = replace(old, provider="self-hosted", agent_addresses=agents)
        moves.append(PipelineMove(index=index, day=day, kind=kind, successor=successor))
    return tuple(moves)


class _MovedPipeline:
    """A pipeline that, from one day on, runs as its successor."""

    __slots__ = ("_after", "_before", "_day")

    def __init__(self, *, before: PipelineBehaviour, after: PipelineBehaviour, day: int) -> None:
        self._before, self._after, self._day = before, after, day

    def day(self, day: Day, rec: Recorder) -> None:
        """Records the runs of whichever identity deploys that day."""
        (self._after if day.index >= self._day else self._before).day(day, rec)


def _where(rng: random.Random, dev: Developer, weekday: int) -> str:
    if weekday in dev.office_days:
        return office_address(rng, dev.office)
    return dev.home_address


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
        if day.index < dev.join_day or weekday >= 5 or not self._functions:
            return
        if rng.random() >= 0.1:
            return
        targets = _allowed(rec, dev.identity, self._functions)
        if not targets:
            return
        site = rng.choice(targets)
        midnight = day.local_midnight(dev.office.utc_offset_minutes)
        at = at_minute(rng, midnight, dev.day_start_minute + rng.randrange(dev.day_minutes))
        if not day.within(at):
            return
        portal = Session(
            rec, rng, identity=dev.identity, client=PORTAL, address=_where(rng, dev, weekday)
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
        if day.index < dev.join_day or weekday >= 5 or not self._sites:
            return
        if rng.random() >= 0.06:
            return
        site = rng.choice(self._sites)
        app = site.app
        jobs = [("triggered", job.name) for job in app.triggered_jobs]
        jobs += [("continuous", job) for job in app.continuous_jobs]
        kind, job = rng.choice(jobs) if jobs else ("triggered", "smoke-test")
        midnight = day.local_midnight(dev.office.utc_offset_minutes)
        at = at_minute(rng, midnight, dev.day_start_minute + rng.randrange(dev.day_minutes))
        if not day.within(at):
            return
        rec.entra_login(
            rng, site=site, identity=dev.identity, at=at, address=_where(rng, dev, weekday)
        )
        t = at + rng.randint(30, 300) * TICKS_PER_SECOND
        for name in rng.sample(("run.cmd", "settings.job", "run.py", "run.ps1"), rng.randint(1, 3)):
            rec.file(rng, site=site, relative=f"App_Data/jobs/{kind}/{job}/{name}", at=t)
            t += rng.randint(20, 400) * TICKS_PER_SECOND


class _JoinerWeek:
    """A joiner taking the team's publish profiles (production first) in the first week."""

    __slots__ = ("_dev", "_rng", "_sites")

    def __init__(self, dev: Developer, org: Organisation, seed: int) -> None:
        self._dev = dev
        self._rng = make_rng(seed, "joiner-week", dev.identity.key)
        team = [site for site in org.team_sites(dev.team) if site.slot is None]
        self._sites = [s for s in team if s.app.env == "prod"] + [
            s for s in team if s.app.env != "prod"
        ]

    def day(self, day: Day, rec: Recorder) -> None:
        """On most working days of the first week, a few profiles."""
        dev, rng = self._dev, self._rng
        weekday = day.date.weekday()
        if not dev.join_day <= day.index < dev.join_day + 7 or weekday >= 5:
            return
        if rng.random() >= 0.7:
            return
        targets = _allowed(rec, dev.identity, self._sites)
        if not targets:
            return
        client = rng.choice((AZURE_CLI, VISUAL_STUDIO, PORTAL))
        where = _where(rng, dev, weekday)
        tool = Session(rec, rng, identity=dev.identity, client=client, address=where)
        midnight = day.local_midnight(dev.office.utc_offset_minutes)
        t = at_minute(rng, midnight, dev.day_start_minute + rng.randrange(dev.day_minutes))
        for site in targets[: rng.randint(2, 4)]:
            if day.within(t):
                t = tool.call(ops.PUBLISHXML, site, t)
            t += rng.randint(10, 180) * TICKS_PER_SECOND


class _SreBehaviour:
    """An SRE: portal reviews, incidents when on call, and function key rotations."""

    __slots__ = ("_functions", "_index", "_prod", "_rng", "_sre", "_sres")

    def __init__(
        self, index: int, sre: Sre, teams: ProductTeams, org: Organisation, seed: int
    ) -> None:
        self._sre = sre
        self._index = index
        self._sres = len(teams.sres)
        self._rng = make_rng(seed, "sre", sre.identity.key)
        self._functions = [s for s in org.sites if s.app.function_app and s.slot is None]
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
        midnight = day.local_midnight(sre.office.utc_offset_minutes)
        on_call = self._on_call(day.date)
        where = office_address(rng, sre.office) if weekday in (1, 2, 3) else sre.home_address
        if weekday < 5 and self._prod:
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
        rotates = (sre.routine and weekday == 2) or (on_call and weekday < 5 and rng.random() < 0.2)
        if rotates and self._functions:
            at = at_minute(rng, midnight, rng.randint(10 * 60, 16 * 60))
            if day.within(at):
                self._rotate(rec, at, where)

    def _rotate(self, rec: Recorder, at: int, where: str) -> None:
        rng = self._rng
        shell = Session(
            rec, rng, identity=self._sre.identity, client=AZURE_POWERSHELL, address=where
        )
        t = at
        for site in rng.sample(self._functions, min(len(self._functions), rng.randint(2, 4))):
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
        midnight = day.local_midnight(guest.office.utc_offset_minutes)
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
