"""SIGKILL the gateway between broadcast and confirmation; nothing is lost or doubled."""

import asyncio
import time

import pytest
from standardwebhooks.webhooks import Webhook

from tests.e2e.conftest import StackFactory
from tests.support.stack import eventually


@pytest.mark.parametrize("seen_before_kill", [True, False], ids=["seen", "unseen"])
async def test_sigkill_between_broadcast_and_confirmation(
    make_stack: StackFactory, seen_before_kill: bool
) -> None:
    stack = await make_stack(process=True)  # SIGKILL
    account = await stack.signup(f"crash-{seen_before_kill}@example.org")
    invoice = await stack.invoice(account["id"])
    txid = stack.node.send(invoice["address"], invoice["amount_due"])
    if seen_before_kill:
        await stack.wait_status(invoice["id"], "processing")
    await stack.gateway.kill()

    stack.node.mine(4)  # confirmed while the gateway is down
    await stack.gateway.start()
    settled = await stack.wait_status(invoice["id"], "settled")
    assert [p["txid"] for p in settled["payments"]] == [txid]

    await stack.receiver.wait_for("account.activated")
    await stack.receiver.wait_for("invoice.settled")
    for delivery in stack.receiver.deliveries:
        Webhook(stack.endpoint["secret"]).verify(delivery.body, delivery.headers)
    # Room for any duplicate to show up, up to a later event: one account's deliveries
    # go out in the order of its events (a delivery the killed process held is sent
    # again when its lease ends, before the account's later ones), so every duplicate
    # has arrived once the new invoice's invoice.created has.
    later = await stack.invoice(account["id"])
    await eventually(lambda: any(d.doc["data"]["invoice_id"] == later["id"]
                                 for d in stack.receiver.of_type("invoice.created")),
                     60, "invoice.created of a later invoice")
    # One event per transition. Delivery is at least once: a delivery sent just before
    # the kill, its result not yet written, goes out again after the restart with the
    # same webhook-id (receivers deduplicate on it, WEBHOOKS.md); never a second event.
    for kind in ("invoice.settled", "account.activated", "invoice.payment_received"):
        ids = {d.headers["webhook-id"] for d in stack.receiver.of_type(kind)}
        assert len(ids) == 1, (kind, ids)
    assert await stack.scalar("SELECT count(*) FROM events WHERE type = 'invoice.settled'") == 1

    assert await stack.scalar("SELECT count(*) FROM payments WHERE txid = :t", t=txid) == 1


async def test_events_committed_before_a_crash_are_delivered_after_restart(
    make_stack: StackFactory,
) -> None:
    # The receiver is down (500) when the event is written; the gateway is killed with the
    # delivery pending; the pending retry survives in the database.
    stack = await make_stack(script=[500], event_types=["account.created"], process=True)
    await stack.signup("outbox@example.org")
    # Kill once the failed attempt is recorded and its retry is pending in the database.
    # (Killed before that, the delivery stays leased for a minute: the mid-flight case,
    # covered by the three-instance test.)
    deadline = time.monotonic() + 10
    while not await stack.scalar(
            "SELECT count(*) FROM deliveries WHERE attempts >= 1 AND status = 'pending'"):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    await stack.gateway.kill()
    await stack.gateway.start()
    delivery = await stack.receiver.wait_for("account.created")
    ids = {a.headers["webhook-id"] for a in stack.receiver.attempts}
    assert len(ids) == 1 and delivery.headers["webhook-id"] in ids
