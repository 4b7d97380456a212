"""Prepaid time against double-spends, on a real litecoind as an attacker would do it
(issue 27 items 2 and 16), with `overpayment_buys_periods = true`:

- the price is paid and confirmed, and 35 times the price waits in the mempool when the
  invoice settles, then is double-spent: one period is bought, not 36;
- a settled plan invoice whose payment a reorg takes out and a double-spend replaces gives
  its time back (`account.time_revoked`), over HTTP and by webhook."""

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from gateway.domain.timestamps import parse_time
from tests.e2e.conftest import Stack, StackFactory
from tests.support.double_spend import double_spend
from tests.support.stack import eventually

ENV = {
    "GATEWAY_PLANS": json.dumps({"vps": {"price": "8.00", "currency": "EUR",
                                         "period": "30 days"}}),
    "GATEWAY_BILLING__OVERPAYMENT_BUYS_PERIODS": "true",
}
DAY = 86400


async def me(stack: Stack, token: str) -> dict[str, Any]:
    return await stack.api.ok("GET", "/v1/me", token=token)


def account_events(stack: Stack, account_id: str) -> list[tuple[str, dict[str, Any]]]:
    return [(d.type, d.doc["data"]) for d in stack.receiver.deliveries
            if d.type.startswith("account.") and d.type != "account.created"
            and d.doc["data"].get("account_id") == account_id]


async def test_a_double_spent_overpayment_buys_nothing_and_a_reverted_one_is_taken_back(
        make_stack: StackFactory) -> None:
    stack = await make_stack(**ENV)  # LTC needs 3 confirmations
    node = stack.node
    email, password = "double-spender@example.org", "double spend password"
    account = await stack.signup(email, password)
    token = await stack.login(email, password)

    first = await stack.api.ok("POST", "/v1/me/invoices", {"plan": "vps", "coin": "LTC"},
                               token)
    due = Decimal(first["amount_due"])
    node.send(first["address"], str(due))
    node.mine(2)
    huge = node.send(first["address"], str(due * 35), replaceable=True)
    await stack.until(first["id"], lambda d: any(p["txid"] == huge for p in d["payments"]),
                      "the 35x payment seen in the mempool")
    # Kept out of the next block (its fee counts as negative to this node's miner).
    node.rpc("prioritisetransaction", huge, 0, -10_000_000)
    node.mine(1)
    settled = await stack.wait_status(first["id"], "settled")
    assert {p["txid"]: p["confirmations"] for p in settled["payments"]}[huge] == 0
    await eventually(lambda: bool(account_events(stack, account["id"])), 20,
                     "account.activated")
    bought = parse_time((await me(stack, token))["paid_until"])
    activated_at = parse_time(account_events(stack, account["id"])[0][1]["paid_until"])
    assert bought == activated_at
    assert (bought - datetime.now(UTC)).total_seconds() <= 30 * DAY, "one period only"

    double_spend(node, huge)
    await stack.until(first["id"], lambda d: {p["txid"]: p["status"]
                                               for p in d["payments"]}[huge] == "reverted",
                      "the 35x payment reverted")
    node.mine(1)
    assert parse_time((await me(stack, token))["paid_until"]) == bought
    assert [t for t, _ in account_events(stack, account["id"])] == ["account.activated"]

    # A second plan invoice, paid and settled, then reorged out and double-spent.
    second = await stack.api.ok("POST", "/v1/me/invoices", {"plan": "vps", "coin": "LTC"},
                                token)
    paid = node.send(second["address"], second["amount_due"], replaceable=True)
    blocks = node.mine(3)
    await stack.wait_status(second["id"], "settled")
    await eventually(lambda: len(account_events(stack, account["id"])) == 2, 20,
                     "account.renewed")
    extended = parse_time((await me(stack, token))["paid_until"])
    assert round((extended - bought).total_seconds()) == 30 * DAY

    node.rpc("invalidateblock", blocks[0])
    await stack.until(second["id"], lambda d: d["exception"] == "reverted_after_settlement",
                      "reverted_after_settlement")
    double_spend(node, paid)
    node.mine(4)
    await eventually(lambda: len(account_events(stack, account["id"])) == 3, 30,
                     "account.time_revoked")
    kind, revoked = account_events(stack, account["id"])[2]
    assert kind == "account.time_revoked"
    assert (revoked["invoice_id"], revoked["periods"], revoked["billing_state"]) == (
        second["id"], 1, "active")
    now = await me(stack, token)
    assert parse_time(now["paid_until"]) == bought == parse_time(revoked["paid_until"])
    assert now["billing_state"] == "active"
