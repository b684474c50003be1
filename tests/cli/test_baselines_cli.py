"""`detector baselines list|show|forget|export|import` against both stores (Azurite for
Table Storage): the obvious spellings work, bad input is one line that changes nothing, and
two operators editing one baseline at once both keep their change."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from detectors.cli import tuning as cli_tuning
from detectors.cli.main import main
from detectors.settings.app import OperatorSettings
from detectors.stores import StoredBaseline
from detectors.stores.locate import open_store
from tests.operator_rig import PIPELINE, Rig, make_rig

JANE = "jane@contoso.com"
PRINCIPALS = {JANE, PIPELINE.caller}


@pytest.fixture(params=["sqlite", pytest.param("table", marks=pytest.mark.azurite)])
def rig(request: pytest.FixtureRequest) -> Rig:
    return make_rig(request, request.param)


def listed(rig: Rig, capsys, *args: str) -> list[dict]:
    """The fixture principals' baselines as `baselines list --json` gives them."""
    capsys.readouterr()
    assert rig.run("baselines", "list", "--json", *args) == 0
    return [r for r in json.loads(capsys.readouterr().out) if r["principalId"] in PRINCIPALS]


def one_line_error(capsys) -> str:
    """The command's error: one line, the last it wrote."""
    lines = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in lines if line.startswith("detector: error: ")]
    assert errors == lines[-1:], lines
    return errors[0]


def test_list_is_a_json_list_sorted_by_last_activity_and_filters(rig, capsys):
    rows = listed(rig, capsys)
    assert [r["principalId"] for r in rows] == [JANE, PIPELINE.caller]
    assert rows[0]["lastSeen"] > rows[1]["lastSeen"]
    assert [r["principalId"] for r in listed(rig, capsys, "--principal", "JANE")] == [JANE]
    assert [r["principalId"] for r in listed(rig, capsys, "--site", "ci-app")] == [PIPELINE.caller]
    webjobs = listed(rig, capsys, "--detection", "appservice-webjob-activity")
    assert webjobs == []


def test_context_baselines_are_listed_only_when_asked_for(rig, capsys):
    store = rig.open()
    try:
        [held] = store.load([JANE]).values()
        context = replace(held.baseline, principal_id="site:sub/rg/app1", name="site sub/rg/app1")
        store.save([StoredBaseline(baseline=context, etag=None)])
    finally:
        store.close()

    def ids(*args: str) -> list[str]:
        capsys.readouterr()
        assert rig.run("baselines", "list", "--json", *args) == 0
        return [r["principalId"] for r in json.loads(capsys.readouterr().out)]

    assert "site:sub/rg/app1" not in ids()
    assert JANE in ids()
    assert "site:sub/rg/app1" in ids("--context")


def test_list_and_show_print_tables_for_people(rig, capsys):
    assert rig.run("baselines", "list") == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:3] == ["LAST", "SEEN", "PRINCIPAL"]
    assert JANE in out
    assert rig.run("baselines", "show", "Jane Doe") == 0
    shown = capsys.readouterr().out
    assert f"principal   {JANE}" in shown
    assert "sites (" in shown
    assert "/app1" in shown


def test_show_json_decodes_every_dimension(rig, capsys):
    assert rig.run("baselines", "show", JANE, "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["principalId"] == JANE
    assert any(key.endswith("/app1") for key in shown["sites"])


def test_an_unknown_principal_is_a_one_line_error(rig, capsys):
    for action in ("show", "forget"):
        assert rig.run("baselines", action, "nobody@contoso.com") == 1
        assert "no baseline for principal 'nobody@contoso.com'" in one_line_error(capsys)
    assert len(listed(rig, capsys)) == 2


def test_forget_a_site_removes_it_from_every_dimension_that_holds_it(rig, capsys):
    assert rig.run("baselines", "forget", JANE, "--site", "app1", "--yes") == 0
    assert "forgot" in capsys.readouterr().err
    store = rig.open()
    try:
        jane = store.load([JANE])[JANE].baseline
    finally:
        store.close()
    for dimension in ("sites", "credential_sites", "webjobs"):
        assert not [v for v in getattr(jane, dimension) if v.endswith("/app1")], dimension
    assert [v for v in jane.sites if v.endswith("/app2")]
    assert rig.run("baselines", "forget", JANE, "--site", "app1", "--yes") == 1
    assert "holds no site 'app1'" in one_line_error(capsys)


def test_forget_a_principal_deletes_its_baseline(rig, capsys):
    assert rig.run("baselines", "forget", PIPELINE.caller, "--yes") == 0
    assert [r["principalId"] for r in listed(rig, capsys)] == [JANE]


def test_two_operators_forgetting_different_sites_at_once_both_keep_their_change(
    rig, capsys, monkeypatch
):
    """Operator B's edit lands between operator A's read and write: A re-reads, re-applies."""
    real_open = cli_tuning.open_store
    raced: list[bool] = []

    def racing_open(*args, **kwargs):
        store = real_open(*args, **kwargs)
        if raced:  # operator B's own command
            return store
        save = store.save

        def save_after_another_operator(items):
            if not raced:
                raced.append(True)
                other = [
                    "baselines",
                    "forget",
                    JANE,
                    "--site",
                    "app2",
                    "--yes",
                    "--store",
                    rig.spec,
                ]
                assert main(other) == 0
            return save(items)

        monkeypatch.setattr(store, "save", save_after_another_operator)
        return store

    monkeypatch.setattr(cli_tuning, "open_store", racing_open)
    assert rig.run("baselines", "forget", JANE, "--site", "app1", "--yes") == 0
    monkeypatch.setattr(cli_tuning, "open_store", real_open)
    store = rig.open()
    try:
        sites = store.load([JANE])[JANE].baseline.sites
    finally:
        store.close()
    assert not [v for v in sites if v.endswith(("/app1", "/app2"))]


def test_export_then_import_into_an_empty_store_round_trips(rig, capsys, tmp_path):
    exported = tmp_path / "baselines.jsonl"
    assert rig.run("baselines", "export", "--out", str(exported)) == 0
    lines = exported.read_text().splitlines()
    ids = [json.loads(line)["PrincipalId"] for line in lines]
    assert [p for p in ids if p in PRINCIPALS] == sorted(PRINCIPALS)
    copy = f"sqlite:{tmp_path / 'copy.db'}"
    assert main(["baselines", "import", str(exported), "--store", copy]) == 0
    assert main(["baselines", "export", "--store", copy, "--out", str(tmp_path / "again")]) == 0
    assert (tmp_path / "again").read_text() == exported.read_text()


def test_import_refuses_to_overwrite_without_replace_and_bad_lines_change_nothing(
    rig, capsys, tmp_path
):
    exported = tmp_path / "baselines.jsonl"
    assert rig.run("baselines", "export", "--out", str(exported)) == 0
    before = exported.read_text()
    assert rig.run("baselines", "import", str(exported)) == 1
    assert "already have a baseline" in one_line_error(capsys)
    edited = before.replace('"Name":"Jane Doe"', '"Name":"Jane D."')
    broken = tmp_path / "broken.jsonl"
    broken.write_text(edited + '{"PrincipalId": "x"}\n')
    assert rig.run("baselines", "import", str(broken), "--replace") == 1
    err = one_line_error(capsys)
    bad_line = len(edited.splitlines()) + 1
    assert f"{broken}:{bad_line}: " in err
    assert "nothing was imported" in err
    assert rig.run("baselines", "export", "--out", str(exported)) == 0
    assert exported.read_text() == before
    fixed = tmp_path / "fixed.jsonl"
    fixed.write_text(edited)
    assert rig.run("baselines", "import", str(fixed), "--replace") == 0
    assert rig.run("baselines", "show", JANE, "--json") == 0
    assert json.loads(capsys.readouterr().out)["name"] == "Jane D."


def test_an_unreachable_or_misspelled_store_is_a_one_line_error(tmp_path, capsys):
    assert main(["baselines", "list", "--store", f"sqlite:{tmp_path / 'missing.db'}"]) == 1
    assert "no store at" in one_line_error(capsys)
    assert not (tmp_path / "missing.db").exists()
    assert main(["baselines", "list", "--store", "postgres:x"]) == 1
    assert "expected sqlite:FILE" in one_line_error(capsys)
    assert main(["baselines", "list", "--store", "table:http://127.0.0.1:9/x"]) == 1
    assert "plain http needs a connection string" in one_line_error(capsys)


@pytest.mark.azurite
def test_a_table_store_that_does_not_answer_is_a_one_line_error(capsys):
    dead = (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
        "TableEndpoint=http://127.0.0.1:9/devstoreaccount1;"
    )
    assert main(["baselines", "list", "--store", f"table:{dead}"]) == 1
    err = one_line_error(capsys)
    assert "nothing was changed" in err
    assert "AccountKey" not in err


def test_the_store_can_come_from_the_environment(rig, capsys, monkeypatch):
    monkeypatch.setenv("DETECTOR_STORE", rig.spec)
    assert main(["baselines", "list", "--json", "--principal", "jane"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 1
    store = open_store(None, OperatorSettings.from_env({"DETECTOR_STORE": rig.spec}))
    store.close()
