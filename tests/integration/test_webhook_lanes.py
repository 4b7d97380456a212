"""Delivery lanes, on a real database (SQLite file and PostgreSQL) and a real receiver on
loopback: one invoice's events arrive one at a time in commit order, the invoices of one
account go concurrently, and the events provisioning acts on (`invoice.settled`,
`account.*`) overtake a backlog of `invoice.created` instead of queueing behind it."""

import asyncio
import json
import os
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.adapters.db.engine import dispose, make_engine
from gateway.adapters.db.unit_of_work import SqlUnitOfWork
from gateway.adapters.db.webhooks import SqlDeliveryStore
from gateway.adapters.fields import FieldCipher
from gateway.domain.events import AccountDeleted, DomainEvent
from gateway.services.ports import EndpointRecord
from tests.support.events import activated
from tests.support.events import invoice_event as typed_invoice_event
from tests.support.nodes import free_port
from webhooks import signing
from webhooks.retry import RetryPolicy
from webhooks.targets import TargetPolicy
from webhooks.worker import DeliveryWorker

LOOPBACK = TargetPolicy.of(["127.0.0.0/8"])
ACCOUNT = "acc_1"
BACKLOG = 600


@dataclass
class Receiver:
    """Records each hit as (type, subject); answers after `delay`; counts overlaps."""

    delay: float = 0.0
    fail: set[tuple[str, str]] = field(default_factory=set)  # (type, subject) answered 500
    hits: list[tuple[str, str]] = field(default_factory=list)
    ok: list[tuple[str, str]] = field(default_factory=list)
    in_flight: Counter[str] = field(default_factory=Counter)
    overlap_per_invoice: int = 0
    active: int = 0
    peak: int = 0

    async def hook(self, request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        kind = "invoice_id" if body["type"].startswith("invoice.") else "account_id"
        subject = body["data"][kind]
        hit = (body["type"], subject)
        self.in_flight[subject] += 1
        self.active += 1
        self.peak = max(self.peak, self.active)
        if self.in_flight[subject] > 1 and body["type"].startswith("invoice."):
            self.overlap_per_invoice += 1
        try:
            await asyncio.sleep(self.delay)
            self.hits.append(hit)
            if hit in self.fail:
                return web.Response(status=500)
            self.ok.append(hit)
            return web.Response(status=204)
        finally:
            self.in_flight[subject] -= 1
            self.active -= 1

    def position(self, hit: tuple[str, str]) -> int:
        return self.ok.index(hit)


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


def invoice_event(type_: str, invoice: str) -> DomainEvent:
    return typed_invoice_event(type_, invoice, ACCOUNT)


async def publish(engine: AsyncEngine, cipher: FieldCipher, evts: list[DomainEvent],
                  now: datetime | None = None) -> None:
    async with SqlUnitOfWork(engine, cipher) as u:
        await u.outbox.publish(evts, now or datetime.now(UTC))
        await u.commit()


async def until(condition: object, what: str, seconds: float = 60) -> None:
    """Waits for a condition (a generous deadline against hangs, not a speed check)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not condition():  # type: ignore[operator]
        assert loop.time() < deadline, f"never: {what}"
        await asyncio.sleep(0.01)


async def test_a_settlement_overtakes_a_backlog_of_created_invoices(database_url: str) -> None:
    engine = make_engine(database_url)
    cipher = FieldCipher([("k", os.urandom(32))])
    receiver = Receiver(delay=0.02)
    last = f"inv_{BACKLOG - 1}"
    try:
        async with receiving(receiver) as url:
            async with SqlUnitOfWork(engine, cipher) as u:
                await u.endpoints.add(EndpointRecord("whe_1", url, (), "", True,
                                                     datetime.now(UTC)), signing.new_secret())
                await u.commit()
            # One merchant account with many checkouts: a backlog of invoice.created.
            for start in range(0, BACKLOG, 100):
                await publish(engine, cipher, [invoice_event("invoice.created", f"inv_{n}")
                                               for n in range(start, start + 100)])
            worker = DeliveryWorker(SqlDeliveryStore(engine, cipher),
                                    lambda: datetime.now(UTC), targets=LOOPBACK,
                                    concurrency=8, per_endpoint=4, idle_interval=0.05)
            task = asyncio.create_task(worker.run())
            try:
                await until(lambda: len(receiver.ok) >= 20, "the backlog flowing")
                # The last invoice of the backlog is paid: its invoice.created is still
                # at the back of the queue. The activation is recorded first here (as a
                # service may), yet follows the settlement that caused it.
                await publish(engine, cipher, [
                    activated(ACCOUNT, last),
                    invoice_event("invoice.payment_received", last),
                    invoice_event("invoice.settled", last),
                ])
                await until(lambda: ("account.activated", ACCOUNT) in receiver.ok,
                            "the activation")
                created_by_then = sum(1 for t, _ in receiver.ok if t == "invoice.created")
                await until(lambda: len(receiver.ok) == BACKLOG + 3, "every event")
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
    finally:
        await dispose(engine)
    # The settlement and the activation did not wait for the backlog...
    assert created_by_then < BACKLOG / 2, created_by_then
    # ...nor overtook what they must follow: the invoice's own story, then the activation.
    assert (receiver.position(("invoice.created", last))
            < receiver.position(("invoice.payment_received", last))
            < receiver.position(("invoice.settled", last))
            < receiver.position(("account.activated", ACCOUNT)))
    # One account's invoices went concurrently (bounded per endpoint), never two events
    # of one invoice at once, and each exactly once.
    assert 1 < receiver.peak <= 4
    assert receiver.overlap_per_invoice == 0
    assert len(set(receiver.ok)) == len(receiver.ok) == BACKLOG + 3


async def test_a_failing_event_holds_back_only_its_own_invoice(database_url: str) -> None:
    """Invoice A's first event fails: A's later events, the activation that names A, and
    the account's deletion (which follows everything of its account) wait for its retry;
    invoice B of the same account goes on."""
    engine = make_engine(database_url)
    cipher = FieldCipher([("k", os.urandom(32))])
    now = [datetime(2026, 3, 1, tzinfo=UTC)]
    receiver = Receiver(fail={("invoice.created", "inv_a")})
    schedule = (timedelta(seconds=5),)
    try:
        async with receiving(receiver) as url:
            async with SqlUnitOfWork(engine, cipher) as u:
                await u.endpoints.add(EndpointRecord("whe_1", url, (), "", True, now[0]),
                                      signing.new_secret())
                await u.commit()
            for evts in (
                [invoice_event("invoice.created", "inv_a"),
                 invoice_event("invoice.created", "inv_b")],
                [invoice_event("invoice.settled", "inv_a"),
                 activated(ACCOUNT, "inv_a")],
                [invoice_event("invoice.settled", "inv_b")],
                [AccountDeleted(ACCOUNT)],
            ):
                await publish(engine, cipher, evts, now[0])
            worker = DeliveryWorker(SqlDeliveryStore(engine, cipher), lambda: now[0],
                                    policy=RetryPolicy(schedule, jitter=0.0), targets=LOOPBACK,
                                    concurrency=4, per_endpoint=4)
            try:
                while await worker.run_once():
                    pass
                assert receiver.ok == [("invoice.created", "inv_b"),
                                       ("invoice.settled", "inv_b")]
                now[0] += schedule[0]
                receiver.fail.clear()
                while await worker.run_once():
                    pass
            finally:
                await worker.aclose()
    finally:
        await dispose(engine)
    assert receiver.ok[2:] == [("invoice.created", "inv_a"), ("invoice.settled", "inv_a"),
                               ("account.activated", ACCOUNT), ("account.deleted", ACCOUNT)]
