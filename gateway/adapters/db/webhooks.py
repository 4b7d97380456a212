"""Webhook endpoints, the outbox, and the delivery store the worker claims work from."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, exists, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.adapters.db.encrypted import WEBHOOK_PREVIOUS_SECRET, WEBHOOK_SECRET
from gateway.adapters.db.engine import read_transaction, write_transaction
from gateway.adapters.db.tables import (
    deliveries,
    delivery_attempts,
    events,
    webhook_endpoints,
)
from gateway.adapters.fields import FieldCipher, FieldCipherError
from gateway.domain.events import ACCOUNT_DELETED, DomainEvent, in_delivery_order, webhook_body
from gateway.services.ids import new_id
from gateway.services.ports import (
    AttemptRecord,
    DeliveryRecord,
    EndpointRecord,
    EventRecord,
)
from webhooks.retry import Outcome
from webhooks.store import Attempt, DeliveryStatus, PendingDelivery

log = logging.getLogger(__name__)


def _endpoint(row: object) -> EndpointRecord:
    r = row._mapping  # type: ignore[attr-defined]
    return EndpointRecord(
        r["id"], r["url"], tuple(r["event_types"]), r["description"], r["enabled"],
        r["created_at"],
    )


class SqlEndpoints:
    def __init__(self, conn: AsyncConnection, cipher: FieldCipher) -> None:
        self._conn = conn
        self._cipher = cipher

    async def add(self, record: EndpointRecord, secret: str) -> None:
        await self._conn.execute(
            insert(webhook_endpoints).values(
                id=record.id,
                url=record.url,
                secret_ct=self._cipher.encrypt(secret, WEBHOOK_SECRET.ref(record.id)),
                event_types=list(record.event_types),
                description=record.description,
                enabled=record.enabled,
                created_at=record.created_at,
            )
        )

    async def active(self) -> list[EndpointRecord]:
        rows = await self._conn.execute(
            select(webhook_endpoints)
            .where(webhook_endpoints.c.deleted_at.is_(None))
            .order_by(webhook_endpoints.c.created_at)
        )
        return [_endpoint(r) for r in rows]

    async def get(self, endpoint_id: str) -> EndpointRecord | None:
        row = (
            await self._conn.execute(
                select(webhook_endpoints).where(
                    webhook_endpoints.c.id == endpoint_id, webhook_endpoints.c.deleted_at.is_(None)
                )
            )
        ).first()
        return _endpoint(row) if row else None

    async def delete(self, endpoint_id: str, now: datetime) -> bool:
        result = await self._conn.execute(
            update(webhook_endpoints)
            .where(webhook_endpoints.c.id == endpoint_id, webhook_endpoints.c.deleted_at.is_(None))
            .values(deleted_at=now, enabled=False)
        )
        if result.rowcount:
            # Nothing more goes to a deleted endpoint; its log stays for the record.
            await self._conn.execute(
                update(deliveries)
                .where(deliveries.c.endpoint_id == endpoint_id,
                       deliveries.c.status == DeliveryStatus.PENDING)
                .values(status=DeliveryStatus.DISABLED, updated_at=now)
            )
        return bool(result.rowcount)


    async def rotate(self, endpoint_id: str, secret: str, previous_until: datetime) -> bool:
        w = webhook_endpoints
        current = (await self._conn.execute(
            select(w.c.secret_ct).where(w.c.id == endpoint_id, w.c.deleted_at.is_(None))
            .with_for_update())).scalar_one_or_none()
        if current is None:
            return False
        # Ciphertexts are bound to their column: the current secret is sealed again for
        # the previous one's. One that no longer reads (its key removed, or not bound
        # here) cannot sign: the new secret then signs alone, rotation being the remedy.
        try:
            previous: str | None = self._cipher.decrypt(current, WEBHOOK_SECRET.ref(endpoint_id))
        except FieldCipherError as exc:
            log.warning("webhook endpoint rotated without overlap: %s", exc)
            previous = None
        result = await self._conn.execute(
            update(w).where(w.c.id == endpoint_id, w.c.deleted_at.is_(None)).values(
                previous_secret_ct=self._cipher.encrypt_optional(
                    previous, WEBHOOK_PREVIOUS_SECRET.ref(endpoint_id)),
                previous_secret_expires_at=previous_until,
                secret_ct=self._cipher.encrypt(secret, WEBHOOK_SECRET.ref(endpoint_id)),
            )
        )
        return bool(result.rowcount)

    async def set_enabled(self, endpoint_id: str, enabled: bool) -> bool:
        w = webhook_endpoints
        result = await self._conn.execute(
            update(w).where(w.c.id == endpoint_id, w.c.deleted_at.is_(None))
            .values(enabled=enabled))
        return bool(result.rowcount)


class SqlEvents:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn
        self.requeued = 0

    async def page(self, type_: str | None, after: str | None, limit: int) -> list[EventRecord]:
        query = select(events).order_by(events.c.seq.desc()).limit(limit)
        if type_ is not None:
            query = query.where(events.c.type == type_)
        if after is not None:
            anchor = (await self._conn.execute(
                select(events.c.seq).where(events.c.id == after))).scalar_one_or_none()
            if anchor is not None:
                query = query.where(events.c.seq < anchor)
        rows = (await self._conn.execute(query)).all()
        return [EventRecord(r.id, r.type, r.created_at, r.body) for r in rows]

    async def get(self, event_id: str) -> EventRecord | None:
        row = (await self._conn.execute(select(events).where(events.c.id == event_id))).first()
        if row is None:
            return None
        drows = (await self._conn.execute(
            select(deliveries).where(deliveries.c.event_id == event_id)
            .order_by(deliveries.c.created_at, deliveries.c.id))).all()
        out = []
        for d in drows:
            arows = (await self._conn.execute(
                select(delivery_attempts).where(delivery_attempts.c.delivery_id == d.id)
                .order_by(delivery_attempts.c.id))).all()
            out.append(DeliveryRecord(
                d.id, d.endpoint_id, DeliveryStatus(d.status), d.attempts, d.next_attempt_at,
                d.last_status_code, d.last_error,
                tuple(AttemptRecord(a.at, a.status_code, a.latency_ms, a.error) for a in arows),
            ))
        return EventRecord(row.id, row.type, row.created_at, row.body, tuple(out))

    async def _requeue(self, condition: object, now: datetime) -> int:
        enabled = select(webhook_endpoints.c.id).where(
            webhook_endpoints.c.enabled.is_(True), webhook_endpoints.c.deleted_at.is_(None))
        result = await self._conn.execute(
            update(deliveries)
            .where(condition, deliveries.c.endpoint_id.in_(enabled))  # type: ignore[arg-type]
            .values(status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=now,
                    lease_until=None, updated_at=now))
        self.requeued += int(result.rowcount)
        return int(result.rowcount)

    async def redeliver(self, event_id: str, now: datetime) -> int:
        return await self._requeue(deliveries.c.event_id == event_id, now)

    async def redeliver_failed(self, since: datetime, now: datetime) -> int:
        return await self._requeue(
            (deliveries.c.status == DeliveryStatus.FAILED)
            & (deliveries.c.created_at >= since), now)


URGENT, NORMAL = 0, 1  # deliveries.priority


# Built once (every commit with events runs them): no building or compiling per call.
_LIVE_ENDPOINTS = select(webhook_endpoints.c.id, webhook_endpoints.c.event_types).where(
    webhook_endpoints.c.enabled.is_(True), webhook_endpoints.c.deleted_at.is_(None))
_INSERT_EVENT = insert(events)


class SqlOutbox:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn
        self.published = 0  # events with deliveries: the worker is woken for those

    async def publish(self, evts: Sequence[DomainEvent], now: datetime) -> None:
        if not evts:
            return
        endpoints = (await self._conn.execute(_LIVE_ENDPOINTS)).all()
        hurried: set[str] = set()  # lanes with an urgent event: their earlier ones go first
        for event, order in in_delivery_order(evts):
            event_id = new_id("evt_")
            await self._conn.execute(
                _INSERT_EVENT, dict(
                    id=event_id,
                    type=event.type,
                    account_id=event.account_id,
                    body=webhook_body(event, now),
                    created_at=now,
                    lane=order.lane,
                    after_lane=order.after,
                )
            )
            targets = [e.id for e in endpoints if not e.event_types or event.type in e.event_types]
            if targets:
                await self._conn.execute(
                    insert(deliveries),
                    [
                        {
                            "id": new_id("del_"),
                            "event_id": event_id,
                            "endpoint_id": endpoint_id,
                            "status": DeliveryStatus.PENDING,
                            "attempts": 0,
                            "next_attempt_at": now,
                            "created_at": now,
                            "updated_at": now,
                            "priority": URGENT if order.urgent else NORMAL,
                        }
                        for endpoint_id in targets
                    ],
                )
                if order.urgent:
                    hurried.update(lane for lane in (order.lane, order.after) if lane)
                self.published += 1  # the worker is woken for these only
        await self._hurry(sorted(hurried))

    async def _hurry(self, lanes: list[str]) -> None:
        """An urgent event waits for the earlier events of its lanes: they become urgent
        too, or a backlog in front of them would hold it back all the same."""
        d = deliveries
        for i in range(0, len(lanes), 500):
            earlier = select(events.c.id).where(events.c.lane.in_(lanes[i:i + 500]))
            await self._conn.execute(
                update(d).where(d.c.event_id.in_(earlier), d.c.status == DeliveryStatus.PENDING,
                                d.c.priority != URGENT).values(priority=URGENT))


class SqlDeliveryStore:
    """Implements `webhooks.store.DeliveryStore`. The ordering key is the event's lane
    (`gateway.domain.events.ordering`: its invoice, or its account): a delivery is
    claimable only when no earlier event (by outbox sequence) of the same lane, nor of
    the lane it follows, is still pending for the same endpoint; `account.deleted` waits
    for every earlier event of its account. Urgent deliveries are claimed first."""

    def __init__(self, engine: AsyncEngine, cipher: FieldCipher) -> None:
        self._engine = engine
        self._cipher = cipher

    async def claim(
        self, now: datetime, limit: int, lease_seconds: float,
        finished: Sequence[Attempt] = (), per_endpoint: int | None = None,
        in_flight: Mapping[str, int] | None = None,
    ) -> list[PendingDelivery]:
        if not finished and limit > 0 and not await self._any_due(now):
            return []  # idle: no write transaction, no turn to write, no claim query
        query, params = _DUE, {"c_now": now, "c_limit": limit}
        room: dict[str, int] = {}
        if per_endpoint is not None:
            held = dict(in_flight or {})
            full = sorted(e for e, n in held.items() if n >= per_endpoint)
            if full:
                query = _DUE_BUT
                params["c_full"] = full
            room = {e: per_endpoint - n for e, n in held.items()}
        async with write_transaction(self._engine, urgent=True) as conn:
            await self._write(conn, finished)
            if limit <= 0:
                return []
            rows = (await conn.execute(query, params)).all()
            if not rows:
                return []
            claimed, disabled, unreadable = self._sort(rows, now, per_endpoint, room)
            await _lease(conn, now, lease_seconds, claimed, disabled, unreadable)
        if unreadable:
            log.error("%d deliveries failed: endpoint secret cannot be decrypted "
                      "(is its data key still configured?)", len(unreadable))
        return claimed

    async def _any_due(self, now: datetime) -> bool:
        """Whether any delivery may be due: one indexed read, without a lock. The worker
        polls this every second or so while idle in every instance; the claim itself (a
        write transaction, on SQLite the process's turn to write, and a statement with
        three subqueries) is built and run only when it may find something. A delivery
        committed just after this read is claimed at the next round: its commit wakes
        this instance's worker, and another instance's polls again within the second."""
        async with read_transaction(self._engine) as conn:
            return (await conn.execute(_ANY_DUE, {"now": now})).first() is not None

    def _sort(self, rows: Sequence[Any], now: datetime, per_endpoint: int | None,
              room: dict[str, int]) -> tuple[list[PendingDelivery], list[str], list[str]]:
        """The due rows into those to lease, those whose endpoint was disabled while
        they waited, and those whose endpoint's secret cannot be read; rows past their
        endpoint's room (`per_endpoint`) are left for the next claim."""
        claimed: list[PendingDelivery] = []
        disabled: list[str] = []
        unreadable: list[str] = []
        secrets: dict[str, tuple[str, ...] | None] = {}
        for r in rows:
            if per_endpoint is not None:
                left = room.get(r.endpoint_id, per_endpoint)
                if left <= 0:
                    continue  # not leased: stays for the next claim, here or elsewhere
                room[r.endpoint_id] = left - 1
            if not r.enabled:
                disabled.append(r.id)  # its endpoint was disabled while it waited
                continue
            if r.endpoint_id not in secrets:
                secrets[r.endpoint_id] = self._secrets(r, now)
            signing_secrets = secrets[r.endpoint_id]
            if signing_secrets is None:
                # One bad row must not hold back every other delivery.
                unreadable.append(r.id)
                continue
            claimed.append(PendingDelivery(
                r.id, r.event_id, r.endpoint_id, r.url, signing_secrets, r.body.encode(),
                r.attempts,
            ))
        return claimed, disabled, unreadable

    def _secrets(self, r: Any, now: datetime) -> tuple[str, ...] | None:
        try:
            signing_secrets = [self._cipher.decrypt(r.secret_ct,
                                                    WEBHOOK_SECRET.ref(r.endpoint_id))]
            if r.previous_secret_ct is not None and r.previous_secret_expires_at > now:
                signing_secrets.append(self._cipher.decrypt(
                    r.previous_secret_ct, WEBHOOK_PREVIOUS_SECRET.ref(r.endpoint_id)))
        except FieldCipherError:
            return None
        return tuple(signing_secrets)

    async def renew(self, ids: Sequence[str], until: datetime) -> None:
        if ids:
            async with write_transaction(self._engine, urgent=True) as conn:
                await conn.execute(
                    update(deliveries)
                    .where(deliveries.c.id.in_(list(ids)),
                           deliveries.c.status == DeliveryStatus.PENDING)
                    .values(lease_until=until))

    async def record(self, attempts: Sequence[Attempt]) -> None:
        if attempts:
            async with write_transaction(self._engine, urgent=True) as conn:
                await self._write(conn, attempts)

    async def _write(self, conn: AsyncConnection, attempts: Sequence[Attempt]) -> None:
        if not attempts:
            return
        await conn.execute(_INSERT_ATTEMPT, [
            {"delivery_id": a.delivery.id, "at": a.result.at,
             "status_code": a.result.status_code, "latency_ms": a.result.latency_ms,
             "error": a.result.error}
            for a in attempts])
        await conn.execute(_AFTER_ATTEMPT, [_outcome(a) for a in attempts])
        await _hold_lanes(conn, attempts)
        await _disable_gone(conn, attempts)


# Built once: each round of results only binds its parameters.
_INSERT_ATTEMPT = insert(delivery_attempts)
_AFTER_ATTEMPT = update(deliveries).where(deliveries.c.id == bindparam("b_id")).values(
    status=bindparam("b_status"),
    attempts=deliveries.c.attempts + 1,
    next_attempt_at=bindparam("b_next", type_=deliveries.c.next_attempt_at.type),
    lease_until=None,
    last_status_code=bindparam("b_code"),
    last_error=bindparam("b_error"),
    updated_at=bindparam("b_at", type_=deliveries.c.updated_at.type),
)

_ANY_DUE = (
    select(deliveries.c.id)
    .where(deliveries.c.status == DeliveryStatus.PENDING,
           deliveries.c.next_attempt_at <= bindparam("now"),
           deliveries.c.lease_until.is_(None) | (deliveries.c.lease_until < bindparam("now")))
    .limit(1)
)


def _due_deliveries() -> Any:
    """Deliveries due at `c_now`, unleased, at the head of their lane for their endpoint,
    urgent ones first, at most `c_limit`: locked for this transaction (skipping those
    another claim holds). Built once (`_DUE`): each claim only binds its parameters."""
    now = bindparam("c_now", type_=deliveries.c.next_attempt_at.type)
    d, e, w = deliveries, events, webhook_endpoints
    p, pe = deliveries.alias("earlier"), events.alias("earlier_event")

    def held_back(same: Any) -> Any:
        """An earlier event matching `same` is still pending to this endpoint."""
        return exists(
            select(p.c.id)
            .select_from(p.join(pe, pe.c.id == p.c.event_id))
            .where(p.c.endpoint_id == d.c.endpoint_id, p.c.status == DeliveryStatus.PENDING, same,
                   pe.c.seq < e.c.seq))

    # Head of line per (endpoint, lane) only: a retrying delivery holds back the
    # later events of its own lane (and those that follow it), nothing else.
    ready = and_(
        ~held_back(pe.c.lane == e.c.lane),
        or_(e.c.after_lane.is_(None), ~held_back(pe.c.lane == e.c.after_lane)),
        or_(e.c.type != ACCOUNT_DELETED, ~held_back(pe.c.account_id == e.c.account_id)),
    )
    return (
        select(d.c.id, d.c.event_id, d.c.endpoint_id, d.c.attempts, e.c.body,
               w.c.url, w.c.secret_ct, w.c.enabled, w.c.previous_secret_ct,
               w.c.previous_secret_expires_at)
        .select_from(d.join(e, e.c.id == d.c.event_id)
                     .join(w, w.c.id == d.c.endpoint_id))
        .where(
            d.c.status == DeliveryStatus.PENDING,
            d.c.next_attempt_at <= now,
            (d.c.lease_until.is_(None)) | (d.c.lease_until < now),
            ready,
        )
        # By the index: no sort of every due row.
        .order_by(d.c.priority, d.c.next_attempt_at)
        .limit(bindparam("c_limit"))
        .with_for_update(of=d, skip_locked=True)
    )


_DUE = _due_deliveries()
# The same, leaving out the endpoints that hold as many as they may (`c_full`).
_DUE_BUT = _DUE.where(deliveries.c.endpoint_id.not_in(bindparam("c_full", expanding=True)))


_LEASE = (update(deliveries).where(deliveries.c.id.in_(bindparam("l_ids", expanding=True)))
          .values(lease_until=bindparam("l_until", type_=deliveries.c.lease_until.type)))


async def _lease(conn: AsyncConnection, now: datetime, lease_seconds: float,
                 claimed: Sequence[PendingDelivery], disabled: Sequence[str],
                 unreadable: Sequence[str]) -> None:
    """Lease the claimed deliveries; the others are done: disabled, or failed."""
    d = deliveries
    if claimed:
        await conn.execute(_LEASE, {"l_ids": [c.id for c in claimed],
                                    "l_until": now + timedelta(seconds=lease_seconds)})
    if disabled:
        await conn.execute(
            update(d).where(d.c.id.in_(list(disabled)), d.c.status == DeliveryStatus.PENDING)
            .values(status=DeliveryStatus.DISABLED, lease_until=None, updated_at=now))
    if unreadable:
        await conn.execute(
            update(d).where(d.c.id.in_(list(unreadable))).values(
                status=DeliveryStatus.FAILED, lease_until=None, updated_at=now,
                last_error="secret_unreadable")
        )


def _outcome(a: Attempt) -> dict[str, Any]:
    """The delivery's row after the attempt (bound parameters of `_write`'s update)."""
    result = a.result
    status = DeliveryStatus.after(result.outcome, a.next_attempt_at)
    return {"b_id": a.delivery.id, "b_status": status, "b_next": a.next_attempt_at,
            "b_code": result.status_code, "b_error": result.error, "b_at": result.at}


async def _hold_lanes(conn: AsyncConnection, attempts: Sequence[Attempt]) -> None:
    """The lane's later events cannot go before a retried one: they wait for its retry,
    so the claim does not walk through them again on every round (a long outage would
    otherwise make each claim scan the whole backlog)."""
    d = deliveries
    retrying = [{"b_event": a.delivery.event_id, "b_endpoint": a.delivery.endpoint_id,
                 "b_next": a.next_attempt_at}
                for a in attempts
                if a.result.outcome is Outcome.RETRY and a.next_attempt_at is not None]
    if not retrying:
        return
    head = events.alias("head")
    when = bindparam("b_next", type_=d.c.next_attempt_at.type)
    later = select(events.c.id).where(
        events.c.lane == select(head.c.lane)
        .where(head.c.id == bindparam("b_event")).scalar_subquery(),
        events.c.seq > select(head.c.seq)
        .where(head.c.id == bindparam("b_event")).scalar_subquery())
    await conn.execute(
        update(d).where(d.c.endpoint_id == bindparam("b_endpoint"),
                        d.c.status == DeliveryStatus.PENDING, d.c.next_attempt_at < when,
                        d.c.event_id.in_(later))
        .values(next_attempt_at=when),
        retrying,
    )


async def _disable_gone(conn: AsyncConnection, attempts: Sequence[Attempt]) -> None:
    """410 Gone: the receiver asked us to stop; nothing more goes there."""
    gone = {a.delivery.endpoint_id for a in attempts if a.result.outcome is Outcome.DISABLE}
    if not gone:
        return
    at = max(a.result.at for a in attempts)
    await conn.execute(
        update(webhook_endpoints)
        .where(webhook_endpoints.c.id.in_(sorted(gone)))
        .values(enabled=False)
    )
    await conn.execute(
        update(deliveries)
        .where(deliveries.c.endpoint_id.in_(sorted(gone)),
               deliveries.c.status == DeliveryStatus.PENDING)
        .values(status=DeliveryStatus.DISABLED, updated_at=at)
    )
