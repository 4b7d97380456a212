"""Prepaid time bought with payments that never arrive (issue 27 items 2 and 16), on the
real services and database with the fake chain family driven as an attacker would drive a
chain: a confirmed payment plus a large one left in the mempool and then double-spent
buys one period, not 36; a settled plan invoice whose payment is reverted gives its time
back (`account.time_revoked`, suspended at once when nothing paid is left)."""

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.domain.billing import BillingState
from gateway.domain.money import Fiat
from tests.support.fake_gateway import T0, World, fake_world

DUE = 10_000_000  # 8.00 EUR at 80 EUR per coin
DAY = timedelta(days=1)
ENV = {
    "GATEWAY_PLANS": json.dumps({"vps": {"price": "8.00", "currency": "EUR",
                                         "period": "30 days"}}),
    "GATEWAY_BILLING__OVERPAYMENT_BUYS_PERIODS": "true",
    "GATEWAY_BILLING__GRACE": "3 days",
}


@pytest.fixture(scope="module")
def template_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("template")


@pytest.fixture
async def world(tmp_path: Path, template_dir: Path) -> AsyncIterator[World]:
    async with fake_world(tmp_path, template_dir, env=ENV) as w:  # 3 confirmations
        await w.start()
        yield w


async def plan_invoice(world: World, account_id: str) -> tuple[str, bytes]:
    view = await world.gw.services.invoices.create(account_id, Fiat(800, "EUR"), "FAK",
                                                   {"plan": "vps"})
    return str(view.record.invoice.id), bytes.fromhex(view.record.address.removeprefix("fake1"))


async def account_state(world: World, account_id: str) -> Any:
    async with world.gw.sql_uow() as uow:
        return await uow.accounts.get(account_id)


async def account_events(world: World, account_id: str) -> list[tuple[str, dict[str, Any]]]:
    rows = await world.sql("SELECT type, body FROM events WHERE account_id = :a "
                           "AND type LIKE 'account.%' ORDER BY seq", a=account_id)
    return [(r.type, json.loads(r.body)["data"]) for r in rows if r.type != "account.created"]


async def test_a_mempool_overpayment_at_settlement_buys_nothing(world: World) -> None:
    account = await world.account()
    invoice_id, key = await plan_invoice(world, account)
    world.node.pay([("FAK", key, DUE)])
    world.node.mine(2)  # 2 of 3 confirmations
    await world.idle()
    huge = world.node.pay([("FAK", key, 35 * DUE)])  # seen, never to be mined
    await world.idle()
    world.node.mine(1, txids=[])  # the third confirmation, without the huge one
    await world.idle()
    assert (await world.read(invoice_id)).record.invoice.status.value == "settled"
    row = await account_state(world, account)
    assert row.paid_until == T0 + 30 * DAY, "only the confirmed payment buys time"

    world.node.drop(huge)  # double-spent: its conflict was mined elsewhere
    await world.idle()
    row = await account_state(world, account)
    assert row.paid_until == T0 + 30 * DAY and row.billing_state is BillingState.ACTIVE
    assert [t for t, _ in await account_events(world, account)] == ["account.activated"]


async def test_a_reverted_payment_takes_its_periods_back(world: World) -> None:
    account = await world.account()
    first, key = await plan_invoice(world, account)
    world.node.pay([("FAK", key, DUE)])
    world.node.mine(3)
    await world.idle()
    assert (await account_state(world, account)).paid_until == T0 + 30 * DAY

    # A second plan invoice paid twice over: two more periods, then a deep reorg and a
    # double-spend take its payment away.
    second, key2 = await plan_invoice(world, account)
    txid = world.node.pay([("FAK", key2, 2 * DUE)])
    [block, *_] = world.node.mine(3)
    await world.idle()
    assert (await account_state(world, account)).paid_until == T0 + 90 * DAY
    world.clock.advance(days=1)
    world.node.invalidate(block)
    await world.idle()
    world.node.drop(txid)
    world.node.mine(4)
    await world.idle()

    invoice = (await world.read(second)).record.invoice
    assert invoice.exception is not None
    assert invoice.exception.value == "reverted_after_settlement"
    row = await account_state(world, account)
    assert row.paid_until == T0 + 30 * DAY and row.billing_state is BillingState.ACTIVE
    events = await account_events(world, account)
    assert [t for t, _ in events] == ["account.activated", "account.renewed",
                                      "account.time_revoked"]
    revoked = events[-1][1]
    assert (revoked["invoice_id"], revoked["periods"], revoked["billing_state"]) == (
        second, 2, "active")
    assert revoked["paid_until"].startswith((T0 + 30 * DAY).strftime("%Y-%m-%dT%H:%M:%S"))
    [period] = await world.sql("SELECT periods, ends_at FROM paid_periods "
                               "WHERE invoice_id = :i", i=second)
    assert period.periods == 0

    # Observed again (more blocks): nothing is taken back twice.
    world.node.mine(2)
    await world.idle()
    assert len(await account_events(world, account)) == 3
    assert first != second


async def test_the_only_paid_time_reverted_suspends_at_once(world: World) -> None:
    account = await world.account()
    invoice_id, key = await plan_invoice(world, account)
    txid = world.node.pay([("FAK", key, DUE)])
    [block, *_] = world.node.mine(3)
    await world.idle()
    assert (await account_state(world, account)).billing_state is BillingState.ACTIVE
    world.clock.advance(hours=2)
    world.node.invalidate(block)
    await world.idle()
    world.node.drop(txid)
    world.node.mine(4)
    await world.idle()
    row = await account_state(world, account)
    assert row.billing_state is BillingState.SUSPENDED and row.paid_until == T0
    assert [t for t, _ in await account_events(world, account)] == [
        "account.activated", "account.time_revoked", "account.suspended"]
    assert invoice_id
