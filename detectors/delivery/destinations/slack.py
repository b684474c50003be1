"""Slack: the alert in Block Kit, for an incoming webhook.

Alert text appears only in `plain_text` objects with `emoji: false` (see `escape`); the
only mrkdwn is our own section labels. Slack's limits are kept: a header of 150
characters, section texts of 3,000, ten fields of 2,000, at most 50 blocks.
"""

from __future__ import annotations

from typing import Any

from detectors.delivery.destinations import chat_type
from detectors.delivery.digest import Digest
from detectors.delivery.escape import ELLIPSIS, slack_text

MAX_BLOCKS = 50
_MARK = {"high": "🔴", "medium": "🟠", "low": "🟡", "unknown": "⚪"}


def slack_payload(d: Digest) -> dict[str, Any]:
    """The message to post: a notification text and the blocks."""
    severity = d.severity
    score = f" · score {d.score:g}" if d.score is not None else ""
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": _plain(f"{_MARK[severity]} {severity.upper()} · {d.title}", 150),
        },
    ]
    if d.summary:
        blocks.append({"type": "section", "text": _plain(d.summary, 3000)})
    where = ", ".join(d.sites[:5]) or "unknown site"
    more = len(d.sites[5:]) + d.more_sites
    if more:
        where += f" and {more} more"
    fields = [
        ("Who", d.who + (f", app {d.app_id}" if d.app_id else "")),
        ("Severity", f"{severity}{score}"),
        ("Where", where + (f" ({d.scope})" if d.scope else "")),
        ("When (UTC)", _when(d)),
        ("What", "; ".join(d.operations[:5]) or d.title),
        (
            "From",
            "; ".join(p for p in (", ".join(d.source_ips[:5]), ", ".join(d.tools)) if p)
            + "".join(f"\nof which {other}" for other in d.others[:3]),
        ),
    ]
    blocks.append(
        {
            "type": "section",
            "fields": [_plain([label, value or "unknown"], 2000) for label, value in fields],
        }
    )
    if d.reasons:
        blocks.append(_heading("Why"))
        lines = [
            f"• {r.message} ({r.code}" + (f" +{r.weight:g})" if r.weight is not None else ")")
            for r in d.reasons[:8]
        ]
        blocks.append({"type": "section", "text": _plain(lines, 3000)})
    if d.steps:
        blocks.append(_heading("What to do next"))
        lines = [f"{n}. {step}" for n, step in enumerate(d.steps[:5], 1)]
        blocks.append({"type": "section", "text": _plain(lines, 3000)})
    if d.benign_causes:
        blocks.append(_heading("Rule out first"))
        lines = [f"• {cause}" for cause in d.benign_causes[:3]]
        blocks.append({"type": "section", "text": _plain(lines, 3000)})
    footer = f"Alert {d.alert_id} · {d.detection}"
    if d.mitre:
        footer += " · " + ", ".join(m.split(" ", 1)[0] for m in d.mitre[:6])
    footer += " · the full alert, with ready-to-run KQL, is on the alert queue"
    if d.truncated:
        footer += " (trimmed to fit a queue message)"
    blocks.append({"type": "context", "elements": [_plain(footer, 2000)]})
    return {
        "text": slack_text(f"{severity.upper()} alert: {d.title} ({d.who})", 300),
        "mrkdwn": False,
        "blocks": blocks[:MAX_BLOCKS],
    }


def _plain(text: str | list[str], limit: int) -> dict[str, Any]:
    """A plain_text object: the only place alert text goes (it renders no mrkdwn).

    Lines are escaped one by one (so the line breaks are ours, never the alert's) and
    kept whole while they fit; the first that does not is shortened, the rest dropped.
    """
    lines = [text] if isinstance(text, str) else text
    kept: list[str] = []
    room = limit
    for line in lines:
        budget = room - (1 if kept else 0)
        if budget < 2:
            break
        escaped = slack_text(line, budget)
        kept.append(escaped)
        room = budget - len(escaped)
        if escaped.endswith(ELLIPSIS) and len(escaped) == budget:
            break
    return {"type": "plain_text", "text": "\n".join(kept), "emoji": False}


def _heading(label: str) -> dict[str, Any]:
    """A section label in our own words (the only mrkdwn in the message)."""
    return {"type": "section", "text": {"type": "mrkdwn", "text": f"*{label}*"}}


def _when(d: Digest) -> str:
    if d.first_seen and d.last_seen and d.first_seen != d.last_seen:
        return f"{d.first_seen} to {d.last_seen}"
    return d.first_seen or d.last_seen or "unknown"


TYPE = chat_type("slack", lambda settings: settings.slack_url, slack_payload)
