"""Finality per network (issue 33 item 2) on a real anvil, whose `safe` block is 32 below
its head and `finalized` 64: with a tag, a block is connected (so its payments count
towards settlement, and no reorg above the tag ever reaches the ledger) only once the tag
has reached it; meanwhile a payment mined above the tag is seen unconfirmed and is never
taken for one that left the pool; a node without the tag is a one-line NodeProblem."""

from chains.base import BlockConnected, MempoolGone, MempoolSeen
from chains.evm.adapter import EvmChain
from chains.evm.networks import network_facts
from tests.contract.harness import SetWatchlist, Stream
from tests.support.keys import random_xpub
from tests.support.nodes import Anvil

SAFE_LAG = 32  # anvil: safe = head - 32, finalized = head - 64


def chain(anvil: Anvil, finality: str) -> EvmChain:
    return EvmChain("ETH", anvil.rpc_url, chain_id=anvil.chain_id, xpub=random_xpub(),
                    poll_interval=0.05,
                    network=network_facts(anvil.chain_id, finality=finality))


async def test_a_block_is_connected_once_the_safe_tag_reaches_it(anvil: Anvil) -> None:
    anvil.mine(SAFE_LAG + 2)
    follower = chain(anvil, "safe")
    start = await follower.tip()
    assert start.height == anvil.height() - SAFE_LAG  # the followed chain ends at the tag
    [d] = await follower.allocate([3])
    watched = SetWatchlist()
    watched.keys.add(d.match_key)
    stream = Stream(follower, start, watched)
    txid = anvil.send(d.address, 5000)
    [mined] = anvil.mine(1)
    # Mined, but above the tag: seen as unconfirmed, not connected.
    seen = await stream.until(MempoolSeen)
    assert isinstance(seen, MempoolSeen)
    assert [(p.txid, p.amount, p.block) for p in seen.payments] == [(txid, 5000, None)]
    height = int(anvil.block(mined)["number"], 16)
    anvil.mine(SAFE_LAG - 1)  # the tag is one short of the payment's block
    last = await stream.until_block(height - 1)
    assert last.block.height == height - 1
    anvil.mine(1)
    connected = await stream.until_block(height)
    assert connected.block.hash == mined
    assert [(p.txid, p.amount) for p in connected.payments] == [(txid, 5000)]
    # Nothing ever said the payment left the pool.
    assert not any(isinstance(e, MempoolGone) for e in stream.log)
    await stream.aclose()
    await follower.aclose()


async def test_a_reorg_above_the_tag_never_reaches_the_follower(anvil: Anvil) -> None:
    anvil.mine(SAFE_LAG + 2)
    follower = chain(anvil, "safe")
    start = await follower.tip()
    [d] = await follower.allocate([4])
    watched = SetWatchlist()
    watched.keys.add(d.match_key)
    stream = Stream(follower, start, watched)
    txid = anvil.send(d.address, 700)
    [mined] = anvil.mine(1)
    await stream.until(MempoolSeen)
    anvil.invalidate(mined)  # back to the pool, re-mined in another block
    [again] = anvil.mine(1)
    anvil.mine(SAFE_LAG)
    connected = await stream.until_block(int(anvil.block(again)["number"], 16))
    assert [p.txid for p in connected.payments] == [txid]
    assert all(not isinstance(e, BlockConnected) or e.block.hash != mined for e in stream.log)
    assert not any(isinstance(e, MempoolGone) for e in stream.log)
    await stream.aclose()
    await follower.aclose()


async def test_depth_follows_the_head(anvil: Anvil) -> None:
    follower = chain(anvil, "depth")
    assert (await follower.tip()).height == anvil.height()
    await follower.aclose()
