"""Normalisation quirks: every operation family, both status vocabularies, odd callers."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from detectors.model.observation import (
    ClientTool,
    Observation,
    OperationFamily,
    PrincipalType,
    RawRow,
    RejectedRow,
    SourceTable,
    Status,
)
from detectors.normalize.rows import Normalizer, RowError, Skipped, SkipReason, parse_time
from tests import rowkit
from tests.rowkit import CLI, POWERSHELL, Actor, activity, file_change, login, site_id

WHEN = datetime(2026, 10, 5, 9, 30, tzinfo=UTC)
JANE = Actor(caller="Jane.Doe@Contoso.com", app_id=CLI)


def norm(fields: dict, table: SourceTable | None = SourceTable.AZURE_ACTIVITY):
    return Normalizer().normalize(RawRow(source="f.jsonl", line=3, table=table, fields=fields))


def end_row(operation: str, resource: str, actor: Actor = JANE, **kw) -> dict:
    return activity(actor, WHEN, operation, resource, **kw)[-1]


FAMILIES = [
    ("MICROSOFT.WEB/SITES/PUBLISHXML/ACTION", "", OperationFamily.CREDENTIAL_READ),
    ("microsoft.web/sites/slots/publishxml/action", "", OperationFamily.CREDENTIAL_READ),
    (
        "MICROSOFT.WEB/SITES/CONFIG/LIST/ACTION",
        "/config/publishingcredentials",
        OperationFamily.CREDENTIAL_READ,
    ),
    (
        "MICROSOFT.WEB/SITES/CONFIG/LIST/ACTION",
        "/config/appsettings",
        OperationFamily.CREDENTIAL_READ,
    ),
    ("MICROSOFT.WEB/SITES/CONFIG/LIST/ACTION", "/config/metadata", OperationFamily.CONFIG_READ),
    (
        "MICROSOFT.WEB/SITES/CONFIG/SNAPSHOTS/LISTSECRETS/ACTION",
        "/config/web/snapshots/1",
        OperationFamily.CREDENTIAL_READ,
    ),
    ("MICROSOFT.WEB/SITES/NEWPASSWORD/ACTION", "", OperationFamily.CREDENTIAL_CHANGE),
    (
        "Microsoft.Web/sites/basicPublishingCredentialsPolicies/scm/write",
        "/basicpublishingcredentialspolicies/scm",
        OperationFamily.BASIC_AUTH_POLICY,
    ),
    (
        "MICROSOFT.WEB/SITES/BASICPUBLISHINGCREDENTIALSPOLICIES/WRITE",
        "",
        OperationFamily.BASIC_AUTH_POLICY,
    ),
    ("MICROSOFT.WEB/SITES/CONFIG/WRITE", "/config/web", OperationFamily.CONFIG_CHANGE),
    (
        "MICROSOFT.WEB/SITES/HOST/LISTKEYS/ACTION",
        "/host/default",
        OperationFamily.FUNCTION_KEYS_READ,
    ),
    (
        "MICROSOFT.WEB/SITES/FUNCTIONS/LISTSECRETS/ACTION",
        "/functions/f1",
        OperationFamily.FUNCTION_KEYS_READ,
    ),
    (
        "MICROSOFT.WEB/SITES/HOST/FUNCTIONKEYS/WRITE",
        "/host/default/functionkeys/k",
        OperationFamily.FUNCTION_KEYS_CHANGE,
    ),
    (
        "MICROSOFT.WEB/SITES/TRIGGEREDWEBJOBS/RUN/ACTION",
        "/triggeredwebjobs/cleanup",
        OperationFamily.WEBJOB_RUN,
    ),
    (
        "MICROSOFT.WEB/SITES/CONTINUOUSWEBJOBS/START/ACTION",
        "/continuouswebjobs/sync",
        OperationFamily.WEBJOB_START,
    ),
    (
        "MICROSOFT.WEB/SITES/CONTINUOUSWEBJOBS/STOP/ACTION",
        "/continuouswebjobs/sync",
        OperationFamily.WEBJOB_STOP,
    ),
    (
        "MICROSOFT.WEB/SITES/TRIGGEREDWEBJOBS/DELETE",
        "/triggeredwebjobs/cleanup",
        OperationFamily.WEBJOB_DELETE,
    ),
    (
        "MICROSOFT.WEB/SITES/SITEEXTENSIONS/WRITE",
        "/siteextensions/x",
        OperationFamily.SITE_EXTENSION,
    ),
    ("MICROSOFT.WEB/SITES/DEPLOYMENTS/WRITE", "/deployments/1", OperationFamily.DEPLOYMENT),
]


@pytest.mark.parametrize(("operation", "suffix", "family"), FAMILIES)
def test_every_operation_family_is_recognised_in_any_case(operation, suffix, family):
    obs = norm(end_row(operation, site_id("app1") + suffix))
    assert isinstance(obs, Observation)
    assert obs.family is family
    assert obs.resource.site == "app1"


def test_config_list_keeps_the_config_suffix_and_site():
    obs = norm(end_row(rowkit.CONFIG_LIST, site_id("Shop-API") + "/config/publishingcredentials"))
    assert isinstance(obs, Observation)
    assert obs.config_suffix == "publishingcredentials"
    assert obs.resource.id == site_id("shop-api")
    assert obs.resource.resource_group == "rg-web"


def test_slot_is_parsed_from_the_resource_id():
    obs = norm(
        end_row("MICROSOFT.WEB/SITES/SLOTS/PUBLISHXML/ACTION", site_id("app1", slot="staging"))
    )
    assert isinstance(obs, Observation)
    assert (obs.resource.site, obs.resource.slot) == ("app1", "staging")


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("Success", Status.SUCCEEDED),
        ("Succeeded", Status.SUCCEEDED),
        ("Failure", Status.FAILED),
        ("Failed", Status.FAILED),
        ("Accept", Status.ACCEPTED),
        ("Accepted", Status.ACCEPTED),
    ],
)
def test_both_status_vocabularies_are_folded(status, expected):
    obs = norm(end_row(rowkit.PUBLISHXML, site_id("a"), status=status))
    assert isinstance(obs, Observation)
    assert obs.status is expected


@pytest.mark.parametrize("status", ["Start", "Started"])
def test_start_rows_are_skipped_so_an_action_counts_once(status):
    rows = activity(JANE, WHEN, rowkit.PUBLISHXML, site_id("a"))
    rows[0]["ActivityStatusValue"] = status
    assert norm(rows[0]) == Skipped(reason=SkipReason.START_ROW)


def test_user_principal_tool_and_address_come_from_caller_and_claims():
    obs = norm(end_row(rowkit.PUBLISHXML, site_id("a")))
    assert isinstance(obs, Observation)
    assert obs.principal.id == "jane.doe@contoso.com"
    assert obs.principal.name == "Jane Doe"
    assert obs.principal.type is PrincipalType.USER
    assert obs.tool is ClientTool.AZURE_CLI
    assert obs.app_id == CLI
    assert obs.source_ip == "198.51.100.10"


def test_service_principal_caller_is_an_object_id():
    sp = Actor(
        caller="3f2b1c4d-aaaa-4bbb-8ccc-123456789abc",
        app_id="11111111-2222-3333-4444-555555555555",
        kind="app",
    )
    obs = norm(end_row(rowkit.PUBLISHXML, site_id("a"), actor=sp))
    assert isinstance(obs, Observation)
    assert obs.principal.type is PrincipalType.SERVICE_PRINCIPAL
    assert obs.tool is ClientTool.OTHER


def test_managed_identity_is_told_apart_by_its_token():
    mi = Actor(
        caller="5e2b1c4d-aaaa-4bbb-8ccc-123456789abc",
        app_id="99999999-2222-3333-4444-555555555555",
        kind="mi",
    )
    obs = norm(end_row(rowkit.PUBLISHXML, site_id("a"), actor=mi))
    assert isinstance(obs, Observation)
    assert obs.principal.type is PrincipalType.MANAGED_IDENTITY


@pytest.mark.parametrize(
    ("resource", "name"),
    [
        (
            "/subscriptions/s/resourcegroups/rg-ops/providers/Microsoft.ManagedIdentity/"
            "userAssignedIdentities/id-deployer",
            "id-deployer",
        ),
        (
            "/subscriptions/s/resourcegroups/rg-web/providers/Microsoft.Web/sites/func-orders",
            "func-orders (system-assigned identity)",
        ),
    ],
)
def test_a_managed_identity_without_a_name_claim_is_named_by_its_resource(resource, name):
    mi = Actor(caller="5e2b1c4d-aaaa-4bbb-8ccc-123456789abc", kind="mi")
    row = end_row(rowkit.PUBLISHXML, site_id("a"), actor=mi)
    claims = json.loads(row["Claims"])
    claims["xms_mirid"] = resource
    row["Claims"] = json.dumps(claims)
    obs = norm(row)
    assert isinstance(obs, Observation)
    assert obs.principal.id == "5e2b1c4d-aaaa-4bbb-8ccc-123456789abc"
    assert obs.principal.name == name
    assert obs.tenant_id == rowkit.TENANT.lower()


def test_dynamic_columns_may_be_objects_instead_of_json_text():
    row = end_row(
        rowkit.PUBLISHXML, site_id("a"), actor=Actor(caller="x@contoso.com", app_id=POWERSHELL)
    )
    row["Claims"] = json.loads(row["Claims"])
    row["Authorization"] = json.loads(row["Authorization"])
    obs = norm(row)
    assert isinstance(obs, Observation)
    assert obs.tool is ClientTool.AZURE_POWERSHELL


def test_claims_d_twin_is_used_when_claims_is_empty():
    row = end_row(
        rowkit.PUBLISHXML, site_id("a"), actor=Actor(caller="x@contoso.com", app_id=POWERSHELL)
    )
    row["Claims_d"], row["Claims"] = row["Claims"], ""
    obs = norm(row)
    assert isinstance(obs, Observation)
    assert obs.tool is ClientTool.AZURE_POWERSHELL


def test_caller_address_falls_back_to_the_http_request_and_drops_a_port():
    row = end_row(rowkit.PUBLISHXML, site_id("a"))
    row["CallerIpAddress"] = ""
    row["HTTPRequest"] = json.dumps({"clientIpAddress": "203.0.113.9:51234"})
    obs = norm(row)
    assert isinstance(obs, Observation)
    assert obs.source_ip == "203.0.113.9"


def test_unrelated_operations_are_skipped_not_rejected():
    row = end_row("MICROSOFT.COMPUTE/VIRTUALMACHINES/WRITE", site_id("a"))
    assert norm(row) == Skipped(reason=SkipReason.UNRELATED_OPERATION)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r.update(Caller="", Claims="{}"), "Caller is empty"),
        (
            lambda r: r.update(TimeGenerated="yesterday"),
            "TimeGenerated 'yesterday' is not an ISO 8601 timestamp",
        ),
        (lambda r: r.pop("TimeGenerated"), "TimeGenerated is missing"),
        (
            lambda r: r.update(ActivityStatusValue="Maybe"),
            "ActivityStatusValue 'Maybe' is not a known status",
        ),
        (lambda r: r.update(Claims="{not json"), "Claims is not valid JSON"),
        (lambda r: r.update(Caller=["a"]), "Caller should be text, got list"),
        (lambda r: r.update(Caller="x" * 5000), "Caller is 5,000 characters, over the 1,024 limit"),
        (
            lambda r: r.update(
                _ResourceId="/subscriptions/x/resourcegroups/y/providers/microsoft.compute/vm/z",
                ResourceId="",
                Authorization="{}",
            ),
            "is not an App Service site",
        ),
        (lambda r: r.pop("OperationNameValue"), "OperationNameValue is missing"),
    ],
)
def test_malformed_rows_are_rejected_with_the_field_named(mutate, message):
    row = end_row(rowkit.PUBLISHXML, site_id("a"))
    mutate(row)
    result = norm(row)
    assert isinstance(result, RejectedRow)
    assert message in result.reason
    assert (result.source, result.line) == ("f.jsonl", 3)


def test_control_characters_in_names_are_neutralised_but_the_row_is_kept():
    actor = Actor(caller="evil@contoso.com", name="Eve\x1b[31m\u202eadmin")
    obs = norm(end_row(rowkit.PUBLISHXML, site_id("a"), actor=actor))
    assert isinstance(obs, Observation)
    assert "\x1b" not in obs.principal.name
    assert obs.principal.name.startswith("Eve")


def test_unicode_site_and_caller_survive():
    actor = Actor(caller="zoë.ñúñez@contoso.com", name="Zoë Ñúñez")
    obs = norm(end_row(rowkit.PUBLISHXML, site_id("app-ü"), actor=actor))
    assert isinstance(obs, Observation)
    assert obs.principal.id == "zoë.ñúñez@contoso.com"
    assert obs.resource.site == "app-ü"


def test_publishing_user_login_is_a_basic_auth_principal():
    obs = norm(
        login("$shop-api", WHEN, site_id("shop-api"), "203.0.113.50", "FTP"),
        SourceTable.APP_SERVICE_AUDIT,
    )
    assert isinstance(obs, Observation)
    assert obs.family is OperationFamily.SCM_LOGIN
    assert obs.principal.type is PrincipalType.PUBLISHING_USER
    assert obs.tool is ClientTool.FTP
    assert obs.source_ip == "203.0.113.50"


def test_entra_login_maps_to_the_same_principal_as_the_activity_log():
    row = login("1003200012345678", WHEN, site_id("a"), "198.51.100.10")
    row["UserDisplayName"] = "Jane.Doe@contoso.com"
    obs = norm(row, SourceTable.APP_SERVICE_AUDIT)
    assert isinstance(obs, Observation)
    assert obs.principal.id == "jane.doe@contoso.com"


@pytest.mark.parametrize(
    ("path", "job"),
    [
        (
            "D:\\home\\site\\wwwroot\\App_Data\\jobs\\triggered\\Cleanup\\run.cmd",
            "triggered/cleanup",
        ),
        ("/home/site/wwwroot/app_data/jobs/continuous/sync/run.py", "continuous/sync"),
    ],
)
def test_webjob_file_changes_are_recognised_in_windows_and_linux_paths(path, job):
    obs = norm(file_change(WHEN, site_id("a"), path), SourceTable.APP_SERVICE_FILE_AUDIT)
    assert isinstance(obs, Observation)
    assert obs.family is OperationFamily.WEBJOB_FILE_CHANGE
    assert obs.webjob == job


def test_other_file_changes_are_skipped():
    row = file_change(WHEN, site_id("a"), "D:\\home\\site\\wwwroot\\index.html")
    assert norm(row, SourceTable.APP_SERVICE_FILE_AUDIT) == Skipped(
        reason=SkipReason.UNRELATED_FILE
    )


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"Count": "²"}, "Count should be a whole number"),  # a digit to isdigit, not to int
        ({"Count": "9" * 5000}, "Count should be a whole number"),  # past int()'s 4,300 digits
        ({"TimeGenerated": "0001-01-01T00:30:00+01:00"}, "out of the range of dates"),
        ({"TimeGenerated": "9999-12-31T23:30:00-01:00"}, "out of the range of dates"),
        ({"TimeGenerated": "0001-01-01T00:00:00Z"}, "event time too old"),
        ({"TimeGenerated": "9999-12-31T00:00:00Z"}, "event time in the future"),
    ],
    ids=["superscript-count", "5000-digit-count", "offset-before-year-1", "offset-after-9999",
         "year-1", "year-9999"],
)  # fmt: skip
def test_a_value_that_once_ended_the_run_is_a_rejection_naming_it(changes, reason):
    """Each of these raised (ValueError, OverflowError) and ended a whole replay; year 1 and
    9999 crashed later, in the engine and in rendering, with no clock to bound them."""
    result = norm({**end_row(rowkit.PUBLISHXML, site_id("a")), **changes})
    assert isinstance(result, RejectedRow)
    assert reason in result.reason
    assert (result.source, result.line) == ("f.jsonl", 3)


def test_rows_of_an_unknown_table_are_rejected():
    result = norm({"Foo": 1}, None)
    assert isinstance(result, RejectedRow)
    assert "which table" in result.reason


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-10-05T09:30:00.1234567Z", datetime(2026, 10, 5, 9, 30, 0, 123456, tzinfo=UTC)),
        ("2026-10-05T11:30:00+02:00", datetime(2026, 10, 5, 9, 30, tzinfo=UTC)),
        ("2026-10-05 09:30:00", datetime(2026, 10, 5, 9, 30, tzinfo=UTC)),
    ],
)
def test_timestamps_in_iso_8601_become_aware_utc(text, expected):
    assert parse_time(text) == expected


@pytest.mark.parametrize("text", ["10/5/2026, 9:30:00.000 AM", "05/10/2026, 09:30:00"])
def test_a_locales_date_is_never_guessed_by_the_normaliser(text):
    # Which of 10 May and 5 October it is depends on the export: the CSV reader knows it.
    with pytest.raises(RowError, match="not an ISO 8601 timestamp"):
        parse_time(text)
