"""What a detection declares about itself, and what it returns."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from detectors.model.observation import Observation, OperationFamily, Principal, SourceTable
from detectors.model.reasons import Reason


class Severity(enum.StrEnum):
    """How urgently an analyst should look."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


@dataclass(frozen=True, kw_only=True, slots=True)
class Technique:
    """A MITRE ATT&CK technique."""

    id: str
    name: str
    tactics: tuple[str, ...] = ()
    """The ATT&CK tactics the technique serves (its matrix columns), by name."""


@dataclass(frozen=True, kw_only=True, slots=True)
class DetectionSpec:
    """A detection as data: what it looks at, what it means, and how to follow it up."""

    id: str
    title: str
    description: str
    tables: tuple[SourceTable, ...]
    families: frozenset[OperationFamily]
    mitre: tuple[Technique, ...]
    severity_rules: tuple[str, ...]
    benign_causes: tuple[str, ...]
    investigation: tuple[str, ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class Finding:
    """What a detection concluded about one principal's burst of activity."""

    detection: DetectionSpec
    principal: Principal
    observations: tuple[Observation, ...]
    reasons: tuple[Reason, ...]
    score: float
    severity: Severity | None
    """None when the score stays under the alert threshold."""
