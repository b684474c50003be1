"""Every KQL query the product emits, checked by Microsoft's own parser against the real schemas.

The queries are the investigation queries of the alerts (from the bundled sample and from
rows with hostile principal and site names) and the export query in README.md. They are
checked in one Node run (`verdicts`), together with queries that must fail, so the checker
is shown to catch mistakes in the very run that passes the product's queries.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from detectors.alerts.render import kql_string
from detectors.cli import main as cli
from detectors.model.observation import SourceTable
from detectors.normalize.rows import INGESTION_COLUMN
from detectors.sources.log_analytics import row_fields
from detectors.sources.queries import EXPORT_QUERIES, QUERIES, Window, coverage_query
from tests.kql import Result, check, schemas
from tests.rowkit import (
    POWERSHELL,
    PUBLISHXML,
    START,
    Actor,
    activity,
    site_id,
    write_ndjson,
)

pytestmark = pytest.mark.kql

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "samples" / "contoso-sample.jsonl.gz"

# Diagnostics a product query may carry, by code, with the reason it is acceptable.
# Empty: today every query is free of errors and warnings alike.
ALLOWED_DIAGNOSTICS: dict[str, str] = {}

# Quotes of both kinds, backslashes (also before a quote and at the end), every kind of line
# break, other control characters, KQL punctuation and non-ASCII text.
HOSTILE_PRINCIPAL = 'ev"il\'o\\ne\\"\n\r\t\x00\x1b\x7f | where 1==1 // \u2028\x85 ü漢 end\\'
HOSTILE_SITE = "a\"b'c\\d\ne\x07f;|x"
HOSTILE_TEXTS = [
    HOSTILE_PRINCIPAL,
    HOSTILE_SITE,
    "",
    "\\",
    '"',
    "'",
    '\\"',
    '"; AzureActivity | take 1 //',
    "".join(chr(c) for c in range(32)) + "\x7f",
]

# Queries the checker must reject, with the diagnostic code it must give.
MUST_FAIL = {
    "AzureActivity | where NoSuchColumn == 1": "KS142",
    "NoSuchTable | take 1": "KS204",
    "AppServiceFileAuditLogs | project Caller": "KS142",
}


def _expected_literal(text: str) -> str:
    """What a literal built from `text` must read back as: control characters become spaces."""
    return re.sub(r"[\x00-\x1f\x7f]", " ", text)


def _replay(rows_path: Path, out: Path, *extra: str) -> list[dict[str, Any]]:
    assert cli.main(["replay", str(rows_path), "--out", str(out), "--quiet", *extra]) == 0
    # Split on \n only: an alert may hold U+2028 or U+0085, which str.splitlines() breaks on.
    return [json.loads(line) for line in out.read_text(encoding="utf-8").split("\n") if line]


def _queries(alerts: list[dict[str, Any]]) -> list[str]:
    return [q["query"] for a in alerts for q in a["investigation"]["queries"]]


def _production_queries() -> list[tuple[SourceTable, str]]:
    """What the timer sends for a step, and `backfill` for an ingestion window, one query per
    table each (and for the halves a step splits into)."""
    since = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    backfill = Window(
        since=since,
        until=since + timedelta(minutes=15, seconds=30, microseconds=123456),
        lateness=timedelta(hours=24),
    )
    step = Window(
        since=since,
        until=since + timedelta(minutes=15),
        lateness=timedelta(hours=24),
        event_since=since - timedelta(minutes=20),
        event_until=since - timedelta(minutes=5),
    )
    windows = [backfill, step, *step.halves()]
    return [
        (table, build(w))
        for w in windows
        for queries in (QUERIES, EXPORT_QUERIES)  # the timer's, and `detector export`'s
        for table, build in queries.items()
    ]


def _coverage_queries() -> dict[SourceTable, str]:
    """What `detector status` asks of each table."""
    until = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    return {table: coverage_query(table, until - timedelta(days=7), until) for table in SourceTable}


def _readme_export_query() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = [
        b for b in re.findall(r"```sh\n(.*?)```", readme, re.DOTALL) if "log-analytics query" in b
    ]
    assert len(blocks) == 1, "README.md should have one `az monitor log-analytics query` block"
    [query] = re.findall(r"--analytics-query '([^']*)'", blocks[0])
    return query.strip()


@pytest.fixture(scope="module")
def sample_alerts(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    out = tmp_path_factory.mktemp("sample") / "alerts.jsonl"
    return _replay(SAMPLE, out)


@pytest.fixture(scope="module")
def hostile_alerts(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """A service principal with a hostile id takes the publish profile of six sites at night,
    one of them with a hostile name."""
    thief = Actor(caller=HOSTILE_PRINCIPAL, app_id=POWERSHELL, ip="203.0.113.66", kind="app")
    night = (START + timedelta(days=3)).replace(hour=3, minute=1)
    rows = []
    for n, site in enumerate([HOSTILE_SITE, "pay", "billing", "hr", "crm", "intranet"]):
        rows += activity(thief, night + timedelta(minutes=n), PUBLISHXML, site_id(site))
    folder = tmp_path_factory.mktemp("hostile")
    path = write_ndjson(folder / "rows.jsonl", rows)
    return _replay(path, folder / "alerts.jsonl", "--learning-days", "0")


@pytest.fixture(scope="module")
def verdicts(
    sample_alerts: list[dict[str, Any]], hostile_alerts: list[dict[str, Any]]
) -> dict[str, Result]:
    """Every query of this module checked in one Node run, by query text."""
    queries = [
        *schemas.TABLES,
        *_queries(sample_alerts),
        *_queries(hostile_alerts),
        _readme_export_query(),
        *(query for _, query in _production_queries()),
        *_coverage_queries().values(),
        *(f"print v = {kql_string(text)}" for text in HOSTILE_TEXTS),
        *MUST_FAIL,
    ]
    unique = list(dict.fromkeys(queries))
    return {result.query: result for result in check(unique)}


def _assert_valid(result: Result) -> None:
    unexplained = [d for d in result.diagnostics if d.code not in ALLOWED_DIAGNOSTICS]
    assert not unexplained, result.explain()
    assert result.columns, f"no result columns:\n{result.query}"
    assert "unknown" not in result.columns.values(), f"{result.columns}\n{result.query}"


def test_checker_sees_every_declared_column_with_its_type(verdicts):
    for table, columns in schemas.TABLES.items():
        assert verdicts[table].diagnostics == []
        assert verdicts[table].columns == columns


def test_checker_reports_unknown_columns_and_tables(verdicts):
    for query, code in MUST_FAIL.items():
        assert code in {d.code for d in verdicts[query].errors}, verdicts[query].explain()


def test_every_investigation_query_of_the_sample_alerts_is_valid(sample_alerts, verdicts):
    queries = _queries(sample_alerts)
    assert len(sample_alerts) >= 5
    assert len(queries) >= 3 * len(sample_alerts)
    tables = {q.split("\n", 1)[0] for q in queries}
    assert tables == set(schemas.TABLES), "each table should be queried at least once"
    for query in queries:
        _assert_valid(verdicts[query])


def test_hostile_principal_and_site_stay_inside_their_literals(hostile_alerts, verdicts):
    [alert] = hostile_alerts
    assert alert["principal"]["id"] == HOSTILE_PRINCIPAL
    site = next(r["id"] for r in alert["resources"] if r["site"] == HOSTILE_SITE)
    queries = _queries(hostile_alerts)
    assert len(queries) == 3
    for query in queries:
        _assert_valid(verdicts[query])
    by_principal, *on_sites = (verdicts[q] for q in queries)
    assert kql_string(HOSTILE_PRINCIPAL) in by_principal.query
    assert _expected_literal(HOSTILE_PRINCIPAL) in by_principal.strings
    for result in on_sites:
        assert kql_string(site) in result.query
        assert _expected_literal(site) in result.strings


def test_kql_string_reads_back_as_the_text_it_was_given(verdicts):
    for text in HOSTILE_TEXTS:
        result = verdicts[f"print v = {kql_string(text)}"]
        assert result.diagnostics == [], result.explain()
        assert result.columns == {"v": "string"}
        assert result.strings == [_expected_literal(text)]


def test_readme_export_query_is_valid_and_keeps_every_column(verdicts):
    result = verdicts[_readme_export_query()]
    _assert_valid(result)
    declared = {name for columns in schemas.TABLES.values() for name in columns}
    assert declared <= set(result.columns)


def test_every_timer_query_is_valid_and_returns_columns_the_normaliser_reads(verdicts):
    for table, query in _production_queries():
        result = verdicts[query]
        _assert_valid(result)
        assert "ingestion_time()" in query
        assert "TimeGenerated between" in query
        assert result.columns["TimeGenerated"] == "datetime"
        assert result.columns["Count"] == "long"
        fields = row_fields(table, list(result.columns), [None] * len(result.columns))
        declared = schemas.TABLES[table.value]
        # Every column that comes back is a real column of the table, or folded into one,
        # or what the normaliser reads as the count and (export's) the ingestion time.
        for name in fields:
            assert name in declared or name in ("Count", INGESTION_COLUMN), (table, name)


def test_every_status_query_is_valid_and_returns_its_three_figures(verdicts):
    for query in _coverage_queries().values():
        result = verdicts[query]
        _assert_valid(result)
        assert result.columns == {
            "Rows": "long",
            "LastEvent": "datetime",
            "LastIngested": "datetime",
        }, query
