"""The timer applies allow rules before an alert is kept for the queue: the allowed alert is
counted in the run report and against its rule (in Table Storage), logged, and never
enqueued; every alert that does go out leaves a record for feedback."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from detectors.alerts.allow import AllowRule
from detectors.sources import Budget
from detectors.stores.table import TableStore
from tests.runs.test_timer_end_to_end import STRANGER_A, STRANGER_B, T0, _harvest, _rig

pytestmark = [pytest.mark.azurite, pytest.mark.logs]


def test_an_allowed_alert_is_counted_logged_and_not_enqueued(
    log_analytics, azurite, storage_names, caplog
):
    rig = _rig(log_analytics, azurite, storage_names)
    rules = TableStore(
        connection_string=azurite.connection_string,
        baseline_table=rig.settings.baseline_table,
        state_table=rig.settings.state_table,
        allow_table=storage_names.table("Allow"),
    )
    window = {"added_by": "ops", "added_at": T0 - timedelta(days=1)}
    rules.add_rule(
        AllowRule(
            id="harvest-drill",
            principal=STRANGER_A,
            reason="red team drill",
            expires=T0 + timedelta(days=1),
            **window,
        )
    )
    rules.add_rule(AllowRule(id="old", principal=STRANGER_B, reason="x", expires=T0, **window))
    # Edited into the table by hand to allow B for ten years: the timer ignores it.
    rules.add_rule(
        AllowRule(
            id="for-ever",
            principal=STRANGER_B,
            reason="x",
            expires=T0 + timedelta(days=3650),
            **window,
        )
    )
    _harvest(rig.la, STRANGER_A, T0 + timedelta(minutes=1), ingested=T0 + timedelta(minutes=2))
    _harvest(rig.la, STRANGER_B, T0 + timedelta(minutes=3), ingested=T0 + timedelta(minutes=4))
    timer = rig.timer()
    timer.allow = rules
    timer.records = timer.state  # the state table keeps the records, as in production
    with caplog.at_level(logging.INFO, logger="detectors.alerts.allow"):
        report = timer.run(T0 + timedelta(minutes=20), Budget(60))
    assert report.outcome == "ok", report.line()
    assert report.allowed == {"harvest-drill": 1}
    assert report.expired_rules == ["old"]
    assert [text.split(":")[0] for text in report.invalid_rules] == ["for-ever"]
    assert "allowed by rules 1" in report.line()
    assert [a["principal"]["id"] for a in rig.alerts()] == [STRANGER_B]
    assert "allowed by rule harvest-drill" in caplog.text
    (drill,) = [s.rule for s in rules.list_rules() if s.rule.id == "harvest-drill"]
    assert drill.hits == 1
    (sent,) = rig.alerts()
    record, _ = rules.get_alert_record(sent["id"])
    assert record is not None
    assert record["principalId"] == STRANGER_B
    assert "sites" in record["novel"]
    rules.close()


def test_an_unreadable_allow_table_lets_every_alert_out(log_analytics, azurite, storage_names):
    rig = _rig(log_analytics, azurite, storage_names)
    missing = TableStore(
        connection_string=azurite.connection_string,
        baseline_table=rig.settings.baseline_table,
        state_table=rig.settings.state_table,
        allow_table=storage_names.table("Missing"),
        create_tables=False,
    )
    _harvest(rig.la, STRANGER_A, T0 + timedelta(minutes=1), ingested=T0 + timedelta(minutes=2))
    timer = rig.timer()
    timer.allow = missing
    report = timer.run(T0 + timedelta(minutes=20), Budget(60))
    assert report.outcome == "ok", report.line()
    assert report.rules_error
    assert [a["principal"]["id"] for a in rig.alerts()] == [STRANGER_A]
    missing.close()
