"""Docs that promise something about the code stay true to it."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from detectors.model.errors import ConfigurationError
from detectors.model.reasons import ReasonCode
from detectors.settings.detection import _TEXT_CHECKS, DetectionSettings

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_every_setting_is_documented_with_its_default():
    text = (DOCS / "settings.md").read_text()
    for field in dataclasses.fields(DetectionSettings):
        name = f"DETECTOR_{field.name.upper()}"
        row = re.search(rf"^\| `{name}` \| ([^|]+) \|", text, re.MULTILINE)
        assert row, f"{name} is not in docs/settings.md"
        default = field.default if field.default != "" else "(none)"
        shown = default if isinstance(default, str) else f"{default:g}"
        assert row.group(1).strip().split()[0] == shown, name


def test_every_reason_code_is_documented():
    text = (DOCS / "reasons.md").read_text()
    for code in ReasonCode:
        assert f"| `{code.value}` |" in text, code


def test_settings_come_from_the_environment():
    settings = DetectionSettings.from_env(
        {"DETECTOR_ALERT_THRESHOLD": "40", "DETECTOR_BURST_SITES": "6"}
    )
    assert settings.alert_threshold == 40.0
    assert settings.burst_sites == 6


def test_every_bad_setting_is_reported_at_once():
    with pytest.raises(ConfigurationError) as err:
        DetectionSettings.from_env(
            {"DETECTOR_BURST_SITES": "many", "DETECTOR_WEIGHT_NEW_SITE": "-3"}
        )
    assert "DETECTOR_BURST_SITES='many' is not an integer" in str(err.value)
    assert "DETECTOR_WEIGHT_NEW_SITE='-3' must not be negative" in str(err.value)


def test_the_operators_rented_ranges_come_from_the_environment_and_are_checked():
    ranges = "Acme VPS=203.0.113.0/24 2001:db8::/32; Hetzner=5.75.128.0/17"
    assert DetectionSettings.from_env({"DETECTOR_HOSTING_RANGES": ranges}).hosting_ranges == ranges
    with pytest.raises(ConfigurationError) as err:
        DetectionSettings.from_env(
            {"DETECTOR_HOSTING_RANGES": "Acme=203.0.113.0/33", "DETECTOR_BURST_SITES": "x"}
        )
    assert "DETECTOR_HOSTING_RANGES: '203.0.113.0/33' (Acme) is not a network" in str(err.value)
    assert "DETECTOR_BURST_SITES" in str(err.value)
    with pytest.raises(ConfigurationError, match=r"'203\.0\.113\.0/24' is not Provider=CIDR"):
        DetectionSettings.from_env({"DETECTOR_HOSTING_RANGES": "203.0.113.0/24"})


def test_every_text_setting_says_how_it_is_checked():
    """A text setting read from the environment is checked by its own parser, not taken on
    trust: adding one without a check fails here, not when an operator first sets it."""
    text = {f.name for f in dataclasses.fields(DetectionSettings) if f.type in ("str", str)}
    assert text == set(_TEXT_CHECKS)


def test_severity_bands_must_be_ordered():
    with pytest.raises(ConfigurationError, match="THRESHOLD"):
        DetectionSettings.from_env({"DETECTOR_HIGH_THRESHOLD": "10"})


def test_the_alert_example_in_the_docs_has_exactly_the_fields_alerts_have(run_rows):
    import json

    from tests.cli.test_replay_cli import attack_rows

    text = (DOCS / "alerts.md").read_text()
    example = json.loads(text.split("```json", 1)[1].split("```", 1)[0])
    alerts, _ = run_rows(attack_rows())
    assert list(example) == list(alerts[0])
    assert set(example["principal"]) == set(alerts[0]["principal"])
    for field in alerts[0]:
        assert f"| `{field}` |" in text or f"`{field}`," in text, field


def test_the_detections_catalogue_in_the_docs_is_current():
    from detectors.detections import catalogue

    assert (DOCS / "detections.md").read_text() == catalogue()


def test_the_detections_command_prints_the_catalogue(capsys):
    from detectors.cli.main import main
    from detectors.detections import catalogue

    assert main(["detections"]) == 0
    assert capsys.readouterr().out == catalogue()
