"""`replay --show` and the summary as an analyst reads them (issue #20)."""

from __future__ import annotations

import io
import re

from detectors.cli.main import _AlertPrinter
from tests.alerts.test_alert_schema import sample_alerts


def _shown(alert: dict) -> str:
    out = io.StringIO()
    _AlertPrinter(out).print(alert)
    return out.getvalue()


def test_a_half_point_score_is_shown_as_it_is():
    low = next(a for a in sample_alerts() if a["score"] == 44.5)
    assert "[LOW 44.5, risk 37]" in _shown(low)


def test_each_subscription_and_group_of_an_alert_gets_its_own_where_line():
    spread = next(
        a for a in sample_alerts() if len({r["subscriptionId"] for r in a["resources"]}) > 1
    )
    text = _shown(spread)
    groups = {(r["subscriptionId"], r["resourceGroup"]) for r in spread["resources"]}
    for sub, group in groups:
        assert f"[subscription {sub}, group {group}]" in text


def test_the_next_steps_are_those_of_the_alerts_reasons():
    alert = next(a for a in sample_alerts() if a["burst"]["sequence"] == 2)
    text = _shown(alert)
    for reason in alert["reasons"]:
        assert re.search(rf"^    - {reason['code']}: ", text, re.M), reason["code"]


def test_the_site_login_is_shown_as_the_publishing_users_not_the_principals():
    update = next(
        a
        for a in sample_alerts()
        if a["principal"]["name"] == "Rahul Cohen" and a["burst"]["sequence"] == 2
    )
    text = _shown(update)
    assert "$contoso-orders-api-prod (publishingUser): kudu from 54.38.156.76" in text
    assert "tool azureCli" in text


def test_the_summary_orders_alerts_by_severity_not_alphabetically(tmp_path, capsys):
    from detectors.cli.main import main
    from tests.alerts.test_alert_schema import SAMPLE

    assert main(["replay", str(SAMPLE), "--out", str(tmp_path / "a.jsonl"), "--quiet"]) == 0
    line = next(x for x in capsys.readouterr().err.splitlines() if x.startswith("alerts: "))
    order = re.findall(r"\d+ (high|medium|low) ", line)
    assert order == sorted(order, key=["high", "medium", "low"].index)
    assert order[0] == "high"
    assert order[-1] == "low"
