"""Which IP addresses a media fetch may connect to: public unicast only.

An address is refused when it lies in any block of the IANA special-purpose address registries:

* IANA IPv4 Special-Purpose Address Registry
  (https://www.iana.org/assignments/iana-ipv4-special-registry/), and
* IANA IPv6 Special-Purpose Address Registry
  (https://www.iana.org/assignments/iana-ipv6-special-registry/),

every block, including those the registries mark globally reachable (anycast services, AS112, AMT):
no media is served from them. Multicast, the old IPv6 site-local block and Python's own ``is_global``
are checked too, so the table only ever adds refusals (Python 3.11 calls 192.0.0.192 global).

IPv6 addresses that carry an IPv4 address are judged by it: IPv4-mapped (``::ffff:a.b.c.d``),
IPv4-compatible (``::a.b.c.d``), NAT64 (``64:ff9b::/96``, and the local-use ``64:ff9b:1::/48`` in
RFC 6052's layout), 6to4 (``2002::/16``) and Teredo (``2001::/32``: its server and its client). When the
embedded address is not public the IPv6 address is refused; when it is, the translated forms follow it,
as connecting to them reaches that IPv4 host.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

Address = IPv4Address | IPv6Address

_IPV4_SPECIAL = tuple(
    IPv4Network(block)
    for block in (
        "0.0.0.0/8",  # "this network" (RFC 791)
        "10.0.0.0/8",  # private-use (RFC 1918)
        "100.64.0.0/10",  # shared address space, carrier-grade NAT (RFC 6598)
        "127.0.0.0/8",  # loopback (RFC 1122)
        "169.254.0.0/16",  # link local, cloud metadata (RFC 3927)
        "172.16.0.0/12",  # private-use (RFC 1918)
        "192.0.0.0/24",  # IETF protocol assignments, with DS-Lite, PCP/TURN anycast, NAT64 discovery (RFC 6890)
        "192.0.2.0/24",  # documentation, TEST-NET-1 (RFC 5737)
        "192.31.196.0/24",  # AS112-v4 (RFC 7535)
        "192.52.193.0/24",  # AMT (RFC 7450)
        "192.88.99.0/24",  # deprecated 6to4 relay anycast (RFC 7526)
        "192.168.0.0/16",  # private-use (RFC 1918)
        "192.175.48.0/24",  # direct delegation AS112 service (RFC 7534)
        "198.18.0.0/15",  # benchmarking (RFC 2544)
        "198.51.100.0/24",  # documentation, TEST-NET-2 (RFC 5737)
        "203.0.113.0/24",  # documentation, TEST-NET-3 (RFC 5737)
        "240.0.0.0/4",  # reserved (RFC 1112)
        "255.255.255.255/32",  # limited broadcast (RFC 919)
        "224.0.0.0/4",  # multicast (the multicast registry, not the special-purpose one)
    )
)

_IPV6_SPECIAL = tuple(
    IPv6Network(block)
    for block in (
        "::1/128",  # loopback (RFC 4291)
        "::/128",  # unspecified (RFC 4291)
        "::/96",  # IPv4-compatible, deprecated (RFC 4291); judged by the embedded IPv4 first
        "::ffff:0:0/96",  # IPv4-mapped (RFC 4291); judged by the embedded IPv4 first
        "64:ff9b::/96",  # IPv4-IPv6 translation (RFC 6052); judged by the embedded IPv4 first
        "64:ff9b:1::/48",  # local-use IPv4/IPv6 translation (RFC 8215)
        "100::/64",  # discard-only (RFC 6666)
        "100:0:0:1::/64",  # dummy IPv6 prefix (RFC 9780)
        "2001::/23",  # IETF protocol assignments (RFC 2928): Teredo, PCP/TURN/DNS-SD anycast, ...
        "2001::/32",  # Teredo (RFC 4380); judged by the embedded IPv4s first
        "2001:2::/48",  # benchmarking (RFC 5180)
        "2001:3::/32",  # AMT (RFC 7450)
        "2001:4:112::/48",  # AS112-v6 (RFC 7535)
        "2001:10::/28",  # deprecated ORCHID (RFC 4843)
        "2001:20::/28",  # ORCHIDv2 (RFC 7343)
        "2001:30::/28",  # drone remote ID protocol entity tags (RFC 9374)
        "2001:db8::/32",  # documentation (RFC 3849)
        "2002::/16",  # 6to4 (RFC 3056); judged by the embedded IPv4 first
        "2620:4f:8000::/48",  # direct delegation AS112 service (RFC 7534)
        "3fff::/20",  # documentation (RFC 9637)
        "5f00::/16",  # segment routing SRv6 SIDs (RFC 9602)
        "fc00::/7",  # unique-local (RFC 4193)
        "fe80::/10",  # link-local unicast (RFC 4291)
        "fec0::/10",  # site-local, deprecated (RFC 3879)
        "ff00::/8",  # multicast (RFC 4291)
    )
)

# Prefixes whose connections reach the IPv4 address they carry: a public one makes the address public.
_CARRIES_IPV4 = tuple(
    IPv6Network(block) for block in ("::/96", "::ffff:0:0/96", "64:ff9b::/96", "2002::/16", "2001::/32")
)
_NAT64_LOCAL = IPv6Network("64:ff9b:1::/48")


def embedded_ipv4(address: IPv6Address) -> list[IPv4Address]:
    """The IPv4 addresses an IPv6 address carries (none for a plain IPv6 address)."""
    value = int(address)
    if address in _CARRIES_IPV4[0] and value > 1:  # IPv4-compatible; :: and ::1 are not
        return [IPv4Address(value & 0xFFFFFFFF)]
    if address.ipv4_mapped is not None:
        return [address.ipv4_mapped]
    if address in _CARRIES_IPV4[2]:
        return [IPv4Address(value & 0xFFFFFFFF)]
    if address in _NAT64_LOCAL:  # RFC 6052 /48: 16 bits, the reserved "u" octet, then 16 bits
        return [IPv4Address(((value >> 64) & 0xFFFF) << 16 | (value >> 40) & 0xFFFF)]
    if address.sixtofour is not None:
        return [address.sixtofour]
    if address.teredo is not None:
        return list(address.teredo)
    return []


def _special(address: Address) -> bool:
    if isinstance(address, IPv4Address):
        return any(address in block for block in _IPV4_SPECIAL)
    return any(address in block for block in _IPV6_SPECIAL)


def is_public(address: Address) -> bool:
    """Whether a fetch may connect to ``address`` (see the module docstring)."""
    if isinstance(address, IPv6Address):
        if address.scope_id:
            return False
        carried = embedded_ipv4(address)
        if carried:
            if not all(is_public(inner) for inner in carried):
                return False
            if any(address in block for block in _CARRIES_IPV4):
                return True
    return not _special(address) and address.is_global
