"""One simulated day as actors see it, and the small random habits they share."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from detectors.simulation.clock import TICKS_PER_MINUTE, TICKS_PER_SECOND
from detectors.simulation.ids import between


@dataclass(frozen=True, kw_only=True, slots=True)
class Day:
    """The `index`th day of the period: its UTC date, midnight and the period's bounds."""

    index: int
    date: date
    midnight: int
    period_start: int
    period_end: int

    def local_midnight(self, utc_offset_minutes: int) -> int:
        """Ticks of midnight of this date in a fixed-offset local time."""
        return self.midnight - utc_offset_minutes * TICKS_PER_MINUTE

    def within(self, ticks: int) -> bool:
        """Whether ticks fall inside the simulated period."""
        return self.period_start <= ticks < self.period_end


def poisson(rng: random.Random, mean: float) -> int:
    """A Poisson-distributed count (Knuth's method; means here are small)."""
    limit = math.exp(-mean)
    count = 0
    product = rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def weighted(rng: random.Random, choices: Sequence[tuple[str, int]]) -> str:
    """One name from (name, weight) pairs."""
    total = sum(weight for _, weight in choices)
    pick = rng.randrange(total)
    for name, weight in choices:
        if pick < weight:
            return name
        pick -= weight
    return choices[-1][0]


def at_minute(rng: random.Random, base: int, minute: int) -> int:
    """Ticks of a random instant within the given minute after base."""
    return base + minute * TICKS_PER_MINUTE + between(rng, 0, 60 * TICKS_PER_SECOND - 1)
