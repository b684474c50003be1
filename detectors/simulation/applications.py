"""The apps themselves: some write their own files under wwwroot (caches, uploads, logs).

About one app in four does, 150-400 files a day, mostly in working hours: benign
AppServiceFileAuditLogs rows under App_Data that are not WebJobs.
"""

from __future__ import annotations

from detectors.simulation.day import Day, at_minute, poisson
from detectors.simulation.ids import make_rng
from detectors.simulation.organisation import App, Organisation
from detectors.simulation.recorder import Recorder


class AppRuntimeBehaviour:
    """One app writing caches, uploads and logs as it serves traffic."""

    __slots__ = ("_app", "_process", "_rng", "_site")

    def __init__(self, app: App, org: Organisation, seed: int) -> None:
        self._app = app
        self._rng = make_rng(seed, "runtime", app.name)
        self._site = org.sites_of(app)[0]
        if app.windows:
            self._process = "w3wp"
        elif any(name.endswith(".dll") for name in app.content):
            self._process = "dotnet"
        elif "package.json" in app.content:
            self._process = "node"
        else:
            self._process = "python"

    def day(self, day: Day, rec: Recorder) -> None:
        """Records the day's file writes."""
        rng = self._rng
        stamp = day.date.strftime("%Y%m%d")
        for _ in range(poisson(rng, self._app.runtime_writes)):
            # Two thirds in working hours (UTC), the rest around the clock.
            minute = rng.randint(7 * 60, 19 * 60) if rng.random() < 0.67 else rng.randrange(24 * 60)
            at = at_minute(rng, day.midnight, minute)
            if not day.within(at):
                continue
            pick = rng.random()
            if pick < 0.45:
                relative, operation = f"App_Data/cache/{rng.getrandbits(32):08x}.json", "Add"
            elif pick < 0.65:
                relative, operation = f"App_Data/logs/app-{stamp}.log", "Modify"
            elif pick < 0.9:
                relative = (
                    f"media/uploads/{day.date:%Y/%m}/"
                    f"{rng.getrandbits(40):010x}.{rng.choice(('jpg', 'png', 'pdf'))}"
                )
                operation = "Add"
            else:
                relative = f"App_Data/cache/{rng.getrandbits(32):08x}.json"
                operation = "Delete"
            rec.file(
                rng,
                site=self._site,
                relative=relative,
                at=at,
                operation=operation,
                process=self._process,
            )
