"""Lateness is judged from the payments that settle the invoice (issue 27 item 11): an early
mempool sighting of a transaction that never confirms does not let a different payment made
20 hours later settle at the locked rate with `accept_late_payments = false`. The real
tracker on a real database, the fake chain driven as a payer would drive a chain."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.fake_gateway import World, fake_world


@pytest.fixture(scope="module")
def template_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("template")


@pytest.fixture
async def world(tmp_path: Path, template_dir: Path) -> AsyncIterator[World]:
    async with fake_world(tmp_path, template_dir) as w:  # 3 confirmations, 15 min expiry
        await w.start()
        yield w


def key_of(view: object) -> bytes:
    return bytes.fromhex(view.record.address.removeprefix("fake1"))  # type: ignore[attr-defined]


def state(view: object) -> tuple[str, str | None]:
    inv = view.record.invoice  # type: ignore[attr-defined]
    return inv.status.value, inv.exception.value if inv.exception else None


async def test_an_unconfirmed_early_sighting_does_not_make_a_late_payment_on_time(
        world: World) -> None:
    view = await world.invoice(await world.account())
    invoice_id, due = view.record.invoice.id, view.record.invoice.terms.amount_due
    world.clock.advance(minutes=10)
    early = world.node.pay([("FAK", key_of(view), due)])  # seen in time, never mined
    await world.idle()
    assert state(await world.read(invoice_id)) == ("processing", None)

    world.clock.advance(hours=20)
    late = world.node.pay([("FAK", key_of(view), due)])
    world.node.mine(3, txids=[late])  # only the late one is mined
    await world.idle()
    assert early in world.node.mempool
    assert state(await world.read(invoice_id)) == ("expired", "paid_late")

    # The early payment does confirm after all: its own sighting was in time, so the
    # invoice settles (paid twice over).
    world.node.mine(3, txids=[early])
    await world.idle()
    assert state(await world.read(invoice_id)) == ("settled", "paid_over")


async def test_a_payment_seen_in_time_that_confirms_late_is_on_time(world: World) -> None:
    view = await world.invoice(await world.account())
    invoice_id, due = view.record.invoice.id, view.record.invoice.terms.amount_due
    world.clock.advance(minutes=14)
    world.node.pay([("FAK", key_of(view), due)])
    await world.idle()
    world.clock.advance(hours=3)  # mined long after expiry
    world.node.mine(3)
    await world.idle()
    assert state(await world.read(invoice_id)) == ("settled", None)
