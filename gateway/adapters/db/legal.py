"""The register of legal requests (`gateway legal ...`)."""

from datetime import datetime

from sqlalchemy import and_, delete, exists, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.adapters.db.encrypted import LEGAL_SUMMARY
from gateway.adapters.db.tables import accounts
from gateway.adapters.db.tables import legal_request_accounts as la
from gateway.adapters.db.tables import legal_requests as lr
from gateway.adapters.fields import FieldCipher
from gateway.services.ports import LegalRequest

# The customers may be told (`LegalRequest.visible`): notification allowed from the start,
# or the hold lifted since.
TOLD = or_(lr.c.notify_allowed.is_(True), lr.c.hold_lifted_at.is_not(None))


class SqlLegalRegister:
    def __init__(self, conn: AsyncConnection, cipher: FieldCipher) -> None:
        self._conn = conn
        self._cipher = cipher

    async def add(self, request: LegalRequest) -> None:
        await self._conn.execute(insert(lr).values(
            id=request.id, received_at=request.received_at,
            summary_ct=self._cipher.encrypt(request.summary, LEGAL_SUMMARY.ref(request.id)),
            notify_allowed=request.notify_allowed, hold_lifted_at=request.hold_lifted_at,
            notice_queued_at=request.notice_queued_at, recorded_by=request.recorded_by,
            created_at=request.created_at))
        await self._conn.execute(insert(la), [
            {"request_id": request.id, "account_id": a} for a in request.account_ids])

    async def _read(self, where: object = None) -> list[LegalRequest]:
        query = select(lr).order_by(lr.c.received_at, lr.c.id)
        if where is not None:
            query = query.where(where)  # type: ignore[arg-type]
        rows = (await self._conn.execute(query)).all()
        links = (await self._conn.execute(select(la).where(
            la.c.request_id.in_([r.id for r in rows])))).all()
        accounts: dict[str, list[str]] = {}
        for link in links:
            accounts.setdefault(link.request_id, []).append(link.account_id)
        return [LegalRequest(r.id, r.received_at,
                             self._cipher.decrypt(r.summary_ct, LEGAL_SUMMARY.ref(r.id)),
                             r.notify_allowed, r.hold_lifted_at, r.recorded_by, r.created_at,
                             tuple(sorted(accounts.get(r.id, ()))), r.notice_queued_at)
                for r in rows]

    async def all(self) -> list[LegalRequest]:
        return await self._read()

    async def get(self, request_id: str) -> LegalRequest | None:
        found = await self._read(lr.c.id == request_id)
        return found[0] if found else None

    async def for_account(self, account_id: str) -> list[LegalRequest]:
        """Every request naming the account, held or not."""
        mine = select(la.c.request_id).where(la.c.account_id == account_id)
        return await self._read(lr.c.id.in_(mine))

    async def notifiable(self, account_id: str) -> list[LegalRequest]:
        """What the customer may be told: notification allowed from the start, or the
        hold lifted since."""
        mine = select(la.c.request_id).where(la.c.account_id == account_id)
        return await self._read(lr.c.id.in_(mine) & TOLD)

    async def lift_hold(self, request_id: str, now: datetime) -> bool:
        result = await self._conn.execute(update(lr).where(
            lr.c.id == request_id, lr.c.notify_allowed.is_(False),
            lr.c.hold_lifted_at.is_(None)).values(hold_lifted_at=now))
        return bool(result.rowcount)

    async def mark_notice_queued(self, request_id: str, now: datetime,
                                 again: bool = False) -> bool:
        # The conditional UPDATE is the claim: of two transactions, the second waits for
        # the first's row lock and then matches nothing.
        query = update(lr).where(lr.c.id == request_id, TOLD)
        if not again:
            query = query.where(lr.c.notice_queued_at.is_(None))
        result = await self._conn.execute(query.values(notice_queued_at=now))
        return bool(result.rowcount)

    async def notice_pending(self) -> list[LegalRequest]:
        return await self._read(lr.c.notice_queued_at.is_(None) & TOLD)

    async def prune(self, closed_before: datetime, dry_run: bool) -> int:
        """Closed requests (the customers may be told) recorded, lifted if they were
        held, and mailed, all before the cut-off. A request still held is kept whatever
        its age, and so is one never mailed (no [smtp] when it was recorded or lifted)
        while an account it concerns is not erased: its customers have yet to be told,
        and `gateway legal notify-pending` needs the request to tell them."""
        to_tell = select(la.c.request_id).join(
            accounts, accounts.c.id == la.c.account_id).where(
                la.c.request_id == lr.c.id, accounts.c.deleted_at.is_(None))
        closed = and_(
            TOLD,
            lr.c.created_at < closed_before,
            or_(lr.c.hold_lifted_at.is_(None), lr.c.hold_lifted_at < closed_before),
            or_(lr.c.notice_queued_at < closed_before,
                lr.c.notice_queued_at.is_(None) & ~exists(to_tell)))
        if dry_run:
            return int((await self._conn.execute(
                select(func.count()).select_from(lr).where(closed))).scalar_one())
        ids = list((await self._conn.execute(select(lr.c.id).where(closed))).scalars())
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            await self._conn.execute(delete(la).where(la.c.request_id.in_(chunk)))
            await self._conn.execute(delete(lr).where(lr.c.id.in_(chunk)))
        return len(ids)
