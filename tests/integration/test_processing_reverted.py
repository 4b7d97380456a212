"""An invoice that was `processing` and goes back to `new` because the payment that made
it so left (dropped from the mempool, double-spent, or reorged out of its block and gone)
announces it: `invoice.processing_reverted` (issue 27 item 22). Before, the status changed
silently and a receiver that acted on `invoice.processing` was never told. The real
tracker on a real database, the fake chain family driven as a chain would be."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.fake_gateway import World, fake_world


@pytest.fixture(scope="module")
def template_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("template")


@pytest.fixture
async def world(tmp_path: Path, template_dir: Path) -> AsyncIterator[World]:
    async with fake_world(tmp_path, template_dir) as w:  # 3 confirmations
        await w.start()
        yield w


def key_of(view: object) -> bytes:
    return bytes.fromhex(view.record.address.removeprefix("fake1"))  # type: ignore[attr-defined]


async def test_a_mempool_payment_that_vanishes_is_announced(world: World) -> None:
    view = await world.invoice(await world.account())
    invoice_id = view.record.invoice.id
    txid = world.node.pay([("FAK", key_of(view), view.record.invoice.terms.amount_due)])
    await world.idle()
    assert (await world.read(invoice_id)).record.invoice.status.value == "processing"
    world.node.drop(txid)
    await world.idle()
    assert (await world.read(invoice_id)).record.invoice.status.value == "new"
    assert await world.event_types(invoice_id) == [
        "invoice.created", "invoice.payment_received", "invoice.processing",
        "invoice.processing_reverted"]
    # Paid again: processing again, announced again.
    world.node.pay([("FAK", key_of(view), view.record.invoice.terms.amount_due)])
    world.node.mine(3)
    await world.idle()
    assert (await world.event_types(invoice_id))[-3:] == [
        "invoice.payment_received", "invoice.processing", "invoice.settled"]


async def test_a_reorg_that_takes_the_payment_away_before_settlement_is_announced(
        world: World) -> None:
    view = await world.invoice(await world.account())
    invoice_id = view.record.invoice.id
    txid = world.node.pay([("FAK", key_of(view), view.record.invoice.terms.amount_due)])
    [block] = world.node.mine(1)  # 1 of 3 confirmations: processing
    await world.idle()
    world.node.invalidate(block)
    world.node.drop(txid)  # double-spent in the branch that won
    world.node.mine(2)
    await world.idle()
    doc = await world.sql("SELECT type, body FROM events ORDER BY seq")
    reverted = [r for r in doc if r.type == "invoice.processing_reverted"
                and invoice_id in r.body]
    assert len(reverted) == 1 and '"status":"new"' in reverted[0].body.replace(" ", "")
    assert await world.event_types(invoice_id) == [
        "invoice.created", "invoice.payment_received", "invoice.processing",
        "invoice.processing_reverted"]
