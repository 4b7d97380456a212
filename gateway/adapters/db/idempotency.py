from datetime import datetime

from sqlalchemy import and_, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.adapters.db.tables import idempotency_keys as t
from gateway.domain.states import IdempotencyState
from gateway.services.ports import IdempotencyRecord


class SqlIdempotency:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    @staticmethod
    def _where(scope: str, key: str) -> object:
        return and_(t.c.scope == scope, t.c.key == key)

    async def claim(
        self, scope: str, key: str, fingerprint: str, owner: str, now: datetime
    ) -> IdempotencyRecord | None:
        try:
            async with self._conn.begin_nested():
                await self._conn.execute(insert(t).values(
                    scope=scope, key=key, fingerprint=fingerprint, state=IdempotencyState.RUNNING,
                    owner=owner, created_at=now, updated_at=now))
            return None
        except IntegrityError:
            row = (await self._conn.execute(
                select(t).where(t.c.scope == scope, t.c.key == key))).one()
            return IdempotencyRecord(row.fingerprint, IdempotencyState(row.state), row.owner,
                                     row.invoice_id, row.updated_at)

    async def take_over(
        self, scope: str, key: str, old_owner: str, owner: str, now: datetime
    ) -> bool:
        result = await self._conn.execute(
            update(t).where(t.c.scope == scope, t.c.key == key, t.c.owner == old_owner,
                            t.c.state == IdempotencyState.RUNNING)
            .values(owner=owner, updated_at=now))
        return bool(result.rowcount)

    async def complete(self, scope: str, key: str, owner: str, invoice_id: str,
                       now: datetime) -> bool:
        result = await self._conn.execute(
            update(t).where(t.c.scope == scope, t.c.key == key, t.c.owner == owner,
                            t.c.state == IdempotencyState.RUNNING)
            .values(state=IdempotencyState.DONE, invoice_id=invoice_id, updated_at=now))
        return bool(result.rowcount)

    async def release(self, scope: str, key: str, owner: str) -> None:
        await self._conn.execute(
            delete(t).where(t.c.scope == scope, t.c.key == key, t.c.owner == owner,
                            t.c.state == IdempotencyState.RUNNING))
