"""Both baseline stores keep one contract: the embedded SQLite store and Table Storage (Azurite).

What any store must do: round-trip baselines exactly, leave absent principals out, refuse a
stale etag without writing anything of the lost baseline, take any principal id, save
hundreds of baselines in one call, keep large baselines and state documents. Table Storage
alone: a mixed batch writes the current baselines and says which, conditional state
writes, an outage that fails fast and recovers, and the engine's retry on a lost race.
"""

from __future__ import annotations

import json
import random
import string
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from azure.data.tables import TableClient

from detectors.baselines.baseline import PrincipalBaseline, learn
from detectors.clients.tables import MAX_KEY_UNITS, decode_key, encode_key
from detectors.engine.scoring import Engine
from detectors.model.days import day_number
from detectors.model.errors import ConfigurationError, ConflictError, StoreError
from detectors.model.observation import (
    ClientTool,
    Observation,
    OperationFamily,
    Principal,
    PrincipalType,
    RawRow,
    ResourceRef,
    SourceTable,
    Status,
)
from detectors.normalize.rows import Normalizer
from detectors.runs.step import WindowStep
from detectors.settings.app import StorageSettings
from detectors.settings.detection import DetectionSettings
from detectors.stores import BaselineStore, StoredBaseline
from detectors.stores.sqlite import SqliteStore
from detectors.stores.table import (
    ENTITY_BUDGET,
    TableStore,
    baseline_entity,
    entity_size,
    partition_key,
)
from tests.rowkit import CONFIG_LIST, PUBLISHXML, START, Actor, activity, site_id
from tests.services.azurite import Azurite, StorageNames

T0 = datetime(2026, 10, 1, 9, tzinfo=UTC)
ODD_IDS = [
    "a/b",
    "back\\slash",
    "#hash",
    "what?",
    "100%",
    "%2F",
    "tab\tnewline\ncontrol\x00\x1f\x7f\x85\x9f",
    "emoji 😀🔑",
    "\u202eRTL override",
    "مستخدم@contoso.com",
    "o'brien@contoso.com",
    "x" * 2000,
    "y" * 2000 + "/",
    "Jane@Contoso.com",
    "jane@contoso.com",
    "JANE@CONTOSO.COM",
    "",
    " leading and trailing ",
]


@pytest.fixture(params=["sqlite", pytest.param("table", marks=pytest.mark.azurite)])
def store_factory(request: pytest.FixtureRequest) -> Iterator[Callable[[], BaselineStore]]:
    """Makes stores onto one shared backing store (two writers = two calls)."""
    made: list[BaselineStore] = []
    if request.param == "sqlite":
        path = request.getfixturevalue("tmp_path") / "baselines.db"

        def make() -> BaselineStore:
            made.append(SqliteStore(path=path))
            return made[-1]

    else:
        azurite: Azurite = request.getfixturevalue("azurite")
        names: StorageNames = request.getfixturevalue("storage_names")
        tables = {"baseline_table": names.table("Baselines"), "state_table": names.table("State")}

        def make() -> BaselineStore:
            made.append(TableStore(connection_string=azurite.connection_string, **tables))
            return made[-1]

    yield make
    for store in made:
        store.close()


@pytest.fixture
def store(store_factory: Callable[[], BaselineStore]) -> BaselineStore:
    return store_factory()


@pytest.fixture
def table_store(azurite: Azurite, storage_names: StorageNames) -> Iterator[TableStore]:
    store = TableStore(
        connection_string=azurite.connection_string,
        baseline_table=storage_names.table("Baselines"),
        state_table=storage_names.table("State"),
    )
    yield store
    store.close()


def raw_table(azurite: Azurite, name: str) -> TableClient:
    """The table as Storage Explorer sees it: entities, not baselines."""
    return TableClient.from_connection_string(azurite.connection_string, table_name=name)


def observe(
    principal: str,
    when: datetime,
    *,
    n: int = 0,
    site: str = "app1",
    ip: str = "198.51.100.7",
    family: OperationFamily = OperationFamily.CREDENTIAL_READ,
) -> Observation:
    return Observation(
        event_id=f"{principal}-{when.isoformat()}-{site}-{n}",
        action_key=f"{principal}-{when.isoformat()}-{site}-{n}",
        time=when,
        table=SourceTable.AZURE_ACTIVITY,
        operation=PUBLISHXML,
        family=family,
        status=Status.SUCCEEDED,
        principal=Principal(id=principal, name="Someone", type=PrincipalType.USER),
        app_id=None,
        tool=ClientTool.PORTAL,
        source_ip=ip,
        resource=ResourceRef(
            id=f"/x/{site}", subscription_id="sub", resource_group="rg", site=site
        ),
    )


def baseline_of(principal: str, *, operations: int = 1) -> PrincipalBaseline:
    """A small learned baseline for any id."""
    items = [observe(principal, T0 + timedelta(minutes=k), n=k) for k in range(operations)]
    result = learn(None, items, max_age_days=45, max_values=256)
    assert result is not None
    return result


def new(*baselines: PrincipalBaseline) -> list[StoredBaseline]:
    return [StoredBaseline(baseline=b, etag=None) for b in baselines]


def realistic_baseline() -> PrincipalBaseline:
    """A baseline learned through the real path: export rows, normalizer, learn."""
    actor = Actor(caller="dev@contoso.com", ip="203.0.113.9")
    rows: list[dict[str, Any]] = []
    for day in range(10):
        when = START + timedelta(days=day, hours=9 + day % 5)
        rows += activity(actor, when, PUBLISHXML, site_id(f"web{day % 3}"))
        config = site_id("api") + "/config/appsettings"
        rows += activity(actor, when + timedelta(minutes=3), CONFIG_LIST, config)
    normalizer = Normalizer()
    items = []
    for n, row in enumerate(rows):
        result = normalizer.normalize(
            RawRow(source="t", line=n, table=SourceTable.AZURE_ACTIVITY, fields=row)
        )
        if isinstance(result, Observation):
            items.append(result)
    baseline = None
    for day in range(10):
        todays = [o for o in items if (o.time - START).days == day]
        through = START + timedelta(days=day + 1)
        baseline = learn(baseline, todays, max_age_days=45, max_values=256, through=through)
    assert baseline is not None
    return baseline


def same_partition_ids(count: int, partition: str = "7", prefix: str = "svc") -> list[str]:
    """Principal ids that all land in one table partition (to fill one transaction)."""
    ids: list[str] = []
    n = 0
    while len(ids) < count:
        candidate = f"{prefix}-{n}@contoso.com"
        if partition_key(candidate) == partition:
            ids.append(candidate)
        n += 1
    return ids


# The contract, for both stores.


def test_a_learned_baseline_round_trips_exactly(store: BaselineStore) -> None:
    baseline = realistic_baseline()
    assert len(baseline.sites) == 4
    assert baseline.config_suffixes
    assert baseline.learned_through is not None
    etags = store.save(new(baseline))
    loaded = store.load([baseline.principal_id])
    assert loaded[baseline.principal_id].baseline == baseline
    assert loaded[baseline.principal_id].etag == etags[baseline.principal_id]


def test_absent_principals_are_left_out(store: BaselineStore) -> None:
    store.save(new(baseline_of("present@contoso.com")))
    assert store.load([]) == {}
    assert store.load(["absent@contoso.com"]) == {}
    assert set(store.load(["present@contoso.com", "absent@contoso.com"])) == {"present@contoso.com"}


def test_a_stale_etag_loses_and_nothing_of_the_lost_baseline_is_written(
    store_factory: Callable[[], BaselineStore],
) -> None:
    first, second = store_factory(), store_factory()
    first.save(new(baseline_of("jane@contoso.com")))
    read_by_first = first.load(["jane@contoso.com"])["jane@contoso.com"]
    read_by_second = second.load(["jane@contoso.com"])["jane@contoso.com"]

    first.save([replace(read_by_first, baseline=baseline_of("jane@contoso.com", operations=2))])
    with pytest.raises(ConflictError) as lost:
        second.save(
            [replace(read_by_second, baseline=baseline_of("jane@contoso.com", operations=3))]
        )

    assert lost.value.principals == ("jane@contoso.com",)
    assert lost.value.written == {}
    assert first.load(["jane@contoso.com"])["jane@contoso.com"].baseline.operations == 2


def test_creating_a_baseline_someone_else_created_is_a_conflict(
    store_factory: Callable[[], BaselineStore],
) -> None:
    first, second = store_factory(), store_factory()
    first.save(new(baseline_of("new@contoso.com", operations=2)))
    with pytest.raises(ConflictError) as lost:
        second.save(new(baseline_of("new@contoso.com", operations=3)))
    assert lost.value.principals == ("new@contoso.com",)
    assert second.load(["new@contoso.com"])["new@contoso.com"].baseline.operations == 2


def test_after_a_conflict_exactly_the_reported_baselines_are_written(
    store_factory: Callable[[], BaselineStore],
) -> None:
    """Lost ones keep the other writer's version; written ones carry the etags reported."""
    first, second = store_factory(), store_factory()
    together = same_partition_ids(6)
    elsewhere = [f"other-{n}@contoso.com" for n in range(6)]
    everyone = together + elsewhere
    second.save(new(*(baseline_of(p) for p in everyone)))
    read = second.load(everyone)
    raced = [together[1], together[4], elsewhere[2]]
    first.save([replace(read[p], baseline=baseline_of(p, operations=5)) for p in raced])

    with pytest.raises(ConflictError) as lost:
        second.save([replace(read[p], baseline=baseline_of(p, operations=9)) for p in everyone])

    assert set(lost.value.principals) == set(raced)
    assert not set(lost.value.written) & set(raced)
    now = second.load(everyone)
    for principal in raced:
        assert now[principal].baseline.operations == 5
    for principal, etag in lost.value.written.items():
        assert now[principal].baseline.operations == 9
        assert now[principal].etag == etag
    untouched = set(everyone) - set(raced) - set(lost.value.written)
    assert all(now[p].baseline.operations == 1 for p in untouched)
    if isinstance(second, TableStore):  # no multi-partition transactions: it writes the rest
        assert set(lost.value.written) == set(everyone) - set(raced)


def test_any_principal_id_is_stored_and_found_again(store: BaselineStore) -> None:
    baselines = [baseline_of(p) for p in ODD_IDS]
    store.save(new(*baselines))
    loaded = store.load(ODD_IDS)
    assert sorted(loaded) == sorted(ODD_IDS)
    for baseline in baselines:
        assert loaded[baseline.principal_id].baseline == baseline
    for principal in ODD_IDS:  # each alone too: no id shadows another
        assert store.load([principal])[principal].baseline.principal_id == principal


def test_hundreds_of_baselines_save_in_one_call_and_update_in_another(
    store: BaselineStore,
) -> None:
    crowded = same_partition_ids(230)  # one table partition: three transactions
    spread = [f"user-{n}@contoso.com" for n in range(120)]
    everyone = crowded + spread
    store.save(new(*(baseline_of(p) for p in everyone)))
    read = store.load(everyone)
    assert len(read) == len(everyone)
    etags = store.save([replace(read[p], baseline=baseline_of(p, operations=2)) for p in everyone])
    assert set(etags) == set(everyone)
    again = store.load(everyone)
    assert all(again[p].baseline.operations == 2 and again[p].etag == etags[p] for p in everyone)


def big_baseline(principal: str, values: int, *, width: int = 200) -> PrincipalBaseline:
    """A baseline with `values` long site keys (and networks, webjobs) remembered."""
    today = day_number(T0)
    base = baseline_of(principal)

    def dimension(stem: str) -> dict[str, int]:
        return {f"{stem}{n:05d}-".ljust(width, "s") + "é": today - n % 40 for n in range(values)}

    return replace(
        base,
        sites=dimension("sub/rg/site"),
        credential_sites=dimension("sub/rg/cred"),
        webjobs=dimension("sub/rg/site/job"),
        ips={f"2001:db8::{n:x}": today for n in range(values)},
    )


def test_a_large_baseline_round_trips_exactly(store: BaselineStore) -> None:
    """256 values of 200-character sites: more than one table property holds."""
    baseline = big_baseline("big@contoso.com", 256)
    assert len(orjson.dumps(dict(baseline.sites))) > 32_767
    store.save(new(baseline))
    assert store.load(["big@contoso.com"])["big@contoso.com"].baseline == baseline


def test_state_documents_larger_than_a_table_property_round_trip(store: BaselineStore) -> None:
    assert store.get_state("checkpoint") is None
    large = {
        "recentActions": {f"key-{n:06d}": f"2026-10-01T09:{n % 60:02d}:00😀" for n in range(9000)}
    }
    assert len(orjson.dumps(large)) > 300_000
    store.put_state("checkpoint", large)
    assert store.get_state("checkpoint") == large
    store.put_state("checkpoint", {"small": True})  # a shorter document leaves no old parts
    assert store.get_state("checkpoint") == {"small": True}
    store.put_state("odd/name#?", {"x": 1})
    assert store.get_state("odd/name#?") == {"x": 1}


# Table Storage: keys, layout and limits.


def test_keys_are_readable_reversible_and_legal() -> None:
    assert encode_key("jane@contoso.com") == "jane@contoso.com"
    assert encode_key("a/b\\c#d?e%f\x00") == "a%2Fb%5Cc%23d%3Fe%25f%00"
    forbidden = set("/\\#?") | {chr(c) for c in [*range(0x20), *range(0x7F, 0xA0)]}
    for principal in ODD_IDS:
        key = encode_key(principal)
        assert not forbidden & set(key)
        assert len(key.encode("utf-16-le")) // 2 <= MAX_KEY_UNITS
        assert decode_key(key) in (principal, None)
    long_one, long_two = "x" * 2000, "x" * 1999 + "z"
    assert decode_key(encode_key(long_one)) is None
    assert encode_key(long_one) != encode_key(long_two)
    assert encode_key(long_one).startswith("x" * 400)
    # A short id that looks like a hashed key still encodes to something else.
    assert encode_key(encode_key(long_one)) != encode_key(long_one)


@pytest.mark.azurite
def test_an_operator_finds_a_baseline_by_its_readable_row_key(
    azurite: Azurite, table_store: TableStore
) -> None:
    table_store.save(new(baseline_of("ci/deploy@contoso.com", operations=3)))
    entity = raw_table(azurite, table_store.baseline_table).get_entity(
        partition_key("ci/deploy@contoso.com"), "ci%2Fdeploy@contoso.com"
    )
    assert entity["PrincipalId"] == "ci/deploy@contoso.com"
    assert entity["Operations"] == 3
    assert orjson.loads(entity["Sites"]) == {"sub/rg/app1": "2026-10-01"}


@pytest.mark.azurite
def test_long_values_continue_in_numbered_properties_each_valid_json(
    azurite: Azurite, table_store: TableStore
) -> None:
    baseline = big_baseline("big@contoso.com", 256)
    table_store.save(new(baseline))
    entity = raw_table(azurite, table_store.baseline_table).get_entity(
        partition_key("big@contoso.com"), "big@contoso.com"
    )
    parts = [
        entity["Sites"],
        entity["Sites_2"],
        *([entity["Sites_3"]] if "Sites_3" in entity else []),
    ]
    merged: dict[str, str] = {}
    for part in parts:
        merged.update(orjson.loads(part))
    assert len(merged) == 256


@pytest.mark.azurite
def test_counters_beyond_32_bits_are_stored_as_int64(table_store: TableStore) -> None:
    baseline = replace(baseline_of("busy@contoso.com"), operations=2**40, failures=2**33)
    table_store.save(new(baseline))
    assert table_store.load(["busy@contoso.com"])["busy@contoso.com"].baseline == baseline


@pytest.mark.azurite
def test_a_baseline_over_the_entity_limit_keeps_its_newest_values(
    table_store: TableStore, caplog: pytest.LogCaptureFixture
) -> None:
    baseline = big_baseline("huge@contoso.com", 1500)
    table_store.save(new(baseline))
    stored = table_store.load(["huge@contoso.com"])["huge@contoso.com"].baseline
    assert "dropped its" in caplog.text
    for name in ("sites", "credential_sites", "webjobs"):
        kept, full = getattr(stored, name), getattr(baseline, name)
        assert 0 < len(kept) < len(full)
        assert all(full[value] == day for value, day in kept.items())
        assert min(kept.values()) >= max(day for value, day in full.items() if value not in kept)
    assert stored.ips == baseline.ips  # the small dimensions are kept whole
    assert stored.families == baseline.families
    assert entity_size(baseline_entity(stored)) <= ENTITY_BUDGET


@pytest.mark.azurite
def test_several_large_baselines_split_into_transactions_under_4_mib(
    table_store: TableStore,
) -> None:
    ids = same_partition_ids(10, prefix="large")
    baselines = [big_baseline(p, 650) for p in ids]  # ~0.9 MB each, all in one partition
    table_store.save(new(*baselines))
    loaded = table_store.load(ids)
    assert all(loaded[b.principal_id].baseline == b for b in baselines)


@pytest.mark.azurite
def test_a_state_document_over_one_entity_is_refused_clearly(table_store: TableStore) -> None:
    noise = random.Random(0)
    text = "".join(noise.choice(string.ascii_letters) for _ in range(1_500_000))
    with pytest.raises(StoreError, match="1 MiB"):
        table_store.put_state("checkpoint", {"x": text})


@pytest.mark.azurite
def test_a_busy_timers_state_too_large_as_json_is_kept_compressed(
    table_store: TableStore,
) -> None:
    """Bursts and chains repeat their messages: a state several times one entity as JSON
    text is stored compressed, read back whole, and a small one stays readable JSON."""
    reasons = [{"code": "NEW_NETWORK", "message": f"From an address block {n % 7}" * 20}
               for n in range(400)]  # fmt: skip
    state = {"bursts": {f"principal-{n}": {"reasons": reasons} for n in range(40)}}
    assert len(json.dumps(state)) > 3_000_000
    table_store.put_state("timer", state)
    assert table_store.get_state("timer") == state
    table_store.put_state("small", {"x": 1})
    assert table_store.get_state("small") == {"x": 1}


@pytest.mark.azurite
def test_conditional_state_writes_let_only_one_of_two_runs_advance(
    table_store: TableStore,
) -> None:
    assert table_store.get_state_with_etag("checkpoint") == (None, None)
    etag = table_store.put_state_if("checkpoint", {"watermark": 1}, None)
    with pytest.raises(ConflictError):
        table_store.put_state_if("checkpoint", {"watermark": 99}, None)

    value, read_etag = table_store.get_state_with_etag("checkpoint")
    assert value == {"watermark": 1}
    assert read_etag == etag
    table_store.put_state_if("checkpoint", {"watermark": 2}, etag)  # the first run
    with pytest.raises(ConflictError):
        table_store.put_state_if("checkpoint", {"watermark": 3}, etag)  # the overlapping one
    assert table_store.get_state("checkpoint") == {"watermark": 2}


@pytest.mark.azurite
def test_a_storage_outage_is_a_store_error_and_the_store_recovers(
    azurite_outage: Azurite, storage_names: StorageNames
) -> None:
    store = TableStore(
        connection_string=azurite_outage.connection_string,
        baseline_table=storage_names.table("Baselines"),
        state_table=storage_names.table("State"),
        timeout_seconds=2,
        retries=1,
    )
    try:
        store.save(new(baseline_of("jane@contoso.com")))
        read = store.load(["jane@contoso.com"])
        azurite_outage.stop()
        with pytest.raises(StoreError, match=rf"table {store.baseline_table}: read 1 baselines"):
            store.load(["jane@contoso.com"])
        with pytest.raises(StoreError, match="write 1 baselines failed: ServiceRequestError"):
            store.save(new(baseline_of("joe@contoso.com")))
        with pytest.raises(StoreError, match=rf"table {store.state_table}: read state"):
            store.get_state("checkpoint")
        with pytest.raises(StoreError, match="write state"):
            store.put_state("checkpoint", {"x": 1})

        azurite_outage.start()
        assert store.load(["jane@contoso.com"]) == read
        assert store.load(["joe@contoso.com"]) == {}
    finally:
        store.close()


def test_the_table_store_needs_one_way_to_connect() -> None:
    tables = {"baseline_table": "Baselines", "state_table": "State"}
    with pytest.raises(ConfigurationError, match="connection_string, or endpoint and credential"):
        TableStore(**tables)
    with pytest.raises(ConfigurationError):
        TableStore(connection_string="x", endpoint="https://a.table.core.windows.net", **tables)
    with pytest.raises(ConfigurationError, match="no table service"):
        TableStore.from_settings(StorageSettings(), **tables)


@pytest.mark.azurite
def test_a_store_from_app_settings_uses_the_connection_string(
    azurite: Azurite, storage_names: StorageNames
) -> None:
    settings = StorageSettings(connection_string=azurite.connection_string)
    store = TableStore.from_settings(
        settings,
        baseline_table=storage_names.table("Baselines"),
        state_table=storage_names.table("State"),
    )
    try:
        store.save(new(baseline_of("jane@contoso.com")))
        assert set(store.load(["jane@contoso.com"])) == {"jane@contoso.com"}
    finally:
        store.close()


@pytest.mark.azurite
def test_a_missing_table_is_a_store_error_naming_it_when_tables_are_not_created(
    azurite: Azurite, storage_names: StorageNames
) -> None:
    store = TableStore(
        connection_string=azurite.connection_string,
        baseline_table=storage_names.table("Missing"),
        state_table=storage_names.table("Missing"),
        create_tables=False,
    )
    try:
        with pytest.raises(StoreError, match=rf"table {store.baseline_table}: read 1 baselines"):
            store.load(["jane@contoso.com"])
        with pytest.raises(StoreError, match=rf"table {store.state_table}: read state"):
            store.get_state("checkpoint")
    finally:
        store.close()


# The engine's retry of a lost race, against Table Storage.


class _ReadTogether:
    """A store whose first load waits for the other engine's, so both read the same etags."""

    def __init__(self, inner: TableStore, barrier: threading.Barrier) -> None:
        self.inner = inner
        self.barrier = barrier
        self.first = True
        self.conflicts = 0

    def load(self, principal_ids: Any) -> dict[str, StoredBaseline]:
        found = self.inner.load(principal_ids)
        if self.first:
            self.first = False
            self.barrier.wait(timeout=30)
        return found

    def save(self, baselines: Any) -> dict[str, str]:
        try:
            return self.inner.save(baselines)
        except ConflictError:
            self.conflicts += 1
            raise

    def get_state(self, name: str) -> Any:
        return self.inner.get_state(name)

    def put_state(self, name: str, value: Any) -> None:
        self.inner.put_state(name, value)

    def close(self) -> None:
        """The shared store is closed by its fixture."""


@pytest.mark.azurite
def test_two_engines_on_overlapping_windows_never_lose_an_update(table_store: TableStore) -> None:
    shared = [f"shared-{n}@contoso.com" for n in range(8)]
    only_second = [f"late-{n}@contoso.com" for n in range(8)]
    table_store.save(new(*(baseline_of(p) for p in shared[:4])))  # some known, some new

    def window(principals: list[str], start: datetime, tag: str) -> list[Observation]:
        return [
            observe(p, start + timedelta(minutes=k), n=k, site=f"{tag}{k}")
            for p in principals
            for k in range(3)
        ]

    first_window = window(shared, T0 + timedelta(hours=1), "a")
    second_window = window(shared + only_second, T0 + timedelta(hours=1, minutes=2), "b")
    barrier = threading.Barrier(2)
    stores = [_ReadTogether(table_store, barrier), _ReadTogether(table_store, barrier)]
    engines = [WindowStep(Engine(settings=DetectionSettings()), s) for s in stores]
    with ThreadPoolExecutor(2) as pool:
        runs = [
            pool.submit(engines[0].process, first_window, emit=False),
            pool.submit(engines[1].process, second_window, emit=False),
        ]
        for run in runs:
            run.result(timeout=60)

    assert sum(s.conflicts for s in stores) >= 1  # the race did happen
    final = table_store.load(shared + only_second)
    for principal in shared[:4]:
        assert final[principal].baseline.operations == 1 + 3 + 3
    for principal in shared[4:]:
        assert final[principal].baseline.operations == 3 + 3
    for principal in only_second:  # written despite the conflict, and not learned twice
        assert final[principal].baseline.operations == 3
    for principal in shared:
        assert {f"sub/rg/{t}{k}" for t in "ab" for k in range(3)} <= set(
            final[principal].baseline.sites
        )
