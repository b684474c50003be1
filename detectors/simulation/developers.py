"""Developers at work: CLI, portal, VS Code, Visual Studio and Kudu sessions on their sites.

A developer has 4-12 sessions per working day (about 110 rows with their own deployments), in
their own time zone, from the office, home, the corporate gateway or a hotel; weekends are
nearly silent.
"""

from __future__ import annotations

from detectors.simulation import operations as ops
from detectors.simulation.clients import (
    AZURE_CLI,
    CLOUD_SHELL,
    PORTAL,
    VISUAL_STUDIO,
    VISUAL_STUDIO_LEGACY,
    VS_CODE,
    Client,
)
from detectors.simulation.clock import TICKS_PER_MS, TICKS_PER_SECOND
from detectors.simulation.day import Day, at_minute, poisson, weighted
from detectors.simulation.deployment import write_content
from detectors.simulation.ids import make_rng
from detectors.simulation.network import (
    CLOUD_SHELL as CLOUD_SHELL_RANGES,
)
from detectors.simulation.network import (
    CORPORATE_GATEWAY,
    address,
    office_address,
)
from detectors.simulation.organisation import Developer, Organisation, Site
from detectors.simulation.recorder import Recorder, Session

PORTAL_CONFIGURATION_BLADE = (
    "appsettings",
    "connectionstrings",
    "metadata",
    "azurestorageaccounts",
)


class DeveloperBehaviour:
    """One developer's days, drawn from their own random stream."""

    __slots__ = (
        "_active_days",
        "_dev",
        "_functions",
        "_home",
        "_job_sites",
        "_nonprod",
        "_others",
        "_prod",
        "_rng",
    )

    def __init__(self, developer: Developer, org: Organisation, seed: int) -> None:
        self._dev = developer
        self._rng = make_rng(seed, "developer", developer.identity.key)
        self._home = developer.home_address
        team = org.team_sites(developer.team)
        self._nonprod = [site for site in team if site.app.env != "prod"]
        self._prod = [site for site in team if site.app.env == "prod"]
        self._others = [site for site in org.sites if site.app.team != developer.team]
        self._functions = [site for site in team if site.app.function_app]
        self._job_sites = [site for site in team if site.app.triggered_jobs and site.slot is None]
        self._active_days = 0

    def day(self, day: Day, rec: Recorder) -> None:
        """Records the developer's sessions of one local day."""
        dev, rng = self._dev, self._rng
        if day.index < dev.join_day or day.index in dev.days_off:
            return
        if rng.random() < 0.04:
            self._home = address(rng, dev.home_prefix)
        weekday = day.date.weekday()
        if weekday < 5:
            minutes = [
                dev.day_start_minute + rng.randrange(dev.day_minutes)
                for _ in range(poisson(rng, dev.sessions_per_day))
            ]
            if rng.random() < 0.05:
                minutes.append(rng.randint(20 * 60, 23 * 60))
        else:
            minutes = [rng.randint(10 * 60, 22 * 60)] if rng.random() < 0.06 else []
        exploring = dev.join_day > 0 and self._active_days < 2 and weekday < 5
        if exploring:
            minutes.append(dev.day_start_minute + 30)
        if not minutes:
            return
        self._active_days += 1
        place = self._place(day, weekday)
        midnight = day.local_midnight(dev.office.offset_on(day.date))
        for index, minute in enumerate(sorted(minutes)):
            at = at_minute(rng, midnight, minute)
            if not day.within(at):
                continue
            where = self._address(place)
            if exploring and index == 0:
                self._explore(rec, at, where)
            else:
                self._session(rec, at, where)

    def _place(self, day: Day, weekday: int) -> str:
        trip = self._dev.trip
        if trip is not None and trip.first_day <= day.index <= trip.last_day:
            return "trip"
        if weekday in self._dev.office_days:
            return "office"
        return "gateway" if self._rng.random() < 0.2 else "home"

    def _address(self, place: str) -> str:
        rng = self._rng
        if place == "trip" and self._dev.trip is not None:
            return self._dev.trip.address
        if place == "office":
            return office_address(rng, self._dev.office)
        if place == "gateway":
            return address(rng, rng.choice(CORPORATE_GATEWAY))
        return self._home

    def _pick_site(self) -> Site:
        rng, dev = self._rng, self._dev
        pick = rng.random()
        if self._others and pick < (0.15 if dev.lead else 0.02):
            return rng.choice(self._others)
        prod_share = 0.4 if dev.prod_access else 0.05
        if self._prod and (pick > 1 - prod_share or not self._nonprod):
            return rng.choice(self._prod)
        return rng.choice(self._nonprod or self._prod or self._others)

    def _session(self, rec: Recorder, at: int, where: str) -> None:
        rng = self._rng
        tool = weighted(rng, self._dev.tools)
        if tool == "cli":
            self._cli(self._sitting(rec, AZURE_CLI, where), at)
        elif tool == "cloudshell":
            shell = address(rng, rng.choice(CLOUD_SHELL_RANGES))
            self._cli(self._sitting(rec, CLOUD_SHELL, shell), at)
        elif tool == "portal":
            self._portal(self._sitting(rec, PORTAL, where), at)
        elif tool == "vscode":
            self._vscode(self._sitting(rec, VS_CODE, where), at)
        elif tool == "visualstudio":
            client = VISUAL_STUDIO_LEGACY if rng.random() < 0.2 else VISUAL_STUDIO
            self._visual_studio(self._sitting(rec, client, where), at)
        else:
            self._kudu(rec, at, where)

    def _sitting(self, rec: Recorder, client: Client, where: str) -> Session:
        return Session(rec, self._rng, identity=self._dev.identity, client=client, address=where)

    def _cli(self, cli: Session, at: int) -> None:
        rng = self._rng
        site = self._pick_site()
        t = at
        for _ in range(rng.randint(1, 8)):
            if rng.random() < 0.35:
                site = self._pick_site()
            t = self._command(cli, site, at=t)
            t += rng.randint(4, 150) * TICKS_PER_SECOND

    def _command(self, cli: Session, site: Site, at: int) -> int:
        rng, dev = self._rng, self._dev
        pick = rng.random()
        if pick < 0.45 or 0.85 <= pick < 0.89:
            # `az webapp show` / `list-publishing-profiles`: both download the publish profile.
            return cli.call(ops.PUBLISHXML, site, at)
        if pick < 0.60:
            return cli.call(ops.CONFIG_LIST, site, at, "/config/appsettings")
        if pick < 0.65:
            return cli.call(ops.CONFIG_LIST, site, at, "/config/connectionstrings")
        if pick < 0.73:
            # `az webapp log tail`: publishing credentials, then basic auth to Kudu.
            end = cli.call(ops.CONFIG_LIST, site, at, "/config/publishingcredentials")
            if cli.allowed(site):
                cli.rec.basic_login(
                    rng,
                    site=site,
                    at=end + rng.randint(400, 3000) * TICKS_PER_MS,
                    address=cli.address,
                )
            return end
        if pick < 0.79:
            return cli.call(ops.RESTART, site, at)
        if pick < 0.85:
            end = cli.call(ops.CONFIG_LIST, site, at, "/config/appsettings")
            return cli.call(
                ops.CONFIG_WRITE,
                site,
                end + rng.randint(300, 1500) * TICKS_PER_MS,
                "/config/appsettings",
            )
        if pick < 0.95 and dev.function_keys and self._functions:
            target = rng.choice(self._functions)
            if rng.random() < 0.6:
                return cli.call(ops.HOST_LISTKEYS, target, at, "/host/default")
            function = rng.choice(target.app.functions)
            return cli.call(ops.FUNCTIONS_LISTKEYS, target, at, f"/functions/{function}")
        if dev.runs_jobs and self._job_sites:
            return self._run_job(cli, at)
        return cli.call(ops.PUBLISHXML, site, at)

    def _run_job(self, tool: Session, at: int) -> int:
        rng = self._rng
        target = rng.choice(self._job_sites)
        job = rng.choice(target.app.triggered_jobs).name
        return tool.call(ops.TRIGGERED_WEBJOB_RUN, target, at, f"/triggeredwebjobs/{job}")

    def _configuration_blade(self, portal: Session, site: Site, at: int) -> int:
        rng = self._rng
        end = at
        for suffix in PORTAL_CONFIGURATION_BLADE:
            start = at + rng.randint(0, 700) * TICKS_PER_MS
            end = max(end, portal.call(ops.CONFIG_LIST, site, start, f"/config/{suffix}"))
        return end

    def _portal(self, portal: Session, at: int) -> None:
        rng, dev = self._rng, self._dev
        site = self._pick_site()
        t = at
        for _ in range(rng.randint(1, 5)):
            pick = rng.random()
            if pick < 0.5:
                t = self._configuration_blade(portal, site, t)
                if rng.random() < 0.25:
                    t += rng.randint(30, 200) * TICKS_PER_SECOND
                    t = portal.call(ops.CONFIG_WRITE, site, t, "/config/appsettings")
                    t = self._configuration_blade(portal, site, t + 2 * TICKS_PER_SECOND)
            elif pick < 0.62:
                # Deployment Center: the FTPS credentials tab, sometimes the profile download.
                t = portal.call(ops.CONFIG_LIST, site, t, "/config/publishingcredentials")
                if rng.random() < 0.4:
                    t = portal.call(ops.PUBLISHXML, site, t + rng.randint(5, 60) * TICKS_PER_SECOND)
            elif pick < 0.7:
                t = portal.call(ops.RESTART, site, t)
            elif pick < 0.76:
                t = portal.call(ops.CONFIG_LIST, site, t, "/config/authsettingsV2")
            elif pick < 0.8:
                t = portal.call(ops.CONFIG_LIST, site, t, "/config/backup")
            elif pick < 0.9 and dev.function_keys and self._functions:
                t = portal.call(ops.HOST_LISTKEYS, rng.choice(self._functions), t, "/host/default")
            elif pick < 0.95 and dev.runs_jobs and self._job_sites:
                t = self._run_job(portal, t)
            t += rng.randint(20, 240) * TICKS_PER_SECOND
            if rng.random() < 0.4:
                site = self._pick_site()

    def _vscode(self, vscode: Session, at: int) -> None:
        rng = self._rng
        t = at
        for _ in range(rng.randint(1, 3)):
            t = vscode.call(ops.CONFIG_LIST, self._pick_site(), t, "/config/appsettings")
            t += rng.randint(10, 300) * TICKS_PER_SECOND
        if self._nonprod and rng.random() < 0.35:
            site = rng.choice(self._nonprod)
            t = vscode.call(ops.CONFIG_LIST, site, t, "/config/publishingcredentials")
            if vscode.allowed(site):
                t += rng.randint(1, 4) * TICKS_PER_SECOND
                vscode.rec.basic_login(rng, site=site, at=t, address=vscode.address)
                write_content(
                    rng,
                    vscode.rec,
                    site=site,
                    at=t + 3 * TICKS_PER_SECOND,
                    process="kudu",
                    share=rng.uniform(0.3, 1.0),
                )

    def _visual_studio(self, studio: Session, at: int) -> None:
        rng = self._rng
        targets = [site for site in self._nonprod if site.app.windows] or self._nonprod
        if not targets:
            return
        site = rng.choice(targets)
        t = studio.call(ops.PUBLISHXML, site, at)
        if studio.allowed(site):
            t += rng.randint(5, 40) * TICKS_PER_SECOND
            studio.rec.basic_login(
                rng, site=site, at=t, address=studio.address, protocol="WebDeploy"
            )
            write_content(
                rng,
                studio.rec,
                site=site,
                at=t + 2 * TICKS_PER_SECOND,
                process="msdeploy",
                share=rng.uniform(0.2, 0.8),
            )

    def _kudu(self, rec: Recorder, at: int, where: str) -> None:
        rng = self._rng
        site = self._pick_site()
        rec.entra_login(rng, site=site, identity=self._dev.identity, at=at, address=where)
        if site.app.env != "prod" and rng.random() < 0.3:
            candidates = [f for f in site.app.content if "App_Data/jobs" not in f] or ["web.config"]
            rec.file(
                rng,
                site=site,
                relative=rng.choice(candidates),
                at=at + rng.randint(40, 600) * TICKS_PER_SECOND,
            )

    def _explore(self, rec: Recorder, at: int, where: str) -> None:
        """A new joiner's first look around: every team site in the portal and the CLI."""
        portal = self._sitting(rec, PORTAL, where)
        cli = self._sitting(rec, AZURE_CLI, where)
        t = at
        sites = self._nonprod + (self._prod if self._dev.explores_prod else [])
        for site in sites:
            t = self._configuration_blade(portal, site, t)
            t += self._rng.randint(20, 120) * TICKS_PER_SECOND
        for site in sites:
            t = cli.call(ops.PUBLISHXML, site, t)
            t += self._rng.randint(5, 60) * TICKS_PER_SECOND
