"""Signing in: which credential each place uses, and what to say when it fails.

In Azure (App Service and Functions set `IDENTITY_ENDPOINT`, older hosts `MSI_ENDPOINT`) the
detector signs in as the user-assigned managed identity its settings name. Anywhere else, a
laptop or a pipeline, that identity does not exist: the operators' commands sign in with
`DefaultAzureCredential` (`az login`, environment credentials, a VM's own identity), even
with `DETECTOR_STORAGE__clientId` copied from the app settings.

A failed sign-in reaches us in many wrappings: the credential's `ClientAuthenticationError`
(or `CredentialUnavailableError`), raised out of a storage client, or re-raised by
azure-monitor-query 2.0 as a bare `HttpResponseError` with the original only in its context,
or a service's 401. `sign_in_problem` finds it in any of them, and `explain` turns it into
one sentence that says what to do; off Azure, the credential itself raises `SignInFailed`
with that sentence, once, whichever client asked.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from azure.core.credentials import AccessToken, TokenCredential
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

from detectors.model.errors import SignInFailed

IN_AZURE = ("IDENTITY_ENDPOINT", "MSI_ENDPOINT")
"""Set by App Service and Functions where a managed identity can be asked for tokens."""
NOT_SIGNED_IN = (
    "not signed in: run `az login` (no Azure CLI sign-in, environment credential or managed "
    "identity was found; `-v` lists each one tried)"
)
_UNAVAILABLE = re.compile(
    r"unavailable|not found|not installed|could not be found|requires the|no accounts|"
    r"az login|azd auth login|not logged in",
    re.IGNORECASE,
)
_ATTEMPT = re.compile(r"^\t(?P<name>\w+): (?P<why>.+)$", re.MULTILINE)
_CHAIN_LIMIT = 10


def in_azure(environ: Mapping[str, str]) -> bool:
    """Whether this process runs where a managed identity endpoint is offered."""
    return any(environ.get(name) for name in IN_AZURE)


def credential(client_id: str | None, environ: Mapping[str, str]) -> TokenCredential:
    """The managed identity `client_id` names, in Azure; DefaultAzureCredential elsewhere,
    wrapped so that a failure says what to do."""
    # azure.identity takes a quarter of a second to import; only signing in needs it.
    from azure.identity import (  # noqa: PLC0415
        DefaultAzureCredential,
        ManagedIdentityCredential,
    )

    if client_id and in_azure(environ):
        # Unwrapped: the Functions host's callers (the notifier's Sentinel client) tell a
        # passing managed identity failure by its type.
        return ManagedIdentityCredential(client_id=client_id)
    return ExplainedCredential(DefaultAzureCredential())


class ExplainedCredential:
    """A credential whose failure is a `SignInFailed` saying what to do, raised again at
    once (without asking again, or logging again) for every later token."""

    def __init__(self, inner: TokenCredential, *, identity: str | None = None) -> None:
        self.inner = inner
        self.identity = identity
        self.failure: str | None = None

    def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        """A token from the inner credential, or SignInFailed."""
        if self.failure is not None:
            raise SignInFailed(self.failure)
        try:
            return self.inner.get_token(
                *scopes, claims=claims, tenant_id=tenant_id, enable_cae=enable_cae, **kwargs
            )
        except ClientAuthenticationError as err:
            self.failure = explain(err, identity=self.identity)
            raise SignInFailed(self.failure) from err

    def close(self) -> None:
        """Close the inner credential, if it holds anything open."""
        close = getattr(self.inner, "close", None)
        if callable(close):
            close()


def sign_in_problem(err: BaseException) -> str | None:
    """What to say when `err` is, or wraps, a failed sign-in; None when it is not one."""
    seen: set[int] = set()
    current: BaseException | None = err
    for _ in range(_CHAIN_LIMIT):
        if current is None or id(current) in seen:
            return None
        seen.add(id(current))
        if isinstance(current, SignInFailed):
            return str(current)
        if isinstance(current, ClientAuthenticationError):
            return explain(current)
        if isinstance(current, HttpResponseError) and current.status_code == 401:
            return (
                "the service refused the sign-in (401): the token is for another tenant or "
                "has expired; run `az login` again (with --tenant for the deployment's tenant)"
            )
        inner = getattr(current, "inner_exception", None)
        current = (
            inner
            if isinstance(inner, BaseException)
            else (current.__cause__ or current.__context__)
        )
    return None


def explain(err: ClientAuthenticationError, *, identity: str | None = None) -> str:
    """One sentence for a failed sign-in: who could not sign in, why, and what to do."""
    text = str(getattr(err, "message", None) or err).strip()
    first = text.splitlines()[0] if text else type(err).__name__
    if identity is not None:
        return f"the managed identity {identity} could not sign in: {first[:200]}"
    if first.startswith("ManagedIdentityCredential"):
        # In Azure, unwrapped: `az login` is no advice there.
        return (
            f"the app's managed identity could not sign in: {first[:200]} (check that "
            "DETECTOR_STORAGE__clientId names an identity assigned to the app)"
        )
    if type(err).__name__ == "CredentialUnavailableError":
        return NOT_SIGNED_IN
    attempts = [(m["name"], m["why"].strip()) for m in _ATTEMPT.finditer(text)]
    failed = [(name, why) for name, why in attempts if not _UNAVAILABLE.search(why)]
    if attempts and not failed:
        return NOT_SIGNED_IN
    if failed:
        name, why = failed[-1]
        return f"signing in with {name} failed: {why[:200]}; run `az login` again"
    return f"signing in failed: {first[:200]}; run `az login` again"
