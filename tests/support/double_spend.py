"""A double-spend on litecoind regtest, as an attacker would make one."""

from decimal import Decimal

from tests.support.nodes import LitecoinRegtest


def double_spend(node: LitecoinRegtest, txid: str) -> str:
    """A conflicting transaction spending the same inputs to the miner's own wallet, with
    a higher fee (the original signals replace-by-fee): the original is gone for good."""
    w = node.wallet
    original = node.rpc("decoderawtransaction",
                        node.rpc("gettransaction", txid, wallet=w)["hex"])
    inputs, total = [], Decimal(0)
    for vin in original["vin"]:
        prev = node.rpc("decoderawtransaction",
                        node.rpc("gettransaction", vin["txid"], wallet=w)["hex"])
        total += Decimal(str(prev["vout"][vin["vout"]]["value"]))
        inputs.append({"txid": vin["txid"], "vout": vin["vout"]})
    mine = node.rpc("getnewaddress", "", "bech32", wallet=w)
    raw = node.rpc("createrawtransaction", inputs, {mine: str(total - Decimal("0.01"))})
    signed = node.rpc("signrawtransactionwithwallet", raw, wallet=w)
    assert signed["complete"], signed
    return str(node.rpc("sendrawtransaction", signed["hex"]))
