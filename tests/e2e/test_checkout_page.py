"""The checkout page in a real browser: complete with JavaScript off, live with it on."""

import asyncio
import os
import re
import shutil
import time
from pathlib import Path

from selenium.webdriver.common.by import By

from tests.e2e.conftest import StackFactory
from tests.support.browser import chromium


def no_other_origin(html: str) -> None:
    assert not re.search(r"(?i)(https?:)?//[a-z0-9]", html), "page references another origin"
    assert not re.search(r'(?i)(src|href|action)="/', html), "links must be relative"


async def test_checkout_without_javascript(make_stack: StackFactory, tmp_path: Path) -> None:
    stack = await make_stack(GATEWAY_SERVER__PATH_PREFIX="/gw")
    account = await stack.signup("nojs@example.org")
    invoice = await stack.invoice(account["id"], metadata={"plan": "vps-small"})
    browser = await asyncio.to_thread(chromium, tmp_path / "profile", False)
    try:
        url = f"{stack.gateway.url}/gw/pay/{invoice['id']}"
        await asyncio.to_thread(browser.get, url)
        html = browser.page_source
        assert browser.execute_script is not None
        assert browser.find_element(By.ID, "address").get_attribute("value") == invoice["address"]
        assert browser.find_element(By.ID, "amount").get_attribute("value") == "0.124875"
        svg = browser.find_element(By.CSS_SELECTOR, "figure.qr svg")
        assert svg.size["width"] > 100
        assert browser.find_element(By.CSS_SELECTOR, "label[for=address]").text
        assert "Waiting for your payment" in browser.find_element(By.ID, "status-text").text
        assert 'http-equiv="refresh"' in html
        no_other_origin(html)
        css = browser.find_element(By.CSS_SELECTOR, "link[rel=stylesheet]")
        assert css.get_attribute("href") == f"{stack.gateway.url}/gw/static/gateway.css"
        if os.environ.get("GATEWAY_SCREENSHOT_OUT"):
            await asyncio.to_thread(browser.save_screenshot, str(tmp_path / "checkout.png"))
            shutil.copy(tmp_path / "checkout.png", os.environ["GATEWAY_SCREENSHOT_OUT"])

        stack.node.send(invoice["address"], invoice["amount_due"])
        await stack.wait_status(invoice["id"], "processing")
        stack.node.mine(3)
        await stack.wait_status(invoice["id"], "settled")
        await asyncio.to_thread(browser.refresh)
        assert browser.find_element(By.ID, "status").text == "settled"
        assert "Paid" in browser.find_element(By.ID, "status-text").text
        assert 'http-equiv="refresh"' not in browser.page_source  # final: no more refresh
    finally:
        await asyncio.to_thread(browser.quit)


async def test_checkout_updates_live_with_javascript(
    make_stack: StackFactory, tmp_path: Path
) -> None:
    stack = await make_stack()
    account = await stack.signup("js@example.org")
    invoice = await stack.invoice(account["id"])
    browser = await asyncio.to_thread(chromium, tmp_path / "profile", True)

    async def shown_status(expected: str, timeout: float) -> float:
        started = time.monotonic()
        while browser.find_element(By.ID, "status").text != expected:
            assert time.monotonic() - started < timeout, f"page never showed {expected}"
            await asyncio.sleep(0.05)
        return time.monotonic() - started

    try:
        await asyncio.to_thread(browser.get, f"{stack.gateway.url}/pay/{invoice['id']}")
        browser.execute_script("window.notReloaded = true;")
        stack.node.send(invoice["address"], invoice["amount_due"])
        await shown_status("processing", 10)
        stack.node.mine(3)
        # The acceptance bound of the issue: the page follows the block within 2 s.
        await shown_status("settled", 2.0)
        assert browser.execute_script("return window.notReloaded === true;")
        assert "Paid" in browser.find_element(By.ID, "status-text").text
    finally:
        await asyncio.to_thread(browser.quit)


async def test_pages_carry_security_headers_and_unknown_invoice_is_404(
    make_stack: StackFactory,
) -> None:
    stack = await make_stack()
    account = await stack.signup("headers@example.org")
    invoice = await stack.invoice(account["id"])
    async with stack.api.http.get(f"{stack.gateway.url}/pay/{invoice['id']}") as resp:
        assert resp.status == 200 and resp.content_type == "text/html"
        csp = resp.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.headers["Referrer-Policy"] == "no-referrer"
        assert not resp.cookies
    async with stack.api.http.get(f"{stack.gateway.url}/pay/inv_nope") as resp:
        assert resp.status == 404
    async with stack.api.http.get(
            f"{stack.gateway.url}/v1/invoices/{invoice['id']}/events") as resp:
        assert resp.status == 401
    async with stack.api.http.get(
            f"{stack.gateway.url}/v1/invoices/{invoice['id']}/events",
            headers={"Authorization": f"Bearer {stack.key}"}) as resp:
        assert resp.headers["Content-Type"] == "text/event-stream"
        line = await resp.content.readline()
        assert line == b"event: status\n"


async def test_event_streams_are_capped_per_client_and_in_total(
    make_stack: StackFactory,
) -> None:
    import aiohttp

    stack = await make_stack(GATEWAY_SERVER__EVENT_STREAMS_PER_CLIENT="2",
                             GATEWAY_SERVER__EVENT_STREAMS_TOTAL="3")
    account = await stack.signup("streams@example.org")
    invoice = await stack.invoice(account["id"])
    url = f"{stack.gateway.url}/pay/{invoice['id']}/events"
    clients = {source: aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(local_addr=(source, 0), limit=0))
        for source in ("127.0.0.1", "127.0.0.2", "127.0.0.3")}
    held: list[aiohttp.ClientResponse] = []

    async def open_stream(source: str) -> aiohttp.ClientResponse:
        resp = await clients[source].get(url)
        if resp.status == 200:
            held.append(resp)
            assert (await resp.content.readline()).startswith(b"event: status")
        return resp

    async def refused(source: str, status: int) -> None:
        resp = await open_stream(source)
        assert resp.status == status
        assert resp.headers["Content-Type"].startswith("application/problem+json")
        assert int(resp.headers["Retry-After"]) > 0
        assert "event streams" in (await resp.json())["detail"]
        resp.release()

    try:
        for _ in range(2):
            assert (await open_stream("127.0.0.1")).status == 200
        await refused("127.0.0.1", 429)  # this client has its two
        assert (await open_stream("127.0.0.2")).status == 200
        await refused("127.0.0.3", 503)  # the server has its three
        # The API's stream of the same invoice counts alike.
        async with clients["127.0.0.3"].get(
                f"{stack.gateway.url}/v1/invoices/{invoice['id']}/events",
                headers={"Authorization": f"Bearer {stack.key}"}) as resp:
            assert resp.status == 503
        # Pages still answer; a stream that ends gives its slot back.
        async with clients["127.0.0.3"].get(f"{stack.gateway.url}/pay/{invoice['id']}") as page:
            assert page.status == 200
        held.pop().close()
        for _ in range(200):
            resp = await open_stream("127.0.0.3")
            if resp.status == 200:
                break
            resp.release()
            await asyncio.sleep(0.2)
        assert resp.status == 200
    finally:
        for resp in held:
            resp.close()
        for session in clients.values():
            await session.close()
