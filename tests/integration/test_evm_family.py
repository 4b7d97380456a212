"""The EVM family on a real anvil node (automine off), beyond the contract suite: address
derivation against anvil's own accounts and eth-account, 200 payments in three coins in
one block found with one eth_getLogs, an anvil_reorg before settlement, and what must
credit nothing (a reverted transaction, an unconfigured token, another chain id)."""

import asyncio
import contextlib
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import base58
import pytest
from coincurve import PrivateKey
from Crypto.Hash import RIPEMD160
from eth_abi.abi import encode
from eth_account import Account
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from sqlalchemy import update

from chains.base import BlockConnected, ChainError, Destination
from chains.evm.adapter import INTERNAL_INDEX, EvmChain, Token, eth_destination
from gateway import families
from gateway.adapters.db.chain_state import SqlWatchlist
from gateway.adapters.db.tables import payments
from gateway.bootstrap import Gateway, Overrides, build
from gateway.config import load
from gateway.domain.accounts import Account as CustomerAccount
from gateway.domain.money import Fiat
from gateway.services.chain_events import Feed
from gateway.services.finance import Period
from gateway.services.ports import Profile
from gateway.watcher import ChainWatcher
from tests.contract.harness import SetWatchlist, Stream
from tests.support.databases import fresh_database
from tests.support.evm import DeployedToken, compile_tokens, deploy, transfer
from tests.support.keys import random_xpub, security_env
from tests.support.nodes import ANVIL_MNEMONIC, Anvil

# anvil's first three accounts (public test data, printed by anvil at every start).
ANVIL_ADDRESSES = ["0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
                   "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
                   "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"]


def account_xpub(mnemonic: str) -> str:
    """The account-level xpub m/44'/60'/0' of a BIP39 mnemonic (what a wallet exports),
    derived here with plain BIP32 so the test does not trust the code under test."""
    seed = hashlib.pbkdf2_hmac("sha512", mnemonic.encode(), b"mnemonic", 2048)
    raw = hmac.new(b"Bitcoin seed", seed, hashlib.sha512).digest()
    key, chain = raw[:32], raw[32:]
    parent_pub = b""
    for index in (44 | 1 << 31, 60 | 1 << 31, 0 | 1 << 31):
        parent_pub = PrivateKey(key).public_key.format(compressed=True)
        raw = hmac.new(chain, b"\x00" + key + index.to_bytes(4, "big"), hashlib.sha512).digest()
        n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
        key = ((int.from_bytes(raw[:32], "big") + int.from_bytes(key, "big")) % n
               ).to_bytes(32, "big")
        chain = raw[32:]
    fingerprint = RIPEMD160.new(hashlib.sha256(parent_pub).digest()).digest()[:4]
    payload = (bytes.fromhex("0488b21e") + b"\x03" + fingerprint + (0x80000000).to_bytes(4, "big")
               + chain + PrivateKey(key).public_key.format(compressed=True))
    return base58.b58encode_check(payload).decode()


def test_derivation_matches_anvil_and_eth_account(anvil: Anvil) -> None:
    xpub = account_xpub(ANVIL_MNEMONIC)
    derived = [eth_destination(xpub, i) for i in range(10)]
    assert [d.address for d in derived[:3]] == ANVIL_ADDRESSES
    assert [d.address for d in derived] == [to_checksum_address(a) for a in anvil.accounts]
    Account.enable_unaudited_hdwallet_features()
    for i in (0, 1, 7, 9):
        expected = Account.from_mnemonic(ANVIL_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}")
        assert derived[i].address == expected.address
        assert derived[i].match_key == bytes.fromhex(expected.address[2:])


@pytest.fixture(scope="module")
def tokens(anvil: Anvil) -> dict[str, DeployedToken]:
    code = compile_tokens()
    return {"T6": deploy(anvil, code["NoBoolToken"], "T6", 6, supply=10**30),
            "T18": deploy(anvil, code["BoolToken"], "T18", 18, supply=10**40),
            "ROGUE": deploy(anvil, code["BoolToken"], "ROGUE", 18, supply=10**40)}


def follower(anvil: Anvil, tokens: dict[str, DeployedToken], chain_id: int = 31337,
             watch_pool: bool = True) -> EvmChain:
    return EvmChain("ETH", anvil.rpc_url, chain_id=chain_id, xpub=random_xpub(),
                    tokens=[Token(c, tokens[c].address, tokens[c].decimals)
                            for c in ("T6", "T18")],
                    poll_interval=0.05, watch_pool=watch_pool)


async def test_eth_from_an_internal_call_is_found_only_with_tracing(
        anvil: Anvil, tokens: dict[str, DeployedToken]) -> None:
    deployed = anvil.rpc("eth_sendTransaction", {
        "from": anvil.accounts[0], "data": "0x" + compile_tokens()["Forwarder"],
        "gas": hex(1_000_000)})
    anvil.mine(1)
    forwarder = anvil.rpc("eth_getTransactionReceipt", deployed)["contractAddress"]
    traced = EvmChain("ETH", anvil.rpc_url, chain_id=31337, xpub=random_xpub(),
                      poll_interval=0.05, trace_internal=True)
    plain = EvmChain("ETH", anvil.rpc_url, chain_id=31337, xpub=traced._xpub,
                     poll_interval=0.05)
    [d] = await traced.allocate([4])
    watched = SetWatchlist()
    watched.keys.add(d.match_key)
    start = await traced.tip()
    streams = [Stream(chain, start, watched) for chain in (traced, plain)]
    data = "0x" + keccak(b"pay(address)")[:4].hex() + encode(["address"], [d.address]).hex()
    txid = anvil.rpc("eth_sendTransaction", {"from": anvil.accounts[0], "to": forwarder,
                                             "value": hex(12345), "data": data,
                                             "gas": hex(200_000)})
    [block_hash] = anvil.mine(1)
    with_trace, without = [await s.until_block(start.height + 1) for s in streams]
    assert [(p.txid, p.index, p.amount) for p in with_trace.payments] == [
        (txid, INTERNAL_INDEX + 1, 12345)]  # trace 0 is the call into the forwarder
    assert without.payments == ()
    found = await traced.lookup(txid, INTERNAL_INDEX + 1, block_hash)
    assert (found.in_main_chain, found.match_key, found.amount) == (True, d.match_key, 12345)
    for stream in streams:
        await stream.aclose()
    for chain in (traced, plain):
        await chain.aclose()


async def test_without_the_pool_payments_are_found_in_their_block(
        anvil: Anvil, tokens: dict[str, DeployedToken]) -> None:
    chain = follower(anvil, tokens, watch_pool=False)
    [d] = await chain.allocate([21])
    watched = SetWatchlist()
    watched.keys.add(d.match_key)
    stream = Stream(chain, await chain.tip(), watched)
    txid = anvil.send(d.address, 77)
    anvil.mine(1)
    connected = await stream.until(BlockConnected)
    assert isinstance(connected, BlockConnected)
    assert [(p.txid, p.amount) for p in connected.payments] == [(txid, 77)]
    assert stream.log == [connected] and chain.calls["txpool_content"] == 0
    await stream.aclose()
    await chain.aclose()


async def test_200_payments_in_three_coins_in_one_block_one_get_logs(
        anvil: Anvil, tokens: dict[str, DeployedToken]) -> None:
    chain = follower(anvil, tokens)
    batch = await chain.allocate(range(1000, 1200))
    watched = SetWatchlist()
    watched.keys.update(d.match_key for d in batch)
    stream = Stream(chain, await chain.tip(), watched)
    expected: dict[str, tuple[str, int, bytes]] = {}
    for n, d in enumerate(batch):
        coin = ("ETH", "T6", "T18")[n % 3]
        amount = 10**15 + n
        txid = (anvil.send(d.address, amount) if coin == "ETH"
                else transfer(anvil, tokens[coin], d.address, amount))
        expected[txid] = (coin, amount, d.match_key)
    before = chain.calls["eth_getLogs"]
    [block_hash] = anvil.mine(1)
    assert len(anvil.block(block_hash)["transactions"]) == 200
    connected = await stream.until(BlockConnected, timeout=60)
    assert isinstance(connected, BlockConnected) and connected.block.hash == block_hash
    assert chain.calls["eth_getLogs"] - before == 1  # one query for the block, all tokens
    found = {p.txid: (p.coin, p.amount, p.match_key) for p in connected.payments}
    assert found == expected
    assert {p.index for p in connected.payments if p.coin != "ETH"} == {1}  # its first log
    await stream.aclose()
    await chain.aclose()


async def test_reverted_tx_unconfigured_token_and_other_chain_credit_nothing(
        anvil: Anvil, tokens: dict[str, DeployedToken]) -> None:
    chain = follower(anvil, tokens)
    reverting, rogue_to, control = await chain.allocate([7, 8, 9])
    watched = SetWatchlist()
    watched.keys.update(d.match_key for d in (reverting, rogue_to, control))
    stream = Stream(chain, await chain.tip(), watched)
    # Code at the watched address that always reverts: the transaction is mined, failed.
    anvil.rpc("anvil_setCode", reverting.address, "0x60006000fd")
    failed = anvil.send(reverting.address, 10**18, gas=hex(100_000))
    transfer(anvil, tokens["ROGUE"], rogue_to.address, 10**18)  # not a configured token
    # Signed for chain id 1 (mainnet): the node refuses it, so nothing can be credited.
    Account.enable_unaudited_hdwallet_features()
    payer = Account.from_mnemonic(ANVIL_MNEMONIC, account_path="m/44'/60'/0'/0/5")
    signed = payer.sign_transaction({
        "to": control.address, "value": 10**18, "gas": 21000, "gasPrice": 10**10,
        "nonce": int(anvil.rpc("eth_getTransactionCount", payer.address, "pending"), 16),
        "chainId": 1})
    # anvil takes it into its pool and mines it (a real node refuses it): either way it
    # credits nothing.
    with contextlib.suppress(RuntimeError):
        anvil.rpc("eth_sendRawTransaction", "0x" + signed.raw_transaction.hex())
    good = anvil.send(control.address, 5)  # the block is really scanned
    [block_hash] = anvil.mine(1)
    receipt = anvil.rpc("eth_getTransactionReceipt", failed)
    assert receipt["blockHash"] == block_hash and int(receipt["status"], 16) == 0
    connected = await stream.until_block(int(anvil.block(block_hash)["number"], 16))
    assert [(p.txid, p.coin, p.amount) for p in connected.payments] == [(good, "ETH", 5)]
    scanned = await chain.scan(connected.block.height, watched)
    assert [p.txid for p in scanned.payments] == [good]
    await stream.aclose()
    await chain.aclose()
    # A follower configured for another chain refuses the node.
    wrong = follower(anvil, tokens, chain_id=1)
    with pytest.raises(ChainError, match="chain id 31337"):
        await wrong.tip()
    with pytest.raises(ChainError, match="chain id 31337"):
        await anext(wrong.follow(await chain.tip(), watched))
    await wrong.aclose()


# -- a reorg before settlement, at the level the customer sees -------------------------


@pytest.fixture
async def gateway(anvil: Anvil, tokens: dict[str, DeployedToken], tmp_path: Path
                  ) -> AsyncIterator[tuple[Gateway, EvmChain]]:
    chain = follower(anvil, tokens)
    with fresh_database("sqlite", tmp_path) as url:
        env = {"GATEWAY_DATABASE__URL": url, **security_env(),
               "GATEWAY_RATES__FIXED": json.dumps({"ETH-EUR": "80.00", "T6-EUR": "1.00",
                                                   "T18-EUR": "1.00"}),
               "GATEWAY_COINS__ETH__KIND": "evm", "GATEWAY_COINS__ETH__RPC_URL": anvil.rpc_url,
               "GATEWAY_COINS__ETH__CHAIN_ID": "31337", "GATEWAY_COINS__ETH__XPUB": random_xpub(),
               "GATEWAY_COINS__ETH__CONFIRMATIONS": "2"}
        for code in ("T6", "T18"):
            env |= {f"GATEWAY_COINS__{code}__KIND": "evm", f"GATEWAY_COINS__{code}__NODE": "ETH",
                    f"GATEWAY_COINS__{code}__CONTRACT": tokens[code].address,
                    f"GATEWAY_COINS__{code}__DECIMALS": str(tokens[code].decimals),
                    f"GATEWAY_COINS__{code}__CONFIRMATIONS": "2"}
        gw = build(load(None, env), overrides=Overrides(chains=[chain]))
        await gw.services.tracker.set_cursor(Feed(chain.feed, chain.coins), await chain.tip())
        watcher = ChainWatcher(chain, gw.services.tracker,
                               SqlWatchlist(gw.engine, chain.address_space), retry_delay=0.1)
        task = asyncio.create_task(watcher.run())
        try:
            yield gw, chain
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await chain.aclose()
            await gw.engine.dispose()


async def invoice(gw: Gateway, coin: str) -> Any:
    account_id = f"acc_{time.monotonic_ns()}"
    async with gw.uow() as uow:
        await uow.accounts.add(CustomerAccount(account_id, gw.clock()),
                               Profile("c@example.org"), f"idx-{account_id}", "hash", "v1")
        await uow.commit()
    return (await gw.services.invoices.create(account_id, Fiat(800, "EUR"), coin)).record


async def until(gw: Gateway, invoice_id: str, check: Any, what: str) -> Any:
    deadline = time.monotonic() + 20
    while True:
        view = await gw.services.invoices.read(invoice_id)
        if check(view):
            return view
        assert time.monotonic() < deadline, f"timed out waiting for {what}: {view}"
        await asyncio.sleep(0.05)


def status(view: Any) -> str:
    return str(view.record.invoice.status.value)


async def test_anvil_reorg_before_settlement_reverts_then_counts_once(
        anvil: Anvil, tokens: dict[str, DeployedToken],
        gateway: tuple[Gateway, EvmChain]) -> None:
    gw, _chain = gateway
    eth, t6 = await invoice(gw, "ETH"), await invoice(gw, "T6")
    eth_tx = anvil.send(eth.address, eth.invoice.terms.amount_due)
    t6_tx = transfer(anvil, tokens["T6"], t6.address, t6.invoice.terms.amount_due)
    raws = [anvil.rpc("eth_getRawTransactionByHash", t) for t in (eth_tx, t6_tx)]
    anvil.mine(1)
    for rec in (eth, t6):
        await until(gw, rec.invoice.id, lambda v: v.record.payments
                    and v.confirmations(v.record.payments[0]) == 1, "one confirmation")
    # The block with both payments is replaced by an empty one: both leave the chain.
    anvil.rpc("anvil_reorg", 1, [])
    for rec in (eth, t6):
        view = await until(gw, rec.invoice.id,
                           lambda v: v.record.payments[0].status == "reverted", "reverted")
        assert status(view) == "new"
    # Re-included in a new block at the same height, then one more block: settled, and
    # the payment is the same one (same txid and index), counted once.
    anvil.rpc("anvil_reorg", 1, [[raw, 0] for raw in raws])
    anvil.mine(1)
    for rec, txid in ((eth, eth_tx), (t6, t6_tx)):
        view = await until(gw, rec.invoice.id, lambda v: status(v) == "settled", "settled")
        assert [(p.txid, p.status) for p in view.record.payments] == [(txid, "confirmed")]
        assert sum(p.amount for p in view.record.payments) == rec.invoice.terms.amount_due


async def test_reconcile_checks_payments_against_block_and_log_index(
        anvil: Anvil, tokens: dict[str, DeployedToken],
        gateway: tuple[Gateway, EvmChain]) -> None:
    gw, _chain = gateway

    def chain_now() -> datetime:
        # Anvil's block times run ahead of the clock after blocks mined faster than one a
        # second (earlier tests on the session's node): the window spans both clocks.
        return datetime.fromtimestamp(int(anvil.block(anvil.height())["timestamp"], 0), UTC)

    start = min(datetime.now(UTC), chain_now()) - timedelta(seconds=5)
    eth, t6 = await invoice(gw, "ETH"), await invoice(gw, "T6")
    eth_tx = anvil.send(eth.address, eth.invoice.terms.amount_due)
    t6_tx = transfer(anvil, tokens["T6"], t6.address, t6.invoice.terms.amount_due)
    anvil.mine(2)
    for rec in (eth, t6):
        await until(gw, rec.invoice.id, lambda v: status(v) == "settled", "settled")
    end = max(datetime.now(UTC), chain_now()) + timedelta(seconds=5)
    report = await gw.services.reconcile.run(start, end)
    assert report.findings == [] and report.checked_payments == 2
    assert set(report.scanned_blocks) == {"ETH", "T6", "T18"}
    lines = {line.row.txid: line.as_dict() for line in
             [line async for line in gw.services.finance.stream(Period())]}
    assert (lines[eth_tx]["asset"], lines[eth_tx]["output_index"]) == ("", 0)
    assert (lines[t6_tx]["asset"], lines[t6_tx]["output_index"]) == (tokens["T6"].address, 1)
    # A recorded amount that the log does not carry is a finding.
    async with gw.engine.begin() as conn:
        await conn.execute(update(payments).where(payments.c.txid == t6_tx)
                           .values(amount=t6.invoice.terms.amount_due - 1))
    report = await gw.services.reconcile.run(start, end, "T6")
    assert [(f.kind, f.txid, f.output_index) for f in report.findings] == [
        ("amount", t6_tx, 1)]


def test_family_config_one_line_errors() -> None:
    family = families.get("evm")
    base = {"kind": "evm", "rpc_url": "http://127.0.0.1:1", "chain_id": 1,
            "xpub": random_xpub()}
    family.settings.model_validate(base)
    for bad in ({**base, "contract": "0x" + "11" * 20},
                {"kind": "evm", "node": "ETH"},
                {"kind": "evm", "node": "ETH", "contract": "0x12"},
                {**base, "node": "ETH", "contract": "0x" + "11" * 20}):
        with pytest.raises(ValueError):
            family.settings.model_validate(bad)
    token = family.settings.model_validate(
        {"kind": "evm", "node": "ETH", "contract": "0x" + "11" * 20, "decimals": 6})
    with pytest.raises(ValueError, match=r"coins\.USDC\.node"):
        family.build({"USDC": token})
    [built] = family.build({"ETH": family.settings.model_validate(base), "USDC": token})
    assert built.coins == ("ETH", "USDC") and built.address_space == "ETH"
    assert built.decimals("USDC") == 6 and built.decimals("ETH") == 18
    d = Destination(0, "0x" + "22" * 20, bytes(20))
    assert built.payment_uri(d, "USDC", 2**256 - 1) == (
        f"ethereum:0x{'11' * 20}@1/transfer?address={d.address}&uint256={2**256 - 1}")
