"""Prepaid time over HTTP against the gateway, a real Litecoin regtest node and a real
SMTP inbox, with a 30-second period: the first payment activates, the renewal invoice is
created and mailed before the end, paying it extends paid_until, not paying the next one
leads to grace then suspension, and a later payment activates the account again. Every
webhook is verified (standardwebhooks) and received once.

The gateway runs on a movable clock (real time plus an offset): each step of the schedule
is reached by moving the clock to it, not by waiting for it. The offset stays about a
minute, well inside the receiver's five-minute tolerance for webhook timestamps."""

import json
import re
from collections import Counter
from datetime import timedelta
from typing import Any

from standardwebhooks.webhooks import Webhook

from gateway.bootstrap import Overrides
from gateway.domain.timestamps import parse_time
from gateway.i18n import when
from tests.e2e.conftest import Stack, StackFactory
from tests.support.clocks import MovableClock
from tests.support.inbox import Inbox, smtp_env
from tests.support.services import create_api_key
from tests.support.stack import eventually

# Test-sized, so that the clock's offset stays small (see above). The renewal is paid after
# the second reminder, which leaves 10 s (of the clock, running) for it to be seen.
PERIOD = 30  # seconds
ENV = {
    "GATEWAY_PLANS": json.dumps({"vps": {"price": "9.99", "currency": "EUR",
                                         "period": f"{PERIOD} seconds"}}),
    "GATEWAY_BILLING__RENEWAL_LEAD": "20 seconds",
    "GATEWAY_BILLING__SECOND_REMINDER": "10 seconds",
    "GATEWAY_BILLING__GRACE": "5 seconds",
    "GATEWAY_BILLING__INTERVAL_SECONDS": "0.25",
}


async def pay(stack: Stack, invoice_id: str) -> None:
    """Pay in full, and mine only once the gateway saw the payment in the mempool: the time
    paid is then the gateway's own sighting (by its clock), not the header time of a block
    that the real node stamped with real time, a minute behind the gateway's clock."""
    invoice = await stack.read(invoice_id)
    stack.node.send(invoice["address"], invoice["amount_due"])
    await stack.until(invoice_id, lambda d: bool(d["payments"]), "the payment in the mempool")
    stack.node.mine(3)
    await stack.wait_status(invoice_id, "settled")


def of_account(stack: Stack, account_id: str, type_: str) -> list[dict[str, Any]]:
    return [d.doc["data"] for d in stack.receiver.of_type(type_)
            if d.doc["data"].get("account_id") == account_id]


async def wait_event(stack: Stack, account_id: str, type_: str, count: int,
                     timeout: float = 30) -> dict[str, Any]:
    await eventually(lambda: len(of_account(stack, account_id, type_)) >= count, timeout,
                     f"{type_} #{count}")
    return of_account(stack, account_id, type_)[count - 1]


async def test_renewal_grace_suspension_and_reactivation(
        make_stack: StackFactory, inbox: Inbox) -> None:
    clock = MovableClock()
    stack = await make_stack(overrides=Overrides(clock=clock), **ENV, **smtp_env(inbox))
    email = "prepaid@example.org"
    account = await stack.signup(email, "prepaid password 1")
    token = await stack.login(email, "prepaid password 1")
    me = await stack.api.ok("GET", "/v1/me", token=token)
    assert (me["plan"], me["paid_until"], me["billing_state"], me["next_invoice"]) == (
        None, None, None, None)

    # The first payment activates, with a paid_until one period on.
    first = await stack.api.ok("POST", "/v1/me/invoices", {"plan": "vps", "coin": "LTC"},
                               token)
    await pay(stack, first["id"])
    activated = await wait_event(stack, account["id"], "account.activated", 1)
    paid_until = parse_time(activated["paid_until"])
    assert activated["plan"] == "vps" and activated["reactivated"] is False
    me = await stack.api.ok("GET", "/v1/me", token=token)
    assert me["paid_until"] == activated["paid_until"] and me["billing_state"] == "active"
    assert (me["plan"], me["renewal_coin"], me["renewal_reminders"]) == ("vps", "LTC", True)

    # The renewal invoice: created 20 s before the end, announced and mailed before it.
    clock.to(paid_until - timedelta(seconds=20))
    expiring = await wait_event(stack, account["id"], "account.expiring", 1)
    renewal_id = expiring["invoice_id"]
    [mail] = await inbox.wait(email, 1, timeout=30)
    assert clock() < paid_until, "the reminder came too late"
    body = mail.get_payload(decode=True).decode()
    link = re.search(r"(http://\S+/pay/(inv_\w+))", body)
    assert link and link.group(2) == renewal_id
    async with stack.api.http.get(link.group(1)) as page:  # the link opens the checkout
        assert page.status == 200 and renewal_id in await page.text()
    renewal = await stack.read(renewal_id)
    assert renewal["address"] != (await stack.read(first["id"]))["address"]
    assert renewal["metadata"] == {"plan": "vps"} and renewal["coin"] == "LTC"
    status, me, _ = await stack.api.call("GET", f"/v1/accounts/{account['id']}",
                                         token=stack.key,
                                         headers={"X-Access-Reason": "renewal check"})
    assert status == 200, me
    assert me["next_invoice"]["invoice_id"] == renewal_id
    # The second reminder, 10 s before the end.
    clock.to(paid_until - timedelta(seconds=10))
    await inbox.wait(email, 2, timeout=30)

    # Paying it extends paid_until by one period from the old end (nothing lost).
    await pay(stack, renewal_id)
    renewed = await wait_event(stack, account["id"], "account.renewed", 1)
    assert parse_time(renewed["paid_until"]) == paid_until + timedelta(seconds=PERIOD)
    assert renewed["invoice_id"] == renewal_id

    # The next one is not paid: grace at the end, suspension 5 s later.
    ends = parse_time(renewed["paid_until"])
    clock.to(ends - timedelta(seconds=20))
    second = await wait_event(stack, account["id"], "account.expiring", 2, timeout=30)
    assert second["invoice_id"] != renewal_id
    clock.to(ends - timedelta(seconds=10))
    await inbox.wait(email, 4, timeout=30)  # its second reminder
    clock.to(ends)
    grace = await wait_event(stack, account["id"], "account.grace", 1, timeout=30)
    clock.to(ends + timedelta(seconds=5))
    suspended = await wait_event(stack, account["id"], "account.suspended", 1, timeout=30)
    assert grace["paid_until"] == suspended["paid_until"] == renewed["paid_until"]
    me = await stack.api.ok("GET", "/v1/me", token=token)
    assert me["billing_state"] == "suspended"

    # A later payment activates the account again.
    again = await stack.api.ok("POST", "/v1/me/invoices", {"plan": "vps", "coin": "LTC"},
                               token)
    await pay(stack, again["id"])
    reactivated = await wait_event(stack, account["id"], "account.activated", 2)
    assert reactivated["reactivated"] is True and reactivated["invoice_id"] == again["id"]
    assert parse_time(reactivated["paid_until"]) > clock()

    # /account shows the plan, paid_until and the next invoice; its form turns the
    # reminders off (and keeps plan and coin).
    cookie = {"Cookie": f"__Host-session={token}"}
    async with stack.api.http.get(f"{stack.gateway.base}/account", headers=cookie) as page:
        html = await page.text()
    assert page.status == 200
    assert re.search(r'id="prepaid-plan">vps<', html)
    shown = re.search(r'id="paid-until">([^<]+)<', html)
    # In the page's language (English here), in UTC with the offset (docs/i18n.md).
    assert shown and shown.group(1) == when(parse_time(reactivated["paid_until"]), "en")
    assert re.search(r'id="billing-state">active<', html)
    assert 'id="next-invoice"' in html
    csrf = re.search(r'name="csrf" value="([^"]+)"', html)
    assert csrf
    async with stack.api.http.post(
            f"{stack.gateway.base}/account/renewal", headers=cookie, allow_redirects=False,
            data={"csrf": csrf.group(1), "plan": "vps", "coin": "LTC"}) as resp:
        assert resp.status == 303, await resp.text()
    me = await stack.api.ok("GET", "/v1/me", token=token)
    assert (me["renewal_reminders"], me["plan"], me["renewal_coin"]) == (False, "vps", "LTC")

    # The payments export shows which period each invoice paid for.
    finance = await create_api_key(stack.gateway.env, "finance", "payments:read")
    stack.secrets.add(finance)
    status, raw, _ = await stack.api.fetch("/v1/payments?format=json", token=finance)
    assert status == 200
    periods = {p["invoice_id"]: (p["plan"], p["period_start"], p["period_end"])
               for p in json.loads(raw)["data"]}
    assert periods[renewal_id] == ("vps", activated["paid_until"], renewed["paid_until"])

    # Every webhook verified, each received once.
    await eventually(lambda: len(of_account(stack, account["id"], "invoice.settled")) == 3,
                     20, "three settlements")
    wh = Webhook(stack.endpoint["secret"])
    ids = Counter(d.headers["webhook-id"] for d in stack.receiver.deliveries)
    assert all(n == 1 for n in ids.values())
    for delivery in stack.receiver.deliveries:
        assert wh.verify(delivery.body, delivery.headers)["type"] == delivery.type
        assert email.encode() not in delivery.body
    story = Counter(d.type for d in stack.receiver.deliveries
                    if d.doc["data"].get("account_id") == account["id"]
                    and d.type.startswith("account."))
    assert story == {"account.created": 1, "account.activated": 2, "account.expiring": 2,
                     "account.renewed": 1, "account.grace": 1, "account.suspended": 1}
    # Only the reminders were mailed: two for each renewal, none after the suspension.
    assert len(inbox.to(email)) == 4
