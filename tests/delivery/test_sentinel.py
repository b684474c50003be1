"""The Sentinel destination: the table declared once and held to the alert contract and the
Bicep, and alerts delivered on real protocols: enqueued as the timer enqueues them (Azurite),
the queue trigger run with the Functions host's semantics, the real `LogsIngestionClient`
uploading to the local HTTPS Logs Ingestion endpoint (`tests/services/logs_ingestion.py`),
which checks every row against the declared stream, applies the rule's transform and keeps
the table's rows, and the delivery ledger in Azurite's Table Storage.

Regenerate `infra/sentinel/alert-table.json` after a change to the table's declaration:

    .venv/bin/python -m tests.delivery.test_sentinel
"""

from __future__ import annotations

import copy
import io
import json
import re
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from azure.core.exceptions import HttpResponseError

import function_app
from detectors.delivery.destinations import TYPES
from detectors.delivery.destinations import sentinel_table as table
from detectors.delivery.destinations.sentinel import IngestionSender
from detectors.delivery.errors import PermanentDeliveryError, TransientDeliveryError
from detectors.delivery.notifier import Notifier
from detectors.model.errors import ConfigurationError
from detectors.settings.app import NotifierSettings
from tests.alerts.test_alert_schema import sample_alerts, schema
from tests.delivery.test_notifier_delivery import FAST, SECRET, Rig, _env
from tests.delivery.test_notifier_messages import doc_function
from tests.services.logs_ingestion import MAX_CALL_BYTES, LogsIngestion
from tests.test_infra import body, dotted, module, only, resolve

ROOT = Path(__file__).resolve().parents[2]
TABLE_JSON = ROOT / "infra" / "sentinel" / "alert-table.json"
REGENERATE = "regenerate it with `.venv/bin/python -m tests.delivery.test_sentinel`"
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def document_text() -> str:
    return json.dumps(table.table_document(), indent=2) + "\n"


def enormous_alert() -> dict[str, Any]:
    """A sample alert with every list long and every text huge (fit() trims it for a queue
    message; the Sentinel row must still fit the service's limits)."""
    alert = copy.deepcopy(sample_alerts()[0])
    alert["principal"]["name"] = "N" * 20_000
    alert["summary"] = "S" * 10_000
    alert["reasons"] = [{"code": f"CODE_{n}", "message": "m" * 400, "weight": n} for n in range(30)]
    alert["resources"] = [
        {**alert["resource"], "id": f"{alert['resource']['id']}-{n}", "site": f"s{n}"}
        for n in range(400)
    ]
    alert["sourceIps"] = [f"10.0.{n // 250}.{n % 250}" for n in range(2_000)]
    return alert


# -- the declaration ---------------------------------------------------------------------------


def test_every_top_level_alert_field_has_a_column_or_is_read_from_the_alert_column():
    fields = set(schema()["properties"])
    mapped = {name for column in table.COLUMNS for name in column.fields} & fields
    assert not mapped & table.ONLY_IN_ALERT, "a field is both mapped and listed as only in Alert"
    missing = fields - mapped - table.ONLY_IN_ALERT
    assert not missing, (
        f"alert fields neither in a column nor in ONLY_IN_ALERT: {sorted(missing)}; add a "
        "column to sentinel_table.COLUMNS (and regenerate the Bicep's JSON) or list them"
    )
    assert not table.ONLY_IN_ALERT - fields, "ONLY_IN_ALERT names fields alerts do not have"
    every_path = {name for column in table.COLUMNS for name in column.fields}
    assert every_path <= fields | {"id"}, "a column names a field alerts do not have"


def test_column_names_are_legal_unique_and_not_reserved():
    names = [c.name for c in table.COLUMNS]
    assert len(names) == len(set(names))
    assert names[0] == "TimeGenerated"
    for name in [*names, table.DELIVERED_AT]:
        assert re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,44}", name), name
        assert name not in table.RESERVED, name
    assert table.TABLE.endswith("_CL")
    assert table.STREAM.startswith("Custom-")
    assert dict(table.stream_columns())[table.DELIVERED_AT] is table.ColumnType.DATETIME
    assert "TimeGenerated" not in dict(table.stream_columns())


def test_the_bicep_loads_exactly_the_declaration():
    assert TABLE_JSON.read_text(encoding="utf-8") == document_text(), (
        f"infra/sentinel/alert-table.json is not the table's declaration: {REGENERATE}"
    )
    doc = module("sentinel-alerts.bicep")
    declared = doc["variables"]["declaration"]["value"]
    assert declared == table.table_document()
    workspace_table = only(doc, "Microsoft.OperationalInsights/workspaces/tables")
    assert resolve(workspace_table["name"], doc) == table.TABLE
    schema_columns = resolve(workspace_table["properties"]["schema"]["columns"], doc)
    assert [(c["name"], c["type"]) for c in schema_columns] == [
        (c.name, c.type.table_type) for c in table.COLUMNS
    ]
    rule = only(doc, "Microsoft.Insights/dataCollectionRules")
    assert rule["kind"] == "Direct"  # its own ingestion endpoint: no collection endpoint
    streams = resolve(rule["properties"]["streamDeclarations"], doc)
    [(stream, declaration)] = streams.items()
    assert stream.strip("'") == "${declaration.streamName}"  # the key, interpolated
    assert resolve(declaration["columns"], doc) == [
        {"name": name, "type": kind.value} for name, kind in table.stream_columns()
    ]
    [flow] = rule["properties"]["dataFlows"]
    assert resolve(flow["streams"], doc) == [table.STREAM]
    assert resolve(flow["transformKql"], doc) == table.TRANSFORM
    assert resolve(flow["outputStream"], doc) == f"Custom-{table.TABLE}"
    assert dotted(doc["outputs"]["endpoint"]["value"]) == "rule.properties.endpoints.logsIngestion"
    assert dotted(doc["outputs"]["immutableId"]["value"]) == "rule.properties.immutableId"


def test_the_sentinel_parts_are_off_by_default_and_wire_the_apps_settings():
    main = module("main.bicep")
    assert main["parameters"]["enableSentinelDestination"]["default"] is False
    assert main["parameters"]["sentinelAnalyticRule"]["default"] is False
    assert main["modules"]["sentinelAlerts"]["config"]["condition"] == "enableSentinelDestination"
    assert main["modules"]["sentinelRule"]["config"]["condition"] == {
        "operator": {
            "type": "and",
            "operands": {
                "operand_1": "enableSentinelDestination",
                "operand_2": "sentinelAnalyticRule",
            },
        }
    }
    # In the workspace's resource group and region, for the app's identity.
    alerts = body(main["modules"]["sentinelAlerts"])
    assert json.dumps(alerts["scope"]).count("workspaceParts") == 2
    assert dotted(alerts["params"]["location"]) == "workspaceReader.outputs.location"
    assert dotted(alerts["params"]["principalId"]) == "identity.outputs.principalId"
    wiring = body(main["modules"]["functionApp"])["params"]["sentinel"]
    assert wiring["enabled"] == "enableSentinelDestination"
    for key, output in (
        ("endpoint", "endpoint"),
        ("ruleId", "immutableId"),
        ("stream", "streamName"),
    ):
        operands = wiring[key]["operator"]["operands"]
        assert operands["condition"] == "enableSentinelDestination"
        assert dotted(operands["true_value"]) == f"sentinelAlerts.outputs.{output}"
        assert operands["false_value"] == ""
    # With Sentinel alone, the notifier still runs.
    condition = json.dumps(module("function-app.bicep")["variables"]["notifierOffSetting"])
    assert '"sentinel"' in condition
    assert '"enabled"' in condition


# -- rows --------------------------------------------------------------------------------------


def test_a_row_carries_the_alert_whole_and_leaves_the_alert_unchanged():
    for alert in sample_alerts():
        before = copy.deepcopy(alert)
        row = table.row(alert, delivered_at=NOW)
        assert alert == before  # what the other destinations get is untouched
        assert row["Alert"] == alert  # the sample's alerts are far below 32 KB
        assert row[table.DELIVERED_AT] == "2026-11-25T10:00:00.000Z"
        assert row["AlertId"] == alert["id"]
        assert row["BurstId"] == (alert.get("burst") or {}).get("id", alert["id"])
        assert row["ReasonCodes"] == [r["code"] for r in alert["reasons"]]
        assert row["ResourceIds"][0] == alert["resource"]["id"]
        assert row["SubscriptionIds"] == sorted(
            {r["subscriptionId"] for r in alert["resources"]},
            key=[r["subscriptionId"] for r in alert["resources"]].index,
        )
        assert set(row) == {table.DELIVERED_AT} | {c.name for c in table.COLUMNS[1:]}


def test_every_value_of_an_enormous_alert_stays_within_the_services_limits():
    alert = enormous_alert()
    row = table.row(alert, delivered_at=NOW)
    for name, value in row.items():
        assert len(orjson.dumps(value)) <= table.FIELD_BYTES, name
    assert len(orjson.dumps([row])) < MAX_CALL_BYTES // 4
    assert row["Alert"]["truncated"]  # the Alert column says what it does not hold
    assert row["Alert"]["id"] == alert["id"]
    assert len(row["SourceIps"]) == table.LIST_ENTRIES


# -- settings ----------------------------------------------------------------------------------


def _storage() -> dict[str, str]:
    return {"DETECTOR_STORAGE": "UseDevelopmentStorage=true"}


def test_sentinel_alone_is_a_destination_and_its_settings_are_checked():
    settings = NotifierSettings.from_env(
        {
            **_storage(),
            "DETECTOR_SENTINEL_ENDPOINT": "https://dcr-x.westeurope-1.ingest.monitor.azure.com",
            "DETECTOR_SENTINEL_RULE_ID": "dcr-" + "0" * 32,
        }
    )
    assert settings.sentinel_stream == table.STREAM
    assert TYPES["sentinel"].configured(settings) is not None
    with pytest.raises(ConfigurationError) as err:
        NotifierSettings.from_env(
            {
                **_storage(),
                "DETECTOR_SENTINEL_ENDPOINT": "http://dcr-x.ingest.monitor.azure.com",
                "DETECTOR_SENTINEL_RULE_ID": "not-a-rule",
                "DETECTOR_SENTINEL_STREAM": "AppServiceDetectorAlerts",
            }
        )
    text = str(err.value)
    assert "DETECTOR_SENTINEL_ENDPOINT must be an https:// URL" in text
    assert "DETECTOR_SENTINEL_RULE_ID='not-a-rule' is not a data collection rule" in text
    assert "DETECTOR_SENTINEL_STREAM='AppServiceDetectorAlerts' is not a custom stream" in text
    with pytest.raises(ConfigurationError, match="DETECTOR_SENTINEL_RULE_ID is missing"):
        NotifierSettings.from_env(
            {**_storage(), "DETECTOR_SENTINEL_ENDPOINT": "https://a.ingest.monitor.azure.com"}
        )


# -- delivery through the notifier -------------------------------------------------------------


class SentinelRig(Rig):
    """The notifier's deployment with the Sentinel destination on the local endpoint."""

    ingestion: LogsIngestion
    bundle: Path

    def fast(self, *, timeout_seconds: float) -> None:
        ingestion, bundle = self.ingestion, self.bundle

        class TestNotifier(Notifier):
            @classmethod
            def from_settings(cls, settings: Any, **_: Any) -> Notifier:
                return Notifier.from_settings(
                    settings,
                    timeout_seconds=timeout_seconds,
                    policy=FAST,
                    ca_path=str(bundle),
                    credential=ingestion.credential,
                )

        self.monkeypatch.setattr(function_app, "Notifier", TestNotifier)

    def landed(self) -> Counter[str]:
        """How many rows the table holds for each alert id."""
        return Counter(r["AlertId"] for r in self.ingestion.rows())


def _rig(
    azurite, storage_names, receiver, functions_host, monkeypatch, ingestion, tmp_path, **notify
) -> SentinelRig:
    bundle = tmp_path / "trusted.pem"
    bundle.write_bytes(receiver.ca_path.read_bytes() + Path(ingestion.ca_path).read_bytes())
    env = {**_env(azurite, storage_names, receiver), **ingestion.environment(), **notify}
    if "NOTIFY_WEBHOOK_SECRET" not in env:
        del env["NOTIFY_WEBHOOK_URL"]  # Sentinel alone
    SentinelRig.ingestion, SentinelRig.bundle = ingestion, bundle
    return SentinelRig(
        env=env, receiver=receiver, make_host=functions_host, monkeypatch=monkeypatch
    )


@pytest.fixture
def rig(
    azurite, storage_names, receiver, functions_host, monkeypatch, logs_ingestion, tmp_path
) -> SentinelRig:
    """Sentinel and the signed webhook, as a deployment that keeps its webhook would have."""
    return _rig(
        azurite,
        storage_names,
        receiver,
        functions_host,
        monkeypatch,
        logs_ingestion,
        tmp_path,
        NOTIFY_WEBHOOK_SECRET=SECRET,
    )


pytestmark = pytest.mark.azurite


def test_every_sample_alert_lands_once_and_the_webhook_gets_it_unchanged(rig):
    alerts = sample_alerts()
    for alert in alerts:
        rig.alerts.send(alert)
    run = rig.host(parallel=True).run_until_idle()
    assert run.errors() == []
    assert rig.landed() == Counter(a["id"] for a in alerts)
    rows = {r["AlertId"]: r for r in rig.ingestion.rows()}
    for alert in alerts:
        assert rows[alert["id"]]["Alert"] == alert
        assert rows[alert["id"]]["TimeGenerated"].tzinfo is not None  # from the transform
    hooks = {
        orjson.loads(r.body)["id"]: orjson.loads(r.body) for r in rig.receiver.requests("webhook")
    }
    assert hooks == {a["id"]: a for a in alerts}
    records = rig.records()
    assert all(records[a["id"], "sentinel"]["State"] == "delivered" for a in alerts)
    # Every call: signed in (the scope of Azure Monitor), gzip, the stream the rule declares.
    assert rig.ingestion.truncated == []
    assert all(c.authorized and c.gzip and c.status == 204 for c in rig.ingestion.calls)
    assert set(rig.ingestion.credential.scopes) == {("https://monitor.azure.com/.default",)}


def test_sentinel_alone_turns_the_notifier_on(
    azurite, storage_names, receiver, functions_host, monkeypatch, logs_ingestion, tmp_path
):
    rig = _rig(
        azurite, storage_names, receiver, functions_host, monkeypatch, logs_ingestion, tmp_path
    )
    alert = sample_alerts()[3]
    rig.alerts.send(alert)
    run = rig.host().run_until_idle()
    assert run.errors() == []
    assert rig.landed() == Counter({alert["id"]: 1})
    assert rig.receiver.requests("webhook") == []


def test_a_redelivered_alert_is_not_ingested_twice(rig):
    alert = sample_alerts()[1]
    rig.alerts.send(alert)
    rig.alerts.send(alert)
    run = rig.host().run_until_idle()
    assert run.errors() == []
    assert len(run.invocations) == 2
    assert rig.landed() == Counter({alert["id"]: 1})
    assert len(rig.ingestion.calls) == 1


def test_throttling_with_retry_after_is_honoured_then_the_alert_lands_once(rig):
    alert = sample_alerts()[0]
    rig.ingestion.throttle(retry_after=1)
    rig.alerts.send(alert)
    run = rig.host().run_until_idle()
    assert run.errors() == []
    assert [c.status for c in rig.ingestion.calls] == [429, 204]
    assert rig.landed() == Counter({alert["id"]: 1})


def test_a_long_retry_after_is_left_to_the_hosts_retry(rig):
    alert = sample_alerts()[0]
    rig.ingestion.throttle(retry_after=3600)
    rig.alerts.send(alert)
    run = rig.host().run_until_idle()
    assert [type(e) for e in run.errors()] == [TransientDeliveryError]
    assert "Retry-After 3600 s is left to the host's retry" in str(run.errors()[0])
    assert rig.landed() == Counter({alert["id"]: 1})


def test_server_errors_are_retried_and_the_alert_lands_once(rig):
    alert = sample_alerts()[2]
    # Three 503s: every in-process attempt fails; the host's retry then delivers.
    rig.ingestion.fail(503, times=3)
    rig.alerts.send(alert)
    run = rig.host().run_until_idle()
    assert [type(e) for e in run.errors()] == [TransientDeliveryError]
    assert [i.dequeue_count for i in run.invocations] == [1, 2]
    assert [c.status for c in rig.ingestion.calls] == [503, 503, 503, 204]
    assert rig.landed() == Counter({alert["id"]: 1})
    assert rig.records()[alert["id"], "sentinel"]["Attempts"] == 2
    assert len(rig.receiver.requests("webhook")) == 1  # delivered once, skipped on the retry


def test_a_failed_upload_stays_failed_and_a_requeued_alert_lands_once(rig):
    alert = sample_alerts()[4]
    rig.ingestion.fail(500, times=3 * 5)  # every attempt of every host retry
    rig.alerts.send(alert)
    host = rig.host()
    run = host.run_until_idle()
    assert len(run.poisoned) == 1
    record = rig.records()[alert["id"], "sentinel"]
    assert record["State"] == "failed"
    assert "HTTP 500" in record["LastError"]
    assert rig.landed() == Counter()
    # The workspace is back; an operator moves the poison message back, as documented.
    assert doc_function("requeue_poisoned")(host.poison, rig.queue_client()) == 1
    assert host.run_until_idle().errors() == []
    assert rig.landed() == Counter({alert["id"]: 1})
    assert rig.records()[alert["id"], "sentinel"]["State"] == "delivered"
    assert len(rig.receiver.requests("webhook")) == 1


def test_an_unknown_rule_is_refused_and_the_alert_kept_in_the_poison_queue(rig, monkeypatch):
    monkeypatch.setenv("DETECTOR_SENTINEL_RULE_ID", "dcr-" + "f" * 32)
    alert = sample_alerts()[0]
    rig.alerts.send(alert)
    host = rig.host()
    run = host.run_until_idle()
    assert all(isinstance(e, PermanentDeliveryError) for e in run.errors())
    assert "sentinel refused (HTTP 404" in str(run.errors()[0])
    assert len(host.poison_texts()) == 1
    assert rig.landed() == Counter()


def test_an_enormous_alert_lands_whole_within_the_limits(rig):
    alert = enormous_alert()
    rig.alerts.send(alert)  # fit() trims it to a queue message, as the timer does
    run = rig.host().run_until_idle()
    assert run.errors() == []
    [row] = rig.ingestion.rows()
    assert rig.ingestion.truncated == []  # nothing the service would have cut
    assert row["AlertId"] == alert["id"]
    assert row["Alert"]["truncated"]


# -- many rows: the client's split at 1 MB -----------------------------------------------------


def _sender(ingestion: LogsIngestion) -> IngestionSender:
    return IngestionSender.connect(
        endpoint=ingestion.endpoint,
        rule_id=ingestion.rule_id,
        stream=ingestion.stream,
        credential=ingestion.credential,
        timeout_seconds=5,
        ca_path=ingestion.ca_path,
    )


def _many_large_rows() -> list[dict[str, Any]]:
    """120 rows of about 30 KB each: several calls' worth."""
    rows = []
    for n in range(120):
        alert = enormous_alert()
        alert["id"] = f"{n:032x}"
        rows.append(table.row(alert, delivered_at=NOW))
    return rows


def test_rows_over_the_call_limit_are_split_and_each_lands_once(logs_ingestion):
    rows = _many_large_rows()
    assert len(orjson.dumps(rows)) > 3 * MAX_CALL_BYTES
    sender = _sender(logs_ingestion)
    logs_ingestion.fail(503)  # the first call fails: only its rows come back
    result = sender.upload(rows)
    calls = logs_ingestion.calls
    assert len(calls) > 3
    assert all(c.body_bytes <= MAX_CALL_BYTES for c in calls)
    assert calls[0].status == 503
    assert result.failure is not None
    assert 0 < len(result.failed) < len(rows)
    assert sender.upload(result.failed).failed == []
    landed = Counter(r["AlertId"] for r in logs_ingestion.rows())
    assert landed == Counter(r["AlertId"] for r in rows)
    assert set(landed.values()) == {1}
    sender.close()


def test_the_endpoint_takes_gzip_or_not_and_refuses_over_one_megabyte_or_off_the_stream(
    logs_ingestion,
):
    sender = _sender(logs_ingestion)
    big = table.row(sample_alerts()[0], delivered_at=NOW)
    # The rows as one stream that is not split (an I/O stream is sent as it is).
    body = io.BytesIO(orjson.dumps([big] * 200))
    with pytest.raises(HttpResponseError, match="ContentLengthLimitExceeded"):
        sender.client.upload(rule_id=sender.rule_id, stream_name=sender.stream, logs=body)
    # Uncompressed is accepted as well (the service takes either).
    sender.client.upload(
        rule_id=sender.rule_id, stream_name=sender.stream, logs=io.BytesIO(orjson.dumps([big]))
    )
    assert [c.gzip for c in logs_ingestion.calls] == [False, False]
    assert [c.status for c in logs_ingestion.calls] == [413, 204]
    result = sender.upload([{**big, "NoSuchColumn": 1}])
    assert "InvalidColumn" in str(result.failure)
    result = sender.upload([{**big, "Score": "high"}])
    assert "InvalidValue" in str(result.failure)
    assert [r["AlertId"] for r in logs_ingestion.rows()] == [big["AlertId"]]
    sender.close()


if __name__ == "__main__":
    TABLE_JSON.write_text(document_text(), encoding="utf-8")
    print(f"wrote {TABLE_JSON.relative_to(ROOT)}", file=sys.stderr)
