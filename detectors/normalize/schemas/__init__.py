"""Input schemas: the shapes rows arrive in, each made into Log Analytics columns.

Everything downstream (`normalize.rows`) reads one shape: the columns of the Log Analytics
tables. Each other shape an export can have is a module here that says whether a decoded
record is in it (`matches`) and renames its fields to those columns (`columns`); the
registry `SCHEMAS` is tried in order, and a record no schema claims is taken as Log
Analytics columns as it is. A new input format is one module and one line below.

`table_of` then names the row's table: from its `Type` column, or from the columns that
carry values when an export left `Type` out. `other_table` names the table of a row that says
it is from a table the detections do not read (a `union` export's `SigninLogs` rows).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from detectors.model.observation import SourceTable
from detectors.normalize.schemas import activity_log, resource_log


@dataclass(frozen=True, kw_only=True, slots=True)
class Schema:
    """One input shape: how to recognise a record in it, and its Log Analytics columns."""

    name: str
    matches: Callable[[Mapping[str, Any]], bool]
    columns: Callable[[Mapping[str, Any]], dict[str, Any]]


SCHEMAS: Final = (
    Schema(name="activity-log-event", matches=activity_log.matches, columns=activity_log.columns),
    Schema(
        name="activity-log-event-sdk",
        matches=activity_log.matches_sdk,
        columns=activity_log.columns_sdk,
    ),
    Schema(name="resource-log", matches=resource_log.matches, columns=resource_log.columns),
)
"""The registry, tried in order."""


def log_analytics_columns(record: dict[str, Any]) -> dict[str, Any]:
    """A decoded record as Log Analytics columns: renamed by the schema that claims it, or
    as it is (already Log Analytics columns)."""
    for schema in SCHEMAS:
        if schema.matches(record):
            return schema.columns(record)
    return record


_TABLE_EXACT: Final = {table.value: table for table in SourceTable}
_TABLE_BY_NAME: Final = {table.value.lower(): table for table in SourceTable}
_ACTIVITY_ONLY_COLUMNS: Final = ("OperationNameValue", "ActivityStatusValue", "CategoryValue")


def table_of(fields: Mapping[str, Any]) -> SourceTable | None:
    """A row's table: its `Type` (in any case), or `infer_table` without one."""
    declared = fields.get("Type")
    exact = _TABLE_EXACT.get(declared) if isinstance(declared, str) else None
    if exact is not None:
        return exact
    if isinstance(declared, str) and declared.strip():
        return _TABLE_BY_NAME.get(declared.strip().lower())
    return infer_table(fields)


_TABLE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,99}")


def other_table(fields: Mapping[str, Any]) -> str | None:
    """The table a row declares in `Type` when it is none of the detections' tables, or None
    (no `Type`, or not a table's name)."""
    declared = fields.get("Type")
    if not isinstance(declared, str):
        return None
    name = declared.strip()
    if _TABLE_NAME.fullmatch(name) is None or name.lower() in _TABLE_BY_NAME:
        return None
    return name


def infer_table(fields: Mapping[str, Any]) -> SourceTable | None:
    """Guesses a row's table from the columns that carry a value, for rows without `Type`."""
    # Columns that are present but empty do not count: a CSV export of a `union` query has
    # every table's columns on every row.
    if any(_has_value(fields, name) for name in _ACTIVITY_ONLY_COLUMNS):
        return SourceTable.AZURE_ACTIVITY
    if _has_value(fields, "Protocol") and (
        _has_value(fields, "User") or _has_value(fields, "UserAddress")
    ):
        return SourceTable.APP_SERVICE_AUDIT
    if _has_value(fields, "Path") and (
        _has_value(fields, "Process") or _has_value(fields, "OperationName")
    ):
        return SourceTable.APP_SERVICE_FILE_AUDIT
    return None


def _has_value(fields: Mapping[str, Any], name: str) -> bool:
    value = fields.get(name)
    return value is not None and value != ""
