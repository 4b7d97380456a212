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
