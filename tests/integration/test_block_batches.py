"""A block paying many invoices is handled in short batches, the cursor advanced with the
last: a crash between batches replays the block and announces nothing twice; a new tip
re-evaluates only the invoices it pays or whose payments reach their confirmations."""

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from chains.base import BlockConnected, BlockRef, Observed
from gateway.services.chain_events import Feed
from tests.support.fake_gateway import T0, Crash, World, fake_world

pytestmark = pytest.mark.integration

DUE = 10_000_000  # 8.00 EUR at 80 EUR per coin, in base units


@pytest.fixture(scope="module")
def template_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("template")


@pytest.fixture
async def world(tmp_path: Path, template_dir: Path) -> AsyncIterator[World]:
    async with fake_world(tmp_path, template_dir, confirmations=2) as w:
        yield w


def key_of(view: Any) -> bytes:
    return bytes.fromhex(view.record.address.removeprefix("fake1"))


def block(height: int, payments: tuple[Observed, ...] = ()) -> BlockConnected:
    return BlockConnected(BlockRef(height, f"h{height}"), f"h{height - 1}", T0, payments)


async def test_a_crash_between_batches_replays_the_block_and_announces_once(
    world: World,
) -> None:
    feed = Feed("FAK", ("FAK",))
    account = await world.account()
    views = [await world.invoice(account) for _ in range(25)]
    world.tracker._batch = 10  # three transactions for this block
    await world.tracker.set_cursor(feed, BlockRef(0, "h0"))
    paid = tuple(Observed("FAK", f"tx{n}", 0, key_of(v), DUE, BlockRef(1, "h1"))
                 for n, v in enumerate(views))
    world.crash_at = {world.commits + 2}  # the second batch never commits
    with pytest.raises(Crash):
        await world.tracker.block_connected(feed, block(1, paid))
    assert await world.tracker.start_cursor(feed) == BlockRef(0, "h0")
    assert len(await world.sql("SELECT id FROM payments")) == 10  # the first batch only
    await world.tracker.block_connected(feed, block(1, paid))  # the replay
    assert await world.tracker.start_cursor(feed) == BlockRef(1, "h1")
    rows = await world.sql("SELECT txid FROM payments")
    assert sorted(r.txid for r in rows) == sorted(f"tx{n}" for n in range(25))
    for view in views:
        types = await world.event_types(view.record.invoice.id)
        assert types == ["invoice.created", "invoice.payment_received",
                         "invoice.processing"], types
    # The next block pays nobody, yet every payment reaches its two confirmations.
    await world.tracker.block_connected(feed, block(2))
    for view in views:
        assert (await world.read(view.record.invoice.id)).record.invoice.status.value \
            == "settled"
        assert (await world.event_types(view.record.invoice.id)).count(
            "invoice.settled") == 1


async def test_a_new_tip_reads_only_the_invoices_it_can_change(world: World) -> None:
    feed = Feed("FAK", ("FAK",))
    account = await world.account()
    early, late = await world.invoice(account), await world.invoice(account)
    await world.tracker.set_cursor(feed, BlockRef(0, "h0"))
    await world.tracker.block_connected(feed, block(1, (
        Observed("FAK", "txE", 0, key_of(early), DUE, BlockRef(1, "h1")),)))
    await world.tracker.block_connected(feed, block(2, (
        Observed("FAK", "txL", 0, key_of(late), DUE, BlockRef(2, "h2")),)))
    # At height 2 the early payment has its two confirmations; the late one has one.
    assert (await world.read(early.record.invoice.id)).record.invoice.status.value \
        == "settled"
    assert (await world.read(late.record.invoice.id)).record.invoice.status.value \
        == "processing"
    async with world.gw.sql_uow() as uow:
        reaching = await uow.invoices.reaching_depth(("FAK",), 2, 3, 100, world.clock())
    assert reaching == [late.record.invoice.id]  # not the settled one, not every open one
    await world.tracker.block_connected(feed, block(3))
    assert (await world.read(late.record.invoice.id)).record.invoice.status.value \
        == "settled"


async def test_the_watched_set_skips_an_unused_index_and_catches_a_late_one(
    world: World,
) -> None:
    from sqlalchemy import insert, select, text, update

    from gateway.adapters.db.chain_state import SqlWatchlist
    from gateway.adapters.db.tables import derivation_counters, invoices

    account = await world.account()
    first = await world.invoice(account)  # index 0
    space = world.follower.address_space
    async with world.gw.engine.begin() as conn:  # index 1 handed out, never committed
        await conn.execute(update(derivation_counters).where(
            derivation_counters.c.space == space).values(next_index=2))
    third = await world.invoice(account)  # index 2
    watched = SqlWatchlist(world.gw.engine, space)
    await watched.refresh()
    assert len(watched) == 2 and key_of(first) in watched and key_of(third) in watched
    assert watched._missing == {1}
    # An invoice that committed late under a lower index is still caught.
    async with world.gw.engine.begin() as conn:
        row = dict((await conn.execute(select(invoices).where(
            invoices.c.id == first.record.invoice.id))).one()._mapping)
        await conn.execute(insert(invoices).values(
            {**row, "id": "inv_late", "derivation_index": 1, "match_key": b"late-key",
             "address": "late-address"}))
    await watched.refresh()
    assert b"late-key" in watched and len(watched) == 3 and not watched._missing
    async with world.gw.engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM invoices"))).scalar() == 3
