"""Reading the archive where it lies: the blobs diagnostic settings write to a storage
account, through the real azure-storage-blob client against Azurite's blob service."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient

from detectors.cli.main import main
from detectors.clients.connections import ARCHIVE_CONNECTION_STRING, BLOB_API_VERSION
from detectors.model.observation import RawRow, RejectedRow
from detectors.sources.archive import CONTAINERS, ArchiveSource
from tests.azure_shapes import resource_log
from tests.rowkit import SUB, write_ndjson
from tests.services.azurite import ACCOUNT_KEY, Azurite

pytestmark = pytest.mark.azurite


def blob_path(record: dict[str, Any], moment: datetime) -> str:
    """Where diagnostic settings put a record: its resource's path, then the hour."""
    if "category" in record and record["category"] == "Administrative":
        resource = f"/SUBSCRIPTIONS/{SUB.upper()}"
    else:
        resource = record["ResourceId"]
    hour = f"y={moment:%Y}/m={moment:%m}/d={moment:%d}/h={moment:%H}/m=00"
    return f"resourceId={resource}/{hour}/PT1H.json"


def container_of(record: dict[str, Any]) -> str:
    category = str(record.get("category") or record.get("Category"))
    if category == "Administrative":
        return "insights-activity-logs"
    return f"insights-logs-{category.lower()}"


def archive(
    service: BlobServiceClient, rows: list[dict[str, Any]], rename: dict[str, str] | None = None
) -> dict[str, bytes]:
    """Writes the rows as the archive holds them: one blob per container, resource and hour,
    one record per line. Returns each blob's content by name."""
    blobs: dict[tuple[str, str], list[str]] = {}
    for row in rows:
        record = resource_log(row)
        moment = datetime.fromisoformat(row["TimeGenerated"].replace("0Z", "+00:00"))
        container = container_of(record)
        container = (rename or {}).get(container, container)
        blobs.setdefault((container, blob_path(record, moment)), []).append(json.dumps(record))
    written: dict[str, bytes] = {}
    for (container, name), lines in blobs.items():
        client = service.get_container_client(container)
        if not client.exists():
            client.create_container()
        data = ("\n".join(lines) + "\n").encode()
        client.upload_blob(name, data, overwrite=True)
        written[f"{container}/{name}"] = data
    return written


@pytest.fixture
def service(azurite: Azurite) -> BlobServiceClient:
    return BlobServiceClient.from_connection_string(
        azurite.connection_string, api_version=BLOB_API_VERSION
    )


@pytest.fixture
def names(service: BlobServiceClient) -> Iterator[dict[str, str]]:
    """Containers of this test's own, named like the real ones, removed afterwards."""
    tag = uuid.uuid4().hex[:8]
    mapping = {name: f"{name[:40]}-{tag}" for name in CONTAINERS}
    yield mapping
    for name in mapping.values():
        client = service.get_container_client(name)
        if client.exists():
            client.delete_container()


def _rows() -> list[dict[str, Any]]:
    from tests.sources.test_azure_formats import la_rows

    return la_rows()


def test_the_hours_in_range_are_read_in_time_order_with_blob_and_line(
    service: BlobServiceClient, names: dict[str, str]
) -> None:
    from tests.rowkit import login, site_id

    rows = _rows()
    before = login("$pay", datetime(2026, 11, 25, 8, 59, tzinfo=UTC), site_id("pay"), "192.0.2.1")
    after = login("$pay", datetime(2026, 11, 25, 12, 0, tzinfo=UTC), site_id("pay"), "192.0.2.2")
    later = login("$pay", datetime(2026, 11, 25, 11, 0, tzinfo=UTC), site_id("pay"), "192.0.2.3")
    written = archive(service, [*rows, before, after, later], names)
    # One damaged record in the middle of an hour's blob.
    audit = next(n for n in written if "appserviceauditlogs" in n and "/h=10/" in n)
    container, _, name = audit.partition("/")
    client = service.get_container_client(container)
    lines = written[audit].decode().splitlines()
    client.upload_blob(
        name, "\n".join([lines[0], '{"time": "2026-11-25T10:', *lines[1:]]) + "\n", overwrite=True
    )

    source = ArchiveSource(
        service,
        since=datetime(2026, 11, 25, 9, 30, tzinfo=UTC),  # the 09:00 hour is in range
        until=datetime(2026, 11, 25, 12, 0, tzinfo=UTC),  # the 12:00 hour is not
        containers=list(names.values()),
    )
    items = list(source)

    raw = [i for i in items if isinstance(i, RawRow)]
    rejected = [i for i in items if isinstance(i, RejectedRow)]
    assert len(raw) == len(rows) + 1  # every row of 10:00, and 11:00; not 08:00 nor 12:00
    assert [r.fields["UserAddress"] for r in raw if "UserAddress" in r.fields] == [
        "192.0.2.7",
        "192.0.2.3",
    ]
    (bad,) = rejected
    assert bad.source.endswith(audit)
    assert bad.source.startswith("devstoreaccount1/")
    assert bad.line == 2
    assert source.bytes_read == source.total_bytes > 0
    assert [b.hour.hour for b in source.blobs] == sorted(b.hour.hour for b in source.blobs)


def test_a_container_that_is_not_there_is_named_and_the_others_read(
    service: BlobServiceClient, names: dict[str, str]
) -> None:
    rows = [r for r in _rows() if r["Type"] == "AzureActivity"]
    archive(service, rows, names)
    absent = f"insights-logs-appservicefileauditlogs-{uuid.uuid4().hex[:8]}"

    source = ArchiveSource(
        service,
        since=datetime(2026, 11, 25, tzinfo=UTC),
        until=datetime(2026, 11, 26, tzinfo=UTC),
        containers=[names["insights-activity-logs"], absent],
    )

    assert len(list(source)) == len(rows)
    assert source.missing == [absent]


def test_replay_of_the_archive_alerts_exactly_as_its_log_analytics_export(
    service: BlobServiceClient,
    azurite: Azurite,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tests.cli.test_replay_cli import attack_rows

    # The archive carries no eventDataId: the export without it is its twin.
    rows = [{k: v for k, v in r.items() if k != "EventDataId"} for r in attack_rows()]
    export = write_ndjson(tmp_path / "export.jsonl", rows)
    try:
        archive(service, rows)  # the containers' real names, as `replay --archive` reads them
        monkeypatch.setenv(ARCHIVE_CONNECTION_STRING, azurite.connection_string)
        first = min(r["TimeGenerated"] for r in rows)[:10]
        until = (
            datetime.fromisoformat(max(r["TimeGenerated"] for r in rows)[:10]) + timedelta(days=1)
        ).date()
        a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"

        assert main(["replay", str(export), "--out", str(a), "--quiet"]) == 0
        capsys.readouterr()
        code = main(
            [
                "replay",
                "--archive",
                "env",
                "--since",
                first,
                "--until",
                str(until),
                "--out",
                str(b),
                "--quiet",
            ]
        )
        err = capsys.readouterr().err
    finally:
        for name in CONTAINERS:
            client = service.get_container_client(name)
            if client.exists():
                client.delete_container()

    assert code == 0, err
    assert "archive: " in err
    assert "blob(s)" in err
    assert a.read_bytes() == b.read_bytes()
    assert b"appservice-credential-download" in b.read_bytes()
    assert ACCOUNT_KEY not in err


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (
            ["--archive", "env", "--since", "2026-11-01"],
            {},
            "AZURE_STORAGE_CONNECTION_STRING is not set",
        ),
        (["--archive", "env"], {ARCHIVE_CONNECTION_STRING: "x"}, "--archive needs --since"),
        (
            ["--archive", "ftp://x", "--since", "2026-11-01"],
            {},
            "expected the account's blob endpoint",
        ),
        (["--since", "2026-11-01"], {}, "--since and --until choose what to read from --archive"),
        ([], {}, "nothing to read"),
        (
            ["--archive", "env", "--since", "2026-11-01"],
            {ARCHIVE_CONNECTION_STRING: f"AccountName=a;AccountKey={ACCOUNT_KEY};Bogus"},
            "not a connection string",
        ),
    ],
)
def test_archive_options_that_cannot_work_say_what_to_do_and_print_no_secret(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    env: dict[str, str],
    message: str,
) -> None:
    monkeypatch.delenv(ARCHIVE_CONNECTION_STRING, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)

    code = main(["replay", *args, "--out", str(tmp_path / "o.jsonl"), "--quiet"])

    err = capsys.readouterr().err
    assert code != 0
    assert message in err
    assert ACCOUNT_KEY not in err
    assert not (tmp_path / "o.jsonl").exists()


@pytest.mark.logs
def test_backfill_from_the_archive_learns_what_backfill_from_the_workspace_learns(
    service: BlobServiceClient,
    azurite: Azurite,
    log_analytics: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from detectors.cli import tuning as cli_tuning
    from tests.rowkit import PUBLISHXML, activity, site_id
    from tests.runs.test_backfill import DEV, NOW, source

    rows = []
    for days_ago in range(4):
        when = (NOW - timedelta(days=days_ago)).replace(hour=10)
        rows += activity(DEV, when, PUBLISHXML, site_id("app1"))
    log_analytics.add_rows(
        "AzureActivity",
        [{k: v for k, v in r.items() if k != "Type"} for r in rows],
        arrivals=[
            datetime.fromisoformat(r["TimeGenerated"].replace("0Z", "+00:00"))
            + timedelta(minutes=5)
            for r in rows
        ],
    )
    monkeypatch.setattr(cli_tuning, "logs_source", lambda settings: source(log_analytics))
    monkeypatch.setattr(cli_tuning, "clock", lambda: NOW)
    monkeypatch.setenv(ARCHIVE_CONNECTION_STRING, azurite.connection_string)
    workspace, archived = tmp_path / "workspace.db", tmp_path / "archive.db"
    try:
        archive(service, rows)
        assert main(["backfill", "--days", "3", "--store", f"sqlite:{workspace}"]) == 0
        code = main(
            ["backfill", "--days", "3", "--archive", "env", "--store", f"sqlite:{archived}"]
        )
    finally:
        for name in CONTAINERS:
            client = service.get_container_client(name)
            if client.exists():
                client.delete_container()
    assert code == 0, capsys.readouterr().err
    capsys.readouterr()

    exports = []
    for db in (workspace, archived):
        out = tmp_path / f"{db.stem}.json"
        assert main(["baselines", "export", "--store", f"sqlite:{db}", "--out", str(out)]) == 0
        exports.append([json.loads(line) for line in out.read_text().splitlines()])
    assert exports[0] == exports[1]
    assert "dev@contoso.com" in json.dumps(exports[1])
