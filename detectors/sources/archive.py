"""Streams rows from the storage account that diagnostic settings archive logs to.

Diagnostic settings write one blob per resource and hour, one record per line, in Azure
Monitor's resource-log schema: the Activity Log under `insights-activity-logs`, the App
Service logs under `insights-logs-<category>`, each at
`resourceId=/SUBSCRIPTIONS/<id>/.../y=2026/m=11/d=25/h=10/m=00/PT1H.json`. This is where
organisations keep the Activity Log past its 90 days, and what a backtest of an old incident
or a bootstrap of baselines reads.

`ArchiveSource` lists the containers, keeps the hours that overlap the range asked for, and
reads the blobs hour by hour (so rows arrive nearly in time order), each through the same
reader as an exported file: a malformed record is rejected with the blob's name and line and
its neighbours kept. Only the listing is held in memory, never a blob's content.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final

from azure.core.exceptions import AzureError, ResourceNotFoundError

from detectors.model.errors import InputError, one_line, redact
from detectors.model.observation import RawRow, RejectedRow
from detectors.normalize.rows import RowError, parse_time
from detectors.sources import Budget, FetchStats
from detectors.sources.files import ContentReader, EarlySkip, Row
from detectors.sources.portal_dates import DateOrder
from detectors.sources.queries import Window

if TYPE_CHECKING:
    from azure.storage.blob import BlobServiceClient

log = logging.getLogger(__name__)

ACTIVITY_CONTAINER: Final = "insights-activity-logs"
APP_SERVICE_CONTAINERS: Final = (
    "insights-logs-appserviceauditlogs",
    "insights-logs-appservicefileauditlogs",
)
CONTAINERS: Final = (ACTIVITY_CONTAINER, *APP_SERVICE_CONTAINERS)
"""The containers diagnostic settings write the detections' logs to."""

_PREFIX: Final = "resourceId="
_HOUR = re.compile(r"/y=(\d{4})/m=(\d{2})/d=(\d{2})/h=(\d{2})/m=\d{2}/[^/]+\Z")


@dataclass(frozen=True, slots=True)
class ArchiveBlob:
    """One hourly blob of the archive."""

    container: str
    name: str
    hour: datetime
    size: int


class ArchiveSource:
    """The rows of the archive's blobs for the hours that overlap `[since, until)`."""

    def __init__(
        self,
        service: BlobServiceClient,
        *,
        since: datetime,
        until: datetime,
        containers: Sequence[str] = CONTAINERS,
        max_row_bytes: int = 1_048_576,
        date_order: DateOrder | None = None,
        skip: EarlySkip | None = None,
    ) -> None:
        """Prepares to read; the containers are listed when the size or the rows are first
        asked for. With `skip`, rows it recognises are yielded as its `Skipped`."""
        if since.tzinfo is None or until.tzinfo is None:
            raise ValueError("since and until must be aware datetimes")
        if until <= since:
            raise InputError(
                f"the archive's range is empty: {since:%Y-%m-%d %H:%M} to {until:%Y-%m-%d %H:%M}"
            )
        self._service = service
        self._since = since.astimezone(UTC)
        self._until = until.astimezone(UTC)
        self._containers = tuple(containers)
        self._max_row_bytes = max_row_bytes
        self._date_order = date_order
        self._skip = skip
        self._blobs: list[ArchiveBlob] | None = None
        self._done = 0
        self._current: ContentReader | None = None
        self.missing: list[str] = []
        """Containers that do not exist: no diagnostic setting writes that category."""
        self.account = service.account_name or service.url

    @property
    def blobs(self) -> list[ArchiveBlob]:
        """The blobs to read, in the order they are read: hour, then container and name."""
        if self._blobs is None:
            self._blobs = sorted(self._list(), key=lambda b: (b.hour, b.container, b.name))
        return self._blobs

    @property
    def total_bytes(self) -> int:
        """The size of every blob to read."""
        return sum(blob.size for blob in self.blobs)

    @property
    def bytes_read(self) -> int:
        """Bytes read so far, across blobs."""
        return self._done + (self._current.count if self._current is not None else 0)

    def __iter__(self) -> Iterator[Row]:
        """Every row of every blob, blob after blob."""
        for blob in self.blobs:
            name = f"{self.account}/{blob.container}/{blob.name}"
            try:
                stream = self._service.get_container_client(blob.container).download_blob(blob.name)
            except AzureError as err:
                raise _unreadable(name, err) from None
            self._current = ContentReader(
                name,
                _Guarded(name, stream),
                blob.size,
                max_row_bytes=self._max_row_bytes,
                date_order=self._date_order,
                what="blob",
                skip=self._skip,
            )
            yield from self._current
            self._done += blob.size
            self._current = None

    def _list(self) -> Iterator[ArchiveBlob]:
        first_hour = self._since.replace(minute=0, second=0, microsecond=0)
        for container in self._containers:
            client = self._service.get_container_client(container)
            try:
                for item in client.list_blobs(name_starts_with=_PREFIX):
                    hour = _hour_of(item.name)
                    if hour is not None and first_hour <= hour < self._until:
                        yield ArchiveBlob(
                            container=container, name=item.name, hour=hour, size=item.size or 0
                        )
            except ResourceNotFoundError:
                self.missing.append(container)
            except AzureError as err:
                raise _unreadable(f"{self.account}/{container}", err) from None


def _hour_of(name: str) -> datetime | None:
    """The hour a blob's path names (`.../y=2026/m=11/d=25/h=10/m=00/PT1H.json`), or None."""
    found = _HOUR.search(name)
    if found is None:
        return None
    year, month, day, hour = (int(part) for part in found.groups())
    try:
        return datetime(year, month, day, hour, tzinfo=UTC)
    except ValueError:
        return None


def _unreadable(name: str, err: AzureError) -> InputError:
    status = getattr(err, "status_code", None)
    if status == 403:  # HTTP Forbidden
        why = "access denied: the identity needs Storage Blob Data Reader on the account"
    elif status == 401:  # HTTP Unauthorized
        why = "not signed in: run `az login`, or use `--archive env` with a connection string"
    else:
        why = one_line(redact(str(err)))
    return InputError(f"{name}: cannot read the archive: {why}")


class _Guarded:
    """A blob's stream whose failures name the blob."""

    def __init__(self, name: str, stream: object) -> None:
        self._name = name
        self._stream = stream

    def read(self, size: int = -1, /) -> bytes:
        try:
            return self._stream.read(size)  # type: ignore[attr-defined, no-any-return]
        except AzureError as err:
            raise _unreadable(self._name, err) from None


EDGE: Final = timedelta(hours=1)
"""How far from its event's hour a record may be filed: the blobs of the hours around a
window are read too, and only the records whose event falls in the window kept."""


class ArchiveLogSource:
    """The archive as `backfill` reads the workspace: window by window (`LogSource`).

    The archive knows when each event happened, not when it was ingested, so a window is
    read by event time: the records of `[since, until)` from the blobs of those hours and of
    the hours either side. Adjacent windows read every record once. Rejected records are
    logged and counted, as backfill does with rows it cannot use.
    """

    def __init__(self, service: BlobServiceClient, *, containers: Sequence[str] = CONTAINERS):
        """Reads the given containers of the account."""
        self._service = service
        self._containers = tuple(containers)
        self.rejected = 0
        self.missing: set[str] = set()

    def fetch(self, window: Window, budget: Budget) -> tuple[list[RawRow], FetchStats]:
        """The archived rows whose event falls in the window."""
        del budget  # reading blobs is bounded by their size, not by a query service
        source = ArchiveSource(
            self._service,
            since=window.since - EDGE,
            until=window.until + EDGE,
            containers=self._containers,
        )
        stats = FetchStats()
        rows: list[RawRow] = []
        for item in source:
            if isinstance(item, RejectedRow):
                self.rejected += 1
                log.warning("rejected %s line %d: %s", item.source, item.line, item.reason)
                continue
            if type(item) is not RawRow:
                continue  # a row skipped early: not asked for here
            try:
                moment = parse_time(item.fields.get("TimeGenerated"))
            except RowError:
                rows.append(item)  # backfill's normaliser names the problem
                continue
            if window.since <= moment < window.until:
                rows.append(item)
        stats.queries = len(source.blobs)
        for row in rows:
            table = row.table.value if row.table is not None else "other"
            stats.rows[table] = stats.rows.get(table, 0) + 1
        self.missing.update(source.missing)
        return rows, stats
