"""Observations as the engine state holds them: plain JSON values, and their size.

What the engine carries from one run to the next (file changes waiting for their login,
partial bursts, the activity of open bursts) travels in one Table Storage entity, so each
observation is written as plain values and counted before it is kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from detectors.model.observation import (
    ClientTool,
    Observation,
    OperationFamily,
    Principal,
    PrincipalType,
    ResourceRef,
    SourceTable,
    Status,
)


def held_size(obs: Observation) -> int:
    """About how many characters an observation takes in the engine state (an upper bound
    for ordinary text: every variable field, and room for the rest)."""
    return (
        len(obs.event_id)
        + len(obs.action_key)
        + 2 * len(obs.resource.id)
        + len(obs.principal.id)
        + len(obs.principal.name)
        + len(obs.operation)
        + len(obs.detail or "")
        + len(obs.webjob or "")
        + len(obs.config_suffix or "")
        + 400
    )


def observation_json(obs: Observation) -> dict[str, Any]:
    """An observation as plain JSON values (for the engine state)."""
    r = obs.resource
    return {
        "eventId": obs.event_id,
        "actionKey": obs.action_key,
        "time": obs.time.isoformat(),
        "table": obs.table.value,
        "operation": obs.operation,
        "family": obs.family.value,
        "status": obs.status.value,
        "principal": [obs.principal.id, obs.principal.name, obs.principal.type.value],
        "appId": obs.app_id,
        "tool": obs.tool.value,
        "sourceIp": obs.source_ip,
        "resource": [r.id, r.subscription_id, r.resource_group, r.site, r.slot],
        "configSuffix": obs.config_suffix,
        "webjob": obs.webjob,
        "detail": obs.detail,
        "httpStatus": obs.http_status,
        "count": obs.count,
        "ingested": obs.ingested.isoformat() if obs.ingested else None,
        "tenantId": obs.tenant_id,
    }


def observation_from(value: Mapping[str, Any]) -> Observation:
    """An observation from `observation_json`'s output; KeyError/ValueError/TypeError if not."""
    pid, pname, ptype = value["principal"]
    rid, sub, group, site, slot = value["resource"]
    return Observation(
        event_id=str(value["eventId"]),
        action_key=str(value["actionKey"]),
        time=datetime.fromisoformat(value["time"]),
        table=SourceTable(value["table"]),
        operation=str(value["operation"]),
        family=OperationFamily(value["family"]),
        status=Status(value["status"]),
        principal=Principal(id=str(pid), name=str(pname), type=PrincipalType(ptype)),
        app_id=value["appId"],
        tool=ClientTool(value["tool"]),
        source_ip=value["sourceIp"],
        resource=ResourceRef(
            id=str(rid),
            subscription_id=str(sub),
            resource_group=str(group),
            site=str(site),
            slot=slot,
        ),
        config_suffix=value["configSuffix"],
        webjob=value["webjob"],
        detail=value["detail"],
        http_status=value["httpStatus"],
        count=int(value["count"]),
        ingested=datetime.fromisoformat(value["ingested"]) if value["ingested"] else None,
        # Added later: a state written before holds none.
        tenant_id=value.get("tenantId"),
    )
