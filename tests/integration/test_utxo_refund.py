"""Issue 30's acceptance for the UTXO family on a real Litecoin Core: the gateway holds
only an account xpub; a descriptor wallet in litecoind holds its private keys (in the
test only). Outputs paid to a few receive addresses are refunded with the PSBT the
follower prepares: `decodepsbt` shows the BIP 32 derivations the configuration names,
`walletprocesspsbt` signs it, `finalizepsbt` + `sendrawtransaction` send it; the customer
receives exactly the amount, the change goes to the change branch's address, the fee is
the PSBT's, and the follower, watching the customer's match key, reports the payment."""

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import bech32
import pytest

from chains.base import BlockConnected, MempoolSeen
from chains.hd import change_key
from chains.refunds import BadRefundAddress, CannotPrepare, Refundable, Spendable
from chains.utxo.adapter import UtxoChain
from chains.utxo.family import UtxoSettings, build
from chains.utxo.refund import fee_for, p2wpkh_script
from tests.contract.harness import SetWatchlist, Stream
from tests.support.hd_private import HARDENED, PrivateNode
from tests.support.nodes import LitecoinRegtest

COIN = "LTC"
H = HARDENED


def lits(value: Any) -> int:
    return int(Decimal(value).scaleb(8))


def coins(base_units: int) -> str:
    return format(Decimal(base_units).scaleb(-8), "f")


@dataclass
class Setup:
    node: LitecoinRegtest
    chain: UtxoChain
    wallet: str  # holds the private keys
    xpub: str  # the account's, as configured
    origin_path: str  # the path Core reports for the account, "m/84'/1'/0'"
    fingerprint: str


def descriptor(node: LitecoinRegtest, body: str) -> str:
    return f"{body}#{node.rpc('getdescriptorinfo', body)['checksum']}"


def make_wallet(node: LitecoinRegtest, keys: list[str]) -> str:
    """A wallet holding `keys` (receive, then change descriptor bodies with private
    keys): a descriptor wallet where the node has them, else (Debian's litecoind is
    built without sqlite) a blank legacy wallet given them through `importmulti`,
    which records each key's origin likewise."""
    name = f"signer-{secrets.token_hex(4)}"
    try:
        node.rpc("createwallet", name, False, True, "", False, True)
    except RuntimeError as exc:
        if "sqlite" not in str(exc):
            raise
    else:
        imported = node.rpc("importdescriptors", [
            {"desc": descriptor(node, body), "timestamp": "now", "active": True,
             "internal": internal, "range": [0, 50]}
            for body, internal in zip(keys, (False, True), strict=True)], wallet=name)
        assert all(r["success"] for r in imported), imported
        return name
    node.rpc("createwallet", name, False, True)
    imported = node.rpc("importmulti", [
        {"desc": descriptor(node, body), "timestamp": "now", "internal": internal,
         "range": [0, 50], "watchonly": False, "keypool": False}
        for body, internal in zip(keys, (False, True), strict=True)],
        {"rescan": False}, wallet=name)
    assert all(r["success"] for r in imported), imported
    return name


def configure(node: LitecoinRegtest, xpub: str, **extra: Any) -> UtxoChain:
    settings = UtxoSettings.model_validate({
        "kind": "utxo", "network": "litecoin-regtest", "rpc_url": node.rpc_url,
        "xpub": xpub, "poll_interval_seconds": 0.1, **extra})
    [chain] = build({COIN: settings})
    assert isinstance(chain, UtxoChain)
    return chain


@pytest.fixture(params=["master", "account"])
async def setup(request: pytest.FixtureRequest, litecoin: LitecoinRegtest
                ) -> AsyncIterator[Setup]:
    """`master`: the wallet holds the master key, the configuration names the account's
    origin ([fingerprint/84h/1h/0h]). `account`: the wallet imported the account-level
    key itself and the configuration names no origin (the default)."""
    master = PrivateNode.master()
    account = master.path(84 | H, 1 | H, 0 | H)
    if request.param == "master":
        keys = [f"wpkh({master.xprv()}/84h/1h/0h/{b}/*)" for b in (0, 1)]
        origin = {"key_origin": f"[{master.fingerprint.hex()}/84h/1h/0h]"}
        path, fp = "m/84'/1'/0'", master.fingerprint.hex()
    else:
        keys = [f"wpkh({account.xprv()}/{b}/*)" for b in (0, 1)]
        origin, path, fp = {}, "m", account.fingerprint.hex()
    wallet = make_wallet(litecoin, keys)
    chain = configure(litecoin, account.xpub(), fallback_fee_rate=20, **origin)
    yield Setup(litecoin, chain, wallet, account.xpub(), path, fp)
    await chain.aclose()


def pay_receive_addresses(s: Setup, amounts: dict[int, str]) -> list[Spendable]:
    """Pays receive address i each amount; the outputs as the gateway records them."""
    found = []
    for index, amount in amounts.items():
        destination = s.chain.derive(index)
        txid = s.node.send(destination.address, amount)
        tx = s.node.rpc("getrawtransaction", txid, True)
        [out] = [o for o in tx["vout"]
                 if bytes.fromhex(o["scriptPubKey"]["hex"]) == destination.match_key]
        found.append(Spendable(txid, int(out["n"]), lits(out["value"]),
                               destination.match_key, index))
    s.node.mine(1)
    return found


def customer_address(node: LitecoinRegtest) -> tuple[str, str]:
    name = f"customer-{secrets.token_hex(4)}"
    node.rpc("createwallet", name)
    return name, str(node.rpc("getnewaddress", "", "bech32", wallet=name))


async def test_refund_psbt_is_signed_by_the_wallet_and_seen_by_the_follower(
        setup: Setup) -> None:
    s = setup
    assert isinstance(s.chain, Refundable)
    spendable = pay_receive_addresses(s, {0: "0.3", 1: "0.2", 5: "0.1"})
    customer_wallet, address = customer_address(s.node)
    normalised = s.chain.check_address(COIN, address.upper())
    assert normalised == address
    key = s.chain.refund_match_key(COIN, address)
    assert key == bytes.fromhex(s.node.rpc("validateaddress", address)["scriptPubKey"])

    amount = 45_000_000  # more than any one output: the two largest are spent
    refund = await s.chain.prepare_refund(COIN, address, amount, spendable, change_index=3)
    assert (refund.coin, refund.address, refund.amount) == (COIN, address, amount)
    assert refund.uri == f"litecoin:{address}?amount=0.45"
    assert sorted(refund.spends) == sorted((p.txid, p.output_index) for p in spendable[:2])
    assert refund.psbt is not None and refund.fee is not None

    decoded = s.node.rpc("decodepsbt", refund.psbt)
    assert lits(decoded["fee"]) == refund.fee
    by_outpoint = {(i["txid"], i["vout"]): n for n, i in enumerate(decoded["tx"]["vin"])}
    for paid in spendable[:2]:
        entry = decoded["inputs"][by_outpoint[(paid.txid, paid.output_index)]]
        assert lits(entry["witness_utxo"]["amount"]) == paid.amount
        [derivation] = entry["bip32_derivs"]
        assert derivation["master_fingerprint"] == s.fingerprint
        assert derivation["path"] == f"{s.origin_path}/0/{paid.index}"
    outputs = decoded["tx"]["vout"]
    [to_customer] = [o for o in outputs if o["scriptPubKey"]["hex"] == key.hex()]
    assert lits(to_customer["value"]) == amount
    [change] = [o for o in outputs if o is not to_customer]
    change_at = outputs.index(change)
    [change_derivation] = decoded["outputs"][change_at]["bip32_derivs"]
    assert change_derivation["path"] == f"{s.origin_path}/1/3"
    assert change_derivation["master_fingerprint"] == s.fingerprint
    assert lits(change["value"]) == 50_000_000 - amount - refund.fee
    assert change["scriptPubKey"]["hex"] == p2wpkh_script(change_key(s.xpub, 3).key).hex()
    change_address = change["scriptPubKey"]["addresses"][0]
    info = s.node.rpc("getaddressinfo", change_address, wallet=s.wallet)
    assert info["ismine"] and info["ischange"], info  # the wallet's own change branch, 3
    assert info["hdkeypath"] == f"{s.origin_path}/1/3"
    analysed = s.node.rpc("analyzepsbt", refund.psbt)
    assert [i["next"] for i in analysed["inputs"]] == ["signer", "signer"]

    watched = SetWatchlist()
    watched.keys.add(key)
    stream = Stream(s.chain, await s.chain.tip(), watched)
    try:
        signed = s.node.rpc("walletprocesspsbt", refund.psbt, wallet=s.wallet)
        assert signed["complete"], signed
        final = s.node.rpc("finalizepsbt", signed["psbt"])
        txid = s.node.rpc("sendrawtransaction", final["hex"])
        assert txid == decoded["tx"]["txid"]  # segwit: signing left the txid alone

        seen = await stream.until(MempoolSeen)
        assert isinstance(seen, MempoolSeen)
        [payment] = seen.payments
        assert (payment.txid, payment.match_key, payment.amount) == (txid, key, amount)
        [block_hash] = s.node.mine(1)
        connected = await stream.until(BlockConnected)
        assert isinstance(connected, BlockConnected) and connected.block.hash == block_hash
        assert [(p.txid, p.amount) for p in connected.payments] == [(txid, amount)]
    finally:
        await stream.aclose()
    assert lits(s.node.rpc("getreceivedbyaddress", address, 1, wallet=customer_wallet)) \
        == amount
    mined = s.node.rpc("getrawtransaction", txid, True)
    paid_in = sum(p.amount for p in spendable[:2])
    assert paid_in - sum(lits(o["value"]) for o in mined["vout"]) == refund.fee


async def test_one_output_that_covers_it_all_and_change_below_dust_goes_to_the_fee(
        setup: Setup) -> None:
    s = setup
    spendable = pay_receive_addresses(s, {7: "0.05", 8: "0.2"})
    _, address = customer_address(s.node)
    small = await s.chain.prepare_refund(COIN, address, 1_000_000, spendable, 0)
    assert small.spends == ((spendable[0].txid, spendable[0].output_index),)
    # What leaves less than dust once the fee is paid: no change output at all.
    rate = await s.chain.refund_fee_rate()
    whole = 20_000_000 - fee_for(438, rate) - 100  # 1 P2WPKH input, 1 output: 438 WU
    exact = await s.chain.prepare_refund(COIN, address, whole, spendable[1:], 0)
    decoded = s.node.rpc("decodepsbt", exact.psbt)
    assert len(decoded["tx"]["vout"]) == 1
    assert exact.fee == 20_000_000 - whole
    assert accepted(s, exact.psbt)
    # The dust limit is the node's: 2,940 for P2WPKH at Litecoin's 30,000 per kvB.
    with pytest.raises(CannotPrepare, match="dust"):
        await s.chain.prepare_refund(COIN, address, 2_939, spendable[1:], 0)
    assert accepted(s, (await s.chain.prepare_refund(
        COIN, address, 2_940, spendable[1:], 0)).psbt)


def accepted(s: Setup, psbt: str | None) -> bool:
    """Signed by the wallet, the node's mempool would take it."""
    signed = s.node.rpc("walletprocesspsbt", psbt, wallet=s.wallet)
    assert signed["complete"], signed
    final = s.node.rpc("finalizepsbt", signed["psbt"])["hex"]
    [verdict] = s.node.rpc("testmempoolaccept", [final])
    assert verdict["allowed"], verdict
    return True


async def test_refusals(litecoin: LitecoinRegtest) -> None:
    account = PrivateNode.master().path(84 | H, 1 | H, 0 | H)
    _, address = customer_address(litecoin)
    unset = configure(litecoin, account.xpub())  # no fallback fee rate
    chain = configure(litecoin, account.xpub(), fallback_fee_rate=10)
    try:
        # The session's node has a fee estimate once enough blocks carried transactions
        # (other tests ran first): without one, the missing setting is named.
        one = [Spendable("00" * 32, 0, 20_000_000, chain.derive(0).match_key, 0)]
        if "feerate" in litecoin.rpc("estimatesmartfee", 6):
            made = await unset.prepare_refund(COIN, address, 10_000_000, one, 0)
            assert made.psbt is not None and made.fee is not None and made.fee > 0
        else:
            with pytest.raises(CannotPrepare, match="fallback_fee_rate"):
                await unset.prepare_refund(COIN, address, 10_000_000, one, 0)
        spendable = pay_receive_addresses(
            Setup(litecoin, chain, "", account.xpub(), "m", ""), {0: "0.01"})
        with pytest.raises(CannotPrepare, match="do not cover"):
            await chain.prepare_refund(COIN, address, 1_000_000, spendable, 0)
        with pytest.raises(CannotPrepare, match="dust"):
            await chain.prepare_refund(COIN, address, 100, spendable, 0)
        with pytest.raises(CannotPrepare, match="no output"):
            await chain.prepare_refund(COIN, address, 100_000, [], 0)
        [paid] = spendable
        wrong = [Spendable(paid.txid, paid.output_index, paid.amount, paid.match_key, 1)]
        with pytest.raises(CannotPrepare, match="does not pay our address"):
            await chain.prepare_refund(COIN, address, 100_000, wrong, 0)
        mainnet = str(bech32.encode("ltc", 0, bytes(20)))
        typo = address[:-1] + ("q" if address[-1] != "q" else "p")
        for bad, reason in [("", "no address"), ("rltc1qqqq", "checksum"),
                            (mainnet, "another network"), (typo, "checksum"),
                            (address[:10] + address[10:].upper(), "checksum"),
                            ("LTC" + address, "not a valid address")]:
            with pytest.raises(BadRefundAddress, match=reason):
                chain.check_address(COIN, bad)
        legacy = str(litecoin.rpc("getnewaddress", "", "legacy", wallet=litecoin.wallet))
        assert chain.check_address(COIN, legacy) == legacy
        assert chain.refund_match_key(COIN, legacy) == bytes.fromhex(
            litecoin.rpc("validateaddress", legacy)["scriptPubKey"])
        with pytest.raises(BadRefundAddress):
            chain.check_address("BTC", address)
    finally:
        await unset.aclose()
        await chain.aclose()
