"""Concurrent delivery keeps each account's story in order: real database (SQLite file and
PostgreSQL), real aiohttp receiver on loopback answering after random small delays."""

import asyncio
import json
import os
import random
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.adapters.db.engine import make_engine
from gateway.adapters.db.tables import deliveries, delivery_attempts
from gateway.adapters.db.unit_of_work import SqlUnitOfWork
from gateway.adapters.db.webhooks import SqlDeliveryStore
from gateway.adapters.fields import FieldCipher
from gateway.services.ports import EndpointRecord
from tests.support.events import invoice_event
from tests.support.nodes import free_port
from webhooks import signing
from webhooks.retry import RetryPolicy
from webhooks.store import Attempt, PendingDelivery
from webhooks.targets import TargetPolicy
from webhooks.worker import DeliveryWorker

LOOPBACK = TargetPolicy.of(["127.0.0.0/8"])
T0 = datetime(2026, 3, 1, tzinfo=UTC)


@dataclass
class Receiver:
    """Records every hit; answers after a random 0-15 ms; tracks what is in flight."""

    fail_ids: set[str] = field(default_factory=set)  # webhook-ids answered 500
    hits: list[tuple[str, str, int]] = field(default_factory=list)  # (id, account, n)
    in_flight: Counter[str] = field(default_factory=Counter)
    overlap_per_account: int = 0  # must stay 0
    peak: int = 0
    active: int = 0

    async def hook(self, request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        event_id = request.headers["webhook-id"]
        account = body["data"]["account_id"]
        self.in_flight[account] += 1
        self.active += 1
        self.peak = max(self.peak, self.active)
        if self.in_flight[account] > 1:
            self.overlap_per_account += 1
        try:
            await asyncio.sleep(random.uniform(0, 0.015))
            self.hits.append((event_id, account, body["data"]["metadata"]["n"]))
            return web.Response(status=500 if event_id in self.fail_ids else 204)
        finally:
            self.in_flight[account] -= 1
            self.active -= 1

    def order(self, ok_only: bool = True) -> dict[str, list[int]]:
        seen: dict[str, list[int]] = defaultdict(list)
        for event_id, account, n in self.hits:
            if not ok_only or event_id not in self.fail_ids:
                seen[account].append(n)
        return seen


@asynccontextmanager
async def receiving(receiver: Receiver) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/h", receiver.hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/h"
    finally:
        await runner.cleanup()


class CountingStore(SqlDeliveryStore):
    """The real store, counting how many attempts each write carries."""

    def __init__(self, engine: AsyncEngine, cipher: FieldCipher) -> None:
        super().__init__(engine, cipher)
        self.writes: list[int] = []
        self.claimed: list[str] = []

    async def claim(self, now: datetime, limit: int, lease_seconds: float,
                    finished: Sequence[Attempt] = (), per_endpoint: int | None = None,
                    in_flight: Mapping[str, int] | None = None) -> list[PendingDelivery]:
        got = await super().claim(now, limit, lease_seconds, finished, per_endpoint,
                                  in_flight)
        if finished:
            self.writes.append(len(finished))
        self.claimed.extend(d.id for d in got)
        return got

    async def record(self, attempts: Sequence[Attempt]) -> None:
        await super().record(attempts)
        self.writes.append(len(attempts))


class RenewingStore(CountingStore):
    """Also counts the lease renewals of held deliveries."""

    def __init__(self, engine: AsyncEngine, cipher: FieldCipher) -> None:
        super().__init__(engine, cipher)
        self.renewals = 0

    async def renew(self, ids: Sequence[str], until: datetime) -> None:
        await super().renew(ids, until)
        if ids:
            self.renewals += 1


async def queue(engine: AsyncEngine, cipher: FieldCipher, url: str, accounts: int,
                per_account: int, now: datetime) -> dict[str, str]:
    """One event per account per transaction, step by step: event n of every account is
    committed before event n + 1. Returns webhook-id -> account of each first event."""
    async with SqlUnitOfWork(engine, cipher) as u:
        await u.endpoints.add(EndpointRecord("whe_1", url, (), "", True, now),
                              signing.new_secret())
        await u.commit()
    for n in range(per_account):
        async with SqlUnitOfWork(engine, cipher) as u:
            await u.outbox.publish(
                [invoice_event("invoice.payment_received", f"inv_{a}", f"acc_{a}", {"n": n})
                 for a in range(accounts)], now)
            await u.commit()
    firsts: dict[str, str] = {}
    async with engine.connect() as conn:
        from gateway.adapters.db.tables import events
        for row in await conn.execute(select(events.c.id, events.c.body)):
            data = json.loads(row.body)["data"]
            if data["metadata"]["n"] == 0:
                firsts[data["account_id"]] = row.id
    return firsts


async def until(condition: object, what: str, seconds: float = 60) -> None:
    """Waits for a condition (a generous deadline against hangs, not a speed check)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not condition():  # type: ignore[operator]
        assert loop.time() < deadline, f"never: {what}"
        await asyncio.sleep(0.02)


async def test_each_accounts_events_arrive_in_order_under_concurrency(
    database_url: str,
) -> None:
    engine = make_engine(database_url)
    cipher = FieldCipher([("k", os.urandom(32))])
    receiver = Receiver()
    accounts, per_account = 4, 16  # fewer accounts than slots: order must be enforced
    try:
        async with receiving(receiver) as url:
            await queue(engine, cipher, url, accounts, per_account, datetime.now(UTC))
            store = CountingStore(engine, cipher)
            worker = DeliveryWorker(store, lambda: datetime.now(UTC), targets=LOOPBACK,
                                    concurrency=8, per_endpoint=3)
            task = asyncio.create_task(worker.run())
            try:
                await until(lambda: len(receiver.hits) >= accounts * per_account
                            and sum(store.writes) >= accounts * per_account, "all delivered")
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        # Every account's events arrived in the order they were committed, and never
        # two of one account at once; yet deliveries did run concurrently.
        assert receiver.order() == {f"acc_{a}": list(range(per_account))
                                    for a in range(accounts)}
        assert receiver.overlap_per_account == 0
        assert 1 < receiver.peak <= 3  # bounded per endpoint
        assert len(receiver.hits) == accounts * per_account  # each delivered once
        # Results were written in batches, and every attempt is on record.
        assert max(store.writes) > 1 and len(store.writes) < accounts * per_account
        async with engine.connect() as conn:
            logged = (await conn.execute(
                select(func.count()).select_from(delivery_attempts))).scalar_one()
            rows = (await conn.execute(select(deliveries))).all()
        assert logged == accounts * per_account
        assert {(r.status, r.attempts, r.lease_until) for r in rows} == {("succeeded", 1, None)}
    finally:
        await engine.dispose()


async def test_a_failing_event_holds_back_only_its_own_account(database_url: str) -> None:
    engine = make_engine(database_url)
    cipher = FieldCipher([("k", os.urandom(32))])
    receiver = Receiver()
    now = [T0]
    schedule = (timedelta(seconds=5), timedelta(seconds=60))
    try:
        async with receiving(receiver) as url:
            firsts = await queue(engine, cipher, url, 6, 4, T0)
            receiver.fail_ids.add(firsts["acc_0"])  # acc_0's first event always fails
            store = CountingStore(engine, cipher)
            worker = DeliveryWorker(store, lambda: now[0],
                                    policy=RetryPolicy(schedule, jitter=0.0),
                                    targets=LOOPBACK, concurrency=4, per_endpoint=4)
            try:
                while await worker.run_once():
                    pass
                # Everyone else's story is complete; acc_0 waits behind its failing head.
                order = receiver.order(ok_only=False)
                assert {a: order[a] for a in order if a != "acc_0"} == {
                    f"acc_{a}": [0, 1, 2, 3] for a in range(1, 6)}
                assert order["acc_0"] == [0]
                # Its later events wait for its retry (a claim need not look at them).
                async with engine.connect() as conn:
                    waiting = (await conn.execute(
                        select(deliveries.c.next_attempt_at).where(
                            deliveries.c.status == "pending"))).scalars().all()
                assert waiting == [T0 + schedule[0]] * 4
                # The retries come due (the clock jumps); when the first is given up,
                # the rest of acc_0 follows, in order.
                for step in schedule:
                    now[0] += step
                    while await worker.run_once():
                        pass
                assert receiver.order(ok_only=False)["acc_0"] == [0, 0, 0, 1, 2, 3]
            finally:
                await worker.aclose()
        async with engine.connect() as conn:
            rows = {r.event_id: r for r in (await conn.execute(select(deliveries))).all()}
            logged = (await conn.execute(
                select(func.count()).select_from(delivery_attempts))).scalar_one()
        failed = rows.pop(firsts["acc_0"])
        assert (failed.status, failed.attempts, failed.last_status_code) == ("failed", 3, 500)
        assert {r.status for r in rows.values()} == {"succeeded"}
        assert logged == len(receiver.hits) == 6 * 4 + 2
    finally:
        await engine.dispose()


async def test_several_workers_never_send_one_delivery_twice(database_url: str) -> None:
    """Three workers (three engines, as three instances would have) on one database:
    each delivery is sent exactly once and every account's order holds across them."""
    engines = [make_engine(database_url) for _ in range(3)]
    cipher = FieldCipher([("k", os.urandom(32))])
    receiver = Receiver()
    accounts, per_account = 20, 6
    try:
        async with receiving(receiver) as url:
            await queue(engines[0], cipher, url, accounts, per_account, datetime.now(UTC))
            stores = [CountingStore(e, cipher) for e in engines]
            workers = [DeliveryWorker(s, lambda: datetime.now(UTC), targets=LOOPBACK,
                                      concurrency=6, per_endpoint=6) for s in stores]
            tasks = [asyncio.create_task(w.run()) for w in workers]
            try:
                await until(lambda: sum(sum(s.writes) for s in stores)
                            >= accounts * per_account, "all delivered")
            finally:
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        claimed = [d for s in stores for d in s.claimed]
        assert len(claimed) == len(set(claimed)) == accounts * per_account
        assert sum(1 for s in stores if s.claimed) > 1  # the work was shared
        ids = Counter(event_id for event_id, _, _ in receiver.hits)
        assert len(ids) == accounts * per_account and set(ids.values()) == {1}
        assert receiver.overlap_per_account == 0
        assert receiver.order() == {f"acc_{a}": list(range(per_account))
                                    for a in range(accounts)}
    finally:
        for e in engines:
            await e.dispose()


async def test_a_request_longer_than_the_lease_is_not_sent_twice(database_url: str) -> None:
    """The lease is short (a dead worker's deliveries are taken over quickly) and renewed
    while a worker holds the delivery: a request lasting several leases is not claimed
    and sent again meanwhile. A worker stopped mid-request leaves the delivery to another
    after its lease, still before the account's next event."""
    engine = make_engine(database_url)
    cipher = FieldCipher([("k", os.urandom(32))])
    receiver = Receiver()
    slow = asyncio.Event()
    taker_store = RenewingStore(engine, cipher)

    async def hook(request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        receiver.hits.append((request.headers["webhook-id"], body["data"]["account_id"],
                              body["data"]["metadata"]["n"]))
        if body["data"]["metadata"]["n"] == 0 and len(receiver.hits) == 1:
            await slow.wait()  # the first request hangs until released
        elif body["data"]["metadata"]["n"] == 0 and body["data"]["account_id"] == "acc_0":
            # Held while the lease (0.5 s, renewed every third of it) is renewed six
            # times: two leases' worth.
            renewed = taker_store.renewals
            await until(lambda: taker_store.renewals >= renewed + 6, "six lease renewals")
        return web.Response(status=204)

    receiver.hook = hook  # type: ignore[method-assign]
    try:
        async with receiving(receiver) as url:
            await queue(engine, cipher, url, 1, 3, datetime.now(UTC))

            def worker(store: SqlDeliveryStore) -> DeliveryWorker:
                return DeliveryWorker(store, lambda: datetime.now(UTC), targets=LOOPBACK,
                                      timeout=10, lease_seconds=0.5, idle_interval=0.05)

            first, second = worker(SqlDeliveryStore(engine, cipher)), worker(taker_store)
            crashed = asyncio.create_task(first.run())
            await until(lambda: len(receiver.hits) == 1, "first request")
            crashed.cancel()  # stops mid-request: no result, its lease runs out
            await asyncio.gather(crashed, return_exceptions=True)
            slow.set()
            taker = asyncio.create_task(second.run())
            try:
                await until(lambda: len(receiver.hits) == 4, "three events, one twice")
                # Room for any duplicate, up to a positive end: everything the taker
                # claimed has its result written (nothing of it is in flight), and it
                # claimed each delivery once.
                await until(lambda: sum(taker_store.writes) == len(taker_store.claimed) >= 3,
                            "the taker's attempts recorded")
            finally:
                taker.cancel()
                await asyncio.gather(taker, return_exceptions=True)
        # Event 0 twice (the stopped worker's, then the taker's slow one, held past
        # several leases and sent once), then 1 and 2.
        assert [n for _, _, n in receiver.hits] == [0, 0, 1, 2]
        assert receiver.hits[0][0] == receiver.hits[1][0]  # the same webhook-id
        assert len(taker_store.claimed) == len(set(taker_store.claimed)) == 3
        async with engine.connect() as conn:
            rows = (await conn.execute(select(deliveries))).all()
        assert {(r.status, r.lease_until) for r in rows} == {("succeeded", None)}
    finally:
        await engine.dispose()
