"""Replay throughput, phase by phase, and peak memory, against the parse-only floor.

Two inputs, generated with the simulator (or reused with `--keep DIR`):

- `month`: a million-row month of an organisation of 60 developers, 30 pipelines and 150
  sites, all three tables (most rows are file audit rows and Start rows that replay skips);
- `org`: 42 days of an organisation of more than 1,500 principals, AzureActivity rows only
  (about 3.6 KB each, with their claims and authorization JSON), each principal active on
  about one day in ten: the shape of a large tenant's export.

Each is measured in separate processes, so each peak-memory figure is its own:

1. the floor: read every line and parse it with orjson (the fastest parser the project uses);
2. for reference, when DuckDB is installed, a columnar scan of the columns replay needs
   (DuckDB's own JSON reader, every core), which replay does not use (benchmarks/README.md);
3. `detector replay` over the same file, end to end, alerts written to a file, with its
   phases from `replay --json`: reading (parsing and normalising), scoring (ordering the
   observations and the engine, window by window) and learning (part of scoring);
4. where the reading phase goes, in CPU seconds (which a busy machine disturbs less than
   wall-clock seconds): the floor, the reader, the normaliser, replay's own counting and the
   ordering of the observations.

Then the time `import function_app` takes, which the Function App pays on every cold start.

    .venv/bin/python benchmarks/replay_throughput.py [--inputs month,org] [--keep DIR]
    .venv/bin/python benchmarks/replay_throughput.py --file export.jsonl
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

PEAK_HELPER = """
import resource


def own_peak():
    # This process's own peak (VmHWM). ru_maxrss is not: Linux carries the parent's peak
    # into a child across fork and exec, so a child of the process that generated the
    # inputs would report the generator's memory.
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
"""

FLOOR = (
    PEAK_HELPER
    + """
import json, sys, time, orjson
path = sys.argv[1]
start = time.perf_counter()
rows = 0
with open(path, "rb") as handle:
    for line in handle:
        if line.strip():
            orjson.loads(line)
            rows += 1
seconds = time.perf_counter() - start
peak = own_peak()
print(json.dumps({"rows": rows, "seconds": seconds, "peak": peak}))
"""
)

COLUMNAR = (
    PEAK_HELPER
    + """
import json, sys, time, duckdb
path = sys.argv[1]
columns = ", ".join(f"{name}: 'VARCHAR'" for name in sys.argv[2].split(","))
start = time.perf_counter()
connection = duckdb.connect()
# A scan slowed by a busy machine would print its progress bar into the figures read below.
connection.execute("SET enable_progress_bar = false")
(rows,) = connection.execute(
    f"SELECT count(*) FROM read_json(?, format='newline_delimited', columns={{{columns}}})",
    [path],
).fetchone()
seconds = time.perf_counter() - start
peak = own_peak()
print(json.dumps({"rows": rows, "seconds": seconds, "peak": peak}))
"""
)
READ_COLUMNS = (
    "Type,TimeGenerated,OperationNameValue,ActivityStatusValue,ActivitySubstatusValue,Caller,"
    "CallerIpAddress,Claims,_ResourceId,EventDataId,CorrelationId,Path,User,UserDisplayName,"
    "UserAddress,Protocol,OperationName,Process"
)
"""The columns the normaliser reads from a Log Analytics row (Authorization and HTTPRequest
only when the others do not say)."""

REPLAY = (
    PEAK_HELPER
    + """
import io, json, sys, time, contextlib
from detectors.cli.main import main
path, out = sys.argv[1], sys.argv[2]
start = time.perf_counter()
summary = io.StringIO()
with contextlib.redirect_stdout(summary), contextlib.redirect_stderr(io.StringIO()):
    code = main(["replay", path, "--out", out, "--quiet", "--json"])
seconds = time.perf_counter() - start
peak = own_peak()
# Its reading worker's peak (ru_maxrss: at least what this process held when it started it).
worker = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
print(json.dumps({"code": code, "seconds": seconds, "peak": peak, "worker": worker,
                  "summary": json.loads(summary.getvalue())}))
"""
)

READING = """
import json, sys, time
from datetime import timedelta
from detectors.model.observation import RawRow
from detectors.normalize.rows import Normalizer, early_skip
from detectors.runs.replay import ReplayStats, read_observations, steps_first
from detectors.sources.arrival import Arrival
from detectors.sources.files import FileSource
from detectors.sources.spool import ObservationSpool
path = sys.argv[1]
cpu = time.process_time
start = cpu()
for item in FileSource(path, skip=early_skip):
    pass
reader = cpu() - start
start = cpu()
normalize = Normalizer().normalize
for item in FileSource(path, skip=early_skip):
    if type(item) is RawRow:
        normalize(item)
normalised = cpu() - start
start = cpu()
spool = ObservationSpool(order=steps_first(Arrival(window=timedelta(minutes=15))))
read_observations([path], ReplayStats(), spool)
read = cpu() - start
for _ in spool:
    pass
ordered = cpu() - start
spool.close()
print(json.dumps({"reader": reader, "normalised": normalised, "read": read, "ordered": ordered}))
"""
"""Where replay's reading goes, in CPU seconds: the reader alone (parsing, and recognising the
rows the normaliser skips), then with the normaliser, then replay's reading phase (counting,
keeping each observation), then with the observations put in order."""

FLOOR_CPU = """
import json, sys, time, orjson
start = time.process_time()
with open(sys.argv[1], "rb") as handle:
    for line in handle:
        if line.strip():
            orjson.loads(line)
print(json.dumps({"cpu": time.process_time() - start}))
"""

IMPORT = """
import json, sys, time
start = time.perf_counter()
import function_app
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "duckdb": "duckdb" in sys.modules}))
"""


def measure(code: str, *args: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def generate_month(path: Path) -> None:
    """About 1,100,000 rows for 30 days (see detectors/simulation)."""
    from detectors.simulation import OrgProfile, write_dataset

    profile = OrgProfile(
        seed=11,
        start=datetime(2026, 9, 1, tzinfo=UTC),
        days=30,
        developers=60,
        admins=6,
        pipelines=30,
        managed_identities=8,
        monitoring_scripts=4,
        sites=150,
        subscriptions=3,
    )
    written = write_dataset(profile, path, path.with_suffix(".labels.json"))
    print(f"generated {written:,} rows into {path} ({path.stat().st_size / 1e6:,.0f} MB)")


ACTIVE_SHARE = 26
"""Of 256: the share of (principal, day) pairs whose AzureActivity rows the `org` input keeps,
about one in ten."""


def generate_org(path: Path) -> None:
    """42 days of more than 1,500 principals, AzureActivity rows only, each principal active
    on about one day in ten (a simulator developer is active every working day)."""
    import orjson

    from detectors.simulation import OrgProfile
    from detectors.simulation.timeline import simulate

    profile = OrgProfile(
        seed=16,
        start=datetime(2026, 9, 1, tzinfo=UTC),
        days=42,
        developers=1520,
        admins=12,
        pipelines=24,
        managed_identities=12,
        monitoring_scripts=6,
        sites=150,
        subscriptions=3,
        learning_days=28,
    )
    kept = 0
    callers: set[str] = set()
    with path.open("wb") as out:
        batch: list[bytes] = []
        for row in simulate(profile):
            if row.get("Type") != "AzureActivity":
                continue
            key = f"{row['Caller']}|{row['TimeGenerated'][:10]}".encode()
            if hashlib.blake2b(key, digest_size=2).digest()[0] >= ACTIVE_SHARE:
                continue
            callers.add(row["Caller"])
            batch.append(orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE))
            if len(batch) >= 2_000:
                kept += len(batch)
                out.write(b"".join(batch))
                batch.clear()
        kept += len(batch)
        out.write(b"".join(batch))
    size = path.stat().st_size
    print(
        f"generated {kept:,} AzureActivity rows of {len(callers):,} callers into {path}"
        f" ({size / 1e6:,.0f} MB)"
    )


GENERATORS = {"month": generate_month, "org": generate_org}


def line(name: str, seconds: float, rows: int, size: int, peak: float | None, floor: float) -> str:
    memory = f"{peak / 2**20:7.0f} MiB" if peak is not None else " " * 11
    return (
        f"  {name:<26} {seconds:8.2f} s {rows / seconds:>10,.0f} rows/s "
        f"{size / seconds / 1e6:7.1f} MB/s {memory}  {floor / seconds:5.0%} of the floor"
    )


def report(name: str, path: Path, tmp: str) -> None:
    size = path.stat().st_size
    floor = measure(FLOOR, str(path))
    rows = floor["rows"]
    try:
        import duckdb  # noqa: F401 - only to know whether the reference can run
    except ImportError:
        columnar = None
    else:
        columnar = measure(COLUMNAR, str(path), READ_COLUMNS)
    replay = measure(REPLAY, str(path), os.path.join(tmp, f"alerts-{name}.jsonl"))
    reading = measure(READING, str(path))
    floor_cpu = measure(FLOOR_CPU, str(path))["cpu"]
    summary = replay["summary"]
    phases = summary["seconds"]
    observations = summary["observations"]
    print(
        f"{name}: {rows:,} rows, {size / 1e6:,.1f} MB ({size / max(rows, 1):,.0f} bytes/row);"
        f" {observations:,} observations, {summary['principals']:,} principals,"
        f" {summary['windows']:,} windows, {summary['alerts']:,} alerts (exit {replay['code']})"
    )
    base = floor["seconds"]
    print(line("parse-only floor", base, rows, size, floor["peak"], base))
    if columnar is not None:
        scan = columnar["seconds"]
        print(line("columnar scan (DuckDB)", scan, rows, size, columnar["peak"], base))
    print(line("replay, end to end", replay["seconds"], rows, size, replay["peak"], base))
    if replay.get("worker"):
        print(f"    its reading worker's peak: {replay['worker'] / 2**20:,.0f} MiB")
    print(line("  reading", phases["reading"], rows, size, None, base))
    scoring = phases["scoring"]
    learning = phases["learning"]
    print(f"  {'  scoring (with ordering)':<26} {scoring:8.2f} s")
    print(f"  {'    of which learning':<26} {learning:8.2f} s")
    print(
        f"  reading, CPU seconds: parse-only floor {floor_cpu:.2f}, reader"
        f" {reading['reader']:.2f} (+{reading['reader'] - floor_cpu:.2f}), normaliser"
        f" +{reading['normalised'] - reading['reader']:.2f}, replay's counting and keeping"
        f" +{reading['read'] - reading['normalised']:.2f}; ordering"
        f" +{reading['ordered'] - reading['read']:.2f}"
    )
    per = scoring / max(observations, 1) * 1e6
    print(
        f"  engine: {per:,.1f} µs per observation ({learning / max(observations, 1) * 1e6:,.1f}"
        f" µs of it learning); replay at {base / replay['seconds']:.0%} of the floor"
        " (target: at least 60%)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", default="month,org", help="month, org or both (default)")
    parser.add_argument("--keep", type=Path, help="keep (and reuse) the generated inputs here")
    parser.add_argument("--file", type=Path, help="measure this NDJSON export instead")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="detector-bench-") as tmp:
        if args.file is not None:
            report(args.file.name, args.file, tmp)
        else:
            folder = args.keep or Path(tmp)
            folder.mkdir(parents=True, exist_ok=True)
            for name in args.inputs.split(","):
                path = folder / f"{name}.jsonl"
                if not path.exists():
                    GENERATORS[name](path)
                report(name, path, tmp)
    timings = [measure(IMPORT) for _ in range(5)]
    best = min(t["seconds"] for t in timings)
    imported = any(t["duckdb"] for t in timings)
    print(
        f"import function_app: {best:.3f} s (best of 5; target under 0.4 s);"
        f" DuckDB {'imported' if imported else 'not imported'}"
    )


if __name__ == "__main__":
    main()
