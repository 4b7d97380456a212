import asyncio
import json
from typing import Any

from tests.e2e.conftest import Stack, StackFactory


async def invoice_count(stack: Stack) -> int:
    return await stack.count("invoices")


def body(account_id: str, amount: str = "9.99") -> dict[str, Any]:
    return {"account_id": account_id, "price": {"amount": amount, "currency": "EUR"},
            "coin": "LTC"}


async def test_idempotency_key_semantics(make_stack: StackFactory) -> None:
    stack = await make_stack()
    account = await stack.signup("idem@example.org")
    key = {"Idempotency-Key": "order-42"}
    first = await stack.api.call("POST", "/v1/invoices", body(account["id"]), stack.key,
                                 headers=key)
    again = await stack.api.call("POST", "/v1/invoices", body(account["id"]), stack.key,
                                 headers=key)
    assert first[0] == again[0] == 201
    assert first[1]["id"] == again[1]["id"] and first[1]["address"] == again[1]["address"]
    assert again[2].get("Idempotent-Replayed") == "true"
    assert await invoice_count(stack) == 1

    other = await stack.api.call("POST", "/v1/invoices", body(account["id"], "1.00"),
                                 stack.key, headers=key)
    assert other[0] == 422 and "different request" in other[1]["detail"]
    # Keys belong to their API key: another key may use the same name freely.
    no_key = await stack.api.call("POST", "/v1/invoices", body(account["id"]), stack.key)
    assert no_key[0] == 201 and no_key[1]["id"] != first[1]["id"]
    assert await invoice_count(stack) == 2

    # A failed request releases its key: fixing the input and retrying works.
    bad = await stack.api.call("POST", "/v1/invoices", body("acc_missing"), stack.key,
                               headers={"Idempotency-Key": "retry-me"})
    assert bad[0] == 422
    good = await stack.api.call("POST", "/v1/invoices", body("acc_missing"), stack.key,
                                headers={"Idempotency-Key": "retry-me"})
    assert good[0] == 422  # same body: still refused for the same reason, nothing stored
    assert await invoice_count(stack) == 2


async def test_concurrent_requests_with_one_key_make_one_invoice(
    make_stack: StackFactory,
) -> None:
    stack = await make_stack()
    account = await stack.signup("race@example.org")
    results = await asyncio.gather(*(
        stack.api.call("POST", "/v1/invoices", body(account["id"]), stack.key,
                       headers={"Idempotency-Key": "race-1"}) for _ in range(8)))
    statuses = sorted(r[0] for r in results)
    assert set(statuses) <= {201, 409}, statuses
    ids = {r[1]["id"] for r in results if r[0] == 201}
    assert len(ids) == 1
    for status, doc, _ in results:
        if status == 409:
            assert "in progress" in doc["detail"]
    assert await invoice_count(stack) == 1


async def test_customer_buys_a_plan(make_stack: StackFactory) -> None:
    stack = await make_stack(GATEWAY_PLANS="{\"vps-small\": {\"price\": \"8.00\", "
                             "\"currency\": \"EUR\", \"description\": \"1 vCPU\"}}")
    await stack.signup("plan@example.org", "plan password 1")
    token = await stack.login("plan@example.org", "plan password 1")
    created = await stack.api.call("POST", "/v1/me/invoices", {"plan": "vps-small",
                                                                "coin": "LTC"}, token,
                                   headers={"Idempotency-Key": "buy-1"})
    assert created[0] == 201
    invoice = created[1]
    assert invoice["price"] == {"amount": "8.00", "currency": "EUR"}
    assert invoice["amount_due"] == "0.1" and invoice["metadata"] == {"plan": "vps-small"}
    replay = await stack.api.call("POST", "/v1/me/invoices", {"plan": "vps-small",
                                                               "coin": "LTC"}, token,
                                  headers={"Idempotency-Key": "buy-1"})
    assert replay[1]["id"] == invoice["id"]
    mine = await stack.api.ok("GET", "/v1/me/invoices", token=token)
    assert [i["id"] for i in mine["data"]] == [invoice["id"]]
    unknown = await stack.api.call("POST", "/v1/me/invoices", {"plan": "gold", "coin": "LTC"},
                                   token)
    assert unknown[0] == 422 and "vps-small" in unknown[1]["detail"]
    anonymous = await stack.api.call("POST", "/v1/me/invoices",
                                     {"plan": "vps-small", "coin": "LTC"})
    assert anonymous[0] == 401
    assert json.dumps(invoice).count("plan@example.org") == 0


async def test_buying_a_plan_again_reuses_the_open_invoice_and_open_ones_are_capped(
    make_stack: StackFactory,
) -> None:
    """Asking again and again must not burn addresses (and push the wallet's gap): the
    open invoice for the same plan and coin comes back, and an account holds at most
    `max_open_per_account` unpaid ones."""
    plans = {name: {"price": price, "currency": "EUR"}
             for name, price in (("a", "1.00"), ("b", "2.00"), ("c", "3.00"))}
    stack = await make_stack(GATEWAY_PLANS=json.dumps(plans),
                             GATEWAY_INVOICES__MAX_OPEN_PER_ACCOUNT="2",
                             GATEWAY_INVOICES__EXPIRY_MINUTES="0.15")
    await stack.signup("buyer@example.org", "buyer password 1")
    token = await stack.login("buyer@example.org", "buyer password 1")

    async def buy(plan: str) -> tuple[int, dict[str, Any], dict[str, str]]:
        return await stack.api.call("POST", "/v1/me/invoices", {"plan": plan, "coin": "LTC"},
                                    token)

    first = await buy("a")
    assert first[0] == 201
    for _ in range(20):
        again = await buy("a")
        assert again[0] == 200 and again[1]["id"] == first[1]["id"]
        assert again[1]["address"] == first[1]["address"]
    second = await buy("b")
    assert second[0] == 201
    status, doc, headers = await buy("c")
    assert status == 429 and headers["Content-Type"].startswith("application/problem+json")
    assert "at most 2" in doc["detail"] and 0 < int(headers["Retry-After"]) <= 10
    assert (await buy("a"))[0] == 200  # the open one still comes back at the cap
    assert await stack.count("invoices") == 2  # two addresses handed out, not twenty-three
    # Once they expire, buying works again, with a fresh invoice. Their expiry moves
    # into the past rather than the test waiting for it; the sweeper expires them.
    await stack.rows("UPDATE invoices SET expires_at = created_at")
    for opened in (first[1], second[1]):
        await stack.wait_status(opened["id"], "expired")
    status, doc, _ = await buy("a")
    assert status == 201 and doc["id"] != first[1]["id"]
    # The provisioning system's invoices (API key) are not limited this way.
    account_id = first[1]["account_id"]
    for _ in range(3):
        await stack.invoice(account_id)
