"""A small HTTP load generator (wrk is not installed here): `connections` coroutines on
one aiohttp session, each sending its next request as soon as the last is answered, for
`seconds`. Shared by the HTTP benchmarks (P3, P6)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp

Request = Callable[[int], tuple[str, str, bytes | None]]  # i -> method, url, body


@dataclass(frozen=True)
class Load:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    statuses: dict[int, int]

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


async def run_load(make: Request, connections: int, seconds: float,
                   headers: dict[str, str] | None = None) -> Load:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    counter = 0
    connector = aiohttp.TCPConnector(limit=connections, force_close=False)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal counter
            while time.perf_counter() < deadline:
                counter += 1
                method, url, body = make(counter)
                started = time.perf_counter()
                async with session.request(method, url, data=body) as resp:
                    await resp.read()
                latencies.append(time.perf_counter() - started)
                statuses[resp.status] = statuses.get(resp.status, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - started
    return Load(len(latencies), elapsed, percentile(latencies, 0.5) * 1000,
                percentile(latencies, 0.99) * 1000, statuses)


def median_load(loads: list[Load]) -> Load:
    """The run with the median rate (its own latencies with it)."""
    ordered = sorted(loads, key=lambda load: load.rate)
    return ordered[len(ordered) // 2]
