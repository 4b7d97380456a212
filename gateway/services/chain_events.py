"""Chain events -> invoice transitions. Each handler is one transaction: payments, the
cursor, invoice states and outbox events commit together, so a crash replays harmlessly.

A *feed* is what one follower follows: one node, one cursor, one or more coins (ETH and
its tokens); payments carry the coin they are in."""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from chains.base import (
    BlockConnected,
    BlockDisconnected,
    BlockRef,
    MempoolGone,
    MempoolSeen,
    Observed,
    TransactionsDisconnected,
)
from gateway.domain.invoices import (
    DEFAULT_BLOCK_TIME_TOLERANCE,
    Invoice,
    ObservedPayment,
    Status,
)
from gateway.domain.payments import PaymentStatus
from gateway.services.billing import PrepaidTime
from gateway.services.ports import Clock, PaymentRecord, UnitOfWork, UnitOfWorkFactory


@dataclass(frozen=True)
class Feed:
    name: str  # names the cursor
    coins: tuple[str, ...]

    @classmethod
    def of(cls, coin: str) -> "Feed":
        """A one-coin feed named after its coin (the UTXO family)."""
        return cls(coin, (coin,))


def observed(payments: Iterable[PaymentRecord], tip: BlockRef | None,
             now: datetime) -> list[ObservedPayment]:
    return [
        ObservedPayment(
            p.txid, p.index, p.amount, p.confirmations(tip), p.seen_at,
            p.status == PaymentStatus.REVERTED, p.block_time, p.locked(tip, now),
        )
        for p in payments
    ]


class PaymentTracker:
    def __init__(
        self, uow: UnitOfWorkFactory, clock: Clock,
        block_time_tolerance: timedelta = DEFAULT_BLOCK_TIME_TOLERANCE,
        feed_of: Callable[[str], str] = lambda coin: coin,
        prepaid: PrepaidTime | None = None,
    ) -> None:
        self._uow = uow
        self._prepaid = prepaid or PrepaidTime()
        self._clock = clock
        self._tolerance = block_time_tolerance
        self._feed_of = feed_of  # coin -> the feed whose cursor is its tip

    async def start_cursor(self, feed: Feed) -> BlockRef | None:
        async with self._uow() as uow:
            return await uow.cursors.get(feed.name)

    async def set_cursor(self, feed: Feed, block: BlockRef) -> None:
        async with self._uow() as uow:
            await uow.cursors.set(feed.name, block, self._clock())
            await uow.commit()

    async def unconfirmed(self, feed: Feed) -> list[str]:
        async with self._uow() as uow:
            return await uow.payments.unconfirmed_txids(feed.coins)

    async def block_connected(self, feed: Feed, event: BlockConnected) -> None:
        now = self._clock()
        async with self._uow() as uow:
            touched = await self._record(uow, event.payments, event.block, now, event.time)
            await uow.cursors.set(feed.name, event.block, now)
            await self._reevaluate(uow, feed, event.block, touched, now, all_open=True)
            await uow.commit()

    async def block_disconnected(self, feed: Feed, event: BlockDisconnected) -> None:
        now = self._clock()
        parent = BlockRef(event.block.height - 1, event.parent_hash)
        async with self._uow() as uow:
            touched = set(await uow.payments.disconnect(feed.coins, event.block.hash))
            await uow.cursors.set(feed.name, parent, now)
            await self._reevaluate(uow, feed, parent, touched, now, all_open=False)
            await uow.commit()

    async def transactions_disconnected(self, feed: Feed,
                                        event: TransactionsDisconnected) -> None:
        now = self._clock()
        async with self._uow() as uow:
            touched = set(await uow.payments.unconfirm(feed.coins, event.txids))
            tip = await uow.cursors.get(feed.name)
            await self._reevaluate(uow, feed, tip, touched, now, all_open=False)
            await uow.commit()

    async def mempool_seen(self, feed: Feed, event: MempoolSeen) -> None:
        now = self._clock()
        async with self._uow() as uow:
            touched = await self._record(uow, event.payments, None, now)
            tip = await uow.cursors.get(feed.name)
            await self._reevaluate(uow, feed, tip, touched, now, all_open=False)
            await uow.commit()

    async def mempool_gone(self, feed: Feed, event: MempoolGone) -> None:
        now = self._clock()
        async with self._uow() as uow:
            touched = set(await uow.payments.revert(feed.coins, event.txids))
            tip = await uow.cursors.get(feed.name)
            await self._reevaluate(uow, feed, tip, touched, now, all_open=False)
            await uow.commit()

    async def sweep(self) -> int:
        """Time-driven transitions (expiry, end of monitoring, time locks). Returns how
        many invoices changed."""
        now = self._clock()
        changed = 0
        async with self._uow() as uow:
            for invoice in await uow.invoices.due_by_time(now):
                tip = await uow.cursors.get(self._feed_of(invoice.coin))
                if await self._apply(uow, invoice, tip, now):
                    changed += 1
            await uow.commit()
        return changed

    async def _record(
        self, uow: UnitOfWork, payments: Iterable[Observed], block: BlockRef | None,
        now: datetime, block_time: datetime | None = None,
    ) -> set[str]:
        touched: set[str] = set()
        for obs in payments:
            invoice = await uow.invoices.by_match_key(obs.coin, obs.match_key)
            if invoice is None:
                continue
            touched.add(invoice.id)
            # First seen: by our node's mempool if it had it before we asked (the gateway
            # was down), else now. Our own machines' clocks, never a miner's.
            seen = min(now, obs.first_seen) if obs.first_seen is not None else now
            is_new = await uow.payments.record(
                obs.coin, obs.txid, obs.index, invoice.id, obs.amount, block, seen,
                block_time, obs.lock,
            )
            if is_new:
                conf = 1 if block is not None else 0
                invoice.payment_received(
                    ObservedPayment(obs.txid, obs.index, obs.amount, conf, seen)
                )
                uow.collect(invoice)
        return touched

    async def _reevaluate(
        self, uow: UnitOfWork, feed: Feed, tip: BlockRef | None, touched: set[str],
        now: datetime, all_open: bool,
    ) -> None:
        invoices: dict[str, Invoice] = {}
        if all_open:
            for inv in await uow.invoices.open_with_payments(feed.coins, now):
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
        payments = observed(await uow.payments.for_invoice(invoice.id), tip, now)
        invoice.observe(payments, now, self._tolerance)
        if (invoice.status, invoice.exception) == before and not invoice.events:
            return False
        await uow.invoices.save(invoice)
        if invoice.status is Status.SETTLED and not was_settled:
            # Activation, or the prepaid time a plan invoice buys (locks the account: two
            # invoices of one account settling at once announce it once).
            await self._prepaid.settled(uow, invoice, payments, now)
        return True
