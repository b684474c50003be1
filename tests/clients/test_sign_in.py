"""Sign-in failures say what to do, once, wherever the SDK wraps them: the real
DefaultAzureCredential signed out, a credential's error re-raised by azure-monitor-query 2.0
as a bare HttpResponseError (through the real LogsQueryClient and the local HTTPS
endpoint), a service's 401, and a managed identity that cannot sign in. On a laptop the
app's managed identity is not used even when its client id is set."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.identity import (
    CredentialUnavailableError,
    DefaultAzureCredential,
    ManagedIdentityCredential,
)
from azure.monitor.query import LogsQueryClient

from detectors.cli import main as cli
from detectors.clients.sign_in import (
    NOT_SIGNED_IN,
    ExplainedCredential,
    credential,
    explain,
    sign_in_problem,
)
from detectors.model.errors import SignInFailed
from detectors.sources import Budget
from detectors.sources.log_analytics import LogAnalyticsSource

CLIENT_ID = "11111111-2222-3333-4444-555555555555"
SPAN = (datetime(2026, 11, 25, tzinfo=UTC), datetime(2026, 11, 26, tzinfo=UTC))


class Refuses:
    """A credential that fails the way a given azure.identity credential does."""

    def __init__(self, error: Exception) -> None:
        self.error, self.calls = error, 0

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.calls += 1
        raise self.error


@pytest.fixture
def signed_out(monkeypatch, tmp_path):
    """A machine with no Azure CLI, no environment credential, no managed identity."""
    for name in (
        "AZURE_CLIENT_ID",
        "AZURE_TENANT_ID",
        "AZURE_CLIENT_SECRET",
        "AZURE_CLIENT_CERTIFICATE_PATH",
        "AZURE_USERNAME",
        "AZURE_FEDERATED_TOKEN_FILE",
        "AZURE_CONFIG_DIR",
        "IDENTITY_ENDPOINT",
        "IDENTITY_HEADER",
        "MSI_ENDPOINT",
        "MSI_SECRET",
    ):
        monkeypatch.delenv(name, raising=False)
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setenv("HOME", str(tmp_path))


def test_on_a_laptop_the_apps_managed_identity_is_not_used():
    laptop = credential(CLIENT_ID, {})
    assert isinstance(laptop, ExplainedCredential)
    assert isinstance(laptop.inner, DefaultAzureCredential)
    for variable in ("IDENTITY_ENDPOINT", "MSI_ENDPOINT"):
        in_azure = credential(CLIENT_ID, {variable: "http://127.0.0.1:41741/msi/token"})
        assert isinstance(in_azure, ManagedIdentityCredential)
    assert isinstance(credential(None, {"IDENTITY_ENDPOINT": "x"}), ExplainedCredential)


def test_signed_out_the_real_default_credential_says_run_az_login_once(signed_out):
    inner = DefaultAzureCredential()
    calls = []
    original = inner.get_token

    def counted(*scopes: str, **kwargs: Any) -> AccessToken:
        calls.append(scopes)
        return original(*scopes, **kwargs)

    inner.get_token = counted  # type: ignore[method-assign]
    signing_in = ExplainedCredential(inner)
    for _ in range(3):
        with pytest.raises(SignInFailed) as failed:
            signing_in.get_token("https://storage.azure.com/.default")
        assert str(failed.value) == NOT_SIGNED_IN
    assert len(calls) == 1  # asked once; later clients hear the same answer at once


def test_a_credential_that_fails_for_a_reason_names_it():
    expired = ClientAuthenticationError(
        message="DefaultAzureCredential failed to retrieve a token from the included "
        "credentials.\nAttempted credentials:\n\tEnvironmentCredential: EnvironmentCredential "
        "authentication unavailable.\n\tAzureCliCredential: AADSTS70043: The refresh token has "
        "expired due to inactivity.\nTo mitigate this issue, please refer to ..."
    )
    assert explain(expired) == (
        "signing in with AzureCliCredential failed: AADSTS70043: The refresh token has expired "
        "due to inactivity.; run `az login` again"
    )
    assert explain(CredentialUnavailableError(message="nothing")) == NOT_SIGNED_IN
    in_azure = ClientAuthenticationError(
        message="ManagedIdentityCredential authentication unavailable, no response from the "
        "IMDS endpoint."
    )
    assert explain(in_azure).startswith("the app's managed identity could not sign in: ")
    assert "az login" not in explain(in_azure)
    identity = ExplainedCredential(
        Refuses(ClientAuthenticationError(message="Identity not found")), identity=CLIENT_ID
    )
    with pytest.raises(SignInFailed, match=f"the managed identity {CLIENT_ID} could not sign in"):
        identity.get_token("https://api.loganalytics.io/.default")


@pytest.mark.logs
def test_a_failure_azure_monitor_query_wraps_in_http_response_error_is_recognised(log_analytics):
    """azure-monitor-query 2.0 catches the credential's error and raises a bare
    HttpResponseError (no status) with the original only as its context."""
    client = LogsQueryClient(
        Refuses(CredentialUnavailableError(message="no az login")),
        endpoint=log_analytics.endpoint,
        connection_verify=str(log_analytics.ca_path),
        retry_total=0,
    )
    with pytest.raises(HttpResponseError) as raw:
        client.query_workspace(log_analytics.workspace_id, "AzureActivity", timespan=SPAN)
    assert raw.value.status_code is None
    assert sign_in_problem(raw.value) == NOT_SIGNED_IN

    source = LogAnalyticsSource(client=client, workspace_id=log_analytics.workspace_id)
    with pytest.raises(SignInFailed) as failed:
        source.tabulate("AzureActivity", "AzureActivity | take 1", SPAN, Budget(30))
    assert str(failed.value) == NOT_SIGNED_IN


class Answers401:
    """A workspace that refuses the token: another tenant's, or expired."""

    def query_workspace(self, *args: Any, **kwargs: Any) -> Any:
        error = HttpResponseError(message="InvalidAuthenticationTokenTenant")
        error.status_code = 401
        raise error


def test_a_token_the_service_refuses_says_to_sign_in_again():
    source = LogAnalyticsSource(client=Answers401(), workspace_id="w")
    with pytest.raises(SignInFailed, match=r"refused the sign-in \(401\).*az login"):
        source.tabulate("AzureActivity", "AzureActivity", SPAN, Budget(30))


def test_other_errors_are_not_sign_in_failures():
    refused = HttpResponseError(message="Forbidden")
    refused.status_code = 403
    assert sign_in_problem(refused) is None
    assert sign_in_problem(ValueError("x")) is None


@pytest.mark.logs
def test_status_signed_out_says_it_once_and_keeps_identity_warnings_out(
    signed_out, log_analytics, monkeypatch, capsys, caplog
):
    for name, value in {
        "LOG_ANALYTICS_WORKSPACE_ID": log_analytics.workspace_id,
        "LOG_ANALYTICS_ENDPOINT": log_analytics.endpoint,
        # As `azd env get-values` gives them, with the app's identity among the settings.
        "DETECTOR_STORAGE__tableServiceUri": "https://127.0.0.1:9",
        "DETECTOR_STORAGE__queueServiceUri": "https://127.0.0.1:9",
        "DETECTOR_STORAGE__clientId": CLIENT_ID,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("DETECTOR_STORAGE", raising=False)
    identity_log = logging.getLogger("azure.identity")
    monkeypatch.setattr(identity_log, "level", logging.NOTSET)

    def identity_records() -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.name.startswith("azure.identity")]

    assert cli.main(["status", "--json"]) == 1
    captured = capsys.readouterr()
    checks = json.loads(captured.out)
    assert [(c["name"], c["level"], c["detail"]) for c in checks] == [
        ("sign-in", "fail", NOT_SIGNED_IN)
    ]
    assert identity_records() == []  # azure.identity's warnings stay out of the output

    assert cli.main(["status"]) == 1
    captured = capsys.readouterr()
    assert captured.out.count("not signed in: run `az login`") == 1
    assert "Storage Table Data" not in captured.out  # no role is blamed
    assert "Log Analytics Reader" not in captured.out
    assert captured.err == ""
    assert identity_records() == []

    # -v shows what azure.identity tried.
    assert cli.main(["-v", "status"]) == 1
    assert any("EnvironmentCredential" in r.getMessage() for r in identity_records())


def test_a_signed_out_command_prints_one_error_line(signed_out, monkeypatch, capsys):
    monkeypatch.setenv("DETECTOR_STORAGE__queueServiceUri", "https://127.0.0.1:9")
    monkeypatch.setenv("DETECTOR_STORAGE__clientId", CLIENT_ID)
    monkeypatch.delenv("DETECTOR_STORAGE", raising=False)
    assert cli.main(["poison", "list"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"detector: error: {NOT_SIGNED_IN}"]
