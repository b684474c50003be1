"""Anomalous App Service WebJob activity: new or changed jobs, and runs that do not fit."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import timedelta

from detectors.baselines.baseline import Dimension, PrincipalBaseline, wide_network_of
from detectors.baselines.surroundings import Surroundings, is_creation
from detectors.detections.evidence import Context, Scorer, listing, total
from detectors.detections.spec import DetectionSpec, Finding, Technique
from detectors.model.days import hour_number
from detectors.model.hosting import hosting_provider
from detectors.model.observation import (
    Observation,
    OperationFamily,
    PrincipalType,
    SourceTable,
    Status,
    app_of,
    is_non_production,
)
from detectors.model.operations import FAMILY_ACTIVITIES
from detectors.model.reasons import ReasonCode
from detectors.settings.detection import DetectionSettings

F = OperationFamily

SPEC = DetectionSpec(
    id="appservice-webjob-activity",
    title="Anomalous App Service WebJob activity",
    description=(
        "WebJobs created or changed by someone who does not usually deploy them, job files "
        "written after a Kudu/FTP login from a new address, and job runs far more frequent "
        "than the principal's and the job's own history."
    ),
    tables=(
        SourceTable.AZURE_ACTIVITY,
        SourceTable.APP_SERVICE_AUDIT,
        SourceTable.APP_SERVICE_FILE_AUDIT,
    ),
    families=frozenset(
        {
            F.WEBJOB_RUN,
            F.WEBJOB_START,
            F.WEBJOB_STOP,
            F.WEBJOB_DELETE,
            F.WEBJOB_FILE_CHANGE,
        }
    ),
    mitre=(
        Technique(
            id="T1053",
            name="Scheduled Task/Job",
            tactics=("Execution", "Persistence", "Privilege Escalation"),
        ),
        Technique(
            id="T1505.003", name="Server Software Component: Web Shell", tactics=("Persistence",)
        ),
        Technique(id="T1648", name="Serverless Execution", tactics=("Execution",)),
        Technique(id="T1562", name="Impair Defenses", tactics=("Defense Evasion",)),
        Technique(
            id="T1078.004",
            name="Valid Accounts: Cloud Accounts",
            tactics=("Defense Evasion", "Persistence", "Privilege Escalation", "Initial Access"),
        ),
    ),
    severity_rules=(
        "high: a job that is new to the site or the principal, written after a login from a "
        "new network or by a principal without history, or a burst of runs far above history",
        "medium: job files changed or jobs run/started by a principal that never did so",
        "low: a single novelty around an otherwise familiar job",
    ),
    benign_causes=(
        "Pipelines deploying a site that ships WebJobs (zip deploy writes App_Data/jobs)",
        "Automation accounts or managed identities running triggered jobs on a schedule",
        "Developers creating or debugging a job; administrators stopping jobs for maintenance",
    ),
    investigation=(
        "Open the site's Kudu console (or the deployment history) and read the job's files: "
        "run.* and settings.job; compare them with the repository's version.",
        "Check who logged in to Kudu/FTP just before the files changed (AppServiceAuditLogs) "
        "and from where; a `$<site>` login means someone holds the publishing credentials.",
        "Review the job's schedule and run history for unexpected triggers or frequency.",
        "If the job is not known to the site's owners, stop it, keep a copy of its files, "
        "rotate the site's publishing credentials and disable basic authentication.",
    ),
)

_JOB_CONTROL = frozenset({F.WEBJOB_RUN, F.WEBJOB_START, F.WEBJOB_STOP, F.WEBJOB_DELETE})


def evaluate(
    observations: Sequence[Observation],
    baseline: PrincipalBaseline | None,
    settings: DetectionSettings,
    surroundings: Surroundings | None = None,
) -> Finding | None:
    """Score one principal's burst of WebJob activity; None when there is none."""
    relevant = [o for o in observations if o.family in SPEC.families]
    if not relevant:
        return None
    ctx = Context(
        principal=relevant[0].principal,
        observations=relevant,
        baseline=baseline,
        settings=settings,
        surroundings=surroundings,
    )
    scorer = Scorer(ctx)
    s = settings
    # Without history, acting as its peers do (their networks and tools): a site's first
    # deployment, a new runner identity.
    ordinary = not ctx.has_history and ctx.ordinary_for_peers(relevant)
    scorer.no_history(ordinary=ordinary)
    done = [o for o in relevant if o.status is not Status.FAILED]

    jobs = sorted({f"{o.resource.name}/{o.webjob}" for o in done if o.webjob})
    files = [o for o in done if o.family is F.WEBJOB_FILE_CHANGE]
    hands_on = _hands_on(ctx, files)
    # New jobs shipped by a deployment along with the site's existing ones (not hands-on).
    released = ctx.surroundings.released_jobs(done) if hands_on is None else set()
    _jobs_new_to_site(scorer, done, released)
    # A job whose files were modified or deleted, or that ARM stopped, started or ran, or
    # that the site's history knows, existed before this burst: only a job all of whose
    # files here were created can be a new one.
    around = ctx.surroundings
    existing = {
        (o.resource.site_key, o.webjob)
        for o in done
        if o.webjob
        and (
            not (o.family is F.WEBJOB_FILE_CHANGE and is_creation(o))
            or around.job_days(o.resource.site_key, o.webjob, ctx.today) > 0
            or around.site_knows_job(o.resource.site_key, o.webjob, ctx.today)
        )
    }
    created = {(o.resource.site_key, o.webjob) for o in files if o.webjob} - existing - released
    if ctx.has_history:
        new_jobs = {
            (o.resource.site_key, o.webjob, f"{o.resource.name}/{o.webjob}")
            for o in done
            if o.webjob and not ctx.knows(Dimension.WEBJOBS, f"{o.resource.site_key}/{o.webjob}")
        }
        if new_jobs:
            established = sorted(
                name
                for key, job, name in new_jobs
                if around.job_days(key, job, ctx.today) >= s.min_history_days
                or around.site_knows_job(key, job, ctx.today)
                or (key, job) in existing
            )
            touched = listing(sorted(name for _, _, name in new_jobs))
            weight = s.weight_new_webjob
            message = f"Worked on WebJob(s) it never touched before: {touched}."
            if len(established) == len(new_jobs):
                weight *= s.established_job_factor
                message += " Each is an existing job with its own history, so this weighs less."
            elif all(name in established or (key, job) in released for key, job, name in new_jobs):
                weight *= s.established_job_factor
                message += (
                    " Each is an existing job or one that a deployment shipped with them (a "
                    "release), so this weighs less."
                )
            scorer.novel(ReasonCode.NEW_WEBJOB, weight, message)
        new_families = sorted(
            {o.family for o in done if not ctx.knows(Dimension.FAMILIES, o.family.value)}
        )
        if new_families:
            weight = s.weight_new_operation
            message = (
                "First time this principal was seen "
                f"{listing([FAMILY_ACTIVITIES[f] for f in new_families])}."
            )
            # Restarting jobs, and rewriting existing jobs' files the way deployments do (not in
            # a hands-on session), is work its peers do; running or creating jobs is not damped.
            if all(
                (
                    f in (F.WEBJOB_START, F.WEBJOB_STOP)
                    or (f is F.WEBJOB_FILE_CHANGE and not created and hands_on is None)
                )
                and ctx.peers_know(Dimension.FAMILIES, f.value)
                for f in new_families
            ):
                weight *= s.peer_routine_factor
                message += f" Other {ctx.principal.type.value}s do this routinely: weighs less."
            scorer.novel(ReasonCode.NEW_OPERATION, weight, message)

    if files:
        names = sorted({(o.detail or "").replace("\\", "/").rsplit("/", 1)[-1] for o in files})
        if not ctx.principal.unattributed:
            weight = s.weight_job_files_changed
            message = f"Changed {total(files)} WebJob file(s) ({listing(names)}) of {listing(jobs)}"
            # The identity that deploys these sites rewriting existing jobs: its usual work.
            if (
                not created
                and hands_on is None
                and ctx.knows(Dimension.FAMILIES, F.WEBJOB_FILE_CHANGE.value)
                and all(ctx.knows(Dimension.SITES, o.resource.site_key) for o in files)
            ):
                weight *= s.routine_factor
                message += ", existing jobs of sites whose job files it routinely deploys"
            elif (
                not created
                and hands_on is None
                and ctx.peers_know(Dimension.FAMILIES, F.WEBJOB_FILE_CHANGE.value)
            ):
                # A deployment identity new to writing job files (a site's first release).
                weight *= s.peer_routine_factor
                message += (
                    f", existing jobs, as other {ctx.principal.type.value}s' deployments "
                    "rewrite them routinely"
                )
            scorer.add(ReasonCode.JOB_FILES_CHANGED, weight, message + ".")
            if hands_on is not None:
                scorer.add(
                    ReasonCode.LOGIN_THEN_JOB_FILES,
                    s.weight_login_then_job_files,
                    f"WebJob files written {hands_on}.",
                )
        else:
            scorer.add(
                ReasonCode.UNATTRIBUTED_JOB_CHANGE,
                s.weight_unattributed_job_change,
                f"WebJob files changed ({listing(names)}) of {listing(jobs)} with no Kudu/FTP "
                "login on the site shortly before: who wrote them is unknown.",
            )

    stopped = [o for o in done if o.family in (F.WEBJOB_STOP, F.WEBJOB_DELETE)]
    if stopped:
        what: Counter[str] = Counter()
        for o in stopped:
            what["deleted" if o.family is F.WEBJOB_DELETE else "stopped"] += o.count
        counts = " and ".join(f"{n} {k}" for k, n in sorted(what.items()))
        jobs_hit = sorted({f"{o.resource.name}/{o.webjob}" for o in stopped if o.webjob})
        # Stopping a job that its owners stop routinely (around deploys, in maintenance).
        routine = all(
            o.webjob
            and ctx.surroundings.job_does(o.resource.site_key, o.webjob, o.family.value, ctx.today)
            for o in stopped
        )
        # A job stopped and started again within the burst was restarted, not silenced.
        restarted = all(
            o.family is F.WEBJOB_STOP
            and any(
                r.family is F.WEBJOB_START
                and r.webjob == o.webjob
                and r.resource == o.resource
                and r.time >= o.time
                for r in done
            )
            for o in stopped
        )
        # Unless its files were written by hand while it was stopped: silenced while changed.
        edited = hands_on is not None and any(
            f.resource.site_key == o.resource.site_key
            and (f.webjob or "").lower() == (o.webjob or "").lower()
            and f.time >= o.time
            for o in stopped
            for f in files
        )
        weight = s.weight_job_stopped_or_deleted
        habit = ""
        if edited:
            habit = "; its files were written by hand while it was stopped"
        elif routine or restarted:
            weight *= s.routine_factor
            habit = (
                "; started again right after (a restart), which weighs less"
                if restarted
                else "; these jobs are routinely stopped so, which weighs less"
            )
        scorer.add(
            ReasonCode.JOB_STOPPED_OR_DELETED,
            weight,
            f"WebJobs stopped or deleted ({counts}): {listing(jobs_hit)}{habit}.",
        )
    elif hands_on is not None and (earlier := _stopped_before(ctx, done, files)):
        scorer.add(
            ReasonCode.JOB_STOPPED_OR_DELETED,
            s.weight_job_stopped_or_deleted,
            "WebJobs it stopped in an earlier scoring window, whose files it wrote by hand "
            f"while they were stopped: {listing(earlier)}.",
        )

    _runs(scorer, done)
    if development := _development(ctx, done, files):
        # What the burst did to production besides (an on-call run of a job) keeps its own
        # novelty when it is new to the principal: then only the edit is development.
        novel = any(
            not is_non_production(o.resource.site_key)
            and (
                not ctx.knows(Dimension.FAMILIES, o.family.value)
                or (
                    o.webjob
                    and not ctx.knows(Dimension.WEBJOBS, f"{o.resource.site_key}/{o.webjob}")
                )
            )
            for o in done
        )
        scorer.scale(
            _EDIT_REASONS if novel else _HANDS_ON_REASONS,
            s.non_production_factor,
            f"(By hand on {listing(development)}, non-production sites of apps it works on, "
            "from its usual networks in its usual hours, with nothing stopped or deleted: "
            "development, which weighs less.)",
        )
    sites_known = ctx.has_history and all(
        ctx.knows(Dimension.SITES, o.resource.site_key) for o in done
    )
    scorer.novelty(relevant, sites_known=sites_known)
    # A hands-on edit is told with the console logins it was made in: where the editor came
    # from, and, should it alert, part of what its quarantine holds.
    if hands_on is None:
        return scorer.finding(SPEC, relevant)
    at_console = {f.resource.site_key for f in files}
    logins = [o for o in observations if o.family is F.SCM_LOGIN]
    consoles = [o for o in logins if o.resource.site_key in at_console]
    return scorer.finding(SPEC, sorted([*relevant, *consoles], key=lambda o: o.time))


_HANDS_ON_REASONS = frozenset(
    {
        ReasonCode.NEW_WEBJOB,
        ReasonCode.NEW_OPERATION,
        ReasonCode.JOB_FILES_CHANGED,
        ReasonCode.LOGIN_THEN_JOB_FILES,
    }
)
"""What a person's hands-on edit of job files adds up to (see `_development`)."""
_EDIT_REASONS = frozenset({ReasonCode.JOB_FILES_CHANGED, ReasonCode.LOGIN_THEN_JOB_FILES})
"""The edit itself, when the burst also did something new to production (runs, say)."""


def _development(
    ctx: Context, done: Sequence[Observation], files: Sequence[Observation]
) -> list[str]:
    """The sites, when a person edited job files by hand only on non-production sites of
    the apps it works on (see `is_non_production`, `app_of`), from its usual networks in its
    usual hours, stopping and deleting nothing that day: a developer at the Kudu console of
    its dev or test site (a newcomer without history: from its peers' blocks, with their
    tools). Else empty: production, a stranger's app, a new network or hour, or a job
    silenced around the edit is not development."""
    if not files or ctx.principal.type is not PrincipalType.USER:
        return []
    silenced = (F.WEBJOB_STOP, F.WEBJOB_DELETE)
    # A job stopped or deleted in this burst, or earlier today (an earlier window), is one
    # silenced around the edit.
    if any(o.family in silenced for o in done) or any(
        ctx.baseline is not None and ctx.baseline.last_day(Dimension.FAMILIES, f.value) == ctx.today
        for f in silenced
    ):
        return []
    # The edited sites: running a production job in the same sitting is no edit of it.
    sites = {o.resource.site_key for o in files}
    if not all(is_non_production(key) for key in sites):
        return []
    if ctx.has_history:
        apps = ctx.known_apps()
        ours = all(ctx.knows(Dimension.SITES, key) or app_of(key) in apps for key in sites)
        # Its usual networks and hours; or, settling in, its peers' blocks and tools.
        development = ours and (ctx.familiar(done) or ctx.settling)
    else:
        # A newcomer has no apps yet: from its peers' blocks, with their tools, it is one
        # more developer at the console of a test site.
        development = ctx.ordinary_for_peers(done)
    return sorted({o.resource.name for o in files}) if development else []


def _runs(scorer: Scorer, done: Sequence[Observation]) -> None:
    ctx, s = scorer.ctx, scorer.ctx.settings
    runs = [o for o in done if o.family in (F.WEBJOB_RUN, F.WEBJOB_START)]
    if not runs:
        return
    per_hour: Counter[int] = Counter()
    for o in runs:
        per_hour[hour_number(o.time)] += o.count
    slot, busiest = max(per_hour.items(), key=lambda item: (item[1], item[0]))
    if ctx.baseline is not None and ctx.baseline.last_hour_slot == slot:
        busiest += ctx.baseline.current_hour_runs
    peak = ctx.baseline.peak_webjob_runs_per_hour(ctx.today) if ctx.baseline else 0
    if busiest >= s.min_rate_webjob_runs and busiest > s.rate_factor * peak:
        jobs = sorted({f"{o.resource.name}/{o.webjob}" for o in runs if o.webjob})
        history = f"its busiest hour before had {peak}" if peak else "it never ran jobs before"
        scorer.novel(
            ReasonCode.REPETITIVE_RUNS,
            s.weight_repetitive_runs,
            f"{busiest} job runs in one hour ({listing(jobs)}); {history}.",
        )
        _first_day_of_runs(scorer, runs, peak)
    _job_rates(scorer, runs)


def _first_day_of_runs(scorer: Scorer, runs: Sequence[Observation], peak: int) -> None:
    """NEW_OPERATION again for a burst of runs by a principal whose first runs were today.

    Its first window of runs taught its baseline that it runs jobs, so the later windows of
    the same burst no longer see a first time; its run history (no earlier day with a run)
    still does. Without this, a burst spread over windows weighs less than the same burst
    in one window.
    """
    ctx = scorer.ctx
    if (
        not ctx.has_history
        or peak
        or any(r.code is ReasonCode.NEW_OPERATION for r in scorer.reasons)
        or not any(o.family is F.WEBJOB_RUN for o in runs)
        or not ctx.knows(Dimension.FAMILIES, F.WEBJOB_RUN.value)
    ):
        return
    scorer.novel(
        ReasonCode.NEW_OPERATION,
        ctx.settings.weight_new_operation,
        "First day this principal was seen running WebJobs: it never ran one on an earlier "
        "day, only earlier today.",
    )


def _job_rates(scorer: Scorer, runs: Sequence[Observation]) -> None:
    """JOB_RUN_SPIKE: a job run far more often in an hour than in its own history (by anyone)."""
    ctx, s = scorer.ctx, scorer.ctx.settings
    per_job: Counter[tuple[str, str, str, int]] = Counter()
    for o in runs:
        if o.webjob:
            per_job[(o.resource.site_key, o.webjob, o.resource.name, hour_number(o.time))] += (
                o.count
            )
    spikes = []
    for (key, job, site, slot), here in sorted(per_job.items()):
        history = ctx.surroundings.job(key, job)
        if history is None or history.history_days(ctx.today) < s.min_history_days:
            continue  # a job without history of its own has no rate to exceed
        n = here + (history.current_hour_runs if history.last_hour_slot == slot else 0)
        peak = history.peak_webjob_runs_per_hour(ctx.today)
        if n >= s.min_rate_webjob_runs and n > s.rate_factor * peak:
            spikes.append(f"{site}/{job}: {n} runs in one hour, its busiest hour before had {peak}")
    if spikes:
        scorer.add(
            ReasonCode.JOB_RUN_SPIKE,
            s.weight_job_run_spike,
            f"Run far more often than the job's own history: {listing(sorted(set(spikes)))}.",
        )


def _stopped_before(
    ctx: Context, done: Sequence[Observation], files: Sequence[Observation]
) -> list[str]:
    """The jobs (site/job, with the time of the stop) whose files were written here after
    this principal stopped them in an earlier window (at most `login_attribution_minutes`
    before), and that nothing here started again before the write: silenced while changed,
    across the windows' edge."""
    within = timedelta(minutes=ctx.settings.login_attribution_minutes)
    out = set()
    for f in files:
        if not f.webjob:
            continue
        site = f.resource.site_key
        stopped = ctx.surroundings.stopped_by(site, f.webjob, ctx.principal.id, f.time, within)
        if stopped is None:
            continue
        restarted = any(
            o.family is F.WEBJOB_START
            and o.resource.site_key == site
            and (o.webjob or "").lower() == f.webjob
            and stopped <= o.time <= f.time
            for o in done
        )
        if not restarted:
            out.add(f"{f.resource.name}/{f.webjob} (stopped at {stopped:%H:%M} UTC)")
    return sorted(out)


def _hands_on(ctx: Context, files: Sequence[Observation]) -> str | None:
    """How job files were written in a hands-on Kudu/FTP session, not a deploy; else None.

    A person's own (Entra) login, or the site's publishing credentials used from an address
    block that nobody in the organisation has used: someone at a console outside it.
    This is `LOGIN_THEN_JOB_FILES`.
    """
    if not files or ctx.principal.unattributed:
        return None
    kind = ctx.principal.type
    if kind is PrincipalType.USER:
        how = "in an interactive Kudu session of a user (deployments write job files, not people)"
    elif kind is PrincipalType.PUBLISHING_USER:
        far = sorted(
            {
                o.source_ip
                for o in files
                if o.source_ip
                and not ctx.knows(Dimension.WIDE_NETWORKS, wide_network_of(o.source_ip))
                and not ctx.surroundings.organisation_knows(wide_network_of(o.source_ip), ctx.today)
                and not _deployed(ctx, o)
            }
        )
        if not far or _release(ctx, files, far):
            return None
        how = (
            f"right after a login with the site's publishing credentials from {listing(far)}, "
            "a block nobody in the organisation has used (no deployment, person, pipeline or "
            "identity)"
        )
    else:
        return None
    return how


def _deployed(ctx: Context, written: Observation) -> bool:
    """Whether job files written with a site's publishing credentials came with an automation
    identity's deployment of the site, from the agent that deployed it (its network, within
    `deployment_login_minutes`), not from a rented server: a release, not a console."""
    ip = written.source_ip or ""
    return hosting_provider(
        ip, ctx.settings.hosting_ranges
    ) is None and ctx.surroundings.deployed_from(
        written.resource.site_key,
        written.time,
        ip,
        timedelta(minutes=ctx.settings.deployment_login_minutes),
    )


def _release(ctx: Context, files: Sequence[Observation], far: Sequence[str]) -> bool:
    """Whether job files written with a site's publishing credentials from a new block are
    a release from a new agent: files of several of the site's existing jobs (whose files
    deployments wrote before) written at once, not from a rented server. A person at a
    console edits a job; a pipeline ships them all."""
    if any(hosting_provider(ip, ctx.settings.hosting_ranges) is not None for ip in far):
        return False
    jobs = {(o.resource.site_key, o.webjob) for o in files if o.webjob}
    around, family = ctx.surroundings, F.WEBJOB_FILE_CHANGE.value
    return len(jobs) >= 2 and all(
        job and around.job_does(site, job, family, ctx.today) for site, job in jobs
    )


def _jobs_new_to_site(
    scorer: Scorer, done: Sequence[Observation], released: set[tuple[str, str]]
) -> None:
    """NEW_JOB_ON_SITE: files of a job that the site, with a history of its own, never had.
    `released`: new jobs a deployment shipped with the site's existing ones."""
    ctx, s = scorer.ctx, scorer.ctx.settings
    around = ctx.surroundings
    new = sorted(
        {
            (o.resource.site_key, o.webjob, f"{o.resource.name}/{o.webjob}")
            for o in done
            if o.webjob
            and o.family is F.WEBJOB_FILE_CHANGE
            and is_creation(o)
            and around.site_days(o.resource.site_key, ctx.today) >= s.min_history_days
            and around.job_days(o.resource.site_key, o.webjob, ctx.today) == 0
        }
    )
    if not new:
        return
    names = listing([name for _, _, name in new])
    weight = s.weight_new_job_on_site
    message = f"A WebJob the site never had before: {names}."
    # The identity that deploys the site's jobs adding one more is its usual work.
    if all(
        ctx.knows(Dimension.SITES, key)
        and ctx.knows(Dimension.FAMILIES, F.WEBJOB_FILE_CHANGE.value)
        for key, _, _ in new
    ):
        weight *= s.routine_factor
        message += " It routinely deploys this site's job files, which weighs less."
    elif all((key, job) in released for key, job, _ in new):
        weight *= s.routine_factor
        message += (
            " Its files came with a deployment that also rewrote the site's existing jobs "
            "(a release shipping a new job), which weighs less."
        )
    scorer.add(ReasonCode.NEW_JOB_ON_SITE, weight, message)
