"""Which addresses a webhook may be sent to: one pure rule, no I/O.

Used when an endpoint is created (the URL's host, resolved) and again when the worker
connects (every resolved address, and literal IP URLs), so a name that changes its
answer after creation (DNS rebinding) cannot steer a delivery to loopback, the chain
node's RPC port or a cloud metadata address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Never public, whatever the running Python's ipaddress tables say (they differ between
# versions: 3.11 calls multicast and 192.0.0.0/24 "global").
_NEVER_PUBLIC: tuple[Network, ...] = tuple(ipaddress.ip_network(n) for n in (
    "0.0.0.0/8",  # "this network"
    "10.0.0.0/8",
    "100.64.0.0/10",  # carrier-grade NAT (shared address space)
    "127.0.0.0/8",
    "169.254.0.0/16",  # link-local, incl. 169.254.169.254 (cloud metadata)
    "172.16.0.0/12",
    "192.0.0.0/24",  # IETF protocol assignments
    "192.0.2.0/24",
    "192.88.99.0/24",  # 6to4 relay anycast
    "192.168.0.0/16",
    "198.18.0.0/15",  # benchmarking
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",  # multicast
    "240.0.0.0/4",  # reserved, incl. 255.255.255.255
    "::/128",
    "::1/128",
    "::/96",  # IPv4-compatible (deprecated)
    "64:ff9b:1::/48",  # local-use NAT64 (RFC 8215): operator-defined embedding
    "100::/64",  # discard
    "2001::/23",  # IETF protocol assignments (Teredo is unwrapped before this applies)
    "2001:db8::/32",
    "3fff::/20",  # documentation
    "5f00::/16",  # SRv6 SIDs
    "fc00::/7",  # unique local
    "fe80::/10",  # link-local
    "fec0::/10",  # site-local (deprecated)
    "ff00::/8",  # multicast
))

_NAT64_WELL_KNOWN = ipaddress.ip_network("64:ff9b::/96")
_TEREDO = ipaddress.ip_network("2001::/32")


def embedded_ipv4(addr: Address) -> tuple[ipaddress.IPv4Address, ...]:
    """The IPv4 addresses an IPv6 address carries and delivers to: IPv4-mapped
    (::ffff:a.b.c.d), NAT64 well-known prefix (64:ff9b::/96), 6to4 (2002::/16) and Teredo
    (2001::/32: server and client). Empty for anything else."""
    if isinstance(addr, ipaddress.IPv4Address):
        return ()
    if addr.ipv4_mapped is not None:
        return (addr.ipv4_mapped,)
    if addr in _NAT64_WELL_KNOWN:
        return (ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF),)
    if addr.sixtofour is not None:
        return (addr.sixtofour,)
    if addr in _TEREDO and addr.teredo is not None:
        return addr.teredo
    return ()


def is_public(addr: Address) -> bool:
    """Globally reachable unicast: not loopback, private, link-local, unique-local, CGNAT,
    multicast, unspecified, reserved or documentation space."""
    if any(addr in net for net in _NEVER_PUBLIC):
        return False
    return addr.is_global and not (
        addr.is_private or addr.is_loopback or addr.is_link_local or addr.is_multicast
        or addr.is_reserved or addr.is_unspecified
        or (isinstance(addr, ipaddress.IPv6Address) and addr.is_site_local)
    )


def parse_address(text: str) -> Address | None:
    """An address as a resolver or URL writes it (scope ids and brackets allowed)."""
    try:
        return ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None


@dataclass(frozen=True)
class TargetPolicy:
    """`allowed`: ranges explicitly opened ([webhooks] allow_private_targets);
    `allow_public`: whether globally reachable addresses are acceptable at all."""

    allowed: tuple[Network, ...] = ()
    allow_public: bool = True

    @classmethod
    def of(cls, allowed: Iterable[str | Network], allow_public: bool = True) -> TargetPolicy:
        return cls(tuple(ipaddress.ip_network(n, strict=False) if isinstance(n, str) else n
                         for n in allowed), allow_public)

    def for_scheme(self, scheme: str) -> TargetPolicy:
        """Plain http (no TLS) goes only to the listed ranges; https wherever this policy
        allows."""
        if scheme.lower() == "http":
            return TargetPolicy(self.allowed, allow_public=False)
        return self

    def listed(self, addr: Address) -> bool:
        return any(addr in net for net in self.allowed)

    def refusal(self, addr: Address | str) -> str | None:
        """None when a webhook may be sent to `addr`, else why not (for humans; it names
        the address, so it is for the endpoint's creator, never for attempt logs)."""
        parsed = parse_address(addr) if isinstance(addr, str) else addr
        if parsed is None:
            return f"{addr!r} is not an IP address"
        if isinstance(parsed, ipaddress.IPv6Address) and parsed.scope_id:
            parsed = ipaddress.IPv6Address(parsed.compressed.split("%")[0])
        if self.listed(parsed):
            return None
        inner = embedded_ipv4(parsed)
        if inner:
            # Judge where the packets end up, e.g. ::ffff:127.0.0.1 is 127.0.0.1.
            for v4 in inner:
                why = self.refusal(v4)
                if why is not None:
                    return f"{parsed} carries {v4}: {why}"
            return None
        if not is_public(parsed):
            return f"non-public address {parsed}"
        if not self.allow_public:
            return f"{parsed} is outside [webhooks] allow_private_targets"
        return None

    def allows(self, addr: Address | str) -> bool:
        return self.refusal(addr) is None
