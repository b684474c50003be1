"""The `detector` command as a daily tool (issue 21): one output layer for every command
(tables that fit, progress, JSON on success and on error), and the semantics an operator
relies on (expiry as a last day, hit times from the activity, confirmation, validation
before anything is created, warnings about misspelt settings, feedback in words)."""

from __future__ import annotations

import argparse
import io
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from detectors import __version__
from detectors.cli import main as cli
from detectors.cli import tuning as cli_tuning
from detectors.cli.main import build_parser, main
from detectors.cli.output import Bar, Output, camel, table
from detectors.model.errors import ConfigurationError
from detectors.runs.timer import RunReport
from detectors.settings.app import unknown_settings
from detectors.settings.detection import DetectionSettings
from detectors.sources import FetchStats
from tests.cli.test_replay_cli import THIEF
from tests.operator_rig import PIPELINE, Rig, make_rig, rows
from tests.rowkit import write_ndjson

JANE = "jane@contoso.com"
NOW = datetime(2026, 10, 5, 12, 0, tzinfo=UTC)


@pytest.fixture
def rig(request: pytest.FixtureRequest) -> Rig:
    return make_rig(request, "sqlite")


def soon(days: int = 30) -> str:
    return f"{datetime.now(UTC).date() + timedelta(days=days):%Y-%m-%d}"


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def commands() -> list[list[str]]:
    """Every command and subcommand of the parser, as the words that name it."""
    found: list[list[str]] = []

    def walk(parser: argparse.ArgumentParser, words: list[str]) -> None:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            found.append(words)
            return
        for name, sub in subs[0].choices.items():
            walk(sub, [*words, name])

    walk(build_parser(), [])
    return found


def _parser_of(words: list[str]) -> argparse.ArgumentParser:
    parser = build_parser()
    for word in words:
        subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = subs.choices[word]
    return parser


# The output layer.


def test_a_table_too_wide_for_the_terminal_wraps_its_cells_and_cuts_nothing():
    site = "site:0e628dfd-0750-49c9-bf01-46b8f7cae40c/rg-catalog-dev/contoso-catalog-web-dev"
    why = "the quarterly credential audit by the platform team, agreed with security"
    text = table(["ID", "MATCHES", "WHY"], [["r1", site, why]], width=60, keep=["ID"])
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 60
    assert len(lines) > 2  # the row took more than one line
    joined = "".join(lines)
    for word in ("contoso-catalog-web-dev", "0e628dfd", "agreed", "security"):
        assert word in joined
    columns = lines[0].index("MATCHES"), lines[0].index("WHY")
    cells = "".join(line[columns[0] : columns[1]].strip() for line in lines[1:])
    assert cells == site  # the whole key, in order


def test_off_a_terminal_a_table_keeps_each_row_on_one_line(monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    stream = io.StringIO()
    Output(stdout=stream).table(["ID", "WHY"], [["r1", "x" * 300]])
    assert len(stream.getvalue().splitlines()) == 2


def test_json_field_names_are_camel_case_but_data_keys_are_kept():
    assert camel({"watermark_before": 1, "allowed": {"rule_1": 2}}) == {
        "watermarkBefore": 1,
        "allowed": {"rule_1": 2},
    }


def test_progress_shows_the_share_the_rate_and_the_time_left():
    ticks = iter([0.0, 10.0, 20.0, 30.0])
    shown = Terminal()
    bar = Bar(stream=shown, label="export", total=40, unit="days", clock=lambda: next(ticks))
    bar.update(10)  # ten days in ten seconds: thirty left, thirty seconds
    assert "export:  25.0%" in shown.getvalue()
    assert "10/40 days" in shown.getvalue()
    assert "1 days/s" in shown.getvalue()
    assert "ETA 0:30" in shown.getvalue()
    bar.note("day 10/40 2026-10-10: 12 rows")
    bar.close()
    assert "day 10/40 2026-10-10: 12 rows\n" in shown.getvalue()
    assert shown.getvalue().endswith("\r")


def test_progress_is_off_when_not_a_terminal_or_quiet():
    for out in (Output(stderr=io.StringIO()), Output(stderr=Terminal(), quiet=True)):
        bar = out.bar("replay", 10)
        bar.update(5)
        bar.close()
        assert out.stderr.getvalue() == ""  # type: ignore[attr-defined]


# Every command: --help, --version, and JSON on error.


@pytest.mark.parametrize("words", commands(), ids=" ".join)
def test_every_command_has_help(words, capsys):
    with pytest.raises(SystemExit) as done:
        main([*words, "--help"])
    assert done.value.code == 0
    shown = capsys.readouterr().out
    assert shown.startswith(f"usage: detector {' '.join(words)}")


def test_the_version_is_the_packages(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"detector {__version__} (appservice-detectors)"


@pytest.mark.parametrize(
    ("argv", "code", "kind"),
    [
        (["baselines", "list", "--store", "sqlite:/nonexistent/x.db", "--json"], 1, "store"),
        (["allow", "list", "--store", "nosuch:thing", "--json"], 1, "error"),
        (["replay", "missing.jsonl", "--out", "-", "--json", "--quiet"], 1, "input"),
        (["backfill", "--days", "-3", "--json"], 2, "usage"),
        (["feedback", "x", "--json"], 2, "usage"),
    ],
)
def test_json_errors_are_one_object_on_standard_output_with_the_exit_code_kept(
    argv, code, kind, capsys
):
    assert main(argv) == code
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    assert set(document) == {"error"}
    assert document["error"]["kind"] == kind
    assert document["error"]["message"]


def test_without_json_an_error_is_one_line_on_standard_error(capsys):
    assert main(["baselines", "list", "--store", "sqlite:/nonexistent/x.db"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("detector: error: ")


# Settings.


def test_a_misspelt_setting_is_warned_about_by_name_with_the_likely_one(monkeypatch, capsys):
    assert unknown_settings({"DETECTOR_ALERT_THESHOLD": "40", "DETECTOR_WINDOW_MINUTES": "5"}) == [
        "unknown setting DETECTOR_ALERT_THESHOLD is ignored; did you mean DETECTOR_ALERT_THRESHOLD?"
    ]
    assert unknown_settings({"DETECTOR_STORAGE__credential": "managedidentity"}) == []
    monkeypatch.setenv("DETECTOR_ALERT_THESHOLD", "40")
    assert main(["detections"]) == 0
    assert "DETECTOR_ALERT_THESHOLD is ignored; did you mean" in capsys.readouterr().err


def test_the_threshold_order_error_shows_the_values():
    with pytest.raises(ConfigurationError, match="they are 60, 50 and 75"):
        DetectionSettings.from_env({"DETECTOR_ALERT_THRESHOLD": "60"})


# replay.


def test_replay_writes_alerts_to_standard_output_with_out_dash(tmp_path, capsys):
    src = write_ndjson(tmp_path / "export.jsonl", rows())
    assert main(["replay", str(src), "--out", str(tmp_path / "a.jsonl"), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["replay", str(src), "--out", "-", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.out == (tmp_path / "a.jsonl").read_text()
    assert "alerts written to standard output" in captured.err
    assert not list(tmp_path.glob("*.partial"))
    assert not Path("-").exists()
    assert main(["replay", str(src), "--out", "-", "--show"]) == 1
    assert "--show and --out - both write to standard output" in capsys.readouterr().err


def test_replay_json_is_the_summary(tmp_path, capsys):
    src = write_ndjson(tmp_path / "export.jsonl", rows())
    assert main(["replay", str(src), "--out", str(tmp_path / "a.jsonl"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["alerts"] == 1
    assert summary["alertsBy"] == [
        {"detection": "appservice-credential-download", "severity": "high", "count": 1}
    ]
    assert summary["principals"] == 2
    assert summary["allowed"] == []
    assert summary["out"] == str(tmp_path / "a.jsonl")
    phases = summary["seconds"]
    assert set(phases) == {"reading", "scoring", "learning"}
    assert phases["reading"] >= 0  # rounded to milliseconds: a tiny input may read in none
    assert 0 <= phases["learning"] <= phases["scoring"]


def test_replay_names_the_alerts_rules_allowed_and_their_hit_is_the_activity_time(tmp_path, capsys):
    db = f"sqlite:{tmp_path / 'new.db'}"
    assert main(["allow", "add", "--store", db, "--principal", JANE, "--unseen-principal",
                 "--cidr", "203.0.113.0/24", "--reason", "pen test", "--expires", soon(),
                 "--id", "pentest"]) == 0  # fmt: skip
    assert "created a new store in" in capsys.readouterr().err
    src = write_ndjson(tmp_path / "export.jsonl", rows())
    out = tmp_path / "alerts.jsonl"
    assert main(["replay", str(src), "--out", str(out), "--store", db, "--quiet"]) == 0
    err = capsys.readouterr().err
    line = next(x for x in err.splitlines() if "allowed by rule pentest: alert " in x)
    assert "high appservice-credential-download" in line
    db2 = f"sqlite:{tmp_path / 'other.db'}"
    assert main(["replay", str(src), "--out", str(tmp_path / "b.jsonl"), "--store", db2,
                 "--quiet"]) == 0  # fmt: skip
    (alert,) = [json.loads(x) for x in (tmp_path / "b.jsonl").read_text().splitlines()]
    assert alert["id"] in line
    capsys.readouterr()
    assert main(["allow", "list", "--json", "--store", db]) == 0
    (rule,) = json.loads(capsys.readouterr().out)
    assert rule["hits"] == 1
    # LAST HIT is when the allowed activity happened, not when it was replayed.
    assert datetime.fromisoformat(rule["lastHit"]) == datetime.fromisoformat(alert["lastSeen"])


# allow.


def test_an_expiry_date_is_echoed_and_listed_as_the_last_day_the_rule_holds(rig, capsys):
    day = soon(20)
    assert rig.run("allow", "add", "--principal", JANE, "--reason", "audit", "--expires", day,
                   "--id", "audit") == 0  # fmt: skip
    assert capsys.readouterr().out.strip() == (
        f"added allow rule audit; it holds through {day} (UTC)"
    )
    assert rig.run("allow", "list") == 0
    listed = capsys.readouterr().out
    assert listed.split()[:4] == ["ID", "STATUS", "LAST", "DAY"]
    assert f"audit  active  {day}" in listed
    assert rig.run("allow", "list", "--json") == 0
    (rule,) = json.loads(capsys.readouterr().out)
    assert rule["lastDay"] == day
    assert rule["expires"].startswith(
        f"{datetime.fromisoformat(day).date() + timedelta(days=1):%Y-%m-%d}T00:00:00"
    )
    assert rig.run("allow", "add", "--principal", JANE, "--reason", "r", "--expires", day,
                   "--id", "two", "--json") == 0  # fmt: skip
    added = json.loads(capsys.readouterr().out)
    assert (added["ruleId"], added["lastDay"], added["hits"]) == ("two", day, 0)


def test_a_rule_is_added_to_a_new_embedded_store_but_only_once_validated(tmp_path, capsys):
    path = tmp_path / "fresh.db"
    spec = f"sqlite:{path}"
    base = ["allow", "add", "--store", spec, "--reason", "ci", "--expires", soon()]
    assert main([*base, "--expires", "yesterday-ish", "--site", "contoso-ci-*"]) == 1
    assert main([*base, "--principal", "nobody@contoso.com"]) == 1
    assert "does not exist yet" in capsys.readouterr().err
    assert not path.exists()  # refused before anything was created
    assert main([*base, "--site", "contoso-ci-*", "--id", "ci"]) == 0
    assert path.exists()
    capsys.readouterr()
    assert main(["allow", "remove", "ci", "--store", spec, "--json"]) == 0
    removed = json.loads(capsys.readouterr().out)
    assert (removed["ruleId"], removed["removed"]) == ("ci", True)


def test_a_dry_run_lists_the_alerts_a_rule_would_allow_and_writes_nothing(rig, capsys):
    alerts = rig.tmp / "alerts.jsonl"
    (alert,) = rig.alerts
    base = ["allow", "add", "--reason", "pen test", "--expires", soon(), "--dry-run",
            "--alerts", str(alerts)]  # fmt: skip
    assert rig.run(*base, "--principal", "Jane Doe") == 0
    captured = capsys.readouterr()
    assert alert["id"] in captured.out
    assert "DETECTION" in captured.out
    assert "would have allowed 1 of 1 alert(s)" in captured.err
    assert "nothing was written" in captured.err
    assert rig.run(*base, "--principal", PIPELINE.caller, "--json") == 0
    document = json.loads(capsys.readouterr().out)
    assert (document["dryRun"], document["alerts"], document["matched"]) == (True, 1, [])
    assert rig.run(*base, "--cidr", f"{THIEF.ip}/32", "--json") == 0
    (matched,) = json.loads(capsys.readouterr().out)["matched"]
    assert matched["alertId"] == alert["id"]
    assert rig.run("allow", "list", "--json") == 0
    assert json.loads(capsys.readouterr().out) == []


# baselines.


def test_forget_asks_first_and_refuses_off_a_terminal_without_yes(rig, capsys):
    assert rig.run("baselines", "forget", PIPELINE.caller) == 1
    assert "not confirmed: pass --yes" in capsys.readouterr().err
    assert rig.run("baselines", "forget", PIPELINE.caller, "--json") == 1
    assert json.loads(capsys.readouterr().out)["error"]["message"].startswith("not confirmed")
    assert rig.run("baselines", "show", PIPELINE.caller) == 0  # still there
    capsys.readouterr()
    assert rig.run("baselines", "forget", PIPELINE.caller, "--yes", "--json") == 0
    forgotten = json.loads(capsys.readouterr().out)
    assert forgotten["principalId"] == PIPELINE.caller
    assert rig.run("baselines", "show", PIPELINE.caller) == 1


def test_forget_on_a_terminal_goes_ahead_on_yes(rig, capsys, monkeypatch):
    answers = Terminal("y\n")
    monkeypatch.setattr("sys.stdin", answers)
    assert rig.run("baselines", "forget", PIPELINE.caller) == 0
    err = capsys.readouterr().err
    assert f"forget the whole baseline of '{PIPELINE.caller}'" in err
    assert "forgot the baseline" in err


def test_list_shows_no_name_twice_and_says_what_it_leaves_out(rig, capsys):
    assert rig.run("baselines", "list") == 0
    captured = capsys.readouterr()
    pipeline = next(line for line in captured.out.splitlines() if PIPELINE.caller in line)
    assert pipeline.count(PIPELINE.caller) == 1
    assert "context baseline(s) of sites, WebJobs and peer groups not listed" in captured.err
    assert rig.run("baselines", "export", "--out", str(rig.tmp / "all.jsonl")) == 0
    err = capsys.readouterr().err
    assert "of principals (as `baselines list` shows them) and" in err
    assert rig.run("baselines", "export", "--out", str(rig.tmp / "all.jsonl"), "--json") == 0
    counts = json.loads(capsys.readouterr().out)
    assert counts["principals"] == 2
    assert counts["baselines"] == counts["principals"] + counts["context"]


def test_an_import_into_a_new_embedded_store_creates_it_and_reports_as_json(rig, tmp_path, capsys):
    exported = tmp_path / "b.jsonl"
    assert rig.run("baselines", "export", "--out", str(exported)) == 0
    target = tmp_path / "new.db"
    assert main(["baselines", "import", str(exported), "--store", f"sqlite:{target}",
                 "--json"]) == 0  # fmt: skip
    captured = capsys.readouterr()
    assert json.loads(captured.out)["imported"] >= 2
    assert f"created a new store in {target}" in captured.err


# feedback.


def test_feedback_says_what_it_taught_or_kept_out_and_when_a_verdict_flips(rig, capsys):
    (alert,) = rig.alerts
    assert rig.run("feedback", alert["id"], "--benign", "--by", "ana") == 0
    benign = capsys.readouterr().err
    # The replay held the alert's novelties in quarantine: the verdict teaches them.
    assert benign.startswith(f"alert {alert['id']} is benign: taught ")
    assert f"new to the baseline of '{JANE}'" in benign
    assert "so the same activity no longer counts as new" in benign
    assert "networks: " in benign
    assert rig.run("feedback", alert["id"], "--benign", "--by", "ana") == 0
    again = capsys.readouterr().err  # the values are there now
    assert again.startswith(f"alert {alert['id']} is benign: the baseline of '{JANE}' already")
    assert "they stay, so the same activity does not count as new" in again
    assert rig.run("feedback", alert["id"], "--malicious", "--by", "bo", "--json") == 0
    flipped = json.loads(capsys.readouterr().out)
    assert (flipped["verdict"], flipped["previousVerdict"]) == ("malicious", "benign")
    assert flipped["changedValues"] > 0
    assert "took " in flipped["message"]
    assert "so the same activity alerts again" in flipped["message"]
    assert "this reverses the earlier verdict (benign by ana" in flipped["message"]
    assert " of '" not in flipped["message"].split("alerts again")[1]


# backfill and export (a source without rows: the command's own output is what is tested).


class EmptySource:
    queries: object = None

    def fetch(self, window, budget):
        return [], FetchStats(queries=1)


def test_backfill_refuses_bad_days_before_creating_the_store(tmp_path, capsys):
    path = tmp_path / "s.db"
    assert main(["backfill", "--days", "-3", "--store", f"sqlite:{path}"]) == 2
    assert "give a number of days from 1 to 365" in capsys.readouterr().err
    assert not path.exists()


def test_backfill_prints_a_line_per_day_and_json(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli_tuning, "logs_source", lambda settings: EmptySource())
    monkeypatch.setattr(cli_tuning, "clock", lambda: NOW)
    spec = f"sqlite:{tmp_path / 's.db'}"
    assert main(["backfill", "--days", "2", "--store", spec, "--json"]) == 0
    captured = capsys.readouterr()
    assert "day 1/3 2026-10-03" in captured.err
    report = json.loads(captured.out)
    assert (report["days"], report["done"], report["resumedFrom"]) == (3, 3, None)
    assert main(["backfill", "--days", "2", "--store", f"sqlite:{tmp_path / 't.db'}",
                 "--quiet"]) == 0  # fmt: skip
    assert "day 1/" not in capsys.readouterr().err


def test_export_prints_a_line_per_day_and_json(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli_tuning, "logs_source", lambda settings: EmptySource())
    out = tmp_path / "rows.jsonl"
    argv = ["export", "--since", "2026-10-01", "--until", "2026-10-03", "--out", str(out)]
    assert main([*argv, "--json"]) == 0
    captured = capsys.readouterr()
    assert "day 2/2 2026-10-02" in captured.err
    report = json.loads(captured.out)
    assert (report["days"], report["done"], report["rows"], report["out"]) == (2, 2, 0, str(out))
    assert main([*argv, "--json"]) == 1  # it exists now
    assert json.loads(capsys.readouterr().out)["error"]["kind"] == "input"


# run, simulate, evaluate.


def test_run_says_in_words_when_nothing_was_read_and_prints_camel_case_json(capsys, monkeypatch):
    report = RunReport(run_id="r1", outcome="ok")
    assert "None" not in report.line()
    assert "nothing read yet" in report.line()
    moved = replace(
        report, watermark_before="a", watermark_after="b", scored_through="c", allowed={"ci_1": 2}
    )
    assert "read a -> b; events scored through c" in moved.line()

    class Timer:
        def run(self, now, budget):
            return moved

    monkeypatch.setattr(cli, "build_timer", lambda settings: Timer())
    monkeypatch.setattr(cli.AppSettings, "from_env", classmethod(lambda cls, env: _settings()))
    assert main(["run", "--json"]) == 0
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    assert document["watermarkBefore"] == "a"
    assert "scoredThrough" in document
    assert not [key for key in document if "_" in key]
    assert document["allowed"] == {"ci_1": 2}  # rule ids are data, kept as they are
    assert "run r1: ok" in captured.err


def _settings():
    from detectors.settings.app import AppSettings, StorageSettings

    return AppSettings(workspace_id="w", storage=StorageSettings(connection_string="x"))


def test_simulate_and_evaluate_print_for_people_json_and_alerts_on_standard_output(
    tmp_path, capsys
):
    data = tmp_path / "org.jsonl"
    common = ["--days", "3", "--learning-days", "2", "--developers", "2", "--admins", "1",
              "--pipelines", "1", "--managed-identities", "1", "--sites", "4",
              "--attacks", "none"]  # fmt: skip
    assert main(["simulate", "--out", str(data), *common, "--json"]) == 0
    written = json.loads(capsys.readouterr().out)
    assert written["rows"] > 0
    assert written["labels"] == str(tmp_path / "org.labels.json")
    assert main(["simulate", "--out", str(tmp_path / "b.jsonl"), *common]) == 0
    assert "wrote " in capsys.readouterr().err
    assert main(["evaluate", str(data), "--out", "-"]) == 0
    captured = capsys.readouterr()
    for line in captured.out.splitlines():
        assert json.loads(line)["detection"]
    assert "recall" in captured.err.lower()
    assert main(["evaluate", str(data), "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["scenarios"] == 0
    assert {r["detection"] for r in figures["recall"]} == {
        "appservice-credential-download",
        "appservice-webjob-activity",
    }
    assert figures["falseAlerts"] == []
    assert main(["evaluate", str(data), "--json", "--out", "-"]) == 1
    assert "choose one" in json.loads(capsys.readouterr().out)["error"]["message"]


def test_detections_and_report_print_markdown_html_or_json(tmp_path, capsys):
    assert main(["detections"]) == 0
    assert capsys.readouterr().out.startswith("# Detections")
    assert main(["detections", "--json"]) == 0
    declared = json.loads(capsys.readouterr().out)
    assert [d["id"] for d in declared] == [
        "appservice-credential-download",
        "appservice-webjob-activity",
    ]
    assert declared[0]["mitre"][0]["id"].startswith("T")
    src = write_ndjson(tmp_path / "export.jsonl", rows())
    alerts = tmp_path / "a.jsonl"
    assert main(["replay", str(src), "--out", str(alerts), "--quiet"]) == 0
    page = tmp_path / "r.html"
    assert main(["report", str(alerts), "--out", str(page), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"out": str(page), "alerts": 1}
    assert page.read_text().startswith("<!DOCTYPE html>")


# The documented JSON shapes.

CLI_DOC = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text()


@pytest.mark.parametrize(
    "words",
    [w for w in commands() if any("--json" in a.option_strings for a in _parser_of(w)._actions)],
    ids=" ".join,
)
def test_every_json_output_has_a_documented_shape(words):
    assert f"### `detector {words[0]}" in CLI_DOC
    if len(words) > 1:
        assert f"- `{words[1]}" in CLI_DOC


def test_the_documented_run_and_rule_shapes_name_every_field():
    for name in camel(dict.fromkeys(RunReport.__dataclass_fields__)):
        assert f"`{name}`" in CLI_DOC, name
    rule = cli_tuning.rule_json(
        cli_tuning.new_rule(
            rule_id="r", principal="p", app_id=None, cidr=None, site=None, detection=None,
            reason_code=None, added_by="a", reason="b", expires=soon(), now=datetime.now(UTC),
        )
    )  # fmt: skip
    for name in rule:
        assert f'"{name}"' in CLI_DOC, name


def test_a_failed_replay_leaves_no_new_store_and_checks_its_out_directory_first(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"a": 1}\n')
    store = tmp_path / "new.db"
    argv = ["replay", str(bad), "--store", f"sqlite:{store}", "--quiet"]
    assert main([*argv, "--out", str(tmp_path / "a.jsonl")]) == 1
    assert "no usable rows" in capsys.readouterr().err
    assert not store.exists()
    good = write_ndjson(tmp_path / "export.jsonl", rows())
    argv = ["replay", str(good), "--store", f"sqlite:{store}", "--quiet"]
    assert main([*argv, "--out", str(tmp_path / "missing" / "a.jsonl")]) == 1
    assert "no such directory" in capsys.readouterr().err
    assert not store.exists()


def test_no_setting_the_deployment_writes_is_warned_about():
    import re

    infra = Path(__file__).resolve().parents[2] / "infra"
    written = {
        name
        for path in infra.rglob("*.bicep")
        for name in re.findall(r"name: '(DETECTOR_[A-Za-z_]+)'", path.read_text())
    }
    assert "DETECTOR_ALERT_QUEUE" in written
    assert unknown_settings(dict.fromkeys(written, "x")) == []
