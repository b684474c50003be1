"""Anomalous App Service WebJob activity: new or changed jobs, and runs that do not fit."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from detectors.baseline import PrincipalBaseline, hour_number
from detectors.detections.spec import DetectionSpec, Finding, Technique
from detectors.evidence import Context, Scorer, listing, total
from detectors.model import Observation, OperationFamily, SourceTable, Status
from detectors.operations import FAMILY_ACTIVITIES
from detectors.reasons import ReasonCode
from detectors.settings import DetectionSettings

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
        Technique(id="T1053", name="Scheduled Task/Job"),
        Technique(id="T1505.003", name="Server Software Component: Web Shell"),
        Technique(id="T1648", name="Serverless Execution"),
        Technique(id="T1562", name="Impair Defenses"),
        Technique(id="T1078.004", name="Valid Accounts: Cloud Accounts"),
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
) -> Finding | None:
    """Score one principal's burst of WebJob activity; None when there is none."""
    relevant = [o for o in observations if o.family in SPEC.families]
    if not relevant:
        return None
    ctx = Context(
        principal=relevant[0].principal, observations=relevant, baseline=baseline, settings=settings
    )
    scorer = Scorer(ctx)
    s = settings
    scorer.no_history()
    done = [o for o in relevant if o.status is not Status.FAILED]

    jobs = sorted({f"{o.resource.name}/{o.webjob}" for o in done if o.webjob})
    if ctx.has_history:
        new_jobs = sorted(
            {
                f"{o.resource.name}/{o.webjob}"
                for o in done
                if o.webjob and not ctx.knows("webjobs", f"{o.resource.site_key}/{o.webjob}")
            }
        )
        if new_jobs:
            scorer.novel(
                ReasonCode.NEW_WEBJOB,
                s.weight_new_webjob,
                f"Worked on WebJob(s) it never touched before: {listing(new_jobs)}.",
            )
        new_families = sorted({o.family for o in done if not ctx.knows("families", o.family.value)})
        if new_families:
            scorer.novel(
                ReasonCode.NEW_OPERATION,
                s.weight_new_operation,
                "First time this principal was seen "
                f"{listing([FAMILY_ACTIVITIES[f] for f in new_families])}.",
            )

    files = [o for o in done if o.family is F.WEBJOB_FILE_CHANGE]
    if files:
        names = sorted({(o.detail or "").replace("\\", "/").rsplit("/", 1)[-1] for o in files})
        if not ctx.principal.unattributed:
            scorer.add(
                ReasonCode.JOB_FILES_CHANGED,
                s.weight_job_files_changed,
                f"Changed {total(files)} WebJob file(s) ({listing(names)}) of {listing(jobs)}.",
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
        scorer.add(
            ReasonCode.JOB_STOPPED_OR_DELETED,
            s.weight_job_stopped_or_deleted,
            f"WebJobs stopped or deleted ({counts}): {listing(jobs_hit)}.",
        )

    _runs(scorer, done)
    sites_known = ctx.has_history and all(ctx.knows("sites", o.resource.site_key) for o in done)
    scorer.novelty(relevant, sites_known=sites_known)
    return scorer.finding(SPEC, relevant)


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
