"""The ARM operations the simulation emits, with their slot forms and timings."""

from __future__ import annotations

import random
from dataclasses import dataclass

from detectors.simulation.clock import TICKS_PER_MS
from detectors.simulation.ids import between


@dataclass(frozen=True, kw_only=True, slots=True)
class Operation:
    """One ARM operation: its RBAC action on a site and on a slot, HTTP method and latency."""

    action: str
    slot_action: str
    method: str
    success_code: str = "OK"
    min_ms: int = 80
    max_ms: int = 900
    accepted_first: bool = False

    def duration(self, rng: random.Random) -> int:
        """Ticks between the Start row and the end row of a successful call."""
        return between(rng, self.min_ms, self.max_ms) * TICKS_PER_MS


def _op(
    tail: str,
    method: str = "POST",
    *,
    success_code: str = "OK",
    min_ms: int = 80,
    max_ms: int = 900,
    accepted_first: bool = False,
) -> Operation:
    return Operation(
        action=f"Microsoft.Web/sites/{tail}",
        slot_action=f"Microsoft.Web/sites/slots/{tail}",
        method=method,
        success_code=success_code,
        min_ms=min_ms,
        max_ms=max_ms,
        accepted_first=accepted_first,
    )


PUBLISHXML = _op("publishxml/action", min_ms=150, max_ms=1300)
CONFIG_LIST = _op("config/list/action", min_ms=60, max_ms=600)
CONFIG_WRITE = _op("config/Write", "PUT", min_ms=400, max_ms=3500)
NEWPASSWORD = _op("newpassword/action", min_ms=500, max_ms=2500)
BASIC_AUTH_FTP_WRITE = _op(
    "basicPublishingCredentialsPolicies/ftp/Write", "PUT", min_ms=300, max_ms=1500
)
BASIC_AUTH_SCM_WRITE = _op(
    "basicPublishingCredentialsPolicies/scm/Write", "PUT", min_ms=300, max_ms=1500
)
HOST_LISTKEYS = _op("host/listkeys/action", min_ms=200, max_ms=1800)
FUNCTIONS_LISTKEYS = _op("functions/listkeys/action", min_ms=200, max_ms=1500)
FUNCTIONS_LISTSECRETS = _op("functions/listsecrets/action", min_ms=200, max_ms=1500)
HOST_FUNCTIONKEYS_WRITE = _op("host/functionkeys/write", "PUT", min_ms=300, max_ms=2000)
CONTINUOUS_WEBJOB_START = _op("continuouswebjobs/start/action", min_ms=300, max_ms=2500)
CONTINUOUS_WEBJOB_STOP = _op("continuouswebjobs/stop/action", min_ms=300, max_ms=2500)
TRIGGERED_WEBJOB_RUN = _op(
    "triggeredwebjobs/run/action", success_code="Accepted", min_ms=200, max_ms=1600
)
SITE_EXTENSION_WRITE = _op(
    "siteextensions/Write",
    "PUT",
    success_code="Created",
    min_ms=20_000,
    max_ms=90_000,
    accepted_first=True,
)
DEPLOYMENT_WRITE = _op("deployments/Write", "PUT", success_code="Created", min_ms=900, max_ms=7000)
RESTART = _op("restart/action", min_ms=1500, max_ms=9000)
SLOT_SWAP = _op(
    "slotsswap/action", success_code="OK", min_ms=30_000, max_ms=120_000, accepted_first=True
)
SYNC_FUNCTION_TRIGGERS = _op("syncfunctiontriggers/action", min_ms=500, max_ms=4000)
