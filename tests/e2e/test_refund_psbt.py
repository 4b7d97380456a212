"""Issue 30's acceptance on the real litecoind, end to end over HTTP: an invoice underpaid
until it expires becomes credit; the next period is bought with that credit and a smaller
invoice, paid generously, whose excess becomes credit; the customer asks for that rest
back (password required); a finance member approves it in the staff console; the PSBT the
gateway prepares is signed by a wallet holding the configured xpub's keys (here, in the
test only: the gateway never holds one), finalised and sent; the gateway, watching the
customer's address, marks the refund sent and, at the coin's depth, completed
(`refund.completed`, verified), and the customer received exactly the approved amount."""

import asyncio
import json
import re
import time
from datetime import timedelta
from decimal import Decimal
from typing import Any

import aiohttp
import pyotp
from standardwebhooks.webhooks import Webhook

from gateway.bootstrap import Overrides
from gateway.domain.timestamps import parse_time
from gateway.services.finance import Period
from gateway.staff.context import COOKIE
from tests.e2e.conftest import StackFactory
from tests.e2e.test_account_credit import send_seen, wait_event
from tests.integration.test_utxo_refund import customer_address, make_wallet
from tests.support.clocks import MovableClock
from tests.support.hd_private import HARDENED as H
from tests.support.hd_private import PrivateNode
from tests.support.inprocess import InProcessGateway
from tests.support.nodes import free_port
from tests.support.stack import Api

STAFF_PASSWORD = "a long staff password 1"
PASSWORD = "refund password 1"


def lits(value: Any) -> int:
    return int(Decimal(str(value)).scaleb(8))


async def finance_member(gateway: InProcessGateway, clock: MovableClock) -> str:
    """A finance member's staff session token, enrolled in TOTP as the console asks."""
    assert gateway.gw is not None
    staff = gateway.gw.services.staff

    async def enrol() -> str:
        await staff.add("fiona", "finance", STAFF_PASSWORD)
        first = await staff.log_in("fiona", STAFF_PASSWORD, None, "127.0.0.1")
        session = await staff.session(first.token)
        enrolment = await staff.begin_enrolment(session)
        return await staff.confirm_enrolment(
            session, pyotp.TOTP(enrolment.secret).at(clock()), "127.0.0.1")

    return await gateway.within(enrol())


async def refund_status(api: Api, token: str, status: str, timeout: float = 30
                        ) -> dict[str, Any]:
    """Polls the customer's newest refund until it has `status`; its last state."""
    deadline = time.monotonic() + timeout
    while True:
        doc = (await api.ok("GET", "/v1/me/refunds", token=token))["data"][0]
        if doc["status"] == status:
            return dict(doc)
        assert time.monotonic() < deadline, f"timed out waiting for {status}: {doc}"
        await asyncio.sleep(0.2)


async def test_underpaid_credit_spent_and_the_rest_refunded_with_a_signed_psbt(
        make_stack: StackFactory) -> None:
    master = PrivateNode.master()
    account_key = master.path(84 | H, 1 | H, 0 | H)
    clock = MovableClock()
    staff_port = free_port()
    stack = await make_stack(
        overrides=Overrides(clock=clock),
        GATEWAY_COINS__LTC__XPUB=account_key.xpub(),
        GATEWAY_COINS__LTC__FALLBACK_FEE_RATE="20",
        GATEWAY_STAFF__LISTEN=f"127.0.0.1:{staff_port}",
        GATEWAY_PLANS=json.dumps({"vps": {"price": "9.99", "currency": "EUR",
                                          "period": "30 days"}}),
        GATEWAY_INVOICES__EXPIRY_MINUTES="0.5",
        GATEWAY_CREDIT__INTERVAL_SECONDS="0.25")
    node = stack.node
    signer = make_wallet(node, [f"wpkh({account_key.xprv()}/{b}/*)" for b in (0, 1)])
    account = await stack.signup("refund@example.org", PASSWORD)
    token = await stack.login("refund@example.org", PASSWORD)

    # Underpaid until expiry: credit.
    first = await stack.api.ok("POST", "/v1/me/invoices", {"plan": "vps", "coin": "LTC"},
                               token)
    half = str((Decimal(first["amount_due"]) / 2).quantize(Decimal("0.00000001")))
    await send_seen(stack, first["id"], half)
    await stack.until(first["id"], lambda d: d["payments"][0]["confirmations"] >= 3,
                      "three confirmations")
    clock.to(parse_time(first["expires_at"]) + timedelta(seconds=2))
    await stack.wait_status(first["id"], "expired")
    underpaid = await wait_event(stack, account["id"], "account.credited")
    assert underpaid["kind"] == "underpaid"

    # The next period: credit first, and the smaller invoice paid 0.05 LTC over.
    second = await stack.api.ok("POST", "/v1/me/invoices", {"plan": "vps", "coin": "LTC"},
                                token)
    assert second["metadata"]["credit_applied"] == underpaid["balance"]
    await send_seen(stack, second["id"], str(Decimal(second["amount_due"]) + Decimal("0.05")))
    await stack.wait_status(second["id"], "settled")
    await wait_event(stack, account["id"], "account.activated")
    overpaid = await wait_event(stack, account["id"], "account.credited", count=2)
    assert overpaid["kind"] == "overpaid"
    rest = overpaid["balance"]  # what the customer asks back: the whole balance
    assert Decimal(rest) >= Decimal("3.99")  # 0.05 LTC at 80 EUR, rounded down

    # The customer asks for it back, to an address of their own wallet.
    customer_wallet, address = customer_address(node)
    status, refused, _ = await stack.api.call("POST", "/v1/me/refunds", {
        "amount": rest, "coin": "LTC", "address": address,
        "current_password": "not it"}, token)
    assert status in (401, 403, 422), refused
    requested = await stack.api.ok("POST", "/v1/me/refunds", {
        "amount": rest, "coin": "LTC", "address": address, "current_password": PASSWORD},
        token)
    assert requested["status"] == "requested"
    assert (await stack.api.ok("GET", "/v1/me", token=token))["credit"]["balance_minor"] == 0

    # A finance member approves it in the staff console and takes the PSBT.
    assert isinstance(stack.gateway, InProcessGateway)
    member = await finance_member(stack.gateway, clock)
    base = f"http://127.0.0.1:{staff_port}/staff"
    page_path = f"{base}/finance/refunds/{requested['id']}"
    why = "customer asked for their credit"
    cookies = {"Cookie": f"{COOKIE}={member}"}
    async with aiohttp.ClientSession() as http:
        async with http.get(page_path, params={"reason": why}, headers=cookies) as resp:
            assert resp.status == 200
            page = await resp.text()
        assert address in page
        csrf = re.search(r'name="csrf" value="([^"]+)"', page)
        assert csrf is not None
        async with http.post(page_path + "/approve", allow_redirects=False, headers={
                **cookies, "Origin": f"http://127.0.0.1:{staff_port}"},
                data={"reason": "paid by them", "look_reason": why, "csrf": csrf[1]}) as resp:
            assert resp.status == 303, await resp.text()
        async with http.get(page_path + "/refund.psbt", params={"reason": why},
                            headers=cookies) as resp:
            assert resp.status == 200
            psbt = (await resp.text()).strip()
    approved = await wait_event(stack, account["id"], "refund.approved")
    crypto = int(approved["amount_base_units"])

    # The operator's own wallet signs and sends it; the gateway sees it on the chain.
    signed = node.rpc("walletprocesspsbt", psbt, wallet=signer)
    assert signed["complete"], signed
    txid = node.rpc("sendrawtransaction", node.rpc("finalizepsbt", signed["psbt"])["hex"])
    await refund_status(stack.api, token, "sent")
    node.mine(3)
    completed = await wait_event(stack, account["id"], "refund.completed")
    assert (completed["refund_id"], completed["txid"]) == (requested["id"], txid)
    [delivery] = stack.receiver.of_type("refund.completed")
    Webhook(stack.endpoint["secret"]).verify(delivery.body, delivery.headers)
    assert address not in delivery.body.decode()
    done = await refund_status(stack.api, token, "completed")
    assert done["txid"] == txid
    received = node.rpc("getreceivedbyaddress", address, 3, wallet=customer_wallet)
    assert lits(received) == crypto

    # Finance sees the refund in the ledger export with its coin, base units and txid.
    gw = stack.gateway.gw
    assert gw is not None
    start, end = clock() - timedelta(days=1), clock() + timedelta(days=1)
    lines = await stack.gateway.within(gw.services.finance.credit(Period(start, end)))
    [out] = [line for line in lines if line["kind"] == "refund"]
    assert (out["refund_id"], out["coin"], out["txid"], out["amount_base_units"]) == (
        requested["id"], "LTC", txid, str(crypto))

    # Reconciliation checks the refund's payment against the node too.
    report = await stack.gateway.within(gw.services.reconcile.run(start, end, "LTC"))
    assert report.clean and report.checked_refund_outputs == 1, report.findings
    await stack.rows("UPDATE refund_outputs SET amount = :a", a=str(crypto + 1))
    report = await stack.gateway.within(gw.services.reconcile.run(start, end, "LTC"))
    assert [(f.kind, f.txid) for f in report.findings] == [("refund_amount", txid)]
    assert requested["id"] in report.findings[0].detail
