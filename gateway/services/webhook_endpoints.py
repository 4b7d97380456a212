from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from gateway.domain.errors import InvalidInput
from gateway.domain.events import EVENT_TYPES
from gateway.services.errors import NotFound
from gateway.services.ids import new_id
from gateway.services.ports import Clock, EndpointRecord, UnitOfWorkFactory

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class CreatedEndpoint:
    record: EndpointRecord
    secret: str  # shown at creation and rotation only


Resolver = Callable[[str], Awaitable[list[str]]]


async def check_target(url: str, allowed: Sequence[Network], resolve: Resolver,
                       allow_public: bool = True) -> str:
    """Refuse non-http(s) URLs and targets inside private, loopback or link-local ranges
    unless those ranges are explicitly allowed (internal provisioning systems)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput("url", "must be an absolute http(s) URL")
    if parts.username or parts.password:
        raise InvalidInput("url", "must not carry credentials")
    if not allow_public:
        # Internal targets only: an address literal inside an allowed range, no DNS at all.
        try:
            literal = ipaddress.ip_address(parts.hostname)
        except ValueError:
            raise InvalidInput("url", "only IP addresses inside [webhooks] "
                               "allow_private_targets are accepted here") from None
        if not any(literal in net for net in allowed):
            raise InvalidInput("url", f"{literal} is outside [webhooks] allow_private_targets")
        return url
    try:
        addresses = await resolve(parts.hostname)
    except OSError:
        raise InvalidInput("url", f"host {parts.hostname!r} does not resolve") from None
    for text in addresses:
        addr = ipaddress.ip_address(text)
        if any(addr in net for net in allowed):
            continue
        if not addr.is_global:
            raise InvalidInput(
                "url", f"{parts.hostname} resolves to non-public address {addr}; "
                "allow its range in [webhooks] allow_private_targets if intended"
            )
    return url


async def resolve_host(host: str) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, None)
    return sorted({str(info[4][0]) for info in infos})


class WebhookEndpointService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        new_secret: Callable[[], str],
        allowed_private: Sequence[Network],
        resolve: Resolver = resolve_host,
        rotation_overlap: timedelta = timedelta(hours=24),
        allow_public: bool = True,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._new_secret = new_secret
        self._allowed = allowed_private
        self._resolve = resolve
        self._overlap = rotation_overlap
        self._allow_public = allow_public

    async def create(
        self, url: str, event_types: Iterable[str] = (), description: str = ""
    ) -> CreatedEndpoint:
        await check_target(url, self._allowed, self._resolve, self._allow_public)
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
        async with self._uow() as uow:
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
