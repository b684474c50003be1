"""`detector evaluate`: alerts matched to labelled scenarios by event ids."""

from __future__ import annotations

from datetime import UTC, datetime

from detectors.cli.main import main
from detectors.simulation import ScenarioLabel
from detectors.simulation.evaluation import evaluate, report
from tests.simulation.test_sample import SAMPLES

T = datetime(2026, 10, 20, tzinfo=UTC)
CRED, WEBJOB = "appservice-credential-download", "appservice-webjob-activity"


def label(n: int, kind: str, detections: tuple[str, ...], events: tuple[str, ...]) -> ScenarioLabel:
    return ScenarioLabel(
        id=f"s{n}",
        kind=kind,
        detections=detections,
        principal_id="p",
        principal_name="P",
        sites=(),
        start=T,
        end=T,
        event_ids=events,
        description=f"scenario {n}",
    )


def alert(detection: str, severity: str, *events: str) -> dict:
    return {
        "detection": detection,
        "severity": severity,
        "score": 50,
        "eventIds": list(events),
        "reasons": [{"code": "NEW_SITE", "weight": 15}],
        "firstSeen": "2026-10-20T00:00:00.000Z",
        "principal": {"name": "P", "type": "user"},
    }


def test_alerts_are_matched_to_scenarios_by_event_ids_and_the_rest_are_false():
    labels = [
        label(1, "credential-harvest", (CRED,), ("a", "b")),
        label(2, "webjob-persistence", (WEBJOB, CRED), ("c",)),
        label(3, "failed-probing", (CRED,), ("d",)),
    ]
    alerts = [alert(CRED, "high", "b", "x"), alert(WEBJOB, "medium", "c"), alert(CRED, "low", "zz")]
    result = evaluate(alerts, labels, principal_days=500)
    assert [s.caught for s in result.scenarios] == [True, True, False]
    assert result.recall(CRED) == (1, 3)
    assert result.recall(WEBJOB) == (1, 1)
    assert len(result.false_alerts) == 1
    assert result.false_rate() == 2.0
    assert result.false_rate("high") == 0.0
    text = report(result, [CRED, WEBJOB])
    assert "missed s3: scenario 3" in text
    assert "false alerts: 1 (0 high, 0 medium, 1 low); 2.00 per 1,000 principal-days" in text


def test_an_alert_of_the_wrong_detection_does_not_count_as_caught():
    labels = [label(1, "repetitive-webjob-runs", (WEBJOB,), ("a",))]
    result = evaluate([alert(CRED, "low", "a")], labels, principal_days=10)
    assert not result.scenarios[0].caught
    assert result.false_alerts == ()


def test_evaluate_command_reports_the_bundled_sample(capsys):
    assert main(["evaluate", str(SAMPLES / "contoso-sample.jsonl.gz")]) == 0
    out = capsys.readouterr().out
    assert "9 labelled scenarios" in out
    assert "appservice-webjob-activity             3/3    100%" in out
    assert "MISSED" not in out
    assert "false alerts: 0 " in out


def test_updates_of_a_burst_are_one_alert_and_belong_to_its_scenario():
    labels = [label(1, "function-keys-theft", (CRED,), ("a",))]
    first = {**alert(CRED, "low", "a"), "id": "1", "burst": {"id": "1", "sequence": 1}}
    update = {**alert(CRED, "medium", "later"), "id": "2", "burst": {"id": "1", "sequence": 2}}
    benign = {**alert(CRED, "low", "x"), "id": "3", "burst": {"id": "3", "sequence": 1}}
    again = {**alert(CRED, "medium", "y"), "id": "4", "burst": {"id": "3", "sequence": 2}}
    result = evaluate([first, update, benign, again], labels, principal_days=1000)
    assert result.scenarios[0].caught
    assert len(result.scenarios[0].alerts) == 2
    assert [a["id"] for a in result.false_alerts] == ["4"]  # one burst, at its worst
