"""Connections that go only where the target policy allows, and errors as classes.

The worker's connector resolves each host once, drops every address the policy refuses
and connects to what is left: the address checked is the address connected to (no second
lookup, so a name cannot switch to 127.0.0.1 or 169.254.169.254 in between). Literal IP
URLs never reach a resolver in aiohttp, so the socket factory checks every address again
right before connect().
"""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from webhooks.targets import TargetPolicy


class TargetRefused(OSError):
    """Every address of the target is refused by the policy."""

    def __init__(self) -> None:
        super().__init__(errno.EACCES, "webhook target refused by policy")


class GuardedResolver(AbstractResolver):
    """Wraps a resolver; answers only the addresses the policy allows."""

    def __init__(self, policy: TargetPolicy, inner: AbstractResolver | None = None) -> None:
        self._policy = policy
        self._inner = inner if inner is not None else DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        answers = await self._inner.resolve(host, port, family)
        allowed = [a for a in answers if self._policy.allows(a["host"])]
        if not allowed:
            raise TargetRefused()
        return allowed

    async def close(self) -> None:
        await self._inner.close()


def client_tls(cafile: str | None = None) -> ssl.SSLContext:
    """The TLS of every delivery: the certificate checked against the system's CAs (or
    `cafile`) and the host's name, and TLS 1.3 at least, as the gateway's own server
    answers. The privacy policy promises TLS 1.3 for data in transit, and event bodies
    carry account ids, amounts and paid time."""
    context = ssl.create_default_context(cafile=cafile)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    return context


def guarded_connector(
    policy: TargetPolicy, resolver: AbstractResolver | None = None, limit: int = 100,
    cafile: str | None = None,
) -> aiohttp.TCPConnector:
    """A connector that refuses, at resolve and at connect time, what `policy` refuses,
    and speaks no TLS older than 1.3 (`client_tls`). `resolver` replaces the system
    resolver (tests map names without DNS); `limit` caps the open connections (kept
    alive and reused between deliveries); `cafile`: certificates to trust instead of the
    system's (tests: a receiver's self-signed one)."""

    def socket_factory(addr_info: tuple[int, int, int, str, tuple[object, ...]]) -> socket.socket:
        family, type_, proto, _, sockaddr = addr_info
        if not policy.allows(str(sockaddr[0])):
            raise TargetRefused()
        return socket.socket(family, type_, proto)

    return aiohttp.TCPConnector(
        resolver=GuardedResolver(policy, resolver),
        socket_factory=socket_factory,
        # The cache holds only answers that passed the policy; it cannot be poisoned
        # with a refused address, and pins a name's answer for its lifetime.
        ttl_dns_cache=10,
        limit=limit,
        ssl=client_tls(cafile),
    )


def _refused(exc: BaseException) -> bool:
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, TargetRefused):
            return True
        if isinstance(cur, aiohttp.ClientConnectorError):
            inner = cur.os_error
            if isinstance(inner, TargetRefused) or (
                not isinstance(cur, aiohttp.ClientConnectorDNSError)
                and inner.errno == errno.EACCES
            ):
                return True
        cur = cur.__cause__ or cur.__context__
    return False


def error_class(exc: BaseException) -> str:
    """What went wrong, as a short class name for attempt logs. Never the exception's
    text: it names internal hosts and ports, and logs showing "refused" versus "timed
    out" per host:port would make the gateway a port scanner."""
    if _refused(exc):
        return "target_refused"
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return "timeout"
    if isinstance(exc, aiohttp.ClientSSLError | aiohttp.ServerFingerprintMismatch
                  | ssl.SSLError):
        return "tls_error"
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return "dns_error"
    if isinstance(exc, aiohttp.ClientConnectorError):
        if exc.os_error.errno == errno.ECONNREFUSED:
            return "connection_refused"
        return "connection_error"
    if isinstance(exc, aiohttp.ServerDisconnectedError | ConnectionResetError):
        return "disconnected"
    if isinstance(exc, aiohttp.InvalidURL):
        return "invalid_url"
    if isinstance(exc, aiohttp.ClientResponseError | aiohttp.ClientPayloadError):
        return "invalid_response"
    if isinstance(exc, aiohttp.ClientError | OSError):
        return "connection_error"
    return "error"
