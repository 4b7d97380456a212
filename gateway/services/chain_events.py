"""Chain events -> invoice transitions. Each handler is one transaction (a block paying
many invoices: a few short ones, the cursor in the last): payments, the cursor, invoice
states and outbox events commit together, so a crash replays harmlessly. Set-based: a
batch is matched with one query per coin and recorded with one multi-row insert; a new
block re-evaluates the invoices it pays and those whose payments reach their required
confirmations, not every open invoice.

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
from gateway.domain.payments import PaymentStatus, is_locked
from gateway.domain.refund_chain import follow
from gateway.services.billing import PrepaidTime
from gateway.services.ports import (
    ChainEventsUnit,
    Clock,
    NewPayment,
    PaymentRecord,
)
from gateway.services.ports.refund_watch import RefundOutput


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
            p.lock.height if p.lock else None, p.lock.time if p.lock else None,
        )
        for p in payments
    ]


class PaymentTracker:
    def __init__(
        self, uow: Callable[[], ChainEventsUnit], clock: Clock, *,
        block_time_tolerance: timedelta = DEFAULT_BLOCK_TIME_TOLERANCE,
        feed_of: Callable[[str], str] = lambda coin: coin,
        prepaid: PrepaidTime | None = None,
        batch: int = 500,
        max_confirmations: int = 1000,
    ) -> None:
        self._uow = uow
        self._prepaid = prepaid or PrepaidTime()
        self._batch = batch  # payments per transaction when a block pays many
        # No coin requires more confirmations: bounds the search for invoices a new tip
        # settles (`reaching_depth`) to recent heights.
        self._max_confirmations = max_confirmations
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

    async def record_catch_up(self, feed: Feed, state: str | None,
                              since: datetime | None) -> bool:
        """Records what the feed's follower reports while its node catches up (None: it
        is done); False when the feed has no cursor yet."""
        async with self._uow() as uow:
            done = await uow.cursors.set_catch_up(feed.name, state, since)
            await uow.commit()
            return done

    async def unconfirmed(self, feed: Feed) -> list[str]:
        async with self._uow() as uow:
            # A refund's payment in the mempool too: one replaced or dropped while the
            # gateway was down takes its refund back to approved.
            return sorted(set(await uow.payments.unconfirmed_txids(feed.coins))
                          | set(await uow.refund_watches.unconfirmed_txids(feed.coins)))

    async def block_connected(self, feed: Feed, event: BlockConnected) -> None:
        """Payments are matched, recorded and their invoices re-evaluated in batches of
        `batch`, each its own short transaction; the last one also re-evaluates the
        invoices whose payments reach their confirmations at this height and advances the
        cursor. A crash between batches replays the block: payments already recorded are
        not new again, so nothing is announced twice."""
        now = self._clock()
        found = list(event.payments)
        batches = [found[i:i + self._batch] for i in range(0, len(found), self._batch)]
        for n, batch in enumerate(batches or [[]]):
            async with self._uow() as uow:
                loaded, refunds = await self._record(uow, batch, event.block, now, event.time)
                if n == max(len(batches) - 1, 0):
                    before = await uow.cursors.get(feed.name)
                    reaching = await self._reaching(uow, feed, before, event.block, now)
                    await uow.cursors.set(feed.name, event.block, now)
                    # A new block may take a sent refund to its depth.
                    refunds.update(await uow.refund_watches.sent(feed.coins))
                else:
                    reaching = []
                await self._reevaluate(uow, event.block, set(loaded) | set(reaching), now,
                                       loaded)
                await self._review_refunds(uow, refunds, event.block, now)
                await uow.commit()

    async def _reaching(self, uow: ChainEventsUnit, feed: Feed, before: BlockRef | None,
                        tip: BlockRef, now: datetime) -> list[str]:
        """Invoices a new tip may change although it pays none of them: their payments
        reach the required confirmations at a height since the last tip."""
        if before is None or before.height >= tip.height:
            return [i.id for i in await uow.invoices.open_with_payments(feed.coins, now)]
        return await uow.invoices.reaching_depth(feed.coins, before.height, tip.height,
                                                 self._max_confirmations, now)

    async def block_disconnected(self, feed: Feed, event: BlockDisconnected) -> None:
        now = self._clock()
        parent = BlockRef(event.block.height - 1, event.parent_hash)
        async with self._uow() as uow:
            touched = set(await uow.payments.disconnect(feed.coins, event.block.hash))
            await uow.cursors.set(feed.name, parent, now)
            await self._reevaluate(uow, parent, touched, now)
            await self._review_refunds(
                uow, await uow.refund_watches.disconnect(feed.coins, event.block.hash),
                parent, now)
            await uow.commit()

    async def transactions_disconnected(self, feed: Feed,
                                        event: TransactionsDisconnected) -> None:
        now = self._clock()
        async with self._uow() as uow:
            touched = set(await uow.payments.unconfirm(feed.coins, event.txids))
            tip = await uow.cursors.get(feed.name)
            await self._reevaluate(uow, tip, touched, now)
            await self._review_refunds(
                uow, await uow.refund_watches.unconfirm(feed.coins, event.txids), tip, now)
            await uow.commit()

    async def mempool_seen(self, feed: Feed, event: MempoolSeen) -> None:
        now = self._clock()
        async with self._uow() as uow:
            tip = await uow.cursors.get(feed.name)
            loaded, refunds = await self._record(uow, event.payments, None, now, tip=tip)
            await self._reevaluate(uow, tip, set(loaded), now, loaded)
            await self._review_refunds(uow, refunds, tip, now)
            await uow.commit()

    async def mempool_gone(self, feed: Feed, event: MempoolGone) -> None:
        now = self._clock()
        async with self._uow() as uow:
            touched = set(await uow.payments.revert(feed.coins, event.txids))
            tip = await uow.cursors.get(feed.name)
            await self._reevaluate(uow, tip, touched, now)
            await self._review_refunds(
                uow, await uow.refund_watches.revert(feed.coins, event.txids), tip, now)
            await uow.commit()

    async def sweep(self) -> int:
        """Time-driven transitions (expiry, end of monitoring, time locks). Returns how
        many invoices changed."""
        now = self._clock()
        async with self._uow() as uow:
            due = await uow.invoices.due_by_time(now)
            tips = {coin: await uow.cursors.get(self._feed_of(coin))
                    for coin in {i.coin for i in due}}
            changed = await self._apply_many(uow, due, lambda i: tips[i.coin], now)
            await uow.commit()
        return changed

    async def _record(
        self, uow: ChainEventsUnit, found: Iterable[Observed], block: BlockRef | None,
        now: datetime, block_time: datetime | None = None, tip: BlockRef | None = None,
    ) -> tuple[dict[str, Invoice], set[str]]:
        """Matches a batch to invoices (one query per coin) and records it (a few
        statements); returns the invoices paid, locked, with their events, and the
        refunds whose watched addresses the rest of the batch pays."""
        by_coin: dict[str, list[Observed]] = {}
        for obs in found:
            by_coin.setdefault(obs.coin, []).append(obs)
        matched: list[tuple[Observed, Invoice]] = []
        strays: list[Observed] = []
        for coin, group in sorted(by_coin.items()):
            invoices = await uow.invoices.by_match_keys(coin, [o.match_key for o in group])
            matched.extend((o, invoices[o.match_key]) for o in group
                           if o.match_key in invoices)
            strays.extend(o for o in group if o.match_key not in invoices)
        refunds = await self._refund_outputs(uow, strays, block, now)
        rows = [NewPayment(obs.coin, obs.txid, obs.index, invoice.id, obs.amount,
                           _first_seen(obs, now), obs.lock)
                for obs, invoice in matched]
        new = await uow.payments.record_many(rows, block, block_time)
        loaded: dict[str, Invoice] = {}
        for (obs, invoice), row in zip(matched, rows, strict=True):
            loaded[invoice.id] = invoice
            key = (obs.coin, obs.txid, obs.index)
            if key in new:
                new.discard(key)  # announced once, even if the batch lists it twice
                conf = 1 if block is not None else 0
                lock, ref = obs.lock, block or tip
                locked = lock is not None and is_locked(
                    lock.height, lock.time, ref.height if ref else None, now)
                invoice.payment_received(ObservedPayment(
                    obs.txid, obs.index, obs.amount, conf, row.seen_at, locked=locked,
                    lock_height=lock.height if lock else None,
                    lock_time=lock.time if lock else None))
                uow.collect(invoice)
        return loaded, refunds

    async def _refund_outputs(self, uow: ChainEventsUnit, strays: list[Observed],
                              block: BlockRef | None, now: datetime) -> set[str]:
        """Outputs that pay no invoice may pay an approved refund's address: recorded
        like payments; returns the refunds paid."""
        rows: list[RefundOutput] = []
        for coin in sorted({o.coin for o in strays}):
            group = [o for o in strays if o.coin == coin]
            watches = await uow.refund_watches.by_match_keys(
                coin, [o.match_key for o in group])
            rows.extend(RefundOutput(watches[o.match_key].refund_id, coin, o.txid, o.index,
                                     o.amount) for o in group if o.match_key in watches)
        return set(await uow.refund_watches.record_many(rows, block, now))

    async def _review_refunds(self, uow: ChainEventsUnit, refund_ids: Iterable[str],
                              tip: BlockRef | None, now: datetime) -> None:
        """Each refund observes what pays its address: sent, completed, or back to
        waiting after a reorg; `refund.completed` goes out with the change."""
        ids = sorted(set(refund_ids))
        if not ids:
            return
        seen = await uow.refund_watches.sightings(ids, tip)
        for watch in await uow.refund_watches.get_many(ids):
            if not watch.observe(seen.get(watch.refund_id, []), now):
                continue
            await uow.refund_watches.save(watch)
            refund = await uow.refunds.get(watch.refund_id, for_update=True)
            if refund is not None and follow(refund, watch, now):
                await uow.refunds.save(refund)
                uow.collect(refund)

    async def _reevaluate(
        self, uow: ChainEventsUnit, tip: BlockRef | None, touched: set[str], now: datetime,
        loaded: dict[str, Invoice] | None = None,
    ) -> None:
        invoices = dict(loaded or {})
        for found in await uow.invoices.get_many(sorted(touched - invoices.keys())):
            invoices[found.id] = found
        await self._apply_many(uow, [invoices[i] for i in sorted(invoices)],
                               lambda _i: tip, now)

    async def _apply_many(
        self, uow: ChainEventsUnit, invoices: list[Invoice],
        tip_of: Callable[[Invoice], BlockRef | None], now: datetime,
    ) -> int:
        """Each invoice observes its payments (read in one query); the changed ones are
        saved in one statement. Returns how many changed."""
        if not invoices:
            return 0
        paid = await uow.payments.for_invoices([i.id for i in invoices])
        changed: list[Invoice] = []
        settled: list[tuple[Invoice, list[ObservedPayment]]] = []
        taken_back: list[tuple[Invoice, list[ObservedPayment]]] = []
        for invoice in invoices:
            before = (invoice.status, invoice.exception)
            was_settled = invoice.status is Status.SETTLED
            payments = observed(paid[invoice.id], tip_of(invoice), now)
            invoice.observe(payments, now, self._tolerance)
            if was_settled and any(p.reverted for p in payments):
                taken_back.append((invoice, payments))  # it may have bought time
            if (invoice.status, invoice.exception) == before and not invoice.events:
                continue
            changed.append(invoice)
            if invoice.status is Status.SETTLED and not was_settled:
                settled.append((invoice, payments))
        await uow.invoices.save_many(changed)
        for invoice, payments in sorted(settled, key=lambda s: (s[0].account_id, s[0].id)):
            # Activation, or the prepaid time a plan invoice buys (locks the account: two
            # invoices of one account settling at once announce it once).
            await self._prepaid.settled(uow, invoice, payments, now)
        for invoice, payments in sorted(taken_back, key=lambda s: (s[0].account_id, s[0].id)):
            await self._prepaid.reverted(uow, invoice, payments, now)
        return len(changed)


def _first_seen(obs: Observed, now: datetime) -> datetime:
    """First seen: by our node's mempool if it had it before we asked (the gateway was
    down), else now. Our own machines' clocks, never a miner's."""
    return min(now, obs.first_seen) if obs.first_seen is not None else now
