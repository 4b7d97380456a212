"""An approved refund's address is watched like one of our own: the payment the
operator's wallet sends is `sent` when seen, `completed` at the coin's depth (once, with
one `refund.completed`), and back to waiting when its block leaves the chain or the
transaction is replaced. The tracker and the real watcher loop on the fake family and a
real SQLite file."""

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.domain.refund_chain import ChainState, RefundWatch
from gateway.domain.refunds import Quote, Refund
from tests.support.fake_gateway import World, fake_world

AMOUNT = 2_000_000
CUSTOMER = bytes.fromhex("00" * 20)  # the customer's address, as the fake family keys it


@pytest.fixture(scope="module")
def template_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("template")


@pytest.fixture
async def world(tmp_path: Path, template_dir: Path, database_url: str
                ) -> AsyncIterator[World]:
    async with fake_world(tmp_path, template_dir, db_url=database_url) as w:
        yield w


async def watch(world: World, refund_id: str = "rf_1", key: bytes = CUSTOMER,
                amount: int = AMOUNT) -> None:
    """An approved refund, as the finance member's last approval leaves it."""
    account_id = await world.account()
    refund = Refund.request(id=refund_id, account_id=account_id, amount=500,
                            currency="EUR", coin="FAK", address="fake1" + key.hex(),
                            now=world.clock())
    refund.approve("stf_1", "checked", world.clock(),
                   Quote(amount, "80", f"fake:fake1{key.hex()}?value={amount}"))
    async with world.gw.sql_uow() as uow:
        await uow.refunds.add(refund)
        await uow.refunds.save(refund)
        added = await uow.refund_watches.add(
            RefundWatch(refund_id, account_id, "FAK", key, amount, 3),
            world.follower.address_space, world.clock())
        assert added
        again = await uow.refund_watches.add(
            RefundWatch(refund_id, "acc_other", "FAK", key, amount, 3),
            world.follower.address_space, world.clock())
        assert not again  # one watch per refund
        await uow.commit()


async def state(world: World, refund_id: str = "rf_1") -> tuple[str, str | None]:
    """The watch's state, which the refund itself follows (approved while waiting)."""
    [row] = await world.sql("SELECT state, txid FROM refund_watches WHERE refund_id = :r",
                            r=refund_id)
    async with world.gw.sql_uow() as uow:
        refund = await uow.refunds.get(refund_id)
    assert refund is not None
    assert refund.status == {"waiting": "approved"}.get(row.state, row.state), \
        (refund.status, row.state)
    assert refund.txid == row.txid
    return row.state, row.txid


async def completed_events(world: World) -> list[dict[str, object]]:
    rows = await world.sql("SELECT body FROM events WHERE type = 'refund.completed'")
    return [json.loads(r.body)["data"] for r in rows]


async def test_sent_when_seen_and_completed_at_depth_once(world: World) -> None:
    await watch(world)
    await world.start()
    txid = world.node.pay([("FAK", CUSTOMER, AMOUNT)])
    await world.idle()
    assert await state(world) == ("sent", txid)
    world.node.mine(2)
    await world.idle()
    assert await state(world) == ("sent", txid)  # two of three confirmations
    world.node.mine(1)
    await world.idle()
    assert await state(world) == ("completed", txid)
    world.node.mine(3)
    await world.idle()
    [event] = await completed_events(world)
    assert event["refund_id"] == "rf_1" and event["txid"] == txid
    assert CUSTOMER.hex() not in json.dumps(event)  # never the address


async def test_only_an_output_of_the_refund_s_amount_is_the_refund(world: World) -> None:
    """The customer's address may be an exchange's deposit address: other deposits (too
    little, several small ones, far more) are not the refund."""
    await watch(world)
    await world.start()
    world.node.pay([("FAK", CUSTOMER, AMOUNT - 1)])
    world.node.pay([("FAK", CUSTOMER, 1)])
    world.node.pay([("FAK", CUSTOMER, 10 * AMOUNT)])
    world.node.mine(4)
    await world.idle()
    assert await state(world) == ("waiting", None)
    rounded_up = world.node.pay([("FAK", CUSTOMER, AMOUNT + AMOUNT // 100)])  # 1 % more
    await world.idle()
    assert await state(world) == ("sent", rounded_up)
    world.node.mine(3)
    await world.idle()
    assert await state(world) == ("completed", rounded_up)


async def test_a_reorg_before_depth_takes_it_back_to_waiting(world: World) -> None:
    await watch(world)
    await world.start()
    world.node.pay([("FAK", CUSTOMER, AMOUNT)])
    [block] = world.node.mine(1)
    await world.idle()
    assert (await state(world))[0] == "sent"
    world.node.invalidate(block)  # the transaction goes back to the mempool
    await world.idle()
    assert (await state(world))[0] == "sent"  # still paid, unconfirmed
    txid = next(iter(world.node.mempool))
    world.node.drop(txid)  # and then it is gone for good
    world.node.mine(1)
    await world.idle()
    assert await state(world) == ("waiting", None)
    assert await completed_events(world) == []


async def test_a_replaced_transaction_counts_by_its_replacement(world: World) -> None:
    await watch(world)
    await world.start()
    first = world.node.pay([("FAK", CUSTOMER, AMOUNT)])
    await world.idle()
    assert await state(world) == ("sent", first)
    second = world.node.replace(first)
    await world.idle()
    assert await state(world) == ("sent", second)
    world.node.mine(3)
    await world.idle()
    assert await state(world) == ("completed", second)
    [event] = await completed_events(world)
    assert event["txid"] == second


async def test_a_completed_refund_is_final_and_no_longer_matched(world: World) -> None:
    await watch(world)
    await world.start()
    world.node.pay([("FAK", CUSTOMER, AMOUNT)])
    world.node.mine(3)
    await world.idle()
    assert (await state(world))[0] == "completed"
    world.node.pay([("FAK", CUSTOMER, AMOUNT)])  # the customer's address used again
    world.node.mine(1)
    await world.idle()
    assert len(await world.sql("SELECT id FROM refund_outputs")) == 1
    assert len(await completed_events(world)) == 1


async def test_a_watch_added_while_following_is_picked_up(world: World) -> None:
    await world.start()
    await world.idle()
    await watch(world, "rf_late")
    world.node.pay([("FAK", CUSTOMER, AMOUNT)])
    await world.idle()
    assert (await state(world, "rf_late"))[0] == "sent"


def test_the_domain_rule_alone() -> None:
    from datetime import UTC, datetime

    from gateway.domain.refund_chain import Progress, Sighting, progress

    assert progress(10, 3, []).state is ChainState.WAITING
    assert progress(10, 3, [Sighting("a", 0, 10, 0)]).state is ChainState.SENT
    assert progress(10, 3, [Sighting("a", 0, 5, 3), Sighting("b", 0, 5, 3)]).state \
        is ChainState.WAITING  # outputs do not add up
    assert progress(1000, 3, [Sighting("a", 0, 1011, 3)]).state is ChainState.WAITING
    assert progress(1000, 3, [Sighting("a", 0, 1010, 0), Sighting("b", 0, 1000, 4)]) \
        == Progress(ChainState.COMPLETED, "b")  # the deepest that pays it
    assert progress(10, 3, [Sighting("a", 0, 10, 3)]).state is ChainState.COMPLETED
    assert progress(10, 3, [Sighting("a", 0, 10, 3, reverted=True)]).state \
        is ChainState.WAITING
    w = RefundWatch("r", "a", "FAK", b"k", 10, 3)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert w.observe([Sighting("a", 0, 10, 1)], now) and w.sent_at == now
    assert not w.observe([Sighting("a", 0, 10, 1)], now)
    assert w.observe([Sighting("a", 0, 10, 3)], now) and w.state is ChainState.COMPLETED
    assert not w.observe([], now)  # completed is final


async def test_a_payment_dropped_while_the_gateway_was_down_unsends_it(world: World) -> None:
    await watch(world)
    await world.start()
    txid = world.node.pay([("FAK", CUSTOMER, AMOUNT)])
    await world.idle()
    assert await state(world) == ("sent", txid)
    await world.stop()
    world.node.drop(txid)  # evicted while nobody was watching
    await world.start()
    await world.idle()
    assert await state(world) == ("waiting", None)
