"""Day and hour numbers: the units baselines age in, and how days are written down.

A day number counts days since 1970-01-01 UTC; stored documents and feedback records write
days as ISO dates.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_DAY = _EPOCH.date()


def day_number(moment: datetime) -> int:
    """Days since 1970-01-01 UTC: the unit baselines age in."""
    return (moment - _EPOCH).days


def day_start(day: int) -> datetime:
    """Midnight UTC at the start of a day number."""
    return _EPOCH + timedelta(days=day)


def hour_number(moment: datetime) -> int:
    """Hours since 1970-01-01 UTC."""
    return int((moment - _EPOCH).total_seconds() // 3600)


def day_text(day: int) -> str:
    """A day number as an ISO date (2026-10-16)."""
    return (_EPOCH_DAY + timedelta(days=day)).isoformat()


def day_from_text(text: str) -> int:
    """An ISO date as a day number; ValueError when it is not one."""
    return (date.fromisoformat(text) - _EPOCH_DAY).days


def day_windows(since: datetime, until: datetime) -> list[tuple[datetime, datetime]]:
    """`[since, until)` cut at each midnight UTC: the days a backfill or an export reads one
    at a time (whole days when `since` is a midnight, as a backfill's plan makes it)."""
    windows = []
    start = since
    while start < until:
        end = min(day_start(day_number(start) + 1), until)
        windows.append((start, end))
        start = end
    return windows
