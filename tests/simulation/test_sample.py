"""The bundled sample end to end: every labelled attack is caught, the benign weeks stay quiet."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from detectors.cli.main import main
from detectors.simulation import read_labels

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


@pytest.fixture(scope="module")
def replayed(tmp_path_factory) -> list[dict]:
    out = tmp_path_factory.mktemp("sample") / "alerts.jsonl"
    assert (
        main(["replay", str(SAMPLES / "contoso-sample.jsonl.gz"), "--out", str(out), "--quiet"])
        == 0
    )
    return [json.loads(line) for line in out.read_text().splitlines()]


def test_every_labelled_attack_raises_an_alert_of_its_detection(replayed):
    labels = read_labels(SAMPLES / "contoso-sample.labels.json")
    assert len(labels) == 9
    for label in labels:
        caught = {
            alert["detection"]
            for alert in replayed
            if set(alert["eventIds"]) & set(label.event_ids)
        }
        assert caught & set(label.detections), f"{label.kind} was not detected"


def test_benign_activity_raises_no_alert(replayed):
    labels = read_labels(SAMPLES / "contoso-sample.labels.json")
    attack_events = {event for label in labels for event in label.event_ids}
    # An update of an attack's alert (same burst) may carry the identity's later activity.
    bursts: dict[str, set[str]] = {}
    for alert in replayed:
        bursts.setdefault(alert["burst"]["id"], set()).update(alert["eventIds"])
    false = [burst for burst, events in bursts.items() if not events & attack_events]
    assert false == []


def test_alerts_name_who_what_where_and_why(replayed):
    for alert in replayed:
        assert alert["principal"]["id"]
        assert alert["operations"]
        assert alert["resource"]["site"]
        assert alert["reasons"]
        assert alert["investigation"]["queries"]
        assert alert["severity"] in ("low", "medium", "high")


def test_the_example_alert_in_the_docs_is_a_real_alert_of_the_sample(replayed):
    text = (SAMPLES.parent / "docs" / "alerts.md").read_text()
    example = json.loads(text.split("```json", 1)[1].split("```", 1)[0])
    [real] = [a for a in replayed if a["id"] == example["id"]]
    assert example["eventIds"][-1] == "..."
    assert real["eventIds"][: len(example["eventIds"]) - 1] == example["eventIds"][:-1]
    assert {k: v for k, v in real.items() if k != "eventIds"} == {
        k: v for k, v in example.items() if k != "eventIds"
    }


def test_the_readme_excerpt_is_what_make_demo_prints(tmp_path, capsys):
    readme = (SAMPLES.parent / "README.md").read_text()
    excerpt = readme.split("One of them:", 1)[1].split("```", 2)[1].strip("\n").splitlines()
    out = tmp_path / "alerts.jsonl"
    sample = str(SAMPLES / "contoso-sample.jsonl.gz")
    assert main(["replay", sample, "--out", str(out), "--show", "--quiet"]) == 0
    shown = capsys.readouterr().out.splitlines()
    for line in excerpt:
        # The excerpt shortens long lines with "...".
        head = line.split("...", 1)[0].rstrip()
        assert any(printed.startswith(head) for printed in shown), line
