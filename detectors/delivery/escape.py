"""Attacker-controlled text made inert for each chat format.

Almost everything in an alert can be chosen by the attacker it describes: principal and
site names, WebJob names and file paths (inside the reasons), addresses. None of it may
turn into markup, a link, a mention or a template in an analyst's channel. The rule the
builders follow is that alert text never enters a markup context at all:

- Microsoft Teams: alert text goes only into Adaptive Card `TextRun`s, which render no
  Markdown (TextBlock and FactSet values do, and Teams honours no escape in them
  reliably). `{{` is broken so the card's DATE()/TIME() functions cannot fire.
- Slack: alert text goes only into `plain_text` objects with `emoji: false`, which render
  no mrkdwn (mrkdwn has no escape for `*_~` or backticks). `&`, `<` and `>` are escaped as
  Slack requires, which also makes `<!here>`, `<@U123>` and `<url|label>` impossible, and a
  bare `@channel`, `@here` or `@everyone` gets a zero-width joiner after its `@`.
- Both: control characters become spaces, bidirectional overrides become U+FFFD (so a
  name cannot display reversed), and URLs are defanged in the security convention
  (`hxxps[:]//`, `www[.]`, every dot of the host `[.]`) so no client turns them into a
  clickable link.

The generic webhook carries the alert itself as JSON: its receiver escapes for its own
output.
"""

from __future__ import annotations

import re

ELLIPSIS = "…"

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_BIDI = re.compile(r"[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# No word boundary before either: a character glued to the front (`_https://`, `1https://`,
# `éhttps://`, `_www.`) must not hide a link from the defanging, which clients still find.
_URL = re.compile(r"(?i)(?P<scheme>[a-z][a-z0-9+.\-]{0,31})://(?P<host>[^/\s?#]*)")
_WWW = re.compile(r"(?i)(?P<www>www)\.(?P<host>[^/\s?#]*)")
_BROADCAST = re.compile(r"(?i)@(?=(channel|here|everyone)\b)")
_SLACK_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_WORD_JOINER = "\u2060"


def clip(text: str, limit: int) -> str:
    """At most `limit` characters; a cut text ends with an ellipsis."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - 1)] + ELLIPSIS


def inert(text: str) -> str:
    """One line of text with no control characters, no direction overrides, no live URLs."""
    text = _CONTROL.sub(" ", text)
    text = _BIDI.sub("\ufffd", text)
    text = _URL.sub(_defang, text)
    return _WWW.sub(lambda m: m["www"] + "[.]" + m["host"].replace(".", "[.]"), text)


def _defang(match: re.Match[str]) -> str:
    scheme = match["scheme"]
    if scheme.lower() in ("http", "https"):
        scheme = scheme[0] + "xx" + scheme[3:]
    return f"{scheme}[:]//" + match["host"].replace(".", "[.]")


def teams_text(text: str, limit: int) -> str:
    """Text for an Adaptive Card `TextRun`: inert, templates broken, at most `limit` long."""
    return clip(inert(text).replace("{{", "{" + _WORD_JOINER + "{"), limit)


def slack_text(text: str, limit: int) -> str:
    """Text for a Slack `plain_text` object: inert and entity-escaped, at most `limit` long.

    The limit counts the escaped text (what Slack measures), and an entity is never cut.
    """
    text = _BROADCAST.sub("@" + _WORD_JOINER, inert(text))
    escaped = "".join(_SLACK_ENTITIES.get(char, char) for char in text)
    if len(escaped) <= limit:
        return escaped
    cut = escaped[: max(0, limit - 1)]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + ELLIPSIS
