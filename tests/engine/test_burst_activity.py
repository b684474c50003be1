"""A burst keeps its activity, within a budget, so an update can tell the whole burst (#20)."""

from __future__ import annotations

from datetime import timedelta

from detectors.detections import credential_download
from detectors.detections.evidence import graded
from detectors.engine.bursts import _ACTIVITY_BUDGET, _ACTIVITY_TOTAL, Burst, Bursts
from detectors.engine.held import held_size
from detectors.model.reasons import Reason, ReasonCode
from detectors.settings.detection import DetectionSettings
from tests.engine.test_engine import observations
from tests.rowkit import CLI, PUBLISHXML, START, Actor, activity, site_id

SETTINGS = DetectionSettings(burst_gap_minutes=120, update_min_score_gain=1)
THIEF = Actor(caller="thief@contoso.com", app_id=CLI, ip="203.0.113.9")


def _finding(sites: list[str], minute: int, weight: float, *, actor: Actor = THIEF):
    rows = []
    for n, site in enumerate(sites):
        rows += activity(actor, START + timedelta(minutes=minute + n), PUBLISHXML, site_id(site))
    obs = observations(rows)
    sites_named = sorted({o.resource.name for o in obs})
    reasons = [
        Reason(
            code=ReasonCode.DEPLOYMENT_CREDENTIALS,
            message=f"Took deployment credentials (publish profile or publishing credentials) "
            f"of {len(sites_named)} site(s): {', '.join(sites_named)}.",
            weight=12.0,
        ),
        Reason(code=ReasonCode.NEW_NETWORK, message=f"new network {minute}", weight=weight),
    ]
    return graded(
        spec=credential_download.SPEC,
        principal=obs[0].principal,
        observations=obs,
        reasons=reasons,
        settings=SETTINGS,
    )


def test_an_update_counts_the_sites_of_the_whole_burst_and_keeps_the_folded_score():
    bursts = Bursts(SETTINGS)
    first = bursts.admit(_finding(["a"], 0, 30.0))
    assert first is not None
    update = bursts.admit(_finding(["b", "c"], 10, 40.0))
    assert update is not None
    assert update.burst["sequence"] == 2
    by_code = {r.code: r for r in update.finding.reasons}
    assert "of 3 site(s): a, b, c." in by_code[ReasonCode.DEPLOYMENT_CREDENTIALS].message
    # Judged against a history: every distinct message, in order.
    assert by_code[ReasonCode.NEW_NETWORK].message == (
        "new network 0 Later in the burst: new network 10"
    )
    # The weights are the fold's: the highest of each code.
    assert by_code[ReasonCode.NEW_NETWORK].weight == 40.0
    assert update.finding.score == 52.0
    assert {o.resource.site for o in update.activity} == {"a", "b", "c"}


def test_windows_that_said_the_same_words_of_other_sites_are_counted_together():
    bursts = Bursts(SETTINGS)
    first = bursts.admit(_finding(["a"], 0, 30.0))
    assert first is not None
    # The second window takes one other site: its message reads like the first's,
    # "1 site(s)", but the burst has taken two.
    second = _finding(["b"], 10, 40.0)
    same_words = [
        Reason(code=r.code, message=r.message.replace(": b.", ": a."), weight=r.weight)
        if r.code is ReasonCode.DEPLOYMENT_CREDENTIALS
        else r
        for r in second.reasons
    ]
    update = bursts.admit(
        graded(
            spec=credential_download.SPEC,
            principal=second.principal,
            observations=second.observations,
            reasons=same_words,
            settings=SETTINGS,
        )
    )
    assert update is not None
    message = next(
        r.message for r in update.finding.reasons if r.code is ReasonCode.DEPLOYMENT_CREDENTIALS
    )
    assert "of 2 site(s): a, b." in message


def test_a_burst_keeps_its_activity_through_the_engine_state_and_reads_an_older_state():
    bursts = Bursts(SETTINGS)
    bursts.admit(_finding(["a", "b"], 0, 30.0))
    state = bursts.export()
    again = Bursts(SETTINGS)
    again.restore(state)
    (burst,) = again.open.values()
    (original,) = bursts.open.values()
    assert burst.activity == original.activity
    assert burst.messages == original.messages
    older = {
        k: v
        for k, v in next(iter(state.values())).items()
        if k not in {"activity", "omitted", "messages"}
    }
    restored = Burst.from_json(older)
    assert restored.activity == []
    assert restored.omitted == 0


def test_a_burst_keeps_no_more_activity_than_its_budget_and_counts_the_rest():
    bursts = Bursts(SETTINGS)
    many = [f"site-{n:03d}" for n in range(400)]
    message = bursts.admit(_finding(many, 0, 30.0))
    assert message is not None
    (burst,) = bursts.open.values()
    kept = sum(held_size(o) for o in burst.activity)
    assert kept <= _ACTIVITY_BUDGET
    assert burst.omitted == 400 - len(burst.activity) > 0
    # With activity left out, a later message no longer claims to count the whole burst.
    update = bursts.admit(_finding(["z"], 410, 45.0))
    assert update is not None
    message_text = next(
        r.message for r in update.finding.reasons if r.code is ReasonCode.DEPLOYMENT_CREDENTIALS
    )
    assert "Later in the burst" in message_text


def test_all_open_bursts_together_keep_no_more_than_the_total_budget():
    bursts = Bursts(SETTINGS)
    for n in range(8):
        actor = Actor(caller=f"user{n}@contoso.com", app_id=CLI, ip="203.0.113.9")
        bursts.admit(_finding([f"s{n}-{i:03d}" for i in range(150)], n, 40.0, actor=actor))
    kept = sum(held_size(o) for b in bursts.open.values() for o in b.activity)
    assert kept <= _ACTIVITY_TOTAL
    assert sum(b.omitted for b in bursts.open.values()) > 0


def test_bursts_past_their_gap_leave_the_activity_budget_to_the_next_one():
    """Four thieves, each a burst of 40 sites two and a half hours after the last: by then
    each earlier burst is past its gap (120 minutes), so the timer's state, saved between
    runs, no longer holds it. The engine forgets it before each window too: a replay, one
    engine window after window, keeps the fourth burst's whole activity, as the timer does,
    instead of finding the budget spent on bursts that ended hours before."""
    from detectors.engine.scoring import Engine
    from detectors.model.observation import Observation

    thieves = [
        Actor(caller=f"thief{n}@contoso.com", app_id=CLI, ip=f"203.0.113.{20 + n}")
        for n in range(4)
    ]
    windows: list[list[Observation]] = []
    for n, thief in enumerate(thieves):
        finding = _finding([f"site-{n}-{k}" for k in range(40)], 150 * n, 30.0, actor=thief)
        assert sum(held_size(o) for o in finding.observations) > _ACTIVITY_TOTAL / 4
        windows.append(list(finding.observations))
    engine = Engine(settings=SETTINGS)
    for window in windows:
        engine.prepare(window)  # what moves on before each window
        finding = _finding(
            sorted({o.resource.site for o in window}),
            int((window[0].time - START).total_seconds() // 60),
            30.0,
            actor=next(t for t in thieves if t.caller == window[0].principal.id),
        )
        engine._bursts.admit(finding)
    last = engine._bursts.open[f"{credential_download.SPEC.id}\x1f{thieves[-1].caller}"]
    assert last.omitted == 0
    assert len(last.activity) == 40
    # Only the burst that ended within the gap of the newest row is still held.
    assert sorted(engine._bursts.open) == [
        f"{credential_download.SPEC.id}\x1f{t.caller}" for t in thieves[2:]
    ]
