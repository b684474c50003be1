"""Table Storage helpers every adapter with a table shares: legal keys for any text, the
service's error codes, and deleting old entities.

The key encoding is part of the stored format of baselines, state documents, allow rules
and the notifier's ledger: changing it would orphan what is stored.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from typing import Any
from urllib.parse import unquote

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.data.tables import TableClient, TableServiceClient

from detectors.model.errors import ConfigurationError

MAX_KEY_UNITS = 512
"""Longest key, in UTF-16 code units: the service's 1 KiB."""

_FORBIDDEN = re.compile(r"[/\\#?%\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_LONG_MARK = "%%"
"""Ends the readable prefix of a hashed key; `encode_key` never writes it otherwise."""
_HASHED_PREFIX_UNITS = MAX_KEY_UNITS - len(_LONG_MARK) - 64


def utf16_units(text: str) -> int:
    """Length in UTF-16 code units, as the service measures strings."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _escape(char: str) -> str:
    return "".join(f"%{byte:02X}" for byte in char.encode("utf-8", "surrogatepass"))


def encode_key(text: str) -> str:
    """Any text as a legal, readable table key; `decode_key` reverses it.

    Characters keys may not hold (`/ \\ # ?`, control characters) and `%` itself are
    percent-encoded (UTF-8 bytes, as in URLs); everything else is kept. A key that would
    be longer than the service allows is a readable prefix, `%%` and the SHA-256 of the
    whole text: that form never decodes, and no other text encodes to it.
    """
    encoded = _FORBIDDEN.sub(lambda m: _escape(m.group()), text)
    if utf16_units(encoded) <= MAX_KEY_UNITS:
        return encoded
    prefix: list[str] = []
    budget = _HASHED_PREFIX_UNITS
    for char in text:
        piece = _escape(char) if _FORBIDDEN.match(char) else char
        budget -= utf16_units(piece)
        if budget < 0:
            break
        prefix.append(piece)
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    return "".join(prefix) + _LONG_MARK + digest


def decode_key(key: str) -> str | None:
    """The text a key was encoded from, or None for a hashed key (see `PrincipalId`)."""
    if _LONG_MARK in key:
        return None
    return unquote(key, errors="surrogatepass")


def error_code(err: HttpResponseError) -> str | None:
    """The service's error code (the SDK sets it on some errors only, sometimes as an enum)."""
    code = getattr(err, "error_code", None)
    headers = getattr(err.response, "headers", None)
    if not code and headers is not None:
        code = headers.get("x-ms-error-code")
    return str(getattr(code, "value", code)) if code else None


def delete_older(
    client: TableClient, *, before: datetime, limit: int, partition: str | None = None
) -> int:
    """Deletes up to `limit` entities last written before `before`; returns how many.

    Age is the service's own `Timestamp` (the last write), so a record touched since, by
    feedback or a retried delivery, counts from then. Each delete is conditional on the
    ETag listed: an entity written meanwhile is kept. A missing table holds nothing to delete.
    """
    query = "Timestamp lt @before"
    parameters: dict[str, Any] = {"before": before}
    if partition is not None:
        query += " and PartitionKey eq @partition"
        parameters["partition"] = partition
    deleted = 0
    try:
        listed = client.query_entities(
            query,
            parameters=parameters,
            select=["PartitionKey", "RowKey"],
            results_per_page=min(max(limit, 1), 1000),
        )
        for entity in listed:
            if deleted >= limit:
                break
            try:
                client.delete_entity(
                    entity["PartitionKey"],
                    entity["RowKey"],
                    etag=entity.metadata["etag"],
                    match_condition=MatchConditions.IfNotModified,
                )
            except ResourceNotFoundError:
                continue  # deleted by someone else meanwhile
            except HttpResponseError as err:
                if err.status_code == 412:
                    continue  # written meanwhile: no longer old
                raise
            deleted += 1
    except ResourceNotFoundError as err:
        if error_code(err) == "TableNotFound":
            return deleted
        raise
    return deleted


def service_from_connection_string(connection_string: str, **options: Any) -> TableServiceClient:
    """A Table service client for a connection string; ConfigurationError (never quoting the
    string, which holds the account key) when it is not one."""
    try:
        return TableServiceClient.from_connection_string(connection_string, **options)
    except ValueError as err:
        raise ConfigurationError(
            f"the storage connection string is not one Table Storage reads ({err}); expected "
            "DefaultEndpointsProtocol=...;AccountName=...;AccountKey=...;TableEndpoint=..."
        ) from None
