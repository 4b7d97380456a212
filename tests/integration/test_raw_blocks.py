"""The serialized-block walker against real Litecoin Core blocks: every output of every
block, read from `getblock <hash> 0`, equals what `getblock <hash> 2` says (txid, index,
script, amount), before and after MWEB activation (HogEx, peg-in, peg-out blocks), and
mempool transactions read from `getrawtransaction <txid> false` likewise."""

from decimal import Decimal
from typing import Any

from chains.jsonrpc import JsonRpcClient
from chains.networks import NETWORKS
from chains.utxo.adapter import UtxoChain, p2wpkh_destination
from chains.utxo.rawblock import scan_block, scan_transaction, transaction_id
from chains.watchset import KeySet
from tests.support.keys import random_xpub
from tests.support.nodes import LitecoinRegtest


class Everything:
    def __contains__(self, key: object) -> bool:
        return True


def outputs(tx: dict[str, Any]) -> list[tuple[str, int, bytes, int]]:
    return [(tx["txid"], int(o["n"]), bytes.fromhex(o["scriptPubKey"]["hex"]),
             int(Decimal(o["value"]).scaleb(8)))
            for o in tx["vout"] if not o.get("ismweb")]


def assert_block_reads_alike(node: LitecoinRegtest, block_hash: str) -> dict[str, Any]:
    verbose = node.rpc("getblock", block_hash, 2)
    found = scan_block(bytes.fromhex(node.rpc("getblock", block_hash, 0)), Everything())
    assert [(h.txid, h.n, h.script, h.value) for h in found.hits] == [
        o for tx in verbose["tx"] for o in outputs(tx)]
    assert found.hash == block_hash
    assert found.parent_hash == verbose["previousblockhash"]
    assert int(found.time.timestamp()) == verbose["time"]
    assert found.tx_count == len(verbose["tx"])
    return dict(verbose)


def spend_variety(node: LitecoinRegtest, wallet: str) -> list[str]:
    """Payments to every address type the wallet makes, several outputs each."""
    sent = []
    for kind in ("bech32", "legacy", "p2sh-segwit"):
        to = {node.rpc("getnewaddress", "", kind, wallet=wallet): "0.1" for _ in range(3)}
        sent.append(str(node.rpc("sendmany", "", to, wallet=wallet)))
    return sent


def test_blocks_before_and_after_mweb_read_like_verbose_json(
        litecoin: LitecoinRegtest) -> None:
    node, wallet = litecoin, litecoin.wallet
    sent = spend_variety(node, wallet)
    for txid in sent:  # mempool transactions, read serialized
        raw = bytes.fromhex(node.rpc("getrawtransaction", txid, False))
        assert transaction_id(raw) == txid
        hits = scan_transaction(raw, txid, Everything())
        assert [(h.txid, h.n, h.script, h.value) for h in hits] == outputs(
            node.rpc("getrawtransaction", txid, True))
    [mined] = node.mine(1)
    verbose = assert_block_reads_alike(node, mined)
    assert {tx["txid"] for tx in verbose["tx"]} >= set(sent)

    pegin = node.activate_mweb()  # mines to 431 and the first MWEB block
    tip = node.rpc("getbestblockhash")
    verbose = assert_block_reads_alike(node, tip)
    # Coinbase, the peg-in's canonical part (its MWEB part is in the extension block),
    # and the HogEx last, paying the MWEB's "hogaddr" script (OP_8 <32 bytes>).
    assert "mweb" in verbose
    assert [tx["txid"] for tx in verbose["tx"]][1:2] == [pegin]
    assert verbose["tx"][-1]["vout"][0]["scriptPubKey"]["hex"].startswith("5820")

    # A second wallet holding only MWEB coins pegs out to a canonical address: that
    # output is an output of the HogEx.
    node.rpc("createwallet", "mweb-only")
    node.send(str(node.rpc("getnewaddress", "", "mweb", wallet="mweb-only")), "3")
    node.mine(1)
    canonical = node.rpc("getnewaddress", "", "bech32", wallet=wallet)
    node.rpc("sendtoaddress", canonical, "1", wallet="mweb-only")
    sent = spend_variety(node, wallet)
    [mined] = node.mine(1)
    verbose = assert_block_reads_alike(node, mined)
    script = bytes.fromhex(node.rpc("getaddressinfo", canonical, wallet=wallet)["scriptPubKey"])
    hogex = verbose["tx"][-1]
    assert script in {o[2] for o in outputs(hogex)}
    assert {tx["txid"] for tx in verbose["tx"]} >= set(sent)
    for block_hash in node.mine(3):  # plain blocks after activation
        assert_block_reads_alike(node, block_hash)


async def test_rest_and_rpc_read_the_same_block(litecoin: LitecoinRegtest) -> None:
    node, wallet = litecoin, litecoin.wallet
    destination = p2wpkh_destination(random_xpub(), 3, NETWORKS["litecoin-regtest"])
    txid = node.send(destination.address, "0.5")
    spend_variety(node, wallet)
    [mined] = node.mine(1)
    height = int(node.rpc("getblockcount"))
    watched = KeySet([destination.match_key])
    found = []
    for rest in (False, True):
        chain = UtxoChain("LTC", NETWORKS["litecoin-regtest"], xpub=random_xpub(),
                          rpc=JsonRpcClient(node.rpc_url), rest=rest)
        try:
            found.append(await chain.scan(height, watched))
        finally:
            await chain.aclose()
    assert found[0] == found[1]
    assert found[0].block.hash == mined
    [payment] = found[0].payments
    assert (payment.txid, payment.amount, payment.match_key) == (
        txid, 50_000_000, destination.match_key)
