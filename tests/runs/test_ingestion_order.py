"""The timer catches what replay catches, whatever order rows arrive in.

The Activity Log reaches Log Analytics minutes after the event and out of order. These tests
run the real timer (local HTTPS Log Analytics endpoint through `LogsQueryClient`, Azurite
tables and queue) over rows ingested late, and replay the same rows: event order, and the
order the timer saw them in (an `IngestionTime` column in the export).
"""

from __future__ import annotations

import gzip
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from detectors.cli.main import main
from detectors.delivery.queue import decode
from detectors.engine.scoring import Engine
from detectors.normalize.rows import parse_time
from detectors.runs.checkpoint import CHECKPOINT_NAME
from detectors.runs.replay import replay
from detectors.runs.step import WindowStep
from detectors.settings.app import DEFAULT_HOLD_MINUTES
from detectors.settings.detection import DetectionSettings
from detectors.sources import Budget
from detectors.sources.arrival import Arrival, DelayModel
from detectors.sources.queries import step_end
from detectors.stores import StoredBaseline
from detectors.stores.sqlite import SqliteStore
from detectors.stores.write_behind import WriteBehindStore
from tests.rowkit import (
    CONFIG_LIST,
    PUBLISHXML,
    START,
    Actor,
    activity,
    harvest_bursts,
    login,
    site_id,
    stranger_id,
    ts,
    workdays,
)
from tests.runs.test_timer_end_to_end import Rig, _la_row, _rig

pytestmark = [pytest.mark.azurite, pytest.mark.logs]

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def _stranger(n: int) -> str:
    return stranger_id(n)


def _harvests(
    seed: int, late_share: float, late: int = 20
) -> tuple[list[dict[str, Any]], list[datetime], int]:
    """The issue's bursts (`rowkit.harvest_bursts`), each action ingested a minute after it
    happened, a share of them `late` minutes after. Rows, their ingestion times, and how many
    principals had their burst split between early and late rows."""
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    arrivals: list[datetime] = []
    kinds: dict[str, set[bool]] = {}
    for action in harvest_bursts(rng, T0):
        delay = timedelta(minutes=late if rng.random() < late_share else 1)
        kinds.setdefault(action.principal, set()).add(delay > timedelta(minutes=1))
        rows += action.rows
        arrivals += [action.time + delay] * len(action.rows)
    return rows, arrivals, sum(len(both) == 2 for both in kinds.values())


def _run_timer(
    rig: Rig, rows: list[dict[str, Any]], arrivals: list[datetime]
) -> list[dict[str, Any]]:
    for row, arrival in zip(rows, arrivals, strict=True):
        rig.la.add_rows("AzureActivity", [_la_row(row)], ingested_at=arrival)
    # Every 15 minutes, until well after the last row arrived (45 minutes late at most).
    for minutes in range(15, 15 * 18, 15):
        report = rig.run(minutes)
        assert report.outcome == "ok", report.line()
    return _queue(rig)


def _queue(rig: Rig) -> list[dict[str, Any]]:
    client = rig.queue_client()
    found = []
    while True:
        batch = list(client.receive_messages(max_messages=32, visibility_timeout=600))
        if not batch:
            return found
        found += [decode(m.content) for m in batch]


def _replay(
    tmp_path: Path, rows: list[dict[str, Any]], arrivals: list[datetime] | None, *extra: str
) -> list[dict[str, Any]]:
    export = tmp_path / ("with-ingestion.jsonl" if arrivals else "export.jsonl")
    with export.open("wb") as out:
        for n, row in enumerate(rows):
            column = {"IngestionTime": ts(arrivals[n])} if arrivals is not None else {}
            out.write(orjson.dumps({**row, **column}) + b"\n")
    alerts = tmp_path / "alerts.jsonl"
    code = main(
        [
            "replay",
            str(export),
            "--out",
            str(alerts),
            "--window",
            "5m",
            "--learning-days",
            "0",
            "--quiet",
            *extra,
        ]
    )
    assert code == 0
    return [orjson.loads(line) for line in alerts.read_bytes().splitlines()]


@pytest.fixture
def rig(five_minute_rig: Rig) -> Rig:
    """The deployment of the issue this was found in (`conftest.five_minute_rig`)."""
    return five_minute_rig


@pytest.mark.parametrize(
    ("late_share", "late", "seed"),
    [(0.0, 20, 1), (0.05, 20, 2), (0.25, 20, 3), (0.25, 45, 6)],
    ids=["none-late", "5%-20min", "25%-20min", "25%-45min"],
)
def test_the_timer_catches_every_burst_whatever_share_of_rows_is_late(
    rig, tmp_path, late_share, late, seed
):
    """The issue's table, and rows later than the hold (45 minutes: each burst's late rows
    are stragglers, judged with the part of the burst held back for them)."""
    rows, arrivals, split = _harvests(seed, late_share, late)
    if late_share >= 0.25:
        assert split >= 10, "the rows must split bursts for this test to mean anything"
    timer = sorted(a["principal"]["id"] for a in _run_timer(rig, rows, arrivals))
    replayed = _replay(tmp_path, rows, None)
    assert sorted(a["principal"]["id"] for a in replayed) == [_stranger(n) for n in range(30)]
    assert timer == [_stranger(n) for n in range(30)]


def test_the_timer_and_a_replay_in_its_order_send_the_same_alerts(rig, tmp_path):
    rows, arrivals, _ = _harvests(4, 0.25)
    # A few rows much later than the hold: stragglers, scored with a later step.
    rng = random.Random(5)
    for n in rng.sample(range(len(arrivals)), 12):
        arrivals[n] += timedelta(minutes=35)
    sent = sorted(_run_timer(rig, rows, arrivals), key=lambda a: a["id"])
    assert len(sent) == 30
    replayed = sorted(
        _replay(tmp_path, rows, arrivals, "--hold", "20"),
        key=lambda a: a["id"],
    )
    assert [a["id"] for a in sent] == [a["id"] for a in replayed]
    assert sent == replayed


SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "contoso-sample.jsonl.gz"


def test_the_timer_and_a_replay_of_the_sample_with_simulated_delays_agree(
    log_analytics, azurite, storage_names, tmp_path
):
    """The bundled sample, every row delayed as Azure delays them (mostly 3-10 minutes, a
    tail to 25): the timer, going on from the baselines of the learning days, sends exactly
    the alerts replay sends for the scored days, ids and documents alike."""
    size, hold = timedelta(hours=1), timedelta(minutes=DEFAULT_HOLD_MINUTES)
    delays = DelayModel.parse("realistic", seed=3)
    by_table: dict[str, list[dict[str, Any]]] = {}
    arrivals: dict[str, list[datetime]] = {}
    export = tmp_path / "sample-with-ingestion.jsonl"
    with gzip.open(SAMPLE, "rb") as rows, export.open("wb") as out:
        for n, line in enumerate(rows):
            row = orjson.loads(line)
            arrival = parse_time(row["TimeGenerated"]) + delays.delay(str(n))
            out.write(orjson.dumps({**row, "IngestionTime": ts(arrival)}) + b"\n")
            table = row.pop("Type")
            by_table.setdefault(table, []).append(row)
            arrivals.setdefault(table, []).append(arrival)
    arrival = Arrival(window=size, hold=hold)

    replayed: list[dict[str, Any]] = []
    stats = replay(
        [str(export)],
        step=WindowStep(Engine(settings=DetectionSettings()), WriteBehindStore(SqliteStore())),
        sink=replayed.append,
        window=size,
        learning_days=14,
        arrival=arrival,
    )
    assert stats.learning_until is not None
    scored_from = stats.learning_until
    assert len(replayed) >= 10

    # The timer goes on from the baselines and engine state of the learning days' steps.
    learning = tmp_path / "learning.jsonl"
    with export.open("rb") as rows, learning.open("wb") as out:
        for line in rows:
            row = orjson.loads(line)
            end = step_end(
                parse_time(row["TimeGenerated"]),
                parse_time(row["IngestionTime"]),
                window=size,
                hold=hold,
            )
            if end <= scored_from:
                out.write(line)
    learned = SqliteStore()
    cache = WriteBehindStore(learned)
    engine = WindowStep(Engine(settings=DetectionSettings()), cache)
    replay([str(learning)], step=engine, sink=_none, window=size, learning_days=14, arrival=arrival)
    cache.flush()

    rig = _rig(
        log_analytics,
        azurite,
        storage_names,
        DETECTOR_WINDOW_MINUTES="60",
        DETECTOR_HOLD_MINUTES=str(DEFAULT_HOLD_MINUTES),
        DETECTOR_RUN_BUDGET_SECONDS="3600",
    )
    store = rig.state()
    store.save([StoredBaseline(baseline=b.baseline, etag=None) for b in learned.all_baselines()])
    store.put_state_if(
        CHECKPOINT_NAME,
        {
            "version": 1,
            "watermark": (scored_from + hold).isoformat(),
            "eventWatermark": scored_from.isoformat(),
            "engine": engine.engine.export_state(),
        },
        None,
    )
    for table, rows in by_table.items():
        log_analytics.add_rows(table, rows, arrivals=arrivals[table])
    report = rig.timer().run(datetime(2026, 10, 23, tzinfo=UTC), Budget(3600))
    assert report.outcome == "ok", report.line()
    sent = _queue(rig)
    key = lambda a: a["id"]  # noqa: E731
    assert sorted(sent, key=key) == sorted(replayed, key=key)


def _none(alert: dict[str, Any]) -> None:
    raise AssertionError(f"the learning days sent an alert: {alert['id']}")


def _newcomer_rows() -> list[dict[str, Any]]:
    """Three colleagues take a site's publish profile each workday from the office and use it
    there; on day 15 a newcomer takes it from home, twenty minutes later takes it again and
    uses it from home: the profile's ordinary use, from a network nobody else used."""
    site = site_id("checkout-api")
    colleagues = [
        Actor(caller=f"dev{n}@contoso.com", name=f"Dev {n}", ip=f"198.51.100.{10 + n}")
        for n in range(3)
    ]
    rows: list[dict[str, Any]] = []
    for n, colleague in enumerate(colleagues):
        for day in workdays(START + timedelta(minutes=7 * n), 14):
            rows += activity(colleague, day, PUBLISHXML, site)
            rows.append(login("$checkout-api", day + timedelta(seconds=30), site, colleague.ip))
    newcomer = Actor(caller="hannah@contoso.com", name="Hannah", ip="203.0.113.77")
    first = datetime(2026, 10, 16, 10, 13, 42, tzinfo=UTC)
    rows += activity(newcomer, first, PUBLISHXML, site)
    rows += activity(newcomer, first + timedelta(minutes=2), PUBLISHXML, site)
    second = first + timedelta(minutes=20)
    rows += activity(newcomer, second, CONFIG_LIST, site)
    rows += activity(newcomer, second + timedelta(seconds=1), PUBLISHXML, site)
    rows.append(login("$checkout-api", second + timedelta(seconds=3), site, newcomer.ip))
    return sorted(rows, key=lambda r: r["TimeGenerated"])


def test_a_quiet_burst_held_for_its_late_rows_still_teaches_what_follows_it(tmp_path):
    """A burst that scored below an alert is kept from the baselines until its late rows are
    in; meanwhile the principal's next burst is judged as a replay in event order judges it,
    by surroundings that learned the first (here: the newcomer's home network is no longer a
    block nobody in the organisation has used when the profile is used from it)."""
    rows = _newcomer_rows()
    in_event_order = _replay(tmp_path, rows, None, "--learning-days", "14", "--window", "15m")
    in_timer_order = _replay(
        tmp_path,
        rows,
        None,
        "--learning-days",
        "14",
        "--window",
        "15m",
        "--ingestion-delay",
        "5m",
    )
    assert [a["id"] for a in in_timer_order] == [a["id"] for a in in_event_order]
    assert not [a for a in in_timer_order if a["principal"]["id"] == "hannah@contoso.com"]


def test_the_burst_nearest_an_alert_is_held_for_its_late_rows_in_a_busy_hour(tmp_path, monkeypatch):
    """In a busy hour every ordinary download scores a little and may wait for late rows, but
    what the engine state can hold is bounded: the burst nearest an alert waits first. Jane
    stops a job, logs in to Kudu and starts it again while 250 colleagues each take a
    profile; her file edit in between reaches the workspace 25 minutes late and is still
    judged with the stop, as one session (a replay in event order judges it so too). Quiet
    bursts, which would also join the two parts, are turned off: this is the hold."""
    monkeypatch.setenv("DETECTOR_QUIET_BURST_SCORE", "1000")
    from tests.detections.test_detections import STOP_JOB, job_with_a_history, stop_edit_start

    rows = job_with_a_history(14)
    fillers = [
        Actor(caller=f"aa{n:03}@contoso.com", name=f"Dev {n}", ip=f"198.51.{n // 200}.{n % 200}")
        for n in range(250)
    ]
    at = datetime(2026, 10, 21, 11, 1, tzinfo=UTC)
    for n, dev in enumerate(fillers):
        for day in workdays(START.replace(hour=11, minute=5), 14):
            rows += activity(dev, day, PUBLISHXML, site_id(f"team{n}"))
        rows += activity(dev, at + timedelta(minutes=4), PUBLISHXML, site_id(f"team{n}"))
    session = stop_edit_start(at)
    rows += session
    rows.sort(key=lambda r: r["TimeGenerated"])
    late = {id(r) for r in session if r.get("Type") == "AppServiceFileAuditLogs"}
    arrivals = [
        parse_time(r["TimeGenerated"]) + timedelta(minutes=40 if id(r) in late else 1) for r in rows
    ]
    assert any(r["OperationNameValue"] == STOP_JOB for r in session if "OperationNameValue" in r)
    alerts = _replay(tmp_path, rows, arrivals, "--learning-days", "14", "--window", "15m")
    janes = [a for a in alerts if a["principal"]["id"] == "jane@contoso.com"]
    assert any(
        {"JOB_STOPPED_OR_DELETED", "JOB_FILES_CHANGED"} <= {r["code"] for r in a["reasons"]}
        for a in janes
    ), [a["reasons"] for a in janes]


def test_a_campaign_whose_rows_arrive_late_is_marked_on_the_alert_that_holds_them(tmp_path):
    """The timer sees the new block's take of each day forty minutes late, after
    the window it belongs to: the late rows are judged first, and `CAMPAIGN` goes to the
    alert that holds them (never to another finding of the principal's window)."""
    from tests.detections.test_detections import cli_history, one_site_a_day

    taken = one_site_a_day()
    rows = sorted(cli_history() + taken, key=lambda r: r["TimeGenerated"])
    late = {id(r) for r in taken}
    arrivals = [
        parse_time(r["TimeGenerated"]) + timedelta(minutes=40 if id(r) in late else 1) for r in rows
    ]
    alerts = _replay(tmp_path, rows, arrivals, "--learning-days", "14", "--window", "15m")
    marked = [a for a in alerts if any(r["code"] == "CAMPAIGN" for r in a["reasons"])]
    assert marked
    assert all("203.0.113.45" in a["sourceIps"] for a in marked), [a["sourceIps"] for a in marked]
