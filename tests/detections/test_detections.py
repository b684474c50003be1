"""Each detection against positive and negative fixtures in the real export format."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from detectors.settings.detection import DetectionSettings
from tests.rowkit import (
    CLI,
    CONFIG_LIST,
    PORTAL,
    POWERSHELL,
    PUBLISHXML,
    START,
    VSCODE,
    Actor,
    activity,
    file_change,
    login,
    site_id,
    workdays,
)

STOP_JOB = "MICROSOFT.WEB/SITES/CONTINUOUSWEBJOBS/STOP/ACTION"
START_JOB = "MICROSOFT.WEB/SITES/CONTINUOUSWEBJOBS/START/ACTION"
CRED = "appservice-credential-download"
WEBJOB = "appservice-webjob-activity"
AFTER = START + timedelta(days=20)  # a weekday, well after 14 learning days (2026-10-21)

JANE = Actor(caller="jane@contoso.com", app_id=VSCODE, ip="198.51.100.10", name="Jane Doe")
PIPELINE_OID = "3f2b1c4d-aaaa-4bbb-8ccc-123456789abc"


def jane_history(days: int = 20) -> list[dict]:
    """Jane works on app1 and app2 from the office, with VS Code and the portal."""
    rows = []
    for n, day in enumerate(workdays(START, days)):
        rows += activity(JANE, day, PUBLISHXML, site_id("app1"))
        portal = Actor(caller=JANE.caller, app_id=PORTAL, ip=JANE.ip, name=JANE.name)
        rows += activity(
            portal, day + timedelta(hours=2), CONFIG_LIST, site_id("app2") + "/config/appsettings"
        )
        if n % 3 == 0:
            rows += activity(
                portal, day + timedelta(hours=5), CONFIG_LIST, site_id("app1") + "/config/metadata"
            )
    return rows


def of(alerts, detection):
    return [a for a in alerts if a["detection"] == detection]


def codes(alert):
    return {r["code"] for r in alert["reasons"]}


# -- credential download: negatives ---------------------------------------------------------


def routine_cli_on_own_sites() -> list[dict]:
    cli = Actor(caller=JANE.caller, app_id=CLI, ip=JANE.ip, name=JANE.name)
    rows = jane_history(25)
    for day in workdays(START, 25, hour=14):
        rows += activity(cli, day, PUBLISHXML, site_id("app1"))  # az webapp show
    return rows


def test_routine_cli_use_on_own_sites_does_not_alert(run_rows):
    alerts, _ = run_rows(routine_cli_on_own_sites())
    assert of(alerts, CRED) == []


def test_portal_configuration_blade_bursts_on_known_sites_do_not_alert(run_rows):
    admin = Actor(caller="ops@contoso.com", app_id=PORTAL, ip="198.51.100.20", name="Ops Admin")
    rows = []
    for day in workdays(START, 25, hour=9):
        for site in ("app1", "app2", "app3"):
            for suffix in ("appsettings", "connectionstrings", "metadata", "azurestorageaccounts"):
                rows += activity(admin, day, CONFIG_LIST, site_id(site) + f"/config/{suffix}")
    alerts, _ = run_rows(rows)
    assert alerts == []


def pipeline_from_changing_agents() -> list[dict]:
    rows = []
    for n, day in enumerate(workdays(START, 28, hour=11)):
        agent = Actor(
            caller=PIPELINE_OID,
            app_id="77777777-1111-2222-3333-444444444444",
            ip=f"20.{40 + n}.{n * 7 % 250}.{10 + n}",
            kind="app",
        )
        rows += activity(agent, day, CONFIG_LIST, site_id("app1") + "/config/publishingcredentials")
        rows += activity(
            agent,
            day + timedelta(minutes=1),
            "MICROSOFT.WEB/SITES/DEPLOYMENTS/WRITE",
            site_id("app1") + "/deployments/x",
        )
    return rows


def test_pipeline_from_ever_changing_agent_addresses_does_not_alert(run_rows):
    alerts, _ = run_rows(pipeline_from_changing_agents())
    assert alerts == []


# -- credential download: positives ---------------------------------------------------------


def harvest_at_night() -> list[dict]:
    thief = Actor(caller=JANE.caller, app_id=POWERSHELL, ip="203.0.113.66", name=JANE.name)
    rows = jane_history()
    night = AFTER.replace(hour=3, minute=1)
    for n, site in enumerate(["app1", "pay", "billing", "hr", "crm", "intranet"]):
        rows += activity(thief, night + timedelta(minutes=n), PUBLISHXML, site_id(site))
    return rows


def test_stolen_identity_harvesting_many_sites_at_night_is_high(run_rows):
    alerts, _ = run_rows(harvest_at_night())
    [alert] = of(alerts, CRED)
    assert alert["severity"] == "high"
    assert {
        "NEW_SITE",
        "SITE_BURST",
        "NEW_SCRIPTING_TOOL",
        "NEW_NETWORK",
        "UNUSUAL_HOUR",
        "DEPLOYMENT_CREDENTIALS",
    } <= codes(alert)
    assert alert["principal"]["id"] == "jane@contoso.com"
    assert alert["principal"]["tool"] == "azurePowerShell"
    assert alert["sourceIps"] == ["203.0.113.66"]
    assert len(alert["resources"]) == 6
    assert alert["operations"] == [{"name": PUBLISHXML, "count": 6, "status": "succeeded"}]
    assert alert["history"]["known"] is True
    assert alert["history"]["sites"] == 2


def refused_reads(actor: Actor, t: datetime, sites: list[str]) -> list[dict]:
    """Refused (403) reads of the publishing credentials of `sites`, a minute apart."""
    rows = []
    for n, site in enumerate(sites):
        rows += activity(
            actor,
            t + timedelta(minutes=n),
            CONFIG_LIST,
            site_id(site) + "/config/publishingcredentials",
            status="Failure",
            substatus="Forbidden",
        )
    return rows


def refused_key_listings(
    actor: Actor, t: datetime, apps: tuple[str, ...], functions: tuple[str, ...]
) -> list[dict]:
    """Refused (403) listings, seconds apart, of each app's host keys and of the secrets of
    each of its `functions`: a set each."""
    rows = []
    for app in apps:
        children = ["/host/default", *(f"/functions/{name}" for name in functions)]
        for child in children:
            operation = KEYS if child.startswith("/host") else SECRETS
            rows += activity(
                actor, t, operation, site_id(app) + child, status="Failure", substatus="Forbidden"
            )
            t += timedelta(seconds=3)
    return rows


@pytest.mark.parametrize(
    ("apps", "functions", "tool"),
    [
        (("func1-prod",), ("orders", "refunds"), CLI),
        (("pay-func",), ("orders",), CLI),
        (("pay-func", "hr-func"), ("orders", "refunds"), PORTAL),
    ],
    ids=[
        "a sweep of its own app's production",
        "a set or two of another app",
        "in the portal's blades",
    ],
)
def test_refused_key_listings_that_are_no_sweep_of_strangers_apps_do_not_alert(
    run_rows, apps, functions, tool
):
    """Jane, whose CLI takes func1's profile daily, is refused function keys: a sweep of her
    own app's production (least privilege at work), a set or two of another team's app (a
    role she lacks), or two apps' keys in the portal's blades (a person, app by app). None is
    a sweep of apps she does not work on, and none alerts (`weight_refused_key_sweep`)."""
    me = replace(JANE, app_id=tool)
    rows = jane_history()
    for day in workdays(START, 20, hour=14):
        rows += activity(replace(JANE, app_id=CLI), day, PUBLISHXML, site_id("func1"))
    rows += refused_key_listings(me, AFTER.replace(hour=14, minute=20), apps, functions)
    alerts, _ = run_rows(rows)
    assert of(alerts, CRED) == []


def probing_then_success() -> list[dict]:
    prober = Actor(caller=JANE.caller, app_id=CLI, ip=JANE.ip, name=JANE.name)
    rows = jane_history()
    t = AFTER.replace(hour=11)
    rows += refused_reads(prober, t, ["pay", "billing", "hr", "crm"])
    rows += activity(
        prober,
        t + timedelta(minutes=9),
        CONFIG_LIST,
        site_id("app2") + "/config/publishingcredentials",
    )
    return rows


def test_failed_probing_followed_by_success_alerts(run_rows):
    alerts, _ = run_rows(probing_then_success())
    [alert] = of(alerts, CRED)
    assert {"FAILURES", "FAILURES_THEN_SUCCESS"} <= codes(alert)
    assert {
        "name": CONFIG_LIST + " (publishingcredentials)",
        "count": 4,
        "status": "failed",
    } in alert["operations"]


@pytest.mark.parametrize(
    ("foreign", "probing"),
    [((), False), (("pay", "billing", "hr", "crm"), True)],
    ids=["own-apps-production", "and-other-apps"],
)
def test_refusals_on_its_own_apps_other_environments_are_not_probing(run_rows, foreign, probing):
    """A developer without a production role is refused on its apps' production sites: least
    privilege at work. The same refusals beside refusals on other apps still probe."""
    me = Actor(caller=JANE.caller, app_id=CLI, ip=JANE.ip, name=JANE.name)
    rows = jane_history()
    t = AFTER.replace(hour=11)
    rows += refused_reads(me, t, ["app1-prod", "app2-prod", "app1-staging", "app2-uat", *foreign])
    rows += activity(me, t + timedelta(minutes=12), PUBLISHXML, site_id("app1"))
    alerts, _ = run_rows(rows, settings=DetectionSettings(alert_threshold=1))
    failures = [r for a in of(alerts, CRED) for r in a["reasons"] if r["code"] == "FAILURES"]
    assert bool(failures) is probing
    if probing:
        assert failures[0]["message"].startswith("4 failed credential operations")
        assert "besides 4 on other environments of its own apps" in failures[0]["message"]


def test_basic_auth_reenabled_then_profile_downloaded_alerts(run_rows):
    actor = Actor(caller=JANE.caller, app_id=CLI, ip="203.0.113.80", name=JANE.name)
    rows = jane_history()
    t = AFTER.replace(hour=12)
    rows += activity(
        actor,
        t,
        "MICROSOFT.WEB/SITES/BASICPUBLISHINGCREDENTIALSPOLICIES/SCM/WRITE",
        site_id("pay") + "/basicpublishingcredentialspolicies/scm",
    )
    rows += activity(actor, t + timedelta(minutes=2), PUBLISHXML, site_id("pay"))
    alerts, _ = run_rows(rows)
    [alert] = of(alerts, CRED)
    assert alert["severity"] in ("medium", "high")
    assert {"BASIC_AUTH_POLICY", "NEW_SITE", "DEPLOYMENT_CREDENTIALS"} <= codes(alert)


def test_principal_without_history_harvesting_is_scored_as_new(run_rows):
    stranger = Actor(
        caller="c0ffee00-aaaa-4bbb-8ccc-123456789abc", app_id=CLI, ip="203.0.113.9", kind="app"
    )
    rows = jane_history()
    for n, site in enumerate(["pay", "billing", "hr", "crm", "app1"]):
        rows += activity(stranger, AFTER + timedelta(minutes=n), PUBLISHXML, site_id(site))
    alerts, _ = run_rows(rows)
    [alert] = of(alerts, CRED)
    assert "NO_HISTORY" in codes(alert)
    assert "NEW_SITE" not in codes(alert)  # without history, novelty is not claimed
    assert alert["history"] == {"known": False}


def test_nothing_is_emitted_during_the_learning_days(run_rows):
    thief = Actor(caller="x@contoso.com", app_id=POWERSHELL, ip="203.0.113.66")
    rows = []
    for n, site in enumerate(["pay", "billing", "hr", "crm", "intranet"]):
        rows += activity(thief, START + timedelta(days=2, minutes=n), PUBLISHXML, site_id(site))
    rows += jane_history()
    alerts, stats = run_rows(rows)
    assert alerts == []
    assert stats.suppressed >= 1


# -- WebJobs ----------------------------------------------------------------------------------

JOB_PATH = "D:\\home\\site\\wwwroot\\App_Data\\jobs\\{kind}\\{name}\\{file}"


def job_files(
    site: str, at: datetime, job: str, files: tuple[str, ...], operation: str = "Modify"
) -> list[dict]:
    """File-audit rows of one WebJob's files (`job`: kind/name) written on a site at `at`."""
    kind, name = job.split("/")
    return [
        file_change(at, site_id(site), JOB_PATH.format(kind=kind, name=name, file=file), operation)
        for file in files
    ]


DEPLOYED = ("run.cmd", "settings.job")
PLANTED = ("run.ps1", "settings.job")


def pipeline_deploys(days: int = 20) -> list[dict]:
    """A pipeline deploys app1 (which ships WebJob 'cleanup') with its publish profile."""
    rows = []
    for n, day in enumerate(workdays(START, days, hour=16)):
        agent_ip = f"20.{40 + n}.{n * 3}.{20 + n}"
        rows.append(login("$app1", day, site_id("app1"), agent_ip, "WebDeploy"))
        rows += job_files("app1", day + timedelta(seconds=30), "triggered/cleanup", DEPLOYED)
    return rows


SCHEDULER_OID = "5e2b1c4d-aaaa-4bbb-8ccc-123456789abc"
SCHEDULER_APP = "99999999-2222-3333-4444-555555555555"


RUN_JOB = "MICROSOFT.WEB/SITES/TRIGGEREDWEBJOBS/RUN/ACTION"


def job_runs(
    actor: Actor, first: datetime, runs: int, every: timedelta, site: str, job: str
) -> list[dict]:
    """`runs` runs of triggered WebJob `job` on `site` by `actor`, one `every` from `first`."""
    resource = site_id(site) + f"/triggeredwebjobs/{job}"
    return [
        row for n in range(runs) for row in activity(actor, first + every * n, RUN_JOB, resource)
    ]


def scheduler_runs(days: int = 20) -> list[dict]:
    mi = Actor(caller=SCHEDULER_OID, app_id=SCHEDULER_APP, ip="", kind="mi")
    first = START + timedelta(minutes=1)
    return job_runs(mi, first, days * 24, timedelta(hours=1), "app1", "cleanup")


def test_pipeline_deploying_its_webjobs_does_not_alert(run_rows):
    alerts, _ = run_rows(pipeline_deploys(25))
    assert alerts == []


def test_scheduled_job_runs_by_their_usual_identity_do_not_alert(run_rows):
    alerts, _ = run_rows(scheduler_runs(20))
    assert alerts == []


def job_planted_after_basic_auth_login() -> list[dict]:
    rows = pipeline_deploys()
    t = AFTER.replace(hour=2)
    rows.append(login("$app1", t, site_id("app1"), "203.0.113.99", "Kudu"))
    rows += job_files("app1", t + timedelta(minutes=3), "continuous/msupdate", PLANTED, "Add")
    return rows


def test_new_job_planted_after_basic_auth_login_from_new_address_alerts(run_rows):
    alerts, _ = run_rows(job_planted_after_basic_auth_login())
    [alert] = of(alerts, WEBJOB)
    assert {"NEW_WEBJOB", "JOB_FILES_CHANGED"} <= codes(alert)
    assert alert["principal"]["id"] == "$app1"
    assert alert["principal"]["type"] == "publishingUser"
    assert "203.0.113.99" in alert["sourceIps"]
    assert any("AppServiceFileAuditLogs" in q["query"] for q in alert["investigation"]["queries"])


def test_job_files_changed_with_no_login_are_unattributed(run_rows):
    rows = jane_history()
    rows.append(
        file_change(
            AFTER.replace(hour=13),
            site_id("app2"),
            JOB_PATH.format(kind="triggered", name="x", file="run.cmd"),
            "Add",
        )
    )
    alerts, _ = run_rows(rows)
    [alert] = of(alerts, WEBJOB)
    assert "UNATTRIBUTED_JOB_CHANGE" in codes(alert)
    assert alert["principal"]["id"].startswith("unattributed:")


def repetitive_runs_by_a_new_runner() -> list[dict]:
    rows = jane_history()
    actor = Actor(caller=JANE.caller, app_id=CLI, ip=JANE.ip, name=JANE.name)
    rows += job_runs(actor, AFTER.replace(hour=11), 15, timedelta(seconds=90), "app2", "export")
    return rows


def test_repetitive_runs_by_someone_who_never_ran_jobs_alert(run_rows):
    alerts, _ = run_rows(repetitive_runs_by_a_new_runner())
    webjob = of(alerts, WEBJOB)
    assert webjob
    assert any("REPETITIVE_RUNS" in codes(a) for a in webjob)
    assert all("NEW_OPERATION" in codes(a) for a in webjob)


# -- surroundings, chains and bursts ----------------------------------------------------------


def test_restarting_an_existing_job_others_restart_does_not_alert(run_rows):
    """An administrator's first restart of a job that the jobs identity restarts routinely."""
    mi = Actor(caller="5e2b1c4d-aaaa-4bbb-8ccc-123456789abc", app_id=CLI, ip="20.71.3.4", kind="mi")
    admin = Actor(caller="ada@contoso.com", app_id=PORTAL, ip="198.51.100.20", name="Ada")
    job = site_id("app1") + "/continuouswebjobs/indexer"
    rows = jane_history()
    for n, day in enumerate(workdays(START, 20, hour=16)):
        rows += activity(mi, day, STOP_JOB, job)
        rows += activity(mi, day + timedelta(minutes=2), START_JOB, job)
        rows += activity(
            admin, day + timedelta(hours=1), CONFIG_LIST, site_id("app1") + "/config/appsettings"
        )
        if n % 5 == 0:  # another administrator restarts jobs now and then
            other = Actor(caller="bo@contoso.com", app_id=PORTAL, ip="198.51.100.21", name="Bo")
            rows += activity(
                other, day + timedelta(hours=2), STOP_JOB, site_id("app2") + "/continuouswebjobs/x"
            )
    t = AFTER.replace(hour=18)
    rows += activity(admin, t, STOP_JOB, job)
    rows += activity(admin, t + timedelta(minutes=3), START_JOB, job)
    alerts, _ = run_rows(rows)
    assert of(alerts, WEBJOB) == []


def profile_then_login_from_an_unknown_block() -> list[dict]:
    rows = jane_history() + pipeline_deploys()
    cli = Actor(caller=JANE.caller, app_id=CLI, ip=JANE.ip, name=JANE.name)
    t = AFTER.replace(hour=10)
    rows += activity(cli, t, PUBLISHXML, site_id("app1"))
    rows.append(login("$app1", t + timedelta(minutes=25), site_id("app1"), "203.0.113.77", "FTP"))
    return rows


def test_a_login_an_alert_told_does_not_make_its_block_the_organisations(run_rows):
    """The `$app1` login from 203.0.113.77 after Jane's download alerted, in Jane's alert.
    It teaches neither `$app1` nor the deployments that the block is ordinary: two days
    later, `$app2` logging in from another server of the same block (203.0.0.0/16) after
    Jane took app2's profile is chained again."""
    rows = profile_then_login_from_an_unknown_block()
    cli = Actor(caller=JANE.caller, app_id=CLI, ip=JANE.ip, name=JANE.name)
    t = AFTER.replace(hour=10) + timedelta(days=2)
    rows += activity(cli, t, PUBLISHXML, site_id("app2"))
    rows.append(login("$app2", t + timedelta(minutes=25), site_id("app2"), "203.0.7.20", "FTP"))
    alerts, _ = run_rows(rows)
    chained = [a for a in of(alerts, CRED) if "DOWNLOAD_THEN_LOGIN" in codes(a)]
    assert [a["sourceIps"][-1] for a in chained] == ["203.0.113.77", "203.0.7.20"]


def test_a_login_continues_the_odd_download_not_a_routine_release_after_it(run_rows):
    """At 01:00 Jane's identity takes app1's profile from a block abroad, at an hour she
    never works; at 01:20 the release pipeline takes it, as it does every night; at 01:26
    `$app1` logs in from a rented server. The login continues Jane's odd download, not the
    pipeline's routine one: `DOWNLOAD_THEN_LOGIN` is told in Jane's alert, and the pipeline
    does not alert."""
    rows = jane_history()
    for n, day in enumerate(workdays(START, 20, hour=1)):
        agent = Actor(caller=PIPELINE_OID, app_id=CLI, ip=f"20.40.{n}.10", kind="app")
        rows += activity(agent, day + timedelta(minutes=20), PUBLISHXML, site_id("app1"))
    t = AFTER.replace(hour=1)
    rows += activity(replace(JANE, app_id=CLI, ip="203.0.113.45"), t, PUBLISHXML, site_id("app1"))
    agent = Actor(caller=PIPELINE_OID, app_id=CLI, ip="20.40.99.10", kind="app")
    rows += activity(agent, t + timedelta(minutes=20), PUBLISHXML, site_id("app1"))
    rows.append(login("$app1", t + timedelta(minutes=26), site_id("app1"), "45.77.1.9", "FTP"))
    alerts, _ = run_rows(rows)
    chained = [a for a in of(alerts, CRED) if "DOWNLOAD_THEN_LOGIN" in codes(a)]
    assert [a["principal"]["id"] for a in chained] == [JANE.caller]
    assert not [a for a in alerts if a["principal"]["id"] == PIPELINE_OID]


def test_profile_download_then_site_login_from_an_unknown_block_is_one_alert(run_rows):
    alerts, _ = run_rows(profile_then_login_from_an_unknown_block())
    [alert] = of(alerts, CRED)
    assert alert["principal"]["id"] == JANE.caller
    assert "DOWNLOAD_THEN_LOGIN" in codes(alert)
    assert "203.0.113.77" in alert["sourceIps"]
    assert not [a for a in alerts if a["principal"]["id"] == "$app1"]


def test_using_ones_own_profile_from_a_known_network_is_no_chain(run_rows):
    rows = jane_history() + pipeline_deploys()
    cli = Actor(caller=JANE.caller, app_id=CLI, ip=JANE.ip, name=JANE.name)
    t = AFTER.replace(hour=10)
    rows += activity(cli, t, PUBLISHXML, site_id("app1"))
    rows.append(login("$app1", t + timedelta(minutes=5), site_id("app1"), JANE.ip, "WebDeploy"))
    alerts, _ = run_rows(rows)
    assert alerts == []


def test_a_long_running_pattern_updates_one_alert_instead_of_repeating(run_rows):
    rows = jane_history()
    actor = Actor(caller=JANE.caller, app_id=CLI, ip="203.0.113.50", name=JANE.name)
    start = AFTER.replace(hour=11)
    # One run every 4 minutes for an hour: four windows.
    rows += job_runs(actor, start, 16, timedelta(minutes=4), "app2", "export")
    alerts, _ = run_rows(rows)
    webjob = of(alerts, WEBJOB)
    assert webjob
    assert len({a["burst"]["id"] for a in webjob}) == 1
    assert [a["burst"]["sequence"] for a in webjob] == list(range(1, len(webjob) + 1))
    assert webjob[0]["burst"]["id"] == webjob[0]["id"]


# -- evidence that separates routine from odd --------------------------------------------------


LEAD = Actor(caller="lee@contoso.com", app_id=CLI, ip="198.51.100.30", name="Lee")
LEAD_SITES = [f"team{n}" for n in range(14)]


def lead_history(days: int = 20) -> list[dict]:
    """Lee, a lead, takes the publish profiles of three of fourteen sites each working day."""
    rows = []
    for n, day in enumerate(workdays(START, days)):
        for k in range(3):
            site = LEAD_SITES[(3 * n + k) % len(LEAD_SITES)]
            rows += activity(LEAD, day + timedelta(minutes=10 * k), PUBLISHXML, site_id(site))
    return rows


def test_a_lead_who_works_on_many_sites_taking_one_more_does_not_alert(run_rows):
    """Leads and operators roam across sites: one more new site is not a harvest."""
    lead, sites = LEAD, LEAD_SITES
    rows = lead_history()
    t = AFTER.replace(hour=11)
    # Four sites, two of them another team's: half new, which is a burst for most.
    for n, site in enumerate((sites[0], sites[1], "orders-api", "orders-worker")):
        group = "rg-orders" if site.startswith("orders") else "rg-web"
        rows += activity(lead, t + timedelta(minutes=n), PUBLISHXML, site_id(site, group=group))
    alerts, _ = run_rows(rows)
    assert of(alerts, CRED) == []


def test_a_new_site_of_someone_on_few_sites_still_counts(run_rows):
    rows = jane_history()
    cli = Actor(caller=JANE.caller, app_id=CLI, ip="203.0.113.61", name=JANE.name)
    rows += activity(cli, AFTER.replace(hour=11), PUBLISHXML, site_id("payroll", group="rg-hr"))
    alerts, _ = run_rows(rows)
    [alert] = of(alerts, CRED)
    reasons = {r["code"]: r for r in alert["reasons"]}
    assert reasons["NEW_SITE"]["weight"] == 15
    assert "weighs less" not in reasons["NEW_SITE"]["message"]


def test_a_deploy_identity_first_rewriting_existing_job_files_does_not_alert(run_rows):
    """A rarely deployed site's publishing credentials rewrite its existing job in a deploy."""
    rows = pipeline_deploys()
    agent_ip = "20.40.0.20"  # the agents' block
    for n, day in enumerate(workdays(START, 4, hour=9)):
        rows.append(login("$app3", day, site_id("app3"), f"20.4{n}.1.9", "Kudu"))
    t = AFTER.replace(hour=12)
    rows.append(login("$app3", t, site_id("app3"), agent_ip, "Kudu"))
    rows += job_files("app3", t + timedelta(seconds=40), "triggered/report", DEPLOYED)
    alerts, _ = run_rows(rows)
    assert of(alerts, WEBJOB) == []


@pytest.mark.parametrize("with_existing", [True, False], ids=["a release", "a job alone"])
def test_a_new_job_shipped_with_the_sites_existing_jobs_is_a_release_not_a_plant(
    run_rows, with_existing
):
    """The pipeline's deployment adds a continuous job while it rewrites the site's existing
    one, and the runner identity starts it: a release. The same new job written alone, from
    the same agent block, is still a job nobody shipped."""
    rows = pipeline_deploys() + scheduler_runs()
    t = AFTER.replace(hour=16, minute=30)
    rows.append(login("$app1", t, site_id("app1"), "20.45.15.25", "WebDeploy"))  # an agent's
    at = t + timedelta(seconds=30)
    rows += job_files("app1", at, "continuous/event-consumer", DEPLOYED, "Add")
    if with_existing:
        rows += job_files("app1", at, "triggered/cleanup", DEPLOYED)
    runner = Actor(caller=SCHEDULER_OID, app_id=SCHEDULER_APP, ip="", kind="mi")
    job = site_id("app1") + "/continuouswebjobs/event-consumer"
    rows += activity(runner, t + timedelta(minutes=2), START_JOB, job)
    alerts, _ = run_rows(rows)
    found = {code for a in of(alerts, WEBJOB) for code in codes(a)}
    if with_existing:
        assert of(alerts, WEBJOB) == [], [a["reasons"] for a in alerts]
    else:
        assert {"NEW_JOB_ON_SITE", "JOB_CREATED_THEN_RUN"} <= found


def test_existing_job_files_first_rewritten_by_a_deploy_identity_are_its_peers_work(
    run_rows,
):
    """$app3 only ever logged in (an agent polling Kudu) until a release rewrote the site's
    existing job: what other deploy identities do routinely, not a hands-on change."""
    rows = []
    cleanup = JOB_PATH.format(kind="triggered", name="cleanup", file="run.cmd")
    for n, day in enumerate(workdays(START, 15, hour=9)):
        rows.append(login("$app1", day, site_id("app1"), f"20.40.{n}.9", "WebDeploy"))
        rows.append(file_change(day + timedelta(seconds=30), site_id("app1"), cleanup))
        rows.append(login("$app3", day, site_id("app3"), f"20.40.{n}.19", "Kudu"))
    t = AFTER.replace(hour=12)
    rows.append(login("$app3", t, site_id("app3"), "20.40.0.20", "Kudu"))
    path = JOB_PATH.format(kind="triggered", name="report", file="run.cmd")
    rows.append(file_change(t + timedelta(seconds=40), site_id("app3"), path))
    # Low enough to show $app3's finding, high enough to keep $app1's deploys from raising
    # alerts (what raises an alert teaches its peers nothing).
    alerts, _ = run_rows(rows, settings=DetectionSettings(alert_threshold=20))
    [alert] = [a for a in of(alerts, WEBJOB) if a["principal"]["id"] == "$app3"]
    files = next(r for r in alert["reasons"] if r["code"] == "JOB_FILES_CHANGED")
    assert files["weight"] == 6, alert["reasons"]
    assert "deployments rewrite them routinely" in files["message"]


def test_a_new_joiner_listing_one_apps_keys_like_its_peers_does_not_alert(run_rows):
    rows = jane_history()
    keys = "MICROSOFT.WEB/SITES/HOST/LISTKEYS/ACTION"
    for day in workdays(START, 20, hour=15):
        rows += activity(JANE, day, keys, site_id("func1") + "/host/default")
    newcomer = Actor(caller="neo@contoso.com", app_id=VSCODE, ip="198.51.100.12", name="Neo")
    t = AFTER.replace(hour=9)
    rows += activity(newcomer, t, keys, site_id("func1") + "/host/default")
    rows += activity(newcomer, t + timedelta(minutes=2), PUBLISHXML, site_id("app1"))
    alerts, _ = run_rows(rows)
    assert of(alerts, CRED) == []


BASIC_AUTH_SCM = "MICROSOFT.WEB/SITES/BASICPUBLISHINGCREDENTIALSPOLICIES/SCM/WRITE"
SCM = "/basicPublishingCredentialsPolicies/scm"
NEWPASSWORD = "MICROSOFT.WEB/SITES/NEWPASSWORD/ACTION"


@pytest.mark.parametrize(("hour", "weight"), [(10, 10), (3, 25)], ids=["in its hours", "at 03:00"])
def test_an_operators_first_policy_change_like_its_peers_weighs_less_only_when_familiar(
    run_rows, hour, weight
):
    """Sam takes the credentials of fourteen sites every morning (and of one again in the
    afternoon); Bo changes basic-auth policies routinely. Sam's first policy change, with
    its tool, network and hours, is an operator's maintenance; at 03:00 it is not."""
    sam = Actor(caller="sam@contoso.com", app_id=CLI, ip="198.51.100.30", name="Sam")
    bo = Actor(caller="bo@contoso.com", app_id=CLI, ip="198.51.100.21", name="Bo")
    rows = []
    for day in workdays(START, 20):
        for n in range(14):
            rows += activity(sam, day + timedelta(minutes=n), PUBLISHXML, site_id(f"site-{n}"))
        rows += activity(sam, day + timedelta(hours=4), PUBLISHXML, site_id("site-3"))
        rows += activity(bo, day + timedelta(hours=1), BASIC_AUTH_SCM, site_id("app1") + SCM)
    at = AFTER.replace(hour=hour, minute=30)
    rows += activity(sam, at, BASIC_AUTH_SCM, site_id("site-3") + SCM)
    # Low enough to show Sam's finding, high enough that Bo's routine changes raise none.
    alerts, _ = run_rows(rows, settings=DetectionSettings(alert_threshold=15))
    [alert] = [a for a in of(alerts, CRED) if a["principal"]["id"] == sam.caller]
    policy = next(r for r in alert["reasons"] if r["code"] == "BASIC_AUTH_POLICY")
    assert policy["weight"] == weight
    assert ("an operator" in policy["message"]) is (weight == 10)


@pytest.mark.parametrize("minutes", [2, 20], ids=["same window", "a later window"])
def test_a_password_reset_then_the_new_profile_taken_is_a_chain(run_rows, minutes):
    """Other users reset passwords routinely, and Jane takes app1's profile every day; a
    reset followed by taking the new profile is the profile made Jane's alone."""
    bo = Actor(caller="bo@contoso.com", app_id=CLI, ip="198.51.100.21", name="Bo")
    rows = jane_history()
    for day in workdays(START, 20, hour=13):
        rows += activity(bo, day, NEWPASSWORD, site_id("app2"))
    t = AFTER.replace(hour=10, minute=5)
    rows += activity(JANE, t, NEWPASSWORD, site_id("app1"))
    rows += activity(JANE, t + timedelta(minutes=minutes), PUBLISHXML, site_id("app1"))
    alerts, _ = run_rows(rows)
    [alert] = [a for a in of(alerts, CRED) if a["principal"]["id"] == JANE.caller]
    chain = next(r for r in alert["reasons"] if r["code"] == "RESET_THEN_DOWNLOAD")
    assert chain["weight"] == 20
    assert f"{minutes} min after resetting its publishing password" in chain["message"]


def test_a_rotation_alone_is_no_chain(run_rows):
    bo = Actor(caller="bo@contoso.com", app_id=CLI, ip="198.51.100.21", name="Bo")
    rows = jane_history()
    for day in workdays(START, 20, hour=13):
        rows += activity(bo, day, NEWPASSWORD, site_id("app2"))
    rows += activity(JANE, AFTER.replace(hour=10, minute=5), NEWPASSWORD, site_id("app1"))
    alerts, _ = run_rows(rows, settings=DetectionSettings(alert_threshold=1))
    assert "RESET_THEN_DOWNLOAD" not in {c for a in of(alerts, CRED) for c in codes(a)}


def straddling_probe(hour: int) -> list[dict]:
    """Jane's history; then nine refusals in the 20 s before `hour`:00, three more and a read
    of her own site after it, two scoring windows."""
    rows = jane_history()
    t = AFTER.replace(hour=hour - 1, minute=59, second=40)
    for n in range(12):
        at = t + timedelta(seconds=2 * n + (8 if n >= 9 else 0))
        site = site_id(f"locked-{n}") + "/config/publishingcredentials"
        rows += activity(JANE, at, CONFIG_LIST, site, status="Failure", substatus="Forbidden")
    return rows + activity(JANE, t + timedelta(seconds=40), PUBLISHXML, site_id("app1"))


def test_a_probe_straddling_two_scoring_windows_is_judged_whole(run_rows):
    """Around 03:00: neither window is an alert alone; the probe is. (Refusals past
    `burst_sites` weigh nothing extra here, so that the first window stays below an alert.)"""
    alerts, _ = run_rows(straddling_probe(3), settings=DetectionSettings(weight_failures_extra=0))
    [alert] = of(alerts, CRED)
    assert {"FAILURES", "DEPLOYMENT_CREDENTIALS"} <= codes(alert)
    assert alert["burst"]["firstSeen"].startswith("2026-10-21T02:59")
    assert (alert["burst"]["id"], alert["burst"]["sequence"]) == (alert["id"], 1)


def test_a_success_after_a_probe_in_the_window_before_is_failures_then_success(run_rows):
    """Around 11:00, in Jane's usual hours, with her tool and from her address: the read is
    what the probe found, though no one window holds both."""
    alerts, _ = run_rows(straddling_probe(11))
    [alert] = of(alerts, CRED)
    assert {"FAILURES", "FAILURES_THEN_SUCCESS", "DEPLOYMENT_CREDENTIALS"} <= codes(alert)
    assert alert["burst"]["firstSeen"].startswith("2026-10-21T10:59")


def admin_with_weekly_maintenance(ada: Actor) -> list[dict]:
    """Ada reviews settings on working days and resets a profile on Wednesdays at 18:00."""
    portal = Actor(caller=ada.caller, app_id=PORTAL, ip=ada.ip, name=ada.name)
    rows = []
    for n, day in enumerate(workdays(START, 20, hour=11)):
        site = ("app1", "app2", "app3")[n % 3]
        rows += activity(portal, day, CONFIG_LIST, site_id(site) + "/config/appsettings")
        if day.weekday() == 2:  # Wednesday
            evening = day.replace(hour=18, minute=5)
            rows += activity(ada, evening, NEWPASSWORD, site_id(site))
    return rows


def admin_changes(ada: Actor, t: datetime) -> list[dict]:
    """Basic-auth SCM policy writes on app1 and app2, then a profile reset on app3."""
    rows = []
    for n, site in enumerate(("app1", "app2")):
        rows += activity(
            ada,
            t + timedelta(minutes=n),
            BASIC_AUTH_SCM,
            site_id(site) + "/basicpublishingcredentialspolicies/scm",
        )
    return rows + activity(ada, t + timedelta(minutes=5), NEWPASSWORD, site_id("app3"))


def test_a_first_basic_auth_change_in_an_admins_weekly_window_does_not_alert(run_rows):
    ada = Actor(caller="ada@contoso.com", app_id=CLI, ip="198.51.100.20", name="Ada")
    rows = admin_with_weekly_maintenance(ada)
    t = AFTER.replace(hour=18, minute=20)  # a Wednesday, in the usual hour
    assert t.weekday() == 2
    rows += admin_changes(ada, t)
    alerts, _ = run_rows(rows)
    assert of(alerts, CRED) == []


def test_the_same_change_outside_the_admins_weekly_window_alerts(run_rows):
    ada = Actor(caller="ada@contoso.com", app_id=CLI, ip="198.51.100.20", name="Ada")
    rows = admin_with_weekly_maintenance(ada)
    t = (AFTER + timedelta(days=1)).replace(hour=13, minute=20)  # Thursday afternoon
    rows += admin_changes(ada, t)
    alerts, _ = run_rows(rows)
    [alert] = of(alerts, CRED)
    assert {"BASIC_AUTH_POLICY", "NEW_OPERATION"} <= codes(alert)
    assert all("maintenance window" not in r["message"] for r in alert["reasons"])


@pytest.mark.parametrize(
    ("t", "damped"),
    [(AFTER.replace(hour=18, minute=20), True), (AFTER.replace(hour=13, minute=20), False)],
    ids=["in-its-window", "outside-it"],
)
def test_a_new_tool_for_a_first_change_in_an_admins_weekly_window_is_a_lone_novelty(
    run_rows, t, damped
):
    """A first change keeps a lone novelty from being damped on known sites, unless it falls
    in the principal's maintenance window: an admin trying Azure PowerShell for its chores."""
    ada = Actor(caller="ada@contoso.com", app_id=CLI, ip="198.51.100.20", name="Ada")
    rows = admin_with_weekly_maintenance(ada)
    rows += admin_changes(replace(ada, app_id=POWERSHELL), t)
    alerts, _ = run_rows(rows, settings=DetectionSettings(alert_threshold=1))
    [tool] = [
        r for a in of(alerts, CRED) for r in a["reasons"] if r["code"] == "NEW_SCRIPTING_TOOL"
    ]
    assert ("on sites it knows" in tool["message"]) is damped


def team_at_work(days: int = 20) -> list[dict]:
    """Two colleagues take the publish profiles of their team's four sites every day."""
    rows = []
    for name, ip in (("kim", "198.51.100.41"), ("lou", "198.51.100.42")):
        dev = Actor(caller=f"{name}@contoso.com", app_id=CLI, ip=ip, name=name.title())
        for day in workdays(START, days):
            for n, site in enumerate(("team-a", "team-b", "team-c", "team-d")):
                rows += activity(dev, day + timedelta(minutes=n), PUBLISHXML, site_id(site))
    return rows


@pytest.mark.parametrize(
    ("site", "weight", "routine"),
    [("app1", 6, True), ("app3", 12, False)],
    ids=["a site whose credentials it takes", "a site new to it"],
)
def test_a_profile_used_from_where_it_was_taken_adds_less_on_the_downloaders_own_site(
    run_rows, site, weight, routine
):
    """A traveller using the profile of their own site from the hotel: the network's novelty
    already counted in the download, damped as that was; on a site new to the downloader it
    is not the profile's ordinary use."""
    rows = jane_history() + pipeline_deploys()
    hotel = "203.0.113.77"
    cli = Actor(caller=JANE.caller, app_id=CLI, ip=hotel, name=JANE.name)
    t = AFTER.replace(hour=10)
    rows += activity(cli, t, PUBLISHXML, site_id(site))
    rows.append(login(f"${site}", t + timedelta(minutes=2), site_id(site), hotel, "FTP"))
    alerts, _ = run_rows(rows, settings=DetectionSettings(alert_threshold=1))
    [chain] = [
        r for a in of(alerts, CRED) for r in a["reasons"] if r["code"] == "DOWNLOAD_THEN_LOGIN"
    ]
    assert chain["weight"] == weight
    assert ("credentials routinely" in chain["message"]) is routine


def test_a_new_member_from_the_organisations_network_at_another_offices_hours_weighs_less(
    run_rows,
):
    """The team works at 10:00; a newcomer in an office eight hours ahead looks around the
    team's sites at 02:00 from a block colleagues use (and a refusal on one of them: a role
    not yet granted)."""
    office = "198.51.100.99"  # the team's block, 198.51.0.0/16
    newcomer = Actor(caller="neo@contoso.com", app_id=CLI, ip=office, name="Neo")
    rows = team_at_work()
    t = AFTER.replace(hour=2, minute=30)
    for n, site in enumerate(("team-a", "team-b", "team-c", "team-d")):
        rows += activity(newcomer, t + timedelta(minutes=n), PUBLISHXML, site_id(site))
    rows += activity(
        newcomer,
        t + timedelta(minutes=5),
        CONFIG_LIST,
        site_id("team-d") + "/config/appsettings",
        status="Failure",
        substatus="Forbidden",
    )
    alerts, _ = run_rows(rows)
    assert of(alerts, CRED) == [], [a["reasons"] for a in alerts]


@pytest.mark.parametrize(
    ("refused", "damped"),
    [(("app9",), True), (("app6", "app7", "app8", "app9"), False)],
    ids=["a refusal on one site", "refusals that add up to probing"],
)
def test_a_lone_new_network_on_known_sites_is_damped_despite_a_refusal_but_not_probing(
    run_rows, refused, damped
):
    """A refused read took nothing (a role not granted); refusals across sites are probing,
    and their sites keep the burst off the sites it knows."""
    rows = jane_history()
    away = Actor(caller=JANE.caller, app_id=VSCODE, ip="203.0.113.40", name=JANE.name)
    t = AFTER.replace(hour=10)
    rows += activity(away, t, PUBLISHXML, site_id("app1"))
    for n, site in enumerate(refused):
        rows += activity(
            away,
            t + timedelta(minutes=1 + n),
            CONFIG_LIST,
            site_id(site) + "/config/connectionstrings",
            status="Failure",
            substatus="Forbidden",
        )
    alerts, _ = run_rows(rows, settings=DetectionSettings(alert_threshold=1))
    [network] = [r for a in of(alerts, CRED) for r in a["reasons"] if r["code"] == "NEW_NETWORK"]
    assert ("on sites it knows" in network["message"]) is damped


def test_a_new_member_taking_exactly_the_sites_a_colleague_covers_weighs_less(run_rows):
    newcomer = Actor(caller="neo@contoso.com", app_id=CLI, ip="203.0.113.12", name="Neo")
    rows = team_at_work()
    t = AFTER.replace(hour=10, minute=30)  # with the team's tool, in the team's hours
    for n, site in enumerate(("team-a", "team-b", "team-c", "team-d")):
        rows += activity(newcomer, t + timedelta(minutes=n), PUBLISHXML, site_id(site))
    alerts, _ = run_rows(rows)
    assert of(alerts, CRED) == [], [a["reasons"] for a in alerts]


def test_a_new_principal_taking_sites_no_colleague_covers_still_alerts(run_rows):
    newcomer = Actor(caller="neo@contoso.com", app_id=CLI, ip="203.0.113.12", name="Neo")
    rows = team_at_work() + jane_history()
    for n, site in enumerate(("team-a", "team-b", "app1", "app2")):
        rows += activity(newcomer, AFTER + timedelta(minutes=n), PUBLISHXML, site_id(site))
    alerts, _ = run_rows(rows)
    [alert] = of(alerts, CRED)
    burst = next(r for r in alert["reasons"] if r["code"] == "SITE_BURST")
    assert burst["weight"] == 25


def release_history(days: int = 20) -> list[dict]:
    """Kim and Lou work on shop-test and storefront; a pipeline deploys shop-test only."""
    rows = []
    for name, ip in (("kim", "198.51.100.41"), ("lou", "198.51.100.42")):
        dev = Actor(caller=f"{name}@contoso.com", app_id=CLI, ip=ip, name=name.title())
        for day in workdays(START, days):
            rows += activity(dev, day, PUBLISHXML, site_id("shop-test", group="rg-shop-test"))
            rows += activity(
                dev, day + timedelta(minutes=5), PUBLISHXML, site_id("storefront", group="rg-shop")
            )
    rows += jane_history(days)  # Jane works on app1 and app2 elsewhere
    pipeline = Actor(caller=PIPELINE_OID, app_id=CLI, ip="20.40.1.10", kind="app")
    for day in workdays(START, days, hour=15):
        rows += activity(
            pipeline,
            day,
            CONFIG_LIST,
            site_id("shop-test", group="rg-shop-test") + "/config/publishingcredentials",
        )
    return rows


def first_release(rows: list[dict], prod: str) -> list[dict]:
    """The pipeline releases test and a production site, from an agent block new to it."""
    pipeline = Actor(caller=PIPELINE_OID, app_id=CLI, ip="52.10.1.10", kind="app")
    t = AFTER.replace(hour=15)
    for n, site in enumerate((site_id("shop-test", group="rg-shop-test"), prod)):
        rows += activity(
            pipeline, t + timedelta(minutes=n), CONFIG_LIST, site + "/config/publishingcredentials"
        )
    return rows


def test_a_new_site_its_peers_by_shared_sites_work_on_weighs_less(run_rows):
    alerts, _ = run_rows(first_release(release_history(), site_id("storefront", group="rg-shop")))
    [alert] = of(alerts, CRED)
    new_site = next(r for r in alert["reasons"] if r["code"] == "NEW_SITE")
    assert new_site["weight"] == 7.5
    assert "peers by shared sites" in new_site["message"]


def test_another_environment_of_an_app_it_deploys_weighs_less(run_rows):
    """The pipeline's first release to shop-prod, a site nobody else works on either: the
    production environment of the app whose test site it deploys every day."""
    prod = site_id("shop-prod", group="rg-shop-prod")
    alerts, _ = run_rows(first_release(release_history(), prod))
    [alert] = of(alerts, CRED)
    new_site = next(r for r in alert["reasons"] if r["code"] == "NEW_SITE")
    assert new_site["weight"] == 7.5
    assert "another environment of an app it already works on" in new_site["message"]


def test_a_new_site_of_strangers_weighs_fully(run_rows):
    alerts, _ = run_rows(first_release(release_history(), site_id("app1")))
    [alert] = of(alerts, CRED)
    new_site = next(r for r in alert["reasons"] if r["code"] == "NEW_SITE")
    assert new_site["weight"] == 15


def test_listing_keys_routinely_does_not_make_new_apps_keys_routine(run_rows):
    keys = "MICROSOFT.WEB/SITES/HOST/LISTKEYS/ACTION"
    rows = jane_history()
    for day in workdays(START, 20, hour=15):
        rows += activity(JANE, day, keys, site_id("func1") + "/host/default")
    t = AFTER.replace(hour=11)
    for n, app in enumerate(("func1", "func2", "func3")):
        rows += activity(JANE, t + timedelta(minutes=n), keys, site_id(app) + "/host/default")
    alerts, _ = run_rows(rows)
    [alert] = of(alerts, CRED)
    listed = next(r for r in alert["reasons"] if r["code"] == "FUNCTION_KEYS")
    assert listed["weight"] == 25
    assert "routinely" not in listed["message"]


def test_dumping_every_key_of_one_app_weighs_more_than_reading_one(run_rows):
    """Host keys and each function's secrets are sets of their own: a developer reads one,
    a dump reads them all."""
    host = "MICROSOFT.WEB/SITES/HOST/LISTKEYS/ACTION"
    secrets = "MICROSOFT.WEB/SITES/FUNCTIONS/LISTSECRETS/ACTION"
    rows = jane_history()
    t = AFTER.replace(hour=11)
    rows += activity(JANE, t, host, site_id("func1") + "/host/default")
    for n, function in enumerate(("orders", "refunds", "Refunds", "payouts")):
        at = t + timedelta(minutes=1 + n)
        rows += activity(JANE, at, secrets, site_id("func1") + f"/functions/{function}")
    alerts, _ = run_rows(rows)
    [alert] = of(alerts, CRED)
    listed = next(r for r in alert["reasons"] if r["code"] == "FUNCTION_KEYS")
    assert listed["weight"] == 15 + 3 * 5  # host keys and three functions (names ignore case)
    assert "4 set(s)" in listed["message"]


@pytest.mark.parametrize(
    ("children", "listed", "first"),
    [
        (("/functions/orders",), 7.5, 10),
        (("/functions/orders", "/host/default"), 10, 10),
        (
            ("/functions/orders", "/host/default", "/functions/refunds", "/functions/payouts"),
            30,
            20,
        ),
    ],
    ids=["one-set", "two-sets", "four-sets"],
)
def test_one_functions_key_of_an_app_it_deploys_weighs_less_than_a_first_dump(
    run_rows, children, listed, first
):
    """Jane deploys func1; reading one function's key to test it is not dumping the app,
    even the first time she lists keys. Its host keys as well (the portal's App keys blade)
    are a second set, still a developer at work in the portal from her usual network in her
    usual hours; four sets are more than testing a function needs (`own_app_key_sets`)."""
    rows = jane_history()
    for day in workdays(START, 20, hour=14):
        rows += activity(JANE, day, PUBLISHXML, site_id("func1"))
    keys = "MICROSOFT.WEB/SITES/FUNCTIONS/LISTKEYS/ACTION"
    portal = replace(JANE, app_id=PORTAL)
    for n, child in enumerate(children):
        at = AFTER.replace(hour=11, minute=n)
        rows += activity(portal, at, keys, site_id("func1") + child)
    alerts, _ = run_rows(rows, settings=DetectionSettings(alert_threshold=1))
    [alert] = [a for a in of(alerts, CRED) if "FUNCTION_KEYS" in codes(a)]
    weights = {r["code"]: r["weight"] for r in alert["reasons"]}
    assert (weights["FUNCTION_KEYS"], weights["NEW_OPERATION"]) == (listed, first)
    assert (alert["score"] < DetectionSettings().alert_threshold) is (len(children) <= 3)


def test_a_first_credential_reset_is_never_damped_as_a_lone_novelty(run_rows):
    """Its peers' scripting tool at an odd hour: two novelties, even on a site it knows."""
    bo = Actor(caller="bo@contoso.com", app_id=POWERSHELL, ip="198.51.100.21", name="Bo")
    rows = jane_history()
    for day in workdays(START, 20, hour=13):
        rows += activity(bo, day, PUBLISHXML, site_id("app2"))
    shell = Actor(caller=JANE.caller, app_id=POWERSHELL, ip=JANE.ip, name=JANE.name)
    rows += activity(shell, AFTER.replace(hour=22), NEWPASSWORD, site_id("app1"))
    alerts, _ = run_rows(rows)
    [alert] = of(alerts, CRED)
    weights = {r["code"]: r["weight"] for r in alert["reasons"]}
    assert weights["NEW_SCRIPTING_TOOL"] == 8  # its peers use it: 20 x 0.4, not halved again
    assert weights["UNUSUAL_HOUR"] == 10


@pytest.mark.parametrize(("hour", "unusual"), [(9, False), (16, False), (6, True), (21, True)])
def test_an_hour_next_to_the_principals_working_hours_is_not_unusual(run_rows, hour, unusual):
    """Jane works at 10:00, 12:00 and 15:00 UTC: an hour early or late is her day shifted (or
    daylight saving time moving her UTC hours); dawn and night are not."""
    rows = jane_history()
    rows += activity(JANE, AFTER.replace(hour=hour, minute=30), PUBLISHXML, site_id("pay"))
    alerts, _ = run_rows(rows, settings=DetectionSettings(alert_threshold=1))
    [alert] = [a for a in of(alerts, CRED) if a["resources"][0]["site"] == "pay"]
    assert ("UNUSUAL_HOUR" in codes(alert)) is unusual


def team_on_dev_and_prod(days: int = 20) -> list[dict]:
    """Jane deploys orders-api to test and production with VS Code; the pipeline ships the
    apps' WebJob 'cleanup' to both, so the job has a history of its own on each."""
    rows = jane_history(days)
    for n, day in enumerate(workdays(START, days)):
        for site in ("orders-api-test", "orders-api-prod"):
            rows += activity(JANE, day + timedelta(minutes=1), PUBLISHXML, site_id(site))
            agent_ip = f"20.{40 + n}.{n * 3}.{20 + n}"
            at = day.replace(hour=16)
            rows.append(login(f"${site}", at, site_id(site), agent_ip, "WebDeploy"))
            rows += job_files(site, at + timedelta(seconds=30), "triggered/cleanup", DEPLOYED)
    return rows


def kudu_edit(site: str, at: datetime, address: str = JANE.ip) -> list[dict]:
    """Jane at the Kudu console of `site`, editing the existing job's script and settings."""
    rows = [login(JANE.caller, at, site_id(site), address)]
    rows += job_files(site, at + timedelta(minutes=2), "triggered/cleanup", DEPLOYED)
    return rows


@pytest.mark.parametrize("stop_minutes", [2, 45], ids=["just before", "long before"])
def test_a_job_stopped_in_the_window_before_its_hand_edit_was_silenced_while_changed(
    run_rows, stop_minutes
):
    """Jane stops orders-api-test's continuous job in the portal, then at 11:01 edits its
    files at the Kudu console and starts it again: the stop fell in the scoring window before
    the edit, and still counts as the job silenced while changed (`JOB_STOPPED_OR_DELETED`,
    and no development). A stop longer ago than `login_attribution_minutes` does not."""
    rows = team_on_dev_and_prod()
    at = AFTER.replace(hour=11, minute=1)
    job = site_id("orders-api-test") + "/continuouswebjobs/cleanup"
    portal = replace(JANE, app_id=PORTAL)
    rows += activity(portal, at - timedelta(minutes=stop_minutes), STOP_JOB, job)
    rows.append(login(JANE.caller, at, site_id("orders-api-test"), JANE.ip))
    rows += job_files("orders-api-test", at + timedelta(minutes=1), "continuous/cleanup", DEPLOYED)
    rows += activity(portal, at + timedelta(minutes=3), START_JOB, job)
    alerts, _ = run_rows(rows, settings=DetectionSettings(alert_threshold=1))
    [edit] = [a for a in janes_edits(alerts) if "JOB_FILES_CHANGED" in codes(a)]
    earlier = [r for r in edit["reasons"] if "an earlier scoring window" in r["message"]]
    if stop_minutes < DetectionSettings().login_attribution_minutes:
        assert [r["code"] for r in earlier] == ["JOB_STOPPED_OR_DELETED"], edit["reasons"]
        assert "(stopped at 10:59 UTC)" in earlier[0]["message"]
        assert not any("development" in r["message"] for r in edit["reasons"])
    else:
        assert not earlier


def test_a_developer_editing_a_job_by_hand_on_its_test_site_is_development(run_rows):
    """Jane's first Kudu edit of her test site's job, from the office in her hours: her
    development, not a planted change (`non_production_factor`)."""
    rows = team_on_dev_and_prod() + kudu_edit("orders-api-test", AFTER.replace(hour=11))
    alerts, _ = run_rows(rows, settings=DetectionSettings(alert_threshold=1))
    [alert] = janes_edits(alerts)
    assert {"JOB_FILES_CHANGED", "LOGIN_THEN_JOB_FILES"} <= codes(alert)
    assert alert["score"] < DetectionSettings().alert_threshold, alert["reasons"]
    hands_on = [r for r in alert["reasons"] if r["code"] != "NEW_TOOL"]  # Kudu: lone, known sites
    assert all("development" in r["message"] for r in hands_on), alert["reasons"]
    full, _ = run_rows(rows, settings=DetectionSettings(alert_threshold=1, non_production_factor=1))
    [undamped] = janes_edits(full)
    assert undamped["score"] >= DetectionSettings().alert_threshold


@pytest.mark.parametrize("overrun", [30, 0], ids=["one sitting", "hour by hour"])
def test_a_kudu_session_that_runs_past_the_hour_is_one_sitting(run_rows, overrun):
    """Jane at her test site's Kudu console from 16:50 (an hour next to hers) to 17:04 (an
    hour she never works in): the edit falls in two scoring windows, but work that runs
    over the hour is still in her hours (`hour_overrun_minutes`), so both parts are
    development and nothing alerts, as the first part alone would not. Judged hour by hour
    (the setting at 0), the part after 17:00 is an edit at an unusual hour and alerts."""
    rows = team_on_dev_and_prod()
    at = AFTER.replace(hour=16, minute=50)
    rows += kudu_edit("orders-api-test", at)
    rows += job_files(
        "orders-api-test", at + timedelta(minutes=14), "triggered/cleanup", ("run.py",)
    )
    alerts, _ = run_rows(rows, settings=DetectionSettings(hour_overrun_minutes=overrun))
    if overrun:
        assert janes_edits(alerts) == []
    else:
        [alert] = janes_edits(alerts)
        assert "UNUSUAL_HOUR" in codes(alert), alert["reasons"]


def test_a_test_sites_edit_beside_a_production_jobs_run_is_still_development(run_rows):
    """On call, Jane runs production's job 'cleanup' (as she does every day) in the same
    sitting as her Kudu edit of the test site's: the run is no edit of production, so the
    edit is still development and nothing alerts. The run keeps its own weight (any novelty
    of production stays undamped). With the factor at 1 the same sitting alerts."""
    rows = team_on_dev_and_prod()
    for day in workdays(START, 20, hour=11):
        rows += job_runs(JANE, day, 1, timedelta(0), "orders-api-prod", "cleanup")
    at = AFTER.replace(hour=11)
    rows += kudu_edit("orders-api-test", at)
    rows += job_runs(JANE, at + timedelta(minutes=4), 1, timedelta(0), "orders-api-prod", "cleanup")
    alerts, _ = run_rows(rows)
    assert janes_edits(alerts) == []
    full, _ = run_rows(rows, settings=DetectionSettings(non_production_factor=1))
    [alert] = janes_edits(full)
    assert "LOGIN_THEN_JOB_FILES" in codes(alert)


def janes_edits(alerts: list[dict]) -> list[dict]:
    """Jane's WebJob alerts (her hands-on edits)."""
    return [a for a in of(alerts, WEBJOB) if a["principal"]["name"] in (JANE.name, JANE.caller)]


ROTATION = Actor(
    caller="7a1e0c4d-aaaa-4bbb-8ccc-123456789abc", app_id=CLI, ip="20.105.35.156", kind="app"
)
ROTATED = ("app1", "app2", "app3", "app4")


def monthly_rotation(day: datetime, actor: Actor = ROTATION) -> list[dict]:
    """The rotation's run: each site's publishing password reset, then its new profile."""
    rows = []
    for n, site in enumerate(ROTATED):
        at = day + timedelta(minutes=2 * n)
        rows += activity(actor, at, NEWPASSWORD, site_id(site))
        rows += activity(actor, at + timedelta(seconds=40), PUBLISHXML, site_id(site))
    return rows


def test_a_monthly_rotation_back_on_its_day_is_not_a_new_principal(run_rows):
    """Automation that resets and takes the profiles of the same sites on the 3rd of each
    month at 02:10 has one earlier day on record: it is on its cadence, not new."""
    rows = jane_history()
    rows += monthly_rotation(datetime(2026, 10, 3, 2, 10, tzinfo=UTC))
    rows += monthly_rotation(datetime(2026, 11, 3, 2, 10, tzinfo=UTC))
    alerts, _ = run_rows(rows, settings=DetectionSettings(alert_threshold=1))
    [alert] = [a for a in of(alerts, CRED) if a["principal"]["id"] == ROTATION.caller]
    assert alert["score"] < DetectionSettings().alert_threshold, alert["reasons"]
    reasons = {r["code"]: r["message"] for r in alert["reasons"]}
    assert "long cadence" in reasons["NO_HISTORY"]
    assert "on its cadence" in reasons["RESET_THEN_DOWNLOAD"]


SRE_APPS = ("func-orders", "func-billing", "func-search")
HOST_KEYS = "MICROSOFT.WEB/SITES/HOST/LISTKEYS/ACTION"
SECRETS = "MICROSOFT.WEB/SITES/FUNCTIONS/LISTSECRETS/ACTION"
HOST_KEY_WRITE = "MICROSOFT.WEB/SITES/HOST/FUNCTIONKEYS/WRITE"
SAM = Actor(caller="sam@contoso.com", app_id=CLI, ip="198.51.100.40", name="Sam")
KIM = Actor(caller="kim@contoso.com", app_id=CLI, ip="198.51.100.41", name="Kim")


def rotation(actor: Actor, at: datetime, apps: tuple[str, ...] = SRE_APPS) -> list[dict]:
    """An SRE's rotation of the apps' host keys: list them, then write a new one."""
    rows = []
    for n, app in enumerate(apps):
        t = at + timedelta(minutes=2 * n)
        rows += activity(actor, t, HOST_KEYS, site_id(app) + "/host/default")
        rows += activity(
            actor, t + timedelta(seconds=30), HOST_KEY_WRITE, site_id(app) + "/host/default"
        )
    return rows


def sres_at_work(days: int = 20) -> list[dict]:
    """Sam rotates the apps' host keys every Monday and Thursday; both SREs deploy the
    apps every working day from the office, and Kim never rotated a key."""
    rows = []
    for day in workdays(START, days):
        if day.weekday() in (0, 3):
            rows += rotation(SAM, day.replace(hour=14))
        for app in SRE_APPS:
            rows += activity(KIM, day + timedelta(minutes=1), PUBLISHXML, site_id(app))
            rows += activity(SAM, day + timedelta(minutes=2), PUBLISHXML, site_id(app))
    return rows


@pytest.mark.parametrize(
    "at",
    [AFTER.replace(hour=11), AFTER.replace(hour=10, minute=55, second=50)],
    ids=["in one window", "its last change in the next window"],
)
def test_an_sres_first_rotation_of_the_keys_its_team_rotates_is_the_teams_routine(run_rows, at):
    """Kim rotating the keys Sam rotates twice a week, on the apps she works on, from her
    usual network in her hours, follows the team's routine: no alert, also when the last
    app's new key is written in the next scoring window (its keys, listed last, are the
    rotation's next step). Without the damping (the factor at 1) the same rotation alerts."""
    rows = sres_at_work() + rotation(KIM, at)

    def kims(alerts: list[dict]) -> list[dict]:
        return [a for a in of(alerts, CRED) if a["principal"]["name"] == KIM.name]

    alerts, _ = run_rows(rows)
    assert not kims(alerts)
    undamped, _ = run_rows(rows, settings=DetectionSettings(peer_routine_factor=1))
    [alert] = kims(undamped)
    assert "NEW_OPERATION" in codes(alert)


@pytest.mark.parametrize("sams_tool", [POWERSHELL, CLI], ids=["the team's tool", "another tool"])
def test_a_first_tool_an_sre_covers_the_teams_rotation_with_is_the_rotations(run_rows, sams_tool):
    """Sam rotates the apps' keys with `sams_tool`; Jane uses Azure PowerShell on her own
    apps. Kim covers Sam's rotation once with Azure PowerShell, new to her, taking one app's
    profile on the way as she does daily. When it is the tool Sam rotates these apps' keys
    with, her first use of it is the rotation's and weighs less again: no alert. With any
    other tool (one only other people use elsewhere) the same burst alerts."""
    rows = []
    jane = replace(JANE, app_id=POWERSHELL)
    for day in workdays(START, 20):
        if day.weekday() in (0, 3):
            rows += rotation(replace(SAM, app_id=sams_tool), day.replace(hour=14))
        rows += activity(jane, day + timedelta(hours=1), PUBLISHXML, site_id("app1"))
        for app in SRE_APPS:
            rows += activity(KIM, day + timedelta(minutes=1), PUBLISHXML, site_id(app))
            rows += activity(SAM, day + timedelta(minutes=2), PUBLISHXML, site_id(app))
    at = AFTER.replace(hour=11)
    rows += rotation(replace(KIM, app_id=POWERSHELL), at)
    rows += activity(KIM, at + timedelta(minutes=3), PUBLISHXML, site_id("func-orders"))
    alerts, _ = run_rows(rows)
    kims = [a for a in of(alerts, CRED) if a["principal"]["name"] == KIM.name]
    if sams_tool == POWERSHELL:
        assert kims == []
    else:
        [alert] = kims
        assert "NEW_SCRIPTING_TOOL" in codes(alert)


GUEST = Actor(
    caller="ravi_fabrikam.com#EXT#@contoso.onmicrosoft.com",
    app_id=CLI,
    ip="198.51.100.99",
    name="Ravi (fabrikam.com)",
)


def guest_refused(at: datetime, address: str, sites: tuple[str, ...]) -> list[dict]:
    """A guest's identity refused the publish profile of each site (a 403 each)."""
    there = replace(GUEST, ip=address)
    rows: list[dict] = []
    for n, site in enumerate(sites):
        rows += activity(
            there,
            at + timedelta(seconds=20 * n),
            PUBLISHXML,
            site_id(site),
            status="Failed",
            substatus="Forbidden",
        )
    return rows


PROBED = ("app1", "app2", "team-a", "team-b", "team-c", "team-d", "x1", "x2")


def one_source_two_identities(
    address: str = "203.0.113.150",
    taken: tuple[str, ...] = ("app1", "app2"),
    refused: tuple[str, ...] = PROBED,
    minutes: int = 10,
) -> list[dict]:
    """A guest (who reads app9's settings daily) refused the profiles of `refused` at 11:00,
    then, `minutes` later, Jane's identity taking those of `taken` from the same address."""
    rows = jane_history()
    for day in workdays(START, 20):
        rows += activity(GUEST, day.replace(hour=13), CONFIG_LIST, site_id("app9"))
    t = AFTER.replace(hour=11)
    rows += guest_refused(t, address, refused)
    there = replace(JANE, ip=address)
    for n, site in enumerate(taken):
        rows += activity(there, t + timedelta(minutes=minutes + n), PUBLISHXML, site_id(site))
    return rows


@pytest.mark.parametrize(
    ("address", "linked"),
    [("203.0.113.150", True), (JANE.ip, False)],
    ids=["from an address new to her", "from her own office"],
)
def test_two_identities_from_one_source_are_judged_together(run_rows, address, linked):
    """A guest probing eight sites, then Jane's identity taking two of them ten minutes
    later from the same new address: one actor behind two identities (`SHARED_SOURCE`).
    From her own office (which the guest shares, as everyone there), nothing links them."""
    alerts, _ = run_rows(one_source_two_identities(address))
    janes = [a for a in of(alerts, CRED) if a["principal"]["name"] == JANE.name]
    shared = [a for a in janes if "SHARED_SOURCE" in codes(a)]
    assert bool(shared) is linked, [a["reasons"] for a in janes]
    assert bool(janes) is linked  # alone, each of her two reads is her ordinary work
    if linked:
        assert GUEST.name in next(
            r["message"] for r in shared[0]["reasons"] if r["code"] == "SHARED_SOURCE"
        )


def test_a_colleague_on_the_same_providers_block_does_not_hide_a_shared_source(run_rows):
    """A colleague works from home every day on the same residential provider's /16
    (203.0.7.9) as the address the guest probed from (203.0.113.150), never from its /24:
    the guest's refusals and Jane's identity taking two of those sites from that very
    address ten minutes later are still one source (`SHARED_SOURCE`). An office's or a
    gateway's network (/24) that people use links nobody (see above)."""
    rows = one_source_two_identities()
    colleague = Actor(caller="sam@contoso.com", name="Sam", ip="203.0.7.9")
    for day in workdays(START, 20, hour=9):
        rows += activity(colleague, day, CONFIG_LIST, site_id("app5") + "/config/appsettings")
    alerts, _ = run_rows(rows)
    janes = [a for a in of(alerts, CRED) if a["principal"]["name"] == JANE.name]
    assert any("SHARED_SOURCE" in codes(a) for a in janes), [a["reasons"] for a in janes]


def shared_source(alerts: list[dict]) -> dict:
    """Jane's one SHARED_SOURCE reason."""
    [reason] = [
        r
        for a in of(alerts, CRED)
        if a["principal"]["name"] == JANE.name
        for r in a["reasons"]
        if r["code"] == "SHARED_SOURCE"
    ]
    return reason


@pytest.mark.parametrize(
    ("taken", "refused", "extra"),
    [
        (("app1", "app2"), PROBED, True),
        (("app1", "app2"), ("team-a", "team-b", "team-c", "team-d", "x1", "x2", "x3", "x4"), False),
        (("app2", "app1"), ("app1", "team-a", "team-b", "team-c", "team-d", "x1", "x2"), True),
    ],
    ids=["sites it was refused", "other sites", "another site first, then one it was refused"],
)
def test_holding_the_very_site_the_probe_was_refused_weighs_more(run_rows, taken, refused, extra):
    """Jane's identity taking a site the guest was refused from the same address is the
    second identity holding exactly what the first could not get: `SHARED_SOURCE` weighs
    `weight_shared_source_refused` more and names the site. Sites the guest did not try link
    the two identities all the same, at the base weight; a refused site taken after another
    one raises the link once."""
    alerts, _ = run_rows(one_source_two_identities(taken=taken, refused=refused))
    s = DetectionSettings()
    reason = shared_source(alerts)
    assert type(reason["weight"]) is float  # 45.0 or 30.0 in the JSON, as every weight
    if extra:
        assert reason["weight"] == s.weight_shared_source + s.weight_shared_source_refused
        assert "took app1's, which the first was refused" in reason["message"]
    else:
        assert reason["weight"] == s.weight_shared_source
        assert "which the first was refused" not in reason["message"]


def test_a_probe_below_an_alert_still_links_the_identity_that_succeeds_from_its_address(
    run_rows,
):
    """The guest's refusals on four sites score below an alert here (the threshold raised
    to 40), but they are probing (`FAILURES`) all the same: Jane's identity taking two of
    those sites from the same new address ten minutes later is linked to them."""
    rows = one_source_two_identities(refused=("app1", "app2", "team-a", "team-b"))
    alerts, _ = run_rows(rows, settings=DetectionSettings(alert_threshold=40))
    assert not [a for a in alerts if a["principal"]["name"] == GUEST.name]
    [alert] = janes(alerts)
    assert "SHARED_SOURCE" in codes(alert)


OLD_PIPELINES = ("1a2b3c4d-0000-4000-8000-00000000000a", "1a2b3c4d-0000-4000-8000-00000000000b")
NEW_CONNECTION = "9f8e7d6c-0000-4000-8000-0000000000ff"
PIPELINE_SITES = (("orders-api", "orders-web"), ("billing-api", "billing-worker"))


def pipelines_deploying(days: int = 20) -> list[dict]:
    """Two pipelines, each deploying its two sites every working day from hosted agents:
    the profile, then a Web Deploy login with it from the same agent."""
    rows = []
    for n, day in enumerate(workdays(START, days, hour=15)):
        for oid, sites in zip(OLD_PIPELINES, PIPELINE_SITES, strict=True):
            agent = Actor(
                caller=oid, app_id=CLI, ip=f"20.61.{n}.{10 + len(rows) % 200}", kind="app"
            )
            for m, site in enumerate(sites):
                at = day + timedelta(minutes=2 * m)
                rows += activity(agent, at, PUBLISHXML, site_id(site))
                rows.append(
                    login(
                        f"${site}", at + timedelta(seconds=20), site_id(site), agent.ip, "WebDeploy"
                    )
                )
    return rows


def moved_pipelines(at: datetime, agents: str, sites: tuple[str, ...]) -> list[dict]:
    """Both pipelines re-run on one new service connection, from agents in `agents`."""
    rows = []
    for m, site in enumerate(sites):
        agent = Actor(caller=NEW_CONNECTION, app_id=CLI, ip=f"{agents}{m + 10}", kind="app")
        t = at + timedelta(minutes=2 * m)
        rows += activity(agent, t, PUBLISHXML, site_id(site))
        rows.append(
            login(f"${site}", t + timedelta(seconds=20), site_id(site), agent.ip, "WebDeploy")
        )
    return rows


@pytest.mark.parametrize(
    "production", [(), ("orders-api-prod",)], ids=["their sites", "and a production release"]
)
def test_pipelines_moved_to_a_new_service_connection_are_a_family_not_a_harvest(
    run_rows, production
):
    """Two pipelines move to one new service connection in another geography: a principal
    without history takes four sites' profiles and logs in from agent blocks nobody used.
    Every site is deployed by another pipeline identity: a family, not a harvest. So is a
    release to orders-api-prod, which no identity was seen deploying (releases to production
    are rare), when the burst takes the orders-api site its pipeline deploys."""
    sites = (*(site for pair in PIPELINE_SITES for site in pair), *production)
    rows = pipelines_deploying() + moved_pipelines(AFTER.replace(hour=15), "4.207.35.", sites)
    alerts, _ = run_rows(rows)
    assert not [a for a in alerts if a["principal"]["id"] == NEW_CONNECTION]


# -- evidence across days and across windows ---------------------------------------------------

SPREAD = ("orders-web", "billing-api", "search-web", "hr-api")
CONFIG_WRITE = "MICROSOFT.WEB/SITES/CONFIG/WRITE"


def cli_history(days: int = 30) -> list[dict]:
    """Jane's usual work, and her Azure CLI taking the profiles of four other teams' sites
    now and then from the office: none of those sites, nor the CLI, is new to her."""
    rows = jane_history(days)
    cli = replace(JANE, app_id=CLI)
    for n, day in enumerate(workdays(START, days, hour=14)):
        rows += activity(cli, day, PUBLISHXML, site_id(SPREAD[n % len(SPREAD)]))
    return rows


def one_site_a_day(
    sites: tuple[str, ...] = SPREAD, days: int = 4, also: str | None = None
) -> list[dict]:
    """Jane's identity takes one site's profile a day with the CLI, from a residential block
    abroad that neither she nor anyone in the organisation used; `also`: an operation done
    from the block each day as well."""
    there = replace(JANE, app_id=CLI, ip="203.0.113.45")
    rows = []
    for n, day in enumerate(workdays(AFTER, days)):
        at = day + timedelta(minutes=30)
        rows += activity(there, at, PUBLISHXML, site_id(sites[n % len(sites)]))
        if also is not None:
            rows += activity(
                there, at + timedelta(minutes=5), also, site_id("app1") + "/config/web"
            )
    return rows


def janes(alerts: list[dict], detection: str = CRED) -> list[dict]:
    return [a for a in of(alerts, detection) if a["principal"]["name"] == JANE.name]


def test_a_new_block_taking_one_site_a_day_while_she_works_from_the_office_is_a_campaign(
    run_rows,
):
    """Each day alone (a known site, a known tool, one new block) is below an alert; four
    days of it, a new site each day, from a block used for nothing else while her own work
    goes on from the office, are a campaign (`CAMPAIGN`), rated at least medium. Without the
    trail (its weight at 0) nothing alerts."""
    rows = cli_history() + one_site_a_day()
    alerts, _ = run_rows(rows)
    found = janes(alerts)
    assert any("CAMPAIGN" in codes(a) for a in found), [a["reasons"] for a in found]
    assert max(a["score"] for a in found) >= DetectionSettings().medium_threshold
    message = next(r["message"] for a in found for r in a["reasons"] if r["code"] == "CAMPAIGN")
    assert "203.0.0.0/16" in message
    assert "orders-web" in message
    without, _ = run_rows(rows, settings=DetectionSettings(weight_campaign=0))
    assert janes(without) == []


@pytest.mark.parametrize(
    "case",
    [
        "works from the block",
        "only works from the block",
        "the same site every day",
        "once a week",
    ],
)
def test_a_new_block_she_works_from_is_one_of_her_places_not_a_campaign(run_rows, case):
    """A trip or a new home: she changes settings from the block too (her work, not only
    taking), or works from nowhere else those days, or takes the same site each day; or a
    phone's hotspot used once a week. None is a campaign."""
    if case == "works from the block":
        rows = cli_history() + one_site_a_day(also=CONFIG_WRITE)
    elif case == "only works from the block":
        rows = cli_history(14) + one_site_a_day()  # her office history ends before the trip
    elif case == "the same site every day":
        rows = cli_history() + one_site_a_day(sites=("orders-web",))
    else:  # a phone's hotspot now and then
        rows = cli_history(40)
        there = replace(JANE, app_id=CLI, ip="203.0.113.45")
        for n, site in enumerate(SPREAD[:3]):
            at = AFTER + timedelta(days=7 * n, minutes=30)
            rows += activity(there, at.replace(hour=10), PUBLISHXML, site_id(site))
    alerts, _ = run_rows(rows)
    assert not any("CAMPAIGN" in codes(a) for a in janes(alerts)), [
        a["reasons"] for a in janes(alerts)
    ]


def stop_edit_start(at: datetime, site: str = "app1", job: str = "continuous/sync") -> list[dict]:
    """Jane stops a continuous job in the portal, edits its script at the Kudu console seven
    minutes later, and starts it again."""
    portal = replace(JANE, app_id=PORTAL)
    resource = site_id(site) + f"/continuouswebjobs/{job.split('/')[1]}"
    rows = activity(portal, at, STOP_JOB, resource)
    rows.append(login(JANE.caller, at + timedelta(minutes=1), site_id(site), JANE.ip))
    rows += job_files(site, at + timedelta(minutes=7), job, ("run.cmd",))
    rows += activity(portal, at + timedelta(minutes=8), START_JOB, resource)
    return rows


def job_with_a_history(days: int = 25) -> list[dict]:
    """Jane's usual work; the pipeline ships app1's continuous job 'sync' every day, and the
    operators restart it now and then."""
    rows = jane_history(days)
    ops = Actor(caller="ops@contoso.com", app_id=PORTAL, ip="198.51.100.20", name="Ops")
    resource = site_id("app1") + "/continuouswebjobs/sync"
    for n, day in enumerate(workdays(START, days, hour=16)):
        rows.append(login("$app1", day, site_id("app1"), f"20.{40 + n}.3.20", "WebDeploy"))
        rows += job_files("app1", day + timedelta(seconds=30), "continuous/sync", DEPLOYED)
        if n % 3 == 0:
            rows += activity(ops, day + timedelta(hours=1), STOP_JOB, resource)
            rows += activity(ops, day + timedelta(hours=1, minutes=1), START_JOB, resource)
    return rows


@pytest.mark.parametrize("window", [timedelta(minutes=15), timedelta(minutes=5)])
def test_a_colleagues_login_in_between_does_not_take_the_edit_of_a_job_she_stopped(
    run_rows, window
):
    """Jane stops app1's job 'sync', opens the Kudu console, and edits the job's script; a
    colleague signs in to the same site with its publishing credentials from the office a
    minute after her (using the profile he just took). The edit belongs to whoever stopped
    the job and opened the console: Jane's hands-on session alerts (it went to the later
    login, a known block's, and nothing alerted). With five-minute windows the stop, the
    logins and the edit fall in different windows: the same."""
    at = AFTER.replace(hour=11, minute=1)
    rows = job_with_a_history() + stop_edit_start(at)
    rows.append(login("$app1", at + timedelta(minutes=2), site_id("app1"), JANE.ip, "Kudu"))
    alerts, _ = run_rows(rows, window=window)
    [alert] = janes_edits(alerts)
    assert {"JOB_FILES_CHANGED", "LOGIN_THEN_JOB_FILES"} <= codes(alert)


def test_a_job_stopped_then_edited_by_hand_in_the_next_window_is_judged_whole(run_rows):
    """The stop falls in one scoring window, the edit and the start in the next: the stop
    scores below an alert but opens a quiet burst (`quiet_burst_score`), so the session is
    judged whole, as if one window held it, and is rated medium; the alert is of the whole
    session, from the stop on. With no quiet burst for it, the edit is judged alone and
    scores less."""
    rows = job_with_a_history() + stop_edit_start(AFTER.replace(hour=11, minute=9))
    alerts, _ = run_rows(rows)
    [alert] = janes_edits(alerts)
    assert alert["firstSeen"].startswith("2026-10-21T11:09"), alert["firstSeen"]
    assert {"JOB_STOPPED_OR_DELETED", "JOB_FILES_CHANGED", "LOGIN_THEN_JOB_FILES"} <= codes(alert)
    assert alert["score"] >= DetectionSettings().medium_threshold
    apart, _ = run_rows(rows, settings=DetectionSettings(quiet_burst_score=1000))
    assert max((a["score"] for a in janes_edits(apart)), default=0) < alert["score"]


def test_a_job_stopped_around_a_hand_edit_was_silenced_not_restarted(run_rows):
    """Stopped, edited at the console and started again, all in one window: not a restart
    (which weighs less), a job silenced while its files were changed by hand."""
    rows = job_with_a_history() + stop_edit_start(AFTER.replace(hour=11, minute=1))
    alerts, _ = run_rows(rows)
    [alert] = janes_edits(alerts)
    stopped = next(r for r in alert["reasons"] if r["code"] == "JOB_STOPPED_OR_DELETED")
    assert stopped["weight"] == DetectionSettings().weight_job_stopped_or_deleted
    assert "written by hand while it was stopped" in stopped["message"]


def test_a_trip_moves_the_block_and_the_hours_together(run_rows):
    """Jane abroad: her own site's profile with her own tool, from a hotel's block at 04:00
    UTC, an hour she never works at home. Where and when moved together, and nothing else is
    new: one novelty (a trip), which weighs less and does not alert. Judged as two
    novelties (the damping off), the same alerts."""
    rows = jane_history(25)
    hotel = replace(JANE, ip="203.0.113.77")
    rows += activity(hotel, AFTER.replace(hour=4, minute=20), PUBLISHXML, site_id("app1"))
    alerts, _ = run_rows(rows, settings=DetectionSettings(alert_threshold=1))
    [alert] = [a for a in janes(alerts) if "T04:" in a["firstSeen"]]
    assert {"NEW_NETWORK", "UNUSUAL_HOUR"} <= codes(alert)
    assert all("(a trip)" in r["message"] for r in alert["reasons"] if r["code"] == "UNUSUAL_HOUR")
    assert alert["score"] < DetectionSettings().alert_threshold
    full, _ = run_rows(rows, settings=DetectionSettings(alert_threshold=1, known_sites_factor=1))
    [undamped] = [a for a in janes(full) if "T04:" in a["firstSeen"]]
    assert undamped["score"] >= DetectionSettings().alert_threshold


NEO = Actor(caller="neo@contoso.com", app_id=VSCODE, ip="198.51.100.12", name="Neo")
KEYS = "MICROSOFT.WEB/SITES/HOST/LISTKEYS/ACTION"


def neos_third_day(address: str = NEO.ip) -> list[dict]:
    """Jane lists func1's keys in the portal every day; Kim and Lou take their team's sites
    with the CLI. Neo joins: two days of taking app1's profile with VS Code from the office,
    then, on the third, the CLI for the profile of app2 and the keys of two function apps."""
    rows = jane_history() + team_at_work()
    for day in workdays(START, 20, hour=15):
        rows += activity(JANE, day, KEYS, site_id("func1") + "/host/default")
    for day in (AFTER - timedelta(days=2), AFTER - timedelta(days=1)):
        rows += activity(NEO, day.replace(hour=10), PUBLISHXML, site_id("app1"))
    cli = replace(NEO, app_id=CLI, ip=address)
    t = AFTER.replace(hour=10, minute=30)
    rows += activity(cli, t, PUBLISHXML, site_id("app2"))
    for n, app in enumerate(("func1", "func2")):
        rows += activity(cli, t + timedelta(minutes=3 + n), KEYS, site_id(app) + "/host/default")
    return rows


def test_a_newcomer_settling_in_is_judged_as_a_newcomer_until_its_history_matures(run_rows):
    """On Neo's third day everything is still new to Neo (sites, the CLI, keys), but all of
    it comes from the office's block with the tools colleagues use: a newcomer settling in,
    judged as one (`Context.settling`) rather than as a principal whose history has turned
    against it overnight. Without the peers' routine damping it alerts."""
    rows = neos_third_day()
    alerts, _ = run_rows(rows)
    assert [a for a in of(alerts, CRED) if a["principal"]["name"] == NEO.name] == []
    undamped, _ = run_rows(rows, settings=DetectionSettings(peer_routine_factor=1))
    [alert] = [a for a in of(undamped, CRED) if a["principal"]["name"] == NEO.name]
    assert "FUNCTION_KEYS" in codes(alert)


def neos_return(address: str = NEO.ip, days: int = 2) -> list[dict]:
    """Neo's third day, but seven weeks after his first `days` days (app1's profile with VS
    Code from the office), while his team went on working: a leaver back after longer than
    the baselines remember (`baseline_max_age_days`), first seen long ago, his history
    forgotten. Back, he takes app2's profile and lists two function apps' keys with the CLI."""
    back = (START + timedelta(days=61)).replace(hour=10, minute=30)  # a Tuesday
    rows = jane_history(63) + team_at_work(63)
    for day in workdays(START, 63, hour=15):
        rows += activity(JANE, day, KEYS, site_id("func1") + "/host/default")
    for n in range(days):
        day = START + timedelta(days=1 + n)
        rows += activity(NEO, day.replace(hour=10), PUBLISHXML, site_id("app1"))
    cli = replace(NEO, app_id=CLI, ip=address)
    rows += activity(cli, back, PUBLISHXML, site_id("app2"))
    for n, app in enumerate(("func1", "func2")):
        rows += activity(cli, back + timedelta(minutes=3 + n), KEYS, site_id(app) + "/host/default")
    return rows


@pytest.mark.parametrize("days", [2, 12], ids=["a short history", "a mature one"])
def test_a_leaver_back_after_its_history_aged_out_settles_in_as_a_newcomer(run_rows, days):
    """Neo back after seven weeks away, on his first day from the office with his peers'
    CLI: his history starts again that day (`PrincipalBaseline.history_start`), so he is
    settling in, as a joiner would be, though first seen two months ago and however long
    his history was before (his novelty counts from the day he came back). Without the
    peers' routine damping the same day alerts."""
    rows = neos_return(days=days)
    alerts, _ = run_rows(rows)
    assert [a for a in of(alerts, CRED) if a["principal"]["name"] == NEO.name] == []
    undamped, _ = run_rows(rows, settings=DetectionSettings(peer_routine_factor=1))
    [alert] = [a for a in of(undamped, CRED) if a["principal"]["name"] == NEO.name]
    assert "FUNCTION_KEYS" in codes(alert)


def test_an_intrusion_while_a_leaver_was_away_is_no_day_of_his(run_rows):
    """Three weeks before Neo comes back, his identity opens app1-prod's Kudu console from a
    rented server and edits its job. That alerts, and the alert tells the console login it
    was made in; what an alert told is no active day of Neo's, so, back, he still settles in
    as a newcomer (his history before the intrusion had aged out)."""
    rows = neos_return(days=12)
    at = (START + timedelta(days=40)).replace(hour=11)
    rows.append(login(NEO.caller, at, site_id("app1-prod"), "159.89.1.20"))
    rows += job_files("app1-prod", at + timedelta(minutes=2), "triggered/cleanup", DEPLOYED)
    alerts, _ = run_rows(rows)
    [edit] = [a for a in of(alerts, WEBJOB) if a["principal"]["id"] == NEO.caller]
    assert "Kudu (SCM) login" in {op["name"] for op in edit["operations"]}
    assert edit["sourceIps"] == ["159.89.1.20"]
    assert [a for a in of(alerts, CRED) if a["principal"]["name"] == NEO.name] == []


def test_a_newcomer_settling_in_editing_a_test_sites_job_is_development(run_rows):
    """Neo's third day: a Kudu edit of orders-api-test's job, from a home block he never
    used but his colleagues do (Jane opens the console from it too). Not his usual place yet,
    as it cannot be in three days, but his peers': development, as for a familiar developer.
    Without the damping (the factor at 1) the same edit alerts."""
    rows = team_on_dev_and_prod()
    for day in workdays(START, 20, hour=12):
        rows.append(login(JANE.caller, day, site_id("orders-api-test"), "203.0.113.90"))
    for day in (AFTER - timedelta(days=2), AFTER - timedelta(days=1)):
        rows += activity(NEO, day.replace(hour=10), PUBLISHXML, site_id("orders-api-test"))
    at = AFTER.replace(hour=11)
    rows.append(login(NEO.caller, at, site_id("orders-api-test"), "203.0.113.91"))
    rows += job_files("orders-api-test", at + timedelta(minutes=2), "triggered/cleanup", DEPLOYED)

    def neos(alerts: list[dict]) -> list[dict]:
        return [a for a in of(alerts, WEBJOB) if a["principal"]["id"] == NEO.caller]

    alerts, _ = run_rows(rows)
    assert neos(alerts) == []
    undamped, _ = run_rows(rows, settings=DetectionSettings(non_production_factor=1))
    assert neos(undamped)


def release_of_two_jobs(days: int = 20) -> list[dict]:
    """The pipeline ships app1's two jobs, 'cleanup' and 'sync', with every release."""
    rows = []
    for n, day in enumerate(workdays(START, days, hour=16)):
        rows.append(login("$app1", day, site_id("app1"), f"20.40.{n}.20", "WebDeploy"))
        for job in ("triggered/cleanup", "continuous/sync"):
            rows += job_files("app1", day + timedelta(seconds=30), job, DEPLOYED)
    return rows


def release_from(address: str, jobs: tuple[str, ...]) -> list[dict]:
    """The site's publishing credentials log in to Kudu from `address` and write the files
    of `jobs`."""
    at = AFTER.replace(hour=10, minute=50)
    rows = [login("$app1", at, site_id("app1"), address, "Kudu")]
    for job in jobs:
        rows += job_files("app1", at + timedelta(seconds=5), job, DEPLOYED)
    return rows


def test_a_release_from_a_new_agent_is_not_a_hands_on_session(run_rows):
    """The pipeline moves to an agent pool in a block nobody used and ships both of the
    site's existing jobs at once: a release, not someone at the console
    (no `LOGIN_THEN_JOB_FILES`), and no alert."""
    rows = release_of_two_jobs() + release_from(
        "4.207.35.53", ("triggered/cleanup", "continuous/sync")
    )
    alerts, _ = run_rows(rows)
    assert of(alerts, WEBJOB) == []


DEPLOYER = Actor(caller="6a10754f-0000-4000-8000-0000000000aa", app_id=CLI, ip="", kind="app")


def hosted_agent_releases(days: int = 20) -> list[dict]:
    """A pipeline's identity takes app1's profile on one hosted agent each day; the Web Deploy
    login with it comes from another, in a block of its own every day."""
    rows = []
    for n, day in enumerate(workdays(START, days, hour=16)):
        agent = replace(DEPLOYER, ip=f"51.124.{n}.132")
        rows += activity(agent, day, PUBLISHXML, site_id("app1"))
        rows.append(
            login(
                "$app1",
                day + timedelta(seconds=40),
                site_id("app1"),
                f"20.{90 + n}.64.98",
                "WebDeploy",
            )
        )
    return rows


def release_through(address: str) -> list[dict]:
    """The next release: the profile on a known agent, the login from `address`."""
    at = AFTER.replace(hour=16)
    rows = activity(replace(DEPLOYER, ip="51.124.3.132"), at, PUBLISHXML, site_id("app1"))
    rows.append(login("$app1", at + timedelta(seconds=40), site_id("app1"), address, "WebDeploy"))
    return rows


def test_a_release_through_hosted_agents_in_new_blocks_is_the_pipelines_routine(run_rows):
    """A site whose publishing credentials log in from a new block at most releases, right
    after its pipeline took the profile as it does every day: hosted agents, which weighs
    `roaming_factor` (no alert). Without that damping, the same login alerts."""
    rows = hosted_agent_releases() + release_through("20.123.64.98")
    alerts, _ = run_rows(rows)
    assert of(alerts, CRED) == []
    undamped, _ = run_rows(rows, settings=DetectionSettings(roaming_factor=1))
    assert [a for a in of(undamped, CRED) if "DOWNLOAD_THEN_LOGIN" in codes(a)]


DEPLOYMENT_WRITE = "MICROSOFT.WEB/SITES/DEPLOYMENTS/WRITE"
AGENT = "20.123.64.98"  # a hosted agent's address, in a block nobody used before


def deployment_then(address: str, *, files: bool = False) -> list[dict]:
    """At 16:00 the pipeline's identity deploys app1 from a new hosted agent (AGENT); four
    seconds later the site's publishing credentials sign in to Kudu from `address` (and
    write the files of job 'cleanup', with `files`)."""
    at = AFTER.replace(hour=16)
    rows = activity(
        replace(DEPLOYER, ip=AGENT), at, DEPLOYMENT_WRITE, site_id("app1") + "/deployments/1"
    )
    rows.append(login("$app1", at + timedelta(seconds=4), site_id("app1"), address, "Kudu"))
    if files:
        rows += job_files("app1", at + timedelta(seconds=6), "triggered/cleanup", DEPLOYED)
    return rows


def test_a_deployments_own_login_is_no_use_of_a_profile_taken_before(run_rows):
    """Jane takes app1's profile at 15:58, as she does every day; two minutes later the
    pipeline deploys app1 from a new hosted agent, whose Kudu login with the site's
    credentials comes from that agent: the deployment's own login
    (`deployment_login_minutes`), not Jane's profile used from a block nobody knows. With
    the window at zero the same login chains to her download."""
    rows = jane_history()
    rows += activity(JANE, AFTER.replace(hour=15, minute=58), PUBLISHXML, site_id("app1"))
    rows += deployment_then(AGENT)
    alerts, _ = run_rows(rows)
    assert not [a for a in of(alerts, CRED) if "DOWNLOAD_THEN_LOGIN" in codes(a)]
    chained, _ = run_rows(rows, settings=DetectionSettings(deployment_login_minutes=0))
    assert [a for a in of(chained, CRED) if "DOWNLOAD_THEN_LOGIN" in codes(a)]


def test_job_files_a_deployment_writes_from_its_agent_are_no_console_session(run_rows):
    """The pipeline deploys app1 from a new hosted agent, and the site's publishing
    credentials write job 'cleanup's files from that agent seconds later: the deployment's
    release, not someone at the console (no `LOGIN_THEN_JOB_FILES`), though only one job
    changed. With the window at zero the same write alerts as hands-on."""
    rows = pipeline_deploys() + deployment_then(AGENT, files=True)
    alerts, _ = run_rows(rows)
    assert of(alerts, WEBJOB) == []
    hands_on, _ = run_rows(rows, settings=DetectionSettings(deployment_login_minutes=0))
    assert [a for a in of(hands_on, WEBJOB) if "LOGIN_THEN_JOB_FILES" in codes(a)]


def test_a_block_back_after_its_trail_was_forgotten_is_no_campaign(run_rows):
    """The block took one site, then nothing for two weeks: its trail is forgotten after
    `campaign_days` (in a replay as in the timer's saved state), and the block is now one
    she used before. Back, it takes a site a day for three days: no `CAMPAIGN` (a trail
    kept in a replay's memory would have counted them)."""
    there = replace(JANE, app_id=CLI, ip="203.0.113.45")
    rows = cli_history(40)
    first = AFTER.replace(hour=10, minute=30)
    rows += activity(there, first, PUBLISHXML, site_id("orders-web"))
    back = [first + timedelta(days=d) for d in (13, 14, 15)]  # Tuesday to Thursday
    for day, site in zip(back, ("billing-api", "search-web", "hr-api"), strict=True):
        rows += activity(there, day, PUBLISHXML, site_id(site))
    alerts, _ = run_rows(rows)
    assert not [a for a in janes(alerts) if "CAMPAIGN" in codes(a)]


@pytest.mark.parametrize(("sites", "weight"), [(4, 15), (6, 20), (12, 25)])
def test_broader_probing_weighs_more(run_rows, sites, weight):
    """Refusals on more sites than `burst_sites` add `weight_failures_extra` each, up to
    four: probing ten sites is more than probing four."""
    rows = jane_history()
    t = AFTER.replace(hour=11)
    for n in range(sites):
        rows += activity(
            JANE,
            t + timedelta(seconds=20 * n),
            CONFIG_LIST,
            site_id(f"other{n}") + "/config/appsettings",
            status="Failure",
            substatus="Forbidden",
        )
    alerts, _ = run_rows(rows, settings=DetectionSettings(alert_threshold=1))
    [failures] = [r for a in janes(alerts) for r in a["reasons"] if r["code"] == "FAILURES"]
    assert failures["weight"] == weight
