"""The engine counts each action once, across windows, and orders time with bounded memory."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pytest

from detectors.engine.scoring import Engine
from detectors.model.observation import Observation, RawRow, SourceTable
from detectors.normalize.rows import Normalizer
from detectors.runs.step import WindowStep
from detectors.settings.detection import DetectionSettings
from detectors.sources.spool import ObservationSpool
from detectors.stores.sqlite import SqliteStore
from tests.rowkit import CLI, PUBLISHXML, START, Actor, activity, site_id

ACTOR = Actor(caller="dev@contoso.com", app_id=CLI)


def observations(rows) -> list[Observation]:
    normalizer = Normalizer()
    out = []
    for n, row in enumerate(rows):
        table = SourceTable(row.get("Type") or SourceTable.AZURE_ACTIVITY.value)
        result = normalizer.normalize(RawRow(source="t", line=n, table=table, fields=row))
        if isinstance(result, Observation):
            out.append(result)
    return out


def timer_runs(rows, minutes: int, pick, *, resume: bool) -> list:
    """What `pick` takes from each window's result, scoring the rows window by window
    (`minutes` long) in one engine, or (`resume`) in one timer run per window, each from the
    state the last one saved, through its plain JSON."""
    import json

    obs = sorted(observations(rows), key=lambda o: o.time)
    windows: dict[datetime, list[Observation]] = {}
    for o in obs:
        start = o.time.replace(minute=o.time.minute // minutes * minutes, second=0, microsecond=0)
        windows.setdefault(start, []).append(o)
    learning_until = START + timedelta(days=14)
    store, state, found = SqliteStore(), None, []
    step = WindowStep(Engine(settings=DetectionSettings()), store)
    for start, window in windows.items():
        if resume:
            step = WindowStep(Engine(settings=DetectionSettings()), store)
            if state is not None:
                step.engine.restore_state(json.loads(state))
        found += pick(step.process(window, emit=start >= learning_until))
        state = json.dumps(step.engine.export_state())
    return found


def engine() -> Engine:
    return WindowStep(Engine(settings=DetectionSettings()), SqliteStore())


def test_accept_and_success_rows_of_one_request_count_once():
    rows = activity(ACTOR, START, PUBLISHXML, site_id("a"), status="Accept")
    rows += activity(ACTOR, START, PUBLISHXML, site_id("a"), correlation=rows[0]["CorrelationId"])
    obs = observations(rows)
    assert len(obs) == 2
    result = engine().process(obs, emit=True)
    assert (result.observations, result.duplicates) == (1, 1)


def test_the_end_row_of_an_action_arriving_in_a_later_window_is_not_counted_again():
    e = engine()
    rows = activity(ACTOR, START, PUBLISHXML, site_id("a"), status="Accept")
    late = activity(
        ACTOR,
        START + timedelta(minutes=20),
        PUBLISHXML,
        site_id("a"),
        correlation=rows[0]["CorrelationId"],
    )
    first = e.process(observations(rows), emit=True)
    second = e.process(observations(late), emit=True)
    assert first.observations == 1
    assert (second.observations, second.duplicates) == (0, 1)


def test_a_failure_wins_over_an_accept_of_the_same_request():
    rows = activity(ACTOR, START, PUBLISHXML, site_id("a"), status="Accept")
    rows += activity(
        ACTOR,
        START,
        PUBLISHXML,
        site_id("a"),
        status="Failure",
        correlation=rows[0]["CorrelationId"],
    )
    e = engine()
    result = e.process(observations(rows), emit=True)
    assert (result.observations, result.duplicates) == (1, 1)
    baseline = e.store.load(["dev@contoso.com"])["dev@contoso.com"].baseline
    assert (baseline.operations, baseline.failures) == (1, 1)


def test_the_spool_gives_back_time_order_from_any_input_order_even_when_spilling(tmp_path):
    rows = []
    for n in range(300):
        rows += activity(ACTOR, START + timedelta(seconds=37 * n), PUBLISHXML, site_id(f"s{n % 7}"))
    obs = observations(rows)
    random.Random(4).shuffle(obs)
    spool = ObservationSpool(memory_limit=50, directory=str(tmp_path))
    for o in obs:
        spool.add(o)
    assert spool.spilled_runs >= 5
    ordered = list(spool)
    spool.close()
    assert [o.event_id for o in ordered] == [
        o.event_id for o in sorted(obs, key=lambda o: (o.time, o.event_id))
    ]
    assert len(ordered) == len(obs)


def test_engine_state_round_trips_so_a_late_end_row_is_still_counted_once():
    rows = activity(ACTOR, START, PUBLISHXML, site_id("a"), status="Accept")
    late = activity(
        ACTOR,
        START + timedelta(minutes=20),
        PUBLISHXML,
        site_id("a"),
        correlation=rows[0]["CorrelationId"],
    )
    first = engine()
    first.process(observations(rows), emit=True)
    resumed = engine()
    resumed.engine.restore_state(first.engine.export_state())
    result = resumed.process(observations(late), emit=True)
    assert (result.observations, result.duplicates) == (0, 1)


def test_unreadable_engine_state_is_a_store_error():
    import pytest

    from detectors.model.errors import StoreError

    with pytest.raises(StoreError, match="version"):
        engine().engine.restore_state({"version": 99})
    with pytest.raises(StoreError, match="cannot be read"):
        engine().engine.restore_state(
            {"version": 1, "recentActions": {"k": "not a time"}, "lastLogins": {}}
        )


def test_config_sections_read_under_one_correlation_id_count_separately():
    shared = "00000000-0000-4000-8000-00000000c0de"
    rows = activity(
        ACTOR,
        START,
        "MICROSOFT.WEB/SITES/CONFIG/LIST/ACTION",
        site_id("a") + "/config/appsettings",
        correlation=shared,
    )
    rows += activity(
        ACTOR,
        START,
        "MICROSOFT.WEB/SITES/CONFIG/LIST/ACTION",
        site_id("a") + "/config/connectionstrings",
        correlation=shared,
    )
    result = engine().process(observations(rows), emit=True)
    assert (result.observations, result.duplicates) == (2, 0)


def test_a_replay_that_spills_to_disk_gives_the_same_alerts(tmp_path):
    from detectors.runs.replay import replay
    from tests.cli.test_replay_cli import attack_rows
    from tests.rowkit import write_ndjson

    path = str(write_ndjson(tmp_path / "rows.jsonl", attack_rows()))
    results = []
    for limit in (50, 250_000):
        alerts: list[dict] = []
        replay(
            [path],
            step=engine(),
            sink=alerts.append,
            window=timedelta(minutes=15),
            learning_days=14,
            spool_limit=limit,
        )
        results.append(alerts)
    assert results[0] == results[1]
    assert results[0]


def test_a_new_blocks_trail_survives_the_engine_state_between_runs():
    """The timer runs window by window, each run from the state the last one saved: a
    campaign spread over days (`CAMPAIGN`) is followed across runs exactly as one engine
    follows it, through the state's plain JSON."""
    import json
    from itertools import groupby

    from detectors.model.days import day_number
    from tests.detections.test_detections import cli_history, one_site_a_day

    obs = sorted(observations(cli_history() + one_site_a_day()), key=lambda o: o.time)
    windows = [
        list(group)
        for _, group in groupby(obs, key=lambda o: o.time.replace(minute=o.time.minute // 15 * 15))
    ]
    learning_until = START + timedelta(days=14)

    def run(resume: bool) -> list[str]:
        store, state, codes = SqliteStore(), None, []
        step = WindowStep(Engine(settings=DetectionSettings()), store)
        for window in windows:
            if resume:  # a timer run per window, from the state the last one saved
                step = WindowStep(Engine(settings=DetectionSettings()), store)
                if state is not None:
                    step.engine.restore_state(json.loads(state))
            result = step.process(window, emit=window[0].time >= learning_until)
            codes += [
                f"{day_number(window[0].time)}:{r['code']}"
                for alert in result.alerts
                for r in alert["reasons"]
            ]
            state = json.dumps(step.engine.export_state())
        assert '"trails"' in state
        return codes

    together = run(resume=False)
    assert any(code.endswith(":CAMPAIGN") for code in together)
    assert run(resume=True) == together


def test_the_sites_a_probe_was_refused_survive_the_engine_state_between_runs():
    """The guest's refusals at 11:00 and Jane's identity taking one of those sites from the
    same address at 11:20, in the next window: a timer run per window, each from the state
    the last one saved (plain JSON), links them with the refused site's weight, as one
    engine does."""
    from tests.detections.test_detections import JANE, one_source_two_identities

    def shared(result) -> list[tuple[str, float]]:
        return [
            (r["code"], r["weight"])
            for alert in result.alerts
            if alert["principal"]["name"] == JANE.name
            for r in alert["reasons"]
            if r["code"] == "SHARED_SOURCE"
        ]

    rows = one_source_two_identities(minutes=20)
    s = DetectionSettings()
    together = timer_runs(rows, 15, shared, resume=False)
    assert together == [("SHARED_SOURCE", s.weight_shared_source + s.weight_shared_source_refused)]
    assert timer_runs(rows, 15, shared, resume=True) == together


def test_the_engine_state_keeps_at_most_two_hundred_trails_the_most_recent():
    """docs/settings.md: the engine state keeps at most 200 new-block trails, the most
    recently used; a window forgets the rest (and any unused for `campaign_days`)."""
    from detectors.model.days import day_number

    today = day_number(START)
    trails = {
        f"p{n:03}@contoso.com": {
            "203.0.0.0/16": {"first": today - 1, "days": {}, "elsewhere": [], "last": today - n % 3}
        }
        for n in range(250)
    }
    trails["stale@contoso.com"] = {
        "203.0.0.0/16": {"first": today - 9, "days": {}, "elsewhere": [], "last": today - 9}
    }
    step = engine()
    step.engine.restore_state(
        {"version": 1, "recentActions": {}, "lastLogins": {}, "trails": trails}
    )
    step.process(observations(activity(ACTOR, START, PUBLISHXML, site_id("a"))), emit=True)
    kept = step.engine.export_state()["trails"]
    assert len(kept) == 200
    assert "stale@contoso.com" not in kept
    recent = {p for p, t in trails.items() if t["203.0.0.0/16"]["last"] >= today - 1}
    assert recent <= set(kept)  # the most recently used are kept first


@pytest.mark.parametrize(
    ("operation", "site", "held"),
    [(PUBLISHXML, "app4", True), ("MICROSOFT.WEB/SITES/SYNC/ACTION", "app1", False)],
    ids=["newer rows held in turn", "newer rows learned at once"],
)
def test_a_held_part_let_go_teaches_the_site_and_its_principal(operation, site, held):
    """With late rows expected, Jane's quiet download of app3's profile at 10:00 is held for
    its rest (`_PARTIAL_FOR`). At 10:45 she acts again and the 10:00 part is let go (judged
    when it came). It teaches app3's crowd and her own baseline whether her newer rows are
    held in turn (taking app4's profile) or learned at once (a sync of app1): it was lost
    in both cases, so a pipeline's new identity taking app3 the next day, say, found no one
    else working on it."""
    from detectors.baselines.surroundings import site_history_id
    from tests.detections.test_detections import JANE, jane_history

    day = START + timedelta(days=14)
    history = sorted(observations(jane_history(14)), key=lambda o: o.time)
    first = observations(activity(JANE, day.replace(hour=10), PUBLISHXML, site_id("app3")))
    later = observations(activity(JANE, day.replace(hour=10, minute=45), operation, site_id(site)))
    store = SqliteStore()
    step = WindowStep(Engine(settings=DetectionSettings()), store)
    step.engine.late_rows = True
    step.process(history, emit=False)
    step.process(first, emit=True)
    assert JANE.caller in step.engine._partial  # held for its rest
    step.process(later, emit=True)
    assert (JANE.caller in step.engine._partial) is held
    [app3] = {o.resource.site_key for o in first}
    loaded = store.load([site_history_id(app3), JANE.caller])
    assert JANE.caller in loaded[site_history_id(app3)].baseline.principals
    assert app3 in loaded[JANE.caller].baseline.credential_sites


def test_who_stopped_a_job_survives_the_engine_state_between_runs():
    """Jane stops app1's job at 11:01, signs in to Kudu at 11:02; a colleague signs in with
    the site's credentials at 11:03; the script changes at 11:08. One timer run per
    five-minute window, each from the state the last one saved (plain JSON), gives the edit
    to Jane as one engine does (`jobStops`)."""
    from tests.detections.test_detections import (
        AFTER,
        JANE,
        job_with_a_history,
        stop_edit_start,
    )
    from tests.rowkit import login

    at = AFTER.replace(hour=11, minute=1)
    rows = job_with_a_history() + stop_edit_start(at)
    rows.append(login("$app1", at + timedelta(minutes=2), site_id("app1"), JANE.ip, "Kudu"))

    def edits(result) -> list[str]:
        return [
            alert["principal"]["id"]
            for alert in result.alerts
            if any(r["code"] == "JOB_FILES_CHANGED" for r in alert["reasons"])
        ]

    together = timer_runs(rows, 5, edits, resume=False)
    assert JANE.caller in together
    assert timer_runs(rows, 5, edits, resume=True) == together
