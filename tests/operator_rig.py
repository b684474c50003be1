"""One seeded store for the operators' command tests, embedded or in Azurite.

A replay of Jane's three weeks (and a CI pipeline's) with a credential harvest at the end
fills an embedded store with baselines and the alert's feedback record; the Table Storage
variant copies exactly those into fresh Azurite tables, so both run the same tests.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from detectors.cli.main import main
from detectors.settings.app import OperatorSettings
from detectors.stores import StoredBaseline
from detectors.stores.locate import OperatorStore, open_store
from detectors.stores.sqlite import SqliteStore
from tests.cli.test_replay_cli import attack_rows
from tests.detections.test_detections import START
from tests.rowkit import CLI, PUBLISHXML, Actor, activity, site_id, workdays, write_ndjson

PIPELINE = Actor(
    caller="3f2b1c4d-aaaa-4bbb-8ccc-123456789abc", app_id=CLI, ip="20.1.2.3", kind="app"
)


def rows() -> list[dict[str, Any]]:
    found = attack_rows()
    for day in workdays(START, 20):
        found += activity(PIPELINE, day + timedelta(hours=1), PUBLISHXML, site_id("ci-app"))
    return found


@dataclass
class Rig:
    kind: str
    spec: str
    tmp: Path
    alerts: list[dict[str, Any]]

    def open(self) -> OperatorStore:
        import os

        return open_store(self.spec, OperatorSettings.from_env(os.environ))

    def run(self, *args: str) -> int:
        return main([*args, "--store", self.spec])


def seeded_sqlite(tmp: Path) -> tuple[Path, list[dict[str, Any]]]:
    src = write_ndjson(tmp / "export.jsonl", rows())
    db, out = tmp / "seed.db", tmp / "alerts.jsonl"
    assert main(["replay", str(src), "--out", str(out), "--store", f"sqlite:{db}", "--quiet"]) == 0
    return db, [json.loads(line) for line in out.read_text().splitlines()]


def make_rig(request: pytest.FixtureRequest, kind: str) -> Rig:
    tmp: Path = request.getfixturevalue("tmp_path")
    db, alerts = seeded_sqlite(tmp)
    if kind == "sqlite":
        return Rig(kind=kind, spec=f"sqlite:{db}", tmp=tmp, alerts=alerts)
    azurite = request.getfixturevalue("azurite")
    names = request.getfixturevalue("storage_names")
    monkeypatch = request.getfixturevalue("monkeypatch")
    for setting, role in (
        ("DETECTOR_BASELINE_TABLE", "Baselines"),
        ("DETECTOR_STATE_TABLE", "State"),
        ("DETECTOR_ALLOW_TABLE", "Allow"),
    ):
        monkeypatch.setenv(setting, names.table(role))
    rig = Rig(kind=kind, spec=f"table:{azurite.connection_string}", tmp=tmp, alerts=alerts)
    source = SqliteStore(path=db)
    target = rig.open()
    try:
        target.save(
            [StoredBaseline(baseline=s.baseline, etag=None) for s in source.all_baselines()]
        )
        records = [source.get_alert_record(a["id"])[0] for a in alerts]
        target.record_alerts([r for r in records if r is not None])
    finally:
        source.close()
        target.close()
    return rig
