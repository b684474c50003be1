"""The product-teams shape (issue #22): its benign habits, its hard attacks, and a default
shape left exactly as it was."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from detectors.model.errors import ConfigurationError
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
from detectors.simulation.organisation import TEAM_NAMES, build_organisation
from detectors.simulation.product_teams import ProductTeams, build_product_teams

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
    pipelines=3,
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


def test_pipelines_move_to_a_new_service_connection_and_new_agents(
    benign: list[dict[str, Any]], cast: ProductTeams
) -> None:
    (connection,) = [move for move in cast.moves if move.kind == "connection"]
    moved = _by(benign, connection.successor.identity)
    old = _by(benign, build_organisation(TEAMS).pipelines[connection.index].identity)
    new_pool = [row for row in _ends(benign) if row["CallerIpAddress"].startswith("20.82.")]

    assert moved
    assert min(_day(row) for row in moved) >= date(2026, 11, 3)
    assert max(_day(row) for row in old) < min(_day(row) for row in moved)
    assert {_site(row) for row in moved} <= {_site(row) for row in old}
    assert new_pool
    assert min(_day(row) for row in new_pool) >= date(2026, 11, 3)


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
