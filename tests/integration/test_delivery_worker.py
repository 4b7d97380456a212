"""The delivery worker against a real database and real sockets, with the clock injected:
the whole default retry window (about 27 hours) passes in a second."""

import asyncio
import contextlib
import os
from datetime import UTC, datetime, timedelta

from aiohttp import web
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook

from gateway.adapters.db.engine import make_engine
from gateway.adapters.db.tables import deliveries
from gateway.adapters.db.unit_of_work import SqlUnitOfWork
from gateway.adapters.db.webhooks import SqlDeliveryStore
from gateway.adapters.fields import FieldCipher
from gateway.domain.events import AccountCreated
from gateway.services.ports import EndpointRecord
from gateway.services.webhook_events import WebhookEventService
from tests.support.nodes import free_port
from webhooks import signing
from webhooks.retry import DEFAULT_SCHEDULE, RetryPolicy
from webhooks.targets import TargetPolicy
from webhooks.worker import DeliveryWorker

T0 = datetime(2026, 3, 1, tzinfo=UTC)
LOOPBACK = TargetPolicy.of(["127.0.0.0/8"])


async def test_down_for_the_whole_window_then_redelivered(database_url: str) -> None:
    engine = make_engine(database_url)
    cipher = FieldCipher([("k", os.urandom(32))])
    port = free_port()  # nothing listens here yet: connection refused
    secret = signing.new_secret()
    now = [T0]

    def uow() -> SqlUnitOfWork:
        return SqlUnitOfWork(engine, cipher)

    try:
        async with uow() as u:
            await u.endpoints.add(EndpointRecord("whe_1", f"http://127.0.0.1:{port}/h", (), "",
                                                 True, T0), secret)
            await u.outbox.publish([AccountCreated(f"acc_{i}") for i in range(3)], T0)
            await u.commit()
        worker = DeliveryWorker(SqlDeliveryStore(engine, cipher), lambda: now[0],
                                policy=RetryPolicy(jitter=0.0), timeout=2, targets=LOOPBACK)
        attempts = 0
        while True:
            sent = await worker.run_once()
            attempts += sent
            async with engine.connect() as conn:
                rows = (await conn.execute(select(deliveries))).all()
            due = [r.next_attempt_at for r in rows if r.status == "pending"]
            if not due:
                break
            now[0] = max(due)  # jump to the next scheduled retry
        async with engine.connect() as conn:
            rows = (await conn.execute(select(deliveries))).all()
        assert {r.status for r in rows} == {"failed"}
        assert {r.last_error for r in rows} == {"connection_refused"}  # a class, no port
        assert all(r.attempts == len(DEFAULT_SCHEDULE) + 1 for r in rows)
        assert attempts == 3 * (len(DEFAULT_SCHEDULE) + 1)
        assert now[0] - T0 >= sum(DEFAULT_SCHEDULE, timedelta()) - timedelta(seconds=1)

        # The receiver recovers; failed deliveries are queued again and all arrive.
        got: list[tuple[dict[str, str], bytes]] = []

        async def hook(request: web.Request) -> web.Response:
            got.append(({k.lower(): v for k, v in request.headers.items()}, await request.read()))
            return web.Response(status=204)

        app = web.Application()
        app.router.add_post("/h", hook)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            queued = await WebhookEventService(uow, lambda: now[0]).redeliver_failed(T0)
            assert queued == 3
            # The receiver checks timestamps against the real clock, so sign with it now.
            now[0] = datetime.now(UTC)
            assert await worker.run_once() == 3
        finally:
            await runner.cleanup()
            await worker.aclose()
        event_ids = {r.event_id for r in rows}
        assert {h["webhook-id"] for h, _ in got} == event_ids
        for headers, body in got:
            Webhook(secret).verify(body, headers)
    finally:
        await engine.dispose()


async def test_a_burst_to_one_endpoint_is_claimed_in_batches(database_url: str) -> None:
    """300 deliveries to one endpoint: the worker refills its queue for the endpoint when
    half of it is gone, not with a claim (a walk of the due deliveries) per finished
    delivery; every delivery arrives once. (A claim per finished delivery made 246 on
    SQLite; on PostgreSQL, where a claim takes longer, finished ones coalesce: 78.)"""
    engine = make_engine(database_url)
    cipher = FieldCipher([("k", os.urandom(32))])
    received: list[str] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(request.headers["webhook-id"])
        await asyncio.sleep(0.002 * (len(received) % 3))  # answers finish one by one
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/h", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    store = SqlDeliveryStore(engine, cipher)
    claims = 0
    claim = store.claim

    async def counting(*args: object, **kwargs: object) -> object:
        nonlocal claims
        claims += 1
        return await claim(*args, **kwargs)  # type: ignore[arg-type]

    store.claim = counting  # type: ignore[method-assign]
    try:
        async with SqlUnitOfWork(engine, cipher) as u:
            await u.endpoints.add(EndpointRecord("whe_1", f"http://127.0.0.1:{port}/h", (),
                                                 "", True, T0), signing.new_secret())
            await u.outbox.publish([AccountCreated(f"acc_{i}") for i in range(300)], T0)
            await u.commit()
        worker = DeliveryWorker(store, lambda: T0, targets=LOOPBACK, concurrency=8,
                                per_endpoint=4)  # up to 8 held for the endpoint, 4 sent
        task = asyncio.create_task(worker.run())
        try:
            async with asyncio.timeout(60):
                while len(received) < 300:
                    await asyncio.sleep(0.05)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        assert len(set(received)) == 300
        # Refilled 4 (half of 8) at a time, plus a claim per idle interval (1 s) at most.
        assert claims <= 300 // 4 + 15, claims
    finally:
        await runner.cleanup()
        await engine.dispose()
