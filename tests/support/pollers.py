"""Clients in a process of their own, polling URLs in tight loops until told to stop, as
a load balancer or a monitoring system would: outside the gateway's process, so their
own work does not load the event loop whose responsiveness is under test."""

import asyncio
import multiprocessing
import queue
import time
from typing import Any

import aiohttp

Waits = dict[str, list[float]]


def _poll_until_stopped(urls: list[str], headers: dict[str, str], stop: Any,
                        started: Any, out: Any) -> None:
    async def main() -> None:
        waits: Waits = {url: [] for url in urls}
        failures: list[str] = []
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            async def poll(url: str) -> None:
                while not stop.is_set():
                    begun = time.monotonic()
                    try:
                        async with http.get(url, headers=headers) as resp:
                            body = await resp.read()
                            if resp.status != 200:
                                failures.append(f"{url}: {resp.status} {body[:200]!r}")
                    except (aiohttp.ClientError, TimeoutError) as exc:
                        failures.append(f"{url}: {type(exc).__name__}")
                    waits[url].append(time.monotonic() - begun)

            started.set()
            await asyncio.gather(*(poll(url) for url in urls))
        out.put((waits, failures))

    asyncio.run(main())


class Pollers:
    def __init__(self, urls: list[str], headers: dict[str, str] | None = None) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._stop = ctx.Event()
        self._started = ctx.Event()
        self._out: Any = ctx.Queue()
        self._proc = ctx.Process(target=_poll_until_stopped, daemon=True, args=(
            urls, headers or {}, self._stop, self._started, self._out))

    async def start(self, timeout: float = 30) -> None:
        self._proc.start()
        if not await asyncio.to_thread(self._started.wait, timeout):
            self._proc.kill()
            raise AssertionError("the polling process did not start")

    async def stop(self, timeout: float = 30) -> tuple[Waits, list[str]]:
        """Every request's time to answer, per URL, and what failed."""
        self._stop.set()
        try:
            result: tuple[Waits, list[str]] = await asyncio.to_thread(
                self._out.get, True, timeout)
        except queue.Empty:
            raise AssertionError("the polling process never reported") from None
        finally:
            await asyncio.to_thread(self._proc.join, 10)
            if self._proc.is_alive():
                self._proc.kill()
        return result
