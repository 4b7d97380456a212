from datetime import datetime

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.adapters.db.encrypted import SECURITY_IP
from gateway.adapters.db.tables import security_log as t
from gateway.adapters.db.tables import staff_log
from gateway.adapters.fields import FieldCipher
from gateway.services.ports import SecurityEntry


class SqlSecurityLog:
    """Addresses are encrypted like personal fields: they are read only for a security
    review (`gateway security-log`, the customer's own export)."""

    def __init__(self, conn: AsyncConnection, cipher: FieldCipher) -> None:
        self._conn = conn
        self._cipher = cipher

    async def add(self, account_id: str | None, event: str, ip: str | None,
                  at: datetime) -> None:
        await self._conn.execute(insert(t).values(
            account_id=account_id, event=event,
            ip_ct=self._cipher.encrypt_optional(ip, SECURITY_IP.ref(account_id)), at=at))

    def _ip(self, row: object) -> str | None:
        r = row._mapping  # type: ignore[attr-defined]
        if r["ip_ct"] is not None:
            return self._cipher.decrypt(r["ip_ct"], SECURITY_IP.ref(r["account_id"]))
        return r["ip"]  # type: ignore[no-any-return]

    async def for_account(self, account_id: str) -> list[SecurityEntry]:
        rows = await self._conn.execute(
            select(t).where(t.c.account_id == account_id).order_by(t.c.at, t.c.id))
        return [SecurityEntry(r.event, self._ip(r), r.at) for r in rows]

    async def encrypt_legacy(self) -> int:
        """Rows written before addresses were encrypted: encrypt them and clear the
        plain column."""
        rows = (await self._conn.execute(
            select(t.c.id, t.c.account_id, t.c.ip).where(t.c.ip.is_not(None)))).all()
        for r in rows:
            await self._conn.execute(update(t).where(t.c.id == r.id).values(
                ip=None, ip_ct=self._cipher.encrypt(r.ip, SECURITY_IP.ref(r.account_id))))
        return len(rows)

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
