"""Records past retention are deleted, a bounded slice at a time, on real Table Storage
(Azurite); everything else in the tables is left alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from detectors.delivery.ledger import Claim, TableLedger
from detectors.settings.app import StorageSettings
from detectors.stores.table import TableStore

pytestmark = pytest.mark.azurite

HOLD = timedelta(minutes=2)


def _store(azurite, storage_names) -> TableStore:
    return TableStore(
        connection_string=azurite.connection_string,
        baseline_table=storage_names.table("Baselines"),
        state_table=storage_names.table("State"),
    )


def _ago(days: float) -> datetime:
    return datetime.now(UTC) - timedelta(days=days)


def test_old_alert_records_go_in_bounded_slices_and_nothing_else_is_touched(azurite, storage_names):
    store = _store(azurite, storage_names)
    ids = ["a/1", "a'2", "a 3", "a#4", "ä5"]  # odd ids are keys too
    store.record_alerts([{"alertId": alert_id, "detection": "d"} for alert_id in ids])
    store.put_state("timer", {"watermark": "2026-11-25T10:00:00+00:00"})
    store.hold({"id": "waiting", "detection": "d"})

    assert store.prune_alert_records(_ago(1), 100) == 0  # nothing is a day old yet
    everything = _ago(-0.01)  # a cut-off after every write so far
    assert store.prune_alert_records(everything, 2) == 2
    assert store.prune_alert_records(everything, 100) == 3
    assert store.prune_alert_records(everything, 100) == 0
    assert all(store.get_alert_record(alert_id)[0] is None for alert_id in ids)
    # The checkpoint and the outbox live in the same table and are not records.
    assert store.get_state("timer") == {"watermark": "2026-11-25T10:00:00+00:00"}
    assert [alert["id"] for alert in store.held()] == ["waiting"]


def test_old_delivery_records_go_and_a_missing_table_holds_nothing(azurite, storage_names):
    storage = StorageSettings(connection_string=azurite.connection_string)
    ledger = TableLedger.from_settings(
        storage, table=storage_names.table("Deliveries"), create_table=True
    )
    now = datetime.now(UTC)
    for n in range(3):
        claim = ledger.claim(f"alert-{n}", "webhook", holder="h", now=now, hold=HOLD, details={})
        assert isinstance(claim, Claim)
        ledger.delivered(claim, now=now, status=200)
    assert ledger.prune(_ago(1), 100) == 0
    assert ledger.prune(_ago(-0.01), 100) == 3
    # Deleted records are gone: the same alert can be claimed afresh.
    again = ledger.claim("alert-0", "webhook", holder="h", now=now, hold=HOLD, details={})
    assert isinstance(again, Claim)

    never_made = TableLedger.from_settings(
        storage, table=storage_names.table("Missing"), create_table=False
    )
    assert never_made.prune(_ago(-0.01), 100) == 0
