"""Randomly damaged rows never crash a replay: each is used, skipped or rejected with a reason."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

from detectors.model.observation import Observation, RawRow, RejectedRow
from detectors.normalize.rows import Normalizer, Skipped
from detectors.sources.files import FileSource

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "contoso-sample.jsonl.gz"

_VALUES = [
    None,
    "",
    " ",
    0,
    -1,
    2**63,
    1.5e308,
    True,
    [],
    {},
    [1, 2],
    {"a": {"b": [None]}},
    "x" * 100_000,
    "\x00\x01\x1b[2J",
    "\u202e\u2028\ufeff",
    "💥" * 50,
    "null",
    "{not json",
    "2026-13-45T99:99:99Z",
    "/subscriptions//resourcegroups//providers/microsoft.web/sites/",
]


def _sample_rows(count: int) -> list[dict]:
    rows = []
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as handle:
        for line in handle:
            rows.append(json.loads(line))
            if len(rows) == count:
                break
    return rows


def _damage(row: dict, rng: random.Random) -> dict:
    damaged = dict(row)
    for _ in range(rng.randint(1, 3)):
        key = rng.choice(sorted(damaged))
        action = rng.random()
        if action < 0.3:
            del damaged[key]
        elif action < 0.8:
            damaged[key] = rng.choice(_VALUES)
        elif isinstance(damaged[key], str):
            text = damaged[key]
            damaged[key] = text[: rng.randint(0, len(text))]
    return damaged


def test_damaged_rows_are_each_used_skipped_or_rejected_never_a_crash(tmp_path):
    rng = random.Random(20261125)
    path = tmp_path / "damaged.jsonl"
    rows = [_damage(row, rng) for row in _sample_rows(3000)]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    normalizer = Normalizer()
    outcomes = {"used": 0, "skipped": 0, "rejected": 0}
    for item in FileSource(path):
        result = normalizer.normalize(item) if isinstance(item, RawRow) else item
        if isinstance(result, Observation):
            outcomes["used"] += 1
        elif isinstance(result, Skipped):
            outcomes["skipped"] += 1
        else:
            assert isinstance(result, RejectedRow)
            assert result.reason
            outcomes["rejected"] += 1
    assert sum(outcomes.values()) == len(rows)
    assert all(outcomes.values()), outcomes


def test_a_file_of_damaged_lines_is_read_to_the_end(tmp_path):
    rng = random.Random(7)
    lines = []
    for row in _sample_rows(2000):
        text = json.dumps(_damage(row, rng), ensure_ascii=rng.random() < 0.5)
        if rng.random() < 0.05:
            text = text[: rng.randint(0, len(text))]  # a cut line
        if rng.random() < 0.02:
            text = text.encode("utf-8")[:-1].decode("utf-8", "ignore") + "\udcff"
        lines.append(text)
    path = tmp_path / "damaged.jsonl"
    path.write_bytes("\n".join(lines).encode("utf-8", "surrogateescape") + b"\n")
    items = list(FileSource(path))
    assert len(items) == sum(1 for line in lines if line.strip())  # blank lines are skipped
    assert any(isinstance(i, RejectedRow) for i in items)
    assert any(isinstance(i, RawRow) for i in items)
