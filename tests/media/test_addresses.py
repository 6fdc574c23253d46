"""The public-address check: every IANA special-purpose block refused, IPv4 carried in IPv6 judged as IPv4.

Pure address arithmetic: nothing here connects anywhere.
"""

from __future__ import annotations

import ipaddress

import pytest

from app.media.addresses import embedded_ipv4, is_public

# One address inside each block of the IANA IPv4 and IPv6 special-purpose registries.
SPECIAL = [
    "0.1.2.3",
    "10.0.0.1",
    "100.64.0.1",
    "127.0.0.1",
    "127.255.255.254",
    "169.254.169.254",
    "172.16.0.1",
    "192.0.0.8",
    "192.0.0.9",
    "192.0.0.170",
    "192.0.0.192",  # Python 3.11's is_global calls this one public
    "192.0.2.1",
    "192.31.196.1",
    "192.52.193.1",
    "192.88.99.1",
    "192.168.1.1",
    "192.175.48.1",
    "198.18.0.1",
    "198.19.255.1",
    "198.51.100.1",
    "203.0.113.1",
    "240.0.0.1",
    "255.255.255.255",
    "224.0.0.1",
    "::1",
    "::",
    "100::1",
    "100:0:0:1::1",
    "2001:1::1",
    "2001:2::1",
    "2001:3::1",
    "2001:4:112::1",
    "2001:10::1",
    "2001:20::1",
    "2001:30::1",
    "2001:db8::1",
    "2620:4f:8000::1",
    "3fff::1",
    "5f00::1",
    "fc00::1",
    "fd00:ec2::254",
    "fe80::1",
    "fec0::1",
    "ff02::1",
    "64:ff9b:1::808:808",  # local-use translation: refused even with a public IPv4 inside
]


@pytest.mark.parametrize("address", SPECIAL)
def test_every_special_purpose_block_is_refused(address: str) -> None:
    assert is_public(ipaddress.ip_address(address)) is False


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "2a00:1450:4001::200e"])
def test_public_unicast_is_allowed(address: str) -> None:
    assert is_public(ipaddress.ip_address(address)) is True


# Loopback 127.0.0.1 carried in every IPv6 form that carries an IPv4 address.
LOOPBACK_INSIDE = {
    "::ffff:127.0.0.1": "IPv4-mapped",
    "::127.0.0.1": "IPv4-compatible",
    "64:ff9b::7f00:1": "NAT64 well-known prefix",
    "64:ff9b:1:7f00:0:100::": "NAT64 local-use /48 (RFC 6052 layout)",
    "2002:7f00:1::": "6to4",
    "2001:0:4136:e378:8000:63bf:80ff:fffe": "Teredo (client 127.0.0.1)",
    "2001:0:7f00:1:8000:63bf:f7f7:f7f7": "Teredo (server 127.0.0.1)",
}


@pytest.mark.parametrize("address", sorted(LOOPBACK_INSIDE))
def test_an_embedded_loopback_is_found_and_refused(address: str) -> None:
    parsed = ipaddress.IPv6Address(address)
    assert ipaddress.IPv4Address("127.0.0.1") in embedded_ipv4(parsed)
    assert is_public(parsed) is False


@pytest.mark.parametrize("address", ["::ffff:8.8.8.8", "::8.8.8.8", "64:ff9b::808:808", "2002:808:808::1"])
def test_translated_forms_of_a_public_ipv4_follow_it(address: str) -> None:
    assert is_public(ipaddress.IPv6Address(address)) is True


def test_a_plain_ipv6_address_carries_nothing() -> None:
    assert embedded_ipv4(ipaddress.IPv6Address("2606:4700:4700::1111")) == []
    assert embedded_ipv4(ipaddress.IPv6Address("::1")) == []


def test_a_scoped_address_is_refused() -> None:
    assert is_public(ipaddress.IPv6Address("2606:4700:4700::1111%eth0")) is False
