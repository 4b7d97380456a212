"""Refunds in headless Chromium with JavaScript off (docs/refunds.md), against a real
`gateway serve` following the session's litecoind: the customer sees their credit,
asks for a refund in the portal (a plain form with the password), a finance member
approves it in the staff console (saying why they look at the address), and the customer
sees it approved, then, once the operator's wallet has paid it and the payment is at
the coin's depth, completed. No page loads anything from another origin or needs a script."""

import asyncio
import time
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By

from gateway.domain.credit import CreditEntry, CreditKind
from tests.e2e.conftest import StackFactory
from tests.e2e.test_portal import at, fill, submit, type_into
from tests.e2e.test_staff_console import (
    PASSWORD,
    add_staff_members,
    console,
    enrol,
    look,
    no_other_origin,
    staff_stack,
)
from tests.support.browser import chromium
from tests.support.services import gateway_of

pytestmark = pytest.mark.e2e

EMAIL = "refund.portal@example.org"
CUSTOMER_PASSWORD = "customer pw 123"


async def test_customer_asks_finance_approves_without_javascript(
        make_stack: StackFactory, tmp_path: Path) -> None:
    stack = await staff_stack(make_stack)
    account = await stack.signup(EMAIL, CUSTOMER_PASSWORD, currency="EUR")
    async with gateway_of(stack.gateway.env) as gw:
        async with gw.uow() as uow:
            await uow.credit.add(CreditEntry(account["id"], CreditKind.OVERPAID, 2000, "EUR",
                                             "payment:LTC:e2e:0", gw.clock()))
            await uow.commit()
    await add_staff_members(stack, ("fiona", "finance"))
    address = str(stack.node.rpc("getnewaddress", "", "bech32", wallet=stack.node.wallet))
    stack.secrets.add(address)  # personal data: never in the gateway's log
    base, staff = stack.gateway.base, console(stack)
    browser = await asyncio.to_thread(chromium, tmp_path / "chromium", False)
    try:
        await asyncio.to_thread(browser.get, f"{base}/login")
        fill(browser, email=EMAIL, password=CUSTOMER_PASSWORD)
        await asyncio.to_thread(submit, browser)
        await at(browser, f"{base}/account")
        assert browser.find_element(By.ID, "credit-balance").text == "€20.00"
        type_into(browser, "refund-amount", "12.00")
        browser.find_element(By.CSS_SELECTOR, "#refund-coin option[value=LTC]").click()
        type_into(browser, "refund-address", address)
        type_into(browser, "refund-password", CUSTOMER_PASSWORD)
        await asyncio.to_thread(submit, browser, "#refund-button")
        await at(browser, f"{base}/account?saved=1#refunds")
        assert browser.find_element(By.CSS_SELECTOR, ".refund-status").text == "requested"
        assert browser.find_element(By.ID, "credit-balance").text == "€8.00"
        no_other_origin(browser.page_source)
        # A second one, withdrawn with its Cancel button: the amount comes back.
        type_into(browser, "refund-amount", "3.00")
        type_into(browser, "refund-address", address)
        type_into(browser, "refund-password", CUSTOMER_PASSWORD)
        await asyncio.to_thread(submit, browser, "#refund-button")
        await at(browser, f"{base}/account?saved=1#refunds")
        assert browser.find_element(By.ID, "credit-balance").text == "€5.00"
        await asyncio.to_thread(submit, browser, ".cancel-refund")  # the newest first
        await at(browser, f"{base}/account?saved=1#refunds")
        assert [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".refund-status")] \
            == ["cancelled", "requested"]
        assert browser.find_element(By.ID, "credit-balance").text == "€8.00"

        await enrol(browser, staff, "fiona")
        await asyncio.to_thread(browser.get, f"{staff}/finance/refunds")
        assert address not in browser.page_source  # the queue names no address
        link = browser.find_element(By.CSS_SELECTOR, "#refund-queue a")
        refund_path = str(link.get_attribute("href")).removeprefix(staff)
        await asyncio.to_thread(link.click)
        await look(browser, staff, refund_path, "customer asked for a refund")
        assert browser.find_element(By.ID, "address").text == address
        fill(browser, reason="credit left from an overpayment")
        await asyncio.to_thread(submit, browser, "#approve")
        assert browser.find_element(By.ID, "status").text == "approved"
        # 12.00 EUR at 80 EUR per LTC, fixed by the approval; what the wallet is given
        # (a PSBT once the UTXO family prepares refunds, else the amount to pay by hand).
        assert browser.find_element(By.ID, "crypto-amount").text == "15000000"
        assert browser.find_element(By.ID, "uri").text
        assert "<script" not in browser.page_source.lower()

        await asyncio.to_thread(browser.get, f"{base}/account")
        assert [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".refund-status")] \
            == ["cancelled", "approved"]
        assert not browser.find_elements(By.CSS_SELECTOR, ".cancel-refund")

        # The operator's wallet pays it (here by hand: the stack's xpub is a random one);
        # the gateway sees the payment at the customer's address and, at the coin's depth,
        # the customer sees the refund completed.
        stack.node.send(address, "0.15")
        stack.node.mine(3)
        deadline = time.monotonic() + 30
        while True:
            await asyncio.to_thread(browser.get, f"{base}/account")
            shown = [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".refund-status")]
            if shown == ["cancelled", "completed"]:
                break
            assert time.monotonic() < deadline, f"the refund is not completed: {shown}"
            await asyncio.sleep(0.3)
        no_other_origin(browser.page_source)
    finally:
        await asyncio.to_thread(browser.quit)
    stack.secrets.add(PASSWORD)
