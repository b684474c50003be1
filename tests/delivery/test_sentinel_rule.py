"""The Sentinel analytic rule shipped in `infra/sentinel/analytic-rule.json`: Sentinel's own
template, the one the Bicep deploys; its KQL passes Microsoft's parser against the alert
table's declared schema, and, run on the suite's KQL engine over rows the `sentinel`
destination delivered to the local Logs Ingestion endpoint, gives one result per alert with
the fields its incidents are made of. The analysts' first query in docs/consumers.md is held
to the same two checks.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from detectors.delivery.destinations import TYPES, Destination
from detectors.delivery.destinations import sentinel_table as table
from detectors.delivery.destinations.sentinel import IngestionSender
from detectors.delivery.digest import digest
from detectors.detections import DETECTIONS
from tests.alerts.test_alert_schema import sample_alerts
from tests.kql import check, schemas
from tests.services.logs_ingestion import LogsIngestion
from tests.test_infra import module, only, resolve

pytestmark = pytest.mark.kql

ROOT = Path(__file__).resolve().parents[2]
RULE = ROOT / "infra" / "sentinel" / "analytic-rule.json"
CONSUMERS = ROOT / "docs" / "consumers.md"
SEVERITIES = {"high": "High", "medium": "Medium", "low": "Low"}
# Columns every Log Analytics table has besides its own (schemas._STANDARD).
STANDARD = {"TenantId": "string", "Type": "string", "_ResourceId": "string"}


@cache
def template() -> dict[str, Any]:
    return json.loads(RULE.read_text(encoding="utf-8"))


def rule() -> dict[str, Any]:
    [resource] = template()["resources"]
    return resource


def properties() -> dict[str, Any]:
    return rule()["properties"]


def analyst_query() -> str:
    """The first query docs/consumers.md gives analysts."""
    text = CONSUMERS.read_text(encoding="utf-8")
    section = text.split("### The first query", 1)[1]
    return re.search(r"```kusto\n(.*?)```", section, re.DOTALL)[1].strip()


def database() -> dict[str, str]:
    columns = {**STANDARD, **{c.name: c.type.value for c in table.COLUMNS}}
    return {**schemas.database(), table.TABLE: schemas.kql_schema(columns)}


def mapped_columns() -> set[str]:
    """Every column the rule's entities, custom details and alert details read."""
    props = properties()
    columns = {
        field["columnName"]
        for mapping in props["entityMappings"]
        for field in mapping["fieldMappings"]
    }
    columns |= set(props["customDetails"].values())
    override = props["alertDetailsOverride"]
    columns.add(override["alertSeverityColumnName"])
    for key in ("alertDisplayNameFormat", "alertDescriptionFormat"):
        columns |= set(re.findall(r"\{\{(\w+)\}\}", override[key]))
    return columns


# -- the template ------------------------------------------------------------------------------


def test_the_template_is_a_scheduled_rule_in_sentinels_import_format():
    assert template()["$schema"].endswith("/deploymentTemplate.json#")
    assert set(template()["parameters"]) == {"workspace"}
    resource = rule()
    assert resource["type"] == "Microsoft.OperationalInsights/workspaces/providers/alertRules"
    assert resource["kind"] == "Scheduled"
    assert "/Microsoft.SecurityInsights/" in resource["name"]
    props = properties()
    assert props["enabled"] is True
    assert props["queryFrequency"] == "PT5M"
    assert "ingestion_time() > ago(5m)" in props["query"]  # each row in exactly one run
    assert props["eventGroupingSettings"] == {"aggregationKind": "AlertPerResult"}
    assert props["triggerOperator"] == "GreaterThan"
    assert props["triggerThreshold"] == 0


def test_incidents_group_a_burst_and_carry_its_entities_and_details():
    props = properties()
    grouping = props["incidentConfiguration"]["groupingConfiguration"]
    assert props["incidentConfiguration"]["createIncident"] is True
    assert grouping["enabled"] is True
    assert grouping["matchingMethod"] == "Selected"
    assert grouping["groupByCustomDetails"] == ["BurstId"]
    assert grouping["lookbackDuration"] == "P7D"  # the longest Sentinel offers
    assert props["customDetails"]["BurstId"] == "BurstId"
    for key in ("Reasons", "Score", "Tool"):
        assert key in props["customDetails"], key
    entities = Counter(m["entityType"] for m in props["entityMappings"])
    assert entities == Counter({"Account": 1, "IP": 3, "AzureResource": 3})
    assert len(props["entityMappings"]) <= 10  # Sentinel's limit
    assert all(len(m["fieldMappings"]) <= 3 for m in props["entityMappings"])
    assert len(props["customDetails"]) <= 20
    override = props["alertDetailsOverride"]
    assert override["alertSeverityColumnName"] == "AlertSeverity"
    for key in ("alertDisplayNameFormat", "alertDescriptionFormat"):
        assert len(re.findall(r"\{\{\w+\}\}", override[key])) <= 3, key


def test_the_rule_names_the_techniques_of_every_detection():
    techniques = {m.id.split(".")[0] for d in DETECTIONS for m in d.spec.mitre}
    assert techniques <= set(properties()["techniques"])


def test_the_bicep_deploys_the_same_rule():
    doc = module("sentinel-rule.bicep")
    assert doc["variables"]["template"]["value"] == template()
    deployed = only(doc, "Microsoft.SecurityInsights/alertRules")
    assert deployed["kind"] == "Scheduled"
    assert deployed["scope"] == "workspace"
    assert evaluate(deployed["properties"], doc) == properties()


def evaluate(expression: Any, doc: dict[str, Any]) -> Any:
    """A chain of property and index accesses on a variable (`template.resources[0].x`)."""
    head, *keys = _path(expression)
    value = resolve(head, doc)
    for key in keys:
        value = value[key]
    return value


def _path(expression: Any) -> list[Any]:
    operator = expression.get("operator") if isinstance(expression, dict) else None
    if operator is None:
        return [expression]
    operands = operator["operands"]
    if operator["type"] == "index_accessor":
        return [*_path(operands["operand_1"]), operands["operand_2"]]
    return [*_path(operands["operand_1"]), *_path(operands["operand_2"])]


# -- the KQL -----------------------------------------------------------------------------------


def test_the_rule_and_the_analysts_query_pass_microsofts_parser():
    bad = f"{table.TABLE} | where NoSuchColumn == 1"
    rule_result, analyst, refused = check(
        [properties()["query"], analyst_query(), bad], database=database()
    )
    assert rule_result.diagnostics == [], rule_result.explain()
    assert analyst.diagnostics == [], analyst.explain()
    assert [d.code for d in refused.errors] == ["KS142"]  # the checker does check columns
    missing = mapped_columns() - set(rule_result.columns)
    assert not missing, f"the rule maps columns its query does not return: {sorted(missing)}"
    assert rule_result.columns["AlertSeverity"] == "string"
    assert rule_result.columns["BurstId"] == "string"


def _deliver(ingestion: LogsIngestion, alerts: Any, at: datetime) -> None:
    """Each alert as the notifier sends it: the destination's request, through its sender."""
    sender = IngestionSender.connect(
        endpoint=ingestion.endpoint,
        rule_id=ingestion.rule_id,
        stream=ingestion.stream,
        credential=ingestion.credential,
        timeout_seconds=5,
        ca_path=ingestion.ca_path,
    )
    kind = TYPES["sentinel"]
    destination = Destination(name="sentinel", url=ingestion.endpoint)
    ingestion.now = at
    try:
        for alert in alerts:
            body, headers = kind.request(destination, alert, digest(alert), at)
            assert sender.post(ingestion.endpoint, body, headers).status == 204
    finally:
        sender.close()


def test_the_rule_returns_each_delivered_alert_once_with_its_incident_fields(logs_ingestion):
    alerts = sample_alerts()
    delivered = datetime(2026, 11, 25, 10, 2, tzinfo=UTC)
    query = properties()["query"]
    # The rule runs every five minutes; alerts arrive between its runs.
    _deliver(logs_ingestion, alerts[:10], delivered)
    names, rows = logs_ingestion.query(query, now=delivered + timedelta(minutes=3))
    first = [dict(zip(names, row, strict=True)) for row in rows]
    _deliver(logs_ingestion, alerts[10:], delivered + timedelta(minutes=5))
    names, rows = logs_ingestion.query(query, now=delivered + timedelta(minutes=8))
    second = [dict(zip(names, row, strict=True)) for row in rows]
    # Each row in exactly one run: the first run sees the first ten, the next the rest.
    assert [r["AlertId"] for r in first] == [a["id"] for a in alerts[:10]]
    assert [r["AlertId"] for r in second] == [a["id"] for a in alerts[10:]]
    assert mapped_columns() <= set(names)

    results = {r["AlertId"]: r for r in first + second}
    for alert in alerts:
        result = results[alert["id"]]
        assert result["AlertSeverity"] == SEVERITIES[alert["severity"]]
        assert result["AlertTitle"] == alert["title"]
        assert result["Summary"] == alert["summary"]
        assert result["PrincipalId"] == alert["principal"]["id"]
        assert result["Score"] == alert["score"]
        assert result["Tool"] == alert["principal"]["tool"]
        assert result["Reasons"] == ", ".join(r["code"] for r in alert["reasons"])
        ips = [*alert["sourceIps"][:3], "", "", ""][:3]
        assert [result["Ip1"], result["Ip2"], result["Ip3"]] == ips
        resources = [*(r["id"] for r in alert["resources"][:3]), "", "", ""][:3]
        assert [result["Resource1"], result["Resource2"], result["Resource3"]] == resources
        assert result["BurstId"] == (alert.get("burst") or {}).get("id", alert["id"])
    # Grouped by burst: an incident per burst, the burst's updates joining its first alert.
    bursts = Counter(r["BurstId"] for r in results.values())
    expected = Counter((a.get("burst") or {}).get("id", a["id"]) for a in alerts)
    assert bursts == expected
    assert len(bursts) < len(alerts)  # the sample has bursts with updates


def test_the_analysts_query_runs_over_delivered_rows(logs_ingestion):
    alerts = sample_alerts()
    delivered = datetime(2026, 11, 25, 10, 2, tzinfo=UTC)
    _deliver(logs_ingestion, alerts, delivered)
    names, rows = logs_ingestion.query(analyst_query(), now=delivered + timedelta(hours=1))
    results = [dict(zip(names, row, strict=True)) for row in rows]
    bursts = {(a.get("burst") or {}).get("id", a["id"]) for a in alerts}
    assert {r["BurstId"] for r in results} == bursts
    assert sum(r["Alerts"] for r in results) == len(alerts)
