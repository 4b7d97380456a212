from collections.abc import Callable
from datetime import datetime

from gateway.domain.errors import InvalidInput
from gateway.domain.events import EVENT_TYPES
from gateway.services.errors import NotFound
from gateway.services.ports import Clock, EventRecord, EventsUnit


class WebhookEventService:
    """The outbox as the operator and the provisioning system see it."""

    def __init__(self, uow: Callable[[], EventsUnit], clock: Clock,
                 reader: Callable[[], EventsUnit] | None = None) -> None:
        self._uow = uow
        self._reader = reader or uow  # reads only: no write turn, no write lock
        self._clock = clock

    async def page(self, type_: str | None, after: str | None, limit: int) -> list[EventRecord]:
        if type_ is not None and type_ not in EVENT_TYPES:
            raise InvalidInput("type", f"unknown event type {type_!r}")
        if not 1 <= limit <= 200:
            raise InvalidInput("limit", "must be between 1 and 200")
        async with self._reader() as uow:
            return await uow.events.page(type_, after, limit)

    async def get(self, event_id: str) -> EventRecord:
        async with self._reader() as uow:
            record = await uow.events.get(event_id)
        if record is None:
            raise NotFound("event")
        return record

    async def redeliver(self, event_id: str) -> int:
        async with self._uow() as uow:
            if await uow.events.get(event_id) is None:
                raise NotFound("event")
            queued = await uow.events.redeliver(event_id, self._clock())
            await uow.commit()
        return queued

    async def redeliver_failed(self, since: datetime) -> int:
        if since.tzinfo is None:
            raise InvalidInput("failed-since", "needs a time zone, e.g. 2026-01-01T00:00:00Z")
        async with self._uow() as uow:
            queued = await uow.events.redeliver_failed(since, self._clock())
            await uow.commit()
        return queued
