"""`detector replay` end to end: files in, alert JSON lines out, a summary an engineer can read."""

from __future__ import annotations

import gzip
import io
import json
import os
import stat
from datetime import timedelta
from pathlib import Path

import pytest

from detectors.cli.main import main
from detectors.runs.replay import dense_days
from tests.detections.test_detections import AFTER, jane_history
from tests.rowkit import POWERSHELL, START, Actor, activity, site_id, write_ndjson

THIEF = Actor(caller="jane@contoso.com", app_id=POWERSHELL, ip="203.0.113.66", name="Jane Doe")


def attack_rows() -> list[dict]:
    rows = jane_history()
    for n, site in enumerate(["app1", "pay", "billing", "hr", "crm"]):
        rows += activity(
            THIEF,
            AFTER.replace(hour=3) + timedelta(minutes=n),
            "MICROSOFT.WEB/SITES/PUBLISHXML/ACTION",
            site_id(site),
        )
    return rows


def run(*args: str) -> int:
    return main(["replay", *args])


def test_replay_writes_alerts_and_a_summary(tmp_path, capsys):
    src = write_ndjson(tmp_path / "export.jsonl", attack_rows())
    out = tmp_path / "alerts.jsonl"
    assert run(str(src), "--out", str(out), "--quiet") == 0
    alerts = [json.loads(line) for line in out.read_text().splitlines()]
    assert [a["detection"] for a in alerts] == ["appservice-credential-download"]
    err = capsys.readouterr().err
    assert "rows" in err
    assert "alerts: 1 (1 high appservice-credential-download)" in err
    assert "not relevant:" in err
    assert "start row" in err


def test_alerts_written_to_a_pipe_go_through_it_and_leave_it_a_pipe(tmp_path):
    """`--out /dev/null` or a named pipe is written into, never replaced by a file (a
    replay as root once turned /dev/null into a regular file). A pipe stands in for the
    device here: the test must not risk the machine's /dev/null. Its reading end is open
    (without blocking) before the replay, and the pipe's buffer holds the one alert."""
    src = write_ndjson(tmp_path / "export.jsonl", attack_rows())
    pipe = tmp_path / "alerts.pipe"
    os.mkfifo(pipe)
    reader = os.open(pipe, os.O_RDONLY | os.O_NONBLOCK)
    try:
        assert run(str(src), "--out", str(pipe), "--quiet") == 0
        assert stat.S_ISFIFO(pipe.stat().st_mode)
        received = b""
        while chunk := _read_some(reader):
            received += chunk
    finally:
        os.close(reader)
    [alert] = [json.loads(line) for line in received.splitlines()]
    assert alert["detection"] == "appservice-credential-download"
    assert not list(tmp_path.glob("*.partial"))


def _read_some(fd: int) -> bytes:
    try:
        return os.read(fd, 65536)
    except BlockingIOError:
        return b""


def test_the_same_input_replayed_twice_gives_byte_identical_alerts(tmp_path):
    src = write_ndjson(tmp_path / "export.jsonl", attack_rows())
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    assert run(str(src), "--out", str(a), "--quiet") == 0
    assert run(str(src), "--out", str(b), "--quiet") == 0
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes()


def test_input_order_and_compression_do_not_change_the_alerts(tmp_path):
    rows = sorted(attack_rows(), key=lambda r: r["TimeGenerated"])
    sorted_file = write_ndjson(tmp_path / "asc.jsonl", rows)
    reversed_gz = tmp_path / "desc.bin"
    reversed_gz.write_bytes(
        gzip.compress("".join(json.dumps(r) + "\n" for r in reversed(rows)).encode())
    )
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    assert run(str(sorted_file), "--out", str(a), "--quiet") == 0
    assert run(str(reversed_gz), "--out", str(b), "--quiet") == 0
    assert a.read_bytes() == b.read_bytes()


def test_malformed_rows_are_reported_with_file_and_line_and_valid_rows_still_count(
    tmp_path, capsys
):
    good = tmp_path / "good.jsonl"
    write_ndjson(good, attack_rows())
    lines = good.read_text().splitlines()
    lines.insert(3, "{this is not json")
    lines.insert(
        7,
        json.dumps(
            {
                "Type": "AzureActivity",
                "OperationNameValue": "MICROSOFT.WEB/SITES/PUBLISHXML/ACTION",
                "ActivityStatusValue": "Success",
                "Caller": "",
                "TimeGenerated": "2026-10-02T00:00:00Z",
                "_ResourceId": site_id("a"),
            }
        ),
    )
    lines.insert(
        9,
        json.dumps(
            {
                "Type": "AzureActivity",
                "Caller": "x\u0000\u202e",
                "TimeGenerated": "nonsense",
                "OperationNameValue": "MICROSOFT.WEB/SITES/PUBLISHXML/ACTION",
                "ActivityStatusValue": "Success",
                "_ResourceId": site_id("a"),
            }
        ),
    )
    bad = tmp_path / "mixed.jsonl"
    bad.write_text("\n".join(lines) + "\n")
    out_good, out_bad = tmp_path / "g.jsonl", tmp_path / "b.jsonl"
    assert run(str(good), "--out", str(out_good), "--quiet") == 0
    capsys.readouterr()
    assert run(str(bad), "--out", str(out_bad), "--quiet") == 0
    err = capsys.readouterr().err
    assert "rejected 3 rows" in err
    assert f"{bad}:4: invalid JSON" in err
    assert f"{bad}:8: Caller is empty" in err
    assert f"{bad}:10: TimeGenerated 'nonsense' is not an ISO 8601 timestamp" in err
    assert out_bad.read_bytes() == out_good.read_bytes()


def test_a_file_with_no_usable_rows_fails_clearly_and_writes_nothing(tmp_path, capsys):
    src = tmp_path / "junk.jsonl"
    src.write_text('{"a": 1}\n{"b": 2}\n')
    out = tmp_path / "alerts.jsonl"
    assert run(str(src), "--out", str(out), "--quiet") == 1
    err = capsys.readouterr().err
    assert "no usable rows: all 2 rows were rejected" in err
    assert f"{src}:1:" in err
    assert not out.exists()


def test_a_missing_file_is_a_one_line_error(tmp_path, capsys):
    assert run(str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "o.jsonl")) == 1
    assert "nope.jsonl: no such file" in capsys.readouterr().err


def test_a_bad_window_is_a_usage_error(tmp_path, capsys):
    src = write_ndjson(tmp_path / "e.jsonl", attack_rows())
    assert run(str(src), "--out", str(tmp_path / "o.jsonl"), "--window", "fortnight") == 2
    assert "is not a duration" in capsys.readouterr().err


def test_a_persistent_store_carries_baselines_into_the_next_replay(tmp_path):
    history = write_ndjson(tmp_path / "history.jsonl", jane_history())
    attack = write_ndjson(
        tmp_path / "attack.jsonl",
        [r for r in attack_rows() if r["Caller"] == THIEF.caller and "66" in r["CallerIpAddress"]],
    )
    store = f"sqlite:{tmp_path / 'b.db'}"
    out = tmp_path / "o.jsonl"
    assert run(str(history), "--out", str(out), "--store", store, "--quiet") == 0
    assert (
        run(str(attack), "--out", str(out), "--store", store, "--learning-days", "0", "--quiet")
        == 0
    )
    [alert] = [json.loads(line) for line in out.read_text().splitlines()]
    assert alert["history"]["known"] is True
    assert "NEW_SCRIPTING_TOOL" in {r["code"] for r in alert["reasons"]}


def test_show_prints_alerts_readably_and_escapes_control_characters(tmp_path, capsys):
    rows = attack_rows()
    for row in rows:
        row["Claims"] = row["Claims"].replace("Jane Doe", "Jane \\u001b[2J Doe")
    src = write_ndjson(tmp_path / "e.jsonl", rows)
    assert run(str(src), "--out", str(tmp_path / "o.jsonl"), "--show", "--quiet") == 0
    shown = capsys.readouterr().out
    assert "[HIGH" in shown
    assert "who    Jane" in shown
    assert "why" in shown
    assert "\x1b" not in shown


def test_alert_document_has_the_documented_fields(tmp_path):
    src = write_ndjson(tmp_path / "e.jsonl", attack_rows())
    out = tmp_path / "o.jsonl"
    assert run(str(src), "--out", str(out), "--quiet") == 0
    alert = json.loads(out.read_text().splitlines()[0])
    assert list(alert) == [
        "schemaVersion",
        "id",
        "detection",
        "title",
        "severity",
        "score",
        "riskScore",
        "summary",
        "principal",
        "resource",
        "resources",
        "firstSeen",
        "lastSeen",
        "operations",
        "sourceIps",
        "tools",
        "actors",
        "reasons",
        "history",
        "mitre",
        "investigation",
        "eventIds",
        "tenantId",
        "detectorVersion",
        "burst",
    ]
    assert set(alert["principal"]) == {"id", "name", "type", "appId", "tool"}
    assert set(alert["resource"]) == {"id", "subscriptionId", "resourceGroup", "site", "slot"}
    assert alert["firstSeen"].endswith("Z")
    assert alert["lastSeen"] >= alert["firstSeen"]
    assert {
        "id": "T1552.001",
        "name": "Unsecured Credentials: Credentials In Files",
        "tactics": ["Credential Access"],
    } in alert["mitre"]
    first_query = alert["investigation"]["queries"][0]["query"]
    assert 'Caller =~ "jane@contoso.com"' in first_query
    assert len(alert["id"]) == 32
    assert START.isoformat()[:4] in alert["firstSeen"]


def test_progress_shows_both_phases_with_their_own_totals_on_a_terminal(
    tmp_path, capsys, monkeypatch
):
    from detectors.cli import main as cli
    from detectors.cli import output

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    ticks = iter(range(1_000_000))
    real = output.Output.bar
    monkeypatch.setattr(
        output.Output,
        "bar",
        lambda self, label, total, **kw: real(
            output.Output(stderr=terminal, clock=lambda: float(next(ticks))), label, total, **kw
        ),
    )
    rows = []
    for day in range(30):
        for n in range(800):
            rows += activity(
                THIEF,
                START + timedelta(days=day, seconds=n * 90),
                "MICROSOFT.WEB/SITES/CONFIG/LIST/ACTION",
                site_id("app1") + "/config/metadata",
                with_start=False,
            )
    src = write_ndjson(tmp_path / "big.jsonl", rows)
    assert run(str(src), "--out", str(tmp_path / "o.jsonl")) == 0
    shown = terminal.getvalue()
    assert "reading: " in shown
    assert " MB " in shown
    assert "scoring: " in shown
    assert "/24,000 observations" in shown  # the observations scored, of all there are
    assert "ETA " in shown
    assert shown.endswith("\r")  # the live line is taken away at the end
    # Off a terminal (capsys), no progress: only the summary.
    assert "reading:" not in capsys.readouterr().err
    assert cli.ReplayProgress  # the one reporter replay and evaluate use


def test_a_failed_replay_teaches_the_persistent_store_nothing(tmp_path):
    from detectors.stores.sqlite import SqliteStore

    good = write_ndjson(tmp_path / "good.jsonl", jane_history())
    store_path = tmp_path / "b.db"
    missing_dir = tmp_path / "no-such-dir" / "alerts.jsonl"
    assert (
        run(str(good), "--out", str(missing_dir), "--store", f"sqlite:{store_path}", "--quiet") == 1
    )
    store = SqliteStore(path=store_path)
    assert store.load(["jane@contoso.com"]) == {}
    store.close()


def test_simulate_writes_rows_and_labels_that_replay_reads(tmp_path, capsys):
    out = tmp_path / "sim.jsonl.gz"
    code = main(
        [
            "simulate",
            "--out",
            str(out),
            "--days",
            "4",
            "--learning-days",
            "2",
            "--attacks",
            "credential-harvest",
            "--seed",
            "3",
        ]
    )
    assert code == 0
    labels = json.loads((tmp_path / "sim.labels.json").read_text())
    assert [s["kind"] for s in labels["scenarios"]] == ["credential-harvest"]
    assert run(str(out), "--out", str(tmp_path / "a.jsonl"), "--learning-days", "2", "--quiet") == 0
    assert "rejected" not in capsys.readouterr().err


def test_simulate_rejects_an_unknown_attack_kind(tmp_path, capsys):
    assert main(["simulate", "--out", str(tmp_path / "s.jsonl"), "--attacks", "nope"]) == 1
    assert "unknown kind(s) nope" in capsys.readouterr().err


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def test_two_replays_into_one_store_equal_one_replay_of_both_files(tmp_path):
    rows = sorted(attack_rows(), key=lambda r: r["TimeGenerated"])
    cut = "2026-10-18T00:00:00"  # a window boundary inside the emitting days
    first = write_ndjson(tmp_path / "first.jsonl", [r for r in rows if r["TimeGenerated"] < cut])
    second = write_ndjson(tmp_path / "second.jsonl", [r for r in rows if r["TimeGenerated"] >= cut])
    whole = write_ndjson(tmp_path / "whole.jsonl", rows)
    store = f"sqlite:{tmp_path / 'b.db'}"

    assert run(str(whole), "--out", str(tmp_path / "whole-alerts.jsonl"), "--quiet") == 0
    assert run(str(first), "--out", str(tmp_path / "a1.jsonl"), "--store", store, "--quiet") == 0
    assert run(str(second), "--out", str(tmp_path / "a2.jsonl"), "--store", store, "--quiet") == 0

    split = _lines(tmp_path / "a1.jsonl") + _lines(tmp_path / "a2.jsonl")
    assert split == _lines(tmp_path / "whole-alerts.jsonl")
    assert split


def test_replaying_an_overlapping_export_into_the_same_store_scores_nothing_twice(tmp_path, capsys):
    src = write_ndjson(tmp_path / "export.jsonl", attack_rows())
    store = f"sqlite:{tmp_path / 'b.db'}"
    assert run(str(src), "--out", str(tmp_path / "a1.jsonl"), "--store", store, "--quiet") == 0
    assert _lines(tmp_path / "a1.jsonl")
    capsys.readouterr()
    assert run(str(src), "--out", str(tmp_path / "a2.jsonl"), "--store", store, "--quiet") == 0
    assert _lines(tmp_path / "a2.jsonl") == []
    assert "observations at or before that were skipped" in capsys.readouterr().err


def test_one_row_dated_in_the_future_or_the_distant_past_moves_no_watermark(tmp_path, capsys):
    """A row dated 2030 used to become the store's watermark, so that the next replay skipped
    everything; one dated 1970 moved the learning days to 1970. Both are rejected with their
    reason, and the replays go on as without them."""
    rows = sorted(attack_rows(), key=lambda r: r["TimeGenerated"])
    cut = "2026-10-18T00:00:00"
    first = [r for r in rows if r["TimeGenerated"] < cut]
    second = [r for r in rows if r["TimeGenerated"] >= cut]
    ended = [r for r in first if r["ActivityStatusValue"] != "Start"]  # Start rows do not count
    future = {**ended[-1], "TimeGenerated": "2030-01-01T00:00:00.0000000Z", "EventDataId": "f"}
    ancient = {**ended[0], "TimeGenerated": "1970-01-02T00:00:00.0000000Z", "EventDataId": "a"}
    stray = {**ended[1], "TimeGenerated": "2019-06-01T00:00:00.0000000Z", "EventDataId": "s"}
    store = f"sqlite:{tmp_path / 'b.db'}"
    poisoned = write_ndjson(tmp_path / "first.jsonl", [*first, future, ancient, stray])
    assert run(str(poisoned), "--out", str(tmp_path / "a1.jsonl"), "--store", store) == 0
    err = capsys.readouterr().err
    assert "event time in the future: 2030-01-01T00:00:00Z" in err
    assert "event time too old: 1970-01-02T00:00:00Z" in err
    assert "learning until 2026-10-15" in err  # not 2019: the stray row is set apart
    assert "left out: 1 observations dated on days set apart" in err
    later = write_ndjson(tmp_path / "second.jsonl", second)
    assert run(str(later), "--out", str(tmp_path / "a2.jsonl"), "--store", store, "--quiet") == 0
    whole = write_ndjson(tmp_path / "whole.jsonl", rows)
    assert run(str(whole), "--out", str(tmp_path / "whole-alerts.jsonl"), "--quiet") == 0
    split = _lines(tmp_path / "a1.jsonl") + _lines(tmp_path / "a2.jsonl")
    assert split == _lines(tmp_path / "whole-alerts.jsonl")
    assert split


def test_the_inputs_own_span_leaves_out_strays_but_keeps_a_real_earlier_period():
    month = {20_000 + n: 1_000 for n in range(28)}
    assert dense_days({19_000: 1, **month}) == (20_000, 20_027)
    assert dense_days({18_000: 2, 19_000: 3, **month}) == (20_000, 20_027)  # several strays
    assert dense_days({19_000: 900, **month}) == (19_000, 20_027)  # too many to be strays
    assert dense_days({19_995: 1, **month}) == (19_995, 20_027)  # a week away is not apart
    assert dense_days({**month, 20_200: 2}) == (20_000, 20_200)  # the end is left as it is
    assert dense_days({20_000: 3}) == (20_000, 20_000)


def _portal_time(iso: str) -> str:
    """`2026-10-21T03:00:00.4200000Z` as the portal's CSV export writes it."""
    from datetime import datetime

    moment = datetime.fromisoformat(iso)
    hour = moment.hour % 12 or 12
    meridiem = "AM" if moment.hour < 12 else "PM"
    return (
        f"{moment.month}/{moment.day}/{moment.year}, {hour}:{moment:%M:%S}."
        f"{moment.microsecond // 1000:03d} {meridiem}"
    )


def test_a_portal_csv_export_gives_the_same_alerts_as_json(tmp_path):
    import csv

    rows = attack_rows()
    columns = sorted({key for row in rows for key in row})
    csv_path = tmp_path / "export.csv"
    with csv_path.open("w", newline="", encoding="utf-8-sig") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                f"{c} [UTC]" if c in ("TimeGenerated", "EventSubmissionTimestamp") else c
                for c in columns
            ]
        )
        for row in rows:
            values = dict(row, TimeGenerated=_portal_time(row["TimeGenerated"]))
            writer.writerow([values.get(c, "") for c in columns])
    json_path = tmp_path / "export.json"
    json_path.write_text(json.dumps(rows, indent=2))  # as `az monitor log-analytics query` prints
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    assert run(str(csv_path), "--out", str(a), "--quiet") == 0
    assert run(str(json_path), "--out", str(b), "--quiet") == 0
    assert _lines(a) == _lines(b)
    assert _lines(a)


def test_alert_lines_escape_characters_that_line_readers_split_on(tmp_path):
    rows = attack_rows()
    for row in rows:
        row["Claims"] = row["Claims"].replace("Jane Doe", "Jane\\u2028Doe\\u0085X\\u2029")
    src = write_ndjson(tmp_path / "e.jsonl", rows)
    out = tmp_path / "o.jsonl"
    assert run(str(src), "--out", str(out), "--quiet") == 0
    text = out.read_text(encoding="utf-8")
    assert "\u2028" not in text
    assert "\x85" not in text
    [alert] = [json.loads(line) for line in text.splitlines()]
    assert alert["principal"]["name"] == "Jane\u2028Doe\x85X\u2029"


@pytest.mark.parametrize("command", ["replay", "evaluate"])
def test_negative_learning_days_is_a_usage_error(tmp_path, capsys, command):
    assert main([command, "x.jsonl", "--out", str(tmp_path / "o"), "--learning-days", "-1"]) == 2
    assert "must be 0 or more" in capsys.readouterr().err


def test_a_truncated_gzip_export_fails_clearly_and_writes_nothing(tmp_path, capsys):
    src = write_ndjson(tmp_path / "e.jsonl", attack_rows())
    whole = gzip.compress(src.read_bytes())
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    out = tmp_path / "o.jsonl"
    store = tmp_path / "b.db"
    assert run(str(cut), "--out", str(out), "--store", f"sqlite:{store}", "--quiet") == 1
    err = capsys.readouterr().err
    assert "truncated" in err
    assert "no alerts or baselines were written" in err
    assert not out.exists()


def test_show_marks_an_update_of_a_burst_as_such(tmp_path, capsys):
    """An update's reasons weigh the whole burst while its operations are only what is new:
    the readable form says so, so an analyst does not look for the earlier operations."""
    sample = Path(__file__).resolve().parents[2] / "samples" / "contoso-sample.jsonl.gz"
    out = tmp_path / "alerts.jsonl"
    assert run(str(sample), "--out", str(out), "--show", "--quiet") == 0
    shown = capsys.readouterr().out
    updates = [
        json.loads(line)
        for line in out.read_text().splitlines()
        if json.loads(line)["burst"]["sequence"] > 1
    ]
    assert updates, "the sample has no burst with an update any more: pick another input"
    first = updates[0]["burst"]
    assert (
        f"update {first['sequence']} of alert {first['id']}, active since {first['firstSeen']}"
        in shown
    )
    assert shown.count("  update ") == len(updates)
