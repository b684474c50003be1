"""The engine: one window of observations in, alerts out, baselines learned.

The engine is the one piece both the timer function and `replay` run. It owns no I/O of
its own: `prepare` names the baselines a window needs, `score` judges the window against
the ones it is given, and `learned` says what the baselines become. Loading and saving
them (with the retry of a lost race) is the window step's (`runs.step`).

With `late_rows` (the timer, a replay in ingestion order) a window may hold rows of earlier
windows that reached the workspace late. They are judged first, as the window they belong
to; a burst that scored below an alert is held back from the baselines for a while so that
its late rows are judged with it; and a WebJob file change waits a window for a login that
may still arrive. Without it (a replay in event order) none of this applies.
"""

from __future__ import annotations

import bisect
import logging
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from detectors.alerts.document import AlertDocument, BurstDoc
from detectors.alerts.render import burst_activity, iso, render
from detectors.baselines.baseline import PrincipalBaseline, absorb, learn, told
from detectors.baselines.surroundings import (
    Surroundings,
    context_groups,
    context_ids,
    is_context_id,
    peer_group_ids,
)
from detectors.detections import DETECTIONS, Detection
from detectors.detections.spec import Finding
from detectors.engine.bursts import Bursts
from detectors.engine.chains import Chains
from detectors.engine.held import held_size, observation_from, observation_json
from detectors.engine.trails import Trails
from detectors.model.errors import StoreError
from detectors.model.observation import (
    UNATTRIBUTED_PREFIX,
    ClientTool,
    Observation,
    OperationFamily,
    Principal,
    PrincipalType,
    SourceTable,
    Status,
)
from detectors.normalize.grouping import aggregate
from detectors.settings.detection import DetectionSettings

log = logging.getLogger(__name__)

STATE_VERSION = 1
_STATUS_RANK = {Status.ACCEPTED: 0, Status.SUCCEEDED: 1, Status.FAILED: 2}
_DEDUP_HORIZON = timedelta(hours=2)
_LOGINS_PER_SITE = 16
"""Logins remembered per site: enough to place a file change that arrived late."""
_SURE_LOGIN = timedelta(minutes=1)
"""A login this shortly before a file change explains it whatever arrives later."""
_UNEXPLAINED_BUDGET = 40_000
_PARTIAL_BUDGET = 80_000
"""Characters (as `held_size` counts them) of observations the engine state may hold back:
file changes waiting for their login, and partial bursts. The state travels in one Table
Storage entity, so what does not fit is judged or learned at once instead."""
_PARTIAL_FOR = timedelta(minutes=30)
"""How long after its last event a partial burst waits for the rest before it is learned."""
"""File changes held for a second look at most; beyond it they are judged at once."""


@dataclass(frozen=True, kw_only=True, slots=True)
class _Login:
    principal: Principal
    time: datetime
    ip: str | None
    tool: ClientTool

    def to_json(self) -> dict[str, Any]:
        return {
            "principalId": self.principal.id,
            "principalName": self.principal.name,
            "principalType": self.principal.type.value,
            "time": self.time.isoformat(),
            "ip": self.ip,
            "tool": self.tool.value,
        }

    @classmethod
    def from_json(cls, v: Mapping[str, Any]) -> _Login:
        return cls(
            principal=Principal(
                id=v["principalId"], name=v["principalName"], type=PrincipalType(v["principalType"])
            ),
            time=datetime.fromisoformat(v["time"]),
            ip=v["ip"],
            tool=ClientTool(v["tool"]),
        )


def _latest_before(logins: Sequence[_Login], moment: datetime) -> _Login | None:
    """The latest of a site's logins (oldest first) at or before a moment."""
    for login in reversed(logins):
        if login.time <= moment:
            return login
    return None


@dataclass(kw_only=True, slots=True)
class Scored:
    """A scored window, ready to be learned from once its alerts are safe."""

    groups: dict[str, list[Observation]]
    """Observations by principal, and by context baseline (sites, jobs, peer groups)."""
    names: dict[str, str] = field(default_factory=dict)
    """Display names of the context baselines in `groups`."""
    quarantined: dict[str, frozenset[str]] = field(default_factory=dict)
    """Event ids of each principal's observations that alerts listed: what they alone
    teach its baseline is quarantined (`quarantine_days`)."""


@dataclass(kw_only=True, slots=True)
class WindowResult:
    """What one window produced."""

    alerts: list[AlertDocument] = field(default_factory=list)
    suppressed: int = 0
    """Findings that scored as alerts but fell in the learning period."""
    repeats: int = 0
    """Findings folded into an open burst without a message (no new evidence)."""
    observations: int = 0
    duplicates: int = 0
    principals: int = 0


@dataclass(kw_only=True, slots=True)
class Prepared:
    """A window made ready to score: its rows deduplicated, grouped and attributed, what was
    held back for it taken out, and the baselines its judging needs named in `wanted`."""

    result: WindowResult
    since: datetime | None
    window: list[Observation] = field(default_factory=list)
    groups: dict[str, list[Observation]] = field(default_factory=dict)
    """The principals' rows of this window's slice (on time)."""
    released: dict[str, list[Observation]] = field(default_factory=dict)
    """Held parts let go unjudged: learned with this window."""
    learned_first: dict[str, list[Observation]] = field(default_factory=dict)
    """Per principal, its held part and late rows: judged (if late) and learned first."""
    late_units: dict[str, list[Observation]] = field(default_factory=dict)
    earlier_parts: dict[str, list[Observation]] = field(default_factory=dict)
    wanted: frozenset[str] = frozenset()


class Engine:
    """Scores windows of observations against per-principal baselines."""

    def __init__(
        self,
        *,
        settings: DetectionSettings,
        detections: Sequence[Detection] = DETECTIONS,
        track_actions: bool = True,
        late_rows: bool = False,
    ) -> None:
        self.settings = settings
        self.detections = tuple(detections)
        self.track_actions = track_actions
        """Remember every counted action across windows (files, which may overlap); without
        it only actions still in progress are remembered, for the row that ends them."""
        self._recent_actions: dict[str, datetime] = {}
        """Actions already counted, by key, with their time: the end row of one arriving late."""
        self._logins: dict[str, list[_Login]] = {}
        """The recent Kudu/FTP logins of each site, oldest first (a login may arrive late)."""
        self._stops: dict[str, dict[str, tuple[str, datetime]]] = {}
        """Who stopped each continuous WebJob of a site last, and when (see
        `_attribute_file_changes`)."""
        self.late_rows = late_rows
        """Whether a row may arrive after rows of later events (the timer; a replay in
        ingestion order): a WebJob file change no login explains then waits one window for
        a login that arrives late, before it is judged as unexplained."""
        self._unexplained: list[Observation] = []
        """File changes waiting for that second look."""
        self._partial: dict[str, list[Observation]] = {}
        """With `late_rows`, the activity of principals whose findings scored below an alert,
        held back from the baselines until the rest of their burst can no longer arrive."""
        self._bursts = Bursts(settings)
        self._chains = Chains(settings)
        self._trails = Trails(settings)
        self._newest: datetime | None = None

    def _forget(self) -> None:
        """Drop what can no longer change a judgement after the newest row seen: logins and
        stops past attribution, bursts past their gap, site events past the chains' horizon.

        Done before each window and before the state is written, so that what a replay
        remembers from one window to the next is what the timer carries from one run to the
        next (its state between runs), and the engine's memory stays small.
        """
        if self._logins:
            # Only logins that can still explain a file change are worth carrying.
            newest = max(logins[-1].time for logins in self._logins.values())
            horizon = newest - timedelta(minutes=self.settings.login_attribution_minutes)
            kept = {s: [x for x in v if x.time >= horizon] for s, v in self._logins.items()}
            self._logins = {s: v for s, v in kept.items() if v}
            stops = {
                site: {job: stop for job, stop in jobs.items() if stop[1] >= horizon}
                for site, jobs in self._stops.items()
            }
            self._stops = {site: jobs for site, jobs in stops.items() if jobs}
        if self._newest is not None:
            self._bursts.forget(self._newest)
            self._chains.forget(self._newest)

    def export_state(self) -> dict[str, Any]:
        """What the next run needs to go on where this one stopped, as plain JSON values."""
        self._forget()
        return {
            "version": STATE_VERSION,
            "bursts": self._bursts.export(),
            "siteEvents": self._chains.export(),
            "trails": self._trails.export(),
            "recentActions": {k: t.isoformat() for k, t in sorted(self._recent_actions.items())},
            "lastLogins": {
                site: [login.to_json() for login in logins]
                for site, logins in sorted(self._logins.items())
            },
            "jobStops": {
                site: {job: [who, at.isoformat()] for job, (who, at) in sorted(jobs.items())}
                for site, jobs in sorted(self._stops.items())
            },
            "unexplained": [observation_json(obs) for obs in self._unexplained],
            "partial": {
                principal_id: [observation_json(obs) for obs in group]
                for principal_id, group in sorted(self._partial.items())
            },
        }

    def restore_state(self, state: Mapping[str, Any]) -> None:
        """Continue from a state `export_state` produced; StoreError if it cannot be read."""
        if state.get("version") != STATE_VERSION:
            raise StoreError(f"engine state version {state.get('version')!r} is not supported")
        try:
            self._recent_actions = {
                k: datetime.fromisoformat(t) for k, t in state["recentActions"].items()
            }
            # A state written before logins could arrive late holds one login per site.
            self._logins = {
                site: [_Login.from_json(x) for x in (v if isinstance(v, list) else [v])]
                for site, v in state["lastLogins"].items()
            }
            # Added later: a state written before bursts and chains existed has neither.
            self._unexplained = [observation_from(v) for v in state.get("unexplained") or ()]
            self._stops = {
                str(site): {
                    str(job): (str(who), datetime.fromisoformat(at))
                    for job, (who, at) in jobs.items()
                }
                for site, jobs in (state.get("jobStops") or {}).items()
            }
            self._partial = {
                str(p): [observation_from(v) for v in group]
                for p, group in (state.get("partial") or {}).items()
            }
            self._bursts.restore(state.get("bursts") or {})
            self._chains.restore(state.get("siteEvents") or {})
            self._trails.restore(state.get("trails") or {})
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise StoreError(f"engine state cannot be read: {type(err).__name__}: {err}") from err

    def prepare(
        self, observations: Iterable[Observation], *, since: datetime | None = None
    ) -> Prepared:
        """Make a window ready to score, and name the baselines it needs (`wanted`).

        `since` is where the window's slice of event time starts: rows before it arrived
        late (the timer's stragglers), and are judged with what is held back for them.
        What the engine remembers across windows (counted actions, logins, held parts)
        moves on here, once per window.
        """
        self._forget()
        result = WindowResult()
        window = self._deduplicate(observations, result)
        result.observations = len(window)
        second_look, self._unexplained = self._unexplained, []
        if not window and not second_look:
            return Prepared(result=result, since=since)
        # Grouped before attribution, so grouped Log Analytics rows and file rows agree.
        window = self._attribute_file_changes(
            aggregate([*second_look, *window]), judge=frozenset(o.event_id for o in second_look)
        )
        if not window:
            return Prepared(result=result, since=since)
        groups: dict[str, list[Observation]] = defaultdict(list)
        for obs in window:
            groups[obs.principal.id].append(obs)
        result.principals = len(groups)
        self._newest = max(self._newest or window[-1].time, window[-1].time)
        # Rows that arrived late (and a partial burst held back for them) are judged first, as
        # the earlier window they belong to, and the principal's rows of this window after
        # them, against a baseline that learned them: as a replay in event order judges both.
        released = self._release_partial()
        learned_first: dict[str, list[Observation]] = {}
        late_units: dict[str, list[Observation]] = {}
        earlier_parts: dict[str, list[Observation]] = {}
        for principal_id in list(groups):
            earlier = self._partial.pop(principal_id, None) or []
            group = groups[principal_id]
            if since is None:
                late = group if earlier else []
            else:
                late = [o for o in group if o.time < since]
            if not earlier and not late:
                continue
            if earlier:
                earlier_parts[principal_id] = earlier
            learned_first[principal_id] = sorted([*earlier, *late], key=_by_time)
            if late:
                late_units[principal_id] = learned_first[principal_id]
            on_time = [o for o in group if since is not None and o.time >= since]
            if on_time:
                groups[principal_id] = on_time
            else:
                del groups[principal_id]
        teach = [o for group in released.values() for o in group]
        parts = [o for part in earlier_parts.values() for o in part]
        contexts = {key for obs in [*window, *teach, *parts] for key in context_ids(obs)}
        # Chains reach principals of earlier windows (who took a profile) by `wanted`.
        wanted = (
            set(groups)
            | set(released)
            | set(learned_first)
            | contexts
            | set(peer_group_ids())
            | self._chains.wanted(window)
        )
        return Prepared(
            result=result,
            since=since,
            window=window,
            groups=dict(groups),
            released=released,
            learned_first=learned_first,
            late_units=late_units,
            earlier_parts=earlier_parts,
            wanted=frozenset(wanted),
        )

    def score(
        self, prepared: Prepared, baselines: Mapping[str, PrincipalBaseline], *, emit: bool
    ) -> tuple[WindowResult, Scored]:
        """Judge a prepared window against the baselines it named (those that exist), without
        changing them; alerts are only rendered when `emit` is true."""
        result, window, since = prepared.result, prepared.window, prepared.since
        if not window:
            return result, Scored(groups={})
        groups, released = prepared.groups, prepared.released
        learned_first, late_units = prepared.learned_first, prepared.late_units
        earlier_parts = prepared.earlier_parts
        teach = [o for group in released.values() for o in group]
        # A burst that alerted goes on knowing what its alert told of (see `told`).
        open_bursts = self._bursts.alerting(window[0].time)
        stored = {
            k: told(v) if k in open_bursts else v
            for k, v in baselines.items()
            if k in prepared.wanted
        }
        around = Surroundings(
            baselines={k: v for k, v in stored.items() if is_context_id(k)},
            max_age_days=self.settings.baseline_max_age_days,
            deployments=self._chains.deployments(window),
            stops=self._stops,
        )

        alerted: set[str] = set()
        # New blocks are followed across days over every row of the window, late or not.
        touched = self._trails.follow(window, stored, around)
        # First the late rows, with any burst held back for them: no chain links them (the
        # chains see every row of the window below, late or not).
        first = {}
        for principal_id in sorted(late_units):
            for detection in self.detections:
                finding = detection.evaluate(
                    late_units[principal_id], stored.get(principal_id), self.settings, around
                )
                if finding is not None:
                    first[(detection.spec.id, principal_id)] = finding
        first = self._trails.mark(first, touched)
        self._admit(first, stored, emit, result, alerted)
        # What a replay in event order would have learned before these rows: the late rows
        # and held parts just judged teach the surroundings and baselines that the rows of
        # this window, and the chains across them, are judged against (what alerted does not
        # teach the surroundings, as below).
        judging: Mapping[str, PrincipalBaseline] = stored
        if learned_first:
            around, judging = self._learned_first(
                learned_first,
                stored,
                around,
                alerted,
                _alerted_events(first.values()),
                emit=emit,
            )

        findings = {}
        for principal_id in sorted(groups):
            baseline = judging.get(principal_id)
            for detection in self.detections:
                finding = detection.evaluate(groups[principal_id], baseline, self.settings, around)
                if finding is not None:
                    findings[(detection.spec.id, principal_id)] = finding
        findings = self._chains.link(
            findings, window, around, judging, alerting=self._bursts.alerting()
        )
        findings = self._trails.mark(findings, touched)
        self._admit(findings, stored, emit, result, alerted)
        told_of = _alerted_events([*first.values(), *findings.values()])
        quarantined = told_of if emit else {}
        result.alerts.sort(key=lambda a: (a["firstSeen"], a["detection"], a["id"]))
        # Each principal's whole activity of this window: a held burst with its late rows,
        # then its rows of this window.
        whole = {
            p: [*learned_first.get(p, ()), *groups.get(p, ())] for p in {*groups, *learned_first}
        }
        held_back = self._hold_back_partial(whole, [*first.values(), *findings.values()])
        # What raised an alert does not teach the surroundings what is ordinary, nor does the
        # rest of a burst that alerted (later windows, stragglers, a held part let go), and
        # what is held back teaches nothing until it is judged whole.
        exclude = frozenset(alerted | held_back | self._bursts.alerting(window[0].time))
        learned = {p: g for p, g in whole.items() if p not in held_back}
        teach += [o for p, part in earlier_parts.items() if p not in held_back for o in part]
        current: list[Observation] = window
        if late_units or teach:  # only then can rows of a burst that alerted arrive late
            alerting = self._bursts.alerting()
            current = [
                o
                for o in window
                if since is None or o.time >= since or o.principal.id not in alerting
            ]
            teach = [o for o in teach if o.principal.id not in alerting]
        listed = _all_events(told_of)
        context = context_groups(current, exclude=exclude, alerted=listed)
        # A held part let go was judged when it came: it teaches the surroundings even when
        # the principal's newer rows are held back in turn (unless its burst alerted).
        let_go = frozenset(alerted | self._bursts.alerting(window[0].time))
        for key, part in context_groups(teach, exclude=let_go, alerted=listed).items():
            context.setdefault(key, []).extend(part)
        names = {key: key.split(":", 1)[0] + " " + key.split(":", 1)[1] for key in context}
        # A principal's part let go, then its rows of this window: both teach its baseline.
        own = {p: [*released.get(p, ()), *learned.get(p, ())] for p in {*released, *learned}}
        return result, Scored(groups={**own, **context}, names=names, quarantined=quarantined)

    def _learned_first(
        self,
        learned_first: Mapping[str, list[Observation]],
        stored: Mapping[str, PrincipalBaseline],
        around: Surroundings,
        alerted: set[str],
        listed_by: Mapping[str, frozenset[str]],
        *,
        emit: bool,
    ) -> tuple[Surroundings, dict[str, PrincipalBaseline]]:
        """The surroundings and baselines as if the rows judged first had been learned;
        `listed_by`: what their alerts listed, by principal, quarantined when they are
        emitted (`emit`)."""
        age, values = self.settings.baseline_max_age_days, self.settings.baseline_max_values
        judging = dict(stored)
        for principal_id, obs in learned_first.items():
            baseline = learn(
                stored.get(principal_id),
                obs,
                max_age_days=age,
                max_values=values,
                quarantined=listed_by.get(principal_id, frozenset()) if emit else frozenset(),
                quarantine_days=self.settings.quarantine_days,
            )
            if baseline is not None:
                judging[principal_id] = baseline
        contexts = dict(around.baselines)
        first = [o for group in learned_first.values() for o in group]
        listed = _all_events(listed_by)
        for key, obs in context_groups(first, exclude=alerted, alerted=listed).items():
            name = key.split(":", 1)[0] + " " + key.split(":", 1)[1]
            learned = learn(
                contexts.get(key), obs, max_age_days=age, max_values=values, context=(key, name)
            )
            if learned is not None:
                contexts[key] = learned
        return replace(around, baselines=contexts), judging

    def _admit(
        self,
        findings: Mapping[tuple[str, str], Finding],
        stored: Mapping[str, PrincipalBaseline],
        emit: bool,
        result: WindowResult,
        alerted: set[str],
    ) -> None:
        """Send findings through the bursts, principal by principal; what to send becomes an
        alert in `result` (or is counted as suppressed when not `emit`)."""
        for key in sorted(findings, key=lambda k: (k[1], k[0])):
            finding = findings[key]
            if finding.severity is not None:
                alerted.add(finding.principal.id)
            message = self._bursts.admit(finding)
            if message is None:
                if finding.severity is not None:
                    result.repeats += 1
                continue
            if emit:
                alert = render(
                    message.finding,
                    stored.get(finding.principal.id),
                    self.settings,
                    earlier=message.activity,
                )
                burst = message.burst
                alert["burst"] = BurstDoc(
                    id=burst["id"],
                    sequence=burst["sequence"],
                    firstSeen=iso(burst["firstSeen"]),
                    repeats=burst["repeats"],
                )
                if burst["sequence"] > 1 and message.activity:
                    # An update lists what is new; its reasons tell of the whole burst, so
                    # the burst's activity is listed beside it.
                    activity = burst_activity(message.activity, message.finding.principal)
                    alert["burst"].update(activity)  # type: ignore[typeddict-item]
                    if message.omitted:
                        alert["burst"]["omitted"] = message.omitted
                result.alerts.append(alert)
            else:
                result.suppressed += 1
        result.alerts.sort(key=lambda a: (a["firstSeen"], a["detection"], a["id"]))

    def _hold_back_partial(
        self, whole: Mapping[str, list[Observation]], findings: Iterable[Finding]
    ) -> set[str]:
        """With `late_rows`, keep the activity of principals whose findings scored below an
        alert from the baselines for `_PARTIAL_FOR`: the rest of their burst may still
        arrive, and is then judged with it, whole, against a baseline that has not learned
        half of it. Returns the principals held back."""
        if not self.late_rows:
            return set()
        quiet: dict[str, float] = {}
        loud: set[str] = set()
        for finding in findings:
            principal_id = finding.principal.id
            if finding.severity is not None:
                loud.add(principal_id)
            elif finding.score > 0 and principal_id in whole:
                quiet[principal_id] = max(quiet.get(principal_id, 0.0), finding.score)
        held = set()
        room = _PARTIAL_BUDGET - sum(held_size(o) for g in self._partial.values() for o in g)
        # The budget goes to the bursts nearest an alert first: an ordinary download scores
        # a little too, and a busy hour holds many.
        for principal_id in sorted(quiet.keys() - loud, key=lambda p: (-quiet[p], p)):
            size = sum(held_size(o) for o in whole[principal_id])
            if size <= room:
                self._partial[principal_id] = list(whole[principal_id])
                held.add(principal_id)
                room -= size
        return held

    def _release_partial(self) -> dict[str, list[Observation]]:
        """Partial bursts whose rest can no longer arrive, to be learned now."""
        if not self._partial or self._newest is None:
            return {}
        horizon = self._newest - _PARTIAL_FOR
        released = {p: g for p, g in self._partial.items() if g[-1].time < horizon}
        for principal_id in released:
            del self._partial[principal_id]
        return released

    def _deduplicate(
        self, observations: Iterable[Observation], result: WindowResult
    ) -> list[Observation]:
        """One observation per action: an Accept and a later Success of one request count once."""
        kept: dict[str, Observation] = {}
        latest: datetime | None = None
        for obs in observations:
            latest = obs.time if latest is None or obs.time > latest else latest
            seen = self._recent_actions.get(obs.action_key)
            if seen is not None:
                result.duplicates += 1
                continue
            current = kept.get(obs.action_key)
            if current is not None:
                result.duplicates += 1
                if _STATUS_RANK[obs.status] <= _STATUS_RANK[current.status]:
                    continue
            kept[obs.action_key] = obs
        recent = self._recent_actions
        for key, obs in kept.items():
            # Log Analytics windows never repeat a row, but an action still in progress
            # (Accept) may end (Success) in a row ingested in a later window.
            if self.track_actions or obs.status is Status.ACCEPTED:
                recent[key] = obs.time
        if latest is not None:
            # Windows arrive in time order, so the oldest actions come first in the dict.
            horizon = latest - _DEDUP_HORIZON
            stale = []
            for key, seen_at in recent.items():
                if seen_at >= horizon:
                    break
                stale.append(key)
            for key in stale:
                del recent[key]
        return sorted(kept.values(), key=lambda o: (o.time, o.event_id))

    def _attribute_file_changes(
        self, window: list[Observation], *, judge: frozenset[str]
    ) -> list[Observation]:
        """Tie each WebJob file change to the last Kudu/FTP login on its site, if recent; or,
        for a job someone stopped since, to that principal's own Kudu login after the stop:
        who silenced a job and opened the console edits it, not a colleague who signed in
        to the same site a moment later.

        With `late_rows`, a change no login explains within `_SURE_LOGIN` is held for the
        next window (its login, or a later one, may arrive late), unless it is in `judge`
        (held once already) or too many are held.
        """
        limit = timedelta(minutes=self.settings.login_attribution_minutes)
        hold = self.late_rows
        held = sum(held_size(o) for o in self._unexplained)
        out: list[Observation] = []
        for obs in window:
            site = obs.resource.site_key
            if obs.family is OperationFamily.SCM_LOGIN:
                logins = self._logins.setdefault(site, [])
                bisect.insort(
                    logins,
                    _Login(principal=obs.principal, time=obs.time, ip=obs.source_ip, tool=obs.tool),
                    key=lambda x: x.time,
                )
                del logins[:-_LOGINS_PER_SITE]
            elif obs.family is OperationFamily.WEBJOB_STOP and obs.webjob:
                if obs.status is not Status.FAILED:
                    self._stops.setdefault(site, {})[obs.webjob] = (obs.principal.id, obs.time)
            elif obs.table is SourceTable.APP_SERVICE_FILE_AUDIT:
                login = _latest_before(self._logins.get(site, ()), obs.time)
                explained = login is not None and obs.time - login.time <= limit
                # A login just before the change explains it for sure; an older one may be
                # followed by a later login that has not arrived yet.
                sure = login is not None and obs.time - login.time <= _SURE_LOGIN
                if (
                    hold
                    and not sure
                    and obs.event_id not in judge
                    and held + held_size(obs) <= _UNEXPLAINED_BUDGET
                ):
                    self._unexplained.append(obs)
                    held += held_size(obs)
                elif login is not None and explained:
                    login = self._stoppers_login(site, obs, limit) or login
                    out.append(
                        replace(obs, principal=login.principal, source_ip=login.ip, tool=login.tool)
                    )
                else:
                    out.append(replace(obs, principal=_unattributed(obs)))
                continue
            out.append(obs)
        return out

    def _stoppers_login(self, site: str, change: Observation, limit: timedelta) -> _Login | None:
        """The Kudu login, after it stopped the changed job and before the change, of the
        principal that stopped it within `limit`; else None."""
        stop = self._stops.get(site, {}).get(change.webjob or "")
        if stop is None or not timedelta(0) <= change.time - stop[1] <= limit:
            return None
        who, stopped = stop
        return next(
            (
                login
                for login in reversed(self._logins.get(site, ()))
                if login.principal.id == who
                and login.tool is ClientTool.KUDU
                and stopped <= login.time <= change.time
            ),
            None,
        )

    def learned(
        self,
        scored: Scored,
        current: Mapping[str, PrincipalBaseline],
        *,
        only: Collection[str] | None = None,
        through: datetime | None = None,
    ) -> dict[str, PrincipalBaseline]:
        """What the baselines of a scored window become: each of `current` (the stored
        ones, which it learns into in place; absent: not stored yet) after the window's
        activity, for the ids in `only` (default: all the window teaches).

        With `through` (the end of a timer window), a baseline already marked as having
        learned that window is left alone, so a run that is repeated after a crash never
        counts the same activity twice.
        """
        out = {}
        for principal_id, obs in sorted(scored.groups.items()):
            if only is not None and principal_id not in only:
                continue
            held = current.get(principal_id)
            done = held.learned_through if held else None
            if through is not None and done is not None and done >= through:
                continue
            name = scored.names.get(principal_id)
            new = absorb(
                held,
                obs,
                max_age_days=self.settings.baseline_max_age_days,
                max_values=self.settings.baseline_max_values,
                through=through,
                context=(principal_id, name) if name is not None else None,
                quarantined=scored.quarantined.get(principal_id, frozenset()),
                quarantine_days=self.settings.quarantine_days,
            )
            if new is not None:
                out[principal_id] = new
        return out


def _alerted_events(findings: Iterable[Finding]) -> dict[str, frozenset[str]]:
    """Event ids of the observations of findings that alerted, by the principal each
    observation is of: a `$site` login a chain told in its downloader's alert is quarantined
    in the `$site`'s own baseline."""
    out: dict[str, set[str]] = {}
    for finding in findings:
        if finding.severity is not None:
            for o in finding.observations:
                out.setdefault(o.principal.id, set()).add(o.event_id)
    return {principal_id: frozenset(ids) for principal_id, ids in out.items()}


def _all_events(by_principal: Mapping[str, frozenset[str]]) -> frozenset[str]:
    return frozenset().union(*by_principal.values())


def _by_time(obs: Observation) -> tuple[datetime, str]:
    return obs.time, obs.event_id


def _unattributed(obs: Observation) -> Principal:
    """A stand-in principal for file changes no login explains: one per site."""
    return Principal(
        id=f"{UNATTRIBUTED_PREFIX}{obs.resource.site_key}",
        name=f"(no login found) {obs.resource.site}",
        type=PrincipalType.UNKNOWN,
    )
