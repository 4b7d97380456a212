"""The EVM family end to end on a real anvil node (automine off: the test mines): the
gateway runs in this process (`build` + `build_app` on a loopback port, a real webhook
receiver), configured with ETH and three test tokens compiled from
tests/contracts/TestTokens.sol: T6 (6 decimals, `transfer` returns nothing, like USDT),
T18 (18 decimals, returns bool) and BIG (18 decimals, supply 2**256-1)."""

import asyncio
import csv
import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from standardwebhooks import Webhook

from gateway.bootstrap import Gateway, build, build_app
from gateway.config import load
from tests.e2e.conftest import DEFAULT_DB
from tests.support.databases import fresh_database
from tests.support.evm import MAX_UINT256, DeployedToken, compile_tokens, deploy, transfer
from tests.support.keys import random_xpub, security_env
from tests.support.nodes import Anvil, free_port
from tests.support.stack import Api, Receiver, eventually


@pytest.fixture(scope="module")
def tokens(anvil: Anvil) -> dict[str, DeployedToken]:
    code = compile_tokens()
    return {"T6": deploy(anvil, code["NoBoolToken"], "T6", 6, supply=10**30),
            "T18": deploy(anvil, code["BoolToken"], "T18", 18, supply=10**40),
            "BIG": deploy(anvil, code["BoolToken"], "BIG", 18, supply=MAX_UINT256, sender=1)}


@dataclass
class Stack:
    gw: Gateway
    api: Api
    key: str
    receiver: Receiver
    secret: str

    async def invoice(self, coin: str, eur: str = "8.00") -> dict[str, Any]:
        account = await self.api.ok("POST", "/v1/accounts", {
            "email": f"evm-{free_port()}@example.org", "password": "correct horse battery"})
        return await self.api.ok("POST", "/v1/invoices", {
            "account_id": account["id"], "price": {"amount": eur, "currency": "EUR"},
            "coin": coin}, self.key)

    async def read(self, invoice_id: str) -> dict[str, Any]:
        return await self.api.ok("GET", f"/v1/invoices/{invoice_id}", token=self.key)

    async def until(self, invoice_id: str, status: str, exception: str | None,
                    timeout: float = 20) -> dict[str, Any]:
        doc: dict[str, Any] = {}

        async def reached() -> bool:
            nonlocal doc
            doc = await self.read(invoice_id)
            return (doc["status"], doc["exception"]) == (status, exception)
        for _ in range(int(timeout / 0.1)):
            if await reached():
                return doc
            await asyncio.sleep(0.1)
        raise AssertionError(f"{invoice_id}: wanted {status}/{exception}, have {doc}")


@pytest.fixture
async def stack(anvil: Anvil, tokens: dict[str, DeployedToken], tmp_path: Path
                ) -> AsyncIterator[Stack]:
    port = free_port()
    with fresh_database(DEFAULT_DB, tmp_path) as db_url:
        env = {"GATEWAY_DATABASE__URL": db_url, **security_env(),
               "GATEWAY_RATES__FIXED": json.dumps({"ETH-EUR": "80.00", "T6-EUR": "1.00",
                                                   "T18-EUR": "1.00", "BIG-EUR": "1.00"}),
               "GATEWAY_SERVER__PORT": str(port),
               "GATEWAY_SERVER__PUBLIC_URL": f"http://127.0.0.1:{port}",
               "GATEWAY_SERVER__METRICS_LISTEN": "",
               "GATEWAY_STAFF__LISTEN": "",
               "GATEWAY_WEBHOOKS__ALLOW_PRIVATE_TARGETS": json.dumps(["127.0.0.0/8"]),
               "GATEWAY_WEBHOOKS__RETRY_SCHEDULE_SECONDS": json.dumps([0.5] * 7),
               "GATEWAY_COINS__ETH__KIND": "evm", "GATEWAY_COINS__ETH__RPC_URL": anvil.rpc_url,
               "GATEWAY_COINS__ETH__CHAIN_ID": str(anvil.chain_id),
               "GATEWAY_COINS__ETH__XPUB": random_xpub(),
               "GATEWAY_COINS__ETH__POLL_INTERVAL_SECONDS": "0.1",
               "GATEWAY_COINS__ETH__CONFIRMATIONS": "2"}
        for code, token in tokens.items():
            c = f"GATEWAY_COINS__{code}__"
            env |= {f"{c}KIND": "evm", f"{c}NODE": "ETH", f"{c}CONTRACT": token.address,
                    f"{c}DECIMALS": str(token.decimals), f"{c}CONFIRMATIONS": "2"}
        gw = build(load(None, env))
        key = (await gw.services.api_keys.create(
            "provisioning", ["invoices:write", "invoices:read", "webhooks:manage",
                             "payments:read"])).secret
        runner = web.AppRunner(build_app(gw), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        receiver = await Receiver().start()
        try:
            async with aiohttp.ClientSession() as http:
                api = Api(f"http://127.0.0.1:{port}", http)
                endpoint = await api.ok("POST", "/v1/webhook-endpoints",
                                        {"url": receiver.url, "event_types": []}, key)
                for _ in range(200):  # the watcher follows from the tip once it has a cursor
                    status = await gw.ops.readiness.chain_status(1)
                    if status["ETH"]["processed_height"] is not None:
                        break
                    await asyncio.sleep(0.05)
                yield Stack(gw, api, key, receiver, endpoint["secret"])
        finally:
            await receiver.stop()
            await runner.cleanup()


async def test_eth_invoice_pending_then_settled_with_verified_webhooks(
        anvil: Anvil, stack: Stack) -> None:
    invoice = await stack.invoice("ETH")
    due = int(invoice["amount_due_base_units"])
    assert due == 10**17  # 8.00 EUR at 80.00 EUR per ETH, in wei
    assert invoice["payment_uri"] == f"ethereum:{invoice['address']}@31337?value={due}"
    status, page, _ = await stack.api.fetch(f"/pay/{invoice['id']}")
    assert status == 200 and invoice["address"].encode() in page
    assert b"chain id 31337" in page and b"is not detected" in page

    txid = anvil.send(invoice["address"], due)
    # Pending (not mined: automine is off): seen in the node's pool.
    doc = await stack.until(invoice["id"], "processing", None)
    assert doc["payments"][0]["txid"] == txid and doc["payments"][0]["confirmations"] == 0
    anvil.mine(1)
    await eventually(lambda: bool(stack.receiver.of_type("invoice.payment_received")), 10,
                     "payment_received")
    assert (await stack.read(invoice["id"]))["status"] == "processing"  # 1 of 2
    anvil.mine(1)
    settled = await stack.until(invoice["id"], "settled", None)
    assert [(p["txid"], p["amount_base_units"]) for p in settled["payments"]] == [
        (txid, str(due))]
    for kind in ("invoice.settled", "account.activated"):
        delivery = await stack.receiver.wait_for(kind)
        Webhook(stack.secret).verify(delivery.body, delivery.headers)


@pytest.mark.parametrize("coin", ["T6", "T18"])
async def test_token_exact_short_and_over(anvil: Anvil, tokens: dict[str, DeployedToken],
                                          stack: Stack, coin: str) -> None:
    token = tokens[coin]
    exact, short, over = [await stack.invoice(coin) for _ in range(3)]
    due = int(exact["amount_due_base_units"])
    assert due == 8 * 10**token.decimals  # 8.00 EUR at 1.00 EUR per token
    assert exact["payment_uri"] == (f"ethereum:{token.address}@31337/transfer?"
                                    f"address={exact['address']}&uint256={due}")
    _, page, _ = await stack.api.fetch(f"/pay/{exact['id']}")
    text = page.decode()
    assert "local development chain (chain id 31337)" in text and token.address in text
    assert "is not detected" in text
    transfer(anvil, token, exact["address"], due)
    transfer(anvil, token, short["address"], due - 1)
    transfer(anvil, token, over["address"], due + 1)
    anvil.mine(2)
    await stack.until(exact["id"], "settled", None)
    partial = await stack.until(short["id"], "new", "paid_partial")
    assert partial["amount_paid_base_units"] == str(due - 1)
    paid_over = await stack.until(over["id"], "settled", "paid_over")
    assert paid_over["payments"][0]["amount_base_units"] == str(due + 1)


async def test_max_uint256_token_amount_survives_db_api_export_and_webhook(
        anvil: Anvil, tokens: dict[str, DeployedToken], stack: Stack) -> None:
    invoice = await stack.invoice("BIG")
    txid = transfer(anvil, tokens["BIG"], invoice["address"], MAX_UINT256, sender=1)
    anvil.mine(2)
    doc = await stack.until(invoice["id"], "settled", "paid_over")
    [payment] = doc["payments"]
    assert payment["amount_base_units"] == str(MAX_UINT256)  # stored, read back exactly
    received = await stack.receiver.wait_for("invoice.payment_received")
    Webhook(stack.secret).verify(received.body, received.headers)
    assert received.doc["data"]["payment"]["amount_base_units"] == str(MAX_UINT256)
    finance = await stack.api.ok("GET", f"/v1/payments/{txid}", token=stack.key)
    rows = finance["data"] if "data" in finance else [finance]
    assert [r["amount_base_units"] for r in rows] == [str(MAX_UINT256)]
    status, body, _ = await stack.api.fetch("/v1/payments?format=csv&coin=BIG", stack.key)
    assert status == 200
    [row] = list(csv.DictReader(io.StringIO(body.decode())))
    assert row["amount_base_units"] == str(MAX_UINT256) and row["txid"] == txid
    assert row["asset"] == tokens["BIG"].address  # the export names the token contract
