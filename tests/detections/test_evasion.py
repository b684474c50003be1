"""Attackers who blend in: each damping that keeps ordinary work quiet must not hide a theft.

Every fixture pairs with a benign one in test_detections.py that the damping exists for (a
new joiner taking their team's sites, an administrator's weekly maintenance window, a lead
who roams across many sites, a pipeline whose agents change address). Here the same shape
of activity comes from someone else: another network, another tool, another hour. The
detections must still alert, because those differences are what a thief cannot borrow.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from detectors.settings.detection import DetectionSettings
from tests.detections.test_detections import (
    AFTER,
    CRED,
    JANE,
    KEYS,
    KIM,
    LEAD,
    NEW_CONNECTION,
    NEWPASSWORD,
    PIPELINE_OID,
    PLANTED,
    ROTATION,
    RUN_JOB,
    SRE_APPS,
    START,
    WEBJOB,
    admin_with_weekly_maintenance,
    cli_history,
    codes,
    deployment_then,
    hosted_agent_releases,
    jane_history,
    janes_edits,
    job_files,
    job_runs,
    kudu_edit,
    lead_history,
    monthly_rotation,
    moved_pipelines,
    neos_return,
    neos_third_day,
    of,
    pipeline_deploys,
    pipelines_deploying,
    refused_key_listings,
    release_from,
    release_of_two_jobs,
    release_through,
    rotation,
    scheduler_runs,
    sres_at_work,
    team_at_work,
    team_on_dev_and_prod,
    workdays,
)
from tests.rowkit import (
    CLI,
    CONFIG_LIST,
    PORTAL,
    POWERSHELL,
    PUBLISHXML,
    VSCODE,
    Actor,
    activity,
    login,
    site_id,
)

FOREIGN = "203.0.113.66"  # a block nobody in the organisation uses


def test_a_thief_resetting_a_profile_in_the_admins_weekly_window_still_alerts(run_rows):
    """The window damps an administrator's own change; the stolen identity's new network
    and new tool are not part of it."""
    ada = Actor(caller="ada@contoso.com", app_id=CLI, ip="198.51.100.20", name="Ada")
    rows = admin_with_weekly_maintenance(ada)
    thief = Actor(caller=ada.caller, app_id=POWERSHELL, ip=FOREIGN, name=ada.name)
    t = AFTER.replace(hour=18, minute=10)  # a Wednesday, in Ada's usual hour
    assert t.weekday() == 2
    rows += activity(thief, t, NEWPASSWORD, site_id("app1"))
    rows += activity(thief, t + timedelta(minutes=1), PUBLISHXML, site_id("app1"))
    alerts, _ = run_rows(rows)
    [alert] = of(alerts, CRED)
    assert alert["severity"] in ("medium", "high"), alert["reasons"]
    assert {"NEW_NETWORK", "NEW_SCRIPTING_TOOL"} <= codes(alert)


@pytest.mark.parametrize(
    ("app_id", "hour"),
    [(POWERSHELL, 11), (CLI, 3), (POWERSHELL, 3)],
    ids=["a tool the team never uses", "at an hour nobody works on these sites", "both"],
)
def test_an_identity_without_history_taking_a_teams_sites_unlike_the_team_alerts(
    run_rows, app_id, hour
):
    """A team's set of sites damps a new member's first look around; a new identity taking
    them with a tool the team never uses, or at 03:00, is not a new member's first day."""
    rows = team_at_work()
    stranger = Actor(caller="mallory@contoso.com", app_id=app_id, ip=FOREIGN, name="Mallory")
    t = AFTER.replace(hour=hour, minute=1)
    for n, site in enumerate(("team-a", "team-b", "team-c", "team-d")):
        rows += activity(stranger, t + timedelta(minutes=n), PUBLISHXML, site_id(site))
    alerts, _ = run_rows(rows)
    [alert] = of(alerts, CRED)
    assert "NO_HISTORY" in codes(alert)


def test_a_leads_stolen_identity_harvesting_other_teams_sites_at_night_is_high(run_rows):
    """Breadth damps a lead's one more site; eight new ones at night from afar are a harvest."""
    rows = lead_history()
    thief = Actor(caller=LEAD.caller, app_id=POWERSHELL, ip=FOREIGN, name=LEAD.name)
    night = AFTER.replace(hour=2, minute=30)
    for n in range(8):
        site = site_id(f"finance-{n}", group="rg-finance")
        rows += activity(thief, night + timedelta(minutes=n), PUBLISHXML, site)
    alerts, _ = run_rows(rows)
    [alert] = of(alerts, CRED)
    assert alert["severity"] == "high", alert["reasons"]
    assert "SITE_BURST" in codes(alert)


def test_a_compromised_pipeline_taking_credentials_of_sites_it_never_deployed_alerts(run_rows):
    """Changing agent addresses damp a pipeline's new network; the sites it never touched
    are the theft."""
    rows = []
    for n, day in enumerate(workdays(START, 20, hour=15)):
        agent = Actor(caller=PIPELINE_OID, app_id=CLI, ip=f"20.40.{n}.10", kind="app")
        for site in ("shop-api", "shop-web"):
            rows += activity(
                agent, day, CONFIG_LIST, site_id(site) + "/config/publishingcredentials"
            )
    thief = Actor(caller=PIPELINE_OID, app_id=CLI, ip="20.40.99.10", kind="app")
    t = AFTER.replace(hour=15, minute=30)
    for n, site in enumerate(("payroll", "hr-portal", "billing", "crm", "vault-ui")):
        rows += activity(
            thief,
            t + timedelta(minutes=n),
            CONFIG_LIST,
            site_id(site, group="rg-corp") + "/config/publishingcredentials",
        )
    alerts, _ = run_rows(rows)
    [alert] = of(alerts, CRED)
    assert alert["severity"] in ("medium", "high"), alert["reasons"]
    assert {"NEW_SITE", "SITE_BURST"} <= codes(alert)


def test_a_developers_infected_laptop_harvesting_from_the_office_in_office_hours_alerts(
    run_rows,
):
    """Same network, same tool, same hours: only the sites give the harvest away."""
    rows = jane_history()
    t = AFTER.replace(hour=11)
    for n, site in enumerate(("pay", "billing", "hr", "crm", "intranet", "ledger")):
        rows += activity(JANE, t + timedelta(minutes=n), PUBLISHXML, site_id(site))
    alerts, _ = run_rows(rows)
    [alert] = of(alerts, CRED)
    assert {"NEW_SITE", "SITE_BURST"} <= codes(alert)


def test_a_new_job_planted_with_the_pipelines_credentials_from_an_agent_block_alerts(run_rows):
    """The deploy identity's own address block: the job it never shipped is the persistence."""
    rows = pipeline_deploys()
    t = AFTER.replace(hour=16, minute=30)
    rows.append(login("$app1", t, site_id("app1"), "20.45.15.25", "WebDeploy"))  # an agent's
    rows += job_files(
        "app1", t + timedelta(seconds=30), "continuous/telemetry-agent", PLANTED, "Add"
    )
    alerts, _ = run_rows(rows)
    [alert] = of(alerts, WEBJOB)
    assert "NEW_WEBJOB" in codes(alert)


def test_the_schedulers_identity_running_a_job_ten_times_its_rate_alerts(run_rows):
    """The usual identity, the usual job: only the rate is wrong."""
    rows = scheduler_runs(20)
    mi = Actor(
        caller="5e2b1c4d-aaaa-4bbb-8ccc-123456789abc",
        app_id="99999999-2222-3333-4444-555555555555",
        ip="",
        kind="mi",
    )
    t = AFTER.replace(hour=10, minute=5)
    rows += job_runs(mi, t, 12, timedelta(minutes=4), "app1", "cleanup")
    alerts, _ = run_rows(rows)
    assert of(alerts, WEBJOB), "twelve runs in an hour of a job run once an hour"


def test_an_identity_running_a_busy_job_for_hours_for_the_first_time_alerts(run_rows):
    """An inventory app that never ran jobs runs one every five minutes for three hours.

    The job is busy anyway (its scheduler runs it every ten minutes), so the job's own rate
    is not tripled; the first window teaches the app's baseline that it runs jobs. The later
    windows must still weigh that it never ran one on an earlier day."""
    scheduler = Actor(
        caller="5e2b1c4d-aaaa-4bbb-8ccc-123456789abc",
        app_id="99999999-2222-3333-4444-555555555555",
        ip="",
        kind="mi",
    )
    inventory = Actor(
        caller="7c1d2e3f-bbbb-4ccc-8ddd-123456789abc",
        app_id="88888888-2222-3333-4444-555555555555",
        ip="20.61.7.8",
        kind="app",
    )
    job = site_id("app1") + "/triggeredwebjobs/reindex"
    rows = []
    for day in range(21):
        midnight = START + timedelta(days=day)
        for minute in range(8 * 60, 16 * 60, 10):
            rows += activity(
                scheduler, midnight + timedelta(minutes=minute, seconds=7), RUN_JOB, job
            )
        for hour in (10, 11, 12, 13):
            rows += activity(
                inventory,
                midnight + timedelta(hours=hour, minutes=20),
                CONFIG_LIST,
                site_id("app1") + "/config/appsettings",
            )
    t = AFTER.replace(hour=10, minute=2)
    for n in range(36):
        rows += activity(inventory, t + timedelta(minutes=5 * n), RUN_JOB, job)
    alerts, _ = run_rows(rows)
    [alert] = of(alerts, WEBJOB) or [None]
    assert alert is not None, "a first day of running jobs, twelve runs an hour for hours"
    assert {"REPETITIVE_RUNS", "NEW_OPERATION"} <= codes(alert)
    assert "JOB_RUN_SPIKE" not in codes(alert)


@pytest.mark.parametrize(
    ("site", "hour", "address", "stopped"),
    [
        ("orders-api-prod", 11, None, False),
        ("orders-api-test", 11, FOREIGN, False),
        ("orders-api-test", 3, None, False),
        ("orders-api-test", 11, None, True),
    ],
    ids=["on production", "from a block she never used", "at 03:00", "the job stopped first"],
)
def test_a_kudu_edit_unlike_development_alerts(run_rows, site, hour, address, stopped):
    """A developer's hands-on edit of its test site's job weighs less (development); the
    same edit on production, from elsewhere, at night, or of a job silenced first (in an
    earlier window that day) is a change to an existing WebJob and alerts."""
    rows = team_on_dev_and_prod()
    at = AFTER.replace(hour=hour, minute=30)
    if stopped:
        stop = "MICROSOFT.WEB/SITES/CONTINUOUSWEBJOBS/STOP/ACTION"
        portal = Actor(caller=JANE.caller, app_id=PORTAL, ip=JANE.ip, name=JANE.name)
        rows += activity(
            portal, at - timedelta(hours=3), stop, site_id(site) + "/continuouswebjobs/cleanup"
        )
    rows += kudu_edit(site, at, address or JANE.ip)
    alerts, _ = run_rows(rows)
    edits = [a for a in janes_edits(alerts) if "JOB_FILES_CHANGED" in codes(a)]
    assert edits, "the edit raised no alert"


def test_a_kudu_edit_in_the_hour_after_hers_but_not_in_her_sitting_alerts(run_rows):
    """Work that runs over the hour counts as her hours only while it goes on: an edit at
    17:20 with her identity, from her office, whose last action was at 16:45 (more than
    `hour_overrun_minutes` before) is an edit at an hour she never works in, and alerts."""
    rows = team_on_dev_and_prod()
    portal = Actor(caller=JANE.caller, app_id=PORTAL, ip=JANE.ip, name=JANE.name)
    at = AFTER.replace(hour=16, minute=45)
    rows += activity(portal, at, CONFIG_LIST, site_id("app2") + "/config/appsettings")
    rows += kudu_edit("orders-api-test", at + timedelta(minutes=35))
    alerts, _ = run_rows(rows)
    edits = [a for a in janes_edits(alerts) if "JOB_FILES_CHANGED" in codes(a)]
    assert edits, "the edit raised no alert"
    assert "UNUSUAL_HOUR" in codes(edits[0]), edits[0]["reasons"]


def test_a_thief_copying_the_portals_key_listing_from_elsewhere_alerts(run_rows):
    """Listing one app's function and host keys as the portal does weighs less for a
    developer at work; from a block she never used, at night, the same listing alerts."""
    rows = jane_history()
    for day in workdays(START, 20, hour=14):
        rows += activity(JANE, day, PUBLISHXML, site_id("func1"))
    thief = Actor(caller=JANE.caller, app_id=PORTAL, ip=FOREIGN, name=JANE.name)
    keys = "MICROSOFT.WEB/SITES/FUNCTIONS/LISTKEYS/ACTION"
    host = "MICROSOFT.WEB/SITES/HOST/LISTKEYS/ACTION"
    t = AFTER.replace(hour=2)
    rows += activity(thief, t, keys, site_id("func1") + "/functions/orders")
    rows += activity(thief, t + timedelta(minutes=1), host, site_id("func1") + "/host/default")
    alerts, _ = run_rows(rows)
    [alert] = of(alerts, CRED)
    assert "FUNCTION_KEYS" in codes(alert)
    assert not any(
        "weighs less" in r["message"] for r in alert["reasons"] if r["code"] == "FUNCTION_KEYS"
    ), alert["reasons"]


def test_a_thief_back_the_next_day_is_still_new_until_someone_decides(run_rows):
    """The first alert's network and tool are quarantined, not learned: the stolen
    identity's return the next day alerts again with the same novelties. Without the
    quarantine (`quarantine_days` 0) the first alert would have taught them."""
    rows = jane_history()
    thief = Actor(caller=JANE.caller, app_id=POWERSHELL, ip=FOREIGN, name=JANE.name)
    for day in (AFTER, AFTER + timedelta(days=1)):
        rows += activity(thief, day.replace(hour=11), PUBLISHXML, site_id("app1"))
    alerts, _ = run_rows(rows)
    both = of(alerts, CRED)
    assert len(both) == 2
    assert all({"NEW_NETWORK", "NEW_SCRIPTING_TOOL"} <= codes(a) for a in both)
    learned_at_once, _ = run_rows(rows, settings=DetectionSettings(quarantine_days=0))
    [first] = of(learned_at_once, CRED)
    assert first["firstSeen"] == both[0]["firstSeen"]


@pytest.mark.parametrize(
    ("day", "address"),
    [
        (datetime(2026, 11, 17, 2, 10, tzinfo=UTC), ROTATION.ip),
        (datetime(2026, 11, 3, 2, 10, tzinfo=UTC), FOREIGN),
    ],
    ids=["off its cadence", "on its day, from elsewhere"],
)
def test_a_rotation_identity_used_unlike_its_rotation_alerts(run_rows, day, address):
    """The rotation's identity taken: its reset-and-download of every site on another day,
    or on its day from a block it never used, is not the rotation."""
    rows = jane_history() + monthly_rotation(datetime(2026, 10, 3, 2, 10, tzinfo=UTC))
    rows += monthly_rotation(day, replace(ROTATION, ip=address))
    alerts, _ = run_rows(rows)
    assert [a for a in of(alerts, CRED) if a["principal"]["id"] == ROTATION.caller]


def test_an_sres_identity_rotating_keys_from_elsewhere_alerts(run_rows):
    """The team's routine damps Kim's first rotation at her desk; her identity rotating
    the same keys from a block she never used is someone else."""
    rows = sres_at_work() + rotation(replace(KIM, ip=FOREIGN), AFTER.replace(hour=11))
    alerts, _ = run_rows(rows)
    assert [a for a in of(alerts, CRED) if a["principal"]["name"] == KIM.name]


def test_a_person_who_lists_one_apps_keys_routinely_sweeping_four_apps_alerts(run_rows):
    """Jane lists her app's function keys in the portal every day; listing the keys of four
    apps at once, with the CLI, from her desk, is a sweep, not her routine."""
    rows = jane_history()
    portal = Actor(caller=JANE.caller, app_id=PORTAL, ip=JANE.ip, name=JANE.name)
    host = "MICROSOFT.WEB/SITES/HOST/LISTKEYS/ACTION"
    apps = ("func1", "func2", "func3", "func4")
    for day in workdays(START, 20, hour=14):
        for app in apps:
            rows += activity(JANE, day, PUBLISHXML, site_id(app))
        rows += activity(
            portal, day + timedelta(minutes=5), host, site_id("func1") + "/host/default"
        )
    cli = Actor(caller=JANE.caller, app_id=CLI, ip=JANE.ip, name=JANE.name)
    t = AFTER.replace(hour=14)
    for n, app in enumerate(apps):
        rows += activity(cli, t + timedelta(minutes=n), host, site_id(app) + "/host/default")
    alerts, _ = run_rows(rows)
    [alert] = of(alerts, CRED)
    assert alert["severity"] in ("medium", "high"), alert["reasons"]


@pytest.mark.parametrize(
    ("address", "alerts"),
    [("203.0.113.70", False), ("167.99.158.167", True)],
    ids=["from a hotel: a traveller", "from a rented server"],
)
def test_a_person_from_a_rented_server_is_not_a_traveller(run_rows, address, alerts):
    """Jane taking her own site's profile with her own tool from a new block alone weighs
    less (she travels); from a VPS at DigitalOcean it does not (`hosting_factor`)."""
    rows = jane_history()
    there = Actor(caller=JANE.caller, app_id=JANE.app_id, ip=address, name=JANE.name)
    rows += activity(there, AFTER.replace(hour=11), PUBLISHXML, site_id("app1"))
    found, _ = run_rows(rows)
    assert bool(of(found, CRED)) is alerts


@pytest.mark.parametrize(
    ("sites", "agents"),
    [
        (("orders-api", "orders-web", "payroll", "vault-ui"), "4.207.35."),
        (("orders-api", "orders-web", "billing-api", "billing-worker"), "167.99.158."),
        (("orders-api", "orders-web", "billing-api", "payroll-prod"), "4.207.35."),
    ],
    ids=[
        "sites no pipeline deploys",
        "from a rented server",
        "the production site of an app no pipeline deploys",
    ],
)
def test_a_new_pipeline_identity_unlike_the_family_alerts(run_rows, sites, agents):
    """A pipeline's new service connection taking its pipelines' sites is damped as their
    family; a new identity taking sites no pipeline deploys, or taking theirs from a VPS
    (DigitalOcean), or taking with them the production site of an app people deploy by hand
    (whose other site it did not take), is not one of the family."""
    rows = pipelines_deploying()
    for site in ("payroll", "vault-ui"):  # sites people deploy by hand, no pipeline
        for day in workdays(START, 20, hour=10):
            rows += activity(JANE, day, PUBLISHXML, site_id(site))
    rows += moved_pipelines(AFTER.replace(hour=15), agents, sites)
    alerts, _ = run_rows(rows)
    assert [a for a in of(alerts, CRED) if a["principal"]["id"] == NEW_CONNECTION]


def test_the_learning_days_quarantine_nothing(run_rows):
    """What the learning days see is history, alerting or not: activity on their last day
    is known two days later, not held back as an alert's novelty would be."""
    rows = jane_history()
    there = Actor(caller=JANE.caller, app_id=POWERSHELL, ip=FOREIGN, name=JANE.name)
    for day in (START + timedelta(days=18), AFTER):
        rows += activity(there, day.replace(hour=11), PUBLISHXML, site_id("app1"))
    alerts, _ = run_rows(rows, learning_days=19)
    assert not [a for a in of(alerts, CRED) if "NEW_NETWORK" in codes(a)]
    held, _ = run_rows(rows, learning_days=18)  # the same activity, alerted: held back
    assert [a for a in of(held, CRED) if "NEW_NETWORK" in codes(a)]


def test_a_campaign_that_skips_days_and_reads_settings_too_is_still_one(run_rows):
    """A thief who spaces the sites out (every other working day) and reads app settings
    from the block as well (looking, not working) still leaves one block that only takes:
    `CAMPAIGN`, each day within `campaign_days` of the one before."""
    there = replace(JANE, app_id=CLI, ip="203.0.113.45")
    rows = cli_history()
    for n, day in enumerate(list(workdays(AFTER, 8))[::2]):
        site = site_id(("orders-web", "billing-api", "search-web", "hr-api")[n])
        rows += activity(there, day + timedelta(minutes=30), PUBLISHXML, site)
        rows += activity(
            there, day + timedelta(minutes=31), CONFIG_LIST, site + "/config/appsettings"
        )
    alerts, _ = run_rows(rows)
    found = [a for a in of(alerts, CRED) if a["principal"]["name"] == JANE.name]
    assert any("CAMPAIGN" in codes(a) for a in found), [a["reasons"] for a in found]


@pytest.mark.parametrize(
    ("address", "tool"),
    [("203.0.113.77", CLI), ("203.0.113.77", POWERSHELL), ("167.99.158.167", None)],
    ids=["with a tool she never used", "with a tool only her peers use", "from a rented server"],
)
def test_a_trip_that_brings_something_more_is_no_trip(run_rows, address, tool):
    """A new block at a new hour is a trip only with nothing else new: with the Azure CLI she
    never used, with Azure PowerShell that only her colleague uses, or from a VPS at
    DigitalOcean, the same download at 04:00 alerts."""
    rows = jane_history(25)
    bo = Actor(caller="bo@contoso.com", app_id=POWERSHELL, ip="198.51.100.21", name="Bo")
    for day in workdays(START, 25, hour=13):
        rows += activity(bo, day, PUBLISHXML, site_id("app9"))
    there = replace(JANE, ip=address, app_id=tool or JANE.app_id)
    rows += activity(there, AFTER.replace(hour=4, minute=20), PUBLISHXML, site_id("app1"))
    alerts, _ = run_rows(rows)
    assert [a for a in of(alerts, CRED) if a["principal"]["name"] == JANE.name]


def test_a_newcomers_identity_from_a_rented_server_is_not_settling_in(run_rows):
    """Neo's third day from a VPS at DigitalOcean: not his peers' block, so not a newcomer
    settling in: it alerts."""
    alerts, _ = run_rows(neos_third_day(address="167.99.158.167"))
    assert [a for a in of(alerts, CRED) if a["principal"]["name"] == "Neo"]


@pytest.mark.parametrize(
    ("address", "jobs"),
    [
        ("4.207.35.53", ("continuous/sync",)),
        ("167.99.158.167", ("triggered/cleanup", "continuous/sync")),
    ],
    ids=["one job edited", "from a rented server"],
)
def test_a_publishing_login_that_is_no_release_is_hands_on(run_rows, address, jobs):
    """The site's credentials from a new block writing one job's files is someone at the
    console, and from a VPS even a rewrite of every job is: both alert as hands-on."""
    rows = release_of_two_jobs() + release_from(address, jobs)
    alerts, _ = run_rows(rows)
    assert [a for a in of(alerts, WEBJOB) if "LOGIN_THEN_JOB_FILES" in codes(a)]


def test_a_release_login_from_a_rented_server_is_no_hosted_agent(run_rows):
    """The same release with its login from a VPS at DigitalOcean: no hosted agent, the
    chain weighs fully and alerts."""
    rows = hosted_agent_releases() + release_through("167.99.158.167")
    alerts, _ = run_rows(rows)
    assert [a for a in of(alerts, CRED) if "DOWNLOAD_THEN_LOGIN" in codes(a)]


def test_a_dormant_identity_back_from_a_rented_server_is_not_settling_in(run_rows):
    """A leaver's identity used after seven weeks of silence (a dormant account, a favourite
    of attackers) from a VPS at DigitalOcean: not his peers' block, so not a leaver settling
    back in: it alerts."""
    for days in (2, 12):
        alerts, _ = run_rows(neos_return(address="167.99.158.167", days=days))
        assert [a for a in of(alerts, CRED) if a["principal"]["name"] == "Neo"]


@pytest.mark.parametrize(
    "address", ["4.207.35.53", "167.99.158.167"], ids=["another new block", "a rented server"]
)
def test_a_login_right_after_a_deployment_but_not_from_its_agent_is_still_hands_on(
    run_rows, address
):
    """The pipeline deploys app1 from its agent, and seconds later the site's credentials
    sign in to Kudu and write a job's files from elsewhere: not the deployment's own login.
    It still alerts (`LOGIN_THEN_JOB_FILES`); after Jane's download, it still chains."""
    rows = pipeline_deploys() + deployment_then(address, files=True)
    alerts, _ = run_rows(rows)
    assert [a for a in of(alerts, WEBJOB) if "LOGIN_THEN_JOB_FILES" in codes(a)]
    rows = jane_history()
    rows += activity(JANE, AFTER.replace(hour=15, minute=58), PUBLISHXML, site_id("app1"))
    alerts, _ = run_rows(rows + deployment_then(address))
    assert [a for a in of(alerts, CRED) if "DOWNLOAD_THEN_LOGIN" in codes(a)]


def test_a_principal_long_on_record_with_a_thin_history_is_not_settling_in(run_rows):
    """Neo's history is as short as a newcomer's (five days), but spread over five weeks: no
    newcomer. His session listing two function apps' keys with the CLI from the office
    alerts, as the same from a newcomer (`neos_third_day`) does not."""
    rows = [r for r in neos_third_day() if "neo@contoso.com" not in str(r.get("Caller"))]
    neo = Actor(caller="neo@contoso.com", app_id=VSCODE, ip="198.51.100.12", name="Neo")
    for week in range(5):
        rows += activity(
            neo, (START + timedelta(days=7 * week)).replace(hour=10), PUBLISHXML, site_id("app1")
        )
    cli = replace(neo, app_id=CLI)
    t = (START + timedelta(days=35)).replace(hour=10, minute=30)
    rows += activity(cli, t, PUBLISHXML, site_id("app2"))
    for n, app in enumerate(("func1", "func2")):
        rows += activity(cli, t + timedelta(minutes=3 + n), KEYS, site_id(app) + "/host/default")
    alerts, _ = run_rows(rows)
    assert [a for a in of(alerts, CRED) if a["principal"]["name"] == "Neo"]


def test_a_person_who_lists_her_apps_keys_routinely_dumping_every_functions_alerts(run_rows):
    """Jane lists the host keys of her two function apps in the portal every day and uses
    the CLI; listing the host keys and every function's keys of both with the CLI (eight
    sets) is a dump, not her routine: at least medium. The same two host keys alone are."""
    host = "MICROSOFT.WEB/SITES/HOST/LISTKEYS/ACTION"
    function = "MICROSOFT.WEB/SITES/FUNCTIONS/LISTKEYS/ACTION"
    portal = replace(JANE, app_id=PORTAL)
    cli = replace(JANE, app_id=CLI)
    rows = jane_history()
    for day in workdays(START, 20, hour=14):
        for app in ("func1", "func2"):
            rows += activity(cli, day, PUBLISHXML, site_id(app))
            rows += activity(
                portal, day + timedelta(minutes=5), host, site_id(app) + "/host/default"
            )
    t = AFTER.replace(hour=14, minute=20)
    for app in ("func1", "func2"):
        rows += activity(cli, t, host, site_id(app) + "/host/default")
        for n, name in enumerate(("orders", "refunds", "ledger")):
            rows += activity(
                cli,
                t + timedelta(seconds=10 * (n + 1)),
                function,
                site_id(app) + f"/functions/{name}",
            )
    alerts, _ = run_rows(rows)
    [alert] = [a for a in of(alerts, CRED) if a["principal"]["name"] == JANE.name]
    assert alert["severity"] in ("medium", "high"), alert["reasons"]
    assert "SITE_BURST" in codes(alert)


def test_a_first_key_listing_that_enumerates_an_apps_functions_is_a_sweep(run_rows):
    """Jane, who never listed function keys, lists func1's host keys and the secrets of two
    of its functions with the CLI, from the office in her hours: not a developer's first
    look at one function's key (a set or two), a script enumerating the app. A sweep
    (`SITE_BURST`), at least medium; with `own_app_key_sets` raised past the three sets it
    is only her first listing, and low."""
    host = "MICROSOFT.WEB/SITES/HOST/LISTKEYS/ACTION"
    secrets = "MICROSOFT.WEB/SITES/FUNCTIONS/LISTSECRETS/ACTION"
    cli = replace(JANE, app_id=CLI)
    rows = jane_history()
    for day in workdays(START, 20, hour=14):
        rows += activity(cli, day, PUBLISHXML, site_id("func1"))
    t = AFTER.replace(hour=14, minute=20)
    rows += activity(cli, t, host, site_id("func1") + "/host/default")
    for n, name in enumerate(("orders", "refunds")):
        rows += activity(
            cli,
            t + timedelta(seconds=5 * (n + 1)),
            secrets,
            site_id("func1") + f"/functions/{name}",
        )

    def janes_alert(settings: DetectionSettings) -> dict:
        alerts, _ = run_rows(rows, settings=settings)
        [alert] = [a for a in of(alerts, CRED) if a["principal"]["name"] == JANE.name]
        return alert

    swept = janes_alert(DetectionSettings())
    assert swept["severity"] in ("medium", "high"), swept["reasons"]
    assert "its first listing" in next(
        r["message"] for r in swept["reasons"] if r["code"] == "SITE_BURST"
    )
    alone = janes_alert(DetectionSettings(own_app_key_sets=4))
    assert "SITE_BURST" not in codes(alone)
    assert alone["severity"] == "low"


def test_a_refused_sweep_of_another_teams_function_keys_alerts(run_rows):
    """Jane's identity, with the CLI she uses daily, from her desk in her hours, tries to
    list the host keys and two functions' secrets of two apps she never worked on, and is
    refused each time: only two sites, so no `FAILURES` by breadth, but a script's sweep that
    found no role to use (`SITE_BURST`), at least medium. Without the sweep's weight it
    would be below the alert threshold."""
    cli = replace(JANE, app_id=CLI)
    rows = jane_history()
    for day in workdays(START, 20, hour=14):
        rows += activity(cli, day, PUBLISHXML, site_id("func1"))
    at = AFTER.replace(hour=14, minute=20)
    rows += refused_key_listings(cli, at, ("pay-func", "pay-func-prod"), ("orders", "refunds"))
    alerts, _ = run_rows(rows)
    [alert] = of(alerts, CRED)
    assert alert["severity"] in ("medium", "high"), alert["reasons"]
    assert {"FAILURES", "SITE_BURST"} <= codes(alert)
    swept = next(r for r in alert["reasons"] if r["code"] == "SITE_BURST")
    assert swept["message"].startswith("Tried to list 6 sets of function keys and secrets")
    unweighed, _ = run_rows(rows, settings=DetectionSettings(weight_refused_key_sweep=0))
    assert of(unweighed, CRED) == []


def test_a_rotation_of_one_app_does_not_cover_a_sweep_of_the_others(run_rows):
    """Kim's identity lists and changes func-orders' host keys, as a rotation would, then
    lists those of func-billing and func-search and changes neither: one app listed after
    the last change is a rotation's next step, two are a sweep under its cover, and alert
    (`SITE_BURST`)."""
    rows = sres_at_work() + rotation(KIM, AFTER.replace(hour=11), apps=SRE_APPS[:1])
    t = AFTER.replace(hour=11, minute=1)
    for n, app in enumerate(SRE_APPS[1:]):
        rows += activity(KIM, t + timedelta(seconds=20 * n), KEYS, site_id(app) + "/host/default")
    alerts, _ = run_rows(rows)
    [alert] = [a for a in of(alerts, CRED) if a["principal"]["name"] == KIM.name]
    assert "SITE_BURST" in codes(alert)


def test_a_person_from_a_range_the_operator_lists_as_rented_is_not_a_traveller(run_rows):
    """203.0.113.70 is a hotel's to the built-in list (a traveller: no alert); an operator
    who knows it is a VPS provider's lists it (`hosting_ranges`), and Jane taking her own
    site's profile from there alerts, naming the provider."""
    rows = jane_history()
    there = Actor(caller=JANE.caller, app_id=JANE.app_id, ip="203.0.113.70", name=JANE.name)
    rows += activity(there, AFTER.replace(hour=11), PUBLISHXML, site_id("app1"))
    quiet, _ = run_rows(rows)
    assert of(quiet, CRED) == []
    listed, _ = run_rows(rows, settings=DetectionSettings(hosting_ranges="Acme VPS=203.0.113.0/24"))
    [alert] = of(listed, CRED)
    assert "Acme VPS" in next(r["message"] for r in alert["reasons"] if r["code"] == "NEW_NETWORK")


def test_a_test_sites_edit_does_not_damp_a_first_run_of_a_production_job(run_rows):
    """In the sitting of a Kudu edit of the test site's job (development), Jane's identity
    also runs production's job for the first time: that run is new to her, so its novelty
    keeps its weight (only the edit is development), and the sitting alerts."""
    rows = team_on_dev_and_prod()
    at = AFTER.replace(hour=11)
    rows += kudu_edit("orders-api-test", at)
    rows += job_runs(JANE, at + timedelta(minutes=4), 1, timedelta(0), "orders-api-prod", "cleanup")
    alerts, _ = run_rows(rows)
    [alert] = janes_edits(alerts)
    new = next(r for r in alert["reasons"] if r["code"] == "NEW_OPERATION")
    assert "development" not in new["message"]
