"""Allow rules: what operators declared known and benign, applied where alerts leave the engine.

A rule names any combination of principal, client application, address range, site
pattern, detection and reason code; all that it names must hold for an alert to be
allowed. It carries who added it and why, when, and an expiry. Rules that would match
everything are refused when added and ignored (and reported) when found in a store.

The same `AllowGate` screens alerts in `replay` (before the alert sink) and in the timer
(before an alert is kept for the queue): an allowed alert is counted against the rule
that matched it and logged with the rule's id and the alert's id, never dropped silently.
Nothing here reads a clock or touches storage.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time, timedelta
from fnmatch import fnmatchcase
from typing import Any

from detectors.model.errors import DetectorError
from detectors.settings.app import DEFAULT_MAX_DAYS, MAX_DAYS_SETTING

log = logging.getLogger(__name__)

MIN_PREFIX = {4: 8, 6: 16}
"""Shortest CIDR prefix a rule may name: a wider range is most of the internet."""
MIN_PATTERN_LITERALS = 3
"""A site pattern needs this many characters that are not wildcards."""
RULE_FORMAT = 1

_WILDCARDS = re.compile(r"\[[^\]]*\]|[*?]")
_RULE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class RuleRejected(DetectorError):
    """An allow rule is malformed, or so broad it would allow everything."""


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, kw_only=True, slots=True)
class AllowRule:
    """One operator's declaration that some activity is known and benign, until it expires."""

    id: str
    principal: str | None = None
    """A principal id or display name (compared without regard to case)."""
    app_id: str | None = None
    """The client application id (`principal.appId` in the alert)."""
    cidr: str | None = None
    """Every source address of the alert must be in this range."""
    site: str | None = None
    """A pattern (`*`, `?`, `[...]`) every site of the alert must match: name, `site/slot`
    or the resource id."""
    detection: str | None = None
    reason_code: str | None = None
    """The alert must list this reason."""
    added_by: str
    reason: str
    added_at: datetime
    expires: datetime
    hits: int = 0
    last_hit: datetime | None = None

    def active(self, now: datetime) -> bool:
        """Whether the rule still matches at `now`."""
        return now < self.expires

    def matches(self, alert: Mapping[str, Any]) -> bool:
        """Whether the alert is what this rule allows (expiry aside)."""
        principal = alert.get("principal") or {}
        # The id only, never the display name: a name is whatever its owner (a guest, a user
        # who may edit a profile) chose, and could be chosen to equal an allowed principal.
        if (
            self.principal is not None
            and self.principal.casefold() != str(principal.get("id") or "").casefold()
        ):
            return False
        if (
            self.app_id is not None
            and self.app_id.casefold() != str(principal.get("appId") or "").casefold()
        ):
            return False
        if self.detection is not None and alert.get("detection") != self.detection:
            return False
        if self.reason_code is not None and self.reason_code not in {
            r.get("code") for r in alert.get("reasons") or ()
        }:
            return False
        if self.cidr is not None and not _all_in(alert.get("sourceIps") or (), self.cidr):
            return False
        return self.site is None or _all_sites_match(alert.get("resources") or (), self.site)

    def properties(self) -> dict[str, Any]:
        """The rule as plain named properties (a Table Storage entity's, a JSON object's)."""
        return {
            "FormatVersion": RULE_FORMAT,
            "RuleId": self.id,
            "Principal": self.principal or "",
            "AppId": self.app_id or "",
            "Cidr": self.cidr or "",
            "Site": self.site or "",
            "Detection": self.detection or "",
            "ReasonCode": self.reason_code or "",
            "AddedBy": self.added_by,
            "Reason": self.reason,
            "AddedAt": self.added_at.isoformat(),
            "Expires": self.expires.isoformat(),
            "Hits": self.hits,
            "LastHit": self.last_hit.isoformat() if self.last_hit else "",
        }

    @classmethod
    def from_properties(cls, props: Mapping[str, Any]) -> AllowRule:
        """A rule from stored properties; RuleRejected names what cannot be read."""

        def text(name: str) -> str | None:
            value = props.get(name)
            return str(value).strip() or None if value is not None else None

        rule_id = text("RuleId") or "?"
        try:
            return cls(
                id=rule_id,
                principal=text("Principal"),
                app_id=text("AppId"),
                cidr=text("Cidr"),
                site=text("Site"),
                detection=text("Detection"),
                reason_code=text("ReasonCode"),
                added_by=text("AddedBy") or "",
                reason=text("Reason") or "",
                added_at=_moment(text("AddedAt") or ""),
                expires=_moment(text("Expires") or ""),
                hits=int(props.get("Hits") or 0),
                last_hit=_moment(last) if (last := text("LastHit")) else None,
            )
        except (TypeError, ValueError) as err:
            raise RuleRejected(f"allow rule {rule_id}: {err}") from err


def _moment(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _all_in(addresses: Iterable[str], cidr: str) -> bool:
    """Whether there is at least one address and every one lies in the range."""
    network = ipaddress.ip_network(cidr, strict=False)
    found = False
    for text in addresses:
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            return False
        if address.version != network.version or address not in network:
            return False
        found = True
    return found


def _all_sites_match(resources: Iterable[Mapping[str, Any]], pattern: str) -> bool:
    """Whether there is at least one site and every one matches the pattern."""
    wanted = pattern.casefold()
    found = False
    for resource in resources:
        site = str(resource.get("site") or "")
        slot = resource.get("slot")
        names = [site, str(resource.get("id") or "")]
        if slot:
            names.append(f"{site}/{slot}")
        if not any(fnmatchcase(name.casefold(), wanted) for name in names):
            return False
        found = True
    return found


def parse_cidr(text: str) -> str:
    """An address or range as the range a rule keeps; RuleRejected if malformed or too wide."""
    try:
        network = ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise RuleRejected(
            f"--cidr {text!r} is not an address or range; write it like 203.0.113.0/24 or "
            "2001:db8::/48"
        ) from None
    shortest = MIN_PREFIX[network.version]
    if network.prefixlen < shortest:
        raise RuleRejected(
            f"--cidr {text!r} covers too much of the internet to allow; name a range of "
            f"/{shortest} or narrower"
        )
    return str(network)


def last_day(expires: datetime) -> str:
    """The expiry as an operator gave it: the last day a rule holds (`2027-01-31` for a rule
    that ends at 2027-02-01 00:00 UTC), or the moment when it ends within a day."""
    expires = expires.astimezone(UTC)
    if expires.time() == time():
        return f"{expires.date() - timedelta(days=1):%Y-%m-%d}"
    return f"{expires:%Y-%m-%d %H:%M} UTC"


def parse_expiry(text: str) -> datetime:
    """`YYYY-MM-DD` (the rule holds through that day, UTC) or an ISO 8601 time."""
    try:
        if len(text.strip()) == 10:
            day = datetime.fromisoformat(text.strip()).date()
            return datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC)
        return _moment(text.strip())
    except ValueError:
        raise RuleRejected(
            f"--expires {text!r} is not a date; write it like 2027-01-31 (the rule holds "
            "through that day, UTC)"
        ) from None


def problems(rule: AllowRule, *, max_days: int | None = None) -> list[str]:
    """What makes a rule unusable: too broad to allow anything safely, unaccounted for, or
    (with `max_days`) meant to last longer than rules may, as a rule written into the table
    by hand could be."""
    found: list[str] = []
    if not _RULE_ID.match(rule.id):
        found.append(f"rule id {rule.id!r} must be 1-64 letters, digits, '.', '_' or '-'")
    if not (rule.principal or rule.app_id or rule.cidr or rule.site):
        found.append(
            "it would match everyone: name at least one of --principal, --app-id, --cidr or --site"
        )
    if rule.site is not None:
        literals = _WILDCARDS.sub("", rule.site)
        if len(literals) < MIN_PATTERN_LITERALS:
            found.append(
                f"site pattern {rule.site!r} matches (nearly) every site; name the site, or a "
                f"pattern with at least {MIN_PATTERN_LITERALS} fixed characters like "
                "'contoso-ci-*'"
            )
    if rule.cidr is not None:
        try:
            parse_cidr(rule.cidr)
        except RuleRejected as err:
            found.append(str(err).removeprefix("--cidr "))
    if not rule.reason.strip():
        found.append("a reason is required: say why this activity is benign (--reason)")
    if not rule.added_by.strip():
        found.append("who added the rule is required (--added-by)")
    if rule.expires <= rule.added_at:
        found.append("it expires before it was added")
    # `new_rule` lets a rule hold through its last day: up to one day more than max_days.
    elif max_days is not None and rule.expires - rule.added_at > timedelta(days=max_days + 1):
        lifetime = (rule.expires - rule.added_at).days
        found.append(
            f"it would hold {lifetime} days, more than {MAX_DAYS_SETTING} ({max_days}): "
            "remove it and add one that expires sooner, renewing it when it does"
        )
    return found


def new_rule(
    *,
    rule_id: str,
    principal: str | None,
    app_id: str | None,
    cidr: str | None,
    site: str | None,
    detection: str | None,
    reason_code: str | None,
    added_by: str,
    reason: str,
    expires: str,
    now: datetime,
    max_days: int = DEFAULT_MAX_DAYS,
    detections: Sequence[str] = (),
    reason_codes: Sequence[str] = (),
) -> AllowRule:
    """A validated rule from an operator's input; RuleRejected says what to change."""
    until = parse_expiry(expires)
    if until <= now:
        raise RuleRejected(
            f"--expires {expires} is in the past; give a date after today, at most "
            f"{max_days} days ahead"
        )
    if until > now + timedelta(days=max_days):
        raise RuleRejected(
            f"--expires {expires} is more than {max_days} days ahead "
            "(DETECTOR_ALLOW_MAX_DAYS); give an earlier date and renew the rule when it expires"
        )
    if detection is not None and detections and detection not in detections:
        raise RuleRejected(f"--detection {detection!r} is not one of: {', '.join(detections)}")
    if reason_code is not None and reason_codes and reason_code not in reason_codes:
        raise RuleRejected(
            f"--reason-code {reason_code!r} is not a reason code (see docs/reasons.md)"
        )
    rule = AllowRule(
        id=rule_id,
        principal=(principal or "").strip() or None,
        app_id=(app_id or "").strip() or None,
        cidr=parse_cidr(cidr) if cidr else None,
        site=(site or "").strip() or None,
        detection=detection,
        reason_code=reason_code,
        added_by=added_by,
        reason=reason.strip(),
        added_at=now,
        expires=until,
    )
    found = problems(rule)
    if found:
        raise RuleRejected("; ".join(found))
    return rule


@dataclass(frozen=True, kw_only=True, slots=True)
class Allowed:
    """An alert a rule allowed: enough to name it to the operator."""

    rule_id: str
    alert_id: str
    detection: str
    severity: str
    principal: str
    last_seen: datetime | None

    @classmethod
    def of(cls, rule_id: str, alert: Mapping[str, Any]) -> Allowed:
        """The allowed alert's names and activity time."""
        principal = alert.get("principal") or {}
        try:
            last_seen = _moment(str(alert.get("lastSeen") or ""))
        except ValueError:
            last_seen = None
        return cls(
            rule_id=rule_id,
            alert_id=str(alert.get("id")),
            detection=str(alert.get("detection") or ""),
            severity=str(alert.get("severity") or ""),
            principal=str(principal.get("name") or principal.get("id") or ""),
            last_seen=last_seen,
        )


@dataclass(kw_only=True, slots=True)
class AllowGate:
    """Screens alerts against the rules active at `now`, counting what each rule allowed."""

    rules: Sequence[AllowRule]
    now: datetime
    max_days: int | None = DEFAULT_MAX_DAYS
    """Rules meant to hold longer than this after they were added are invalid (None: any)."""
    hits: Counter[str] = field(default_factory=Counter)
    """Alerts allowed, by rule id."""
    allowed: list[Allowed] = field(default_factory=list)
    """Every allowed alert, in order, with the rule that allowed it."""
    expired: list[str] = field(init=False)
    """Rules that no longer match: their expiry has passed."""
    invalid: list[str] = field(init=False)
    """Rules found in the store that are too broad or incomplete: never applied."""
    _active: list[AllowRule] = field(init=False)

    def __post_init__(self) -> None:
        ordered = sorted(self.rules, key=lambda r: r.id)
        found = {r.id: problems(r, max_days=self.max_days) for r in ordered}
        self.invalid = [f"{r.id}: {'; '.join(found[r.id])}" for r in ordered if found[r.id]]
        usable = [r for r in ordered if not found[r.id]]
        self.expired = [r.id for r in usable if not r.active(self.now)]
        self._active = [r for r in usable if r.active(self.now)]
        for text in self.invalid:
            log.warning("allow rule ignored: %s", text)
        if self.expired:
            log.info("expired allow rules (no longer applied): %s", ", ".join(self.expired))

    def admit(self, alert: Mapping[str, Any]) -> bool:
        """True to send the alert on; False when a rule allows it (counted and logged)."""
        for rule in self._active:
            if rule.matches(alert):
                self.hits[rule.id] += 1
                self.allowed.append(Allowed.of(rule.id, alert))
                log.info(
                    "alert %s (%s, %s) allowed by rule %s",
                    alert.get("id"),
                    alert.get("detection"),
                    (alert.get("principal") or {}).get("id"),
                    rule.id,
                )
                return False
        return True

    def hit_times(self) -> dict[str, datetime]:
        """Each rule's last hit: the activity time (`lastSeen`) of the latest alert it
        allowed, or `now` for an alert that gives none."""
        times: dict[str, datetime] = {}
        for hit in self.allowed:
            when = hit.last_seen or self.now
            times[hit.rule_id] = max(times.get(hit.rule_id, when), when)
        return times

    def summary(self) -> str:
        """One line: what was allowed by which rule, and which rules are expired or invalid."""
        parts = [f"{sum(self.hits.values())} alert(s) allowed by rules"]
        if self.hits:
            parts[0] += " (" + ", ".join(f"{k}: {n}" for k, n in sorted(self.hits.items())) + ")"
        if self.expired:
            parts.append(f"expired rules: {', '.join(self.expired)}")
        if self.invalid:
            ids = ", ".join(text.split(":", 1)[0] for text in self.invalid)
            parts.append(f"ignored invalid rules: {ids}")
        return "; ".join(parts)


def with_hits(rule: AllowRule, hits: int, last_hit: datetime) -> AllowRule:
    """The rule after `hits` more alerts were allowed by it, the last at `last_hit`."""
    latest = last_hit if rule.last_hit is None else max(rule.last_hit, last_hit)
    return replace(rule, hits=rule.hits + hits, last_hit=latest)
