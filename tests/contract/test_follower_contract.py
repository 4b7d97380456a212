"""The chain contract, one suite for every registered family (through its driver): pay ->
seen unconfirmed -> connected -> confirmations grow -> reorg disconnects -> reconnects
elsewhere -> replaced transaction -> restart from a stored cursor -> node down and back
-> many payments in one block; plus the reconciliation questions (Auditable)."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from chains.base import (
    Auditable,
    BlockConnected,
    BlockDisconnected,
    BlockRef,
    ChainError,
    MempoolGone,
    MempoolSeen,
)
from gateway import families
from tests.contract.drivers import KINDS, Driver
from tests.contract.harness import SetWatchlist, Stream
from tests.support import fake_family


async def dest(driver: Driver, index: int):  # type: ignore[no-untyped-def]
    [found] = await driver.follower.allocate([index])
    return found


def test_every_registered_family_has_a_driver() -> None:
    families.register(fake_family.FAMILY)
    try:
        assert set(families.kinds()) <= set(KINDS)
    finally:
        families.unregister("fake")


async def test_destinations_and_payment_uri(driver: Driver) -> None:
    batch = await driver.follower.allocate([0, 1, 250])
    assert [d.index for d in batch] == [0, 1, 250]
    assert len({d.match_key for d in batch}) == 3
    for d in batch:
        driver.check_destination(d)
    assert batch == await driver.follower.allocate([0, 1, 250])  # deterministic
    d = await dest(driver, 3)
    assert driver.follower.payment_uri(d, driver.coin, 50_000_000) == \
        driver.expected_uri(d, 50_000_000)
    assert driver.coin in driver.follower.coins
    assert driver.follower.address_space and driver.follower.feed


async def test_pay_confirm_reorg_and_remine(driver: Driver) -> None:
    watched = SetWatchlist()
    d = await dest(driver, 10)
    watched.keys.add(d.match_key)
    stream = Stream(driver.follower, await driver.follower.tip(), watched)

    txid = driver.pay(d, 123_450_000)
    seen = await stream.until(MempoolSeen)
    assert isinstance(seen, MempoolSeen)
    [obs] = seen.payments
    assert (obs.coin, obs.txid, obs.amount, obs.block, obs.match_key) == (
        driver.coin, txid, 123_450_000, None, d.match_key)
    assert obs.first_seen == driver.first_seen(txid)

    [block_hash] = driver.mine(1)
    connected = await stream.until(BlockConnected)
    assert isinstance(connected, BlockConnected)
    assert connected.block.hash == block_hash
    assert connected.time == driver.block_time(block_hash)  # header time
    assert [p.txid for p in connected.payments] == [txid]
    assert connected.payments[0].block == connected.block
    paid_height = connected.block.height

    driver.mine(2)
    tip = await stream.until_block(paid_height + 2)
    assert tip.payments == ()  # later blocks carry no payment of ours

    # Reorg at depth 3: the blocks leave newest first; the payment is back in the mempool.
    driver.invalidate(block_hash)
    gone = [await stream.until(BlockDisconnected) for _ in range(3)]
    assert [g.block.height for g in gone] == [paid_height + 2, paid_height + 1, paid_height]
    assert isinstance(gone[-1], BlockDisconnected) and gone[-1].txids == (txid,)
    again = await stream.until(MempoolSeen)
    assert isinstance(again, MempoolSeen) and again.payments[0].txid == txid

    # Re-mined into a different block at the same height.
    [new_hash] = driver.mine(1)
    remined = await stream.until(BlockConnected)
    assert isinstance(remined, BlockConnected)
    assert remined.block.height == paid_height and remined.block.hash == new_hash != block_hash
    assert [p.txid for p in remined.payments] == [txid]
    assert not any(isinstance(e, MempoolGone) for e in stream.log)
    await stream.aclose()


async def test_replaced_transaction_is_gone_and_replacement_seen(driver: Driver) -> None:
    watched = SetWatchlist()
    d = await dest(driver, 11)
    watched.keys.add(d.match_key)
    stream = Stream(driver.follower, await driver.follower.tip(), watched)

    original = driver.pay(d, 50_000_000, replaceable=True)
    first = await stream.until(MempoolSeen)
    assert isinstance(first, MempoolSeen) and first.payments[0].txid == original
    replacement = driver.replace(original)
    gone = await stream.until(MempoolGone)
    assert isinstance(gone, MempoolGone) and gone.txids == (original,)
    seen = [e for e in stream.log if isinstance(e, MempoolSeen)]
    assert seen[-1].payments[0].txid == replacement
    assert seen[-1].payments[0].amount == 50_000_000

    driver.mine(1)
    connected = await stream.until(BlockConnected)
    assert isinstance(connected, BlockConnected)
    assert [p.txid for p in connected.payments] == [replacement]
    await stream.aclose()


async def test_restart_from_a_stored_cursor_and_a_stale_one(driver: Driver) -> None:
    watched = SetWatchlist()
    d = await dest(driver, 12)
    watched.keys.add(d.match_key)
    start = await driver.follower.tip()
    txid = driver.pay(d, 25_000_000)
    driver.mine(3)
    # Started from the old cursor, it catches up block by block and finds the payment in
    # the first new block, though it never saw it in the mempool.
    stream = Stream(driver.follower, start, watched)
    first = await stream.until(BlockConnected)
    assert isinstance(first, BlockConnected) and first.block.height == start.height + 1
    assert [p.txid for p in first.payments] == [txid]
    assert first.parent_hash == start.hash
    assert first.payments[0].first_seen is None  # seen in a block: the block time counts
    await stream.aclose()
    # A cursor whose block left the main chain while we were down is walked back first.
    old_tip_hash = driver.block_hash(start.height + 3)
    driver.invalidate(old_tip_hash)
    [new_hash] = driver.mine(1)
    second = Stream(driver.follower, BlockRef(start.height + 3, old_tip_hash), watched)
    dropped = await second.until(BlockDisconnected)
    assert isinstance(dropped, BlockDisconnected)
    assert dropped.block == BlockRef(start.height + 3, old_tip_hash)
    nxt = await second.until(BlockConnected)
    assert isinstance(nxt, BlockConnected)
    assert nxt.block == BlockRef(start.height + 3, new_hash)
    assert isinstance(second.log[0], BlockDisconnected)
    assert watched.refreshes > 0
    await second.aclose()


async def test_watched_set_is_refreshed_right_before_each_match(driver: Driver) -> None:
    """The follower loop, not the adapter, refreshes: an address handed out after the
    follower started (on any instance) is matched in the next block."""
    watched = SetWatchlist()
    stream = Stream(driver.follower, await driver.follower.tip(), watched)
    d = await dest(driver, 13)
    watched.pending.add(d.match_key)  # committed elsewhere; visible after a refresh
    txid = driver.pay(d, 1_000_000)
    driver.mine(1)
    connected = await stream.until(BlockConnected)
    assert isinstance(connected, BlockConnected)
    assert [p.txid for p in connected.payments] == [txid]
    await stream.aclose()


async def test_node_down_and_back(driver: Driver) -> None:
    watched = SetWatchlist()
    d = await dest(driver, 14)
    watched.keys.add(d.match_key)
    cursor = await driver.follower.tip()
    await driver.stop_node()
    try:
        with pytest.raises(ChainError):
            await driver.follower.tip()
        stream = Stream(driver.follower, cursor, watched)
        with pytest.raises(ChainError):
            await asyncio.wait_for(stream.next_event(), 15)
    finally:
        await driver.start_node()
    # Back up: following from the stored cursor again finds what was paid meanwhile.
    txid = driver.pay(d, 2_000_000)
    driver.mine(1)
    stream = Stream(driver.follower, cursor, watched)
    connected = await stream.until_block(cursor.height + 1)
    assert [p.txid for p in connected.payments] == [txid]
    await stream.aclose()


async def test_many_payments_in_one_block(driver: Driver) -> None:
    watched = SetWatchlist()
    batch = await driver.follower.allocate(range(100, 125))
    watched.keys.update(d.match_key for d in batch)
    stream = Stream(driver.follower, await driver.follower.tip(), watched)
    txids = driver.pay_many(batch, 1_000_000)
    [block_hash] = driver.mine(1)
    connected = await stream.until(BlockConnected, timeout=30)
    assert isinstance(connected, BlockConnected) and connected.block.hash == block_hash
    assert sorted(p.txid for p in connected.payments) == sorted(txids)
    assert {p.match_key for p in connected.payments} == {d.match_key for d in batch}
    assert all(p.amount == 1_000_000 and p.coin == driver.coin for p in connected.payments)
    await stream.aclose()


async def test_audit_questions_lookup_scan_and_period(driver: Driver) -> None:
    follower = driver.follower
    assert isinstance(follower, Auditable), "every family answers reconciliation"
    watched = SetWatchlist()
    d = await dest(driver, 17)
    watched.keys.add(d.match_key)
    before = datetime.now(UTC) - timedelta(seconds=2)
    txid = driver.pay(d, 12_500_000)

    # Payment or change (UTXO), or the destination's own index (Monero: the wallet numbers
    # a payment by its subaddress, not by output position).
    pooled = {i: await follower.lookup(txid, i, None) for i in (0, 1, d.index)}
    index = next(i for i, found in pooled.items() if found.match_key == d.match_key)
    assert pooled[index].known and pooled[index].block is None
    assert pooled[index].amount == 12_500_000

    [block_hash] = driver.mine(1)
    mined = await follower.lookup(txid, index, block_hash)
    height = mined.block.height if mined.block else -1
    assert mined.known and mined.in_main_chain and mined.confirmations == 1
    assert (mined.match_key, mined.amount) == (d.match_key, 12_500_000)
    assert not (await follower.lookup(txid, 99, block_hash)).match_key  # no such output
    assert not (await follower.lookup("00" * 32, 0, block_hash)).known

    period = await follower.heights_between(before, datetime.now(UTC))
    assert height in period
    scanned = await follower.scan(height, watched)
    assert [(o.txid, o.index, o.amount) for o in scanned.payments] == [
        (txid, index, 12_500_000)]
    assert scanned.time == driver.block_time(block_hash)
    assert (await follower.scan(height - 1, watched)).payments == ()
    assert height not in await follower.heights_between(before - timedelta(days=2),
                                                        before - timedelta(days=1))
    driver.invalidate(block_hash)
    stale = await follower.lookup(txid, index, block_hash)
    assert stale.known and not stale.in_main_chain and stale.amount == 12_500_000
    driver.mine(1)  # the payment goes into a new block; the chain moves on
