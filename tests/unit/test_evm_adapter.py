"""The EVM adapter's decisions that need no node: a syncing node is not ready (readiness
reports it, nothing settles from it), Transfer logs are parsed strictly, EIP-681 URIs, and
the steps of the follow loop and of a lookup."""

from typing import Any

import pytest

from chains.base import BlockRef, ChainError, Destination, Observed
from chains.evm.adapter import TRANSFER_TOPIC, EvmChain, Token, _success
from chains.uri import eip681_native, eip681_token
from tests.support.keys import random_xpub

CONTRACT = "0x" + "ab" * 20
TO = "0x" + "cd" * 20


class Scripted(EvmChain):
    """Answers from a table instead of a node."""

    def __init__(self, answers: dict[str, Any]) -> None:
        super().__init__("ETH", "http://127.0.0.1:1", chain_id=1, xpub=random_xpub(),
                         tokens=[Token("USDT", CONTRACT, 6)])
        self.answers = answers

    async def _call(self, method: str, params: list[Any]) -> Any:
        self.calls[method] += 1
        return self.answers[method]


async def test_a_syncing_node_is_not_ready_and_follows_nothing() -> None:
    chain = Scripted({"eth_chainId": "0x1",
                      "eth_syncing": {"currentBlock": "0x10", "highestBlock": "0x20"}})
    with pytest.raises(ChainError, match=r"syncing \(block 16 of 32\)"):
        await chain.tip()
    with pytest.raises(ChainError, match="syncing"):
        await anext(chain.follow(BlockRef(0, "0x00"), set()))
    assert chain.calls["eth_getBlockByNumber"] == 0


async def test_a_node_on_another_chain_is_refused() -> None:
    chain = Scripted({"eth_chainId": "0x5", "eth_syncing": False})
    with pytest.raises(ChainError, match="chain id 5, configured 1"):
        await chain.tip()


def log(**over: Any) -> dict[str, Any]:
    base = {"address": CONTRACT, "topics": [TRANSFER_TOPIC, "0x" + "00" * 32,
                                             "0x" + "00" * 12 + TO[2:]],
            "data": "0x" + format(2**256 - 1, "064x"), "logIndex": "0x0",
            "transactionHash": "0x01"}
    return base | over


def test_transfer_logs_are_parsed_strictly() -> None:
    chain = Scripted({})
    token, to, amount = chain._transfer(log()) or (None, b"", 0)
    assert token is not None and token.coin == "USDT"
    assert to == bytes.fromhex(TO[2:]) and amount == 2**256 - 1
    assert chain._transfer(log(address="0x" + "ee" * 20)) is None  # not a configured token
    assert chain._transfer(log(topics=log()["topics"] + ["0x" + "00" * 32])) is None  # 721
    assert chain._transfer(log(data="0x")) is None


def test_eip681_uris_from_base_units() -> None:
    assert eip681_native(TO, 1, 10**18) == f"ethereum:{TO}@1?value=1000000000000000000"
    assert eip681_token(CONTRACT, 1, TO, 2**256 - 1) == (
        f"ethereum:{CONTRACT}@1/transfer?address={TO}&uint256={2**256 - 1}")
    chain = Scripted({})
    d = Destination(0, TO, bytes.fromhex(TO[2:]))
    assert chain.payment_uri(d, "ETH", 5) == f"ethereum:{TO}@1?value=5"
    assert chain.payment_uri(d, "USDT", 5).startswith("ethereum:0xABaB")  # EIP-55 contract
    assert chain.asset("USDT") == chain.payment_uri(d, "USDT", 5)[9:51]
    assert chain.asset("ETH") == ""


# The follow loop's and the reconciliation's steps, one by one (the loop itself runs on a
# real anvil in tests/contract).

TO_KEY = bytes.fromhex(TO[2:])


def receipt(status: int, *log_indexes: int) -> dict[str, Any]:
    return {"status": hex(status), "logs": [{"logIndex": hex(i)} for i in log_indexes]}


def test_only_a_successful_transaction_pays() -> None:
    assert _success(receipt(1)) and not _success(receipt(0)) and not _success(None)


def test_a_transfer_is_indexed_by_its_position_in_the_receipt() -> None:
    chain = Scripted({})
    ref = BlockRef(7, "0x07")
    transfer = log(logIndex="0x2c", data="0x" + format(5, "064x"))
    paid = chain._token_payment(transfer, receipt(1, 0x2a, 0x2c), ref)
    assert paid == Observed("USDT", "0x01", 2, TO_KEY, 5, ref)  # 1 + its position
    assert chain._token_payment(transfer, receipt(0, 0x2a, 0x2c), ref) is None  # reverted
    assert chain._token_payment(transfer, None, ref) is None  # no receipt (yet)
    zero = log(logIndex="0x2c", data="0x" + format(0, "064x"))
    assert chain._token_payment(zero, receipt(1, 0x2c), ref) is None


def test_payments_of_reverted_transactions_are_dropped() -> None:
    chain = Scripted({})
    ref = BlockRef(7, "0x07")
    native = [Observed("ETH", h, 0, TO_KEY, 1, ref) for h in ("0xa", "0xb", "0xc")]
    receipts = {"0xa": receipt(1), "0xb": receipt(0), "0x01": receipt(1, 0)}
    assert chain._succeeded(native, [log()], receipts, ref) == (
        native[0], Observed("USDT", "0x01", 1, TO_KEY, 2**256 - 1, ref))


def test_pending_payments_are_native_ones_for_this_chain() -> None:
    chain = Scripted({})
    txs = [{"hash": "0x1", "to": TO, "value": "0x5"},
           {"hash": "0x2", "to": TO, "value": "0x5", "chainId": "0x5"},  # another chain
           {"hash": "0x3", "to": "0x" + "ee" * 20, "value": "0x5"},
           {"hash": "0x4", "to": TO, "value": "0x0"},
           {"hash": "0x5", "to": None, "value": "0x5"}]  # a contract creation
    assert chain._pool_payments(txs, {TO_KEY}) == [
        Observed("ETH", "0x1", 0, TO_KEY, 5, None)]


def trace(path: list[int], value: int = 3) -> dict[str, Any]:
    return {"type": "call", "traceAddress": path, "transactionHash": "0xt",
            "action": {"callType": "call", "to": TO, "value": hex(value)}}


def test_an_internal_payment_is_found_by_its_frame() -> None:
    chain = Scripted({})
    frames = [trace([]), trace([0]), trace([1]), trace([1, 0]), trace([2], value=0)]
    frames[2]["error"] = "Reverted"  # undoes frame 3 too
    assert chain._internal_output(frames, 1) == (TO_KEY, 3)
    assert chain._internal_output(frames, 0) is None  # the transaction's own value
    assert chain._internal_output(frames, 3) is None  # its caller failed
    assert chain._internal_output(frames, 4) is None  # nothing moved
    assert chain._internal_output(frames, 5) is None  # no such frame


async def test_a_lookup_s_output_by_index() -> None:
    chain = Scripted({})
    tx = {"hash": "0x01", "to": TO, "value": "0x9"}
    logs = {"status": "0x1", "logs": [log(data="0x" + format(4, "064x"))]}
    assert await chain._output("0x01", tx, logs, 0) == (TO_KEY, 9)
    assert await chain._output("0x01", tx, logs, 1) == (TO_KEY, 4)
    assert await chain._output("0x01", tx, logs, 2) is None  # no such log
    assert await chain._output("0x01", tx | {"value": "0x0"}, logs, 0) is None
    assert await chain._output("0x01", tx, None, 1) is None  # pending: no logs yet


async def test_a_block_s_placement_and_the_cursor_s() -> None:
    header = {"number": "0x5", "hash": "0x05"}
    chain = Scripted({"eth_getBlockByHash": header, "eth_getBlockByNumber": header,
                      "eth_blockNumber": "0x9"})
    assert await chain._placement(None) == (None, False, 0)
    assert await chain._placement("0x05") == (BlockRef(5, "0x05"), True, 5)
    assert await chain._main_chain_height(BlockRef(5, "0x05")) == 9
    assert await chain._main_chain_height(BlockRef(10, "0x05")) is None  # above the head
    chain.answers["eth_getBlockByNumber"] = {"number": "0x5", "hash": "0x55"}  # reorged
    assert await chain._placement("0x05") == (BlockRef(5, "0x05"), False, 0)
    assert await chain._main_chain_height(BlockRef(5, "0x05")) is None
    chain.answers["eth_getBlockByHash"] = None  # the node forgot it
    assert await chain._placement("0x05") == (None, False, 0)
