"""The turn to write: urgent writers (the watcher, webhook deliveries) before the queued
others, first come first served within each queue, and a waiter cancelled (a timeout)
never keeps or loses the turn."""

import asyncio

import pytest

from gateway.adapters.db.turn import WriteTurn


async def _writer(turn: WriteTurn, name: str, urgent: bool, order: list[str]) -> None:
    await turn.acquire(urgent)
    order.append(name)
    await asyncio.sleep(0)
    turn.release()


async def test_urgent_waiters_go_first_and_each_queue_in_order() -> None:
    turn = WriteTurn()
    await turn.acquire()
    order: list[str] = []
    tasks = [asyncio.create_task(_writer(turn, name, urgent, order))
             for name, urgent in [("r1", False), ("r2", False), ("w1", True), ("r3", False),
                                  ("w2", True)]]
    await asyncio.sleep(0)  # all queued behind the holder
    turn.release()
    await asyncio.gather(*tasks)
    assert order == ["w1", "w2", "r1", "r2", "r3"]
    assert not turn.locked()


async def test_a_free_turn_is_taken_at_once_by_anyone() -> None:
    turn = WriteTurn()
    await turn.acquire()
    assert turn.locked()
    turn.release()
    assert not turn.locked()
    await asyncio.wait_for(turn.acquire(urgent=True), 1)
    turn.release()


async def test_a_cancelled_waiter_leaves_the_queue() -> None:
    turn = WriteTurn()
    await turn.acquire()
    gone = asyncio.create_task(turn.acquire(urgent=True))
    order: list[str] = []
    kept = asyncio.create_task(_writer(turn, "r1", False, order))
    await asyncio.sleep(0)
    gone.cancel()
    with pytest.raises(asyncio.CancelledError):
        await gone
    turn.release()
    await kept
    assert order == ["r1"] and not turn.locked()


async def test_a_waiter_cancelled_as_it_was_handed_the_turn_passes_it_on() -> None:
    turn = WriteTurn()
    await turn.acquire()
    handed = asyncio.create_task(turn.acquire(urgent=True))
    order: list[str] = []
    after = asyncio.create_task(_writer(turn, "r1", False, order))
    await asyncio.sleep(0)
    turn.release()  # hands the turn to `handed`, which has not run yet...
    handed.cancel()  # ...and is cancelled before it does (a timeout firing)
    with pytest.raises(asyncio.CancelledError):
        await handed
    await asyncio.wait_for(after, 1)  # the turn went on; nobody holds it forever
    assert order == ["r1"] and not turn.locked()
