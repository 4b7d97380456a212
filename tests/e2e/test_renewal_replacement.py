"""Changing the renewal plan or coin again and again through the portal form (issue 27
item 7): each change replaces the unpaid renewal invoice, and the replaced one expires at
once, so only one renewal invoice is ever payable. Before, every toggle left another
invoice payable at its own locked rate on its own fresh address (a free choice of rates,
addresses burnt past the open-invoice cap)."""

import json
import re
from datetime import UTC, datetime, timedelta

from gateway.bootstrap import Overrides
from tests.e2e.conftest import StackFactory
from tests.support.fake_gateway import Clock
from tests.support.stack import eventually

ENV = {
    "GATEWAY_PLANS": json.dumps({"vps": {"price": "8.00", "currency": "EUR",
                                         "period": "30 days"},
                                 "big": {"price": "16.00", "currency": "EUR",
                                         "period": "30 days"}}),
    "GATEWAY_BILLING__INTERVAL_SECONDS": "0.2",
}


async def test_toggling_the_renewal_plan_leaves_one_payable_renewal_invoice(
        make_stack: StackFactory) -> None:
    clock = Clock(datetime.now(UTC))
    stack = await make_stack(overrides=Overrides(clock=clock), **ENV)
    email, password = "toggler@example.org", "toggle password 1"
    account = await stack.signup(email, password)
    token = await stack.login(email, password)
    first = await stack.api.ok("POST", "/v1/me/invoices", {"plan": "vps", "coin": "LTC"},
                               token)
    stack.node.send(first["address"], first["amount_due"])
    stack.node.mine(3)
    await stack.wait_status(first["id"], "settled")

    clock.advance(days=24)  # inside the renewal lead: the periodic task creates it
    token = await stack.login(email, password)  # the first session has expired by now

    async def renewal() -> str | None:
        me = await stack.api.ok("GET", "/v1/me", token=token)
        return me["next_invoice"]["invoice_id"] if me["next_invoice"] else None
    await eventually(lambda: bool(stack.receiver.of_type("account.expiring")), 20,
                     "the renewal invoice (account.expiring)")
    created = await renewal()
    assert created is not None

    cookie = {"Cookie": f"__Host-session={token}"}
    seen = [created]
    chosen = []
    for plan in ("big", "vps") * 5:
        async with stack.api.http.get(f"{stack.gateway.base}/account",
                                      headers=cookie) as page:
            csrf = re.search(r'name="csrf" value="([^"]+)"', await page.text())
        assert csrf
        async with stack.api.http.post(
                f"{stack.gateway.base}/account/renewal", headers=cookie,
                allow_redirects=False,
                data={"csrf": csrf.group(1), "plan": plan, "coin": "LTC",
                      "reminders": "on"}) as resp:
            assert resp.status == 303, await resp.text()
        current = await renewal()
        assert current is not None
        me = await stack.api.ok("GET", "/v1/me", token=token)
        chosen.append(me["plan"])
        if current not in seen:
            seen.append(current)

    # Five replacements, each expiring the one before; then the choice is still saved
    # (it applies from the next renewal) but no further address is taken.
    assert chosen == ["big", "vps"] * 5
    assert len(seen) == 6, seen
    statuses = {i: (await stack.read(i))["status"] for i in seen}
    assert [statuses[i] for i in seen] == ["expired"] * 5 + ["new"], statuses
    open_invoices = await stack.scalar(
        "SELECT count(*) FROM invoices WHERE account_id = :a AND status = 'new'",
        a=account["id"])
    assert open_invoices == 1
    assert await stack.scalar("SELECT count(*) FROM invoices WHERE account_id = :a",
                              a=account["id"]) == 7  # the first, the renewal, 5 replacements
    # A replaced invoice paid now is late: it does not settle at its old locked rate.
    old = await stack.read(seen[1])
    assert datetime.fromisoformat(old["expires_at"].replace("Z", "+00:00")) <= \
        clock() + timedelta(seconds=1)
