"""P6, scale: a SQLite database holding N invoices (default 1,000,000; one in ten open),
made with one INSERT ... SELECT. Measured: the watcher's start-up (its first refresh of
the watched set: every address ever handed out), `GET /v1/invoices/{id}` latency (one
connection, random invoices, server and client in this process), and the time to handle
a block paying 200 invoices and an empty block after it. Baseline in the same run: the
same block handling on a database a hundredth the size (N/100 invoices, as many open in
proportion): the time must not grow with the number of open invoices.
Run: `make bench` or `.venv/bin/python bench/scale.py [N]`."""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp
from aiohttp.test_utils import TestServer
from http_load import percentile

GOAL_STARTUP = 5.0
GOAL_GET_P99_MS = 5.0
GOAL_GROWTH = 1.5  # block handling at N over N/100: "does not grow"
PAID = 200
REPEATS = 3

FILL = """
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < :count - 1)
INSERT INTO invoices (id, account_id, coin, price_minor, price_currency, rate_value,
    rate_source, rate_locked_at, amount_due, decimals, confirmations_required,
    tolerance_basis_points, accept_late_payments, address_space, derivation_index, address,
    match_key, payment_uri, status, exception, metadata, created_at, expires_at,
    monitoring_until, settled_at)
SELECT printf('inv_s%09d', i), :account, :coin, 800, 'EUR', '80', 'fixed',
    '2026-11-27 11:00:00.000000', printf('%078d', 10000000), 8, 3, 0, 0, :space, i,
    printf('scale1%09d', i), CAST(printf('k%039d', i) AS BLOB), 'fake:x',
    CASE WHEN i % 10 = 0 THEN 'new' ELSE 'settled' END, NULL, '{}',
    '2026-11-27 11:00:00.000000',
    CASE WHEN i % 10 = 0 THEN '2099-01-01 00:00:00.000000' ELSE '2026-11-27 11:15:00.000000' END,
    '2099-01-01 00:00:00.000000',
    CASE WHEN i % 10 = 0 THEN NULL ELSE '2026-11-27 11:05:00.000000' END
FROM n
"""


def key(i: int) -> bytes:
    return f"k{i:039d}".encode()


async def world_of(count: int, tmp: Path) -> Any:
    from tests.support.fake_gateway import fake_world

    return fake_world(tmp, tmp, GATEWAY_COINS__FAK__POLL_INTERVAL_SECONDS="3600",
                      GATEWAY_SERVER__LOG_LEVEL="WARNING")


async def fill(world: Any, count: int) -> float:
    from sqlalchemy import text

    account = await world.account()
    space = world.follower.address_space
    started = time.perf_counter()
    from gateway.adapters.db.engine import write_transaction

    async with write_transaction(world.gw.engine) as conn:
        await conn.execute(text(FILL), {"count": count, "account": account,
                                        "coin": "FAK", "space": space})
        await conn.execute(text(
            "INSERT INTO derivation_counters (space, next_index) VALUES (:s, :n) "
            "ON CONFLICT (space) DO UPDATE SET next_index = :n"), {"s": space, "n": count})
    async with world.gw.engine.connect() as conn:
        await conn.execute(text("ANALYZE"))
    return time.perf_counter() - started


async def block_times(world: Any, count: int, height: int) -> tuple[float, float]:
    """Seconds to handle a block paying PAID open invoices, then an empty block."""
    from chains.base import BlockConnected, BlockRef, Observed
    from gateway.services.chain_events import Feed

    feed = Feed(world.follower.feed, world.follower.coins)
    open_ids = random.Random(height).sample(range(0, count, 10), PAID)
    block = BlockRef(height, f"b{height}")
    paid = tuple(Observed("FAK", f"tx{height}-{i}", 0, key(i), 10_000_000, block)
                 for i in open_ids)
    started = time.perf_counter()
    await world.tracker.block_connected(feed, BlockConnected(block, f"b{height - 1}",
                                                             world.clock(), paid))
    paying = time.perf_counter() - started
    started = time.perf_counter()
    await world.tracker.block_connected(feed, BlockConnected(
        BlockRef(height + 1, f"b{height + 1}"), f"b{height}", world.clock(), ()))
    return paying, time.perf_counter() - started


async def measure(count: int, tmp: Path, with_reads: bool) -> dict[str, float]:
    from chains.base import BlockRef
    from gateway.adapters.db.chain_state import SqlWatchlist
    from gateway.bootstrap import build_app
    from gateway.services.chain_events import Feed

    out: dict[str, float] = {}
    async with await world_of(count, tmp) as world:
        out["fill"] = await fill(world, count)
        feed = Feed(world.follower.feed, world.follower.coins)
        await world.tracker.set_cursor(feed, BlockRef(100, "b100"))
        started = time.perf_counter()
        watchlist = SqlWatchlist(world.gw.engine, world.follower.address_space)
        await watchlist.refresh()
        out["startup"] = time.perf_counter() - started
        assert len(watchlist) == count
        paying, empty = [], []
        for r in range(REPEATS):
            p, e = await block_times(world, count, 101 + 2 * r)
            paying.append(p)
            empty.append(e)
        out["block"] = statistics.median(paying)
        out["empty"] = statistics.median(empty)
        if with_reads:
            created = await world.gw.services.api_keys.create("scale", ["invoices:read"])
            server = TestServer(build_app(world.gw), host="127.0.0.1")
            await server.start_server()
            rng = random.Random(7)
            latencies = []
            try:
                async with aiohttp.ClientSession(
                        headers={"Authorization": f"Bearer {created.secret}"}) as http:
                    for n in range(1100):
                        url = server.make_url(f"/v1/invoices/inv_s{rng.randrange(count):09d}")
                        started = time.perf_counter()
                        async with http.get(url) as resp:
                            await resp.read()
                            assert resp.status == 200, resp.status
                        if n >= 100:  # after warming up
                            latencies.append((time.perf_counter() - started) * 1000)
            finally:
                await server.close()
            out["get_p50"] = percentile(latencies, 0.5)
            out["get_p99"] = percentile(latencies, 0.99)
    return out


async def main() -> int:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmpdir:
        for sub in ("small", "big"):
            (Path(tmpdir) / sub).mkdir()
        small = await measure(max(count // 100, 2000), Path(tmpdir) / "small", False)
        big = await measure(count, Path(tmpdir) / "big", True)
    growth = big["block"] / small["block"]
    growth_empty = big["empty"] / small["empty"]
    print(f"P6 scale: SQLite, {count:,} invoices ({count // 10:,} open) against "
          f"{max(count // 100, 2000):,} ({max(count // 100, 2000) // 10:,} open) in the same "
          f"run; fake family in this process; {os.cpu_count()} CPUs, shared")
    print("| what | large | small (baseline) | ratio |")
    print("|---|---|---|---|")
    print(f"| fill (INSERT ... SELECT), s | {big['fill']:.1f} | {small['fill']:.2f} | |")
    print(f"| watcher start-up (watched set read), s | {big['startup']:.2f} | "
          f"{small['startup']:.3f} | |")
    print(f"| block paying {PAID} invoices, ms (median of {REPEATS}) | "
          f"{big['block'] * 1000:.0f} | {small['block'] * 1000:.0f} | {growth:.2f} |")
    print(f"| empty block after it, ms | {big['empty'] * 1000:.1f} | "
          f"{small['empty'] * 1000:.1f} | {growth_empty:.2f} |")
    print(f"| GET /v1/invoices/{{id}} p50 / p99, ms | {big['get_p50']:.1f} / "
          f"{big['get_p99']:.1f} | | |")
    met = (big["startup"] <= GOAL_STARTUP and big["get_p99"] <= GOAL_GET_P99_MS
           and growth <= GOAL_GROWTH and growth_empty <= GOAL_GROWTH)
    print(f"RESULT P6 scale startup={big['startup']:.1f}s,get_p99={big['get_p99']:.1f}ms,"
          f"block_growth={growth:.2f}x startup<=5s,get_p99<=5ms,growth<=1.5x "
          f"{'met' if met else 'not met'}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
