"""The alert contract holds: every alert the test suite produces validates against
docs/alert.schema.json, the producer emits no field the schema does not document, the
compatibility policy's promises are what the schema enforces, and the examples in
docs/alert-contract.md are real alerts of the bundled sample.

Regenerate the examples after a change to what alerts contain:

    .venv/bin/python -m tests.alerts.test_alert_schema
"""

from __future__ import annotations

import copy
import inspect
import json
import re
import sys
import tempfile
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest

import tests.detections.test_detections as detection_tests
from detectors.alerts import document
from detectors.alerts.render import MAX_MESSAGE_BYTES, SCHEMA_VERSION, fit
from detectors.cli.main import main
from detectors.detections import DETECTIONS
from detectors.model.observation import ClientTool, OperationFamily, PrincipalType, Status
from tests.cli.test_replay_cli import attack_rows

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "samples" / "contoso-sample.jsonl.gz"
SCHEMA_PATH = ROOT / "docs" / "alert.schema.json"
CONTRACT = ROOT / "docs" / "alert-contract.md"
START, END = "<!-- examples: start -->", "<!-- examples: end -->"
REGENERATE = "regenerate them with `.venv/bin/python -m tests.alerts.test_alert_schema`"


@cache
def sample_alerts() -> tuple[dict[str, Any], ...]:
    """Every alert `python -m detectors replay` raises on the bundled sample (once a session)."""
    with tempfile.TemporaryDirectory() as directory:
        out = Path(directory) / "alerts.jsonl"
        assert main(["replay", str(SAMPLE), "--out", str(out), "--quiet"]) == 0
        return tuple(json.loads(line) for line in out.read_text().splitlines())


@cache
def schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text())


@cache
def published() -> jsonschema.Draft202012Validator:
    """The schema as consumers use it: unknown fields allowed (the compatibility policy)."""
    return jsonschema.Draft202012Validator(
        schema(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


@cache
def strict() -> jsonschema.Draft202012Validator:
    """The schema with no undocumented field allowed anywhere: what the producer must meet."""
    closed = copy.deepcopy(schema())
    for node in _subschemas(closed):
        if node.get("type") == "object" and "properties" in node:
            node["unevaluatedProperties"] = False
    return jsonschema.Draft202012Validator(
        closed, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def _subschemas(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _subschemas(value)
    elif isinstance(node, list):
        for value in node:
            yield from _subschemas(value)


def assert_valid(alert: dict[str, Any]) -> None:
    """Valid for consumers, and nothing in it the schema does not document."""
    errors = [f"{e.json_path}: {e.message[:200]}" for e in published().iter_errors(alert)]
    assert not errors, f"alert {alert.get('id')} breaks the contract: {errors}"
    undocumented = [f"{e.json_path}: {e.message[:200]}" for e in strict().iter_errors(alert)]
    assert not undocumented, (
        f"alert {alert.get('id')} has fields docs/alert.schema.json does not describe "
        f"(document them as optional properties, a minor version): {undocumented}"
    )


# -- the schema itself ------------------------------------------------------------------------


def test_the_schema_is_valid_draft_2020_12_and_names_the_current_major_version():
    jsonschema.Draft202012Validator.check_schema(schema())
    assert schema()["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert re.fullmatch(schema()["properties"]["schemaVersion"]["pattern"], SCHEMA_VERSION)
    assert SCHEMA_VERSION.split(".")[0] == schema()["$id"].rsplit(":", 1)[1]


def test_the_known_values_it_lists_are_the_codes():
    properties, defs = schema()["properties"], schema()["$defs"]
    assert set(defs["tool"]["examples"]) == {t.value for t in ClientTool}
    assert set(defs["principal"]["properties"]["type"]["examples"]) == {
        t.value for t in PrincipalType
    }
    status = properties["operations"]["items"]["properties"]["status"]
    assert set(status["examples"]) == {s.value for s in Status}
    families = properties["history"]["properties"]["operations"]["items"]
    assert set(families["examples"]) == {f.value for f in OperationFamily}
    assert set(properties["detection"]["examples"]) == {d.spec.id for d in DETECTIONS}


# -- every alert the suite produces -----------------------------------------------------------


def test_every_alert_of_the_bundled_sample_is_valid():
    alerts = sample_alerts()
    assert {a["detection"] for a in alerts} == {d.spec.id for d in DETECTIONS}
    for alert in alerts:
        assert_valid(alert)


_FIXTURE_TESTS = [
    function
    for name, function in sorted(vars(detection_tests).items())
    if name.startswith("test_")
    and callable(function)
    and "run_rows" in inspect.signature(function).parameters
]


def _cases(function: Any) -> list[Any]:
    """One pytest.param per case of a detection test (each set of its parametrize values)."""
    cases: list[tuple[str, dict[str, Any]]] = [(function.__name__, {})]
    for mark in getattr(function, "pytestmark", []):
        if mark.name != "parametrize":
            continue
        names = (
            [n.strip() for n in mark.args[0].split(",")]
            if isinstance(mark.args[0], str)
            else list(mark.args[0])
        )
        ids = mark.kwargs.get("ids")
        expanded = []
        for n, raw in enumerate(mark.args[1]):
            values = raw if len(names) > 1 else (raw,)
            label = ids[n] if isinstance(ids, list | tuple) else str(n)
            for case_id, given in cases:
                named = dict(zip(names, values, strict=True))
                expanded.append((f"{case_id}[{label}]", {**given, **named}))
        cases = expanded
    return [pytest.param(function, given, id=case_id) for case_id, given in cases]


@pytest.mark.parametrize(
    ("fixture_test", "given"), [case for f in _FIXTURE_TESTS for case in _cases(f)]
)
def test_every_alert_of_the_detection_fixtures_is_valid(fixture_test, given, run_rows, request):
    """Re-runs each detection test (each of its cases) with a `run_rows` that keeps the
    alerts it produced."""
    produced: list[dict[str, Any]] = []

    def recording(*args: Any, **kwargs: Any) -> Any:
        alerts, stats = run_rows(*args, **kwargs)
        produced.extend(alerts)
        return alerts, stats

    arguments = {
        name: recording
        if name == "run_rows"
        else given[name]
        if name in given
        else request.getfixturevalue(name)
        for name in inspect.signature(fixture_test).parameters
    }
    fixture_test(**arguments)
    for alert in produced:
        assert_valid(alert)


def test_the_detection_fixtures_do_produce_alerts_to_check():
    assert len(_FIXTURE_TESTS) >= 10


def test_alerts_of_the_replay_fixture_are_valid(run_rows):
    alerts, _ = run_rows(attack_rows())
    assert alerts
    for alert in alerts:
        assert_valid(alert)


def _inflated() -> dict[str, Any]:
    """The largest sample alert, grown past every trimming step of `fit`."""
    alert = copy.deepcopy(max(sample_alerts(), key=lambda a: len(orjson.dumps(a))))
    alert["eventIds"] = [f"{n:08x}-0000-4000-8000-000000000000" for n in range(900)]
    alert["operations"] = [
        {"name": f"MICROSOFT.WEB/SITES/OP{n}/ACTION", "count": 1, "status": "succeeded"}
        for n in range(300)
    ]
    alert["resources"] = [alert["resource"]] * 200
    alert["sourceIps"] = [f"203.0.113.{n % 256}" for n in range(300)]
    alert["summary"] = "s" * 5000
    alert["principal"]["name"] = "n" * 3000
    for reason in alert["reasons"]:
        reason["message"] = "m" * 3000
    return alert


def test_alerts_trimmed_by_fit_at_every_step_are_valid():
    alert = _inflated()
    assert len(orjson.dumps(alert)) > MAX_MESSAGE_BYTES
    steps: set[tuple[str, ...]] = set()
    for limit in (MAX_MESSAGE_BYTES, 40_000, 30_000, 20_000, 12_000, 8_000, 4_000, 1_000):
        trimmed = fit(alert, max_bytes=limit)
        steps.add(tuple(sorted(trimmed["truncated"])))
        assert_valid(trimmed)
    assert any("everythingElse" in s for s in steps)  # the core-only form was reached
    assert len(steps) >= 4


# -- what the compatibility policy promises ---------------------------------------------------


def _base() -> dict[str, Any]:
    return copy.deepcopy(sample_alerts()[0])


def test_additive_changes_within_the_major_version_stay_valid_for_consumers():
    alert = _base()
    alert["schemaVersion"] = "1.7"
    alert["somethingNew"] = {"nested": [1, 2]}
    alert["principal"]["displayName"] = "Added later"
    alert["detection"] = "appservice-new-detection"
    alert["reasons"].append({"code": "A_NEW_REASON", "message": "new", "weight": 1.0})
    alert["tools"].append("aNewTool")
    alert["principal"]["type"] = "aNewKindOfPrincipal"
    alert["operations"][0]["status"] = "partiallySucceeded"
    assert list(published().iter_errors(alert)) == []
    assert list(strict().iter_errors(alert))  # ... but our producer must document them


@pytest.mark.parametrize(
    ("change", "path"),
    [
        (lambda a: a.pop("id"), "$"),
        (lambda a: a.pop("summary"), "$"),
        (lambda a: a.__setitem__("schemaVersion", "2.0"), "$.schemaVersion"),
        (lambda a: a.__setitem__("severity", "critical"), "$.severity"),
        (lambda a: a.__setitem__("score", "82"), "$.score"),
        (lambda a: a.__setitem__("id", "not-hex"), "$.id"),
        (lambda a: a.__setitem__("firstSeen", "2026-10-17 16:00"), "$.firstSeen"),
        (lambda a: a["principal"].pop("id"), "$.principal"),
        (lambda a: a["reasons"][0].__setitem__("weight", None), "$.reasons[0].weight"),
        (lambda a: a["history"].pop("activeDays"), "$.history"),
        (lambda a: a.__setitem__("truncated", {"eventIds": "many"}), "$.truncated.eventIds"),
    ],
)
def test_breaking_changes_are_invalid(change: Callable[[dict[str, Any]], Any], path: str):
    alert = _base()
    change(alert)
    errors = list(published().iter_errors(alert))
    assert errors
    assert path in {e.json_path for e in errors}


def test_a_core_only_alert_needs_only_the_core_fields():
    minimal = fit(_inflated(), max_bytes=1_000)
    assert "summary" not in minimal
    assert list(published().iter_errors(minimal)) == []
    minimal["truncated"].pop("everythingElse")
    assert any(
        "'summary' is a required property" in e.message for e in published().iter_errors(minimal)
    )


# -- the examples in the docs -----------------------------------------------------------------


def example_alerts() -> list[dict[str, Any]]:
    """One alert per detection, the highest-scoring of the sample, `eventIds` shortened."""
    examples = []
    for detection in DETECTIONS:
        of_it = [a for a in sample_alerts() if a["detection"] == detection.spec.id]
        best = copy.deepcopy(max(of_it, key=lambda a: (a["score"], a["id"])))
        if len(best["eventIds"]) > 3:
            best["eventIds"] = [*best["eventIds"][:3], "..."]
        examples.append(best)
    return examples


def examples_section() -> str:
    """The generated part of docs/alert-contract.md."""
    parts = [START]
    for alert in example_alerts():
        parts += [
            "",
            f"### `{alert['detection']}`",
            "",
            f"{alert['title']}: alert `{alert['id']}` of the bundled sample, "
            f"{alert['severity']} (score {alert['score']:g}).",
            "",
            "```json",
            json.dumps(alert, indent=2, ensure_ascii=False),
            "```",
        ]
    parts += ["", END]
    return "\n".join(parts)


def test_the_contract_shows_a_current_real_example_of_each_detection():
    text = CONTRACT.read_text()
    assert START in text, f"{CONTRACT.name} has no examples section"
    current = START + text.split(START, 1)[1].split(END, 1)[0] + END
    assert current == examples_section(), f"the examples in {CONTRACT.name} are stale: {REGENERATE}"


def test_the_examples_in_the_docs_are_valid():
    text = CONTRACT.read_text() + (ROOT / "docs" / "alerts.md").read_text()
    blocks = re.findall(r"```json\n(.*?)```", text, re.DOTALL)
    assert len(blocks) >= len(DETECTIONS) + 1
    for block in blocks:
        alert = json.loads(block)
        alert["eventIds"] = [e for e in alert["eventIds"] if e != "..."]
        assert_valid(alert)


def test_the_contract_documents_every_top_level_field():
    text = CONTRACT.read_text()
    for name in schema()["properties"]:
        assert f"`{name}`" in text, name


def _write_examples() -> None:
    text = CONTRACT.read_text()
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    CONTRACT.write_text(head + examples_section() + tail)
    sys.stdout.write(f"wrote the examples of {CONTRACT.relative_to(ROOT)}\n")


if __name__ == "__main__":
    _write_examples()


def _object(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """A schema node with its `$ref` (to `$defs`) followed, and array items taken."""
    if "$ref" in node:
        node = schema["$defs"][node["$ref"].rsplit("/", 1)[1]]
    if node.get("type") == "array":
        return _object(schema, node["items"])
    return node


@pytest.mark.parametrize(
    ("typed", "path"),
    [
        (document.AlertDocument, ()),
        (document.PrincipalDoc, ("principal",)),
        (document.ResourceDoc, ("resource",)),
        (document.ResourceDoc, ("resources",)),
        (document.OperationDoc, ("operations",)),
        (document.ReasonDoc, ("reasons",)),
        (document.TechniqueDoc, ("mitre",)),
        (document.BurstDoc, ("burst",)),
    ],
    ids=lambda v: v.__name__ if isinstance(v, type) else ".".join(v) or "alert",
)
def test_the_typed_alert_document_has_the_schemas_properties(typed, path):
    """What the code builds and reads (`alerts.document`) and what consumers are promised
    (`docs/alert.schema.json`) name the same fields, required alike."""
    schema = json.loads(SCHEMA_PATH.read_text())
    node = schema
    for key in path:
        node = _object(schema, node["properties"][key])
    node = _object(schema, node)
    assert set(typed.__annotations__) == set(node["properties"])
    assert typed.__required_keys__ == frozenset(node.get("required", node["properties"]))
