"""Bitcoin Core / Litecoin Core adapter: BIP84 addresses, whole-block scanning by hash.

Blocks and mempool transactions are read serialized (`getblock <hash> 0`,
`getrawtransaction <txid> false`) and walked for their outputs only (`rawblock`); a block
the walker does not read (an MWEB body inside it) is read as verbose JSON instead.
Outputs are matched on scriptPubKey bytes, never on the address string (Litecoin 0.21
reports `addresses[]`, Bitcoin Core >= 22 `address`). Optional ZMQ notifications from the
node (`hashblock`, `rawtx`) wake the loop early; polling stays the fallback."""

import asyncio
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import bech32
from Crypto.Hash import RIPEMD160

from chains.base import (
    MATCH_POINT,
    BlockConnected,
    BlockDisconnected,
    BlockRef,
    Destination,
    FollowItem,
    MempoolGone,
    MempoolSeen,
    NodeDiagnosis,
    NodeProblem,
    Observed,
    OutputLookup,
    Watched,
    wrong_network,
)
from chains.hd import receive_key
from chains.jsonrpc import JsonRpcClient, JsonRpcError
from chains.networks import UtxoNetwork
from chains.uri import bip21
from chains.utxo.notify import Wakeup
from chains.utxo.rawblock import Hit, RawBlock, Unsupported, scan_block, scan_transaction

log = logging.getLogger(__name__)


def hash160(data: bytes) -> bytes:
    return RIPEMD160.new(hashlib.sha256(data).digest()).digest()


def block_time(block: dict[str, Any]) -> datetime:
    """The header's own `time` (not the median time past): what its miner's clock said."""
    return datetime.fromtimestamp(int(block["time"]), UTC)


def p2wpkh_destination(xpub: str, index: int, network: UtxoNetwork) -> Destination:
    key = receive_key(xpub, index).key
    program = hash160(key)
    address = bech32.encode(network.hrp, 0, program)
    if address is None:
        raise ValueError("bech32 encoding failed")
    return Destination(index, address, b"\x00\x14" + program)


class UtxoChain:
    """A follower for one coin on one node; the coin code names its cursor and its
    address space (one xpub per coin)."""

    DECIMALS = 8

    def __init__(
        self,
        coin: str,
        network: UtxoNetwork,
        xpub: str,
        rpc: JsonRpcClient,
        poll_interval: float = 1.0,
        zmq_block: str | None = None,
        zmq_tx: str | None = None,
        rest: bool = False,
    ) -> None:
        self.coin = coin
        self.network = network
        self._xpub = xpub
        self._rpc = rpc
        self._poll = poll_interval
        self._zmq = tuple(u for u in (zmq_block, zmq_tx) if u)
        self._rest = rest

    @property
    def coins(self) -> tuple[str, ...]:
        return (self.coin,)

    @property
    def feed(self) -> str:
        return self.coin

    @property
    def address_space(self) -> str:
        return self.coin

    def decimals(self, coin: str) -> int:
        return self.DECIMALS

    def derive(self, index: int) -> Destination:
        return p2wpkh_destination(self._xpub, index, self.network)

    async def allocate(self, indexes: Sequence[int]) -> list[Destination]:
        return [self.derive(i) for i in indexes]  # pure derivation: no I/O

    def payment_uri(self, destination: Destination, coin: str, base_units: int) -> str:
        return bip21(self.network.uri_scheme, destination.address, base_units, self.DECIMALS)

    @property
    def expected_chain(self) -> str:
        """The configured network in the node's words: Bitcoin Core and Litecoin Core name
        their chains main, test, signet, regtest."""
        suffix = self.network.name.partition("-")[2]
        return {"": "main", "testnet": "test"}.get(suffix, suffix)

    def _check_chain(self, info: dict[str, Any]) -> None:
        reported = str(info.get("chain", "?"))
        if reported != self.expected_chain:
            raise NodeProblem(f"node {wrong_network(reported, self.expected_chain)}")

    async def tip(self) -> BlockRef:
        info = await self._rpc.call("getblockchaininfo")
        self._check_chain(info)
        return BlockRef(int(info["blocks"]), str(info["bestblockhash"]))

    async def diagnose(self) -> NodeDiagnosis:
        info = await self._rpc.call("getblockchaininfo")
        blocks, headers = int(info["blocks"]), int(info.get("headers", info["blocks"]))
        ibd = bool(info.get("initialblockdownload", False))
        first = self.derive(0)
        checked = await self._rpc.call("validateaddress", first.address)
        valid = bool(checked.get("isvalid")) and (
            checked.get("scriptPubKey", first.match_key.hex()) == first.match_key.hex())
        return NodeDiagnosis(
            height=blocks, synced=not ibd and headers <= blocks,
            sync_detail=(f"headers {headers}, blocks {blocks}, initial block download "
                         f"{'in progress' if ibd else 'done'}"),
            network_expected=self.expected_chain, network_reported=str(info.get("chain", "?")),
            first_address=first.address, address_valid=valid)

    async def aclose(self) -> None:
        await self._rpc.aclose()

    def _amount(self, value: Decimal) -> int:
        return int(Decimal(value).scaleb(self.DECIMALS))

    def _match_tx(
        self, tx: dict[str, Any], watched: Watched, block: BlockRef | None
    ) -> list[Observed]:
        found = []
        for out in tx.get("vout", ()):
            key = bytes.fromhex(out["scriptPubKey"]["hex"])
            if key in watched:
                found.append(
                    Observed(
                        self.coin, tx["txid"], int(out["n"]), key, self._amount(out["value"]), block
                    )
                )
        return found

    async def _raw_block(self, block_hash: str) -> bytes:
        if self._rest:  # binary: no hex to send or decode
            return await self._rpc.get_bytes(f"/rest/block/{block_hash}.bin")
        return bytes.fromhex(await self._rpc.call("getblock", block_hash, 0))

    async def _scan(self, block_hash: str, raw: bytes, watched: Watched) -> RawBlock:
        """The block's watched outputs; through verbose JSON if the walker cannot read it."""
        try:
            return scan_block(raw, watched)
        except Unsupported:
            pass
        block = await self._rpc.call("getblock", block_hash, 2)
        hits = [Hit(o.txid, o.index, o.match_key, o.amount)
                for tx in block["tx"] for o in self._match_tx(tx, watched, None)]
        return RawBlock(str(block["hash"]), str(block.get("previousblockhash", "")),
                        block_time(block), tuple(hits), len(block["tx"]))

    def _observed(self, hits: Iterable[Hit], block: BlockRef | None) -> list[Observed]:
        return [Observed(self.coin, h.txid, h.n, h.script, h.value, block) for h in hits]

    async def follow(
        self, cursor: BlockRef, watched: Watched, unconfirmed: Iterable[str] = ()
    ) -> AsyncIterator[FollowItem]:
        wakeup = Wakeup(self._zmq) if self._zmq else None
        try:
            async for item in self._follow(cursor, watched, unconfirmed, wakeup):
                yield item
        finally:
            if wakeup is not None:
                wakeup.close()

    async def _follow(
        self, cursor: BlockRef, watched: Watched, unconfirmed: Iterable[str],
        wakeup: Wakeup | None,
    ) -> AsyncIterator[FollowItem]:
        pending: set[str] = set(unconfirmed)  # watched txids believed to be in the mempool
        inspected: set[str] = set()  # mempool txids already matched once
        self._check_chain(await self._rpc.call("getblockchaininfo"))
        while True:
            # Passes start every poll interval (not an interval after the last one ended),
            # so a block waits half an interval for its pass on average.
            started = time.monotonic()
            # Snapshot the mempool before walking blocks: a transaction mined after this
            # point is either still in the snapshot or in a block we connect below, so it
            # can never be mistaken for one that vanished.
            mempool = set(await self._rpc.call("getrawmempool"))
            # Watched transactions mined in the blocks connected below. Every pending
            # transaction pays a watched script (and the watched set only grows), so if it
            # was mined it is among these: no txid of any other transaction is computed.
            mined: set[str] = set()
            reorged = False

            # Walk back while our cursor is not on the node's main chain.
            while True:
                height = int(await self._rpc.call("getblockcount"))
                if cursor.height <= height:
                    main = await self._rpc.call("getblockhash", cursor.height)
                    if main == cursor.hash:
                        break
                raw = await self._raw_block(cursor.hash)
                yield MATCH_POINT
                stale = await self._scan(cursor.hash, raw, watched)
                txids = tuple(sorted({h.txid for h in stale.hits}))
                pending.update(txids)
                reorged = True
                parent = BlockRef(cursor.height - 1, stale.parent_hash)
                yield BlockDisconnected(cursor, parent.hash, txids)
                cursor = parent

            # Connect forward to the tip; stop early if the chain changes under us.
            while cursor.height < height:
                block_hash = str(await self._rpc.call("getblockhash", cursor.height + 1))
                raw = await self._raw_block(block_hash)
                if raw[4:36][::-1].hex() != cursor.hash:
                    break
                ref = BlockRef(cursor.height + 1, block_hash)
                yield MATCH_POINT
                block = await self._scan(block_hash, raw, watched)
                mined.update(h.txid for h in block.hits)
                pending.difference_update(mined)
                yield BlockConnected(ref, cursor.hash, block.time,
                                     tuple(self._observed(block.hits, ref)))
                cursor = ref

            # New mempool entries paying a watched script.
            fresh = [t for t in mempool if t not in inspected and t not in mined]
            if fresh:
                yield MATCH_POINT
                seen: list[Observed] = []
                for txid in fresh:
                    raw_tx = await self._mempool_tx(txid)
                    inspected.add(txid)
                    hits = scan_transaction(raw_tx, txid, watched) if raw_tx is not None else []
                    if hits:
                        since = await self._mempool_time(txid)
                        seen.extend(replace(o, first_seen=since)
                                    for o in self._observed(hits, None))
                if seen:
                    pending.update(o.txid for o in seen)
                    yield MempoolSeen(tuple(seen))
            inspected &= mempool

            if not reorged:
                gone = tuple(sorted(pending - mempool - mined))
                if gone:
                    pending.difference_update(gone)
                    yield MempoolGone(gone)
            if wakeup is None:
                await asyncio.sleep(max(0.0, started + self._poll - time.monotonic()))
                continue
            # Until the next poll, a block, or a transaction paying a watched script.
            deadline = started + self._poll
            log.debug("%s: pass done at height %d; waiting for a notification",
                      self.feed, cursor.height)
            while (remaining := deadline - time.monotonic()) > 0:
                block_seen, txs = await wakeup.wait(remaining)
                if block_seen:
                    break
                if txs:
                    yield MATCH_POINT
                    if any(self._pays_watched(raw, watched) for raw in txs):
                        break
                    # Why a notification woke no pass: an operator's (and a test's) answer.
                    log.debug("%s: %d notified transactions pay no watched address",
                              self.feed, len(txs))

    @staticmethod
    def _pays_watched(raw: bytes, watched: Watched) -> bool:
        try:
            return bool(scan_transaction(raw, "", watched))
        except ValueError:
            return False  # not a transaction we can read: the next poll will tell

    async def lookup(self, txid: str, index: int, block_hash: str | None) -> OutputLookup:
        block: BlockRef | None = None
        in_main, confirmations = False, 0
        try:
            if block_hash is not None:
                header = await self._rpc.call("getblockheader", block_hash)
                block = BlockRef(int(header["height"]), block_hash)
                confirmations = max(int(header["confirmations"]), 0)
                in_main = int(header["confirmations"]) >= 0  # -1: on a stale branch
                tx = await self._rpc.call("getrawtransaction", txid, True, block_hash)
            else:
                tx = await self._rpc.call("getrawtransaction", txid, True)
        except JsonRpcError:
            return OutputLookup(False, block, in_main, confirmations)
        outputs = {int(o["n"]): o for o in tx.get("vout", ())}
        out = outputs.get(index)
        if out is None:
            return OutputLookup(True, block, in_main, confirmations)
        return OutputLookup(True, block, in_main, confirmations,
                            bytes.fromhex(out["scriptPubKey"]["hex"]),
                            self._amount(out["value"]))

    async def heights_between(self, start: datetime, end: datetime) -> range:
        # Median time past never decreases with height, so it can be bisected; a block's
        # own time may be up to two hours off it, hence the margins.
        tip = int(await self._rpc.call("getblockcount"))

        async def first_at_or_after(moment: datetime) -> int:
            low, high = 0, tip + 1
            while low < high:
                mid = (low + high) // 2
                header = await self._rpc.call(
                    "getblockheader", await self._rpc.call("getblockhash", mid))
                if int(header["mediantime"]) < moment.timestamp():
                    low = mid + 1
                else:
                    high = mid
            return low

        margin = timedelta(hours=2)
        return range(await first_at_or_after(start - margin),
                     await first_at_or_after(end + margin))

    async def scan(self, height: int, watched: Watched) -> BlockConnected:
        block_hash = str(await self._rpc.call("getblockhash", height))
        block = await self._scan(block_hash, await self._raw_block(block_hash), watched)
        ref = BlockRef(height, block_hash)
        return BlockConnected(ref, block.parent_hash, block.time,
                              tuple(self._observed(block.hits, ref)))

    async def _mempool_time(self, txid: str) -> datetime | None:
        """When the node's mempool took the transaction in (its own clock; the entry and
        its time survive a node restart in mempool.dat)."""
        try:
            entry = await self._rpc.call("getmempoolentry", txid)
        except JsonRpcError:
            return None  # mined or evicted meanwhile
        # The node counts whole seconds, truncated: the end of that second is the earliest
        # moment we may claim, or a payment made just after expiry would pass as on time.
        return datetime.fromtimestamp(int(entry["time"]) + 1, UTC)

    async def _mempool_tx(self, txid: str) -> bytes | None:
        try:
            return bytes.fromhex(await self._rpc.call("getrawtransaction", txid, False))
        except JsonRpcError:
            return None  # left the mempool between the listing and now
