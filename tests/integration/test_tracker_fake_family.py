"""The payment tracker and the invoice service on the fake family: reorgs at every depth,
events in any order and twice, a crash before every commit, locks, reorgs reported by
transaction ids, two coins in one address space. A real SQLite file, no node: the whole
module runs in a few seconds, so the slow node tests only have to prove the adapter."""

import itertools
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from chains.base import (
    BlockConnected,
    BlockRef,
    Lock,
    MempoolSeen,
    Observed,
    TransactionsDisconnected,
)
from gateway.services.chain_events import Feed
from tests.support.fake_gateway import T0, World, fake_world, quiet

DUE = 10_000_000  # 8.00 EUR at 80 EUR per coin, in base units
PAID = ["invoice.created", "invoice.payment_received", "invoice.processing",
        "invoice.settled"]


@pytest.fixture(scope="module")
def template_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("template")


@pytest.fixture
async def world(tmp_path: Path, template_dir: Path) -> AsyncIterator[World]:
    async with fake_world(tmp_path, template_dir) as w:
        yield w


async def status(world: World, invoice_id: str) -> tuple[str, str | None]:
    view = await world.read(invoice_id)
    inv = view.record.invoice
    return inv.status.value, inv.exception.value if inv.exception else None


async def test_pay_process_and_settle(world: World) -> None:
    account = await world.account()
    view = await world.invoice(account)
    record = view.record
    assert record.payment_uri == f"fake:{record.address}?coin=FAK&value={DUE}"
    await world.start()
    key = bytes.fromhex(record.address.removeprefix("fake1"))
    world.node.pay([("FAK", key, DUE)])
    await world.idle()
    assert await status(world, record.invoice.id) == ("processing", None)
    world.node.mine(3)
    await world.idle()
    assert await status(world, record.invoice.id) == ("settled", None)
    assert await world.event_types(record.invoice.id) == PAID
    [payment] = (await world.read(record.invoice.id)).record.payments
    assert (await world.read(record.invoice.id)).confirmations(payment) == 3


def key_of(view: Any) -> bytes:
    return bytes.fromhex(view.record.address.removeprefix("fake1"))


@pytest.mark.parametrize("depth", [1, 2, 3, 4, 5, 6])
async def test_reorg_after_settlement_at_every_depth(world: World, depth: int) -> None:
    view = await world.invoice(await world.account())
    invoice_id = view.record.invoice.id
    await world.start()
    txid = world.node.pay([("FAK", key_of(view), DUE)])
    [paid_in] = world.node.mine(1)
    world.node.mine(5)  # six blocks hold or follow the payment: settled at three
    await world.idle()
    assert await status(world, invoice_id) == ("settled", None)
    paid_height = world.node.block(paid_in).ref.height  # type: ignore[union-attr]

    world.node.invalidate(world.node.chain[paid_height + 6 - depth].ref.hash)
    await world.idle()
    left = depth == 6  # only a reorg of all six blocks takes the payment's block
    assert await status(world, invoice_id) == (
        "settled", "reverted_after_settlement" if left else None)
    world.node.mine(depth + 1)
    await world.idle()
    [payment] = (await world.read(invoice_id)).record.payments
    assert (payment.txid, payment.status) == (txid, "confirmed")
    expected = PAID + (["invoice.payment_reverted"] if left else [])
    assert await world.event_types(invoice_id) == expected  # each event once


@pytest.mark.parametrize("depth", [1, 2])
async def test_reorg_before_settlement(world: World, depth: int) -> None:
    view = await world.invoice(await world.account())
    invoice_id = view.record.invoice.id
    await world.start()
    world.node.pay([("FAK", key_of(view), DUE)])
    world.node.mine(2)  # two confirmations of three
    await world.idle()
    assert await status(world, invoice_id) == ("processing", None)
    tip = world.node.tip.height
    world.node.invalidate(world.node.chain[tip + 1 - depth].ref.hash)
    await world.idle()
    assert await status(world, invoice_id) == ("processing", None)  # still received
    world.node.mine(3)
    await world.idle()
    assert await status(world, invoice_id) == ("settled", None)
    assert await world.event_types(invoice_id) == PAID


async def test_events_in_any_order_and_twice_count_each_payment_once(world: World) -> None:
    """Every order of: both halves seen in the mempool, their block, and that block again;
    then two more blocks. Each half is recorded and announced once; the invoice settles."""
    feed = Feed(world.follower.feed, world.follower.coins)
    account = await world.account()
    for n, order in enumerate(itertools.permutations(range(4))):
        view = await world.invoice(account)
        key = key_of(view)
        base = 10 * n
        block = BlockRef(base + 1, f"b{n}-1")
        halves = [Observed("FAK", f"tx{n}-{i}", 0, key, DUE // 2, None) for i in (0, 1)]
        mined = tuple(Observed(o.coin, o.txid, o.index, o.match_key, o.amount, block)
                      for o in halves)
        steps = [MempoolSeen((halves[0],)), MempoolSeen((halves[1],)),
                 BlockConnected(block, f"b{n}-0", T0, mined),
                 BlockConnected(block, f"b{n}-0", T0, mined)]
        for i in order:
            step = steps[i]
            if isinstance(step, MempoolSeen):
                await world.tracker.mempool_seen(feed, step)
            else:
                await world.tracker.block_connected(feed, step)
        for h in (2, 3):
            await world.tracker.block_connected(feed, BlockConnected(
                BlockRef(base + h, f"b{n}-{h}"), f"b{n}-{h - 1}", T0, ()))
        invoice_id = view.record.invoice.id
        payments = (await world.read(invoice_id)).record.payments
        assert sorted(p.txid for p in payments) == [f"tx{n}-0", f"tx{n}-1"], order
        assert await status(world, invoice_id) == ("settled", None), order
        types = await world.event_types(invoice_id)
        assert types.count("invoice.payment_received") == 2, (order, types)
        assert types.count("invoice.settled") == 1, (order, types)


async def _crash_scenario(world: World, crash_at: int | None = None) -> str:
    """Pay half, mine, pay the rest, mine to settlement: a run of many commits, the
    `crash_at`th of which crashes (the watcher restarts from the stored cursor)."""
    view = await world.invoice(await world.account())
    await world.start()
    world.commits = 0
    world.crash_at = {crash_at} if crash_at else set()
    world.node.pay([("FAK", key_of(view), DUE // 2)])
    await world.idle()
    world.node.mine(1)
    await world.idle()
    world.node.pay([("FAK", key_of(view), DUE - DUE // 2)])
    await world.idle()
    world.node.mine(3)
    await world.idle()
    return str(view.record.invoice.id)


async def test_a_crash_before_any_commit_loses_and_doubles_nothing(
    tmp_path: Path, template_dir: Path,
) -> None:
    async with fake_world(tmp_path, template_dir) as clean:
        invoice_id = await _crash_scenario(clean)
        expected = (await status(clean, invoice_id), await clean.event_types(invoice_id))
        steps = clean.commits
    assert expected[0] == ("settled", None) and steps >= 5
    with quiet():
        for k in range(1, steps + 1):
            async with fake_world(tmp_path, template_dir) as world:
                invoice_id = await _crash_scenario(world, k)
                payments = (await world.read(invoice_id)).record.payments
                assert len(payments) == 2, k
                assert (await status(world, invoice_id),
                        await world.event_types(invoice_id)) == expected, k
                assert world.commits > steps  # the crashed step was done again


async def test_a_locked_payment_counts_only_once_its_height_has_passed(world: World) -> None:
    view = await world.invoice(await world.account())
    invoice_id = view.record.invoice.id
    await world.start()
    unlock = world.node.tip.height + 8
    world.node.pay([("FAK", key_of(view), DUE)], lock=Lock(height=unlock))
    world.node.mine(3)
    await world.idle()
    [payment] = (await world.read(invoice_id)).record.payments
    assert payment.lock == Lock(height=unlock)
    assert await status(world, invoice_id) == ("processing", None)  # recorded, not settled
    world.node.mine(3)  # six confirmations, still locked
    await world.idle()
    assert await status(world, invoice_id) == ("processing", None)
    world.node.mine(1)  # the next block may spend it: the lock has passed
    await world.idle()
    assert world.node.tip.height + 1 >= unlock
    assert await status(world, invoice_id) == ("settled", None)


async def test_a_time_locked_payment_counts_only_once_its_time_has_passed(
    world: World,
) -> None:
    view = await world.invoice(await world.account())
    invoice_id = view.record.invoice.id
    await world.start()
    world.node.pay([("FAK", key_of(view), DUE)], lock=Lock(time=T0 + timedelta(hours=1)))
    world.node.mine(3)
    await world.idle()
    assert await status(world, invoice_id) == ("processing", None)
    world.clock.advance(hours=1)
    world.node.mine(1)
    await world.idle()
    assert await status(world, invoice_id) == ("settled", None)


async def test_a_reorg_reported_by_transaction_ids(world: World) -> None:
    feed = Feed(world.follower.feed, world.follower.coins)
    view = await world.invoice(await world.account())
    invoice_id = view.record.invoice.id
    obs = Observed("FAK", "txA", 0, key_of(view), DUE, BlockRef(1, "h1"))
    await world.tracker.block_connected(feed, BlockConnected(BlockRef(1, "h1"), "h0", T0,
                                                             (obs,)))
    for h in (2, 3):
        await world.tracker.block_connected(
            feed, BlockConnected(BlockRef(h, f"h{h}"), f"h{h - 1}", T0, ()))
    assert await status(world, invoice_id) == ("settled", None)
    await world.tracker.transactions_disconnected(feed, TransactionsDisconnected(("txA",)))
    [payment] = (await world.read(invoice_id)).record.payments
    assert (payment.status, payment.block_height) == ("pending", None)
    assert await status(world, invoice_id) == ("settled", "reverted_after_settlement")


async def test_two_coins_in_one_address_space(tmp_path: Path, template_dir: Path) -> None:
    async with fake_world(tmp_path, template_dir, coins=("FAK", "FTK")) as world:
        assert world.follower.coins == ("FAK", "FTK")  # one follower for the node
        account = await world.account()
        views = [await world.invoice(account, coin) for coin in ("FAK", "FTK") * 5]
        assert len({v.record.address for v in views}) == 10
        rows = await world.sql("SELECT coin, address_space, derivation_index FROM invoices")
        assert {r.address_space for r in rows} == {world.follower.address_space}
        assert sorted(r.derivation_index for r in rows) == list(range(10))
        fak, ftk = views[0], views[1]
        await world.start()
        # A payment in the wrong coin to an address is not the invoice's payment.
        world.node.pay([("FAK", key_of(ftk), DUE), ("FTK", key_of(ftk), DUE),
                        ("FTK", key_of(fak), 1)])
        world.node.mine(3)
        await world.idle()
        assert await status(world, ftk.record.invoice.id) == ("settled", None)
        [paid] = (await world.read(ftk.record.invoice.id)).record.payments
        assert (paid.coin, paid.index) == ("FTK", 1)
        assert (await world.read(fak.record.invoice.id)).record.payments == ()
        cursors = await world.sql("SELECT feed FROM chain_cursors")
        assert [c.feed for c in cursors] == [world.follower.feed]  # one cursor
