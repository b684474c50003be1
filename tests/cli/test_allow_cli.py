"""`detector allow add|list|remove` and `detector feedback` against both stores (Azurite for
Table Storage); a replay into a store applies its rules, counts and reports every alert
they allow, and keeps what feedback needs."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from detectors.baselines.baseline import network_of
from detectors.cli import tuning as cli_tuning
from detectors.cli.main import main
from tests.cli.test_baselines_cli import one_line_error
from tests.cli.test_replay_cli import THIEF
from tests.operator_rig import Rig, make_rig, rows
from tests.rowkit import write_ndjson

JANE = "jane@contoso.com"


def soon(days: int = 30) -> str:
    return f"{datetime.now(UTC).date() + timedelta(days=days):%Y-%m-%d}"


@pytest.fixture(params=["sqlite", pytest.param("table", marks=pytest.mark.azurite)])
def rig(request: pytest.FixtureRequest) -> Rig:
    return make_rig(request, request.param)


def rules(rig: Rig, capsys) -> list[dict]:
    capsys.readouterr()
    assert rig.run("allow", "list", "--json") == 0
    return json.loads(capsys.readouterr().out)


def test_the_obvious_spelling_adds_a_rule_that_lists_with_its_status(rig, capsys):
    code = main(
        [
            "allow", "add", "--store", rig.spec, "--principal", "Jane Doe",
            "--reason", "quarterly credential audit", "--expires", soon(),
            "--detection", "appservice-credential-download", "--site", "app*",
            "--cidr", "203.0.113.0/24", "--app-id", THIEF.app_id, "--id", "audit",
            "--added-by", "ops@contoso.com",
        ]
    )  # fmt: skip
    assert code == 0
    (rule,) = rules(rig, capsys)
    assert rule["ruleId"] == "audit"
    assert rule["status"] == "active"
    # The display name given is stored as the one id it names: rules match ids only.
    assert (rule["principal"], rule["cidr"], rule["site"]) == (JANE, "203.0.113.0/24", "app*")
    assert rule["addedBy"] == "ops@contoso.com"
    assert rule["hits"] == 0
    assert rig.run("allow", "list") == 0
    table = capsys.readouterr().out
    assert table.split()[:4] == ["ID", "STATUS", "LAST", "DAY"]
    assert "audit" in table
    assert "quarterly credential audit" in table


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--principal", "nobody@contoso.com"], "no baseline for principal"),
        (["--principal", JANE, "--cidr", "203.0.113.0/40"], "not an address or range"),
        (["--cidr", "0.0.0.0/0"], "too much of the internet"),
        (["--site", "*"], "matches (nearly) every site"),
        (["--detection", "appservice-credential-download"], "would match everyone"),
        (["--principal", JANE, "--expires", "2020-01-31"], "is in the past"),
        (["--principal", JANE, "--reason-code", "NOPE"], "not a reason code"),
    ],
)
def test_bad_rules_are_one_line_errors_that_store_nothing(rig, capsys, args, message):
    full = ["allow", "add", "--reason", "because", "--expires", soon(), *args]
    assert rig.run(*full) == 1
    assert message in one_line_error(capsys)
    assert rules(rig, capsys) == []


def test_an_unseen_principal_needs_saying_so(rig, capsys):
    args = ["--principal", "new-pipeline", "--reason", "new CI", "--expires", soon()]
    assert rig.run("allow", "add", *args) == 1
    assert "--unseen-principal" in one_line_error(capsys)
    assert rig.run("allow", "add", *args, "--unseen-principal") == 0
    assert [r["principal"] for r in rules(rig, capsys)] == ["new-pipeline"]


def test_remove_takes_a_rule_out_and_an_unknown_id_is_an_error(rig, capsys):
    add = ["allow", "add", "--principal", JANE, "--reason", "x", "--expires", soon()]
    assert rig.run(*add, "--id", "one") == 0
    assert rig.run(*add, "--id", "one") == 1
    assert "already exists" in one_line_error(capsys)
    assert rig.run("allow", "remove", "one") == 0
    assert rules(rig, capsys) == []
    assert rig.run("allow", "remove", "one") == 1
    assert "no allow rule 'one'" in one_line_error(capsys)


def test_a_replay_into_a_store_applies_its_rules_counts_hits_and_reports_them(tmp_path, capsys):
    db = f"sqlite:{tmp_path / 'store.db'}"
    assert main(["baselines", "import", "/dev/null", "--store", db]) == 0  # an empty store
    allow = ["allow", "add", "--store", db, "--principal", JANE, "--unseen-principal"]
    assert main([*allow, "--cidr", "203.0.113.0/24", "--reason", "pen test", "--expires", soon(),
                 "--id", "pentest"]) == 0  # fmt: skip
    src = write_ndjson(tmp_path / "export.jsonl", rows())
    out = tmp_path / "alerts.jsonl"
    capsys.readouterr()
    assert main(["replay", str(src), "--out", str(out), "--store", db, "--quiet"]) == 0
    assert out.read_text() == ""
    err = capsys.readouterr().err
    assert "1 alert(s) allowed by rules (pentest: 1)" in err
    assert main(["allow", "list", "--json", "--store", db]) == 0
    (rule,) = json.loads(capsys.readouterr().out)
    assert rule["hits"] == 1
    assert rule["lastHit"]


def test_feedback_malicious_keeps_the_new_values_out_and_benign_teaches_them(rig, capsys):
    (alert,) = rig.alerts
    thief_network = network_of(THIEF.ip)

    def jane_networks() -> tuple[set[str], set[str]]:
        """Jane's known networks, and those held in her quarantine."""
        store = rig.open()
        try:
            baseline = store.load([JANE])[JANE].baseline
        finally:
            store.close()
        return set(baseline.networks), set(baseline.quarantine.get("networks", {}))

    # The replay learned the alert's window, but held the thief's network back.
    known, held = jane_networks()
    assert thief_network not in known
    assert held == {thief_network}
    assert rig.run("feedback", alert["id"], "--malicious", "--reason", "stolen token") == 0
    assert "malicious" in capsys.readouterr().err
    assert jane_networks() == (known, set())  # never to be released
    assert rig.run("feedback", alert["id"], "--benign", "--json") == 0
    result = json.loads(capsys.readouterr().out)
    assert result["verdict"] == "benign"
    assert result["changedValues"] > 0
    assert jane_networks() == (known | {thief_network}, set())
    store = rig.open()
    try:
        record, _ = store.get_alert_record(alert["id"])
    finally:
        store.close()
    assert record is not None
    assert record["verdict"]["verdict"] == "benign"


def test_opposite_verdicts_given_at_once_cannot_leave_record_and_baseline_disagreeing(
    rig, capsys, monkeypatch
):
    """A benign verdict is given while a malicious one is being applied (between its read of
    the record and its change of the baseline). One of them must be refused, and the record
    and the baseline must both say the one that was applied."""
    (alert,) = rig.alerts
    real_open = cli_tuning.open_store
    raced: list[int] = []
    started: list[bool] = []

    def racing_open(*args, **kwargs):
        store = real_open(*args, **kwargs)
        if started:  # the second operator's own command
            return store
        load = store.load

        def load_after_another_verdict(ids):
            if not started:
                started.append(True)
                raced.append(main(["feedback", alert["id"], "--benign", "--store", rig.spec]))
            return load(ids)

        monkeypatch.setattr(store, "load", load_after_another_verdict)
        return store

    monkeypatch.setattr(cli_tuning, "open_store", racing_open)
    first = rig.run("feedback", alert["id"], "--malicious")
    monkeypatch.setattr(cli_tuning, "open_store", real_open)
    assert sorted([first, *raced]) == [0, 1]  # one applied, one refused with its reason
    assert "is being applied" in capsys.readouterr().err
    store = rig.open()
    try:
        record, _ = store.get_alert_record(alert["id"])
        networks = set(store.load([JANE])[JANE].baseline.networks)
    finally:
        store.close()
    assert record is not None
    assert "verdictClaim" not in record
    applied = record["verdict"]["verdict"]
    assert applied == ("malicious" if first == 0 else "benign")
    assert (network_of(THIEF.ip) in networks) is (applied == "benign")


def test_feedback_on_an_unknown_alert_is_a_one_line_error(rig, capsys):
    assert rig.run("feedback", "0123abcd", "--benign") == 1
    assert "no record of alert '0123abcd'" in one_line_error(capsys)
    # Neither --benign nor --malicious: a usage error, exit code 2.
    assert main(["feedback", "x", "--store", rig.spec]) == 2


def test_a_dry_run_on_the_stored_alert_records_finds_what_the_alerts_file_does(rig, capsys):
    (alert,) = rig.alerts
    alerts = rig.tmp / "alerts.jsonl"
    tried = (
        ["--cidr", f"{THIEF.ip}/32"],
        ["--cidr", f"{THIEF.ip}/32", "--reason-code", "NEW_SCRIPTING_TOOL"],
        ["--cidr", f"{THIEF.ip}/32", "--reason-code", "NEW_WEBJOB"],
        ["--app-id", THIEF.app_id],
        ["--principal", "new-pipeline", "--unseen-principal"],
    )
    found = []
    for rule in tried:
        base = ["allow", "add", "--reason", "r", "--expires", soon(), "--dry-run", "--json", *rule]
        assert rig.run(*base, "--alerts", str(alerts)) == 0
        from_file = json.loads(capsys.readouterr().out)["matched"]
        assert rig.run(*base) == 0
        from_records = json.loads(capsys.readouterr().out)
        assert from_records["matched"] == from_file, rule
        assert from_records["alerts"] == 1
        found.append(len(from_file))
    assert found == [1, 1, 0, 1, 0]
    assert rig.run("allow", "add", "--reason", "r", "--expires", soon(), "--dry-run",
                   "--cidr", f"{THIEF.ip}/32") == 0  # fmt: skip
    captured = capsys.readouterr()
    assert alert["id"] in captured.out
    assert "would have allowed 1 of 1 alert(s) in the alert records of" in captured.err
    assert rules(rig, capsys) == []


def test_a_dry_run_leaves_out_records_too_old_to_try_a_rule_on(rig, capsys):
    (alert,) = rig.alerts
    store = rig.open()
    try:
        record, _ = store.get_alert_record(alert["id"])
        assert record is not None
        del record["allowView"]
        store.record_alerts([record])
    finally:
        store.close()
    assert rig.run("allow", "add", "--reason", "r", "--expires", soon(), "--dry-run",
                   "--cidr", f"{THIEF.ip}/32") == 0  # fmt: skip
    captured = capsys.readouterr()
    assert "1 alert record(s) written by an earlier version keep too little" in captured.err
    assert "would have allowed 0 of 0 alert(s)" in captured.err
