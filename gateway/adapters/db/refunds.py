"""Refunds in the database (`refunds`, `refund_approvals`; docs/refunds.md). The address
and the tx key are sealed with the field cipher, bound to the refund's id."""

from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.adapters.db.encrypted import (
    REFUND_ADDRESS,
    REFUND_PSBT,
    REFUND_TX_KEY,
    REFUND_URI,
)
from gateway.adapters.db.tables import (
    accounts,
    invoices,
    payments,
    refund_approvals,
    refund_watches,
    refunds,
)
from gateway.adapters.fields import FieldCipher
from gateway.domain.refunds import FINAL, Approval, Quote, Refund, RefundStatus
from gateway.services.errors import Conflict
from gateway.services.ports.refunds import PaidOutput

_r = refunds.c
_a = refund_approvals.c
# What names the customer's address: erased together by retention.
_PERSONAL = or_(_r.address_ct.is_not(None), _r.tx_key_ct.is_not(None),
                _r.uri_ct.is_not(None), _r.psbt_ct.is_not(None))
OPEN = [s.value for s in RefundStatus if s not in FINAL]
# A PSBT of these spends outputs that no later refund may spend again.
SPENDING = [RefundStatus.APPROVED.value, RefundStatus.SENT.value,
            RefundStatus.COMPLETED.value]


class SqlRefunds:
    def __init__(self, conn: AsyncConnection, cipher: FieldCipher) -> None:
        self._conn = conn
        self._cipher = cipher

    def _mutable(self, refund: Refund) -> dict[str, Any]:
        q = refund.quote
        return {
            "status": refund.status.value, "refusal_reason": refund.refused_reason,
            "refused_by": refund.refused_by, "txid": refund.txid,
            "tx_key_ct": self._cipher.encrypt_optional(refund.tx_key,
                                                       REFUND_TX_KEY.ref(refund.id)),
            "decided_at": refund.decided_at, "sent_at": refund.sent_at,
            "completed_at": refund.completed_at,
            "crypto_amount": q.crypto_amount if q else None, "rate": q.rate if q else None,
            "uri_ct": self._cipher.encrypt_optional(q.uri if q else None,
                                                    REFUND_URI.ref(refund.id)),
            "psbt_ct": self._cipher.encrypt_optional(q.psbt if q else None,
                                                     REFUND_PSBT.ref(refund.id)),
            "fee": q.fee if q else None,
            "spends": [list(s) for s in q.spends] if q else None,
            "change_index": q.change_index if q else None}

    async def add(self, refund: Refund) -> None:
        await self._conn.execute(insert(refunds).values(
            id=refund.id, account_id=refund.account_id, amount_minor=refund.amount,
            currency=refund.currency, coin=refund.coin,
            address_ct=self._cipher.encrypt_optional(refund.address,
                                                     REFUND_ADDRESS.ref(refund.id)),
            approvals_needed=refund.approvals_needed, requested_at=refund.requested_at,
            **self._mutable(refund)))
        await self._approvals(refund, 0)

    async def _approvals(self, refund: Refund, stored: int) -> None:
        for a in refund.approvals[stored:]:
            try:
                async with self._conn.begin_nested():
                    await self._conn.execute(insert(refund_approvals).values(
                        refund_id=refund.id, staff_id=a.staff_id, reason=a.reason, at=a.at))
            except IntegrityError:
                raise Conflict("you already approved this refund; a second approval must "
                               "come from another finance member") from None

    async def save(self, refund: Refund) -> None:
        stored = (await self._conn.execute(select(func.count()).select_from(
            refund_approvals).where(_a.refund_id == refund.id))).scalar_one()
        await self._approvals(refund, int(stored))
        await self._conn.execute(update(refunds).where(_r.id == refund.id).values(
            **self._mutable(refund)))

    def _refund(self, r: Any, approvals: list[Approval]) -> Refund:
        quote = None
        if r.crypto_amount is not None:
            uri = self._cipher.decrypt_optional(r.uri_ct, REFUND_URI.ref(r.id))
            psbt = self._cipher.decrypt_optional(r.psbt_ct, REFUND_PSBT.ref(r.id))
            quote = Quote(int(r.crypto_amount), r.rate, uri or "", psbt,
                          None if r.fee is None else int(r.fee),
                          tuple((s[0], int(s[1])) for s in r.spends or ()),
                          r.change_index)
        return Refund(
            id=r.id, account_id=r.account_id, amount=int(r.amount_minor),
            currency=r.currency, coin=r.coin,
            address=self._cipher.decrypt_optional(r.address_ct, REFUND_ADDRESS.ref(r.id)),
            requested_at=r.requested_at, approvals_needed=int(r.approvals_needed),
            status=RefundStatus(r.status), approvals=approvals,
            refused_reason=r.refusal_reason, refused_by=r.refused_by, quote=quote,
            txid=r.txid,
            tx_key=self._cipher.decrypt_optional(r.tx_key_ct, REFUND_TX_KEY.ref(r.id)),
            decided_at=r.decided_at, sent_at=r.sent_at, completed_at=r.completed_at)

    async def _read(self, query: Any) -> list[Refund]:
        rows = (await self._conn.execute(query)).all()
        if not rows:
            return []
        found = (await self._conn.execute(select(refund_approvals).where(
            _a.refund_id.in_([r.id for r in rows])).order_by(_a.at, _a.staff_id))).all()
        by_refund: dict[str, list[Approval]] = {}
        for a in found:
            by_refund.setdefault(a.refund_id, []).append(Approval(a.staff_id, a.reason, a.at))
        return [self._refund(r, by_refund.get(r.id, [])) for r in rows]

    async def get(self, refund_id: str, for_update: bool = False) -> Refund | None:
        query = select(refunds).where(_r.id == refund_id)
        if for_update:
            query = query.with_for_update()
        found = await self._read(query)
        return found[0] if found else None

    async def of_account(self, account_id: str, limit: int = 50) -> list[Refund]:
        return await self._read(select(refunds).where(_r.account_id == account_id).order_by(
            _r.requested_at.desc(), _r.id.desc()).limit(limit))

    async def open(self, limit: int = 200) -> list[Refund]:
        return await self._read(select(refunds).where(_r.status.in_(OPEN)).order_by(
            _r.requested_at, _r.id).limit(limit))

    async def paid_outputs(self, coin: str) -> list[PaidOutput]:
        rows = (await self._conn.execute(
            select(payments.c.txid, payments.c.output_index, payments.c.amount,
                   invoices.c.match_key, invoices.c.derivation_index)
            .join(invoices, invoices.c.id == payments.c.invoice_id)
            .where(payments.c.coin == coin, payments.c.status == "confirmed")
            .order_by(payments.c.id))).all()
        return [PaidOutput(r.txid, int(r.output_index), int(r.amount), bytes(r.match_key),
                           int(r.derivation_index)) for r in rows]

    async def spent_outputs(self, coin: str) -> set[tuple[str, int]]:
        rows = (await self._conn.execute(select(_r.spends).where(
            _r.coin == coin, _r.status.in_(SPENDING), _r.spends.is_not(None)))).all()
        return {(s[0], int(s[1])) for r in rows for s in r.spends or ()}

    async def paid_by(self, coin: str, txid: str) -> str | None:
        row = (await self._conn.execute(select(_r.id).where(
            _r.coin == coin, _r.txid == txid))).first()
        return None if row is None else str(row.id)

    async def next_change_index(self, coin: str) -> int:
        top = (await self._conn.execute(select(func.max(_r.change_index)).where(
            _r.coin == coin))).scalar_one()
        return 0 if top is None else int(top) + 1

    async def addresses_due(self, before: datetime) -> list[str]:
        ended = func.coalesce(_r.completed_at, _r.decided_at)
        erased_account = select(accounts.c.id).where(accounts.c.deleted_at.is_not(None))
        rows = (await self._conn.execute(select(_r.id).where(
            _PERSONAL,
            or_(_r.status.in_([s.value for s in FINAL]) & (ended < before),
                # An erased account's refunds at once, except one on its way (approved
                # or sent): its address is how the payment is recognised, so it goes
                # when the refund is final.
                _r.account_id.in_(erased_account) & _r.status.not_in(
                    [RefundStatus.APPROVED.value, RefundStatus.SENT.value])))
            .order_by(_r.id))).all()
        return [r.id for r in rows]

    async def erase_address(self, refund_id: str, now: datetime) -> bool:
        # The watch's form of the address goes with it (and its keyed hash).
        await self._conn.execute(update(refund_watches).where(
            refund_watches.c.refund_id == refund_id).values(match_key_ct=None,
                                                           match_index=None))
        result = await self._conn.execute(update(refunds).where(
            _r.id == refund_id, _PERSONAL).values(
            address_ct=None, tx_key_ct=None, uri_ct=None, psbt_ct=None, erased_at=now))
        return bool(result.rowcount)
