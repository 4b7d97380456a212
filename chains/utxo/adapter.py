"""Bitcoin Core / Litecoin Core adapter: BIP84 addresses, whole-block scanning by hash.

Blocks and mempool transactions are read serialized (`getblock <hash> 0`,
`getrawtransaction <txid> false`) and walked for their outputs only (`rawblock`); a block
the walker does not read (an MWEB body inside it) is read as verbose JSON instead.
Outputs are matched on scriptPubKey bytes, never on the address string (Litecoin 0.21
reports `addresses[]`, Bitcoin Core >= 22 `address`). Optional ZMQ notifications from the
node (`hashblock`, `rawtx`) wake the loop early; polling stays the fallback."""

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import bech32

from chains.base import (
    MATCH_POINT,
    BlockConnected,
    BlockDisconnected,
    BlockRef,
    Destination,
    FollowItem,
    NetworkFacts,
    NodeDiagnosis,
    NodeProblem,
    Observed,
    OutputLookup,
    Watched,
    wrong_network,
)
from chains.hd import KeyOrigin, change_key, hash160, receive_key
from chains.jsonrpc import JsonRpcClient, JsonRpcError
from chains.mempool import MempoolTracker
from chains.networks import UtxoNetwork
from chains.refunds import BadRefundAddress, CannotPrepare, RefundInstructions, Spendable
from chains.uri import bip21
from chains.utxo.addresses import parse_address
from chains.utxo.notify import Wakeup
from chains.utxo.rawblock import Hit, RawBlock, Unsupported, scan_block, scan_transaction
from chains.utxo.refund import Ask, build_psbt, p2wpkh_script, plan_refund

log = logging.getLogger(__name__)
FEE_TARGET_BLOCKS = 6  # estimatesmartfee's confirmation target for a refund


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
        *,
        xpub: str,
        rpc: JsonRpcClient,
        poll_interval: float = 1.0,
        zmq_block: str | None = None,
        zmq_tx: str | None = None,
        rest: bool = False,
        key_origin: KeyOrigin | None = None,
        fallback_fee_rate: int | None = None,
    ) -> None:
        self.coin = coin
        self.network = network
        self._xpub = xpub
        self._origin = key_origin or KeyOrigin.of_xpub(xpub)
        self._fallback_fee_rate = fallback_fee_rate  # base units per virtual byte
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

    def network_facts(self, coin: str) -> NetworkFacts:
        return self.network.facts

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

    # -- refunds (Refundable) --------------------------------------------------------------

    def _refund_script(self, coin: str, address: str) -> tuple[str, bytes]:
        if coin != self.coin:
            raise BadRefundAddress(f"{coin} is not paid through this node")
        return parse_address(self.network, address)

    def check_address(self, coin: str, address: str) -> str:
        return self._refund_script(coin, address)[0]

    def refund_match_key(self, coin: str, address: str) -> bytes | None:
        return self._refund_script(coin, address)[1]

    async def prepare_refund(self, coin: str, address: str, amount: int,
                             spendable: Sequence[Spendable], change_index: int,
                             ) -> RefundInstructions:
        """A PSBT spending outputs paid to our receive addresses, the change (unless
        dust) to the change branch's address `change_index`; fee rate from the node."""
        normalised, script = self._refund_script(coin, address)
        if not spendable:
            raise CannotPrepare("no output paid to our addresses is known to spend")
        change_script = p2wpkh_script(change_key(self._xpub, change_index).key)
        ask = Ask(amount, script, change_script, await self.refund_fee_rate(),
                  self.network.dust_relay_fee)
        plan = plan_refund(ask, spendable)
        psbt = build_psbt(self._xpub, self._origin, plan, amount, script, change_index)
        return RefundInstructions(
            coin=coin, address=normalised, amount=amount,
            uri=bip21(self.network.uri_scheme, normalised, amount, self.DECIMALS),
            psbt=psbt, fee=plan.fee,
            spends=tuple((s.txid, s.output_index) for s in plan.spends))

    async def refund_fee_rate(self) -> int:
        """Base units per 1000 virtual bytes: the node's `estimatesmartfee`, else the
        configured `fallback_fee_rate` (regtest, a node just started), never below
        what the node's mempool accepts now."""
        estimate = await self._rpc.call("estimatesmartfee", FEE_TARGET_BLOCKS)
        if estimate.get("feerate") is not None:
            rate = self._amount(estimate["feerate"])
        elif self._fallback_fee_rate is not None:
            rate = self._fallback_fee_rate * 1000
        else:
            raise CannotPrepare(
                f"the {self.coin} node has no fee estimate yet "
                f"({'; '.join(estimate.get('errors', [])) or 'no data'}) and "
                f"coins.{self.coin}.fallback_fee_rate is not set")
        pool = await self._rpc.call("getmempoolinfo")
        floor = max(self._amount(pool.get("mempoolminfee", 0)),
                    self._amount(pool.get("minrelaytxfee", 0)))
        return max(rate, floor)

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
        book = MempoolTracker(unconfirmed)
        self._check_chain(await self._rpc.call("getblockchaininfo"))
        while True:
            # Passes start every poll interval (not an interval after the last one ended),
            # so a block waits half an interval for its pass on average.
            started = time.monotonic()
            book.start_pass(await self._rpc.call("getrawmempool"))
            while (height := await self._main_chain_height(cursor)) is None:
                raw = await self._raw_block(cursor.hash)
                yield MATCH_POINT
                stale = await self._disconnect(cursor, raw, watched)
                book.disconnected(stale.txids)
                yield stale
                cursor = BlockRef(cursor.height - 1, stale.parent_hash)
            while cursor.height < height:
                fetched = await self._next_block(cursor)
                if fetched is None:
                    break  # the chain changed under us: walk back on the next pass
                yield MATCH_POINT
                connected = await self._connect(cursor, *fetched, watched)
                # Every pending transaction pays a watched script (and the watched set
                # only grows), so if it was mined its txid is among the payments: no txid
                # of any other transaction is computed.
                book.connected(o.txid for o in connected.payments)
                yield connected
                cursor = connected.block
            fresh = book.fresh(book.pool)
            if fresh:
                yield MATCH_POINT
                seen = book.seen(await self._mempool_payments(fresh, watched))
                book.inspected_now(fresh)
                if seen is not None:
                    yield seen
            if (gone := book.end_pass()) is not None:
                yield gone
            if wakeup is None:
                await asyncio.sleep(max(0.0, started + self._poll - time.monotonic()))
            else:
                async for item in self._wait(wakeup, started + self._poll, watched, cursor):
                    yield item

    async def _main_chain_height(self, cursor: BlockRef) -> int | None:
        """The node's height if `cursor` is on its main chain; None: walk back."""
        height = int(await self._rpc.call("getblockcount"))
        if cursor.height <= height:
            if await self._rpc.call("getblockhash", cursor.height) == cursor.hash:
                return height
        return None

    async def _disconnect(self, cursor: BlockRef, raw: bytes, watched: Watched
                          ) -> BlockDisconnected:
        stale = await self._scan(cursor.hash, raw, watched)
        txids = tuple(sorted({h.txid for h in stale.hits}))
        return BlockDisconnected(cursor, stale.parent_hash, txids)

    async def _next_block(self, cursor: BlockRef) -> tuple[BlockRef, bytes] | None:
        """The main chain's block after `cursor`, serialized; None when it does not build
        on `cursor` (a reorg between our calls)."""
        block_hash = str(await self._rpc.call("getblockhash", cursor.height + 1))
        raw = await self._raw_block(block_hash)
        if raw[4:36][::-1].hex() != cursor.hash:
            return None
        return BlockRef(cursor.height + 1, block_hash), raw

    async def _connect(self, cursor: BlockRef, ref: BlockRef, raw: bytes, watched: Watched
                       ) -> BlockConnected:
        block = await self._scan(ref.hash, raw, watched)
        return BlockConnected(ref, cursor.hash, block.time,
                              tuple(self._observed(block.hits, ref)))

    async def _mempool_payments(self, txids: Iterable[str], watched: Watched
                                ) -> list[Observed]:
        seen: list[Observed] = []
        for txid in txids:
            raw_tx = await self._mempool_tx(txid)
            hits = scan_transaction(raw_tx, txid, watched) if raw_tx is not None else []
            if hits:
                since = await self._mempool_time(txid)
                seen.extend(replace(o, first_seen=since) for o in self._observed(hits, None))
        return seen

    async def _wait(self, wakeup: Wakeup, deadline: float, watched: Watched,
                    cursor: BlockRef) -> AsyncIterator[FollowItem]:
        """Until `deadline` (the next poll), a block, or a transaction paying a watched
        script, whichever comes first."""
        log.debug("%s: pass done at height %d; waiting for a notification",
                  self.feed, cursor.height)
        while (remaining := deadline - time.monotonic()) > 0:
            block_seen, txs = await wakeup.wait(remaining)
            if block_seen:
                return
            if txs:
                yield MATCH_POINT
                if any(self._pays_watched(raw, watched) for raw in txs):
                    return
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
