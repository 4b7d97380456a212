"""Purges for the retention task: each counts (dry run) or deletes rows past a cut-off."""

from datetime import datetime

from sqlalchemy import ColumnElement, Table, and_, delete, exists, func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.adapters.db.tables import (
    accounts,
    audit_log,
    deliveries,
    delivery_attempts,
    events,
    idempotency_keys,
    login_throttle,
    mail_queue,
    retention_owed,
    sessions,
    staff_sessions,
    webhook_endpoints,
)
from gateway.adapters.mail_queue import drop_mail
from webhooks.store import DeliveryStatus


class SqlRetention:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def _purge(self, table: Table, where: ColumnElement[bool], dry_run: bool) -> int:
        if dry_run:
            return int((await self._conn.execute(
                select(func.count()).select_from(table).where(where))).scalar_one())
        return int((await self._conn.execute(delete(table).where(where))).rowcount)

    async def sessions(self, now: datetime, dry_run: bool) -> int:
        """Sessions that can never be used again: past their lifetime or revoked (the
        customers' and the staff console's)."""
        staff = await self._purge(staff_sessions, or_(staff_sessions.c.expires_at < now,
                                                      staff_sessions.c.revoked_at < now),
                                  dry_run)
        return staff + await self._purge(
            sessions, or_(sessions.c.expires_at < now, sessions.c.revoked_at < now), dry_run)

    async def idempotency_keys(self, before: datetime, dry_run: bool) -> int:
        return await self._purge(idempotency_keys, idempotency_keys.c.updated_at < before,
                                 dry_run)

    async def delivery_logs(self, before: datetime, dry_run: bool) -> int:
        """Attempt logs older than the cut-off, then finished deliveries and events whose
        last delivery is gone. Pending deliveries are never touched."""
        attempts = await self._purge(delivery_attempts, delivery_attempts.c.at < before, dry_run)
        old_done = and_(deliveries.c.status != DeliveryStatus.PENDING,
                        deliveries.c.updated_at < before)
        if dry_run:
            return attempts
        still_attempted = exists().where(delivery_attempts.c.delivery_id == deliveries.c.id)
        await self._conn.execute(delete(deliveries).where(old_done, ~still_attempted))
        await self._conn.execute(delete(events).where(
            events.c.created_at < before, ~exists().where(deliveries.c.event_id == events.c.id)))
        return attempts

    async def owe(self, work: str, now: datetime) -> None:
        """Record work owed (kept from the first time it was owed until done). Called in
        each erasure's own transaction: two at once (the server's run and a restore's
        re-application) must not fail one another over the row, so the insert yields."""
        insert_ = pg_insert if self._conn.dialect.name == "postgresql" else sqlite_insert
        await self._conn.execute(insert_(retention_owed).values(work=work, since=now)
                                 .on_conflict_do_nothing(index_elements=["work"]))

    async def owed(self, work: str) -> datetime | None:
        since: datetime | None = (await self._conn.execute(select(retention_owed.c.since)
            .where(retention_owed.c.work == work))).scalar_one_or_none()
        return since

    async def paid(self, work: str) -> None:
        await self._conn.execute(delete(retention_owed).where(retention_owed.c.work == work))

    async def mail_queue(self, before: datetime, dry_run: bool) -> int:
        """Mail never delivered (no sender ran): as the sender's own drop, an inactivity
        notice among it un-warns its account."""
        old = mail_queue.c.created_at < before
        if dry_run:
            return await self._purge(mail_queue, old, dry_run)
        return await drop_mail(self._conn, old)

    async def audit_log(self, erased_before: datetime, dry_run: bool) -> int:
        """Entries about accounts erased before the cut-off (a live account keeps its own),
        and about account ids that no longer exist at all."""
        gone = select(accounts.c.id).where(accounts.c.deleted_at < erased_before)
        known = select(accounts.c.id)
        return await self._purge(audit_log, or_(
            audit_log.c.account_id.in_(gone),
            ~audit_log.c.account_id.in_(known)), dry_run)

    async def login_throttle(self, before: datetime, now: datetime, dry_run: bool) -> int:
        """Rows whose window began before the cut-off and that lock nobody out now."""
        return await self._purge(login_throttle, and_(
            login_throttle.c.window_started_at < before,
            or_(login_throttle.c.locked_until.is_(None), login_throttle.c.locked_until <= now)),
            dry_run)

    async def disabled_endpoint_events(self, before: datetime, dry_run: bool) -> int:
        """Deliveries still pending on a disabled endpoint since before the cut-off (a
        disabled endpoint is never sent to), their attempt logs, then events left with no
        delivery. Counts the deliveries."""
        disabled = select(webhook_endpoints.c.id).where(webhook_endpoints.c.enabled.is_(False))
        stale = select(deliveries.c.id).where(
            deliveries.c.status == DeliveryStatus.PENDING, deliveries.c.created_at < before,
            deliveries.c.endpoint_id.in_(disabled))
        if dry_run:
            return int((await self._conn.execute(
                select(func.count()).select_from(stale.subquery()))).scalar_one())
        ids = [r for r in (await self._conn.execute(stale)).scalars()]
        if not ids:
            return 0
        event_ids = list((await self._conn.execute(
            select(deliveries.c.event_id).where(deliveries.c.id.in_(ids)))).scalars())
        await self._conn.execute(delete(delivery_attempts).where(
            delivery_attempts.c.delivery_id.in_(ids)))
        await self._conn.execute(delete(deliveries).where(deliveries.c.id.in_(ids)))
        await self._conn.execute(delete(events).where(
            events.c.id.in_(event_ids), ~exists().where(deliveries.c.event_id == events.c.id)))
        return len(ids)
