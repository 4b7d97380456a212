"""Chain events -> invoice transitions. Each handler is one transaction: payments, the
cursor, invoice states and outbox events commit together, so a crash replays harmlessly."""

from collections.abc import Iterable
from datetime import datetime, timedelta

from chains.base import (
    BlockConnected,
    BlockDisconnected,
    BlockRef,
    MempoolGone,
    MempoolSeen,
    Observed,
)
from gateway.domain.invoices import (
    DEFAULT_BLOCK_TIME_TOLERANCE,
    Invoice,
    ObservedPayment,
    Status,
)
from gateway.services.ports import Clock, PaymentRecord, UnitOfWork, UnitOfWorkFactory


def confirmations(payment: PaymentRecord, tip: BlockRef | None) -> int:
    if payment.block_height is None or tip is None or payment.status != "confirmed":
        return 0
    return max(tip.height - payment.block_height + 1, 0)


def observed(payments: Iterable[PaymentRecord], tip: BlockRef | None) -> list[ObservedPayment]:
    return [
        ObservedPayment(
            p.txid, p.index, p.amount, confirmations(p, tip), p.seen_at, p.status == "reverted",
            p.block_time,
        )
        for p in payments
    ]


class PaymentTracker:
    def __init__(
        self, uow: UnitOfWorkFactory, clock: Clock,
        block_time_tolerance: timedelta = DEFAULT_BLOCK_TIME_TOLERANCE,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._tolerance = block_time_tolerance

    async def start_cursor(self, coin: str) -> BlockRef | None:
        async with self._uow() as uow:
            return await uow.cursors.get(coin)

    async def set_cursor(self, coin: str, block: BlockRef) -> None:
        async with self._uow() as uow:
            await uow.cursors.set(coin, block, self._clock())
            await uow.commit()

    async def unconfirmed(self, coin: str) -> list[str]:
        async with self._uow() as uow:
            return await uow.payments.unconfirmed_txids(coin)

    async def block_connected(self, coin: str, event: BlockConnected) -> None:
        now = self._clock()
        async with self._uow() as uow:
            touched = await self._record(
                uow, coin, event.payments, event.block, now, event.time
            )
            await uow.cursors.set(coin, event.block, now)
            await self._reevaluate(uow, coin, event.block, touched, now, all_open=True)
            await uow.commit()

    async def block_disconnected(self, coin: str, event: BlockDisconnected) -> None:
        now = self._clock()
        parent = BlockRef(event.block.height - 1, event.parent_hash)
        async with self._uow() as uow:
            touched = set(await uow.payments.disconnect(coin, event.block.hash))
            await uow.cursors.set(coin, parent, now)
            await self._reevaluate(uow, coin, parent, touched, now, all_open=False)
            await uow.commit()

    async def mempool_seen(self, coin: str, event: MempoolSeen) -> None:
        now = self._clock()
        async with self._uow() as uow:
            touched = await self._record(uow, coin, event.payments, None, now)
            tip = await uow.cursors.get(coin)
            await self._reevaluate(uow, coin, tip, touched, now, all_open=False)
            await uow.commit()

    async def mempool_gone(self, coin: str, event: MempoolGone) -> None:
        now = self._clock()
        async with self._uow() as uow:
            touched = set(await uow.payments.revert(coin, event.txids))
            tip = await uow.cursors.get(coin)
            await self._reevaluate(uow, coin, tip, touched, now, all_open=False)
            await uow.commit()

    async def sweep(self) -> int:
        """Time-driven transitions (expiry, end of monitoring). Returns how many changed."""
        now = self._clock()
        changed = 0
        async with self._uow() as uow:
            for invoice in await uow.invoices.due_by_time(now):
                tip = await uow.cursors.get(invoice.coin)
                if await self._apply(uow, invoice, tip, now):
                    changed += 1
            await uow.commit()
        return changed

    async def _record(
        self, uow: UnitOfWork, coin: str, payments: Iterable[Observed], block: BlockRef | None,
        now: datetime, block_time: datetime | None = None,
    ) -> set[str]:
        touched: set[str] = set()
        for obs in payments:
            invoice = await uow.invoices.by_match_key(coin, obs.match_key)
            if invoice is None:
                continue
            touched.add(invoice.id)
            # First seen: by our node's mempool if it had it before we asked (the gateway
            # was down), else now. Our own machines' clocks, never a miner's.
            seen = min(now, obs.first_seen) if obs.first_seen is not None else now
            is_new = await uow.payments.record(
                coin, obs.txid, obs.index, invoice.id, obs.amount, block, seen, block_time
            )
            if is_new:
                conf = 1 if block is not None else 0
                invoice.payment_received(
                    ObservedPayment(obs.txid, obs.index, obs.amount, conf, seen)
                )
                await uow.outbox.publish(invoice.events, now)
                invoice.events.clear()
        return touched

    async def _reevaluate(
        self, uow: UnitOfWork, coin: str, tip: BlockRef | None, touched: set[str],
        now: datetime, all_open: bool,
    ) -> None:
        invoices: dict[str, Invoice] = {}
        if all_open:
            for inv in await uow.invoices.open_with_payments(coin, now):
                invoices[inv.id] = inv
        for invoice_id in sorted(touched - invoices.keys()):
            found = await uow.invoices.get(invoice_id, for_update=True)
            if found is not None:
                invoices[found.id] = found
        for invoice in invoices.values():
            await self._apply(uow, invoice, tip, now)

    async def _apply(
        self, uow: UnitOfWork, invoice: Invoice, tip: BlockRef | None, now: datetime
    ) -> bool:
        before = (invoice.status, invoice.exception)
        was_settled = invoice.status is Status.SETTLED
        invoice.observe(
            observed(await uow.payments.for_invoice(invoice.id), tip), now, self._tolerance
        )
        if (invoice.status, invoice.exception) == before and not invoice.events:
            return False
        await uow.invoices.save(invoice)
        events = list(invoice.events)
        invoice.events.clear()
        if invoice.status is Status.SETTLED and not was_settled:
            # Locked: two invoices of one account settling at once announce it once.
            account = await uow.accounts.get(invoice.account_id, for_update=True)
            if account is not None:
                account.activate(invoice.id, invoice.metadata, now)
                if account.events:
                    await uow.accounts.save(account)
                    events.extend(account.events)
                    account.events.clear()
        await uow.outbox.publish(events, now)
        return True
