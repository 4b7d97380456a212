"""Refunds without a key on the server (chains.refunds), for every registered family
through its driver: the customer's address is checked and normalised, refused with a
reason when it is not payable here; a refund paid to it is recognised (its match key is
watched like one of ours) or, for a family that cannot watch it, proven by a tx key;
the instructions carry the address, the amount and the family's payment URI, and the
outputs they spend are among those offered."""

import pytest

from chains.base import BlockConnected, Destination, MempoolSeen, Observed
from chains.refunds import (
    BadRefundAddress,
    CannotPrepare,
    Refundable,
    Spendable,
    TxKeyCheckable,
)
from tests.contract.drivers import Driver
from tests.contract.harness import SetWatchlist, Stream


def refundable(driver: Driver) -> Refundable:
    follower = driver.follower
    assert isinstance(follower, Refundable)
    return follower


async def test_the_address_is_checked_and_normalised(driver: Driver) -> None:
    follower = refundable(driver)
    address = driver.customer_address()
    assert follower.check_address(driver.coin, address) == address
    assert follower.check_address(driver.coin, driver.denormalised(address)) == address
    for bad in ("", "   ", "not an address", driver.foreign_address(), address[:-4]):
        with pytest.raises(BadRefundAddress) as refused:
            follower.check_address(driver.coin, bad)
        assert str(refused.value)  # a reason to show the customer
    with pytest.raises(BadRefundAddress):
        follower.check_address("NOPE", address)


async def own_payments(driver: Driver, indexes: list[int], base_units: int
                       ) -> list[Spendable]:
    """Payments to our own destinations, mined, as the follower reports them."""
    destinations = await driver.follower.allocate(indexes)
    watched = SetWatchlist()
    watched.keys.update(d.match_key for d in destinations)
    by_key = {d.match_key: d for d in destinations}
    stream = Stream(driver.follower, await driver.follower.tip(), watched)
    seen: dict[bytes, Observed] = {}
    try:
        driver.pay_many(destinations, base_units)
        driver.mine(1)
        while len(seen) < len(destinations):
            event = await stream.until(BlockConnected, timeout=30)
            assert isinstance(event, BlockConnected)
            seen.update({p.match_key: p for p in event.payments})
    finally:
        await stream.aclose()
    return [Spendable(o.txid, o.index, o.amount, key, by_key[key].index)
            for key, o in seen.items()]


async def test_instructions(driver: Driver) -> None:
    follower = refundable(driver)
    spendable = await own_payments(driver, [700, 701], 40_000_000)
    address = driver.customer_address()
    refund = await follower.prepare_refund(driver.coin, driver.denormalised(address),
                                           50_000_000, spendable, 0)
    assert (refund.coin, refund.address, refund.amount) == (driver.coin, address, 50_000_000)
    assert refund.uri == driver.expected_uri(Destination(0, address, b""), 50_000_000)
    assert set(refund.spends) <= {(s.txid, s.output_index) for s in spendable}
    if refund.psbt is not None:  # a PSBT spends what it says, for the fee it says
        assert refund.fee is not None and refund.fee > 0
        assert len(refund.spends) == 2  # 40 + 40 for 50: both
    with pytest.raises(CannotPrepare) as refused:
        await follower.prepare_refund(driver.coin, address, 0, spendable, 0)
    assert str(refused.value)
    with pytest.raises(BadRefundAddress):
        await follower.prepare_refund(driver.coin, driver.foreign_address(), 50_000_000,
                                      spendable, 0)


async def test_a_payment_to_the_refund_address_is_recognised(driver: Driver) -> None:
    follower = refundable(driver)
    address = driver.customer_address()
    key = follower.refund_match_key(driver.coin, driver.denormalised(address))
    if key is None:  # the family cannot watch it: a tx key proves the refund instead
        # (proven on monerod in tests/integration/test_monero_refund.py, with a
        # wallet-rpc of its own; the fake family's in tests/unit/).
        assert isinstance(follower, TxKeyCheckable)
        return
    watched = SetWatchlist()
    watched.keys.add(key)
    stream = Stream(driver.follower, await driver.follower.tip(), watched)
    try:
        txid = driver.pay(Destination(0, address, key), 30_000_000)
        driver.mine(1)
        found: list[Observed] = []
        while not found:
            event = await stream.next_event()
            if isinstance(event, MempoolSeen | BlockConnected):
                found = [p for p in event.payments if p.txid == txid]
        assert [(p.match_key, p.amount, p.coin) for p in found] == [
            (key, 30_000_000, driver.coin)]
    finally:
        await stream.aclose()
