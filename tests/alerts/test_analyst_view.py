"""What an analyst reads at a glance is true: whose activity is whose, reasons that match the
burst they describe, a bounded risk score, and a next step for every reason (issue #20)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from detectors.alerts.render import risk_score
from detectors.model.reasons import NEXT_STEPS, ReasonCode
from detectors.settings.detection import DetectionSettings
from tests.alerts.test_alert_schema import sample_alerts

REASONS_DOC = Path(__file__).resolve().parents[2] / "docs" / "reasons.md"


def _of(name: str, *, sequence: int) -> dict[str, Any]:
    found = [
        a
        for a in sample_alerts()
        if a["principal"]["name"] == name and a["burst"]["sequence"] == sequence
    ]
    assert len(found) >= 1, f"no alert {sequence} of {name} in the sample"
    return found[0]


def test_the_site_login_made_with_rahul_cohens_profile_is_the_publishing_users_not_his():
    update = _of("Rahul Cohen", sequence=2)
    assert any(r["code"] == "DOWNLOAD_THEN_LOGIN" for r in update["reasons"])
    actors = {a["id"]: a for a in update["actors"]}
    login = actors["$contoso-orders-api-prod"]
    assert login["role"] == "other"
    assert login["type"] == "publishingUser"
    assert login["sourceIps"] == ["54.38.156.76"]
    assert login["tools"] == ["kudu"]
    # Rahul's own client, not the attacker's Kudu session.
    assert update["principal"]["tool"] == "azureCli"
    # Across the whole burst: his address is his, the login's is the publishing user's.
    burst = {a["id"]: a for a in update["burst"]["actors"]}
    rahul = burst["rahul.cohen@contoso.com"]
    assert rahul["role"] == "principal"
    assert "54.38.156.76" not in rahul["sourceIps"]
    assert "kudu" not in rahul["tools"]
    assert burst["$contoso-orders-api-prod"]["sourceIps"] == ["54.38.156.76"]


def test_every_alert_of_the_sample_says_whose_every_address_and_tool_is():
    for alert in sample_alerts():
        ips = {ip for actor in alert["actors"] for ip in actor["sourceIps"]}
        tools = {tool for actor in alert["actors"] for tool in actor["tools"]}
        assert ips == set(alert["sourceIps"]), alert["id"]
        assert tools == set(alert["tools"]), alert["id"]
        principals = [a for a in alert["actors"] if a["role"] == "principal"]
        assert all(a["id"] == alert["principal"]["id"] for a in principals)


def test_an_updates_deployment_credentials_count_the_sites_of_the_whole_burst():
    # The pipeline service principal took one site's credentials, then six more.
    update = next(
        a
        for a in sample_alerts()
        if a["principal"]["type"] == "servicePrincipal"
        and a["burst"]["sequence"] == 2
        and a["detection"] == "appservice-credential-download"
    )
    message = next(r for r in update["reasons"] if r["code"] == "DEPLOYMENT_CREDENTIALS")
    counted = int(re.search(r"of (\d+) site\(s\)", message["message"]).group(1))  # type: ignore[union-attr]
    taken = {
        (actor["id"], op["name"])
        for actor in update["burst"]["actors"]
        for op in actor["operations"]
        if "publishingcredentials" in op["name"] or "PUBLISHXML" in op["name"]
    }
    assert taken, "the burst lists the credential reads"
    assert counted == len(update["burst"]["resources"]) == 7
    first = _of(update["principal"]["name"], sequence=1)
    assert "of 1 site(s)" in next(
        r["message"] for r in first["reasons"] if r["code"] == "DEPLOYMENT_CREDENTIALS"
    )


def test_updates_keep_the_score_of_the_folded_weights():
    for alert in sample_alerts():
        assert alert["score"] == round(sum(r["weight"] for r in alert["reasons"]), 1)


@pytest.mark.parametrize(
    ("score", "expected"),
    [
        (0, 0),
        (34.9, 20),
        (35, 21),
        (44.5, 37),
        (50, 47),
        (74.9, 72),
        (75, 73),
        (115, 87),
        (150, 100),
        (900, 100),
    ],
)
def test_the_risk_score_maps_the_severity_bands_onto_0_to_100(score: float, expected: int):
    assert risk_score(score, DetectionSettings()) == expected


def test_the_risk_score_agrees_with_the_severity_of_every_sample_alert():
    bands = {"low": range(21, 47), "medium": range(47, 73), "high": range(73, 101)}
    for alert in sample_alerts():
        assert alert["riskScore"] in bands[alert["severity"]], alert["id"]


def test_every_reason_of_an_alert_has_its_next_step():
    for alert in sample_alerts():
        steps = alert["investigation"]["nextSteps"]
        assert {s["code"] for s in steps} == {r["code"] for r in alert["reasons"]}
        assert all(s["step"] == NEXT_STEPS[ReasonCode(s["code"])] for s in steps)


def test_the_reasons_doc_says_the_same_next_steps_as_the_code():
    rows = [line for line in REASONS_DOC.read_text().splitlines() if line.startswith("| `")]
    documented = {}
    for row in rows:
        cells = [c.strip() for c in row.strip().strip("|").split(" | ")]
        documented[ReasonCode(cells[0].strip("`"))] = cells[-1]
    assert documented == dict(NEXT_STEPS), (
        "docs/reasons.md's 'Check next' column and detectors/model/reasons.py NEXT_STEPS differ"
    )


def test_alerts_carry_tenant_version_and_tactics():
    for alert in sample_alerts():
        assert alert["schemaVersion"] == "1.1"
        assert alert["detectorVersion"]
        assert all(t["tactics"] for t in alert["mitre"])
    rahul = _of("Rahul Cohen", sequence=1)
    assert rahul["tenantId"] == "762a5881-8572-4318-97ae-00771b557de3"


def test_every_alert_of_a_simulated_set_is_valid_and_tells_whose_each_address_is(tmp_path):
    from detectors.cli.main import main
    from tests.alerts.test_alert_schema import assert_valid

    rows, out = tmp_path / "set.jsonl", tmp_path / "alerts.jsonl"
    options = ["--seed", "31", "--days", "21", "--developers", "10", "--pipelines", "4"]
    assert main(["simulate", *options, "--sites", "15", "--out", str(rows)]) == 0
    delay = ["--ingestion-delay", "realistic", "--delay-seed", "31"]
    assert main(["replay", str(rows), *delay, "--out", str(out), "--quiet"]) == 0
    alerts = [json.loads(line) for line in out.read_text().splitlines()]
    assert any(a["burst"]["sequence"] > 1 for a in alerts), "the set has updates to check"
    for alert in alerts:
        assert_valid(alert)
        ips = {ip for actor in alert["actors"] for ip in actor["sourceIps"]}
        assert ips == set(alert["sourceIps"])
