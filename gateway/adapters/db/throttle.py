from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.adapters.db.tables import login_throttle as t
from gateway.domain.throttle import ThrottleState


class SqlThrottle:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def get(self, key: str) -> ThrottleState | None:
        """The counter, locked for this transaction. FOR UPDATE locks only a row that
        exists: on PostgreSQL an advisory lock on the key also makes transactions racing
        on a counter's first use take turns (each had read "no row", and each judged on
        that: every one of them let through)."""
        if self._conn.dialect.name == "postgresql":
            await self._conn.execute(
                text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 7))"), {"k": key})
        row = (await self._conn.execute(
            select(t).where(t.c.key == key).with_for_update())).first()
        if row is None:
            return None
        return ThrottleState(row.failures, row.window_started_at, row.locked_until)

    async def put(self, key: str, state: ThrottleState) -> None:
        values = {"failures": state.failures, "window_started_at": state.window_started_at,
                  "locked_until": state.locked_until}
        result = await self._conn.execute(update(t).where(t.c.key == key).values(**values))
        if not result.rowcount:
            try:
                async with self._conn.begin_nested():
                    await self._conn.execute(insert(t).values(key=key, **values))
            except IntegrityError:  # a concurrent first failure: count on top of it
                await self._conn.execute(update(t).where(t.c.key == key).values(
                    failures=t.c.failures + 1))

    async def clear(self, key: str) -> None:
        await self._conn.execute(delete(t).where(t.c.key == key))
