"""Turns raw rows from any source into observations, or says precisely why not.

Pure: no I/O, no clock. Caches are bounded and only trade memory for repeated parsing of
identical strings (tokens are reused for an hour, sites and operations repeat endlessly).
"""

from __future__ import annotations

import enum
import hashlib
import ipaddress
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import orjson

from detectors.model.observation import (
    ClientTool,
    Observation,
    OperationFamily,
    Principal,
    PrincipalType,
    RawRow,
    RejectedRow,
    ResourceRef,
    SourceTable,
    Status,
)
from detectors.model.operations import (
    PUBLISHING_USERS_WRITE,
    classify,
    tool_for_app,
    tool_for_protocol,
)
from detectors.normalize.schemas import other_table

MAX_ID_CHARS = 1024
MAX_RESOURCE_ID_CHARS = 4096
MAX_NAME_CHARS = 256
MAX_COUNT = 100_000_000
"""Largest `Count` a grouped row may carry; anything above is a damaged value."""

TENANT_CLAIM = "http://schemas.microsoft.com/identity/claims/tenantid"
_OID_CLAIM = "http://schemas.microsoft.com/identity/claims/objectidentifier"
_UPN_CLAIMS = (
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn",
    "upn",
    "unique_name",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
)
_JOB_PATH = re.compile(
    r"app_data[\\/]+jobs[\\/]+(continuous|triggered)[\\/]+([^\\/]+)", re.IGNORECASE
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class SkipReason(enum.StrEnum):
    """Why a well-formed row carries nothing for the detections."""

    UNRELATED_OPERATION = "unrelated operation"
    START_ROW = "start row (the end row of the same action is counted)"
    UNRELATED_FILE = "file outside App_Data/jobs"
    NOT_A_SITE = "Microsoft.Web operation on a resource that is not a site (plan, certificate...)"
    OTHER_TABLES = "rows of other tables: not read by this detector"


@dataclass(frozen=True, kw_only=True, slots=True)
class Skipped:
    """A valid row the detections do not need."""

    reason: str
    """A `SkipReason`, or one that names another table's rows."""


MAX_NAMED_TABLES = 32
"""Other tables named one by one in skip reasons; rows of any more share one reason."""

PUBLISHING_USER_SITE = "deployment-user"
"""What alerts name as the site of `Microsoft.Web/publishingUsers/write`: the user-level
deployment credentials, which work on every site the user can publish to, not on one site."""


_SKIPS = {reason: Skipped(reason=reason) for reason in SkipReason}

_STATUS = {
    "start": Status.STARTED,
    "started": Status.STARTED,
    "accept": Status.ACCEPTED,
    "accepted": Status.ACCEPTED,
    "success": Status.SUCCEEDED,
    "succeeded": Status.SUCCEEDED,
    "failure": Status.FAILED,
    "failed": Status.FAILED,
}

K = TypeVar("K")
V = TypeVar("V")


class _BoundedCache(dict[K, V]):
    """A dict that empties itself when full: cheap, and enough for strings that repeat."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def remember(self, key: K, value: V) -> V:
        if len(self) >= self.limit:
            self.clear()
        self[key] = value
        return value


class RowError(ValueError):
    """A row cannot be used; the message names the field and the problem."""


def _text(value: Any, field: str, limit: int) -> str:
    """A string column as text, stripped; rejects huge values and non-scalar types."""
    if value is None:
        return ""
    if isinstance(value, str):
        text = value.strip()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        text = str(value)
    else:
        raise RowError(f"{field} should be text, got {type(value).__name__}")
    if len(text) > limit:
        raise RowError(f"{field} is {len(text):,} characters, over the {limit:,} limit")
    return text


def _count(fields: Mapping[str, Any]) -> int:
    """How many actions a row stands for: `Count` on rows Log Analytics grouped, else one."""
    value = fields.get("Count")
    if value is None or value == "":
        return 1
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 12:
        # ASCII digits only ("²" is a digit to `isdigit`, not to `int`), and no longer than
        # the largest count could be written: Python refuses to convert over 4,300 digits.
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_COUNT:
        raise RowError(f"Count should be a whole number from 1 to {MAX_COUNT:,}, got {value!r:.40}")
    return value


def _clean_name(text: str) -> str:
    """A display name with control characters replaced and its length bounded."""
    return _CONTROL.sub("\ufffd", text)[:MAX_NAME_CHARS]


def parse_time(value: Any, field: str = "TimeGenerated") -> datetime:
    """An aware UTC datetime from ISO 8601; naive means UTC. (A CSV export's dates in the
    browser's locale were made ISO 8601 by the reader, which knows the export's day order.)"""
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise RowError(
                f"{field} {value[:40]!r} is not an ISO 8601 timestamp (as in "
                "2026-11-25T10:00:00Z; a portal CSV's dates in a locale are read as CSV)"
            ) from None
    elif isinstance(value, datetime):
        parsed = value
    else:
        raise RowError(f"{field} is missing")
    tz = parsed.tzinfo
    if tz is UTC:
        return parsed
    if tz is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        # An offset that pushes the moment past year 1 or 9999.
        raise RowError(f"{field} {str(value)[:40]!r} is out of the range of dates") from None


@dataclass(frozen=True, kw_only=True, slots=True)
class _ParsedResource:
    ref: ResourceRef
    tail: tuple[str, ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class _Token:
    app_id: str | None
    object_id: str | None
    name: str | None
    id_type: str | None
    managed_identity: bool
    ip: str | None
    tenant_id: str | None = None
    identity_resource: str | None = None
    """A managed identity's resource id (`xms_mirid`): what names it when no claim does."""


_NO_TOKEN = _Token(
    app_id=None, object_id=None, name=None, id_type=None, managed_identity=False, ip=None
)


INGESTION_COLUMN = "IngestionTime"

MAX_EVENT_AGE = timedelta(days=12 * 366)
"""The oldest event a row may carry, before the run's clock: Log Analytics keeps data 12
years at the most (interactive and long-term retention together)."""
CLOCK_SKEW = timedelta(hours=1)
"""How far after the run's clock an event may be dated (clocks disagree a little)."""


@dataclass(frozen=True, slots=True)
class TimeBounds:
    """The event times a row may carry. A row outside them is rejected with its reason, so
    that one row dated in 2030 or 1970 moves neither a replay's watermark nor its learning
    period."""

    earliest: datetime
    latest: datetime

    @classmethod
    def around(cls, now: datetime) -> TimeBounds:
        """The bounds for a run whose clock says `now`."""
        return cls(earliest=now - MAX_EVENT_AGE, latest=now + CLOCK_SKEW)

    def problem(self, moment: datetime) -> str | None:
        """Why an event time is out of bounds, or None."""
        if moment > self.latest:
            return (
                f"event time in the future: {moment:%Y-%m-%dT%H:%M:%SZ} is after "
                f"{self.latest:%Y-%m-%dT%H:%M:%SZ} (the run's clock, and a little skew)"
            )
        if moment < self.earliest:
            return (
                f"event time too old: {moment:%Y-%m-%dT%H:%M:%SZ} is before "
                f"{self.earliest:%Y-%m-%dT%H:%M:%SZ} (older than any workspace keeps)"
            )
        return None


"""The column an export query adds with `| extend IngestionTime = ingestion_time()`."""


PLAUSIBLE = TimeBounds(
    earliest=datetime(2000, 1, 1, tzinfo=UTC), latest=datetime(9000, 1, 1, tzinfo=UTC)
)
"""Bounds for a run without a clock (the timer's query bounds its own rows): nothing that
windows, baselines and rendered queries add and subtract days to can leave the calendar."""


class Normalizer:
    """Maps raw rows to observations; one instance per run keeps its caches warm."""

    def __init__(self, bounds: TimeBounds | None = None) -> None:
        self._bounds = bounds or PLAUSIBLE
        self._resources: _BoundedCache[str, _ParsedResource | None] = _BoundedCache(50_000)
        self._tokens: _BoundedCache[str, _Token] = _BoundedCache(20_000)
        self._ips: _BoundedCache[str, str | None] = _BoundedCache(50_000)
        self._principals: _BoundedCache[tuple[str, str, PrincipalType], Principal] = _BoundedCache(
            50_000
        )
        self._families: _BoundedCache[tuple[str, str | None], OperationFamily | None] = (
            _BoundedCache(10_000)
        )
        self._other_tables: dict[str, Skipped] = {}
        self._handlers: dict[SourceTable, Callable[[Mapping[str, Any]], Observation | Skipped]]
        self._handlers = {
            SourceTable.AZURE_ACTIVITY: self._activity,
            SourceTable.APP_SERVICE_AUDIT: self._login,
            SourceTable.APP_SERVICE_FILE_AUDIT: self._file_change,
        }

    def normalize(self, row: RawRow) -> Observation | Skipped | RejectedRow:
        """The observation a row stands for, a skip, or a rejection naming the problem."""
        if row.table is None:
            other = other_table(row.fields)
            if other is not None:
                return self._other_table(other)
            return RejectedRow(
                source=row.source,
                line=row.line,
                reason="cannot tell which table the row is from (no Type column, and its "
                "columns are not those of AzureActivity, AppServiceAuditLogs or "
                "AppServiceFileAuditLogs, nor of an Activity Log event or resource-log record)",
            )
        try:
            result = self._handlers[row.table](row.fields)
            ingested = row.fields.get(INGESTION_COLUMN)
            if ingested is not None and ingested != "" and type(result) is Observation:
                result = replace(result, ingested=parse_time(ingested, INGESTION_COLUMN))
        except RowError as err:
            return RejectedRow(source=row.source, line=row.line, reason=str(err))
        if type(result) is Observation:
            problem = self._bounds.problem(result.time)
            if problem is not None:
                return RejectedRow(source=row.source, line=row.line, reason=problem)
        return result

    def _other_table(self, name: str) -> Skipped:
        key = name.lower()
        found = self._other_tables.get(key)
        if found is None:
            if len(self._other_tables) >= MAX_NAMED_TABLES:
                return _SKIPS[SkipReason.OTHER_TABLES]
            found = Skipped(reason=f"rows of table {name}: not read by this detector")
            self._other_tables[key] = found
        return found

    # -- AzureActivity -------------------------------------------------------------------

    def _activity(self, fields: Mapping[str, Any]) -> Observation | Skipped:
        head = _activity_head(fields)
        if type(head) is Skipped:
            return head
        operation, lowered, status_text, status = head  # type: ignore[misc]  # not Skipped

        resource_text = _text(
            fields.get("_ResourceId") or fields.get("ResourceId"),
            "_ResourceId",
            MAX_RESOURCE_ID_CHARS,
        )
        parsed: _ParsedResource | None
        if lowered == PUBLISHING_USERS_WRITE:
            parsed = _publishing_user(resource_text, fields)
        else:
            parsed = self._resource(resource_text)
        if parsed is None:
            # The scope of the authorization names the resource too; parsed only when needed.
            scope = _dynamic(fields, "Authorization").get("scope")
            if isinstance(scope, str):
                parsed = self._resource(scope[:MAX_RESOURCE_ID_CHARS])
                resource_text = resource_text or scope[:MAX_RESOURCE_ID_CHARS]
        if parsed is None:
            raise RowError(f"_ResourceId {resource_text[:80]!r} is not an App Service site")
        suffix = parsed.tail[1] if len(parsed.tail) >= 2 and parsed.tail[0] == "config" else None

        key = (operation, suffix)
        family = self._families.get(key, _MISSING)
        if family is _MISSING:
            family = self._families.remember(key, classify(operation, suffix))
        if family is None:
            return _SKIPS[SkipReason.UNRELATED_OPERATION]

        time = parse_time(fields.get("TimeGenerated"))
        token = self._token(fields)
        caller = _text(fields.get("Caller"), "Caller", MAX_ID_CHARS)
        principal = self._activity_principal(caller, token, fields)
        ip = self._ip(_text(fields.get("CallerIpAddress"), "CallerIpAddress", 256))
        if ip is None:
            http = _dynamic(fields, "HTTPRequest")
            ip = self._ip(http.get("clientIpAddress")) or token.ip
        event_id = _text(fields.get("EventDataId"), "EventDataId", 256)
        correlation = _text(fields.get("CorrelationId"), "CorrelationId", 256)
        if not event_id:
            event_id = _digest(operation, status_text, caller, resource_text, str(time))
        count = _count(fields)
        webjob = None
        if len(parsed.tail) >= 2 and parsed.tail[0] in ("continuouswebjobs", "triggeredwebjobs"):
            webjob = f"{parsed.tail[0].removesuffix('webjobs')}/{parsed.tail[1]}"
        # Which keys: the host's (`host/default`) or one function's (`functions/<name>`).
        detail = "/".join(parsed.tail[:2]) if family in _KEY_FAMILIES and parsed.tail else None
        return Observation(
            event_id=event_id,
            # The full resource id: one request may list several config sections. A grouped
            # row stands for several actions, which Log Analytics already counted once each.
            action_key=f"{correlation}|{operation.lower()}|{resource_text.lower()}"
            if correlation and count == 1
            else event_id,
            time=time,
            table=SourceTable.AZURE_ACTIVITY,
            operation=operation.upper(),
            family=family,
            status=status,
            principal=principal,
            app_id=token.app_id,
            tool=tool_for_app(token.app_id),
            source_ip=ip,
            resource=parsed.ref,
            config_suffix=suffix,
            webjob=webjob,
            detail=detail,
            http_status=_text(fields.get("ActivitySubstatusValue"), "ActivitySubstatusValue", 128)
            or None,
            count=count,
            tenant_id=token.tenant_id,
        )

    def _activity_principal(
        self, caller: str, token: _Token, fields: Mapping[str, Any]
    ) -> Principal:
        principal_id = caller or token.object_id or ""
        if not principal_id:
            raise RowError("Caller is empty and the claims carry no object id")
        if token.managed_identity:
            kind = PrincipalType.MANAGED_IDENTITY
        elif "@" in principal_id or token.id_type == "user":
            kind = PrincipalType.USER
        elif token.id_type == "app":
            kind = PrincipalType.SERVICE_PRINCIPAL
        else:
            kind = self._kind_from_evidence(principal_id, fields)
        name = token.name or _identity_name(token.identity_resource) or principal_id
        if "@" in principal_id:
            principal_id = principal_id.lower()
        return self._principal(principal_id, name, kind)

    def _kind_from_evidence(self, principal_id: str, fields: Mapping[str, Any]) -> PrincipalType:
        """Principal type from the authorization evidence, for tokens that do not say."""
        evidence = _dynamic(fields, "Authorization").get("evidence")
        evidence_type = evidence.get("principalType") if isinstance(evidence, dict) else None
        if evidence_type == "User":
            return PrincipalType.USER
        if evidence_type == "ServicePrincipal" or _is_guid(principal_id):
            return PrincipalType.SERVICE_PRINCIPAL
        return PrincipalType.UNKNOWN

    # -- AppServiceAuditLogs -------------------------------------------------------------

    def _login(self, fields: Mapping[str, Any]) -> Observation:
        time = parse_time(fields.get("TimeGenerated"))
        user = _text(fields.get("User"), "User", MAX_ID_CHARS)
        display = _text(fields.get("UserDisplayName"), "UserDisplayName", MAX_ID_CHARS)
        if not user and not display:
            raise RowError("User and UserDisplayName are both empty")
        resource_text = _text(fields.get("_ResourceId"), "_ResourceId", MAX_RESOURCE_ID_CHARS)
        parsed = self._resource(resource_text)
        if parsed is None:
            raise RowError(f"_ResourceId {resource_text[:80]!r} is not an App Service site")
        protocol = _text(fields.get("Protocol"), "Protocol", 64)
        if user.startswith("$"):
            principal = self._principal(user.lower(), user, PrincipalType.PUBLISHING_USER)
        elif "@" in display:
            principal = self._principal(display.lower(), display, PrincipalType.USER)
        else:
            principal = self._principal(user or display, display or user, PrincipalType.UNKNOWN)
        address = _text(fields.get("UserAddress"), "UserAddress", 256)
        event_id = _login_id(time, user, display, address, resource_text, protocol)
        return Observation(
            event_id=event_id,
            action_key=event_id,
            time=time,
            table=SourceTable.APP_SERVICE_AUDIT,
            operation=_text(fields.get("OperationName"), "OperationName", 128) or "Authorization",
            family=OperationFamily.SCM_LOGIN,
            status=Status.SUCCEEDED,
            principal=principal,
            app_id=None,
            tool=tool_for_protocol(protocol),
            source_ip=self._ip(address),
            resource=parsed.ref,
            detail=protocol or None,
            count=_count(fields),
        )

    # -- AppServiceFileAuditLogs ---------------------------------------------------------

    def _file_change(self, fields: Mapping[str, Any]) -> Observation | Skipped:
        head = _file_head(fields)
        if type(head) is Skipped:
            return head
        path, match = head  # type: ignore[misc]  # not Skipped
        time = parse_time(fields.get("TimeGenerated"))
        resource_text = _text(fields.get("_ResourceId"), "_ResourceId", MAX_RESOURCE_ID_CHARS)
        parsed = self._resource(resource_text)
        if parsed is None:
            raise RowError(f"_ResourceId {resource_text[:80]!r} is not an App Service site")
        operation = _text(fields.get("OperationName"), "OperationName", 128) or "Modify"
        process = _text(fields.get("Process"), "Process", 256)
        event_id = _file_id(time, path, operation, process, resource_text)
        return Observation(
            event_id=event_id,
            action_key=event_id,
            time=time,
            table=SourceTable.APP_SERVICE_FILE_AUDIT,
            operation=operation,
            family=OperationFamily.WEBJOB_FILE_CHANGE,
            status=Status.SUCCEEDED,
            principal=UNATTRIBUTED,
            app_id=None,
            tool=ClientTool.UNKNOWN,
            source_ip=None,
            resource=parsed.ref,
            webjob=f"{match.group(1)}/{match.group(2)}".lower(),
            detail=_clean_name(path),
            count=_count(fields),
        )

    # -- shared pieces -------------------------------------------------------------------

    def _principal(self, principal_id: str, name: str, kind: PrincipalType) -> Principal:
        key = (principal_id, name, kind)
        found = self._principals.get(key)
        if found is None:
            found = self._principals.remember(
                key, Principal(id=principal_id, name=_clean_name(name), type=kind)
            )
        return found

    def _resource(self, resource_id: str) -> _ParsedResource | None:
        if resource_id in self._resources:
            return self._resources[resource_id]
        return self._resources.remember(resource_id, _parse_resource(resource_id))

    def _ip(self, value: Any) -> str | None:
        if not isinstance(value, str) or not value:
            return None
        if value in self._ips:
            return self._ips[value]
        return self._ips.remember(value, _parse_ip(value))

    def _token(self, fields: Mapping[str, Any]) -> _Token:
        raw = fields.get("Claims")
        if raw is None or raw == "":
            raw = fields.get("Claims_d")
        if isinstance(raw, str):
            if not raw:
                return _NO_TOKEN
            cached = self._tokens.get(raw)
            if cached is None:
                cached = self._tokens.remember(raw, _token_from(_loads(raw, "Claims")))
            return cached
        if isinstance(raw, dict):
            return _token_from(raw)
        if raw is None:
            return _NO_TOKEN
        raise RowError(f"Claims should be an object or JSON text, got {type(raw).__name__}")


def _activity_head(fields: Mapping[str, Any]) -> Skipped | tuple[str, str, str, Status]:
    """What an AzureActivity row's operation and status say before anything else is read:
    a skip (unrelated operations, resources that are not sites, Start rows), or the
    operation, in lower case, the status text and the status. RowError if they are unusable."""
    operation = _text(fields.get("OperationNameValue"), "OperationNameValue", 512)
    if not operation:
        raise RowError("OperationNameValue is missing")
    lowered = operation.lower()
    if not lowered.startswith("microsoft.web/"):
        return _SKIPS[SkipReason.UNRELATED_OPERATION]
    if not lowered.startswith("microsoft.web/sites/") and lowered != PUBLISHING_USERS_WRITE:
        # Plans, certificates, static sites, environments: not where credentials live.
        return _SKIPS[SkipReason.NOT_A_SITE]
    status_text = _text(fields.get("ActivityStatusValue"), "ActivityStatusValue", 64)
    status = _STATUS.get(status_text.lower())
    if status is None:
        raise RowError(
            f"ActivityStatusValue {status_text[:40]!r} is not a known status (Start, Accept, "
            "Success or Failure, or their -ed forms)"
        )
    if status is Status.STARTED:
        return _SKIPS[SkipReason.START_ROW]
    return operation, lowered, status_text, status


def _file_head(fields: Mapping[str, Any]) -> Skipped | tuple[str, re.Match[str]]:
    """What a file audit row's path says before anything else is read: a skip (files
    outside App_Data/jobs), or the path and its job. RowError if the path is unusable."""
    path = _text(fields.get("Path"), "Path", 4096)
    if not path:
        raise RowError("Path is missing")
    match = _JOB_PATH.search(path)
    if match is None:
        return _SKIPS[SkipReason.UNRELATED_FILE]
    return path, match


_HEADS: dict[SourceTable, Callable[[Mapping[str, Any]], object]] = {
    SourceTable.AZURE_ACTIVITY: _activity_head,
    SourceTable.APP_SERVICE_FILE_AUDIT: _file_head,
}


def early_skip(table: SourceTable | None, fields: Mapping[str, Any]) -> Skipped | None:
    """The skip `Normalizer.normalize` would return for this row, found from the few
    columns that decide it (operation and status, or the file's path); None when the row
    may be used, or is unusable (the normaliser then says why, with its line).

    The same functions decide in both places, so a reader that drops these rows before
    making them `RawRow`s counts exactly what the normaliser would have: the production
    queries drop the same rows in Log Analytics (`sources.queries`)."""
    head = _HEADS.get(table)  # type: ignore[arg-type]  # None is simply not a key
    if head is None:
        return None
    try:
        found = head(fields)
    except RowError:
        return None
    return found if type(found) is Skipped else None


_MISSING: Any = object()
_KEY_FAMILIES = frozenset(
    {OperationFamily.FUNCTION_KEYS_READ, OperationFamily.FUNCTION_KEYS_CHANGE}
)

UNATTRIBUTED = Principal(id="", name="(unattributed)", type=PrincipalType.UNKNOWN)
"""Placeholder principal of a file change until the engine ties it to a login."""


def _loads(text: str, field: str) -> dict[str, Any]:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as err:
        raise RowError(f"{field} is not valid JSON: {err}") from err
    if not isinstance(value, dict):
        raise RowError(f"{field} should be a JSON object")
    return value


def _dynamic(fields: Mapping[str, Any], column: str) -> Mapping[str, Any]:
    """A dynamic column (or its `_d` twin) as a mapping, whether it came as text or object."""
    raw = fields.get(column)
    if raw is None or raw == "":
        raw = fields.get(column + "_d")
    if raw is None or raw == "":
        return {}
    if isinstance(raw, dict):
        return raw
    if isinstance(raw, str):
        return _loads(raw, column)
    raise RowError(f"{column} should be an object or JSON text, got {type(raw).__name__}")


def _token_from(claims: Mapping[str, Any]) -> _Token:
    def claim(*names: str) -> str | None:
        for name in names:
            value = claims.get(name)
            if isinstance(value, str) and value:
                return value[:MAX_ID_CHARS]
        return None

    return _Token(
        app_id=(claim("appid", "azp") or "").lower() or None,
        object_id=claim(_OID_CLAIM, "oid"),
        name=claim("name", *_UPN_CLAIMS),
        id_type=(claim("idtyp") or "").lower() or None,
        managed_identity=claim("xms_mirid") is not None,
        identity_resource=claim("xms_mirid"),
        ip=_parse_ip(claim("ipaddr") or ""),
        tenant_id=(claim("tid", TENANT_CLAIM) or "").lower() or None,
    )


def _identity_name(resource_id: str | None) -> str | None:
    """A managed identity's display name from its resource id: a user-assigned identity's
    own name, or the resource a system-assigned one belongs to."""
    if not resource_id:
        return None
    parts = [p for p in resource_id.strip().split("/") if p]
    if len(parts) < 2:
        return None
    if "userassignedidentities" in (p.lower() for p in parts[-2:-1]):
        return parts[-1]
    return f"{parts[-1]} (system-assigned identity)"


def _parse_resource(resource_id: str) -> _ParsedResource | None:
    """Subscription, group, site and slot of an App Service resource id, or None."""
    parts = [p for p in resource_id.lower().split("/") if p]
    try:
        sub = parts[parts.index("subscriptions") + 1]
        group = parts[parts.index("resourcegroups") + 1]
        provider = parts.index("providers")
    except (ValueError, IndexError):
        return None
    if (
        parts[provider + 1 : provider + 3] != ["microsoft.web", "sites"]
        or len(parts) < provider + 4
    ):
        return None
    site = parts[provider + 3]
    rest = parts[provider + 4 :]
    slot = None
    if len(rest) >= 2 and rest[0] == "slots":
        slot, rest = rest[1], rest[2:]
    site_id = "/".join(["", *parts[: provider + 4]])
    if slot:
        site_id += f"/slots/{slot}"
    ref = ResourceRef(id=site_id, subscription_id=sub, resource_group=group, site=site, slot=slot)
    return _ParsedResource(ref=ref, tail=tuple(rest))


def _publishing_user(resource_id: str, fields: Mapping[str, Any]) -> _ParsedResource:
    """The resource of a change of the user-level deployment credentials: no group and no
    site, the subscription whose log recorded it if the row says."""
    subscription = _text(fields.get("SubscriptionId"), "SubscriptionId", 128).lower()
    ref = ResourceRef(
        id=(resource_id or "/providers/Microsoft.Web/publishingUsers/web").lower(),
        subscription_id=subscription,
        resource_group="",
        site=PUBLISHING_USER_SITE,
    )
    return _ParsedResource(ref=ref, tail=())


def _parse_ip(value: str) -> str | None:
    """A canonical IP address, dropping a port; None when it is not an address."""
    text = value.strip()
    if not text:
        return None
    if text.startswith("[") and "]" in text:
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def _is_guid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def row_event_id(table: SourceTable, fields: Mapping[str, Any]) -> str:
    """The id the detector gives a row: `EventDataId`, or for the App Service tables, which
    have no id column, a digest of the columns that identify the row in any export format.

    Raises RowError when the columns it needs are unusable.
    """
    time = parse_time(fields.get("TimeGenerated"))
    resource = _text(fields.get("_ResourceId"), "_ResourceId", MAX_RESOURCE_ID_CHARS)
    if table is SourceTable.APP_SERVICE_AUDIT:
        return _login_id(
            time,
            _text(fields.get("User"), "User", MAX_ID_CHARS),
            _text(fields.get("UserDisplayName"), "UserDisplayName", MAX_ID_CHARS),
            _text(fields.get("UserAddress"), "UserAddress", 256),
            resource,
            _text(fields.get("Protocol"), "Protocol", 64),
        )
    if table is SourceTable.APP_SERVICE_FILE_AUDIT:
        return _file_id(
            time,
            _text(fields.get("Path"), "Path", 4096),
            _text(fields.get("OperationName"), "OperationName", 128) or "Modify",
            _text(fields.get("Process"), "Process", 256),
            resource,
        )
    event_id = _text(fields.get("EventDataId"), "EventDataId", 256)
    if not event_id:
        raise RowError("EventDataId is missing")
    return event_id


def _login_id(  # noqa: PLR0917 - the identifying columns, in one fixed order
    time: datetime, user: str, display: str, address: str, resource: str, protocol: str
) -> str:
    return _digest("login", time.isoformat(), user, display, address, resource.lower(), protocol)


def _file_id(time: datetime, path: str, operation: str, process: str, resource: str) -> str:
    return _digest("file", time.isoformat(), path, operation, process, resource.lower())


def _digest(*parts: str) -> str:
    """A stable id for rows that carry none (the audit tables)."""
    return hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:32]


def normalize_rows(rows: Iterable[RawRow]) -> tuple[list[Observation], list[RejectedRow]]:
    """The observations of a batch of rows and the rows rejected, with their reasons.

    Skipped rows (Start rows, unrelated operations and files) are neither.
    """
    normalizer = Normalizer()
    observations: list[Observation] = []
    rejected: list[RejectedRow] = []
    for row in rows:
        result = normalizer.normalize(row)
        if isinstance(result, Observation):
            observations.append(result)
        elif isinstance(result, RejectedRow):
            rejected.append(result)
    return observations, rejected
