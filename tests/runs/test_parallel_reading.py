"""A large NDJSON export is read in parts, one per core: nothing it reads or reports changes.

Replay cuts such a file at line ends; this process reads the first part while worker
processes read the others into sorted runs, which the spool merges. The observations, their
order, every count, every rejection and its line are what one reader gives.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from detectors.engine.scoring import Engine
from detectors.model.errors import InputError
from detectors.normalize.rows import early_skip
from detectors.runs import replay as replay_module
from detectors.runs.replay import ReplayStats, read_observations, replay, steps_first
from detectors.runs.step import WindowStep
from detectors.settings.detection import DetectionSettings
from detectors.sources.arrival import Arrival
from detectors.sources.files import FileSource
from detectors.sources.spool import ObservationSpool
from detectors.stores.sqlite import SqliteStore
from detectors.stores.write_behind import WriteBehindStore

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "contoso-sample.jsonl.gz"
WINDOW = timedelta(minutes=15)


def _sample_with_damage(path: Path) -> Path:
    """The bundled sample as NDJSON, with damaged lines spread through it (so some fall at or
    near any cut): broken JSON, invalid UTF-8, a line over the row limit, blank lines, a
    value of the wrong type, and a BOM before the first line."""
    lines = gzip.decompress(SAMPLE.read_bytes()).splitlines()
    damage = [
        b'{"TimeGenerated": "2026-10-20T10:00:00Z", "Caller": ',
        b"\xff\xfe not text",
        b'{"Type": "AzureActivity", "Caller": "' + b"x" * 3_000 + b'"}',
        b"",
        b"   ",
        b'{"Type": "AzureActivity", "OperationNameValue": ["a", "list"]}',
        b"[1, 2, 3]",
    ]
    out: list[bytes] = []
    step = len(lines) // 41
    for n, line in enumerate(lines):
        if n % step == 0:
            out.append(damage[(n // step) % len(damage)])
        out.append(line)
    path.write_bytes(b"\xef\xbb\xbf" + b"\n".join(out) + b"\n")
    return path


@pytest.fixture(autouse=True)
def may_fork(monkeypatch: pytest.MonkeyPatch) -> None:
    """Replay forks its reading worker only from a process running no other thread; the test
    run has some (the services' fixtures), so the tests here allow the fork."""
    monkeypatch.setattr(replay_module, "_can_fork", lambda: True)


def test_a_process_running_other_threads_reads_in_one_process(monkeypatch):
    """A fork copies only the calling thread, and the locks the others hold: with another
    thread running, replay does not fork (the autouse fixture is undone here)."""
    monkeypatch.undo()
    done = threading.Event()
    other = threading.Thread(target=done.wait)
    other.start()
    try:
        assert not replay_module._can_fork()
    finally:
        done.set()
        other.join()


@pytest.fixture(scope="module")
def damaged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _sample_with_damage(tmp_path_factory.mktemp("parts") / "sample.jsonl")


def _read(
    path: Path, workers: int, directory: Path | None = None, memory_limit: int = 5_000
) -> tuple[ReplayStats, list[Any], int]:
    """What reading gives: counts, keyed observations in order, and the spool's runs."""
    stats = ReplayStats()
    arrival = Arrival(window=WINDOW)
    spool = ObservationSpool(
        order=steps_first(arrival),
        memory_limit=memory_limit,
        directory=str(directory) if directory else None,
    )
    try:
        read_observations(
            [str(path)], stats, spool, arrival=arrival, workers=workers, split_bytes=0
        )
        return stats, list(spool.ordered()), spool.spilled_runs
    finally:
        spool.close()


@pytest.mark.parametrize("count", [2, 3, 5])
def test_parts_cut_at_line_ends_and_read_together_as_the_whole_file(damaged, count):
    source = FileSource(damaged, max_row_bytes=2_048, skip=early_skip)
    parts = source.parts(count)
    assert parts is not None
    assert len(parts) == count
    data = damaged.read_bytes()
    assert parts[0][0] == 0
    assert parts[-1][1] == len(data)
    assert all(data[start - 1 : start] == b"\n" for start, _ in parts[1:])
    whole = list(FileSource(damaged, max_row_bytes=2_048, skip=early_skip))
    assert [row for start, end in parts for row in source.read_part(start, end)] == whole
    assert any(getattr(row, "reason", "").startswith("row is") for row in whole)  # over limit


@pytest.mark.parametrize("memory_limit", [1_000_000, 5_000], ids=["in memory", "spilling"])
def test_two_readers_give_the_same_observations_counts_and_rejected_lines(damaged, memory_limit):
    one, read_once, runs_once = _read(damaged, 1, memory_limit=memory_limit)
    two, read_apart, runs_apart = _read(damaged, 2, memory_limit=memory_limit)
    if memory_limit > len(read_once):
        # Read in one process, nothing spilled; in two, the worker's part came as a run.
        assert (runs_once, runs_apart) == (0, 1)
    assert one.rejected >= 30  # the damage was found
    assert read_apart == read_once
    assert dataclasses.asdict(two) == dataclasses.asdict(one)


def test_replay_reading_in_parts_sends_the_same_alerts_and_report(damaged):
    def run(workers: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        sent: list[dict[str, Any]] = []
        stats = replay(
            [str(damaged)],
            step=WindowStep(Engine(settings=DetectionSettings()), WriteBehindStore(SqliteStore())),
            sink=sent.append,
            window=WINDOW,
            learning_days=14,
            read_workers=workers,
            split_bytes=0,
        )
        report = dataclasses.asdict(stats)
        for timing in ("reading_seconds", "scoring_seconds", "learning_seconds"):
            report.pop(timing)
        return sent, report

    alone, alone_report = run(1)
    apart, apart_report = run(2)
    assert len(alone) >= 10
    assert apart == alone
    assert apart_report == alone_report


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b'[{"a": 1},\n{"a": 2}]\n', id="JSON array"),
        pytest.param(b'{"records": [{"a": 1}]}\n', id="records envelope"),
        pytest.param(b'{\n  "a": 1\n}\n{\n  "a": 2\n}\n', id="pretty-printed objects"),
        pytest.param(b"Type,Caller\nAzureActivity,a@b.c\n", id="CSV"),
        pytest.param(gzip.compress(b'{"a": 1}\n{"a": 2}\n' * 50), id="gzip NDJSON"),
        pytest.param(b'{"a": 1}\n', id="one line"),
    ],
)
def test_only_uncompressed_ndjson_with_a_line_per_part_is_read_in_parts(tmp_path, content):
    path = tmp_path / "export.json"
    path.write_bytes(content)
    assert FileSource(path).parts(2) is None


def test_a_file_that_shrinks_before_its_last_part_is_read_is_an_input_error_and_leaves_no_run(
    tmp_path, monkeypatch
):
    """Three parts: the worker of the last finds it cut short. The error names the file, as
    one reader's would, and the run the other worker saved is deleted with the rest."""
    rows = [
        orjson.dumps(json.loads(line))
        for line in gzip.decompress(SAMPLE.read_bytes()).splitlines()[:4_000]
    ]
    path = tmp_path / "export.jsonl"
    path.write_bytes(b"\n".join(rows) + b"\n")
    real_parts = FileSource.parts

    def parts_then_shrink(self: FileSource, count: int) -> list[tuple[int, int]] | None:
        found = real_parts(self, count)
        os.truncate(path, path.stat().st_size - 10_000)
        return found

    monkeypatch.setattr(FileSource, "parts", parts_then_shrink)
    runs = tmp_path / "runs"
    runs.mkdir()
    with pytest.raises(InputError, match="shrank while it was read"):
        _read(path, 3, runs, memory_limit=1_000_000)
    assert not list(runs.iterdir())


def test_rows_with_the_same_key_in_both_parts_keep_the_order_of_the_file(tmp_path):
    """An action whose row appears twice with the same id and time, once in each part, the
    second from another address (a digest or id collision): read in parts, the first part's
    comes first, as one reader takes them, so the same one is counted."""
    lines = gzip.decompress(SAMPLE.read_bytes()).splitlines()
    rows = [json.loads(line) for line in lines]
    first = next(
        row
        for row in rows
        if row.get("Type") == "AzureActivity"
        and row.get("ActivityStatusValue") == "Success"
        and "PUBLISHXML" in str(row.get("OperationNameValue", "")).upper()
    )
    again = {**first, "CallerIpAddress": "198.51.100.250"}
    path = tmp_path / "export.jsonl"
    path.write_bytes(b"\n".join([*lines, orjson.dumps(again)]) + b"\n")
    _, read_once, _ = _read(path, 1, memory_limit=1_000_000)
    _, read_apart, runs = _read(path, 2, memory_limit=1_000_000)
    assert runs == 1
    ips = [obs.source_ip for _, obs in read_apart if obs.event_id == str(first["EventDataId"])]
    assert ips[-1] == "198.51.100.250", ips
    assert read_apart == read_once
