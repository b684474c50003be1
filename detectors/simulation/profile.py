"""What to simulate (the organisation's profile) and what was injected (scenario labels)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from detectors.model.errors import ConfigurationError

CREDENTIAL_DOWNLOAD = "appservice-credential-download"
WEBJOB_ACTIVITY = "appservice-webjob-activity"

# Each attack kind and the detections that should fire on it.
ATTACK_DETECTIONS: dict[str, tuple[str, ...]] = {
    "credential-harvest": (CREDENTIAL_DOWNLOAD,),
    "pipeline-sp-abuse": (CREDENTIAL_DOWNLOAD,),
    "basic-auth-reenabled": (CREDENTIAL_DOWNLOAD,),
    "webjob-persistence": (WEBJOB_ACTIVITY, CREDENTIAL_DOWNLOAD),
    "repetitive-webjob-runs": (WEBJOB_ACTIVITY,),
    "failed-probing": (CREDENTIAL_DOWNLOAD,),
    "function-keys-theft": (CREDENTIAL_DOWNLOAD,),
    "publish-profile-reset": (CREDENTIAL_DOWNLOAD,),
    "webjob-tampering": (WEBJOB_ACTIVITY,),
    # The product-teams shape's hard kinds (issue #22): each looks benign alone.
    "admin-takeover": (CREDENTIAL_DOWNLOAD,),
    "slow-campaign": (CREDENTIAL_DOWNLOAD,),
    "shared-source": (CREDENTIAL_DOWNLOAD,),
}
# The kinds the default shape injects ('all').
ALL_ATTACKS: tuple[str, ...] = tuple(ATTACK_DETECTIONS)[:9]
# Kinds that need the product-teams shape's people (guests) and multi-day spans.
PRODUCT_TEAMS_ATTACKS: tuple[str, ...] = ("admin-takeover", "slow-campaign", "shared-source")
# The organisation shapes `detector simulate --shape` knows.
DEFAULT_SHAPE = "default"
PRODUCT_TEAMS = "product-teams"
SHAPES: tuple[str, ...] = (DEFAULT_SHAPE, PRODUCT_TEAMS)


def all_attacks(shape: str) -> tuple[str, ...]:
    """Every attack kind a shape injects when asked for 'all'."""
    return ALL_ATTACKS + PRODUCT_TEAMS_ATTACKS if shape == PRODUCT_TEAMS else ALL_ATTACKS


@dataclass(frozen=True, kw_only=True, slots=True)
class OrgProfile:
    """An organisation to simulate and the attacks to inject into its activity."""

    seed: int = 7
    start: datetime
    days: int = 21
    developers: int = 8
    admins: int = 2
    pipelines: int = 4
    managed_identities: int = 2
    monitoring_scripts: int = 1
    sites: int = 12
    subscriptions: int = 2
    onboarding: int = 1
    attacks: tuple[str, ...] = ALL_ATTACKS
    learning_days: int = 14
    shape: str = DEFAULT_SHAPE

    def __post_init__(self) -> None:
        problems = self._problems()
        if problems:
            raise ConfigurationError("invalid simulation profile: " + "; ".join(problems))

    @property
    def end(self) -> datetime:
        """The first instant after the simulated period."""
        return self.start + timedelta(days=self.days)

    def _problems(self) -> list[str]:
        problems: list[str] = []
        if self.start.tzinfo is None or self.start.utcoffset() != timedelta(0):
            problems.append(f"start must be an aware UTC datetime, got {self.start!r}")
        if self.days < 1:
            problems.append(f"days must be at least 1, got {self.days}")
        counts = {
            "developers": self.developers,
            "admins": self.admins,
            "pipelines": self.pipelines,
            "managed_identities": self.managed_identities,
            "monitoring_scripts": self.monitoring_scripts,
            "onboarding": self.onboarding,
            "learning_days": self.learning_days,
        }
        problems.extend(
            f"{name} must not be negative, got {n}" for name, n in counts.items() if n < 0
        )
        if self.sites < 1 or self.subscriptions < 1:
            problems.append("sites and subscriptions must be at least 1")
        if self.onboarding > self.developers:
            problems.append(
                f"onboarding ({self.onboarding}) exceeds developers ({self.developers})"
            )
        unknown = [kind for kind in self.attacks if kind not in ATTACK_DETECTIONS]
        if unknown:
            problems.append(f"unknown attack kinds {unknown}; known: {list(ATTACK_DETECTIONS)}")
        if self.shape not in SHAPES:
            problems.append(f"unknown shape {self.shape!r}; known: {list(SHAPES)}")
        hard = [kind for kind in self.attacks if kind in PRODUCT_TEAMS_ATTACKS]
        if hard and self.shape != PRODUCT_TEAMS:
            problems.append(f"attack kinds {hard} need shape {PRODUCT_TEAMS!r}")
        if len(set(self.attacks)) != len(self.attacks):
            problems.append("each attack kind may be injected once")
        if self.attacks:
            problems.extend(self._attack_problems())
        return problems

    def _attack_problems(self) -> list[str]:
        problems: list[str] = []
        if self.learning_days >= self.days:
            problems.append(
                f"attacks need days ({self.days}) > learning_days ({self.learning_days})"
            )
        if self.developers - self.onboarding < 1:
            problems.append("attacks need at least one developer present from the start")
        if self.sites < 4:
            problems.append("attacks need at least 4 sites (function apps and WebJob hosts)")
        if "pipeline-sp-abuse" in self.attacks and self.pipelines < 1:
            problems.append("pipeline-sp-abuse needs at least one pipeline")
        return problems


@dataclass(frozen=True, kw_only=True, slots=True)
class ScenarioLabel:
    """One injected attack: who, where, when, and the ids of the rows that are the attack."""

    id: str
    kind: str
    # The detections that should fire on it.
    detections: tuple[str, ...]
    # The Entra object id and the UPN (users) or display name (apps) of the misused identity.
    principal_id: str
    principal_name: str
    # Sites and slots touched, as lower-case resource ids (the rows' `_ResourceId` prefix).
    sites: tuple[str, ...]
    # First and last attack row, to the microsecond (end rounded up).
    start: datetime
    end: datetime
    # `row_event_id()` of every attack row: EventDataId, or a digest for App Service rows.
    event_ids: tuple[str, ...]
    description: str
