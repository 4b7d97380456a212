from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.adapters.db.encrypted import AUDIT_REASON
from gateway.adapters.db.tables import audit_log as t
from gateway.adapters.fields import FieldCipher
from gateway.services.ports import AuditEntry


def audit_entry(row: Any, cipher: FieldCipher) -> AuditEntry:
    """An `audit_log` row, its reason decrypted (or, written before encryption, as is)."""
    reason = (cipher.decrypt(row.reason_ct, AUDIT_REASON.ref(row.account_id))
              if row.reason_ct is not None else row.reason)
    return AuditEntry(row.at, row.actor, row.account_id, row.action, tuple(row.fields), reason)


class SqlAuditLog:
    """The reason given for a read is free text (it may name a person or a case): it is
    encrypted like personal fields."""

    def __init__(self, conn: AsyncConnection, cipher: FieldCipher) -> None:
        self._conn = conn
        self._cipher = cipher

    async def add(self, entry: AuditEntry) -> None:
        await self._conn.execute(insert(t).values(
            at=entry.at, actor=entry.actor, account_id=entry.account_id, action=entry.action,
            fields=list(entry.fields),
            reason_ct=self._cipher.encrypt_optional(entry.reason,
                                                     AUDIT_REASON.ref(entry.account_id))))

    async def for_account(self, account_id: str) -> list[AuditEntry]:
        rows = await self._conn.execute(
            select(t).where(t.c.account_id == account_id).order_by(t.c.id))
        return [audit_entry(r, self._cipher) for r in rows]

    async def encrypt_legacy(self) -> int:
        """Reasons written before they were encrypted: encrypt them, clear the plain one."""
        rows = (await self._conn.execute(
            select(t.c.id, t.c.account_id, t.c.reason).where(t.c.reason.is_not(None)))).all()
        for r in rows:
            await self._conn.execute(update(t).where(t.c.id == r.id).values(
                reason=None,
                reason_ct=self._cipher.encrypt(r.reason, AUDIT_REASON.ref(r.account_id))))
        return len(rows)
