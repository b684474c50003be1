"""What an operator mistypes gets a one-line error, and no message carries a secret."""

from __future__ import annotations

import pytest

from detectors.cli.main import main
from detectors.model.errors import one_line, redact

KEY = "c2VjcmV0LWtleS1ub3QtdG8tYmUtc2hvd24="
CONNECTION = (
    f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={KEY};"
    "TableEndpoint=http://127.0.0.1:1/devstoreaccount1"
)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (CONNECTION, "AccountKey=***;"),
        ("https://a.table.core.windows.net/?sv=2024&sig=abc%2Fdef&se=x", "sig=***&se=x"),
        ("SharedAccessSignature=sv=1&sig=zzz", "SharedAccessSignature=***"),
        ("https://user:hunter2@example.com/hook", "https://user:***@example.com/hook"),
    ],
)
def test_secrets_are_redacted(text, shown):
    shown_text = redact(text)
    assert shown in shown_text
    for secret in (KEY, "abc%2Fdef", "zzz", "hunter2"):
        assert secret not in shown_text


def test_an_sdk_error_quoted_in_one_line_carries_no_key():
    assert KEY not in one_line(ValueError(f"bad connection string {CONNECTION}"))


@pytest.mark.parametrize(
    "argv",
    [
        ["baselines", "list", "--store", "table:junk=1"],
        ["allow", "list", "--store", "table:AccountName=x"],
    ],
    ids=["junk", "no-endpoint"],
)
def test_a_connection_string_that_is_not_one_is_a_one_line_error(argv, capsys):
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("detector: error: the storage connection string is not one")
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_run_with_a_storage_setting_that_is_not_a_connection_string_fails_clearly(
    capsys, monkeypatch
):
    monkeypatch.setenv("DETECTOR_STORAGE", "junk=1")
    monkeypatch.setenv("LOG_ANALYTICS_WORKSPACE_ID", "11111111-1111-1111-1111-111111111111")
    assert main(["run"]) == 1
    err = capsys.readouterr().err
    assert "not one Table Storage reads" in err
    assert len(err.strip().splitlines()) == 1


def test_a_mistyped_store_with_an_account_key_never_prints_the_key(tmp_path, capsys):
    sample = tmp_path / "rows.jsonl"
    sample.write_text("")
    argv = ["replay", str(sample), "--out", str(tmp_path / "a.jsonl"), "--store"]
    assert main([*argv, f"table:{CONNECTION}"]) == 1
    err = capsys.readouterr().err
    assert "expected sqlite:FILE" in err
    assert KEY not in err
    assert "AccountKey=***" in err
