"""The client's address: the socket peer, or what a trusted reverse proxy says it is."""

import ipaddress
from collections.abc import Sequence

from aiohttp import web

from gateway.domain.throttle import client_network

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
    """Whom a per-client limit counts (gateway.domain.throttle.client_network)."""
    return client_network(address)


def within(address: str, networks: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)
