"""The simulated organisation: subscriptions, sites and the people and automation that use them.

Everything here is fixed for the whole period and derived from the profile's seed alone.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace
from datetime import timedelta

from detectors.simulation.content import site_content
from detectors.simulation.identities import (
    CONTRIBUTOR,
    OWNER,
    READER,
    WEBSITE_CONTRIBUTOR,
    Identity,
    IdentityKind,
    Role,
    RoleAssignment,
)
from detectors.simulation.ids import b64url, guid, hex32, make_rng, puid
from detectors.simulation.network import (
    AZURE_HOSTS,
    DST_BY_COUNTRY,
    HOME_ISPS,
    OFFICES,
    SELF_HOSTED_AGENTS,
    TRAVEL,
    TRAVEL_RESIDENTIAL,
    Office,
    address,
)
from detectors.simulation.profile import PRODUCT_TEAMS, OrgProfile

DOMAIN = "contoso.com"
_PRODUCTS = (
    "payments",
    "orders",
    "catalog",
    "checkout",
    "inventory",
    "shipping",
    "pricing",
    "loyalty",
    "search",
    "notifications",
    "reporting",
    "identity",
    "billing",
    "crm",
    "support",
    "analytics",
    "booking",
    "invoicing",
    "recommendations",
    "reviews",
    "partners",
    "returns",
    "marketing",
    "content",
    "media",
    "warehouse",
    "fleet",
    "timesheets",
    "pos",
    "quotes",
)
_COMPONENTS = ("api", "web", "func", "worker")
_CONTINUOUS_JOBS = ("queue-processor", "sync", "event-consumer", "indexer", "outbox-relay")
_TRIGGERED_JOBS = (
    "cleanup",
    "nightly-report",
    "purge-temp",
    "reindex",
    "send-digest",
    "export-ledger",
    "refresh-cache",
)
_FUNCTIONS = (
    "HttpIngest",
    "ProcessOrder",
    "TimerCleanup",
    "QueueDispatcher",
    "BlobResize",
    "WebhookReceiver",
    "RefreshCache",
    "SendEmail",
    "ScoreEvents",
)
_FIRST_NAMES = (
    "Alice",
    "Bilal",
    "Chen",
    "Dana",
    "Elif",
    "Farid",
    "Grace",
    "Hiro",
    "Ines",
    "Jonas",
    "Kavya",
    "Liam",
    "Maya",
    "Nikolai",
    "Olga",
    "Pedro",
    "Quinn",
    "Rahul",
    "Sofia",
    "Tomasz",
    "Uma",
    "Victor",
    "Wen",
    "Ximena",
    "Yusuf",
    "Zoe",
    "Arjun",
    "Beatriz",
    "Callum",
    "Deepa",
    "Emre",
    "Freya",
    "Gabriel",
    "Hannah",
    "Ivan",
    "Julia",
    "Kenji",
    "Lena",
    "Marek",
    "Nadia",
)
_SURNAMES = (
    "Smith",
    "Khan",
    "Wang",
    "Novak",
    "Yilmaz",
    "Haddad",
    "Okafor",
    "Tanaka",
    "Garcia",
    "Schmidt",
    "Iyer",
    "Murphy",
    "Cohen",
    "Petrov",
    "Ivanova",
    "Silva",
    "Taylor",
    "Sharma",
    "Rossi",
    "Kowalski",
    "Nair",
    "Dubois",
    "Li",
    "Lopez",
    "Demir",
    "Brown",
    "Mehta",
    "Santos",
    "Fraser",
    "Reddy",
    "Aydin",
    "Larsen",
    "Martin",
    "Weber",
    "Sokolov",
    "Becker",
    "Sato",
    "Fischer",
    "Dvorak",
    "Rahman",
)
# Product-teams shape: each team's name leads its sites' and resource groups' names.
TEAM_NAMES = ("atlas", "borealis", "cobalt", "delta", "ember", "fjord", "granite", "helix")
# Minutes between ARM-started runs of a triggered WebJob; 1440 means once a day.
_RUN_INTERVALS = (15, 30, 60, 60, 120, 240, 360, 1440, 1440)


@dataclass(frozen=True, kw_only=True, slots=True)
class Subscription:
    """An Azure subscription and its management-group hierarchy text."""

    id: str
    name: str
    hierarchy: str


@dataclass(frozen=True, kw_only=True, slots=True)
class TriggeredJob:
    """A triggered WebJob; `runner` is the managed identity that starts it through ARM, if any."""

    name: str
    runner: int | None
    every_minutes: int
    minute: int


@dataclass(frozen=True, kw_only=True, slots=True)
class App:
    """A web app or function app as deployed: where it lives, what it runs, what it contains."""

    index: int
    name: str
    subscription: Subscription
    resource_group: str
    product: str
    component: str
    env: str
    team: int
    function_app: bool
    windows: bool
    file_audit: bool
    slots: tuple[str, ...]
    continuous_jobs: tuple[str, ...]
    triggered_jobs: tuple[TriggeredJob, ...]
    functions: tuple[str, ...]
    content: tuple[str, ...]
    # Files a day the app itself writes under wwwroot (caches, uploads, logs); 0 for most.
    runtime_writes: float

    @property
    def group_id(self) -> str:
        """The resource group's id as ARM writes it."""
        return f"/subscriptions/{self.subscription.id}/resourceGroups/{self.resource_group}"

    @property
    def site_id(self) -> str:
        """The production site's id as ARM writes it."""
        return f"{self.group_id}/providers/Microsoft.Web/sites/{self.name}"


@dataclass(frozen=True, kw_only=True, slots=True)
class Site:
    """Something one can deploy to and log in to: an app's production site or one of its slots."""

    app: App
    slot: str | None
    arm_id: str
    key: str
    upper_id: str
    group_upper: str
    publishing_user: str
    file_root: str

    def path(self, relative: str) -> str:
        """The audited path of a file under wwwroot, in the site's OS form."""
        if self.app.windows:
            return self.file_root + relative.replace("/", "\\")
        return self.file_root + relative


@dataclass(frozen=True, kw_only=True, slots=True)
class Trip:
    """A business trip: the days away and the hotel's network."""

    first_day: int
    last_day: int
    country: str
    address: str


@dataclass(frozen=True, kw_only=True, slots=True)
class Developer:
    """A developer: identity, team, place, habits and the rights that shape their calls."""

    identity: Identity
    team: int
    office: Office
    home_prefix: str
    home_address: str
    day_start_minute: int
    day_minutes: int
    office_days: tuple[int, ...]
    sessions_per_day: float
    tools: tuple[tuple[str, int], ...]
    lead: bool
    prod_access: bool
    function_keys: bool
    runs_jobs: bool
    join_day: int
    trip: Trip | None
    days_off: tuple[int, ...]
    # Whether a joiner's first look around (day one) takes production's profiles too.
    explores_prod: bool = True


@dataclass(frozen=True, kw_only=True, slots=True)
class Admin:
    """A platform administrator with a weekly maintenance window."""

    identity: Identity
    office: Office
    home_address: str
    maintenance_weekday: int
    maintenance_minute: int


@dataclass(frozen=True, kw_only=True, slots=True)
class Pipeline:
    """A CI/CD pipeline's service principal, what it deploys and how often."""

    identity: Identity
    apps: tuple[App, ...]
    provider: str
    flavour: str
    commits_per_day: float
    nightly_minute: int | None
    release_chance: float
    utc_offset_minutes: int
    agent_addresses: tuple[str, ...]
    # Datacenter ranges of its hosted agents when they are not its provider's usual ones.
    agent_ranges: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True, slots=True)
class ManagedIdentity:
    """A managed identity that runs WebJobs through ARM from the organisation's Azure hosts."""

    identity: Identity
    host_addresses: tuple[str, ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class Monitor:
    """A monitoring or inventory script that reads settings of every site once a day."""

    identity: Identity
    minute: int
    address: str
    suffixes: tuple[str, ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class Organisation:
    """The whole simulated organisation."""

    tenant_id: str
    workspace_id: str
    subscriptions: tuple[Subscription, ...]
    apps: tuple[App, ...]
    sites: tuple[Site, ...]
    developers: tuple[Developer, ...]
    admins: tuple[Admin, ...]
    pipelines: tuple[Pipeline, ...]
    managed_identities: tuple[ManagedIdentity, ...]
    monitors: tuple[Monitor, ...]

    def sites_of(self, app: App) -> tuple[Site, ...]:
        """The app's production site followed by its slots."""
        return tuple(site for site in self.sites if site.app is app)

    def team_sites(self, team: int) -> tuple[Site, ...]:
        """Every site and slot of a team's apps."""
        return tuple(site for site in self.sites if site.app.team == team)


def build_organisation(profile: OrgProfile) -> Organisation:
    """The organisation a profile describes, the same every time for the same profile."""
    rng = make_rng(profile.seed, "organisation")
    tenant_id = guid(rng)
    workspace_id = guid(rng)
    subscriptions = _subscriptions(rng, profile, tenant_id)
    teams = max(1, math.ceil(profile.developers / 3))
    if profile.shape == PRODUCT_TEAMS:
        # Fewer, larger teams (four or five developers each, at most six teams).
        teams = max(1, min(6, math.ceil(profile.developers / 5)))
    apps = _apps(rng, profile, subscriptions, teams)
    products = list(dict.fromkeys(app.product for app in apps))
    if len(products) < teams:
        # Every team owns at least one product.
        teams = len(products)
        apps = tuple(replace(app, team=products.index(app.product) % teams) for app in apps)
    if profile.shape == PRODUCT_TEAMS:
        apps = tuple(_team_named(app) for app in apps)
    sites = tuple(site for app in apps for site in _sites(app))
    people = _People(rng, tenant_id)
    developers = _developers(rng, profile, apps, teams, people)
    if profile.shape == PRODUCT_TEAMS:
        developers = _team_calendars(profile, developers)
    return Organisation(
        tenant_id=tenant_id,
        workspace_id=workspace_id,
        subscriptions=subscriptions,
        apps=apps,
        sites=sites,
        developers=developers,
        admins=tuple(_admin(rng, n, subscriptions, people) for n in range(profile.admins)),
        pipelines=_pipelines(rng, profile, apps, subscriptions, tenant_id),
        managed_identities=tuple(
            _managed_identity(rng, n, subscriptions, tenant_id)
            for n in range(profile.managed_identities)
        ),
        monitors=tuple(
            _monitor(rng, n, subscriptions, tenant_id) for n in range(profile.monitoring_scripts)
        ),
    )


def _subscriptions(
    rng: random.Random, profile: OrgProfile, tenant_id: str
) -> tuple[Subscription, ...]:
    names = ["contoso-prod", "contoso-nonprod"]
    names += [f"contoso-prod-{n:02d}" for n in range(2, profile.subscriptions)]
    result = []
    for name in names[: profile.subscriptions]:
        sub_id = guid(rng)
        group = "mg-nonprod" if name.endswith("nonprod") else "mg-prod"
        result.append(
            Subscription(id=sub_id, name=name, hierarchy=f"{tenant_id}/mg-contoso/{group}/{sub_id}")
        )
    return tuple(result)


def _subscription_for(
    subscriptions: tuple[Subscription, ...], product_index: int, env: str
) -> Subscription:
    if len(subscriptions) == 1:
        return subscriptions[0]
    if env != "prod":
        return subscriptions[1]
    prod = [subscriptions[0], *subscriptions[2:]]
    return prod[product_index % len(prod)]


def _apps(
    rng: random.Random, profile: OrgProfile, subscriptions: tuple[Subscription, ...], teams: int
) -> tuple[App, ...]:
    apps: list[App] = []
    product_index = 0
    runners = profile.managed_identities
    while len(apps) < profile.sites:
        base = _PRODUCTS[product_index % len(_PRODUCTS)]
        round_ = product_index // len(_PRODUCTS)
        product = base if round_ == 0 else f"{base}{round_ + 1}"
        if product_index == 0:
            components = ["api", "func", "worker"]
        else:
            components = sorted(rng.sample(_COMPONENTS, rng.randint(1, 3)), key=_COMPONENTS.index)
        envs = ["prod", "test"] + (["dev"] if rng.random() < 0.35 else [])
        # The first product is laid out environment by environment, so that even a tiny
        # organisation has a function app and a WebJob host; the others component by
        # component, so that every component has a test environment.
        pairs = (
            [(env, component) for env in envs for component in components]
            if product_index == 0
            else [(env, component) for component in components for env in envs]
        )
        for env, component in pairs:
            if len(apps) < profile.sites:
                apps.append(
                    _app(
                        rng,
                        index=len(apps),
                        product=product,
                        product_index=product_index,
                        component=component,
                        env=env,
                        subscriptions=subscriptions,
                        teams=teams,
                        runners=runners,
                    )
                )
        product_index += 1
    return tuple(apps)


def _app(
    rng: random.Random,
    *,
    index: int,
    product: str,
    product_index: int,
    component: str,
    env: str,
    subscriptions: tuple[Subscription, ...],
    teams: int,
    runners: int,
) -> App:
    function_app = component == "func"
    name = (
        f"func-contoso-{product}-{env}" if function_app else f"contoso-{product}-{component}-{env}"
    )
    windows = component == "worker" or rng.random() < 0.55
    continuous: tuple[str, ...] = ()
    triggered: list[TriggeredJob] = []
    if component == "worker":
        continuous = (rng.choice(_CONTINUOUS_JOBS),)
        names = rng.sample(_TRIGGERED_JOBS, rng.randint(1, 3))
    elif component == "api" and windows and rng.random() < 0.4:
        names = [rng.choice(_TRIGGERED_JOBS)]
    else:
        names = []
    for job in names:
        runner = rng.randrange(runners) if runners and rng.random() < 0.8 else None
        triggered.append(
            TriggeredJob(
                name=job,
                runner=runner,
                every_minutes=rng.choice(_RUN_INTERVALS),
                minute=rng.randrange(60),
            )
        )
    functions = tuple(rng.sample(_FUNCTIONS, rng.randint(2, 5))) if function_app else ()
    slots = ("staging",) if env == "prod" and component != "worker" and rng.random() < 0.5 else ()
    return App(
        index=index,
        name=name,
        subscription=_subscription_for(subscriptions, product_index, env),
        resource_group=f"rg-{product}-{env}",
        product=product,
        component=component,
        env=env,
        team=product_index % teams,
        function_app=function_app,
        windows=windows,
        file_audit=component == "worker" or rng.random() < (0.9 if windows else 0.75),
        slots=slots,
        continuous_jobs=continuous,
        triggered_jobs=tuple(triggered),
        functions=functions,
        content=site_content(
            rng,
            assembly=f"Contoso.{product.capitalize()}.{component.capitalize()}",
            component=component,
            windows=windows,
            functions=functions,
            continuous_jobs=continuous,
            triggered_jobs=[job.name for job in triggered],
        ),
        runtime_writes=rng.uniform(150.0, 400.0) if rng.random() < 0.25 else 0.0,
    )


def team_name(team: int) -> str:
    """A product team's name in the product-teams shape."""
    base = TEAM_NAMES[team % len(TEAM_NAMES)]
    return base if team < len(TEAM_NAMES) else f"{base}{team // len(TEAM_NAMES) + 1}"


def _team_named(app: App) -> App:
    """The app named as a product-teams organisation names it: team, product, component, env
    (`func-cobalt-payments-dev`, `cobalt-payments-api-prod`, in `rg-cobalt-payments-prod`)."""
    team = team_name(app.team)
    name = (
        f"func-{team}-{app.product}-{app.env}"
        if app.function_app
        else f"{team}-{app.product}-{app.component}-{app.env}"
    )
    return replace(app, name=name, resource_group=f"rg-{team}-{app.product}-{app.env}")


def _sites(app: App) -> list[Site]:
    sites = []
    for slot in (None, *app.slots):
        arm_id = app.site_id if slot is None else f"{app.site_id}/slots/{slot}"
        user = f"${app.name}" if slot is None else f"${app.name}__{slot}"
        root = "D:\\home\\site\\wwwroot\\" if app.windows else "/home/site/wwwroot/"
        sites.append(
            Site(
                app=app,
                slot=slot,
                arm_id=arm_id,
                key=arm_id.lower(),
                upper_id=arm_id.upper(),
                group_upper=app.resource_group.upper(),
                publishing_user=user,
                file_root=root,
            )
        )
    return sites


class _People:
    """Hands out unique names and the org's security groups."""

    def __init__(self, rng: random.Random, tenant_id: str) -> None:
        self.tenant_id = tenant_id
        self.groups = tuple(guid(rng) for _ in range(8))
        pairs = [(first, last) for first in _FIRST_NAMES for last in _SURNAMES]
        rng.shuffle(pairs)
        self._pairs = pairs
        self._next = 0

    def user(
        self, rng: random.Random, key: str, assignments: tuple[RoleAssignment, ...]
    ) -> Identity:
        first, last = self._pairs[self._next % len(self._pairs)]
        suffix = "" if self._next < len(self._pairs) else str(self._next // len(self._pairs))
        self._next += 1
        upn = f"{first.lower()}.{last.lower()}{suffix}@{DOMAIN}"
        groups = tuple(rng.sample(self.groups, rng.randint(0, 3)))
        return Identity(
            key=key,
            kind=IdentityKind.USER,
            object_id=guid(rng),
            display_name=f"{first} {last}",
            tenant_id=self.tenant_id,
            subject=b64url(rng, 43),
            assignments=assignments,
            upn=upn,
            given_name=first,
            surname=last,
            puid=puid(rng),
            groups=groups,
            auth_methods=rng.choice(("pwd,mfa", "pwd,mfa", "rsa,mfa", "pwd,rsa,mfa")),
        )


def _assign(rng: random.Random, role: Role, scopes: list[str]) -> tuple[RoleAssignment, ...]:
    return tuple(RoleAssignment(id=hex32(rng), role=role, scope=scope) for scope in scopes)


def _team_groups(apps: tuple[App, ...], team: int, prod: bool) -> list[str]:
    groups: list[str] = []
    for app in apps:
        if app.team == team and (app.env == "prod") == prod and app.group_id not in groups:
            groups.append(app.group_id)
    return groups


def _developers(
    rng: random.Random, profile: OrgProfile, apps: tuple[App, ...], teams: int, people: _People
) -> tuple[Developer, ...]:
    developers = []
    subscription_scopes = sorted({f"/subscriptions/{app.subscription.id}" for app in apps})
    leads = max(1, profile.developers // 8)
    onboarding = profile.onboarding
    if profile.shape == PRODUCT_TEAMS:
        # Teams grow: about one developer in twelve joins just after the learning period.
        onboarding = min(profile.developers - 1, max(onboarding, profile.developers // 12))
    first_joiner = profile.developers - onboarding
    for n in range(profile.developers):
        team = n % teams
        office = OFFICES[team % len(OFFICES)] if rng.random() < 0.85 else rng.choice(OFFICES)
        lead = n < leads
        team_apps = [app for app in apps if app.team == team]
        # Reader on production is common, but not for a team that has nothing else; in the
        # product-teams shape joiners are given their team's production rights.
        prod_access = (
            rng.random() < 0.5
            or lead
            or all(app.env == "prod" for app in team_apps)
            or (profile.shape == PRODUCT_TEAMS and n >= first_joiner)
        )
        if lead:
            assignments = _assign(rng, CONTRIBUTOR, subscription_scopes)
        else:
            assignments = _assign(rng, WEBSITE_CONTRIBUTOR, _team_groups(apps, team, False))
            prod_role = WEBSITE_CONTRIBUTOR if prod_access else READER
            assignments += _assign(rng, prod_role, _team_groups(apps, team, True))
        identity = people.user(rng, f"developer-{n}", assignments)
        home_prefix = rng.choice(HOME_ISPS[office.country])
        join_day = _join_day(rng, profile) if n >= first_joiner else 0
        developers.append(
            Developer(
                identity=identity,
                team=team,
                office=office,
                home_prefix=home_prefix,
                home_address=address(rng, home_prefix),
                day_start_minute=rng.randint(7 * 60, 10 * 60 + 30),
                day_minutes=rng.randint(450, 570),
                office_days=tuple(sorted(rng.sample(range(5), rng.randint(0, 4)))),
                sessions_per_day=rng.uniform(4.5, 12.5),
                tools=_developer_tools(rng),
                lead=lead,
                prod_access=prod_access,
                function_keys=n > 0
                and any(app.function_app for app in team_apps)
                and rng.random() < 0.6,
                runs_jobs=n > 0
                and any(app.triggered_jobs for app in team_apps)
                and rng.random() < 0.4,
                join_day=join_day,
                trip=_trip(rng, profile, office.country) if rng.random() < 0.3 else None,
                days_off=tuple(
                    sorted(rng.sample(range(profile.days), min(profile.days, rng.randint(0, 2))))
                ),
            )
        )
    return tuple(developers)


# Product-teams shape: a returning leaver is away longer than the baselines remember
# (`baseline_max_age_days`, 45): six and a half to eight weeks.
LEAVE_DAYS = (46, 56)
# Travellers work three to five days from a hotel or a residential address abroad.
TRIP_DAYS = (3, 5)


def _team_calendars(
    profile: OrgProfile, developers: tuple[Developer, ...]
) -> tuple[Developer, ...]:
    """The product-teams shape's calendars, from a stream of their own: offices that keep
    daylight saving time, a returning leaver where the period is long enough, and about
    one developer in twelve travelling for a few days after the learning days."""
    rng = make_rng(profile.seed, "team-calendars")
    # A joiner's first look is at dev and test: production comes later in the first week.
    result = [
        replace(
            dev,
            office=replace(dev.office, dst=DST_BY_COUNTRY.get(dev.office.country, "")),
            explores_prod=not dev.join_day,
        )
        for dev in developers
    ]
    steady = [n for n, dev in enumerate(result) if not dev.join_day and not dev.lead]
    rng.shuffle(steady)
    absence = rng.randint(*LEAVE_DAYS)
    last_leave = min(profile.days - 4 - absence, profile.days // 3)
    if steady and last_leave >= 3:
        n = steady.pop()
        leave = rng.randint(3, last_leave)
        back = leave + absence
        result[n] = replace(
            result[n],
            days_off=tuple(sorted({*result[n].days_off, *range(leave, back)})),
            trip=None,
        )
    # A working trip: from a Monday or Tuesday after the learning days, within the week.
    first_date = profile.start.date()
    mondays = [
        day
        for day in range(profile.learning_days, profile.days - TRIP_DAYS[0] + 1)
        if (first_date + timedelta(days=day)).weekday() in (0, 1)
    ]
    for n in steady[: max(1, len(developers) // 12)] if mondays else []:
        dev = result[n]
        first = rng.choice(mondays)
        weekday = (first_date + timedelta(days=first)).weekday()
        length = min(rng.randint(*TRIP_DAYS), 5 - weekday, profile.days - first)
        abroad = {**TRAVEL, **TRAVEL_RESIDENTIAL}
        country = rng.choice(sorted(c for c in abroad if c != dev.office.country))
        trip = Trip(
            first_day=first,
            last_day=first + length - 1,
            country=country,
            address=address(rng, rng.choice(abroad[country])),
        )
        result[n] = replace(dev, trip=trip)
    return tuple(result)


def _join_day(rng: random.Random, profile: OrgProfile) -> int:
    # Joiners arrive just after the learning period: benign novelty exactly where the
    # detector is judged. Nothing here depends on the attack list, so a profile without
    # attacks yields the same benign rows.
    offset = rng.randint(0, 2)
    if profile.learning_days + 1 < profile.days:
        return min(profile.learning_days + offset, profile.days - 1)
    return max(1, profile.days // 2)


def _developer_tools(rng: random.Random) -> tuple[tuple[str, int], ...]:
    weights = {
        "cli": rng.randint(2, 8),
        "portal": rng.randint(2, 8),
        "vscode": rng.randint(0, 5),
        "visualstudio": rng.randint(0, 3),
        "cloudshell": rng.choice((0, 0, 1)),
        "kudu": rng.randint(0, 2),
    }
    return tuple((tool, weight) for tool, weight in weights.items() if weight)


def _trip(rng: random.Random, profile: OrgProfile, home_country: str) -> Trip:
    country = rng.choice([c for c in TRAVEL if c != home_country])
    first = rng.randrange(max(1, profile.days - 3))
    return Trip(
        first_day=first,
        last_day=first + rng.randint(1, 3),
        country=country,
        address=address(rng, rng.choice(TRAVEL[country])),
    )


def _admin(
    rng: random.Random, n: int, subscriptions: tuple[Subscription, ...], people: _People
) -> Admin:
    scopes = [f"/subscriptions/{sub.id}" for sub in subscriptions]
    identity = people.user(rng, f"admin-{n}", _assign(rng, OWNER, scopes))
    office = OFFICES[n % 2]
    return Admin(
        identity=identity,
        office=office,
        home_address=address(rng, rng.choice(HOME_ISPS[office.country])),
        maintenance_weekday=(1, 3, 5)[n % 3],
        maintenance_minute=9 * 60 if n % 3 == 2 else rng.randint(18 * 60 + 30, 20 * 60),
    )


def _service_principal(
    rng: random.Random,
    key: str,
    name: str,
    tenant_id: str,
    assignments: tuple[RoleAssignment, ...],
    *,
    kind: IdentityKind = IdentityKind.SERVICE_PRINCIPAL,
    credential_type: str = "1",
    token_version: int = 1,
    mi_resource_id: str | None = None,
) -> Identity:
    return Identity(
        key=key,
        kind=kind,
        object_id=guid(rng),
        display_name=name,
        tenant_id=tenant_id,
        subject="",
        assignments=assignments,
        app_id=guid(rng),
        credential_type=credential_type,
        token_version=token_version,
        mi_resource_id=mi_resource_id,
    )


def _pipelines(
    rng: random.Random,
    profile: OrgProfile,
    apps: tuple[App, ...],
    subscriptions: tuple[Subscription, ...],
    tenant_id: str,
) -> tuple[Pipeline, ...]:
    units: list[tuple[str, str]] = []
    for app in apps:
        if (app.product, app.component) not in units:
            units.append((app.product, app.component))
    pipelines = []
    for n in range(profile.pipelines):
        mine = units[n :: profile.pipelines] or [units[n % len(units)]]
        deployed = tuple(app for app in apps if (app.product, app.component) in mine)
        provider = ("azure-devops", "github-actions", "azure-devops", "self-hosted")[n % 4]
        groups: list[str] = []
        for app in deployed:
            if app.group_id not in groups:
                groups.append(app.group_id)
        if n == 0 or rng.random() < 0.3:
            # Over-privileged, as deployment principals often are.
            scopes = [f"/subscriptions/{sub.id}" for sub in subscriptions]
        else:
            scopes = groups
        product, component = mine[0]
        short = {"azure-devops": "ado", "github-actions": "gh", "self-hosted": "build"}[provider]
        identity = _service_principal(
            rng,
            f"pipeline-{n}",
            f"sp-{short}-{product}-{component}-deploy",
            tenant_id,
            _assign(rng, CONTRIBUTOR, scopes),
            credential_type="2" if provider == "github-actions" else "1",
            token_version=2 if provider == "github-actions" and n % 2 else 1,
        )
        agents = tuple(address(rng, SELF_HOSTED_AGENTS[0]) for _ in range(2))
        pipelines.append(
            Pipeline(
                identity=identity,
                apps=deployed,
                provider=provider,
                flavour="publishxml"
                if provider != "github-actions" and rng.random() < 0.5
                else "publishingcredentials",
                commits_per_day=rng.uniform(6.0, 18.0),
                nightly_minute=rng.randint(60, 200) if rng.random() < 0.7 else None,
                release_chance=rng.uniform(0.15, 0.4),
                utc_offset_minutes=OFFICES[deployed[0].team % len(OFFICES)].utc_offset_minutes,
                agent_addresses=agents,
            )
        )
    return tuple(pipelines)


def _managed_identity(
    rng: random.Random, n: int, subscriptions: tuple[Subscription, ...], tenant_id: str
) -> ManagedIdentity:
    name = f"id-jobs-runner-{n + 1:02d}"
    resource = (
        f"/subscriptions/{subscriptions[0].id}/resourcegroups/rg-platform-jobs/providers/"
        f"Microsoft.ManagedIdentity/userAssignedIdentities/{name}"
    )
    scopes = [f"/subscriptions/{sub.id}" for sub in subscriptions]
    identity = _service_principal(
        rng,
        f"managed-identity-{n}",
        name,
        tenant_id,
        _assign(rng, WEBSITE_CONTRIBUTOR, scopes),
        kind=IdentityKind.MANAGED_IDENTITY,
        credential_type="2",
        mi_resource_id=resource,
    )
    hosts = tuple(address(rng, rng.choice(AZURE_HOSTS)) for _ in range(rng.randint(2, 3)))
    return ManagedIdentity(identity=identity, host_addresses=hosts)


def _monitor(
    rng: random.Random, n: int, subscriptions: tuple[Subscription, ...], tenant_id: str
) -> Monitor:
    names = ("sp-inventory-collector", "sp-config-drift-monitor", "sp-cmdb-sync")
    name = names[n % len(names)] + ("" if n < len(names) else f"-{n}")
    reader = Role(name="Web Apps Operator (custom)", definition_id=hex32(rng), acts=True)
    scopes = [f"/subscriptions/{sub.id}" for sub in subscriptions]
    identity = _service_principal(
        rng, f"monitor-{n}", name, tenant_id, _assign(rng, reader, scopes)
    )
    suffixes = rng.choice(
        (("appsettings",), ("appsettings", "metadata"), ("appsettings", "connectionstrings"))
    )
    return Monitor(
        identity=identity,
        minute=rng.randint(4 * 60, 6 * 60 + 30),
        address=address(rng, rng.choice(AZURE_HOSTS)),
        suffixes=suffixes,
    )
