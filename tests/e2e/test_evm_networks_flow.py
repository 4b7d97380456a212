"""Assets on networks end to end (issue 33): one gateway in this process follows two
anvils at different chain ids, configured as `[networks.A]` and `[networks.B]` on one
xpub, with a USDC token deployed at the same address on both (only the chain id tells
them apart). USDC-A and USDC-B invoices each settle by a transfer on their own network;
the right token sent to a USDC-A invoice's address on network B is not counted for it;
each checkout page names its network and its URI carries its chain id."""

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from gateway.bootstrap import Gateway, build, build_app
from gateway.config import load
from tests.e2e.conftest import DEFAULT_DB
from tests.support.databases import fresh_database
from tests.support.evm import DEPLOYER, DeployedToken, compile_tokens, deploy_on_each, transfer
from tests.support.keys import random_xpub, security_env
from tests.support.nodes import Anvil, free_port
from tests.support.stack import Api


@pytest.fixture(scope="module")
def usdc(anvil: Anvil, anvil_b: Anvil) -> DeployedToken:
    return deploy_on_each([anvil, anvil_b], compile_tokens()["NoBoolToken"], "USDC", 6,
                          10**30)


def networks_env(nodes: dict[str, Anvil], usdc: DeployedToken) -> dict[str, str]:
    xpub = random_xpub()  # one key: one address space for both networks
    env = {}
    for name, node in nodes.items():
        p = f"GATEWAY_NETWORKS__{name}__"
        env |= {f"{p}KIND": "evm", f"{p}NAME": f"Network {name}",
                f"{p}CHAIN_ID": str(node.chain_id), f"{p}RPC_URL": node.rpc_url,
                f"{p}XPUB": xpub, f"{p}CONFIRMATIONS": "2",
                f"{p}POLL_INTERVAL_SECONDS": "0.1",
                f"{p}TOKENS__USDC__CONTRACT": usdc.address,
                f"{p}TOKENS__USDC__DECIMALS": "6", f"{p}TOKENS__USDC__SYMBOL": "USDC"}
    return env


@pytest.fixture
async def stack(anvil: Anvil, anvil_b: Anvil, usdc: DeployedToken, tmp_path: Path
                ) -> AsyncIterator[tuple[Gateway, Api, str]]:
    port = free_port()
    with fresh_database(DEFAULT_DB, tmp_path) as db_url:
        env = {"GATEWAY_DATABASE__URL": db_url, **security_env(),
               "GATEWAY_RATES__FIXED": json.dumps({"ETH-EUR": "3000", "USDC-EUR": "1.00"}),
               "GATEWAY_SERVER__PORT": str(port),
               "GATEWAY_SERVER__PUBLIC_URL": f"http://127.0.0.1:{port}",
               "GATEWAY_SERVER__METRICS_LISTEN": "", "GATEWAY_STAFF__LISTEN": "",
               **networks_env({"A": anvil, "B": anvil_b}, usdc)}
        gw = build(load(None, env))
        key = (await gw.services.api_keys.create(
            "provisioning", ["invoices:write", "invoices:read"])).secret
        runner = web.AppRunner(build_app(gw), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            async with aiohttp.ClientSession() as http:
                api = Api(f"http://127.0.0.1:{port}", http)
                for _ in range(200):  # each watcher follows from the tip once it has a cursor
                    status = await gw.ops.readiness.chain_status(1)
                    if all(status[f]["processed_height"] is not None
                           for f in ("ETH-A", "ETH-B")):
                        break
                    await asyncio.sleep(0.05)
                yield gw, api, key
        finally:
            await runner.cleanup()


async def invoice(api: Api, key: str, coin: str) -> dict[str, Any]:
    account = await api.ok("POST", "/v1/accounts", {
        "email": f"net-{free_port()}@example.org", "password": "correct horse battery"})
    return await api.ok("POST", "/v1/invoices", {
        "account_id": account["id"], "price": {"amount": "5.00", "currency": "EUR"},
        "coin": coin}, key)


async def until(api: Api, key: str, invoice_id: str, status: str) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for _ in range(200):
        doc = await api.ok("GET", f"/v1/invoices/{invoice_id}", token=key)
        if doc["status"] == status:
            return doc
        await asyncio.sleep(0.1)
    raise AssertionError(f"{invoice_id}: wanted {status}, have {doc}")


async def test_each_network_settles_its_own_invoice_and_not_the_others(
        anvil: Anvil, anvil_b: Anvil, usdc: DeployedToken,
        stack: tuple[Gateway, Api, str]) -> None:
    _gw, api, key = stack
    on_a, on_b, wrong = [await invoice(api, key, c) for c in ("USDC-A", "USDC-B", "USDC-A")]
    assert len({on_a["address"], on_b["address"], wrong["address"]}) == 3  # one space
    for doc, node in ((on_a, anvil), (on_b, anvil_b), (wrong, anvil)):
        assert doc["amount_due_base_units"] == "5000000"
        assert doc["payment_uri"] == (f"ethereum:{usdc.address}@{node.chain_id}/transfer?"
                                      f"address={doc['address']}&uint256=5000000")
        page = await api.http.get(f"{api.base}/pay/{doc['id']}")
        html = await page.text()
        assert page.status == 200
        assert f"Network {'A' if node is anvil else 'B'} (chain id {node.chain_id})" in html
    # The right token, the right amount, the A invoice's address: on network B.
    stray = transfer(anvil_b, usdc, wrong["address"], 5_000_000, sender=DEPLOYER)
    transfer(anvil, usdc, on_a["address"], 5_000_000, sender=DEPLOYER)
    transfer(anvil_b, usdc, on_b["address"], 5_000_000, sender=DEPLOYER)
    anvil.mine(2)
    anvil_b.mine(2)
    await until(api, key, on_a["id"], "settled")
    settled_b = await until(api, key, on_b["id"], "settled")
    assert int(anvil_b.rpc("eth_getTransactionReceipt", stray)["status"], 16) == 1  # moved
    assert [p["txid"] for p in settled_b["payments"]] != [stray]
    doc = await api.ok("GET", f"/v1/invoices/{wrong['id']}", token=key)
    assert (doc["status"], doc["payments"], doc["amount_paid"]) == ("new", [], "0")
    # Paid on its own network, it settles.
    transfer(anvil, usdc, wrong["address"], 5_000_000, sender=DEPLOYER)
    anvil.mine(2)
    await until(api, key, wrong["id"], "settled")
