"""Builds rows exactly as Log Analytics exports them, for fixtures that read like stories."""

from __future__ import annotations

import itertools
import json
import random
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

CLI = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
POWERSHELL = "1950a258-227b-4e31-a9cf-717495945fc2"
PORTAL = "c44b4083-3bb0-49c1-b47d-974e53cbdf3c"
VSCODE = "aebc6443-996d-45c2-90f0-388ff96faa56"
TENANT = "72f988bf-0000-4000-8000-2d7cd011db47"
SUB = "6a1f7b2c-1111-4c2d-9e3f-0a1b2c3d4e5f"
OID = "http://schemas.microsoft.com/identity/claims/objectidentifier"

_counter = itertools.count(1)


def guid() -> str:
    """A fresh, deterministic-enough GUID for a fixture."""
    return str(uuid.UUID(int=next(_counter) * 7919 + 10**30))


def ts(moment: datetime) -> str:
    """Timestamps as Log Analytics prints them: 7 fractional digits and Z."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def site_id(site: str, group: str = "rg-web", sub: str = SUB, slot: str | None = None) -> str:
    base = f"/subscriptions/{sub}/resourcegroups/{group}/providers/microsoft.web/sites/{site}"
    return base + (f"/slots/{slot}" if slot else "")


@dataclass
class Actor:
    """Who acts in a fixture: a user (UPN) or an app (object id)."""

    caller: str
    app_id: str = CLI
    ip: str = "198.51.100.10"
    name: str = "Jane Doe"
    kind: str = "user"  # user | app | mi
    oid: str = field(default_factory=guid)

    def claims(self) -> dict[str, Any]:
        claims: dict[str, Any] = {
            "aud": "https://management.core.windows.net/",
            "iss": f"https://sts.windows.net/{TENANT}/",
            "iat": "1790000000",
            "exp": "1790003600",
            "appid": self.app_id,
            "appidacr": "0" if self.kind == "user" else "2",
            "ipaddr": self.ip,
            OID: self.oid,
            "http://schemas.microsoft.com/identity/claims/tenantid": TENANT,
            "ver": "1.0",
        }
        if self.kind == "user":
            claims.update(
                name=self.name,
                upn=self.caller,
                puid="10032000ABCDEF01",
                idtyp="user",
            )
        else:
            claims["idtyp"] = "app"
        if self.kind == "mi":
            claims["xms_mirid"] = f"/subscriptions/{SUB}/resourcegroups/rg-ops/providers/x"
        return claims


def activity(
    actor: Actor,
    when: datetime,
    operation: str,
    resource: str,
    *,
    status: str = "Success",
    substatus: str = "OK",
    with_start: bool = True,
    correlation: str | None = None,
) -> list[dict[str, Any]]:
    """The rows one ARM action leaves in AzureActivity: a Start row and its end row."""
    correlation = correlation or guid()
    operation_id = guid()
    auth = {
        "action": operation.lower().replace("microsoft.web", "Microsoft.Web"),
        "scope": resource,
        "evidence": {
            "role": "Contributor",
            "principalId": actor.oid.replace("-", ""),
            "principalType": "User" if actor.kind == "user" else "ServicePrincipal",
        },
    }
    parts = resource.split("/")
    rows = []
    phases = [("Start", "", when)] if with_start else []
    phases.append((status, substatus, when + timedelta(milliseconds=420)))
    for phase, sub, moment in phases:
        rows.append(
            {
                "TenantId": TENANT,
                "SourceSystem": "Azure",
                "TimeGenerated": ts(moment),
                "OperationNameValue": operation,
                "Level": "Informational" if phase != "Failure" else "Error",
                "ActivityStatusValue": phase,
                "ActivitySubstatusValue": sub,
                "CategoryValue": "Administrative",
                "CorrelationId": correlation,
                "Caller": actor.caller,
                "CallerIpAddress": actor.ip,
                "Claims": json.dumps(actor.claims()),
                "Authorization": json.dumps(auth),
                "Properties": json.dumps({"eventCategory": "Administrative", "entity": resource}),
                "HTTPRequest": json.dumps({"clientIpAddress": actor.ip, "method": "POST"}),
                "EventDataId": guid(),
                "EventSubmissionTimestamp": ts(moment + timedelta(seconds=5)),
                "OperationId": operation_id,
                "ResourceGroup": parts[4].upper(),
                "ResourceProviderValue": "MICROSOFT.WEB",
                "SubscriptionId": parts[2],
                "_ResourceId": resource.lower(),
                "ResourceId": resource,
                "Type": "AzureActivity",
            }
        )
    return rows


def login(
    user: str, when: datetime, site: str, address: str, protocol: str = "Kudu"
) -> dict[str, Any]:
    """An AppServiceAuditLogs row: a Kudu, FTP or Web Deploy login."""
    return {
        "TimeGenerated": ts(when),
        "Category": "AppServiceAuditLogs",
        "OperationName": "Authorization",
        "Protocol": protocol,
        "User": user,
        "UserDisplayName": user,
        "UserAddress": address,
        "_ResourceId": site,
        "Type": "AppServiceAuditLogs",
    }


def file_change(when: datetime, site: str, path: str, operation: str = "Modify") -> dict[str, Any]:
    """An AppServiceFileAuditLogs row."""
    return {
        "TimeGenerated": ts(when),
        "Category": "AppServiceFileAuditLogs",
        "OperationName": operation,
        "Path": path,
        "Process": "w3wp",
        "_ResourceId": site,
        "Type": "AppServiceFileAuditLogs",
    }


def workdays(start: datetime, days: int, hour: int = 10) -> Iterator[datetime]:
    """Weekday mornings from `start`, one per day."""
    for n in range(days):
        day = start + timedelta(days=n)
        if day.weekday() < 5:
            yield day.replace(hour=hour, minute=5 + n % 40)


def write_ndjson(path: Path, rows: Iterable[dict[str, Any]]) -> Path:
    """Rows as NDJSON sorted by time, as a query would return them."""
    ordered = sorted(rows, key=lambda r: r["TimeGenerated"])
    path.write_text("".join(json.dumps(r) + "\n" for r in ordered), encoding="utf-8")
    return path


START = datetime(2026, 10, 1, tzinfo=UTC)
PUBLISHXML = "MICROSOFT.WEB/SITES/PUBLISHXML/ACTION"
CONFIG_LIST = "MICROSOFT.WEB/SITES/CONFIG/LIST/ACTION"


@dataclass(frozen=True)
class Action:
    """One action's rows (Start and end) and when it happened."""

    principal: str
    time: datetime
    rows: list[dict[str, Any]]


HARVEST_SITES = ("pay", "billing", "hr", "crm", "app1", "web")
HARVEST_ADDRESSES = ("198.51.100.7", "203.0.113.41", "192.0.2.200")


def stranger_id(n: int) -> str:
    """The object id of the n-th service principal of `harvest_bursts`."""
    return f"5e1f0000-0000-4000-8000-{n:012d}"


def harvest_bursts(rng: random.Random, start: datetime, spans: int = 10) -> list[Action]:
    """Service principals never seen before, three in each 15-minute span, each taking the
    publish profiles of 5 of 6 sites within 12 seconds with the Azure CLI from three
    addresses; each burst lies inside one 5-minute slice of event time."""
    actions = []
    for n in range(3 * spans):
        span, slot = divmod(n, 3)
        first = start + timedelta(minutes=15 * span + 5 * slot, seconds=rng.randrange(10, 240))
        for k, site in enumerate(rng.sample(HARVEST_SITES, 5)):
            actor = Actor(
                caller=stranger_id(n),
                app_id=CLI,
                ip=HARVEST_ADDRESSES[k % 3],
                kind="app",
                oid=stranger_id(n),
            )
            when = first + timedelta(seconds=3 * k)
            actions.append(
                Action(
                    principal=actor.caller,
                    time=when,
                    rows=activity(actor, when, PUBLISHXML, site_id(site)),
                )
            )
    return actions
