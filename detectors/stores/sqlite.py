"""The embedded baseline store: one SQLite file (or memory), standard library only."""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from detectors.alerts.allow import AllowRule, with_hits
from detectors.baselines.codec import from_properties, to_properties
from detectors.model.errors import ConflictError, StoreError
from detectors.stores import StoredBaseline, StoredRule

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
CREATE TABLE IF NOT EXISTS allow_rules (
    rule_id TEXT PRIMARY KEY,
    etag INTEGER NOT NULL,
    properties TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS alert_records (
    alert_id TEXT PRIMARY KEY,
    etag INTEGER NOT NULL,
    value TEXT NOT NULL
);
"""
_CHUNK = 500  # stays under SQLite's bound-parameter limit


class SqliteStore:
    """Baselines in SQLite, with the same etag semantics as Table Storage.

    The same file also holds what Table Storage keeps in tables of their own: allow rules
    (`allow_rules`) and the records feedback reads (`alert_records`).
    """

    def __init__(self, *, path: str | Path = ":memory:", must_exist: bool = False) -> None:
        """Open (or create) the store; with `must_exist`, a missing file is a StoreError."""
        self.path = str(path)
        if must_exist and self.path != ":memory:" and not Path(self.path).is_file():
            raise StoreError(f"no store at {self.path}: check the path (sqlite:FILE)")
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

    # Operators' commands.

    def all_baselines(self) -> list[StoredBaseline]:
        """Every stored baseline."""
        try:
            rows = self._db.execute("SELECT etag, properties FROM baselines").fetchall()
        except sqlite3.Error as err:
            raise StoreError(f"cannot read baselines from {self.path}: {err}") from err
        return [
            StoredBaseline(baseline=from_properties(orjson.loads(text)), etag=str(etag))
            for etag, text in rows
        ]

    def delete_baseline(self, principal_id: str, etag: str) -> None:
        """Delete a baseline unchanged since read (gone already: done); ConflictError if changed."""
        try:
            cursor = self._db.execute(
                "DELETE FROM baselines WHERE principal_id = ? AND etag = ?",
                (principal_id, int(etag)),
            )
        except sqlite3.Error as err:
            raise StoreError(f"cannot delete a baseline in {self.path}: {err}") from err
        if cursor.rowcount != 1 and self._exists("baselines", "principal_id", principal_id):
            raise ConflictError(
                f"baseline of {principal_id[:80]!r} changed by another writer since read",
                principals=(principal_id,),
            )

    def list_rules(self) -> list[StoredRule]:
        """Every stored allow rule."""
        try:
            rows = self._db.execute(
                "SELECT etag, properties FROM allow_rules ORDER BY rule_id"
            ).fetchall()
        except sqlite3.Error as err:
            raise StoreError(f"cannot read allow rules from {self.path}: {err}") from err
        return [
            StoredRule(rule=AllowRule.from_properties(orjson.loads(text)), etag=str(etag))
            for etag, text in rows
        ]

    def add_rule(self, rule: AllowRule) -> str:
        """Store a new rule; ConflictError if its id is taken."""
        try:
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO allow_rules VALUES (?, 1, ?)",
                (rule.id, orjson.dumps(rule.properties()).decode()),
            )
        except sqlite3.Error as err:
            raise StoreError(f"cannot write an allow rule to {self.path}: {err}") from err
        if cursor.rowcount != 1:
            raise ConflictError(f"allow rule {rule.id} already exists")
        return "1"

    def remove_rule(self, rule_id: str, etag: str) -> None:
        """Delete a rule unchanged since read (gone already: done); ConflictError if changed."""
        try:
            cursor = self._db.execute(
                "DELETE FROM allow_rules WHERE rule_id = ? AND etag = ?", (rule_id, int(etag))
            )
        except sqlite3.Error as err:
            raise StoreError(f"cannot delete an allow rule in {self.path}: {err}") from err
        if cursor.rowcount != 1 and self._exists("allow_rules", "rule_id", rule_id):
            raise ConflictError(f"allow rule {rule_id} changed by another writer since read")

    def _exists(self, table: str, column: str, key: str) -> bool:
        try:
            row = self._db.execute(
                f"SELECT 1 FROM {table} WHERE {column} = ?",  # noqa: S608 - our own names
                (key,),
            ).fetchone()
        except sqlite3.Error as err:
            raise StoreError(f"cannot read {table} in {self.path}: {err}") from err
        return row is not None

    def record_hits(self, hits: Mapping[str, int], at: datetime) -> list[str]:
        """Add hits to rules in one transaction; returns the ids of rules that were gone."""
        gone: list[str] = []
        try:
            self._db.execute("BEGIN IMMEDIATE")
            for rule_id, count in sorted(hits.items()):
                row = self._db.execute(
                    "SELECT properties FROM allow_rules WHERE rule_id = ?", (rule_id,)
                ).fetchone()
                if row is None:
                    gone.append(rule_id)
                    continue
                rule = with_hits(AllowRule.from_properties(orjson.loads(row[0])), count, at)
                self._db.execute(
                    "UPDATE allow_rules SET etag = etag + 1, properties = ? WHERE rule_id = ?",
                    (orjson.dumps(rule.properties()).decode(), rule_id),
                )
            self._db.execute("COMMIT")
        except sqlite3.Error as err:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise StoreError(f"cannot count allow rule hits in {self.path}: {err}") from err
        return gone

    def record_alerts(self, records: Sequence[Mapping[str, Any]]) -> None:
        """Keep feedback records, by alert id."""
        try:
            self._db.executemany(
                "INSERT INTO alert_records VALUES (?, 1, ?) ON CONFLICT(alert_id) DO UPDATE "
                "SET etag = etag + 1, value = excluded.value",
                [(str(r["alertId"]), orjson.dumps(dict(r)).decode()) for r in records],
            )
        except sqlite3.Error as err:
            raise StoreError(f"cannot write alert records to {self.path}: {err}") from err

    def get_alert_record(self, alert_id: str) -> tuple[dict[str, Any] | None, str | None]:
        """A feedback record and its etag, or (None, None)."""
        try:
            row = self._db.execute(
                "SELECT etag, value FROM alert_records WHERE alert_id = ?", (alert_id,)
            ).fetchone()
        except sqlite3.Error as err:
            raise StoreError(f"cannot read alert records from {self.path}: {err}") from err
        return (None, None) if row is None else (dict(orjson.loads(row[1])), str(row[0]))

    def alert_records(self) -> list[dict[str, Any]]:
        """Every feedback record kept."""
        try:
            found = self._db.execute("SELECT value FROM alert_records ORDER BY alert_id").fetchall()
        except sqlite3.Error as err:
            raise StoreError(f"cannot read alert records from {self.path}: {err}") from err
        return [dict(orjson.loads(row[0])) for row in found]

    def put_alert_record_if(self, record: Mapping[str, Any], etag: str) -> str:
        """Replace a record unchanged since read."""
        try:
            cursor = self._db.execute(
                "UPDATE alert_records SET etag = etag + 1, value = ? "
                "WHERE alert_id = ? AND etag = ?",
                (orjson.dumps(dict(record)).decode(), str(record["alertId"]), int(etag)),
            )
        except sqlite3.Error as err:
            raise StoreError(f"cannot write an alert record to {self.path}: {err}") from err
        if cursor.rowcount != 1:
            raise ConflictError(f"alert record {record['alertId']} changed since read")
        return str(int(etag) + 1)

    def close(self) -> None:
        """Close the database."""
        self._db.close()
