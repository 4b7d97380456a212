
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.adapters.db.tables import audit_log as t
from gateway.services.ports import AuditEntry


class SqlAuditLog:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, entry: AuditEntry) -> None:
        await self._conn.execute(insert(t).values(
            at=entry.at, actor=entry.actor, account_id=entry.account_id, action=entry.action,
            fields=list(entry.fields), reason=entry.reason))

    async def for_account(self, account_id: str) -> list[AuditEntry]:
        rows = await self._conn.execute(
            select(t).where(t.c.account_id == account_id).order_by(t.c.id))
        return [AuditEntry(r.at, r.actor, r.account_id, r.action, tuple(r.fields), r.reason)
                for r in rows]
