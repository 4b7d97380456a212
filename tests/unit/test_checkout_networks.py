"""What the checkout says of a coin's network comes from its family and configuration
(issue 33 item 5): the network's name, its block interval and finality, none of them
from tables in gateway/http/."""

from chains.base import Described, Destination, NetworkFacts
from chains.evm.family import build
from chains.networks import NETWORKS
from gateway.config import network_coins
from gateway.http.checkout import network_notice, settlement_text
from tests.support.keys import random_xpub


def test_an_evm_network_is_named_as_configured_with_its_chain_id_in_the_uri() -> None:
    coins = network_coins("BASE", {
        "kind": "evm", "name": "Base", "chain_id": 8453, "rpc_url": "http://127.0.0.1:1",
        "xpub": random_xpub(), "block_seconds": 2, "confirmations": 30,
        "tokens": {"USDC": {"contract": "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",
                            "decimals": 6}}}, ())
    [follower] = build(coins)
    assert isinstance(follower, Described)
    facts = follower.network_facts("USDC-BASE")
    assert facts == NetworkFacts("Base", 2, "depth", 8453)
    d = Destination(0, "0x" + "ab" * 20, bytes.fromhex("ab" * 20))
    uri = follower.payment_uri(d, "USDC-BASE", 5_000_000)
    assert "@8453/transfer?" in uri
    assert network_notice(uri, facts) == {
        "network": "Base (chain id 8453)",
        "token_contract": "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"}
    assert settlement_text(facts, 30) == ("Your payment is seen within seconds; settlement "
                                          "waits for 30 confirmations (about 1 minutes).")


def test_finality_by_tag_is_said_as_such() -> None:
    facts = NetworkFacts("Ethereum", 12, "finalized", 1)
    assert settlement_text(facts, 1) == ("Your payment is seen within seconds; settlement "
                                         "waits until Ethereum marks its block finalized.")


def test_the_utxo_family_names_its_networks_and_their_block_times() -> None:
    assert NETWORKS["litecoin-regtest"].facts == NetworkFacts("Litecoin regtest", 150)
    assert NETWORKS["bitcoin"].facts == NetworkFacts("Bitcoin", 600)
    assert settlement_text(NETWORKS["bitcoin"].facts, 2) == (
        "Your payment is seen within seconds; settlement waits for 2 confirmations (about "
        "20 minutes).")
    assert settlement_text(None, 2) == ("Your payment is seen within seconds; settlement "
                                        "waits for 2 confirmations.")
