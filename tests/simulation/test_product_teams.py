"""The product-teams shape (issue #22): its benign habits, its hard attacks, and a default
shape left exactly as it was."""

from __future__ import annotations

import hashlib
import itertools
from collections import defaultdict
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from detectors.model.errors import ConfigurationError
from detectors.settings.detection import DetectionSettings
from detectors.simulation import (
    ALL_ATTACKS,
    CREDENTIAL_DOWNLOAD,
    PRODUCT_TEAMS,
    PRODUCT_TEAMS_ATTACKS,
    OrgProfile,
    ScenarioLabel,
    all_attacks,
    labels,
    read_profile,
    row_event_id,
    simulate,
    write_dataset,
)
from detectors.simulation.identities import Identity
from detectors.simulation.network import (
    EU_DST,
    MOVED_HOSTED_AGENTS,
    NEW_AGENT_POOL,
    OFFICES,
    OTHER_GEOGRAPHY_AGENTS,
    TRAVEL,
    TRAVEL_RESIDENTIAL,
    US_DST,
    summer_time,
)
from detectors.simulation.organisation import TEAM_NAMES, build_organisation
from detectors.simulation.product_teams import (
    PipelineMove,
    ProductTeams,
    Sre,
    build_product_teams,
)

PORTAL = "c44b4083-3bb0-49c1-b47d-974e53cbdf3c"
VS_CODE = "aebc6443-996d-45c2-90f0-388ff96faa56"
# Two weeks around the third of November (the monthly rotation) and the second Tuesday of
# November (the quarterly DR drill); six learning days.
TEAMS = OrgProfile(
    start=datetime(2026, 10, 28, tzinfo=UTC),
    days=16,
    learning_days=6,
    developers=16,
    admins=2,
    pipelines=6,
    managed_identities=1,
    sites=22,
    shape=PRODUCT_TEAMS,
    attacks=all_attacks(PRODUCT_TEAMS),
)
# The default shape's small dataset, and the digests of its rows and labels as the simulator
# wrote them before the product-teams shape existed (commit c6cfc14).
DEFAULT_TINY = OrgProfile(
    start=datetime(2026, 10, 1, tzinfo=UTC),
    days=5,
    learning_days=2,
    developers=5,
    admins=1,
    pipelines=2,
    managed_identities=1,
    sites=8,
)
DEFAULT_TINY_ROWS = "4d2b053bfd61a619fb498a41c438b7bbfaf7bdf92363c9749168e00db9263728"
DEFAULT_TINY_LABELS = "bc609dc9fb0832a7af53a83fddb5103f94a7d28f3f8770a1f12ef184f420de65"


@pytest.fixture(scope="module")
def rows() -> list[dict[str, Any]]:
    return list(simulate(TEAMS))


@pytest.fixture(scope="module")
def scenarios() -> dict[str, ScenarioLabel]:
    return {label.kind: label for label in labels(TEAMS)}


@pytest.fixture(scope="module")
def benign(rows: list[dict[str, Any]], scenarios: dict[str, ScenarioLabel]) -> list[dict[str, Any]]:
    attack = {event_id for label in scenarios.values() for event_id in label.event_ids}
    return [row for row in rows if row_event_id(row) not in attack]


def _ends(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """AzureActivity end rows: one per call."""
    return [
        row
        for row in rows
        if row["Type"] == "AzureActivity"
        and row["ActivityStatusValue"] in {"Success", "Succeeded", "Failure", "Failed"}
    ]


def _by(rows: list[dict[str, Any]], identity: Identity) -> list[dict[str, Any]]:
    """End rows of one principal (`Caller` is a UPN or, for applications, the object id)."""
    return [row for row in _ends(rows) if row["Caller"] == identity.caller]


@pytest.fixture(scope="module")
def cast() -> ProductTeams:
    return build_product_teams(build_organisation(TEAMS), TEAMS)


def _claims(row: dict[str, Any]) -> dict[str, Any]:
    claims: dict[str, Any] = orjson.loads(row["Claims"])
    return claims


def _operation(row: dict[str, Any]) -> str:
    return str(row["OperationNameValue"]).lower()


def _site(row: dict[str, Any]) -> str:
    """The app's name (a slot's row names its app)."""
    return str(row["_ResourceId"]).split("/sites/")[1].split("/")[0]


def _day(row: dict[str, Any]) -> date:
    return date.fromisoformat(row["TimeGenerated"][:10])


def test_the_default_shape_writes_what_it_wrote_before(tmp_path: Path) -> None:
    write_dataset(DEFAULT_TINY, tmp_path / "rows.jsonl", tmp_path / "labels.json")

    assert hashlib.sha256((tmp_path / "rows.jsonl").read_bytes()).hexdigest() == DEFAULT_TINY_ROWS
    assert (
        hashlib.sha256((tmp_path / "labels.json").read_bytes()).hexdigest() == DEFAULT_TINY_LABELS
    )
    assert "shape" not in orjson.loads((tmp_path / "labels.json").read_bytes())["profile"]


def test_the_default_shape_injects_the_nine_kinds_it_always_did() -> None:
    assert all_attacks("default") == ALL_ATTACKS
    assert len(ALL_ATTACKS) == 9
    assert not set(ALL_ATTACKS) & set(PRODUCT_TEAMS_ATTACKS)


def test_the_hard_kinds_need_the_product_teams_shape() -> None:
    with pytest.raises(ConfigurationError, match="need shape 'product-teams'"):
        replace(DEFAULT_TINY, attacks=("slow-campaign",))
    with pytest.raises(ConfigurationError, match="unknown shape"):
        replace(DEFAULT_TINY, shape="conglomerate")


def test_the_product_teams_shape_is_deterministic_and_stored_in_the_labels(
    tmp_path: Path,
) -> None:
    small = replace(TEAMS, days=8, learning_days=2, attacks=())
    write_dataset(small, tmp_path / "a.jsonl.gz", tmp_path / "a.json")
    write_dataset(small, tmp_path / "b.jsonl.gz", tmp_path / "b.json")
    write_dataset(replace(small, seed=8), tmp_path / "c.jsonl.gz", tmp_path / "c.json")

    assert (tmp_path / "a.jsonl.gz").read_bytes() == (tmp_path / "b.jsonl.gz").read_bytes()
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    assert (tmp_path / "a.jsonl.gz").read_bytes() != (tmp_path / "c.jsonl.gz").read_bytes()
    assert read_profile(tmp_path / "a.json") == small


def test_site_names_tell_team_and_environment(rows: list[dict[str, Any]]) -> None:
    sites = {_site(row) for row in _ends(rows)}

    for name in sites:
        words = name.removeprefix("func-").split("-")
        assert words[0].rstrip("0123456789") in TEAM_NAMES
        assert words[-1] in {"prod", "test", "dev"}


def test_developers_open_their_team_function_keys_in_the_portal(
    benign: list[dict[str, Any]],
) -> None:
    listings = [
        row
        for row in _ends(benign)
        if "/host/listkeys/action" in _operation(row)
        and _claims(row).get("appid") == PORTAL
        and row["ActivityStatusValue"] in {"Success", "Succeeded"}
    ]
    function_keys = [
        row
        for row in _ends(benign)
        if "/functions/listkeys/action" in _operation(row) and _claims(row).get("appid") == PORTAL
    ]

    assert len({row["Caller"] for row in listings}) >= 2
    assert function_keys
    assert all(_site(row).startswith("func-") for row in listings)


def test_developers_edit_webjob_files_in_kudu_on_dev_and_test_sites(
    benign: list[dict[str, Any]],
) -> None:
    logins: defaultdict[str, list[tuple[datetime, bool]]] = defaultdict(list)
    for row in benign:
        if row["Type"] == "AppServiceAuditLogs":
            logins[row["_ResourceId"]].append((_moment(row), str(row["User"]).startswith("$")))
    edited: set[str] = set()
    for row in benign:
        path = row.get("Path", "").lower().replace("\\", "/")
        if row["Type"] != "AppServiceFileAuditLogs" or "app_data/jobs/" not in path:
            continue
        at = _moment(row)
        near = [
            basic
            for when, basic in logins[row["_ResourceId"]]
            if -30 * 60 <= (at - when).total_seconds() <= 40 * 60
        ]
        # An Entra (console) login shortly before, and no deployment's `$app` login around.
        if near and not any(near):
            edited.add(_site(row))

    assert edited
    assert all(site.endswith(("-dev", "-test")) for site in edited)


def _moment(row: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(row["TimeGenerated"][:19])


def test_the_publishing_password_rotates_on_the_third_of_the_month(
    benign: list[dict[str, Any]], cast: ProductTeams
) -> None:
    rotation = _by(benign, cast.rotation.identity)
    resets = [row for row in rotation if "newpassword" in _operation(row)]
    downloads = [row for row in rotation if "publishxml" in _operation(row)]

    assert resets
    assert len(downloads) == len(resets)
    assert {_day(row) for row in rotation} == {date(2026, 11, 3)}
    assert all(_site(row).endswith("-prod") for row in resets)


def test_backup_reads_settings_nightly_and_drills_once_a_quarter(
    benign: list[dict[str, Any]], cast: ProductTeams
) -> None:
    backup = _by(benign, cast.backup.identity)
    nightly = {_day(row) for row in backup if row["_ResourceId"].endswith("/config/backup")}
    drill = {_day(row) for row in backup if "publishxml" in _operation(row)}

    assert len(nightly) >= 15
    assert drill == {date(2026, 11, 10)}


def test_the_hourly_inventory_reads_metadata_only(
    benign: list[dict[str, Any]], cast: ProductTeams
) -> None:
    hourly = _by(benign, cast.hourly.identity)
    hours = {row["TimeGenerated"][:13] for row in hourly}

    assert len(hours) >= 24 * 15
    assert all(row["_ResourceId"].endswith("/config/metadata") for row in hourly)


def _moves(cast: ProductTeams, kind: str) -> list[PipelineMove]:
    return [move for move in cast.moves if move.kind == kind]


def _logins(rows: list[dict[str, Any]], site: str, address: str) -> list[dict[str, Any]]:
    """`$app` logins (basic auth with the site's publishing credentials) from an address."""
    return [
        row
        for row in rows
        if row["Type"] == "AppServiceAuditLogs"
        and str(row["User"]).startswith("$")
        and _site(row) == site
        and row["UserAddress"] == address
    ]


def test_a_new_service_principal_redeploys_the_old_pipelines_sites_after_learning(
    benign: list[dict[str, Any]], cast: ProductTeams
) -> None:
    org = build_organisation(TEAMS)
    (github,) = _moves(cast, "connection")
    shared = _moves(cast, "shared-connection")
    assert org.pipelines[github.index].provider == "github-actions"
    assert {org.pipelines[move.index].provider for move in shared} == {"azure-devops"}
    assert len({move.successor.identity.object_id for move in shared}) == 1
    assert len(shared) == 2
    # From the new organisation's geography: hosted agents of ranges never used before.
    for move in shared:
        addresses = {row["CallerIpAddress"] for row in _by(benign, move.successor.identity)}
        assert addresses
        assert all(ip.startswith(OTHER_GEOGRAPHY_AGENTS) for ip in addresses)
    for move in (github, shared[0]):
        moved = _by(benign, move.successor.identity)
        old = _by(benign, org.pipelines[move.index].identity)
        first = min(_day(row) for row in moved)

        assert first == TEAMS.start.date() + timedelta(days=move.day)
        assert move.day >= TEAMS.learning_days
        assert max(_day(row) for row in old) <= first
        # Federated credentials: no secret (`appidacr`/`azpacr` 2), the app's own client.
        assert all(_claims(row).get("appidacr", _claims(row).get("azpacr")) == "2" for row in moved)
    # The shared connection deploys what both old pipelines deployed; its re-run day takes
    # the credentials of their sites, then logs in to them from the agents.
    sites = {_site(row) for move in shared for row in _by(benign, move.successor.identity)}
    old_sites = {
        _site(row) for move in shared for row in _by(benign, org.pipelines[move.index].identity)
    }
    assert sites <= old_sites
    # Its first quarter of an hour: both pipelines re-run at once, taking the credentials of
    # the sites of both, then logging in to them from the new agents.
    rows = _by(benign, shared[0].successor.identity)
    first = _moment(rows[0])
    quarter = [row for row in rows if (_moment(row) - first).total_seconds() <= 15 * 60]
    taken = {
        _site(row)
        for row in quarter
        if "publishxml" in _operation(row) or row["_ResourceId"].endswith("publishingcredentials")
    }
    for move in shared:
        deployed = {_site(row) for row in _by(benign, org.pipelines[move.index].identity)}
        assert taken & deployed
    assert len(taken) >= 4
    assert taken <= old_sites
    assert any(_logins(benign, site, row["CallerIpAddress"]) for site in taken for row in quarter)


def test_pipelines_move_to_new_hosted_agent_ranges_and_a_scale_set_identity(
    benign: list[dict[str, Any]], cast: ProductTeams
) -> None:
    org = build_organisation(TEAMS)
    (hosted,) = _moves(cast, "agents")
    (pool,) = _moves(cast, "agent-identity")
    same = _by(benign, hosted.successor.identity)
    move_day = TEAMS.start.date() + timedelta(days=hosted.day)
    before = {row["CallerIpAddress"] for row in same if _day(row) < move_day}
    after = {row["CallerIpAddress"] for row in same if _day(row) > move_day}

    assert hosted.successor.identity == org.pipelines[hosted.index].identity
    assert after
    assert all(ip.startswith(MOVED_HOSTED_AGENTS["github-actions"]) for ip in after)
    assert not any(ip.startswith(MOVED_HOSTED_AGENTS["github-actions"]) for ip in before)
    managed = _by(benign, pool.successor.identity)
    assert managed
    assert all(row["CallerIpAddress"].startswith(NEW_AGENT_POOL) for row in managed)
    assert all(
        _claims(row)["xms_mirid"] == pool.successor.identity.mi_resource_id for row in managed
    )
    assert (
        "/userassignedidentities/id-build-agents-"
        in str(pool.successor.identity.mi_resource_id).lower()
    )
    assert min(_day(row) for row in managed) == TEAMS.start.date() + timedelta(days=pool.day)


def test_joiners_take_publish_profiles_in_their_first_week(
    benign: list[dict[str, Any]],
) -> None:
    first_seen: dict[str, date] = {}
    downloads: defaultdict[str, set[date]] = defaultdict(set)
    for row in _ends(benign):
        if "@contoso.com" not in row["Caller"]:
            continue
        first_seen.setdefault(row["Caller"], _day(row))
        if "publishxml" in _operation(row):
            downloads[row["Caller"]].add(_day(row))
    joiners = [caller for caller, day in first_seen.items() if day >= date(2026, 11, 3)]

    assert joiners
    assert any(
        len({d for d in downloads[caller] if (d - first_seen[caller]).days < 7}) >= 2
        for caller in joiners
    )


def test_sres_rotate_function_keys_routinely_and_on_call(benign: list[dict[str, Any]]) -> None:
    writes = [row for row in _ends(benign) if "/host/functionkeys/write" in _operation(row)]
    sres = {row["Caller"] for row in writes if row["Caller"].startswith(("priya.", "mateo."))}

    assert sres == {"priya.raman@contoso.com", "mateo.ferreira@contoso.com"}


def test_guests_work_on_their_team_nonproduction_sites(benign: list[dict[str, Any]]) -> None:
    guests = [row for row in _ends(benign) if "#EXT#" in row["Caller"]]

    assert guests
    assert all(row["ActivityStatusValue"] in {"Success", "Succeeded"} for row in guests)
    assert all(_site(row).endswith(("-dev", "-test")) for row in guests)
    assert all(row["CallerIpAddress"].startswith(("194.9.", "212.58.")) for row in guests)


def test_every_kind_is_injected_and_labelled(scenarios: dict[str, ScenarioLabel]) -> None:
    assert sorted(scenarios) == sorted(all_attacks(PRODUCT_TEAMS))
    for kind in PRODUCT_TEAMS_ATTACKS:
        assert scenarios[kind].detections == (CREDENTIAL_DOWNLOAD,)
        assert scenarios[kind].start >= TEAMS.start.replace(day=3, month=11)


def _attack_rows(rows: list[dict[str, Any]], label: ScenarioLabel) -> list[dict[str, Any]]:
    wanted = set(label.event_ids)
    return [row for row in rows if row_event_id(row) in wanted]


def test_an_admin_takeover_spans_two_working_days_from_three_hosting_addresses(
    rows: list[dict[str, Any]], scenarios: dict[str, ScenarioLabel]
) -> None:
    calls = _ends(_attack_rows(rows, scenarios["admin-takeover"]))
    days = {_day(row) for row in calls}

    assert len(calls) == 6
    assert all("publishxml" in _operation(row) for row in calls)
    assert all(_claims(row)["appid"] == VS_CODE for row in calls)
    assert len({row["CallerIpAddress"] for row in calls}) == 3
    assert len(days) == 2
    assert all(day.weekday() < 5 for day in days)
    assert all(_site(row).endswith("-prod") for row in calls)


def test_a_slow_campaign_takes_one_profile_a_day_from_one_address(
    rows: list[dict[str, Any]], scenarios: dict[str, ScenarioLabel]
) -> None:
    calls = _ends(_attack_rows(rows, scenarios["slow-campaign"]))

    assert len(calls) == 5
    assert len({_day(row) for row in calls}) == 5
    assert len({row["_ResourceId"] for row in calls}) == 5
    assert len({row["CallerIpAddress"] for row in calls}) == 1
    assert all(row["ActivityStatusValue"] in {"Success", "Succeeded"} for row in calls)


def test_a_denied_guest_and_a_developer_share_one_source(
    rows: list[dict[str, Any]], scenarios: dict[str, ScenarioLabel]
) -> None:
    label = scenarios["shared-source"]
    calls = _ends(_attack_rows(rows, label))
    guest = [row for row in calls if "#EXT#" in row["Caller"]]
    developer = [row for row in calls if row["Caller"] == label.principal_name]

    assert len(guest) == 8
    assert all(row["ActivitySubstatusValue"] == "Forbidden" for row in guest)
    assert len(developer) == 2
    assert all(row["ActivityStatusValue"] in {"Success", "Succeeded"} for row in developer)
    assert {row["_ResourceId"] for row in developer} <= {row["_ResourceId"] for row in guest}
    assert len({row["CallerIpAddress"] for row in calls}) == 1
    gap = datetime.fromisoformat(developer[0]["TimeGenerated"][:19]) - datetime.fromisoformat(
        guest[-1]["TimeGenerated"][:19]
    )
    assert 9 * 60 <= gap.total_seconds() <= 12 * 60


def test_a_joiner_takes_the_team_production_profiles_in_one_sitting_early_in_week_one(
    benign: list[dict[str, Any]],
) -> None:
    org = build_organisation(TEAMS)
    joiners = [dev for dev in org.developers if dev.join_day]
    assert joiners
    found = []
    for dev in joiners:
        joined = TEAMS.start.date() + timedelta(days=dev.join_day)
        team = org.team_sites(dev.team)
        prod = {site.key for site in team if site.app.env == "prod"}
        # Every production site and slot, with test sites up to four where there are.
        rest = [site for site in team if site.app.env != "prod" and site.slot is None]
        wanted = len(prod) + min(len(rest), max(0, 4 - len(prod)))
        taken = [row for row in _by(benign, dev.identity) if "publishxml" in _operation(row)]
        for row in taken:
            sitting = {
                other["_ResourceId"]
                for other in taken
                if 0 <= (_moment(other) - _moment(row)).total_seconds() <= 30 * 60
            }
            if prod <= sitting and len(sitting) >= wanted:
                found.append((_day(row) - joined).days)
    assert found
    assert all(1 <= days <= 6 for days in found)


def test_another_sre_rotates_the_routine_sres_function_keys_once_after_learning(
    benign: list[dict[str, Any]], cast: ProductTeams
) -> None:
    routine, cover = cast.sres[0], cast.sres[cast.cover]
    cover_day = TEAMS.start.date() + timedelta(days=cast.cover_day)

    def writes(sre: Sre) -> list[dict[str, Any]]:
        return [
            row
            for row in _by(benign, sre.identity)
            if "/host/functionkeys/write" in _operation(row)
        ]

    assert routine.routine
    assert not cover.routine
    assert cast.cover_day >= TEAMS.learning_days
    assert {_day(row) for row in writes(cover)} == {cover_day}
    assert cover_day not in {_day(row) for row in writes(routine)}
    rotated = {site.app.name for site in cast.rotated}
    assert len(rotated) >= 2
    assert {_site(row) for row in writes(cover)} == rotated
    assert {_site(row) for row in writes(routine)} == rotated
    assert len({_day(row) for row in writes(routine)}) >= 1


def test_daylight_saving_changes_on_the_european_and_american_sundays() -> None:
    assert [summer_time(EU_DST, date(2026, 10, d)) for d in (24, 25)] == [True, False]
    assert [summer_time(EU_DST, date(2026, 3, d)) for d in (28, 29)] == [False, True]
    assert [summer_time(US_DST, date(2026, 10, 31)), summer_time(US_DST, date(2026, 11, 1))] == [
        True,
        False,
    ]
    assert [summer_time(US_DST, date(2026, 3, d)) for d in (7, 8)] == [False, True]
    org = build_organisation(TEAMS)
    offices = {dev.office.city: dev.office for dev in org.developers}
    assert offices["New York"].offset_on(date(2026, 10, 30)) == -240
    assert offices["New York"].offset_on(date(2026, 11, 2)) == -300
    assert all(
        office.offset_on(date(2026, 12, 1)) == office.utc_offset_minutes for office in OFFICES
    )


def _summer_minutes(rows: list[dict[str, Any]], first: date, last: date) -> list[int]:
    """Minutes of the day, in New York's summer time (UTC-4), of weekday rows between two
    dates, from 06:00 to 18:00."""
    minutes = [
        (_moment(row).hour * 60 + _moment(row).minute - 240) % 1440
        for row in rows
        if first <= _day(row) <= last and _day(row).weekday() < 5
    ]
    return [minute for minute in minutes if 6 * 60 <= minute < 18 * 60]


def test_american_developers_start_an_hour_later_in_utc_after_the_change(
    benign: list[dict[str, Any]],
) -> None:
    org = build_organisation(TEAMS)
    americans = [dev for dev in org.developers if dev.office.country == "US" and not dev.join_day]
    assert americans
    for dev in americans:
        rows = _by(benign, dev.identity)
        start = dev.day_start_minute
        before = _summer_minutes(rows, date(2026, 10, 28), date(2026, 10, 31))
        after = _summer_minutes(rows, date(2026, 11, 2), date(2026, 11, 13))
        # In summer time the day starts at its start; from November 1st an hour later in
        # UTC, so in summer-time terms nothing happens in the first hour any more.
        assert before
        assert min(before) >= start
        assert min(after) >= start + 60
        assert [minute for minute in after if minute < start + 180]


def test_travellers_work_a_few_days_from_abroad_with_their_usual_tools(
    benign: list[dict[str, Any]],
) -> None:
    org = build_organisation(TEAMS)
    abroad = tuple(p for group in (*TRAVEL.values(), *TRAVEL_RESIDENTIAL.values()) for p in group)
    travellers = [
        dev
        for dev in org.developers
        if dev.trip is not None
        and dev.trip.first_day >= TEAMS.learning_days
        and dev.trip.last_day - dev.trip.first_day >= 2
        and (TEAMS.start.date() + timedelta(days=dev.trip.first_day)).weekday() in (0, 1)
    ]
    assert travellers
    for dev in travellers:
        assert dev.trip is not None
        rows = _by(benign, dev.identity)
        start = TEAMS.start.date()
        away = [
            row
            for row in rows
            if dev.trip.first_day <= (_day(row) - start).days <= dev.trip.last_day
            and row["CallerIpAddress"] == dev.trip.address
        ]
        before = {
            _claims(row)["appid"] for row in rows if (_day(row) - start).days < dev.trip.first_day
        }
        assert dev.trip.address.startswith(abroad)
        assert len({_day(row) for row in away}) >= 2
        assert {_claims(row)["appid"] for row in away} <= before


# Nine weeks, so that a leaver can be away longer than the baselines remember and come back.
LONG = OrgProfile(
    start=datetime(2026, 10, 1, tzinfo=UTC),
    days=63,
    learning_days=28,
    developers=6,
    admins=0,
    pipelines=1,
    managed_identities=0,
    sites=6,
    shape=PRODUCT_TEAMS,
    attacks=(),
)


def test_a_leaver_comes_back_after_longer_than_the_baselines_remember() -> None:
    org = build_organisation(LONG)
    (leaver,) = [dev for dev in org.developers if len(dev.days_off) > 10]
    days = sorted({_day(row) for row in _by(list(simulate(LONG)), leaver.identity)})
    gaps = [(later - earlier).days for earlier, later in itertools.pairwise(days)]
    back = days[gaps.index(max(gaps)) + 1]

    assert max(gaps) > DetectionSettings().baseline_max_age_days
    assert days[0] < LONG.start.date() + timedelta(days=7)
    assert (back - LONG.start.date()).days >= LONG.learning_days
    assert len([day for day in days if day >= back]) >= 2
