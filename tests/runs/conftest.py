"""Fixtures the timer's tests share."""

from __future__ import annotations

import pytest

from detectors.settings.app import DEFAULT_HOLD_MINUTES
from tests.runs.test_timer_end_to_end import Rig, _rig


@pytest.fixture
def five_minute_rig(log_analytics, azurite, storage_names) -> Rig:
    """A deployment with 5-minute steps, a minute to settle, the default hold and half an
    hour to look back on its first run."""
    return _rig(
        log_analytics,
        azurite,
        storage_names,
        DETECTOR_WINDOW_MINUTES="5",
        DETECTOR_SETTLE_SECONDS="60",
        DETECTOR_FIRST_RUN_LOOKBACK_MINUTES="30",
        DETECTOR_HOLD_MINUTES=str(DEFAULT_HOLD_MINUTES),
    )
