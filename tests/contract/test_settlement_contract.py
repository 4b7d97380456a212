"""The contract at the level a customer sees, for every family: the follower loop and the
payment tracker on a real SQLite file, with the family's follower (built through the
registry): a reorg before settlement leaves the invoice processing and it settles when
re-mined; a reorg after settlement marks it reverted_after_settlement, once."""

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.adapters.db.chain_state import SqlWatchlist
from gateway.bootstrap import Gateway, Overrides, build
from gateway.config import load
from gateway.domain.accounts import Account
from gateway.domain.money import Fiat
from gateway.services.chain_events import Feed
from gateway.services.ports import Profile
from gateway.watcher import ChainWatcher
from tests.contract.drivers import Driver
from tests.support.databases import fresh_database
from tests.support.keys import security_env


@pytest.fixture
async def gateway(driver: Driver, tmp_path: Path) -> AsyncIterator[Gateway]:
    with fresh_database("sqlite", tmp_path) as url:
        env = {"GATEWAY_DATABASE__URL": url,
               "GATEWAY_RATES__FIXED": json.dumps({f"{driver.asset}-EUR": "80.00"}),
               **security_env(), **driver.coin_env(confirmations=2)}
        followers = [driver.follower, *driver.others]  # every network followed at once
        gw = build(load(None, env), overrides=Overrides(chains=followers))
        tasks = []
        for follower in followers:
            feed = Feed(follower.feed, tuple(follower.coins))
            await gw.services.tracker.set_cursor(feed, await follower.tip())
            watcher = ChainWatcher(follower, gw.services.tracker,
                                   SqlWatchlist(gw.engine, follower.address_space),
                                   retry_delay=0.1)
            tasks.append(asyncio.create_task(watcher.run()))
        try:
            yield gw
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await gw.engine.dispose()


async def new_invoice(gw: Gateway, driver: Driver) -> Any:
    account_id = f"acc_{time.monotonic_ns()}"
    async with gw.uow() as uow:
        await uow.accounts.add(Account(account_id, gw.clock()), Profile("c@example.org"),
                               f"idx-{account_id}", "hash", "v1")
        await uow.commit()
    return (await gw.services.invoices.create(account_id, Fiat(800, "EUR"),
                                              driver.coin)).record


async def until(gw: Gateway, invoice_id: str, check: Callable[[Any], bool], what: str,
                timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        view = await gw.services.invoices.read(invoice_id)
        if check(view):
            return view
        assert time.monotonic() < deadline, f"timed out waiting for {what}: {view}"
        await asyncio.sleep(0.05)


def state(view: Any) -> tuple[str, str | None]:
    inv = view.record.invoice
    return inv.status.value, inv.exception.value if inv.exception else None


async def events(gw: Gateway, invoice_id: str) -> list[str]:
    from sqlalchemy import text

    async with gw.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT type, body FROM events ORDER BY seq"))).all()
    return [r.type for r in rows if r.type.startswith("invoice.")
            and json.loads(r.body)["data"].get("invoice_id") == invoice_id]


async def test_reorg_before_settlement(driver: Driver, gateway: Gateway) -> None:
    record = await new_invoice(gateway, driver)
    [destination] = await driver.follower.allocate([0])
    assert destination.address == record.address  # the first index of a fresh space
    driver.pay(destination, record.invoice.terms.amount_due)
    await until(gateway, record.invoice.id, lambda v: state(v) == ("processing", None),
                "processing")
    [block] = driver.mine(1)
    await until(gateway, record.invoice.id,
                lambda v: v.record.payments and v.confirmations(v.record.payments[0]) == 1,
                "one confirmation")
    driver.invalidate(block)
    view = await until(gateway, record.invoice.id,
                       lambda v: v.record.payments[0].status == "pending", "back to pending")
    assert state(view) == ("processing", None)
    driver.mine(2)
    await until(gateway, record.invoice.id, lambda v: state(v) == ("settled", None), "settled")
    assert await events(gateway, record.invoice.id) == [
        "invoice.created", "invoice.payment_received", "invoice.processing",
        "invoice.settled"]


async def test_reorg_after_settlement(driver: Driver, gateway: Gateway) -> None:
    record = await new_invoice(gateway, driver)
    [destination] = await driver.follower.allocate([0])
    txid = driver.pay(destination, record.invoice.terms.amount_due)
    [block, _] = driver.mine(2)
    await until(gateway, record.invoice.id, lambda v: state(v) == ("settled", None), "settled")
    driver.invalidate(block)  # both blocks leave: the payment is back in the mempool
    await until(gateway, record.invoice.id,
                lambda v: state(v) == ("settled", "reverted_after_settlement"), "reverted")
    driver.mine(2)  # re-mined elsewhere
    view = await until(gateway, record.invoice.id,
                       lambda v: v.record.payments[0].status == "confirmed", "re-mined")
    assert [p.txid for p in view.record.payments] == [txid]
    assert await events(gateway, record.invoice.id) == [
        "invoice.created", "invoice.payment_received", "invoice.processing",
        "invoice.settled", "invoice.payment_reverted"]
