"""P5, webhook throughput: the real delivery worker and the real SQLite store delivering
N pre-queued events (several per invoice, so per-invoice ordering is in play) to a local
aiohttp receiver in another process, against a bare aiohttp client posting the same
bodies to the same receiver with the same concurrency, in the same run.
Run: `make bench` or `.venv/bin/python bench/webhooks.py [N] [--postgresql]`."""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp
from aiohttp import web

GOAL_RATE = 1000.0  # deliveries/s
GOAL_RATIO = 0.4  # of the bare client
EVENTS_PER_INVOICE = 4  # created, payment_received, processing, settled
CONCURRENCY = 64
REPEATS = 3


def receiver(port: int) -> None:
    """The receiver, in its own process: answers 204 to every POST."""

    async def hook(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/h", hook)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None,
                handle_signals=True)


async def wait_listening(port: int) -> None:
    for _ in range(200):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.05)
    raise RuntimeError("receiver did not start")


async def bare_client(url: str, bodies: list[bytes]) -> float:
    """Deliveries/s of a plain aiohttp session: same bodies, same concurrency."""
    sem = asyncio.Semaphore(CONCURRENCY)
    async with aiohttp.ClientSession() as session:

        async def post(body: bytes) -> None:
            async with sem, session.post(url, data=body,
                                         headers={"content-type": "application/json"}) as r:
                await r.read()
                assert r.status == 204

        started = time.perf_counter()
        await asyncio.gather(*(post(b) for b in bodies))
        return len(bodies) / (time.perf_counter() - started)


async def worker_run(db_kind: str, url: str, n: int, tmp: Path) -> float:
    """Deliveries/s of the gateway's worker from a fresh database holding n queued events."""
    from sqlalchemy import func, select

    from gateway.adapters.db.engine import make_engine
    from gateway.adapters.db.tables import deliveries
    from gateway.adapters.db.unit_of_work import SqlUnitOfWork
    from gateway.adapters.db.webhooks import SqlDeliveryStore
    from gateway.adapters.fields import FieldCipher
    from gateway.services.ports import EndpointRecord
    from tests.support.databases import fresh_database
    from tests.support.events import invoice_event
    from webhooks import signing
    from webhooks.targets import TargetPolicy
    from webhooks.worker import DeliveryWorker

    now = datetime.now(UTC)
    with fresh_database(db_kind, tmp) as db_url:
        engine = make_engine(db_url)
        cipher = FieldCipher([("k", os.urandom(32))])
        try:
            async with SqlUnitOfWork(engine, cipher) as u:
                await u.endpoints.add(EndpointRecord("whe_bench", url, (), "", True, now),
                                      signing.new_secret())
                await u.commit()
            invoices = max(n // EVENTS_PER_INVOICE, 1)
            types = ("invoice.created", "invoice.payment_received", "invoice.processing",
                     "invoice.settled")
            for step in range(EVENTS_PER_INVOICE):
                for start in range(0, invoices, 500):
                    async with SqlUnitOfWork(engine, cipher) as u:
                        await u.outbox.publish([
                            invoice_event(types[step], f"inv_{i}", f"acc_{i}",
                                          {"step": step})
                            for i in range(start, min(start + 500, invoices))], now)
                        await u.commit()
            total = invoices * EVENTS_PER_INVOICE
            done = asyncio.Event()
            count = [0]

            def attempt(_: object) -> None:
                count[0] += 1
                if count[0] >= total:
                    done.set()

            worker = DeliveryWorker(SqlDeliveryStore(engine, cipher), lambda: datetime.now(UTC),
                                    targets=TargetPolicy.of(["127.0.0.0/8"]),
                                    on_attempt=attempt, concurrency=CONCURRENCY,
                                    per_endpoint=CONCURRENCY)  # one endpoint: same as bare
            started = time.perf_counter()
            task = asyncio.create_task(worker.run())
            await asyncio.wait_for(done.wait(), 600)
            elapsed = time.perf_counter() - started
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
            async with engine.connect() as conn:
                left = (await conn.execute(select(func.count()).select_from(deliveries).where(
                    deliveries.c.status != "succeeded"))).scalar_one()
            assert left == 0, f"{left} deliveries not succeeded"
            return total / elapsed
        finally:
            await engine.dispose()


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(args[0]) if args else 4000
    kinds = ["sqlite"] + (["postgresql"] if "--postgresql" in sys.argv else [])
    from gateway.demo.node import free_port

    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--receiver", str(port)])
    url = f"http://127.0.0.1:{port}/h"
    try:
        asyncio.run(wait_listening(port))
        bodies = [b'{"data":{"invoice_id":"inv_%d"},"type":"invoice.created"}' % i
                  for i in range(n)]
        rows: list[tuple[str, float, float, float]] = []
        for kind in kinds:
            base: list[float] = []
            mine: list[float] = []
            for _ in range(REPEATS):
                base.append(asyncio.run(bare_client(url, bodies)))
                with tempfile.TemporaryDirectory(prefix="bench-webhooks-") as tmp:
                    mine.append(asyncio.run(worker_run(kind, url, n, Path(tmp))))
            b, m = statistics.median(base), statistics.median(mine)
            rows.append((kind, b, m, m / b))
        print(f"webhook throughput, {n} deliveries, {EVENTS_PER_INVOICE} per invoice, "
              f"median of {REPEATS} runs (deliveries/s)")
        print(f"{'store':<12}{'bare aiohttp':>14}{'worker':>10}{'ratio':>8}")
        for kind, b, m, r in rows:
            print(f"{kind:<12}{b:>14.0f}{m:>10.0f}{r:>8.2f}")
        _, b, m, r = rows[0]
        met = m >= GOAL_RATE and r >= GOAL_RATIO
        print(f"RESULT P5 webhook-throughput {m:.0f}/s,{r:.2f}x-bare "
              f">={GOAL_RATE:.0f}/s,>={GOAL_RATIO:.2f}x {'met' if met else 'not met'}")
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--receiver":
        receiver(int(sys.argv[2]))
    else:
        main()
