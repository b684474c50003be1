"""Suspicious App Service credential download: who took deployment credentials or secrets."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from detectors.baselines.baseline import (
    SENSITIVE_FAMILIES,
    Dimension,
    PrincipalBaseline,
    wide_network_of,
)
from detectors.baselines.surroundings import Surroundings
from detectors.detections.evidence import (
    Context,
    Scorer,
    is_probe,
    listing,
    located,
    probing_refusals,
    total,
)
from detectors.detections.spec import DetectionSpec, Finding, Technique
from detectors.model.hosting import hosting_provider
from detectors.model.observation import (
    ClientTool,
    Observation,
    OperationFamily,
    PrincipalType,
    SourceTable,
    Status,
    app_of,
    is_automation_id,
)
from detectors.model.operations import FAMILY_ACTIVITIES, takes_deployment_credentials
from detectors.model.reasons import ReasonCode
from detectors.settings.detection import DetectionSettings

F = OperationFamily

SPEC = DetectionSpec(
    id="appservice-credential-download",
    title="Suspicious App Service credential download",
    description=(
        "Unusual retrieval or change of App Service deployment credentials (publish profiles, "
        "publishing credentials), app secrets and function keys, or of the basic-auth policy "
        "that makes a stolen publish profile usable, judged against the principal's own history."
    ),
    tables=(SourceTable.AZURE_ACTIVITY, SourceTable.APP_SERVICE_AUDIT),
    families=frozenset(
        {
            F.CREDENTIAL_READ,
            F.CREDENTIAL_CHANGE,
            F.BASIC_AUTH_POLICY,
            F.FUNCTION_KEYS_READ,
            F.FUNCTION_KEYS_CHANGE,
            F.CONFIG_READ,
            F.CONFIG_CHANGE,
            F.SCM_LOGIN,
        }
    ),
    mitre=(
        Technique(
            id="T1552.001",
            name="Unsecured Credentials: Credentials In Files",
            tactics=("Credential Access",),
        ),
        Technique(
            id="T1528", name="Steal Application Access Token", tactics=("Credential Access",)
        ),
        Technique(
            id="T1098", name="Account Manipulation", tactics=("Persistence", "Privilege Escalation")
        ),
        Technique(
            id="T1078.004",
            name="Valid Accounts: Cloud Accounts",
            tactics=("Defense Evasion", "Persistence", "Privilege Escalation", "Initial Access"),
        ),
    ),
    severity_rules=(
        "high: credentials taken in a way that differs from the principal's history on several "
        "counts at once (new sites in a burst, a new scripting tool, a new network, odd hours), "
        "or a basic-auth re-enable or password reset by an unusual principal",
        "medium: a credential read or change with two or more strong novelties",
        "low: a credential read with one strong novelty, or a principal without history",
    ),
    benign_causes=(
        "`az webapp show` and `az functionapp show` download the publish profile to fill in "
        "the FTP URL: routine CLI use on one's own sites",
        "The portal's Configuration blade lists app settings and connection strings on every open",
        "CI/CD pipelines fetch publishing credentials or the publish profile before each deploy, "
        "from changing agent addresses",
        "Developers debugging, administrators in maintenance windows, inventory scripts",
    ),
    investigation=(
        "Confirm with the principal's owner (or the pipeline's owner) that the activity was "
        "theirs; for a user, check the sign-in logs for the same address and client.",
        "Review the Activity Log for the principal around the alert: what else did it do?",
        "If a publish profile or publishing credentials were taken, look in AppServiceAuditLogs "
        "for `$<site>` logins from new addresses and rotate the credentials (reset the publish "
        "profile, or better, disable basic authentication).",
        "If function keys were listed, rotate them and review the functions' recent invocations.",
        "Check the site's configuration and role assignments for changes made by the principal.",
    ),
)


def evaluate(
    observations: Sequence[Observation],
    baseline: PrincipalBaseline | None,
    settings: DetectionSettings,
    surroundings: Surroundings | None = None,
) -> Finding | None:
    """Score one principal's burst of activity; None when it holds nothing for this detection."""
    relevant = [o for o in observations if o.family in SPEC.families]
    if not relevant:
        return None
    principal = relevant[0].principal
    logins = [o for o in relevant if o.family is F.SCM_LOGIN]
    sensitive = [o for o in relevant if o.family in SENSITIVE_FAMILIES]
    basic_auth_logins = principal.type is PrincipalType.PUBLISHING_USER and logins
    if not sensitive and not basic_auth_logins:
        return None
    ctx = Context(
        principal=principal,
        observations=relevant,
        baseline=baseline,
        settings=settings,
        surroundings=surroundings,
    )
    scorer = Scorer(ctx)
    s = settings
    core = sensitive or logins
    ordinary = not ctx.has_history and ctx.ordinary_for_peers(core)
    team = 0 if ctx.has_history else _team(ctx, core)
    deployers = [] if ctx.has_history or team else pipeline_family(ctx, core)
    scorer.no_history(
        ordinary=ordinary,
        team=team,
        cadence=not ctx.has_history and on_its_cadence(ctx, core),
        family=len(deployers),
    )

    rotation = _team_rotation(ctx, core)
    # A person's sweep of function keys outside the portal: judged once, used twice.
    swept = _key_sweep(ctx, core)
    # What was actually taken: a refused read took nothing (failures are judged below).
    taken = [o for o in sensitive if o.status is not Status.FAILED]
    deployment = [o for o in taken if takes_deployment_credentials(o)]
    if deployment:
        scorer.add(
            ReasonCode.DEPLOYMENT_CREDENTIALS,
            s.weight_deployment_credentials,
            _deployment_message(deployment),
        )
    if secrets := _secrets(taken):
        scorer.add(
            ReasonCode.APP_SECRETS,
            s.weight_app_secrets,
            f"Read secret-bearing configuration: {listing(secrets)}.",
        )
    listed = [o for o in taken if o.family is F.FUNCTION_KEYS_READ]
    keys = sorted({o.resource.name for o in listed})
    if keys:
        # Each app's host keys and each function's keys and secrets are a set of their own:
        # a developer reads one or two, a dump reads them all.
        sets = _key_sets(listed)
        known = all(ctx.knows(Dimension.CREDENTIAL_SITES, o.resource.site_key) for o in listed)
        weight = s.weight_function_keys + s.weight_function_keys_extra * min(sets - 1, 5)
        message = (
            f"Listed {sets} set(s) of function keys or secrets (host keys, each function's "
            f"keys and secrets) of {len(keys)} app(s): {listing(keys)}"
        )
        if own := _own_function_keys(ctx, listed):
            weight *= own[0]
            message += f" ({own[1]}: weighs less)"
        elif rotation:
            weight *= s.peer_routine_factor
            message += (
                " (listed to replace them, a rotation those who work on these apps make "
                "routinely: weighs less)"
            )
        _routine_aware(
            scorer,
            ReasonCode.FUNCTION_KEYS,
            weight,
            F.FUNCTION_KEYS_READ,
            message,
            # A newcomer settling in lists its team's keys as its peers do.
            ordinary=ordinary or ctx.settling,
            team=team,
            # Listing keys is routine for the apps it lists them of, not for new ones; and a
            # person lists them app by app (the portal's blades): a sweep is never its
            # routine (see `_key_sweep`).
            on_known_sites=known
            and (principal.type is not PrincipalType.USER or len(keys) < s.burst_sites)
            and swept is None,
        )
    for family, code, weight in (
        (F.CREDENTIAL_CHANGE, ReasonCode.CREDENTIAL_CHANGE, s.weight_credential_change),
        (F.BASIC_AUTH_POLICY, ReasonCode.BASIC_AUTH_POLICY, s.weight_basic_auth_policy),
    ):
        sites = sorted({o.resource.name for o in taken if o.family is family})
        if sites:
            message = f"{FAMILY_ACTIVITIES[family].capitalize()} on {listing(sites)}"
            # A change of credentials or policy by a principal without history is never
            # ordinary: only reads weigh less for a new joiner.
            _routine_aware(scorer, code, weight, family, message, ordinary=False)

    dimension = Dimension.CREDENTIAL_SITES if sensitive else Dimension.SITES
    # A team's set of sites, or a pipeline's (its new identity), is no harvest.
    _site_evidence(
        scorer,
        core,
        dimension,
        ordinary=ordinary,
        team=team or len(deployers),
        rotation=rotation,
        swept=swept,
    )
    _new_operations(scorer, sensitive)
    _failures(scorer, sensitive)
    _rate(scorer, sensitive)
    # A lone novelty on known sites is the `az webapp show` or travelling reader; a first
    # change of credentials, keys or the basic-auth policy is never damped so, unless it falls
    # in the principal's weekly maintenance window.
    # A refusal or two took nothing (a missing role assignment); refusals that add up to
    # probing (FAILURES) keep their sites in the judgement.
    probing = any(r.code is ReasonCode.FAILURES for r in scorer.reasons)
    sites_known = (
        ctx.has_history
        and all(
            ctx.knows(dimension, o.resource.site_key)
            for o in core
            if probing or o.status is not Status.FAILED
        )
        and all(
            _in_maintenance_window(ctx, family)
            for family in {
                o.family
                for o in taken
                if o.family in _CHANGES and not ctx.knows(Dimension.FAMILIES, o.family.value)
            }
        )
    )
    scorer.novelty(core, sites_known=sites_known)
    if rotation:
        _team_rotation_tools(scorer, core)
    return scorer.finding(SPEC, relevant)


def _team_rotation_tools(scorer: Scorer, core: Sequence[Observation]) -> None:
    """A team's routine rotation made with the tools those who work on the rotated apps use
    on them: a first use of those tools is the rotation's, and weighs less again."""
    ctx = scorer.ctx
    rotated = _rotated_sites(core)
    tools = {
        o.tool.value for o in core if o.family in (F.FUNCTION_KEYS_READ, F.FUNCTION_KEYS_CHANGE)
    }
    if all(ctx.surroundings.site_uses(key, tool, ctx.today) for key in rotated for tool in tools):
        scorer.scale(
            {ReasonCode.NEW_SCRIPTING_TOOL, ReasonCode.NEW_TOOL},
            ctx.settings.peer_routine_factor,
            "(The tool those who work on these apps rotate their keys with: weighs less.)",
        )


def _deployment_message(deployment: Sequence[Observation]) -> str:
    sites = sorted({o.resource.name for o in deployment})
    return (
        f"Took deployment credentials (publish profile or publishing credentials) of "
        f"{len(sites)} site(s): {listing(sites)}."
    )


def _secrets(taken: Sequence[Observation]) -> list[str]:
    """The secret-bearing configuration read (not the deployment credentials)."""
    return sorted(
        {o.config_suffix for o in taken if o.config_suffix and not takes_deployment_credentials(o)}
    )


def restate(code: ReasonCode, observations: Sequence[Observation]) -> str | None:
    """A reason's message said of all these observations (a burst's), for the reasons that
    tell what was taken; None for the others, which are judged against a history."""
    taken = [
        o
        for o in observations
        if o.family in SENSITIVE_FAMILIES
        and o.status is not Status.FAILED
        and o.table is SourceTable.AZURE_ACTIVITY
    ]
    if code is ReasonCode.DEPLOYMENT_CREDENTIALS:
        deployment = [o for o in taken if takes_deployment_credentials(o)]
        return _deployment_message(deployment) if deployment else None
    if code is ReasonCode.APP_SECRETS:
        secrets = _secrets(taken)
        return f"Read secret-bearing configuration: {listing(secrets)}." if secrets else None
    return None


_CHANGES = frozenset({F.CREDENTIAL_CHANGE, F.FUNCTION_KEYS_CHANGE, F.BASIC_AUTH_POLICY})
_MAINTENANCE = (
    "in its weekly maintenance window (it changed credentials, keys or the basic-auth policy "
    "at this hour of the week before), which weighs less"
)


def _in_maintenance_window(ctx: Context, family: OperationFamily) -> bool:
    """Whether every change of this family in the burst fell in the principal's maintenance
    window, learned as hours of the week (see `PrincipalBaseline.change_slots`)."""
    changes = [o for o in ctx.observations if o.family is family and o.status is not Status.FAILED]
    return bool(changes) and all(ctx.in_maintenance_window(o.time) for o in changes)


def _routine_aware(
    scorer: Scorer,
    code: ReasonCode,
    weight: float,
    family: OperationFamily,
    message: str,
    *,
    ordinary: bool,
    team: int = 0,
    on_known_sites: bool = True,
) -> None:
    """A sensitive operation weighs less for a principal that does it routinely (on sites it
    knows: `on_known_sites`), for a principal without history that acts like its peers
    (`ordinary`) when they do it, or that does it on a team's set of sites (`team`: others
    take the credentials of every site it took)."""
    ctx = scorer.ctx
    factor = 1.0
    if ctx.knows(Dimension.FAMILIES, family.value) and on_known_sites:
        factor = ctx.settings.routine_factor
        message += ", which this principal does routinely"
    elif family in _CHANGES and _in_maintenance_window(ctx, family):
        factor = ctx.settings.routine_factor
        message += f", {_MAINTENANCE}"
    elif family in _CHANGES and (breadth := _operator_breadth(ctx, family)):
        factor = ctx.settings.peer_routine_factor
        message += (
            f", by a principal that works on {breadth} sites (an operator), with its own tools, "
            f"networks and hours: a change other {ctx.principal.type.value}s make routinely, "
            "which weighs less"
        )
    elif family in _CHANGES and team_routine(ctx, [family]):
        factor = ctx.settings.peer_routine_factor
        message += (
            ", which those who work on these sites do on them routinely (the team's routine: "
            "its SREs' rotation), by one that works on them, from its usual networks in its "
            "usual hours"
        )
    elif ordinary and ctx.peers_know(Dimension.FAMILIES, family.value):
        # A new joiner doing, from its peers' networks and tools, what its peers do.
        factor = ctx.settings.peer_routine_factor
        message += f", which other {ctx.principal.type.value}s do routinely"
    elif team:
        # A new member looking around its team's apps, as the portal's blades do.
        factor = ctx.settings.peer_routine_factor
        message += (
            f", apps of a team's set of sites ({team} other principal(s) work on all of them)"
        )
    scorer.add(code, weight * factor, message + ".")


def on_its_cadence(ctx: Context, core: Sequence[Observation]) -> bool:
    """Whether the burst repeats what the principal's history holds (every site, operation
    and tool, from its own address blocks or its peers'), with each change of credentials,
    keys or policy at the hour of the week or month it made such changes before: automation
    on a cadence longer than its history (a monthly rotation). A dormant identity used off
    its cadence, on other sites, with another tool or from elsewhere is not."""
    baseline = ctx.baseline
    done = [o for o in core if o.status is not Status.FAILED]
    changes = [o for o in done if o.family in _CHANGES]
    if baseline is None or not changes:
        return False
    return all(repeats_its_history(ctx, o) for o in done) and all(
        ctx.in_maintenance_window(o.time) for o in changes
    )


def repeats_its_history(ctx: Context, obs: Observation) -> bool:
    """Whether the principal's history holds this action's operation, tool and site (whose
    credentials it took or changed), from one of its own address blocks or its peers'."""
    return (
        ctx.knows(Dimension.FAMILIES, obs.family.value)
        and ctx.knows(Dimension.TOOLS, obs.tool.value)
        and ctx.knows(Dimension.CREDENTIAL_SITES, obs.resource.site_key)
        and (
            not located(obs)
            or ctx.knows(Dimension.WIDE_NETWORKS, wide_network_of(obs.source_ip or ""))
            or ctx.from_peers_block(obs) is True
        )
    )


def team_routine(ctx: Context, families: Sequence[OperationFamily]) -> bool:
    """Whether these operation families, done by this burst, are the routine of the sites
    it did them on: those who work on each site did them there recently (its team, its
    SREs), and the principal works on most of them (a site it knows, another environment of
    its app, a site in a resource group it works in), from its usual networks in its usual
    hours. A stranger to the sites, or anyone from elsewhere or at another hour, is not
    following the team's routine."""
    if not ctx.has_history:
        return False
    done = [o for o in ctx.observations if o.family in families and o.status is not Status.FAILED]
    if not done or not ctx.familiar(ctx.observations):
        return False
    apps, groups = ctx.known_apps(), _known_groups(ctx)
    around = ctx.surroundings
    if not all(around.site_does(o.resource.site_key, o.family.value, ctx.today) for o in done):
        return False
    sites = {o.resource.site_key for o in done}
    works = [
        key
        for key in sites
        if ctx.knows(Dimension.SITES, key) or app_of(key) in apps or _group_of(key) in groups
    ]
    # An SRE covering for the one who rotates these keys knows most of the apps, if not all.
    return len(works) * 2 >= len(sites)


def _rotated_sites(core: Sequence[Observation]) -> set[str]:
    """The sites whose function keys the burst changed."""
    return {
        o.resource.site_key
        for o in core
        if o.family is F.FUNCTION_KEYS_CHANGE and o.status is not Status.FAILED
    }


def _rotates_keys(core: Sequence[Observation]) -> bool:
    """Whether the burst changes the function keys of every app whose keys it lists: a
    rotation (judged as a change of keys), not a harvest. A rotation goes app by app, keys
    listed then changed: the one app listed after the burst's last change, and nothing done
    after it, is the rotation's next step, whose change may fall in the next window."""
    done = [o for o in core if o.status is not Status.FAILED]
    listed = {o.resource.site_key for o in done if o.family is F.FUNCTION_KEYS_READ}
    changed = _rotated_sites(core)
    if not listed or not changed:
        return False
    last_change = max(o.time for o in done if o.family is F.FUNCTION_KEYS_CHANGE)
    pending = listed - changed
    after = [o for o in done if o.time > last_change]
    return not pending or (
        len(pending) == 1
        and all(o.family is F.FUNCTION_KEYS_READ and o.resource.site_key in pending for o in after)
        and bool(after)
    )


def _team_rotation(ctx: Context, core: Sequence[Observation]) -> bool:
    """Whether the burst rotates function keys (`_rotates_keys`) as its team does: those
    changes are the sites' routine (`team_routine`), so listing keys to replace them is not
    harvesting them."""
    return _rotates_keys(core) and team_routine(ctx, [F.FUNCTION_KEYS_CHANGE])


def _operator_breadth(ctx: Context, family: OperationFamily) -> int:
    """How many sites' credentials the principal takes, when it works broadly (at least
    `broad_sites`: an operator, a lead) and makes a change its peers make routinely, with
    nothing about the burst new to it (tools, networks, hours); else 0. An administrator's
    maintenance before its weekly window is learned; a stolen identity brings its own tool,
    network or hour."""
    baseline, s = ctx.baseline, ctx.settings
    if (
        baseline is None
        or not ctx.has_history
        or not ctx.peers_know(Dimension.FAMILIES, family.value)
    ):
        return 0
    breadth = baseline.known_count(Dimension.CREDENTIAL_SITES, ctx.today, s.baseline_max_age_days)
    if breadth < s.broad_sites or sum(baseline.hours) < s.min_hour_history:
        return 0
    if not all(ctx.knows(Dimension.TOOLS, o.tool.value) for o in ctx.observations):
        return 0
    return breadth if ctx.familiar(ctx.observations) else 0


def _is_credential(obs: Observation) -> bool:
    """Deployment credentials or function keys: what lets someone act as the site."""
    return takes_deployment_credentials(obs) or obs.family is F.FUNCTION_KEYS_READ


def _site_evidence(
    scorer: Scorer,
    core: Sequence[Observation],
    dimension: Dimension,
    *,
    ordinary: bool,
    team: int,
    rotation: bool,
    swept: str | None,
) -> None:
    ctx, s = scorer.ctx, scorer.ctx.settings
    touched = sorted({o.resource.site_key for o in core if o.status is not Status.FAILED})
    # Sites whose credentials it took before; a principal that takes many roams across sites.
    breadth = (
        ctx.baseline.known_count(dimension, ctx.today, s.baseline_max_age_days)
        if ctx.baseline is not None and ctx.has_history
        else 0
    )
    if ctx.has_history:
        new = [key for key in touched if not ctx.knows(dimension, key)]
        # New sites worked on by the crowd of the sites it knows here: its team's (a prod site
        # after the test one), not a stranger's.
        teams = _teams_sites(ctx, [key for key in touched if key not in new], new)
        # The apps of the sites it knows, only needed (and read) when a site is new.
        apps = ctx.known_apps() if new else set()
        if new:
            names = listing([_site_name(key) for key in new])  # keys: sub/group/site[/slot]
            weight = s.weight_new_site + s.weight_new_site_extra * min(len(new) - 1, 5)
            message = (
                f"Took credentials of {len(new)} site(s) it never took credentials of before: "
                f"{names}."
                if dimension is Dimension.CREDENTIAL_SITES
                else f"Logged in to {len(new)} site(s) it never logged in to before: {names}."
            )
            groups = _known_groups(ctx)
            if all(_group_of(key) in groups for key in new):
                weight *= s.related_site_factor
                message += (
                    " Each sits in a resource group it already works in, so this weighs less."
                )
            elif all(app_of(key) in apps for key in new):
                weight *= s.related_site_factor
                message += (
                    " Each is another environment of an app it already works on (a release "
                    "from test to production), so this weighs less."
                )
            elif all(
                _group_of(key) in groups or key in teams or app_of(key) in apps for key in new
            ):
                weight *= s.related_site_factor
                message += (
                    " Each is worked on by those who work on the sites it knows here (its "
                    "peers by shared sites), so this weighs less."
                )
            if breadth >= s.broad_sites:
                weight *= s.broad_sites_factor
                message += (
                    f" It already works on {breadth} such sites (a lead, an operator), "
                    "so one more weighs less."
                )
            if rotation and set(new) <= _rotated_sites(core):
                # The sites of its team's routine rotation are new to one who covers for
                # the SRE that rotates them: they are the rotation's, not a harvest's.
                weight *= s.peer_routine_factor
                message += (
                    " Each is an app whose keys it rotated as its team routinely does, so "
                    "this weighs less."
                )
            scorer.novel(ReasonCode.NEW_SITE, weight, message)
        # A credential it never took before makes that site new for the burst too.
        fresh_family = {
            o.resource.site_key
            for o in core
            if o.status is not Status.FAILED and not ctx.knows(Dimension.FAMILIES, o.family.value)
        }
        # Its peers' sites are not what a harvest is made of; a credential it never took
        # before makes a site new for the burst, whoever works on it.
        new = sorted(
            {key for key in new if key not in teams and app_of(key) not in apps} | fresh_family
        )
    else:
        # Even a short history is a fact: what it took yesterday is not new today.
        new = [key for key in touched if not ctx.knows(dimension, key)]
    # A burst is about the credentials themselves: the portal lists app settings everywhere.
    taken = {
        o.resource.site_key for o in core if _is_credential(o) and o.status is not Status.FAILED
    }
    new = [key for key in new if key in taken]
    # For a principal that works broadly, half its sites being new is ordinary: it takes
    # a burst of sites that are all new to it.
    enough_new = (
        len(new) >= s.burst_sites if breadth >= s.broad_sites else len(new) * 2 >= len(taken)
    )
    if len(taken) >= s.burst_sites and enough_new and not rotation:
        # Browsing app after app in the portal's blades produces the same burst.
        portal = all(o.tool is ClientTool.PORTAL for o in core if _is_credential(o))
        weight = s.weight_site_burst * (s.known_sites_factor if portal else 1.0)
        message = (
            f"Took credentials of {len(taken)} sites in one burst, "
            f"{len(new)} of them new to it: a harvesting pattern"
            + (" (all through the portal, which weighs less)." if portal else ".")
        )
        # A new principal's sites are all new: only its peers tell whether it is odd.
        if team:
            # No one colleague takes the credentials of every site of a harvest.
            return
        if ordinary:
            weight *= s.peer_routine_factor
            message += " It has no history and acts like its peers, so this weighs less."
        scorer.add(ReasonCode.SITE_BURST, weight, message)
    elif swept is not None:
        # Known apps, but a person lists keys app by app, in the portal's blades.
        scorer.add(
            ReasonCode.SITE_BURST,
            s.weight_site_burst * s.known_sites_factor,
            f"Listed {swept} in one burst, outside the portal. A person lists them app by "
            "app, a set or two at a time; a sweep is a "
            "harvesting pattern, even of apps it knows (which weighs less).",
        )


def _key_sweep(ctx: Context, core: Sequence[Observation], *, refused: bool = False) -> str | None:
    """What a person's sweep of function keys outside the portal took, said for the
    analyst: the keys of `burst_sites` apps or more, or more than twice `own_app_key_sets`
    sets (every function's keys and secrets of an app: a dump), in one burst, without changing
    the keys of each (a rotation, judged as a change of keys); else None. A person reads
    keys app by app, a set or two at a time, in the portal's blades. With `refused`, the same
    of the listings that were refused: what the sweep tried to take."""
    if ctx.principal.type is not PrincipalType.USER:
        return None
    listed = [
        o
        for o in core
        if o.family is F.FUNCTION_KEYS_READ and (o.status is Status.FAILED) is refused
    ]
    if not listed or all(o.tool is ClientTool.PORTAL for o in listed) or _rotates_keys(core):
        return None
    apps, sets, s = sorted({o.resource.name for o in listed}), _key_sets(listed), ctx.settings
    if len(apps) >= s.burst_sites:
        return f"the function keys of {len(apps)} apps ({listing(apps)})"
    if sets > 2 * s.own_app_key_sets:
        return f"{sets} sets of function keys and secrets of {listing(apps)}"
    # Its first listing ever is a set or two of the function it works on, not a script
    # enumerating an app's keys and its functions' secrets.
    if sets >= s.own_app_key_sets and not ctx.knows(Dimension.FAMILIES, F.FUNCTION_KEYS_READ.value):
        return f"{sets} sets of function keys and secrets of {listing(apps)}, its first listing"
    return None


def _teams_sites(ctx: Context, known: Sequence[str], new: Sequence[str]) -> set[str]:
    """The new sites whose crowd is mostly its peers by shared sites: principals that also
    take the credentials of the known sites of this burst (`peer_site_share`)."""
    if not known or not new:
        return set()
    me = ctx.principal.id
    around = ctx.surroundings
    peers: set[str] = set()
    for key in known:
        peers |= around.crowd(key, ctx.today)
    peers.discard(me)
    related = set()
    for key in new:
        crowd = around.crowd(key, ctx.today) - {me}
        if len(crowd) >= ctx.settings.min_peer_site_crowd and len(crowd & peers) >= (
            ctx.settings.peer_site_share * len(crowd)
        ):
            related.add(key)
    return related


def pipeline_family(ctx: Context, core: Sequence[Observation]) -> list[str]:
    """For a service principal or managed identity without history: the automation
    identities that take the credentials of the sites this burst took, when every such site
    has one (a pipeline deploys it) or is another environment of an app whose site here has
    one (a release to production), and the burst comes from its peers' tools and not from
    a rented server. A pipeline's new identity (a new service connection, an agent pool's
    managed identity) does the old ones' steps on their sites; a new identity taking sites
    no pipeline deploys, or acting from a VPS, is not one of the family. Else empty."""
    if ctx.principal.type not in (PrincipalType.SERVICE_PRINCIPAL, PrincipalType.MANAGED_IDENTITY):
        return []
    taken = sorted(
        {o.resource.site_key for o in core if _is_credential(o) and o.status is not Status.FAILED}
    )
    if not taken or any(
        not ctx.peers_know(Dimension.TOOLS, o.tool.value)
        or (
            located(o)
            and hosting_provider(o.source_ip or "", ctx.settings.hosting_ranges) is not None
        )
        for o in core
    ):
        return []
    me = ctx.principal.id
    deployers = {
        key: {p for p in ctx.surroundings.crowd(key, ctx.today) if p != me and is_automation_id(p)}
        for key in taken
    }
    # A pipeline deploys an app through its environments: a production site its pipelines
    # release to too rarely to be remembered is theirs when they deploy its test site here.
    deployed_apps = {app_of(key) for key, who in deployers.items() if who}
    if any(not who and app_of(key) not in deployed_apps for key, who in deployers.items()):
        return []
    return sorted(set().union(*deployers.values()))


def _team(ctx: Context, core: Sequence[Observation]) -> int:
    """How many other principals take the credentials of every site this burst took them of
    (at least `burst_sites` sites, with tools its peers use, in hours the sites are worked on
    or from address blocks its peers use): a new team member looks around its team's sites,
    while a harvest spans sites whose credentials no one colleague takes."""
    taken = sorted(
        {o.resource.site_key for o in core if _is_credential(o) and o.status is not Status.FAILED}
    )
    if len(taken) < ctx.settings.burst_sites:
        return 0
    # A new member works with its team's tools, in the hours its team works on these sites
    # or from the organisation's own networks (an office in another time zone); a stranger
    # at 03:00 from elsewhere, or with a tool none of its peers use, is not one.
    around, share = ctx.surroundings, ctx.settings.unusual_hour_share
    if not all(
        ctx.peers_know(Dimension.TOOLS, o.tool.value)
        and (
            around.site_works_at(o.resource.site_key, o.time.hour, share)
            or ctx.from_peers_block(o) is True
        )
        for o in core
    ):
        return 0
    return len(ctx.surroundings.common_crowd(taken, ctx.today) - {ctx.principal.id})


def _group_of(site_key: str) -> str:
    """`subscription/group` of a site key (subscription/group/site[/slot])."""
    return "/".join(site_key.split("/")[:2])


def _known_groups(ctx: Context) -> set[str]:
    """Resource groups holding a site the principal still knows."""
    baseline = ctx.baseline
    if baseline is None:
        return set()
    return {_group_of(key) for key in baseline.sites if ctx.knows(Dimension.SITES, key)}


def _site_name(site_key: str) -> str:
    """`site` or `site/slot` from a site key (subscription/group/site[/slot])."""
    return "/".join(site_key.split("/")[2:])


def _new_operations(scorer: Scorer, sensitive: Sequence[Observation]) -> None:
    ctx = scorer.ctx
    if not ctx.has_history:
        return
    new = sorted(
        {
            o.family
            for o in sensitive
            if o.status is not Status.FAILED and not ctx.knows(Dimension.FAMILIES, o.family.value)
        }
    )
    if new:
        weight = ctx.settings.weight_new_operation
        message = (
            f"First time this principal was seen {listing([FAMILY_ACTIVITIES[f] for f in new])}."
        )
        # Changing credentials and keys is maintenance its peers do, or that it does in its
        # weekly window; taking them is not damped.
        if all(f in _CHANGES and _in_maintenance_window(ctx, f) for f in new):
            weight *= ctx.settings.routine_factor
            message += " It is " + _MAINTENANCE + "."
        elif all(f in _CHANGES and ctx.peers_know(Dimension.FAMILIES, f.value) for f in new):
            weight *= ctx.settings.peer_routine_factor
            message += f" Other {ctx.principal.type.value}s do this routinely: weighs less."
        elif any(f in _CHANGES for f in new) and team_routine(ctx, new):
            weight *= ctx.settings.peer_routine_factor
            message += (
                " Those who work on these sites do this on them routinely (the team's routine: "
                "its SREs' rotation), and it works on them, from its usual networks in its usual "
                "hours: weighs less."
            )
        elif new == [F.FUNCTION_KEYS_READ] and (
            own := _own_function_keys(
                ctx, [o for o in sensitive if o.family is F.FUNCTION_KEYS_READ]
            )
        ):
            weight *= own[0]
            message += f" {own[1][0].upper()}{own[1][1:]} (a developer testing its function): "
            message += "weighs less."
        scorer.novel(ReasonCode.NEW_OPERATION, weight, message)


def _key_sets(listed: Sequence[Observation]) -> int:
    """Sets of function keys listed: each app's host keys, each function's keys or secrets."""
    return len({(o.resource.site_key, o.detail) for o in listed})


def _own_function_keys(ctx: Context, listed: Sequence[Observation]) -> tuple[float, str] | None:
    """What listing these function keys weighs, and why, when a developer tests its own
    function: one set of an app whose credentials it takes; or up to `own_app_key_sets` sets
    of one app it works on (a site it knows, another environment of its app), listed in the
    portal's function and App keys blades, from its usual networks in its usual hours (less
    again when its peers list keys routinely). None for anything else: a dump spans apps or
    functions and uses a script, a stranger lists keys of apps it never worked on, from
    elsewhere."""
    taken = [o for o in listed if o.status is not Status.FAILED]
    if not ctx.has_history or not taken:
        return None
    s = ctx.settings
    sets, sites = _key_sets(taken), {o.resource.site_key for o in taken}
    if sets == 1 and all(ctx.knows(Dimension.CREDENTIAL_SITES, key) for key in sites):
        return s.known_sites_factor, "one set, of an app whose credentials it takes"
    if (
        len(sites) > 1
        or sets > s.own_app_key_sets
        or any(o.tool is not ClientTool.PORTAL for o in taken)
        or not ctx.familiar(ctx.observations)
    ):
        return None
    (key,) = sites
    if not (ctx.knows(Dimension.SITES, key) or app_of(key) in ctx.known_apps()):
        return None
    if ctx.peers_know(Dimension.FAMILIES, F.FUNCTION_KEYS_READ.value):
        return s.peer_routine_factor, (
            f"{sets} set(s) of one app it works on, in the portal, from its usual networks in "
            f"its usual hours, as other {ctx.principal.type.value}s list keys of their apps"
        )
    return s.known_sites_factor, (
        f"{sets} set(s) of one app it works on, in the portal, from its usual networks in its "
        "usual hours"
    )


def _failures(scorer: Scorer, sensitive: Sequence[Observation]) -> None:
    ctx, s = scorer.ctx, scorer.ctx.settings
    refused = [o for o in sensitive if o.status is Status.FAILED]
    # Probing is broad: 403s on a site or two are more likely a missing role assignment, and
    # 403s on its own apps' other environments (production) least privilege at work. A
    # script's sweep of function keys on apps it does not work on is probing however few the
    # apps: a person asks for a set or two, sees the 403 and asks for a role.
    if not refused:
        return
    own = ctx.own_apps(sensitive)
    failed = probing_refusals(refused, own)
    swept = None
    if not is_probe(refused, s, lambda: own):
        swept = _key_sweep(ctx, failed, refused=True) if failed else None
        if swept is None:
            return
    sites = sorted({o.resource.name for o in failed})
    attempts = total(failed)
    share = attempts / total(sensitive)
    baseline = ctx.baseline
    usual = baseline.failures / baseline.operations if baseline and ctx.has_history else 0.0
    if usual and share <= s.rate_factor * usual:
        return  # this principal fails this often anyway (missing roles, a flaky script)
    statuses: Counter[str] = Counter()
    for o in failed:
        statuses[o.http_status or "failed"] += o.count
    detail = ", ".join(f"{n} {status}" for status, n in sorted(statuses.items()))
    habit = f"; it usually fails {usual:.0%} of the time" if ctx.has_history else ""
    add = scorer.novel if ctx.has_history else scorer.add
    # Broader probing weighs more: each refused site past `burst_sites`, up to four.
    wider = min(max(len(sites) - s.burst_sites, 0), 4)
    add(
        ReasonCode.FAILURES,
        s.weight_failures + s.weight_failures_extra * wider,
        f"{attempts} failed credential operations ({detail}) on {len(sites)} sites{habit}"
        + (
            f" (besides {total(refused) - attempts} on other environments of its own apps)."
            if len(failed) < len(refused)
            else "."
        ),
    )
    if swept is not None and not any(r.code is ReasonCode.SITE_BURST for r in scorer.reasons):
        scorer.add(
            ReasonCode.SITE_BURST,
            s.weight_refused_key_sweep,
            f"Tried to list {swept}, outside the portal, of apps it does not work on, and was "
            "refused: a harvesting pattern that found no role to use. A person lists keys of "
            "its own apps, a set or two at a time.",
        )
    first_failure = min(o.time for o in failed)
    if any(o.status is Status.SUCCEEDED and o.time > first_failure for o in sensitive):
        add(
            ReasonCode.FAILURES_THEN_SUCCESS,
            s.weight_failures_then_success,
            "Succeeded after the failures: the probing found something it could read.",
        )


def _rate(scorer: Scorer, sensitive: Sequence[Observation]) -> None:
    ctx, s = scorer.ctx, scorer.ctx.settings
    if not ctx.has_history or ctx.baseline is None:
        return
    reads = total(
        o
        for o in sensitive
        if o.family in (F.CREDENTIAL_READ, F.FUNCTION_KEYS_READ) and o.status is not Status.FAILED
    )
    peak = ctx.baseline.peak_credential_reads(ctx.today)
    if reads >= s.min_rate_credential_reads and reads > s.rate_factor * peak:
        scorer.novel(
            ReasonCode.RATE_SPIKE,
            s.weight_rate_spike,
            f"{reads} credential reads in this burst; its busiest day before had {peak}.",
        )
