"""Dates in a portal CSV export, which follow the browser's locale: `12/19/2024, 8:49:37 AM`
in the United States, `19/12/2024, 08:49:37` in most other places, `19.12.2024 08:49:37` in
some. Never misdated: the order of day and month is settled by a date that can only be read
one way (a day after the 12th), or given (`DateOrder`); an export in which every date reads
both ways is refused, with the option that settles it.

`PortalDates.resolve` rewrites the time columns of CSV rows to ISO 8601 as rows stream by,
holding rows back only while their dates are still open to both readings.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Final

from detectors.model.errors import InputError
from detectors.model.observation import RawRow, RejectedRow


class DateOrder(enum.StrEnum):
    """Which comes first in a date written with the year last."""

    DMY = "dmy"
    """Day first: 19/12/2024."""
    MDY = "mdy"
    """Month first: 12/19/2024."""


TIME_COLUMNS: Final = frozenset({"TimeGenerated", "IngestionTime", "EventSubmissionTimestamp"})
"""Columns read as times even when the export did not mark them `[UTC]`."""

MAX_HELD_ROWS = 10_000
"""Rows held back while every date read so far reads both ways; past this the export is
refused with the option to pass (the memory a replay may use is bounded)."""

_DATE = re.compile(
    r"(\d{1,2})([/.-])(\d{1,2})\2(\d{4})[,T ]+(\d{1,2}):(\d{2})(?::(\d{2}))?(?:[.,](\d{1,7}))?"
    r" *([AaPp])?\.? ?[Mm]?\.?"
)
_YEAR_FIRST = re.compile(
    r"(\d{4})([/.-])(\d{1,2})\2(\d{1,2})[,T ]+(\d{1,2}):(\d{2})(?::(\d{2}))?(?:[.,](\d{1,7}))?"
)
_HINT: Final = (
    "pass --date-order dmy (day first, as in 19/12/2024) or --date-order mdy (month first, "
    "as in 12/19/2024), or export the times in ISO 8601"
)


class PortalDates:
    """Rewrites the time columns of one CSV export's rows to ISO 8601."""

    def __init__(self, source: str, order: DateOrder | None = None) -> None:
        """`order` as given by the user, or None to settle it from the export's own dates."""
        self._source = source
        self._order = order
        self._settled_by: str | None = "given" if order is not None else None
        self._columns: tuple[str, ...] = ()

    def set_columns(self, names: Iterable[str], marked: Iterable[str]) -> None:
        """The export's columns, and those its header marked as times (`[UTC]`)."""
        marked_set = set(marked)
        self._columns = tuple(n for n in names if n in TIME_COLUMNS or n in marked_set)

    def resolve(self, rows: Iterable[RawRow | RejectedRow]) -> Iterator[RawRow | RejectedRow]:
        """The rows in order, their dates in ISO 8601; rows wait while the order is open."""
        held: list[RawRow | RejectedRow] = []
        first_open: tuple[int, str] | None = None
        for row in rows:
            if self._order is None and type(row) is RawRow:
                opens = self._learn(row)
                if opens is not None and first_open is None:
                    first_open = (row.line, opens)
            if self._order is None and first_open is not None:
                held.append(row)
                if len(held) > MAX_HELD_ROWS:
                    line, value = first_open
                    raise InputError(
                        f"{self._source}: the dates of the first {MAX_HELD_ROWS:,} rows read "
                        f"both day first and month first (line {line}: {value!r}); {_HINT}"
                    )
                continue
            if held:
                yield from (self._converted(h) for h in held)
                held = []
            yield self._converted(row)
        if held:
            if self._order is None and first_open is not None:
                line, value = first_open
                raise InputError(
                    f"{self._source}: every date in the export reads both day first and "
                    f"month first (line {line}: {value!r}); {_HINT}"
                )
            yield from (self._converted(h) for h in held)

    def _learn(self, row: RawRow) -> str | None:
        """Settles the order if a date of the row allows one reading only; returns a date that
        reads both ways, if the row has one."""
        opens = None
        for column in self._columns:
            value = row.fields.get(column)
            if not isinstance(value, str):
                continue
            found = _DATE.fullmatch(value.strip())
            if found is None:
                continue
            first, second = int(found.group(1)), int(found.group(3))
            if first > 12 >= second:
                self._order, self._settled_by = DateOrder.DMY, f"line {row.line}: {value!r}"
                return None
            if second > 12 >= first:
                self._order, self._settled_by = DateOrder.MDY, f"line {row.line}: {value!r}"
                return None
            if first != second and first <= 12 and second <= 12:
                opens = value
        return opens

    def _converted(self, row: RawRow | RejectedRow) -> RawRow | RejectedRow:
        if type(row) is not RawRow or not self._columns:
            return row
        changed: dict[str, str] = {}
        for column in self._columns:
            value = row.fields.get(column)
            if not isinstance(value, str) or not value:
                continue
            try:
                iso = self._iso(value.strip())
            except ValueError as err:
                return RejectedRow(
                    source=row.source, line=row.line, reason=f"{column} {value[:40]!r}: {err}"
                )
            if iso is not None:
                changed[column] = iso
        return replace(row, fields={**row.fields, **changed}) if changed else row

    def _iso(self, value: str) -> str | None:
        """The value in ISO 8601, or None when it is not a locale's date (ISO already, or
        something the normaliser will name)."""
        found = _DATE.fullmatch(value)
        if found is not None:
            first, _, second, year, hour, minute, sec, fraction, meridiem = found.groups()
            # Only dates that read both ways reach here unsettled, and only as day == month.
            day, month = (first, second) if self._order is DateOrder.DMY else (second, first)
            try:
                moment = _moment(year, month, day, hour, minute, sec, fraction, meridiem)
            except ValueError as err:
                if self._order is None or self._settled_by == "given":
                    raise ValueError(f"not a valid date ({err})") from None
                raise ValueError(
                    f"not a valid date read {self._order.value} as the export's dates are "
                    f"({self._settled_by}): {err}"
                ) from None
            return moment.isoformat()
        found = _YEAR_FIRST.fullmatch(value)
        if found is not None:
            year, _, month, day, hour, minute, sec, fraction = found.groups()
            return _moment(year, month, day, hour, minute, sec, fraction, None).isoformat()
        return None


def _moment(  # noqa: PLR0917 - the parts of a date, in one fixed order
    year: str,
    month: str,
    day: str,
    hour: str,
    minute: str,
    second: str | None,
    fraction: str | None,
    meridiem: str | None,
) -> datetime:
    hour_24 = int(hour)
    if meridiem:
        if not 1 <= hour_24 <= 12:
            raise ValueError(f"hour {hour_24} with AM/PM")
        hour_24 = hour_24 % 12 + (12 if meridiem.upper() == "P" else 0)
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    return datetime(
        int(year), int(month), int(day), hour_24, int(minute), int(second or 0), micro, tzinfo=UTC
    )
