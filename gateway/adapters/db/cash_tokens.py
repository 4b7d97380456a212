"""Implements `CashTokenRepository` (`cash_tokens`, docs/cash.md): tokens by their keyed
hash, the envelope recorded once, rows deleted when retention or an erasure says so."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.adapters.db.encrypted import CASH_NOTE
from gateway.adapters.db.tables import cash_tokens
from gateway.adapters.fields import FieldCipher
from gateway.domain.cash import CashToken

_t = cash_tokens.c


class SqlCashTokens:
    def __init__(self, conn: AsyncConnection, cipher: FieldCipher) -> None:
        self._conn = conn
        self._cipher = cipher

    def _token(self, row: Any) -> CashToken:
        note = self._cipher.decrypt_optional(row.note_ct, CASH_NOTE.ref(row.id))
        return CashToken(row.id, row.account_id, row.created_at, row.expires_at,
                         row.used_at, row.amount_minor, row.currency, row.staff_id, note)

    async def add(self, token: CashToken, token_hash: str) -> None:
        await self._conn.execute(insert(cash_tokens).values(
            id=token.id, account_id=token.account_id, token_hash=token_hash,
            created_at=token.created_at, expires_at=token.expires_at))

    async def _one(self, *where: Any) -> CashToken | None:
        row = (await self._conn.execute(select(cash_tokens).where(*where))).first()
        return None if row is None else self._token(row)

    async def by_hash(self, token_hash: str) -> CashToken | None:
        return await self._one(_t.token_hash == token_hash)

    async def get(self, token_id: str) -> CashToken | None:
        return await self._one(_t.id == token_id)

    async def open_for(self, account_id: str, now: datetime) -> list[CashToken]:
        rows = await self._conn.execute(select(cash_tokens).where(
            _t.account_id == account_id, _t.used_at.is_(None), _t.expires_at > now)
            .order_by(_t.created_at, _t.id))
        return [self._token(r) for r in rows]

    async def of_account(self, account_id: str) -> list[CashToken]:
        rows = await self._conn.execute(select(cash_tokens).where(
            _t.account_id == account_id).order_by(_t.created_at, _t.id))
        return [self._token(r) for r in rows]

    async def delete(self, token_id: str) -> bool:
        done = await self._conn.execute(delete(cash_tokens).where(_t.id == token_id))
        return bool(done.rowcount)

    async def mark_used(self, token: CashToken) -> bool:
        note = (None if token.note is None
                else self._cipher.encrypt(token.note, CASH_NOTE.ref(token.id)))
        done = await self._conn.execute(update(cash_tokens).where(
            _t.id == token.id, _t.used_at.is_(None)).values(
            used_at=token.used_at, amount_minor=token.amount, currency=token.currency,
            staff_id=token.staff_id, note_ct=note))
        return done.rowcount == 1

    @staticmethod
    def _due(used_before: datetime, now: datetime) -> Any:
        return or_(_t.used_at < used_before,
                   _t.used_at.is_(None) & (_t.expires_at <= now))

    async def due(self, used_before: datetime, now: datetime, limit: int = 500) -> list[str]:
        rows = await self._conn.execute(select(_t.id).where(self._due(used_before, now))
                                        .order_by(_t.id).limit(limit))
        return list(rows.scalars())

    async def erase(self, token_id: str, used_before: datetime, now: datetime) -> bool:
        done = await self._conn.execute(delete(cash_tokens).where(
            _t.id == token_id, self._due(used_before, now)))
        return bool(done.rowcount)

    async def count_for(self, account_id: str) -> int:
        return int((await self._conn.execute(select(func.count()).select_from(
            cash_tokens).where(_t.account_id == account_id))).scalar_one())
