"""Which store a command means: the `--store` spelling, parsed once for every command.

- `sqlite:FILE`: the embedded store in one file.
- `table:https://ACCOUNT.table.core.windows.net`: Table Storage, signed in with
  `DefaultAzureCredential` (`az login`, a managed identity, environment credentials).
- `table:CONNECTION_STRING`: Table Storage by connection string, e.g. Azurite's
  `table:DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;...`.
- `table` (nothing after it): the app settings in the environment, as `detector run` reads
  them: `DETECTOR_STORAGE` (a connection string) or `DETECTOR_STORAGE__tableServiceUri`.

Without `--store`, `DETECTOR_STORE` holds the spelling. Table names come from
`DETECTOR_BASELINE_TABLE`, `DETECTOR_STATE_TABLE` and `DETECTOR_ALLOW_TABLE` (defaults as
in the Function App).
"""

from __future__ import annotations

from detectors.clients.connections import credential
from detectors.model.errors import DetectorError
from detectors.settings.app import STORAGE, STORE, OperatorSettings
from detectors.stores.sqlite import SqliteStore
from detectors.stores.table import TableStore

SPELLINGS = (
    "sqlite:FILE, table:https://ACCOUNT.table.core.windows.net, table:CONNECTION_STRING, "
    "or table (the DETECTOR_STORAGE app settings)"
)

OperatorStore = SqliteStore | TableStore


def describe(spec: str) -> str:
    """The spelling without secrets, for messages: a connection string's key is not shown."""
    kind, _, target = spec.partition(":")
    if kind == "table" and target and not target.startswith("https://"):
        account = next(
            (p.split("=", 1)[1] for p in target.split(";") if p.startswith("AccountName=")), "?"
        )
        return f"table:(connection string, account {account})"
    return spec


def open_store(
    spec: str | None,
    settings: OperatorSettings,
    *,
    must_exist: bool = True,
    timeout_seconds: float = 10.0,
    retries: int = 1,
) -> OperatorStore:
    """The store a `--store` spelling names; DetectorError says how to spell it right.

    With `must_exist`, an embedded store file must already be there (a typo in the path
    would otherwise make a new, empty store and show nothing).
    """
    spec = spec or settings.store
    if spec is None:
        raise DetectorError(f"no store given: pass --store ({SPELLINGS}) or set {STORE}")
    kind, _, target = spec.partition(":")
    if kind == "sqlite" and target:
        return SqliteStore(path=target, must_exist=must_exist)
    if kind != "table":
        raise DetectorError(f"--store {describe(spec)!r}: expected {SPELLINGS}")

    baseline_table, state_table = settings.baseline_table, settings.state_table
    allow_table = settings.allow_table
    target = target.strip()
    if not target:
        target = settings.storage.connection_string or settings.storage.table_service_uri or ""
        if not target:
            raise DetectorError(
                f"--store table: {STORAGE} and {STORAGE}__tableServiceUri are both unset; set "
                "one, or give the account: --store table:https://ACCOUNT.table.core.windows.net"
            )
    if target.startswith("https://"):
        # The deployment made the tables; an operator's command never creates them.
        return TableStore(
            endpoint=target.rstrip("/"),
            credential=credential(settings.storage.client_id),
            create_tables=False,
            baseline_table=baseline_table,
            state_table=state_table,
            allow_table=allow_table,
            timeout_seconds=timeout_seconds,
            retries=retries,
        )
    if target.startswith("http://"):
        raise DetectorError(
            f"--store {spec!r}: plain http needs a connection string (Azurite: "
            "table:DefaultEndpointsProtocol=http;AccountName=...;TableEndpoint=...)"
        )
    if "=" not in target:
        raise DetectorError(f"--store {describe(spec)!r}: expected {SPELLINGS}")
    return TableStore(
        connection_string=target,
        create_tables=True,
        baseline_table=baseline_table,
        state_table=state_table,
        allow_table=allow_table,
        timeout_seconds=timeout_seconds,
        retries=retries,
    )
