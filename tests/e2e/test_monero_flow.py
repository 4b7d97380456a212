"""XMR end to end on a real monerod regtest and monero-wallet-rpc (the session's shared
node, tests/support/monero_fixtures.py): the gateway runs in this process (`build` +
`build_app` on a real loopback port, a real webhook receiver), follows the chain through
a view-only wallet, and settles after 10 confirmations.

Every test creates a fresh database, so invoice indexes start at 0 again: the watcher
starts at the tip, so payments of earlier tests (all mined) are behind it."""

import asyncio
import http.client
import json
import os
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pyotp
import pytest
from aiohttp import web
from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool
from standardwebhooks import Webhook

from gateway.adapters.db.tables import derivation_counters, payments
from gateway.bootstrap import Gateway, build, build_app
from gateway.config import ConfigError, load
from tests.contract.drivers.monero import MoneroDriver
from tests.e2e.conftest import DEFAULT_DB
from tests.support.cli import run_gateway
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
    "own wallet", on a wallet of keys made for that test alone; with "staff console", its
    staff listener on (env GATEWAY_STAFF__LISTEN)."""
    param = str(getattr(request, "param", ""))
    driver = MoneroDriver(monero, own_wallet="own wallet" in param)
    await driver.follower.aclose()  # the gateway builds its own from the configuration
    port, ops_port = free_port(), free_port()
    staff = f"127.0.0.1:{free_port()}" if "staff console" in param else ""
    with fresh_database(DEFAULT_DB, tmp_path) as db_url:
        env = {"GATEWAY_DATABASE__URL": db_url,
               "GATEWAY_RATES__FIXED": json.dumps({"XMR-EUR": "80.00"}),
               **security_env(), **driver.coin_env(confirmations=10),
               "GATEWAY_SERVER__PORT": str(port),
               "GATEWAY_SERVER__PUBLIC_URL": f"http://127.0.0.1:{port}",
               "GATEWAY_SERVER__METRICS_LISTEN": f"127.0.0.1:{ops_port}",
               "GATEWAY_STAFF__LISTEN": staff,
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
                    status = await gw.ops.readiness.chain_status(1)
                    return status["XMR"]["processed_height"] is not None
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


@pytest.mark.parametrize("xmr", ["staff console"], indirect=True)
async def test_future_unlock_time_holds_settlement_and_every_view_shows_the_lock(
        xmr: XmrStack) -> None:
    """A transfer with unlock_time in the future: received and confirmed, but held from
    settling; the payment's `locked_until`, the webhook, the checkout page and the staff
    console say until which block (issue 25 item 3). Once it unlocks it settles and the
    lock is gone from all of them."""
    invoice = await xmr.invoice("8.00")
    due = int(invoice["amount_due_base_units"])
    unlock = xmr.node.height() + 16
    xmr.node.pay([(invoice["address"], due)], unlock_time=unlock)
    lock = {"height": unlock, "time": None}
    received = await xmr.receiver.wait_for("invoice.payment_received", timeout=10)
    assert received.doc["data"]["payment"]["locked_until"] == lock
    xmr.node.mine(12)  # more than the 10 confirmations, still locked
    await xmr.until_status(invoice["id"], "processing")
    await eventually_async(lambda: _confirmations_at_least(xmr, invoice["id"], 12), 15,
                           "12 confirmations")
    doc = await xmr.status(invoice["id"])
    assert doc["status"] == "processing"
    [payment] = doc["payments"]
    assert payment["status"] == "confirmed" and payment["locked_until"] == lock
    _, page, _ = await xmr.api.fetch(f"/pay/{invoice['id']}")
    # 12 confirmations: the tip is 3 blocks short of it, 2 minutes each.
    assert f"10 of 10 confirmations. Received; spendable from block {unlock}, about " \
        .encode() in page
    staff = await staff_login(xmr)
    console = await staff(f"/invoices/{invoice['id']}?reason=checking+the+lock+display")
    assert f"confirmed <span class=\"locked\">(locked: spendable from block {unlock}, " \
        "about " in console

    xmr.node.mine(unlock - xmr.node.height() + 1)
    doc = await xmr.until_status(invoice["id"], "settled")
    assert [p["locked_until"] for p in doc["payments"]] == [None]
    _, page, _ = await xmr.api.fetch(f"/pay/{invoice['id']}")
    assert b"spendable from" not in page
    assert "locked:" not in await staff(
        f"/invoices/{invoice['id']}?reason=checking+the+lock+display")


async def staff_login(xmr: XmrStack) -> Callable[[str], Awaitable[str]]:
    """A support member of the staff console, logged in over HTTP with TOTP; returns a
    page getter."""
    base = f"http://{xmr.env['GATEWAY_STAFF__LISTEN']}/staff"
    added = await asyncio.to_thread(
        run_gateway, ["staff", "create", "sam", "--role", "support", "--password-stdin"],
        {**os.environ, **xmr.env}, input="staff password 123\n")
    assert added.returncode == 0, added.stderr
    cookie: dict[str, str] = {}  # Secure, on an IP: kept by hand

    async def call(method: str, path: str, **fields: str) -> tuple[int, str]:
        headers = {"Cookie": f"__Secure-staff={cookie['v']}"} if cookie else {}
        async with aiohttp.ClientSession() as http, http.request(
                method, base + path, data=fields or None, headers=headers,
                allow_redirects=False) as resp:
            if (found := resp.cookies.get("__Secure-staff")) is not None:
                cookie["v"] = found.value
            return resp.status, await resp.text()

    async def post(path: str, form_page: str, **fields: str) -> str:
        token = re.search(r'name="csrf" value="([^"]+)"', (await call("GET", form_page))[1])
        assert token is not None
        status, body = await call("POST", path, csrf=token.group(1), **fields)
        assert status in (200, 303), (status, body)
        return body

    await post("/login", "/login", name="sam", password="staff password 123")
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', await post("/enrol", "/enrol"))
    assert secret is not None
    await post("/enrol/confirm", "/enrol", code=pyotp.TOTP(secret.group(1)).now())

    async def get(path: str) -> str:
        status, body = await call("GET", path)
        assert status == 200, (status, body)
        return body
    return get


async def _confirmations_at_least(xmr: XmrStack, invoice_id: str, n: int) -> bool:
    payments = (await xmr.status(invoice_id))["payments"]
    return bool(payments) and int(payments[0]["confirmations"]) >= n


async def test_the_wallet_in_use_is_view_only_and_cannot_spend(xmr: XmrStack) -> None:
    wallet = xmr.node.merchant
    assert wallet.rpc("get_address", account_index=0,
                      address_index=[0])["address"] == xmr.driver.address  # the gateway's
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
        return (await xmr.gw.ops.readiness.chain_status(1))["XMR"]["status"] != "ok"
    await eventually_async(chain_down, 15, "the chain reported down")
    txid = xmr.node.pay([(invoice["address"], due)])  # paid and mined while it is down
    xmr.node.mine(10)
    xmr.node.merchant.start()  # no wallet open: the gateway recreates it from the keys
    doc = await xmr.until_status(invoice["id"], "settled", timeout=60)
    assert payment_of(doc) == [(txid, due)]
    assert (xmr.node.merchant.dir / xmr.driver.wallet_name).exists()

    async def chain_ok() -> bool:  # the catch-up's end is recorded within half a second
        return (await xmr.gw.ops.readiness.chain_status(1))["XMR"]["status"] == "ok"
    await eventually_async(chain_ok, 15, "the chain reported ok after the catch-up")


async def set_next_index(db_url: str, space: str, next_index: int) -> None:
    engine = create_async_engine(db_url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            moved = await conn.execute(
                update(derivation_counters).where(derivation_counters.c.space == space)
                .values(next_index=next_index))
            if not moved.rowcount:
                await conn.execute(insert(derivation_counters).values(
                    space=space, next_index=next_index))
    finally:
        await engine.dispose()


@pytest.mark.parametrize("xmr", ["own wallet"], indirect=True)
async def test_far_subaddresses_paid_while_the_wallet_file_was_lost_all_settle(
        xmr: XmrStack, caplog: pytest.LogCaptureFixture) -> None:
    """Issue 25: invoices at subaddresses (0, 6), (0, 66), (0, 215) and (0, 1000); the
    wallet-rpc stopped and the wallet file deleted; all four paid meanwhile. The wallet
    recreated from the keys scans only 200 subaddresses past those created in it: the
    gateway gives it all 1,000 before it scans, then it scans from the restore height;
    /readyz and `gateway doctor` say so while it lasts, and every invoice settles."""
    invoices = []
    for minor in (6, 66, 215, 1000):
        # As if that many invoices had been made before (the counter is moved on rather
        # than 1,000 invoices created): address-space index i is subaddress (0, i + 1).
        await set_next_index(xmr.env["GATEWAY_DATABASE__URL"], "XMR", minor - 1)
        invoices.append(await xmr.invoice("8.00"))
    wallet = xmr.node.merchant
    for minor, invoice in zip((6, 66, 215, 1000), invoices, strict=True):
        [found] = wallet.rpc("get_address", account_index=0,
                             address_index=[minor])["addresses"]
        assert found["address"] == invoice["address"]
    due = int(invoices[0]["amount_due_base_units"])

    await asyncio.to_thread(wallet.stop)  # SIGTERM
    for f in wallet.dir.glob(f"{xmr.driver.wallet_name}*"):
        f.unlink()  # the wallet file and its keys file are lost

    async def chain_down() -> bool:
        return (await xmr.gw.ops.readiness.chain_status(1))["XMR"]["status"] != "ok"
    await eventually_async(chain_down, 15, "the chain reported down")
    txid = xmr.node.pay([(i["address"], due) for i in invoices])  # while it is down
    xmr.node.mine(10)

    doctor_said: list[str] = []
    readyz_said: list[str] = []
    stop = asyncio.Event()

    async def doctor() -> None:  # the real command, run again and again meanwhile
        while not stop.is_set():
            done = await asyncio.to_thread(run_cli, xmr.env, "doctor")
            doctor_said.append(done.stdout)
            await asyncio.sleep(0.5)  # as an operator would: not back to back

    async def probe() -> None:
        while not stop.is_set():
            readyz_said.append(json.dumps((await readyz(xmr))[1]))
            await asyncio.sleep(0.2)

    watching = [asyncio.create_task(doctor()), asyncio.create_task(probe())]
    try:
        await asyncio.to_thread(wallet.start)  # no wallet file: recreated from the keys

        async def all_settled() -> bool:
            return all([(await xmr.status(i["id"]))["status"] == "settled"
                        for i in invoices])
        await eventually_async(all_settled, 120, "all four invoices settled")
    finally:
        stop.set()
        await asyncio.gather(*watching)
    for invoice in invoices:
        assert payment_of(await xmr.status(invoice["id"])) == [(txid, due)]

    catching = [s for s in doctor_said if "XMR node: catching up since" in s]
    assert catching, doctor_said
    assert "rescanning from height" in catching[0] and "subaddresses" in catching[0]
    assert any("catching up: " in s and "rescanning from height" in s
               for s in readyz_said), readyz_said
    said = [r.getMessage() for r in caplog.records]
    # "knows N of": subaddresses an allocation created before the catch-up began count.
    assert any(re.search(r"knows \d+ of the 1000 subaddresses", m) for m in said), said
    assert any("caught up" in m for m in said), said
    # Done: nothing is recorded as catching up any more (recorded within half a second).
    async def done() -> bool:
        return (await xmr.gw.ops.readiness.recorded_catch_ups()) == {}
    await eventually_async(done, 15, "the catch-up's end recorded")
    assert (await xmr.gw.ops.readiness.chain_status(5))["XMR"]["status"] == "ok"


def test_a_view_only_wallet_scans_200_subaddresses_past_those_created(
        monero: MoneroRegtest) -> None:
    """What README, docs/architecture.md and the adapter say of the lookahead: a wallet
    made from the keys, with no subaddress created in it, finds a payment to (0, 199) but
    not one to (0, 200) (wallet2's 50 is accounts, not subaddresses)."""
    address, view, spend = monero.new_keys()
    height = monero.height()
    full, watching = f"full-{address[:12]}", f"watch-{address[:12]}"
    wallet = monero.merchant
    wallet.rpc("generate_from_keys", filename=full, address=address, viewkey=view,
               spendkey=spend, password="", restore_height=height)
    for _ in range(4):  # (0, 1) .. (0, 256), 64 at a time
        wallet.rpc("create_address", account_index=0, count=64)
    minors = {m: wallet.rpc("get_address", account_index=0, address_index=[m])
              ["addresses"][0]["address"] for m in (199, 200)}
    wallet.rpc("close_wallet")
    monero.pay([(minors[199], XMR // 1000), (minors[200], XMR // 1000)])
    monero.mine(1)
    wallet.rpc("generate_from_keys", filename=watching, address=address, viewkey=view,
               password="", restore_height=height)
    try:
        wallet.rpc("refresh")
        found = wallet.rpc("get_transfers", **{"in": True}).get("in", [])
        assert sorted(int(e["subaddr_index"]["minor"]) for e in found) == [199]
    finally:
        wallet.rpc("close_wallet")


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
                       "--coin", "XMR", "--out", str(report_file))
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


def test_the_suites_wallet_rpcs_generate_their_throwaway_rsa_key_once(
    monero: MoneroRegtest,
) -> None:
    """Each wallet open in monero-wallet-rpc 0.18 generates a 4096-bit RSA key for an SSL
    client it never uses (tests/support/small_rsa.c): the session's wallet-rpcs load the
    library that generates it once per process, and wallets still open and answer with it
    (every other Monero test opens them)."""
    for wallet in (monero.miner, monero.merchant):
        assert wallet.proc is not None
        maps = Path(f"/proc/{wallet.proc.pid}/maps").read_text()
        assert "small_rsa.so" in maps, f"wallet-rpc {wallet.dir.name} runs without it"
