"""Which download a `$site` login is told against (`engine.chains`)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from detectors.baselines.baseline import learn
from detectors.baselines.surroundings import Surroundings
from detectors.engine.chains import Chains
from detectors.model.observation import Observation, RawRow, SourceTable
from detectors.model.reasons import ReasonCode
from detectors.normalize.rows import Normalizer
from detectors.settings.detection import DetectionSettings
from tests.rowkit import CLI, PUBLISHXML, START, Actor, activity, login, site_id

JANE = Actor(caller="jane@contoso.com", app_id=CLI, ip="198.51.100.10", name="Jane")
DANA = Actor(caller="dana@contoso.com", app_id=CLI, ip="176.183.111.196", name="Dana")
T = START + timedelta(days=20, hours=13)


def observe(rows: list[dict]) -> list[Observation]:
    normalizer = Normalizer()
    out = []
    for n, row in enumerate(rows):
        table = (
            SourceTable.APP_SERVICE_AUDIT
            if row.get("Type") == "AppServiceAuditLogs"
            else SourceTable.AZURE_ACTIVITY
        )
        result = normalizer.normalize(RawRow(source="t", line=n, table=table, fields=row))
        if isinstance(result, Observation):
            out.append(result)
    return sorted(out, key=lambda o: o.time)


@pytest.mark.parametrize("dana_knows_it", [True, False], ids=["her network", "new to her"])
def test_a_download_from_the_logins_own_network_by_one_who_works_there_explains_it(
    dana_knows_it,
):
    """Jane took app1's profile at 13:00 from the office; Dana took it at 14:36 from her
    home and the site's credentials logged in from there three seconds later. Dana, who
    works from that network, using the profile she took is its ordinary use: no
    `DOWNLOAD_THEN_LOGIN`, on Jane's nor Dana's finding (it went to Jane's, the download
    before, when a network the organisation had not learned yet hid Dana's). From a network
    new to Dana, the login is told against Dana's download, the latest."""
    at = T + timedelta(minutes=96)
    rows = activity(JANE, T, PUBLISHXML, site_id("app1"))
    rows += activity(DANA, at, PUBLISHXML, site_id("app1"))
    rows.append(login("$app1", at + timedelta(seconds=3), site_id("app1"), DANA.ip, "Kudu"))
    window = observe(rows)
    before = observe(activity(DANA, T - timedelta(days=1), PUBLISHXML, site_id("app2")))
    if not dana_knows_it:
        before = [replace(o, source_ip="203.0.113.5") for o in before]
    settings = DetectionSettings()
    baselines = {
        DANA.caller: learn(None, before, max_age_days=45, max_values=256),
    }
    out = Chains(settings).link({}, window, Surroundings(baselines={}, max_age_days=45), baselines)
    chained = {
        principal: [r for r in f.reasons if r.code is ReasonCode.DOWNLOAD_THEN_LOGIN]
        for (_, principal), f in out.items()
    }
    told = {p for p, reasons in chained.items() if reasons}
    assert told == (set() if dana_knows_it else {DANA.caller})
