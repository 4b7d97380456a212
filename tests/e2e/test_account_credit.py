"""Account credit over HTTP against the gateway and the real nodes (docs/credit.md), with
a movable clock and test-sized settings, no long sleeps:

- litecoind: an invoice underpaid until it expires becomes credit (`account.credited`,
  verified), which pays part of the next plan purchase; the smaller invoice is paid and
  the account activated; an overpaid invoice's excess becomes credit;
- anvil: an ETH payment seen after its invoice expired is credited at the rate of the
  moment."""

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from standardwebhooks.webhooks import Webhook

from gateway.bootstrap import Overrides, build, build_app
from gateway.config import load
from gateway.domain.timestamps import parse_time
from tests.e2e.conftest import DEFAULT_DB, Stack, StackFactory
from tests.support.clocks import MovableClock
from tests.support.databases import fresh_database
from tests.support.keys import random_xpub, security_env
from tests.support.nodes import Anvil, free_port
from tests.support.stack import Api, Receiver, eventually

ENV = {
    "GATEWAY_PLANS": json.dumps({"vps": {"price": "9.99", "currency": "EUR",
                                         "period": "30 days"}}),
    "GATEWAY_INVOICES__EXPIRY_MINUTES": "0.5",
    "GATEWAY_CREDIT__INTERVAL_SECONDS": "0.25",
}


def of_account(stack: Stack, account_id: str, type_: str) -> list[dict[str, Any]]:
    return [d.doc["data"] for d in stack.receiver.of_type(type_)
            if d.doc["data"].get("account_id") == account_id]


async def wait_event(stack: Stack, account_id: str, type_: str, count: int = 1,
                     timeout: float = 30) -> dict[str, Any]:
    await eventually(lambda: len(of_account(stack, account_id, type_)) >= count, timeout,
                     f"{type_} #{count}")
    return of_account(stack, account_id, type_)[count - 1]


def worth(coins: str, rate: str) -> int:
    """Euro cents, rounded down, as the gateway converts."""
    return int((Decimal(coins) * Decimal(rate) * 100).to_integral_value(rounding=ROUND_FLOOR))


async def send_seen(stack: Stack, invoice_id: str, amount: str) -> None:
    """Sent, and seen in the mempool before it is mined (our own sighting is the time)."""
    invoice = await stack.read(invoice_id)
    stack.node.send(invoice["address"], amount)
    await stack.until(invoice_id, lambda d: bool(d["payments"]), "the payment in the mempool")
    stack.node.mine(3)


async def test_underpaid_to_credit_then_credit_and_a_smaller_invoice_buy_the_period(
        make_stack: StackFactory) -> None:
    clock = MovableClock()
    stack = await make_stack(overrides=Overrides(clock=clock), **ENV)
    account = await stack.signup("credit@example.org", "credit password 1")
    token = await stack.login("credit@example.org", "credit password 1")
    first = await stack.api.ok("POST", "/v1/me/invoices", {"plan": "vps", "coin": "LTC"},
                               token)
    half = str((Decimal(first["amount_due"]) / 2).quantize(Decimal("0.00000001")))
    await send_seen(stack, first["id"], half)
    await stack.until(first["id"], lambda d: d["payments"][0]["confirmations"] >= 3,
                      "three confirmations")
    clock.to(parse_time(first["expires_at"]) + timedelta(seconds=2))
    await stack.wait_status(first["id"], "expired")

    credited = await wait_event(stack, account["id"], "account.credited")
    delivery = stack.receiver.of_type("account.credited")[0]
    Webhook(stack.endpoint["secret"]).verify(delivery.body, delivery.headers)
    cents = worth(half, first["rate"]["value"])
    assert credited["kind"] == "underpaid" and credited["invoice_id"] == first["id"]
    assert credited["amount"] == credited["balance"] == f"{cents // 100}.{cents % 100:02d}"
    me = await stack.api.ok("GET", "/v1/me", token=token)
    assert me["credit"] == {"balance": credited["balance"], "balance_minor": cents,
                            "currency": "EUR"}

    # The next purchase: credit first, an invoice for the rest.
    second = await stack.api.ok("POST", "/v1/me/invoices", {"plan": "vps", "coin": "LTC"},
                                token)
    assert second["id"] != first["id"]
    assert second["price"] == {"amount": f"{(999 - cents) // 100}.{(999 - cents) % 100:02d}",
                               "currency": "EUR"}
    assert second["metadata"]["credit_applied"] == credited["balance"]
    await send_seen(stack, second["id"], second["amount_due"])
    await stack.wait_status(second["id"], "settled")
    activated = await wait_event(stack, account["id"], "account.activated")
    assert activated["via"] == "invoice" and activated["invoice_id"] == second["id"]
    page = await stack.api.ok("GET", "/v1/me/credit", token=token)
    assert page["credit"]["balance_minor"] == 0
    assert [(e["kind"], e["amount_minor"]) for e in page["data"]] == [
        ("spent", -cents), ("underpaid", cents)]
    assert page["data"][1]["payment"]["rate_source"] == "locked"
    status, html, _ = await stack.api.fetch("/account",
                                            headers={"Cookie": f"__Host-session={token}"})
    assert status == 200 and b"credit-balance" in html and b"from credit" in html


async def test_an_overpaid_invoice_credits_its_excess(make_stack: StackFactory) -> None:
    stack = await make_stack(**ENV)
    account = await stack.signup("over@example.org", "over password 1")
    token = await stack.login("over@example.org", "over password 1")
    invoice = await stack.api.ok("POST", "/v1/me/invoices", {"plan": "vps", "coin": "LTC"},
                                 token)
    triple = str(Decimal(invoice["amount_due"]) * 3)
    await send_seen(stack, invoice["id"], triple)
    await stack.wait_status(invoice["id"], "settled")
    credited = await wait_event(stack, account["id"], "account.credited")
    excess = Decimal(triple) - Decimal(invoice["amount_due"])
    cents = worth(str(excess), invoice["rate"]["value"])
    assert credited["kind"] == "overpaid" and credited["amount"] == (
        f"{cents // 100}.{cents % 100:02d}")
    activated = await wait_event(stack, account["id"], "account.activated")

    # The credit pays the next period whole: no invoice, the account document.
    status, doc, _ = await stack.api.call("POST", "/v1/me/invoices",
                                          {"plan": "vps", "coin": "LTC"}, token)
    assert status == 200 and "paid_until" in doc, doc
    assert doc["credit"]["balance_minor"] == cents - 999
    renewed = await wait_event(stack, account["id"], "account.renewed")
    assert renewed["via"] == "credit" and renewed["invoice_id"] is None
    assert renewed["period_start"] == activated["paid_until"] == renewed["period_start"]
    assert await stack.count("invoices") == 1


@pytest.fixture
async def eth(anvil: Anvil, tmp_path: Path) -> AsyncIterator[tuple[Any, Api, str, Receiver]]:
    port = free_port()
    with fresh_database(DEFAULT_DB, tmp_path) as db_url:
        env = {"GATEWAY_DATABASE__URL": db_url, **security_env(),
               "GATEWAY_RATES__FIXED": json.dumps({"ETH-EUR": "80.00"}),
               "GATEWAY_SERVER__PORT": str(port),
               "GATEWAY_SERVER__PUBLIC_URL": f"http://127.0.0.1:{port}",
               "GATEWAY_SERVER__METRICS_LISTEN": "", "GATEWAY_STAFF__LISTEN": "",
               "GATEWAY_WEBHOOKS__ALLOW_PRIVATE_TARGETS": json.dumps(["127.0.0.0/8"]),
               "GATEWAY_COINS__ETH__KIND": "evm", "GATEWAY_COINS__ETH__RPC_URL": anvil.rpc_url,
               "GATEWAY_COINS__ETH__CHAIN_ID": str(anvil.chain_id),
               "GATEWAY_COINS__ETH__XPUB": random_xpub(),
               "GATEWAY_COINS__ETH__POLL_INTERVAL_SECONDS": "0.1",
               "GATEWAY_COINS__ETH__CONFIRMATIONS": "2",
               "GATEWAY_INVOICES__EXPIRY_MINUTES": "0.02",  # 1.2 s
               "GATEWAY_INVOICES__BLOCK_TIME_TOLERANCE_MINUTES": "0",
               "GATEWAY_CREDIT__INTERVAL_SECONDS": "0.2"}
        gw = build(load(None, env))
        key = (await gw.services.api_keys.create(
            "provisioning", ["invoices:write", "invoices:read", "webhooks:manage"])).secret
        app = build_app(gw)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        receiver = await Receiver().start()
        try:
            async with aiohttp.ClientSession() as http:
                api = Api(f"http://127.0.0.1:{port}", http)
                await api.ok("POST", "/v1/webhook-endpoints",
                             {"url": receiver.url, "event_types": []}, key)
                for _ in range(200):
                    status = await gw.ops.readiness.chain_status(1)
                    if status["ETH"]["processed_height"] is not None:
                        break
                    await asyncio.sleep(0.05)
                yield gw, api, key, receiver
        finally:
            await receiver.stop()
            await runner.cleanup()


async def test_a_late_eth_payment_becomes_credit_at_the_rate_of_the_moment(
        anvil: Anvil, eth: tuple[Any, Api, str, Receiver]) -> None:
    _gw, api, key, receiver = eth
    account = await api.ok("POST", "/v1/accounts", {
        "email": f"late-{free_port()}@example.org", "password": "correct horse battery"})
    invoice = await api.ok("POST", "/v1/invoices", {
        "account_id": account["id"], "price": {"amount": "8.00", "currency": "EUR"},
        "coin": "ETH"}, key)

    async def until(check: Any, what: str) -> None:
        async with asyncio.timeout(20):
            while not check(await api.ok("GET", f"/v1/invoices/{invoice['id']}", token=key)):
                await asyncio.sleep(0.1)

    await until(lambda d: d["status"] == "expired", "the invoice expired")
    due = int(invoice["amount_due_base_units"])
    txid = anvil.send(invoice["address"], due)
    await until(lambda d: bool(d["payments"]), "the late payment in the pool")
    anvil.mine(2)
    await eventually(lambda: bool(receiver.of_type("account.credited")), 20,
                     "account.credited")
    [credited] = [d.doc["data"] for d in receiver.of_type("account.credited")]
    assert (credited["kind"], credited["txid"], credited["amount"], credited["currency"]) == (
        "late_payment", txid, "8.00", "EUR")
    doc = await api.ok("GET", f"/v1/invoices/{invoice['id']}", token=key)
    assert (doc["status"], doc["exception"]) == ("expired", "paid_late")
