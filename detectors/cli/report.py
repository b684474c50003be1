"""The replay report: one self-contained HTML page an analyst can open from a file.

A triage index first (severity, who, what, where, when; the most severe first), then each
alert with its reasons, who did what, what to check next, the principal's activity per day
beside the alert's window, and the follow-up KQL ready to copy; last the run's summary.

The page reaches nothing outside itself: styles, the one script (copy buttons) and the
charts (SVG) are inline, and its Content-Security-Policy allows no source but the script's
own hash. Every text from the logs (names of principals, sites, jobs and files, reason
messages that quote them) is attacker-controlled, so every text and attribute is escaped
here, in one place (`_t`), and no link is built from it: the only links are the index's
anchors, made of alert ids that are checked to be hex.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from detectors.model.days import day_number, day_text
from detectors.runs.replay import ReplayStats

_RANK = {"high": 3, "medium": 2, "low": 1}
_HEX = re.compile(r"^[0-9a-f]{1,64}$")

_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1b1f24;
background:#f6f7f9}
main{max-width:1100px;margin:0 auto;padding:16px 24px 48px}
h1{font-size:22px;margin:8px 0 4px}h2{font-size:18px;margin:28px 0 8px}
h3{font-size:16px;margin:0 0 6px}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #e3e6ea;vertical-align:top}
th{background:#eef0f3;font-weight:600}
.sev{display:inline-block;min-width:58px;text-align:center;border-radius:4px;color:#fff;
font-weight:600;padding:0 6px}
.sev-high{background:#b42318}.sev-medium{background:#c4620a}.sev-low{background:#4b5563}
section.alert{background:#fff;border:1px solid #dde1e6;border-radius:6px;padding:12px 16px;
margin:16px 0}
.meta{color:#57606a}.grid{display:grid;grid-template-columns:1fr 1fr;gap:12px}
pre{background:#0d1117;color:#e6edf3;padding:8px 10px;border-radius:4px;overflow:auto;
white-space:pre-wrap;word-break:break-word;margin:4px 0}
button.copy{font-size:12px;padding:2px 8px;cursor:pointer}
.weight{color:#57606a;font-variant-numeric:tabular-nums}
ul{margin:4px 0;padding-left:20px}
svg{background:#fafbfc;border:1px solid #e3e6ea}
.other{color:#b42318;font-weight:600}
"""

_SCRIPT = """
document.addEventListener('click', function (event) {
  var button = event.target.closest('button.copy');
  if (!button) { return; }
  var source = document.getElementById(button.getAttribute('data-for'));
  if (!source) { return; }
  var text = source.textContent;
  var done = function () { button.textContent = 'Copied'; };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done);
  } else {
    var range = document.createRange();
    range.selectNodeContents(source);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    try { document.execCommand('copy'); done(); } catch (e) { button.textContent = 'Select'; }
  }
});
"""


def _t(value: Any) -> str:
    """Any value as HTML text (or an attribute value): everything escaped."""
    return html.escape("" if value is None else str(value), quote=True)


def anchor(alert: Mapping[str, Any]) -> str:
    """The index's anchor of an alert: its id, which must be hex (an alert id is)."""
    alert_id = str(alert.get("id", ""))
    if not _HEX.match(alert_id):
        alert_id = hashlib.sha256(alert_id.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"alert-{alert_id}"


def _site(resource: Mapping[str, Any]) -> str:
    return str(resource.get("site", "")) + (f"/{resource['slot']}" if resource.get("slot") else "")


def _order(alert: Mapping[str, Any]) -> tuple[int, float, str, str]:
    return (
        -_RANK.get(str(alert.get("severity")), 0),
        -float(alert.get("score") or 0),
        str(alert.get("firstSeen", "")),
        str(alert.get("id", "")),
    )


def report_html(
    alerts: Sequence[Mapping[str, Any]],
    stats: ReplayStats | None,
    *,
    generated: datetime,
    source: str,
) -> str:
    """The whole page; `stats` (a replay's) adds each principal's history and the summary."""
    ordered = sorted(alerts, key=_order)
    script_hash = base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode()
    csp = (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
        f"script-src 'sha256-{script_hash}'; base-uri 'none'; form-action 'none'"
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_t(csp)}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="referrer" content="no-referrer">',
        f"<title>Replay report: {len(ordered)} alert(s)</title>",
        f"<style>{_STYLE}</style></head><body><main>",
        "<h1>App Service detector: replay report</h1>",
        f'<p class="meta">{len(ordered)} alert(s) from {_t(source)}; '
        f"written {generated:%Y-%m-%d %H:%M} UTC. Names, sites and messages come from the "
        "logs and are shown as text.</p>",
        _index(ordered),
        *[_alert(alert, stats) for alert in ordered],
        _summary(stats, alerts) if stats is not None else "",
        f"</main><script>{_SCRIPT}</script></body></html>",
    ]
    return "\n".join(parts)


def _index(alerts: Sequence[Mapping[str, Any]]) -> str:
    rows = []
    for alert in alerts:
        principal = alert.get("principal") or {}
        resources = alert.get("resources") or [alert.get("resource") or {}]
        sites = ", ".join(_site(r) for r in resources[:3])
        if len(resources) > 3:
            sites += f" and {len(resources) - 3} more"
        reasons = alert.get("reasons") or []
        top = max(reasons, key=lambda r: r.get("weight", 0)).get("code", "") if reasons else ""
        burst = alert.get("burst") or {}
        update = f" (update {burst.get('sequence')})" if burst.get("sequence", 1) > 1 else ""
        rows.append(
            "<tr>"
            f"<td>{_severity(alert)}</td>"
            f"<td>{_t(alert.get('score'))} / {_t(alert.get('riskScore', ''))}</td>"
            f"<td>{_t(principal.get('name'))} <span class=meta>({_t(principal.get('type'))})"
            "</span></td>"
            f'<td><a href="#{anchor(alert)}">{_t(alert.get("title"))}</a>{_t(update)}'
            f"<br><span class=meta>{_t(top)}</span></td>"
            f"<td>{_t(sites)}</td>"
            f"<td>{_t(alert.get('firstSeen'))}</td>"
            "</tr>"
        )
    return (
        '<h2 id="index">Triage</h2><table class="index"><thead><tr><th>Severity</th>'
        "<th>Score / risk</th><th>Who</th><th>What</th><th>Where</th><th>When (UTC)</th>"
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _severity(alert: Mapping[str, Any]) -> str:
    severity = str(alert.get("severity") or "none")
    css = severity if severity in _RANK else "low"
    return f'<span class="sev sev-{css}">{_t(severity)}</span>'


def _alert(alert: Mapping[str, Any], stats: ReplayStats | None) -> str:
    name = anchor(alert)
    principal = alert.get("principal") or {}
    burst = alert.get("burst") or {}
    update = ""
    if burst.get("sequence", 1) > 1:
        update = (
            f"<p class=meta>Update {_t(burst.get('sequence'))} of alert {_t(burst.get('id'))}, "
            f"active since {_t(burst.get('firstSeen'))}: the reasons weigh the whole burst, "
            "the activity below is what is new; the burst's whole activity is listed with "
            "its actors.</p>"
        )
    where = "".join(
        f"<li>{_t(_site(r))} <span class=meta>subscription {_t(r.get('subscriptionId'))}, "
        f"group {_t(r.get('resourceGroup'))}</span></li>"
        for r in alert.get("resources") or [alert.get("resource") or {}]
    )
    reasons = "".join(
        f"<li>{_t(r.get('message'))} <span class=weight>+{_t(r.get('weight'))} "
        f"({_t(r.get('code'))})</span></li>"
        for r in alert.get("reasons") or []
    )
    investigation = alert.get("investigation") or {}
    steps = investigation.get("nextSteps") or [
        {"code": "", "step": s} for s in (investigation.get("steps") or [])[:1]
    ]
    nexts = "".join(f"<li><b>{_t(s.get('code'))}</b> {_t(s.get('step'))}</li>" for s in steps)
    operations = "".join(
        f"<li>{_t(o.get('name'))} x{_t(o.get('count'))} {_t(o.get('status'))}</li>"
        for o in alert.get("operations") or []
    )
    actors = _actors(alert.get("actors") or [], "Who did what in this alert")
    if burst.get("actors"):
        actors += _actors(burst["actors"], "The whole burst so far")
    queries = "".join(
        f"<h4>{_t(q.get('title'))} <button class=copy type=button "
        f'data-for="{name}-q{i}">Copy</button></h4>'
        f'<pre id="{name}-q{i}">{_t(q.get("query"))}</pre>'
        for i, q in enumerate(investigation.get("queries") or [])
    )
    timeline = (
        _timeline(alert, stats)
        if stats is not None
        else "<p class=meta>Activity per day: written by <code>replay --report</code>.</p>"
    )
    return (
        f'<section class="alert" id="{name}">'
        f"<h3>{_severity(alert)} {_t(alert.get('title'))} "
        f"<span class=meta>score {_t(alert.get('score'))}, risk {_t(alert.get('riskScore'))}"
        "</span></h3>"
        f"{update}"
        f"<p><b>{_t(principal.get('name'))}</b> <span class=meta>({_t(principal.get('type'))}, "
        f"{_t(principal.get('id'))}; tool {_t(principal.get('tool'))})</span><br>"
        f"{_t(alert.get('firstSeen'))} .. {_t(alert.get('lastSeen'))}</p>"
        f'<div class="grid"><div><b>Where</b><ul>{where}</ul><b>What</b><ul>{operations}</ul>'
        f"</div><div><b>History beside this alert</b>{timeline}{_usual(alert)}</div></div>"
        f"{actors}<b>Why</b><ul>{reasons}</ul><b>Check next</b><ul>{nexts}</ul>"
        f"<b>Follow-up KQL</b>{queries}"
        f'<p class=meta>Alert id {_t(alert.get("id"))}. <a href="#index">Back to the index</a>'
        "</p></section>"
    )


def _actors(actors: Sequence[Mapping[str, Any]], caption: str) -> str:
    rows = "".join(
        "<tr>"
        f"<td{' class=other' if a.get('role') != 'principal' else ''}>{_t(a.get('role'))}</td>"
        f"<td>{_t(a.get('name'))} <span class=meta>({_t(a.get('type'))})</span></td>"
        f"<td>{_t(', '.join(a.get('tools') or []))}</td>"
        f"<td>{_t(', '.join(a.get('sourceIps') or []))}</td>"
        f"<td>{_t(_operations(a))}</td></tr>"
        for a in actors
    )
    return (
        f"<p><b>{_t(caption)}</b></p><table><thead><tr><th>Role</th><th>Actor</th><th>Tools</th>"
        f"<th>Addresses</th><th>Operations</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def _operations(actor: Mapping[str, Any]) -> str:
    return "; ".join(f"{o.get('name')} x{o.get('count')}" for o in actor.get("operations") or [])


def _usual(alert: Mapping[str, Any]) -> str:
    history = alert.get("history") or {}
    if not history.get("known"):
        return "<p class=meta>No history for this principal.</p>"
    return (
        f"<p class=meta>Active {_t(history.get('activeDays'))} day(s) since "
        f"{_t(str(history.get('firstSeen', ''))[:10])}; {_t(history.get('sites'))} site(s); "
        f"tools {_t(', '.join(history.get('tools') or []))}; "
        f"{_t(history.get('networks'))} network(s).</p>"
    )


def _timeline(alert: Mapping[str, Any], stats: ReplayStats) -> str:
    """The principal's actions per day over the input, the alert's days marked (inline SVG)."""
    if stats.first is None or stats.last is None:
        return ""
    principal_id = str((alert.get("principal") or {}).get("id", ""))
    first_day, last_day = day_number(stats.first), day_number(stats.last)
    days = last_day - first_day + 1
    counts = {d: stats.activity.get((principal_id, d), 0) for d in range(first_day, last_day + 1)}
    peak = max(counts.values()) or 1
    width, height, top = 480, 80, 8
    step = width / days
    try:
        start = day_number(datetime.fromisoformat(str(alert["firstSeen"]).replace("Z", "+00:00")))
        burst = alert.get("burst") or {}
        since = str(burst.get("firstSeen") or alert["firstSeen"])
        start = min(start, day_number(datetime.fromisoformat(since.replace("Z", "+00:00"))))
        end = day_number(datetime.fromisoformat(str(alert["lastSeen"]).replace("Z", "+00:00")))
    except (KeyError, ValueError):
        start = end = last_day
    shapes = []
    if stats.learning_until is not None:
        learned = min(max(day_number(stats.learning_until) - first_day, 0), days)
        shapes.append(
            f'<rect x="0" y="0" width="{learned * step:.1f}" height="{height}" fill="#eef0f3">'
            "<title>learning days</title></rect>"
        )
    shapes.append(
        f'<rect class="window" x="{(start - first_day) * step:.1f}" y="0" '
        f'width="{(end - start + 1) * step:.1f}" height="{height}" fill="#fde2e1">'
        f"<title>the alert: {day_text(start)} to {day_text(end)}</title></rect>"
    )
    for day, n in counts.items():
        if not n:
            continue
        bar = (height - top) * n / peak
        shapes.append(
            f'<rect class="day" x="{(day - first_day) * step + 0.5:.1f}" '
            f'y="{height - bar:.1f}" width="{max(step - 1, 1):.1f}" height="{bar:.1f}" '
            f'fill="#3b6fb6"><title>{day_text(day)}: {n} action(s)</title></rect>'
        )
    return (
        f'<svg role="img" width="{width}" height="{height + 16}" '
        f'viewBox="0 0 {width} {height + 16}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>Actions per day of this principal; the alert's days in red</title>"
        f"{''.join(shapes)}"
        f'<text x="0" y="{height + 13}" font-size="11">{day_text(first_day)}</text>'
        f'<text x="{width}" y="{height + 13}" font-size="11" text-anchor="end">'
        f"{day_text(last_day)}</text></svg>"
        f"<p class=meta>Busiest day {peak if any(counts.values()) else 0} action(s); "
        f"grey: learning days; red: the alert's days.</p>"
    )


def _summary(stats: ReplayStats, alerts: Sequence[Mapping[str, Any]]) -> str:
    by: Counter[tuple[str, str]] = Counter(
        (str(a.get("detection")), str(a.get("severity"))) for a in alerts
    )
    alert_rows = "".join(
        f"<tr><td>{_t(detection)}</td><td>{_severity({'severity': severity})}</td><td>{n}</td></tr>"
        for (detection, severity), n in sorted(
            by.items(), key=lambda item: (-_RANK.get(item[0][1], 0), item[0])
        )
    )
    rejected = "".join(
        f"<li>{n:,} {_t(reason)}</li>" for reason, n in stats.rejection_reasons.most_common(20)
    )
    skipped = "".join(f"<li>{n:,} {_t(reason)}</li>" for reason, n in stats.skipped.most_common())
    span = (
        f"{stats.first:%Y-%m-%d %H:%M} to {stats.last:%Y-%m-%d %H:%M} UTC"
        if stats.first and stats.last
        else "no activity"
    )
    learning = f"{stats.learning_until:%Y-%m-%d %H:%M} UTC" if stats.learning_until else "none"
    return (
        '<h2 id="summary">The run</h2><table class="summary"><tbody>'
        f"<tr><th>Rows read</th><td>{stats.rows:,} from {stats.files} file(s)</td></tr>"
        f"<tr><th>Rejected</th><td>{stats.rejected:,}<ul>{rejected}</ul></td></tr>"
        f"<tr><th>Not relevant</th><td><ul>{skipped}</ul></td></tr>"
        f"<tr><th>Observations</th><td>{stats.observations:,} "
        f"({stats.duplicates:,} duplicate rows of one action)</td></tr>"
        f"<tr><th>Principals</th><td>{len(stats.principals):,}</td></tr>"
        f"<tr><th>Activity</th><td>{_t(span)}; learning until {_t(learning)}</td></tr>"
        f"<tr><th>Windows</th><td>{stats.windows:,}</td></tr>"
        f"<tr><th>Alerts</th><td>{len(alerts):,} sent; {stats.suppressed:,} more fell in the "
        "learning days</td></tr></tbody></table>"
        "<h2>Alerts by detection and severity</h2><table><thead><tr><th>Detection</th>"
        f"<th>Severity</th><th>Alerts</th></tr></thead><tbody>{alert_rows}</tbody></table>"
    )
