"""The embedded baseline store: one SQLite file (or memory), standard library only."""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from detectors.errors import ConflictError, StoreError
from detectors.stores import StoredBaseline
from detectors.stores.codec import from_properties, to_properties

_SCHEMA = """
CREATE TABLE IF NOT EXISTS baselines (
    principal_id TEXT PRIMARY KEY,
    etag INTEGER NOT NULL,
    properties TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS state (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""
_CHUNK = 500  # stays under SQLite's bound-parameter limit


class SqliteStore:
    """Baselines in SQLite, with the same etag semantics as Table Storage."""

    def __init__(self, *, path: str | Path = ":memory:") -> None:
        self.path = str(path)
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None)
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as err:
            raise StoreError(f"cannot open the baseline store {self.path}: {err}") from err

    def load(self, principal_ids: Collection[str]) -> dict[str, StoredBaseline]:
        """The stored baselines of these principals."""
        ids = sorted(set(principal_ids))
        found: dict[str, StoredBaseline] = {}
        try:
            for start in range(0, len(ids), _CHUNK):
                chunk = ids[start : start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT principal_id, etag, properties FROM baselines "  # noqa: S608
                    f"WHERE principal_id IN ({marks})",
                    chunk,
                ).fetchall()
                for principal_id, etag, text in rows:
                    found[principal_id] = StoredBaseline(
                        baseline=from_properties(orjson.loads(text)), etag=str(etag)
                    )
        except sqlite3.Error as err:
            raise StoreError(f"cannot read baselines from {self.path}: {err}") from err
        return found

    def save(self, baselines: Sequence[StoredBaseline]) -> dict[str, str]:
        """Write all baselines in one transaction, or none if any etag is stale."""
        etags: dict[str, str] = {}
        try:
            self._db.execute("BEGIN IMMEDIATE")
            conflicts: list[str] = []
            for item in baselines:
                principal_id = item.baseline.principal_id
                text = orjson.dumps(to_properties(item.baseline)).decode()
                if item.etag is None:
                    cursor = self._db.execute(
                        "INSERT OR IGNORE INTO baselines VALUES (?, 1, ?)", (principal_id, text)
                    )
                    new = "1"
                else:
                    new = str(int(item.etag) + 1)
                    cursor = self._db.execute(
                        "UPDATE baselines SET etag = ?, properties = ? "
                        "WHERE principal_id = ? AND etag = ?",
                        (int(new), text, principal_id, int(item.etag)),
                    )
                if cursor.rowcount != 1:
                    conflicts.append(principal_id)
                etags[principal_id] = new
            if conflicts:
                self._db.execute("ROLLBACK")
                raise ConflictError(
                    f"baselines changed by another writer since read: {', '.join(conflicts[:10])}",
                    principals=tuple(conflicts),
                )
            self._db.execute("COMMIT")
        except sqlite3.Error as err:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise StoreError(f"cannot write baselines to {self.path}: {err}") from err
        return etags

    def get_state(self, name: str) -> Mapping[str, Any] | None:
        """A named state document, or None."""
        try:
            row = self._db.execute("SELECT value FROM state WHERE name = ?", (name,)).fetchone()
        except sqlite3.Error as err:
            raise StoreError(f"cannot read state {name!r} from {self.path}: {err}") from err
        return None if row is None else dict(orjson.loads(row[0]))

    def put_state(self, name: str, value: Mapping[str, Any]) -> None:
        """Replace a named state document."""
        try:
            self._db.execute(
                "INSERT INTO state VALUES (?, ?) "
                "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                (name, orjson.dumps(dict(value)).decode()),
            )
        except sqlite3.Error as err:
            raise StoreError(f"cannot write state {name!r} to {self.path}: {err}") from err

    def close(self) -> None:
        """Close the database."""
        self._db.close()
