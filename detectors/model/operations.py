"""What each App Service operation means: the catalogue behind both detections.

Operation names arrive in any case and with or without `/slots/`; everything here works
on the lower-cased name with the slot segment removed.
"""

from __future__ import annotations

from detectors.model.observation import ClientTool, Observation, OperationFamily

F = OperationFamily

# Operation tail after "microsoft.web/sites/" (slot segment removed) -> family.
_SITE_OPERATIONS: dict[str, OperationFamily] = {
    "publishxml/action": F.CREDENTIAL_READ,
    "config/snapshots/listsecrets/action": F.CREDENTIAL_READ,
    "newpassword/action": F.CREDENTIAL_CHANGE,
    "config/write": F.CONFIG_CHANGE,
    "host/listkeys/action": F.FUNCTION_KEYS_READ,
    "functions/listkeys/action": F.FUNCTION_KEYS_READ,
    "functions/listsecrets/action": F.FUNCTION_KEYS_READ,
    "host/functionkeys/write": F.FUNCTION_KEYS_CHANGE,
    "host/functionkeys/delete": F.FUNCTION_KEYS_CHANGE,
    "host/systemkeys/write": F.FUNCTION_KEYS_CHANGE,
    "host/systemkeys/delete": F.FUNCTION_KEYS_CHANGE,
    "functions/keys/write": F.FUNCTION_KEYS_CHANGE,
    "functions/keys/delete": F.FUNCTION_KEYS_CHANGE,
    "continuouswebjobs/start/action": F.WEBJOB_START,
    "continuouswebjobs/stop/action": F.WEBJOB_STOP,
    "continuouswebjobs/delete": F.WEBJOB_DELETE,
    "triggeredwebjobs/run/action": F.WEBJOB_RUN,
    "triggeredwebjobs/delete": F.WEBJOB_DELETE,
    "siteextensions/write": F.SITE_EXTENSION,
    "siteextensions/delete": F.SITE_EXTENSION,
    "publish/action": F.DEPLOYMENT,
    "deployments/write": F.DEPLOYMENT,
    "sourcecontrols/write": F.DEPLOYMENT,
    "sync/action": F.DEPLOYMENT,
    "extensions/write": F.DEPLOYMENT,
    "extensions/api/action": F.DEPLOYMENT,
    "hostruntime/host/action": F.DEPLOYMENT,
}

PUBLISHING_USERS_WRITE = "microsoft.web/publishingusers/write"
"""Sets the user-level deployment credentials (`az webapp deployment user set`)."""

_CONFIG_LIST = "config/list/action"
_BASIC_AUTH_PREFIX = "basicpublishingcredentialspolicies"

# `config/list` reads that return secrets; anything else it returns is plain configuration.
SECRET_CONFIG_SUFFIXES: frozenset[str] = frozenset(
    {
        "publishingcredentials",
        "appsettings",
        "connectionstrings",
        "authsettings",
        "authsettingsv2",
        "azurestorageaccounts",
        "backup",
        "pushsettings",
    }
)

# Suffixes that are the deployment credentials themselves, not just secrets the app uses.
DEPLOYMENT_CREDENTIAL_SUFFIXES: frozenset[str] = frozenset({"publishingcredentials"})

CLIENT_APPS: dict[str, ClientTool] = {
    "04b07795-8ddb-461a-bbee-02f9e1bf7b46": ClientTool.AZURE_CLI,
    "1950a258-227b-4e31-a9cf-717495945fc2": ClientTool.AZURE_POWERSHELL,
    "c44b4083-3bb0-49c1-b47d-974e53cbdf3c": ClientTool.PORTAL,
    "04f0c124-f2bc-4f59-8241-bf6df9866bbd": ClientTool.VISUAL_STUDIO,
    "872cd9fa-d31f-45e0-9eab-6e460a02d1f1": ClientTool.VISUAL_STUDIO,
    "aebc6443-996d-45c2-90f0-388ff96faa56": ClientTool.VS_CODE,
    "2233b157-f44d-4812-b777-036cdaf9a96e": ClientTool.CLOUD_SHELL,
    "abfa0a7c-a6b6-4736-8310-5855508787cd": ClientTool.APP_SERVICE_PLATFORM,
}

# Tools an attacker scripts with: their first use by a principal weighs more.
SCRIPTING_TOOLS: frozenset[ClientTool] = frozenset(
    {ClientTool.AZURE_CLI, ClientTool.AZURE_POWERSHELL, ClientTool.CLOUD_SHELL}
)


def operation_names() -> tuple[str, ...]:
    """Every ARM operation name the detections read, lower case, site and slot forms."""
    tails = [*_SITE_OPERATIONS, _CONFIG_LIST]
    tails += [f"{_BASIC_AUTH_PREFIX}/{kind}/write" for kind in ("ftp", "scm")]
    names = {PUBLISHING_USERS_WRITE}
    for tail in tails:
        names.add(f"microsoft.web/sites/{tail}")
        names.add(f"microsoft.web/sites/slots/{tail}")
    return tuple(sorted(names))


def classify(operation: str, config_suffix: str | None) -> OperationFamily | None:
    """Family of an ARM operation name (any case), or None when the detector ignores it."""
    name = operation.lower()
    if name == PUBLISHING_USERS_WRITE:
        return F.CREDENTIAL_CHANGE
    if not name.startswith("microsoft.web/sites/"):
        return None
    tail = name[len("microsoft.web/sites/") :]
    if tail.startswith("slots/"):
        tail = tail[len("slots/") :]
    if tail == _CONFIG_LIST:
        return F.CREDENTIAL_READ if config_suffix in SECRET_CONFIG_SUFFIXES else F.CONFIG_READ
    if tail.startswith(_BASIC_AUTH_PREFIX) and tail.endswith("/write"):
        return F.BASIC_AUTH_POLICY
    return _SITE_OPERATIONS.get(tail)


def tool_for_app(app_id: str | None) -> ClientTool:
    """The client tool a token's application id stands for."""
    if not app_id:
        return ClientTool.UNKNOWN
    return CLIENT_APPS.get(app_id.lower(), ClientTool.OTHER)


def tool_for_protocol(protocol: str | None) -> ClientTool:
    """The client tool behind an App Service audit log login."""
    value = (protocol or "").lower()
    if "ftp" in value:
        return ClientTool.FTP
    if "deploy" in value:
        return ClientTool.WEB_DEPLOY
    if value:
        return ClientTool.KUDU
    return ClientTool.UNKNOWN


FAMILY_ACTIVITIES: dict[OperationFamily, str] = {
    F.CREDENTIAL_READ: "reading credentials",
    F.CONFIG_READ: "reading configuration",
    F.CREDENTIAL_CHANGE: "changing deployment credentials",
    F.CONFIG_CHANGE: "changing configuration",
    F.BASIC_AUTH_POLICY: "changing the basic-auth publishing policy",
    F.FUNCTION_KEYS_READ: "listing function keys",
    F.FUNCTION_KEYS_CHANGE: "changing function keys",
    F.WEBJOB_RUN: "running WebJobs",
    F.WEBJOB_START: "starting WebJobs",
    F.WEBJOB_STOP: "stopping WebJobs",
    F.WEBJOB_DELETE: "deleting WebJobs",
    F.WEBJOB_FILE_CHANGE: "writing WebJob files",
    F.SCM_LOGIN: "logging in to Kudu or FTP",
    F.SITE_EXTENSION: "installing site extensions",
    F.DEPLOYMENT: "deploying",
}
"""What doing an operation family is called in an analyst's words."""


def takes_deployment_credentials(obs: Observation) -> bool:
    """Whether an observation read deployment credentials: a publish profile or function keys
    (reads without a configuration suffix), or a site's publishing credentials. Both
    detections and the chains ask this one question."""
    if obs.family is not OperationFamily.CREDENTIAL_READ:
        return False
    return obs.config_suffix is None or obs.config_suffix in DEPLOYMENT_CREDENTIAL_SUFFIXES
