"""Automation: deployment pipelines, WebJob-running managed identities and settings monitors.

- A pipeline deploys 6-18 times per working day to test sites, nightly to test and dev
  sites, and on release days to production (through the staging slot where there is one).
  A deployment is about 8 AzureActivity rows, 2-5 `$app` logins (the agent polls Kudu) and
  10-100 file writes: about 550 rows a day.
- A managed identity starts each triggered WebJob it owns every 15 minutes to once a day
  (2 rows a run)
  and stops and starts continuous WebJobs around deployments.
- A monitor reads the settings of every production site once a day (2 rows per site and
  settings kind).
"""

from __future__ import annotations

from detectors.simulation import operations as ops
from detectors.simulation.clients import Client
from detectors.simulation.clock import TICKS_PER_MINUTE, TICKS_PER_MS, TICKS_PER_SECOND
from detectors.simulation.day import Day, at_minute, poisson
from detectors.simulation.deployment import write_content
from detectors.simulation.identities import Identity
from detectors.simulation.ids import between, make_rng
from detectors.simulation.network import HOSTED_AGENTS, address
from detectors.simulation.organisation import (
    ManagedIdentity,
    Monitor,
    Organisation,
    Pipeline,
    Site,
)
from detectors.simulation.recorder import Recorder


def own_client(identity: Identity) -> Client:
    """The client a service principal or managed identity is: its own application."""
    return Client(name=identity.display_name, app_id=identity.app_id or identity.object_id)


class PipelineBehaviour:
    """One pipeline's deployments."""

    __slots__ = (
        "_client",
        "_jobs_identity",
        "_nonprod",
        "_pipeline",
        "_prod",
        "_rng",
        "_runs",
        "_sites",
    )

    def __init__(self, pipeline: Pipeline, org: Organisation, seed: int) -> None:
        self._pipeline = pipeline
        self._rng = make_rng(seed, "pipeline", pipeline.identity.key)
        self._client = own_client(pipeline.identity)
        self._sites = {app.index: org.sites_of(app) for app in pipeline.apps}
        self._nonprod = [app for app in pipeline.apps if app.env != "prod"]
        self._prod = [app for app in pipeline.apps if app.env == "prod"]
        self._jobs_identity = org.managed_identities
        self._runs = 0

    @property
    def pipeline(self) -> Pipeline:
        """The pipeline whose runs these are."""
        return self._pipeline

    def day(self, day: Day, rec: Recorder) -> None:
        """Records the pipeline's runs of one day."""
        pipeline, rng = self._pipeline, self._rng
        midnight = day.local_midnight(pipeline.utc_offset_minutes)
        weekday = day.date.weekday()
        runs: list[tuple[int, Site]] = []
        commits = poisson(rng, pipeline.commits_per_day if weekday < 5 else 0.3)
        targets = self._nonprod or self._prod
        for _ in range(commits):
            minute = rng.randint(9 * 60, 19 * 60)
            runs.append(
                (at_minute(rng, midnight, minute), self._sites[rng.choice(targets).index][0])
            )
        if pipeline.nightly_minute is not None:
            for app in self._nonprod:
                if app.env in ("test", "dev"):
                    runs.append(
                        (
                            at_minute(rng, day.midnight, pipeline.nightly_minute),
                            self._sites[app.index][0],
                        )
                    )
        if weekday < 4 and self._prod and rng.random() < pipeline.release_chance:
            at = at_minute(rng, midnight, rng.randint(10 * 60, 15 * 60))
            for app in self._prod:
                sites = self._sites[app.index]
                runs.append((at, sites[-1]))
                at += rng.randint(4, 15) * 60 * TICKS_PER_SECOND
        for at, site in sorted(runs, key=lambda run: run[0]):
            if day.within(at):
                self._deploy(rec, site, at)

    def _agent(self) -> str:
        pipeline, rng = self._pipeline, self._rng
        if pipeline.agent_ranges:
            return address(rng, rng.choice(pipeline.agent_ranges))
        if pipeline.provider in HOSTED_AGENTS:
            return address(rng, rng.choice(HOSTED_AGENTS[pipeline.provider]))
        return rng.choice(pipeline.agent_addresses)

    def deploy(self, rec: Recorder, site: Site, at: int) -> None:
        """One run of the pipeline on one site (a stage of a re-run), started at `at`."""
        self._deploy(rec, site, at)

    def _deploy(self, rec: Recorder, site: Site, at: int) -> None:
        pipeline, rng = self._pipeline, self._rng
        self._runs += 1
        run = f"run-{self._runs}"
        agent = self._agent()
        identity = pipeline.identity

        def call(operation: ops.Operation, target: Site, t: int, child: str = "") -> int:
            return rec.call(
                rng,
                identity=identity,
                client=self._client,
                operation=operation,
                site=target,
                at=t,
                address=agent,
                child=child,
                session=run,
            )

        # Web Deploy syncs changed files only; a zip deploy rewrites nearly everything and
        # the agent then polls Kudu for the deployment's status.
        if pipeline.flavour == "publishxml":
            t = call(ops.PUBLISHXML, site, at)
            protocol, process, share, polls = "WebDeploy", "msdeploy", rng.uniform(0.15, 0.5), 0
        else:
            t = call(ops.CONFIG_LIST, site, at, "/config/publishingcredentials")
            protocol, process, share = "Kudu", "kudu", rng.uniform(0.75, 1.0)
            polls = 1 + poisson(rng, 2.0)
        if not rec.allowed(identity, site):
            return
        t += rng.randint(2, 15) * TICKS_PER_SECOND
        if rng.random() < 0.5:
            t = call(ops.CONFIG_LIST, site, t, "/config/appsettings")
            t = call(
                ops.CONFIG_WRITE,
                site,
                t + rng.randint(1, 3) * TICKS_PER_SECOND,
                "/config/appsettings",
            )
            t += rng.randint(1, 5) * TICKS_PER_SECOND
        jobs = site.app.continuous_jobs if site.slot is None else ()
        for job in jobs:
            t = self._webjob(rec, ops.CONTINUOUS_WEBJOB_STOP, site, job, t) + 2 * TICKS_PER_SECOND
        t = call(ops.DEPLOYMENT_WRITE, site, t, f"/deployments/{rng.getrandbits(160):040x}")
        t += rng.randint(1, 4) * TICKS_PER_SECOND
        rec.basic_login(rng, site=site, at=t, address=agent, protocol=protocol)
        t = write_content(
            rng,
            rec,
            site=site,
            at=t + rng.randint(1, 3) * TICKS_PER_SECOND,
            process=process,
            share=share,
        )
        for _ in range(polls):
            t += rng.randint(3, 15) * TICKS_PER_SECOND
            rec.basic_login(rng, site=site, at=t, address=agent, protocol=protocol)
        if site.app.function_app:
            t = call(ops.SYNC_FUNCTION_TRIGGERS, site, t + rng.randint(2, 10) * TICKS_PER_SECOND)
        for job in jobs:
            t = self._webjob(
                rec,
                ops.CONTINUOUS_WEBJOB_START,
                site,
                job,
                t + rng.randint(5, 30) * TICKS_PER_SECOND,
            )
        if site.slot is not None:
            call(ops.SLOT_SWAP, site, t + rng.randint(60, 300) * TICKS_PER_SECOND)

    def _webjob(
        self, rec: Recorder, operation: ops.Operation, site: Site, job: str, at: int
    ) -> int:
        """A continuous job stopped or started around a deployment, by the jobs identity."""
        rng = self._rng
        runners = self._jobs_identity
        if runners:
            runner = runners[site.app.index % len(runners)]
            return rec.call(
                rng,
                identity=runner.identity,
                client=own_client(runner.identity),
                operation=operation,
                site=site,
                at=at,
                address=rng.choice(runner.host_addresses),
                child=f"/continuouswebjobs/{job}",
            )
        return rec.call(
            rng,
            identity=self._pipeline.identity,
            client=self._client,
            operation=operation,
            site=site,
            at=at,
            address=self._agent(),
            child=f"/continuouswebjobs/{job}",
        )


class JobRunnerBehaviour:
    """One managed identity starting its triggered WebJobs on their schedules."""

    __slots__ = ("_client", "_jobs", "_rng", "_runner")

    def __init__(self, index: int, runner: ManagedIdentity, org: Organisation, seed: int) -> None:
        self._runner = runner
        self._rng = make_rng(seed, "jobs", runner.identity.key)
        self._client = own_client(runner.identity)
        self._jobs = [
            (org.sites_of(app)[0], job)
            for app in org.apps
            for job in app.triggered_jobs
            if job.runner == index
        ]

    def day(self, day: Day, rec: Recorder) -> None:
        """Records the day's ARM-started runs."""
        rng = self._rng
        runs = []
        for site, job in self._jobs:
            if job.every_minutes >= 1440:
                starts = [(job.minute * 7) % 24 * 60 + job.minute]
            else:
                starts = list(range(job.minute % job.every_minutes, 1440, job.every_minutes))
            for start in starts:
                at = (
                    day.midnight + start * TICKS_PER_MINUTE + between(rng, 0, 45_000) * TICKS_PER_MS
                )
                runs.append((at, site, job.name))
        for at, site, name in sorted(runs, key=lambda run: run[0]):
            if day.within(at):
                rec.call(
                    rng,
                    identity=self._runner.identity,
                    client=self._client,
                    operation=ops.TRIGGERED_WEBJOB_RUN,
                    site=site,
                    at=at,
                    address=rng.choice(self._runner.host_addresses),
                    child=f"/triggeredwebjobs/{name}",
                    failure="Conflict" if rng.random() < 0.02 else None,
                )


class MonitorBehaviour:
    """One monitoring script's daily sweep over every production site."""

    __slots__ = ("_client", "_monitor", "_rng", "_sites")

    def __init__(self, monitor: Monitor, org: Organisation, seed: int) -> None:
        self._monitor = monitor
        self._rng = make_rng(seed, "monitor", monitor.identity.key)
        self._client = own_client(monitor.identity)
        self._sites = [site for site in org.sites if site.slot is None]

    def day(self, day: Day, rec: Recorder) -> None:
        """Records the day's sweep."""
        monitor, rng = self._monitor, self._rng
        t = at_minute(rng, day.midnight, monitor.minute)
        if not day.within(t):
            return
        for site in self._sites:
            for suffix in monitor.suffixes:
                t = rec.call(
                    rng,
                    identity=monitor.identity,
                    client=self._client,
                    operation=ops.CONFIG_LIST,
                    site=site,
                    at=t,
                    address=monitor.address,
                    child=f"/config/{suffix}",
                    session=f"sweep-{day.index}",
                )
                t += rng.randint(100, 1500) * TICKS_PER_MS
