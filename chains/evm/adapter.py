"""An EVM node through web3.py's async HTTP provider: native ETH from full blocks (the
receipt's status must be success), ERC-20 tokens from one `eth_getLogs` per block for all
configured contracts and the Transfer topic, the `to` topic matched locally.

Payment identity is (coin, txid, index): index 0 is a transaction's own value (native
coin); index 1 + n is the n-th log of that transaction's receipt (a token Transfer);
INTERNAL_INDEX + n is the n-th trace of the transaction (ETH sent by an internal call,
with `trace_internal`). All are fixed by the transaction itself, so a payment re-mined in
another block after a reorg keeps its identity and is counted once."""

import asyncio
import sys
from collections import Counter, OrderedDict
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from web3 import AsyncHTTPProvider
from web3.types import RPCEndpoint

from chains.base import (
    MATCH_POINT,
    BlockConnected,
    BlockDisconnected,
    BlockRef,
    ChainError,
    Destination,
    FollowItem,
    NetworkFacts,
    NodeDiagnosis,
    NodeProblem,
    Observed,
    OutputLookup,
    Watched,
)
from chains.evm.networks import network_facts
from chains.hd import receive_key
from chains.mempool import MempoolTracker
from chains.refunds import BadRefundAddress, CannotPrepare, RefundInstructions, Spendable
from chains.uri import eip681_native, eip681_token

# web3 imports py_ecc, which raises the interpreter's recursion limit to 100,000 for its
# own pairing arithmetic (never used here). With that limit, C code that recurses per
# level (json.loads on a deeply nested request body) runs out of stack and the process
# dies with SIGSEGV instead of raising RecursionError: one unauthenticated request would
# have stopped every gateway configured with an EVM coin. Back to CPython's default.
DEFAULT_RECURSION_LIMIT = 1000
sys.setrecursionlimit(min(sys.getrecursionlimit(), DEFAULT_RECURSION_LIMIT))

TRANSFER_TOPIC = "0x" + keccak(b"Transfer(address,address,uint256)").hex()
NATIVE_INDEX = 0
INTERNAL_INDEX = 1_000_000  # far above any log position a block's gas allows
_BLOCK_CACHE = 4096  # connected blocks remembered, to walk back past ones the node forgot


@dataclass(frozen=True)
class Token:
    coin: str
    contract: str
    decimals: int
    symbol: str | None = None  # what symbol() must answer; None: not checked
    setting: str = ""  # its configuration table, for the fix ("networks.BASE.tokens.USDC")

    @property
    def key(self) -> str:
        return self.contract.lower()


DECIMALS_CALL = "0x" + keccak(b"decimals()")[:4].hex()
SYMBOL_CALL = "0x" + keccak(b"symbol()")[:4].hex()


@dataclass(frozen=True)
class TokenReport:
    """What a configured token's contract says about itself on the node."""

    token: Token
    chain_id: int
    has_code: bool
    decimals: int | None  # None: no answer to decimals()
    symbol: str | None

    @property
    def problem(self) -> str | None:
        t = self.token
        where = f"{t.coin}: contract {to_checksum_address(t.contract)}"
        if not self.has_code:
            return (f"{where} has no code on chain id {self.chain_id}: wrong address or "
                    "network, payments would never be seen")
        if self.decimals is None:
            return f"{where} does not answer decimals(): is it an ERC-20 token?"
        if self.decimals != t.decimals:
            return (f"{where} says decimals {self.decimals}, the configuration says "
                    f"{t.decimals}: every invoice would be priced 10^"
                    f"{abs(self.decimals - t.decimals)} off; set "
                    f"{t.setting or 'coins.' + t.coin}.decimals = {self.decimals}")
        if t.symbol is not None and self.symbol != t.symbol:
            return (f"{where} says symbol {self.symbol!r}, the configuration says "
                    f"{t.symbol!r}: another token at that address, or the wrong network")
        return None

    def describe(self) -> str:
        return self.problem or (
            f"{self.token.coin}: contract {to_checksum_address(self.token.contract)} has "
            f"code, symbol() {self.symbol!r}, decimals() {self.decimals} as configured")


def _abi_string(raw: str | None) -> str | None:
    """symbol() as a string: ABI `string`, or `bytes32` (older tokens such as MKR)."""
    data = bytes.fromhex(str(raw or "0x")[2:])
    if len(data) >= 64:
        length = int.from_bytes(data[32:64], "big")
        if int.from_bytes(data[:32], "big") == 32 and 64 + length <= len(data):
            return data[64:64 + length].decode("utf-8", "replace")
    if len(data) == 32:
        return data.rstrip(b"\0").decode("utf-8", "replace")
    return None


def eth_destination(xpub: str, index: int) -> Destination:
    """m/44'/60'/0' (the xpub) / 0 / index: keccak of the uncompressed key, last 20 bytes."""
    raw = keccak(receive_key(xpub, index).uncompressed()[1:])[-20:]
    return Destination(index, to_checksum_address(raw), raw)


_HEX = frozenset("0123456789abcdefABCDEF")


def checked_address(address: str) -> str:
    """A customer's address, EIP-55 checksummed. All lower or all upper case carries no
    checksum and is accepted; mixed case must be the right checksum (a typo changes it).
    Raises BadRefundAddress."""
    text = address.strip()
    if not text:
        raise BadRefundAddress("no address given")
    body = text[2:] if text[:2] in ("0x", "0X") else ""
    if len(body) != 40 or not set(body) <= _HEX:
        raise BadRefundAddress("this is not an Ethereum address (0x and 40 hex digits)")
    checksummed = to_checksum_address("0x" + body.lower())
    if body != body.lower() and body != body.upper() and "0x" + body != checksummed:
        raise BadRefundAddress("this address's capital letters (its EIP-55 checksum) are "
                               "wrong: check it for typos")
    if int(body, 16) == 0:
        raise BadRefundAddress("the zero address burns what it is sent")
    return checksummed


def _int(v: Any) -> int:
    return int(v, 16) if isinstance(v, str) else int(v)


def _success(receipt: dict[str, Any] | None) -> bool:
    """A mined transaction that did not revert (a reverted one moved nothing)."""
    return receipt is not None and _int(receipt["status"]) == 1


def _addr(v: str | None) -> bytes | None:
    return bytes.fromhex(v[2:]) if v else None


def _undone(frames: Sequence[dict[str, Any]]) -> set[int]:
    """Positions of one transaction's trace frames whose effects were rolled back: the
    frame failed, or any frame above it (by `traceAddress` prefix) did. A call that sends
    ETH succeeds in its own frame even when its caller reverts afterwards, so looking at
    the frame's own error alone would credit ETH that never moved."""
    failed = {tuple(f.get("traceAddress") or ()) for f in frames if f.get("error")}
    if not failed:
        return set()
    undone = set()
    for position, frame in enumerate(frames):
        path = tuple(frame.get("traceAddress") or ())
        if any(path[:depth] in failed for depth in range(len(path) + 1)):
            undone.add(position)
    return undone


class _Refused(ChainError):
    """The node answered the call with an error (a reverted eth_call, say), as opposed to
    not answering at all."""


class _Everything:
    def __contains__(self, key: object) -> bool:
        return True


class EvmChain:
    """One node; the native coin's code names the cursor and the address space that ETH
    and every token on that node share."""

    def __init__(self, coin: str, url: str, *, chain_id: int, xpub: str,
                 tokens: Sequence[Token] = (), poll_interval: float = 1.0,
                 watch_pool: bool = True, trace_internal: bool = False,
                 address_space: str | None = None, network: NetworkFacts | None = None
                 ) -> None:
        self.coin = coin
        self.chain_id = chain_id
        self._space = address_space or coin
        self._network = network or network_facts(chain_id)
        # "safe"/"finalized": blocks are connected only once that tag has reached them
        # (see `follow`); blocks above it, by height, their transactions counted as pending.
        self._tag = None if self._network.finality == "depth" else self._network.finality
        self._above: dict[int, dict[str, Any]] = {}
        self.tokens = {t.key: t for t in tokens}
        self._decimals = {coin: 18, **{t.coin: t.decimals for t in tokens}}
        self._xpub = xpub
        self._url = url
        # No retries inside web3: the follower loop retries, and a node that is down must
        # be reported at once (readiness, tests).
        self._provider = AsyncHTTPProvider(url, exception_retry_configuration=None,
                                           request_kwargs={"timeout": 30})
        self._poll = poll_interval
        self._watch_pool = watch_pool
        self._trace = trace_internal
        self._chain_checked = False
        self._tokens_checked = not tokens
        self.calls: Counter[str] = Counter()  # RPC calls by method (tests, metrics)
        # hash -> (parent hash, matched txids) of blocks this follower connected.
        self._seen: OrderedDict[str, tuple[str, tuple[str, ...]]] = OrderedDict()

    # -- the Follower protocol -----------------------------------------------------------

    @property
    def coins(self) -> tuple[str, ...]:
        return (self.coin, *sorted(t.coin for t in self.tokens.values()))

    @property
    def feed(self) -> str:
        return self.coin

    @property
    def address_space(self) -> str:
        return self._space

    def network_facts(self, coin: str) -> NetworkFacts:
        return self._network

    def decimals(self, coin: str) -> int:
        return self._decimals[coin]

    def asset(self, coin: str) -> str:
        token = self.token(coin)
        return "" if token is None else to_checksum_address(token.contract)

    def token(self, coin: str) -> Token | None:
        return next((t for t in self.tokens.values() if t.coin == coin), None)

    def derive(self, index: int) -> Destination:
        return eth_destination(self._xpub, index)

    async def allocate(self, indexes: Sequence[int]) -> list[Destination]:
        return [self.derive(i) for i in indexes]  # pure derivation: no I/O

    def payment_uri(self, destination: Destination, coin: str, base_units: int) -> str:
        token = self.token(coin)
        if token is None:
            return eip681_native(destination.address, self.chain_id, base_units)
        return eip681_token(to_checksum_address(token.contract), self.chain_id,
                            destination.address, base_units)

    # -- refunds (Refundable) --------------------------------------------------------------

    def check_address(self, coin: str, address: str) -> str:
        if coin not in self._decimals:
            raise BadRefundAddress(f"{coin} is not paid through this node")
        checksummed = checked_address(address)
        if checksummed.lower() in self.tokens:
            raise BadRefundAddress("this is a token's contract: what is sent to it is lost")
        return checksummed

    def refund_match_key(self, coin: str, address: str) -> bytes | None:
        # The follower matches ETH (a transaction's `to`, a trace's) and a token's
        # Transfer (its `to` topic) on the same 20 bytes.
        return bytes.fromhex(self.check_address(coin, address)[2:])

    async def prepare_refund(self, coin: str, address: str, amount: int,
                             spendable: Sequence[Spendable], change_index: int,
                             ) -> RefundInstructions:
        """An EIP-681 payment request: the operator's wallet chooses what to spend and
        where change goes, so `spendable` and `change_index` are not needed."""
        _ = (spendable, change_index)
        to = self.check_address(coin, address)
        if amount <= 0:
            raise CannotPrepare("a refund must be more than zero")
        uri = self.payment_uri(Destination(-1, to, bytes.fromhex(to[2:])), coin, amount)
        return RefundInstructions(coin=coin, address=to, amount=amount, uri=uri,
                                  chain_id=self.chain_id)

    async def tip(self) -> BlockRef:
        await self._ready()
        # With a finality tag, the tag's block: the followed chain ends there.
        block = await self._call("eth_getBlockByNumber", [self._tag or "latest", False])
        return BlockRef(_int(block["number"]), str(block["hash"]))

    async def aclose(self) -> None:
        await self._provider.disconnect()

    # -- RPC -----------------------------------------------------------------------------

    async def _call(self, method: str, params: list[Any]) -> Any:
        self.calls[method] += 1
        try:
            response = await self._provider.make_request(RPCEndpoint(method), params)
        except Exception as exc:  # aiohttp, timeouts, bad JSON: the node is not usable
            raise ChainError(f"{method}: {type(exc).__name__}: {exc}") from exc
        if "error" in response:
            raise _Refused(f"{method}: {response['error']}")
        return response.get("result")

    async def _ready(self) -> None:
        """The node serves the configured chain and is not syncing: a node that is behind
        must not settle anything (readiness reports this error)."""
        if not self._chain_checked:
            found = _int(await self._call("eth_chainId", []))
            if found != self.chain_id:
                raise NodeProblem(f"node serves chain id {found}, configured "
                                  f"{self.chain_id}: payments would never be seen")
            self._chain_checked = True
        syncing = await self._call("eth_syncing", [])
        if syncing:
            raise NodeProblem(f"node is syncing (block {_int(syncing['currentBlock'])} "
                              f"of {_int(syncing['highestBlock'])})")
        if not self._tokens_checked:
            # Once the node is in sync (a syncing node may not have the contract yet):
            # nothing is followed while a token's contract contradicts its configuration.
            await self.check_configuration()

    async def token_reports(self) -> list[TokenReport]:
        """Each configured token's contract: has code, its decimals() and symbol()."""
        reports = []
        for token in sorted(self.tokens.values(), key=lambda t: t.coin):
            code = await self._call("eth_getCode", [token.contract, "latest"])
            has_code = str(code or "0x") not in ("0x", "0x0")
            decimals = symbol = None
            if has_code:
                try:
                    raw = await self._call("eth_call", [{"to": token.contract,
                                                         "data": DECIMALS_CALL}, "latest"])
                    data = str(raw or "0x")[2:]
                    decimals = int(data[:64], 16) if len(data) >= 64 else None
                except _Refused:  # reverted: no such function (not a network failure)
                    decimals = None
                try:
                    symbol = _abi_string(await self._call(
                        "eth_call", [{"to": token.contract, "data": SYMBOL_CALL}, "latest"]))
                except _Refused:
                    symbol = None
            reports.append(TokenReport(token, self.chain_id, has_code, decimals, symbol))
        return reports

    async def check_configuration(self) -> None:
        """The node serves the configured chain id and every token's contract agrees with
        its configuration (StartupCheckable)."""
        found = _int(await self._call("eth_chainId", []))
        if found != self.chain_id:
            raise NodeProblem(f"node serves chain id {found}, configured "
                              f"{self.chain_id}: payments would never be seen")
        for report in await self.token_reports():
            if report.problem is not None:
                raise NodeProblem(report.problem)
        self._tokens_checked = True

    async def diagnose(self) -> NodeDiagnosis:
        """For `gateway doctor`: chain id, sync, the first address, each token. Another
        chain id raises NodeProblem in the words /readyz uses."""
        found = _int(await self._call("eth_chainId", []))
        if found != self.chain_id:
            raise NodeProblem(f"node serves chain id {found}, configured "
                              f"{self.chain_id}: payments would never be seen")
        height = _int(await self._call("eth_blockNumber", []))
        syncing = await self._call("eth_syncing", [])
        detail = (f"block {_int(syncing['currentBlock'])} of {_int(syncing['highestBlock'])}"
                  if syncing else f"not syncing, head {height}")
        first = self.derive(0).address
        checks: tuple[tuple[bool, str], ...] = (
            (True, f"the xpub's first address is {first} (an EVM node cannot check it: "
                   "compare it with the wallet's first receiving address)"),)
        checks += tuple((r.problem is None, r.describe()) for r in await self.token_reports())
        return NodeDiagnosis(
            height=height, synced=not syncing, sync_detail=detail,
            network_expected=f"chain id {self.chain_id}", network_reported=f"chain id {found}",
            first_address=first, address_valid=None, checks=checks)

    async def _block_by_number(self, height: int, full: bool) -> dict[str, Any] | None:
        block: dict[str, Any] | None = await self._call("eth_getBlockByNumber",
                                                        [hex(height), full])
        return block

    async def _block_by_hash(self, block_hash: str, full: bool) -> dict[str, Any] | None:
        block: dict[str, Any] | None = await self._call("eth_getBlockByHash",
                                                        [block_hash, full])
        return block

    async def _receipts(self, block_hash: str, txids: Iterable[str]) -> dict[str, Any]:
        """Receipts of a block's matched transactions: one eth_getBlockReceipts, or one
        call per transaction on a node without it. Only blocks with a match get here."""
        try:
            found = await self._call("eth_getBlockReceipts", [block_hash])
        except ChainError:
            found = None
        if found is not None:
            return {str(r["transactionHash"]): r for r in found}
        result = {}
        for txid in txids:
            receipt = await self._call("eth_getTransactionReceipt", [txid])
            if receipt is not None:
                result[txid] = receipt
        return result

    # -- matching ------------------------------------------------------------------------

    def _native(self, tx: dict[str, Any], watched: Watched, block: BlockRef | None
                ) -> Observed | None:
        to = _addr(tx.get("to"))
        value = _int(tx.get("value", 0))
        if to is None or value <= 0 or to not in watched:
            return None
        if tx.get("chainId") is not None and _int(tx["chainId"]) != self.chain_id:
            return None  # signed for another chain: a node that took it anyway credits nothing
        return Observed(self.coin, str(tx["hash"]), NATIVE_INDEX, to, value, block)

    def _transfer(self, log: dict[str, Any]) -> tuple[Token, bytes, int] | None:
        """(token, to, amount) of a configured token's Transfer log, else None."""
        token = self.tokens.get(str(log.get("address", "")).lower())
        topics = log.get("topics", ())
        if token is None or len(topics) != 3 or str(topics[0]).lower() != TRANSFER_TOPIC:
            return None  # not ours, or ERC-721 (its tokenId is a fourth topic)
        data = str(log.get("data", "0x"))[2:]
        if len(data) != 64:
            return None
        return token, bytes.fromhex(str(topics[2])[-40:]), int(data, 16)

    async def _match_block(self, block: dict[str, Any], watched: Watched
                           ) -> tuple[Observed, ...]:
        ref = BlockRef(_int(block["number"]), str(block["hash"]))
        natives = [o for tx in block["transactions"]
                   if (o := self._native(tx, watched, ref)) is not None]
        transfers = await self._watched_transfers(ref, watched) if self.tokens else []
        internal = await self._internal(ref, watched) if self._trace else []
        if not natives and not transfers and not internal:
            return ()
        txids = ({o.txid for o in natives} | {str(lg["transactionHash"]) for lg in transfers}
                 | {o.txid for o in internal})
        receipts = await self._receipts(ref.hash, txids)
        return self._succeeded(natives + internal, transfers, receipts, ref)

    async def _watched_transfers(self, ref: BlockRef, watched: Watched
                                 ) -> list[dict[str, Any]]:
        """The block's Transfer logs of configured tokens to a watched address."""
        # One query for every configured contract; the `to` topic is matched here, so the
        # node never learns which addresses are ours.
        logs = await self._call("eth_getLogs", [{
            "blockHash": ref.hash, "address": sorted(self.tokens),
            "topics": [TRANSFER_TOPIC]}])
        return [log for log in logs
                if (found := self._transfer(log)) is not None and found[1] in watched
                and not log.get("removed")]

    def _succeeded(self, candidates: Iterable[Observed], transfers: Iterable[dict[str, Any]],
                   receipts: dict[str, Any], ref: BlockRef) -> tuple[Observed, ...]:
        """The payments whose transaction succeeded: a reverted one moved nothing."""
        payments = [o for o in candidates if _success(receipts.get(o.txid))]
        for log in transfers:
            o = self._token_payment(log, receipts.get(str(log["transactionHash"])), ref)
            if o is not None:
                payments.append(o)
        return tuple(payments)

    def _token_payment(self, log: dict[str, Any], receipt: dict[str, Any] | None,
                       ref: BlockRef) -> Observed | None:
        """A watched Transfer log as a payment, indexed by its position in the receipt
        (fixed by the transaction, wherever it is mined)."""
        if receipt is None or not _success(receipt):
            return None
        position = next(i for i, lg in enumerate(receipt["logs"])
                        if _int(lg["logIndex"]) == _int(log["logIndex"]))
        match = self._transfer(log)
        assert match is not None
        token, to, amount = match
        if amount <= 0:
            return None
        return Observed(token.coin, str(log["transactionHash"]), 1 + position, to, amount,
                        ref)

    def _traced(self, trace: dict[str, Any], position: int, watched: Watched,
                block: BlockRef | None, undone: bool = False) -> Observed | None:
        """ETH moved to a watched address by a successful internal call (top-level calls
        are the transaction's own value, found without tracing). `undone`: the frame or
        one of its callers failed, so whatever it sent went back (see `_undone`)."""
        action = trace.get("action", {})
        if (undone or trace.get("type") != "call" or not trace.get("traceAddress")
                or trace.get("error") or action.get("callType") not in ("call", None)):
            return None
        to, value = _addr(action.get("to")), _int(action.get("value", 0))
        if to is None or value <= 0 or to not in watched:
            return None
        return Observed(self.coin, str(trace["transactionHash"]), INTERNAL_INDEX + position,
                        to, value, block)

    async def _internal(self, ref: BlockRef, watched: Watched) -> list[Observed]:
        traces = await self._call("trace_block", [hex(ref.height)])
        by_tx: dict[str, list[dict[str, Any]]] = {}
        for trace in traces or ():
            if trace.get("blockHash") not in (None, ref.hash):
                raise ChainError("trace_block answered for another block (reorg under us)")
            by_tx.setdefault(str(trace.get("transactionHash")), []).append(trace)
        found: list[Observed] = []
        for frames in by_tx.values():
            undone = _undone(frames)
            for position, trace in enumerate(frames):  # the position within its transaction
                o = self._traced(trace, position, watched, ref, position in undone)
                if o is not None:
                    found.append(o)
        return found

    # -- following -----------------------------------------------------------------------

    async def _pool(self) -> dict[str, dict[str, Any]]:
        """Pending transactions by hash (`txpool_content`: geth, Nethermind, Erigon,
        Reth, anvil)."""
        if not self._watch_pool:
            return {}
        content = await self._call("txpool_content", [])
        pool: dict[str, dict[str, Any]] = {}
        for by_nonce in (content or {}).get("pending", {}).values():
            for tx in by_nonce.values():
                pool[str(tx["hash"])] = tx
        return pool

    def _remember(self, ref: BlockRef, parent: str, txids: Iterable[str]) -> None:
        self._seen[ref.hash] = (parent, tuple(sorted(set(txids))))
        while len(self._seen) > _BLOCK_CACHE:
            self._seen.popitem(last=False)

    async def _stale(self, cursor: BlockRef, watched: Watched) -> tuple[str, tuple[str, ...]]:
        """Parent hash and watched txids of a block that left the main chain."""
        block = await self._block_by_hash(cursor.hash, True)
        if block is not None:
            txids = {o.txid for tx in block["transactions"]
                     if (o := self._native(tx, watched, None)) is not None}
            return str(block["parentHash"]), tuple(sorted(txids | set(
                self._seen.get(cursor.hash, ("", ()))[1])))
        if cursor.hash in self._seen:
            return self._seen[cursor.hash]
        # The node dropped it (anvil does; geth keeps side blocks) and we never saw it:
        # assume the fork is one block deep here; the walk goes on if its parent is stale.
        parent = await self._block_by_number(cursor.height - 1, False)
        if parent is None:
            raise ChainError(f"cannot walk back from unknown block {cursor.hash}")
        return str(parent["hash"]), ()

    async def _final_height(self, head: int) -> int:
        """The height of the node's `safe`/`finalized` block (the head without a tag)."""
        if self._tag is None:
            return head
        block = await self._call("eth_getBlockByNumber", [self._tag, False])
        if block is None:
            raise NodeProblem(f"node has no {self._tag!r} block: set finality = \"depth\" "
                              "for this network")
        return min(_int(block["number"]), head)

    async def _unfinal(self, final: int, head: int) -> dict[str, dict[str, Any]]:
        """Transactions of the blocks above the finality tag, by hash. With a tag they are
        not connected yet, so they count as still pending: a native payment among them is
        seen (unconfirmed), and none is mistaken for one that left the pool unmined. Each
        block is read once; from the head down, until the parent hashes agree."""
        txs: dict[str, dict[str, Any]] = {}
        expected: str | None = None
        for height in range(head, final, -1):
            cached = self._above.get(height)
            if cached is None or cached["hash"] != (expected or (
                    (await self._block_by_number(height, False)) or {}).get("hash")):
                cached = await self._block_by_number(height, True)
                if cached is None:
                    break
                self._above[height] = cached
            expected = str(cached["parentHash"])
            txs.update({str(tx["hash"]): tx for tx in cached["transactions"]})
        for height in [h for h in self._above if h <= final or h > head]:
            del self._above[height]
        return txs

    async def _snapshot(self) -> tuple[dict[str, dict[str, Any]], int | None]:
        """The pool (with a finality tag: and the blocks above it), and the height up to
        which blocks are connected (None: the node's head, read later)."""
        pool = await self._pool()
        if self._tag is None:
            return pool, None
        head = _int(await self._call("eth_blockNumber", []))
        final = await self._final_height(head)
        return {**await self._unfinal(final, head), **pool}, final

    async def follow(
        self, cursor: BlockRef, watched: Watched, unconfirmed: Iterable[str] = ()
    ) -> AsyncIterator[FollowItem]:
        book = MempoolTracker(unconfirmed)
        while True:
            await self._ready()
            # The snapshot before the blocks (chains.mempool).
            pool, final = await self._snapshot()
            book.start_pass(pool)
            while (head := await self._main_chain_height(cursor, final)) is None:
                yield MATCH_POINT
                parent_hash, txids = await self._stale(cursor, watched)
                book.disconnected(txids)
                yield BlockDisconnected(cursor, parent_hash, txids)
                cursor = BlockRef(cursor.height - 1, parent_hash)
            while cursor.height < head:
                block = await self._block_by_number(cursor.height + 1, True)
                if block is None or block["parentHash"] != cursor.hash:
                    break  # the chain changed under us: walk back on the next round
                yield MATCH_POINT
                connected = await self._connect(cursor, block, watched)
                book.connected(str(tx["hash"]) for tx in block["transactions"])
                yield connected
                cursor = connected.block
            fresh = book.fresh(pool)
            if fresh:
                yield MATCH_POINT
                seen = book.seen(self._pool_payments((pool[t] for t in fresh), watched))
                book.inspected_now(fresh)
                if seen is not None:
                    yield seen
            if (gone := book.end_pass()) is not None:
                yield gone
            await asyncio.sleep(self._poll)

    async def _main_chain_height(self, cursor: BlockRef, final: int | None = None
                                 ) -> int | None:
        """The node's head (or `final`: the finality tag's height) if `cursor` is on its
        main chain; None: walk back."""
        head = _int(await self._call("eth_blockNumber", []))
        if cursor.height <= head:
            main = await self._block_by_number(cursor.height, False)
            if main is not None and main["hash"] == cursor.hash:
                return head if final is None else final
        return None

    async def _connect(self, cursor: BlockRef, block: dict[str, Any], watched: Watched
                       ) -> BlockConnected:
        ref = BlockRef(_int(block["number"]), str(block["hash"]))
        payments = await self._match_block(block, watched)
        self._remember(ref, cursor.hash, (p.txid for p in payments))
        time = datetime.fromtimestamp(_int(block["timestamp"]), UTC)
        return BlockConnected(ref, cursor.hash, time, payments)

    def _pool_payments(self, txs: Iterable[dict[str, Any]], watched: Watched
                       ) -> list[Observed]:
        # Native payments only: a token transfer is known from its log, which a pending
        # transaction does not have yet.
        return [o for tx in txs if (o := self._native(tx, watched, None))]

    # -- reconciliation (Auditable) ------------------------------------------------------

    async def lookup(self, txid: str, index: int, block_hash: str | None) -> OutputLookup:
        block, in_main, confirmations = await self._placement(block_hash)
        tx = await self._call("eth_getTransactionByHash", [txid])
        if tx is None:
            return OutputLookup(False, block, in_main, confirmations)
        if block_hash is not None and tx.get("blockHash") != block_hash:
            in_main, confirmations = False, 0  # the transaction is elsewhere now
        receipt = None
        if tx.get("blockHash"):
            receipt = await self._call("eth_getTransactionReceipt", [txid])
            if receipt is not None and not _success(receipt):
                return OutputLookup(True, block, in_main, confirmations)  # reverted
        output = await self._output(txid, tx, receipt, index)
        if output is None:
            return OutputLookup(True, block, in_main, confirmations)
        return OutputLookup(True, block, in_main, confirmations, *output)

    async def _placement(self, block_hash: str | None) -> tuple[BlockRef | None, bool, int]:
        """The block asked about (None: unknown to the node), whether it is on the main
        chain, and its confirmations there."""
        if block_hash is None:
            return None, False, 0
        header = await self._block_by_hash(block_hash, False)
        if header is None:
            return None, False, 0
        block = BlockRef(_int(header["number"]), block_hash)
        main = await self._block_by_number(block.height, False)
        if main is None or main["hash"] != block_hash:
            return block, False, 0
        head = _int(await self._call("eth_blockNumber", []))
        return block, True, head - block.height + 1

    async def _output(self, txid: str, tx: dict[str, Any], receipt: dict[str, Any] | None,
                      index: int) -> tuple[bytes, int] | None:
        """(match key, amount) of the payment `index` names in the transaction (see the
        module's docstring); None: the transaction has no such payment."""
        if index >= INTERNAL_INDEX:
            traces = await self._call("trace_transaction", [txid]) if receipt else []
            return self._internal_output(list(traces or ()), index - INTERNAL_INDEX)
        if index == NATIVE_INDEX:
            to, value = _addr(tx.get("to")), _int(tx.get("value", 0))
            return None if to is None or value <= 0 else (to, value)
        logs = receipt["logs"] if receipt is not None else []
        found = self._transfer(logs[index - 1]) if 0 < index <= len(logs) else None
        return None if found is None else (found[1], found[2])

    def _internal_output(self, frames: Sequence[dict[str, Any]], k: int
                         ) -> tuple[bytes, int] | None:
        if k >= len(frames):
            return None
        o = self._traced(frames[k], k, _Everything(), None, k in _undone(frames))
        return None if o is None else (o.match_key, o.amount)

    async def heights_between(self, start: datetime, end: datetime) -> range:
        # Block timestamps strictly increase with height: bisect them.
        head = _int(await self._call("eth_blockNumber", []))

        async def first_at_or_after(moment: datetime) -> int:
            low, high = 0, head + 1
            while low < high:
                mid = (low + high) // 2
                block = await self._block_by_number(mid, False)
                if block is None or _int(block["timestamp"]) < moment.timestamp():
                    low = mid + 1
                else:
                    high = mid
            return low

        # One block past the end too: its timestamp is only whole seconds.
        last = min(await first_at_or_after(end), head)
        return range(await first_at_or_after(start), last + 1)

    async def scan(self, height: int, watched: Watched) -> BlockConnected:
        block = await self._block_by_number(height, True)
        if block is None:
            raise ChainError(f"no block at height {height}")
        ref = BlockRef(height, str(block["hash"]))
        payments = await self._match_block(block, watched)
        return BlockConnected(ref, str(block["parentHash"]),
                              datetime.fromtimestamp(_int(block["timestamp"]), UTC), payments)
