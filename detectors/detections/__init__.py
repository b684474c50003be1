"""The detections this package ships, as data plus a scoring function each."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from detectors.baseline import PrincipalBaseline
from detectors.detections import credential_download, webjob_activity
from detectors.detections.spec import DetectionSpec, Finding, Severity, Technique
from detectors.model import Observation
from detectors.settings import DetectionSettings

Evaluate = Callable[
    [Sequence[Observation], PrincipalBaseline | None, DetectionSettings], Finding | None
]


@dataclass(frozen=True, kw_only=True, slots=True)
class Detection:
    """A detection's declaration and its scoring function."""

    spec: DetectionSpec
    evaluate: Evaluate


DETECTIONS: tuple[Detection, ...] = (
    Detection(spec=credential_download.SPEC, evaluate=credential_download.evaluate),
    Detection(spec=webjob_activity.SPEC, evaluate=webjob_activity.evaluate),
)

__all__ = ["DETECTIONS", "Detection", "DetectionSpec", "Finding", "Severity", "Technique"]
