"""Baselines and run state in Azure Table Storage (Azurite locally).

Entity layout (docs/storage.md shows an operator how to read it in Storage Explorer):

- Baselines, one entity per principal. `RowKey` is the principal id made legal as a key
  (`encode_key`), `PrincipalId` the raw id, and the other properties are the codec's plain
  named properties. `PartitionKey` is the first hex digit of the id's SHA-256
  (`partition_key`), so there are 16 partitions, fixed forever:

  * a key must be computable from the id alone (`load` has nothing else), which rules out
    the principal type;
  * writes are batched in transactions of up to 100 entities per partition, so a run that
    saves N baselines sends about min(16, N) + N/100 transactions, not N writes;
  * reads batch up to 14 RowKeys per query (with the PartitionKey that makes the service's
    limit of 15 comparisons per filter); such an OR filter scans its partition, and 16
    partitions keep each scan to a sixteenth of the table;
  * writes spread over 16 partitions have 16 times one partition's throughput for
    backfills.
- Values longer than one property holds (32,000 UTF-16 units here; the service's limit is
  64 KiB of UTF-16) continue in `<Name>_2`, `<Name>_3`, ...: each part of a JSON object is
  itself a JSON object of whole entries, so every part still reads and edits as JSON.
- An entity over ~1 MB (the service takes 1 MiB) has the oldest values of its largest
  dimensions dropped until it fits (`fitted_entity`), with a warning; with the default
  settings (256 values per dimension, ids of at most a few thousand characters) that
  cannot happen.
- State documents, one entity each in the state table: `PartitionKey` "state", `RowKey` the
  encoded name, the JSON text in `Part000`, `Part001`, ... and their count in `Parts`; a
  document too large for one entity so is compressed (`Encoding` "zlib+base64").
  Feedback records of emitted alerts are state documents in partition "alerts".
- Allow rules (when the store is given an allow table), one entity each: `PartitionKey`
  "rule", `RowKey` the rule id, and the rule's plain properties (`AllowRule.properties`).
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import json
import logging
import re
import zlib
from collections import defaultdict
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from typing import Any, Self

import orjson
from azure.core import MatchConditions
from azure.core.credentials import TokenCredential
from azure.core.exceptions import AzureError, HttpResponseError, ResourceNotFoundError
from azure.data.tables import (
    EdmType,
    EntityProperty,
    TableClient,
    TableServiceClient,
    TableTransactionError,
    UpdateMode,
)

from detectors.alerts.allow import AllowRule, with_hits
from detectors.baselines.baseline import DIMENSIONS, PrincipalBaseline
from detectors.baselines.codec import from_properties, to_properties
from detectors.clients.connections import credential
from detectors.clients.sign_in import sign_in_problem
from detectors.clients.tables import (
    delete_older,
    encode_key,
    error_code,
    service_from_connection_string,
    utf16_units,
)
from detectors.model.errors import (
    ConfigurationError,
    ConflictError,
    SignInFailed,
    StoreError,
    one_line,
)
from detectors.settings.app import StorageSettings
from detectors.stores import StoredBaseline, StoredRule

log = logging.getLogger(__name__)

STATE_PARTITION = "state"
OUTBOX_PARTITION = "outbox"
"""Alerts the timer scored but has not yet put on the queue, one entity per alert id."""
ALERT_RECORD_PARTITION = "alerts"
"""What feedback needs of each emitted alert, one entity per alert id."""
RULE_PARTITION = "rule"
"""The allow table's one partition: operators' rules are few."""
_HIT_ATTEMPTS = 5
MAX_PROPERTY_UNITS = 32_000
"""Longest string property written, in UTF-16 code units (the service allows 32,767)."""
ENTITY_BUDGET = 1_000_000
"""Largest entity written, in bytes as the service counts them (its limit is 1 MiB)."""
MAX_TRANSACTION = 100
"""Operations per transaction: the service's limit (Azurite breaks above it)."""
TRANSACTION_BUDGET = 3_500_000
"""Request bytes per transaction (the service's limit is 4 MiB)."""
KEYS_PER_QUERY = 14
"""RowKeys per query: with the PartitionKey, the service's 15 comparisons per filter."""

_CONTINUATION = re.compile(r"^(?P<name>[A-Za-z][A-Za-z0-9]*)_(?P<part>[0-9]+)$")
_CONFLICT_CODES = frozenset(
    {"UpdateConditionNotSatisfied", "ConditionNotMet", "EntityAlreadyExists", "ResourceNotFound"}
)
_INT32 = range(-(2**31), 2**31)
_STATE_FORMAT = 1
_PACKED = "zlib+base64"
"""`Encoding` of a state whose JSON did not fit one entity: compressed, then Base64."""


def partition_key(principal_id: str) -> str:
    """The partition of a principal: the first hex digit of the SHA-256 of its id.

    Part of the stored format: changing it would orphan every stored baseline.
    """
    return hashlib.sha256(principal_id.encode("utf-8", "surrogatepass")).hexdigest()[0]


def entity_size(entity: Mapping[str, Any]) -> int:
    """An entity's size in bytes by the service's formula (UTF-16 strings, 8 bytes a property)."""
    size = 4
    for name, value in entity.items():
        if name in ("PartitionKey", "RowKey"):
            size += 2 * utf16_units(str(value))
            continue
        size += 8 + 2 * len(name)
        raw = value.value if isinstance(value, EntityProperty) else value
        if isinstance(raw, str):
            size += 4 + 2 * utf16_units(raw)
        elif isinstance(raw, bool):
            size += 1
        else:
            size += 8
    return size


def _split_text(text: str, limit: int) -> list[str]:
    """Text in pieces of at most `limit` UTF-16 units, never splitting a character."""
    pieces: list[str] = []
    start = units = 0
    for index, char in enumerate(text):
        width = 2 if ord(char) > 0xFFFF else 1
        if units + width > limit:
            pieces.append(text[start:index])
            start, units = index, 0
        units += width
    pieces.append(text[start:])
    return pieces


def _split_object(name: str, text: str) -> list[str]:
    """A long JSON object as several JSON objects of whole entries, each short enough."""
    entries = orjson.loads(text)
    if not isinstance(entries, dict):
        raise StoreError(f"property {name} is {utf16_units(text):,} characters, too long to store")
    parts: list[str] = []
    current: list[str] = []
    units = 2
    for key, value in entries.items():
        entry = orjson.dumps({key: value}).decode()[1:-1]
        width = utf16_units(entry) + 1
        if width + 2 > MAX_PROPERTY_UNITS:
            raise StoreError(f"a value of property {name} is too long to store: {key[:80]!r}")
        if current and units + width > MAX_PROPERTY_UNITS:
            parts.append("{" + ",".join(current) + "}")
            current, units = [], 2
        current.append(entry)
        units += width
    parts.append("{" + ",".join(current) + "}")
    return parts


def _to_stored(props: Mapping[str, Any]) -> dict[str, Any]:
    """Codec properties as table properties: long JSON split, big integers as Int64."""
    stored: dict[str, Any] = {}
    for name, value in props.items():
        if isinstance(value, str) and utf16_units(value) > MAX_PROPERTY_UNITS:
            for number, part in enumerate(_split_object(name, value), start=1):
                stored[name if number == 1 else f"{name}_{number}"] = part
        elif isinstance(value, int) and not isinstance(value, bool) and value not in _INT32:
            stored[name] = EntityProperty(value, EdmType.INT64)
        else:
            stored[name] = value
    return stored


def _from_stored(entity: Mapping[str, Any]) -> dict[str, Any]:
    """Table properties as codec properties: continuations merged, typed values unwrapped."""
    props: dict[str, Any] = {}
    continued: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for name, value in entity.items():
        if name in ("PartitionKey", "RowKey"):
            continue
        raw = value.value if isinstance(value, EntityProperty) else value
        match = _CONTINUATION.match(name)
        if match and isinstance(raw, str):
            continued[match["name"]].append((int(match["part"]), raw))
        else:
            props[name] = raw
    for name, parts in continued.items():
        head = props.get(name)
        if not isinstance(head, str):
            props.update({f"{name}_{n}": text for n, text in parts})
            continue
        merged: dict[str, Any] = {}
        try:
            for text in [head, *(text for _, text in sorted(parts))]:
                merged.update(orjson.loads(text))
        except (orjson.JSONDecodeError, TypeError, ValueError) as err:
            who = entity.get("PrincipalId", "?")
            raise StoreError(f"baseline of {who!r}: {name} parts are not JSON: {err}") from err
        props[name] = orjson.dumps(merged).decode()
    return props


def baseline_entity(baseline: PrincipalBaseline) -> dict[str, Any]:
    """The entity a baseline is stored as, however large (`fitted_entity` trims it)."""
    return {
        "PartitionKey": partition_key(baseline.principal_id),
        "RowKey": encode_key(baseline.principal_id),
        **_to_stored(to_properties(baseline)),
    }


def fitted_entity(baseline: PrincipalBaseline) -> tuple[dict[str, Any], int]:
    """The entity a baseline is stored as, trimmed to fit, and how many values were dropped.

    While the entity is over `ENTITY_BUDGET`, the oldest value (earliest last-seen day, then
    lowest value) of the dimension taking the most space is dropped: deterministic, and it
    keeps what the detections need most (recent values, and the small dimensions whole).
    """
    entity = baseline_entity(baseline)
    excess = entity_size(entity) - ENTITY_BUDGET
    if excess <= 0:
        return entity, 0
    kept = {name: dict(getattr(baseline, name)) for name in DIMENSIONS}
    oldest = {name: sorted((d, v) for v, d in values.items()) for name, values in kept.items()}
    cost = {  # bytes of `"value":"YYYY-MM-DD",` in UTF-16
        name: {v: 2 * (utf16_units(orjson.dumps({v: "2000-01-01"}).decode()) - 1) for v in values}
        for name, values in kept.items()
    }
    largest = [(-sum(cost[name].values()), name) for name in DIMENSIONS]
    heapq.heapify(largest)
    dropped = 0
    while excess > 0 and largest:
        # A margin per round covers property names and part boundaries the estimate misses.
        while excess > -1024 and largest:
            size, name = heapq.heappop(largest)
            _, value = oldest[name].pop(0)
            del kept[name][value]
            excess -= cost[name][value]
            dropped += 1
            if kept[name]:
                heapq.heappush(largest, (size + cost[name][value], name))
        entity = baseline_entity(replace(baseline, **kept))  # type: ignore[arg-type]
        excess = entity_size(entity) - ENTITY_BUDGET
    if excess > 0:
        raise StoreError(
            f"baseline of {baseline.principal_id[:80]!r} does not fit one table entity even "
            "without its values"
        )
    return entity, dropped


def _state_entity(
    name: str, value: Mapping[str, Any], partition: str = STATE_PARTITION
) -> dict[str, Any]:
    """A state document as an entity: JSON text in numbered parts."""
    try:
        text = orjson.dumps(dict(value)).decode()
    except TypeError as err:
        raise StoreError(f"state {name!r} is not JSON: {err}") from err
    entity = _parts_entity(name, text, partition)
    if entity_size(entity) > ENTITY_BUDGET:
        # Readable JSON while it fits; a busy timer's state (bursts and chains repeat their
        # messages) compresses some tenfold.
        packed = base64.b64encode(zlib.compress(text.encode(), 6)).decode()
        entity = _parts_entity(name, packed, partition, encoding=_PACKED)
    size = entity_size(entity)
    if size > ENTITY_BUDGET:
        raise StoreError(
            f"state {name!r} is {size:,} bytes as a table entity; one entity holds at most "
            f"{ENTITY_BUDGET:,} (Table Storage's limit is 1 MiB)"
        )
    return entity


def _parts_entity(
    name: str, text: str, partition: str, *, encoding: str | None = None
) -> dict[str, Any]:
    parts = _split_text(text, MAX_PROPERTY_UNITS)
    entity: dict[str, Any] = {
        "PartitionKey": partition,
        "RowKey": encode_key(name),
        "Name": name,
        "FormatVersion": _STATE_FORMAT,
        "Parts": len(parts),
    }
    if encoding is not None:
        entity["Encoding"] = encoding
    entity.update({f"Part{n:03d}": part for n, part in enumerate(parts)})
    return entity


def _unpacked(text: str, encoding: Any) -> str:
    """A state's JSON text from its parts' text (see `_PACKED`); ValueError if unknown."""
    if encoding is None:
        return text
    if encoding != _PACKED:
        raise ValueError(f"unknown Encoding {encoding!r}")
    return zlib.decompress(base64.b64decode(text, validate=True)).decode()


def _state_value(name: str, entity: Mapping[str, Any]) -> dict[str, Any]:
    """The state document an entity holds."""
    try:
        count = int(_plain(entity["Parts"]))
        text = "".join(str(entity[f"Part{n:03d}"]) for n in range(count))
        value = orjson.loads(_unpacked(text, _plain(entity.get("Encoding"))))
    except (KeyError, ValueError, TypeError, zlib.error, orjson.JSONDecodeError) as err:
        raise StoreError(f"state {name!r} cannot be read: {type(err).__name__}: {err}") from err
    if not isinstance(value, dict):
        raise StoreError(f"state {name!r} is not a JSON object")
    return value


@contextmanager
def _lost_race(message: str, principals: tuple[str, ...] = ()) -> Iterator[None]:
    """A conditional write that lost to another writer (412, or 409 on create) as
    ConflictError with `message`; every other error passes through."""
    try:
        yield
    except HttpResponseError as err:
        if not _is_conflict(err):
            raise
        raise ConflictError(message, principals=principals) from err


def _if_unchanged(etag: str) -> dict[str, Any]:
    """The keyword arguments of an ETag-conditional write or delete."""
    return {"etag": etag, "match_condition": MatchConditions.IfNotModified}


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, EntityProperty) else value


def _is_conflict(err: HttpResponseError) -> bool:
    """A lost race: changed, created or deleted by another writer (not a missing table)."""
    code = error_code(err)
    return code in _CONFLICT_CODES if code else err.status_code in (409, 412)


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _rowkey_filter(partition: str, keys: Sequence[str]) -> str:
    def quoted(text: str) -> str:
        return "'" + text.replace("'", "''") + "'"

    ors = " or ".join(f"RowKey eq {quoted(key)}" for key in keys)
    return f"PartitionKey eq {quoted(partition)} and ({ors})"


class TableStore:
    """Baselines and state documents in two Azure tables, with ETag concurrency.

    Round trips: `load` of N principals sends one query per partition and 14 keys (about
    min(16, N) + N/14); `save` one transaction per partition and 100 entities, plus one
    more per lost race found. `get_state`/`put_state` take one each.
    """

    def __init__(
        self,
        *,
        connection_string: str | None = None,
        endpoint: str | None = None,
        credential: TokenCredential | None = None,
        baseline_table: str,
        state_table: str,
        allow_table: str | None = None,
        timeout_seconds: float = 10.0,
        retries: int = 2,
        create_tables: bool = True,
    ) -> None:
        """Connect with a connection string, or an endpoint and a token credential.

        `allow_table` names the table of allow rules (None: this store keeps none).

        `timeout_seconds` bounds connecting and each read; `retries` is how often a failed
        request is tried again (with a short back-off), so an outage fails in seconds.
        `create_tables` creates missing tables (one request each); without it a missing
        table shows as a StoreError on first use.
        """
        options: dict[str, Any] = {
            "connection_timeout": timeout_seconds,
            "read_timeout": timeout_seconds,
            "retry_total": retries,
            "retry_backoff_factor": 0.4,
            "retry_backoff_max": 4,
        }
        if connection_string and not (endpoint or credential):
            self._service = service_from_connection_string(connection_string, **options)
            where = "the connection string's table endpoint"
        elif endpoint and credential and not connection_string:
            self._service = TableServiceClient(endpoint=endpoint, credential=credential, **options)
            where = endpoint
        else:
            raise ConfigurationError(
                "TableStore needs either connection_string, or endpoint and credential"
            )
        self.baseline_table = baseline_table
        self.state_table = state_table
        self.allow_table = allow_table
        self._rules: TableClient | None = None
        if create_tables:
            self._baselines = self._create(baseline_table, where)
            self._state = self._create(state_table, where)
            if allow_table:
                self._rules = self._create(allow_table, where)
        else:
            self._baselines = self._service.get_table_client(baseline_table)
            self._state = self._service.get_table_client(state_table)
            if allow_table:
                self._rules = self._service.get_table_client(allow_table)

    @classmethod
    def from_settings(
        cls,
        storage: StorageSettings,
        *,
        baseline_table: str,
        state_table: str,
        allow_table: str | None = None,
        timeout_seconds: float = 10.0,
        retries: int = 2,
        create_tables: bool = True,
    ) -> Self:
        """A store for the app settings' storage: a connection string, or managed identity."""
        if storage.connection_string:
            return cls(
                connection_string=storage.connection_string,
                baseline_table=baseline_table,
                state_table=state_table,
                allow_table=allow_table,
                timeout_seconds=timeout_seconds,
                retries=retries,
                create_tables=create_tables,
            )
        if not storage.table_service_uri:
            raise ConfigurationError("storage settings name no table service")
        return cls(
            endpoint=storage.table_service_uri,
            credential=credential(storage.client_id),
            baseline_table=baseline_table,
            state_table=state_table,
            allow_table=allow_table,
            timeout_seconds=timeout_seconds,
            retries=retries,
            create_tables=create_tables,
        )

    def _create(self, name: str, where: str) -> TableClient:
        with self._errors(name, f"create table (at {where})"):
            return self._service.create_table_if_not_exists(name)

    @contextmanager
    def _errors(self, table: str, operation: str) -> Iterator[None]:
        """SDK and connection errors as one-line StoreErrors naming table and operation."""
        try:
            yield
        except AzureError as err:
            problem = sign_in_problem(err)
            if problem is not None:
                raise SignInFailed(problem) from err
            raise StoreError(f"table {table}: {operation} failed: {one_line(err)}") from err

    # Baselines.

    def load(self, principal_ids: Collection[str]) -> dict[str, StoredBaseline]:
        """The stored baselines of these principals (absent ones are left out)."""
        wanted: dict[str, dict[str, str]] = defaultdict(dict)
        for wanted_id in set(principal_ids):
            wanted[partition_key(wanted_id)][encode_key(wanted_id)] = wanted_id
        found: dict[str, StoredBaseline] = {}
        for partition, keys in sorted(wanted.items()):
            for chunk in _chunks(sorted(keys), KEYS_PER_QUERY):
                with self._errors(self.baseline_table, f"read {len(chunk)} baselines"):
                    entities = list(
                        self._baselines.query_entities(_rowkey_filter(partition, chunk))
                    )
                for entity in entities:
                    principal_id = keys.get(str(entity["RowKey"]))
                    if principal_id is None:
                        continue
                    baseline = from_properties(_from_stored(entity))
                    if baseline.principal_id != principal_id:
                        raise StoreError(
                            f"table {self.baseline_table}: entity {entity['RowKey'][:80]!r} "
                            f"holds the baseline of {baseline.principal_id[:80]!r}"
                        )
                    found[principal_id] = StoredBaseline(
                        baseline=baseline, etag=str(entity.metadata["etag"])
                    )
        return found

    def save(self, baselines: Sequence[StoredBaseline]) -> dict[str, str]:
        """Write baselines unchanged since read; returns their new etags.

        Each partition's baselines go in transactions of up to 100. A baseline another
        writer changed (or created, or deleted) is left out and the rest written:
        ConflictError then names the lost ones in `principals` and the written ones, with
        their new etags, in `written`.
        """
        batches: dict[str, list[tuple[StoredBaseline, dict[str, Any]]]] = defaultdict(list)
        seen: set[str] = set()
        for item in baselines:
            principal_id = item.baseline.principal_id
            if principal_id in seen:
                raise StoreError(f"save got the baseline of {principal_id[:80]!r} twice")
            seen.add(principal_id)
            entity, dropped = fitted_entity(item.baseline)
            if dropped:
                log.warning(
                    "baseline of %r is too large for one table entity: dropped its %d oldest "
                    "values",
                    principal_id[:80],
                    dropped,
                )
            batches[entity["PartitionKey"]].append((item, entity))
        written: dict[str, str] = {}
        lost: list[str] = []
        for _partition, items in sorted(batches.items()):
            for batch in _transactions(items):
                done, conflicts = self._write_batch(batch)
                written.update(done)
                lost.extend(conflicts)
        if lost:
            raise ConflictError(
                f"table {self.baseline_table}: {len(lost)} baselines changed by another writer "
                f"since read: {', '.join(repr(p[:80]) for p in lost[:10])}",
                principals=tuple(lost),
                written=written,
            )
        return written

    def _write_batch(
        self, batch: Sequence[tuple[StoredBaseline, dict[str, Any]]]
    ) -> tuple[dict[str, str], list[str]]:
        """One partition's transaction; a conflicting entity is dropped and the rest retried."""
        pending = list(batch)
        lost: list[str] = []
        while pending:
            operations = [_operation(item, entity) for item, entity in pending]
            with self._errors(self.baseline_table, f"write {len(pending)} baselines"):
                try:
                    results = self._baselines.submit_transaction(operations)
                except TableTransactionError as err:
                    if not _is_conflict(err):
                        raise
                    failed = err.index if 0 <= err.index < len(pending) else 0
                else:
                    return {
                        item.baseline.principal_id: str(result["etag"])
                        for (item, _), result in zip(pending, results, strict=True)
                    }, lost
            lost.append(pending.pop(failed)[0].baseline.principal_id)
            if len(lost) > 1 and pending:
                # Several lost races: likely a whole overlapping run. One read finds all the
                # stale ones, instead of one transaction per conflict.
                pending, stale = self._split_current(pending)
                lost.extend(stale)
        return {}, lost

    def _split_current(
        self, pending: list[tuple[StoredBaseline, dict[str, Any]]]
    ) -> tuple[list[tuple[StoredBaseline, dict[str, Any]]], list[str]]:
        """Those whose stored etag is still the one they were read with, and the others."""
        partition = pending[0][1]["PartitionKey"]
        etags: dict[str, str] = {}
        keys = [entity["RowKey"] for _, entity in pending]
        for chunk in _chunks(keys, KEYS_PER_QUERY):
            with self._errors(self.baseline_table, "check baselines' etags"):
                for entity in self._baselines.query_entities(
                    _rowkey_filter(partition, chunk), select=["RowKey"]
                ):
                    etags[str(entity["RowKey"])] = str(entity.metadata["etag"])
        current = [(i, e) for i, e in pending if etags.get(e["RowKey"]) == i.etag]
        stale = [i.baseline.principal_id for i, e in pending if etags.get(e["RowKey"]) != i.etag]
        return current, stale

    # State documents.

    def get_state(self, name: str) -> Mapping[str, Any] | None:
        """A named state document, or None."""
        return self.get_state_with_etag(name)[0]

    def get_state_with_etag(self, name: str) -> tuple[dict[str, Any] | None, str | None]:
        """A named state document and its etag for `put_state_if`; (None, None) if absent."""
        return self._read_document(STATE_PARTITION, name, f"read state {name!r}")

    def _read_document(
        self, partition: str, name: str, what: str
    ) -> tuple[dict[str, Any] | None, str | None]:
        """A JSON document of the state table and its etag; (None, None) if absent."""
        with self._errors(self.state_table, what):
            try:
                entity = self._state.get_entity(partition, encode_key(name))
            except ResourceNotFoundError as err:
                if error_code(err) == "TableNotFound":
                    raise
                return None, None
        return _state_value(name, entity), str(entity.metadata["etag"])

    def put_state(self, name: str, value: Mapping[str, Any]) -> None:
        """Replace a named state document, whoever wrote it last."""
        entity = _state_entity(name, value)
        with self._errors(self.state_table, f"write state {name!r}"):
            self._state.upsert_entity(entity, mode=UpdateMode.REPLACE)

    def put_state_if(self, name: str, value: Mapping[str, Any], etag: str | None) -> str:
        """Replace a state document only if unchanged since read (None: only if absent).

        Returns the new etag; ConflictError if another writer got there first.
        """
        entity = _state_entity(name, value)
        lost = f"table {self.state_table}: state {name!r} changed by another writer since read"
        with self._errors(self.state_table, f"write state {name!r}"), _lost_race(lost):
            if etag is None:
                result = self._state.create_entity(entity)
            else:
                result = self._state.update_entity(
                    entity, mode=UpdateMode.REPLACE, **_if_unchanged(etag)
                )
        return str(result["etag"])

    # The timer's outbox: alerts kept until they are on the queue.

    def hold(self, alert: Mapping[str, Any]) -> None:
        """Keep an alert until it is on the queue; the same alert id is the same entity."""
        entity = _state_entity(str(alert["id"]), alert, OUTBOX_PARTITION)
        entity["FirstSeen"] = str(alert.get("firstSeen", ""))
        entity["Detection"] = str(alert.get("detection", ""))
        with self._errors(self.state_table, f"keep alert {alert['id']} in the outbox"):
            self._state.upsert_entity(entity, mode=UpdateMode.REPLACE)

    def held(self) -> list[dict[str, Any]]:
        """Alerts waiting for the queue, oldest activity first."""
        with self._errors(self.state_table, "read the outbox"):
            entities = list(
                self._state.query_entities("PartitionKey eq @p", parameters={"p": OUTBOX_PARTITION})
            )
        entities.sort(key=lambda e: (str(e.get("FirstSeen", "")), str(e["RowKey"])))
        return [_state_value(str(e.get("Name", e["RowKey"])), e) for e in entities]

    def release(self, alert_id: str) -> None:
        """Forget an alert that is on the queue."""
        with self._errors(self.state_table, f"clear alert {alert_id} from the outbox"):
            self._state.delete_entity(OUTBOX_PARTITION, encode_key(alert_id))

    # Operators' commands: every baseline, deleting one, allow rules, feedback records.

    def all_baselines(self) -> list[StoredBaseline]:
        """Every stored baseline (one scan of the table)."""
        with self._errors(self.baseline_table, "list baselines"):
            entities = list(self._baselines.list_entities())
        return [
            StoredBaseline(baseline=from_properties(_from_stored(e)), etag=str(e.metadata["etag"]))
            for e in entities
        ]

    def delete_baseline(self, principal_id: str, etag: str) -> None:
        """Delete a baseline unchanged since read (gone already: done); ConflictError if changed."""
        who = f"baseline of {principal_id[:80]!r}"
        lost = f"table {self.baseline_table}: {who} changed by another writer since read"
        with (
            self._errors(self.baseline_table, f"delete the {who}"),
            _lost_race(lost, principals=(principal_id,)),
        ):
            self._baselines.delete_entity(
                partition_key(principal_id), encode_key(principal_id), **_if_unchanged(etag)
            )

    def _rule_table(self) -> TableClient:
        if self._rules is None:
            raise StoreError("this store was opened without an allow table")
        return self._rules

    def list_rules(self) -> list[StoredRule]:
        """Every stored allow rule, by id."""
        table = self._rule_table()
        with self._errors(str(self.allow_table), "list allow rules"):
            entities = list(
                table.query_entities("PartitionKey eq @p", parameters={"p": RULE_PARTITION})
            )
        rules = [
            StoredRule(rule=AllowRule.from_properties(e), etag=str(e.metadata["etag"]))
            for e in entities
        ]
        return sorted(rules, key=lambda r: r.rule.id)

    def add_rule(self, rule: AllowRule) -> str:
        """Store a new rule; ConflictError if its id is taken."""
        table = self._rule_table()
        entity = {"PartitionKey": RULE_PARTITION, "RowKey": rule.id, **rule.properties()}
        with (
            self._errors(str(self.allow_table), f"add allow rule {rule.id}"),
            _lost_race(f"allow rule {rule.id} already exists"),
        ):
            result = table.create_entity(entity)
        return str(result["etag"])

    def remove_rule(self, rule_id: str, etag: str) -> None:
        """Delete a rule unchanged since read (gone already: done); ConflictError if changed."""
        table = self._rule_table()
        with (
            self._errors(str(self.allow_table), f"remove allow rule {rule_id}"),
            _lost_race(f"allow rule {rule_id} changed by another writer since read"),
        ):
            table.delete_entity(RULE_PARTITION, rule_id, **_if_unchanged(etag))

    def record_hits(self, hits: Mapping[str, int], at: datetime) -> list[str]:
        """Add hits to each rule: read, add, write if unchanged, again on a lost race."""
        table = self._rule_table()
        gone: list[str] = []
        for rule_id, count in sorted(hits.items()):
            for _attempt in range(_HIT_ATTEMPTS):
                with self._errors(str(self.allow_table), f"count hits of allow rule {rule_id}"):
                    try:
                        entity = table.get_entity(RULE_PARTITION, rule_id)
                    except ResourceNotFoundError as err:
                        if error_code(err) == "TableNotFound":
                            raise
                        gone.append(rule_id)
                        break
                    rule = with_hits(AllowRule.from_properties(entity), count, at)
                    try:
                        table.update_entity(
                            {"PartitionKey": RULE_PARTITION, "RowKey": rule_id} | rule.properties(),
                            mode=UpdateMode.REPLACE,
                            **_if_unchanged(str(entity.metadata["etag"])),
                        )
                    except HttpResponseError as err:
                        if not _is_conflict(err):
                            raise
                        continue
                    break
            else:
                raise ConflictError(f"allow rule {rule_id} kept changing while counting its hits")
        return gone

    def record_alerts(self, records: Sequence[Mapping[str, Any]]) -> None:
        """Keep feedback records, one entity per alert id, in the state table."""
        for record in records:
            entity = self._record_entity(record)
            with self._errors(self.state_table, f"keep the record of alert {record['alertId']}"):
                self._state.upsert_entity(entity, mode=UpdateMode.REPLACE)

    def prune_alert_records(self, before: datetime, limit: int) -> int:
        """Delete up to `limit` feedback records last written before `before`."""
        with self._errors(self.state_table, "delete old alert records"):
            return delete_older(
                self._state, before=before, limit=limit, partition=ALERT_RECORD_PARTITION
            )

    def get_alert_record(self, alert_id: str) -> tuple[dict[str, Any] | None, str | None]:
        """A feedback record and its etag, or (None, None)."""
        return self._read_document(
            ALERT_RECORD_PARTITION, alert_id, f"read the record of alert {alert_id}"
        )

    def alert_records(self) -> list[dict[str, Any]]:
        """Every feedback record kept (one query over the records' partition)."""
        with self._errors(self.state_table, "read the alert records"):
            entities = list(
                self._state.query_entities(
                    "PartitionKey eq @p", parameters={"p": ALERT_RECORD_PARTITION}
                )
            )
        return [_state_value(str(e.get("Name") or e["RowKey"]), e) for e in entities]

    def put_alert_record_if(self, record: Mapping[str, Any], etag: str) -> str:
        """Replace a record unchanged since read; ConflictError otherwise."""
        entity = self._record_entity(record)
        alert_id = record["alertId"]
        with (
            self._errors(self.state_table, f"write the record of alert {alert_id}"),
            _lost_race(f"the record of alert {alert_id} changed since read"),
        ):
            result = self._state.update_entity(
                entity, mode=UpdateMode.REPLACE, **_if_unchanged(etag)
            )
        return str(result["etag"])

    @staticmethod
    def _record_entity(record: Mapping[str, Any]) -> dict[str, Any]:
        entity = _state_entity(str(record["alertId"]), record, ALERT_RECORD_PARTITION)
        entity["PrincipalId"] = str(record.get("principalId") or "")
        entity["Detection"] = str(record.get("detection") or "")
        entity["FirstSeen"] = str(record.get("firstSeen") or "")
        entity["Verdict"] = str(record.get("verdict") or "")
        return entity

    def close(self) -> None:
        """Close the connections."""
        self._baselines.close()
        self._state.close()
        if self._rules is not None:
            self._rules.close()
        self._service.close()


def _operation(item: StoredBaseline, entity: dict[str, Any]) -> tuple[str, Any, dict[str, Any]]:
    """A transaction operation: create if never stored, else replace if the etag matches."""
    if item.etag is None:
        return ("create", entity, {})
    return (
        "update",
        entity,
        {"mode": UpdateMode.REPLACE, **_if_unchanged(item.etag)},
    )


def _transactions(
    items: Sequence[tuple[StoredBaseline, dict[str, Any]]],
) -> Iterator[list[tuple[StoredBaseline, dict[str, Any]]]]:
    """One partition's entities in transactions of at most 100 and ~3.5 MB of request."""
    batch: list[tuple[StoredBaseline, dict[str, Any]]] = []
    size = 0
    for item, entity in items:
        # The SDK sends ASCII-escaped JSON with a type annotation per string, plus headers.
        weight = len(json.dumps(_json_ready(entity))) + 64 * len(entity) + 1024
        if batch and (len(batch) >= MAX_TRANSACTION or size + weight > TRANSACTION_BUDGET):
            yield batch
            batch, size = [], 0
        batch.append((item, entity))
        size += weight
    if batch:
        yield batch


def _json_ready(entity: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _plain(value) for name, value in entity.items()}
