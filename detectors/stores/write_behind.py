"""A write-behind cache in front of any baseline store, for long replays and backfills.

A replay scores thousands of windows in a row; reading and writing every touched baseline
through the real store each window would spend most of the time serialising. This keeps
baselines in memory between windows and writes the changed ones back in one batch on
`flush()` (and whenever the cache grows past its limit), with the same etag semantics as
the store behind it.

The baselines `load` returns are the cached ones themselves: the window step learns into
them in place (`baselines.baseline.absorb`) and saves them back, so a baseline accumulates
what it learns over the whole replay and is encoded once, when it is flushed. One writer
uses a cache: a run that lost a race on it would leave what it learned in the cache.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from detectors.baselines.baseline import PrincipalBaseline
from detectors.model.errors import ConflictError
from detectors.stores import BaselineStore, StoredBaseline


@dataclass(slots=True)
class _Entry:
    baseline: PrincipalBaseline
    inner_etag: str | None
    version: int
    dirty: bool = False


class WriteBehindStore:
    """Caches baselines in memory and writes them to `inner` in batches."""

    def __init__(self, inner: BaselineStore, *, max_cached: int = 10_000) -> None:
        self.inner = inner
        self.max_cached = max_cached
        self._entries: dict[str, _Entry] = {}
        self._absent: set[str] = set()

    def load(self, principal_ids: Collection[str]) -> dict[str, StoredBaseline]:
        """Cached baselines; only principals never asked about go to the inner store."""
        unknown = [p for p in principal_ids if p not in self._entries and p not in self._absent]
        if unknown:
            if len(self._entries) + len(unknown) > self.max_cached:
                self.flush(evict=True)
            found = self.inner.load(unknown)
            for principal_id in unknown:
                held = found.get(principal_id)
                if held is None:
                    self._absent.add(principal_id)
                else:
                    self._entries[principal_id] = _Entry(
                        baseline=held.baseline, inner_etag=held.etag, version=0
                    )
        return {
            p: StoredBaseline(baseline=entry.baseline, etag=str(entry.version))
            for p in principal_ids
            if (entry := self._entries.get(p)) is not None
        }

    def save(self, baselines: Sequence[StoredBaseline]) -> dict[str, str]:
        """Update the cache if every etag is current; nothing changes on a conflict."""
        conflicts = [item.baseline.principal_id for item in baselines if not self._current(item)]
        if conflicts:
            raise ConflictError(
                f"baselines changed since read: {', '.join(conflicts[:10])}",
                principals=tuple(conflicts),
            )
        etags: dict[str, str] = {}
        for item in baselines:
            principal_id = item.baseline.principal_id
            entry = self._entries.get(principal_id)
            if entry is None:
                entry = self._entries[principal_id] = _Entry(
                    baseline=item.baseline, inner_etag=None, version=0
                )
                self._absent.discard(principal_id)
            entry.baseline, entry.version, entry.dirty = item.baseline, entry.version + 1, True
            etags[principal_id] = str(entry.version)
        return etags

    def _current(self, item: StoredBaseline) -> bool:
        entry = self._entries.get(item.baseline.principal_id)
        if entry is None:
            return item.etag is None
        return item.etag == str(entry.version)

    def flush(self, *, evict: bool = False) -> int:
        """Write every changed baseline to the inner store; returns how many were written."""
        dirty = [(p, e) for p, e in sorted(self._entries.items()) if e.dirty]
        if dirty:
            written = self.inner.save(
                [StoredBaseline(baseline=e.baseline, etag=e.inner_etag) for _, e in dirty]
            )
            for principal_id, entry in dirty:
                entry.inner_etag, entry.dirty = written[principal_id], False
        if evict:
            self._entries.clear()
            self._absent.clear()
        return len(dirty)

    def get_state(self, name: str) -> Mapping[str, Any] | None:
        """State goes straight to the inner store."""
        return self.inner.get_state(name)

    def put_state(self, name: str, value: Mapping[str, Any]) -> None:
        """State goes straight to the inner store."""
        self.inner.put_state(name, value)

    def close(self, *, flush: bool = True) -> None:
        """Flush (unless told the run failed), then close the inner store."""
        try:
            if flush:
                self.flush()
        finally:
            self.inner.close()
