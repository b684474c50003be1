"""The activity simulator: determinism, the export format, and labels that name the attack rows."""

from __future__ import annotations

import gzip
import itertools
import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from detectors.model.errors import ConfigurationError
from detectors.simulation import (
    ALL_ATTACKS,
    ATTACK_DETECTIONS,
    OrgProfile,
    ScenarioLabel,
    labels,
    read_labels,
    read_profile,
    row_event_id,
    simulate,
    write_dataset,
)
from detectors.simulation.network import attacker_prefixes, benign_prefixes

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
START = datetime(2026, 10, 1, tzinfo=UTC)
# Small enough to run in about a second, big enough for every actor and attack.
SMALL = OrgProfile(
    start=START,
    days=16,
    learning_days=13,
    developers=5,
    admins=1,
    pipelines=2,
    managed_identities=1,
    sites=8,
)
TINY = replace(SMALL, days=5, learning_days=2)

CLI = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
PORTAL = "c44b4083-3bb0-49c1-b47d-974e53cbdf3c"
OID = "http://schemas.microsoft.com/identity/claims/objectidentifier"
TID = "http://schemas.microsoft.com/identity/claims/tenantid"
STARTS = {"Start", "Started"}
MIDDLES = {"Accept", "Accepted"}
ENDS = {"Success", "Succeeded", "Failure", "Failed"}
FAILURES = {"Failure", "Failed"}
LEGACY = {"Started", "Accepted", "Succeeded", "Failed"}


@pytest.fixture(scope="module")
def rows() -> list[dict[str, Any]]:
    return list(simulate(SMALL))


@pytest.fixture(scope="module")
def scenarios() -> list[ScenarioLabel]:
    return labels(SMALL)


@pytest.fixture(scope="module")
def labelled(scenarios: list[ScenarioLabel]) -> dict[str, ScenarioLabel]:
    return {event_id: label for label in scenarios for event_id in label.event_ids}


def activity(rows: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    return (row for row in rows if row["Type"] == "AzureActivity")


def test_the_same_profile_writes_the_same_bytes(tmp_path: Path) -> None:
    first = write_dataset(TINY, tmp_path / "a.jsonl.gz", tmp_path / "a.labels.json")
    second = write_dataset(TINY, tmp_path / "b.jsonl.gz", tmp_path / "b.labels.json")

    assert first == second > 1000
    assert (tmp_path / "a.jsonl.gz").read_bytes() == (tmp_path / "b.jsonl.gz").read_bytes()
    assert (tmp_path / "a.labels.json").read_bytes() == (tmp_path / "b.labels.json").read_bytes()


def test_another_seed_gives_other_rows_and_labels(tmp_path: Path) -> None:
    write_dataset(TINY, tmp_path / "a.jsonl", tmp_path / "a.json")
    write_dataset(replace(TINY, seed=8), tmp_path / "b.jsonl", tmp_path / "b.json")

    assert (tmp_path / "a.jsonl").read_bytes() != (tmp_path / "b.jsonl").read_bytes()
    assert read_labels(tmp_path / "a.json") != read_labels(tmp_path / "b.json")


def test_plain_and_gzip_datasets_hold_the_same_rows(tmp_path: Path) -> None:
    count = write_dataset(TINY, tmp_path / "rows.jsonl", tmp_path / "plain.json")
    write_dataset(TINY, tmp_path / "rows.jsonl.gz", tmp_path / "packed.json")

    plain = (tmp_path / "rows.jsonl").read_bytes()
    assert gzip.decompress((tmp_path / "rows.jsonl.gz").read_bytes()) == plain
    assert plain.count(b"\n") == count
    assert orjson.loads((tmp_path / "plain.json").read_bytes())["rows"] == count


def test_rows_come_sorted_by_time_generated(rows: list[dict[str, Any]]) -> None:
    times = [row["TimeGenerated"] for row in rows]

    assert times == sorted(times)
    assert times[0] >= "2026-10-01T00:00:00.0000000Z"
    assert all(len(t) == 28 and t.endswith("Z") and t[19] == "." for t in times)


def test_every_row_is_one_of_the_three_tables(rows: list[dict[str, Any]]) -> None:
    tables = Counter(row["Type"] for row in rows)

    assert set(tables) == {"AzureActivity", "AppServiceAuditLogs", "AppServiceFileAuditLogs"}
    assert all(count > 100 for count in tables.values())


def test_every_event_id_is_unique(rows: list[dict[str, Any]]) -> None:
    counts = Counter(row_event_id(row) for row in rows)

    assert counts.most_common(1)[0][1] == 1


def test_every_labelled_event_id_is_a_row_of_its_scenario(
    rows: list[dict[str, Any]],
    scenarios: list[ScenarioLabel],
    labelled: dict[str, ScenarioLabel],
) -> None:
    found: Counter[str] = Counter()
    for row in rows:
        label = labelled.get(row_event_id(row))
        if label is None:
            continue
        found[label.id] += 1
        assert label.start <= _time(row) <= label.end
        assert any(row["_ResourceId"].startswith(site) for site in label.sites)
        if row["Type"] == "AzureActivity":
            assert row["Caller"] in (label.principal_name, label.principal_id)

    assert found == {label.id: len(label.event_ids) for label in scenarios}


def test_each_attack_kind_is_injected_once_after_the_learning_period(
    scenarios: list[ScenarioLabel],
) -> None:
    learned = SMALL.start + timedelta(days=SMALL.learning_days)

    assert sorted(label.kind for label in scenarios) == sorted(ALL_ATTACKS)
    for label in scenarios:
        assert label.detections == ATTACK_DETECTIONS[label.kind]
        assert learned <= label.start <= label.end < SMALL.end
        assert label.event_ids
        assert label.sites
        assert label.description


def test_removing_the_attacks_removes_exactly_the_labelled_rows(
    rows: list[dict[str, Any]],
    labelled: dict[str, ScenarioLabel],
) -> None:
    benign = (orjson.dumps(row) for row in rows if row_event_id(row) not in labelled)
    alone = (orjson.dumps(row) for row in simulate(replace(SMALL, attacks=())))

    for left, right in itertools.zip_longest(benign, alone):
        assert left == right


def test_attackers_come_from_addresses_benign_activity_never_uses(
    rows: list[dict[str, Any]],
    labelled: dict[str, ScenarioLabel],
) -> None:
    new_address_kinds = {
        "credential-harvest",
        "pipeline-sp-abuse",
        "basic-auth-reenabled",
        "webjob-persistence",
        "failed-probing",
    }
    attack: set[str] = set()
    benign: set[str] = set()
    for row in rows:
        address = row.get("CallerIpAddress") or row.get("UserAddress")
        if not address:
            continue
        label = labelled.get(row_event_id(row))
        if label is None:
            benign.add(address)
        elif label.kind in new_address_kinds:
            attack.add(address)

    assert attack
    assert not attack & benign
    assert all(address.startswith(attacker_prefixes()) for address in attack)
    assert not any(address.startswith(benign_prefixes()) for address in attack)


def test_each_action_is_a_start_row_and_an_end_row_sharing_its_ids(
    rows: list[dict[str, Any]],
) -> None:
    actions: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in activity(rows):
        actions[row["CorrelationId"]].append(row)

    legacy = 0
    for steps in actions.values():
        statuses = [step["ActivityStatusValue"] for step in steps]
        assert statuses[0] in STARTS
        assert statuses[-1] in ENDS
        assert all(status in MIDDLES for status in statuses[1:-1])
        assert len({step["OperationId"] for step in steps}) == 1
        assert len({step["EventDataId"] for step in steps}) == len(steps)
        assert len({step["_ResourceId"] for step in steps}) == 1
        vocabulary = {status in LEGACY for status in statuses}
        assert len(vocabulary) == 1
        legacy += vocabulary == {True}
        assert steps[0]["ActivitySubstatusValue"] == ""
        assert steps[-1]["ActivitySubstatusValue"]
        gap = _time(steps[-1]) - _time(steps[0])
        assert timedelta(milliseconds=30) <= gap <= timedelta(minutes=3)
    assert 0 < legacy < len(actions) / 5


def test_activity_rows_are_two_to_four_kilobytes(rows: list[dict[str, Any]]) -> None:
    sizes = [len(orjson.dumps(row)) for row in activity(rows)]

    assert min(sizes) >= 2048
    assert max(sizes) <= 4096


def test_dynamic_columns_are_json_text_that_agrees_with_the_row(
    rows: list[dict[str, Any]],
) -> None:
    outcome = {
        row["CorrelationId"]: row["ActivitySubstatusValue"]
        for row in activity(rows)
        if row["ActivityStatusValue"] in ENDS
    }
    for row in activity(rows):
        claims = orjson.loads(row["Claims"])
        authorization = orjson.loads(row["Authorization"])
        properties = orjson.loads(row["Properties"])
        request = orjson.loads(row["HTTPRequest"])
        assert (claims.get("appid") or claims["azp"]).count("-") == 4
        assert claims[OID]
        assert claims[TID]
        assert int(claims["iat"]) < int(claims["exp"])
        if "@" in row["Caller"]:
            assert claims["idtyp"] == "user"
            assert claims["ipaddr"]
            assert claims["puid"]
        else:
            assert claims["idtyp"] == "app"
            assert claims[OID] == row["Caller"]
        assert authorization["action"].lower() == row["OperationNameValue"].lower()
        assert authorization["scope"].lower() == row["_ResourceId"]
        assert authorization["scope"].upper() == row["ResourceId"]
        denied = outcome[row["CorrelationId"]] == "Forbidden"
        assert ("evidence" in authorization) is not denied
        assert properties["entity"] == authorization["scope"]
        assert request["clientIpAddress"] == row["CallerIpAddress"]
        assert row["ResourceGroup"] == row["ResourceGroup"].upper()


def test_config_list_rows_name_what_was_read_in_the_resource_id(
    rows: list[dict[str, Any]],
) -> None:
    suffixes = Counter(
        row["_ResourceId"].rsplit("/config/", 1)[1]
        for row in activity(rows)
        if row["OperationNameValue"].upper().endswith("/CONFIG/LIST/ACTION")
    )

    assert {
        "publishingcredentials",
        "appsettings",
        "connectionstrings",
        "metadata",
        "azurestorageaccounts",
    } <= set(suffixes)


def test_tokens_are_reused_for_about_an_hour_then_renewed(rows: list[dict[str, Any]]) -> None:
    calls: Counter[str] = Counter()
    issued: defaultdict[str, set[str]] = defaultdict(set)
    for row in activity(rows):
        if "@" in row["Caller"] and row["ActivityStatusValue"] in STARTS:
            calls[row["Caller"]] += 1
            issued[row["Caller"]].add(row["Claims"])
            claims = orjson.loads(row["Claims"])
            lifetime = int(claims["exp"]) - int(claims["iat"])
            assert 3600 <= lifetime <= 5400
            assert int(claims["iat"]) <= _time(row).timestamp() < int(claims["exp"])

    assert sum(len(tokens) for tokens in issued.values()) < sum(calls.values()) / 3


def test_the_benign_noise_the_detector_must_tolerate_is_there(
    rows: list[dict[str, Any]],
    labelled: dict[str, ScenarioLabel],
) -> None:
    seen: set[str] = set()
    for row in rows:
        if row_event_id(row) in labelled:
            continue
        seen.update(_noise_kinds(row))

    assert seen == {
        "cli publish profile",
        "portal config read",
        "forbidden",
        "lower-case operation",
        "admin basic-auth policy",
        "admin password reset",
        "pipeline credentials",
        "app login from agent",
        "webjob files from deployment",
        "managed identity job run",
        "entra kudu login",
        "app-data files that are not jobs",
    }


def test_invalid_profiles_are_refused_with_every_problem_named() -> None:
    with pytest.raises(ConfigurationError) as caught:
        OrgProfile(
            start=datetime(2026, 10, 1),
            days=5,
            learning_days=14,
            attacks=("credential-harvest", "no-such-attack"),
        )

    message = str(caught.value)
    assert "aware UTC" in message
    assert "no-such-attack" in message
    assert "learning_days" in message


def test_labels_and_profile_read_back_from_the_labels_file(tmp_path: Path) -> None:
    write_dataset(TINY, tmp_path / "rows.jsonl", tmp_path / "labels.json")

    assert read_labels(tmp_path / "labels.json") == labels(TINY)
    assert read_profile(tmp_path / "labels.json") == TINY


def test_the_bundled_sample_is_what_its_profile_generates_today(tmp_path: Path) -> None:
    bundled_rows = SAMPLES / "contoso-sample.jsonl.gz"
    bundled_labels = SAMPLES / "contoso-sample.labels.json"
    profile = read_profile(bundled_labels)

    write_dataset(profile, tmp_path / "rows.jsonl.gz", tmp_path / "labels.json")

    assert profile.start == START
    assert profile.days == 21
    assert profile.learning_days == 14
    assert profile.attacks == ALL_ATTACKS
    assert gzip.decompress((tmp_path / "rows.jsonl.gz").read_bytes()) == gzip.decompress(
        bundled_rows.read_bytes()
    )
    assert (tmp_path / "labels.json").read_bytes() == bundled_labels.read_bytes()
    assert bundled_rows.stat().st_size < 4_200_000


def test_the_samples_readme_shows_the_call_that_made_the_sample() -> None:
    readme = (SAMPLES / "README.md").read_text(encoding="utf-8")
    call = re.search(r"write_dataset\(\n    (OrgProfile\(.*?\)),\n", readme, re.DOTALL)

    assert call is not None
    documented = eval(call.group(1), {"OrgProfile": OrgProfile, "datetime": datetime, "UTC": UTC})
    assert documented == read_profile(SAMPLES / "contoso-sample.labels.json")


def _time(row: dict[str, Any]) -> datetime:
    text = row["TimeGenerated"]
    return datetime.fromisoformat(text[:26] + "+00:00")


def _noise_kinds(row: dict[str, Any]) -> Iterator[str]:
    table = row["Type"]
    if table == "AppServiceAuditLogs":
        if row["User"].startswith("$") and row["UserAddress"].startswith(
            ("20.", "4.", "40.", "51.", "52.", "172.")
        ):
            yield "app login from agent"
        if not row["User"].startswith("$"):
            yield "entra kudu login"
        return
    if table == "AppServiceFileAuditLogs":
        path = row["Path"].replace("\\", "/").lower()
        if "app_data/jobs/" in path and row["Process"] in ("kudu", "msdeploy"):
            yield "webjob files from deployment"
        elif "app_data/" in path:
            yield "app-data files that are not jobs"
        return
    operation = row["OperationNameValue"].upper()
    claims = orjson.loads(row["Claims"])
    user = "@" in row["Caller"]
    if row["OperationNameValue"].islower():
        yield "lower-case operation"
    if row["ActivitySubstatusValue"] == "Forbidden":
        yield "forbidden"
    if user and operation.endswith("/PUBLISHXML/ACTION") and claims.get("appid") == CLI:
        yield "cli publish profile"
    if user and "/CONFIG/LIST/" in operation and claims.get("appid") == PORTAL:
        yield "portal config read"
    if user and "BASICPUBLISHINGCREDENTIALSPOLICIES" in operation:
        yield "admin basic-auth policy"
    if user and operation.endswith("/NEWPASSWORD/ACTION"):
        yield "admin password reset"
    if not user and row["_ResourceId"].endswith("/config/publishingcredentials"):
        yield "pipeline credentials"
    if "xms_mirid" in claims and operation.endswith("/TRIGGEREDWEBJOBS/RUN/ACTION"):
        yield "managed identity job run"
