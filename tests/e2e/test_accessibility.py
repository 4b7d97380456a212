"""axe-core finds no WCAG 2.0/2.1 A or AA violation on any customer page, in English and in
Persian (right to left), logged out and logged in (issue 32).

axe-core (a dev dependency, node_modules/axe-core) is put into each page by the test
through the driver; no page ever loads it (nor anything else from elsewhere). One stack
and one Chromium (JavaScript on, as axe needs) for the module, which runs once
(any_database: the pages are the same on either database)."""

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from gateway.i18n import direction, tag
from gateway.services.recovery import RESET_SUBJECT
from tests.e2e.conftest import Stack
from tests.e2e.test_portal import at, fill, no_other_origin, submit
from tests.support.browser import chromium
from tests.support.inbox import Inbox, smtp_env
from tests.support.language_pages import mail_titled, module_inbox, module_stack, text_of
from tests.support.nodes import LitecoinRegtest

pytestmark = [pytest.mark.any_database, pytest.mark.asyncio(loop_scope="module")]

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
RUN = """
const done = arguments[arguments.length - 1];
axe.run(document, {runOnly: {type: "tag", values: arguments[0]},
                   resultTypes: ["violations"]})
  .then(r => done({passed: r.passes.length,
                   violations: r.violations.map(v => ({id: v.id, impact: v.impact,
                     help: v.help,
                     nodes: v.nodes.map(n => n.target.join(" ") + " | " + n.failureSummary)}))}),
        e => done({passed: 0, violations: [{id: "axe-error", help: String(e), nodes: []}]}));
"""
EMAIL, PASSWORD = "readable@example.org", "readable password 1"
ENV = {"GATEWAY_PLANS": '{"vps-small": {"price": "9.99", "currency": "EUR"}}',
       "GATEWAY_RATES__FIXED": '{"LTC-EUR": "80.00"}',
       "GATEWAY_CASH__POSTAL_ADDRESS": "Example Hosting\nPO Box 123\n1000 AA Amsterdam",
       "GATEWAY_CASH__INSTRUCTIONS": "Euro notes only, with the token on a slip."}


@dataclass
class Site:
    stack: Stack
    invoice: str
    expired: str
    reset: str  # paths below the application's root, with their tokens
    email_change: str


@pytest.fixture(scope="module")
def inbox() -> Iterator[Inbox]:
    with module_inbox() as box:
        yield box


def mailed_path(stack: Stack, mail: Any, page: str) -> str:
    found = re.search(rf"https?://[^/\s]+/({page}\?token=(\S+))", text_of(mail))
    assert found, text_of(mail)
    stack.secrets.add(found.group(2))
    return found.group(1)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def site(litecoin: LitecoinRegtest, inbox: Inbox,
               tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Site]:
    """An account with an open invoice, a reset link and an email-change link."""
    async with module_stack(litecoin, tmp_path_factory.mktemp("axe"), **smtp_env(inbox),
                            **ENV) as stack:
        account = await stack.signup(EMAIL, PASSWORD)
        invoice = (await stack.invoice(account["id"]))["id"]
        expired = (await stack.invoice(account["id"], "5.00"))["id"]
        await stack.rows("UPDATE invoices SET status = 'expired' WHERE id = :id", id=expired)
        await stack.api.call("POST", "/v1/password-resets", {"email": EMAIL})
        session = await stack.login(EMAIL, PASSWORD)
        stack.secrets.add("moved@example.org")
        status, doc, _ = await stack.api.call("PATCH", "/v1/me", {
            "email": "moved@example.org", "current_password": PASSWORD}, session)
        assert status == 202, doc
        reset = await mail_titled(inbox, EMAIL, RESET_SUBJECT)
        [change] = await inbox.wait("moved@example.org", 1)
        yield Site(stack, invoice, expired, mailed_path(stack, reset, "reset"),
                   mailed_path(stack, change, "email-change"))


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    driver = chromium(tmp_path_factory.mktemp("chromium") / "profile", True)
    driver.set_script_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def violations(browser: WebDriver) -> list[dict[str, Any]]:
    """axe-core's WCAG 2 A/AA violations on the page shown, injected by the driver."""
    browser.execute_script(AXE.read_text())
    found = browser.execute_async_script(RUN, TAGS)
    assert found["passed"] > 0 or found["violations"], found  # axe did check something
    return list(found["violations"])


def pages(site: Site, logged_in: bool) -> list[str]:
    common = [f"pay/{site.invoice}", f"pay/{site.expired}", site.reset,
              "reset?token=not-a-token", site.email_change]
    if logged_in:
        return ["account", "account/cash", *common]
    return ["signup", "login", "forgot", "account", *common]


@pytest.mark.parametrize("logged_in", [False, True], ids=["logged-out", "logged-in"])
@pytest.mark.parametrize("locale", ["en", "fa"])
async def test_no_wcag_violation_on_any_customer_page(
    site: Site, browser: WebDriver, locale: str, logged_in: bool
) -> None:
    base = site.stack.gateway.base
    browser.delete_all_cookies()
    await asyncio.to_thread(browser.get, f"{base}/lang?l={tag(locale)}&next=login")
    await at(browser, f"{base}/login")
    if logged_in:
        fill(browser, email=EMAIL, password=PASSWORD)
        await asyncio.to_thread(submit, browser)
        await at(browser, f"{base}/account")
    found: dict[str, list[dict[str, Any]]] = {}
    for path in pages(site, logged_in):
        await asyncio.to_thread(browser.get, f"{base}/{path}")
        html = browser.find_element(By.TAG_NAME, "html")
        assert html.get_attribute("lang") == tag(locale), path
        assert html.get_attribute("dir") == direction(locale), path
        no_other_origin(browser.page_source)
        if problems := violations(browser):
            found[f"{path} -> {browser.current_url}"] = problems
    report = "\n".join(f"{page}: {v['id']} ({v['impact']}) {v['help']}\n    "
                       + "\n    ".join(v["nodes"])
                       for page, problems in found.items() for v in problems)
    assert found == {}, report


async def test_the_check_sees_a_field_without_a_label(site: Site, browser: WebDriver) -> None:
    """The tool is not blind: a login form whose email field lost its label fails it."""
    await asyncio.to_thread(browser.get, f"{site.stack.gateway.base}/login")
    assert violations(browser) == []
    browser.execute_script("document.querySelector('label[for=email]').remove()")
    assert [v["id"] for v in violations(browser)] == ["label"]
