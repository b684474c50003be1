"""What actors do, recorded as row specs: ARM calls, Kudu/FTP logins and file changes.

A spec holds every value its rows will show, drawn when the actor acts, so rendering is pure
formatting and a spec renders to the same rows whenever it is rendered.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass

import orjson

from detectors.simulation.clients import Client
from detectors.simulation.clock import TICKS_PER_MS
from detectors.simulation.identities import Identity, RoleAssignment
from detectors.simulation.ids import between, guids
from detectors.simulation.operations import Operation
from detectors.simulation.organisation import Site
from detectors.simulation.tokens import TokenIssuer

NEW_STATUSES = ("Start", "Accept", "Success", "Failure")
LEGACY_STATUSES = ("Started", "Accepted", "Succeeded", "Failed")
_LEGACY_SHARE = 0.07


@dataclass(frozen=True, kw_only=True, slots=True)
class ArmCall:
    """One ARM request and the two or three AzureActivity rows it leaves."""

    operation_name: str
    action: str
    method: str
    site: Site
    resource: str
    resource_key: str
    resource_upper: str
    identity: Identity
    claims: str
    address: str
    correlation_id: str
    operation_id: str
    service_request_id: str
    grant: RoleAssignment | None
    authorization: str
    http_request: str
    end_code: str
    # (ticks, ActivityStatusValue, EventDataId, EventSubmissionTimestamp ticks) per row.
    steps: tuple[tuple[int, str, str, int], ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class ScmLogin:
    """A Kudu, FTP or Web Deploy login: one AppServiceAuditLogs row."""

    at: int
    site: Site
    user: str
    display_name: str
    address: str
    protocol: str


@dataclass(frozen=True, kw_only=True, slots=True)
class FileChange:
    """A change under wwwroot: one AppServiceFileAuditLogs row."""

    at: int
    site: Site
    path: str
    operation: str
    process: str


Spec = ArmCall | ScmLogin | FileChange
# (ticks, origin, sequence, spec, step): sorts by time, ties broken without comparing specs.
Pending = tuple[int, int, int, Spec, int]


class Session:
    """One principal at one tool from one address: what the calls of a sitting share."""

    __slots__ = ("address", "client", "identity", "rec", "rng", "token_cache")

    def __init__(
        self,
        rec: Recorder,
        rng: random.Random,
        *,
        identity: Identity,
        client: Client,
        address: str,
        token_cache: str = "",
    ) -> None:
        self.rec = rec
        self.rng = rng
        self.identity = identity
        self.client = client
        self.address = address
        self.token_cache = token_cache
        """Tokens are cached per principal, client and this key (an attacker has its own)."""

    def call(
        self,
        operation: Operation,
        site: Site,
        at: int,
        child: str = "",
        failure: str | None = None,
    ) -> int:
        """Records one ARM request of the sitting; returns when it ended."""
        return self.rec.call(
            self.rng,
            identity=self.identity,
            client=self.client,
            operation=operation,
            site=site,
            at=at,
            address=self.address,
            child=child,
            failure=failure,
            session=self.token_cache,
        )

    def allowed(self, site: Site) -> bool:
        """Whether the principal may act on the site."""
        return self.rec.allowed(self.identity, site)


class Recorder:
    """Collects the specs of what actors do, in the order they act."""

    __slots__ = ("_evidence", "_grants", "_origin", "_sequence", "pending", "tokens")

    def __init__(self, *, tokens: TokenIssuer, origin: int = 0) -> None:
        self.tokens = tokens
        self.pending: list[Pending] = []
        self._origin = origin
        self._sequence = itertools.count()
        self._grants: dict[tuple[str, str], tuple[RoleAssignment | None]] = {}
        self._evidence: dict[tuple[str, str], dict[str, str]] = {}

    def call(
        self,
        rng: random.Random,
        *,
        identity: Identity,
        client: Client,
        operation: Operation,
        site: Site,
        at: int,
        address: str,
        child: str = "",
        failure: str | None = None,
        session: str = "",
    ) -> int:
        """Records one ARM request (denied unless the identity holds a role); returns its end."""
        random = rng.random
        at += int(random() * TICKS_PER_MS)
        grant = None if failure == "Forbidden" else self._grant(identity, site)
        action = operation.slot_action if site.slot else operation.action
        pick = random()
        if pick < 0.88:
            name = action.upper()
        elif pick < 0.94:
            name = action.lower()
        else:
            name = action
        statuses = LEGACY_STATUSES if random() < _LEGACY_SHARE else NEW_STATUSES
        if grant is None or failure is not None:
            end_code = "Forbidden" if grant is None else str(failure)
            end_status = statuses[3]
            end = at + between(rng, 40, 400) * TICKS_PER_MS
        else:
            end_code = operation.success_code
            end_status = statuses[2]
            end = at + operation.duration(rng)
        accepted = operation.accepted_first and end_status == statuses[2]
        ids = guids(rng, 7 if accepted else 6)
        steps = [(at, statuses[0], ids[4], at + between(rng, 150, 4000) * TICKS_PER_MS)]
        if accepted:
            middle = at + between(rng, 120, 900) * TICKS_PER_MS
            steps.append(
                (middle, statuses[1], ids[6], middle + between(rng, 150, 4000) * TICKS_PER_MS)
            )
        steps.append((end, end_status, ids[5], end + between(rng, 150, 4000) * TICKS_PER_MS))
        resource = site.arm_id + child
        spec = ArmCall(
            operation_name=name,
            action=action,
            method=operation.method,
            site=site,
            resource=resource,
            resource_key=site.key + child.lower(),
            resource_upper=site.upper_id + child.upper(),
            identity=identity,
            claims=self.tokens.claims(
                rng, identity=identity, client=client, at=at, address=address, session=session
            ),
            address=address,
            correlation_id=ids[0],
            operation_id=ids[2],
            service_request_id=ids[3],
            grant=grant,
            authorization=self._authorization(identity, grant, action, resource),
            http_request=orjson.dumps(
                {"clientRequestId": ids[1], "clientIpAddress": address, "method": operation.method}
            ).decode(),
            end_code=end_code,
            steps=tuple(steps),
        )
        pending, origin, sequence = self.pending, self._origin, self._sequence
        for index, step in enumerate(steps):
            pending.append((step[0], origin, next(sequence), spec, index))
        return end

    def allowed(self, identity: Identity, site: Site) -> bool:
        """Whether the identity holds a role that lets it act on the site."""
        return self._grant(identity, site) is not None

    def basic_login(
        self, rng: random.Random, *, site: Site, at: int, address: str, protocol: str = "Kudu"
    ) -> None:
        """Records a login with the site's publishing credentials (`$app`)."""
        user = site.publishing_user
        self._add(
            ScmLogin(
                at=at + int(rng.random() * TICKS_PER_MS),
                site=site,
                user=user,
                display_name=user,
                address=address,
                protocol=protocol,
            )
        )

    def entra_login(
        self, rng: random.Random, *, site: Site, identity: Identity, at: int, address: str
    ) -> None:
        """Records an Entra sign-in to the site's Kudu (SCM) endpoint."""
        self._add(
            ScmLogin(
                at=at + int(rng.random() * TICKS_PER_MS),
                site=site,
                user=identity.puid or identity.object_id,
                display_name=identity.upn or identity.display_name,
                address=address,
                protocol="Kudu",
            )
        )

    def file(
        self,
        rng: random.Random,
        *,
        site: Site,
        relative: str,
        at: int,
        operation: str = "Modify",
        process: str = "kudu",
    ) -> None:
        """Records a change to a file under the site's wwwroot (if the site audits files)."""
        if site.app.file_audit:
            self._add(
                FileChange(
                    at=at + int(rng.random() * TICKS_PER_MS),
                    site=site,
                    path=site.path(relative),
                    operation=operation,
                    process=process,
                )
            )

    def _add(self, spec: ScmLogin | FileChange) -> None:
        self.pending.append((spec.at, self._origin, next(self._sequence), spec, 0))

    def _authorization(
        self, identity: Identity, grant: RoleAssignment | None, action: str, scope: str
    ) -> str:
        """The Authorization column: action, scope and, when a role allowed it, the evidence."""
        body: dict[str, object] = {"action": action, "scope": scope}
        if grant is not None:
            key = (identity.key, grant.id)
            evidence = self._evidence.get(key)
            if evidence is None:
                evidence = {
                    "role": grant.role.name,
                    "roleAssignmentScope": grant.scope,
                    "roleAssignmentId": grant.id,
                    "roleDefinitionId": grant.role.definition_id,
                    "principalId": identity.object_id.replace("-", ""),
                    "principalType": identity.evidence_type,
                }
                self._evidence[key] = evidence
            body["evidence"] = evidence
        return orjson.dumps(body).decode()

    def _grant(self, identity: Identity, site: Site) -> RoleAssignment | None:
        key = (identity.key, site.key)
        cached = self._grants.get(key)
        if cached is None:
            cached = (identity.assignment_for(site.key),)
            self._grants[key] = cached
        return cached[0]
