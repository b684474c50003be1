"""Where baselines and run state live: the protocol, and the embedded SQLite store."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from detectors.alerts.allow import AllowRule
from detectors.baselines.baseline import PrincipalBaseline


@dataclass(frozen=True, kw_only=True, slots=True)
class StoredBaseline:
    """A baseline and the version tag it was read with (None: not stored yet)."""

    baseline: PrincipalBaseline
    etag: str | None


class BaselineStore(Protocol):
    """Keeps per-principal baselines and small named state documents (checkpoints)."""

    def load(self, principal_ids: Collection[str]) -> dict[str, StoredBaseline]:
        """The stored baselines of these principals; absent ones are left out."""
        ...

    def save(self, baselines: Sequence[StoredBaseline]) -> dict[str, str]:
        """Write baselines if unchanged since read (etag); returns the new etags.

        Raises ConflictError when another writer got there first: `principals` names the
        baselines not written (nothing of them is), `written` the others' new etags if the
        store wrote them anyway (the embedded store writes all or nothing).
        """
        ...

    def get_state(self, name: str) -> Mapping[str, Any] | None:
        """A named state document, or None."""
        ...

    def put_state(self, name: str, value: Mapping[str, Any]) -> None:
        """Replace a named state document."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


@dataclass(frozen=True, kw_only=True, slots=True)
class StoredRule:
    """An allow rule and the version tag it was read with."""

    rule: AllowRule
    etag: str


class AllowRuleStore(Protocol):
    """Keeps operators' allow rules (a table of their own) and counts their hits."""

    def list_rules(self) -> list[StoredRule]:
        """Every stored rule, expired ones included; RuleRejected for one that cannot be read."""
        ...

    def add_rule(self, rule: AllowRule) -> str:
        """Store a new rule; ConflictError if its id is taken. Returns its etag."""
        ...

    def remove_rule(self, rule_id: str, etag: str) -> None:
        """Delete a rule unchanged since read (gone already: done); ConflictError if changed."""
        ...

    def record_hits(self, hits: Mapping[str, int], at: datetime) -> list[str]:
        """Add hits to rules (conditional writes, re-read on a lost race); returns the ids
        of rules that were gone."""
        ...


class BaselineAdmin(Protocol):
    """What operators' commands need beyond the engine's `BaselineStore`."""

    def all_baselines(self) -> list[StoredBaseline]:
        """Every stored baseline."""
        ...

    def delete_baseline(self, principal_id: str, etag: str) -> None:
        """Delete a baseline unchanged since read (gone already: done); ConflictError if changed."""
        ...


class AlertRecords(Protocol):
    """What feedback needs of each emitted alert (see `detectors.baselines.feedback`)."""

    def record_alerts(self, records: Sequence[Mapping[str, Any]]) -> None:
        """Keep these records (by `alertId`; the same id replaces)."""
        ...

    def get_alert_record(self, alert_id: str) -> tuple[dict[str, Any] | None, str | None]:
        """A record and its etag; (None, None) if there is none."""
        ...

    def put_alert_record_if(self, record: Mapping[str, Any], etag: str) -> str:
        """Replace a record unchanged since read; ConflictError otherwise."""
        ...

    def alert_records(self) -> list[dict[str, Any]]:
        """Every record kept (those not pruned yet), in no particular order."""
        ...
