"""The customer portal in headless Chromium with JavaScript disabled."""

import asyncio
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyotp
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.wait import WebDriverWait

from tests.e2e.conftest import StackFactory
from tests.support.browser import chromium

ALLOWED_COOKIES = {"__Host-session", "__Host-pref"}


def settled(action: Callable[[], None]) -> None:
    """Retry an interaction that raced with a document swap (redirect after POST)."""
    for attempt in range(5):
        try:
            action()
            return
        except WebDriverException:
            if attempt == 4:
                raise
            time.sleep(0.3)


def fill(browser: WebDriver, **fields: str) -> None:
    def do() -> None:
        for name, value in fields.items():
            element = browser.find_element(By.NAME, name)
            element.clear()
            element.send_keys(value)

    settled(do)


def type_into(browser: WebDriver, element_id: str, value: str) -> None:
    """Forms on one page may share a field name: these go by id."""
    def do() -> None:
        element = browser.find_element(By.ID, element_id)
        element.clear()
        element.send_keys(value)

    settled(do)


def submit(browser: WebDriver, css: str = "form button[type=submit]") -> None:
    """Click, then wait until the old document is gone and the new one has loaded."""
    old: list[Any] = []

    def click() -> None:
        old[:] = [browser.find_element(By.TAG_NAME, "html")]
        browser.find_element(By.CSS_SELECTOR, css).click()

    settled(click)
    def gone(_: WebDriver) -> bool:
        try:
            old[0].is_enabled()
        except WebDriverException:  # stale, or "does not belong to the document"
            return True
        return False

    # Polled every 50 ms (the default half second cost most submits a needless 0.5 s).
    wait = WebDriverWait(browser, 15, poll_frequency=0.05,
                         ignored_exceptions=(WebDriverException,))
    wait.until(gone)
    wait.until(lambda b: b.execute_script("return document.readyState") == "complete")


async def at(browser: WebDriver, url: str, timeout: float = 10) -> None:
    """Form posts navigate after the click returns: wait for the page to arrive."""
    deadline = asyncio.get_running_loop().time() + timeout
    while browser.current_url != url or browser.execute_script(
            "return document.readyState") != "complete":
        assert asyncio.get_running_loop().time() < deadline, (browser.current_url, url)
        await asyncio.sleep(0.05)


def no_other_origin(html: str) -> None:
    assert not re.search(r"(?i)(src|href|action)=\"(https?:)?//", html), "another origin"
    assert not re.search(r'(?i)(src|href|action)="/', html), "links must be relative"


async def test_signup_login_two_factor_without_javascript(
    make_stack: StackFactory, tmp_path: Path
) -> None:
    stack = await make_stack(GATEWAY_SERVER__PATH_PREFIX="/portal")
    stack.secrets.update({"portal@example.org", "portal password 1"})
    browser = await asyncio.to_thread(chromium, tmp_path / "profile", False)
    base = stack.gateway.base
    seen_cookies: set[str] = set()

    def cookies() -> set[str]:
        names = {c["name"] for c in browser.get_cookies()}
        seen_cookies.update(names)
        return names

    try:
        await asyncio.to_thread(browser.get, f"{base}/signup")
        no_other_origin(browser.page_source)
        fill(browser, email="portal@example.org", password="portal password 1",
             display_name="Pseudo Nym")
        browser.find_element(By.CSS_SELECTOR, "#datacenter option[value=ch-zrh]").click()
        await asyncio.to_thread(submit, browser)
        await at(browser, f"{base}/account")
        assert "__Host-session" in cookies() and "__Host-pref" in cookies()
        assert browser.find_element(By.ID, "email").get_attribute("value") == \
            "portal@example.org"
        assert "off" in browser.find_element(By.ID, "totp-status").text
        no_other_origin(browser.page_source)

        await asyncio.to_thread(submit, browser, "#logout")
        await at(browser, f"{base}/login?done=logout")
        assert "__Host-session" not in cookies()
        fill(browser, email="portal@example.org", password="portal password 1")
        await asyncio.to_thread(submit, browser)
        await at(browser, f"{base}/account")

        # A new email needs the password, and then waits for the mailed link.
        stack.secrets.add("portal-moved@example.org")
        fill(browser, email="portal-moved@example.org")
        await asyncio.to_thread(submit, browser, "#save-profile")
        assert "current_password" in browser.find_element(By.CSS_SELECTOR, ".error").text
        fill(browser, email="portal-moved@example.org")
        type_into(browser, "profile-password", "portal password 1")
        await asyncio.to_thread(submit, browser, "#save-profile")
        assert "mailed a link" in browser.find_element(By.CSS_SELECTOR, ".notice").text
        assert browser.find_element(By.ID, "email").get_attribute("value") == \
            "portal@example.org"

        # Two-factor setup needs the password too.
        type_into(browser, "totp-password", "portal password 1")
        await asyncio.to_thread(submit, browser, "#two-factor form button")
        secret = browser.find_element(By.ID, "totp-secret").text
        stack.secrets.add(secret)
        assert browser.find_element(By.CSS_SELECTOR, "#two-factor figure.qr svg")
        type_into(browser, "code", pyotp.TOTP(secret).now())  # the voucher form has a "code" too
        await asyncio.to_thread(submit, browser, "#two-factor form button")
        codes = browser.find_elements(By.CSS_SELECTOR, "#recovery-codes li")
        assert len(codes) == 10
        stack.secrets.update(c.text for c in codes)

        await asyncio.to_thread(submit, browser, "#logout")
        fill(browser, email="portal@example.org", password="portal password 1")
        await asyncio.to_thread(submit, browser)
        await at(browser, f"{base}/login")  # refused: no code
        assert "two-factor" in browser.find_element(By.CSS_SELECTOR, ".error").text
        code = pyotp.TOTP(secret).at(datetime.now(UTC), counter_offset=1)
        fill(browser, email="portal@example.org", password="portal password 1", totp_code=code)
        await asyncio.to_thread(submit, browser)
        await at(browser, f"{base}/account")
        assert "on" in browser.find_element(By.ID, "totp-status").text
        cookies()
    finally:
        await asyncio.to_thread(browser.quit)
    assert seen_cookies == ALLOWED_COOKIES
    assert stack.api.cookie_names <= ALLOWED_COOKIES


async def test_forms_need_their_csrf_token_and_pages_carry_csp(
    make_stack: StackFactory,
) -> None:
    stack = await make_stack()
    http = stack.api.http
    base = stack.gateway.base
    for page in ("signup", "login", "account"):
        async with http.get(f"{base}/{page}", allow_redirects=False) as resp:
            assert resp.status in (200, 303)
            if resp.status == 200:
                assert "default-src 'self'" in resp.headers["Content-Security-Policy"]
                assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
                no_other_origin(await resp.text())
    form = {"email": "csrf@example.org", "password": "long enough pw 1"}
    async with http.post(f"{base}/signup", data=form) as resp:
        assert resp.status == 403 and "CSRF" in await resp.text()
    async with http.post(f"{base}/signup", data={**form, "csrf": "123.forged"}) as resp:
        assert resp.status == 403
    async with http.get(f"{base}/signup") as resp:
        token = re.search(r'name="csrf" value="([^"]+)"', await resp.text()).group(1)  # type: ignore[union-attr]
    async with http.post(f"{base}/signup", data={**form, "csrf": token},
                         headers={"Origin": "http://evil.example"}) as resp:
        assert resp.status == 403
    async with http.post(f"{base}/signup", data={**form, "csrf": token},
                         allow_redirects=False) as resp:
        assert resp.status == 303 and resp.headers["Location"] == "./account"
    assert await stack.count("accounts") == 1
    stack.secrets.update(form.values())


async def test_export_links_and_deletion_with_cancel_in_the_portal(
    make_stack: StackFactory, tmp_path: Path
) -> None:
    stack = await make_stack(GATEWAY_SERVER__PATH_PREFIX="/portal")
    stack.secrets.update({"leaving@example.org", "leaving password 1"})
    browser = await asyncio.to_thread(chromium, tmp_path / "profile", False)
    base = stack.gateway.base
    try:
        await asyncio.to_thread(browser.get, f"{base}/signup")
        fill(browser, email="leaving@example.org", password="leaving password 1")
        await asyncio.to_thread(submit, browser)
        await at(browser, f"{base}/account")
        link = browser.find_element(By.ID, "export-json")
        assert link.get_attribute("href") == f"{base}/v1/me/export?format=json"
        cookie = browser.get_cookie("__Host-session")
        assert cookie is not None
        status, body, _ = await stack.api.fetch(
            "/v1/me/export?format=json", headers={"Cookie": f"__Host-session={cookie['value']}"})
        assert status == 200 and b"leaving@example.org" in body
        no_other_origin(browser.page_source)

        fill(browser, password="leaving password 1")
        await asyncio.to_thread(submit, browser, "#delete-account")
        await at(browser, f"{base}/login")
        fill(browser, email="leaving@example.org", password="leaving password 1")
        await asyncio.to_thread(submit, browser)
        await at(browser, f"{base}/account")
        assert "will be deleted on" in browser.find_element(By.ID, "deletion-notice").text
        await asyncio.to_thread(submit, browser, "#cancel-deletion")
        await at(browser, f"{base}/account?saved=1")
        assert not browser.find_elements(By.ID, "deletion-notice")
        assert browser.find_element(By.ID, "delete-account")
    finally:
        await asyncio.to_thread(browser.quit)
    assert await stack.scalar("SELECT deletion_due_at FROM accounts") is None
    events = [r.event for r in await stack.rows("SELECT event FROM security_log ORDER BY id")]
    assert "deletion_requested" in events and events[-1] == "deletion_cancelled"
