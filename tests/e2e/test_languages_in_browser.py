"""Every language in Chromium with JavaScript off (issue 32): the language menu, signing up,
buying, the checkout page, the reset mail and its page, each in the chosen language, which a
new visit keeps; Persian mirrored with its address and amounts left to right; a German
account's mail in German through a real SMTP server. What each page should say comes from
the compiled catalogs: these tests fail while a language is not translated.

One stack, one mail server and one Chromium for the module; what the browser shows is the
same on either database, so the module runs once (any_database).

Screenshots: the Persian checkout and account pages and the German checkout are saved
with every run (in the test's temporary directory); with I18N_SCREENSHOTS=docs/i18n they
are written there instead, the ones docs/i18n.md shows."""

import asyncio
import os
import re
import struct
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from gateway.i18n import LOCALES, tag
from gateway.services.recovery import RESET_BODY, RESET_SUBJECT
from tests.e2e.conftest import Stack
from tests.e2e.test_portal import at, fill, no_other_origin, submit
from tests.support.browser import chromium
from tests.support.inbox import Inbox, smtp_env
from tests.support.language_pages import (
    in_language,
    mail_titled,
    module_inbox,
    module_stack,
    said,
    text_of,
)
from tests.support.nodes import LitecoinRegtest

pytestmark = [pytest.mark.any_database, pytest.mark.asyncio(loop_scope="module")]

PASSWORD = "language password 1"
ENV = {"GATEWAY_PLANS": '{"vps-small": {"price": "1234.50", "currency": "EUR"}}',
       "GATEWAY_RATES__FIXED": '{"LTC-EUR": "80.00"}'}


@pytest.fixture(scope="module")
def inbox() -> Iterator[Inbox]:
    with module_inbox() as box:
        yield box


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(litecoin: LitecoinRegtest, inbox: Inbox,
                tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    async with module_stack(litecoin, tmp_path_factory.mktemp("languages"),
                            **smtp_env(inbox), **ENV) as built:
        yield built


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    driver = chromium(tmp_path_factory.mktemp("chromium") / "profile", False)
    try:
        yield driver
    finally:
        driver.quit()


async def choose(browser: WebDriver, locale: str) -> None:
    """The language menu's link for `locale`: back on the same page, in that language."""
    here = browser.current_url
    link = browser.find_element(By.CSS_SELECTOR, f"nav.languages a[hreflang='{tag(locale)}']")
    assert link.get_attribute("lang") == tag(locale)
    await asyncio.to_thread(submit, browser, f"nav.languages a[hreflang='{tag(locale)}']")
    await at(browser, here)


async def sign_up_and_buy(stack: Stack, browser: WebDriver, locale: str, email: str) -> str:
    """From a fresh visit: the menu, the signup page, the account page, the checkout page,
    each in `locale`. The invoice's id."""
    base = stack.gateway.base
    browser.delete_all_cookies()
    stack.secrets.update({email, PASSWORD})
    await asyncio.to_thread(browser.get, f"{base}/signup")
    in_language(browser, "en", "h1", "Create an account")  # Chromium asks for English
    await choose(browser, locale)
    in_language(browser, locale, "h1", "Create an account")
    in_language(browser, locale, "label[for=email]", "Email")
    fill(browser, email=email, password=PASSWORD)
    await asyncio.to_thread(submit, browser)
    await at(browser, f"{base}/account")
    in_language(browser, locale, "h1", "Your account")
    in_language(browser, locale, "#buy-button", "Continue to payment")
    browser.find_element(By.ID, "plan-vps-small").click()
    await asyncio.to_thread(submit, browser, "#buy-button")
    invoice = browser.current_url.rsplit("/", 1)[1]
    assert invoice.startswith("inv_")
    no_other_origin(browser.page_source)
    in_language(browser, locale, "section.pay h2", "Send exactly")
    in_language(browser, locale, "label[for=address]", "To this %(coin)s address", coin="LTC")
    return invoice


async def reset_by_mail(stack: Stack, browser: WebDriver, inbox: Inbox, locale: str,
                        email: str) -> None:
    """Logged out, a new page load: the forgot page in `locale` still (the preference
    cookie), its mail and the mailed link's page too, then a login with the new one."""
    base = stack.gateway.base
    await asyncio.to_thread(browser.get, f"{base}/account")
    await asyncio.to_thread(submit, browser, "#logout")
    assert "__Host-session" not in {c["name"] for c in browser.get_cookies()}
    await asyncio.to_thread(browser.get, f"{base}/forgot")
    in_language(browser, locale, "h1", "Forgot your password?")
    fill(browser, email=email)
    await asyncio.to_thread(submit, browser)
    in_language(browser, locale, "h1", "Check your inbox")

    body = text_of(await mail_titled(inbox, email, said(locale, RESET_SUBJECT)))
    # The mail's first sentence (before any value) is the catalog's.
    assert said(locale, RESET_BODY, minutes=0, link="").split("\n")[0] in body
    found = re.search(r"(http://\S+/reset\?token=(\S+))", body)
    assert found, body
    stack.secrets.add(found.group(2))
    await asyncio.to_thread(browser.get, found.group(1))
    in_language(browser, locale, "h1", "Choose a new password")
    new = f"{PASSWORD} renewed"
    stack.secrets.add(new)
    fill(browser, new_password=new, confirm_password=new)
    await asyncio.to_thread(submit, browser)
    await at(browser, f"{base}/login?done=reset")
    in_language(browser, locale, "#login-message",
                "Your password was changed. Log in with the new one.")
    fill(browser, email=email, password=new)
    await asyncio.to_thread(submit, browser)
    await at(browser, f"{base}/account")
    in_language(browser, locale, "h1", "Your account")


@pytest.mark.parametrize("locale", LOCALES)
async def test_each_language_from_signup_to_a_reset_without_javascript(
    stack: Stack, inbox: Inbox, browser: WebDriver, locale: str
) -> None:
    email = f"speaker-{locale.lower()}@example.org"
    await sign_up_and_buy(stack, browser, locale, email)
    await reset_by_mail(stack, browser, inbox, locale, email)
    # The account remembers it: a session in a browser that never chose (no cookie) gets
    # the account's language back at login.
    browser.delete_all_cookies()
    await asyncio.to_thread(browser.get, f"{stack.gateway.base}/login")
    in_language(browser, "en", "h1", "Log in")
    fill(browser, email=email, password=f"{PASSWORD} renewed")
    await asyncio.to_thread(submit, browser)
    await at(browser, f"{stack.gateway.base}/account")
    in_language(browser, locale, "h1", "Your account")


def computed(browser: WebDriver, css: str, prop: str = "direction") -> str:
    return str(browser.execute_script(
        "return getComputedStyle(document.querySelector(arguments[0]))[arguments[1]]",
        css, prop))


def screenshot(browser: WebDriver, folder: Path, name: str) -> Path:
    """The page, 1000 CSS pixels wide and as tall as it is (at most 1600), as PNG."""
    height = int(browser.execute_script(
        "return document.documentElement.scrollHeight"))
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": 1000, "height": min(height, 1600), "deviceScaleFactor": 1, "mobile": False})
    try:
        png = browser.get_screenshot_as_png()
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, _ = struct.unpack(">II", png[16:24])
    assert width == 1000
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(png)
    return path


async def test_persian_is_mirrored_with_addresses_and_amounts_left_to_right(
    stack: Stack, browser: WebDriver, tmp_path: Path
) -> None:
    folder = Path(os.environ.get("I18N_SCREENSHOTS") or tmp_path)
    await sign_up_and_buy(stack, browser, "fa", "mirror@example.org")
    pay = browser.current_url
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("dir") == "rtl"
    assert computed(browser, "body") == "rtl"
    assert computed(browser, "main") == "rtl"
    assert computed(browser, "body", "textAlign") in ("start", "right")
    # What is copied, and what is shown of it, reads left to right.
    for css in ("#amount", "#address", "h1 bdi", "p.price bdi", "p.small bdi"):
        assert computed(browser, css) == "ltr", css
    assert browser.find_element(By.CSS_SELECTOR, "h1 bdi").get_attribute("dir") == "ltr"
    # Mirrored for real: the label's words start at the right edge of its field.
    box = browser.execute_script(
        "const f = document.querySelector('#amount').closest('.field').getBoundingClientRect();"
        "const r = document.createRange();"
        "r.selectNodeContents(document.querySelector('label[for=amount]'));"
        "const l = r.getBoundingClientRect();"
        "return [f.right - l.right, l.left - f.left];")
    assert box[0] < box[1], box  # the words hug the right side
    screenshot(browser, folder, "pay-fa.png")

    await asyncio.to_thread(browser.get, f"{stack.gateway.base}/account")
    assert computed(browser, "body") == "rtl"
    for bdi in browser.find_elements(By.CSS_SELECTOR, "#buy bdi, #invoices bdi"):
        assert bdi.get_attribute("dir") == "ltr"
        assert browser.execute_script("return getComputedStyle(arguments[0]).direction",
                                      bdi) == "ltr"
    for css in ("#invoices a.mono", "#email"):
        assert computed(browser, css) == "ltr", css
    screenshot(browser, folder, "account-fa.png")

    # The same checkout in German, from its own language menu: left to right again.
    await asyncio.to_thread(browser.get, pay)
    await choose(browser, "de")
    in_language(browser, "de", "section.pay h2", "Send exactly")
    assert computed(browser, "body") == "ltr"
    screenshot(browser, folder, "pay-de.png")


async def test_a_german_account_gets_its_mail_in_german(
    stack: Stack, inbox: Inbox
) -> None:
    """Through the API (no browser): an account made by a German browser; its reset mail,
    sent through the SMTP server, is German, and an English one's stays English."""
    for email, accept in (("deutsch@example.org", "de-DE,de;q=0.9,en;q=0.5"),
                          ("english@example.org", "en-GB")):
        stack.secrets.update({email, PASSWORD})
        status, doc, _ = await stack.api.call(
            "POST", "/v1/accounts", {"email": email, "password": PASSWORD},
            headers={"Accept-Language": accept})
        assert status == 201, doc
        status, doc, _ = await stack.api.call("POST", "/v1/password-resets",
                                              {"email": email})
        assert status == 202, doc
    for email, locale in (("deutsch@example.org", "de"), ("english@example.org", "en")):
        body = text_of(await mail_titled(inbox, email, said(locale, RESET_SUBJECT)))
        assert said(locale, RESET_BODY, minutes=0, link="").split("\n")[0] in body
        found = re.search(r"token=(\S+)", body)
        assert found
        stack.secrets.add(found.group(1))
