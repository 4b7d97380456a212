"""Vouchers in headless Chromium with JavaScript off (docs/vouchers.md, issue 31's
acceptance), against the gateway `gateway serve` runs: an admin makes a batch in the
staff console and gets its printable sheet (the codes shown once); a new customer signs
up, redeems a code for a plan in the portal and is active with `paid_until` set. No page
loads anything from another origin or needs a script; no code reaches the log."""

import asyncio
import json
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By

from gateway.domain.vouchers import check_character
from tests.e2e.conftest import StackFactory
from tests.e2e.test_portal import at, fill, submit, type_into
from tests.e2e.test_staff_console import (
    add_staff_members,
    console,
    enrol,
    no_other_origin,
    staff_stack,
)
from tests.support.browser import chromium

pytestmark = pytest.mark.e2e

EMAIL = "voucher.buyer@example.org"
CUSTOMER_PASSWORD = "customer pw 12345"
PLANS = json.dumps({"vps-small": {"price": "8.00", "currency": "EUR",
                                  "period": "30 days"}})


@pytest.mark.any_database  # what the browser shows; tests/integration runs both databases
async def test_admin_prints_a_batch_and_a_new_customer_redeems_a_plan_code(
        make_stack: StackFactory, tmp_path: Path) -> None:
    stack = await staff_stack(make_stack, GATEWAY_PLANS=PLANS)
    await add_staff_members(stack, ("ada", "admin"))
    base, staff = stack.gateway.base, console(stack)
    browser = await asyncio.to_thread(chromium, tmp_path / "chromium", False)
    try:
        await enrol(browser, staff, "ada")
        await asyncio.to_thread(browser.get, f"{staff}/admin")
        await asyncio.to_thread(browser.find_element(By.ID, "vouchers-link").click)
        await at(browser, f"{staff}/admin/vouchers")
        type_into(browser, "v-count", "3")
        browser.find_element(By.CSS_SELECTOR, "#v-plan option[value=vps-small]").click()
        type_into(browser, "v-expires", "2099-12-31")
        type_into(browser, "v-label", "shop A")
        await asyncio.to_thread(submit, browser, "#voucher-create")
        # The answer is the sheet: the codes, this once, ready to print.
        assert browser.find_element(By.ID, "shown-once").is_displayed()
        codes = [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".voucher .code")]
        assert len(codes) == 3 and all(len(c) == 23 for c in codes)
        assert "8.00 EUR" in browser.find_element(By.CSS_SELECTOR, ".sheet-head").text
        no_other_origin(browser.page_source)
        stack.secrets.update(codes)  # never in the gateway's log
        await asyncio.to_thread(browser.get, f"{staff}/admin/vouchers")
        row = browser.find_element(By.CSS_SELECTOR, "#voucher-batches .voucher-batch").text
        assert "0 of 3" in row and "shop A" in row and "active" in row
        assert not any(c in browser.page_source for c in codes)  # never shown again

        stack.secrets.update({EMAIL, CUSTOMER_PASSWORD})
        await asyncio.to_thread(browser.get, f"{base}/signup")
        fill(browser, email=EMAIL, password=CUSTOMER_PASSWORD)
        await asyncio.to_thread(submit, browser)
        await at(browser, f"{base}/account")
        assert "Not active yet" in browser.find_element(By.ID, "account-status").text
        # Typed the way people type: lower case, spaces for dashes.
        type_into(browser, "voucher-code", codes[1].lower().replace("-", " "))
        await asyncio.to_thread(submit, browser, "#voucher-button")
        await at(browser, f"{base}/account?voucher=1#vouchers")
        assert browser.find_element(By.ID, "voucher-redeemed").is_displayed()
        assert browser.find_element(By.ID, "prepaid-plan").text == "vps-small"
        assert browser.find_element(By.ID, "paid-until").text.endswith("UTC+00:00")
        assert browser.find_element(By.ID, "billing-state").text == "active"
        kinds = [e.text for e in browser.find_elements(
            By.CSS_SELECTOR, "#credit-entries tbody tr td:nth-child(2)")]
        assert sorted(kinds) == ["spent", "voucher"]
        no_other_origin(browser.page_source)
        # The same code again (a second click): answered as redeemed, credited once.
        type_into(browser, "voucher-code", codes[1])
        await asyncio.to_thread(submit, browser, "#voucher-button")
        await at(browser, f"{base}/account?voucher=1#vouchers")
        kinds = [e.text for e in browser.find_elements(
            By.CSS_SELECTOR, "#credit-entries tbody tr td:nth-child(2)")]
        assert sorted(kinds) == ["spent", "voucher"]
        # A code that does not exist: refused like any code that cannot be redeemed.
        wrong = codes[0].replace("-", "")[:-1][::-1]  # 19 other characters
        type_into(browser, "voucher-code", wrong + check_character(wrong))
        await asyncio.to_thread(submit, browser, "#voucher-button")
        assert "cannot be redeemed" in browser.find_element(By.CSS_SELECTOR, ".error").text
    finally:
        await asyncio.to_thread(browser.quit)
