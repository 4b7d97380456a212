"""The chain contract, run against the UTXO adapter on a real Litecoin Core regtest node:
pay -> seen unconfirmed -> connected -> confirmations grow -> reorg disconnects ->
reconnects elsewhere -> replaced transaction."""

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from chains.base import (
    BlockConnected,
    BlockDisconnected,
    BlockRef,
    ChainEvent,
    MempoolGone,
    MempoolSeen,
)
from chains.jsonrpc import JsonRpcClient
from chains.networks import NETWORKS
from chains.utxo import UtxoChain
from gateway.devnodes import LitecoinRegtest
from tests.support.keys import random_xpub


class SetWatchlist:
    def __init__(self) -> None:
        self.keys: set[bytes] = set()
        self.refreshes = 0

    async def refresh(self) -> None:
        self.refreshes += 1

    def __contains__(self, key: object) -> bool:
        return key in self.keys


class Follower:
    def __init__(self, chain: UtxoChain, cursor: BlockRef, watched: SetWatchlist) -> None:
        self._gen: AsyncIterator[ChainEvent] = chain.follow(cursor, watched)
        self.log: list[ChainEvent] = []

    async def until(self, kind: type, timeout: float = 15.0) -> ChainEvent:
        async def scan() -> ChainEvent:
            while True:
                event = await anext(self._gen)
                self.log.append(event)
                if isinstance(event, kind):
                    return event
        return await asyncio.wait_for(scan(), timeout)

    async def until_block(self, height: int) -> BlockConnected:
        while True:
            event = await self.until(BlockConnected)
            assert isinstance(event, BlockConnected)
            if event.block.height >= height:
                return event


@pytest.fixture
async def chain(litecoin: LitecoinRegtest) -> AsyncIterator[UtxoChain]:
    adapter = UtxoChain("LTC", NETWORKS["litecoin-regtest"], random_xpub(),
                        JsonRpcClient(litecoin.rpc_url), poll_interval=0.1)
    yield adapter
    await adapter.aclose()


async def test_derived_addresses_are_valid_and_match_the_node_script(
    chain: UtxoChain, litecoin: LitecoinRegtest
) -> None:
    for i in (0, 1, 250):
        dest = chain.derive(i)
        assert dest.address.startswith("rltc1q")
        info = litecoin.rpc("validateaddress", dest.address)
        assert info["isvalid"] and bytes.fromhex(info["scriptPubKey"]) == dest.match_key
    assert chain.derive(3).payment_uri("0.5") == f"litecoin:{chain.derive(3).address}?amount=0.5"


async def test_contract_pay_confirm_reorg_and_remine(
    chain: UtxoChain, litecoin: LitecoinRegtest
) -> None:
    watched = SetWatchlist()
    dest = chain.derive(0)
    watched.keys.add(dest.match_key)
    follower = Follower(chain, await chain.tip(), watched)

    txid = litecoin.send(dest.address, "1.2345")
    seen = await follower.until(MempoolSeen)
    assert isinstance(seen, MempoolSeen)
    [obs] = seen.payments
    assert (obs.txid, obs.amount, obs.block, obs.match_key) == (txid, 123_450_000, None,
                                                               dest.match_key)
    entered = litecoin.rpc("getmempoolentry", txid)["time"]
    # The node's own sighting, rounded up to the end of its whole second.
    assert obs.first_seen == datetime.fromtimestamp(entered + 1, UTC)

    [block_hash] = litecoin.mine(1)
    connected = await follower.until(BlockConnected)
    assert isinstance(connected, BlockConnected)
    assert connected.block.hash == block_hash
    header = litecoin.rpc("getblockheader", block_hash)
    assert connected.time == datetime.fromtimestamp(header["time"], UTC)  # header, not MTP
    assert [p.txid for p in connected.payments] == [txid]
    assert connected.payments[0].block == connected.block
    paid_height = connected.block.height

    litecoin.mine(2)
    tip = await follower.until_block(paid_height + 2)
    assert tip.payments == ()  # later blocks carry no payment of ours

    # Reorg at depth 3: the three blocks leave, newest first; the payment goes back to
    # the mempool and is seen there again.
    litecoin.rpc("invalidateblock", block_hash)
    gone = [await follower.until(BlockDisconnected) for _ in range(3)]
    assert [g.block.height for g in gone] == [paid_height + 2, paid_height + 1, paid_height]
    assert isinstance(gone[-1], BlockDisconnected) and gone[-1].txids == (txid,)
    again = await follower.until(MempoolSeen)
    assert isinstance(again, MempoolSeen) and again.payments[0].txid == txid

    # Re-mined into a different block at the same height.
    [new_hash] = litecoin.mine(1)
    remined = await follower.until(BlockConnected)
    assert isinstance(remined, BlockConnected)
    assert remined.block.height == paid_height and remined.block.hash == new_hash != block_hash
    assert [p.txid for p in remined.payments] == [txid]
    assert not any(isinstance(e, MempoolGone) for e in follower.log)


async def test_contract_replaced_transaction_is_gone_and_replacement_seen(
    chain: UtxoChain, litecoin: LitecoinRegtest
) -> None:
    watched = SetWatchlist()
    dest = chain.derive(1)
    watched.keys.add(dest.match_key)
    follower = Follower(chain, await chain.tip(), watched)

    original = litecoin.send(dest.address, "0.5", replaceable=True)
    first = await follower.until(MempoolSeen)
    assert isinstance(first, MempoolSeen) and first.payments[0].txid == original
    replacement = litecoin.rpc("bumpfee", original, wallet=litecoin.wallet)["txid"]
    gone = await follower.until(MempoolGone)
    assert isinstance(gone, MempoolGone) and gone.txids == (original,)
    seen = [e for e in follower.log if isinstance(e, MempoolSeen)]
    assert seen[-1].payments[0].txid == replacement
    assert seen[-1].payments[0].amount == 50_000_000

    litecoin.mine(1)
    connected = await follower.until(BlockConnected)
    assert isinstance(connected, BlockConnected)
    assert [p.txid for p in connected.payments] == [replacement]


async def test_follow_resumes_from_a_cursor_and_reports_stale_cursor(
    chain: UtxoChain, litecoin: LitecoinRegtest
) -> None:
    watched = SetWatchlist()
    dest = chain.derive(2)
    watched.keys.add(dest.match_key)
    start = await chain.tip()
    txid = litecoin.send(dest.address, "0.25")
    litecoin.mine(3)
    # A follower started from the old cursor catches up block by block and finds the
    # payment in the first new block, though it never saw it in the mempool.
    follower = Follower(chain, start, watched)
    first = await follower.until(BlockConnected)
    assert isinstance(first, BlockConnected) and first.block.height == start.height + 1
    assert [p.txid for p in first.payments] == [txid]
    assert first.parent_hash == start.hash
    # A cursor whose block left the main chain while we were down is walked back first:
    # its block is disconnected, then the replacement block is connected.
    old_tip_hash = litecoin.rpc("getblockhash", start.height + 3)
    litecoin.rpc("invalidateblock", old_tip_hash)
    [new_hash] = litecoin.mine(1)
    second = Follower(chain, BlockRef(start.height + 3, old_tip_hash), watched)
    dropped = await second.until(BlockDisconnected)
    assert isinstance(dropped, BlockDisconnected)
    assert dropped.block == BlockRef(start.height + 3, old_tip_hash)
    nxt = await second.until(BlockConnected)
    assert isinstance(nxt, BlockConnected)
    assert nxt.block == BlockRef(start.height + 3, new_hash)
    assert isinstance(second.log[0], BlockDisconnected)
    assert watched.refreshes > 0


async def test_audit_questions_lookup_scan_and_period(
    chain: UtxoChain, litecoin: LitecoinRegtest,
) -> None:

    watched = SetWatchlist()
    dest = chain.derive(7)
    watched.keys.add(dest.match_key)
    before = datetime.now(UTC) - timedelta(seconds=2)
    txid = litecoin.send(dest.address, "0.125")

    pooled = {i: await chain.lookup(txid, i, None) for i in (0, 1)}  # payment and change
    index = next(i for i, found in pooled.items() if found.match_key == dest.match_key)
    assert pooled[index].known and pooled[index].block is None
    assert pooled[index].amount == 12_500_000

    [block_hash] = litecoin.mine(1)
    mined = await chain.lookup(txid, index, block_hash)
    height = mined.block.height if mined.block else -1
    assert mined.known and mined.in_main_chain and mined.confirmations == 1
    assert (mined.match_key, mined.amount) == (dest.match_key, 12_500_000)
    assert not (await chain.lookup(txid, 99, block_hash)).match_key  # no such output
    assert not (await chain.lookup("00" * 32, 0, block_hash)).known

    period = await chain.heights_between(before, datetime.now(UTC))
    assert height in period
    scanned = await chain.scan(height, watched)
    assert [(o.txid, o.index, o.amount) for o in scanned.payments] == [
        (txid, index, 12_500_000)]
    assert scanned.time == datetime.fromtimestamp(
        litecoin.rpc("getblockheader", block_hash)["time"], UTC)
    assert (await chain.scan(height - 1, watched)).payments == ()
    assert height not in await chain.heights_between(before - timedelta(days=2),
                                                     before - timedelta(days=1))

    litecoin.rpc("invalidateblock", block_hash)
    stale = await chain.lookup(txid, index, block_hash)
    assert stale.known and not stale.in_main_chain and stale.amount == 12_500_000
    litecoin.rpc("reconsiderblock", block_hash)
