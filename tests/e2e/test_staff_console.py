"""The staff console (issue 17) in headless Chromium, JavaScript off and on, against a real
`gateway serve` and a real Litecoin regtest node: its own listener, mandatory TOTP, what
each role may see, finding a payment by txid, the CSV, redelivering a failed webhook, and
revealing an email only with a reason that lands in the customer's export."""

import asyncio
import concurrent.futures
import csv
import io
import os
import re
import ssl
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pyotp
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from gateway.services.finance import COLUMNS
from tests.e2e.conftest import Stack, StackFactory
from tests.e2e.test_finance import amount_of, set_amount
from tests.e2e.test_portal import at, fill, submit
from tests.e2e.test_tls import client as tls_client
from tests.e2e.test_tls import self_signed
from tests.support.browser import chromium
from tests.support.cli import run_gateway
from tests.support.nodes import free_port
from tests.support.services import create_api_key, gateway_of
from tests.support.stack import Reply, eventually, run_cli

pytestmark = pytest.mark.e2e

PASSWORD = "staff password 123"
# Why each member looks at the customer's data (the customer reads these in their export).
FINANCE_LOOK = "matching a payment to its invoice"
CSV_LOOK = "monthly bookkeeping export"
SUPPORT_LOOK = "webhook delivery failed, ticket 42"
ACCOUNT_LOOK = "customer asked about the account"


def add_staff(stack: Stack, name: str, role: str, password: str = PASSWORD) -> None:
    done = run_gateway(["staff", "create", name, "--role", role, "--password-stdin"],
                       {**os.environ, **stack.gateway.env}, input=password + "\n")
    assert done.returncode == 0, done.stderr
    assert f"{name} ({role}) added" in done.stdout
    stack.secrets.add(password)


async def add_staff_members(stack: Stack, *members: tuple[str, str]) -> None:
    """Members (name, role) added through the service, as `gateway staff create` adds them
    (whose own test is test_console_only_on_its_listener_and_totp_is_mandatory)."""
    async with gateway_of(stack.gateway.env) as gw:
        for name, role in members:
            await gw.services.staff.add(name, role, PASSWORD)
    stack.secrets.add(PASSWORD)


def console(stack: Stack) -> str:
    return f"http://{stack.gateway.env['GATEWAY_STAFF__LISTEN']}/staff"


async def staff_stack(make_stack: StackFactory, **extra: Any) -> Stack:
    return await make_stack(GATEWAY_STAFF__LISTEN=f"127.0.0.1:{free_port()}", **extra)


def no_other_origin(html: str) -> None:
    assert not re.search(r"(?i)(src|href|action)=\"(https?:)?//", html), "another origin"
    assert "<script" not in html.lower(), "the console needs no script"


async def enrol(browser: WebDriver, base: str, name: str) -> str:
    """First login of a new member: the password only, then TOTP before anything else.
    Returns the TOTP secret."""
    await asyncio.to_thread(browser.get, f"{base}/login")
    fill(browser, name=name, password=PASSWORD)
    await asyncio.to_thread(submit, browser)
    await at(browser, f"{base}/enrol")
    # Nothing else opens until TOTP is on.
    for path in ("/support", "/finance", "/admin", "/invoices/inv_x"):
        await asyncio.to_thread(browser.get, f"{base}{path}")
        await at(browser, f"{base}/enrol")
    await asyncio.to_thread(submit, browser, "#begin")
    secret = browser.find_element(By.ID, "totp-secret").text
    fill(browser, code=pyotp.TOTP(secret).now())
    await asyncio.to_thread(submit, browser, "#confirm")
    return secret


async def csv_of(browser: WebDriver, url: str) -> str:
    """What the browser downloads from `url`, read with its own staff cookie."""
    cookie = browser.get_cookie("__Secure-staff")
    assert cookie is not None
    async with aiohttp.ClientSession(cookies={"__Secure-staff": cookie["value"]}) as http:
        async with http.get(url) as resp:
            assert resp.status == 200
            assert resp.content_type == "text/csv"
            assert "attachment" in resp.headers["Content-Disposition"]
            return await resp.text()


async def look(browser: WebDriver, base: str, path: str, reason: str) -> None:
    """At a page that shows a customer's data, which asks why first: say why, and land on
    the page itself (the reason carried in its address)."""
    await at(browser, f"{base}{path}")
    assert browser.find_elements(By.ID, "look-reason"), "the page did not ask why"
    fill(browser, reason=reason)
    await asyncio.to_thread(submit, browser, "#look")
    assert browser.current_url.startswith(f"{base}{path}?"), browser.current_url
    assert "reason=" in browser.current_url


async def download(browser: WebDriver, folder: Path, css: str) -> str:
    """Click a download link and read the file Chromium saved."""
    folder.mkdir(exist_ok=True)
    await asyncio.to_thread(browser.execute_cdp_cmd, "Page.setDownloadBehavior",
                            {"behavior": "allow", "downloadPath": str(folder)})
    await asyncio.to_thread(browser.find_element(By.CSS_SELECTOR, css).click)
    target = folder / "payments.csv"
    await eventually(lambda: target.exists() and target.stat().st_size > 0, 15,
                     "the CSV download")
    await asyncio.sleep(0.3)  # Chromium renames the finished download into place
    return target.read_bytes().decode()


async def reconcile(browser: WebDriver, base: str, self_refresh: bool = True
                    ) -> list[list[str]]:
    """Start a reconciliation of the last day and wait for its result: by the page's own
    refresh (every 2 s while it runs), or, once that was seen, by reloading it at once;
    the findings' cells."""
    await asyncio.to_thread(browser.get, f"{base}/finance/reconcile")
    await asyncio.to_thread(submit, browser, "#start")
    deadline = time.monotonic() + 60
    while not browser.find_elements(By.ID, "result"):
        assert time.monotonic() < deadline, "the reconciliation did not finish"
        await asyncio.sleep(0.5 if self_refresh else 0.1)
        if not self_refresh or not browser.find_elements(By.ID, "progress"):
            await asyncio.to_thread(browser.get, f"{base}/finance/reconcile")
    table = browser.find_element(By.ID, "findings")
    return [[td.text for td in tr.find_elements(By.TAG_NAME, "td")]
            for tr in table.find_elements(By.TAG_NAME, "tr")[1:]]


@pytest.fixture
def soon_browser(request: pytest.FixtureRequest, tmp_path: Path
                 ) -> Iterator["concurrent.futures.Future[WebDriver]"]:
    """Chromium (JavaScript as the test's `javascript` says), starting in a thread while
    the test sets up its stack; quit at teardown."""
    javascript = bool(request.node.callspec.params["javascript"])
    pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="chromium")
    future = pool.submit(chromium, tmp_path / "chromium", javascript)
    try:
        yield future
    finally:
        try:
            future.result().quit()
        finally:
            pool.shutdown()


async def next_member(browser: WebDriver, base: str) -> None:
    """The next member logs in in the same browser, with no cookie of the last one left."""
    await asyncio.to_thread(browser.get, f"{base}/login")
    await asyncio.to_thread(browser.delete_all_cookies)
    assert not browser.get_cookies()


# What the browser shows; the console's queries run on both databases in
# tests/integration (test_staff_admin_page, test_access_audit, ...).
@pytest.mark.any_database
@pytest.mark.parametrize("javascript", [False, True], ids=["js-off", "js-on"])
async def test_staff_console_roles_in_chromium(
    make_stack: StackFactory, tmp_path: Path, javascript: bool,
    soon_browser: "concurrent.futures.Future[WebDriver]",
) -> None:
    # Every delivery fails until the receiver is told otherwise; the eight attempts of
    # the settlement's webhook are 0.1 s apart.
    stack = await staff_stack(make_stack, script=[Reply(500)] * 1000,
                              event_types=["invoice.settled"],
                              GATEWAY_WEBHOOKS__RETRY_SCHEDULE_SECONDS=str([0.1] * 7))
    base = console(stack)
    email = f"staff-{int(javascript)}@example.org"
    customer = await stack.signup(email, "customer pw 123")
    invoice = await stack.invoice(customer["id"], "12.00")
    txid = stack.node.send(invoice["address"], invoice["amount_due"])
    stack.node.mine(3)
    await stack.wait_status(invoice["id"], "settled")
    # The settlement's webhook: every attempt failed.
    deadline = time.monotonic() + 30
    while not await stack.scalar(
            "SELECT count(*) FROM deliveries JOIN events ON events.id = deliveries.event_id "
            "WHERE events.type = 'invoice.settled' AND deliveries.status = 'failed'"):
        assert time.monotonic() < deadline, "the settlement's delivery never failed"
        await asyncio.sleep(0.3)

    await add_staff_members(stack, ("fay", "finance"), ("sam", "support"), ("ada", "admin"))

    shots = os.environ.get("STAFF_SCREENSHOTS")
    # One browser for the three members in turn (one Chromium start, not three).
    browser = await asyncio.wrap_future(soon_browser)

    # -- finance: find the payment by txid, the CSV matches the payments API; no emails
    await enrol(browser, base, "fay")
    await at(browser, f"{base}/finance")
    no_other_origin(browser.page_source)
    assert txid in browser.find_element(By.ID, "ledger").text
    assert browser.find_element(By.CSS_SELECTOR, "#chart svg rect") is not None
    totals = browser.find_element(By.ID, "totals").text
    assert "LTC" in totals and "12.00 EUR" in totals
    # The account credit of the period, once, in the page's body (docs/credit.md).
    assert browser.page_source.count("Account credit") == 1
    assert "No credit entries in this period." in browser.page_source
    if shots:
        browser.set_window_size(1200, 1000)
        browser.save_screenshot(str(Path(shots) / "staff-ledger.png"))
    fill(browser, q=txid)
    await asyncio.to_thread(submit, browser, "#search-go")
    # The invoice is the customer's data: the console asks why before showing it.
    assert txid not in browser.page_source
    await look(browser, base, f"/invoices/{invoice['id']}", FINANCE_LOOK)
    assert txid in browser.find_element(By.ID, "payments").text
    assert email not in browser.page_source  # finance sees no emails
    for query in (invoice["address"], invoice["id"]):  # the address, the id: same page
        await asyncio.to_thread(browser.get, f"{base}/search?q={query}")
        await at(browser, f"{base}/invoices/{invoice['id']}")
    await asyncio.to_thread(browser.get, f"{base}/search?q=nothing-like-this")
    assert "Nothing found" in browser.page_source
    assert not browser.find_elements(By.CSS_SELECTOR, ".redeliver")
    # The account page (where an email may be revealed) is not for finance.
    await asyncio.to_thread(browser.get, f"{base}/accounts/{customer['id']}")
    assert "Not for your role" in browser.page_source
    assert email not in browser.page_source

    await asyncio.to_thread(browser.get, f"{base}/finance")
    fill(browser, reason=CSV_LOOK)  # the CSV names each payment's account
    downloaded = await download(browser, tmp_path / "downloads", "#csv")
    key = await create_api_key(stack.gateway.env, "finance", "payments:read")
    stack.secrets.add(key)
    status, api_csv, _ = await stack.api.fetch("/v1/payments?format=csv", key)
    assert status == 200
    assert downloaded == api_csv.decode()
    rows = list(csv.DictReader(io.StringIO(downloaded)))
    assert list(rows[0]) == list(COLUMNS)
    assert [r["txid"] for r in rows] == [txid]
    # The CSV of a narrower view: the period filters it like the API's.
    later = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert len((await csv_of(browser, f"{base}/finance/payments.csv?from={later}"
                                      "&reason=the+empty+period+check")).splitlines()) == 1

    # -- support: no finance pages; the failed delivery, delivered again; the email
    await next_member(browser, base)
    await enrol(browser, base, "sam")
    await at(browser, f"{base}/support")
    async with aiohttp.ClientSession(cookies={
            "__Secure-staff": browser.get_cookie("__Secure-staff")["value"]}) as http:
        for path in ("/finance", "/finance/payments.csv", "/finance/reconcile",
                     "/admin"):
            async with http.get(base + path, allow_redirects=False) as resp:
                assert resp.status == 403, path
    await asyncio.to_thread(browser.get, f"{base}/finance")
    assert "Not for your role" in browser.page_source

    fill(browser, q=invoice["id"])
    await asyncio.to_thread(submit, browser, "form[action$='/search'] button")
    await look(browser, base, f"/invoices/{invoice['id']}", SUPPORT_LOOK)
    no_other_origin(browser.page_source)
    payments = browser.find_element(By.ID, "payments").text
    assert txid in payments
    confirmations = browser.find_element(By.CSS_SELECTOR, ".confirmations").text
    assert int(confirmations) >= 3
    history = browser.find_element(By.ID, "history").text
    assert "invoice.settled" in history and "settled" in history
    settled_event = browser.find_element(
        By.XPATH, "//section[@class='event'][.//h3[contains(., 'invoice.settled')]]")
    event_id = settled_event.get_attribute("id").removeprefix("event-")
    assert settled_event.find_elements(By.CSS_SELECTOR, ".delivery-failed")
    assert len(settled_event.find_elements(By.CSS_SELECTOR, ".attempt")) >= 8
    if shots:
        browser.set_window_size(1200, 1600)
        browser.save_screenshot(str(Path(shots) / "staff-invoice.png"))

    stack.receiver.script.clear()  # the receiver is fixed
    await asyncio.to_thread(submit, browser, f"#redeliver-{event_id}")
    assert "Queued again: 1" in browser.find_element(By.ID, "message").text
    await eventually(lambda: any(d.headers.get("webhook-id") == event_id
                                 for d in stack.receiver.deliveries), 20,
                     "the redelivered event")
    got = next(d for d in stack.receiver.deliveries
               if d.headers.get("webhook-id") == event_id)
    assert got.type == "invoice.settled"
    assert got.doc["data"]["invoice_id"] == invoice["id"]

    # The account: id, status, datacenter, invoices, after a reason; the email only with
    # a reason of its own.
    await asyncio.to_thread(browser.get, f"{base}/accounts/{customer['id']}")
    assert not browser.find_elements(By.ID, "account-status")
    await look(browser, base, f"/accounts/{customer['id']}", ACCOUNT_LOOK)
    assert browser.find_element(By.ID, "account-status").text == "active"
    assert invoice["id"] in browser.find_element(By.ID, "invoices").text
    assert email not in browser.page_source
    await asyncio.to_thread(submit, browser, "#reveal")
    assert "reason" in browser.find_element(By.ID, "error").text.lower()
    assert email not in browser.page_source
    assert not await stack.scalar("SELECT count(*) FROM audit_log WHERE action = "
                                  "'read_account'")
    reason = "customer asked by phone why the account is not active"
    fill(browser, reason=reason)
    await asyncio.to_thread(submit, browser, "#look")
    assert browser.find_element(By.ID, "email").text == email

    # The reason is free text: stored only encrypted (issue 16).
    audit = await stack.rows("SELECT actor, action, reason, reason_ct FROM audit_log "
                             "ORDER BY id")
    assert [(r[0], r[1], r[2]) for r in audit] == [
        ("staff:fay", "staff_viewed_invoice", None),
        ("staff:fay", "staff_exported_payments", None),  # not the empty period's CSV
        ("staff:sam", "staff_viewed_invoice", None),
        ("staff:sam", "staff_viewed_invoice", None),  # back from the redelivery
        ("staff:sam", "staff_viewed_account", None),
        ("staff:sam", "read_account", None)]
    assert all(r[3] for r in audit) and reason.encode() not in b"".join(
        bytes(r[3]) for r in audit)
    # The customer sees who looked, and why, in their own export.
    token = await stack.login(email, "customer pw 123")
    export = await stack.api.ok("GET", "/v1/me/export", token=token)
    assert [(e["actor"], e["reason"]) for e in export["audit_log"]] == [
        ("staff:fay", FINANCE_LOOK), ("staff:fay", CSV_LOOK),
        ("staff:sam", SUPPORT_LOOK), ("staff:sam", SUPPORT_LOOK),
        ("staff:sam", ACCOUNT_LOOK), ("staff:sam", reason)]
    # Staff actions are in the staff security log: who, what, when.
    logged = {(r[0], r[1], r[2]) for r in await stack.rows(
        "SELECT staff, action, subject FROM staff_log")}
    assert ("sam", "event_redelivered", event_id) in logged
    assert ("sam", "email_revealed", customer["id"]) in logged
    assert ("fay", "payments_exported", None) in logged

    # -- admin: endpoints and keys with secrets shown once, audit log, chains, outbox
    await next_member(browser, base)
    await enrol(browser, base, "ada")
    await at(browser, f"{base}/admin")
    no_other_origin(browser.page_source)
    assert "LTC" in browser.find_element(By.ID, "chains").text
    processed_at = browser.find_element(By.CSS_SELECTOR, "#chains .processed-at").text
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", processed_at)
    assert "Outbox" in browser.find_element(By.ID, "outbox").text
    # Who looked at which account, not why: the reasons are the customer's to read.
    audit_shown = browser.find_element(By.ID, "audit").text
    assert "staff:sam" in audit_shown and customer["id"] in audit_shown
    assert reason not in audit_shown and ACCOUNT_LOOK not in audit_shown
    fill(browser, name="reports")
    await asyncio.to_thread(browser.find_element(
        By.CSS_SELECTOR, "input[name=scope][value='payments:read']").click)
    await asyncio.to_thread(submit, browser, "form[action$='/admin/keys'] button")
    secret = browser.find_element(By.ID, "secret").text
    stack.secrets.add(secret)
    status, _, _ = await stack.api.fetch("/v1/payments", secret)
    assert status == 200  # the key works, with the scope chosen
    await asyncio.to_thread(browser.get, f"{base}/admin")
    assert secret not in browser.page_source  # shown once
    endpoint_id = stack.endpoint["id"]
    await asyncio.to_thread(submit, browser,
                            f"form[action$='/endpoints/{endpoint_id}/rotate'] button")
    rotated = browser.find_element(By.ID, "secret").text
    stack.secrets.add(rotated)
    assert rotated.startswith("whsec_") and rotated != stack.endpoint["secret"]

    # A new endpoint: its secret shown once; then disabled.
    fill(browser, url=stack.receiver.url, description="second system")
    await asyncio.to_thread(submit, browser, "form[action$='/admin/endpoints'] button")
    added = browser.find_element(By.ID, "secret").text
    stack.secrets.add(added)
    assert added.startswith("whsec_")
    new_id = re.search(r"endpoint (whe_\w+)", browser.page_source)
    assert new_id is not None
    await asyncio.to_thread(submit, browser,
                            f"form[action$='/endpoints/{new_id.group(1)}/disable'] button")
    await at(browser, f"{base}/admin")
    row = browser.find_element(By.XPATH, f"//tr[td/code[text()='{new_id.group(1)}']]")
    assert "disabled" in row.text and added not in browser.page_source
    # A disabled endpoint is a failing one, named under the outbox.
    failing = {e.text for e in browser.find_elements(By.CSS_SELECTOR, "#outbox .failing")}
    assert new_id.group(1) in failing

    # Reconciliation (admin sees the finance pages too): start, progress, result.
    assert await reconcile(browser, base) == []
    assert "Clean: 1 payments checked" in browser.find_element(By.ID, "result").text
    true_amount = await amount_of(stack, txid)
    await set_amount(stack, txid, true_amount - 1)
    findings = await reconcile(browser, base, self_refresh=False)
    assert len(findings) == 1
    assert findings[0][0] == "amount" and findings[0][2] == txid
    assert findings[0][4] == invoice["id"] and str(true_amount - 1) in findings[0][5]
    await set_amount(stack, txid, true_amount)


async def test_console_only_on_its_listener_and_totp_is_mandatory(
    make_stack: StackFactory
) -> None:
    stack = await staff_stack(make_stack, register_endpoint=False)
    base = console(stack)
    add_staff(stack, "tom", "support")
    listed = run_cli(stack.gateway.env, "staff", "list")
    assert listed.returncode == 0 and "tom\tsupport" in listed.stdout
    assert "2FA not set up yet" in listed.stdout
    async with aiohttp.ClientSession() as public:
        for path in ("/staff", "/staff/login", "/staff/finance", "/staff/support",
                     "/staff/admin", "/staff/invoices/inv_x", "/staff/static/staff.css"):
            async with public.get(stack.gateway.base + path, allow_redirects=False) as resp:
                assert resp.status == 404, path
        async with public.post(stack.gateway.base + "/staff/login",
                               data={"name": "tom", "password": PASSWORD}) as resp:
            assert resp.status == 404

    async with aiohttp.ClientSession() as http:
        jar: dict[str, Any] = {}  # the staff cookie, kept by hand: it is Secure, on an IP

        async def get(path: str) -> tuple[int, str, str]:
            headers = {"Cookie": f"__Secure-staff={jar['value']}"} if jar else {}
            async with http.get(base + path, headers=headers, allow_redirects=False) as resp:
                return resp.status, resp.headers.get("Location", ""), await resp.text()

        async def form(path: str, **fields: str) -> tuple[int, str, str]:
            _, _, page = await get("/login" if path == "/login" else "/enrol")
            token = re.search(r'name="csrf" value="([^"]+)"', page)
            assert token is not None
            headers = {"Cookie": f"__Secure-staff={jar['value']}"} if jar else {}
            async with http.post(base + path, data={"csrf": token.group(1), **fields},
                                 headers=headers, allow_redirects=False) as resp:
                cookie = resp.cookies.get("__Secure-staff")
                if cookie is not None:
                    jar.update(value=cookie.value, path=cookie["path"],
                               httponly=cookie["httponly"], secure=cookie["secure"],
                               samesite=cookie["samesite"])
                return resp.status, resp.headers.get("Location", ""), await resp.text()

        async with http.get(base + "/login") as resp:
            assert resp.status == 200
            assert "default-src 'self'" in resp.headers["Content-Security-Policy"]
            assert resp.headers["X-Frame-Options"] == "DENY"
        # No form token: refused, like the portal's forms.
        async with http.post(base + "/login", data={"name": "tom",
                                                    "password": PASSWORD}) as resp:
            assert resp.status == 403
        # Before enrolment: the password opens the enrolment and nothing else.
        status, location, _ = await form("/login", name="tom", password=PASSWORD)
        assert (status, location) == (303, "/staff/enrol")
        assert jar["path"] == "/staff" and jar["httponly"] and jar["secure"]
        assert jar["samesite"] == "Strict"
        for path in ("/support", "/finance", "/admin", "/"):
            assert (await get(path))[:2] == (303, "/staff/enrol"), path
        status, _, page = await form("/enrol")
        secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page)
        assert secret is not None
        totp = pyotp.TOTP(secret.group(1))
        wrong = "000000" if totp.now() != "000000" else "111111"
        assert (await form("/enrol/confirm", code=wrong))[0] == 422
        status, location, _ = await form("/enrol/confirm", code=totp.now())
        assert (status, location) == (303, "/staff/")
        assert (await get("/support"))[0] == 200

        # Enrolled: a login without a code is refused, and so is a wrong one.
        jar.clear()
        status, _, page = await form("/login", name="tom", password=PASSWORD)
        assert status == 401 and "code" in page
        assert not jar
        # ...with the same answer as a wrong password: the password is not confirmed.
        def error(html: str) -> str:
            found = re.search(r'id="error">([^<]+)<', html)
            assert found is not None
            return found.group(1)

        _, _, wrong_password = await form("/login", name="tom", password="not the password")
        assert error(page) == error(wrong_password)
        status, _, page = await form("/login", name="tom", password=PASSWORD, code=wrong)
        assert status == 401 and not jar
        assert (await get("/support"))[:2] == (303, "/staff/login")
        # The next time step (the one used at enrolment cannot be replayed).
        status, location, _ = await form("/login", name="tom", password=PASSWORD,
                                         code=totp.at(time.time() + 30))
        assert (status, location) == (303, "/staff/")
        assert (await get("/support"))[0] == 200

        # Failed logins are throttled per name, like customers' (5 free failures).
        statuses = [(await form("/login", name="tom", password="guess number one"))[0]
                    for _ in range(7)]
        assert statuses[:5] == [401] * 5 and statuses[-1] == 429, statuses

    listed = run_cli(stack.gateway.env, "staff", "list")
    assert "tom\tsupport" in listed.stdout and "2FA on" in listed.stdout
    removed = run_cli(stack.gateway.env, "staff", "delete", "tom")
    assert removed.returncode == 0, removed.stderr
    assert "tom" not in run_cli(stack.gateway.env, "staff", "list").stdout
    again = run_cli(stack.gateway.env, "staff", "remove", "tom")  # the old spelling
    assert again.returncode == 1 and "not found" in again.stderr
    assert again.stderr.startswith("deprecated: use `gateway staff delete`\n")
    failed = {tuple(r) for r in await stack.rows("SELECT staff, action FROM staff_log")}
    assert ("tom", "login_failed") in failed and ("tom", "totp_enrolled") in failed


async def test_console_over_tls(make_stack: StackFactory, tmp_path: Path) -> None:
    """Reached over a VPN address, the console terminates TLS 1.3 itself."""
    cert, key = self_signed(tmp_path)
    stack = await staff_stack(make_stack, register_endpoint=False,
                              GATEWAY_STAFF__TLS_CERT=str(cert),
                              GATEWAY_STAFF__TLS_KEY=str(key))
    url = f"https://{stack.gateway.env['GATEWAY_STAFF__LISTEN']}/staff/login"
    async with aiohttp.ClientSession() as http:
        async with http.get(url, ssl=tls_client(cert, ssl.TLSVersion.TLSv1_3)) as resp:
            assert resp.status == 200
            assert resp.headers["Strict-Transport-Security"].startswith("max-age=")
        with pytest.raises(aiohttp.ClientError):
            async with http.get(url, ssl=tls_client(cert, ssl.TLSVersion.TLSv1_2)):
                pass
        with pytest.raises(aiohttp.ClientError):  # and no plain HTTP beside it
            async with http.get(url.replace("https:", "http:")):
                pass
