"""Access tokens as the Activity Log shows them: one claim set reused for about an hour."""

from __future__ import annotations

import random
from dataclasses import dataclass

import orjson

from detectors.simulation.clients import Client
from detectors.simulation.clock import TICKS_PER_DAY, TICKS_PER_SECOND, seconds
from detectors.simulation.identities import Identity, IdentityKind
from detectors.simulation.ids import b64url

OBJECT_ID_CLAIM = "http://schemas.microsoft.com/identity/claims/objectidentifier"
TENANT_ID_CLAIM = "http://schemas.microsoft.com/identity/claims/tenantid"
_XMLSOAP = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/"
_REFRESH_MARGIN = 300 * TICKS_PER_SECOND


@dataclass(frozen=True, kw_only=True, slots=True)
class Token:
    """An issued token: its validity in ticks and its claims as JSON text."""

    issued: int
    expires: int
    claims: str


class TokenIssuer:
    """Issues and caches tokens per principal, client and session, as token caches do."""

    __slots__ = ("_cache",)

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str, str], list[Token]] = {}

    def claims(
        self,
        rng: random.Random,
        *,
        identity: Identity,
        client: Client,
        at: int,
        address: str,
        session: str = "",
    ) -> str:
        """The claims text of a token valid at `at`, reusing a cached one while it lasts."""
        key = (identity.key, client.app_id, session)
        tokens = self._cache.setdefault(key, [])
        for token in reversed(tokens):
            if token.issued <= at < token.expires - _REFRESH_MARGIN:
                return token.claims
        token = _issue(rng, identity=identity, client=client, at=at, address=address)
        tokens[:] = [t for t in tokens if t.expires > at - TICKS_PER_DAY]
        tokens.append(token)
        return token.claims


def _issue(
    rng: random.Random, *, identity: Identity, client: Client, at: int, address: str
) -> Token:
    issued = at - rng.randint(1, 40) * TICKS_PER_SECOND
    if identity.kind is IdentityKind.MANAGED_IDENTITY:
        lifetime = 86_399 - rng.randint(0, 900)
    elif identity.kind is IdentityKind.USER:
        lifetime = rng.randint(3_900, 5_400)
    else:
        lifetime = 3_599 + rng.randint(0, 900)
    expires = issued + lifetime * TICKS_PER_SECOND
    if identity.kind is IdentityKind.USER:
        body = _user_claims(rng, identity, client, issued=issued, expires=expires, address=address)
    else:
        body = _app_claims(rng, identity, client, issued=issued, expires=expires)
    return Token(issued=issued, expires=expires, claims=orjson.dumps(body).decode())


def _times(issued: int, expires: int) -> tuple[str, str]:
    return str(seconds(issued)), str(seconds(expires))


def _user_claims(
    rng: random.Random,
    identity: Identity,
    client: Client,
    *,
    issued: int,
    expires: int,
    address: str,
) -> dict[str, str]:
    iat, exp = _times(issued, expires)
    claims = {
        "aud": client.audience,
        "iss": f"https://sts.windows.net/{identity.tenant_id}/",
        "iat": iat,
        "nbf": iat,
        "exp": exp,
        "aio": b64url(rng, 64),
        "http://schemas.microsoft.com/claims/authnmethodsreferences": identity.auth_methods,
        "appid": client.app_id,
        "appidacr": "0",
        f"{_XMLSOAP}surname": identity.surname or "",
        f"{_XMLSOAP}givenname": identity.given_name or "",
    }
    if identity.groups:
        claims["groups"] = ",".join(identity.groups)
    claims.update(
        {
            "idtyp": "user",
            "ipaddr": address,
            "name": identity.display_name,
            OBJECT_ID_CLAIM: identity.object_id,
            "puid": identity.puid or "",
            "rh": f"1.AQ{b64url(rng, 62)}.",
            "http://schemas.microsoft.com/identity/claims/scope": "user_impersonation",
            f"{_XMLSOAP}nameidentifier": identity.subject,
            TENANT_ID_CLAIM: identity.tenant_id,
            f"{_XMLSOAP}upn": identity.upn or "",
            "uti": b64url(rng, 22),
            "ver": "1.0",
            "xms_tcdt": "1455140385",
        }
    )
    return claims


def _app_claims(
    rng: random.Random, identity: Identity, client: Client, *, issued: int, expires: int
) -> dict[str, str]:
    iat, exp = _times(issued, expires)
    tenant = identity.tenant_id
    v2 = identity.token_version == 2
    claims = {
        "aud": "https://management.azure.com" if v2 else "https://management.azure.com/",
        "iss": f"https://login.microsoftonline.com/{tenant}/v2.0"
        if v2
        else f"https://sts.windows.net/{tenant}/",
        "iat": iat,
        "nbf": iat,
        "exp": exp,
        "aio": b64url(rng, 64),
    }
    if v2:
        claims.update({"azp": client.app_id, "azpacr": identity.credential_type})
    else:
        claims.update({"appid": client.app_id, "appidacr": identity.credential_type})
    claims.update(
        {
            "http://schemas.microsoft.com/identity/claims/identityprovider": f"https://sts.windows.net/{tenant}/",
            "idtyp": "app",
            OBJECT_ID_CLAIM: identity.object_id,
            "rh": f"1.AQ{b64url(rng, 62)}.",
            f"{_XMLSOAP}nameidentifier": identity.object_id,
            TENANT_ID_CLAIM: tenant,
            "uti": b64url(rng, 22),
            "ver": "2.0" if v2 else "1.0",
            "xms_idrel": "7 20",
            "xms_tcdt": "1455140385",
        }
    )
    if identity.mi_resource_id:
        claims["xms_mirid"] = identity.mi_resource_id
    return claims
