"""Cash by mail in headless Chromium with JavaScript off (docs/cash.md), against a real
`gateway serve`: a customer asks for a one-time token in the portal and reads the postal
instructions, a finance member records the envelope in the staff console, the customer
sees the credit and buys a plan period from it (no invoice: the service follows, with
`paid_until` set), and the webhooks say `account.credited` with kind cash and then
`account.activated`, never the token. No page loads anything from another origin or
needs a script."""

import asyncio
import json
import re
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By

from tests.e2e.conftest import StackFactory
from tests.e2e.test_portal import at, fill, submit, type_into
from tests.e2e.test_staff_console import (
    PASSWORD,
    add_staff_members,
    console,
    enrol,
    no_other_origin,
    staff_stack,
)
from tests.support.browser import chromium
from tests.support.stack import eventually

pytestmark = pytest.mark.e2e

EMAIL = "cash.portal@example.org"
CUSTOMER_PASSWORD = "customer pw 123"
ENV = {
    "GATEWAY_PLANS": json.dumps({"vps": {"price": "9.99", "currency": "EUR",
                                         "period": "30 days"}}),
    "GATEWAY_CASH__POSTAL_ADDRESS": "Example Hosting\nPO Box 123\n1000 AA Amsterdam",
    "GATEWAY_CASH__INSTRUCTIONS": "Euro notes only, with the token on a slip.",
}


async def test_cash_token_envelope_credit_and_service_without_javascript(
        make_stack: StackFactory, tmp_path: Path) -> None:
    stack = await staff_stack(make_stack, **ENV)
    account = await stack.signup(EMAIL, CUSTOMER_PASSWORD, currency="EUR")
    await add_staff_members(stack, ("fiona", "finance"))
    base, staff = stack.gateway.base, console(stack)
    browser = await asyncio.to_thread(chromium, tmp_path / "chromium", False)
    try:
        await asyncio.to_thread(browser.get, f"{base}/login")
        fill(browser, email=EMAIL, password=CUSTOMER_PASSWORD)
        await asyncio.to_thread(submit, browser)
        await at(browser, f"{base}/account")
        await asyncio.to_thread(browser.find_element(By.ID, "pay-by-cash").click)
        await at(browser, f"{base}/account/cash")
        assert "PO Box 123" in browser.find_element(By.ID, "cash-address").text
        assert "Euro notes only" in browser.find_element(By.ID, "cash-instructions").text
        await asyncio.to_thread(submit, browser, "#cash-button")
        token = browser.find_element(By.ID, "cash-token").text
        assert re.fullmatch(r"[2-9A-HJKMNP-Z]{4}(-[2-9A-HJKMNP-Z]{4}){2}", token), token
        stack.secrets.add(token)  # never in the gateway's log
        stack.secrets.add(token.replace("-", ""))
        no_other_origin(browser.page_source)
        await asyncio.to_thread(browser.get, f"{base}/account/cash")
        assert token not in browser.page_source  # shown once
        assert browser.find_elements(By.ID, "cash-open")

        await enrol(browser, staff, "fiona")
        await asyncio.to_thread(browser.get, f"{staff}/finance")
        await asyncio.to_thread(browser.find_element(By.ID, "cash-link").click)
        await at(browser, f"{staff}/finance/cash")
        type_into(browser, "cash-token", token.lower())
        type_into(browser, "cash-amount", "20.00")
        browser.find_element(By.CSS_SELECTOR, "#cash-currency option[value=EUR]").click()
        type_into(browser, "cash-note", "one 20 note")
        await asyncio.to_thread(submit, browser, "#cash-record")
        assert "20.00 EUR credited" in browser.find_element(By.ID, "cash-recorded").text
        assert account["id"] not in browser.page_source
        no_other_origin(browser.page_source)
        # The same envelope again: refused, nothing credited twice.
        type_into(browser, "cash-token", token)
        type_into(browser, "cash-amount", "20.00")
        await asyncio.to_thread(submit, browser, "#cash-record")
        assert "used already" in browser.find_element(By.ID, "cash-error").text

        await asyncio.to_thread(browser.get, f"{base}/account")
        assert browser.find_element(By.ID, "credit-balance").text == "€20.00"
        assert "cash" in browser.find_element(By.ID, "credit-entries").text
        browser.find_element(By.ID, "plan-vps").click()
        await asyncio.to_thread(submit, browser, "#buy-button")
        await at(browser, f"{base}/account?credit=1")
        assert browser.find_element(By.ID, "credit-bought").text
        assert browser.find_element(By.ID, "paid-until").text
        assert browser.find_element(By.ID, "credit-balance").text == "€10.01"
        no_other_origin(browser.page_source)
    finally:
        await asyncio.to_thread(browser.quit)
    stack.secrets.add(PASSWORD)

    def events_of(type_: str) -> list[dict[str, object]]:
        return [d.doc["data"] for d in stack.receiver.of_type(type_)
                if d.doc["data"].get("account_id") == account["id"]]

    await eventually(lambda: len(events_of("account.activated")) == 1, 20,
                     "account.activated delivered")
    [credited] = events_of("account.credited")
    assert (credited["kind"], credited["amount"], credited["currency"]) == (
        "cash", "20.00", "EUR")
    for delivery in stack.receiver.deliveries:
        body = delivery.body.decode()
        assert token not in body and token.replace("-", "") not in body
