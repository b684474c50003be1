"""The alert document as types: what `render` builds and the window step, the allow gate,
feedback records and the queue read. `docs/alert.schema.json` is the contract consumers
rely on; a test keeps these types and the schema's properties in step.

TypedDicts, not classes: the document is JSON from the moment it is rendered (it is hashed,
trimmed, queued and stored as it is), and the types let the checker see every key read.
(No postponed annotations here: `NotRequired` must be seen at run time for the test that
compares these types with the schema.)
"""

from typing import Any, NotRequired, TypedDict


class PrincipalDoc(TypedDict):
    """Who acted (`name` is attacker-controlled text)."""

    id: str
    name: str
    type: str
    appId: str | None
    tool: str


class ResourceDoc(TypedDict):
    """A site or slot."""

    id: str
    subscriptionId: str
    resourceGroup: str
    site: str
    slot: str | None


class OperationDoc(TypedDict):
    """An operation and outcome with how often it happened."""

    name: str
    count: int
    status: str


class ReasonDoc(TypedDict):
    """Why the activity is suspicious, with its weight."""

    code: str
    message: str
    weight: float


class TechniqueDoc(TypedDict):
    """A MITRE ATT&CK technique."""

    id: str
    name: str


class BurstDoc(TypedDict):
    """The burst an alert belongs to (see the schema)."""

    id: str
    sequence: int
    firstSeen: str
    repeats: int


class AlertDocument(TypedDict):
    """One alert (`schemaVersion` 1.x)."""

    schemaVersion: str
    id: str
    detection: str
    title: str
    severity: str | None
    score: float
    principal: PrincipalDoc
    resource: ResourceDoc
    firstSeen: str
    lastSeen: str
    reasons: list[ReasonDoc]
    mitre: list[TechniqueDoc]
    summary: NotRequired[str]
    resources: NotRequired[list[ResourceDoc]]
    operations: NotRequired[list[OperationDoc]]
    sourceIps: NotRequired[list[str]]
    tools: NotRequired[list[str]]
    history: NotRequired[dict[str, Any]]
    investigation: NotRequired[dict[str, Any]]
    eventIds: NotRequired[list[str]]
    burst: NotRequired[BurstDoc]
    truncated: NotRequired[dict[str, int]]
