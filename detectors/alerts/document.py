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


class ActorDoc(TypedDict):
    """Someone whose activity an alert lists: what they did, with which tools, from where.

    `role` is `principal` for the alert's principal and `other` for anyone else whose
    activity the alert carries (a `$site` login made with credentials the principal took).
    `name` and the operation names are attacker-controlled text.
    """

    role: str
    id: str
    name: str
    type: str
    appIds: list[str]
    tools: list[str]
    sourceIps: list[str]
    operations: list[OperationDoc]
    firstSeen: str
    lastSeen: str


class ReasonDoc(TypedDict):
    """Why the activity is suspicious, with its weight."""

    code: str
    message: str
    weight: float


class TechniqueDoc(TypedDict):
    """A MITRE ATT&CK technique (from 1.1 with the tactics it serves)."""

    id: str
    name: str
    tactics: NotRequired[list[str]]


class NextStepDoc(TypedDict):
    """What to check next for one reason code of the alert."""

    code: str
    step: str


class BurstDoc(TypedDict):
    """The burst an alert belongs to (see the schema); from schema 1.1 also the burst's
    whole activity so far, which its reasons describe."""

    id: str
    sequence: int
    firstSeen: str
    repeats: int
    lastSeen: NotRequired[str]
    resources: NotRequired[list[ResourceDoc]]
    operations: NotRequired[list[OperationDoc]]
    actors: NotRequired[list[ActorDoc]]
    omitted: NotRequired[int]


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
    actors: NotRequired[list[ActorDoc]]
    riskScore: NotRequired[int]
    tenantId: NotRequired[str | None]
    detectorVersion: NotRequired[str]
