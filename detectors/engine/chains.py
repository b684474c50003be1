"""Chains across tables, principals and windows, per site: one alert tells the whole story.

- A publish profile taken by P, then a `$site` (basic-auth) Kudu/FTP/Web Deploy login from
  an address block no deployment has used: the login joins P's credential alert
  (`DOWNLOAD_THEN_LOGIN`) instead of raising one of its own.
- The basic-auth policy written by P, then P taking the site's deployment credentials
  (`POLICY_THEN_DOWNLOAD`).
- The publishing password reset by P, then P taking the new profile (`RESET_THEN_DOWNLOAD`).
- Files of a job new to the site, then that job started or run (`JOB_CREATED_THEN_RUN`).

(A Kudu/FTP login followed by job files is tied together earlier, when file changes are
attributed to the login; see `LOGIN_THEN_JOB_FILES`.)

What a chain needs from earlier windows is kept as `site events` in the engine's state: a
few small records per site, dropped after `chain_minutes`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from detectors.baselines.baseline import (
    SENSITIVE_FAMILIES,
    Dimension,
    PrincipalBaseline,
    network_of,
    wide_network_of,
)
from detectors.baselines.surroundings import Surroundings, is_creation
from detectors.detections import CREDENTIAL_DOWNLOAD, WEBJOB_ACTIVITY, spec_of
from detectors.detections.credential_download import repeats_its_history
from detectors.detections.evidence import Context, graded, located
from detectors.detections.spec import Finding
from detectors.model.days import day_number
from detectors.model.hosting import hosting_provider
from detectors.model.observation import (
    Observation,
    OperationFamily,
    Principal,
    PrincipalType,
    Status,
    is_automation_id,
)
from detectors.model.operations import takes_deployment_credentials
from detectors.model.reasons import TAKEN, Reason, ReasonCode
from detectors.settings.detection import DetectionSettings

F = OperationFamily
CRED, WEBJOB = CREDENTIAL_DOWNLOAD, WEBJOB_ACTIVITY
DOWNLOAD, POLICY, RESET, JOB_CREATED = "download", "policy", "reset", "jobCreated"
DEPLOYED = "deployed"
"""An automation identity's deployment of the site (its `$site` logins follow it)."""
SUSPECT = "suspect"
"""An address used to probe (`FAILURES`); kept under `SOURCE_PREFIX` + the address."""
SOURCE_PREFIX = "source:"
"""Events of an address rather than a site (site keys never start so)."""
# A probe remembers at most this many of the sites it was refused (the most recent).
_MAX_REFUSED = 32
_NOVEL_SITE = frozenset({ReasonCode.NEW_SITE, ReasonCode.NO_HISTORY})
"""Reasons that say a downloader's site was not one it knew when it took the profile."""
_AUTOMATION = frozenset({PrincipalType.SERVICE_PRINCIPAL, PrincipalType.MANAGED_IDENTITY})


@dataclass(frozen=True, kw_only=True, slots=True)
class SiteEvent:
    """Something on a site that a later action may continue."""

    kind: str
    time: datetime
    principal: Principal
    job: str | None = None
    network: str | None = None
    """The network (/24, /48) the action came from."""
    reasons: tuple[Reason, ...] = ()
    """For a download or a reset: the evidence of its principal's finding at the time, which
    joins the finding of the chain it starts."""
    sites: tuple[str, ...] = ()
    """For a probe (`SUSPECT`): the sites (site keys) its principal was refused from the
    address, the most recent last (at most `_MAX_REFUSED`)."""

    def to_json(self) -> dict[str, Any]:
        """The event as plain JSON values."""
        return {
            "kind": self.kind,
            "time": self.time.isoformat(),
            "principalId": self.principal.id,
            "principalName": self.principal.name,
            "principalType": self.principal.type.value,
            "job": self.job,
            "network": self.network,
            "sites": list(self.sites),
            "reasons": [
                {"code": r.code.value, "message": r.message, "weight": r.weight}
                for r in self.reasons
            ],
        }

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> SiteEvent:
        """An event from `to_json`'s output; KeyError/ValueError/TypeError if malformed."""
        return cls(
            kind=str(value["kind"]),
            time=datetime.fromisoformat(value["time"]),
            principal=Principal(
                id=value["principalId"],
                name=value["principalName"],
                type=PrincipalType(value["principalType"]),
            ),
            job=value["job"],
            network=value.get("network"),
            sites=tuple(str(site) for site in value.get("sites") or ()),
            reasons=tuple(
                Reason(code=ReasonCode(r["code"]), message=r["message"], weight=float(r["weight"]))
                for r in value["reasons"]
            ),
        )


Findings = dict[tuple[str, str], Finding]
"""Findings of one window by (detection id, principal id)."""


class Chains:
    """Links findings of one window to what happened on the same sites shortly before."""

    def __init__(self, settings: DetectionSettings) -> None:
        self.settings = settings
        self.events: dict[str, list[SiteEvent]] = {}

    def link(
        self,
        findings: Findings,
        window: Sequence[Observation],
        surroundings: Surroundings,
        baselines: Mapping[str, PrincipalBaseline],
        *,
        alerting: Collection[str] = (),
    ) -> Findings:
        """The window's findings with chains added; events of this window remembered.
        `alerting`: principals whose open burst has alerted (see `SHARED_SOURCE`)."""
        s = self.settings
        horizon = timedelta(minutes=s.chain_minutes)
        out = dict(findings)
        # A new job a deployment shipped with the site's existing ones was not planted.
        released = surroundings.released_jobs(window)
        for obs in window:  # time-ordered
            site = obs.resource.site_key
            earlier = [e for e in self.events.get(site, ()) if obs.time - e.time <= horizon]
            if obs.status is Status.FAILED:
                self._remember_source(obs, out, surroundings)
                continue
            if obs.principal.id not in alerting:
                self._shared_source(out, obs, baselines, surroundings)
            if obs.family is F.SCM_LOGIN and obs.principal.type is PrincipalType.PUBLISHING_USER:
                self._login(out, obs, earlier, surroundings, baselines)
            elif _is_download(obs):
                # Each earlier step of the same principal on the site counts once; a reset
                # after a reset takes no profile.
                for kind, code, weight, step in (
                    (
                        POLICY,
                        ReasonCode.POLICY_THEN_DOWNLOAD,
                        s.weight_policy_then_download,
                        "changing its basic-auth policy: the steps that make a profile usable",
                    ),
                    (
                        RESET,
                        ReasonCode.RESET_THEN_DOWNLOAD,
                        s.weight_reset_then_download,
                        "resetting its publishing password: the steps that make a profile "
                        "the taker's alone (every earlier copy stops working)",
                    ),
                ):
                    if kind == RESET and obs.family is not F.CREDENTIAL_READ:
                        continue
                    event = next(
                        (
                            e
                            for e in earlier
                            if e.kind == kind and e.principal.id == obs.principal.id
                        ),
                        None,
                    )
                    if event is not None:
                        message = (
                            f"Took the deployment credentials of {obs.resource.name} "
                            f"{_minutes(obs.time - event.time)} after {step}"
                        )
                        weighs = weight
                        if kind == RESET and self._on_cadence(obs, event, baselines, surroundings):
                            weighs *= s.routine_factor
                            message += (
                                "; it reset and took this site's credentials before, at this "
                                "hour of the week or month (a rotation on its cadence), which "
                                "weighs less"
                            )
                        reason = Reason(code=code, message=message + ".", weight=weighs)
                        self._add(out, CRED, obs.principal, reason, (), earlier=event.reasons)
            elif obs.family in (F.WEBJOB_START, F.WEBJOB_RUN) and obs.webjob:
                for event in earlier:
                    if event.kind == JOB_CREATED and event.job == obs.webjob:
                        self._add(
                            out,
                            WEBJOB,
                            obs.principal,
                            Reason(
                                code=ReasonCode.JOB_CREATED_THEN_RUN,
                                message=f"Started {obs.resource.name}/{obs.webjob} "
                                f"{_minutes(obs.time - event.time)} after its files first "
                                f"appeared on the site (written by {event.principal.name}).",
                                weight=s.weight_job_created_then_run,
                            ),
                            (),
                        )
                        break
            self._remember(obs, out, surroundings, released)
            self._remember_source(obs, out, surroundings)
        return out

    def _remember_source(self, obs: Observation, out: Findings, surroundings: Surroundings) -> None:
        """Note the address of an action whose principal's finding holds probing
        (`FAILURES`: refused across sites, alert or not yet, see `SHARED_SOURCE`); not an
        address of a network (/24) any peer group uses, which links nobody (an office's or a
        gateway's egress). A wider block a colleague uses does not hide it: a residential
        provider's /16 holds a town."""
        finding = out.get((CRED, obs.principal.id))
        if finding is None or not located(obs):
            return
        if not any(r.code is ReasonCode.FAILURES for r in finding.reasons):
            return  # only probing: an identity refused across sites
        net, today = network_of(obs.source_ip or ""), day_number(obs.time)
        if surroundings.organisation_knows(net, today, Dimension.NETWORKS):
            return
        key = f"{SOURCE_PREFIX}{obs.source_ip}"
        before = self.events.get(key, ())
        sites = next((e.sites for e in before if e.principal == obs.principal), ())
        if obs.status is Status.FAILED:
            site = obs.resource.site_key
            sites = (*(s for s in sites if s != site), site)[-_MAX_REFUSED:]
        events = [e for e in before if e.principal != obs.principal]
        # The codes say what alerted; the messages stay with the alert (the state is small).
        codes = tuple(
            Reason(code=code, message="", weight=0.0)
            for code in sorted({r.code for r in finding.reasons})
        )
        events.append(
            SiteEvent(
                kind=SUSPECT, time=obs.time, principal=obs.principal, reasons=codes, sites=sites
            )
        )
        self.events[key] = events

    def _shared_source(
        self,
        out: Findings,
        obs: Observation,
        baselines: Mapping[str, PrincipalBaseline],
        surroundings: Surroundings,
    ) -> None:
        """SHARED_SOURCE: credentials taken from an address that another identity used to
        probe (`FAILURES`) shortly before, from a block new to this principal and that
        its peers do not use (an office's egress is everyone's). It joins two identities
        judged apart, so only a principal whose own burst does not alert already gets it
        (one that does is under investigation anyway, and its late rows then add nothing
        that the order of arrival could make differ from a replay)."""
        if obs.family not in SENSITIVE_FAMILIES or not located(obs) or not obs.source_ip:
            return
        own = out.get((CRED, obs.principal.id))
        linked = next(
            (r for r in (own.reasons if own else ()) if r.code is ReasonCode.SHARED_SOURCE), None
        )
        if own is not None and own.severity is not None and linked is None:
            return
        horizon = timedelta(minutes=self.settings.chain_minutes)
        earlier = [
            e
            for e in self.events.get(f"{SOURCE_PREFIX}{obs.source_ip}", ())
            if e.principal != obs.principal and timedelta(0) <= obs.time - e.time <= horizon
        ]
        if not earlier:
            return
        today, block = day_number(obs.time), wide_network_of(obs.source_ip)
        held = baselines.get(obs.principal.id)
        if self._knows(baselines, obs.principal.id, network_of(obs.source_ip), today) or (
            held is not None
            and held.knows(
                Dimension.WIDE_NETWORKS, block, today, self.settings.baseline_max_age_days
            )
        ):
            return
        if surroundings.peers_know(
            obs.principal.type, Dimension.NETWORKS, network_of(obs.source_ip), today
        ):
            return
        # The probe refused this very site, if one did; else the latest.
        site = obs.resource.site_key
        event = next((e for e in reversed(earlier) if site in e.sites), earlier[-1])
        refused = site in event.sites
        weight = self.settings.weight_shared_source
        if refused:
            weight += self.settings.weight_shared_source_refused
        if linked is not None and linked.weight >= weight:
            return
        codes = ", ".join(sorted({r.code.value for r in event.reasons}))
        other = event.principal.name or event.principal.id
        holding = (
            f"this identity took {obs.resource.name}'s, which the first was refused"
            if refused
            else "the second holding credentials where the first was refused"
        )
        reason = Reason(
            code=ReasonCode.SHARED_SOURCE,
            message=f"From {obs.source_ip}, the address {other} "
            f"({event.principal.type.value}) probed from {_minutes(obs.time - event.time)} "
            f"before, refused across sites ({codes}): one source behind two identities; "
            f"{holding}.",
            weight=weight,
        )
        if linked is not None and own is not None:
            # A stronger link (the very site the probe was refused) replaces a weaker one.
            out[(CRED, obs.principal.id)] = replace(
                own, reasons=tuple(r for r in own.reasons if r is not linked)
            )
        self._add(out, CRED, obs.principal, reason, ())

    def _on_cadence(
        self,
        download: Observation,
        reset: SiteEvent,
        baselines: Mapping[str, PrincipalBaseline],
        surroundings: Surroundings,
    ) -> bool:
        """Whether a reset and download repeat the principal's own rotation: it reset
        credentials at this hour of the week or month before, and took this site's, with
        this tool, from its blocks (see `credential_download.repeats_its_history`)."""
        ctx = Context(
            principal=download.principal,
            observations=[download],
            baseline=baselines.get(download.principal.id),
            settings=self.settings,
            surroundings=surroundings,
        )
        return (
            ctx.knows(Dimension.FAMILIES, F.CREDENTIAL_CHANGE.value)
            and ctx.in_maintenance_window(reset.time)
            and repeats_its_history(ctx, download)
        )

    def _login(
        self,
        out: Findings,
        login: Observation,
        earlier: Sequence[SiteEvent],
        surroundings: Surroundings,
        baselines: Mapping[str, PrincipalBaseline],
    ) -> None:
        """A `$site` login from a block no deployment used, after someone took the profile."""
        if not login.source_ip:
            return
        block = wide_network_of(login.source_ip)
        held = baselines.get(login.principal.id)
        today = day_number(login.time)
        known = held is not None and held.knows(
            Dimension.WIDE_NETWORKS, block, today, self.settings.baseline_max_age_days
        )
        # Known to the organisation: to any deployment, person, pipeline or identity.
        if known or surroundings.organisation_knows(block, today):
            return
        # Someone using the profile they just took from a network they use is the
        # profile's ordinary use (Visual Studio, Kudu, FTP clients): such a download
        # explains the login, whoever else took the profile before.
        net = network_of(login.source_ip)
        taken = [e for e in earlier if e.kind == DOWNLOAD and e.principal != login.principal]
        if not taken or any(self._knows(baselines, e.principal.id, net, today) for e in taken):
            return
        # Told against the latest download something was odd about (its finding held
        # evidence beyond what was taken), else the latest: a pipeline's routine release of
        # the site minutes before does not hide the harvest that took its profile at night.
        odd = [e for e in taken if any(r.code not in TAKEN for r in e.reasons)]
        event = (odd or taken)[-1]
        if hosting_provider(
            login.source_ip, self.settings.hosting_ranges
        ) is None and surroundings.deployed_from(
            login.resource.site_key,
            login.time,
            login.source_ip,
            timedelta(minutes=self.settings.deployment_login_minutes),
        ):
            return  # the deployment's own login, from the agent that deployed
        weight = self.settings.weight_download_then_login
        where = "a block nobody in the organisation has used"
        if event.network == net:
            # Used from where it was taken: the address's own novelty already counted there
            # (a traveller's hotel looks the same as a rented server), so this adds less.
            weight *= self.settings.peer_routine_factor
            where += ", the network it was taken from"
            if event.reasons and not any(r.code in _NOVEL_SITE for r in event.reasons):
                # By one whose history held this site when it took the profile: its ordinary
                # use from a new place, the download's own novelty, damped as that was.
                weight *= self.settings.known_sites_factor
                where += (
                    f", by a principal that takes {login.resource.name}'s credentials routinely"
                )
        elif self._hosted_agents(held, event, login, today):
            # The site's publishing credentials log in from ever-new blocks (hosted agents),
            # right after one that takes this site's profile routinely took it.
            weight *= self.settings.roaming_factor
            where += (
                ", by a principal that takes the site's credentials routinely, for publishing "
                "credentials that log in from a new block most times (hosted build agents), "
                "which weighs less"
            )
        if self._pipelines_agent(event.principal, login, surroundings, today):
            # A pipeline's new agents: its identity deploys where other pipelines do.
            weight *= self.settings.peer_routine_factor
            where += (
                ", by a pipeline identity on a site other pipeline identities deploy, from an "
                "agent that is no rented server, which weighs less"
            )
        reason = Reason(
            code=ReasonCode.DOWNLOAD_THEN_LOGIN,
            message=f"{_minutes(login.time - event.time)} after it took the publish profile of "
            f"{login.resource.name}, the site's publishing credentials ({login.principal.name}) "
            f"logged in from {login.source_ip}, {where}.",
            weight=round(weight, 1),
        )
        self._add(out, CRED, event.principal, reason, (login,), earlier=event.reasons)
        # The login is told in the downloader's alert, not in one of its own.
        own = out.get((CRED, login.principal.id))
        if own is not None:
            rest = tuple(o for o in own.observations if o is not login)
            if rest:
                out[(CRED, login.principal.id)] = replace(own, observations=rest)
            else:
                del out[(CRED, login.principal.id)]

    def _hosted_agents(
        self, held: PrincipalBaseline | None, event: SiteEvent, login: Observation, today: int
    ) -> bool:
        """Whether a `$site` login from a new block looks like the site's hosted build agents:
        its publishing credentials came from at least `roaming_networks` blocks before, the
        download before it was one its taker, an automation identity, makes routinely (no
        `NEW_SITE`, `NO_HISTORY`), and the login comes from no rented server. A person's
        profile used from a new block is no build agent."""
        s = self.settings
        return (
            event.principal.type
            in (PrincipalType.SERVICE_PRINCIPAL, PrincipalType.MANAGED_IDENTITY)
            and held is not None
            and held.known_count(Dimension.WIDE_NETWORKS, today, s.baseline_max_age_days)
            >= s.roaming_networks
            and bool(event.reasons)
            and not any(r.code in _NOVEL_SITE for r in event.reasons)
            and hosting_provider(login.source_ip or "", self.settings.hosting_ranges) is None
        )

    def _pipelines_agent(
        self, downloader: Principal, login: Observation, surroundings: Surroundings, today: int
    ) -> bool:
        """Whether a `$site` login after an automation identity took the profile looks like
        a pipeline's agent: another automation identity deploys the site too, and the login
        comes from no rented server (see `model.hosting`)."""
        if downloader.type not in _AUTOMATION:
            return False
        if hosting_provider(login.source_ip or "", self.settings.hosting_ranges) is not None:
            return False
        crowd = surroundings.crowd(login.resource.site_key, today)
        return any(is_automation_id(p) and p != downloader.id for p in crowd)

    def _knows(
        self, baselines: Mapping[str, PrincipalBaseline], principal_id: str, net: str, today: int
    ) -> bool:
        held = baselines.get(principal_id)
        return held is not None and held.knows(
            Dimension.NETWORKS, net, today, self.settings.baseline_max_age_days
        )

    def deployments(
        self, window: Sequence[Observation]
    ) -> dict[str, tuple[tuple[datetime, str], ...]]:
        """Automation identities' deployments of the window's sites: those remembered from
        earlier windows and this window's (see `Surroundings.deployed_from`)."""
        found: dict[str, list[tuple[datetime, str]]] = {}
        for site in {o.resource.site_key for o in window}:
            for e in self.events.get(site, ()):
                if e.kind == DEPLOYED and e.network:
                    found.setdefault(site, []).append((e.time, e.network))
        for obs in window:
            if _deploys(obs) and obs.source_ip:
                found.setdefault(obs.resource.site_key, []).append(
                    (obs.time, network_of(obs.source_ip))
                )
        return {site: tuple(sorted(times)) for site, times in found.items()}

    def wanted(self, window: Sequence[Observation]) -> set[str]:
        """Principals whose baselines a chain in this window may need (earlier downloaders)."""
        sites = {
            o.resource.site_key
            for o in window
            if o.family is F.SCM_LOGIN and o.principal.type is PrincipalType.PUBLISHING_USER
        }
        return {
            e.principal.id
            for site in sites
            for e in self.events.get(site, ())
            if e.kind == DOWNLOAD
        }

    def _add(
        self,
        out: Findings,
        detection: str,
        principal: Principal,
        reason: Reason,
        extra: Sequence[Observation],
        *,
        earlier: Sequence[Reason] = (),
    ) -> None:
        add_reason(
            out, detection, principal, reason, extra, settings=self.settings, earlier=earlier
        )

    def _remember(
        self,
        obs: Observation,
        out: Findings,
        surroundings: Surroundings,
        released: set[tuple[str, str]],
    ) -> None:
        site = obs.resource.site_key
        kinds: list[str] = []
        if obs.principal.type is PrincipalType.PUBLISHING_USER:
            pass
        elif _is_download(obs):
            kinds.append(DOWNLOAD)
            if obs.family is F.CREDENTIAL_CHANGE:
                kinds.append(RESET)
        elif obs.family is F.BASIC_AUTH_POLICY:
            kinds.append(POLICY)
        elif _deploys(obs):
            kinds.append(DEPLOYED)
        if obs.family is F.WEBJOB_FILE_CHANGE and obs.webjob and is_creation(obs):
            today = day_number(obs.time)
            if (
                surroundings.site_days(site, today) >= self.settings.min_history_days
                and surroundings.job_days(site, obs.webjob, today) == 0
                and (site, obs.webjob) not in released
            ):
                kinds = [JOB_CREATED]
        finding = out.get((CRED, obs.principal.id))
        events = self.events.setdefault(site, [])
        for kind in kinds:
            event = SiteEvent(
                kind=kind,
                time=obs.time,
                principal=obs.principal,
                job=obs.webjob if kind == JOB_CREATED else None,
                network=network_of(obs.source_ip) if obs.source_ip else None,
                reasons=finding.reasons
                if finding is not None and kind in (DOWNLOAD, RESET)
                else (),
            )
            # The latest of each kind, principal and job is enough.
            events[:] = [
                e
                for e in events
                if not (e.kind == kind and e.principal == obs.principal and e.job == event.job)
            ]
            events.append(event)
        if not events:
            del self.events[site]

    def forget(self, newest: datetime) -> None:
        """Keep only the events that can still start a chain after `newest`."""
        horizon = newest - timedelta(minutes=self.settings.chain_minutes)
        kept = {
            site: [e for e in events if e.time >= horizon] for site, events in self.events.items()
        }
        self.events = {site: events for site, events in kept.items() if events}

    def export(self) -> dict[str, Any]:
        """The events remembered, as plain JSON values."""
        return {site: [e.to_json() for e in events] for site, events in sorted(self.events.items())}

    def restore(self, value: Mapping[str, Any]) -> None:
        """Continue from `export`'s output."""
        self.events = {
            str(site): [SiteEvent.from_json(e) for e in events] for site, events in value.items()
        }


def _is_download(obs: Observation) -> bool:
    """Deployment credentials taken or reset: what a `$site` login can then use."""
    return obs.family is F.CREDENTIAL_CHANGE or takes_deployment_credentials(obs)


def _minutes(delta: timedelta) -> str:
    minutes = max(0, round(delta.total_seconds() / 60))
    return "under a minute" if minutes == 0 else f"{minutes} min"


def _deploys(obs: Observation) -> bool:
    """An automation identity's deployment of the site (`DEPLOYED`)."""
    return (
        obs.family is F.DEPLOYMENT
        and obs.status is not Status.FAILED
        and obs.principal.type in _AUTOMATION
    )


def add_reason(
    out: Findings,
    detection: str,
    principal: Principal,
    reason: Reason,
    extra: Sequence[Observation],
    *,
    settings: DetectionSettings,
    earlier: Sequence[Reason] = (),
) -> None:
    """Add a reason found across windows (and the observations it adds) to a principal's
    finding in `out`: with no finding yet, only if it adds observations."""
    key = (detection, principal.id)
    finding = out.get(key)
    if finding is None:
        if not extra:
            return
        out[key] = graded(
            spec=spec_of(detection),
            principal=principal,
            observations=extra,
            reasons=[*earlier, reason],
            settings=settings,
        )
        return
    # The earlier step's evidence joins the finding (a reset judged in an earlier
    # window), each code once.
    reasons = list(finding.reasons)
    for held in (*earlier, reason):
        if not any(r.code is held.code for r in reasons):
            reasons.append(held)
    out[key] = graded(
        spec=finding.detection,
        principal=finding.principal,
        observations=[*finding.observations, *extra],
        reasons=reasons,
        settings=settings,
    )
