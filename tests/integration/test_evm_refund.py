"""Refunds on a real anvil: the EIP-681 request the EVM follower prepares is paid as it
says (parsed here, by a wallet's reading of it: the native value, or a token's
`transfer(address, uint256)` call), and the follower, watching the match key it names
for the customer's address, reports the payment (native and token alike)."""

from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import pytest
from eth_abi.abi import encode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from chains.base import BlockConnected, Observed
from chains.evm.adapter import EvmChain, Token
from chains.refunds import BadRefundAddress, CannotPrepare, Refundable
from tests.contract.harness import SetWatchlist, Stream
from tests.support.evm import DeployedToken, compile_tokens, deploy
from tests.support.keys import random_xpub
from tests.support.nodes import Anvil

TRANSFER = keccak(b"transfer(address,uint256)")[:4].hex()


@pytest.fixture(scope="module")
def token(anvil: Anvil) -> DeployedToken:
    return deploy(anvil, compile_tokens()["BoolToken"], "RFD", 6, supply=10**30)


@pytest.fixture
async def chain(anvil: Anvil, token: DeployedToken) -> AsyncIterator[EvmChain]:
    found = EvmChain("ETH", anvil.rpc_url, chain_id=anvil.chain_id, xpub=random_xpub(),
                     tokens=[Token("RFD", token.address, token.decimals)],
                     poll_interval=0.05)
    yield found
    await found.aclose()


def pay_as_the_uri_says(node: Anvil, uri: str) -> str:
    """What a wallet does with an EIP-681 request (the two forms the follower makes)."""
    parts = urlsplit(uri)
    assert parts.scheme == "ethereum"
    target, _, rest = parts.path.partition("@")
    chain_id, _, function = rest.partition("/")
    assert int(chain_id) == node.chain_id
    query = {k: v for k, [v] in parse_qs(parts.query, strict_parsing=True).items()}
    sender = node.accounts[1]
    if function == "":
        assert set(query) == {"value"}
        return str(node.rpc("eth_sendTransaction", {
            "from": sender, "to": target, "value": hex(int(query["value"]))}))
    assert function == "transfer" and set(query) == {"address", "uint256"}
    data = "0x" + TRANSFER + encode(["address", "uint256"],
                                    [query["address"], int(query["uint256"])]).hex()
    return str(node.rpc("eth_sendTransaction", {
        "from": node.accounts[0], "to": target, "data": data, "gas": hex(100_000)}))


async def test_native_and_token_refunds_are_paid_as_requested_and_seen(
        anvil: Anvil, chain: EvmChain, token: DeployedToken) -> None:
    assert isinstance(chain, Refundable)
    customer = to_checksum_address(anvil.accounts[5])
    assert chain.check_address("ETH", customer.lower()) == customer
    key = chain.refund_match_key("ETH", customer)
    assert key == bytes.fromhex(customer[2:]) == chain.refund_match_key("RFD", customer)

    native = await chain.prepare_refund("ETH", customer.lower(), 12_345 * 10**12, [], 0)
    assert native.uri == f"ethereum:{customer}@{anvil.chain_id}?value=12345000000000000"
    assert (native.address, native.chain_id, native.psbt) == (customer, anvil.chain_id, None)
    tokens = await chain.prepare_refund("RFD", customer, 2_500_000, [], 0)
    assert tokens.uri == (f"ethereum:{token.address}@{anvil.chain_id}/transfer?"
                          f"address={customer}&uint256=2500000")

    watched = SetWatchlist()
    watched.keys.add(key)
    stream = Stream(chain, await chain.tip(), watched)
    try:
        sent = {pay_as_the_uri_says(anvil, native.uri): ("ETH", 12_345 * 10**12),
                pay_as_the_uri_says(anvil, tokens.uri): ("RFD", 2_500_000)}
        anvil.mine(1)
        payments: tuple[Observed, ...] = ()
        while not payments:
            connected = await stream.until(BlockConnected)
            assert isinstance(connected, BlockConnected)
            payments = connected.payments
        assert {p.txid: (p.coin, p.amount) for p in payments} == sent
        assert {p.match_key for p in payments} == {key}
    finally:
        await stream.aclose()


async def test_addresses_refused(chain: EvmChain, token: DeployedToken) -> None:
    good = "0x52908400098527886E0F7030069857D2E4169EE7"  # EIP-55's own examples
    assert chain.check_address("ETH", good) == good
    assert chain.check_address("ETH", good.lower()) == good
    assert chain.check_address("ETH", "0x" + good[2:].upper()) == good
    assert chain.check_address("RFD", "  " + good + "\n") == good
    wrong_case = "0x52908400098527886E0F7030069857D2E4169Ee7"  # one capital off
    for bad, reason in [(wrong_case, "checksum"), ("", "no address"),
                        ("52908400098527886E0F7030069857D2E4169EE7", "0x and 40"),
                        ("0x" + "0" * 40, "zero address"), (good + "00", "0x and 40"),
                        (token.address, "token's contract"),
                        (token.address.lower(), "token's contract")]:
        with pytest.raises(BadRefundAddress, match=reason):
            chain.check_address("ETH", bad)
    with pytest.raises(BadRefundAddress):
        chain.check_address("BTC", good)
    with pytest.raises(CannotPrepare):
        await chain.prepare_refund("ETH", good, 0, [], 0)
