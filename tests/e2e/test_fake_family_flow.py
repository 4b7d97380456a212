"""A second chain family added purely through the registry, with no change outside
`tests/`: the fake family comes in by `[families] extra = ["tests.support.fake_family"]`
(here as GATEWAY_FAMILIES__EXTRA), and the whole HTTP flow runs on it: signup, invoice,
payment, settlement, signed webhooks.

The gateway runs in this process (`bootstrap.build` + `build_app`, as `gateway serve`
does, on a real loopback port, with a real webhook receiver): the fake node lives in
memory, and the test has to drive it (pay, mine) from the same process."""

import asyncio
import json
from pathlib import Path

import aiohttp
from aiohttp import web
from standardwebhooks import Webhook

from gateway import families
from gateway.bootstrap import build, build_app
from gateway.config import load
from tests.e2e.conftest import DEFAULT_DB
from tests.support import fake_family
from tests.support.databases import fresh_database
from tests.support.fake_gateway import fake_env
from tests.support.nodes import free_port
from tests.support.stack import Api, Receiver, eventually


async def test_full_http_flow_on_a_family_registered_through_the_registry(
    tmp_path: Path,
) -> None:
    db = DEFAULT_DB  # SQLite, and PostgreSQL in the second run of `make test`
    families.unregister("fake")
    port = free_port()
    node_name = f"e2e-{port}"
    node = fake_family.reset(node_name)
    with fresh_database(db, tmp_path) as db_url:
        env = fake_env(db_url, node_name, coins=("FAK",), confirmations=2) | {
            "GATEWAY_SERVER__PORT": str(port),
            "GATEWAY_SERVER__PUBLIC_URL": f"http://127.0.0.1:{port}",
            "GATEWAY_SERVER__METRICS_LISTEN": "",
            "GATEWAY_STAFF__LISTEN": "",
            "GATEWAY_WEBHOOKS__ALLOW_PRIVATE_TARGETS": json.dumps(["127.0.0.0/8"]),
            "GATEWAY_WEBHOOKS__RETRY_SCHEDULE_SECONDS": json.dumps([0.5] * 7),
        }
        settings = load(None, env)  # registers the family named in [families] extra
        assert "fake" in families.kinds() and settings.coins["FAK"].kind == "fake"
        gw = build(settings)
        key = (await gw.services.api_keys.create(
            "provisioning", ["invoices:write", "invoices:read", "webhooks:manage"])).secret
        runner = web.AppRunner(build_app(gw), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        receiver = await Receiver().start()
        try:
            async with aiohttp.ClientSession() as http:
                api = Api(f"http://127.0.0.1:{port}", http)
                endpoint = await api.ok("POST", "/v1/webhook-endpoints",
                                        {"url": receiver.url, "event_types": []}, key)
                account = await api.ok("POST", "/v1/accounts", {
                    "email": "fake-family@example.org", "password": "correct horse battery"})
                invoice = await api.ok("POST", "/v1/invoices", {
                    "account_id": account["id"], "price": {"amount": "8.00", "currency": "EUR"},
                    "coin": "FAK"}, key)
                assert invoice["coin"] == "FAK" and invoice["status"] == "new"
                assert invoice["amount_due_base_units"] == "10000000"
                assert invoice["payment_uri"] == \
                    f"fake:{invoice['address']}?coin=FAK&value=10000000"
                status, page, _ = await api.fetch(f"/pay/{invoice['id']}")
                assert status == 200 and invoice["address"].encode() in page

                # The watcher follows the fake node from its tip once it has a cursor.
                async def following() -> bool:
                    state = (await gw.ops.readiness.chain_status(1))["FAK"]
                    return state["processed_height"] is not None
                for _ in range(100):
                    if await following():
                        break
                    await asyncio.sleep(0.05)
                assert await following()

                match_key = bytes.fromhex(invoice["address"].removeprefix("fake1"))
                txid = node.pay([("FAK", match_key, 10_000_000)])
                paid = await receiver.wait_for("invoice.payment_received")
                assert paid.doc["data"]["payment"]["txid"] == txid
                await receiver.wait_for("invoice.processing")
                node.mine(2)
                settled = await receiver.wait_for("invoice.settled")
                Webhook(endpoint["secret"]).verify(settled.body, settled.headers)
                doc = await api.ok("GET", f"/v1/invoices/{invoice['id']}", token=key)
                assert doc["status"] == "settled"
                [payment] = doc["payments"]
                assert (payment["txid"], payment["confirmations"]) == (txid, 2)
                await eventually(lambda: bool(receiver.of_type("account.activated")), 10,
                                 "account.activated")
        finally:
            await receiver.stop()
            await runner.cleanup()  # stops the background tasks and closes the gateway
            families.unregister("fake")
