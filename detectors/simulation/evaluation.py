"""How well the detections do on a labelled dataset: recall per detection and scenario kind,
and false alerts per 1,000 principal-days by severity.

Alerts are matched to scenarios by event ids: an alert that carries any row of a scenario is
about that scenario; an alert that carries none is a false alert.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from detectors.simulation import ScenarioLabel

SEVERITIES = ("high", "medium", "low")
_RANK = {"low": 1, "medium": 2, "high": 3}


@dataclass(frozen=True, kw_only=True, slots=True)
class ScenarioResult:
    """One labelled attack and the alerts that touched it."""

    label: ScenarioLabel
    alerts: tuple[Mapping[str, Any], ...]

    @property
    def caught_by(self) -> frozenset[str]:
        """Expected detections that raised an alert on the scenario's rows."""
        fired = {alert["detection"] for alert in self.alerts}
        return frozenset(fired & set(self.label.detections))

    @property
    def caught(self) -> bool:
        """Whether any detection the scenario should trigger did."""
        return bool(self.caught_by)


@dataclass(frozen=True, kw_only=True, slots=True)
class Evaluation:
    """The figures by which detection quality is judged."""

    scenarios: tuple[ScenarioResult, ...]
    false_alerts: tuple[Mapping[str, Any], ...]
    """One per burst (its most severe message): updates of an alert are not new alerts."""
    principal_days: int

    def recall(self, detection: str) -> tuple[int, int]:
        """(caught, expected) scenarios for one detection."""
        expected = [s for s in self.scenarios if detection in s.label.detections]
        return sum(1 for s in expected if detection in s.caught_by), len(expected)

    def false_rate(self, severity: str | None = None) -> float:
        """False alerts per 1,000 principal-days, of one severity or all."""
        count = sum(1 for a in self.false_alerts if severity in (None, a["severity"]))
        return 1000 * count / self.principal_days if self.principal_days else 0.0


def evaluate(
    alerts: Iterable[Mapping[str, Any]], labels: Sequence[ScenarioLabel], principal_days: int
) -> Evaluation:
    """Match alerts to labelled scenarios."""
    owner: dict[str, int] = {}
    for index, label in enumerate(labels):
        for event_id in label.event_ids:
            owner[event_id] = index
    touched: list[list[Mapping[str, Any]]] = [[] for _ in labels]
    # The messages of one burst (an alert and its updates) are one alert: it is about every
    # scenario any of them touched, and false only if none touched one.
    bursts: dict[str, list[Mapping[str, Any]]] = {}
    for n, alert in enumerate(alerts):
        burst = (alert.get("burst") or {}).get("id") or alert.get("id") or f"#{n}"
        bursts.setdefault(burst, []).append(alert)
    false: list[Mapping[str, Any]] = []
    for messages in bursts.values():
        hits = {owner[e] for alert in messages for e in alert["eventIds"] if e in owner}
        for index in sorted(hits):
            touched[index].extend(messages)
        if not hits:
            false.append(max(messages, key=lambda a: _RANK[a["severity"]]))
    return Evaluation(
        scenarios=tuple(
            ScenarioResult(label=label, alerts=tuple(found))
            for label, found in zip(labels, touched, strict=True)
        ),
        false_alerts=tuple(false),
        principal_days=principal_days,
    )


def report(result: Evaluation, detections: Sequence[str]) -> str:
    """The evaluation as text an engineer reads top to bottom."""
    lines = [
        f"{len(result.scenarios)} labelled scenarios, {result.principal_days:,} principal-days "
        "after the learning days",
        "",
        f"{'detection':<34} {'caught':>7} {'recall':>7}",
    ]
    for detection in detections:
        caught, expected = result.recall(detection)
        share = f"{caught / expected:.0%}" if expected else "-"
        lines.append(f"{detection:<34} {f'{caught}/{expected}':>7} {share:>7}")
    kinds = Counter(s.label.kind for s in result.scenarios)
    caught_kinds = Counter(s.label.kind for s in result.scenarios if s.caught)
    lines += ["", f"{'scenario kind':<26} {'caught':>7}  alerts (severity score)"]
    for kind in sorted(kinds):
        alerts = [a for s in result.scenarios if s.label.kind == kind for a in s.alerts]
        shown = ", ".join(f"{a['severity']} {a['score']:g}" for a in alerts) or "MISSED"
        lines.append(f"{kind:<26} {f'{caught_kinds[kind]}/{kinds[kind]}':>7}  {shown}")
    by_severity = Counter(a["severity"] for a in result.false_alerts)
    rates = ", ".join(f"{by_severity[s]} {s}" for s in SEVERITIES)
    lines += [
        "",
        f"false alerts: {len(result.false_alerts)} ({rates}); "
        f"{result.false_rate():.2f} per 1,000 principal-days "
        f"(high {result.false_rate('high'):.2f})",
    ]
    for alert in result.false_alerts:
        top = max(alert["reasons"], key=lambda r: r["weight"])["code"] if alert["reasons"] else ""
        lines.append(
            f"  {alert['severity']:<6} {alert['score']:>5g}  {alert['firstSeen'][:16]}  "
            f"{alert['principal']['name']} ({alert['principal']['type']})  "
            f"{alert['detection']}  {top}"
        )
    missed = [s for s in result.scenarios if not s.caught]
    for scenario in missed:
        lines.append(f"  missed {scenario.label.id}: {scenario.label.description}")
    return "\n".join(lines) + "\n"
