"""The workbook and the alert rules watch what the Function App really logs: every query is a
file the Bicep loads as it is, checked by Microsoft's KQL parser against AppTraces and
AppRequests, and every pattern the queries extract matches the lines the code writes."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from detectors.runs.timer import RunReport
from tests.kql import check, schemas
from tests.test_infra import INFRA, body, dotted, module, resources

pytestmark = pytest.mark.kql

QUERIES = INFRA / "monitoring"
_EXTRACT = re.compile(r'extract\(@"(?P<pattern>(?:[^"]|"")*)"')


def loaded() -> dict[str, Path]:
    """Every file monitoring.bicep loads, by the name it is loaded under."""
    found: dict[str, Path] = {}

    def walk(value: object) -> None:
        if isinstance(value, dict):
            call = value.get("function")
            if isinstance(call, dict) and call.get("type") == "load_text_content":
                path = (INFRA / "modules" / call["parameters"]["file_path"]).resolve()
                found[path.name] = path
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(module("monitoring.bicep"))
    return found


def test_the_bicep_loads_every_query_file_and_only_those():
    assert set(loaded()) == {path.name for path in QUERIES.glob("*.kql")}
    assert all(path.is_file() for path in loaded().values())


def test_every_monitoring_query_is_valid_kql_over_the_apps_telemetry():
    texts = [path.read_text(encoding="utf-8") for path in sorted(QUERIES.glob("*.kql"))]
    results = check([*texts, "AppTraces | where Nope == 1"], schemas.monitoring_database())
    *product, mistake = results
    assert mistake.errors, "the checker must catch an unknown column"
    for result in product:
        assert not result.diagnostics, result.explain()


def test_the_alert_rules_fire_on_any_row_of_their_queries():
    doc = module("monitoring.bicep")
    (rule,) = resources(doc, "Microsoft.Insights/scheduledQueryRules").values()
    (criterion,) = rule["properties"]["criteria"]["allOf"]
    assert criterion["timeAggregation"] == "Count"
    assert (criterion["operator"], criterion["threshold"]) == ("GreaterThan", 0)
    keys = {item["key"] for item in doc["variables"]["rules"]["value"]}
    assert keys == {"failed-runs", "watermark-lag", "poison-queue"}
    # Over the app's own workspace, where Application Insights writes (not the queried one).
    params = body(module("main.bicep")["modules"]["monitoring"])["params"]
    assert dotted(params["workspaceId"]) == "ownWorkspace.outputs.id"
    assert dotted(rule["properties"]["scopes"][0]) == "workspaceId"


def _patterns() -> list[tuple[str, re.Pattern[str]]]:
    found = []
    for path in sorted(QUERIES.glob("*.kql")):
        for match in _EXTRACT.finditer(path.read_text(encoding="utf-8")):
            found.append((path.name, re.compile(match["pattern"].replace('""', '"'))))
    return found


def _lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The lines the timer writes: a run's summary (with every optional part), an alert it
    holds, an alert an allow rule keeps back."""
    report = RunReport(
        run_id="0123456789ab",
        outcome="failed",
        error="AzureActivity: Log Analytics kept failing (503)",
        watermark_before="2026-11-25T10:00:00+00:00",
        watermark_after="2026-11-25T10:15:00+00:00",
        scored_through="2026-11-25T09:55:00+00:00",
        windows=2,
        rows=40,
        alerts=1,
        enqueued=1,
        queries=6,
        learned_days=15,
        learning_days=15,
        poison=3,
    )
    timer_log = logging.getLogger("detectors.runs.timer")
    allow_log = logging.getLogger("detectors.alerts.allow")
    with caplog.at_level(logging.INFO):
        timer_log.info(
            "alert %s held: detection %s, severity %s, principal %s",
            "a1",
            "appservice-credential-download",
            "high",
            "p1",
        )
        allow_log.info("alert %s (%s, %s) allowed by rule %s", "a2", "d", "p", "rule-0001")
    return [report.line(), *(r.getMessage() for r in caplog.records)]


def test_every_pattern_the_queries_extract_matches_what_the_code_logs(caplog):
    lines = _lines(caplog)
    for name, pattern in _patterns():
        assert any(pattern.search(line) for line in lines), f"{name}: {pattern.pattern}"
    run = lines[0]
    assert re.search(r"^run \S+: (\w+);", run)[1] == "failed"
    read = r"; read (?:[^;]*-> |up to )([0-9][^;( ]*)"
    assert re.search(read, run)[1] == "2026-11-25T10:15:00+00:00"
    unchanged = run.replace(
        re.search(r"; read [^;]*;", run)[0], "; read up to 2026-11-25T10:15:00+00:00 (unchanged);"
    )
    assert re.search(read, unchanged)[1] == "2026-11-25T10:15:00+00:00"
    assert re.search(r"; poison queue (\d+)", run)[1] == "3"
    assert re.search(r"; error: (.*)$", run)[1].startswith("AzureActivity")
