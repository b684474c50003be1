"""The Bicep deployment keeps its promises: identities, roles, settings, and nothing secret out.

There is no Bicep CLI offline, so every template is parsed with pycep-parser and its structure is
asserted here; checkov (`make infra-check`) adds its security checks on top. Neither replaces
`az bicep build` and `az deployment sub what-if`, the first steps of docs/deploy.md.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from pycep import BicepParser

import function_app
from detectors.settings.app import (
    _NUMBERS,
    APP_SETTINGS,
    DEFAULT_LOGS_ENDPOINT,
    DEFAULT_SCHEDULE,
    STORAGE,
    AppSettings,
    OperatorSettings,
)
from detectors.settings.detection import DetectionSettings
from tests.services.functions_host import indexed_function

ROOT = Path(__file__).resolve().parent.parent
INFRA = ROOT / "infra"
MODULES = INFRA / "modules"

HOST_ONLY_SETTINGS = frozenset(
    {
        # Read by the Functions host, not by detectors/: identity-based host storage ...
        "AzureWebJobsStorage__accountName",
        "AzureWebJobsStorage__credential",
        "AzureWebJobsStorage__clientId",
        # ... and Application Insights with Entra ID authentication.
        "APPLICATIONINSIGHTS_CONNECTION_STRING",
        "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
        # The host's switch for one function: the notifier is off when no destination is set.
        "AzureWebJobs.detector_notifier.Disabled",
    }
)
LOCAL_ONLY_SETTINGS = frozenset({STORAGE})
"""A storage connection string: the Azurite path. In Azure, storage is reached by identity."""
EXPOSED_DETECTION_SETTINGS = frozenset({"DETECTOR_ALERT_THRESHOLD"})
"""The `DETECTOR_<FIELD>` detection settings the deployment exposes as parameters."""
FORBIDDEN_ON_FLEX = frozenset(
    {"FUNCTIONS_EXTENSION_VERSION", "FUNCTIONS_WORKER_RUNTIME", "AzureWebJobsStorage"}
)

BUILT_IN_ROLES = {
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": "Storage Blob Data Owner",
    "974c5e8b-45b9-4653-ba55-5f855dd0fb88": "Storage Queue Data Contributor",
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": "Storage Table Data Contributor",
    "3913510d-42f4-4e42-8a64-420c390055eb": "Monitoring Metrics Publisher",
    "73c42c96-874c-492b-b04d-ab87d138a893": "Log Analytics Reader",
    "4633458b-17de-408a-b874-0445c86b69e6": "Key Vault Secrets User",
    "749f88d5-cbae-40b8-bcfc-e573ddc772fa": "Monitoring Contributor",
    "92aaf0da-9dab-42b6-94a3-d43ce8d16293": "Log Analytics Contributor",
}
"""Built-in role definition ids (the same in every tenant) and their names."""

# Every role assignment the deployment makes: (file, role, type of the one resource it is scoped
# to). "subscription" appears once: the optional audit-log policy writing diagnostic settings on
# every web app in the subscription it is assigned to.
EXPECTED_ASSIGNMENTS = {
    ("storage.bicep", "Storage Blob Data Owner", "Microsoft.Storage/storageAccounts"),
    ("storage.bicep", "Storage Table Data Contributor", "Microsoft.Storage/storageAccounts"),
    ("storage.bicep", "Storage Queue Data Contributor", "Microsoft.Storage/storageAccounts"),
    ("app-insights.bicep", "Monitoring Metrics Publisher", "Microsoft.Insights/components"),
    ("key-vault.bicep", "Key Vault Secrets User", "Microsoft.KeyVault/vaults"),
    (
        "sentinel-alerts.bicep",
        "Monitoring Metrics Publisher",
        "Microsoft.Insights/dataCollectionRules",
    ),
    ("workspace-role.bicep", "(parameter)", "Microsoft.OperationalInsights/workspaces"),
    ("audit-log-policy.bicep", "Monitoring Contributor", "subscription"),
    # The operators' `detector` commands (operatorsPrincipalId, optional).
    ("operator-roles.bicep", "Storage Table Data Contributor", "Microsoft.Storage/storageAccounts"),
    ("operator-roles.bicep", "Storage Queue Data Contributor", "Microsoft.Storage/storageAccounts"),
}
OPERATOR_MODULES = frozenset({"operator-roles.bicep", "workspace-role.bicep"})
"""Modules whose assignments may go to a user or group: their principal type is a parameter."""
# workspace-role.bicep assigns the role its caller names: the Function App reads the workspace,
# the policy's identity links diagnostic settings to it.
EXPECTED_WORKSPACE_ROLES = {
    ("main.bicep", "workspaceReader", "Log Analytics Reader"),
    ("main.bicep", "operatorsWorkspaceReader", "Log Analytics Reader"),
    ("audit-log-policy.bicep", "workspaceWriter", "Log Analytics Contributor"),
}

GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def bicep_files() -> list[Path]:
    return sorted(INFRA.rglob("*.bicep"))


@cache
def parsed(path: Path) -> dict[str, Any]:
    """The template as pycep-parser reads it, with each `loadJsonContent` variable replaced by
    the JSON it loads (as the Bicep compiler inlines it)."""
    doc = BicepParser().parse(file_path=path)
    for variable in doc.get("variables", {}).values():
        call = variable["value"].get("function") if isinstance(variable["value"], dict) else None
        if call and call["type"] == "load_json_content":
            assert call["parameters"]["json_path"] is None, "a JSON path is not resolved here"
            loaded = (path.parent / call["parameters"]["file_path"]).read_text(encoding="utf-8")
            variable["value"] = json.loads(loaded)
    return doc


def module(name: str) -> dict[str, Any]:
    return parsed(INFRA / name if name == "main.bicep" else MODULES / name)


def body(declaration: dict[str, Any]) -> dict[str, Any]:
    """A resource's or module's own properties, unwrapped from a loop or a condition."""
    config = declaration["config"]
    while "config" in config and ("loop_type" in config or "condition" in config):
        config = config["config"]
    return config


def resources(doc: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {
        name: body(declaration)
        for name, declaration in doc.get("resources", {}).items()
        if declaration["type"] == kind and not declaration["existing"]
    }


def only(doc: dict[str, Any], kind: str) -> dict[str, Any]:
    found = resources(doc, kind)
    assert len(found) == 1, f"expected one {kind}, found {sorted(found)}"
    return next(iter(found.values()))


def dotted(expression: Any) -> str | None:
    """`a.b.c` for a chain of property accesses (pycep nests them), else None.

    `subscription()` stands for the call, so `subscription().id` reads as such.
    """
    if isinstance(expression, str):
        return expression
    if isinstance(expression, dict) and "function" in expression:
        arguments = expression["function"].get("parameters") or {}
        if not any(value is not None for value in arguments.values()):
            return f"{expression['function']['type']}()"
    if isinstance(expression, dict) and "operator" in expression:
        operator = expression["operator"]
        if operator["type"] == "property_accessor":
            left = dotted(operator["operands"]["operand_1"])
            right = dotted(operator["operands"]["operand_2"])
            if left is not None and right is not None:
                return f"{left}.{right}"
    return None


def resolve(expression: Any, doc: dict[str, Any]) -> Any:
    """Replace variable names (and `var.key`) by their values, recursively."""
    variables = doc.get("variables", {})
    if isinstance(expression, dict) and expression.get("operator", {}).get("type") == (
        "index_accessor"
    ):
        operands = expression["operator"]["operands"]
        return resolve(operands["operand_1"], doc)[operands["operand_2"]]
    name = dotted(expression)
    if name is not None:
        head, _, rest = name.partition(".")
        if head in variables:
            value = resolve(variables[head]["value"], doc)
            for key in filter(None, rest.split(".")):
                value = value[key]
            return value
    if isinstance(expression, str) and "${" in expression:
        return re.sub(
            r"\$\{(\w+)\}",
            lambda match: (
                str(variables[match.group(1)]["value"])
                if isinstance(variables.get(match.group(1), {}).get("value"), str)
                else match.group(0)
            ),
            expression,
        )
    if isinstance(expression, dict):
        return {key: resolve(value, doc) for key, value in expression.items()}
    if isinstance(expression, list):
        return [resolve(value, doc) for value in expression]
    return expression


def leaves(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for item in value.values():
            yield from leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from leaves(item)
    else:
        yield value


def role_names(expression: Any, doc: dict[str, Any]) -> set[str]:
    guids = {
        match
        for leaf in leaves(resolve(expression, doc))
        if isinstance(leaf, str)
        for match in GUID.findall(leaf)
    }
    unknown = guids - BUILT_IN_ROLES.keys()
    assert not unknown, f"role definition ids that are not the expected built-ins: {unknown}"
    return {BUILT_IN_ROLES[guid] for guid in guids}


def app_settings() -> dict[str, Any]:
    """Every app setting the Function App module can write, name -> value expression."""
    doc = module("function-app.bicep")
    site = only(doc, "Microsoft.Web/sites")
    settings: dict[str, Any] = {}

    def collect(value: Any) -> None:
        if isinstance(value, dict) and set(value) == {"name", "value"}:
            assert value["name"] not in settings, f"{value['name']} is written twice"
            settings[value["name"]] = value["value"]
        elif isinstance(value, dict):
            for item in value.values():
                collect(item)
        elif isinstance(value, list):
            for item in value:
                collect(item)

    collect(resolve(site["properties"]["siteConfig"]["appSettings"], doc))
    return settings


def parameter_default(doc: dict[str, Any], name: str) -> Any:
    return doc["parameters"][name].get("default")


def decorator(declaration: dict[str, Any], kind: str) -> Any:
    for item in declaration.get("decorators", []):
        if item["type"] == kind:
            return item.get("argument", True)
    return None


# --- Parsing and documentation ---------------------------------------------------------------


@pytest.mark.parametrize("path", bicep_files(), ids=lambda path: path.name)
def test_every_bicep_file_parses(path):
    doc = parsed(path)
    assert doc.get("resources") or doc.get("modules"), f"{path.name} declares nothing"


@pytest.mark.parametrize("path", bicep_files(), ids=lambda path: path.name)
def test_every_parameter_and_output_is_described(path):
    doc = parsed(path)
    for kind in ("parameters", "outputs"):
        for name, declaration in doc.get(kind, {}).items():
            text = decorator(declaration, "description")
            assert isinstance(text, str), f"{path.name}: {kind[:-1]} {name} has no @description"
            assert len(text) > 10, f"{path.name}: {kind[:-1]} {name}'s description says nothing"


@pytest.mark.parametrize("path", sorted(MODULES.glob("*.bicep")), ids=lambda path: path.name)
def test_every_module_outputs_its_name_and_id(path):
    assert {"name", "id"} <= set(parsed(path).get("outputs", {})), path.name


def test_the_only_conditional_resource_is_the_resource_group():
    # checkov does not look inside `resource ... = if (...)`: a conditional resource would pass
    # its checks unseen. Optional parts are conditional modules, whose resources it does scan.
    conditional = [
        (path.name, name)
        for path in bicep_files()
        for name, declaration in parsed(path).get("resources", {}).items()
        if declaration["config"].get("condition") is not None
    ]
    assert conditional == [("main.bicep", "newResourceGroup")]


# --- App settings ----------------------------------------------------------------------------


def test_app_settings_are_exactly_what_the_code_reads():
    written = set(app_settings())
    fields = dataclasses.fields(DetectionSettings)
    assert {f"DETECTOR_{field.name.upper()}" for field in fields} >= EXPOSED_DETECTION_SETTINGS
    assert written - HOST_ONLY_SETTINGS - EXPOSED_DETECTION_SETTINGS == (
        set(APP_SETTINGS) - LOCAL_ONLY_SETTINGS
    )
    assert written >= HOST_ONLY_SETTINGS | EXPOSED_DETECTION_SETTINGS


def test_no_connection_string_or_deprecated_flex_setting_is_written():
    written = set(app_settings())
    assert not written & LOCAL_ONLY_SETTINGS
    assert not written & FORBIDDEN_ON_FLEX


def test_storage_settings_are_identity_based_with_the_apps_identity():
    settings = app_settings()
    assert settings["AzureWebJobsStorage__credential"] == "managedidentity"
    assert settings[f"{STORAGE}__credential"] == "managedidentity"
    assert settings["AzureWebJobsStorage__clientId"] == "identityClientId"
    assert settings[f"{STORAGE}__clientId"] == "identityClientId"
    assert dotted(settings[f"{STORAGE}__tableServiceUri"]) == (
        "storage.properties.primaryEndpoints.table"
    )
    assert dotted(settings[f"{STORAGE}__queueServiceUri"]) == (
        "storage.properties.primaryEndpoints.queue"
    )
    telemetry = settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"]
    assert telemetry == "ClientId=${identityClientId};Authorization=AAD"


def test_notification_settings_are_key_vault_references():
    settings = app_settings()
    for name, secret in (
        ("NOTIFY_WEBHOOK_URL", "webhookUrl"),
        ("NOTIFY_WEBHOOK_SECRET", "webhookSecret"),
        ("NOTIFY_WEBHOOK_SECRET_PREVIOUS", "webhookSecretPrevious"),
        ("NOTIFY_TEAMS_URL", "teamsUrl"),
        ("NOTIFY_SLACK_URL", "slackUrl"),
    ):
        secret_uri = f"${{keyVaultUri}}secrets/${{secretNames.{secret}}}"
        assert settings[name] == f"@Microsoft.KeyVault(SecretUri={secret_uri})", name


def test_table_and_queue_names_are_the_codes_defaults():
    doc = module("storage.bicep")
    tables = doc["variables"]["tableNames"]["value"]
    defaults = {field.name: field.default for field in dataclasses.fields(AppSettings)}
    assert tables == {
        "baselines": defaults["baseline_table"],
        "state": defaults["state_table"],
        "deliveries": defaults["delivery_table"],
        "allowRules": defaults["allow_table"],
    }
    assert doc["variables"]["alertQueueName"]["value"] == defaults["alert_queue"]
    assert doc["variables"]["poisonQueueName"]["value"] == "${alertQueueName}-poison"
    settings = app_settings()
    assert dotted(settings["DETECTOR_BASELINE_TABLE"]) == "tableNames.baselines"
    assert dotted(settings["DETECTOR_ALLOW_TABLE"]) == "tableNames.allowRules"


def test_parameter_defaults_and_bounds_match_the_code():
    main = module("main.bicep")
    defaults = {field.name: field.default for field in dataclasses.fields(AppSettings)}
    for field, (low, high) in _NUMBERS.items():
        name = re.sub(r"_(\w)", lambda match: match.group(1).upper(), field)
        declaration = main["parameters"][name]
        assert declaration["default"] == defaults[field], name
        assert decorator(declaration, "min_value") == low, name
        assert decorator(declaration, "max_value") == high, name
    assert parameter_default(main, "detectorSchedule") == DEFAULT_SCHEDULE
    assert parameter_default(main, "logAnalyticsEndpoint") == DEFAULT_LOGS_ENDPOINT
    threshold = main["parameters"]["alertThreshold"]
    assert threshold["default"] == DetectionSettings().alert_threshold
    # The code refuses an alert threshold above the medium-severity one.
    assert decorator(threshold, "max_value") <= DetectionSettings().medium_threshold


def test_parameters_file_is_azd_style_and_agrees_with_the_defaults():
    main = module("main.bicep")
    values = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert values["environmentName"]["value"] == "${AZURE_ENV_NAME}"
    assert values["location"]["value"] == "${AZURE_LOCATION}"
    for name, entry in values.items():
        assert name in main["parameters"], f"{name} is not a parameter of main.bicep"
        variable = re.fullmatch(r"\$\{(\w+)(?:=(.*))?\}", entry["value"])
        assert variable, f"{name}: {entry['value']!r} is not an azd ${{VARIABLE}}"
        default, declared = variable.group(2), parameter_default(main, name)
        if default is not None:
            expected = str(declared).lower() if isinstance(declared, bool) else str(declared)
            assert default == expected, f"{name}: {default!r} here, {declared!r} in main.bicep"


# --- Identity, storage, secrets ----------------------------------------------------------------


def test_function_app_is_flex_consumption_python_with_the_user_assigned_identity():
    doc = module("function-app.bicep")
    plan = only(doc, "Microsoft.Web/serverfarms")
    assert plan["sku"] == {"tier": "FlexConsumption", "name": "FC1"}
    assert plan["properties"]["reserved"] is True
    site = only(doc, "Microsoft.Web/sites")
    assert site["kind"] == "functionapp,linux"
    assert site["identity"] == {
        "type": "UserAssigned",
        "userAssignedIdentities": {"'${identityId}'": {}},
    }
    properties = site["properties"]
    assert properties["keyVaultReferenceIdentity"] == "identityId"
    config = properties["functionAppConfig"]
    assert config["runtime"] == {"name": "python", "version": "3.11"}
    assert config["deployment"]["storage"]["authentication"] == {
        "type": "UserAssignedIdentity",
        "userAssignedIdentityResourceId": "identityId",
    }
    wiring = body(module("main.bicep")["modules"]["functionApp"])["params"]
    assert dotted(wiring["identityId"]) == "identity.outputs.id"
    assert dotted(wiring["identityClientId"]) == "identity.outputs.clientId"


def test_function_app_is_https_only_with_tls_1_2_and_no_basic_publishing():
    doc = module("function-app.bicep")
    properties = only(doc, "Microsoft.Web/sites")["properties"]
    assert properties["httpsOnly"] is True
    assert properties["siteConfig"]["minTlsVersion"] == "1.2"
    assert properties["siteConfig"]["scmMinTlsVersion"] == "1.2"
    assert properties["siteConfig"]["ftpsState"] == "Disabled"
    policies = resources(doc, "Microsoft.Web/sites/basicPublishingCredentialsPolicies")
    assert {policy["name"]: policy["properties"]["allow"] for policy in policies.values()} == {
        "ftp": False,
        "scm": False,
    }
    assert all(policy["parent"] == "site" for policy in policies.values())


def test_storage_allows_no_shared_key_no_public_blob_and_only_tls_1_2():
    doc = module("storage.bicep")
    properties = only(doc, "Microsoft.Storage/storageAccounts")["properties"]
    assert properties["allowSharedKeyAccess"] is False
    assert properties["allowBlobPublicAccess"] is False
    assert properties["minimumTlsVersion"] == "TLS1_2"
    assert properties["supportsHttpsTrafficOnly"] is True
    container = only(doc, "Microsoft.Storage/storageAccounts/blobServices/containers")
    assert container["properties"]["publicAccess"] == "None"


def test_telemetry_accepts_only_entra_id():
    component = only(module("app-insights.bicep"), "Microsoft.Insights/components")
    assert component["properties"]["DisableLocalAuth"] is True
    assert component["properties"]["WorkspaceResourceId"] == "workspaceId"
    workspace = only(module("log-analytics.bicep"), "Microsoft.OperationalInsights/workspaces")
    assert workspace["properties"]["features"]["disableLocalAuth"] is True


def test_key_vault_uses_rbac_with_purge_protection_and_holds_only_secure_values():
    doc = module("key-vault.bicep")
    properties = only(doc, "Microsoft.KeyVault/vaults")["properties"]
    assert properties["enableRbacAuthorization"] is True
    assert properties["enablePurgeProtection"] is True
    assert properties["enableSoftDelete"] is True
    assert "accessPolicies" not in properties
    secure = {
        name for name, declaration in doc["parameters"].items() if decorator(declaration, "secure")
    }
    candidates = doc["variables"]["candidateSecrets"]["value"]
    assert {candidate["value"] for candidate in candidates} == secure
    secret = only(doc, "Microsoft.KeyVault/vaults/secrets")
    assert dotted(secret["properties"]["value"]) == "secret.value"


def test_notification_values_reach_azure_only_as_secure_parameters():
    main = module("main.bicep")
    for name in (
        "notifyWebhookUrl",
        "notifyWebhookSecret",
        "notifyWebhookSecretPrevious",
        "notifyTeamsUrl",
        "notifySlackUrl",
    ):
        assert decorator(main["parameters"][name], "secure"), name
        assert parameter_default(main, name) == "", name
    # The Function App module learns only whether each secret exists, never its value.
    wiring = json.dumps(body(main["modules"]["functionApp"])["params"])
    wiring = re.sub(r'"item_to_test": "notify\w+"', "", wiring)
    assert not re.search(r'"notify(Webhook|Teams|Slack)\w*"', wiring)


@pytest.mark.parametrize("path", bicep_files(), ids=lambda path: path.name)
def test_no_output_carries_a_secret(path):
    doc = parsed(path)
    secure = {
        name
        for name, declaration in doc.get("parameters", {}).items()
        if decorator(declaration, "secure")
    }
    for name, output in doc.get("outputs", {}).items():
        text = json.dumps(resolve(output["value"], doc))
        for parameter in secure:
            assert not re.search(rf"\b{parameter}\b", text), f"{path.name}: {name} uses {parameter}"
        assert not re.search(
            r"list(Keys|Secrets|ConnectionStrings|AccountSas|ServiceSas)|ConnectionString|"
            r"InstrumentationKey|primaryKey|secondaryKey",
            text,
            re.IGNORECASE,
        ), f"{path.name}: output {name} may carry a secret: {text}"


# --- Role assignments ------------------------------------------------------------------------


def role_assignments() -> Iterator[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    for path in sorted(MODULES.glob("*.bicep")):
        doc = parsed(path)
        for name, assignment in resources(doc, "Microsoft.Authorization/roleAssignments").items():
            yield path.name, name, assignment, doc


def test_role_assignments_are_the_expected_ones_each_on_one_resource():
    found = set()
    for file, name, assignment, doc in role_assignments():
        roles = role_names(assignment["properties"]["roleDefinitionId"], doc)
        role = roles.pop() if roles else "(parameter)"
        assert not roles, f"{file}: {name} names several roles"
        scope = assignment.get("scope")
        if scope is None:
            assert doc["globals"]["scope"]["value"] == "subscription", f"{file}: {name}"
            target = "subscription"
        else:
            target = doc["resources"][scope]["type"]
        found.add((file, role, target))
    assert found == EXPECTED_ASSIGNMENTS


def test_role_assignments_are_named_by_guid_of_scope_principal_and_role():
    for file, name, assignment, doc in role_assignments():
        guid = assignment["name"]["function"]
        assert guid["type"] == "guid", f"{file}: {name}"
        scope, principal, role = (dotted(argument) for argument in guid["parameters"].values())
        expected_scope = f"{assignment['scope']}.id" if "scope" in assignment else None
        # A subscription-scope assignment made for a policy assignment that does not exist yet:
        # named by the policy assignment's (known) name instead of its identity's object id.
        assert scope == (expected_scope or "subscription().id"), f"{file}: {name}"
        assert principal == ("principalId" if expected_scope else "assignmentName"), name
        assert role_names(role, doc) or role == "roleDefinitionId", f"{file}: {name}"
        principal_type = "principalType" if file in OPERATOR_MODULES else "ServicePrincipal"
        assert assignment["properties"]["principalType"] == principal_type, f"{file}: {name}"


def test_workspace_roles_are_reader_for_the_app_and_contributor_for_the_policy():
    found = set()
    for file in ("main.bicep", "audit-log-policy.bicep"):
        doc = module(file)
        for name, declaration in doc.get("modules", {}).items():
            if declaration["detail"]["path"].endswith("workspace-role.bicep"):
                params = body(declaration)["params"]
                (role,) = role_names(params["roleDefinitionId"], doc)
                found.add((file, name, role))
    assert found == EXPECTED_WORKSPACE_ROLES


def test_the_app_reads_the_workspace_it_is_configured_to_query():
    main = module("main.bicep")
    reader = body(main["modules"]["workspaceReader"])
    assert json.dumps(reader["scope"]).count("workspaceParts") == 2
    assert dotted(reader["params"]["workspaceName"]["operator"]["operands"]["operand_1"]) == (
        "workspaceParts"
    )
    wiring = body(main["modules"]["functionApp"])["params"]
    assert dotted(wiring["workspaceCustomerId"]) == "workspaceReader.outputs.customerId"


OPERATOR_OUTPUTS = {
    "LOG_ANALYTICS_WORKSPACE_ID": "workspaceReader.outputs.customerId",
    "LOG_ANALYTICS_ENDPOINT": "logAnalyticsEndpoint",
    f"{STORAGE}__tableServiceUri": "storage.outputs.tableEndpoint",
    f"{STORAGE}__queueServiceUri": "storage.outputs.queueEndpoint",
    "DETECTOR_STORE": "table",
}
"""The deployment's outputs a laptop's shell takes from `azd env get-values`, and their values."""


def test_the_operators_principal_gets_the_commands_roles_on_their_resources_only_when_named():
    main = module("main.bicep")
    assert parameter_default(main, "operatorsPrincipalId") == ""
    assert parameter_default(main, "operatorsPrincipalType") == "User"
    assert decorator(main["parameters"]["operatorsPrincipalType"], "allowed") == [
        "User",
        "Group",
        "ServicePrincipal",
    ]
    values = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert values["operatorsPrincipalId"]["value"] == "${AZURE_PRINCIPAL_ID=}"  # the deployer
    only_when_named = {
        "operator": {
            "type": "not",
            "operands": {
                "bool_value": {
                    "function": {
                        "type": "empty",
                        "parameters": {"item_to_test": "operatorsPrincipalId"},
                    }
                }
            },
        }
    }
    storage_roles = main["modules"]["operatorRoles"]
    assert storage_roles["config"]["condition"] == only_when_named
    params = body(storage_roles)["params"]
    assert dotted(params["storageAccountName"]) == "storage.outputs.name"
    assert (params["principalId"], params["principalType"]) == (
        "operatorsPrincipalId",
        "operatorsPrincipalType",
    )
    reader = main["modules"]["operatorsWorkspaceReader"]
    assert reader["config"]["condition"] == only_when_named
    params = body(reader)["params"]
    assert json.dumps(body(reader)["scope"]) == json.dumps(
        body(main["modules"]["workspaceReader"])["scope"]
    )
    assert (params["principalId"], params["principalType"]) == (
        "operatorsPrincipalId",
        "operatorsPrincipalType",
    )
    # Each role on the one resource: the account the module names, not its group.
    doc = module("operator-roles.bicep")
    account = doc["resources"]["account"]
    assert account["existing"] is True
    assert account["config"]["name"] == "storageAccountName"


def test_the_outputs_are_the_settings_the_commands_read_under_their_own_names():
    outputs = module("main.bicep")["outputs"]
    for name, value in OPERATOR_OUTPUTS.items():
        assert name in outputs, f"main.bicep does not output {name}"
        assert dotted(outputs[name]["value"]) == value, name
    assert set(OPERATOR_OUTPUTS) - {"DETECTOR_STORE"} <= set(APP_SETTINGS)
    # What `azd env get-values` then holds is a whole environment for the commands.
    environ = {
        "LOG_ANALYTICS_WORKSPACE_ID": "0b0a0c0d-1111-2222-3333-444455556666",
        "LOG_ANALYTICS_ENDPOINT": DEFAULT_LOGS_ENDPOINT,
        f"{STORAGE}__tableServiceUri": "https://stx.table.core.windows.net/",
        f"{STORAGE}__queueServiceUri": "https://stx.queue.core.windows.net/",
        "DETECTOR_STORE": "table",
    }
    settings = AppSettings.from_env(environ)
    assert settings.storage.client_id is None  # signs in with az login
    operator = OperatorSettings.from_env(environ)
    assert operator.store == "table"
    assert operator.workspace_id == environ["LOG_ANALYTICS_WORKSPACE_ID"]


def test_another_subscription_sends_its_logs_without_a_second_detector():
    doc = parsed(INFRA / "subscription-logs.bicep")
    assert doc["globals"]["scope"]["value"] == "subscription"
    assert not doc.get("resources")  # no identity, no storage, no app
    paths = {name: m["detail"]["path"] for name, m in doc["modules"].items()}
    assert paths == {
        "activityLog": "modules/activity-log.bicep",
        "auditLogPolicy": "modules/audit-log-policy.bicep",
    }
    activity = body(doc["modules"]["activityLog"])["params"]
    assert activity["workspaceId"] == "workspaceResourceId"
    assert parameter_default(doc, "enableActivityLogExport") is True
    assert parameter_default(doc, "enableAuditLogPolicy") is False
    assert parameter_default(doc, "workspaceResourceId") is None  # required: no guess
    setting = only(module("activity-log.bicep"), "Microsoft.Insights/diagnosticSettings")
    assert setting["properties"]["logs"] == [{"category": "Administrative", "enabled": True}]


def test_the_policy_declares_the_roles_its_identity_is_given():
    doc = module("audit-log-policy.bicep")
    definition = only(doc, "Microsoft.Authorization/policyDefinitions")
    details = definition["properties"]["policyRule"]["then"]["details"]
    declared = role_names(details["roleDefinitionIds"], doc)
    assert declared == {"Monitoring Contributor", "Log Analytics Contributor"}
    assignment = only(doc, "Microsoft.Authorization/policyAssignments")
    assert assignment["identity"] == {"type": "SystemAssigned"}


def test_the_policy_turns_on_both_audit_categories_for_sites_and_slots():
    doc = module("audit-log-policy.bicep")
    assert doc["variables"]["categories"]["value"] == [
        "AppServiceAuditLogs",
        "AppServiceFileAuditLogs",
    ]
    definition = only(doc, "Microsoft.Authorization/policyDefinitions")["properties"]
    rule = definition["policyRule"]
    assert rule["if"]["allOf"][0] == {
        "field": "type",
        "in": ["Microsoft.Web/sites", "Microsoft.Web/sites/slots"],
    }
    assert definition["parameters"]["effect"]["defaultValue"] == "DeployIfNotExists"
    template = rule["then"]["details"]["deployment"]["properties"]["template"]
    assert {resource["type"] for resource in template["resources"]} == {
        "Microsoft.Web/sites/providers/diagnosticSettings",
        "Microsoft.Web/sites/slots/providers/diagnosticSettings",
    }
    initiative = only(doc, "Microsoft.Authorization/policySetDefinitions")["properties"]
    references = [
        resolve(item["policyDefinitionReferenceId"], doc)
        for item in initiative["policyDefinitions"]
    ]
    assert references == ["AppServiceAuditLogs", "AppServiceFileAuditLogs"]
    remediations = only(doc, "Microsoft.PolicyInsights/remediations")["properties"]
    assert remediations["resourceDiscoveryMode"] == "ReEvaluateCompliance"


def test_subscription_wide_parts_are_optional_and_off_by_default():
    main = module("main.bicep")
    for name, flag in (
        ("activityLog", "enableActivityLogExport"),
        ("auditLogPolicy", "enableAuditLogPolicy"),
    ):
        condition = main["modules"][name]["config"]["condition"]
        assert condition == flag, name
        assert parameter_default(main, flag) is False, flag


# --- azd and checkov wiring --------------------------------------------------------------------


def test_azure_yaml_deploys_the_function_to_the_tagged_app():
    text = (ROOT / "azure.yaml").read_text()
    service = re.search(r"^services:\n  (\w[\w-]*):\n((?:    .*\n)+)", text, re.MULTILINE)
    assert service, "azure.yaml has no service"
    settings = dict(re.findall(r"^    (\w+): (.+)$", service.group(2), re.MULTILINE))
    assert settings == {"project": ".", "language": "python", "host": "function"}
    doc = module("function-app.bicep")
    assert parameter_default(doc, "azdServiceName") == service.group(1)
    assert re.search(r"^infra:\n  provider: bicep\n  path: infra$", text, re.MULTILINE)


def test_every_skipped_checkov_check_says_why():
    lines = (INFRA / ".checkov.yaml").read_text().splitlines()
    start = lines.index("skip-check:")
    reason: list[str] = []
    skipped = []
    for line in lines[start + 1 :]:
        if line.strip().startswith("#"):
            reason.append(line)
        elif line.strip().startswith("- "):
            assert reason, f"{line.strip()} has no reason above it"
            skipped.append(line.strip()[2:])
            reason = []
    assert skipped, "nothing listed"
    assert len(skipped) == len(set(skipped))
    assert all(re.fullmatch(r"CKV2?_AZURE_\d+", check) for check in skipped)
    for path in bicep_files():
        assert "checkov:skip" not in path.read_text(), f"{path.name} skips a check inline"


def test_the_deployment_guide_covers_every_parameter_and_says_what_was_not_run():
    text = (ROOT / "docs" / "deploy.md").read_text()
    for name in module("main.bicep")["parameters"]:
        assert f"`{name}`" in text, f"docs/deploy.md does not describe {name}"
    assert "have **not** been run" in text
    first_step = text.split("## Step 1", 1)[1].split("\n## ", 1)[0]
    assert "az bicep build" in first_step
    assert "az deployment sub what-if" in first_step
    assert text.index("## Step 1") < text.index("## Step 2a") < text.index("## Step 2b")


def test_the_notifier_is_switched_off_when_no_destination_is_configured():
    settings = app_settings()
    assert settings["AzureWebJobs.detector_notifier.Disabled"] == "true"
    doc = module("function-app.bicep")
    condition = str(doc["variables"]["notifierOffSetting"])
    for destination in ("webhookUrl", "teamsUrl", "slackUrl"):
        assert destination in condition
    # The setting names a function that exists.
    assert indexed_function(function_app.app, "detector_notifier").get_function_name() == (
        "detector_notifier"
    )
