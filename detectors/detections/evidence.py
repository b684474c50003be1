"""Evidence shared by both detections: how a burst of activity differs from a baseline."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta

from detectors.baselines.baseline import Dimension, PrincipalBaseline, network_of, wide_network_of
from detectors.baselines.surroundings import NO_SURROUNDINGS, Surroundings
from detectors.detections.spec import DetectionSpec, Finding, Severity
from detectors.model.days import day_number
from detectors.model.hosting import hosting_provider
from detectors.model.observation import (
    ClientTool,
    Observation,
    Principal,
    PrincipalType,
    Status,
    app_of,
)
from detectors.model.operations import SCRIPTING_TOOLS
from detectors.model.reasons import Reason, ReasonCode
from detectors.settings.detection import DetectionSettings

_TOOL_NAMES = {
    ClientTool.AZURE_CLI: "Azure CLI",
    ClientTool.AZURE_POWERSHELL: "Azure PowerShell",
    ClientTool.PORTAL: "the Azure portal",
    ClientTool.VISUAL_STUDIO: "Visual Studio",
    ClientTool.VS_CODE: "VS Code",
    ClientTool.CLOUD_SHELL: "Cloud Shell",
    ClientTool.APP_SERVICE_PLATFORM: "the App Service platform",
    ClientTool.KUDU: "Kudu (SCM)",
    ClientTool.FTP: "FTP",
    ClientTool.WEB_DEPLOY: "Web Deploy",
    ClientTool.OTHER: "an unlisted client application",
    ClientTool.UNKNOWN: "an unknown client",
}


def tool_name(tool: ClientTool) -> str:
    """How an analyst calls a client tool."""
    return _TOOL_NAMES[tool]


def listing(values: Sequence[str], limit: int = 5) -> str:
    """`a, b, c and 4 more`: a short, stable list for messages."""
    shown = ", ".join(values[:limit])
    return f"{shown} and {len(values) - limit} more" if len(values) > limit else shown


def total(observations: Iterable[Observation]) -> int:
    """How many actions these observations stand for (each may count several)."""
    return sum(o.count for o in observations)


def located(obs: Observation) -> bool:
    """Whether the action's address says where the principal is: Cloud Shell calls leave
    from Azure's addresses, not the user's."""
    return bool(obs.source_ip) and obs.tool is not ClientTool.CLOUD_SHELL


def probing_refusals(failed: Iterable[Observation], own_apps: Collection[str]) -> list[Observation]:
    """The refusals that explore: those on other environments of the apps the principal
    works on (`own_apps`, see `app_of`) are least privilege at work, a developer without a
    role on production, not a search for what the identity may read."""
    return [o for o in failed if app_of(o.resource.site_key) not in own_apps]


def is_probe(
    failed: Sequence[Observation],
    settings: DetectionSettings,
    own_apps: Callable[[], Collection[str]] | None = None,
) -> bool:
    """Whether these refusals add up to probing (`failure_burst` attempts on `burst_sites`
    sites); a refusal or two is more likely a missing role assignment. With `own_apps`, read
    only when the refusals are that broad, those on its own apps' other environments do not
    count (see `probing_refusals`)."""

    def broad(refusals: Sequence[Observation]) -> bool:
        return total(refusals) >= settings.failure_burst and (
            len({o.resource.site_id for o in refusals}) >= settings.burst_sites
        )

    if not broad(failed):
        return False
    return own_apps is None or broad(probing_refusals(failed, own_apps()))


_HOURS_A_WEEK = 7 * 24

_NOVELTY_KIND = {
    ReasonCode.NEW_SCRIPTING_TOOL: "tool",
    ReasonCode.NEW_TOOL: "tool",
    ReasonCode.NEW_NETWORK: "network",
    ReasonCode.UNUSUAL_HOUR: "hour",
}


def _monthly(then: date, now: date) -> bool:
    """Whether `now` falls on `then`'s day of a later month: its day of the month, or its
    weekday in the same week of the month."""
    if (now.year, now.month) <= (then.year, then.month):
        return False
    same_weekday = now.weekday() == then.weekday() and (now.day - 1) // 7 == (then.day - 1) // 7
    return now.day == then.day or same_weekday


class Context:
    """One principal's burst, its baseline and the settings: what every evidence check needs."""

    __slots__ = (
        "_settling",
        "baseline",
        "has_history",
        "history_days",
        "novelty_scale",
        "observations",
        "principal",
        "settings",
        "surroundings",
        "today",
    )

    def __init__(
        self,
        *,
        principal: Principal,
        observations: Sequence[Observation],
        baseline: PrincipalBaseline | None,
        settings: DetectionSettings,
        surroundings: Surroundings | None = None,
    ) -> None:
        self.principal = principal
        self.observations = observations
        self.baseline = baseline
        self.settings = settings
        self.surroundings = surroundings or NO_SURROUNDINGS
        self.today = day_number(observations[0].time)
        """Day number of the burst's first observation."""
        # Failures teach a baseline nothing, so a principal that only ever failed has none.
        self.has_history = (
            baseline is not None
            and baseline.operations > baseline.failures
            and baseline.history_days(self.today) >= settings.min_history_days
        )
        """Whether the principal was active on enough earlier days to compare against."""
        history = baseline.history_days(self.today) if baseline is not None else 0
        self.history_days = history
        maturity = min(1.0, history / max(settings.mature_history_days, 1))
        self.novelty_scale = settings.immature_factor + (1 - settings.immature_factor) * maturity
        """How much novelty counts: a short history makes everything look new."""
        self._settling: bool | None = None

    @property
    def settling(self) -> bool:
        """Whether a newcomer acts as its peers do, from their address blocks with their
        tools: settling in, judged as a newcomer. A newcomer's remembered history started
        within twice `mature_history_days` and is still short (a joiner's first weeks), or
        started again then (a leaver's first weeks back, everything it did before forgotten,
        however long its history was). A principal long on record with a thin history (it
        acts twice a week) is no newcomer: its stolen session is judged against what it did;
        nor is a dormant identity back from elsewhere than its peers' blocks."""
        if self._settling is None:
            baseline, s = self.baseline, self.settings
            if baseline is None:
                self._settling = False
            else:
                start = baseline.history_start(self.today, s.baseline_max_age_days)
                restarted = start > day_number(baseline.first_seen)
                self._settling = (
                    (self.novelty_scale < 1 or restarted)
                    and self.today - start <= 2 * s.mature_history_days
                    and self.ordinary_for_peers(self.observations)
                )
        return self._settling

    @property
    def settling_scale(self) -> float:
        """How much novelty counts for a newcomer settling in (see `settling`): as for
        `novelty_scale`, but counting only the days since its remembered history (re)started
        (a leaver back remembers nothing from before)."""
        s = self.settings
        if self.baseline is None:
            return self.novelty_scale
        start = self.baseline.history_start(self.today, s.baseline_max_age_days)
        remembered = min(self.history_days, self.today - start)
        maturity = min(1.0, remembered / max(s.mature_history_days, 1))
        return s.immature_factor + (1 - s.immature_factor) * maturity

    def knows(self, dimension: Dimension, value: str) -> bool:
        """Whether the baseline still remembers this value."""
        return self.baseline is not None and self.baseline.knows(
            dimension, value, self.today, self.settings.baseline_max_age_days
        )

    def known_apps(self) -> set[str]:
        """Apps (see `app_of`) of the sites the principal still knows."""
        baseline = self.baseline
        if baseline is None:
            return set()
        return {app_of(key) for key in baseline.sites if self.knows(Dimension.SITES, key)}

    def own_apps(self, observations: Iterable[Observation]) -> set[str]:
        """Apps the principal works on: those of the sites it still knows, and of the sites
        it acted on successfully in these observations (a new joiner's first day)."""
        reached = {
            app_of(o.resource.site_key) for o in observations if o.status is not Status.FAILED
        }
        return reached | self.known_apps()

    def in_maintenance_window(self, moment: datetime) -> bool:
        """Whether the principal changed credentials, keys or the basic-auth policy at this
        hour (give or take `maintenance_slot_hours`) of the week in an earlier week, or of
        the month in an earlier month (the same day of the month, or the same weekday of the
        same week of the month: a monthly rotation on the 3rd, a drill each second Tuesday)."""
        baseline = self.baseline
        if baseline is None or not baseline.change_slots:
            return False
        year, week, weekday = moment.isocalendar()
        this_week = f"{year}-W{week:02d}"
        hour_of_week = (weekday - 1) * 24 + moment.hour
        reach = self.settings.maintenance_slot_hours
        for slot, day in baseline.change_slots.items():
            if slot.startswith(this_week) or self.today - day > self.settings.baseline_max_age_days:
                continue
            try:
                other = (int(slot[-4]) - 1) * 24 + int(slot[-2:])
                then = datetime.fromisocalendar(int(slot[:4]), int(slot[6:8]), int(slot[-4]))
            except ValueError:
                continue  # edited by hand into something else: not a slot
            distance = abs(other - hour_of_week)
            if min(distance, _HOURS_A_WEEK - distance) <= reach:
                return True
            if _monthly(then.date(), moment.date()) and abs(int(slot[-2:]) - moment.hour) <= reach:
                return True
        return False

    def familiar(self, observations: Iterable[Observation]) -> bool:
        """Whether nothing about where and when these actions happened is new: every address
        from a block the principal uses, every hour one it works in (once its hours are on
        record). A stolen identity brings its own network or hour."""
        baseline, s = self.baseline, self.settings
        if baseline is None or not self.has_history:
            return False
        hours_known = sum(baseline.hours) >= s.min_hour_history
        for obs in observations:
            if located(obs) and not self.knows(
                Dimension.WIDE_NETWORKS, wide_network_of(obs.source_ip or "")
            ):
                return False
            if hours_known and not self.usual_time(obs.time):
                return False
        return True

    def usual_time(self, moment: datetime) -> bool:
        """Whether the principal works at this time of day: an hour it works in, or, for a
        person, the hour after one while the work it did there goes on (its last earlier
        action at most `hour_overrun_minutes` before, in that usual hour). A Kudu session
        from 16:50 to 17:10 is one sitting, not a visit at 17:00; automation keeps its own
        schedule, and a run past its hour is no sitting."""
        baseline, s = self.baseline, self.settings
        if baseline is None:
            return False
        if baseline.usual_hour(moment.hour, s.unusual_hour_share):
            return True
        last = baseline.last_seen
        return (
            self.principal.type is PrincipalType.USER
            and timedelta(0) < moment - last <= timedelta(minutes=s.hour_overrun_minutes)
            and last.hour == (moment.hour - 1) % 24
            and baseline.usual_hour(last.hour, s.unusual_hour_share)
        )

    def peers_know(self, dimension: Dimension, value: str) -> bool:
        """Whether other principals of this one's type use this value: routine for its kind."""
        return self.surroundings.peers_know(self.principal.type, dimension, value, self.today)

    def ordinary_for_peers(self, observations: Sequence[Observation]) -> bool:
        """Whether every address block and tool here is one its peers use (new joiners).

        A refusal or two is a new joiner's missing role assignment; refusals across sites are
        probing, which no new joiner does (`failure_burst` on `burst_sites` sites).
        """
        failed = [o for o in observations if o.status is Status.FAILED]
        if is_probe(failed, self.settings, lambda: self.own_apps(observations)):
            return False
        for obs in observations:
            if (
                not self.peers_know(Dimension.TOOLS, obs.tool.value)
                or self.from_peers_block(obs) is False
            ):
                return False
        return len(failed) < len(observations)

    def from_peers_block(self, obs: Observation) -> bool | None:
        """Whether the action came from an address block its peers use; None when its address
        tells nothing of where the principal is (see `located`)."""
        if not located(obs):
            return None
        return self.peers_know(Dimension.WIDE_NETWORKS, wide_network_of(obs.source_ip or ""))


class Scorer:
    """Collects reasons for one finding; novelty is only judged against a real history."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.reasons: list[Reason] = []

    def add(self, code: ReasonCode, weight: float, message: str) -> None:
        """Record one reason."""
        self.reasons.append(Reason(code=code, message=message, weight=round(float(weight), 1)))

    def scale(self, codes: Collection[ReasonCode], factor: float, note: str) -> None:
        """Multiply the reasons of these codes already recorded by `factor`, saying why."""
        self.reasons = [
            replace(r, weight=round(r.weight * factor, 1), message=f"{r.message} {note}")
            if r.code in codes
            else r
            for r in self.reasons
        ]

    def novel(self, code: ReasonCode, weight: float, message: str) -> None:
        """Record a reason judged against history, weighed by how much history there is."""
        ctx = self.ctx
        scale = ctx.novelty_scale
        if ctx.settling:
            scale = ctx.settling_scale * ctx.settings.peer_routine_factor
            history = (
                f"only {ctx.history_days} days of history"
                if ctx.novelty_scale < 1
                else "back after longer away than its baseline remembers"
            )
            message += (
                f" ({history}, acting from its peers' address blocks with their tools, as a "
                "newcomer settling in: weighs less)"
            )
        elif scale < 1:
            message += f" (only {ctx.history_days} days of history: weighs less)"
        self.add(code, weight * scale, message)

    def no_history(
        self, *, ordinary: bool = False, team: int = 0, cadence: bool = False, family: int = 0
    ) -> bool:
        """Add NO_HISTORY when the principal has too little history; True if it did.

        `ordinary`: everything about the activity is routine for the principal's peers
        (their address blocks, their tools), as with a new joiner: it weighs less.
        `team`: how many other principals take the credentials of every site it took (it
        takes a team's set of sites, as a new member does): it weighs less too.
        `cadence`: it repeats what its short history holds, on the hour of the week or month
        it did before (automation on a long cadence): it weighs `routine_factor`.
        `family`: how many other automation identities take the credentials of the sites it
        took, each site at least one (a pipeline's new identity): it weighs less too.
        """
        ctx = self.ctx
        if ctx.has_history:
            return False
        if ctx.baseline is None:
            message = "No earlier activity of this principal is on record."
        else:
            days = ctx.baseline.history_days(ctx.today)
            message = (
                f"Little history: active on {days} earlier day(s) since "
                f"{ctx.baseline.first_seen:%Y-%m-%d}."
            )
        weight = ctx.settings.weight_no_history
        if cadence:
            weight *= ctx.settings.routine_factor
            message += (
                " It did the same to these sites before, at this hour of the week or month: "
                "automation on a long cadence, so this weighs less."
            )
        elif ordinary:
            weight *= ctx.settings.peer_routine_factor
            message += (
                f" Its address blocks and tools are those other {ctx.principal.type.value}s "
                "use (a new joiner?), so this weighs less."
            )
        elif family:
            weight *= ctx.settings.peer_routine_factor
            message += (
                " Every site whose credentials it took is deployed by another pipeline "
                "identity, or is another environment of an app such a site belongs to "
                f"({family} such identities in all), with its peers' tools and not from a rented "
                "server (a pipeline's new service connection or agent pool?), so this weighs "
                "less."
            )
        elif team:
            weight *= ctx.settings.peer_routine_factor
            message += (
                f" It took the credentials of exactly the sites {team} other principal(s) work "
                "on (a team's set: a new member?), so this weighs less."
            )
        self.add(ReasonCode.NO_HISTORY, weight, message)
        return True

    def novelty(self, observations: Sequence[Observation], *, sites_known: bool) -> None:
        """New tools, networks and hours of day.

        On familiar sites, a lone novelty (a new address while travelling, a first try of
        the CLI with `az webapp show`) weighs less; several at once weigh fully.
        """
        ctx, s = self.ctx, self.ctx.settings
        baseline = ctx.baseline
        if baseline is None or not ctx.has_history:
            return
        damp = 1.0
        start = len(self.reasons)
        # Novelty its peers find routine (their tools, their address blocks) does not
        # corroborate another novelty: counted apart below.
        routine: set[ReasonCode] = set()
        succeeded = [o for o in observations if o.status is not Status.FAILED] or observations
        new_tools = sorted(
            {o.tool for o in succeeded if not ctx.knows(Dimension.TOOLS, o.tool.value)}
        )
        known_tools = sorted(
            tool_name(ClientTool(t))
            for t in baseline.tools
            if ctx.knows(Dimension.TOOLS, t) and t in ClientTool._value2member_map_
        )
        before = f" (before: {listing(known_tools)})" if known_tools else ""
        scripting = [t for t in new_tools if t in SCRIPTING_TOOLS]
        if scripting:
            names = listing([tool_name(t) for t in scripting])
            weight = s.weight_new_scripting_tool * damp
            message = f"First use of {names} by this principal{before}."
            if all(ctx.peers_know(Dimension.TOOLS, t.value) for t in scripting):
                weight *= s.peer_routine_factor
                message += f" Other {ctx.principal.type.value}s use it routinely: weighs less."
                routine.add(ReasonCode.NEW_SCRIPTING_TOOL)
            self.novel(ReasonCode.NEW_SCRIPTING_TOOL, weight, message)
        others = [t for t in new_tools if t not in SCRIPTING_TOOLS and t is not ClientTool.UNKNOWN]
        if others:
            names = listing([tool_name(t) for t in others])
            self.novel(
                ReasonCode.NEW_TOOL,
                s.weight_new_tool * damp,
                f"First use of {names} by this principal{before}.",
            )

        shared, rented = self._networks(observations, baseline, damp)
        if shared:
            routine.add(ReasonCode.NEW_NETWORK)

        total_hours = sum(baseline.hours)
        if total_hours >= s.min_hour_history:
            odd = sorted({o.time.hour for o in observations if not ctx.usual_time(o.time)})
            if odd:
                hours = ", ".join(f"{h:02d}:00" for h in odd)
                self.novel(
                    ReasonCode.UNUSUAL_HOUR,
                    s.weight_unusual_hour * damp,
                    f"Active at {hours} UTC, hours in which it has rarely or never acted "
                    f"({total_hours} active hours on record).",
                )

        added = self.reasons[start:]
        kinds = {_NOVELTY_KIND[r.code] for r in added if r.code not in routine}
        # A trip moves where and when together: for a person, a new block with hours of its
        # own is one novelty (a thief brings something more: a tool, a site, a rented server).
        trip = {r.code for r in added} == {
            ReasonCode.NEW_NETWORK,
            ReasonCode.UNUSUAL_HOUR,
        } and ctx.principal.type is PrincipalType.USER
        # A person on a rented server is not a traveller: that novelty is never damped so.
        if sites_known and added and (len(kinds) <= 1 or trip) and not rented:
            if trip:
                alone = (
                    " On sites it knows, with its own tools, a new place with hours of its own "
                    "(a trip), nothing else new: this weighs less."
                )
            elif len(added) == 1:
                alone = " Alone, on sites it knows, this weighs less."
            else:
                alone = (
                    " On sites it knows, with nothing else new but what its peers do "
                    "routinely, this weighs less."
                )
            self.reasons[start:] = [
                replace(
                    r,
                    weight=round(r.weight * s.known_sites_factor, 1),
                    message=r.message + alone,
                )
                for r in added
            ]

    def _networks(
        self, observations: Sequence[Observation], baseline: PrincipalBaseline, damp: float
    ) -> tuple[bool, bool]:
        """NEW_NETWORK, weighed by how far the address is from what the principal uses.

        A new /24 inside a known /16 (another egress of the same proxy or provider) weighs
        little; a new /16 weighs fully, unless the principal roams across many of them; a
        new block of a provider that rents servers (see `model.hosting`) weighs
        `hosting_factor` more for a person, roaming or not. Returns whether a new block is
        one its peers use (routine around it), and whether a person's new block is rented.
        """
        ctx, s = self.ctx, self.ctx.settings
        # Cloud Shell calls leave from Azure's addresses, not the user's: they say nothing
        # about where the user is (a first use of Cloud Shell is its own reason).
        new_ips = sorted(
            {
                o.source_ip
                for o in observations
                if o.source_ip
                and located(o)
                and not ctx.knows(Dimension.NETWORKS, network_of(o.source_ip))
            }
        )
        if not new_ips:
            return False, False
        far = [ip for ip in new_ips if not ctx.knows(Dimension.WIDE_NETWORKS, wide_network_of(ip))]
        known = baseline.known_count(Dimension.WIDE_NETWORKS, ctx.today, s.baseline_max_age_days)
        providers = {ip: hosting_provider(ip, s.hosting_ranges) for ip in far}
        rented = (
            sorted({p for p in providers.values() if p is not None})
            if ctx.principal.type is PrincipalType.USER
            else []
        )
        if far:
            roams = known >= s.roaming_networks and not rented
            weight = s.weight_new_network * (s.roaming_factor if roams else 1.0) * damp
            habit = (
                f"it roams ({known} such blocks known), so this weighs less"
                if roams
                else f"{known} such block(s) known"
            )
            if rented:
                weight *= s.hosting_factor
                habit += (
                    f"; {listing(rented)} rent(s) servers, which people do not work from but "
                    "stolen identities are used from: this weighs more"
                )
            shared = all(ctx.peers_know(Dimension.WIDE_NETWORKS, wide_network_of(ip)) for ip in far)
            if shared:
                weight *= s.peer_routine_factor
                habit += f"; other {ctx.principal.type.value}s use it, so it weighs less"
            nets = listing(
                [
                    f"{ip} ({wide_network_of(ip)}"
                    + (f", {providers[ip]})" if rented and providers[ip] else ")")
                    for ip in far
                ]
            )
            message = f"From an address block never seen for it: {nets}; {habit}."
        else:
            if baseline.known_count(Dimension.NETWORKS, ctx.today, s.baseline_max_age_days) >= (
                s.roaming_networks
            ):
                return False, False  # it moves between many networks of its blocks: routine
            weight = s.weight_new_network * s.roaming_factor * damp
            nets = listing([f"{ip} ({network_of(ip)})" for ip in new_ips])
            message = f"From a new network inside blocks it already uses: {nets}."
            shared = False
        self.novel(ReasonCode.NEW_NETWORK, weight, message)
        return shared, bool(rented) and not shared

    def finding(self, spec: DetectionSpec, observations: Sequence[Observation]) -> Finding:
        """The finding these reasons add up to."""
        return graded(
            spec=spec,
            principal=self.ctx.principal,
            observations=observations,
            reasons=self.reasons,
            settings=self.ctx.settings,
        )


def severity_of(score: float, settings: DetectionSettings) -> Severity | None:
    """The severity band of a score; None below the alert threshold."""
    if score >= settings.high_threshold:
        return Severity.HIGH
    if score >= settings.medium_threshold:
        return Severity.MEDIUM
    if score >= settings.alert_threshold:
        return Severity.LOW
    return None


def graded(
    *,
    spec: DetectionSpec,
    principal: Principal,
    observations: Sequence[Observation],
    reasons: Sequence[Reason],
    settings: DetectionSettings,
) -> Finding:
    """A finding scored and banded from its reasons."""
    score = round(max(0.0, sum(r.weight for r in reasons)), 1)
    return Finding(
        detection=spec,
        principal=principal,
        observations=tuple(observations),
        reasons=tuple(reasons),
        score=score,
        severity=severity_of(score, settings),
    )
