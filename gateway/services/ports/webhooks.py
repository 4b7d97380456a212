"""Webhook endpoints and the events (with their deliveries) they receive."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from webhooks.store import DeliveryStatus


@dataclass(frozen=True)
class EndpointRecord:
    id: str
    url: str
    event_types: tuple[str, ...]
    description: str
    enabled: bool
    created_at: datetime


class EndpointRepository(Protocol):
    async def add(self, record: EndpointRecord, secret: str) -> None: ...

    async def active(self) -> list[EndpointRecord]: ...

    async def get(self, endpoint_id: str) -> EndpointRecord | None: ...

    async def delete(self, endpoint_id: str, now: datetime) -> bool: ...

    async def rotate(self, endpoint_id: str, secret: str, previous_until: datetime) -> bool:
        """New secret signs from now on; the current one keeps signing until
        `previous_until`."""

    async def set_enabled(self, endpoint_id: str, enabled: bool) -> bool: ...


@dataclass(frozen=True)
class AttemptRecord:
    at: datetime
    status_code: int | None
    latency_ms: int
    error: str | None


@dataclass(frozen=True)
class DeliveryRecord:
    id: str
    endpoint_id: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    log: tuple[AttemptRecord, ...] = ()


@dataclass(frozen=True)
class EventRecord:
    id: str
    type: str
    created_at: datetime
    body: str
    deliveries: tuple[DeliveryRecord, ...] = ()


class EventRepository(Protocol):
    async def page(self, type_: str | None, after: str | None, limit: int) -> list[EventRecord]:
        ...

    async def get(self, event_id: str) -> EventRecord | None:
        """With its deliveries and every attempt."""

    async def redeliver(self, event_id: str, now: datetime) -> int:
        """Deliver again to every enabled endpoint that had it; how many were queued."""

    async def redeliver_failed(self, since: datetime, now: datetime) -> int: ...
