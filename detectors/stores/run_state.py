"""The timer's own state in Table Storage: its checkpoint and its outbox of alerts.

Both live in the state table, readable in Storage Explorer:
- PartitionKey `checkpoint`, RowKey the checkpoint's name: the watermark, the window in
  flight, the engine's carry-over and the lease of the run holding it, as JSON text cut
  into `Part000`, `Part001`, ... (a string property holds at most 32K characters).
  Every write is conditional on the ETag read, so two runs can never both advance it.
- PartitionKey `outbox`, RowKey an alert id: alerts scored but not yet on the queue.
  Writing one is idempotent (the same id, the same alert), so a repeated window adds
  nothing; an entry is deleted once its alert is on the queue.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import orjson
from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import TableClient, UpdateMode

from detectors.errors import ConflictError, StoreError

_PART_CHARS = 30_000
_MAX_PARTS = 30  # 30 x 30K characters stays under the 1 MiB entity limit in UTF-16
CHECKPOINT = "checkpoint"
OUTBOX = "outbox"


def to_parts(value: Mapping[str, Any]) -> dict[str, str]:
    """A JSON document as `Part000`... string properties."""
    text = orjson.dumps(dict(value)).decode()
    parts = [text[i : i + _PART_CHARS] for i in range(0, len(text), _PART_CHARS)] or [""]
    if len(parts) > _MAX_PARTS:
        raise StoreError(
            f"document of {len(text):,} characters is over the "
            f"{_MAX_PARTS * _PART_CHARS:,} a table entity holds"
        )
    return {f"Part{n:03d}": part for n, part in enumerate(parts)}


def from_parts(entity: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON document `to_parts` stored."""
    names = sorted(k for k in entity if k.startswith("Part") and k[4:].isdigit())
    try:
        value = orjson.loads("".join(str(entity[k]) for k in names))
    except orjson.JSONDecodeError as err:
        raise StoreError(f"stored document {entity.get('RowKey')!r} is not JSON: {err}") from err
    if not isinstance(value, dict):
        raise StoreError(f"stored document {entity.get('RowKey')!r} is not a JSON object")
    return value


class TableRunState:
    """Checkpoints (conditional) and the alert outbox (idempotent) in one table."""

    def __init__(self, *, client: TableClient) -> None:
        self.client = client

    def ensure(self) -> None:
        """Create the table if it is missing (Bicep creates it in Azure)."""
        try:
            self.client.create_table()
        except ResourceExistsError:
            pass
        except AzureError as err:
            raise StoreError(f"cannot reach table {self.client.table_name}: {err}") from err

    def read(self, name: str) -> tuple[dict[str, Any] | None, str | None]:
        """A checkpoint and its ETag; (None, None) when there is none yet."""
        try:
            entity = self.client.get_entity(CHECKPOINT, name)
        except ResourceNotFoundError:
            return None, None
        except AzureError as err:
            raise StoreError(f"cannot read checkpoint {name!r}: {_short(err)}") from err
        return from_parts(entity), str(entity.metadata["etag"])

    def write(self, name: str, value: Mapping[str, Any], etag: str | None) -> str:
        """Replace a checkpoint if unchanged since read; ConflictError if another run did."""
        entity = {"PartitionKey": CHECKPOINT, "RowKey": name, **to_parts(value)}
        try:
            if etag is None:
                meta = self.client.create_entity(entity)
            else:
                meta = self.client.update_entity(
                    entity,
                    mode=UpdateMode.REPLACE,
                    etag=etag,
                    match_condition=MatchConditions.IfNotModified,
                )
        except (ResourceExistsError, ResourceModifiedError) as err:
            raise ConflictError(f"checkpoint {name!r} was changed by another run") from err
        except AzureError as err:
            if getattr(err, "status_code", None) == 412:
                raise ConflictError(f"checkpoint {name!r} was changed by another run") from err
            raise StoreError(f"cannot write checkpoint {name!r}: {_short(err)}") from err
        return str(meta["etag"])

    def hold(self, alert: Mapping[str, Any]) -> None:
        """Keep an alert in the outbox until it is on the queue (idempotent by alert id)."""
        entity = {
            "PartitionKey": OUTBOX,
            "RowKey": str(alert["id"]),
            "Detection": str(alert.get("detection", "")),
            "FirstSeen": str(alert.get("firstSeen", "")),
            **to_parts(alert),
        }
        try:
            self.client.upsert_entity(entity, mode=UpdateMode.REPLACE)
        except AzureError as err:
            raise StoreError(
                f"cannot keep alert {alert['id']} in the outbox: {_short(err)}"
            ) from err

    def held(self) -> Iterator[dict[str, Any]]:
        """Alerts waiting in the outbox, oldest activity first."""
        try:
            entities = list(
                self.client.query_entities("PartitionKey eq @p", parameters={"p": OUTBOX})
            )
        except AzureError as err:
            raise StoreError(f"cannot read the outbox: {_short(err)}") from err
        entities.sort(key=lambda e: (str(e.get("FirstSeen", "")), str(e["RowKey"])))
        for entity in entities:
            yield from_parts(entity)

    def release(self, alert_id: str) -> None:
        """Forget an alert that is now on the queue."""
        try:
            self.client.delete_entity(OUTBOX, alert_id)
        except ResourceNotFoundError:
            pass
        except AzureError as err:
            raise StoreError(
                f"cannot clear alert {alert_id} from the outbox: {_short(err)}"
            ) from err


def _short(err: Exception) -> str:
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0] if text else ''}"
