"""Prepaid time through the real services on a real database with an injected clock (the
fake chain family, no node): what payments buy, the renewal invoice and its reminders,
grace and suspension, each once whatever the periodic task is made to do (run again,
restarted, the clock jumping back and forth), and two instances on PostgreSQL running it
at the same moment."""

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from gateway.adapters.db import tables
from gateway.bootstrap import Overrides, build
from gateway.domain.accounts import Account
from gateway.domain.billing import BillingState
from gateway.domain.money import Fiat
from gateway.services.finance import Period as Window
from tests.support.databases import fresh_database
from tests.support.fake_gateway import T0, World, fake_world

DUE = 10_000_000  # 8.00 EUR at 80 EUR per coin
DAY = timedelta(days=1)
ENV = {
    "GATEWAY_PLANS": json.dumps({"vps": {"price": "8.00", "currency": "EUR",
                                         "period": "30 days"},
                                 "big": {"price": "16.00", "currency": "EUR",
                                         "period": "30 days"}}),
    "GATEWAY_BILLING__GRACE": "3 days",
    "GATEWAY_BILLING__RENEWAL_LEAD": "7 days",
    "GATEWAY_BILLING__SECOND_REMINDER": "1 day",
    # Reminders need a mail server; no sender runs here, so mail stays queued (counted).
    "GATEWAY_SMTP__HOST": "127.0.0.1", "GATEWAY_SMTP__PORT": "9",
    "GATEWAY_SMTP__FROM": "billing@packetra.test",
}


@pytest.fixture(scope="module")
def template_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("template")


@pytest.fixture
async def world(tmp_path: Path, template_dir: Path) -> AsyncIterator[World]:
    async with fake_world(tmp_path, template_dir, env=ENV) as w:
        await w.start()
        yield w


def key_of(view: Any) -> bytes:
    return bytes.fromhex(view.record.address.removeprefix("fake1"))


async def buy(world: World, account_id: str, plan: str = "vps", amount: int = DUE) -> str:
    price = {"vps": 800, "big": 1600}[plan]
    view = await world.gw.services.invoices.create(
        account_id, Fiat(price, "EUR"), "FAK", {"plan": plan})
    return await pay(world, view, amount)


async def pay(world: World, view: Any, amount: int | None = None) -> str:
    amount = view.record.invoice.terms.amount_due if amount is None else amount
    world.node.pay([("FAK", key_of(view), amount)])
    world.node.mine(3)
    await world.idle()
    return str(view.record.invoice.id)


async def account_row(world: World, account_id: str) -> Account:
    async with world.gw.sql_uow() as uow:
        account = await uow.accounts.get(account_id)
    assert account is not None
    return account


async def billing_events(world: World, account_id: str) -> list[tuple[str, dict[str, Any]]]:
    rows = await world.sql("SELECT type, body FROM events WHERE account_id = :a "
                           "AND type LIKE 'account.%' ORDER BY seq", a=account_id)
    return [(r.type, json.loads(r.body)["data"]) for r in rows
            if r.type != "account.created"]


async def renewals(world: World, account_id: str) -> list[Any]:
    async with world.gw.engine.connect() as conn:
        return list((await conn.execute(
            select(tables.renewals).where(tables.renewals.c.account_id == account_id)
            .order_by(tables.renewals.c.period_end))).all())


async def mail_count(world: World) -> int:
    [row] = await world.sql("SELECT count(*) AS n FROM mail_queue")
    return int(row.n)


async def run_many(world: World, times: int = 3) -> None:
    for _ in range(times):
        await world.gw.services.billing.run()


async def test_a_year_of_renewals_grace_suspension_and_reactivation(world: World) -> None:
    billing = world.gw.services.billing
    account = await world.account()
    first = await buy(world, account)
    row = await account_row(world, account)
    assert row.paid_until == T0 + 30 * DAY and row.billing_state == BillingState.ACTIVE
    assert (row.plan, row.renewal_coin) == ("vps", "FAK")
    await run_many(world)
    assert await renewals(world, account) == []

    # 7 days before the end: the renewal invoice, once, mailed once.
    world.clock.now = T0 + 23 * DAY
    await run_many(world)
    [renewal] = await renewals(world, account)
    assert renewal.period_end == T0 + 30 * DAY and renewal.first_reminder_at is not None
    assert await mail_count(world) == 1
    view = await world.read(renewal.invoice_id)
    invoice = view.record.invoice
    assert invoice.metadata == {"plan": "vps"} and invoice.coin == "FAK"
    assert invoice.terms.expires_at == T0 + 30 * DAY  # payable until the period ends
    assert view.record.address != (await world.read(first)).record.address
    # A restart (a new gateway on the same database) creates nothing more.
    gw2 = build(world.gw.settings, overrides=Overrides(clock=world.clock))
    try:
        await gw2.services.billing.run()
    finally:
        await gw2.aclose()
    assert len(await renewals(world, account)) == 1
    seen = await billing.view(account)
    assert seen.next_invoice is not None and seen.next_invoice.invoice_id == invoice.id
    assert seen.next_invoice_at == T0 + 23 * DAY

    # A day before: the second reminder, once.
    world.clock.now = T0 + 29 * DAY
    await run_many(world)
    assert await mail_count(world) == 2
    # Paid a day early: nothing lost, the next period follows on.
    await pay(world, view)
    row = await account_row(world, account)
    assert row.paid_until == T0 + 60 * DAY and row.billing_state == BillingState.ACTIVE
    await run_many(world)
    assert await mail_count(world) == 2  # a paid renewal is not reminded of

    # The next renewal is not paid: grace, then suspension, each once.
    world.clock.now = T0 + 53 * DAY
    await run_many(world)
    assert len(await renewals(world, account)) == 2
    world.clock.now = T0 + 60 * DAY
    await run_many(world)
    world.clock.now = T0 + 61 * DAY
    await run_many(world)
    assert (await account_row(world, account)).billing_state == BillingState.GRACE
    world.clock.now = T0 + 63 * DAY
    await run_many(world)
    assert (await account_row(world, account)).billing_state == BillingState.SUSPENDED
    world.clock.now = T0 + 40 * DAY  # the clock jumps back, then forward again
    await run_many(world)
    world.clock.now = T0 + 70 * DAY
    await run_many(world)
    assert len(await renewals(world, account)) == 2  # a suspended account is not renewed

    # A later payment activates it again, from the payment.
    again = await buy(world, account)
    row = await account_row(world, account)
    assert row.paid_until == T0 + 100 * DAY and row.billing_state == BillingState.ACTIVE

    events = await billing_events(world, account)
    assert [t for t, _ in events] == [
        "account.activated", "account.expiring", "account.renewed", "account.expiring",
        "account.grace", "account.suspended", "account.activated"]
    activated, expiring, renewed, _, grace, suspended, reactivated = (d for _, d in events)
    assert activated["paid_until"] == "2026-12-27T12:00:00Z" and not activated["reactivated"]
    assert expiring["invoice_id"] == invoice.id and expiring["price"] == {
        "amount": "8.00", "currency": "EUR"}
    assert renewed["paid_until"] == "2027-01-26T12:00:00Z"
    assert renewed["period_start"] == "2026-12-27T12:00:00Z"
    assert grace["suspends_at"] == "2027-01-29T12:00:00Z"
    assert suspended["paid_until"] == "2027-01-26T12:00:00Z"
    assert reactivated["reactivated"] and reactivated["invoice_id"] == again
    assert reactivated["paid_until"] == "2027-03-07T12:00:00Z"

    # The payments export names the period each invoice paid for.
    lines = {line.row.invoice_id: line.as_dict()
             for line in await world.gw.services.finance.page(Window())}
    assert (lines[first]["period_start"], lines[first]["period_end"]) == (
        "2026-11-27T12:00:00Z", "2026-12-27T12:00:00Z")
    assert (lines[invoice.id]["period_start"], lines[invoice.id]["period_end"]) == (
        "2026-12-27T12:00:00Z", "2027-01-26T12:00:00Z")
    assert lines[again]["plan"] == "vps"


async def test_partial_and_over_payments_and_replays(world: World) -> None:
    account = await world.account()
    await buy(world, account)
    partial = await world.gw.services.invoices.create(
        account, Fiat(800, "EUR"), "FAK", {"plan": "vps"})
    await pay(world, partial, DUE - 1)
    assert (await account_row(world, account)).paid_until == T0 + 30 * DAY
    # Twice the price, not allowed to buy more: one period (the operator decides).
    await buy(world, account, amount=2 * DUE)
    assert (await account_row(world, account)).paid_until == T0 + 60 * DAY
    # Replaying the chain (a new block on top) extends nothing again.
    world.node.mine(2)
    await world.idle()
    assert (await account_row(world, account)).paid_until == T0 + 60 * DAY
    [row] = await world.sql("SELECT count(*) AS n FROM paid_periods WHERE account_id = :a",
                            a=account)
    assert row.n == 2


async def test_overpayment_buys_whole_periods_when_allowed(
        tmp_path: Path, template_dir: Path) -> None:
    env = ENV | {"GATEWAY_BILLING__OVERPAYMENT_BUYS_PERIODS": "true"}
    async with fake_world(tmp_path, template_dir, env=env) as world:
        await world.start()
        account = await world.account()
        await buy(world, account, amount=3 * DUE - 1)  # two whole periods and a bit
        assert (await account_row(world, account)).paid_until == T0 + 60 * DAY
        [event] = await billing_events(world, account)
        assert event[0] == "account.activated"


async def test_no_renewal_for_an_account_being_deleted_and_reminders_off(
        world: World) -> None:
    billing = world.gw.services.billing
    leaving, quiet = await world.account(), await world.account()
    await buy(world, leaving)
    await buy(world, quiet)
    await _schedule(world, leaving)  # (the password check of the real request aside)
    await billing.choose(quiet, reminders=False)
    world.clock.now = T0 + 29 * DAY + timedelta(hours=1)
    await run_many(world)
    assert await renewals(world, leaving) == []
    [renewal] = await renewals(world, quiet)  # the invoice is still there ...
    assert renewal.first_reminder_at is None and renewal.second_reminder_at is None
    assert await mail_count(world) == 0  # ... but no mail about it


async def _schedule(world: World, account_id: str) -> None:
    async with world.gw.sql_uow() as uow:
        account = await uow.accounts.get(account_id, for_update=True)
        assert account is not None
        account.schedule_deletion(world.clock(), timedelta(days=7))
        await uow.accounts.save(account)
        await uow.commit()


async def test_changing_plan_or_coin_replaces_the_unpaid_renewal_invoice(
        world: World) -> None:
    billing = world.gw.services.billing
    account = await world.account()
    await buy(world, account)
    world.clock.now = T0 + 24 * DAY
    await billing.run()
    [before] = await renewals(world, account)
    view = await billing.choose(account, plan="big")
    assert view.account.plan == "big" and view.next_invoice is not None
    assert view.next_invoice.invoice_id != before.invoice_id
    replacement = (await world.read(view.next_invoice.invoice_id)).record.invoice
    assert replacement.price == Fiat(1600, "EUR") and replacement.metadata == {"plan": "big"}
    await pay(world, await world.read(replacement.id))
    assert (await account_row(world, account)).paid_until == T0 + 60 * DAY
    with pytest.raises(Exception, match="plan"):
        await billing.choose(account, plan="nope")
    with pytest.raises(Exception, match="coin"):
        await billing.choose(account, coin="XYZ")


async def test_two_instances_on_postgresql_create_one_renewal_per_period(
        tmp_path: Path, template_dir: Path) -> None:
    with fresh_database("postgresql", tmp_path) as url:
        async with fake_world(tmp_path, template_dir, db_url=url, env=ENV) as world:
            await world.start()
            others = [build(world.gw.settings, overrides=Overrides(clock=world.clock))
                      for _ in range(2)]
            instances = [world.gw, *others]
            try:
                accounts = [await world.account() for _ in range(5)]
                for account in accounts:
                    await buy(world, account)
                for day in (23, 24, 29, 30, 31, 33, 34):
                    world.clock.now = T0 + day * DAY
                    for _ in range(3):  # all at the same moment, three times over
                        await asyncio.gather(*(gw.services.billing.run() for gw in instances))
                for account in accounts:
                    assert len(await renewals(world, account)) == 1
                    assert [t for t, _ in await billing_events(world, account)] == [
                        "account.activated", "account.expiring", "account.grace",
                        "account.suspended"]
                [row] = await world.sql("SELECT count(*) AS n FROM invoices")
                assert row.n == 10  # five bought, five renewals
                assert await mail_count(world) == 10  # one reminder each, and a second
            finally:
                for gw in others:
                    await gw.aclose()


class NoRates:
    async def rate(self, coin: str, currency: str) -> Any:
        from gateway.services.errors import ServiceUnavailable

        raise ServiceUnavailable("no rate source answers")


async def test_without_a_rate_the_states_still_move_on_and_the_renewal_follows(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    invoices = world.gw.services.invoices
    account = await world.account()
    await buy(world, account)
    rates = invoices._rates
    monkeypatch.setattr(invoices, "_rates", NoRates())
    world.clock.now = T0 + 31 * DAY
    await run_many(world)
    assert await renewals(world, account) == []
    assert (await account_row(world, account)).billing_state == BillingState.GRACE
    monkeypatch.setattr(invoices, "_rates", rates)
    await run_many(world)
    [renewal] = await renewals(world, account)  # created in grace, once the rate is back
    assert renewal.period_end == T0 + 30 * DAY
    assert [t for t, _ in await billing_events(world, account)] == [
        "account.activated", "account.grace", "account.expiring"]
