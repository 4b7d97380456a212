"""Issue 28, item 10 and its review: the tests of three promises assert the promise itself.

- Browser information is used "for website functionality only" (the CSRF binding) and
  never stored: after a customer's whole visit with a distinctive User-Agent (portal
  signup and login, the API, the checkout page, failed logins, the staff console's
  login), the database's bytes (SQLite: the file and its write-ahead log; PostgreSQL:
  every row of every table as text, byte columns in hex) hold no trace of it, while the
  same search finds a value that is stored in clear; nor does the gateway's log (the
  `make_stack` teardown searches it for every string in `stack.secrets`).
- Nothing is loaded from another origin: the Content-Security-Policy of every page type
  (customer pages logged out and logged in, the two-factor setup with its inline QR
  code, checkout page and its event stream, the customer's export downloads, the staff
  console logged out, enrolling and logged in, its reason question, its CSV download,
  error pages; and of the API) is parsed, allows no source but the gateway's own
  ('self', 'none', data: images), and is exactly the one docs/privacy.md states.
- Essential cookies only: over the same whole visit, every Set-Cookie the customer's
  side sends is the session or the preference cookie, and the staff console's only its
  own session cookie, each Secure, HttpOnly, SameSite=Strict and host-only."""

import re
from dataclasses import dataclass, field
from http.cookies import Morsel, SimpleCookie
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pyotp

from tests.e2e.conftest import Stack, StackFactory
from tests.support.db_bytes import database_bytes, holds
from tests.support.nodes import free_port
from tests.support.services import gateway_of

DOC = Path(__file__).parents[2] / "docs" / "privacy.md"
USER_AGENT = "Mozilla/5.0 (X11; UA-Probe-7f3a9c) ZebraBrowser/91.7 Gecko/20100101"
REFERENCE = "order-ref-probe-4417"
ALLOWED_SOURCES = {"'self'", "'none'", "data:"}


def _form_token(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the form has no CSRF token"
    return found.group(1)


def _parse_csp(value: str) -> dict[str, list[str]]:
    directives: dict[str, list[str]] = {}
    for part in value.split(";"):
        words = part.split()
        if words:
            assert words[0].lower() not in directives, f"{words[0]} twice in {value!r}"
            directives[words[0].lower()] = words[1:]
    return directives


def _documented(kind: str) -> dict[str, list[str]]:
    """The policy docs/privacy.md states for `kind` ("HTML pages" or "Everything else")."""
    found = re.search(rf"^- {kind}[^`\n]*`([^`]+)`", DOC.read_text(), re.MULTILINE)
    assert found, f"docs/privacy.md states no Content-Security-Policy for {kind}"
    return _parse_csp(found.group(1))


async def test_the_user_agent_is_never_stored(make_stack: StackFactory) -> None:
    # On SQLite, and on PostgreSQL in make test's second e2e run (GATEWAY_TEST_DATABASE).
    stack = await make_stack(register_endpoint=False,
                             GATEWAY_STAFF__LISTEN=f"127.0.0.1:{free_port()}")
    staff = f"http://{stack.gateway.env['GATEWAY_STAFF__LISTEN']}/staff"
    email, password = "ua-probe@example.org", "ua probe password 1"
    # The teardown also searches the gateway's log for each of these.
    stack.secrets.update({email, password, USER_AGENT, "UA-Probe-7f3a9c", "ZebraBrowser"})
    base = stack.gateway.base
    headers = {"User-Agent": USER_AGENT}
    async with aiohttp.ClientSession(headers=headers) as http:
        # The portal binds its CSRF token to the User-Agent: signup and login by form.
        async with http.get(f"{base}/signup") as resp:
            token = _form_token(await resp.text())
        async with http.post(f"{base}/signup", allow_redirects=False, data={
                "email": email, "password": password, "csrf": token}) as resp:
            assert resp.status == 303, await resp.text()
        async with http.get(f"{base}/login") as resp:
            token = _form_token(await resp.text())
        async with http.post(f"{base}/login", allow_redirects=False, data={
                "email": email, "password": "a wrong password 9", "csrf": token}) as resp:
            assert resp.status in (200, 401, 403), resp.status
        async with http.post(f"{base}/v1/sessions", json={
                "email": email, "password": password}) as resp:
            assert resp.status == 201
            stack.secrets.add((await resp.json())["token"])
        account_id = await stack.scalar("SELECT id FROM accounts")
        invoice = await stack.invoice(account_id, metadata={"reference": REFERENCE})
        async with http.get(f"{stack.gateway.url}/pay/{invoice['id']}") as resp:
            assert resp.status == 200
        async with http.get(f"{base}/forgot") as resp:
            token = _form_token(await resp.text())
        async with http.post(f"{base}/forgot", allow_redirects=False, data={
                "email": email, "csrf": token}) as resp:
            assert resp.status == 202, resp.status
        # The staff console binds its form tokens to the browser too.
        async with http.get(f"{staff}/login") as resp:
            token = _form_token(await resp.text())
        async with http.post(f"{staff}/login", data={
                "name": "nobody", "password": "not the password 1", "csrf": token}) as resp:
            assert resp.status == 401
    raw = await database_bytes(stack.db_url)
    assert holds(raw, REFERENCE), "the search does not see what is stored in clear"
    for trace in (USER_AGENT, "UA-Probe-7f3a9c", "ZebraBrowser"):
        assert not holds(raw, trace), f"the database holds the User-Agent ({trace!r})"



STAFF_NAME, STAFF_PASSWORD = "csp-admin", "csp staff password 1"
CUSTOMER_COOKIES = {"__Host-session", "__Host-pref"}
STAFF_COOKIES = {"__Secure-staff"}


@dataclass
class Answer:
    kind: str
    status: int
    content_type: str
    csp: str
    body: str
    staff: bool  # from the staff console's listener
    cookies: list["Morsel[str]"] = field(default_factory=list)


@dataclass
class Visit:
    """A browser's whole visit, customer then staff, answer by answer. It keeps each
    side's cookies itself (aiohttp's jar drops Secure cookies of plain-HTTP loopback)."""

    stack: Stack
    http: aiohttp.ClientSession
    staff: str
    answers: list[Answer] = field(default_factory=list)
    jars: dict[bool, dict[str, str]] = field(default_factory=lambda: {False: {}, True: {}})

    async def go(self, kind: str, url: str, status: int, form: dict[str, str] | None = None
                 ) -> Answer:
        staff = urlsplit(url).netloc == urlsplit(self.staff).netloc
        jar = self.jars[staff]
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in jar.items())} if jar else {}
        method = "GET" if form is None else "POST"
        async with self.http.request(method, url, data=form, headers=headers,
                                     allow_redirects=False) as resp:
            cookies: SimpleCookie = SimpleCookie()
            for line in resp.headers.getall("Set-Cookie", []):
                cookies.load(line)
            for name, morsel in cookies.items():
                if morsel.value:
                    jar[name] = morsel.value
                else:
                    jar.pop(name, None)  # deleted (logout)
            # An event stream stays open: its headers are the answer.
            stream = resp.content_type == "text/event-stream"
            answer = Answer(kind, resp.status, resp.content_type,
                            resp.headers.get("Content-Security-Policy", ""),
                            "" if stream else await resp.text(errors="replace"), staff,
                            list(cookies.values()))
        assert answer.status == status, (kind, answer.status, answer.body[:500])
        self.answers.append(answer)
        return answer


# Which answers are HTML pages and which are not (API, downloads, streams, redirects
# are checked for cookies only).
PAGES = {"customer signup", "customer login", "customer password reset request",
         "customer error page (dead reset link)", "customer account (logged in)",
         "customer two-factor setup (inline QR code)", "checkout",
         "staff console login", "staff console error page (failed login)",
         "staff enrolment", "staff enrolment (inline QR code)", "staff admin (logged in)",
         "staff ledger (logged in)", "staff reason question", "staff account (logged in)"}
OTHERS = {"customer export (JSON download)", "customer export (CSV download)",
          "checkout event stream", "API", "API error (problem+json)",
          "customer language menu (redirect)",
          "staff console, unknown path", "staff CSV download"}


async def whole_visit(stack: Stack) -> list[Answer]:
    """Every page type, customer and staff, logged out and logged in, by form as a
    browser without JavaScript goes through them."""
    base, pay = stack.gateway.base, stack.gateway.url
    staff = f"http://{stack.gateway.env['GATEWAY_STAFF__LISTEN']}/staff"
    async with gateway_of(stack.gateway.env) as gw:
        await gw.services.staff.add(STAFF_NAME, "admin", STAFF_PASSWORD)
    email, password = "csp@example.org", "csp probe password 1"
    stack.secrets.update({email, password, STAFF_PASSWORD})
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        v = Visit(stack, http, staff)
        page = await v.go("customer signup", f"{base}/signup", 200)
        await v.go("customer signed up", f"{base}/signup", 303, {
            "email": email, "password": password, "currency": "USD",
            "datacenter": "is-rey", "csrf": _form_token(page.body)})
        await v.go("customer login", f"{base}/login", 200)
        await v.go("customer language menu (redirect)", f"{base}/lang?l=de&next=login", 303)
        await v.go("customer password reset request", f"{base}/forgot", 200)
        await v.go("customer error page (dead reset link)", f"{base}/reset?token=nope", 400)
        page = await v.go("customer account (logged in)", f"{base}/account", 200)
        await v.go("customer two-factor setup (inline QR code)", f"{base}/account/totp", 200,
                   {"current_password": password, "csrf": _form_token(page.body)})
        await v.go("customer export (JSON download)", f"{base}/v1/me/export?format=json", 200)
        await v.go("customer export (CSV download)", f"{base}/v1/me/export?format=csv", 200)
        account_id = await stack.scalar("SELECT id FROM accounts")
        invoice = await stack.invoice(account_id)
        await v.go("checkout", f"{pay}/pay/{invoice['id']}", 200)
        await v.go("checkout event stream", f"{pay}/pay/{invoice['id']}/events", 200)
        await v.go("API", f"{base}/v1/invoices/{invoice['id']}", 401)
        await v.go("API error (problem+json)", f"{pay}/pay/inv_nope", 404)
        await v.go("customer logged out", f"{base}/logout", 303,
                   {"csrf": _form_token(page.body)})

        page = await v.go("staff console login", f"{staff}/login", 200)
        await v.go("staff console error page (failed login)", f"{staff}/login", 401, {
            "name": STAFF_NAME, "password": "not the password 1",
            "csrf": _form_token(page.body)})
        await v.go("staff logged in (password only)", f"{staff}/login", 303, {
            "name": STAFF_NAME, "password": STAFF_PASSWORD, "csrf": _form_token(page.body)})
        page = await v.go("staff enrolment", f"{staff}/enrol", 200)
        page = await v.go("staff enrolment (inline QR code)", f"{staff}/enrol", 200,
                          {"csrf": _form_token(page.body)})
        secret = re.search(r'id="totp-secret"[^>]*>([A-Z2-7]+)<', page.body)
        assert secret, "the enrolment page shows no secret"
        await v.go("staff enrolled", f"{staff}/enrol/confirm", 303, {
            "code": pyotp.TOTP(secret[1]).now(), "csrf": _form_token(page.body)})
        page = await v.go("staff admin (logged in)", f"{staff}/admin", 200)
        await v.go("staff ledger (logged in)", f"{staff}/finance", 200)
        await v.go("staff reason question", f"{staff}/finance/payments.csv", 200)
        await v.go("staff CSV download",
                   f"{staff}/finance/payments.csv?reason=checking+the+page+headers", 200)
        await v.go("staff account (logged in)",
                   f"{staff}/accounts/{account_id}?reason=checking+the+page+headers", 200)
        await v.go("staff console, unknown path", f"{staff}/nope", 404)
        await v.go("staff logged out", f"{staff}/logout", 303,
                   {"csrf": _form_token(page.body)})
    kinds = {a.kind for a in v.answers}
    assert PAGES | OTHERS <= kinds, (PAGES | OTHERS) - kinds
    return v.answers


async def test_every_page_type_loads_nothing_from_another_origin(
        make_stack: StackFactory) -> None:
    stack = await make_stack(GATEWAY_STAFF__LISTEN=f"127.0.0.1:{free_port()}")
    page_policy, other_policy = _documented("HTML pages"), _documented("Everything else")
    for policy in (page_policy, other_policy):
        assert "default-src" in policy, "without default-src, unlisted kinds load anything"
    checked = 0
    for answer in await whole_visit(stack):
        if answer.kind not in PAGES | OTHERS:
            continue  # a redirect after a form: no content to load anything
        html = answer.content_type == "text/html"
        assert html == (answer.kind in PAGES), (answer.kind, answer.content_type)
        policy = _parse_csp(answer.csp)
        for directive, sources in policy.items():
            if directive.endswith("-src") or directive in ("base-uri", "form-action",
                                                           "frame-ancestors"):
                assert set(sources) <= ALLOWED_SOURCES, (answer.kind, directive, sources)
        expected = page_policy if html else other_policy
        assert policy == expected, (answer.kind, policy, "differs from docs/privacy.md")
        if html:
            assert not re.search(r"(?i)(src|href|action)=\"(https?:)?//", answer.body), \
                answer.kind
        checked += 1
    assert checked == len(PAGES | OTHERS)


async def test_only_the_essential_cookies_are_set(make_stack: StackFactory) -> None:
    stack = await make_stack(GATEWAY_STAFF__LISTEN=f"127.0.0.1:{free_port()}")
    answers = await whole_visit(stack)
    for staff, allowed, path in ((False, CUSTOMER_COOKIES, "/"), (True, STAFF_COOKIES,
                                                                  "/staff")):
        cookies = [(a.kind, m) for a in answers if a.staff == staff for m in a.cookies]
        # Every cookie the visit can set was set: the check below saw each of them.
        assert {m.key for _, m in cookies} == allowed, [(k, m.key) for k, m in cookies]
        for kind, m in cookies:
            assert m["secure"] and m["httponly"], (kind, m.OutputString())
            assert m["samesite"].lower() == "strict", (kind, m.OutputString())
            assert m["path"] == path and not m["domain"], (kind, m.OutputString())
            if m.key == "__Host-pref":  # currency, datacenter and language, a year
                assert m.value in ("USD|is-rey|", "USD|is-rey|de"), m.value
                assert 0 < int(m["max-age"]) <= 365 * 86400
            elif m.value:  # a session cookie: gone when the browser closes
                assert not m["max-age"] and not m["expires"], (kind, m.OutputString())


async def test_metrics_and_the_request_log_hold_nothing_about_a_customer(
        make_stack: StackFactory) -> None:
    """"Anonymized data for service improvements" and no web server log: after the whole
    visit, customer and staff, the metrics name no email, account, invoice, staff member
    or client address and label routes by their pattern; the gateway's own log (at DEBUG)
    has a line per request with the route's pattern, never its path, query or headers."""
    stack = await make_stack(GATEWAY_STAFF__LISTEN=f"127.0.0.1:{free_port()}")
    await whole_visit(stack)
    account_id = await stack.scalar("SELECT id FROM accounts")
    invoice_id = await stack.scalar("SELECT id FROM invoices")
    async with aiohttp.ClientSession() as http, \
            http.get(f"{stack.gateway.ops_url}/metrics") as resp:
        assert resp.status == 200
        metrics = await resp.text()
    for trace in ("csp@example.org", "csp@", account_id, invoice_id, "acc_", "inv_",
                  STAFF_NAME, "127.0.0.1", "USD|is-rey"):
        assert trace not in metrics, f"the metrics hold {trace!r}"
    assert 'route="/pay/{invoice_id}"' in metrics, "the visit is not in the metrics"
    log = stack.gateway.log()
    for trace in (f"/pay/{invoice_id}", f"/accounts/{account_id}", "reason=", "format=",
                  "token=nope", "Python/3", "aiohttp/", "127.0.0.1"):
        assert trace not in log, f"the gateway's log holds {trace!r}"
    assert "GET /pay/{invoice_id} 200" in log and "GET /staff/finance 200" in log, log[-3000:]
