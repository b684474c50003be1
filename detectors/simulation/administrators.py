"""Platform administrators: settings reviews across all sites and weekly maintenance windows.

An administrator averages about 35 rows a day: portal reviews on working days, and a weekly
maintenance window of configuration writes, basic-auth policy writes, function key rotation,
site extensions, WebJob restarts and, now and then, a publishing password reset.
"""

from __future__ import annotations

from detectors.simulation import operations as ops
from detectors.simulation.clients import AZURE_CLI, AZURE_POWERSHELL, PORTAL, Client
from detectors.simulation.clock import TICKS_PER_MS, TICKS_PER_SECOND
from detectors.simulation.day import Day, at_minute, poisson
from detectors.simulation.developers import PORTAL_CONFIGURATION_BLADE
from detectors.simulation.ids import make_rng
from detectors.simulation.network import office_address
from detectors.simulation.organisation import Admin, Organisation
from detectors.simulation.recorder import Recorder, Session

_EXTENSIONS = (
    "Microsoft.ApplicationInsights.AzureWebSites",
    "Microsoft.AspNetCore.AzureAppServices.SiteExtension",
)


class AdminBehaviour:
    """One administrator's days."""

    __slots__ = ("_admin", "_rng", "_sites")

    def __init__(self, admin: Admin, org: Organisation, seed: int) -> None:
        self._admin = admin
        self._rng = make_rng(seed, "admin", admin.identity.key)
        self._sites = org.sites

    def day(self, day: Day, rec: Recorder) -> None:
        """Records the administrator's reviews and maintenance of one local day."""
        admin, rng = self._admin, self._rng
        midnight = day.local_midnight(admin.office.utc_offset_minutes)
        weekday = day.date.weekday()
        if weekday < 5:
            for _ in range(poisson(rng, 2.0)):
                at = at_minute(rng, midnight, rng.randint(8 * 60 + 30, 17 * 60 + 30))
                if day.within(at):
                    self._review(rec, at, office_address(rng, admin.office))
        if weekday == admin.maintenance_weekday:
            at = at_minute(rng, midnight, admin.maintenance_minute)
            if day.within(at):
                self._maintenance(rec, at, admin.home_address)

    def _sitting(self, rec: Recorder, client: Client, where: str) -> Session:
        return Session(rec, self._rng, identity=self._admin.identity, client=client, address=where)

    def _review(self, rec: Recorder, at: int, where: str) -> None:
        rng = self._rng
        portal = self._sitting(rec, PORTAL, where)
        t = at
        for site in rng.sample(self._sites, min(len(self._sites), rng.randint(1, 5))):
            for suffix in PORTAL_CONFIGURATION_BLADE:
                portal.call(
                    ops.CONFIG_LIST,
                    site,
                    t + rng.randint(0, 900) * TICKS_PER_MS,
                    f"/config/{suffix}",
                )
            t += rng.randint(30, 400) * TICKS_PER_SECOND

    def _maintenance(self, rec: Recorder, at: int, where: str) -> None:
        rng = self._rng
        shell = self._sitting(rec, AZURE_POWERSHELL if rng.random() < 0.6 else AZURE_CLI, where)
        portal = self._sitting(rec, PORTAL, where)
        t = at
        for site in rng.sample(self._sites, min(len(self._sites), rng.randint(3, 8))):
            app = site.app
            pick = rng.random()
            if pick < 0.25:
                t = shell.call(ops.CONFIG_WRITE, site, t, "/config/web")
            elif pick < 0.45:
                t = shell.call(
                    ops.BASIC_AUTH_FTP_WRITE, site, t, "/basicPublishingCredentialsPolicies/ftp"
                )
                t = shell.call(
                    ops.BASIC_AUTH_SCM_WRITE,
                    site,
                    t + rng.randint(1, 5) * TICKS_PER_SECOND,
                    "/basicPublishingCredentialsPolicies/scm",
                )
            elif pick < 0.55 and app.windows:
                t = portal.call(
                    ops.SITE_EXTENSION_WRITE, site, t, f"/siteextensions/{rng.choice(_EXTENSIONS)}"
                )
            elif pick < 0.65 and app.function_app:
                key = rng.choice(("default", "partner"))
                t = shell.call(
                    ops.HOST_FUNCTIONKEYS_WRITE, site, t, f"/host/default/functionkeys/{key}"
                )
            elif pick < 0.75 and app.continuous_jobs and site.slot is None:
                job = f"/continuouswebjobs/{app.continuous_jobs[0]}"
                t = portal.call(ops.CONTINUOUS_WEBJOB_STOP, site, t, job)
                t = portal.call(
                    ops.CONTINUOUS_WEBJOB_START,
                    site,
                    t + rng.randint(20, 300) * TICKS_PER_SECOND,
                    job,
                )
            elif pick < 0.82:
                # Credential rotation: the one benign reason for a publishing password reset.
                t = shell.call(ops.NEWPASSWORD, site, t)
            else:
                t = shell.call(ops.RESTART, site, t)
            t += rng.randint(20, 400) * TICKS_PER_SECOND
