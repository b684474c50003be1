"""The immutable observation model every source normalises into.

Nothing here does I/O, reads a clock or imports an Azure SDK.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class SourceTable(enum.StrEnum):
    """The Log Analytics tables the detector reads."""

    AZURE_ACTIVITY = "AzureActivity"
    APP_SERVICE_AUDIT = "AppServiceAuditLogs"
    APP_SERVICE_FILE_AUDIT = "AppServiceFileAuditLogs"


class PrincipalType(enum.StrEnum):
    """Who acted: an Entra user, an app, a managed identity, a site's publishing user."""

    USER = "user"
    SERVICE_PRINCIPAL = "servicePrincipal"
    MANAGED_IDENTITY = "managedIdentity"
    PUBLISHING_USER = "publishingUser"
    UNKNOWN = "unknown"


class ClientTool(enum.StrEnum):
    """The client application behind a call, from the token's `appid` claim."""

    AZURE_CLI = "azureCli"
    AZURE_POWERSHELL = "azurePowerShell"
    PORTAL = "portal"
    VISUAL_STUDIO = "visualStudio"
    VS_CODE = "vsCode"
    CLOUD_SHELL = "cloudShell"
    APP_SERVICE_PLATFORM = "appServicePlatform"
    KUDU = "kudu"
    FTP = "ftp"
    WEB_DEPLOY = "webDeploy"
    OTHER = "other"
    UNKNOWN = "unknown"


class OperationFamily(enum.StrEnum):
    """What an operation means for the detections, whatever its exact name."""

    CREDENTIAL_READ = "credentialRead"
    CONFIG_READ = "configRead"
    CREDENTIAL_CHANGE = "credentialChange"
    CONFIG_CHANGE = "configChange"
    BASIC_AUTH_POLICY = "basicAuthPolicy"
    FUNCTION_KEYS_READ = "functionKeysRead"
    FUNCTION_KEYS_CHANGE = "functionKeysChange"
    WEBJOB_RUN = "webjobRun"
    WEBJOB_START = "webjobStart"
    WEBJOB_STOP = "webjobStop"
    WEBJOB_DELETE = "webjobDelete"
    WEBJOB_FILE_CHANGE = "webjobFileChange"
    SCM_LOGIN = "scmLogin"
    SITE_EXTENSION = "siteExtension"
    DEPLOYMENT = "deployment"


class Status(enum.StrEnum):
    """Outcome of an operation, with the legacy and new vocabularies folded together."""

    STARTED = "started"
    ACCEPTED = "accepted"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True, kw_only=True, slots=True)
class Principal:
    """The identity that acted."""

    id: str
    name: str
    type: PrincipalType

    @property
    def unattributed(self) -> bool:
        """Whether this stands in for an unknown actor (a file change no login explains)."""
        return self.id.startswith(UNATTRIBUTED_PREFIX)


UNATTRIBUTED_PREFIX = "unattributed:"


@dataclass(frozen=True, kw_only=True, slots=True)
class ResourceRef:
    """The App Service site (and slot) an operation touched."""

    id: str
    subscription_id: str
    resource_group: str
    site: str
    slot: str | None = None
    site_key: str = field(init=False, repr=False, compare=False)
    """A stable lower-case key for the site or slot, across subscriptions."""

    @property
    def site_id(self) -> str:
        """The site's own resource id, the same for all its slots."""
        return self.id.split("/slots/", 1)[0]

    @property
    def name(self) -> str:
        """`site` or `site/slot`, as an analyst names it."""
        return f"{self.site}/{self.slot}" if self.slot else self.site

    def __post_init__(self) -> None:
        base = f"{self.subscription_id}/{self.resource_group}/{self.site}".lower()
        key = f"{base}/{self.slot.lower()}" if self.slot else base
        object.__setattr__(self, "site_key", key)


ENVIRONMENT_WORDS = frozenset(
    {
        *("dev", "develop", "development", "sandbox", "sbx", "int", "integration"),
        *("test", "tst", "qa", "uat", "perf", "demo"),
        *("stage", "staging", "stg", "preprod", "ppe", "pre"),
        *("prod", "prd", "production", "live"),
    }
)
"""Words that name an environment in a site's name (`contoso-orders-api-prod`)."""

PRODUCTION_WORDS = frozenset({"prod", "prd", "production", "live"})
"""The environment words that name production."""


def is_non_production(site_key: str) -> bool:
    """Whether a site is, by its name or its resource group's, a development, test or staging
    environment (`func-cobalt-payments-dev`, `rg-cobalt-payments-test`): one whose name has
    an environment word and no production word. A site whose names say nothing is taken for
    production, and so is every slot of a production site (a swap puts it in production)."""
    parts = site_key.split("/")
    names = [part.lower() for part in parts[1:3]]
    words = {word for name in names for word in name.replace("_", "-").split("-")}
    return bool(words & ENVIRONMENT_WORDS) and not words & PRODUCTION_WORDS


def is_automation_id(principal_id: str) -> bool:
    """Whether a principal id is an Entra object id (a service principal's or a managed
    identity's); people are kept by their UPN, publishing users as `$site`."""
    return "@" not in principal_id and not principal_id.startswith("$")


def app_of(site_key: str) -> str:
    """The app a site or slot is one environment of: its site name without the words that
    name an environment (`sub/rg/contoso-orders-api-prod/staging` -> `contoso-orders-api`).

    Site names are unique across Azure, so the name alone tells one app from another; the
    subscription and group are left out because environments often live in different ones.
    """
    parts = site_key.split("/")
    name = parts[2] if len(parts) > 2 else site_key
    words = [word for word in name.split("-") if word not in ENVIRONMENT_WORDS]
    return "-".join(words) or name


@dataclass(frozen=True, kw_only=True, slots=True)
class Observation:
    """One counted operation: an action, login or file change, or `count` alike in a minute.

    Log Analytics returns actions already grouped by who, what, where, from where and
    minute (see `grouping`); `count` says how many actions the observation stands for.
    """

    event_id: str
    action_key: str
    time: datetime
    table: SourceTable
    operation: str
    family: OperationFamily
    status: Status
    principal: Principal
    app_id: str | None
    tool: ClientTool
    source_ip: str | None
    resource: ResourceRef
    config_suffix: str | None = None
    webjob: str | None = None
    detail: str | None = None
    """A login's protocol (Kudu, FTP, WebDeploy), a file change's path, or which keys a key
    operation touched (`host/default`, `functions/<name>`)."""
    http_status: str | None = None
    count: int = 1
    ingested: datetime | None = None
    """When the row became queryable, where the input says (an export's `IngestionTime`
    column): replay then scores it in the timer step that would have read it."""
    tenant_id: str | None = None
    """The Entra tenant of the caller's token (its `tid` claim), where the row carries it."""


@dataclass(frozen=True, kw_only=True, slots=True)
class RawRow:
    """One row as a source read it: Log Analytics column names, values untouched."""

    source: str
    line: int
    table: SourceTable | None
    fields: Mapping[str, Any] = field(repr=False)


@dataclass(frozen=True, kw_only=True, slots=True)
class RejectedRow:
    """A row that could not be used, with where it was and why."""

    source: str
    line: int
    reason: str
