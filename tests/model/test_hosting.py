"""Which addresses belong to providers that rent servers (`model.hosting`)."""

from __future__ import annotations

import ipaddress
import itertools
import re

import pytest

from detectors.model.hosting import _PROVIDERS, hosting_provider, parse_ranges


@pytest.mark.parametrize(
    ("ip", "provider"),
    [
        ("167.99.158.167", "DigitalOcean"),
        ("149.28.102.168", "Vultr"),
        ("135.181.2.223", "Hetzner"),
        ("51.195.171.248", "OVH"),
        ("172.105.3.4", "Linode"),
        ("3.120.8.115", "AWS"),
        ("35.190.0.1", "Google Cloud"),
        ("81.134.202.17", None),  # a British office's ISP
        ("20.105.35.156", None),  # Azure: where pipelines and automation run
        ("52.149.1.1", None),  # Azure too, between two AWS blocks
        ("2001:db8::1", None),  # IPv6: not listed
        ("not an address", None),
    ],
)
def test_rented_servers_are_told_from_offices_homes_and_azure(ip, provider):
    assert hosting_provider(ip) == provider


def test_the_blocks_are_valid_and_never_overlap():
    """Overlapping blocks would make the lookup (the nearest start below) name the wrong
    provider or none."""
    nets = sorted(
        (ipaddress.ip_network(p) for prefixes in _PROVIDERS.values() for p in prefixes),
        key=lambda n: int(n.network_address),
    )
    for first, second in itertools.pairwise(nets):
        assert not first.overlaps(second), (first, second)
    for net in nets:  # every block's edges are found
        assert hosting_provider(str(net.network_address)) is not None
        assert hosting_provider(str(net.broadcast_address)) is not None


def test_an_operators_own_ranges_are_rented_servers_too():
    """`DETECTOR_HOSTING_RANGES` adds ranges (IPv4 and IPv6) the built-in list lacks, and
    its names win over the built-in list's; without it nothing changes."""
    extra = "Acme VPS=203.0.113.0/24 2001:db8:aa::/48; Own name=167.99.158.0/24"
    assert hosting_provider("203.0.113.70") is None
    assert hosting_provider("203.0.113.70", extra) == "Acme VPS"
    assert hosting_provider("2001:db8:aa::1", extra) == "Acme VPS"
    assert hosting_provider("2001:db8:ab::1", extra) is None
    assert hosting_provider("167.99.158.167", extra) == "Own name"
    assert hosting_provider("167.99.158.167") == "DigitalOcean"
    assert hosting_provider("81.134.202.17", extra) is None


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("203.0.113.0/24", "is not Provider=CIDR"),
        ("Acme=", "is not Provider=CIDR"),
        ("=203.0.113.0/24", "is not Provider=CIDR"),
        ("Acme=203.0.113.0/33", "'203.0.113.0/33' (Acme) is not a network"),
        ("Acme=somewhere", "'somewhere' (Acme) is not a network"),
    ],
)
def test_a_malformed_range_is_a_clear_error(text, problem):
    with pytest.raises(ValueError, match=re.escape(problem)):
        parse_ranges(text)
