"""The fake family's refunds, which the gateway's in-process tests rely on: watchable
by default (its match key), or proven by a tx key (`refunds_watchable = false`, as
Monero); deterministic instructions; a refusal on demand."""

from uuid import uuid4

import pytest

from chains.refunds import BadRefundAddress, CannotPrepare, Spendable
from tests.support import fake_family
from tests.support.fake_family import FakeFollower, FakeSettings


def follower(watchable: bool = True) -> tuple[FakeFollower, fake_family.FakeNode]:
    name = f"refunds-{uuid4().hex[:8]}"
    node = fake_family.reset(name)
    settings = FakeSettings(kind="fake", node=name, refunds_watchable=watchable)
    [built] = fake_family.build({"FAK": settings})
    assert isinstance(built, FakeFollower)
    return built, node


async def test_watchable_instructions() -> None:
    f, node = follower()
    address = "fake1" + "ab" * 20
    assert f.check_address("FAK", address.upper()) == address
    assert f.refund_match_key("FAK", address) == bytes.fromhex("ab" * 20)
    offered = [Spendable(f"t{n}", 0, amount, b"k", n) for n, amount in enumerate([5, 30, 20])]
    refund = await f.prepare_refund("FAK", address, 40, offered, 0)
    assert refund.uri == f"fake:{address}?coin=FAK&value=40"
    assert refund.spends == (("t1", 0), ("t2", 0))
    assert (await f.prepare_refund("FAK", address, 400, offered, 0)).spends == ()
    node.refund_refusal = "not today"
    with pytest.raises(CannotPrepare, match="not today"):
        await f.prepare_refund("FAK", address, 40, offered, 0)
    with pytest.raises(BadRefundAddress):
        f.check_address("FAK", "fake1xyz")
    with pytest.raises(BadRefundAddress):
        f.check_address("BTC", address)


async def test_proven_by_a_tx_key() -> None:
    f, node = follower(watchable=False)
    address = "fake1" + "cd" * 20
    assert f.refund_match_key("FAK", address) is None
    txid, key = node.pay_with_key([("FAK", bytes.fromhex("cd" * 20), 70)])
    pooled = await f.check_tx_key(txid, key, address)
    assert (pooled.received, pooled.confirmations, pooled.in_pool) == (70, 0, True)
    node.mine(3)
    mined = await f.check_tx_key(txid, key, address)
    assert (mined.received, mined.confirmations, mined.in_pool) == (70, 3, False)
    with pytest.raises(CannotPrepare, match="does not prove"):
        await f.check_tx_key(txid, "00" * 32, address)
    with pytest.raises(CannotPrepare, match="does not know"):
        await f.check_tx_key("ff" * 32, key, address)
