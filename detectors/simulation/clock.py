"""Time as integer ticks (100 ns since the Unix epoch) and Log Analytics' timestamp text."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import cache

TICKS_PER_SECOND = 10_000_000
TICKS_PER_MS = 10_000
TICKS_PER_MINUTE = 60 * TICKS_PER_SECOND
TICKS_PER_HOUR = 60 * TICKS_PER_MINUTE
TICKS_PER_DAY = 24 * TICKS_PER_HOUR
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL = _EPOCH.date().toordinal()


def to_ticks(moment: datetime) -> int:
    """Ticks of an aware datetime."""
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * TICKS_PER_SECOND + delta.microseconds * 10


def from_ticks(ticks: int, *, round_up: bool = False) -> datetime:
    """The aware UTC datetime of ticks, to the microsecond (rounded up when asked)."""
    micros = -(-ticks // 10) if round_up else ticks // 10
    return _EPOCH + timedelta(microseconds=micros)


def seconds(ticks: int) -> int:
    """Whole Unix seconds of ticks (token `iat`/`exp`)."""
    return ticks // TICKS_PER_SECOND


class TimestampText:
    """Formats ticks as "2026-11-02T09:14:03.1234567Z", caching dates and times of day."""

    __slots__ = ("_dates", "_times")

    def __init__(self) -> None:
        self._dates: dict[int, str] = {}
        self._times = _times_of_day()

    def __call__(self, ticks: int) -> str:
        """The Log Analytics text of ticks: ISO 8601 UTC, seven fractional digits, Z."""
        day, rest = divmod(ticks, TICKS_PER_DAY)
        text = self._dates.get(day)
        if text is None:
            text = date.fromordinal(_EPOCH_ORDINAL + day).isoformat() + "T"
            self._dates[day] = text
        whole, fraction = divmod(rest, TICKS_PER_SECOND)
        return f"{text}{self._times[whole]}.{fraction:07d}Z"


@cache
def _times_of_day() -> tuple[str, ...]:
    return tuple(
        f"{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60) for s in range(60)
    )
