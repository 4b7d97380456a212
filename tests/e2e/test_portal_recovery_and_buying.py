"""In Chromium, from what a customer actually gets: the mailed reset link to a login with
the new password (2FA on and off), buying from /account and paying an expired invoice
again, and a message whenever a form sends the customer back to the login page."""

import asyncio
import re
import time
from pathlib import Path

import pyotp
import pytest
from selenium.webdriver.common.by import By

from tests.e2e.conftest import StackFactory
from tests.e2e.test_portal import at, fill, no_other_origin, submit
from tests.e2e.test_recovery_mail import body_of
from tests.support.browser import chromium
from tests.support.inbox import Inbox, smtp_env

# With JavaScript on, what differs is the browser's side: that variant runs once (make
# test's PostgreSQL run); without it, on both databases.
JS_ONCE = pytest.mark.any_database


def mailed_link(body: str) -> str:
    match = re.search(r"(http://\S+/reset\?token=\S+)", body)
    assert match, body
    return match.group(1)


@pytest.mark.parametrize("javascript", [False, pytest.param(True, marks=JS_ONCE)],
                         ids=["no-js", "js"])
async def test_forgot_password_from_the_mail_to_a_login(
    make_stack: StackFactory, inbox: Inbox, tmp_path: Path, javascript: bool
) -> None:
    stack = await make_stack(GATEWAY_SERVER__PATH_PREFIX="/portal", **smtp_env(inbox))
    email, old, new = "forgetful@example.org", "old password 11", "brand new password 22"
    await stack.signup(email, old)
    stack.secrets.add(new)
    base = stack.gateway.base
    browser = await asyncio.to_thread(chromium, tmp_path / "profile", javascript)
    try:
        await asyncio.to_thread(browser.get, f"{base}/login")
        await asyncio.to_thread(submit, browser, "#forgot")  # a link, not a form
        await at(browser, f"{base}/forgot")
        no_other_origin(browser.page_source)
        fill(browser, email=email)
        await asyncio.to_thread(submit, browser)
        known_answer = browser.find_element(By.ID, "message").text
        # An unknown address gets exactly the same page, and no mail.
        await asyncio.to_thread(browser.get, f"{base}/forgot")
        fill(browser, email="stranger@example.org")
        await asyncio.to_thread(submit, browser)
        assert browser.find_element(By.ID, "message").text == known_answer

        [mail] = await inbox.wait(email, 1)
        assert inbox.to("stranger@example.org") == []
        link = mailed_link(body_of(mail))
        stack.secrets.add(link.rsplit("=", 1)[1])
        assert link.startswith(f"{base}/reset?token=")
        await asyncio.to_thread(browser.get, link)
        no_other_origin(browser.page_source)
        assert not browser.find_elements(By.ID, "totp_code")  # 2FA is off
        fill(browser, new_password=new, confirm_password="not the same one")
        await asyncio.to_thread(submit, browser)
        assert "differ" in browser.find_element(By.CSS_SELECTOR, ".error").text
        fill(browser, new_password=new, confirm_password=new)
        await asyncio.to_thread(submit, browser)
        await at(browser, f"{base}/login?done=reset")
        assert "password was changed" in browser.find_element(By.ID, "login-message").text

        fill(browser, email=email, password=old)
        await asyncio.to_thread(submit, browser)
        assert browser.find_element(By.CSS_SELECTOR, ".error")  # the old one is gone
        fill(browser, email=email, password=new)
        await asyncio.to_thread(submit, browser)
        await at(browser, f"{base}/account")

        # The link worked once: opened again, it says so and offers a new one.
        await asyncio.to_thread(browser.get, link)
        assert "already used" in browser.find_element(By.ID, "message").text
        assert browser.find_element(By.LINK_TEXT, "Ask for a new link")
    finally:
        await asyncio.to_thread(browser.quit)


async def test_reset_page_asks_for_the_second_factor_when_it_is_on(
    make_stack: StackFactory, inbox: Inbox, tmp_path: Path
) -> None:
    stack = await make_stack(**smtp_env(inbox))
    email, new = "careful@example.org", "another new password 33"
    await stack.signup(email, "first password 11")
    session = await stack.login(email, "first password 11")
    begun = await stack.api.ok("POST", "/v1/me/totp", {"current_password": "first password 11"},
                               session)
    totp = pyotp.TOTP(begun["secret"])
    stack.secrets.add(begun["secret"])
    recovery = (await stack.api.ok("POST", "/v1/me/totp/confirm", {"code": totp.now()},
                                   session))["recovery_codes"]
    stack.secrets.update(recovery)
    await stack.api.call("POST", "/v1/password-resets", {"email": email})
    [mail] = await inbox.wait(email, 1)
    link = mailed_link(body_of(mail))
    stack.secrets.update({link.rsplit("=", 1)[1], new})
    base = stack.gateway.base
    browser = await asyncio.to_thread(chromium, tmp_path / "profile", False)
    try:
        await asyncio.to_thread(browser.get, link)
        fill(browser, new_password=new, confirm_password=new, totp_code="000000")
        await asyncio.to_thread(submit, browser)
        assert "two-factor" in browser.find_element(By.CSS_SELECTOR, ".error").text
        code = totp.at(time.time() + 30)  # a step not used yet
        fill(browser, new_password=new, confirm_password=new, totp_code=code)
        await asyncio.to_thread(submit, browser)
        await at(browser, f"{base}/login?done=reset")
    finally:
        await asyncio.to_thread(browser.quit)
    # The new password is the one checked now: with it and a second factor, a session.
    status, doc, _ = await stack.api.call("POST", "/v1/sessions", {
        "email": email, "password": "first password 11", "totp_code": recovery[0]})
    assert status == 401
    status, doc, _ = await stack.api.call("POST", "/v1/sessions", {
        "email": email, "password": new, "totp_code": recovery[0]})
    assert status == 201, doc
    stack.secrets.add(doc["token"])


@pytest.mark.parametrize("javascript", [False, pytest.param(True, marks=JS_ONCE)],
                         ids=["no-js", "js"])
async def test_buy_a_plan_and_pay_an_expired_invoice_again(
    make_stack: StackFactory, tmp_path: Path, javascript: bool
) -> None:
    stack = await make_stack(
        GATEWAY_PLANS='{"vps-small": {"price": "9.99", "currency": "EUR", '
                      '"prices": {"USD": "10.99"}}, '
                      '"vps-large": {"price": "29.99", "currency": "EUR"}}',
        GATEWAY_RATES__FIXED='{"LTC-EUR": "80.00", "LTC-USD": "86.00"}',
        GATEWAY_INVOICES__MAX_OPEN_PER_ACCOUNT="1")
    stack.secrets.update({"buyer@example.org", "buyer password 1"})
    base = stack.gateway.base
    browser = await asyncio.to_thread(chromium, tmp_path / "profile", javascript)
    try:
        # Not logged in: /account sends the customer to log in, and says why.
        await asyncio.to_thread(browser.get, f"{base}/account")
        await at(browser, f"{base}/login?done=session")
        assert "cookie" in browser.find_element(By.ID, "login-message").text

        await asyncio.to_thread(browser.get, f"{base}/signup")
        fill(browser, email="buyer@example.org", password="buyer password 1")
        await asyncio.to_thread(submit, browser)
        await at(browser, f"{base}/account")
        label = browser.find_element(By.CSS_SELECTOR, "label[for=plan-vps-small]").text
        assert "€9.99" in label  # English style: the symbol first
        browser.find_element(By.ID, "plan-vps-small").click()
        await asyncio.to_thread(submit, browser, "#buy-button")
        first = browser.current_url.rsplit("/", 1)[1]
        assert first.startswith("inv_")
        # Asking again for the same plan and coin shows the same invoice: no new address.
        await asyncio.to_thread(browser.get, f"{base}/account")
        browser.find_element(By.ID, "plan-vps-small").click()
        await asyncio.to_thread(submit, browser, "#buy-button")
        assert browser.current_url.rsplit("/", 1)[1] == first
        invoice = await stack.read(first)
        assert invoice["price"] == {"amount": "9.99", "currency": "EUR"}
        assert invoice["metadata"] == {"plan": "vps-small"} and invoice["coin"] == "LTC"

        # Expire it, as 15 minutes would, then pay again from /account.
        await stack.rows("UPDATE invoices SET status = 'expired' WHERE id = :id",
                         id=first)
        await asyncio.to_thread(browser.get, f"{base}/account")
        await asyncio.to_thread(submit, browser, "button.pay-again")
        second = browser.current_url.rsplit("/", 1)[1]
        assert second.startswith("inv_") and second != first
        again = await stack.read(second)
        assert again["price"] == invoice["price"] and again["address"] != invoice["address"]
        assert again["status"] == "new"
        # Paying again twice is one new invoice, not two.
        await asyncio.to_thread(browser.get, f"{base}/account")
        await asyncio.to_thread(submit, browser, "button.pay-again")
        assert browser.current_url.rsplit("/", 1)[1] == second
        # One open invoice is this stack's cap: another plan must wait.
        await asyncio.to_thread(browser.get, f"{base}/account")
        browser.find_element(By.ID, "plan-vps-large").click()
        await asyncio.to_thread(submit, browser, "#buy-button")
        assert "unpaid invoices open" in browser.find_element(By.CSS_SELECTOR, ".error").text
        assert await stack.count("invoices") == 2
    finally:
        await asyncio.to_thread(browser.quit)
