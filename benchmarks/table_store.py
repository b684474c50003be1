"""Round trips and time of TableStore's load and save against Azurite, for N principals.

Starts its own in-memory Azurite (`make test` installs it), stores N realistic baselines
(a few dozen values each), then times: save of N new baselines, load of all N, save of N
updates (etag-conditional), and a load of N/10 of them. Prints seconds and round trips.

    .venv/bin/python -m benchmarks.table_store [--sizes 10,100,1000]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from detectors.baselines.baseline import PrincipalBaseline
from detectors.model.days import day_number
from detectors.model.observation import PrincipalType
from detectors.stores import StoredBaseline
from detectors.stores.table import TableStore
from tests.services.azurite import Azurite

T0 = datetime(2026, 10, 1, 9, tzinfo=UTC)


def baseline(n: int) -> PrincipalBaseline:
    today = day_number(T0)
    return PrincipalBaseline(
        principal_id=f"user-{n}@contoso.com",
        principal_type=PrincipalType.USER,
        name=f"User {n}",
        first_seen=T0 - timedelta(days=40),
        last_seen=T0,
        active_days=30,
        operations=500,
        families={f"family-{k}": today - k for k in range(6)},
        sites={f"{n:08x}-sub/rg-web/site-{k}": today - k for k in range(20)},
        ips={f"198.51.{k}.{n % 250}": today - k for k in range(15)},
        networks={f"198.51.{k}.0/24": today - k for k in range(15)},
        credential_sites={f"{n:08x}-sub/rg-web/site-{k}": today - k for k in range(5)},
    )


def counted(store: TableStore) -> dict[str, int]:
    """Counts the requests the store's baseline table client sends."""
    counts = {"queries": 0, "transactions": 0}
    client: Any = store._baselines  # a benchmark may look inside

    def wrap(name: str, key: str) -> None:
        inner: Callable[..., Any] = getattr(client, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            counts[key] += 1
            return inner(*args, **kwargs)

        setattr(client, name, call)

    wrap("query_entities", "queries")
    wrap("submit_transaction", "transactions")
    return counts


def measure(label: str, counts: dict[str, int], action: Callable[[], Any]) -> Any:
    before = dict(counts)
    start = time.perf_counter()
    result = action()
    seconds = time.perf_counter() - start
    trips = {k: counts[k] - before[k] for k in counts}
    print(
        f"  {label:<24} {seconds:7.3f} s   {trips['queries']:4d} queries "
        f"{trips['transactions']:4d} transactions"
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,100,1000")
    args = parser.parse_args()
    emulator = Azurite()
    emulator.start()
    try:
        for size in (int(s) for s in args.sizes.split(",")):
            store = TableStore(
                connection_string=emulator.connection_string,
                baseline_table=f"Bench{size}Baselines",
                state_table=f"Bench{size}State",
            )
            counts = counted(store)
            ids = [f"user-{n}@contoso.com" for n in range(size)]
            print(f"N = {size}")
            fresh = [StoredBaseline(baseline=baseline(n), etag=None) for n in range(size)]
            measure("save (create)", counts, lambda: store.save(fresh))  # noqa: B023
            read = measure("load all", counts, lambda: store.load(ids))  # noqa: B023
            updates = [
                replace(read[p], baseline=replace(read[p].baseline, operations=501)) for p in ids
            ]
            measure("save (if-match update)", counts, lambda: store.save(updates))  # noqa: B023
            some = ids[: max(1, size // 10)]
            measure(f"load {len(some)}", counts, lambda: store.load(some))  # noqa: B023
            store.close()
    finally:
        emulator.stop()


if __name__ == "__main__":
    main()
