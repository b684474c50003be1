"""Who can call ARM: users, service principals and managed identities, with their roles."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class IdentityKind(enum.StrEnum):
    """The kind of Entra principal behind a call."""

    USER = "user"
    SERVICE_PRINCIPAL = "servicePrincipal"
    MANAGED_IDENTITY = "managedIdentity"


@dataclass(frozen=True, kw_only=True, slots=True)
class Role:
    """An Azure role; `acts` says whether it allows the write and action operations we emit."""

    name: str
    definition_id: str
    acts: bool


OWNER = Role(name="Owner", definition_id="8e3af657a8ff443ca75c2fe8c4bcb635", acts=True)
CONTRIBUTOR = Role(name="Contributor", definition_id="b24988ac618042a0ab8820f7382dd24c", acts=True)
WEBSITE_CONTRIBUTOR = Role(
    name="Website Contributor", definition_id="de139f84175647ae9be6808fbbe84772", acts=True
)
READER = Role(name="Reader", definition_id="acdd72a7338548efbd42f606fba81ae7", acts=False)


@dataclass(frozen=True, kw_only=True, slots=True)
class RoleAssignment:
    """A role granted at a scope (a subscription or resource group id)."""

    id: str
    role: Role
    scope: str

    @property
    def scope_key(self) -> str:
        """The scope, lower case with a trailing slash, for prefix matching."""
        return self.scope.lower() + "/"


@dataclass(frozen=True, kw_only=True, slots=True)
class Identity:
    """An Entra principal and the static facts its tokens and log rows carry."""

    key: str
    kind: IdentityKind
    object_id: str
    display_name: str
    tenant_id: str
    subject: str
    assignments: tuple[RoleAssignment, ...]
    upn: str | None = None
    given_name: str | None = None
    surname: str | None = None
    puid: str | None = None
    groups: tuple[str, ...] = ()
    auth_methods: str = "pwd,mfa"
    app_id: str | None = None
    credential_type: str = "1"
    token_version: int = 1
    mi_resource_id: str | None = None

    @property
    def caller(self) -> str:
        """The `Caller` column: the UPN of a user, the object id of anything else."""
        return self.upn if self.upn is not None else self.object_id

    @property
    def evidence_type(self) -> str:
        """The `principalType` RBAC evidence names."""
        return "User" if self.kind is IdentityKind.USER else "ServicePrincipal"

    def assignment_for(self, resource_key: str) -> RoleAssignment | None:
        """The first assignment allowing actions on a resource (lower-case id), if any."""
        probe = resource_key + "/"
        for assignment in self.assignments:
            if assignment.role.acts and probe.startswith(assignment.scope_key):
                return assignment
        return None
