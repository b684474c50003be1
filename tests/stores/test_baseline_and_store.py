"""Baselines learn and age; both stores keep them readable and never lose a concurrent update."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from detectors.baselines.baseline import PrincipalBaseline, learn, network_of, told
from detectors.baselines.codec import from_properties, to_properties
from detectors.model.days import day_number
from detectors.model.errors import ConflictError, StoreError
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
from detectors.stores import StoredBaseline
from detectors.stores.sqlite import SqliteStore

T0 = datetime(2026, 10, 1, 9, tzinfo=UTC)
JANE = Principal(id="jane@contoso.com", name="Jane", type=PrincipalType.USER)


def obs(
    when: datetime,
    *,
    site: str = "app1",
    ip: str = "198.51.100.7",
    tool=ClientTool.PORTAL,
    family=OperationFamily.CREDENTIAL_READ,
    status=Status.SUCCEEDED,
    n: int = 0,
) -> Observation:
    return Observation(
        event_id=f"e{when.isoformat()}{n}",
        action_key=f"a{when.isoformat()}{n}",
        time=when,
        table=SourceTable.AZURE_ACTIVITY,
        operation="MICROSOFT.WEB/SITES/PUBLISHXML/ACTION",
        family=family,
        status=status,
        principal=JANE,
        app_id=None,
        tool=tool,
        source_ip=ip,
        resource=ResourceRef(
            id=f"/x/{site}", subscription_id="sub", resource_group="rg", site=site
        ),
    )


def teach(
    *items: Observation, baseline: PrincipalBaseline | None = None, max_age: int = 45
) -> PrincipalBaseline:
    result = learn(baseline, items, max_age_days=max_age, max_values=256)
    assert result is not None
    return result


def test_learning_records_sites_tools_networks_and_active_days():
    b = teach(
        obs(T0),
        obs(T0 + timedelta(days=1), site="app2", tool=ClientTool.AZURE_CLI, ip="203.0.113.4"),
    )
    today = day_number(T0 + timedelta(days=2))
    assert b.knows("sites", "sub/rg/app1", today, 45)
    assert b.knows("sites", "sub/rg/app2", today, 45)
    assert b.knows("tools", "azureCli", today, 45)
    assert b.knows("networks", "203.0.113.0/24", today, 45)
    assert b.active_days == 2
    assert b.history_days(today) == 2
    assert b.history_days(day_number(T0 + timedelta(days=1))) == 1


def test_what_was_not_seen_for_longer_than_the_age_limit_is_forgotten():
    b = teach(obs(T0, site="old"), max_age=10)
    b = teach(obs(T0 + timedelta(days=11), site="new"), baseline=b, max_age=10)
    assert "sub/rg/old" not in b.sites
    assert "sub/rg/new" in b.sites
    assert not b.knows("sites", "sub/rg/old", day_number(T0 + timedelta(days=11)), 10)


def test_a_return_after_everything_was_forgotten_restarts_the_remembered_history():
    """Away longer than the age limit, a principal's history starts again the day it comes
    back (`resumed_day`; `history_start` says so on that day already), though it was first
    seen long ago; a shorter absence restarts nothing. The day is stored."""
    b = teach(obs(T0), obs(T0 + timedelta(days=1)), max_age=10)
    back = day_number(T0 + timedelta(days=13))
    assert b.history_start(back - 2, 10) == day_number(T0)
    assert b.history_start(back, 10) == back
    b = teach(obs(T0 + timedelta(days=13)), baseline=b, max_age=10)
    later = teach(obs(T0 + timedelta(days=20)), baseline=b, max_age=10)
    assert (b.resumed_day, later.resumed_day) == (back, back)
    assert later.history_start(back + 7, 10) == back
    assert later.first_seen == T0
    assert from_properties(to_properties(later)).resumed_day == back
    assert to_properties(later)["ResumedDay"] == "2026-10-14"
    short = teach(obs(T0), obs(T0 + timedelta(days=10)), max_age=10)
    assert short.resumed_day == -1
    assert short.history_start(day_number(T0 + timedelta(days=11)), 10) == day_number(T0)


def test_a_day_only_an_alerts_activity_fell_on_is_no_active_day():
    """An intrusion using a leaver's identity while she is away alerts: its day counts its
    operations but is no day of hers (`idle`), so when she comes back after longer than
    the baseline remembers, her history restarts (`resumed_day`) all the same. Learned
    without the quarantine, the same day makes her look active, and nothing restarts."""
    before = teach(obs(T0), obs(T0 + timedelta(days=1)), max_age=10)
    attack = obs(T0 + timedelta(days=6), ip="203.0.113.9", site="app2")

    def back(quarantined: set[str]) -> PrincipalBaseline:
        during = learn(
            replace(before),
            [attack],
            max_age_days=10,
            max_values=256,
            quarantined=quarantined,
            quarantine_days=7,
        )
        assert during is not None
        return teach(obs(T0 + timedelta(days=13)), baseline=during, max_age=10)

    held = back({attack.event_id})
    assert (held.active_days, held.operations) == (3, 4)
    assert held.resumed_day == day_number(T0 + timedelta(days=13))
    assert back(set()).resumed_day == -1


def test_failures_are_counted_but_teach_no_capability():
    b = teach(obs(T0, site="secret", status=Status.FAILED))
    assert b.failures == 1
    assert b.operations == 1
    assert "sub/rg/secret" not in b.sites


def test_dimensions_are_capped_keeping_the_most_recent():
    items = [obs(T0 + timedelta(hours=h), ip=f"10.0.{h}.1", n=h) for h in range(40)]
    b = learn(None, items, max_age_days=45, max_values=8)
    assert b is not None
    assert len(b.ips) == 8
    assert "10.0.39.1" in b.ips


def test_network_of_uses_a_24_for_ipv4_and_a_48_for_ipv6():
    assert network_of("203.0.113.77") == "203.0.113.0/24"
    assert network_of("2001:db8:abcd:12::1") == "2001:db8:abcd::/48"


def test_codec_round_trips_and_writes_plain_named_properties():
    b = teach(obs(T0), obs(T0 + timedelta(days=3), family=OperationFamily.WEBJOB_RUN))
    props = to_properties(b)
    assert props["PrincipalId"] == "jane@contoso.com"
    assert props["Sites"] == '{"sub/rg/app1":"2026-10-04"}'
    assert all(isinstance(v, str | int) for v in props.values())
    assert from_properties(props) == b


def test_a_damaged_stored_baseline_is_a_clear_store_error():
    props = to_properties(teach(obs(T0)))
    props["HoursUtc"] = "[1, 2]"
    with pytest.raises(StoreError, match=r"jane@contoso\.com.*24 counters"):
        from_properties(props)


@pytest.fixture
def store(tmp_path):
    s = SqliteStore(path=tmp_path / "baselines.db")
    yield s
    s.close()


def test_store_round_trips_baselines_and_state(store):
    b = teach(obs(T0))
    etags = store.save([StoredBaseline(baseline=b, etag=None)])
    loaded = store.load(["jane@contoso.com", "nobody"])
    assert list(loaded) == ["jane@contoso.com"]
    assert loaded["jane@contoso.com"].baseline == b
    assert loaded["jane@contoso.com"].etag == etags["jane@contoso.com"]
    store.put_state("checkpoint", {"watermark": "2026-10-01T00:00:00Z"})
    assert store.get_state("checkpoint") == {"watermark": "2026-10-01T00:00:00Z"}
    assert store.get_state("other") is None


def test_a_stale_write_is_refused_and_writes_nothing(store):
    b = teach(obs(T0))
    store.save([StoredBaseline(baseline=b, etag=None)])
    first = store.load(["jane@contoso.com"])["jane@contoso.com"]
    second = store.load(["jane@contoso.com"])["jane@contoso.com"]
    newer = teach(obs(T0 + timedelta(days=1), site="app9"), baseline=first.baseline)
    store.save([StoredBaseline(baseline=newer, etag=first.etag)])
    other = teach(obs(T0 + timedelta(days=1), site="app7"), baseline=second.baseline)
    with pytest.raises(ConflictError, match=r"jane@contoso\.com"):
        store.save([StoredBaseline(baseline=other, etag=second.etag)])
    assert "sub/rg/app9" in store.load(["jane@contoso.com"])["jane@contoso.com"].baseline.sites


def test_two_creators_of_the_same_principal_do_not_both_win(store):
    b = teach(obs(T0))
    store.save([StoredBaseline(baseline=b, etag=None)])
    with pytest.raises(ConflictError):
        store.save([StoredBaseline(baseline=b, etag=None)])


def test_an_unopenable_store_path_is_a_store_error(tmp_path):
    with pytest.raises(StoreError, match="cannot open"):
        SqliteStore(path=tmp_path / "missing-dir" / "x.db")


def test_baselines_persist_across_store_instances(tmp_path):
    path = tmp_path / "b.db"
    s1 = SqliteStore(path=path)
    s1.save([StoredBaseline(baseline=teach(obs(T0)), etag=None)])
    s1.close()
    s2 = SqliteStore(path=path)
    assert "jane@contoso.com" in s2.load(["jane@contoso.com"])
    s2.close()


def test_write_behind_cache_writes_through_only_on_flush_and_keeps_etag_semantics(tmp_path):
    from detectors.stores.write_behind import WriteBehindStore

    inner = SqliteStore(path=tmp_path / "b.db")
    cache = WriteBehindStore(inner)
    b = teach(obs(T0))
    assert cache.load(["jane@contoso.com"]) == {}
    cache.save([StoredBaseline(baseline=b, etag=None)])
    assert inner.load(["jane@contoso.com"]) == {}  # not yet written
    held = cache.load(["jane@contoso.com"])["jane@contoso.com"]
    newer = teach(obs(T0 + timedelta(days=1), site="app2"), baseline=held.baseline)
    cache.save([StoredBaseline(baseline=newer, etag=held.etag)])
    with pytest.raises(ConflictError):
        cache.save([StoredBaseline(baseline=newer, etag=held.etag)])  # stale etag
    assert cache.flush() == 1
    assert inner.load(["jane@contoso.com"])["jane@contoso.com"].baseline == newer
    assert cache.flush() == 0


def test_write_behind_cache_closed_after_a_failed_run_writes_nothing(tmp_path):
    from detectors.stores.write_behind import WriteBehindStore

    cache = WriteBehindStore(SqliteStore(path=tmp_path / "b.db"))
    cache.save([StoredBaseline(baseline=teach(obs(T0)), etag=None)])
    cache.close(flush=False)
    reopened = SqliteStore(path=tmp_path / "b.db")
    assert reopened.load(["jane@contoso.com"]) == {}
    reopened.close()


def test_write_behind_cache_evicts_when_full_without_losing_updates(tmp_path):
    from detectors.stores.write_behind import WriteBehindStore

    cache = WriteBehindStore(SqliteStore(path=tmp_path / "b.db"), max_cached=2)
    for n in range(5):
        p = Principal(id=f"p{n}@contoso.com", name="P", type=PrincipalType.USER)
        item = replace_principal(obs(T0), p)
        cache.load([p.id])
        cache.save([StoredBaseline(baseline=teach(item), etag=None)])
    cache.flush()
    ids = [f"p{n}@contoso.com" for n in range(5)]
    assert sorted(cache.inner.load(ids)) == ids


def replace_principal(o: Observation, p: Principal) -> Observation:

    return replace(o, principal=p)


@pytest.mark.parametrize(
    "principal_id",
    [
        "o'brien@contoso.com",
        "a/b\\c#d?e",
        "zoë@例え.jp",
        "$site-with-ünïcode",
        "x" * 1024,
        "tab\there",
    ],
)
def test_any_principal_id_round_trips_through_the_store(store, principal_id):
    p = Principal(id=principal_id, name="N", type=PrincipalType.USER)
    b = teach(replace_principal(obs(T0), p))
    store.save([StoredBaseline(baseline=b, etag=None)])
    assert store.load([principal_id])[principal_id].baseline == b


def test_what_only_an_alert_taught_is_quarantined_until_released():
    """An alert's new network and tool are held back for `quarantine_days`; the counters
    and what the principal already knew are learned as usual."""
    before = teach(obs(T0), obs(T0 + timedelta(days=1)))
    day3 = T0 + timedelta(days=3)
    alerted = obs(day3, ip="203.0.113.9", tool=ClientTool.AZURE_POWERSHELL, site="app2")
    usual = obs(day3 + timedelta(minutes=5), n=1)
    after = learn(
        before,
        [alerted, usual],
        max_age_days=45,
        max_values=256,
        quarantined={alerted.event_id},
        quarantine_days=7,
    )
    assert after is not None
    today = day_number(day3)
    assert after.active_days == 3
    assert after.operations == 4
    for dimension, value in (
        ("networks", "203.0.113.0/24"),
        ("tools", "azurePowerShell"),
        ("sites", "sub/rg/app2"),
    ):
        assert value not in getattr(after, dimension)
        assert after.quarantine[dimension][value] == (today, today + 7)
        assert not after.knows(dimension, value, today, 45)
        assert told(after).knows(dimension, value, today, 45)  # its burst goes on
        assert not after.knows(dimension, value, today + 1, 45)
        assert not after.knows(dimension, value, today + 6, 45)
        assert after.knows(dimension, value, today + 7, 45)  # released without a verdict
    assert after.knows("networks", "198.51.100.0/24", today, 45)  # known before: learned
    assert "portal" in after.tools
    assert after.tools["portal"] == today
    # Learning a later day folds the released values into what is known.
    later = teach(obs(day3 + timedelta(days=8), n=2), baseline=after)
    assert later.networks["203.0.113.0/24"] == today
    assert not later.quarantine
    assert from_properties(to_properties(after)) == after  # stored and read back


def test_what_the_alert_and_ordinary_activity_both_taught_is_not_quarantined():
    alerted = obs(T0, ip="203.0.113.9")
    ordinary = obs(T0 + timedelta(minutes=1), ip="203.0.113.10", n=1)
    after = learn(
        None,
        [alerted, ordinary],
        max_age_days=45,
        max_values=256,
        quarantined={alerted.event_id},
        quarantine_days=7,
    )
    assert after is not None
    assert "203.0.113.0/24" in after.networks
    assert after.quarantine == {"ips": {"203.0.113.9": (day_number(T0), day_number(T0) + 7)}}


def test_quarantine_days_zero_learns_an_alert_at_once():
    alerted = obs(T0, ip="203.0.113.9")
    after = learn(None, [alerted], max_age_days=45, max_values=256, quarantined={alerted.event_id})
    assert after is not None
    assert "203.0.113.9" in after.ips
    assert not after.quarantine


def test_a_baseline_stored_before_the_quarantine_existed_reads_with_none():
    props = to_properties(teach(obs(T0)))
    del props["Quarantine"]
    assert from_properties(props).quarantine == {}
    props["Quarantine"] = '{"Nonsense": {"x": ["2026-10-01", "2026-10-08"]}}'
    with pytest.raises(StoreError, match="Quarantine names no dimension"):
        from_properties(props)
