"""The attack scenarios: each injected once, after the learning period, and labelled.

Attackers behave like people who know Azure: they use the victim's usual tools where that
blends in, work in office hours as often as at night, and come from rented servers or
residential addresses abroad, never from the ranges benign activity uses.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time

from detectors.simulation import operations as ops
from detectors.simulation.automation import own_client
from detectors.simulation.clients import (
    AZURE_CLI,
    AZURE_POWERSHELL,
    CLOUD_SHELL,
    PORTAL,
    VS_CODE,
    Client,
)
from detectors.simulation.clock import (
    TICKS_PER_DAY,
    TICKS_PER_MINUTE,
    TICKS_PER_MS,
    TICKS_PER_SECOND,
    to_ticks,
)
from detectors.simulation.day import at_minute
from detectors.simulation.identities import Identity
from detectors.simulation.ids import make_rng
from detectors.simulation.network import (
    CLOUD_PROVIDERS,
    RESIDENTIAL_ABROAD,
    address,
)
from detectors.simulation.network import (
    CLOUD_SHELL as CLOUD_SHELL_RANGES,
)
from detectors.simulation.organisation import Developer, Organisation, Site
from detectors.simulation.product_teams import ProductTeams, build_product_teams
from detectors.simulation.profile import ATTACK_DETECTIONS, PRODUCT_TEAMS, OrgProfile
from detectors.simulation.recorder import Pending, Recorder, Session
from detectors.simulation.tokens import TokenIssuer

_ODD_JOB_NAMES = (
    "WindowsUpdateSvc",
    "appsvc-diag",
    "msdeploy-agent",
    "health-probe",
    "AzureTelemetrySync",
)
_ATTACKER = "attacker"
# Days a scenario spans, when more than one: it starts early enough to end in the period.
_SPANS = {"admin-takeover": 4, "slow-campaign": 5}


@dataclass(frozen=True, kw_only=True, slots=True)
class Injection:
    """One injected scenario: who did it, what it was, and the specs of its rows."""

    kind: str
    identity: Identity
    description: str
    pending: tuple[Pending, ...]


class _Cast:
    """Chooses victims, preferring people no earlier scenario used."""

    def __init__(self, org: Organisation) -> None:
        self.org = org
        self.used: list[str] = []

    def developers(self, need: Callable[[Developer], bool]) -> list[Developer]:
        pool = [dev for dev in self.org.developers if dev.join_day == 0 and need(dev)]
        fresh = [dev for dev in pool if dev.identity.key not in self.used]
        return fresh or pool


@dataclass(frozen=True, kw_only=True, slots=True)
class _Scene:
    """What a scenario needs: the organisation, its own random stream and recorder, the day."""

    org: Organisation
    rng: random.Random
    rec: Recorder
    midnight: int
    cast: _Cast
    teams: ProductTeams | None = None

    def local(self, utc_offset_minutes: int, minute: int) -> int:
        """A random instant within a local minute of the scenario's day."""
        return at_minute(self.rng, self.midnight - utc_offset_minutes * TICKS_PER_MINUTE, minute)

    def server(self) -> str:
        """An address on a rented server."""
        provider = self.rng.choice(sorted(CLOUD_PROVIDERS))
        return address(self.rng, self.rng.choice(CLOUD_PROVIDERS[provider]))

    def attacker(self, identity: Identity, client: Client, address: str) -> Session:
        """The attacker's sitting: its own token cache, so its tokens are never the victim's."""
        return Session(
            self.rec,
            self.rng,
            identity=identity,
            client=client,
            address=address,
            token_cache=_ATTACKER,
        )

    def allowed_sites(self, identity: Identity, sites: tuple[Site, ...] | list[Site]) -> list[Site]:
        """The sites among `sites` the identity may act on."""
        return [site for site in sites if self.rec.allowed(identity, site)]


def inject(org: Organisation, profile: OrgProfile) -> list[Injection]:
    """Every scenario the profile asks for, placed after its learning period."""
    kinds = [kind for kind in ATTACK_DETECTIONS if kind in profile.attacks]
    plan_rng = make_rng(profile.seed, "attack-plan")
    plan_rng.shuffle(kinds)
    window = list(range(profile.learning_days, profile.days))
    first_midnight = to_ticks(datetime.combine(profile.start.date(), time(), UTC))
    boundary = to_ticks(profile.start) + profile.learning_days * TICKS_PER_DAY
    end = to_ticks(profile.end)
    cast = _Cast(org)
    teams = build_product_teams(org, profile) if profile.shape == PRODUCT_TEAMS else None
    injections = []
    for position, kind in enumerate(kinds):
        day = window[(position * len(window)) // len(kinds)]
        if kind in _SPANS:
            day = max(profile.learning_days, min(day, profile.days - _SPANS[kind]))
        injection = None
        for attempt in (day, day + 1, day - 1, day + 2, day - 2):
            if not profile.learning_days <= attempt < profile.days:
                continue
            injection = _run(
                kind,
                org=org,
                profile=profile,
                cast=cast,
                midnight=first_midnight + attempt * TICKS_PER_DAY,
                position=position,
                teams=teams,
            )
            times = [entry[0] for entry in injection.pending]
            if min(times) >= boundary and max(times) < end:
                break
        assert injection is not None
        cast.used.append(injection.identity.key)
        injections.append(injection)
    injections.sort(key=lambda item: min(entry[0] for entry in item.pending))
    return injections


def _run(
    kind: str,
    *,
    org: Organisation,
    profile: OrgProfile,
    cast: _Cast,
    midnight: int,
    position: int,
    teams: ProductTeams | None,
) -> Injection:
    rng = make_rng(profile.seed, "attack", kind, midnight)
    rec = Recorder(tokens=TokenIssuer(), origin=1 + position)
    scene = _Scene(org=org, rng=rng, rec=rec, midnight=midnight, cast=cast, teams=teams)
    identity, description = _SCENARIOS[kind](scene)
    return Injection(
        kind=kind, identity=identity, description=description, pending=tuple(sorted(rec.pending))
    )


def _seconds(rng: random.Random, low: int, high: int) -> int:
    return rng.randint(low, high) * TICKS_PER_SECOND


def _credential_harvest(scene: _Scene) -> tuple[Identity, str]:
    rng, rec, org = scene.rng, scene.rec, scene.org
    dev = rng.choice(scene.cast.developers(lambda d: d.lead))
    identity = dev.identity
    country = rng.choice(sorted(RESIDENTIAL_ABROAD))
    where = address(rng, rng.choice(RESIDENTIAL_ABROAD[country]))
    own = [site for site in org.team_sites(dev.team) if site.slot is None]
    own_keys = {site.key for site in own}
    rest = [site for site in org.sites if site.key not in own_keys]
    count = max(6, round(len(org.sites) * rng.uniform(0.6, 0.85)))
    targets = rng.sample(own, min(2, len(own))) + rng.sample(rest, min(len(rest), count))
    t = scene.local(dev.office.utc_offset_minutes, rng.randint(60, 270))
    for site in targets:
        t = scene.attacker(identity, AZURE_POWERSHELL, where).call(ops.PUBLISHXML, site, t)
        if rng.random() < 0.5:
            t = scene.attacker(identity, AZURE_POWERSHELL, where).call(
                ops.CONFIG_LIST,
                site,
                t + rng.randint(300, 2500) * TICKS_PER_MS,
                child="/config/publishingcredentials",
            )
        t += _seconds(rng, 1, 6)
    harvested = scene.allowed_sites(identity, targets)
    server = scene.server()
    t += rng.randint(20, 90) * TICKS_PER_MINUTE
    for site in rng.sample(harvested, min(2, len(harvested))):
        rec.basic_login(rng, site=site, at=t, address=server, protocol="FTP")
        t += _seconds(rng, 30, 600)
    return identity, (
        f"{identity.upn}'s session used from a residential address in {country} at night "
        f"with Azure PowerShell: publish profiles and publishing credentials of "
        f"{len(targets)} sites, most never touched before, then FTP logins with them."
    )


def _pipeline_abuse(scene: _Scene) -> tuple[Identity, str]:
    rng, org = scene.rng, scene.org
    pipeline = org.pipelines[0]
    identity = pipeline.identity
    client = own_client(identity)
    where = scene.server()
    deployed = {app.index for app in pipeline.apps}
    own = [site for site in org.sites if site.app.index in deployed and site.slot is None]
    outside = [site for site in org.sites if site.app.index not in deployed]
    targets = own[:1] + rng.sample(outside, min(len(outside), rng.randint(5, 10)))
    if len(targets) < 3:
        targets = rng.sample(list(org.sites), min(len(org.sites), 6))
    t = at_minute(rng, scene.midnight, rng.randint(13 * 60, 16 * 60))
    for site in targets:
        suffixes = ["publishingcredentials", "appsettings", "connectionstrings"]
        for suffix in suffixes[: rng.randint(2, 3)]:
            t = scene.attacker(identity, client, where).call(
                ops.CONFIG_LIST, site, t, child=f"/config/{suffix}"
            )
            t += rng.randint(300, 2000) * TICKS_PER_MS
        t += _seconds(rng, 2, 25)
    return identity, (
        f"Deployment service principal {identity.display_name} used with its own secret from "
        f"a rented server outside its agent ranges, in office hours: publishing credentials, "
        f"app settings and connection strings of {len(targets)} sites, mostly ones it never "
        f"deploys."
    )


def _basic_auth_reenabled(scene: _Scene) -> tuple[Identity, str]:
    rng, rec = scene.rng, scene.rec
    dev, site = _developer_with_site(
        scene, lambda d: not d.lead, lambda s: s.slot is None, prefer=lambda s: s.app.env == "prod"
    )
    identity = dev.identity
    where = scene.server()
    t = scene.local(dev.office.utc_offset_minutes, rng.randint(10 * 60, 16 * 60))
    if rng.random() < 0.5:
        t = scene.attacker(identity, AZURE_CLI, where).call(
            ops.BASIC_AUTH_FTP_WRITE, site, t, child="/basicPublishingCredentialsPolicies/ftp"
        )
        t += _seconds(rng, 2, 20)
    t = scene.attacker(identity, AZURE_CLI, where).call(
        ops.BASIC_AUTH_SCM_WRITE, site, t, child="/basicPublishingCredentialsPolicies/scm"
    )
    t = scene.attacker(identity, AZURE_CLI, where).call(
        ops.PUBLISHXML, site, t + _seconds(rng, 30, 120)
    )
    login_from = scene.server()
    t += rng.randint(2, 15) * TICKS_PER_MINUTE
    rec.basic_login(rng, site=site, at=t, address=login_from)
    if rng.random() < 0.6:
        rec.basic_login(
            rng, site=site, at=t + rng.randint(10, 50) * TICKS_PER_MINUTE, address=login_from
        )
    return identity, (
        f"{identity.upn} re-enabled basic-auth publishing on {site.app.name} from a rented "
        f"server, downloaded its publish profile, and the `$app` credentials then logged in "
        f"to Kudu from another new address."
    )


def _webjob_persistence(scene: _Scene) -> tuple[Identity, str]:
    rng, rec = scene.rng, scene.rec
    dev, site = _developer_with_site(
        scene,
        lambda d: True,
        lambda s: s.slot is None and s.app.windows and s.app.file_audit and not s.app.function_app,
    )
    identity = dev.identity
    where = scene.server()
    job = rng.choice(_ODD_JOB_NAMES)
    t = scene.local(dev.office.utc_offset_minutes, rng.randint(19 * 60, 22 * 60 + 30))
    t = scene.attacker(identity, AZURE_CLI, where).call(ops.PUBLISHXML, site, t)
    t += rng.randint(1, 4) * TICKS_PER_MINUTE
    login_from = where if rng.random() < 0.5 else scene.server()
    rec.basic_login(rng, site=site, at=t, address=login_from)
    folder = f"App_Data/jobs/continuous/{job}"
    for name in ("run.ps1", "settings.job", "run.cmd")[: rng.randint(2, 3)]:
        t += _seconds(rng, 3, 40)
        rec.file(rng, site=site, relative=f"{folder}/{name}", at=t, operation="Add")
    t += rng.randint(1, 3) * TICKS_PER_MINUTE
    scene.attacker(identity, AZURE_CLI, where).call(
        ops.CONTINUOUS_WEBJOB_START, site, t, child=f"/continuouswebjobs/{job}"
    )
    return identity, (
        f"{identity.upn} downloaded {site.app.name}'s publish profile from a rented server in "
        f"the evening; its `$app` credentials logged in to Kudu, wrote a new continuous WebJob "
        f"'{job}' (run.ps1, settings.job) and it was started through ARM."
    )


def _repetitive_runs(scene: _Scene) -> tuple[Identity, str]:
    rng, org = scene.rng, scene.org
    if org.monitors:
        identity = org.monitors[0].identity
        usual = org.monitors[0].address
    elif len(org.pipelines) > 1:
        identity = org.pipelines[-1].identity
        usual = org.pipelines[-1].agent_addresses[0]
    else:
        dev = rng.choice(scene.cast.developers(lambda d: not d.runs_jobs))
        identity, usual = dev.identity, dev.home_address
    client = AZURE_CLI if identity.upn else own_client(identity)
    candidates = [site for site in org.sites if site.slot is None and site.app.triggered_jobs]
    allowed = scene.allowed_sites(identity, candidates) or candidates
    site = rng.choice(allowed)
    job = rng.choice(site.app.triggered_jobs).name
    where = usual if rng.random() < 0.5 else scene.server()
    t = at_minute(rng, scene.midnight, rng.randint(9 * 60, 19 * 60))
    stop = t + rng.randint(2 * 60, 5 * 60) * TICKS_PER_MINUTE
    runs = 0
    while t < stop:
        scene.attacker(identity, client, where).call(
            ops.TRIGGERED_WEBJOB_RUN,
            site,
            t,
            child=f"/triggeredwebjobs/{job}",
            failure="Conflict" if rng.random() < 0.08 else None,
        )
        runs += 1
        t += rng.randint(3 * 60, 8 * 60) * TICKS_PER_SECOND + rng.randrange(TICKS_PER_SECOND)
    return identity, (
        f"{identity.display_name}, which never ran WebJobs, started triggered WebJob '{job}' on "
        f"{site.app.name} through ARM {runs} times, every few minutes for hours."
    )


def _failed_probing(scene: _Scene) -> tuple[Identity, str]:
    rng, rec, org = scene.rng, scene.rec, scene.org

    def denied(dev: Developer) -> list[Site]:
        return [site for site in org.sites if not rec.allowed(dev.identity, site)]

    # The most fenced-in developer: a stolen identity with few rights probes the most.
    pool = scene.cast.developers(lambda d: bool(denied(d)))
    dev = max(pool, key=lambda d: len(denied(d))) if pool else rng.choice(list(org.developers))
    identity = dev.identity
    fenced = denied(dev)
    granted = scene.allowed_sites(identity, org.sites)
    probes = [
        (site, "publishingcredentials")
        for site in rng.sample(fenced, min(len(fenced), rng.randint(12, 30)))
    ]
    if len(probes) < 8:
        probes += [
            (site, suffix) for site in fenced for suffix in ("appsettings", "connectionstrings")
        ]
    country = rng.choice(sorted(RESIDENTIAL_ABROAD))
    where = (
        address(rng, rng.choice(RESIDENTIAL_ABROAD[country]))
        if rng.random() < 0.5
        else scene.server()
    )
    minute = rng.choice((rng.randint(11 * 60, 17 * 60), rng.randint(22 * 60, 23 * 60 + 30)))
    t = scene.local(dev.office.utc_offset_minutes, minute)
    for site, suffix in probes:
        t = scene.attacker(identity, AZURE_CLI, where).call(
            ops.CONFIG_LIST, site, t, child=f"/config/{suffix}"
        )
        t += rng.randint(800, 3000) * TICKS_PER_MS
    site = rng.choice(granted) if granted else rng.choice(list(org.sites))
    t = scene.attacker(identity, AZURE_CLI, where).call(
        ops.CONFIG_LIST, site, t + _seconds(rng, 5, 40), child="/config/publishingcredentials"
    )
    scene.attacker(identity, AZURE_CLI, where).call(ops.PUBLISHXML, site, t + _seconds(rng, 2, 10))
    return identity, (
        f"{identity.upn} tried to read the settings of {len({s.key for s, _ in probes})} "
        f"sites ({len(probes)} requests) from a new address and was refused (403) every "
        f"time, then read the publishing credentials of {site.app.name}."
    )


def _function_keys_theft(scene: _Scene) -> tuple[Identity, str]:
    rng, org = scene.rng, scene.org
    functions = [site for site in org.sites if site.app.function_app]
    pool = scene.cast.developers(lambda d: not d.function_keys)
    pool.sort(key=lambda d: -len(scene.allowed_sites(d.identity, functions)))
    dev = pool[0] if pool else rng.choice(list(org.developers))
    identity = dev.identity
    targets = scene.allowed_sites(identity, functions) or functions
    targets = rng.sample(targets, min(len(targets), 6))
    where = dev.home_address
    t = scene.local(dev.office.utc_offset_minutes, rng.randint(9 * 60 + 30, 17 * 60))
    for site in targets:
        t = scene.attacker(identity, AZURE_CLI, where).call(
            ops.HOST_LISTKEYS, site, t, child="/host/default"
        )
        for function in site.app.functions[: rng.randint(1, 4)]:
            t += rng.randint(500, 4000) * TICKS_PER_MS
            t = scene.attacker(identity, AZURE_CLI, where).call(
                ops.FUNCTIONS_LISTSECRETS, site, t, child=f"/functions/{function}"
            )
            if rng.random() < 0.5:
                t = scene.attacker(identity, AZURE_CLI, where).call(
                    ops.FUNCTIONS_LISTKEYS,
                    site,
                    t + rng.randint(300, 1500) * TICKS_PER_MS,
                    child=f"/functions/{function}",
                )
        t += _seconds(rng, 2, 20)
    # In the product-teams shape every developer may have opened a key in the portal.
    never = (
        "who never read function keys"
        if scene.teams is None
        else ("who read function keys only in the portal, if ever")
    )
    return identity, (
        f"{identity.upn}, {never}, listed host keys and function "
        f"secrets of {len(targets)} function apps with the Azure CLI, from their usual address "
        f"in office hours."
    )


def _publish_profile_reset(scene: _Scene) -> tuple[Identity, str]:
    rng, rec = scene.rng, scene.rec
    dev, site = _developer_with_site(
        scene,
        lambda d: "cloudshell" not in dict(d.tools),
        lambda s: True,
        prefer=lambda s: s.app.env == "prod",
    )
    identity = dev.identity
    shell = address(rng, rng.choice(CLOUD_SHELL_RANGES))
    t = scene.local(dev.office.utc_offset_minutes, rng.randint(17 * 60 + 30, 20 * 60))
    t = scene.attacker(identity, CLOUD_SHELL, shell).call(ops.NEWPASSWORD, site, t)
    t = scene.attacker(identity, CLOUD_SHELL, shell).call(
        ops.PUBLISHXML, site, t + _seconds(rng, 20, 90)
    )
    rec.basic_login(
        rng,
        site=site,
        at=t + rng.randint(5, 30) * TICKS_PER_MINUTE,
        address=scene.server(),
        protocol="WebDeploy",
    )
    return identity, (
        f"{identity.upn}, who never used Cloud Shell or reset credentials, reset "
        f"{site.app.name}'s publishing password from Cloud Shell, downloaded the new publish "
        f"profile, and it was used for a Web Deploy login from a rented server."
    )


def _webjob_tampering(scene: _Scene) -> tuple[Identity, str]:
    rng, rec = scene.rng, scene.rec
    dev, site = _developer_with_site(
        scene,
        lambda d: True,
        lambda s: s.slot is None and bool(s.app.continuous_jobs) and s.app.file_audit,
    )
    identity = dev.identity
    job = site.app.continuous_jobs[0]
    where = dev.home_address
    child = f"/continuouswebjobs/{job}"
    t = scene.local(dev.office.utc_offset_minutes, rng.randint(18 * 60, 21 * 60))
    t = scene.attacker(identity, PORTAL, where).call(
        ops.CONTINUOUS_WEBJOB_STOP, site, t, child=child
    )
    t += rng.randint(1, 3) * TICKS_PER_MINUTE
    rec.entra_login(rng, site=site, identity=identity, at=t, address=where)
    folder = f"App_Data/jobs/continuous/{job}"
    t += _seconds(rng, 30, 240)
    rec.file(rng, site=site, relative=f"{folder}/run.cmd", at=t, operation="Modify")
    if rng.random() < 0.6:
        t += _seconds(rng, 10, 90)
        rec.file(rng, site=site, relative=f"{folder}/update.ps1", at=t, operation="Add")
    scene.attacker(identity, PORTAL, where).call(
        ops.CONTINUOUS_WEBJOB_START, site, t + rng.randint(1, 2) * TICKS_PER_MINUTE, child=child
    )
    return identity, (
        f"{identity.upn} stopped continuous WebJob '{job}' on {site.app.name}, edited its "
        f"run.cmd through Kudu and started it again; only the deployment pipeline changes "
        f"that job."
    )


def _admin_takeover(scene: _Scene) -> tuple[Identity, str]:
    rng, org = scene.rng, scene.org
    admin = rng.choice(list(org.admins))
    identity = admin.identity
    servers = [scene.server() for _ in range(3)]
    prod = [site for site in org.sites if site.app.env == "prod" and site.slot is None]
    targets = rng.sample(prod, min(6, len(prod))) or rng.sample(list(org.sites), 1)
    half = (len(targets) + 1) // 2
    # Two working days: the first of the scenario's day and the ones after it, then the next.
    weekday = (scene.midnight // TICKS_PER_DAY + 3) % 7  # 1970-01-01 was a Thursday
    first = {5: 2, 6: 1}.get(weekday, 0)
    second = first + (3 if (weekday + first) % 7 == 4 else 1)
    for day, sites in ((first, targets[:half]), (second, targets[half:])):
        midnight = scene.midnight + day * TICKS_PER_DAY
        t = at_minute(
            rng,
            midnight - admin.office.utc_offset_minutes * TICKS_PER_MINUTE,
            rng.randint(10 * 60, 15 * 60),
        )
        for site in sites:
            where = servers[0] if day == 0 and site is sites[0] else rng.choice(servers)
            t = scene.attacker(identity, VS_CODE, where).call(ops.PUBLISHXML, site, t)
            t += rng.randint(2, 25) * TICKS_PER_MINUTE
    return identity, (
        f"{identity.upn}'s identity, taken over by a password reset, used in their working hours "
        f"over two days with Visual Studio Code (a client never used) from three hosting-"
        f"provider addresses: publish profiles of {len(targets)} production apps."
    )


def _slow_campaign(scene: _Scene) -> tuple[Identity, str]:
    rng, org = scene.rng, scene.org

    def outside(dev: Developer) -> list[Site]:
        return [
            site
            for site in scene.allowed_sites(dev.identity, org.sites)
            if site.app.team != dev.team and site.app.env == "prod" and site.slot is None
        ]

    pool = scene.cast.developers(lambda d: len(outside(d)) >= 5)
    dev = rng.choice(pool) if pool else rng.choice(scene.cast.developers(lambda d: True))
    identity = dev.identity
    others = outside(dev) or [site for site in org.sites if site.app.team != dev.team]
    targets = rng.sample(others, min(5, len(others)))
    country = rng.choice(sorted(RESIDENTIAL_ABROAD))
    where = address(rng, rng.choice(RESIDENTIAL_ABROAD[country]))
    for day, site in enumerate(targets):
        t = scene.local(dev.office.utc_offset_minutes, rng.randint(9 * 60 + 30, 17 * 60))
        scene.attacker(identity, AZURE_CLI, where).call(
            ops.PUBLISHXML, site, t + day * TICKS_PER_DAY
        )
    return identity, (
        f"{identity.upn}'s identity took the publish profile of one production site outside "
        f"its team each day for {len(targets)} days, with the Azure CLI from a residential "
        f"address in {country} never seen before."
    )


def _shared_source(scene: _Scene) -> tuple[Identity, str]:
    rng, rec, org = scene.rng, scene.rec, scene.org
    guests = scene.teams.guests if scene.teams is not None else ()
    if not guests:
        raise AssertionError("shared-source needs the product-teams shape's guests")
    guest = rng.choice(list(guests))
    denied = [s for s in org.sites if s.slot is None and not rec.allowed(guest.identity, s)]

    def both(dev: Developer) -> list[Site]:
        return scene.allowed_sites(dev.identity, denied)

    pool = scene.cast.developers(lambda d: not d.lead and len(both(d)) >= 2)
    dev = rng.choice(pool) if pool else rng.choice(scene.cast.developers(lambda d: True))
    identity = dev.identity
    taken = rng.sample(both(dev), min(2, len(both(dev)))) or rng.sample(denied, 2)
    rest = [site for site in denied if site not in taken]
    probed = taken + rng.sample(rest, min(len(rest), 6))
    rng.shuffle(probed)
    country = rng.choice(sorted(RESIDENTIAL_ABROAD))
    where = address(rng, rng.choice(RESIDENTIAL_ABROAD[country]))
    t = scene.local(dev.office.utc_offset_minutes, rng.randint(10 * 60, 16 * 60))
    for site in probed:
        t = scene.attacker(guest.identity, AZURE_CLI, where).call(ops.PUBLISHXML, site, t)
        t += rng.randint(2, 20) * TICKS_PER_SECOND
    t += 10 * TICKS_PER_MINUTE
    for site in taken:
        t = scene.attacker(identity, AZURE_CLI, where).call(ops.PUBLISHXML, site, t)
        t += rng.randint(5, 40) * TICKS_PER_SECOND
    return identity, (
        f"Guest {guest.identity.upn} was refused the publish profiles of {len(probed)} sites "
        f"from a residential address in {country}; ten minutes later {identity.upn}'s identity "
        f"took those of {len(taken)} of them from the same address."
    )


def _developer_with_site(
    scene: _Scene,
    who: Callable[[Developer], bool],
    where: Callable[[Site], bool],
    prefer: Callable[[Site], bool] = lambda site: True,
) -> tuple[Developer, Site]:
    """A developer who may act on a site that `where` accepts.

    Fresh victims come first, then the preferred sites (`prefer`), then `who`.
    """
    rng, cast = scene.rng, scene.cast
    sites = [site for site in scene.org.sites if where(site)] or list(scene.org.sites)
    preferred = [site for site in sites if prefer(site)]
    everyone = [dev for dev in scene.org.developers if dev.join_day == 0]
    fresh = [dev for dev in everyone if dev.identity.key not in cast.used]
    for pool in (fresh, everyone):
        for candidates in ([dev for dev in pool if who(dev)], pool):
            for targets in (preferred, sites):
                options = [
                    (dev, site)
                    for dev in candidates
                    for site in scene.allowed_sites(dev.identity, targets)
                ]
                if options:
                    return rng.choice(options)
    return rng.choice(everyone), rng.choice(sites)


_SCENARIOS: dict[str, Callable[[_Scene], tuple[Identity, str]]] = {
    "credential-harvest": _credential_harvest,
    "pipeline-sp-abuse": _pipeline_abuse,
    "basic-auth-reenabled": _basic_auth_reenabled,
    "webjob-persistence": _webjob_persistence,
    "repetitive-webjob-runs": _repetitive_runs,
    "failed-probing": _failed_probing,
    "function-keys-theft": _function_keys_theft,
    "publish-profile-reset": _publish_profile_reset,
    "webjob-tampering": _webjob_tampering,
    "admin-takeover": _admin_takeover,
    "slow-campaign": _slow_campaign,
    "shared-source": _shared_source,
}
