"""Money never credited wrongly: partial, over, late, reorgs and replacements, on the whole
gateway against a real Litecoin regtest node."""

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from tests.e2e.conftest import Stack, StackFactory
from tests.support.stack import eventually

DUE = Decimal("0.124875")  # 9.99 EUR at 80 EUR/LTC


def status(s: str, exc: str | None = None) -> Callable[[dict[str, Any]], bool]:
    return lambda d: d["status"] == s and d["exception"] == exc


def confirmations(n: int) -> Callable[[dict[str, Any]], bool]:
    return lambda d: bool(d["payments"]) and all(
        p["confirmations"] == n for p in d["payments"] if p["status"] != "reverted")


async def new_invoice(stack: Stack, tag: str) -> dict[str, Any]:
    account = await stack.signup(f"{tag}-{time.monotonic_ns()}@example.org")
    return await stack.invoice(account["id"])


async def test_two_payments_together_settle_and_a_short_one_expires_partial(
    make_stack: StackFactory,
) -> None:
    stack = await make_stack(GATEWAY_INVOICES__EXPIRY_MINUTES="0.15")
    together = await new_invoice(stack, "together")
    short = await new_invoice(stack, "short")
    half = DUE / 2
    stack.node.send(together["address"], str(half))
    stack.node.send(short["address"], str(half))
    await stack.until(together["id"], status("new", "paid_partial"), "partial")
    stack.node.send(together["address"], str(DUE - half))
    await stack.until(together["id"], status("processing"), "processing")
    stack.node.mine(3)
    done = await stack.until(together["id"], status("settled"), "settled")
    assert len(done["payments"]) == 2 and done["amount_paid"] == str(DUE)

    partial = await stack.until(short["id"], status("new", "paid_partial"), "partial")
    assert partial["amount_paid"] == str(half)
    await stack.until(short["id"], status("expired", "paid_partial"), "expired partial")
    expired = await stack.receiver.wait_for("invoice.expired")
    assert expired.doc["data"]["exception"] == "paid_partial"


async def test_overpayment_settles_paid_over(make_stack: StackFactory) -> None:
    stack = await make_stack()
    invoice = await new_invoice(stack, "over")
    stack.node.send(invoice["address"], str(DUE + Decimal("0.01")))
    stack.node.mine(3)
    await stack.until(invoice["id"], status("settled", "paid_over"), "settled paid_over")


async def test_late_payment_is_flagged_and_settles_only_when_accepted(
    make_stack: StackFactory,
) -> None:
    strict = await make_stack(GATEWAY_INVOICES__EXPIRY_MINUTES="0.05")
    lenient = await make_stack(GATEWAY_INVOICES__EXPIRY_MINUTES="0.05",
                               GATEWAY_INVOICES__ACCEPT_LATE_PAYMENTS="true")
    invoices = [(s, await new_invoice(s, "late")) for s in (strict, lenient)]
    for stack, invoice in invoices:
        await stack.until(invoice["id"], status("expired"), "expired")
        stack.node.send(invoice["address"], str(DUE))
    for stack, invoice in invoices:
        await stack.until(invoice["id"], status("expired", "paid_late"), "paid_late")
    strict.node.mine(3)
    (s1, i1), (s2, i2) = invoices
    await s2.until(i2["id"], status("settled", "paid_late"), "late settles when accepted")
    await s1.until(i1["id"], confirmations(3), "strict invoice sees confirmations")
    assert (await s1.read(i1["id"]))["status"] == "expired"
    assert not s1.receiver.of_type("invoice.settled")
    await s2.receiver.wait_for("account.activated")


async def test_reorgs_before_settlement_never_settle_early(make_stack: StackFactory) -> None:
    stack = await make_stack(GATEWAY_COINS__LTC__CONFIRMATIONS="4")
    node = stack.node
    invoice = await new_invoice(stack, "reorg")
    txid = node.send(invoice["address"], str(DUE))
    await stack.until(invoice["id"], status("processing"), "processing")

    # depth 1: the block holding the payment is the tip
    [first] = node.mine(1)
    await stack.until(invoice["id"], confirmations(1), "1 confirmation")
    node.rpc("invalidateblock", first)
    back = await stack.until(invoice["id"], confirmations(0), "back to 0 after reorg")
    assert back["status"] == "processing" and back["payments"][0]["status"] == "pending"

    # depth 3: payment block plus two above it leave the chain
    blocks = node.mine(3)
    await stack.until(invoice["id"], confirmations(3), "3 confirmations")
    node.rpc("invalidateblock", blocks[0])
    await stack.until(invoice["id"], confirmations(0), "back to 0 after 3-deep reorg")
    assert (await stack.read(invoice["id"]))["status"] == "processing"

    node.mine(3)
    regrown = await stack.until(invoice["id"], confirmations(3), "regrown to 3")
    assert regrown["status"] == "processing"  # 4 needed: not early
    node.mine(1)
    settled = await stack.until(invoice["id"], status("settled"), "settled after regrowth")
    assert [p["txid"] for p in settled["payments"]] == [txid]  # counted once
    await stack.receiver.wait_for("invoice.settled")
    # No second event, up to a later one: the watcher makes another pass, then the same
    # account gets a new invoice. One account's deliveries go out in the order of its
    # events, so a duplicate written before that invoice.created arrives before it.
    node.mine(1)
    await stack.until(invoice["id"], confirmations(5), "a pass after settlement")
    later = await stack.invoice(settled["account_id"])
    await eventually(lambda: any(d.doc["data"]["invoice_id"] == later["id"]
                                 for d in stack.receiver.of_type("invoice.created")),
                     20, "invoice.created of the later invoice")
    assert len(stack.receiver.of_type("invoice.settled")) == 1
    assert len(stack.receiver.of_type("invoice.payment_received")) == 1


async def test_reorg_after_settlement_flags_reverted(make_stack: StackFactory) -> None:
    stack = await make_stack()
    node = stack.node
    invoice = await new_invoice(stack, "after")
    node.send(invoice["address"], str(DUE))
    blocks = node.mine(3)
    await stack.until(invoice["id"], status("settled"), "settled")
    node.rpc("invalidateblock", blocks[0])
    reverted = await stack.until(invoice["id"],
                           status("settled", "reverted_after_settlement"), "reverted flag")
    assert reverted["settled_at"]
    event = await stack.receiver.wait_for("invoice.payment_reverted")
    assert event.doc["data"]["exception"] == "reverted_after_settlement"
    node.mine(4)  # the same transaction is mined again in a different block
    again = await stack.until(invoice["id"], confirmations(4), "re-mined")
    assert again["status"] == "settled" and len(again["payments"]) == 1
    assert len(stack.receiver.of_type("invoice.payment_reverted")) == 1


async def test_replace_by_fee_counts_only_the_replacement(make_stack: StackFactory) -> None:
    stack = await make_stack()
    node = stack.node
    invoice = await new_invoice(stack, "rbf")
    original = node.send(invoice["address"], str(DUE), replaceable=True)
    await stack.until(invoice["id"], status("processing"), "processing")
    replacement = node.rpc("bumpfee", original, wallet=node.wallet)["txid"]

    def replaced(doc: dict[str, Any]) -> bool:
        states = {p["txid"]: p["status"] for p in doc["payments"]}
        return states.get(original) == "reverted" and states.get(replacement) == "pending"

    doc = await stack.until(invoice["id"], replaced, "replacement seen, original reverted")
    assert doc["amount_paid"] == str(DUE) and doc["status"] == "processing"
    node.mine(3)
    settled = await stack.until(invoice["id"], status("settled"), "settled")
    assert settled["amount_paid"] == str(DUE)
    live = [p["txid"] for p in settled["payments"] if p["status"] != "reverted"]
    assert live == [replacement]


async def test_paid_in_time_while_the_gateway_was_down_is_not_late(
    make_stack: StackFactory,
) -> None:
    """Paid and mined before expiry while the gateway was down, first seen after expiry:
    judged by the block's time (default tolerance), it settles, never `paid_late`; so does
    one paid in time and still in the node's mempool at restart. A payment whose block
    came after expiry (plus the tolerance) is still late."""
    stack = await make_stack(GATEWAY_INVOICES__EXPIRY_MINUTES="0.15")
    node = stack.node
    on_time = await new_invoice(stack, "down-on-time")
    late = await new_invoice(stack, "down-late")
    unmined = await new_invoice(stack, "down-unmined")
    expires = datetime.fromisoformat(on_time["expires_at"])

    await stack.gateway.stop()
    node.send(on_time["address"], str(DUE))
    [paid_block] = node.mine(1)
    assert datetime.fromtimestamp(node.rpc("getblockheader", paid_block)["time"], UTC) < (
        expires + timedelta(minutes=10))  # regtest's own clock drift stays inside it
    # The late payment is mined in a block stamped past expiry plus the tolerance (the
    # node's clock moved on rather than the test waiting 11 minutes).
    node.rpc("setmocktime", int((expires + timedelta(minutes=11)).timestamp()))
    try:
        node.send(late["address"], str(DUE))
        node.mine(1)
    finally:
        node.rpc("setmocktime", 0)
    unmined_tx = node.send(unmined["address"], str(DUE))
    assert datetime.now(UTC) < datetime.fromisoformat(unmined["expires_at"])
    while datetime.now(UTC) <= datetime.fromisoformat(unmined["expires_at"]):
        await asyncio.sleep(0.2)  # all three expire while the gateway is down

    await stack.gateway.start()
    await stack.until(on_time["id"], lambda d: d["status"] in ("processing", "settled")
                      and len(d["payments"]) == 1, "the payment found after restart")
    await stack.until(late["id"], status("expired", "paid_late"), "late stays late")
    pending = await stack.until(unmined["id"], status("processing"), "seen in time, unmined")
    assert [p["txid"] for p in pending["payments"]] == [unmined_tx]
    node.mine(2)
    settled = await stack.until(on_time["id"], status("settled"), "settled after restart")
    assert settled["amount_paid"] == str(DUE)
    assert (await stack.receiver.wait_for("account.activated")).doc["data"]["account_id"] == (
        on_time["account_id"])
    await stack.until(late["id"], confirmations(3), "late payment confirmed")
    assert (await stack.read(late["id"]))["status"] == "expired"
    node.mine(1)
    await stack.until(unmined["id"], status("settled"), "unmined one settles when mined")

    def settled_ids() -> set[str]:
        return {d.doc["data"]["invoice_id"]
                for d in stack.receiver.of_type("invoice.settled")}

    # The webhook follows the commit that the API already shows: wait for its delivery.
    await eventually(lambda: len(settled_ids()) >= 2, 20, "both settled webhooks")
    assert settled_ids() == {on_time["id"], unmined["id"]}
