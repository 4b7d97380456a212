"""Who takes SQLite's write lock, on a real database file: only writers, each in this
process's turn to write. Every statement both engines of a gateway send is recorded; the
read-only paths (readiness, the schema check, /metrics, reading units of work, the
watchlist) must open plain deferred transactions, never BEGIN IMMEDIATE. And a write lock
held by another process (a CLI command beside the server) never stops the event loop: a
writer waits for it on the loop's terms and, past its deadline, answers 503."""

import asyncio
import json
import sqlite3
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from gateway.adapters.db import engine as db_engine
from gateway.adapters.db.chain_state import SqlWatchlist
from gateway.adapters.fields import BlindIndex
from gateway.adapters.mail_queue import SqlMailQueue
from gateway.bootstrap import build_app
from gateway.domain.accounts import Account
from gateway.domain.money import Fiat
from gateway.services.finance import Period
from gateway.services.ports import Profile
from tests.support.locks import add_account, gateway, held_by_another_process, record_begins
from tests.support.nodes import free_port


async def test_read_only_paths_never_take_the_write_lock(tmp_path: Path) -> None:
    async with gateway(tmp_path) as gw:
        account = await add_account(gw)
        invoice = await gw.services.invoices.create(account, Fiat(800, "EUR"), "FAK")
        key = await gw.services.api_keys.create("ops", ["invoices:read"])
        [space] = {f.address_space for f in gw.chains.followers()}
        queue = SqlMailQueue(gw.engine, gw.cipher, BlindIndex(gw.keys.index))
        begins = record_begins(gw)

        reads: dict[str, Callable[[], Awaitable[object]]] = {
            "readiness": gw.ops.readiness.readiness,
            "schema check": gw.check_schema,
            "metrics": gw.ops.monitoring.render,
            "chain status": lambda: gw.ops.readiness.chain_status(1),
            "invoice read": lambda: gw.services.invoices.read(invoice.record.invoice.id),
            "invoice list": lambda: gw.services.invoices.list(account),
            "API key check": lambda: gw.services.api_keys.authorize(key.secret,
                                                                    "invoices:read"),
            "API key list": gw.services.api_keys.list,
            "payments": lambda: gw.services.finance.page(Period()),
            "webhook endpoints": gw.services.endpoints.list,
            "events": lambda: gw.services.events.page(None, None, 50),
            "account view": lambda: gw.services.accounts.view(account),
            "staff log": gw.services.staff.recent_log,
            "staff search": lambda: gw.services.staff.find(invoice.record.invoice.id),
            "wallet gap": lambda: gw.services.wallet.gap("FAK"),
            "legal register": gw.services.legal.all,
            "watchlist": SqlWatchlist(gw.engine, space).refresh,
            "mail queue depth": queue.depth,
        }
        taken: dict[str, list[str]] = {}
        for name, read in reads.items():
            await read()
            taken[name] = begins.take()
        # Each path did open a transaction (the recorder sees them), and none took the
        # write lock.
        assert {name for name, stmts in taken.items() if not stmts} == set()
        assert {name: stmts for name, stmts in taken.items()
                if "BEGIN IMMEDIATE" in stmts} == {}

        # Writers do take it up front, and only in this process's turn to write.
        await gw.services.invoices.create(account, Fiat(800, "EUR"), "FAK")
        assert "BEGIN IMMEDIATE" in [s for s, _ in begins.seen]
        assert begins.outside_turn() == []


async def test_a_reading_unit_that_writes_fails_at_once(tmp_path: Path) -> None:
    """A write slipped into a reading unit would take the write lock outside the turn:
    the inline engine's readers are query_only, so it fails instead."""
    async with gateway(tmp_path) as gw:
        account = await add_account(gw)
        reader = gw.services.invoices._reader  # the factory every reading method uses
        with pytest.raises(Exception, match="readonly database"):
            async with reader() as uow:
                await uow.accounts.add(Account(f"{account}x", gw.clock()),
                                       Profile("y@example.org"), "idx-y", "hash", "v1")


async def test_another_process_holding_the_lock_never_stops_the_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    port, ops = free_port(), free_port()
    async with gateway(tmp_path, GATEWAY_SERVER__PORT=str(port),
                       GATEWAY_SERVER__PUBLIC_URL=f"http://127.0.0.1:{port}",
                       GATEWAY_SERVER__METRICS_LISTEN=f"127.0.0.1:{ops}",
                       GATEWAY_STAFF__LISTEN="") as gw:
        account = await add_account(gw)
        invoice = await gw.services.invoices.create(account, Fiat(800, "EUR"), "FAK")
        key = (await gw.services.api_keys.create(
            "p", ["invoices:read", "invoices:write"])).secret
        auth = {"Authorization": f"Bearer {key}"}
        runner = web.AppRunner(build_app(gw), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        base = f"http://127.0.0.1:{port}"
        body = {"account_id": account, "coin": "FAK",
                "price": {"amount": "8.00", "currency": "EUR"}}
        try:
            async with aiohttp.ClientSession() as http:
                async with held_by_another_process(str(gw.engine.url)) as other:
                    # The writer waits for the other process without holding the loop:
                    # reads, probes and health checks answer meanwhile.
                    create = asyncio.create_task(http.post(f"{base}/v1/invoices",
                                                           headers=auth, json=body))
                    slowest = 0.0
                    for url in [f"{base}/healthz", f"http://127.0.0.1:{ops}/readyz",
                                f"http://127.0.0.1:{ops}/metrics",
                                f"{base}/v1/invoices/{invoice.record.invoice.id}"] * 5:
                        started = time.monotonic()
                        async with http.get(url, headers=auth) as resp:
                            assert resp.status == 200, (url, await resp.text())
                        slowest = max(slowest, time.monotonic() - started)
                    # A frozen loop waited SQLite's 5-second busy timeout here; the bound
                    # leaves room for a machine running the rest of the suite beside it
                    # (each database call's own wait is bounded at 200 ms in
                    # test_busy_block_probes, which times the calls, not the round trip).
                    assert slowest < 1.0, f"a read waited {slowest:.3f} s"
                    assert not create.done()
                    other.execute("COMMIT")  # the other process is done: the write goes on
                    async with await create as resp:
                        assert resp.status == 201, await resp.text()

                # Past its deadline the writer gives up with 503 problem+json.
                monkeypatch.setattr(db_engine, "WRITE_LOCK_SECONDS", 0.3)
                async with held_by_another_process(str(gw.engine.url)):
                    async with http.post(f"{base}/v1/invoices", headers=auth,
                                         json=body) as resp:
                        doc = json.loads(await resp.text())
                        assert resp.status == 503, doc
                        assert resp.headers["Content-Type"].startswith(
                            "application/problem+json")
                        assert resp.headers["Retry-After"] == "1"
                        assert "database is busy" in doc["detail"]
                monkeypatch.undo()
                async with http.post(f"{base}/v1/invoices", headers=auth, json=body) as resp:
                    assert resp.status == 201, await resp.text()
        finally:
            await runner.cleanup()


async def test_erasure_checkpoint_waits_only_briefly_for_readers(tmp_path: Path) -> None:
    """The TRUNCATE checkpoint after erasures holds the write lock while it waits for
    older readers: it gives up after a moment (the next run finishes it) instead of
    shutting writers out."""
    async with gateway(tmp_path) as gw:
        await add_account(gw)
        reader = sqlite3.connect(str(gw.engine.url).split("///", 1)[1], isolation_level=None)
        try:
            reader.execute("BEGIN")
            reader.execute("SELECT count(*) FROM accounts").fetchone()  # an old snapshot
            await add_account(gw)  # a newer page image the old reader may still need
            started = time.monotonic()
            assert await db_engine.erase_residue(gw.engine) is False
            assert time.monotonic() - started < 2
            reader.execute("COMMIT")
        finally:
            reader.close()
        assert await db_engine.erase_residue(gw.engine) is True


async def test_a_unit_that_goes_on_after_commit_waits_for_the_lock_again(
    tmp_path: Path,
) -> None:
    """A unit may commit and go on writing (a failed-login count after a committed
    second-factor check). Its next transaction takes the write lock through the same
    patient BEGIN as its first: while another process writes, it waits instead of
    failing at once with "database is locked" (a 500 to the customer)."""
    async with gateway(tmp_path) as gw:
        first = await add_account(gw)
        async with gw.uow() as uow:
            await uow.accounts.add(Account(f"{first}-a", gw.clock()),
                                   Profile("a@example.org"), f"idx-{first}-a", "hash", "v1")
            await uow.commit()
            async with held_by_another_process(str(gw.engine.url)) as other:
                write = asyncio.create_task(uow.accounts.add(
                    Account(f"{first}-b", gw.clock()), Profile("b@example.org"),
                    f"idx-{first}-b", "hash", "v1"))
                # The write waits on the loop's terms: other tasks run meanwhile.
                for _ in range(20):
                    await asyncio.sleep(0.01)
                assert not write.done(), write.exception() if write.done() else None
                other.execute("COMMIT")
                await write
            await uow.commit()
        async with gw.uow() as uow:
            assert await uow.accounts.get(f"{first}-b") is not None


async def test_a_unit_gives_the_loop_up_between_statements_only_after_its_slice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A short unit runs through (it holds its connection, and a writer its turn, for
    its statements only); a long one lets other tasks run between its statements."""
    async with gateway(tmp_path) as gw:
        await add_account(gw)
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        async def unit_of(statements: int) -> int:
            before = ticks
            async with gw.core.reader() as uow:
                for _ in range(statements):
                    await uow.cursors.get("none")
            return ticks - before

        task = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        try:
            # A slice no unit reaches (the real one, 2 ms, is crossed by 5 statements when
            # a loaded machine deschedules the process between them): it runs through.
            monkeypatch.setattr(db_engine, "SLICE_SECONDS", 60.0)
            assert await unit_of(5) == 0
            monkeypatch.setattr(db_engine, "SLICE_SECONDS", 0.0)  # every unit is long
            assert await unit_of(5) >= 4
        finally:
            task.cancel()
