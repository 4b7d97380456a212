"""The whole flow over HTTP against `gateway serve` and a real Litecoin regtest node."""

from decimal import Decimal

import pytest
from standardwebhooks.webhooks import Webhook

from tests.e2e.conftest import StackFactory
from tests.support.signals import decided_event
from tests.support.stack import eventually


@pytest.mark.parametrize("db", ["sqlite", "postgresql"])
async def test_signup_invoice_payment_settles_and_activates(
    make_stack: StackFactory, db: str
) -> None:
    stack = await make_stack(db)
    email = f"flow-{db}@example.org"
    account = await stack.signup(email, datacenter="ch-zrh")
    assert account["email"] == email and account["datacenter"] == "ch-zrh"
    assert "__Host-session" in stack.api.cookie_names

    invoice = await stack.invoice(account["id"], metadata={"plan": "vps-small"})
    assert invoice["status"] == "new" and invoice["exception"] is None
    assert invoice["amount_due"] == "0.124875" and invoice["amount_due_base_units"] == "12487500"
    assert invoice["address"].startswith("rltc1q")
    assert invoice["payment_uri"] == f"litecoin:{invoice['address']}?amount=0.124875"
    assert invoice["rate"]["value"] == "80" and invoice["rate"]["source"] == "fixed"
    assert invoice["confirmations_required"] == 3

    txid = stack.node.send(invoice["address"], str(Decimal(invoice["amount_due"])))
    state = await stack.wait_status(invoice["id"], "processing")
    [payment] = state["payments"]
    assert (payment["txid"], payment["confirmations"], payment["status"]) == (txid, 0, "pending")
    assert payment["amount_base_units"] == "12487500"

    stack.node.mine(2)
    state = await stack.until(invoice["id"], lambda d: d["payments"][0]["confirmations"] == 2,
                              "2 confirmations")
    assert state["status"] == "processing"  # 2 of 3: not settled yet
    stack.node.mine(1)
    state = await stack.wait_status(invoice["id"], "settled")
    assert state["payments"][0]["confirmations"] >= 3 and state["settled_at"]
    assert len(state["payments"]) == 1

    settled = await stack.receiver.wait_for("invoice.settled")
    activated = await stack.receiver.wait_for("account.activated")
    secret = stack.endpoint["secret"]
    for delivery in (settled, activated):
        doc = Webhook(secret).verify(delivery.body, delivery.headers)
        assert doc["type"] == delivery.type and doc["timestamp"].endswith("Z")
    assert activated.doc["data"] == {
        "account_id": account["id"], "invoice_id": invoice["id"], "datacenter": "ch-zrh",
        "metadata": {"plan": "vps-small"}, "via": "invoice",
    }
    assert settled.doc["data"]["status"] == "settled"
    payment_events = stack.receiver.of_type("invoice.payment_received")
    assert len(payment_events) == 1
    assert payment_events[0].doc["data"]["payment"]["txid"] == txid
    assert payment_events[0].doc["data"]["payment"]["rate"]["value"] == "80"
    for delivery in stack.receiver.deliveries:
        assert email.encode() not in delivery.body
    # One account's story arrives in the order it happened (WEBHOOKS.md, "Order").
    story = [d for d in stack.receiver.deliveries
             if d.doc["data"].get("account_id") == account["id"]]
    assert story[0].type == "account.created"
    assert [d.type for d in story if d.doc["data"].get("invoice_id") == invoice["id"]
            and d.type.startswith("invoice.")] == [
        "invoice.created", "invoice.payment_received", "invoice.processing",
        "invoice.settled"]
    # Activation is announced once, whatever else happens.
    second = await stack.invoice(account["id"])
    stack.node.send(second["address"], second["amount_due"])
    stack.node.mine(3)
    await stack.receiver.wait_for("invoice.settled")
    await eventually(lambda: len(stack.receiver.of_type("invoice.settled")) == 2, 20,
                     "second settlement")
    assert len(stack.receiver.of_type("account.activated")) == 1

    if db == "sqlite":
        await stack.gateway.stop()
        raw = stack.raw_database()
        assert email.encode() not in raw and email.lower().encode() not in raw
    assert await stack.scalar("SELECT count(*) FROM payments WHERE txid = :t", t=txid) == 1


async def test_receiver_failing_twice_gets_the_same_webhook_id(
    make_stack: StackFactory,
) -> None:
    stack = await make_stack(script=[500, 500], event_types=["account.created"])
    await stack.signup("retry@example.org")
    await eventually(lambda: len(stack.receiver.deliveries) == 1, 20, "delivery after retries")
    attempts = stack.receiver.attempts
    assert len(attempts) == 3
    assert len({a.headers["webhook-id"] for a in attempts}) == 1
    assert {a.type for a in attempts} == {"account.created"}
    Webhook(stack.endpoint["secret"]).verify(attempts[-1].body, attempts[-1].headers)


async def test_unpaid_invoice_expires_and_is_announced(make_stack: StackFactory) -> None:
    stack = await make_stack(GATEWAY_INVOICES__EXPIRY_MINUTES="0.05")
    account = await stack.signup("expiry@example.org")
    invoice = await stack.invoice(account["id"])
    delivery = await stack.receiver.wait_for("invoice.expired", timeout=20)
    assert delivery.doc["data"]["invoice_id"] == invoice["id"]
    assert (await stack.read(invoice["id"]))["status"] == "expired"
    assert len(stack.receiver.of_type("invoice.expired")) == 1


async def test_readiness_and_security_headers(make_stack: StackFactory) -> None:
    stack = await make_stack()
    height = int(stack.node.rpc("getblockcount"))
    async with stack.api.http.get(f"{stack.gateway.ops_url}/readyz") as resp:
        status, doc, headers = resp.status, await resp.json(), dict(resp.headers)
    assert status == 200 and doc["database"] == "ok"
    assert doc["chains"]["LTC"]["status"] == "ok"
    assert doc["chains"]["LTC"]["tip_height"] >= height
    for name, value in (("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "no-referrer"),
                        ("Cache-Control", "no-store")):
        assert headers[name] == value
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    # A deleted endpoint receives nothing more.
    assert (await stack.api.call("DELETE", f"/v1/webhook-endpoints/{stack.endpoint['id']}",
                                 token=stack.key))[0] == 204
    listed = await stack.api.ok("GET", "/v1/webhook-endpoints", token=stack.key)
    assert listed["data"] == []
    later = await stack.signup("after-delete@example.org")
    doc = await decided_event(stack.api, stack.key, "account.created", later["id"])
    assert "deliveries" not in doc, doc
    assert stack.receiver.attempts == []


async def test_login_logout_and_me(make_stack: StackFactory) -> None:
    stack = await make_stack()
    await stack.signup("me@example.org", "a long password 1")
    token = await stack.login("ME@example.org", "a long password 1")
    me = await stack.api.ok("GET", "/v1/me", token=token)
    assert me["email"] == "me@example.org"
    assert (await stack.api.call("GET", "/v1/me/invoices", token=token))[0] == 200
    assert (await stack.api.call("DELETE", "/v1/sessions/current", token=token))[0] == 204
    status, doc, headers = await stack.api.call("GET", "/v1/me", token=token)
    assert "detail" in doc
    assert status == 401 and headers["Content-Type"].startswith("application/problem+json")
    wrong = await stack.api.call("POST", "/v1/sessions",
                                 {"email": "me@example.org", "password": "not the password"})
    unknown = await stack.api.call("POST", "/v1/sessions",
                                   {"email": "nobody@example.org", "password": "not the password"})
    assert wrong[0] == unknown[0] == 401 and wrong[1] == unknown[1]
