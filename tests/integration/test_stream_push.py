"""Checkout streams by push: the process that changes an invoice wakes its open streams
(on PostgreSQL another instance's change arrives by LISTEN/NOTIFY); an idle stream does
not read the database."""

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from chains.base import BlockConnected, BlockRef, MempoolSeen, Observed
from gateway.adapters.db import notify
from gateway.bootstrap import build_app
from gateway.http import routes_pages
from gateway.services.chain_events import Feed
from gateway.services.changes import Subscription
from tests.support.databases import fresh_database
from tests.support.fake_gateway import T0, World, fake_world

pytestmark = pytest.mark.integration

DUE = 10_000_000


@pytest.fixture(scope="module")
def template_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("template")


@contextlib.asynccontextmanager
async def served(world: World) -> AsyncIterator[str]:
    server = TestServer(build_app(world.gw), host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


def counting(world: World) -> list[float]:
    """Times of every invoice read the service makes from now on."""
    reads: list[float] = []
    service = world.gw.services.invoices
    original: Callable[..., Any] = service.read

    async def read(invoice_id: str) -> Any:
        reads.append(time.monotonic())
        return await original(invoice_id)

    service.read = read  # type: ignore[method-assign]
    return reads


async def next_status(resp: aiohttp.ClientResponse, timeout: float) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            line = await resp.content.readline()
            if line.startswith(b"data: "):
                return dict(json.loads(line.removeprefix(b"data: ")))


def feed(world: World) -> Feed:
    return Feed(world.follower.feed, world.follower.coins)


async def pay(world: World, view: Any) -> None:
    key = bytes.fromhex(view.record.address.removeprefix("fake1"))
    await world.tracker.mempool_seen(feed(world), MempoolSeen(
        (Observed("FAK", "txP", 0, key, DUE, None),)))


def quiet_wakeups(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Times at which an open stream's wait ended without a change: an idle stream wakes
    then only to look at its connection. Those waits (and the polling interval of a
    stream without a hub) are made short, so a few of them pass in a fraction of a
    second: a stream that read on any of them would show it at once."""
    monkeypatch.setattr(routes_pages, "GONE_CHECK_SECONDS", 0.05)
    monkeypatch.setattr(routes_pages, "POLL_SECONDS", 0.05)
    quiet: list[float] = []
    original = Subscription.wait

    async def wait(self: Subscription, seconds: float) -> bool:
        changed = await original(self, seconds)
        if not changed:
            quiet.append(time.monotonic())
        return changed

    monkeypatch.setattr(Subscription, "wait", wait)
    return quiet


async def test_a_change_reaches_an_idle_stream_at_once_without_polling(
    tmp_path: Path, template_dir: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    quiet = quiet_wakeups(monkeypatch)
    async with fake_world(tmp_path, template_dir) as world, served(world) as base:
        await world.tracker.set_cursor(feed(world), BlockRef(0, "h0"))
        view = await world.invoice(await world.account())
        reads = counting(world)
        async with aiohttp.ClientSession() as http, http.get(
                f"{base}/pay/{view.record.invoice.id}/events") as resp:
            assert (await next_status(resp, 5))["status"] == "new"
            settled_reads = len(reads)
            async with asyncio.timeout(10):
                while len(quiet) < 5:  # five quiet wake-ups, five chances to read
                    await asyncio.sleep(0.02)
            assert len(reads) == settled_reads
            changed = time.monotonic()
            await pay(world, view)
            doc = await next_status(resp, 2)
            assert doc["status"] == "processing"
            assert time.monotonic() - changed < 0.5
            key = bytes.fromhex(view.record.address.removeprefix("fake1"))
            await world.tracker.block_connected(feed(world), BlockConnected(
                BlockRef(1, "h1"), "h0", T0, (Observed("FAK", "txP", 0, key, DUE,
                                                       BlockRef(1, "h1")),)))
            got = await next_status(resp, 2)
            assert got["confirmations"] == 1, got
            # A tip that pays nobody still shows as a confirmation: the cursor's move is
            # pushed to every stream of the feed.
            await world.tracker.set_cursor(feed(world), BlockRef(2, "h2"))
            assert (await next_status(resp, 2))["confirmations"] == 2
        async with asyncio.timeout(10):  # the stream notices and lets go of its subscription
            while world.gw.changes.subscribers:
                await asyncio.sleep(0.1)


async def test_another_instances_change_arrives_by_notify(
    tmp_path: Path, template_dir: Path,
) -> None:
    with fresh_database("postgresql", tmp_path) as url:
        async with fake_world(tmp_path, template_dir, db_url=url) as a, \
                fake_world(tmp_path, template_dir, db_url=url) as b, served(a) as base:
            listener = asyncio.create_task(notify.listen(url, a.gw.changes.publish))
            try:
                await b.tracker.set_cursor(feed(b), BlockRef(0, "h0"))
                view = await a.invoice(await a.account())
                async with aiohttp.ClientSession() as http, http.get(
                        f"{base}/pay/{view.record.invoice.id}/events") as resp:
                    assert (await next_status(resp, 5))["status"] == "new"
                    await asyncio.sleep(0.3)  # the listener is up
                    changed = time.monotonic()
                    await pay(b, view)  # instance b records the payment
                    assert (await next_status(resp, 3))["status"] == "processing"
                    assert time.monotonic() - changed < 1.0
            finally:
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listener


async def test_a_stopping_server_ends_its_open_streams_at_once(
    tmp_path: Path, template_dir: Path,
) -> None:
    """As `gateway serve` stops on SIGTERM: an open checkout stream, whose browser is still
    there, ends at once rather than holding the stop until aiohttp's shutdown timeout
    (60 s) cancels it."""
    async with fake_world(tmp_path, template_dir) as world:
        await world.tracker.set_cursor(feed(world), BlockRef(0, "h0"))
        view = await world.invoice(await world.account())
        runner = web.AppRunner(build_app(world.gw), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        try:
            async with aiohttp.ClientSession() as http, http.get(
                    f"http://127.0.0.1:{port}/pay/{view.record.invoice.id}/events") as resp:
                assert (await next_status(resp, 5))["status"] == "new"
                started = time.monotonic()
                await asyncio.wait_for(runner.cleanup(), 10)
                assert time.monotonic() - started < 2
                async with asyncio.timeout(2):
                    assert (await resp.content.read()).strip() == b""  # ended, not cut
        finally:
            await runner.cleanup()
