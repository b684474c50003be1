"""`replay --report`: one self-contained page, checked as Chromium renders it (issue #20).

These tests need Debian's `chromium` (CI installs it, see `.ci/run`); without it they fail
rather than skip, so a green run always means the page was rendered by a real browser.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from detectors.cli.main import main
from detectors.cli.report import anchor, report_html
from tests.alerts.test_alert_schema import SAMPLE, assert_valid
from tests.detections.test_detections import AFTER, jane_history
from tests.rowkit import POWERSHELL, Actor, activity, site_id

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("headless Chromium is needed: apt-get install -y chromium (see .ci/run)")
    return found


def rendered_dom(page: Path) -> str:
    """The page's DOM after Chromium loaded it and ran its scripts."""
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run(
            [
                chromium(),
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                "--virtual-time-budget=2000",
                "--dump-dom",
                page.resolve().as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "<html" in done.stdout, done.stderr[-2000:]
    return done.stdout


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    classes: set[str] = field(default_factory=set)


class Dom(HTMLParser):
    """Every element with its attributes, and the text, of a serialised DOM."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[Element] = []
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        self.elements.append(Element(tag, values, set(values.get("class", "").split())))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def all(self, tag: str) -> list[Element]:
        return [e for e in self.elements if e.tag == tag]

    @property
    def ids(self) -> set[str]:
        return {e.attrs["id"] for e in self.elements if "id" in e.attrs}


def assert_self_contained(dom: Dom) -> None:
    """Nothing on the page can reach the network or run code but the page's own script."""
    for element in dom.elements:
        assert element.tag not in {"img", "iframe", "object", "embed", "link", "form", "base"}
        for name, value in element.attrs.items():
            assert not name.startswith("on"), f"event handler on <{element.tag}>: {name}"
            if name in {"href", "src", "action", "formaction", "xlink:href"}:
                assert value.startswith("#"), f"<{element.tag} {name}={value!r}>"
    scripts = dom.all("script")
    assert len(scripts) == 1
    assert "src" not in scripts[0].attrs


@pytest.fixture(scope="module")
def sample_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    directory = tmp_path_factory.mktemp("report")
    out, page = directory / "alerts.jsonl", directory / "report.html"
    assert main(["replay", str(SAMPLE), "--out", str(out), "--report", str(page), "--quiet"]) == 0
    return page, [json.loads(line) for line in out.read_text().splitlines()]


def test_the_report_renders_every_alert_behind_an_index_whose_links_resolve(sample_report):
    page, alerts = sample_report
    dom = Dom(rendered_dom(page))
    sections = [e for e in dom.all("section") if "alert" in e.classes]
    assert len(sections) == len(alerts) == 15
    links = [e.attrs["href"] for e in dom.all("a") if e.attrs.get("href", "").startswith("#alert-")]
    assert len(links) == len(alerts)
    assert {link[1:] for link in links} <= dom.ids
    assert {link[1:] for link in links} == {anchor(a) for a in alerts}
    assert "summary" in dom.ids
    assert_self_contained(dom)


def test_the_index_puts_the_most_severe_first(sample_report):
    page, _ = sample_report
    dom = Dom(page.read_text())
    severities = [
        e.classes & {"sev-high", "sev-medium", "sev-low"}
        for e in dom.elements
        if "sev" in e.classes
    ][:15]
    ranks = [{"sev-high": 3, "sev-medium": 2, "sev-low": 1}[next(iter(s))] for s in severities]
    assert ranks == sorted(ranks, reverse=True)


def test_each_alert_shows_the_principals_days_with_its_window_and_the_kql_to_copy(sample_report):
    page, alerts = sample_report
    dom = Dom(rendered_dom(page))
    windows = [e for e in dom.all("rect") if "window" in e.classes]
    assert len(windows) == len(alerts)
    assert [e for e in dom.all("rect") if "day" in e.classes]
    buttons = [e for e in dom.all("button") if "copy" in e.classes]
    assert buttons
    assert {b.attrs["data-for"] for b in buttons} <= dom.ids
    text = "".join(dom.text)
    assert "AppServiceAuditLogs" in text
    for heading in ("Rows read", "Rejected", "Principals", "Alerts by detection and severity"):
        assert heading in text


HOSTILE = {
    "name": '<script>document.body.setAttribute("data-pwned","name")</script>',
    "id": "\"><svg onload=document.body.setAttribute('data-pwned','id')>",
    "site": "<img src=x onerror=\"document.body.setAttribute('data-pwned','site')\">",
    "message": 'javascript:document.body.setAttribute("data-pwned","message")',
    "operation": "</pre><script>document.body.setAttribute('data-pwned','op')</script>",
    "query": '</pre><a href="javascript:alert(1)">x</a><iframe src=//evil.example>',
    "tool": "<style>body{display:none}</style>",
}


def hostile_alert(run_rows: Any) -> dict[str, Any]:
    """A real alert of a principal whose logged name is markup, with more markup planted in
    every text an attacker can choose (site, operation and job names, messages)."""
    thief = Actor(
        caller="jane@contoso.com", app_id=POWERSHELL, ip="203.0.113.66", name=HOSTILE["name"]
    )
    rows = jane_history()
    for n, site in enumerate(["app1", "pay", "billing", "hr", "crm"]):
        rows += activity(
            thief,
            AFTER.replace(hour=3) + timedelta(minutes=n),
            "MICROSOFT.WEB/SITES/PUBLISHXML/ACTION",
            site_id(site),
        )
    alerts, _ = run_rows(rows)
    alert = copy.deepcopy(alerts[0])
    assert alert["principal"]["name"] == HOSTILE["name"]
    alert["principal"]["id"] = HOSTILE["id"]
    alert["resources"][0]["site"] = HOSTILE["site"]
    alert["resource"]["site"] = HOSTILE["site"]
    alert["operations"][0]["name"] = HOSTILE["operation"]
    alert["reasons"][0]["message"] = HOSTILE["message"]
    alert["investigation"]["queries"][0]["query"] = HOSTILE["query"]
    alert["actors"][0]["name"] = HOSTILE["name"]
    alert["actors"][0]["tools"].append(HOSTILE["tool"])
    alert["title"] = HOSTILE["site"]
    return alert


def test_a_hostile_alert_is_valid_and_its_text_is_shown_as_text_never_run(run_rows, tmp_path):
    alert = hostile_alert(run_rows)
    assert_valid(alert)
    page = tmp_path / "hostile.html"
    page.write_text(
        report_html([alert], None, generated=datetime(2026, 12, 1, tzinfo=UTC), source="x"),
        encoding="utf-8",
    )
    dom = Dom(rendered_dom(page))
    body = dom.all("body")[0]
    assert "data-pwned" not in body.attrs, "a planted script ran"
    assert_self_contained(dom)
    assert not [e for e in dom.all("svg") if "onload" in e.attrs]
    assert not dom.all("style")[1:], "a planted <style> became a style sheet"
    text = "".join(dom.text)
    for planted in HOSTILE.values():
        assert planted in text, f"not shown as text: {planted!r}"


def test_the_report_command_makes_the_page_from_an_alerts_file(sample_report, tmp_path):
    _, alerts = sample_report
    lines = tmp_path / "alerts.jsonl"
    lines.write_text("".join(json.dumps(a) + "\n" for a in alerts))
    out = tmp_path / "from-file.html"
    assert main(["report", str(lines), "--out", str(out)]) == 0
    dom = Dom(rendered_dom(out))
    links = [e.attrs["href"][1:] for e in dom.all("a") if e.attrs.get("href", "").startswith("#a")]
    assert len(links) == len(alerts)
    assert set(links) <= dom.ids
    assert_self_contained(dom)


def test_the_report_command_names_the_line_it_cannot_read(tmp_path, capsys):
    lines = tmp_path / "alerts.jsonl"
    lines.write_text('{"id": "00"}\n{not json\n')
    assert main(["report", str(lines), "--out", str(tmp_path / "x.html")]) != 0
    assert f"{lines}:2: not JSON" in capsys.readouterr().err
    assert not (tmp_path / "x.html").exists()
