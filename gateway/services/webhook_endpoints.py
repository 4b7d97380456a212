from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import SplitResult, urlsplit

from gateway.domain.errors import InvalidInput
from gateway.domain.events import EVENT_TYPES
from gateway.services.errors import NotFound
from gateway.services.ids import new_id
from gateway.services.ports import Clock, EndpointRecord, EndpointsUnit
from webhooks.targets import TargetPolicy, parse_address


@dataclass(frozen=True)
class CreatedEndpoint:
    record: EndpointRecord
    secret: str  # shown at creation and rotation only


Resolver = Callable[[str], Awaitable[list[str]]]


async def check_target(url: str, targets: TargetPolicy, resolve: Resolver) -> str:
    """Refuse non-http(s) URLs and hosts with any address the target policy refuses
    (loopback, private, link-local, metadata, ... unless explicitly allowed). Plain
    http only to addresses inside [webhooks] allow_private_targets: everything else must
    be https. The delivery worker applies the same rules again to the address it
    connects to."""
    parts = urlsplit(url)
    host = _host_of(parts)
    if not targets.allow_public:
        _check_internal(host, targets)
        return url  # inside a listed private range: http is allowed there
    try:
        addresses = await resolve(host)
    except OSError:
        raise InvalidInput("url", f"host {host!r} does not resolve") from None
    if not addresses:
        raise InvalidInput("url", f"host {host!r} does not resolve")
    for text in addresses:
        why = targets.refusal(text)
        if why is not None:
            raise InvalidInput(
                "url", f"{host} resolves to {why}; "
                "allow its range in [webhooks] allow_private_targets if intended"
            )
    if parts.scheme == "http":
        plain = targets.for_scheme("http")
        if not all(plain.allows(a) for a in addresses):
            raise InvalidInput("url", "must be https:// (plain http only to addresses "
                               "inside [webhooks] allow_private_targets)")
    return url


def _host_of(parts: SplitResult) -> str:
    """The URL's host: an absolute http(s) URL's, without credentials, not an IPv4
    address in a shortened form."""
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput("url", "must be an absolute http(s) URL")
    if parts.username or parts.password:
        raise InvalidInput("url", "must not carry credentials")
    host = parts.hostname
    if parse_address(host) is None and all(
            re.fullmatch(r"0[xX][0-9a-fA-F]*|[0-9]+", label) for label in host.split(".")):
        # 127.1, 2130706433, 0x7f.1: the resolver reads them as addresses, the worker
        # refuses them (never delivered); ask for the address in full.
        raise InvalidInput("url", "write an IPv4 address as four decimal numbers")
    return host


def _check_internal(host: str, targets: TargetPolicy) -> None:
    """Internal targets only: an address literal inside an allowed range, no DNS at all."""
    literal = parse_address(host)
    if literal is None:
        raise InvalidInput("url", "only IP addresses inside [webhooks] "
                           "allow_private_targets are accepted here")
    if not targets.allows(literal):
        raise InvalidInput("url", f"{literal} is outside [webhooks] allow_private_targets")


async def resolve_host(host: str) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, None)
    return sorted({str(info[4][0]) for info in infos})


class WebhookEndpointService:
    def __init__(
        self,
        uow: Callable[[], EndpointsUnit],
        clock: Clock,
        *,
        new_secret: Callable[[], str],
        targets: TargetPolicy,
        resolve: Resolver = resolve_host,
        rotation_overlap: timedelta = timedelta(hours=24),
        reader: Callable[[], EndpointsUnit] | None = None,
    ) -> None:
        self._uow = uow
        self._reader = reader or uow  # reads only: no write turn, no write lock
        self._clock = clock
        self._new_secret = new_secret
        self._targets = targets
        self._resolve = resolve
        self._overlap = rotation_overlap

    async def create(
        self, url: str, event_types: Iterable[str] = (), description: str = ""
    ) -> CreatedEndpoint:
        await check_target(url, self._targets, self._resolve)
        types = tuple(sorted(set(event_types)))
        unknown = [t for t in types if t not in EVENT_TYPES]
        if unknown:
            raise InvalidInput("event_types", f"unknown event type(s) {', '.join(unknown)}")
        if len(description) > 500:
            raise InvalidInput("description", "must be at most 500 characters")
        record = EndpointRecord(new_id("whe_"), url, types, description, True, self._clock())
        secret = self._new_secret()
        async with self._uow() as uow:
            await uow.endpoints.add(record, secret)
            await uow.commit()
        return CreatedEndpoint(record, secret)

    async def list(self) -> list[EndpointRecord]:
        async with self._reader() as uow:
            return await uow.endpoints.active()

    async def rotate(self, endpoint_id: str) -> tuple[str, datetime]:
        """A new secret; the old one keeps signing (beside it) until the overlap ends."""
        secret = self._new_secret()
        until = self._clock() + self._overlap
        async with self._uow() as uow:
            if not await uow.endpoints.rotate(endpoint_id, secret, until):
                raise NotFound("webhook endpoint")
            await uow.commit()
        return secret, until

    async def set_enabled(self, endpoint_id: str, enabled: bool) -> None:
        async with self._uow() as uow:
            if not await uow.endpoints.set_enabled(endpoint_id, enabled):
                raise NotFound("webhook endpoint")
            await uow.commit()

    async def delete(self, endpoint_id: str) -> None:
        async with self._uow() as uow:
            if not await uow.endpoints.delete(endpoint_id, self._clock()):
                raise NotFound("webhook endpoint")
            await uow.commit()
