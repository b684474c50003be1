"""Learning by accumulation leaves the baselines that learning window by window left.

`absorb` learns into a baseline in place, window after window, with a fast path for activity
the baseline learned already that day; `reference_learn` is the per-window `learn` it
replaced. Every sequence of windows must leave the same baseline either way: the same values
and days in the same order (alerts list them), the same stored properties, with ageing,
limits, late rows, quarantine and its release, and context baselines.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detectors.baselines.baseline import DIMENSIONS, PrincipalBaseline, absorb, learn
from detectors.baselines.codec import from_properties, to_properties
from detectors.model.observation import (
    ClientTool,
    Observation,
    OperationFamily,
    Principal,
    PrincipalType,
    ResourceRef,
    SourceTable,
    Status,
)
from tests.baselines.reference_learn import reference_learn

T0 = datetime(2026, 10, 1, tzinfo=UTC)
PRINCIPALS = [Principal(id=f"p{n}", name=f"Person {n}", type=PrincipalType.USER) for n in range(3)]
FAMILIES = [
    OperationFamily.CREDENTIAL_READ,
    OperationFamily.CREDENTIAL_CHANGE,
    OperationFamily.FUNCTION_KEYS_READ,
    OperationFamily.WEBJOB_RUN,
    OperationFamily.SCM_LOGIN,
    OperationFamily.CONFIG_CHANGE,
    OperationFamily.BASIC_AUTH_POLICY,
]
SITES = ["app1", "app2", "app3", "app4"]
IPS = [None, "198.51.100.7", "198.51.100.9", "203.0.113.4", "192.0.2.1", "2001:db8::1"]
TOOLS = [ClientTool.PORTAL, ClientTool.AZURE_CLI, ClientTool.AZURE_POWERSHELL]
SUFFIXES = [None, "publishingcredentials", "appsettings"]
WEBJOBS = [None, "triggered/nightly", "continuous/queue"]


@dataclass(frozen=True)
class Limits:
    max_age_days: int
    max_values: int
    quarantine_days: int
    context: tuple[str, str] | None


@st.composite
def activities(draw: Any) -> dict[str, Any]:
    """Who did what where, how and from where: what an observation teaches the dimensions."""
    site = draw(st.sampled_from(SITES))
    return {
        "principal": draw(st.sampled_from(PRINCIPALS)),
        "family": draw(st.sampled_from(FAMILIES)),
        "app_id": draw(st.sampled_from([None, "app-a", "app-b"])),
        "tool": draw(st.sampled_from(TOOLS)),
        "source_ip": draw(st.sampled_from(IPS)),
        "resource": ResourceRef(
            id=f"/x/{site}",
            subscription_id=draw(st.sampled_from(["s1", "s2"])),
            resource_group="rg",
            site=site,
        ),
        "config_suffix": draw(st.sampled_from(SUFFIXES)),
        "webjob": draw(st.sampled_from(WEBJOBS)),
    }


@st.composite
def histories(draw: Any) -> tuple[Limits, list[tuple[list[Observation], frozenset[str]]]]:
    """Windows of a few observations over a few days, most in time order, some late, some
    across midnight or out of order (as a context baseline's rows can be), each observation
    one of a few activities (so that windows repeat what earlier ones taught), with the
    event ids an alert listed in each."""
    limits = Limits(
        max_age_days=draw(st.integers(1, 4)),
        max_values=draw(st.integers(1, 4)),
        quarantine_days=draw(st.integers(0, 3)),
        context=draw(
            st.sampled_from(
                [None, None, ("site:s1/rg/app1", "site s1/rg/app1"), ("peers:user", "peers user")]
            )
        ),
    )
    palette = draw(st.lists(activities(), min_size=1, max_size=5))
    windows = []
    clock, n = 0, 0
    for _ in range(draw(st.integers(1, 16))):
        kind = draw(st.sampled_from(["next", "next", "next", "late", "day", "span", "unordered"]))
        if kind == "next":
            clock += draw(st.integers(1, 180))
        elif kind == "day":
            clock += draw(st.integers(1, 3)) * 1440
        start = clock - draw(st.integers(1, 2 * 1440)) if kind == "late" else clock
        reach = 2 * 1440 if kind == "span" else draw(st.sampled_from([59, 59, 2 * 1440]))
        offsets = sorted(draw(st.lists(st.integers(0, reach), min_size=1, max_size=6)))
        if kind == "unordered":
            offsets = offsets[::-1]
        items = []
        for m in offsets:
            items.append(
                Observation(
                    event_id=f"e{n}",
                    action_key=f"a{n}",
                    time=T0 + timedelta(minutes=max(start, 0) + m),
                    table=SourceTable.AZURE_ACTIVITY,
                    operation="op",
                    status=draw(st.sampled_from([Status.SUCCEEDED] * 5 + [Status.FAILED])),
                    count=draw(st.integers(1, 3)),
                    **draw(st.sampled_from(palette)),
                )
            )
            n += 1
        if kind == "span":
            clock = max(clock, start + offsets[-1])
        ids = [o.event_id for o in items]
        alerted = frozenset(draw(st.lists(st.sampled_from(ids), max_size=3)))
        windows.append((items, alerted))
    return limits, windows


def _state(baseline: PrincipalBaseline | None) -> Any:
    """Everything a baseline answers with, as it is now: its fields (their `repr` keeps each
    mapping's order) and what the store would be given."""
    if baseline is None:
        return None
    order = {name.value: list(getattr(baseline, name).items()) for name in DIMENSIONS}
    order["quarantine"] = [(k, list(v.items())) for k, v in baseline.quarantine.items()]
    order["reads"] = list(baseline.credential_reads_per_day.items())
    order["runs"] = list(baseline.webjob_runs_peak_hour.items())
    return repr(baseline), order, to_properties(baseline)


def _fold(limits: Limits, windows: Any, *, accumulate: bool, save_at: frozenset[int]) -> Any:
    baseline: PrincipalBaseline | None = None
    states = []
    for i, (items, alerted) in enumerate(windows):
        step = absorb if accumulate else reference_learn
        baseline = step(
            baseline,
            items,
            max_age_days=limits.max_age_days,
            max_values=limits.max_values,
            through=items[-1].time if i % 3 == 0 else None,
            context=limits.context,
            quarantined=alerted,
            quarantine_days=limits.quarantine_days,
        )
        if i in save_at and baseline is not None:
            # Written out and read back (a write-behind cache evicting it, the next run).
            baseline = from_properties(to_properties(baseline))
        states.append(_state(baseline))
    return states


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(), st.frozensets(st.integers(0, 15), max_size=3))
def test_accumulating_windows_leaves_what_learning_each_window_anew_left(history, save_at):
    limits, windows = history
    assert _fold(limits, windows, accumulate=True, save_at=save_at) == _fold(
        limits, windows, accumulate=False, save_at=save_at
    )


@settings(max_examples=200, deadline=None)
@given(histories())
def test_learn_leaves_the_baseline_it_learns_from_as_it_was(history):
    limits, windows = history
    baseline = None
    for items, alerted in windows:
        before = _state(baseline)
        new = learn(
            baseline,
            items,
            max_age_days=limits.max_age_days,
            max_values=limits.max_values,
            context=limits.context,
            quarantined=alerted,
            quarantine_days=limits.quarantine_days,
        )
        assert _state(baseline) == before
        baseline = new


def _window(day: int, minute: int, *, ip: str, n: int) -> list[Observation]:
    o = Observation(
        event_id=f"e{n}",
        action_key=f"a{n}",
        time=T0 + timedelta(days=day, minutes=minute),
        table=SourceTable.AZURE_ACTIVITY,
        operation="op",
        family=OperationFamily.CREDENTIAL_READ,
        status=Status.SUCCEEDED,
        principal=PRINCIPALS[0],
        app_id=None,
        tool=ClientTool.PORTAL,
        source_ip=ip,
        resource=ResourceRef(id="/x/app1", subscription_id="s1", resource_group="rg", site="app1"),
    )
    return [o]


def _absorb_like_reference(
    sequence: list[list[Observation]], max_values: int = 256
) -> PrincipalBaseline | None:
    """Learn the windows in place and with `reference_learn`, checking after each window
    that both left the same baseline; the accumulated one."""
    accumulated = reference = None
    for items in sequence:
        accumulated = absorb(accumulated, items, max_age_days=45, max_values=max_values)
        reference = reference_learn(reference, items, max_age_days=45, max_values=max_values)
        assert _state(accumulated) == _state(reference)
    return accumulated


def test_known_activity_after_a_late_row_still_moves_the_day_it_was_last_seen():
    """The fast path skips what the baseline learned already that day; a late row of an
    earlier day moves a value back, and the same activity on the baseline's day after it
    must move it forward again, as learning each window anew did."""
    sequence = [
        _window(3, 10, ip="198.51.100.7", n=1),
        _window(3, 20, ip="198.51.100.7", n=2),  # known today: the fast path
        _window(1, 30, ip="198.51.100.7", n=3),  # late: back to day 1
        _window(3, 40, ip="198.51.100.7", n=4),  # known today again, but stored as day 1
    ]
    accumulated = _absorb_like_reference(sequence)
    assert accumulated is not None
    assert accumulated.ips["198.51.100.7"] == accumulated.last_active_day


def test_absorb_learns_in_place_and_copies_what_it_shares_before_writing():
    first = absorb(None, _window(0, 5, ip="198.51.100.7", n=1), max_age_days=45, max_values=256)
    assert first is not None
    same = absorb(first, _window(0, 9, ip="203.0.113.4", n=2), max_age_days=45, max_values=256)
    assert same is first
    assert set(first.ips) == {"198.51.100.7", "203.0.113.4"}
    before = _state(first)
    copy = replace(first)  # shares every mapping with `first`
    grown = absorb(copy, _window(1, 5, ip="192.0.2.1", n=3), max_age_days=45, max_values=256)
    assert grown is copy
    assert "192.0.2.1" in copy.ips
    assert _state(first) == before


def test_values_the_limit_pushes_out_are_those_learning_each_window_anew_pushed_out():
    """At `max_values` the least recent value goes (of one day, the first in sort order),
    and seeing it again the same day pushes it out again, in the same order."""
    sequence = [
        _window(0, 10, ip="198.51.100.1", n=1),
        _window(0, 20, ip="198.51.100.2", n=2),  # .1 is pushed out
        _window(0, 30, ip="198.51.100.1", n=3),  # and again
        _window(0, 40, ip="198.51.100.3", n=4),
    ]
    accumulated = _absorb_like_reference(sequence, max_values=1)
    assert accumulated is not None
    assert set(accumulated.ips) == {"198.51.100.3"}


def test_a_window_across_midnight_teaches_the_later_day_whatever_the_fast_path_knew():
    """Activity the baseline learned on its day, seen again in a window whose rows go back
    to the day before, ends on the day its last row says, as learning the window anew did."""
    late_then_known = _window(0, 23 * 60 + 50, ip="198.51.100.7", n=3)
    late_then_known.insert(0, _window(-1, 10, ip="198.51.100.7", n=2)[0])
    sequence = [_window(0, 10, ip="198.51.100.7", n=1), late_then_known[::-1]]
    _absorb_like_reference(sequence)
