"""Account credit through the real services on a real database with an injected clock (the
fake chain family, docs/credit.md): what underpaid, overpaid and late payments credit, at
which rate, once; credit spent first (all of a period, or part of an invoice given back if
that invoice expires unpaid); a reverted payment's correction; expiry; and two instances
crediting and spending at once on SQLite and PostgreSQL."""

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from gateway.adapters.db import tables
from gateway.bootstrap import Overrides, build
from gateway.domain.credit import (
    AdjustmentReason,
    CreditKind,
    InsufficientCredit,
    payment_cause,
)
from gateway.domain.money import Fiat
from gateway.services.credit_spending import Bought
from gateway.services.finance import Period
from gateway.services.invoices import IdempotencyRequest
from tests.support.databases import fresh_database
from tests.support.fake_gateway import T0, World, fake_world

DUE = 10_000_000  # 8.00 EUR at 80 EUR per coin
DAY = timedelta(days=1)
ENV = {
    "GATEWAY_PLANS": json.dumps({"vps": {"price": "8.00", "currency": "EUR",
                                         "period": "30 days"}}),
    "GATEWAY_CREDIT__EXPIRES_AFTER_DAYS": "90",
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


async def pay(world: World, view: Any, amount: int, blocks: int = 3) -> None:
    world.node.pay([("FAK", key_of(view), amount)])
    world.node.mine(blocks)
    await world.idle()


async def plan_invoice(world: World, account: str, price: int = 800) -> Any:
    return await world.gw.services.invoices.create(account, Fiat(price, "EUR"), "FAK",
                                                   {"plan": "vps"})


async def expire(world: World, minutes: float = 16) -> None:
    world.clock.advance(minutes=minutes)
    await world.gw.services.tracker.sweep()


async def entries(world: World, account: str) -> list[Any]:
    return list(reversed((await world.gw.services.credit.view(account)).entries))


async def credited_events(world: World, account: str) -> list[dict[str, Any]]:
    rows = await world.sql("SELECT body FROM events WHERE account_id = :a "
                           "AND type = 'account.credited' ORDER BY seq", a=account)
    return [json.loads(r.body)["data"] for r in rows]


async def test_underpaid_until_expiry_then_credit_pays_part_of_the_next_period(
        world: World) -> None:
    credit = world.gw.services.credit
    account = await world.account()
    view = await plan_invoice(world, account)
    await pay(world, view, 6_000_000)  # 4.80 EUR of 8.00
    assert await credit.run() == 0  # still open: nothing yet
    await expire(world)
    assert await credit.run() == 1
    assert await credit.run() == 0  # once
    [entry] = await entries(world, account)
    assert (entry.kind, entry.amount, entry.currency) == (CreditKind.UNDERPAID, 480, "EUR")
    assert entry.conversion is not None and entry.conversion.rate_source == "locked"
    assert entry.cause.startswith("payment:FAK:")
    [event] = await credited_events(world, account)
    assert event | {"txid": None} == {"account_id": account, "kind": "underpaid",
                                      "amount": "4.80", "currency": "EUR",
                                      "balance": "4.80", "invoice_id": view.record.invoice.id,
                                      "txid": None}

    # Buying the plan: the credit first, an invoice for the rest.
    plan = world.gw.services.invoices.plan("vps")
    result = await world.gw.services.purchases.buy(account, plan, "FAK")
    assert not isinstance(result, Bought)
    smaller, _ = result
    inv = smaller.record.invoice
    assert inv.price == Fiat(320, "EUR") and inv.metadata["credit_applied"] == "4.80"
    assert await credit.balance(account) == 0
    await pay(world, smaller, inv.terms.amount_due)
    assert (await world.read(inv.id)).record.invoice.status.value == "settled"
    row = await world.sql("SELECT paid_until FROM accounts WHERE id = :a", a=account)
    assert row[0].paid_until is not None
    assert await credit.run() == 0
    assert [e.kind for e in await entries(world, account)] == [
        CreditKind.UNDERPAID, CreditKind.SPENT]


async def test_finance_lists_credits_and_spends_with_their_txids(world: World) -> None:
    credit = world.gw.services.credit
    account = await world.account()
    await pay(world, await plan_invoice(world, account), 4_000_000)
    await expire(world)
    await credit.run()
    plan = world.gw.services.invoices.plan("vps")
    result = await world.gw.services.purchases.buy(account, plan, "FAK")
    assert not isinstance(result, Bought)
    lines = await world.gw.services.finance.credit(Period(T0, T0 + DAY))
    assert [(line["kind"], line["amount"], line["account_id"]) for line in lines] == [
        ("underpaid", "3.20", account), ("spent", "-3.20", account)]
    credited = lines[0]
    assert credited["txid"] and credited["coin"] == "FAK" and credited["rate"] == "80"
    assert lines[1]["txid"] == "" and lines[1]["invoice_id"] == result[0].record.invoice.id


async def test_a_part_paid_invoice_that_expires_gives_its_credit_back(world: World) -> None:
    credit = world.gw.services.credit
    account = await world.account()
    await pay(world, await plan_invoice(world, account), 4_000_000)
    await expire(world)
    await credit.run()
    plan = world.gw.services.invoices.plan("vps")
    result = await world.gw.services.purchases.buy(account, plan, "FAK")
    assert not isinstance(result, Bought)
    assert await credit.balance(account) == 0
    await expire(world)  # the smaller invoice is not paid either
    assert await credit.run() == 1
    assert await credit.run() == 0
    assert await credit.balance(account) == 320
    assert [e.kind for e in await entries(world, account)] == [
        CreditKind.UNDERPAID, CreditKind.SPENT, CreditKind.SPEND_RETURNED]
    assert [e["kind"] for e in await credited_events(world, account)] == [
        "underpaid", "spend_returned"]


async def test_an_overpayment_is_credited_and_then_buys_a_period_with_no_invoice(
        world: World) -> None:
    credit = world.gw.services.credit
    account = await world.account()
    view = await plan_invoice(world, account)
    await pay(world, view, 2 * DUE + DUE // 2)  # 20.00 EUR for an 8.00 period
    assert await credit.run() == 1
    [entry] = await entries(world, account)
    assert (entry.kind, entry.amount, entry.cause) == (
        CreditKind.OVERPAID, 1200, f"overpaid:{view.record.invoice.id}")
    [invoices_before] = await world.sql("SELECT count(*) AS n FROM invoices")
    plan = world.gw.services.invoices.plan("vps")
    bought = await world.gw.services.purchases.buy(account, plan, "FAK")
    assert isinstance(bought, Bought)
    assert bought.extension.starts_at == T0 + 30 * DAY  # after the period the invoice paid
    assert bought.account.paid_until == T0 + 60 * DAY
    [invoices_after] = await world.sql("SELECT count(*) AS n FROM invoices")
    assert invoices_after.n == invoices_before.n  # no invoice at all
    assert await credit.balance(account) == 400
    rows = await world.sql("SELECT type, body FROM events WHERE account_id = :a AND "
                           "type = 'account.renewed'", a=account)
    [renewed] = [json.loads(r.body)["data"] for r in rows]
    assert renewed["via"] == "credit" and renewed["invoice_id"] is None


async def test_a_retried_purchase_from_credit_buys_once(world: World) -> None:
    """The same request again (its Idempotency-Key) finds its purchase: no second period."""
    credit = world.gw.services.credit
    account = await world.account()
    await pay(world, await plan_invoice(world, account), 4 * DUE)
    await credit.run()
    assert await credit.balance(account) == 2400
    plan = world.gw.services.invoices.plan("vps")
    idem = IdempotencyRequest(account, "retry-me", "f" * 64)
    once = await world.gw.services.purchases.buy(account, plan, "FAK", idem)
    again = await world.gw.services.purchases.buy(account, plan, "FAK", idem)
    assert isinstance(once, Bought) and isinstance(again, Bought)
    assert again.extension is None and again.entry.cause == once.entry.cause
    assert await credit.balance(account) == 1600
    other = await world.gw.services.purchases.buy(account, plan, "FAK")  # a new request
    assert isinstance(other, Bought) and await credit.balance(account) == 800


async def test_a_late_payment_is_credited_at_the_rate_of_the_moment(world: World) -> None:
    credit = world.gw.services.credit
    account = await world.account()
    view = await plan_invoice(world, account)
    # Well after expiry (beyond the block-time tolerance, which would make it on time).
    await expire(world, minutes=40)
    await pay(world, view, DUE, blocks=1)
    assert await credit.run() == 0  # not at its depth yet
    world.node.mine(2)
    await world.idle()
    assert await credit.run() == 1
    [entry] = await entries(world, account)
    assert entry.kind is CreditKind.LATE and entry.amount == 800
    assert (await world.read(view.record.invoice.id)).record.invoice.status.value == "expired"
    assert entry.conversion is not None and entry.conversion.rate_source != "locked"


async def test_a_reverted_credited_payment_is_taken_back_once(world: World) -> None:
    credit = world.gw.services.credit
    account = await world.account()
    view = await plan_invoice(world, account)
    await pay(world, view, 4_000_000)
    await expire(world)
    await credit.run()
    [entry] = await entries(world, account)
    assert entry.conversion is not None
    async with world.gw.sql_uow() as uow:  # a reorg, then a double spend: gone for good
        await uow.payments.unconfirm(("FAK",), [entry.conversion.txid])
        await uow.payments.revert(("FAK",), [entry.conversion.txid])
        await uow.commit()
    assert await credit.run() == 1
    assert await credit.run() == 0
    assert await credit.balance(account) == 0
    kinds = [e.kind for e in await entries(world, account)]
    assert kinds == [CreditKind.UNDERPAID, CreditKind.REVERTED]


async def test_an_expired_invoice_that_settles_after_all_takes_its_credit_back(
        world: World) -> None:
    """Credited as underpaid, then settled once a payment turned out made in time (the
    watcher caught up): the outputs bought the period, their credit is taken back."""
    credit = world.gw.services.credit
    account = await world.account()
    view = await plan_invoice(world, account)
    await pay(world, view, 4_000_000)
    await expire(world)
    assert await credit.run() == 1
    invoice_id = view.record.invoice.id
    async with world.gw.engine.begin() as conn:  # what `observe` does on the late evidence
        await conn.execute(update(tables.invoices).where(tables.invoices.c.id == invoice_id)
                           .values(status="settled", settled_at=world.clock.now))
    assert await credit.run() == 1
    assert await credit.run() == 0
    assert await credit.balance(account) == 0
    assert [e.kind for e in await entries(world, account)] == [
        CreditKind.UNDERPAID, CreditKind.REVERTED]


async def test_credit_expires_after_its_lifetime_once(world: World) -> None:
    credit = world.gw.services.credit
    account = await world.account()
    await pay(world, await plan_invoice(world, account), 4_000_000)
    await expire(world)
    await credit.run()
    world.clock.now = T0 + 89 * DAY
    assert await credit.run() == 0
    world.clock.now = T0 + 91 * DAY
    assert await credit.run() == 1
    assert await credit.run() == 0
    assert await credit.balance(account) == 0
    assert (await entries(world, account))[-1].kind is CreditKind.EXPIRED


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_two_instances_credit_and_spend_at_once(
        kind: str, tmp_path: Path, template_dir: Path) -> None:
    with fresh_database(kind, tmp_path) as url:
        async with fake_world(tmp_path, template_dir, db_url=url, env=ENV) as world:
            await world.start()
            other = build(world.gw.settings, overrides=Overrides(clock=world.clock))
            instances = [world.gw, other]
            try:
                accounts = [await world.account() for _ in range(3)]
                views = [await plan_invoice(world, a) for a in accounts]
                for view in views:
                    world.node.pay([("FAK", key_of(view), 7_500_000)])  # 6.00 EUR each
                world.node.mine(3)
                await world.idle()
                await expire(world)
                for _ in range(2):
                    await asyncio.gather(*(gw.services.credit.run() for gw in instances))
                plan = world.gw.services.invoices.plan("vps")
                for account in accounts:
                    assert await world.gw.services.credit.balance(account) == 600
                    # Both instances spend the same credit at the same moment.
                    results = await asyncio.gather(
                        *(gw.services.purchases.buy(account, plan, "FAK") for gw in instances),
                        return_exceptions=True)
                    assert all(not isinstance(r, Bought) for r in results)
                    balance = await world.gw.services.credit.balance(account)
                    assert balance >= 0
                    spent = [e for e in await entries(world, account)
                             if e.kind is CreditKind.SPENT]
                    assert sum(-e.amount for e in spent) == 600 - balance <= 600
                    causes = [e.cause for e in await entries(world, account)]
                    assert len(causes) == len(set(causes))
                    assert causes[0] == payment_cause(
                        "FAK", (await entries(world, account))[0].conversion.txid,
                        (await entries(world, account))[0].conversion.output_index)
            finally:
                await other.aclose()


async def test_renewals_take_credit_first_whole_then_in_part(world: World) -> None:
    credit, billing = world.gw.services.credit, world.gw.services.billing
    account = await world.account()
    await pay(world, await plan_invoice(world, account), 2 * DUE + DUE // 2)
    await credit.run()
    assert await credit.balance(account) == 1200
    [invoices_before] = await world.sql("SELECT count(*) AS n FROM invoices")

    world.clock.now = T0 + 23 * DAY  # the renewal lead: credit pays the whole period
    for _ in range(3):
        await billing.run()
    [invoices_after] = await world.sql("SELECT count(*) AS n FROM invoices")
    assert invoices_after.n == invoices_before.n
    assert await credit.balance(account) == 400
    rows = await world.sql("SELECT body FROM events WHERE account_id = :a AND "
                           "type = 'account.renewed'", a=account)
    [renewed] = [json.loads(r.body)["data"] for r in rows]
    assert renewed["via"] == "credit" and renewed["paid_until"].startswith("2027-01-26")

    world.clock.now = T0 + 53 * DAY  # the next one: 4.00 of credit, an invoice for 4.00
    for _ in range(3):
        await billing.run()
    assert await credit.balance(account) == 0
    [renewal] = await world.sql("SELECT invoice_id FROM renewals WHERE account_id = :a",
                                a=account)
    invoice = (await world.read(renewal.invoice_id)).record.invoice
    assert invoice.price == Fiat(400, "EUR")
    assert invoice.metadata == {"plan": "vps", "credit_applied": "4.00"}
    spent = [e for e in await entries(world, account) if e.kind is CreditKind.SPENT]
    assert [e.amount for e in spent] == [-800, -400]
    assert spent[1].cause == f"spend:{invoice.id}"


async def test_staff_adjust_a_balance_once_per_request_never_below_zero(
        world: World) -> None:
    credit = world.gw.services.credit
    account = await world.account()
    await pay(world, await plan_invoice(world, account), 4_000_000)
    await expire(world)
    await credit.run()
    entry = await credit.adjust(account, 150, AdjustmentReason.GOODWILL, "sorry", "stf_1",
                                "req-1")
    again = await credit.adjust(account, 150, AdjustmentReason.GOODWILL, "sorry", "stf_1",
                                "req-1")
    assert again.cause == entry.cause == "adjust:req-1"
    assert await credit.balance(account) == 470
    with pytest.raises(InsufficientCredit):
        await credit.adjust(account, -500, AdjustmentReason.CORRECTION, None, "stf_1",
                            "req-2")
    await credit.adjust(account, -470, AdjustmentReason.CORRECTION, None, "stf_1", "req-3")
    assert await credit.balance(account) == 0
    [*_, last] = await entries(world, account)
    assert (last.kind, last.reason, last.staff_id) == (
        CreditKind.ADJUSTMENT, AdjustmentReason.CORRECTION, "stf_1")
    assert [e["kind"] for e in await credited_events(world, account)] == [
        "underpaid", "adjustment"]
