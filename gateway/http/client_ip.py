"""The client's address: the socket peer, or what a trusted reverse proxy says it is."""

import ipaddress
from collections.abc import Sequence

from aiohttp import web

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def client_ip(request: web.Request, trusted: Sequence[Network]) -> str:
    peer = request.remote or "unknown"
    if not trusted or not within(peer, trusted):
        return peer  # X-Forwarded-For from anyone else is not believed
    hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",") if h.strip()]
    # Walk from the nearest hop back; the first address that is not a trusted proxy is
    # the client (addresses further left could be forged by the client itself).
    for hop in reversed(hops):
        if not within(hop, trusted):
            return hop
    return hops[0] if hops else peer


def limit_key(address: str) -> str:
    """Whom a per-client limit counts: an IPv4 address, or an IPv6 address's /64 (one
    customer line or one server usually holds a whole /64, and picks any address in it)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def within(address: str, networks: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)
