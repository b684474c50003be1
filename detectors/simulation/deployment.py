"""The file writes a deployment leaves in AppServiceFileAuditLogs."""

from __future__ import annotations

import math
import random

from detectors.simulation.clock import TICKS_PER_MS
from detectors.simulation.ids import between
from detectors.simulation.organisation import Site
from detectors.simulation.recorder import Recorder


def write_content(
    rng: random.Random, rec: Recorder, *, site: Site, at: int, process: str, share: float
) -> int:
    """Rewrites a share of the site's files, as a zip or Web Deploy push does; returns the end."""
    content = site.app.content
    count = max(1, math.ceil(len(content) * share))
    t = at
    for relative in sorted(rng.sample(content, min(count, len(content)))):
        pick = rng.random()
        operation = "Modify" if pick < 0.9 else "Add" if pick < 0.98 else "Delete"
        rec.file(rng, site=site, relative=relative, at=t, operation=operation, process=process)
        t += between(rng, 15, 700) * TICKS_PER_MS
    return t
