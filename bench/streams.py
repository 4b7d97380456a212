"""P7, checkout streams: 1,000 open `/pay/{id}/events` streams on one gateway (coins of
the fake family, SQLite), served and read in this process: the process's CPU while every
stream is idle, and the time from an invoice change (a payment recorded by the payment
tracker) to its stream's event. Baseline in the same run: a bare aiohttp endpoint holding
as many server-sent-event streams, woken by an asyncio.Event.
Run: `make bench` or `.venv/bin/python bench/streams.py [streams]`."""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

GOAL_CPU = 5.0  # percent of one core, idle
GOAL_LATENCY_MS = 100.0
IDLE_SECONDS = 10.0
CHANGES = 30


def cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


async def open_streams(http: aiohttp.ClientSession, urls: list[str]
                       ) -> list[aiohttp.ClientResponse]:
    sem = asyncio.Semaphore(100)

    async def one(url: str) -> aiohttp.ClientResponse:
        async with sem:
            resp = await http.get(url)
            assert resp.status == 200, resp.status
            line = await resp.content.readline()
            assert line.startswith(b"event: status"), line
            await resp.content.readline()  # its data
            await resp.content.readline()  # the blank line
            return resp

    return await asyncio.gather(*(one(u) for u in urls))


async def idle_cpu() -> float:
    await asyncio.sleep(1)  # let opening settle
    cpu, wall = cpu_seconds(), time.perf_counter()
    await asyncio.sleep(IDLE_SECONDS)
    return 100 * (cpu_seconds() - cpu) / (time.perf_counter() - wall)


async def next_event(resp: aiohttp.ClientResponse) -> None:
    while True:
        line = await resp.content.readline()
        if line.startswith(b"data: "):
            return


async def bare(n: int) -> tuple[float, float]:
    """The baseline: idle CPU % and change->event latency (ms, median)."""
    events: dict[int, asyncio.Event] = {}

    async def stream(request: web.Request) -> web.StreamResponse:
        key = int(request.match_info["n"])
        event = events.setdefault(key, asyncio.Event())
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(b'event: status\ndata: {"status": "new"}\n\n')
        while True:
            try:
                async with asyncio.timeout(2.0):
                    await event.wait()
            except TimeoutError:
                if request.transport is None or request.transport.is_closing():
                    return resp
                continue
            event.clear()
            await resp.write(b'event: status\ndata: {"status": "processing"}\n\n')

    app = web.Application()
    app.router.add_get("/s/{n}", stream)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    base = str(server.make_url("")).rstrip("/")
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            streams = await open_streams(http, [f"{base}/s/{i}" for i in range(n)])
            cpu = await idle_cpu()
            latencies = []
            for i in range(CHANGES):
                started = time.perf_counter()
                events[i].set()
                await next_event(streams[i])
                latencies.append((time.perf_counter() - started) * 1000)
            for resp in streams:
                resp.close()
    finally:
        await server.close()
    return cpu, statistics.median(latencies)


async def gateway(n: int, tmp: Path) -> tuple[float, float, float]:
    """Idle CPU %, change->event latency median and max (ms) through the gateway."""
    from chains.base import MempoolSeen, Observed
    from gateway.bootstrap import build_app
    from gateway.services.chain_events import Feed
    from tests.support.fake_gateway import fake_world

    async with fake_world(tmp, tmp, GATEWAY_SERVER__EVENT_STREAMS_PER_CLIENT=str(n),
                          GATEWAY_SERVER__EVENT_STREAMS_TOTAL=str(n),
                          GATEWAY_SERVER__LOG_LEVEL="WARNING",
                          # No operations or staff listener: their default ports may be
                          # taken by another gateway on this machine.
                          GATEWAY_SERVER__METRICS_LISTEN="", GATEWAY_STAFF__LISTEN="",
                          # As a real node is polled (the fake family's default is 1 ms).
                          GATEWAY_COINS__FAK__POLL_INTERVAL_SECONDS="2") as world:
        feed = Feed(world.follower.feed, world.follower.coins)
        await world.tracker.set_cursor(feed, world.node.tip)
        account = await world.account()
        views = [await world.invoice(account) for _ in range(n)]
        server = TestServer(build_app(world.gw), host="127.0.0.1")
        await server.start_server()
        base = str(server.make_url("")).rstrip("/")
        try:
            async with aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(limit=0)) as http:
                streams = await open_streams(
                    http, [f"{base}/pay/{v.record.invoice.id}/events" for v in views])
                cpu = await idle_cpu()
                latencies = []
                for i in range(CHANGES):
                    key = bytes.fromhex(views[i].record.address.removeprefix("fake1"))
                    started = time.perf_counter()
                    await world.tracker.mempool_seen(feed, MempoolSeen(
                        (Observed(feed.coins[0], f"tx{i}", 0, key, 1, None),)))
                    await next_event(streams[i])
                    latencies.append((time.perf_counter() - started) * 1000)
                for resp in streams:
                    resp.close()
        finally:
            await server.close()
    return cpu, statistics.median(latencies), max(latencies)


async def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    with tempfile.TemporaryDirectory(prefix="bench-streams-") as tmpdir:
        bare_cpu, bare_latency = await bare(n)
        cpu, latency, worst = await gateway(n, Path(tmpdir))
    print(f"P7 checkout streams: {n} open streams, idle for {IDLE_SECONDS:.0f} s, then "
          f"{CHANGES} changes one at a time; server and clients in one process "
          f"({os.cpu_count()} CPUs, shared)")
    print("| what | gateway | bare aiohttp SSE | ratio |")
    print("|---|---|---|---|")
    print(f"| idle CPU, % of one core | {cpu:.1f} | {bare_cpu:.1f} | "
          f"{cpu / max(bare_cpu, 0.01):.1f} |")
    print(f"| change -> event, median ms | {latency:.1f} | {bare_latency:.1f} | "
          f"{latency / max(bare_latency, 0.01):.1f} |")
    print(f"| change -> event, max ms | {worst:.1f} | | |")
    met = cpu < GOAL_CPU and worst <= GOAL_LATENCY_MS
    print(f"RESULT P7 checkout-streams cpu={cpu:.1f}%,latency={latency:.0f}ms(max "
          f"{worst:.0f}) cpu<5%,latency<=100ms {'met' if met else 'not met'}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
