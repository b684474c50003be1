"""Rows skipped while reading: what the normaliser would have said, and nothing else.

Replay's readers hand the rows the normaliser skips (Start rows, unrelated operations, files
outside App_Data/jobs) to it as `Skipped` before they are `RawRow`s. Reading with and without
that must give the same outcome, row by row, in every format and on damaged input.
"""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from detectors.engine.scoring import Engine
from detectors.model.observation import Observation, RawRow, RejectedRow
from detectors.normalize.rows import Normalizer, Skipped, early_skip
from detectors.normalize.schemas import table_of
from detectors.runs.replay import replay
from detectors.runs.step import WindowStep
from detectors.settings.detection import DetectionSettings
from detectors.simulation import OrgProfile
from detectors.simulation.timeline import simulate
from detectors.sources.files import FileSource
from detectors.stores.sqlite import SqliteStore

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "contoso-sample.jsonl.gz"

Outcome = tuple[Any, ...]


def _outcomes(path: Path, *, early: bool) -> tuple[list[Outcome], int]:
    """What reading and normalising gives for each row, in order, and how many rows the
    reader itself skipped."""
    normalizer = Normalizer()
    outcomes: list[Outcome] = []
    early_skips = 0
    for item in FileSource(path, skip=early_skip if early else None):
        if type(item) is Skipped:
            early_skips += 1
        result = normalizer.normalize(item) if type(item) is RawRow else item
        if isinstance(result, Observation):
            outcomes.append(("observation", result))
        elif isinstance(result, Skipped):
            outcomes.append(("skipped", result.reason))
        else:
            assert isinstance(result, RejectedRow)
            outcomes.append(("rejected", result.source, result.line, result.reason))
    return outcomes, early_skips


def _simulated_rows() -> list[dict[str, Any]]:
    profile = OrgProfile(seed=3, start=datetime(2026, 10, 1, tzinfo=UTC), days=3, attacks=())
    return list(simulate(profile))


def _sample_rows() -> list[dict[str, Any]]:
    with gzip.open(SAMPLE, "rb") as handle:
        return [json.loads(line) for line in handle][:6000]


def _write(path: Path, rows: list[dict[str, Any]], shape: str) -> Path:
    if shape == "ndjson":
        text = "".join(json.dumps(row) + "\n" for row in rows)
    elif shape == "array":
        text = json.dumps(rows, indent=2)
    elif shape == "records":
        text = json.dumps({"records": rows})
    else:  # objects written over several lines, one after another
        text = "\n".join(json.dumps(row, indent=2) for row in rows) + "\n"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_sample_reads_the_same_with_rows_skipped_early():
    plain, none_early = _outcomes(SAMPLE, early=False)
    early, skipped_early = _outcomes(SAMPLE, early=True)
    assert none_early == 0
    # Start rows and files outside App_Data/jobs; Microsoft.Web/sites operations the
    # detections do not read are told from their resource too, so the normaliser skips those.
    skipped = [o[1] for o in plain if o[0] == "skipped"]
    assert skipped_early > 10_000
    assert skipped_early == len(skipped) - skipped.count("unrelated operation")
    assert early == plain


@pytest.mark.parametrize("shape", ["ndjson", "array", "records", "pretty"])
def test_every_json_shape_reads_the_same_with_rows_skipped_early(tmp_path, shape):
    rows = _simulated_rows()
    path = _write(tmp_path / f"rows-{shape}.json", rows, shape)
    plain, _ = _outcomes(path, early=False)
    early, skipped_early = _outcomes(path, early=True)
    assert skipped_early > 100
    assert early == plain


def test_a_portal_csv_is_not_skipped_early_since_any_row_may_settle_its_date_order(tmp_path):
    path = tmp_path / "export.csv"
    path.write_text(
        "TimeGenerated [UTC],Type,OperationNameValue,ActivityStatusValue,Caller,_ResourceId\n"
        '"19/10/2026, 10:00:00.000",AzureActivity,MICROSOFT.WEB/SITES/PUBLISHXML/ACTION,Start,'
        "jane@contoso.com,/subscriptions/s/resourcegroups/g/providers/microsoft.web/sites/a\n",
        encoding="utf-8",
    )
    items = list(FileSource(path, skip=early_skip))
    assert [type(item) for item in items] == [RawRow]
    assert items[0].fields["TimeGenerated"].startswith("2026-10-19T10:00:00")


def test_damaged_rows_are_rejected_with_their_line_whether_or_not_rows_are_skipped_early(
    tmp_path,
):
    rows = _simulated_rows()[:400]
    lines = [json.dumps(row) for row in rows]
    start = next(i for i, row in enumerate(rows) if row.get("ActivityStatusValue") == "Start")
    unrelated = next(i for i, r in enumerate(rows) if r.get("Type") == "AppServiceFileAuditLogs")
    status = '"ActivityStatusValue": "'
    damaged = {
        start: lines[start][:-1] + ",}",  # a trailing comma: not JSON
        start + 1: lines[start + 1].replace(status, '"ActivityStatusValue": 7, "x": "'),
        unrelated: json.dumps({**rows[unrelated], "Path": ["not", "text"]}),
        unrelated + 1: json.dumps({**rows[unrelated + 1], "OperationNameValue": None}),
    }
    lines = [damaged.get(i, line) for i, line in enumerate(lines)]
    lines.insert(7, "")
    path = tmp_path / "damaged.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    plain, _ = _outcomes(path, early=False)
    early, skipped_early = _outcomes(path, early=True)
    assert skipped_early > 100
    assert early == plain
    rejected = [o for o in early if o[0] == "rejected"]
    assert len(rejected) >= 3
    assert all(o[1] == str(path) and o[2] > 0 for o in rejected)


def test_early_skip_answers_only_for_rows_the_normaliser_skips():
    normalizer = Normalizer()
    answered = 0
    for n, row in enumerate(_simulated_rows()):
        table = table_of(row)
        early = early_skip(table, row)
        if early is not None:
            answered += 1
            raw = RawRow(source="s", line=n, table=table, fields=row)
            assert normalizer.normalize(raw) == early
    assert answered > 100


def _replay(source: str | FileSource) -> tuple[list[dict[str, Any]], Any]:
    alerts: list[dict[str, Any]] = []
    store = SqliteStore()
    try:
        stats = replay(
            [source],
            step=WindowStep(Engine(settings=DetectionSettings()), store),
            sink=alerts.append,
            window=timedelta(minutes=15),
            learning_days=14,
        )
    finally:
        store.close()
    return alerts, stats


def test_replay_of_the_sample_alerts_the_same_with_rows_skipped_early():
    early_alerts, early_stats = _replay(str(SAMPLE))  # replay skips early by itself
    plain_alerts, plain_stats = _replay(FileSource(SAMPLE))
    assert early_alerts
    assert [json.dumps(a, sort_keys=True) for a in early_alerts] == [
        json.dumps(a, sort_keys=True) for a in plain_alerts
    ]
    assert early_stats.rows == plain_stats.rows
    assert early_stats.skipped == plain_stats.skipped
    assert early_stats.observations == plain_stats.observations
    assert early_stats.rejected == plain_stats.rejected
