"""Labels of the injected scenarios, and datasets on disk: NDJSON rows plus a labels document."""

from __future__ import annotations

import gc
import gzip
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from detectors.model.errors import InputError
from detectors.simulation.attacks import inject
from detectors.simulation.clock import TimestampText, from_ticks, to_ticks
from detectors.simulation.organisation import build_organisation
from detectors.simulation.profile import (
    ATTACK_DETECTIONS,
    DEFAULT_SHAPE,
    OrgProfile,
    ScenarioLabel,
)
from detectors.simulation.rows import RowRenderer, row_event_id
from detectors.simulation.timeline import simulate

_FLUSH_ROWS = 2_000


def labels(profile: OrgProfile) -> list[ScenarioLabel]:
    """The scenarios simulate() injects for this profile, in order of their first row."""
    org = build_organisation(profile)
    render = RowRenderer(workspace_id=org.workspace_id)
    result = []
    for number, injection in enumerate(inject(org, profile), start=1):
        rows = [render(entry[3], entry[4]) for entry in injection.pending]
        sites: list[str] = []
        for entry in injection.pending:
            if entry[3].site.key not in sites:
                sites.append(entry[3].site.key)
        identity = injection.identity
        result.append(
            ScenarioLabel(
                id=f"scenario-{number:02d}-{injection.kind}",
                kind=injection.kind,
                detections=ATTACK_DETECTIONS[injection.kind],
                principal_id=identity.object_id,
                principal_name=identity.upn or identity.display_name,
                sites=tuple(sites),
                start=from_ticks(injection.pending[0][0]),
                end=from_ticks(injection.pending[-1][0], round_up=True),
                event_ids=tuple(row_event_id(row) for row in rows),
                description=injection.description,
            )
        )
    return result


def write_dataset(
    profile: OrgProfile,
    rows_path: Path,
    labels_path: Path,
    progress: Callable[[float, int], None] | None = None,
) -> int:
    """Writes the rows as NDJSON (gzip when the name ends .gz) and the labels; returns rows.

    `progress` hears, now and then, how many of the profile's days are written (a fraction)
    and the rows so far."""
    with ExitStack() as stack:
        raw = stack.enter_context(rows_path.open("wb"))
        write: Callable[[bytes], int] = raw.write
        if rows_path.name.endswith(".gz"):
            # No name and mtime 0 in the header: the same profile gives the same bytes.
            packed = stack.enter_context(
                gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9)
            )
            write = packed.write
        count = _write_rows(profile, write, progress)
    document = labels_document(profile, labels(profile), rows=count)
    labels_path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n")
    return count


def _write_rows(
    profile: OrgProfile,
    write: Callable[[bytes], int],
    progress: Callable[[float, int], None] | None = None,
) -> int:
    count = 0
    chunk: list[bytes] = []
    dumps, newline = orjson.dumps, orjson.OPT_APPEND_NEWLINE
    with _collector_paused():
        for row in simulate(profile):
            chunk.append(dumps(row, option=newline))
            if len(chunk) >= _FLUSH_ROWS:
                write(b"".join(chunk))
                count += len(chunk)
                chunk.clear()
                if progress is not None:
                    progress(_days_written(profile, row), count)
        if chunk:
            write(b"".join(chunk))
            count += len(chunk)
    return count


def _days_written(profile: OrgProfile, row: dict[str, Any]) -> float:
    """How far into the profile's days a row is (rows come in time order)."""
    try:
        moment = datetime.fromisoformat(str(row.get("TimeGenerated")).replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    return max((moment - profile.start).total_seconds() / 86400, 0.0)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pauses the cyclic garbage collector, restoring its state after.

    The simulation allocates millions of small acyclic objects while holding about two days
    of them; the collector's repeated scans of those cost a third of the run and free nothing.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def labels_document(
    profile: OrgProfile, scenarios: list[ScenarioLabel], *, rows: int
) -> dict[str, Any]:
    """The labels file's JSON document: the profile, the row count and every scenario."""
    text = TimestampText()
    stored: dict[str, Any] = {
        "seed": profile.seed,
        "start": profile.start.isoformat().replace("+00:00", "Z"),
        "days": profile.days,
        "developers": profile.developers,
        "admins": profile.admins,
        "pipelines": profile.pipelines,
        "managed_identities": profile.managed_identities,
        "monitoring_scripts": profile.monitoring_scripts,
        "sites": profile.sites,
        "subscriptions": profile.subscriptions,
        "onboarding": profile.onboarding,
        "attacks": list(profile.attacks),
        "learning_days": profile.learning_days,
    }
    if profile.shape != DEFAULT_SHAPE:
        # Only other shapes name theirs: the default shape's labels stay as they were.
        stored["shape"] = profile.shape
    return {
        "profile": stored,
        "rows": rows,
        "scenarios": [
            {
                "id": label.id,
                "kind": label.kind,
                "detections": list(label.detections),
                "principal_id": label.principal_id,
                "principal_name": label.principal_name,
                "sites": list(label.sites),
                "start": text(to_ticks(label.start)),
                "end": text(to_ticks(label.end)),
                "event_ids": list(label.event_ids),
                "description": label.description,
            }
            for label in scenarios
        ],
    }


def read_labels(path: Path) -> list[ScenarioLabel]:
    """The scenarios of a labels file written by write_dataset()."""
    try:
        document = orjson.loads(path.read_bytes())
        return [
            ScenarioLabel(
                id=item["id"],
                kind=item["kind"],
                detections=tuple(item["detections"]),
                principal_id=item["principal_id"],
                principal_name=item["principal_name"],
                sites=tuple(item["sites"]),
                start=_parse(item["start"]),
                end=_parse(item["end"]),
                event_ids=tuple(item["event_ids"]),
                description=item["description"],
            )
            for item in document["scenarios"]
        ]
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise InputError(f"{path}: not a simulation labels file ({err})") from err


def read_profile(path: Path) -> OrgProfile:
    """The profile a labels file was generated from, to regenerate or extend it."""
    try:
        stored = orjson.loads(path.read_bytes())["profile"]
        fields = {name: value for name, value in stored.items() if name not in ("start", "attacks")}
        return OrgProfile(start=_parse(stored["start"]), attacks=tuple(stored["attacks"]), **fields)
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise InputError(f"{path}: no simulation profile in it ({err})") from err


def _parse(text: str) -> datetime:
    # Seven fractional digits are one more than datetime takes.
    return datetime.fromisoformat(text.removesuffix("Z")[:26] + "+00:00")
