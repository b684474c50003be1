"""The detections this package ships, as data plus a scoring function each."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from detectors.baselines.baseline import PrincipalBaseline
from detectors.baselines.surroundings import Surroundings
from detectors.detections import credential_download, webjob_activity
from detectors.detections.spec import DetectionSpec, Finding, Severity, Technique
from detectors.model.observation import Observation
from detectors.model.reasons import ReasonCode
from detectors.settings.detection import DetectionSettings

Evaluate = Callable[
    [Sequence[Observation], PrincipalBaseline | None, DetectionSettings, Surroundings | None],
    Finding | None,
]
Restate = Callable[[ReasonCode, Sequence[Observation]], str | None]
"""A reason's message said again of a whole burst's activity; None where it cannot be."""


def _nothing_to_restate(_code: ReasonCode, _observations: Sequence[Observation]) -> None:
    return None


@dataclass(frozen=True, kw_only=True, slots=True)
class Detection:
    """A detection's declaration and its scoring function."""

    spec: DetectionSpec
    evaluate: Evaluate
    restate: Restate = _nothing_to_restate


DETECTIONS: tuple[Detection, ...] = (
    Detection(
        spec=credential_download.SPEC,
        evaluate=credential_download.evaluate,
        restate=credential_download.restate,
    ),
    Detection(spec=webjob_activity.SPEC, evaluate=webjob_activity.evaluate),
)
"""The registry: a new detection is a module of this package and one line here."""

CREDENTIAL_DOWNLOAD = credential_download.SPEC.id
WEBJOB_ACTIVITY = webjob_activity.SPEC.id
"""The ids other packages name a detection by (chains add reasons to their findings)."""


def spec_of(detection_id: str) -> DetectionSpec:
    """The declaration of a registered detection; KeyError for an unknown id."""
    for detection in DETECTIONS:
        if detection.spec.id == detection_id:
            return detection.spec
    raise KeyError(detection_id)


def restate_of(detection_id: str) -> Restate:
    """How a registered detection restates its reasons (see `Restate`); KeyError if unknown."""
    for detection in DETECTIONS:
        if detection.spec.id == detection_id:
            return detection.restate
    raise KeyError(detection_id)


def catalogue() -> str:
    """Every detection's declaration as Markdown: what docs/detections.md holds."""
    lines = [
        "# Detections",
        "",
        "Generated from the detections' declarations "
        "(`python -m detectors detections`); a test keeps this file current.",
        "",
    ]
    for detection in DETECTIONS:
        spec = detection.spec
        lines += [f"## {spec.title} (`{spec.id}`)", "", spec.description, ""]
        lines += ["**Reads:** " + ", ".join(f"`{t.value}`" for t in spec.tables) + ".", ""]
        families = ", ".join(f"`{f.value}`" for f in sorted(spec.families))
        lines += [f"**Operation families:** {families}.", ""]
        sections = (
            ("MITRE ATT&CK", [f"{t.id} {t.name}" for t in spec.mitre]),
            ("Severity", list(spec.severity_rules)),
            ("Known benign causes", list(spec.benign_causes)),
            ("Investigation", list(spec.investigation)),
        )
        for heading, items in sections:
            lines += [f"### {heading}", "", *[f"- {item}" for item in items], ""]
    return "\n".join(lines)


__all__ = [
    "CREDENTIAL_DOWNLOAD",
    "DETECTIONS",
    "WEBJOB_ACTIVITY",
    "Detection",
    "DetectionSpec",
    "Finding",
    "Restate",
    "Severity",
    "Technique",
    "catalogue",
    "restate_of",
    "spec_of",
]
