"""Where a day-by-day command (`backfill`, `export`) is, for whoever shows progress."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True, slots=True)
class DayDone:
    """One day finished: which of how many, and a line saying what it held."""

    number: int
    """1 for the first day of the plan."""
    total: int
    """Days in the plan, those finished by an earlier, interrupted run included."""
    left: int
    """Days still to do after this one."""
    text: str

    def __str__(self) -> str:
        return self.text


DayProgress = Callable[[DayDone], None]
