"""ETH sent by an internal call that a caller then reverted never moved, so it must credit
nothing (issue 27 item 1). On a real anvil: SwallowRevert calls PayThenRevert, which sends
ETH to a watched address and reverts; SwallowRevert swallows the failure, so the
transaction succeeds and its trace shows the inner transfer frame without an error of its
own. Plus a synthetic trace with deeper nesting."""

from typing import Any

from eth_abi.abi import encode
from eth_utils.crypto import keccak

from chains.base import BlockRef
from chains.evm.adapter import INTERNAL_INDEX, EvmChain
from tests.contract.harness import SetWatchlist, Stream
from tests.support.evm import compile_tokens
from tests.support.keys import random_xpub
from tests.support.nodes import Anvil


def _deploy(anvil: Anvil, bytecode: str) -> str:
    txid = anvil.rpc("eth_sendTransaction", {"from": anvil.accounts[0], "data": "0x" + bytecode,
                                             "gas": hex(1_000_000)})
    anvil.mine(1)
    receipt = anvil.rpc("eth_getTransactionReceipt", txid)
    assert int(receipt["status"], 16) == 1, receipt
    return str(receipt["contractAddress"])


def _selector(signature: str) -> str:
    return "0x" + keccak(signature.encode())[:4].hex()


async def test_eth_sent_inside_a_reverted_sub_call_is_not_credited(anvil: Anvil) -> None:
    code = compile_tokens()
    payer, swallow, forwarder = (_deploy(anvil, code[name]) for name in
                                 ("PayThenRevert", "SwallowRevert", "Forwarder"))
    chain = EvmChain("ETH", anvil.rpc_url, chain_id=31337, xpub=random_xpub(),
                     poll_interval=0.05, trace_internal=True)
    victim, honest = await chain.allocate([3, 4])
    watched = SetWatchlist()
    watched.keys.update({victim.match_key, honest.match_key})
    start = await chain.tip()
    stream = Stream(chain, start, watched)

    trick = anvil.rpc("eth_sendTransaction", {
        "from": anvil.accounts[0], "to": swallow, "value": hex(5 * 10**18),
        "data": _selector("attempt(address,address)")
        + encode(["address", "address"], [payer, victim.address]).hex(),
        "gas": hex(300_000)})
    paid = anvil.rpc("eth_sendTransaction", {
        "from": anvil.accounts[0], "to": forwarder, "value": hex(777),
        "data": _selector("pay(address)") + encode(["address"], [honest.address]).hex(),
        "gas": hex(200_000)})
    [block_hash] = anvil.mine(1)

    # The trick did what it is meant to: the transaction succeeded, the node's trace shows
    # a transfer to the watched address with no error in its own frame, nothing arrived.
    assert int(anvil.rpc("eth_getTransactionReceipt", trick)["status"], 16) == 1
    frames = anvil.rpc("trace_transaction", trick)
    inner = [(k, f) for k, f in enumerate(frames)
             if str(f["action"].get("to", "")).lower() == victim.address.lower()]
    assert len(inner) == 1, frames
    k, frame = inner[0]
    assert not frame.get("error") and int(frame["action"]["value"], 16) == 5 * 10**18
    assert any(f.get("error") for f in frames), frames  # the caller reverted
    assert int(anvil.rpc("eth_getBalance", victim.address, "latest"), 16) == 0

    connected = await stream.until_block(start.height + 1)
    assert [(p.txid, p.match_key, p.amount) for p in connected.payments] == [
        (paid, honest.match_key, 777)]
    found = await chain.lookup(trick, INTERNAL_INDEX + k, block_hash)
    assert found.known and found.match_key is None and found.amount is None
    # The honest internal payment is still found by reconciliation.
    [honest_payment] = connected.payments
    again = await chain.lookup(paid, honest_payment.index, block_hash)
    assert (again.match_key, again.amount) == (honest.match_key, 777)
    await stream.aclose()
    await chain.aclose()


WATCHED = "0x" + "cd" * 20
TX = "0x" + "11" * 32


def _frame(path: list[int], value: int, to: str = WATCHED, error: str | None = None
           ) -> dict[str, Any]:
    frame: dict[str, Any] = {
        "type": "call", "traceAddress": path, "transactionHash": TX, "blockHash": None,
        "action": {"callType": "call", "to": to, "value": hex(value)}}
    if error:
        frame["error"] = error
    return frame


class Scripted(EvmChain):
    def __init__(self, answers: dict[str, Any]) -> None:
        super().__init__("ETH", "http://127.0.0.1:1", chain_id=1, xpub=random_xpub(),
                         trace_internal=True)
        self.answers = answers

    async def _call(self, method: str, params: list[Any]) -> Any:
        return self.answers[method]


async def test_every_frame_below_a_failed_one_is_skipped_at_any_depth() -> None:
    other = "0x" + "ee" * 20
    traces = [
        _frame([], 0, to=other),                       # the transaction itself: succeeded
        _frame([0], 1, to=other, error="Reverted"),    # a sub-call that reverted...
        _frame([0, 0], 2),                             # ...its ETH to us went back
        _frame([0, 0, 0], 3, to=other),
        _frame([0, 0, 0, 0], 4),                       # ...and so did a deeper one
        _frame([1], 5),                                # a sibling that succeeded: credited
        _frame([1, 0], 6, to=other),
        _frame([1, 0, 0], 7),                          # below a successful chain: credited
        _frame([2], 8, error="out of gas"),            # failed itself: nothing
        _frame([10], 9),                               # [1] is not a prefix of [10]
    ]
    block = {"number": "0x5", "hash": "0xaa", "parentHash": "0x99", "timestamp": "0x1",
             "transactions": []}
    chain = Scripted({"trace_block": traces, "trace_transaction": traces,
                      "eth_getBlockByNumber": block, "eth_getBlockByHash": block,
                      "eth_getBlockReceipts": [{"transactionHash": TX, "status": "0x1"}],
                      "eth_getTransactionByHash": {"hash": TX, "blockHash": "0xaa"},
                      "eth_getTransactionReceipt": {"transactionHash": TX, "status": "0x1",
                                                    "logs": []},
                      "eth_blockNumber": "0x5"})
    connected = await chain.scan(5, {bytes.fromhex(WATCHED[2:])})
    assert [(p.index - INTERNAL_INDEX, p.amount) for p in connected.payments] == [
        (5, 5), (7, 7), (9, 9)]
    for position in range(len(traces)):
        found = await chain.lookup(TX, INTERNAL_INDEX + position, "0xaa")
        expected = position in (5, 6, 7, 9)  # lookup answers for any address
        assert (found.amount is not None) == expected, position
    assert BlockRef(5, "0xaa") == connected.block
