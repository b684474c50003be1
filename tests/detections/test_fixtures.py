"""Each detection's fixture files, replayed as an operator replays an export.

`fixtures/<detection>/<case>.jsonl[.gz]` holds a story's rows in the Log Analytics export
format (`make_fixtures` writes them); `<case>.expected.json` beside it says, by hand, what
must come of it in event order and in the order the timer sees rows (`ORDERS`): every
alert (detection, principal, acceptable severities, reasons it must give), and nothing
else. A case for a new detection is two files in its folder.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from detectors.cli.main import main
from detectors.detections import DETECTIONS

FIXTURES = Path(__file__).resolve().parent / "fixtures"
CASES = sorted(p for p in FIXTURES.glob("*/*") if p.name.endswith((".jsonl", ".jsonl.gz")))


def _expected(rows: Path) -> dict:
    name = rows.name.removesuffix(".gz").removesuffix(".jsonl")
    return json.loads((rows.parent / f"{name}.expected.json").read_text(encoding="utf-8"))


ORDERS = {
    "event-order": (),
    # As the timer sees the rows: each delayed as Azure delays them, scored in its steps.
    "ingestion-order": ("--ingestion-delay", "realistic", "--delay-seed", "1"),
}


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("rows", CASES, ids=lambda p: f"{p.parent.name}/{p.name.split('.')[0]}")
def test_a_fixture_replays_to_exactly_its_expected_alerts(rows, order, tmp_path):
    expected = _expected(rows)
    out = tmp_path / "alerts.jsonl"
    assert main(["replay", str(rows), "--out", str(out), "--quiet", *ORDERS[order]]) == 0
    alerts = [json.loads(line) for line in out.read_text().splitlines()]
    got = sorted(alerts, key=lambda a: (a["detection"], a["principal"]["id"], a["firstSeen"]))
    wanted = sorted(expected["alerts"], key=lambda e: (e["detection"], e["principal"]))
    summary = [(a["detection"], a["principal"]["id"], a["severity"]) for a in got]
    assert [(a["detection"], a["principal"]["id"]) for a in got] == [
        (e["detection"], e["principal"]) for e in wanted
    ], f"{expected['story']}\nalerts: {summary}"
    for alert, want in zip(got, wanted, strict=True):
        assert alert["severity"] in want["severity"], summary
        codes = {r["code"] for r in alert["reasons"]}
        assert set(want["reasons"]) <= codes, sorted(codes)


def test_every_detection_has_fixtures_that_alert_and_that_stay_quiet():
    for detection in DETECTIONS:
        cases = [p for p in CASES if p.parent.name == detection.spec.id]
        outcomes = {bool(_expected(p)["alerts"]) for p in cases}
        assert outcomes == {True, False}, detection.spec.id
    assert {p.parent.name for p in CASES} == {d.spec.id for d in DETECTIONS}
