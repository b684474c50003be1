"""Address blocks of providers that rent servers by the hour: where stolen identities are used.

People work from offices, homes, hotels and phones; pipelines from their CI's agents.
A person's identity acting from a rented server (a VPS at DigitalOcean, Vultr, Hetzner,
OVH, Linode, Contabo, Scaleway, or a virtual machine at AWS or Google Cloud) is one of the
clearest signs of a stolen token or password. Microsoft's own ranges are not listed: Azure
DevOps and GitHub Actions agents, Cloud Shell and the organisation's automation leave from
them.

The list is a best effort from the providers' published and registered allocations, the
large blocks only; it needs no network access and never changes a verdict alone: it makes
a *new* address block weigh more for a person (`NEW_NETWORK`). A provider's block that the
organisation's people do use (a VPN's exit, a cloud desktop) becomes their peers' block and
weighs less again, as any shared block does.
"""

from __future__ import annotations

import bisect
import ipaddress
from functools import lru_cache

_PROVIDERS: dict[str, tuple[str, ...]] = {
    "DigitalOcean": (
        "104.131.0.0/16",
        "104.236.0.0/16",
        "107.170.0.0/16",
        "128.199.0.0/16",
        "134.122.0.0/16",
        "134.209.0.0/16",
        "137.184.0.0/16",
        "138.68.0.0/16",
        "138.197.0.0/16",
        "139.59.0.0/16",
        "142.93.0.0/16",
        "143.110.0.0/16",
        "143.198.0.0/16",
        "144.126.192.0/18",
        "146.190.0.0/16",
        "147.182.0.0/16",
        "157.230.0.0/16",
        "157.245.0.0/16",
        "159.65.0.0/16",
        "159.89.0.0/16",
        "159.203.0.0/16",
        "161.35.0.0/16",
        "162.243.0.0/16",
        "164.90.0.0/16",
        "164.92.0.0/16",
        "165.22.0.0/16",
        "165.227.0.0/16",
        "167.71.0.0/16",
        "167.99.0.0/16",
        "167.172.0.0/16",
        "170.64.128.0/17",
        "174.138.0.0/17",
        "178.62.0.0/16",
        "178.128.0.0/16",
        "188.166.0.0/16",
        "188.226.128.0/17",
        "198.199.64.0/18",
        "198.211.96.0/19",
        "206.81.0.0/19",
        "206.189.0.0/16",
        "209.97.128.0/18",
    ),
    "Vultr": (
        "45.32.0.0/16",
        "45.63.0.0/17",
        "45.76.0.0/15",
        "64.176.0.0/17",
        "66.42.32.0/19",
        "70.34.192.0/18",
        "78.141.192.0/18",
        "95.179.128.0/17",
        "104.156.224.0/19",
        "104.207.128.0/19",
        "104.238.128.0/18",
        "108.61.0.0/16",
        "136.244.64.0/18",
        "139.180.128.0/17",
        "140.82.0.0/18",
        "141.164.32.0/19",
        "144.202.0.0/17",
        "149.28.0.0/16",
        "155.138.128.0/17",
        "158.247.192.0/18",
        "173.199.64.0/18",
        "199.247.0.0/19",
        "207.148.0.0/17",
        "208.167.224.0/19",
        "209.250.224.0/19",
        "216.128.128.0/17",
        "217.69.0.0/20",
    ),
    "Linode": (
        "45.33.0.0/17",
        "45.56.64.0/18",
        "45.79.0.0/16",
        "50.116.0.0/18",
        "66.175.208.0/20",
        "69.164.192.0/19",
        "72.14.176.0/20",
        "74.207.224.0/19",
        "96.126.96.0/19",
        "97.107.128.0/20",
        "139.144.0.0/16",
        "139.162.0.0/16",
        "143.42.0.0/16",
        "170.187.128.0/17",
        "172.104.0.0/15",
        "172.232.0.0/13",
        "173.230.128.0/19",
        "173.255.192.0/18",
        "178.79.128.0/18",
        "192.155.80.0/20",
        "198.58.96.0/19",
        "212.71.232.0/21",
    ),
    "Hetzner": (
        "5.9.0.0/16",
        "23.88.0.0/17",
        "46.4.0.0/16",
        "49.12.0.0/15",
        "65.21.0.0/16",
        "65.108.0.0/15",
        "78.46.0.0/15",
        "88.99.0.0/16",
        "88.198.0.0/16",
        "91.107.128.0/17",
        "94.130.0.0/16",
        "95.216.0.0/15",
        "116.202.0.0/15",
        "128.140.0.0/17",
        "135.181.0.0/16",
        "136.243.0.0/16",
        "138.201.0.0/16",
        "142.132.128.0/17",
        "144.76.0.0/16",
        "148.251.0.0/16",
        "157.90.0.0/16",
        "159.69.0.0/16",
        "162.55.0.0/16",
        "167.233.0.0/16",
        "167.235.0.0/16",
        "168.119.0.0/16",
        "176.9.0.0/16",
        "178.63.0.0/16",
        "188.40.0.0/16",
        "195.201.0.0/16",
        "213.133.96.0/19",
        "213.239.192.0/18",
    ),
    "OVH": (
        "5.39.0.0/17",
        "5.135.0.0/16",
        "5.196.0.0/16",
        "37.59.0.0/16",
        "37.187.0.0/16",
        "46.105.0.0/16",
        "51.38.0.0/16",
        "51.68.0.0/16",
        "51.75.0.0/16",
        "51.77.0.0/16",
        "51.79.0.0/16",
        "51.81.0.0/16",
        "51.83.0.0/16",
        "51.89.0.0/16",
        "51.91.0.0/16",
        "51.161.0.0/16",
        "51.178.0.0/16",
        "51.195.0.0/16",
        "51.210.0.0/16",
        "51.222.0.0/16",
        "54.36.0.0/14",
        "87.98.128.0/17",
        "91.121.0.0/16",
        "92.222.0.0/16",
        "94.23.0.0/16",
        "137.74.0.0/16",
        "141.94.0.0/15",
        "145.239.0.0/16",
        "147.135.0.0/16",
        "149.56.0.0/16",
        "151.80.0.0/16",
        "158.69.0.0/16",
        "164.132.0.0/16",
        "167.114.0.0/16",
        "176.31.0.0/16",
        "178.32.0.0/15",
        "188.165.0.0/16",
        "192.95.0.0/18",
        "198.27.64.0/18",
        "198.50.128.0/17",
    ),
    "Contabo": (
        "5.189.128.0/17",
        "38.242.128.0/17",
        "62.171.128.0/17",
        "75.119.128.0/17",
        "144.91.64.0/18",
        "161.97.64.0/18",
        "173.212.192.0/18",
        "173.249.0.0/18",
        "178.18.240.0/20",
        "185.216.72.0/22",
        "207.180.192.0/18",
        "209.126.0.0/19",
    ),
    "Scaleway": (
        "51.15.0.0/16",
        "51.158.0.0/15",
        "62.210.0.0/16",
        "163.172.0.0/16",
        "212.47.224.0/19",
    ),
    "AWS": (
        "3.0.0.0/9",
        "3.128.0.0/9",
        "18.128.0.0/9",
        "35.152.0.0/13",
        "44.192.0.0/10",
        "52.0.0.0/11",
        "52.192.0.0/11",
        "54.64.0.0/11",
        "54.144.0.0/12",
        "54.160.0.0/11",
        "54.192.0.0/10",
    ),
    "Google Cloud": ("34.64.0.0/10", "35.184.0.0/13", "35.192.0.0/12", "35.208.0.0/12"),
}


def _table() -> tuple[list[int], list[tuple[int, str]]]:
    """Every block as (first address, (last address, provider)), sorted, IPv4 only."""
    blocks = sorted(
        (int(net.network_address), int(net.broadcast_address), provider)
        for provider, prefixes in _PROVIDERS.items()
        for net in (ipaddress.ip_network(prefix) for prefix in prefixes)
    )
    return [first for first, _, _ in blocks], [(last, name) for _, last, name in blocks]


_STARTS, _ENDS = _table()


def parse_ranges(
    text: str,
) -> tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...]:
    """An operator's own rented ranges (`DETECTOR_HOSTING_RANGES`): `Provider=CIDR CIDR;
    Provider=CIDR`, IPv4 or IPv6, e.g. `Hetzner=5.75.128.0/17; Acme VPS=203.0.113.0/24
    2001:db8::/32`. ValueError names what is wrong."""
    ranges = []
    for part in text.split(";"):
        if not part.strip():
            continue
        name, sep, prefixes = part.partition("=")
        name = name.strip()
        if not sep or not name or not prefixes.split():
            raise ValueError(f"{part.strip()!r} is not Provider=CIDR [CIDR ...]")
        for prefix in prefixes.split():
            try:
                ranges.append((ipaddress.ip_network(prefix, strict=False), name))
            except ValueError as err:
                raise ValueError(f"{prefix!r} ({name}) is not a network: {err}") from None
    return tuple(ranges)


@lru_cache(maxsize=8)
def _extra(text: str) -> tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...]:
    return parse_ranges(text)


@lru_cache(maxsize=65_536)
def hosting_provider(ip: str, extra: str = "") -> str | None:
    """The provider renting out the server this address belongs to, or None (an office,
    a home, a phone, Azure, or an address this list does not know). `extra`: the
    operator's own ranges (see `parse_ranges`), looked up first."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    if extra:
        for net, name in _extra(extra):
            if address.version == net.version and address in net:
                return name
    if address.version != 4:
        return None
    value = int(address)
    index = bisect.bisect_right(_STARTS, value) - 1
    if index < 0:
        return None
    last, provider = _ENDS[index]
    return provider if value <= last else None
