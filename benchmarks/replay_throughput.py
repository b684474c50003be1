"""Replay throughput and peak memory against the parse-only floor.

Generates (or reuses) a large NDJSON export with the simulator, then measures in separate
processes, so each peak-memory figure is its own:

1. the floor: read every line and parse it with orjson (the fastest parser the project uses);
2. `detector replay` over the same file, end to end, alerts written to a file.

Prints rows/s, MB/s and peak RSS for both, and replay's speed as a share of the floor.

    .venv/bin/python benchmarks/replay_throughput.py [--rows 1000000] [--file PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

FLOOR = """
import json, resource, sys, time, orjson
path = sys.argv[1]
start = time.perf_counter()
rows = 0
with open(path, "rb") as handle:
    for line in handle:
        if line.strip():
            orjson.loads(line)
            rows += 1
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"rows": rows, "seconds": seconds, "peak": peak}))
"""

REPLAY = """
import io, json, resource, sys, time, contextlib
from detectors.cli.main import main
path, out = sys.argv[1], sys.argv[2]
start = time.perf_counter()
summary = io.StringIO()
with contextlib.redirect_stderr(summary):
    code = main(["replay", path, "--out", out, "--quiet"])
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"code": code, "seconds": seconds, "peak": peak, "summary": summary.getvalue()}))
"""


def measure(code: str, *args: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def generate(path: Path, rows: int) -> None:
    from detectors.simulation import OrgProfile, write_dataset

    # About 1,000,000 rows for 30 days of this organisation (see detectors/simulation).
    scale = max(rows / 1_000_000, 0.05)
    profile = OrgProfile(
        seed=11,
        start=datetime(2026, 9, 1, tzinfo=UTC),
        days=30,
        developers=max(2, round(60 * scale)),
        admins=max(1, round(6 * scale)),
        pipelines=max(1, round(30 * scale)),
        managed_identities=max(1, round(8 * scale)),
        monitoring_scripts=max(1, round(4 * scale)),
        sites=max(4, round(150 * scale)),
        subscriptions=3,
    )
    written = write_dataset(profile, path, path.with_suffix(".labels.json"))
    print(f"generated {written:,} rows into {path} ({path.stat().st_size / 1e6:,.0f} MB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows to generate")
    parser.add_argument("--file", type=Path, help="reuse this NDJSON export instead")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="detector-bench-") as tmp:
        path = args.file or Path(tmp) / "export.jsonl"
        if args.file is None:
            generate(path, args.rows)
        size = path.stat().st_size
        floor = measure(FLOOR, str(path))
        replay = measure(REPLAY, str(path), os.path.join(tmp, "alerts.jsonl"))
        rows = floor["rows"]
        print(f"input: {rows:,} rows, {size / 1e6:,.1f} MB ({size / max(rows, 1):,.0f} bytes/row)")
        for name, m in (("parse-only floor", floor), ("replay", replay)):
            print(
                f"{name:>17}: {m['seconds']:8.2f} s  {rows / m['seconds']:>10,.0f} rows/s  "
                f"{size / m['seconds'] / 1e6:8.1f} MB/s  peak RSS {m['peak'] / 2**20:7.1f} MiB"
            )
        share = floor["seconds"] / replay["seconds"]
        print(f"replay runs at {share:.0%} of the parse-only floor (target: at least 60%)")
        print(f"replay exit code {replay['code']}; its summary:")
        print("  " + replay["summary"].strip().replace("\n", "\n  "))


if __name__ == "__main__":
    main()
