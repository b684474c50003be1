"""Where calls come from: offices, homes, gateways, build agents, Azure hosts and attackers.

Prefixes are written with their trailing dot: three octets for a /24, two for a /16.
Benign and attacker prefixes never overlap, so "a new address" is always new.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta


@dataclass(frozen=True, kw_only=True, slots=True)
class Office:
    """An office: its city, country, UTC offset and the NAT pool its staff leave through.

    `utc_offset_minutes` is the offset in summer. With `dst` (`EU_DST` or `US_DST`) the
    office keeps its clocks an hour earlier in UTC outside summer time; without it (the
    default shape's offices) the offset never changes.
    """

    city: str
    country: str
    utc_offset_minutes: int
    prefix: str
    first_host: int
    last_host: int
    dst: str = ""

    def offset_on(self, when: date) -> int:
        """The office's UTC offset in minutes on a date (the day of a change counts as after)."""
        if not self.dst or summer_time(self.dst, when):
            return self.utc_offset_minutes
        return self.utc_offset_minutes - 60


# Daylight saving rules: the EU changes on the last Sundays of March and October, the US on
# the second Sunday of March and the first Sunday of November.
EU_DST = "eu"
US_DST = "us"
DST_BY_COUNTRY = {"GB": EU_DST, "DE": EU_DST, "US": US_DST}


def _sunday(year: int, month: int, nth: int) -> date:
    """The nth Sunday of a month (nth = -1: the last)."""
    if nth < 0:
        last = date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)
        return last - timedelta(days=(last.weekday() + 1) % 7)
    first = date(year, month, 1)
    return first + timedelta(days=(6 - first.weekday()) % 7 + 7 * (nth - 1))


def summer_time(rule: str, when: date) -> bool:
    """Whether a date falls in summer time under a rule (`EU_DST` or `US_DST`)."""
    if rule == EU_DST:
        start, end = _sunday(when.year, 3, -1), _sunday(when.year, 10, -1)
    else:
        start, end = _sunday(when.year, 3, 2), _sunday(when.year, 11, 1)
    return start <= when < end


OFFICES = (
    Office(
        city="London",
        country="GB",
        utc_offset_minutes=60,
        prefix="81.134.202.",
        first_host=17,
        last_host=30,
    ),
    Office(
        city="Berlin",
        country="DE",
        utc_offset_minutes=120,
        prefix="62.156.188.",
        first_host=65,
        last_host=78,
    ),
    Office(
        city="New York",
        country="US",
        utc_offset_minutes=-240,
        prefix="38.122.16.",
        first_host=33,
        last_host=46,
    ),
    Office(
        city="Bengaluru",
        country="IN",
        utc_offset_minutes=330,
        prefix="115.110.71.",
        first_host=97,
        last_host=110,
    ),
)

HOME_ISPS: dict[str, tuple[str, ...]] = {
    "GB": ("86.150.", "92.40.", "82.132.", "31.94."),
    "DE": ("91.64.", "79.197.", "84.161.", "93.231."),
    "US": ("73.158.", "98.211.", "24.60.", "71.172."),
    "IN": ("49.37.", "106.51.", "122.171.", "223.186."),
}
# A secure web gateway's egress: many staff, ever-changing addresses, same few ranges.
CORPORATE_GATEWAY = ("165.225.", "147.161.")
# Hotels and mobile networks on business trips.
TRAVEL: dict[str, tuple[str, ...]] = {
    "FR": ("90.84.", "176.183."),
    "ES": ("88.27.", "83.44."),
    "NL": ("145.131.", "77.160."),
    "US": ("107.77.", "172.58."),
    "SG": ("118.189.",),
    "JP": ("126.77.",),
}
HOSTED_AGENTS: dict[str, tuple[str, ...]] = {
    "azure-devops": ("20.61.", "20.93.", "51.124.", "52.149."),
    "github-actions": ("4.148.", "20.55.", "40.84.", "172.177."),
}
SELF_HOSTED_AGENTS = ("20.67.",)
# Product-teams shape: the agent pool pipelines move to, the Azure datacenter ranges that
# Microsoft-hosted agents come from after a pipeline moves to agents of another region or
# image, and contractors' own networks.
NEW_AGENT_POOL = ("20.82.",)
MOVED_HOSTED_AGENTS: dict[str, tuple[str, ...]] = {
    "azure-devops": ("20.166.", "51.105."),
    "github-actions": ("20.42.", "52.234."),
}
# Microsoft-hosted agents of an Azure DevOps organisation in another geography (agents run
# where the organisation lives): where pipelines moved to a new organisation deploy from.
OTHER_GEOGRAPHY_AGENTS = ("4.207.", "20.123.")
CONTRACTOR_NETWORKS = ("194.9.", "212.58.")
# Residential networks abroad that travellers work from (family, holiday flats).
TRAVEL_RESIDENTIAL: dict[str, tuple[str, ...]] = {
    "PT": ("85.243.",),
    "IT": ("79.27.",),
    "PL": ("83.27.",),
}
# Outbound addresses of the organisation's own Azure hosts (jobs runners, automation).
AZURE_HOSTS = ("20.105.", "51.137.", "20.71.")
CLOUD_SHELL = ("20.126.", "51.144.")
# Attacker infrastructure: rented servers and residential proxies abroad.
CLOUD_PROVIDERS: dict[str, tuple[str, ...]] = {
    "DigitalOcean": ("167.99.", "159.89.", "138.68."),
    "AWS": ("3.120.", "18.159.", "54.93."),
    "Hetzner": ("95.216.", "135.181."),
    "OVH": ("51.195.", "54.38."),
    "Vultr": ("45.77.", "149.28."),
}
RESIDENTIAL_ABROAD: dict[str, tuple[str, ...]] = {
    "BR": ("177.139.", "189.6."),
    "VN": ("113.161.", "14.161."),
    "NG": ("105.112.",),
    "RO": ("86.124.",),
    "ID": ("36.72.",),
}


def address(rng: random.Random, prefix: str) -> str:
    """A host address inside prefix, never .0 or .255."""
    if prefix.count(".") == 3:
        return f"{prefix}{rng.randint(1, 254)}"
    return f"{prefix}{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def office_address(rng: random.Random, office: Office) -> str:
    """An address of the office's NAT pool."""
    return f"{office.prefix}{rng.randint(office.first_host, office.last_host)}"


def benign_prefixes() -> tuple[str, ...]:
    """Every prefix benign activity may use (for checks that attackers' are new)."""
    groups: list[tuple[str, ...]] = [
        tuple(office.prefix for office in OFFICES),
        CORPORATE_GATEWAY,
        SELF_HOSTED_AGENTS,
        NEW_AGENT_POOL,
        *MOVED_HOSTED_AGENTS.values(),
        OTHER_GEOGRAPHY_AGENTS,
        CONTRACTOR_NETWORKS,
        *TRAVEL_RESIDENTIAL.values(),
        AZURE_HOSTS,
        CLOUD_SHELL,
        *HOME_ISPS.values(),
        *TRAVEL.values(),
        *HOSTED_AGENTS.values(),
    ]
    return tuple(prefix for group in groups for prefix in group)


def attacker_prefixes() -> tuple[str, ...]:
    """Every prefix attack scenarios may use."""
    groups = [*CLOUD_PROVIDERS.values(), *RESIDENTIAL_ABROAD.values()]
    return tuple(prefix for group in groups for prefix in group)
