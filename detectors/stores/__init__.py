"""Where baselines and run state live: the protocol, and the embedded SQLite store."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from detectors.baseline import PrincipalBaseline


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
