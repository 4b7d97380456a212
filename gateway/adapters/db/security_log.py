from datetime import datetime

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.adapters.db.tables import security_log as t
from gateway.adapters.db.tables import staff_log
from gateway.services.ports import SecurityEntry


class SqlSecurityLog:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, account_id: str | None, event: str, ip: str | None,
                  at: datetime) -> None:
        await self._conn.execute(insert(t).values(account_id=account_id, event=event, ip=ip,
                                                  at=at))

    async def for_account(self, account_id: str) -> list[SecurityEntry]:
        rows = await self._conn.execute(
            select(t).where(t.c.account_id == account_id).order_by(t.c.at, t.c.id))
        return [SecurityEntry(r.event, r.ip, r.at) for r in rows]

    async def purge(self, before: datetime, dry_run: bool) -> int:
        """Customers' entries and the staff console's (staff_log): one retention period."""
        total = 0
        for table in (t, staff_log):
            if dry_run:
                total += int((await self._conn.execute(
                    select(func.count()).select_from(table).where(table.c.at < before)
                )).scalar_one())
            else:
                total += int((await self._conn.execute(
                    delete(table).where(table.c.at < before))).rowcount)
        return total
