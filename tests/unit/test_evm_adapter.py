"""The EVM adapter's decisions that need no node: a syncing node is not ready (readiness
reports it, nothing settles from it), Transfer logs are parsed strictly, EIP-681 URIs."""

from typing import Any

import pytest

from chains.base import BlockRef, ChainError, Destination
from chains.evm.adapter import TRANSFER_TOPIC, EvmChain, Token
from chains.uri import eip681_native, eip681_token
from tests.support.keys import random_xpub

CONTRACT = "0x" + "ab" * 20
TO = "0x" + "cd" * 20


class Scripted(EvmChain):
    """Answers from a table instead of a node."""

    def __init__(self, answers: dict[str, Any]) -> None:
        super().__init__("ETH", "http://127.0.0.1:1", 1, random_xpub(),
                         [Token("USDT", CONTRACT, 6)])
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
