"""Microsoft Teams: the alert as an Adaptive Card, for an incoming webhook or a Workflows
"when a Teams webhook request is received" flow (both take this message shape).

Alert text appears only in `TextRun`s (see `escape`): the card's own labels are the only
Markdown-capable text. The card stays under `MAX_BYTES`, below Teams' 28 KB message limit,
however long the alert's texts and lists are.
"""

from __future__ import annotations

from typing import Any

import orjson

from detectors.delivery.destinations import chat_type
from detectors.delivery.digest import Digest
from detectors.delivery.escape import teams_text

CARD_VERSION = "1.4"
MAX_BYTES = 24_000
"""Largest payload sent (Teams refuses messages over about 28 KB)."""

_COLOR = {"high": "attention", "medium": "warning", "low": "accent", "unknown": "default"}
_STYLE = {"high": "attention", "medium": "warning", "low": "accent", "unknown": "emphasis"}


def teams_payload(d: Digest) -> dict[str, Any]:
    """The message to post: one Adaptive Card attachment."""
    for reasons, steps, causes, line in ((8, 5, 3, 400), (5, 3, 2, 240), (3, 2, 0, 120)):
        payload = _message(_card(d, reasons=reasons, steps=steps, causes=causes, line=line))
        if len(orjson.dumps(payload)) <= MAX_BYTES:
            return payload
    return payload  # the smallest form: bounded by the limits above, far below MAX_BYTES


def _message(card: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": card,
            }
        ],
    }


def _card(d: Digest, *, reasons: int, steps: int, causes: int, line: int) -> dict[str, Any]:
    severity = d.severity
    score = f" · score {d.score:g}" if d.score is not None else ""
    body: list[dict[str, Any]] = [
        {
            "type": "Container",
            "style": _STYLE[severity],
            "bleed": True,
            "items": [
                _label(f"{severity.upper()} severity{score}", color=_COLOR[severity]),
                _runs([_run(d.title, 200, size="Large", weight="Bolder")]),
                *([_runs([_run(d.summary, 2 * line)])] if d.summary else []),
            ],
        },
        _row("Who", [d.who + (f", app {d.app_id}" if d.app_id else "")], line),
        _row("What", list(d.operations[:5]) or [d.title], line),
        _row("Where", _where(d), line),
        _row("When", [_when(d)], line),
        _row(
            "From",
            [
                ", ".join(d.source_ips[:5]) or "unknown",
                ", ".join(d.tools),
                *(f"of which {other}" for other in d.others[:3]),
            ],
            line,
        ),
        _label("Why", separator=True),
        *(
            _runs(
                [
                    _run("• " + r.message, line),
                    _run(
                        f"  {r.code}" + (f" +{r.weight:g}" if r.weight is not None else ""),
                        80,
                        subtle=True,
                    ),
                ]
            )
            for r in d.reasons[:reasons]
        ),
    ]
    if d.steps[:steps]:
        body.append(_label("What to do next", separator=True))
        body += [_runs([_run(f"{n}. {step}", line)]) for n, step in enumerate(d.steps[:steps], 1)]
    if d.benign_causes[:causes]:
        body.append(_label("Rule out first"))
        body += [
            _runs([_run("• " + cause, line, subtle=True)]) for cause in d.benign_causes[:causes]
        ]
    footer = f"Alert {d.alert_id} · {d.detection}"
    if d.mitre:
        footer += " · " + ", ".join(m.split(" ", 1)[0] for m in d.mitre[:6])
    footer += " · the full alert, with ready-to-run KQL, is on the alert queue"
    if d.truncated:
        footer += " (trimmed to fit a queue message)"
    body.append(_runs([_run(footer, 600, subtle=True, small=True)], separator=True))
    return {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": CARD_VERSION,
        "msteams": {"width": "Full"},
        "fallbackText": teams_text(f"{severity.upper()} alert: {d.title} ({d.who})", 300),
        "body": body,
    }


def _label(text: str, *, color: str | None = None, separator: bool = False) -> dict[str, Any]:
    """A TextBlock of our own words (never alert text: TextBlocks render Markdown)."""
    block: dict[str, Any] = {"type": "TextBlock", "text": text, "weight": "Bolder", "wrap": True}
    if color:
        block["color"] = color
    if separator:
        block.update(separator=True, spacing="Medium")
    return block


def _run(
    text: str,
    limit: int,
    *,
    size: str | None = None,
    weight: str | None = None,
    subtle: bool = False,
    small: bool = False,
) -> dict[str, Any]:
    """A TextRun: the only place alert text goes (TextRuns render no Markdown)."""
    run: dict[str, Any] = {"type": "TextRun", "text": teams_text(text, limit)}
    if size or small:
        run["size"] = size or "Small"
    if weight:
        run["weight"] = weight
    if subtle:
        run["isSubtle"] = True
    return run


def _runs(runs: list[dict[str, Any]], *, separator: bool = False) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "RichTextBlock", "inlines": runs}
    if separator:
        block["separator"] = True
    return block


def _row(label: str, values: list[str], limit: int) -> dict[str, Any]:
    """A label and its values side by side; each value a line of TextRuns."""
    lines = [v for v in values if v] or ["unknown"]
    return {
        "type": "ColumnSet",
        "columns": [
            {"type": "Column", "width": "80px", "items": [_label(label)]},
            {
                "type": "Column",
                "width": "stretch",
                "items": [_runs([_run(value, limit)]) for value in lines],
            },
        ],
    }


def _where(d: Digest) -> list[str]:
    sites = ", ".join(d.sites[:5]) or "unknown site"
    more = len(d.sites[5:]) + d.more_sites
    if more:
        sites += f" and {more} more"
    return [sites, d.scope]


def _when(d: Digest) -> str:
    if d.first_seen and d.last_seen and d.first_seen != d.last_seen:
        return f"{d.first_seen} to {d.last_seen} (UTC)"
    return f"{d.first_seen or d.last_seen or 'unknown'} (UTC)"


def _throttled(excerpt: str) -> bool:
    # A throttled connector answers 200 with `... returned HTTP error 429 ...` in the body,
    # and nothing was posted.
    return "HTTP error 429" in excerpt


TYPE = chat_type("teams", lambda settings: settings.teams_url, teams_payload, throttled=_throttled)
