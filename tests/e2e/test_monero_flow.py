"""XMR end to end on a real monerod regtest and monero-wallet-rpc (the session's shared
node, tests/support/monero_fixtures.py): the gateway runs in this process (`build` +
`build_app` on a real loopback port, a real webhook receiver), follows the chain through
a view-only wallet, and settles after 10 confirmations.

Every test creates a fresh database, so invoice indexes start at 0 again: the watcher
starts at the tip, so payments of earlier tests (all mined) are behind it."""

import asyncio
import http.client
import json
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import update
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool
from standardwebhooks import Webhook

from gateway.adapters.db.tables import payments
from gateway.bootstrap import Gateway, build, build_app
from gateway.config import ConfigError, load
from tests.contract.drivers.monero import MoneroDriver
from tests.e2e.conftest import DEFAULT_DB
from tests.support.databases import fresh_database
from tests.support.keys import security_env
from tests.support.monero_nodes import MoneroRegtest, post
from tests.support.nodes import free_port
from tests.support.stack import Api, Receiver, eventually, run_cli

XMR = 10**12


@dataclass
class XmrStack:
    gw: Gateway
    api: Api
    key: str
    receiver: Receiver
    endpoint: dict[str, Any]
    driver: MoneroDriver
    node: MoneroRegtest
    env: dict[str, str]
    ops_url: str
    tmp: Path

    async def invoice(self, eur: str, email: str | None = None) -> dict[str, Any]:
        account = await self.api.ok("POST", "/v1/accounts", {
            "email": email or f"xmr-{free_port()}@example.org",
            "password": "correct horse battery"})
        doc: dict[str, Any] = await self.api.ok("POST", "/v1/invoices", {
            "account_id": account["id"], "price": {"amount": eur, "currency": "EUR"},
            "coin": "XMR"}, self.key)
        return doc

    async def status(self, invoice_id: str) -> dict[str, Any]:
        doc: dict[str, Any] = await self.api.ok("GET", f"/v1/invoices/{invoice_id}",
                                                token=self.key)
        return doc

    async def until_status(self, invoice_id: str, status: str, timeout: float = 20) -> dict[
            str, Any]:
        found: dict[str, Any] = {}

        async def check() -> bool:
            found.update(await self.status(invoice_id))
            return found["status"] == status
        await eventually_async(check, timeout, f"{invoice_id} {status}")
        return found


async def eventually_async(check: Any, timeout: float, what: str) -> None:
    import asyncio
    import time

    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


@pytest.fixture
async def xmr(monero: MoneroRegtest, tmp_path: Path,
              request: pytest.FixtureRequest) -> AsyncIterator[XmrStack]:
    """The gateway on the session's shared view-only wallet (each test has a fresh database,
    so its invoices reuse subaddresses that earlier tests paid), or, parametrized with
    "own wallet", on a wallet of keys made for that test alone."""
    driver = MoneroDriver(monero, own_wallet=getattr(request, "param", "") == "own wallet")
    await driver.follower.aclose()  # the gateway builds its own from the configuration
    port, ops_port = free_port(), free_port()
    with fresh_database(DEFAULT_DB, tmp_path) as db_url:
        env = {"GATEWAY_DATABASE__URL": db_url,
               "GATEWAY_RATES__FIXED": json.dumps({"XMR-EUR": "80.00"}),
               **security_env(), **driver.coin_env(confirmations=10),
               "GATEWAY_SERVER__PORT": str(port),
               "GATEWAY_SERVER__PUBLIC_URL": f"http://127.0.0.1:{port}",
               "GATEWAY_SERVER__METRICS_LISTEN": f"127.0.0.1:{ops_port}",
               "GATEWAY_STAFF__LISTEN": "",
               "GATEWAY_WEBHOOKS__ALLOW_PRIVATE_TARGETS": json.dumps(["127.0.0.0/8"]),
               "GATEWAY_WEBHOOKS__RETRY_SCHEDULE_SECONDS": json.dumps([0.5] * 7)}
        gw = build(load(None, env))
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

                async def following() -> bool:
                    return (await gw.chain_status(1))["XMR"]["processed_height"] is not None
                # Opening (or creating) the view-only wallet and its first refresh take
                # seconds, more on a busy machine.
                await eventually_async(following, 90, "the watcher following monerod")
                yield XmrStack(gw, api, key, receiver, endpoint, driver, monero, env,
                               f"http://127.0.0.1:{ops_port}", tmp_path)
        finally:
            await receiver.stop()
            await runner.cleanup()


def payment_of(doc: dict[str, Any]) -> list[tuple[str, int]]:
    return sorted((p["txid"], int(p["amount_base_units"])) for p in doc["payments"])


async def test_xmr_invoice_pool_then_ten_blocks_settles_with_verified_webhooks(
        xmr: XmrStack) -> None:
    invoice = await xmr.invoice("8.00")  # 0.1 XMR at 80 EUR
    due = int(invoice["amount_due_base_units"])
    assert due == XMR // 10
    assert invoice["payment_uri"] == f"monero:{invoice['address']}?tx_amount=0.1"
    assert invoice["address"].startswith("8")  # a subaddress, never the primary address
    status, page, _ = await xmr.api.fetch(f"/pay/{invoice['id']}")
    assert status == 200 and invoice["address"].encode() in page
    assert b"10 confirmations" in page and b"20 minutes" in page

    txid = xmr.node.pay([(invoice["address"], due)])
    paid = await xmr.receiver.wait_for("invoice.payment_received", timeout=10)
    assert paid.doc["data"]["payment"]["txid"] == txid
    await xmr.until_status(invoice["id"], "processing", timeout=10)  # from the pool

    xmr.node.mine(9)
    await eventually_async(lambda: _confirmations_at_least(xmr, invoice["id"], 9), 15,
                           "9 confirmations")
    assert (await xmr.status(invoice["id"]))["status"] == "processing"
    xmr.node.mine(1)
    settled = await xmr.receiver.wait_for("invoice.settled")
    Webhook(xmr.endpoint["secret"]).verify(settled.body, settled.headers)
    doc = await xmr.status(invoice["id"])
    assert doc["status"] == "settled" and payment_of(doc) == [(txid, due)]
    await eventually(lambda: bool(xmr.receiver.of_type("account.activated")), 10,
                     "account.activated")
    activated = xmr.receiver.of_type("account.activated")[0]
    Webhook(xmr.endpoint["secret"]).verify(activated.body, activated.headers)


async def test_xmr_partial_payment_then_a_second_transfer_completes_it(
        xmr: XmrStack) -> None:
    invoice = await xmr.invoice("8.00")
    due = int(invoice["amount_due_base_units"])
    first = xmr.node.pay([(invoice["address"], due // 3)])
    xmr.node.mine(1)
    await eventually_async(lambda: _has_payments(xmr, invoice["id"], 1), 15, "first payment")
    second = xmr.node.pay([(invoice["address"], due - due // 3)])
    await eventually_async(lambda: _has_payments(xmr, invoice["id"], 2), 15, "second payment")
    xmr.node.mine(10)
    doc = await xmr.until_status(invoice["id"], "settled")
    assert payment_of(doc) == sorted([(first, due // 3), (second, due - due // 3)])


async def _has_payments(xmr: XmrStack, invoice_id: str, count: int) -> bool:
    return len((await xmr.status(invoice_id))["payments"]) >= count


async def test_120_invoices_all_detected_far_past_the_wallet_lookahead(
        xmr: XmrStack) -> None:
    account = await xmr.api.ok("POST", "/v1/accounts", {
        "email": "many@example.org", "password": "correct horse battery"})
    invoices = [await xmr.api.ok("POST", "/v1/invoices", {
        "account_id": account["id"], "price": {"amount": "0.08", "currency": "EUR"},
        "coin": "XMR"}, xmr.key) for _ in range(120)]  # 0.001 XMR; subaddresses 1..120
    due = int(invoices[0]["amount_due_base_units"])
    assert len({i["address"] for i in invoices}) == 120
    for start in range(0, 120, 15):  # 16 outputs per transaction at most, one is change
        xmr.node.pay([(i["address"], due) for i in invoices[start:start + 15]])
    while xmr.node.pool():  # monerod may leave some for the next block
        xmr.node.mine(1)
    xmr.node.mine(10)

    async def all_settled() -> bool:
        for inv in invoices:
            if (await xmr.status(inv["id"]))["status"] != "settled":
                return False
        return True
    await eventually_async(all_settled, 60, "120 invoices settled")


async def test_future_unlock_time_holds_settlement_until_it_unlocks(xmr: XmrStack) -> None:
    invoice = await xmr.invoice("8.00")
    due = int(invoice["amount_due_base_units"])
    unlock = xmr.node.height() + 16
    xmr.node.pay([(invoice["address"], due)], unlock_time=unlock)
    xmr.node.mine(12)  # more than the 10 confirmations, still locked
    doc = await xmr.until_status(invoice["id"], "processing")
    await eventually_async(lambda: _confirmations_at_least(xmr, invoice["id"], 12), 15,
                           "12 confirmations")
    assert (await xmr.status(invoice["id"]))["status"] == "processing"
    xmr.node.mine(unlock - xmr.node.height() + 1)
    doc = await xmr.until_status(invoice["id"], "settled")
    assert len(doc["payments"]) == 1


async def _confirmations_at_least(xmr: XmrStack, invoice_id: str, n: int) -> bool:
    payments = (await xmr.status(invoice_id))["payments"]
    return bool(payments) and int(payments[0]["confirmations"]) >= n


async def test_the_wallet_in_use_is_view_only_and_cannot_spend(xmr: XmrStack) -> None:
    wallet = xmr.node.merchant
    assert wallet.rpc("get_address")["address"] == xmr.driver.address  # the gateway's
    with pytest.raises(RuntimeError, match="watch-only"):
        wallet.rpc("query_key", key_type="spend_key")
    # Asked to pay, a view-only wallet can at most prepare an unsigned transaction for a
    # wallet that holds the spend key: nothing is signed, nothing reaches the pool.
    pool = xmr.node.pool()
    try:
        said = json.dumps(wallet.rpc("transfer", destinations=[
            {"address": xmr.node.miner_address, "amount": 1000}]))
    except RuntimeError as exc:
        said = str(exc)
    except http.client.IncompleteRead as exc:  # wallet-rpc cuts long answers short
        said = exc.partial.decode(errors="replace")
    for txid in re.findall(r'"tx_hash": "([0-9a-f]{64})"', said):
        found = post(xmr.node.rpc_port, "/get_transactions", {"txs_hashes": [txid]})
        assert not found.get("txs"), "the view-only wallet got a transaction out"
    assert xmr.node.pool() == pool


def test_a_configured_spend_key_is_refused_in_one_line(tmp_path: Path) -> None:
    spend = tmp_path / "spend"
    spend.write_text("11" * 32)
    view = tmp_path / "view"
    view.write_text("22" * 32)
    c = "GATEWAY_COINS__XMR__"
    env = {"GATEWAY_DATABASE__URL": f"sqlite+aiosqlite:///{tmp_path / 'db'}",
           **security_env(), f"{c}KIND": "monero", f"{c}DAEMON_URL": "http://127.0.0.1:1",
           f"{c}WALLET_RPC_URL": "http://127.0.0.1:2", f"{c}ADDRESS": "4" + "A" * 94,
           f"{c}VIEW_KEY_FILE": str(view), f"{c}WALLET_PASSWORD": "pw",
           f"{c}SPEND_KEY_FILE": str(spend)}
    with pytest.raises(ConfigError) as caught:
        load(None, env)
    message = str(caught.value)
    assert "\n" not in message and "spend_key" in message and "view" in message
    assert "11" * 32 not in message


async def test_wallet_rpc_restarted_without_its_wallet_file_recreates_it_and_misses_nothing(
        xmr: XmrStack) -> None:
    invoice = await xmr.invoice("8.00")
    due = int(invoice["amount_due_base_units"])
    xmr.node.merchant.stop()
    for f in xmr.node.merchant.dir.glob(f"{xmr.driver.wallet_name}*"):
        f.unlink()  # the wallet file and its keys file are gone

    async def chain_down() -> bool:
        return (await xmr.gw.chain_status(1))["XMR"]["status"] != "ok"
    await eventually_async(chain_down, 15, "the chain reported down")
    txid = xmr.node.pay([(invoice["address"], due)])  # paid and mined while it is down
    xmr.node.mine(10)
    xmr.node.merchant.start()  # no wallet open: the gateway recreates it from the keys
    doc = await xmr.until_status(invoice["id"], "settled", timeout=60)
    assert payment_of(doc) == [(txid, due)]
    assert (xmr.node.merchant.dir / xmr.driver.wallet_name).exists()
    assert (await xmr.gw.chain_status(1))["XMR"]["status"] == "ok"


async def readyz(xmr: XmrStack) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.get(f"{xmr.ops_url}/readyz") as resp:
        return resp.status, await resp.json()


async def test_monerod_down_readyz_says_so_and_nothing_is_missed_after_it_returns(
        xmr: XmrStack, caplog: pytest.LogCaptureFixture) -> None:
    invoice = await xmr.invoice("8.00")
    due = int(invoice["amount_due_base_units"])
    assert (await readyz(xmr))[0] == 200
    xmr.node.stop()

    async def reported_down() -> bool:
        status, doc = await readyz(xmr)
        return status == 503 and doc["chains"]["XMR"]["status"] != "ok"
    await eventually_async(reported_down, 20, "/readyz reporting XMR down")
    _, doc = await readyz(xmr)
    assert doc["database"] == "ok" and doc["status"] == "not ready"
    # A few failed polls: the watcher retries after a pause, nothing crashes.
    deadline = time.monotonic() + 30
    while sum("retrying in" in r.getMessage() for r in caplog.records) < 2:
        assert time.monotonic() < deadline, "timed out waiting for two failed polls"
        await asyncio.sleep(0.1)
    crashed = [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]
    assert not crashed, [r.getMessage() for r in crashed]

    xmr.node.start()  # the same ports and chain (--keep-fakechain)
    xmr.node.wait_wallets()
    txid = xmr.node.pay([(invoice["address"], due)])
    xmr.node.mine(10)
    doc = await xmr.until_status(invoice["id"], "settled", timeout=60)
    assert payment_of(doc) == [(txid, due)]  # the same watcher, caught up

    async def ready_again() -> bool:
        return (await readyz(xmr))[0] == 200
    await eventually_async(ready_again, 20, "/readyz ready again")


@pytest.mark.parametrize("xmr", ["own wallet"], indirect=True)
async def test_reconcile_and_the_payments_export_cover_xmr(xmr: XmrStack) -> None:
    """`gateway reconcile` checks each recorded transfer against the wallet and the daemon,
    finds a recorded amount that disagrees with the chain, and the payments export lists
    the transfer's txid."""
    start = datetime.now(UTC) - timedelta(minutes=1)
    invoice = await xmr.invoice("8.00")
    due = int(invoice["amount_due_base_units"])
    txid = xmr.node.pay([(invoice["address"], due)])
    xmr.node.mine(10)
    await xmr.until_status(invoice["id"], "settled")
    until = iso(datetime.now(UTC) + timedelta(minutes=5))
    report_file = xmr.tmp / "report.json"

    def reconcile() -> tuple[int, dict[str, Any], str]:
        done = run_cli(xmr.env, "reconcile", "--from", iso(start), "--to", until,
                       "--coin", "XMR", "--json", str(report_file))
        assert done.returncode in (0, 1), done.stderr
        return done.returncode, json.loads(report_file.read_text()), done.stdout

    code, report, out = await asyncio.to_thread(reconcile)
    assert code == 0, out
    assert report["clean"] and report["checked_payments"] == 1, report

    export = xmr.tmp / "payments.json"
    done = await asyncio.to_thread(
        run_cli, xmr.env, "payments", "export", "--from", iso(start), "--to", until,
        "--format", "json", "--out", str(export))
    assert done.returncode == 0, done.stderr
    rows = json.loads(export.read_text())
    assert [(r["coin"], r["txid"], int(r["amount_base_units"]), r["invoice_id"])
            for r in rows] == [("XMR", txid, due, invoice["id"])]

    await set_amount(xmr.env["GATEWAY_DATABASE__URL"], txid, due - 1)
    code, report, out = await asyncio.to_thread(reconcile)
    assert code == 1, out
    assert [(f["kind"], f["txid"], f["invoice_id"]) for f in report["findings"]] == [
        ("amount", txid, invoice["id"])], report


async def set_amount(db_url: str, txid: str, amount: int) -> None:
    engine = create_async_engine(db_url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            await conn.execute(update(payments).where(payments.c.txid == txid)
                               .values(amount=amount))
    finally:
        await engine.dispose()


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
