"""The notifier's pure parts: reading a message, the digest, the Teams, Slack and webhook
messages, escaping, classification of answers, and the notifier's settings. No I/O."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import orjson
import pytest

from detectors.alerts.render import fit
from detectors.delivery.alert_body import MAX_BODY_BYTES, read_alert
from detectors.delivery.destinations.slack import slack_payload
from detectors.delivery.destinations.teams import MAX_BYTES as TEAMS_MAX_BYTES
from detectors.delivery.destinations.teams import teams_payload
from detectors.delivery.destinations.webhook import webhook_request
from detectors.delivery.digest import digest
from detectors.delivery.errors import MalformedAlertError
from detectors.delivery.escape import inert, slack_text, teams_text
from detectors.delivery.transport import Verdict, retry_after, verdict
from detectors.model.errors import ConfigurationError
from detectors.settings.app import NotifierSettings, destination_problem
from tests.alerts.test_alert_schema import assert_valid, sample_alerts
from tests.cards import roundtrip

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"

# What an attacker can put in a name, a WebJob path or a user agent, aimed at each format.
HOSTILE = (
    "*bold* _it_ ~strike~ `code` [login](https://evil.example/login) ![x](https://evil.example/p.png)",
    "<!here> <!channel> <@U012345> <https://evil.example|Azure sign-in> &amp; &lt;b&gt;",
    "@channel @here @everyone <at>Security Team</at>",
    "{{DATE(2030-01-01T00:00:00Z, SHORT)}} www.evil.example/reset :skull:",
    "line one\nline two\r\n# heading\n> quote\n- list | pipe",
    "\u202egnp.exe\u202c \x1b[31mred\x1b[0m \x00null",
)


# -- shared helpers (the end-to-end tests use them too) ---------------------------------------


def hostile_alert() -> dict[str, Any]:
    """A real alert with attacker-chosen text in every field an attacker can reach."""
    alert = copy.deepcopy(sample_alerts()[0])
    alert["principal"]["name"] = HOSTILE[0]
    alert["summary"] = " ".join(HOSTILE)
    alert["resource"]["site"] = HOSTILE[1]
    alert["resources"] = [dict(alert["resource"], site=text) for text in HOSTILE]
    alert["operations"] = [{"name": text, "count": 1, "status": "succeeded"} for text in HOSTILE]
    alert["reasons"] = [
        {"code": "NEW_WEBJOB", "message": text, "weight": 10.0 + n}
        for n, text in enumerate(HOSTILE)
    ]
    alert["sourceIps"] = [HOSTILE[2]]
    alert["tools"] = [HOSTILE[3]]
    alert["investigation"]["steps"] = list(HOSTILE)
    alert["investigation"]["benignCauses"] = list(HOSTILE)
    return alert


@cache
def _doc_namespace() -> dict[str, Any]:
    """The Python code blocks of docs/consumers.md, run as one module."""
    text = (DOCS / "consumers.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.DOTALL)
    defined: dict[str, Any] = {}
    for block in blocks:
        if "DefaultAzureCredential()" in block:
            continue  # the Azure client construction: needs a real account
        # Each block on its own, without this module's __future__ flags: as a reader
        # would paste it.
        namespace: dict[str, Any] = {}
        code = compile(block, str(DOCS / "consumers.md"), "exec", dont_inherit=True)
        exec(code, namespace)
        defined.update(namespace)
    return defined


def doc_function(name: str) -> Callable[..., Any]:
    """A function defined in docs/consumers.md, exactly as a reader would copy it."""
    return _doc_namespace()[name]


def verify_signature(secret: str, headers: Mapping[str, str], body: bytes, **kwargs: Any) -> bool:
    """The documented receiver-side check (docs/consumers.md)."""
    return bool(doc_function("verify")(secret, headers, body, **kwargs))


def _walk(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        yield value
        for item in value.values():
            yield from _walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item)


NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


# -- the webhook ------------------------------------------------------------------------------


def test_the_documented_check_accepts_our_signature_and_nothing_else():
    alert = sample_alerts()[0]
    body, headers = webhook_request(alert, secret="k", now=NOW)
    now = NOW.timestamp()
    assert verify_signature("k", headers, body, now=now)
    assert verify_signature("k", {k.upper(): v for k, v in headers.items()}, body, now=now)
    assert not verify_signature("other key", headers, body, now=now)
    assert not verify_signature("k", headers, body + b" ", now=now)
    later = dict(headers, **{"X-Detector-Timestamp": str(int(now) + 1)})
    assert not verify_signature("k", later, body, now=now)
    assert not verify_signature("k", headers, body, now=now + 301)  # a replay, too late
    assert verify_signature("k", headers, body, now=now + 299)
    assert not verify_signature("k", {}, body, now=now)


def test_while_the_key_is_rotated_either_key_verifies_and_no_third_one_does():
    alert = sample_alerts()[0]
    body, headers = webhook_request(alert, secret="new", previous="old", now=NOW)
    now = NOW.timestamp()
    assert headers["X-Detector-Signature"].count("v1=") == 2
    assert verify_signature("new", headers, body, now=now)
    assert verify_signature("old", headers, body, now=now)
    assert not verify_signature("another", headers, body, now=now)
    assert not verify_signature("old", headers, body + b" ", now=now)
    # Once rotation is over, the previous key no longer signs.
    body, headers = webhook_request(alert, secret="new", now=NOW)
    assert not verify_signature("old", headers, body, now=now)
    assert verify_signature("new", headers, body, now=now)


def test_the_webhook_body_is_the_alert_and_the_signature_is_hmac_over_timestamp_and_body():
    import hashlib
    import hmac

    alert = sample_alerts()[0]
    body, headers = webhook_request(alert, secret="k", now=NOW)
    assert orjson.loads(body) == alert
    assert headers["X-Detector-Timestamp"] == str(int(NOW.timestamp()))
    expected = hmac.new(b"k", f"{int(NOW.timestamp())}.".encode() + body, hashlib.sha256)
    assert headers["X-Detector-Signature"] == "v1=" + expected.hexdigest()
    assert headers["Idempotency-Key"] == headers["X-Detector-Alert-Id"] == alert["id"]


# -- reading messages -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "not UTF-8 JSON"),
        (b"\xff\xfe{}", "not UTF-8 JSON"),
        (b"not json", "not UTF-8 JSON"),
        (b"[" * 5000 + b"]" * 5000, "not UTF-8 JSON"),
        (b"[1, 2]", "a JSON list, not an alert object"),
        (b'"text"', "a JSON str"),
        (b"{}", "schemaVersion None is not MAJOR.MINOR"),
        (b'{"schemaVersion": "2.0", "id": "a"}', "2.0 is not supported: this notifier reads 1.x"),
        (b'{"schemaVersion": 1.0}', "schemaVersion 1.0 is not MAJOR.MINOR"),
        (b'{"schemaVersion": "1.0"}', "id None is not"),
        (b'{"schemaVersion": "1.0", "id": "has space"}', "id 'has space' is not"),
        (b'{"schemaVersion": "1.0", "id": "a\\n"}', "id 'a\\n' is not"),  # `$` matched before \n
        (b'{"schemaVersion": "1.0\\n", "id": "a"}', "is not MAJOR.MINOR"),
        (
            b'{"schemaVersion": "1.0", "id": "a", "detection": "d", "title": "t", '
            b'"principal": {}, "x": ' + b"[" * 300 + b"]" * 300 + b"}",
            "nested more than 32 levels deep",  # read, but could not be written back
        ),
        (b'{"schemaVersion": "1.0", "id": "a"}', "detection is missing or not str"),
        (
            b'{"schemaVersion": "1.0", "id": "a", "detection": "d", "title": "t", '
            b'"principal": {}, "reasons": {}}',
            "reasons is not a list",
        ),
        (b" " * (MAX_BODY_BYTES + 1), "an alert is at most 65,536"),
    ],
)
def test_a_body_that_is_not_an_alert_is_refused_with_its_reason(body, reason):
    with pytest.raises(MalformedAlertError, match=re.escape(reason)):
        read_alert(body)


def test_unknown_fields_and_later_minor_versions_are_read():
    alert = dict(sample_alerts()[0], schemaVersion="1.9", somethingNew={"x": [1]})
    assert read_alert(orjson.dumps(alert))["somethingNew"] == {"x": [1]}


# Enumerations the library writes back in its own spelling (Adaptive Cards enums are
# case-insensitive), and the Teams extension that is not part of the card model.
_CARD_ENUMS = frozenset({"color", "weight", "size", "style", "spacing", "width", "height"})
_HOST_EXTENSIONS = frozenset({"msteams"})


def _as_the_library_writes(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: item.lower()
            if key in _CARD_ENUMS and isinstance(item, str)
            else _as_the_library_writes(item)
            for key, item in value.items()
            if key not in _HOST_EXTENSIONS
        }
    if isinstance(value, list):
        return [_as_the_library_writes(item) for item in value]
    return value


def test_every_teams_card_is_read_whole_by_microsofts_adaptive_cards_library():
    """Parsed, validated and written back by the library that renders cards: no warning,
    and nothing it does not know (an unknown element or property would be dropped)."""
    alerts = [*sample_alerts(), hostile_alert()]
    cards = [teams_payload(digest(alert))["attachments"][0]["content"] for alert in alerts]
    for card, answer in zip(cards, roundtrip(cards), strict=True):
        assert answer["events"] == [], answer["events"]
        assert _as_the_library_writes(answer["card"]) == _as_the_library_writes(card)


def test_the_card_check_sees_what_the_library_does_not_know():
    card = teams_payload(digest(sample_alerts()[0]))["attachments"][0]["content"]
    broken = copy.deepcopy(card)
    broken["body"].append({"type": "NoSuchElement"})
    broken["body"][0]["notAProperty"] = 1
    [answer] = roundtrip([broken])
    assert any("NoSuchElement" in event for event in answer["events"])
    assert _as_the_library_writes(answer["card"]) != _as_the_library_writes(broken)


def test_a_trimmed_alert_still_makes_a_message():
    minimal = fit(sample_alerts()[0], max_bytes=1500)
    assert minimal["truncated"]["everythingElse"] == 1
    view = digest(read_alert(orjson.dumps(minimal)))
    assert view.truncated
    assert view.sites  # from `resource`
    text = orjson.dumps(teams_payload(view)).decode()
    assert "trimmed to fit a queue message" in text
    assert slack_payload(view)["blocks"]


def test_fields_of_the_wrong_type_show_as_unknown_never_fail():
    alert = {
        "schemaVersion": "1.0",
        "id": "x1",
        "detection": "d",
        "title": "t",
        "principal": {"name": ["not", "text"], "type": 5},
        "reasons": [None, "text", {"message": {"a": 1}, "weight": "heavy"}],
        "severity": "catastrophic",
        "resources": "none",
        "operations": [1, 2],
        "investigation": [],
    }
    view = digest(read_alert(orjson.dumps(alert)))
    assert view.severity == "unknown"
    assert view.who == "unknown principal (5)"
    teams_payload(view)
    slack_payload(view)


# -- what the messages show -------------------------------------------------------------------


def _texts(payload: Any) -> str:
    return "\n".join(str(node["text"]) for node in _walk(payload) if "text" in node)


def test_the_messages_show_who_what_where_severity_why_and_next_first():
    alert = sample_alerts()[0]
    view = digest(alert)
    for payload in (teams_payload(view), slack_payload(view)):
        text = _texts(payload)
        assert alert["principal"]["name"] in text
        assert alert["resource"]["site"] in text
        assert alert["severity"].upper() in text
        assert alert["firstSeen"] in text
        strongest = max(alert["reasons"], key=lambda r: r["weight"])
        assert strongest["message"][:60] in text
        # What to check next for the strongest reason comes first.
        assert alert["investigation"]["nextSteps"][0]["step"][:60] in text
        assert alert["id"] in text
    # Strongest reason first.
    assert view.reasons[0].weight == max(r["weight"] for r in alert["reasons"])


def test_the_messages_say_whose_the_site_login_made_with_a_taken_profile_is():
    update = next(
        a
        for a in sample_alerts()
        if a["principal"]["name"] == "Rahul Cohen" and a["burst"]["sequence"] == 2
    )
    view = digest(update)
    assert view.others == ("$contoso-orders-api-prod (publishingUser): 54.38.156.76; kudu",)
    for payload in (teams_payload(view), slack_payload(view)):
        assert "of which $contoso-orders-api-prod (publishingUser): 54.38.156.76" in _texts(payload)


def test_the_messages_name_every_subscription_and_group_of_the_sites():
    spread = next(
        a for a in sample_alerts() if len({r["subscriptionId"] for r in a["resources"]}) > 1
    )
    view = digest(spread)
    for sub in {r["subscriptionId"] for r in spread["resources"]}:
        groups = sorted(
            {r["resourceGroup"] for r in spread["resources"] if r["subscriptionId"] == sub}
        )
        part = next(p for p in view.scope.split("; ") if p.startswith(f"{sub}: "))
        assert sorted(part.split(": ", 1)[1].split(", ")) == groups


def test_slack_entries_are_on_lines_of_their_own():
    alert = sample_alerts()[0]
    payload = slack_payload(digest(alert))
    fields = next(b["fields"] for b in payload["blocks"] if "fields" in b)
    assert [f["text"].split("\n")[0] for f in fields] == [
        "Who",
        "Severity",
        "Where",
        "When (UTC)",
        "What",
        "From",
    ]
    why = next(
        b["text"]["text"]
        for n, b in enumerate(payload["blocks"])
        if n and payload["blocks"][n - 1].get("text", {}).get("text") == "*Why*"
    )
    assert len(why.split("\n")) == min(8, len(alert["reasons"]))


def test_every_sample_alert_fits_teams_and_slack_limits():
    for alert in sample_alerts():
        view = digest(alert)
        assert len(orjson.dumps(teams_payload(view))) <= TEAMS_MAX_BYTES
        _check_slack_limits(slack_payload(view))


def test_an_alert_with_enormous_texts_and_lists_stays_within_the_limits():
    alert = copy.deepcopy(sample_alerts()[0])
    alert["principal"]["name"] = "n" * 40_000
    alert["title"] = "t" * 5_000
    alert["summary"] = "<" * 40_000
    alert["reasons"] = [{"code": "C" * 900, "message": "&" * 3000, "weight": n} for n in range(300)]
    alert["investigation"]["steps"] = ["s" * 3000] * 100
    alert["investigation"]["benignCauses"] = ["b" * 3000] * 100
    alert["operations"] = [{"name": "o" * 3000, "count": n, "status": "x"} for n in range(100)]
    alert["resources"] = [dict(alert["resource"], site="s" * 2000)] * 100
    alert["sourceIps"] = ["1" * 2000] * 100
    view = digest(alert)  # far over a queue message: the builders' own bounds hold anyway
    assert len(orjson.dumps(teams_payload(view))) <= TEAMS_MAX_BYTES
    _check_slack_limits(slack_payload(view))


def _check_slack_limits(payload: dict[str, Any]) -> None:
    blocks = payload["blocks"]
    assert len(blocks) <= 50
    for block in blocks:
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= 150
        if block["type"] == "section":
            assert "text" in block or "fields" in block
            if "text" in block:
                assert len(block["text"]["text"]) <= 3000
            for field in block.get("fields", []):
                assert len(field["text"]) <= 2000
            assert len(block.get("fields", [])) <= 10
        if block["type"] == "context":
            assert len(block["elements"]) <= 10


# -- escaping ---------------------------------------------------------------------------------


def assert_teams_card_is_inert(message: dict[str, Any]) -> None:
    """Alert text in TextRuns only, defanged, no templates, no mentions, no links."""
    card = message["attachments"][0]["content"]
    for node in _walk(card):
        if node.get("type") in ("TextBlock", "Fact", "FactSet") or "title" in node:
            # Our own labels only: nothing the alert carried.
            assert "evil" not in json.dumps(node), node
            assert "*bold*" not in json.dumps(node), node
    runs = [n["text"] for n in _walk(card) if n.get("type") == "TextRun"]
    joined = "\n".join(runs)
    assert "*bold*" in joined  # shown as typed: TextRuns render no Markdown
    assert "https://" not in json.dumps(card)
    assert "hxxps[:]//evil[.]example/login" in joined
    assert "www[.]evil[.]example" in joined
    assert "{{" not in joined
    assert "\u202e" not in joined
    assert "\x1b" not in joined
    assert not any("\n" in run or "\r" in run for run in runs)
    assert "line one line two" in joined  # the alert's line breaks are not kept
    assert "\x00" not in joined
    assert not any(n.get("type") in ("Action.OpenUrl", "Image") for n in _walk(card))
    assert "msteams" in card
    assert "entities" not in card["msteams"]  # no mentions, ever


def assert_slack_message_is_inert(payload: dict[str, Any]) -> None:
    """Alert text in plain_text only, entity-escaped, defanged, no mentions, no links."""
    objects = [n for n in _walk(payload) if n.get("type") in ("plain_text", "mrkdwn")]
    for node in objects:
        if node["type"] == "mrkdwn":
            assert re.fullmatch(r"\*[A-Za-z ]+\*", node["text"]), node  # our labels only
        else:
            assert node["emoji"] is False
            assert "<" not in node["text"]
            assert ">" not in node["text"]
    text = _texts(payload)
    assert "line one line two" in text  # our line breaks separate entries; the alert's go
    assert "&lt;!here&gt;" in text
    assert "&lt;@U012345&gt;" in text
    assert "&amp;amp;" in text  # an entity the attacker typed is shown, not decoded
    assert "@\u2060channel" in text
    assert "@channel" not in text
    assert "https://" not in json.dumps(payload)
    assert "hxxps[:]//evil[.]example" in text
    assert "\u202e" not in text
    assert "\x1b" not in text
    assert payload["mrkdwn"] is False
    assert "<" not in payload["text"]
    assert not any(n.get("type") in ("button", "image") or "url" in n for n in _walk(payload))


def test_the_hostile_alert_is_an_alert_the_contract_allows():
    assert_valid(hostile_alert())


def test_teams_cards_keep_alert_text_out_of_markdown():
    assert_teams_card_is_inert(teams_payload(digest(hostile_alert())))


def test_slack_messages_keep_alert_text_plain_and_escaped():
    assert_slack_message_is_inert(slack_payload(digest(hostile_alert())))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("https://evil.example/a?b=c", "hxxps[:]//evil[.]example/a?b=c"),
        ("HTTP://Evil.Example", "HxxP[:]//Evil[.]Example"),
        ("ftp://files.evil.example/x", "ftp[:]//files[.]evil[.]example/x"),
        ("javascript://%0aalert(1)", "javascript[:]//%0aalert(1)"),
        ("visit www.evil.example", "visit www[.]evil[.]example"),
        ("a\r\nb\tc", "a b c"),
        ("\u202eexe.txt", "\ufffdexe.txt"),
        ("jane@contoso.com run.ps1 10.0.0.1", "jane@contoso.com run.ps1 10.0.0.1"),
    ],
)
def test_text_is_made_inert(raw, expected):
    assert inert(raw) == expected


_GLUED = ["_", "1", "é", "a", "-", ".", "ß", "\u0434", "x" * 40, "_/"]
_LINKS = ["https://evil.example/login", "HTTP://evil.example", "www.evil.example/x"]


@pytest.mark.parametrize("prefix", _GLUED, ids=lambda p: repr(p[:3]))
@pytest.mark.parametrize("link", _LINKS)
def test_a_character_glued_before_a_link_does_not_keep_it_live(prefix, link):
    """`\\b` before the scheme let `_https://...` (and `1https`, `éhttps`, `_www.`) through
    undefanged, and chat clients still find the link inside."""
    for text in (
        inert(prefix + link),
        teams_text(prefix + link, 500),
        slack_text(prefix + link, 500),
    ):
        assert "://" not in text
        assert "www." not in text.lower()
        assert "evil.example" not in text


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://169.254.169.254/metadata/identity/oauth2/token", "link-local"),
        ("https://[::ffff:169.254.169.254]/", "link-local"),
        ("https://127.0.0.1:8443/hook", "private or loopback"),
        ("https://[::1]/hook", "private or loopback"),
        ("https://10.1.2.3/hook", "private or loopback"),
        ("https://localhost/hook", "local address"),
        ("https://2852039166/", "unusual form"),
        ("https://0x7f.1/", "unusual form"),
        ("https://ops:hunter2@hooks.example/x", "user name or password"),
        ("https:///path", "no host"),
        ("https://hooks.example/x\r\nX-Injected: 1", "control character"),
        ("http://hooks.example/x", "https:// URL"),
    ],
)
def test_a_destination_no_webhook_should_be_is_refused(url, problem):
    found = destination_problem(url)
    assert found is not None
    assert problem in found


def test_public_hosts_are_destinations_and_private_ones_only_when_allowed():
    for url in (
        "https://hooks.slack.com/services/T0/B0/x",
        "https://prod-12.westeurope.logic.azure.com:443/workflows/1/triggers/manual/paths/invoke",
        "https://contoso.webhook.office.com/webhookb2/x",
        "https://20.50.2.3/hook",
    ):
        assert destination_problem(url) is None
    assert destination_problem("https://10.1.2.3/hook", private_ok=True) is None
    assert destination_problem("https://localhost:8443/hook", private_ok=True) is None
    assert destination_problem("https://169.254.169.254/", private_ok=True) is not None
    env = {
        "DETECTOR_STORAGE": "UseDevelopmentStorage=true",
        "NOTIFY_TEAMS_URL": "https://10.0.0.4/x",
    }
    with pytest.raises(ConfigurationError, match="NOTIFY_TEAMS_URL is a private or loopback"):
        NotifierSettings.from_env(env)
    allowed = NotifierSettings.from_env({**env, "NOTIFY_ALLOW_PRIVATE_ADDRESSES": "true"})
    assert allowed.teams_url == "https://10.0.0.4/x"
    with pytest.raises(ConfigurationError, match="is not true or false"):
        NotifierSettings.from_env({**env, "NOTIFY_ALLOW_PRIVATE_ADDRESSES": "yes"})


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Detector-Timestamp": "²", "X-Detector-Signature": "v1=" + "0" * 64},
        {"X-Detector-Timestamp": "9" * 5000, "X-Detector-Signature": "v1=" + "0" * 64},
        {"X-Detector-Timestamp": "1790000000", "X-Detector-Signature": "v1=é" + "0" * 63},
        {"X-Detector-Timestamp": "1790000000", "X-Detector-Signature": "v1=\udcff"},
        {"X-Detector-Timestamp": "١٧٩٠٠٠٠٠٠٠", "X-Detector-Signature": "v1=" + "0" * 64},
        {"X-Detector-Timestamp": 1790000000, "X-Detector-Signature": None},
        {},
    ],
    ids=["superscript", "5000-digits", "non-ascii-sig", "surrogate", "arabic-digits", "types",
         "none"],
)  # fmt: skip
def test_the_documented_check_refuses_hostile_headers_without_raising(headers):
    """It raised ValueError, UnicodeEncodeError or TypeError on such headers."""
    assert verify_signature("the key", headers, b"{}", now=1790000000) is False


def test_the_documented_check_refuses_a_body_that_is_not_bytes():
    assert verify_signature("the key", {"X-Detector-Timestamp": "1"}, "{}", now=1) is False


def test_clipping_never_cuts_an_entity_and_counts_what_slack_counts():
    text = slack_text("a" * 8 + "&&&", 12)
    assert text == "a" * 8 + "…"
    assert len(slack_text("<" * 1000, 150)) <= 150
    assert teams_text("x" * 500, 100) == "x" * 99 + "…"


# -- answers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, Verdict.DELIVERED),
        (202, Verdict.DELIVERED),
        (204, Verdict.DELIVERED),
        (301, Verdict.PERMANENT),
        (400, Verdict.PERMANENT),
        (401, Verdict.PERMANENT),
        (403, Verdict.PERMANENT),
        (404, Verdict.PERMANENT),
        (410, Verdict.PERMANENT),
        (413, Verdict.PERMANENT),
        (408, Verdict.TRANSIENT),
        (425, Verdict.TRANSIENT),
        (429, Verdict.TRANSIENT),
        (500, Verdict.TRANSIENT),
        (502, Verdict.TRANSIENT),
        (503, Verdict.TRANSIENT),
        (504, Verdict.TRANSIENT),
    ],
)
def test_answers_are_delivered_transient_or_permanent(status, expected):
    assert verdict(status) is expected


def test_retry_after_reads_seconds_and_http_dates():
    assert retry_after("7", NOW) == 7.0
    assert retry_after(" 0 ", NOW) == 0.0
    later = NOW + timedelta(seconds=90)
    assert retry_after(later.strftime("%a, %d %b %Y %H:%M:%S GMT"), NOW) == 90.0
    assert retry_after("Mon, 01 Jan 2001 00:00:00 GMT", NOW) == 0.0
    assert retry_after("soon", NOW) is None
    assert retry_after("-5", NOW) is None
    assert retry_after(None, NOW) is None


# -- settings ---------------------------------------------------------------------------------


def test_the_notifier_needs_no_timer_setting_and_reports_every_problem_at_once():
    settings = NotifierSettings.from_env(
        {
            "DETECTOR_STORAGE__tableServiceUri": "https://acct.table.core.windows.net",
            "DETECTOR_STORAGE__queueServiceUri": "https://acct.queue.core.windows.net",
            "NOTIFY_SLACK_URL": "https://hooks.slack.com/services/T/B/secret",
            "DETECTOR_WINDOW_MINUTES": "not a number: the timer's problem",
        }
    )
    assert settings.delivery_table == "DetectorDeliveries"
    assert settings.alert_queue == "detector-alerts"
    assert "secret" not in repr(settings)
    with pytest.raises(ConfigurationError) as caught:
        NotifierSettings.from_env(
            {
                "DETECTOR_DELIVERY_TABLE": "bad-name",
                "NOTIFY_WEBHOOK_URL": "http://plain.example/hook",
                "NOTIFY_TEAMS_URL": "ftp://x",
            }
        )
    message = str(caught.value)
    for expected in (
        "storage is not configured",
        "DETECTOR_DELIVERY_TABLE='bad-name' is not a valid Azure table name",
        "NOTIFY_WEBHOOK_URL must be an https:// URL",
        "NOTIFY_TEAMS_URL must be an https:// URL",
        "NOTIFY_WEBHOOK_SECRET is missing",
    ):
        assert expected in message
    with pytest.raises(ConfigurationError, match="no destination is configured"):
        NotifierSettings.from_env({"DETECTOR_STORAGE": "UseDevelopmentStorage=true"})
