"""Allow rules: validation refuses what would allow everything; matching is all-of; the gate
counts and logs each allowed alert; rules keep their hits in both stores."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from detectors.alerts.allow import (
    AllowGate,
    AllowRule,
    RuleRejected,
    new_rule,
    problems,
)
from detectors.model.errors import ConfigurationError, ConflictError
from detectors.settings.app import OperatorSettings
from detectors.stores.sqlite import SqliteStore
from detectors.stores.table import TableStore
from tests.services.azurite import Azurite, StorageNames

NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)
SITE_ID = "/subscriptions/s1/resourcegroups/rg/providers/microsoft.web/sites/contoso-ci-api"


def alert(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "a1",
        "detection": "appservice-credential-download",
        "principal": {
            "id": "ci@contoso.com",
            "name": "CI Pipeline",
            "type": "servicePrincipal",
            "appId": "11111111-1111-1111-1111-111111111111",
            "tool": "azureCli",
        },
        "resources": [{"id": SITE_ID, "site": "contoso-ci-api", "slot": None}],
        "sourceIps": ["203.0.113.7", "203.0.113.9"],
        "reasons": [{"code": "NEW_NETWORK"}, {"code": "DEPLOYMENT_CREDENTIALS"}],
    }
    base.update(changes)
    return base


def rule(**fields: Any) -> AllowRule:
    values: dict[str, Any] = {
        "id": "r1",
        "added_by": "ops",
        "reason": "the CI pipeline",
        "added_at": NOW - timedelta(days=1),
        "expires": NOW + timedelta(days=30),
    }
    values.update(fields)
    return AllowRule(**values)


def add(**fields: Any) -> AllowRule:
    values: dict[str, Any] = {
        "rule_id": "r1",
        "principal": None,
        "app_id": None,
        "cidr": None,
        "site": None,
        "detection": None,
        "reason_code": None,
        "added_by": "ops",
        "reason": "the CI pipeline",
        "expires": "2026-12-01",
        "now": NOW,
    }
    values.update(fields)
    return new_rule(**values)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "would match everyone"),
        ({"detection": "appservice-credential-download"}, "would match everyone"),
        ({"site": "*"}, "matches (nearly) every site"),
        ({"site": "**?"}, "matches (nearly) every site"),
        ({"cidr": "0.0.0.0/0"}, "too much of the internet"),
        ({"cidr": "::/0"}, "too much of the internet"),
        ({"cidr": "10.0.0.0/33"}, "not an address or range"),
        ({"cidr": "banana"}, "not an address or range"),
        ({"principal": "ci", "expires": "2026-10-01"}, "in the past"),
        ({"principal": "ci", "expires": "2027-12-01"}, "more than 180 days ahead"),
        ({"principal": "ci", "expires": "someday"}, "not a date"),
        ({"principal": "ci", "reason": "  "}, "a reason is required"),
        ({"principal": "ci", "rule_id": "a b"}, "rule id"),
    ],
)
def test_rules_that_are_malformed_or_match_everything_are_refused(fields, message):
    with pytest.raises(RuleRejected, match=message.replace("(", r"\(").replace(")", r"\)")):
        add(**fields)


def test_a_valid_rule_keeps_a_normalised_range_and_holds_through_its_last_day():
    made = add(principal="ci@contoso.com", cidr="203.0.113.7/24")
    assert made.cidr == "203.0.113.0/24"
    assert made.expires == datetime(2026, 12, 2, tzinfo=UTC)
    assert problems(made) == []


def test_every_condition_a_rule_names_must_hold():
    assert rule(principal="CI@contoso.com").matches(alert())
    assert not rule(principal="ci pipeline").matches(alert())  # a name is not an identity
    assert not rule(principal="someone").matches(alert())
    assert rule(app_id="11111111-1111-1111-1111-111111111111").matches(alert())
    assert rule(cidr="203.0.113.0/24").matches(alert())
    assert not rule(cidr="203.0.113.0/24").matches(alert(sourceIps=["203.0.113.7", "198.51.100.1"]))
    assert not rule(cidr="203.0.113.0/24").matches(alert(sourceIps=[]))
    assert rule(site="contoso-ci-*").matches(alert())
    assert rule(site="*/sites/contoso-ci-api").matches(alert())
    two = [
        {"id": SITE_ID, "site": "contoso-ci-api", "slot": None},
        {"id": "x", "site": "payroll", "slot": None},
    ]
    assert not rule(site="contoso-ci-*").matches(alert(resources=two))
    both = rule(principal="ci@contoso.com", detection="appservice-webjob-activity")
    assert not both.matches(alert())
    assert rule(principal="ci@contoso.com", reason_code="NEW_NETWORK").matches(alert())
    assert not rule(principal="ci@contoso.com", reason_code="SITE_BURST").matches(alert())


def test_a_display_name_chosen_to_equal_an_allowed_principal_is_not_allowed():
    """A guest or a user who can edit a profile may take an allowed principal's id as its
    display name: the rule must not hide its alert."""
    allowed = rule(principal="deploy@contoso.com")
    spoof = alert(
        principal={
            "id": "evil@attacker.example",
            "name": "deploy@contoso.com",
            "type": "user",
            "appId": None,
            "tool": "azureCli",
        }
    )
    gate = AllowGate(rules=[allowed], now=NOW)
    assert gate.admit(spoof)
    assert not gate.admit(alert(principal={**spoof["principal"], "id": "deploy@contoso.com"}))


def test_the_gate_counts_and_logs_each_allowed_alert_and_reports_expired_and_invalid_rules(
    caplog,
):
    rules = [
        rule(id="live", principal="ci@contoso.com"),
        rule(id="old", principal="ci@contoso.com", expires=NOW - timedelta(hours=1)),
        rule(id="broad", site="*"),
    ]
    with caplog.at_level(logging.INFO, logger="detectors.alerts.allow"):
        gate = AllowGate(rules=rules, now=NOW)
        kept = [gate.admit(alert(id="a1")), gate.admit(alert(id="a2", principal={"id": "x"}))]
    assert kept == [False, True]
    assert gate.hits == {"live": 1}
    assert [(a.rule_id, a.alert_id) for a in gate.allowed] == [("live", "a1")]
    assert gate.expired == ["old"]
    assert [text.split(":")[0] for text in gate.invalid] == ["broad"]
    assert "alert a1" in caplog.text
    assert "rule live" in caplog.text
    assert "broad" in caplog.text
    assert "1 alert(s) allowed by rules (live: 1)" in gate.summary()


def test_a_rule_meant_to_outlive_the_longest_allowed_life_is_ignored():
    """`allow add` refuses such a rule; one edited into the table by hand is ignored."""
    lasting = rule(id="for-ever", principal="ci@contoso.com", expires=NOW + timedelta(days=3650))
    longest = rule(
        id="longest", principal="ci@contoso.com", added_at=NOW, expires=NOW + timedelta(days=181)
    )
    gate = AllowGate(rules=[lasting, longest], now=NOW)
    assert [text.split(":")[0] for text in gate.invalid] == ["for-ever"]
    assert "DETECTOR_ALLOW_MAX_DAYS (180)" in gate.invalid[0]
    assert not gate.admit(alert())  # the longest legal rule still applies
    # A deployment that allows longer-lived rules says so with the setting.
    assert AllowGate(rules=[lasting], now=NOW, max_days=3651).invalid == []
    read = OperatorSettings.from_env
    assert read({"DETECTOR_ALLOW_MAX_DAYS": " 365 "}).allow_max_days == 365
    assert read({}).allow_max_days == 180
    with pytest.raises(ConfigurationError, match="not a whole number"):
        read({"DETECTOR_ALLOW_MAX_DAYS": "a year"})
    with pytest.raises(ConfigurationError, match="between 1 and 3650"):
        read({"DETECTOR_ALLOW_MAX_DAYS": "4000"})


def test_a_rule_survives_the_round_trip_through_its_properties():
    made = rule(principal="ci", cidr="10.1.0.0/16", site="contoso-*", hits=3, last_hit=NOW)
    assert AllowRule.from_properties(made.properties()) == made


@pytest.fixture(params=["sqlite", pytest.param("table", marks=pytest.mark.azurite)])
def rule_stores(request: pytest.FixtureRequest) -> Iterator[Callable[[], Any]]:
    made: list[Any] = []
    if request.param == "sqlite":
        path = request.getfixturevalue("tmp_path") / "store.db"

        def make() -> Any:
            made.append(SqliteStore(path=path))
            return made[-1]

    else:
        azurite: Azurite = request.getfixturevalue("azurite")
        names: StorageNames = request.getfixturevalue("storage_names")
        tables = {
            "baseline_table": names.table("Baselines"),
            "state_table": names.table("State"),
            "allow_table": names.table("Allow"),
        }

        def make() -> Any:
            made.append(TableStore(connection_string=azurite.connection_string, **tables))
            return made[-1]

    yield make
    for store in made:
        store.close()


def test_rules_are_added_listed_counted_and_removed_with_etags(rule_stores):
    one, two = rule_stores(), rule_stores()
    one.add_rule(rule(id="r1", principal="ci"))
    with pytest.raises(ConflictError):
        two.add_rule(rule(id="r1", principal="other"))
    (stored,) = two.list_rules()
    assert stored.rule.principal == "ci"
    # The timer counts hits while an operator holds the rule they read.
    assert one.record_hits({"r1": 2}, NOW) == []
    assert two.record_hits({"r1": 1, "gone": 4}, NOW + timedelta(minutes=5)) == ["gone"]
    (after,) = one.list_rules()
    assert (after.rule.hits, after.rule.last_hit) == (3, NOW + timedelta(minutes=5))
    with pytest.raises(ConflictError):
        two.remove_rule("r1", stored.etag)
    two.remove_rule("r1", after.etag)
    assert one.list_rules() == []
    two.remove_rule("r1", after.etag)  # already gone: done
