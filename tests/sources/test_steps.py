"""Timer steps read every row exactly once, however late it arrives; replay cuts the same steps.

Pure: rows are (event time, ingestion time) pairs, and a window reads a row when the query's
`where` clause would (`sources.queries.Window`). The end-to-end tests run the same windows
through Log Analytics and Azurite (test_ingestion_order.py, test_timer_end_to_end.py).
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from detectors.engine.scoring import Engine, observation_from, observation_json
from detectors.model.errors import InputError
from detectors.model.observation import UNATTRIBUTED_PREFIX, Observation, RawRow, SourceTable
from detectors.normalize.rows import Normalizer
from detectors.runs.step import WindowStep
from detectors.settings.detection import DetectionSettings
from detectors.sources.arrival import DelayModel
from detectors.sources.queries import Window, step_end
from detectors.stores.sqlite import SqliteStore
from detectors.stores.table import _state_entity
from tests.rowkit import PUBLISHXML, Actor, activity, file_change, login, site_id

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
SIZE, HOLD = timedelta(minutes=15), timedelta(minutes=20)
LATENESS = timedelta(hours=24)


def _reads(window: Window, event: datetime, ingested: datetime) -> bool:
    """Whether the window's KQL `where` clause keeps a row (see `queries._header`)."""
    low, high = window.event_time_range
    if not low <= event <= high:
        return False
    if window.event_since is None or window.event_until is None:
        return window.since <= ingested < window.until
    on_time = window.event_since <= event < window.event_until and ingested < window.until
    straggler = event < window.event_since and window.since <= ingested < window.until
    return on_time or straggler


def _steps(first: datetime, count: int) -> list[Window]:
    """Steps laid end to end, as the timer takes them from a checkpoint at `first`."""
    steps, read, scored = [], first + HOLD, first
    for _ in range(count):
        end = scored + SIZE
        steps.append(
            Window(
                since=read,
                until=end + HOLD,
                lateness=LATENESS,
                event_since=scored,
                event_until=end,
            )
        )
        read, scored = end + HOLD, end
    return steps


def _rows(seed: int, n: int = 2_000) -> list[tuple[datetime, datetime]]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        event = T0 + timedelta(seconds=rng.randrange(4 * 3600))
        delay = timedelta(seconds=rng.choice([rng.randrange(60, 600), rng.randrange(0, 7200)]))
        rows.append((event, event + delay))
    return rows


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_steps_laid_end_to_end_read_every_row_once_in_the_step_step_end_names(seed):
    steps = _steps(T0, 30)
    for event, ingested in _rows(seed):
        readers = [w for w in steps if _reads(w, event, ingested)]
        assert len(readers) == 1, (event, ingested, readers)
        assert readers[0].event_until == step_end(event, ingested, window=SIZE, hold=HOLD)


@pytest.mark.parametrize("seed", [4, 5])
def test_halves_of_a_step_read_exactly_what_the_step_reads(seed):
    rows = _rows(seed)
    for step in _steps(T0, 12):
        pieces = [step]
        for _ in range(4):  # split each piece again, as the source does for large results
            pieces = [half for piece in pieces for half in piece.halves()]
        for event, ingested in rows:
            readers = sum(_reads(p, event, ingested) for p in pieces)
            assert readers == int(_reads(step, event, ingested))
        assert max(p.span for p in pieces) < step.span


def test_a_row_on_time_is_scored_in_its_own_slice_and_a_late_one_in_the_step_that_reads_it():
    event = T0 + timedelta(minutes=7)
    assert step_end(event, None, window=SIZE, hold=HOLD) == T0 + SIZE
    assert step_end(event, event + timedelta(minutes=20), window=SIZE, hold=HOLD) == T0 + SIZE
    # Ingested 10:34, before the cut of its slice (10:15 + 20 minutes = 10:35): on time.
    assert step_end(event, T0 + timedelta(minutes=34), window=SIZE, hold=HOLD) == T0 + SIZE
    # Ingested 10:36: the slice's step had cut at 10:35, so the next step reads it.
    assert step_end(event, T0 + timedelta(minutes=36), window=SIZE, hold=HOLD) == T0 + 2 * SIZE


def test_simulated_delays_are_the_same_whatever_order_rows_are_read_in():
    model = DelayModel.parse("realistic", seed=7)
    ids = [f"row-{n}" for n in range(5_000)]
    delays = {i: model.delay(i) for i in ids}
    assert {i: model.delay(i) for i in reversed(ids)} == delays
    minutes = sorted(d.total_seconds() / 60 for d in delays.values())
    assert minutes[0] >= 3
    assert minutes[-1] <= 25
    assert sum(m <= 10 for m in minutes) >= 0.8 * len(minutes)  # most rows within 3-10 minutes
    assert sum(m > 20 for m in minutes) > 0  # and a tail
    assert DelayModel.parse("realistic", seed=8).delay("row-1") != delays["row-1"]
    assert DelayModel.parse("5m").delay("x") == timedelta(minutes=5)
    assert timedelta(minutes=3) <= DelayModel.parse("3m-20m").delay("x") <= timedelta(minutes=20)


@pytest.mark.parametrize("spec", ["", "soon", "20m-3m", "5", "-5m"])
def test_a_delay_model_that_means_nothing_is_refused_with_what_would_do(spec):
    with pytest.raises(InputError, match="realistic"):
        DelayModel.parse(spec)


SITE = site_id("orders-worker")
DEPLOY = "MICROSOFT.WEB/SITES/DEPLOYMENTS/WRITE"
JOB_FILE = r"D:\home\site\wwwroot\App_Data\jobs\triggered\x\run.cmd"


def _observed(row: dict[str, Any]) -> Observation:
    table = SourceTable(row["Type"])
    result = Normalizer().normalize(RawRow(source="t", line=1, table=table, fields=row))
    assert isinstance(result, Observation), result
    return result


def _step(state: dict[str, Any] | None = None) -> WindowStep:
    step = WindowStep(Engine(settings=DetectionSettings(), late_rows=True), SqliteStore())
    if state is not None:
        step.engine.restore_state(state)
    return step


def test_a_login_that_arrives_after_its_file_changes_still_explains_them():
    """The file change arrives in one step, its Kudu login in the next: the change waits one
    window for it, across an export and restore of the engine state (as the timer's
    checkpoint carries it), and is attributed to the login's principal."""
    logged_in = T0 + timedelta(minutes=10)
    entry = _observed(login("dev@contoso.com", logged_in, SITE, "198.51.100.20"))
    change = _observed(file_change(logged_in + timedelta(seconds=5), SITE, JOB_FILE))
    first = _step()
    _, scored = first.score([change], emit=True)
    assert scored.groups == {}  # held for a second look
    second = _step(first.engine.export_state())
    _, scored = second.score([entry], emit=True)
    changes = [o for group in scored.groups.values() for o in group if o.webjob]
    assert [o.principal.id for o in changes] == ["dev@contoso.com"]
    assert changes[0].source_ip == "198.51.100.20"


def test_a_file_change_that_arrives_after_a_later_login_finds_its_own_session():
    first_login, later_login = T0, T0 + timedelta(minutes=12)
    step = _step()
    step.score(
        [
            _observed(login("dev@contoso.com", first_login, SITE, "198.51.100.20")),
            _observed(login("ops@contoso.com", later_login, SITE, "203.0.113.5")),
        ],
        emit=True,
    )
    late = _observed(file_change(first_login + timedelta(minutes=1), SITE, JOB_FILE))
    _, scored = step.score([late], emit=True)
    changes = [o for group in scored.groups.values() for o in group if o.webjob]
    assert [o.principal.id for o in changes] == ["dev@contoso.com"]


def test_a_file_change_no_login_explains_is_judged_on_the_second_look():
    step = _step()
    _, first = step.score([_observed(file_change(T0, SITE, JOB_FILE))], emit=True)
    assert first.groups == {}
    _, second = step.score([], emit=True)
    owners = {o.principal.id for group in second.groups.values() for o in group if o.webjob}
    assert len(owners) == 1
    assert owners.pop().startswith(UNATTRIBUTED_PREFIX)


def test_replay_in_event_order_judges_a_file_change_at_once():
    step = WindowStep(Engine(settings=DetectionSettings()), SqliteStore())
    _, scored = step.score([_observed(file_change(T0, SITE, JOB_FILE))], emit=True)
    assert any(o.webjob for group in scored.groups.values() for o in group)


def test_an_observation_survives_the_engine_state_as_it_was():
    change = _observed(file_change(T0, SITE, JOB_FILE))
    assert observation_from(observation_json(change)) == change


def test_an_engine_state_written_with_one_login_per_site_is_still_read():
    step = _step()
    state = step.engine.export_state()
    state["lastLogins"] = {
        "sub/rg/site": {
            "principalId": "dev@contoso.com",
            "principalName": "Dev",
            "principalType": "user",
            "time": T0.isoformat(),
            "ip": "198.51.100.20",
            "tool": "kudu",
        }
    }
    del state["unexplained"]
    step.engine.restore_state(state)
    assert (
        step.engine.export_state()["lastLogins"]["sub/rg/site"][0]["principalId"]
        == "dev@contoso.com"
    )


def test_what_the_engine_holds_back_fits_the_checkpoint_however_long_its_values(tmp_path):
    """File changes and partial bursts with the longest values the normaliser lets through,
    more of them than the state may hold: the state still fits one Table Storage entity,
    and what did not fit was judged at once (nothing is dropped)."""
    long_site = "s" + "x" * 59
    step = _step()
    changes = []
    for n in range(400):
        path = "D:\\home\\site\\wwwroot\\App_Data\\jobs\\triggered\\" + f"{n:04d}" + "y" * 900
        changes.append(_observed(file_change(T0, site_id(long_site, group="g" * 90), path)))
    _, scored = step.score(changes, emit=True)
    judged = sum(len(g) for g in scored.groups.values() if any(o.webjob for o in g))
    state = step.engine.export_state()
    assert 0 < len(state["unexplained"]) < 400
    assert judged >= 400 - len(state["unexplained"])
    _state_entity("timer", {"engine": state})  # raises when over Table Storage's limits


def test_a_partial_burst_is_judged_with_its_late_rows_and_learned_before_on_time_ones(caplog):
    """A principal never seen before takes one profile (below an alert: held back), then two
    rows of the same burst arrive late with the next window: judged whole, they alert. Its
    rows of a later window are judged against a baseline that learned the burst, and every
    baseline the window needs was read before it was written (no lost race)."""
    thief = Actor(caller="5e1f0000-0000-4000-8000-00000000beef", kind="app", ip="203.0.113.9")
    start = T0 + timedelta(minutes=14)

    def take(n: int, site: str) -> Observation:
        rows = activity(thief, start + timedelta(seconds=3 * n), PUBLISHXML, site_id(site))
        return _observed(rows[-1])

    step = WindowStep(Engine(settings=DetectionSettings(), late_rows=True), SqliteStore())
    # The site's context baseline exists: a pipeline deployed to it before.
    pipeline = Actor(caller="5e1f0000-0000-4000-8000-0000000000aa", kind="app", ip="198.51.100.9")
    deploy = activity(pipeline, T0 - timedelta(days=1), PUBLISHXML, site_id("pay"))[-1]
    _, scored = step.score([_observed(deploy)], emit=True, since=T0 - timedelta(days=1))
    step.learn(scored)
    quiet, scored = step.score([take(0, "pay")], emit=True, since=T0)
    step.learn(scored)
    assert quiet.alerts == []
    assert step.engine.export_state()["partial"]  # held back, not learned
    late = [take(n, site) for n, site in enumerate(["billing", "hr", "crm", "web"], start=1)]
    caplog.set_level("WARNING")
    result, scored = step.score(late, emit=True, since=T0 + timedelta(minutes=15))
    step.learn(scored)
    assert [a["principal"]["id"] for a in result.alerts] == [thief.caller]
    assert not step.engine.export_state()["partial"]
    # A principal held back that then does something ordinary on time: its held part is
    # learned, with the site it touched.
    builder = Actor(caller="5e1f0000-0000-4000-8000-0000000000bb", kind="app", ip="198.51.100.7")
    first = activity(builder, T0 + timedelta(minutes=40), PUBLISHXML, site_id("pay"))[-1]
    step.learn(step.score([_observed(first)], emit=True, since=T0 + timedelta(minutes=30))[1])
    assert list(step.engine.export_state()["partial"]) == [builder.caller]
    deploy = activity(builder, T0 + timedelta(minutes=50), DEPLOY, site_id("intranet"))[-1]
    step.learn(step.score([_observed(deploy)], emit=True, since=T0 + timedelta(minutes=45))[1])
    assert not step.engine.export_state()["partial"]
    assert "lost a race" not in caplog.text


def test_a_file_change_waits_for_a_later_login_that_arrives_late():
    """A developer's Kudu session began minutes before a file change; a deployment's login,
    a second before the change, arrives late. The change waits a window and goes to the
    deployment, as it would have in event order."""
    step = _step()
    session = _observed(login("dev@contoso.com", T0, SITE, "198.51.100.20"))
    change = _observed(file_change(T0 + timedelta(minutes=4), SITE, JOB_FILE))
    _, first = step.score([session, change], emit=True, since=T0)
    assert not any(o.webjob for group in first.groups.values() for o in group)  # held
    deploy = _observed(
        login("$orders-worker", T0 + timedelta(minutes=4) - timedelta(seconds=1), SITE, "20.61.1.2")
    )
    _, second = step.score([deploy], emit=True, since=T0 + SIZE)
    owners = [o.principal.id for group in second.groups.values() for o in group if o.webjob]
    assert owners == ["$orders-worker"]
