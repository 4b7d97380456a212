from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import and_, bindparam, case, exists, insert, or_, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from chains.base import BlockRef, Destination, Lock
from gateway.adapters.db.tables import chain_cursors, derivation_counters, invoices, payments
from gateway.domain.invoices import (
    Invoice,
    InvoiceException,
    InvoiceTerms,
    LockedRate,
    Status,
)
from gateway.domain.money import Fiat
from gateway.domain.payments import PaymentStatus
from gateway.services.ports import InvoiceRecord, NewPayment, PaymentRecord

T = TypeVar("T")


def _chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def _invoice(row: Any) -> Invoice:
    r = row._mapping
    return Invoice(
        id=r["id"],
        account_id=r["account_id"],
        coin=r["coin"],
        price=Fiat(r["price_minor"], r["price_currency"]),
        rate=LockedRate(r["rate_value"], r["rate_source"], r["rate_locked_at"]),
        terms=InvoiceTerms(
            amount_due=r["amount_due"],
            decimals=r["decimals"],
            confirmations_required=r["confirmations_required"],
            expires_at=r["expires_at"],
            monitoring_until=r["monitoring_until"],
            tolerance_basis_points=r["tolerance_basis_points"],
            accept_late_payments=r["accept_late_payments"],
        ),
        created_at=r["created_at"],
        metadata=dict(r["metadata"]),
        status=Status(r["status"]),
        exception=InvoiceException(r["exception"]) if r["exception"] else None,
        settled_at=r["settled_at"],
    )


def _payment(row: Any) -> PaymentRecord:
    lock = None
    if row.lock_height is not None or row.lock_time is not None:
        lock = Lock(row.lock_height, row.lock_time)
    return PaymentRecord(
        row.txid, row.output_index, row.amount, row.block_hash, row.block_height,
        PaymentStatus(row.status), row.seen_at, row.block_time, row.coin, lock,
    )


# Built once, executed with parameters: a statement object keeps its cache key, so each
# execution skips building, keying and compiling (100-150 us a statement).
_INSERT_INVOICE = insert(invoices)
_ALLOCATE = (update(derivation_counters)
             .where(derivation_counters.c.space == bindparam("a_space"))
             .values(next_index=derivation_counters.c.next_index + bindparam("a_count"))
             .returning(derivation_counters.c.next_index))
# An invoice with its payments and its feed's tip, in one statement. Built once per feed
# mapping (the configured coins: one or two per process) and reused: a statement object
# keeps its cache key, so executing it again skips building, keying and compiling.
_PAID = tuple(payments.c[n].label(f"p_{n}") for n in (
    "txid", "output_index", "amount", "block_hash", "block_height", "status", "seen_at",
    "block_time", "coin", "lock_height", "lock_time"))
_WITH_TIP: dict[tuple[tuple[str, str], ...], Any] = {}


def _with_tip(feeds: Mapping[str, str]) -> Any:
    key = tuple(sorted(feeds.items()))
    statement = _WITH_TIP.get(key)
    if statement is None:
        feed = case(dict(key), value=invoices.c.coin, else_=invoices.c.coin) if key \
            else invoices.c.coin
        statement = _WITH_TIP[key] = (
            select(invoices, *_PAID, chain_cursors.c.height.label("tip_height"),
                   chain_cursors.c.hash.label("tip_hash"))
            .select_from(invoices.outerjoin(payments, payments.c.invoice_id == invoices.c.id)
                         .outerjoin(chain_cursors, chain_cursors.c.feed == feed))
            .where(invoices.c.id == bindparam("invoice_id"))
            .order_by(payments.c.seen_at, payments.c.id))
    return statement


def _labelled_payment(row: Any) -> PaymentRecord:
    lock = None
    if row.p_lock_height is not None or row.p_lock_time is not None:
        lock = Lock(row.p_lock_height, row.p_lock_time)
    return PaymentRecord(
        row.p_txid, row.p_output_index, row.p_amount, row.p_block_hash, row.p_block_height,
        PaymentStatus(row.p_status), row.p_seen_at, row.p_block_time, row.p_coin, lock,
    )


class SqlInvoices:
    def __init__(self, conn: AsyncConnection,
                 collect: Callable[[Invoice], None] = lambda _i: None,
                 allocator: AsyncEngine | None = None) -> None:
        self._conn = conn
        self._allocator = allocator  # PostgreSQL: a small pool of its own for `allocate`
        self._collect = collect  # the unit of work publishes the events at commit

    async def allocate(self, space: str, count: int = 1) -> range:
        """`count` fresh indexes of the address space, never handed out twice, whichever
        coin of the space they are for. PostgreSQL with an `allocator`: one upsert in its
        own transaction on the allocator's own pool (never waiting for a connection the
        creators hold), so the counter's row lock is held for that statement only (not to
        this transaction's commit, which made creators take turns); an index whose invoice
        then fails to commit stays unused. Otherwise in this transaction: the UPDATE holds
        the row lock (PostgreSQL) or the one write lock (SQLite) to commit, and a rollback
        gives the index back."""
        if count < 1:
            raise ValueError("count must be positive")
        if self._allocator is not None and self._conn.dialect.name == "postgresql":
            return await self._allocate_apart(self._allocator, space, count)
        for _ in range(3):
            result = await self._conn.execute(_ALLOCATE, {"a_space": space, "a_count": count})
            value = result.scalar_one_or_none()
            if value is not None:
                return range(int(value) - count, int(value))
            try:
                async with self._conn.begin_nested():
                    await self._conn.execute(
                        insert(derivation_counters).values(space=space, next_index=count)
                    )
                return range(0, count)
            except IntegrityError:
                continue  # another instance created the counter first
        raise RuntimeError("could not allocate a derivation index")

    @staticmethod
    async def _allocate_apart(engine: AsyncEngine, space: str, count: int) -> range:
        c = derivation_counters.c
        upsert = pg_insert(derivation_counters).values(
            space=space, next_index=count,
        ).on_conflict_do_update(
            index_elements=[c.space], set_={"next_index": c.next_index + count},
        ).returning(c.next_index)
        async with engine.connect() as apart, apart.begin():
            value = int((await apart.execute(upsert)).scalar_one())
        return range(value - count, value)

    async def add(self, invoice: Invoice, space: str, destination: Destination,
                  payment_uri: str) -> None:
        t = invoice.terms
        self._collect(invoice)
        await self._conn.execute(
            _INSERT_INVOICE, dict(
                id=invoice.id,
                account_id=invoice.account_id,
                coin=invoice.coin,
                price_minor=invoice.price.minor,
                price_currency=invoice.price.currency,
                rate_value=invoice.rate.value,
                rate_source=invoice.rate.source,
                rate_locked_at=invoice.rate.locked_at,
                amount_due=t.amount_due,
                decimals=t.decimals,
                confirmations_required=t.confirmations_required,
                tolerance_basis_points=t.tolerance_basis_points,
                accept_late_payments=t.accept_late_payments,
                address_space=space,
                derivation_index=destination.index,
                address=destination.address,
                match_key=destination.match_key,
                payment_uri=payment_uri,
                status=invoice.status.value,
                exception=invoice.exception.value if invoice.exception else None,
                metadata=invoice.metadata,
                created_at=invoice.created_at,
                expires_at=t.expires_at,
                monitoring_until=t.monitoring_until,
                settled_at=invoice.settled_at,
            )
        )

    @staticmethod
    def _by_id(invoice_id: str) -> Any:
        return select(invoices).where(invoices.c.id == invoice_id)

    async def get(self, invoice_id: str, for_update: bool = False) -> Invoice | None:
        query = self._by_id(invoice_id)
        if for_update:
            # Held to commit: a concurrent transition (watcher, sweeper, another instance)
            # waits, then sees the new state, so no transition or event happens twice.
            query = query.with_for_update()
        row = (await self._conn.execute(query)).first()
        return _invoice(row) if row else None

    async def read(self, invoice_id: str) -> InvoiceRecord | None:
        row = (await self._conn.execute(self._by_id(invoice_id))).first()
        if row is None:
            return None
        return InvoiceRecord(
            _invoice(row), row.address, row.payment_uri,
            tuple(await self._payments(invoice_id)),
        )

    async def read_with_tip(self, invoice_id: str, feeds: Mapping[str, str]
                            ) -> tuple[InvoiceRecord, BlockRef | None] | None:
        rows = (await self._conn.execute(_with_tip(feeds), {"invoice_id": invoice_id})).all()
        if not rows:
            return None
        first = rows[0]
        paid = tuple(_labelled_payment(r) for r in rows if r.p_txid is not None)
        tip = None if first.tip_height is None else BlockRef(first.tip_height, first.tip_hash)
        return InvoiceRecord(_invoice(first), first.address, first.payment_uri, paid), tip

    async def _payments(self, invoice_id: str) -> list[PaymentRecord]:
        rows = await self._conn.execute(
            select(payments)
            .where(payments.c.invoice_id == invoice_id)
            .order_by(payments.c.seen_at, payments.c.id)
        )
        return [_payment(r) for r in rows]

    async def page(
        self, account_id: str | None, status: Status | None, after: str | None, limit: int
    ) -> list[InvoiceRecord]:
        query = select(invoices).order_by(invoices.c.created_at.desc(), invoices.c.id.desc())
        if account_id is not None:
            query = query.where(invoices.c.account_id == account_id)
        if status is not None:
            query = query.where(invoices.c.status == status)
        if after is not None:
            anchor = (
                await self._conn.execute(
                    select(invoices.c.created_at).where(invoices.c.id == after)
                )
            ).scalar_one_or_none()
            if anchor is not None:
                query = query.where(
                    or_(
                        invoices.c.created_at < anchor,
                        and_(invoices.c.created_at == anchor, invoices.c.id < after),
                    )
                )
        rows = (await self._conn.execute(query.limit(limit))).all()
        # One query for the page's payments: a statement per invoice would give the loop
        # up that many times (each statement yields), and a page would wait that long.
        paid: dict[str, list[PaymentRecord]] = {r.id: [] for r in rows}
        if rows:
            for p in await self._conn.execute(
                select(payments).where(payments.c.invoice_id.in_(list(paid)))
                .order_by(payments.c.seen_at, payments.c.id)
            ):
                paid[p.invoice_id].append(_payment(p))
        return [InvoiceRecord(_invoice(r), r.address, r.payment_uri, tuple(paid[r.id]))
                for r in rows]

    async def by_match_keys(self, coin: str, match_keys: Sequence[bytes]) -> dict[bytes,
                                                                                  Invoice]:
        """The invoices these keys belong to, locked to commit: one query for a batch."""
        if not match_keys:
            return {}
        rows = await self._conn.execute(
            select(invoices).where(invoices.c.coin == coin,
                                   invoices.c.match_key.in_(sorted(set(match_keys))))
            .order_by(invoices.c.id)
            .with_for_update()
        )
        return {bytes(r.match_key): _invoice(r) for r in rows}

    async def get_many(self, invoice_ids: Sequence[str]) -> list[Invoice]:
        """These invoices, locked to commit, in id order (one lock order for everyone)."""
        if not invoice_ids:
            return []
        rows = await self._conn.execute(
            select(invoices).where(invoices.c.id.in_(sorted(set(invoice_ids))))
            .order_by(invoices.c.id).with_for_update())
        return [_invoice(r) for r in rows]

    async def reaching_depth(self, coins: Sequence[str], after: int, upto: int,
                             max_required: int, now: datetime) -> list[str]:
        """Invoices still open to change with a confirmed payment whose confirmations reach
        the invoice's requirement at a tip height in (after, upto], or with a payment whose
        lock passes then (or a lock by time): what a new block changes besides the
        invoices it pays. Each by an index: no scan of every open invoice."""
        p, i = payments.c, invoices.c
        reach = p.block_height + i.confirmations_required - 1
        found: set[str] = set()
        for where in (
            # By the index on (coin, block_height); the exact test follows.
            (p.block_height > after + 1 - max_required, p.block_height <= upto,
             reach > after, reach <= upto),
            # A lock holds until its height is the next block's (`is_locked`).
            (p.lock_height > after + 1, p.lock_height <= upto + 1),
            (p.lock_time.is_not(None),),
        ):
            rows = await self._conn.execute(
                select(p.invoice_id).distinct()
                .join(invoices, i.id == p.invoice_id)
                .where(p.coin.in_(list(coins)), p.status == PaymentStatus.CONFIRMED.value,
                       _open_to_change(now), *where))
            found.update(str(r) for r in rows.scalars())
        return sorted(found)

    async def open_for_account(self, account_id: str, now: datetime) -> list[Invoice]:
        rows = await self._conn.execute(
            select(invoices)
            .where(invoices.c.account_id == account_id,
                   invoices.c.status == Status.NEW.value, invoices.c.expires_at > now)
            .order_by(invoices.c.created_at.desc(), invoices.c.id.desc())
            .limit(1000)
        )
        return [_invoice(r) for r in rows]

    async def open_with_payments(self, coins: Sequence[str], now: datetime) -> list[Invoice]:
        has_payment = exists().where(
            payments.c.invoice_id == invoices.c.id,
            payments.c.status != PaymentStatus.REVERTED.value,
        )
        rows = await self._conn.execute(
            select(invoices).where(
                invoices.c.coin.in_(list(coins)),
                _open_to_change(now),
                has_payment,
            )
            .order_by(invoices.c.id)
            .with_for_update()
        )
        return [_invoice(r) for r in rows]

    async def due_by_time(self, now: datetime) -> list[Invoice]:
        rows = await self._conn.execute(
            select(invoices)
            .where(
                or_(
                    and_(invoices.c.status == Status.NEW.value, invoices.c.expires_at <= now),
                    and_(
                        invoices.c.status == Status.PROCESSING.value,
                        invoices.c.monitoring_until <= now,
                    ),
                )
            )
            .order_by(invoices.c.id)
            .limit(500)
            .with_for_update(skip_locked=True)
        )
        return [_invoice(r) for r in rows]

    async def save_many(self, changed: Sequence[Invoice]) -> None:
        """`save` for many, in one statement."""
        if not changed:
            return
        for invoice in changed:
            self._collect(invoice)
        await self._conn.execute(
            update(invoices).where(invoices.c.id == bindparam("b_id")).values(
                status=bindparam("b_status"), exception=bindparam("b_exception"),
                settled_at=bindparam("b_settled_at")),
            [{"b_id": inv.id, "b_status": inv.status.value,
              "b_exception": inv.exception.value if inv.exception else None,
              "b_settled_at": inv.settled_at} for inv in changed],
        )

    async def save(self, invoice: Invoice) -> None:
        self._collect(invoice)
        await self._conn.execute(
            update(invoices)
            .where(invoices.c.id == invoice.id)
            .values(
                status=invoice.status.value,
                exception=invoice.exception.value if invoice.exception else None,
                settled_at=invoice.settled_at,
                expires_at=invoice.terms.expires_at,  # `withdraw` brings it forward
            )
        )

    async def address_usage(self, space: str) -> tuple[int, set[int]]:
        derived = (await self._conn.execute(
            select(derivation_counters.c.next_index).where(derivation_counters.c.space == space)
        )).scalar_one_or_none() or 0
        used = (await self._conn.execute(
            select(invoices.c.derivation_index).distinct()
            .join(payments, payments.c.invoice_id == invoices.c.id)
            .where(invoices.c.address_space == space,
                   payments.c.status == PaymentStatus.CONFIRMED.value)
        )).scalars()
        return int(derived), set(used)


def _new_row(r: NewPayment, block: BlockRef | None,
             block_time: datetime | None) -> dict[str, Any]:
    """A payments row for `r`, first seen in `block` (None: the mempool)."""
    return {"coin": r.coin, "txid": r.txid, "output_index": r.index,
            "invoice_id": r.invoice_id, "amount": r.amount,
            "block_hash": block.hash if block else None,
            "block_height": block.height if block else None,
            "status": (PaymentStatus.CONFIRMED if block else PaymentStatus.PENDING).value,
            "seen_at": r.seen_at, "block_time": block_time if block else None,
            "lock_height": r.lock.height if r.lock else None,
            "lock_time": r.lock.time if r.lock else None}


def _open_to_change(now: datetime) -> Any:
    """Not final: waiting or processing, or expired but still watched for a late payment."""
    return or_(
        invoices.c.status.in_([Status.NEW.value, Status.PROCESSING.value]),
        and_(invoices.c.status == Status.EXPIRED.value, invoices.c.monitoring_until > now),
    )


class SqlPayments:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn
        self.touched: set[str] = set()  # invoices whose payments this unit changed

    async def record(
        self, coin: str, txid: str, index: int, invoice_id: str, amount: int,
        block: BlockRef | None, seen_at: datetime, block_time: datetime | None = None,
        lock: Lock | None = None,
    ) -> bool:
        key = (payments.c.coin == coin, payments.c.txid == txid, payments.c.output_index == index)
        self.touched.add(invoice_id)
        row = (await self._conn.execute(select(payments.c.status).where(*key))).first()
        if row is None:
            await self._conn.execute(
                insert(payments).values(
                    coin=coin, txid=txid, output_index=index, invoice_id=invoice_id,
                    amount=amount,
                    block_hash=block.hash if block else None,
                    block_height=block.height if block else None,
                    status=(PaymentStatus.CONFIRMED if block else PaymentStatus.PENDING).value,
                    seen_at=seen_at,
                    block_time=block_time if block else None,
                    lock_height=lock.height if lock else None,
                    lock_time=lock.time if lock else None,
                )
            )
            return True
        if block is not None:
            await self._conn.execute(
                update(payments).where(*key).values(
                    block_hash=block.hash, block_height=block.height,
                    status=PaymentStatus.CONFIRMED.value,
                )
            )
        elif row.status == PaymentStatus.REVERTED:
            await self._conn.execute(
                update(payments).where(*key).values(status=PaymentStatus.PENDING.value))
        return False

    async def record_many(self, rows: Sequence[NewPayment], block: BlockRef | None,
                          block_time: datetime | None) -> set[tuple[str, str, int]]:
        """`record` for a batch of one block (or of the mempool): one query for what is
        known, one multi-row insert for what is not, one update each for what a block
        confirms and what comes back to the mempool. Returns the keys (coin, txid,
        index) never seen before."""
        if not rows:
            return set()
        self.touched.update(r.invoice_id for r in rows)
        keys = [(r.coin, r.txid, r.index) for r in rows]
        known = await self._statuses(keys)
        new: dict[tuple[str, str, int], NewPayment] = {}
        for key, r in zip(keys, rows, strict=True):
            if key not in known and key not in new:
                new[key] = r
        if new:
            await self._conn.execute(insert(payments), [
                _new_row(r, block, block_time) for r in new.values()])
        if block is not None:
            await self._set_where(sorted(known), block_hash=block.hash,
                                  block_height=block.height,
                                  status=PaymentStatus.CONFIRMED.value)
        else:
            back = [k for k, status in known.items() if status == PaymentStatus.REVERTED.value]
            await self._set_where(sorted(back), status=PaymentStatus.PENDING.value)
        return set(new)

    async def _statuses(self, keys: Sequence[tuple[str, str, int]]
                        ) -> dict[tuple[str, str, int], str]:
        """The status of each of these payments that is recorded already."""
        p = payments.c
        known: dict[tuple[str, str, int], str] = {}
        for chunk in _chunks(sorted(set(keys)), 300):
            found = await self._conn.execute(
                select(p.coin, p.txid, p.output_index, p.status)
                .where(tuple_(p.coin, p.txid, p.output_index).in_(chunk)))
            known.update({(f.coin, f.txid, f.output_index): f.status for f in found})
        return known

    async def _set_where(self, keys: Sequence[tuple[str, str, int]], **values: Any) -> None:
        """These payments (by key, a few hundred per statement) get `values`."""
        p = payments.c
        for chunk in _chunks(keys, 300):
            await self._conn.execute(
                update(payments).where(tuple_(p.coin, p.txid, p.output_index).in_(chunk))
                .values(**values))

    async def for_invoices(self, invoice_ids: Sequence[str]) -> dict[str, list[PaymentRecord]]:
        """Each invoice's payments, oldest first, in one query per few hundred invoices."""
        found: dict[str, list[PaymentRecord]] = {i: [] for i in invoice_ids}
        for chunk in _chunks(sorted(set(invoice_ids)), 500):
            rows = await self._conn.execute(
                select(payments).where(payments.c.invoice_id.in_(chunk))
                .order_by(payments.c.id))
            for r in rows:
                found[r.invoice_id].append(_payment(r))
        return found

    async def _unconfirm(self, where: Any) -> list[str]:
        ids = (await self._conn.execute(select(payments.c.invoice_id).where(*where))).scalars()
        found = sorted(set(ids))
        self.touched.update(found)
        await self._conn.execute(
            update(payments).where(*where).values(
                block_hash=None, block_height=None, status=PaymentStatus.PENDING.value
            )
        )
        return found

    async def disconnect(self, coins: Sequence[str], block_hash: str) -> list[str]:
        return await self._unconfirm((payments.c.coin.in_(list(coins)),
                                      payments.c.block_hash == block_hash))

    async def unconfirm(self, coins: Sequence[str], txids: Sequence[str]) -> list[str]:
        return await self._unconfirm((payments.c.coin.in_(list(coins)),
                                      payments.c.txid.in_(list(txids)),
                                      payments.c.status == PaymentStatus.CONFIRMED.value))

    async def revert(self, coins: Sequence[str], txids: Sequence[str]) -> list[str]:
        where = (
            payments.c.coin.in_(list(coins)), payments.c.txid.in_(list(txids)),
            payments.c.status == PaymentStatus.PENDING.value,
        )
        ids = (await self._conn.execute(select(payments.c.invoice_id).where(*where))).scalars()
        found = sorted(set(ids))
        self.touched.update(found)
        await self._conn.execute(
            update(payments).where(*where).values(status=PaymentStatus.REVERTED.value))
        return found

    async def unconfirmed_txids(self, coins: Sequence[str]) -> list[str]:
        rows = await self._conn.execute(
            select(payments.c.txid)
            .where(payments.c.coin.in_(list(coins)),
                   payments.c.status == PaymentStatus.PENDING.value)
            .distinct()
        )
        return list(rows.scalars())
