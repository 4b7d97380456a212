"""The customer's journey in Chromium, as printed by `make demo`: sign up, choose a plan
and a coin, pay on the checkout page from the demo's wallet, see it settle, and find the
account active. Run with JavaScript off (Tor Browser's safest level) and on."""

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By

from tests.e2e.test_portal import at, fill, no_other_origin, submit
from tests.support.browser import chromium

# Starts nodes of its own (not the session's): not part of the fast gate.
pytestmark = pytest.mark.node


@dataclass
class Demo:
    base: str
    pay_command: list[str]
    output: list[str]


def _read_until(proc: subprocess.Popen[str], marker: str, timeout: float) -> list[str]:
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if marker in line:
            return lines
    raise AssertionError("the demo did not get ready:\n" + "".join(lines[-40:]))


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    tmp = tmp_path_factory.mktemp("demo")
    env = {**os.environ, "BCL_DATA_DIR": str(tmp / "bcl"), "TMPDIR": str(tmp)}
    proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "demo"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = _read_until(proc, "blocks are mined every", 150)
        text = "".join(lines)
        base = re.search(r"portal: (http://127\.0\.0\.1:\d+)/signup", text)
        pay = re.search(r"pay from the demo wallet: (.+) <address> <amount>", text)
        assert base and pay, text
        assert "@" not in text  # no email (nor credentials in a URL) is printed
        yield Demo(base.group(1), pay.group(1).split(), lines)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert not list(tmp.glob("gateway-demo-*"))  # everything it started is gone


STATUS = re.compile(r'<span id="status">([^<]*)</span>')


def status_of(browser: Any) -> str | None:
    """The status shown, or None while the page is being replaced. Read from one snapshot
    of the document: without JavaScript the page refreshes itself, and an element found
    just before a refresh is gone when read (Chromium says so in more than one way)."""
    found = STATUS.search(str(browser.page_source))
    return found.group(1).strip() if found else None


@pytest.mark.parametrize("javascript", [False, True], ids=["no-js", "js"])
async def test_demo_journey_signup_buy_pay_settle(
    demo: Demo, tmp_path: Path, javascript: bool
) -> None:
    email = f"journey-{'js' if javascript else 'nojs'}@example.org"
    browser = await asyncio.to_thread(chromium, tmp_path / "profile", javascript)
    base = demo.base
    try:
        await asyncio.to_thread(browser.get, f"{base}/signup")
        fill(browser, email=email, password="journey password 1")
        browser.find_element(By.CSS_SELECTOR, "#currency option[value=USD]").click()
        await asyncio.to_thread(submit, browser)
        await at(browser, f"{base}/account")
        assert "Not active yet" in browser.find_element(By.ID, "account-status").text
        plan = browser.find_element(By.CSS_SELECTOR, "label[for=plan-vps-large]").text
        assert "$32.99" in plan  # the plan's price in the customer's currency (English style)
        browser.find_element(By.ID, "plan-vps-large").click()
        browser.find_element(By.CSS_SELECTOR, "#coin option[value=LTC]").click()
        await asyncio.to_thread(submit, browser, "#buy-button")
        assert re.search(r"/pay/inv_[0-9a-z]+$", browser.current_url), browser.current_url
        no_other_origin(browser.page_source)
        assert "$32.99" in browser.find_element(By.CSS_SELECTOR, ".price").text
        address = browser.find_element(By.ID, "address").get_attribute("value")
        amount = browser.find_element(By.ID, "amount").get_attribute("value")
        assert address and amount

        paid = await asyncio.to_thread(subprocess.run, [*demo.pay_command, address, amount],
                                       capture_output=True, text=True, timeout=30)
        assert paid.returncode == 0, paid.stderr
        # The page follows the invoice by itself: refreshes without JavaScript, server-sent
        # events with it. The demo mines a block every 2 s while a payment waits.
        deadline = time.monotonic() + 90
        while status_of(browser) != "settled":
            assert time.monotonic() < deadline, browser.page_source
            await asyncio.sleep(0.5)
        assert "Paid" in browser.find_element(By.ID, "status-text").text

        await asyncio.to_thread(browser.get, f"{base}/account")
        assert "Active since" in browser.find_element(By.ID, "account-status").text
        rows = browser.find_elements(By.CSS_SELECTOR, "#invoices tbody tr")
        assert any("settled" in r.text and "vps-large" in r.text for r in rows)
    finally:
        await asyncio.to_thread(browser.quit)
