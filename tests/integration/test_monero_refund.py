"""Refunds in Monero on the session's real monerod: a view key cannot see a payment to
someone else's address, so the operator's wallet sends the `monero:` request the
follower prepares and the operator enters its txid and tx key; the follower's
`check_tx_key` (wallet-rpc, no spend key) proves the amount, in the pool and once mined,
to a standard address and to a subaddress (whose tx key carries additional keys). A
wrong key, another address, an unknown or malformed txid are refused clearly."""

import secrets
from collections.abc import AsyncIterator

import pytest

from chains.monero.adapter import ED25519_ORDER, MoneroChain
from chains.monero.addresses import b58decode
from chains.refunds import (
    BadRefundAddress,
    CannotPrepare,
    Refundable,
    TxKeyCheckable,
)
from tests.contract.drivers.monero import MoneroDriver
from tests.support.monero_address import STAGENET, TESTNET, with_prefix
from tests.support.monero_nodes import MoneroRegtest

XMR = 10**12


@pytest.fixture
def customers(monero: MoneroRegtest) -> list[str]:
    """Two standard addresses of nobody's wallet here, made first: making one opens and
    closes a wallet in the wallet-rpc the follower's view-only wallet lives in."""
    return [monero.new_keys()[0] for _ in range(2)]


@pytest.fixture
async def chain(monero: MoneroRegtest, customers: list[str]) -> AsyncIterator[MoneroChain]:
    follower = MoneroDriver(monero).follower
    assert isinstance(follower, MoneroChain)
    await follower.tip()  # its wallet open, as the running watcher keeps it
    yield follower
    await follower.aclose()


def scalar() -> str:
    """A well-formed tx key of no transaction: a random reduced scalar."""
    return (secrets.randbelow(ED25519_ORDER - 1) + 1).to_bytes(32, "little").hex()


async def test_a_refund_is_proven_by_its_tx_key(
        monero: MoneroRegtest, chain: MoneroChain, customers: list[str]) -> None:
    assert isinstance(chain, Refundable) and isinstance(chain, TxKeyCheckable)
    customer, other = customers
    assert chain.check_address("XMR", f" {customer} ") == customer
    assert chain.refund_match_key("XMR", customer) is None
    refund = await chain.prepare_refund("XMR", customer, 1_250_000_000_000, [], 0)
    assert refund.uri == f"monero:{customer}?tx_amount=1.25"
    assert (refund.address, refund.amount, refund.psbt) == (customer, 1_250_000_000_000, None)

    txid = monero.pay([(customer, refund.amount)])
    tx_key = str(monero.miner.rpc("get_tx_key", txid=txid)["tx_key"])
    pooled = await chain.check_tx_key(txid, tx_key, customer)
    assert (pooled.received, pooled.in_pool, pooled.confirmations) == (
        refund.amount, True, 0)
    monero.mine(2)
    mined = await chain.check_tx_key(txid.upper(), f" {tx_key.upper()} ", customer)
    assert (mined.received, mined.in_pool, mined.confirmations) == (refund.amount, False, 2)

    with pytest.raises(CannotPrepare, match="does not prove"):
        await chain.check_tx_key(txid, tx_key, other)
    with pytest.raises(CannotPrepare, match="does not prove"):
        await chain.check_tx_key(txid, scalar(), customer)
    # No reduced scalar (a typo): refused before wallet-rpc 0.18, which stops on it.
    unreduced = "ff" * 31 + "7f"
    for bad in (unreduced, "00" * 32, tx_key + unreduced):
        with pytest.raises(CannotPrepare, match="not a tx key"):
            await chain.check_tx_key(txid, bad, customer)
    with pytest.raises(CannotPrepare, match="does not know this txid"):
        await chain.check_tx_key(secrets.token_hex(32), tx_key, customer)
    with pytest.raises(CannotPrepare, match="64 hex"):
        await chain.check_tx_key(txid[:-1], tx_key, customer)
    with pytest.raises(CannotPrepare, match="64 hex"):
        await chain.check_tx_key(txid, tx_key[:-2], customer)
    # The last character changed (never to itself: the address is random).
    last = "y" if customer.endswith("x") else "x"
    with pytest.raises(BadRefundAddress):
        await chain.check_tx_key(txid, tx_key, customer[:-1] + last)


async def test_a_refund_to_a_subaddress(monero: MoneroRegtest, chain: MoneroChain) -> None:
    subaddress = str(monero.miner.rpc("create_address", account_index=0)["address"])
    assert subaddress.startswith("8")
    assert chain.check_address("XMR", subaddress) == subaddress
    txid = monero.pay([(subaddress, 3 * XMR // 10)])
    tx_key = str(monero.miner.rpc("get_tx_key", txid=txid)["tx_key"])
    found = await chain.check_tx_key(txid, tx_key, subaddress)
    assert found.received == 3 * XMR // 10


def typo_of(address: str) -> str:
    """One character changed, still readable as base58 (a checksum error, nothing else)."""
    for c in "ABCDEFGH":
        typo = address[:50] + c + address[51:]
        if typo != address:
            try:
                b58decode(typo)
            except ValueError:
                continue
            return typo
    raise AssertionError("no typo found")


async def test_addresses(monero: MoneroRegtest, chain: MoneroChain) -> None:
    primary = monero.miner_address
    integrated = str(monero.miner.rpc("make_integrated_address")["integrated_address"])
    assert len(integrated) == 106
    for good in (primary, integrated):
        assert chain.check_address("XMR", good) == good
        assert monero.miner.rpc("validate_address", address=good)["valid"]
    typo = typo_of(primary)
    stagenet, testnet = with_prefix(primary, STAGENET), with_prefix(primary, TESTNET)
    assert stagenet[0] == "5" and testnet[0] in "9A"
    for bad, reason in [("", "no address"), (typo, "checksum"), (primary[:-3], "length"),
                        ("0x52908400098527886E0F7030069857D2E4169EE7", "not a Monero"),
                        (stagenet, "stagenet address"), (testnet, "testnet address"),
                        (with_prefix(primary, 99), "unknown prefix")]:
        with pytest.raises(BadRefundAddress, match=reason):
            chain.check_address("XMR", bad)
    with pytest.raises(BadRefundAddress):
        chain.check_address("LTC", primary)
